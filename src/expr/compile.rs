//! From evalexpr's `Node` tree to the typed, slot-indexed tree of [`super::eval`].
//!
//! evalexpr is trusted only as a parser of well-formed input: it accepts operators with
//! missing operands, assignments, chains and tuples, so every node is checked here. The
//! walk keeps an index into the token list of [`super::lex`] in step with the tree (an
//! in-order walk meets tokens in source order) so errors carry byte offsets.

use std::time::Duration;

use evalexpr::{Node, Operator, Value};

use super::eval::{Agg, Arith, CmpOp, Cond, Math, Num};
use super::lex::{self, Token};
use super::stats::WinFn;
use super::{ExprError, Slot, SlotKind, Type};

/// Deepest accepted evalexpr tree: bounds the recursion of this compiler and the evaluator.
/// Parentheses and function calls add up to four tree levels each, so this leaves room for
/// everything [`lex::MAX_DEPTH`] admits except absurdly long operator chains.
pub(super) const MAX_TREE_DEPTH: usize = 256;

/// A compiled node of either type.
#[derive(Clone, Debug)]
pub(super) enum Typed {
    Num(Num),
    Cond(Cond),
}

impl Typed {
    pub(super) fn ty(&self) -> Type {
        match self {
            Typed::Num(_) => Type::Number,
            Typed::Cond(_) => Type::Bool,
        }
    }
}

/// The result of compiling a whole expression.
pub(super) struct Compiled {
    pub root: Typed,
    pub slots: Vec<Slot>,
    pub longest_window: Duration,
}

/// Compiles `src`.
pub(super) fn compile(src: &str) -> Result<Compiled, ExprError> {
    let tokens = lex::scan(src)?;
    let tree = evalexpr::build_operator_tree(src).map_err(parse_error)?;
    if depth(&tree) > MAX_TREE_DEPTH {
        return Err(ExprError::new(format!(
            "expression nests too deeply (more than {MAX_TREE_DEPTH} levels of operators)"
        ))
        .hint("simplify it, or split it into a recording rule and an alert that reads it"));
    }
    if tree.children().is_empty() {
        return Err(ExprError::new("empty expression").hint("write a formula such as `cpu_usage > 90`"));
    }
    let mut c = Compiler { tokens: &tokens, slots: Vec::new(), longest_window: Duration::ZERO };
    let (root, _) = c.node(&tree, 0)?;
    Ok(Compiled { root, slots: c.slots, longest_window: c.longest_window })
}

/// Depth of an evalexpr tree, measured without recursion (the tree may be very deep).
fn depth(root: &Node) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((n, d)) = stack.pop() {
        max = max.max(d);
        stack.extend(n.children().iter().map(|c| (c, d + 1)));
    }
    max
}

/// Maps evalexpr's parse errors (those the token scan did not already catch) to messages.
fn parse_error(e: evalexpr::EvalexprError) -> ExprError {
    use evalexpr::EvalexprError as E;
    match e {
        E::AppendedToLeafNode | E::MissingOperatorOutsideOfBrace | E::PrecedenceViolation => {
            ExprError::new("missing operator between two operands")
                .hint("e.g. `a b` should be `a * b` or `a > b`; a call is `name(args)`")
        }
        E::UnmatchedLBrace => ExprError::new("unclosed `(`"),
        E::UnmatchedRBrace => ExprError::new("unmatched `)`"),
        other => ExprError::new(format!("cannot parse expression: {other}")),
    }
}

struct Compiler<'a> {
    tokens: &'a [Token],
    slots: Vec<Slot>,
    longest_window: Duration,
}

/// What a function is, once its name is known.
#[derive(Clone, Copy)]
enum Func {
    Window(WinFn),
    Quantile,
    PredictLinear,
    TimeTo,
    Age,
    Present,
    /// `sum`, `avg`, `count`: one metric argument.
    Agg(Agg),
    /// `min`, `max`: aggregate with one argument, compare two scalars with two.
    MinMax(Agg, Arith),
    Math(Math),
    Clamp,
}

/// Every function, with its signature for messages.
const FUNCTIONS: &[(&str, Func, &str)] = &[
    ("rate", Func::Window(WinFn::Rate), "rate(metric, \"5m\")"),
    ("increase", Func::Window(WinFn::Increase), "increase(metric, \"5m\")"),
    ("delta", Func::Window(WinFn::Delta), "delta(metric, \"5m\")"),
    ("deriv", Func::Window(WinFn::Deriv), "deriv(metric, \"5m\")"),
    ("predict_linear", Func::PredictLinear, "predict_linear(metric, \"1h\", seconds)"),
    ("time_to", Func::TimeTo, "time_to(metric, limit, \"1h\")"),
    ("avg_over_time", Func::Window(WinFn::Avg), "avg_over_time(metric, \"5m\")"),
    ("min_over_time", Func::Window(WinFn::Min), "min_over_time(metric, \"5m\")"),
    ("max_over_time", Func::Window(WinFn::Max), "max_over_time(metric, \"5m\")"),
    ("sum_over_time", Func::Window(WinFn::Sum), "sum_over_time(metric, \"5m\")"),
    ("count_over_time", Func::Window(WinFn::Count), "count_over_time(metric, \"5m\")"),
    ("stddev_over_time", Func::Window(WinFn::Stddev), "stddev_over_time(metric, \"5m\")"),
    ("quantile_over_time", Func::Quantile, "quantile_over_time(0.95, metric, \"5m\")"),
    ("ci_low", Func::Window(WinFn::CiLow), "ci_low(metric, \"5m\")"),
    ("ci_high", Func::Window(WinFn::CiHigh), "ci_high(metric, \"5m\")"),
    ("zscore", Func::Window(WinFn::Zscore), "zscore(metric, \"1h\")"),
    ("changes", Func::Window(WinFn::Changes), "changes(metric, \"5m\")"),
    ("age", Func::Age, "age(metric)"),
    ("present", Func::Present, "present(metric)"),
    ("sum", Func::Agg(Agg::Sum), "sum(metric)"),
    ("avg", Func::Agg(Agg::Avg), "avg(metric)"),
    ("count", Func::Agg(Agg::Count), "count(metric)"),
    ("min", Func::MinMax(Agg::Min, Arith::Min), "min(metric) or min(a, b)"),
    ("max", Func::MinMax(Agg::Max, Arith::Max), "max(metric) or max(a, b)"),
    ("abs", Func::Math(Math::Abs), "abs(x)"),
    ("round", Func::Math(Math::Round), "round(x)"),
    ("floor", Func::Math(Math::Floor), "floor(x)"),
    ("ceil", Func::Math(Math::Ceil), "ceil(x)"),
    ("sqrt", Func::Math(Math::Sqrt), "sqrt(x)"),
    ("ln", Func::Math(Math::Ln), "ln(x)"),
    ("log10", Func::Math(Math::Log10), "log10(x)"),
    ("exp", Func::Math(Math::Exp), "exp(x)"),
    ("clamp", Func::Clamp, "clamp(x, lo, hi)"),
];

/// The closest known function name to `name`, if any is close enough to be a typo.
fn did_you_mean(name: &str) -> Option<&'static str> {
    FUNCTIONS
        .iter()
        .map(|(f, _, _)| (*f, strsim::jaro_winkler(name, f)))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, _)| f)
}

/// Whether `name` is a valid metric name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Tokens a subtree spans (parentheses excluded), for keeping the token index in step.
fn count(n: &Node) -> usize {
    let inner: usize = n.children().iter().map(count).sum();
    match n.operator() {
        Operator::RootNode => inner,
        // The separators between elements.
        Operator::Tuple | Operator::Chain => inner + n.children().len().saturating_sub(1),
        _ => inner + 1,
    }
}

/// `n` without the `RootNode`s that parentheses wrap around it.
fn unwrap_parens(mut n: &Node) -> &Node {
    while matches!(n.operator(), Operator::RootNode) && n.children().len() == 1 {
        n = &n.children()[0];
    }
    n
}

/// The text evalexpr's operator was written as.
fn op_text(op: &Operator) -> &'static str {
    use Operator as O;
    match op {
        O::Add => "+",
        O::Sub | O::Neg => "-",
        O::Mul => "*",
        O::Div => "/",
        O::Mod => "%",
        O::Exp => "^",
        O::Eq => "==",
        O::Neq => "!=",
        O::Gt => ">",
        O::Lt => "<",
        O::Geq => ">=",
        O::Leq => "<=",
        O::And => "&&",
        O::Or => "||",
        O::Not => "!",
        O::Assign => "=",
        O::AddAssign => "+=",
        O::SubAssign => "-=",
        O::MulAssign => "*=",
        O::DivAssign => "/=",
        O::ModAssign => "%=",
        O::ExpAssign => "^=",
        O::AndAssign => "&&=",
        O::OrAssign => "||=",
        O::Tuple => ",",
        O::Chain => ";",
        O::RootNode | O::Const { .. } | O::VariableIdentifierWrite { .. } | O::VariableIdentifierRead { .. } => "",
        O::FunctionIdentifier { .. } => "",
    }
}

fn describe(t: Type) -> &'static str {
    match t {
        Type::Number => "a number",
        Type::Bool => "a condition",
    }
}

impl Compiler<'_> {
    /// Byte offset of the token at index `pos`, if the scan and the tree agree it exists.
    fn at(&self, pos: usize) -> Option<usize> {
        self.tokens.get(pos).map(|t| t.offset)
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> ExprError {
        ExprError { message: message.into(), hint: None, offset: self.at(pos) }
    }

    fn slot(&mut self, metric: &str, kind: SlotKind) -> u32 {
        let i = match self.slots.iter().position(|s| s.metric == metric && s.kind == kind) {
            Some(i) => i,
            None => {
                self.slots.push(Slot { metric: metric.to_string(), kind });
                self.slots.len() - 1
            }
        };
        // At most MAX_LEN/2 identifiers fit in an expression, far below u32::MAX.
        i as u32
    }

    /// Compiles `n`, whose first token is at index `pos`; returns it and its token count.
    fn node(&mut self, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        use Operator as O;
        let kids = n.children();
        match n.operator() {
            O::RootNode => match kids {
                [] => Err(self.err(pos, "empty parentheses `()`")),
                [only] => self.node(only, pos),
                _ => Err(self.err(pos, "missing operator between two operands")),
            },
            O::Const { value } => Ok((self.constant(value, pos)?, 1)),
            O::VariableIdentifierRead { identifier } => {
                self.metric_name(identifier, pos)?;
                Ok((Typed::Num(Num::Current(self.slot(identifier, SlotKind::Series))), 1))
            }
            O::FunctionIdentifier { identifier } => self.call(identifier, n, pos),
            O::Neg | O::Not => {
                let [child] = kids else {
                    return Err(self.err(pos, format!("`{}` is missing its operand", op_text(n.operator()))));
                };
                let (c, k) = self.node(child, pos + 1)?;
                let neg = matches!(n.operator(), O::Neg);
                let typed = match (neg, c) {
                    (true, Typed::Num(x)) => Typed::Num(Num::Neg(Box::new(x))),
                    (false, Typed::Cond(x)) => Typed::Cond(Cond::Not(Box::new(x))),
                    (true, Typed::Cond(_)) => {
                        return Err(self.err(pos, "`-` needs a number, but its operand is a condition"));
                    }
                    (false, Typed::Num(_)) => {
                        let mut e = self.err(pos, "`!` needs a condition, but its operand is a number");
                        if let O::FunctionIdentifier { identifier } = unwrap_parens(child).operator()
                            && identifier == "present"
                        {
                            e = e.hint("present() returns 1 or 0: write `present(m) == 0`");
                        } else {
                            e = e.hint("compare it, e.g. `!(x > 0)` or `x <= 0`");
                        }
                        return Err(e);
                    }
                };
                Ok((typed, k + 1))
            }
            O::Assign
            | O::AddAssign
            | O::SubAssign
            | O::MulAssign
            | O::DivAssign
            | O::ModAssign
            | O::ExpAssign
            | O::AndAssign
            | O::OrAssign
            | O::VariableIdentifierWrite { .. } => {
                let op_pos = pos + kids.first().map_or(0, count);
                let text = op_text(n.operator());
                let e = if text == "=" {
                    self.err(op_pos, "`=` is assignment, which expressions cannot do")
                        .hint("to compare, write `==`")
                } else {
                    self.err(op_pos, format!("`{text}` is assignment, which expressions cannot do"))
                };
                Err(e)
            }
            O::Chain => Err(self
                .err(pos + kids.first().map_or(0, count), "`;` is not allowed: an expression is one formula")
                .hint("combine conditions with `&&` or `||`")),
            O::Tuple => Err(self
                .err(pos + kids.first().map_or(0, count), "`,` separates function arguments and is not allowed here")
                .hint("a list such as `(a, b)` is not a value")),
            op => self.binary(op, kids, pos),
        }
    }

    fn binary(&mut self, op: &Operator, kids: &[Node], pos: usize) -> Result<(Typed, usize), ExprError> {
        use Operator as O;
        let text = op_text(op);
        let [left, right] = kids else {
            // evalexpr keeps an operator with a missing operand as a node with one child.
            let missing_left = self.tokens.get(pos).is_some_and(|t| &*t.text == text);
            let (op_pos, side) = if missing_left {
                (pos, "left")
            } else {
                (pos + kids.first().map_or(0, count), "right")
            };
            return Err(self.err(op_pos, format!("`{text}` is missing its {side} operand")));
        };
        let (l, nl) = self.node(left, pos)?;
        let op_pos = pos + nl;
        let (r, nr) = self.node(right, op_pos + 1)?;
        let tokens = nl + 1 + nr;
        let typed = match (op, l, r) {
            (O::Add | O::Sub | O::Mul | O::Div | O::Mod | O::Exp, Typed::Num(a), Typed::Num(b)) => {
                let arith = match op {
                    O::Add => Arith::Add,
                    O::Sub => Arith::Sub,
                    O::Mul => Arith::Mul,
                    O::Div => Arith::Div,
                    O::Mod => Arith::Rem,
                    _ => Arith::Pow,
                };
                Typed::Num(Num::Arith(arith, Box::new(a), Box::new(b)))
            }
            (O::Lt | O::Leq | O::Gt | O::Geq | O::Eq | O::Neq, Typed::Num(a), Typed::Num(b)) => {
                let cmp = match op {
                    O::Lt => CmpOp::Lt,
                    O::Leq => CmpOp::Le,
                    O::Gt => CmpOp::Gt,
                    O::Geq => CmpOp::Ge,
                    O::Eq => CmpOp::Eq,
                    _ => CmpOp::Ne,
                };
                Typed::Cond(Cond::Cmp(cmp, Box::new(a), Box::new(b)))
            }
            (O::Eq | O::Neq, Typed::Cond(a), Typed::Cond(b)) => {
                Typed::Cond(Cond::Same(matches!(op, O::Neq), Box::new(a), Box::new(b)))
            }
            (O::And, Typed::Cond(a), Typed::Cond(b)) => Typed::Cond(Cond::And(Box::new(a), Box::new(b))),
            (O::Or, Typed::Cond(a), Typed::Cond(b)) => Typed::Cond(Cond::Or(Box::new(a), Box::new(b))),
            (_, l, r) => {
                let (want, hint) = match op {
                    O::And | O::Or => (Type::Bool, Some("compare numbers first, e.g. `a > 0 && b > 0`")),
                    O::Eq | O::Neq => {
                        return Err(self.err(
                            op_pos,
                            format!(
                                "`{text}` compares two numbers or two conditions, not {} with {}",
                                describe(l.ty()),
                                describe(r.ty())
                            ),
                        ));
                    }
                    O::Lt | O::Leq | O::Gt | O::Geq => (Type::Number, None),
                    _ => (Type::Number, Some("conditions are not numbers; tiers compare a numeric expr")),
                };
                let (side, got) = if l.ty() != want { ("left", l.ty()) } else { ("right", r.ty()) };
                let mut e = self.err(
                    op_pos,
                    format!("`{text}` needs {} on both sides, but its {side} operand is {}", plural(want), describe(got)),
                );
                e.hint = hint.map(str::to_string);
                return Err(e);
            }
        };
        Ok((typed, tokens))
    }

    fn constant(&self, value: &Value, pos: usize) -> Result<Typed, ExprError> {
        let text = self.tokens.get(pos).map_or("", |t| &*t.text);
        match value {
            Value::Int(i) => Ok(Typed::Num(Num::Const(*i as f64))),
            Value::Float(f) if f.is_finite() => Ok(Typed::Num(Num::Const(*f))),
            Value::Float(_) => Err(self
                .err(pos, format!("number `{text}` is not finite"))
                .hint("use a finite number; `inf` and `nan` are not metric names either")),
            Value::Boolean(b) => Ok(Typed::Cond(Cond::Const(*b))),
            Value::String(_) => Err(self
                .err(pos, "a string is only allowed as the duration of a window function")
                .hint("e.g. rate(metric, \"5m\")")),
            Value::Tuple(_) | Value::Empty => Err(self.err(pos, "unsupported value")),
        }
    }

    fn metric_name(&self, name: &str, pos: usize) -> Result<(), ExprError> {
        if is_metric_name(name) {
            return Ok(());
        }
        let mut e = self.err(pos, format!("`{name}` is not a valid metric name (names match [a-zA-Z_][a-zA-Z0-9_]*)"));
        if humantime::parse_duration(name).is_ok() {
            e = e.hint(format!("durations are quoted strings: \"{name}\""));
        }
        Err(e)
    }

    /// A function call `name(args)`; `n` is the FunctionIdentifier node at token `pos`.
    fn call(&mut self, name: &str, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        let found = FUNCTIONS.iter().find(|(f, _, _)| *f == name);
        let [paren] = n.children() else {
            return Err(self.err(pos, format!("`{name}` has no arguments")));
        };
        if !matches!(paren.operator(), Operator::RootNode) {
            // evalexpr reads `name x` as a call: what the user missed is more likely an operator.
            return Err(match found {
                Some(_) => self.err(pos, format!("`{name}` must be called with parentheses: `{name}(…)`")),
                None => self.err(pos, format!("missing operator after `{name}`")),
            });
        }
        let Some(&(_, func, signature)) = found else {
            let mut e = self.err(pos, format!("unknown function `{name}`"));
            e.hint = Some(match did_you_mean(name) {
                Some(f) => format!("did you mean `{f}`?"),
                None => "see the function list in SPEC §3.1".to_string(),
            });
            return Err(e);
        };
        // Arguments with the index of their first token; `name` itself is token `pos`.
        let mut args: Vec<(&Node, usize)> = Vec::new();
        let mut next = pos + 1;
        match paren.children() {
            [] => {}
            [tuple] if matches!(tuple.operator(), Operator::Tuple) => {
                for a in tuple.children() {
                    if a.children().is_empty() {
                        return Err(self.err(next, format!("empty argument in call of `{name}`")));
                    }
                    args.push((a, next));
                    next += count(a) + 1;
                }
                next -= 1;
            }
            [single] => {
                args.push((single, next));
                next += count(single);
            }
            _ => return Err(self.err(pos, "missing operator between two operands")),
        }
        let tokens = next - pos;
        let offset = self.at(pos);
        let got = args.len();
        let arity_error = move || {
            let takes = match func {
                Func::MinMax(..) => "1 or 2 arguments".to_string(),
                _ => match signature.matches(',').count() + 1 {
                    1 => "1 argument".to_string(),
                    n => format!("{n} arguments"),
                },
            };
            ExprError { message: format!("`{name}` takes {takes}, got {got}"), hint: None, offset }
                .hint(format!("usage: {signature}"))
        };
        let arity = move |ok: bool| if ok { Ok(()) } else { Err(arity_error()) };
        let typed = match func {
            Func::Window(f) => {
                arity(args.len() == 2)?;
                let slot = self.metric_arg(name, 1, args[0], SlotKind::Series)?;
                let d = self.duration_arg(name, 2, args[1])?;
                Typed::Num(Num::Window(f, slot, d))
            }
            Func::Quantile => {
                arity(args.len() == 3)?;
                let q = self.number_arg(name, 1, args[0])?;
                let slot = self.metric_arg(name, 2, args[1], SlotKind::Series)?;
                let d = self.duration_arg(name, 3, args[2])?;
                Typed::Num(Num::Quantile(Box::new(q), slot, d))
            }
            Func::PredictLinear => {
                arity(args.len() == 3)?;
                let slot = self.metric_arg(name, 1, args[0], SlotKind::Series)?;
                let d = self.duration_arg(name, 2, args[1])?;
                let s = self.number_arg(name, 3, args[2])?;
                Typed::Num(Num::PredictLinear(slot, d, Box::new(s)))
            }
            Func::TimeTo => {
                arity(args.len() == 3)?;
                let slot = self.metric_arg(name, 1, args[0], SlotKind::Series)?;
                let limit = self.number_arg(name, 2, args[1])?;
                let d = self.duration_arg(name, 3, args[2])?;
                Typed::Num(Num::TimeTo(slot, Box::new(limit), d))
            }
            Func::Age | Func::Present => {
                arity(args.len() == 1)?;
                let slot = self.metric_arg(name, 1, args[0], SlotKind::Series)?;
                Typed::Num(if matches!(func, Func::Age) { Num::Age(slot) } else { Num::Present(slot) })
            }
            Func::Agg(agg) => {
                arity(args.len() == 1)?;
                Typed::Num(Num::Agg(agg, self.metric_arg(name, 1, args[0], SlotKind::Aggregate)?))
            }
            Func::MinMax(agg, arith) => match args[..] {
                [m] => Typed::Num(Num::Agg(agg, self.metric_arg(name, 1, m, SlotKind::Aggregate)?)),
                [a, b] => {
                    let a = self.number_arg(name, 1, a)?;
                    let b = self.number_arg(name, 2, b)?;
                    Typed::Num(Num::Arith(arith, Box::new(a), Box::new(b)))
                }
                _ => return Err(arity_error()),
            },
            Func::Math(m) => {
                arity(args.len() == 1)?;
                Typed::Num(Num::Math(m, Box::new(self.number_arg(name, 1, args[0])?)))
            }
            Func::Clamp => {
                arity(args.len() == 3)?;
                let x = self.number_arg(name, 1, args[0])?;
                let lo = self.number_arg(name, 2, args[1])?;
                let hi = self.number_arg(name, 3, args[2])?;
                Typed::Num(Num::Clamp(Box::new([x, lo, hi])))
            }
        };
        Ok((typed, tokens))
    }

    /// An argument that must be a bare metric name; returns its slot.
    fn metric_arg(&mut self, func: &str, nth: usize, (a, pos): (&Node, usize), kind: SlotKind) -> Result<u32, ExprError> {
        let a = unwrap_parens(a);
        let Operator::VariableIdentifierRead { identifier } = a.operator() else {
            let what = if matches!(kind, SlotKind::Aggregate) { "an aggregation" } else { "a window function" };
            return Err(self
                .err(pos, format!("argument {nth} of `{func}` must be a metric name: `{func}` is {what}"))
                .hint(format!(
                    "{what} reads the samples of one metric, e.g. `{func}(http_requests_total{})`; put arithmetic outside the call",
                    if matches!(kind, SlotKind::Aggregate) || func == "age" || func == "present" { "" } else { ", \"5m\"" }
                )));
        };
        self.metric_name(identifier, pos)?;
        Ok(self.slot(identifier, kind))
    }

    /// An argument that must be a duration string literal, non-zero.
    fn duration_arg(&mut self, func: &str, nth: usize, (a, pos): (&Node, usize)) -> Result<Duration, ExprError> {
        let a = unwrap_parens(a);
        let text = self.tokens.get(pos).map_or("", |t| &*t.text);
        let Operator::Const { value: Value::String(s) } = a.operator() else {
            let mut e = self.err(pos, format!("argument {nth} of `{func}` must be a duration string such as \"5m\""));
            e.hint = match a.operator() {
                Operator::Const { value: Value::Int(_) | Value::Float(_) } => {
                    Some(format!("durations need a unit and quotes, e.g. \"{text}s\""))
                }
                Operator::VariableIdentifierRead { identifier } if humantime::parse_duration(identifier).is_ok() => {
                    Some(format!("quote it: \"{identifier}\""))
                }
                _ => None,
            };
            return Err(e);
        };
        let d = humantime::parse_duration(s).map_err(|why| {
            self.err(pos, format!("malformed duration \"{s}\" in `{func}`: {why}"))
                .hint("durations look like \"30s\", \"5m\", \"1h30m\"")
        })?;
        if d.is_zero() {
            return Err(self.err(pos, format!("the duration of `{func}` must be longer than zero")));
        }
        self.longest_window = self.longest_window.max(d);
        Ok(d)
    }

    /// An argument that must be a number-typed expression.
    fn number_arg(&mut self, func: &str, nth: usize, (a, pos): (&Node, usize)) -> Result<Num, ExprError> {
        match self.node(a, pos)?.0 {
            Typed::Num(x) => Ok(x),
            Typed::Cond(_) => Err(self.err(pos, format!("argument {nth} of `{func}` must be a number, not a condition"))),
        }
    }
}

fn plural(t: Type) -> &'static str {
    match t {
        Type::Number => "numbers",
        Type::Bool => "conditions",
    }
}
