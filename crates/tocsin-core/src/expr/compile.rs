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
use super::matchers::{self, LabelMatcher, MatchOp, Selector};
use super::stats::WinFn;
use super::{ExprError, Slot, SlotKind, Type};

/// Deepest accepted evalexpr tree, not counting the `RootNode`s and tuples that parentheses
/// and argument lists add: bounds the recursion of this compiler and of the evaluator.
/// Everything [`lex::MAX_DEPTH`] admits fits, except absurdly long operator chains.
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
    pub aged: Vec<u32>,
}

/// Compiles `src`.
pub(super) fn compile(src: &str) -> Result<Compiled, ExprError> {
    lex::check_len(src)?;
    let (text, selectors) = matchers::extract(src)?;
    if let Some(e) = promql_range(&text) {
        return Err(e);
    }
    let tokens = lex::scan(&text)?;
    let tree = evalexpr::build_operator_tree(&text).map_err(|e| parse_error(e, src))?;
    if depth(&tree) > MAX_TREE_DEPTH {
        return Err(ExprError::new(format!(
            "expression nests too deeply (more than {MAX_TREE_DEPTH} levels of operators)"
        ))
        .hint("simplify it, or split it into a recording rule and an alert that reads it"));
    }
    if tree.children().is_empty() {
        return Err(ExprError::new("empty expression").hint("write a formula such as `cpu_usage > 90`"));
    }
    let mut c = Compiler {
        tokens: &tokens,
        selectors,
        slots: Vec::new(),
        longest_window: Duration::ZERO,
        aged: Vec::new(),
    };
    let (root, _) = c.node(&tree, 0)?;
    let mut slots = c.slots;
    let fixed: Vec<Vec<String>> = slots
        .iter()
        .map(|s| {
            let other_read = slots.iter().any(|o| o.metric == s.metric && o.matchers != s.matchers);
            if !other_read {
                return Vec::new();
            }
            s.matchers
                .iter()
                .filter(|m| m.op == MatchOp::Equal)
                .map(|m| m.label.clone())
                .collect()
        })
        .collect();
    for (s, f) in slots.iter_mut().zip(fixed) {
        s.join_without = f;
    }
    // No shrinking here: `Expr::compile` moves both into exact-sized slices.
    Ok(Compiled {
        root,
        slots,
        longest_window: c.longest_window,
        aged: c.aged,
    })
}

/// Depth of an evalexpr tree in operators, operands and calls, measured without recursion
/// (the tree may be very deep).
fn depth(root: &Node) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 0usize)];
    while let Some((n, d)) = stack.pop() {
        let d = d + usize::from(!matches!(n.operator(), Operator::RootNode | Operator::Tuple));
        max = max.max(d);
        stack.extend(n.children().iter().map(|c| (c, d)));
    }
    max
}

/// Maps evalexpr's parse errors (those the token scan did not already catch) to messages;
/// `src` is the expression as written, for hints about PromQL-only syntax.
fn parse_error(e: evalexpr::EvalexprError, src: &str) -> ExprError {
    use evalexpr::EvalexprError as E;
    match e {
        E::AppendedToLeafNode | E::MissingOperatorOutsideOfBrace | E::PrecedenceViolation => {
            let e = ExprError::new("missing operator between two operands");
            match promql_hint(src) {
                Some((at, hint)) => e.hint(hint).at(at),
                None => e.hint("e.g. `a b` should be `a * b` or `a > b`; a call is `name(args)`"),
            }
        }
        E::UnmatchedLBrace => ExprError::new("unclosed `(`"),
        E::UnmatchedRBrace => ExprError::new("unmatched `)`"),
        other => ExprError::new(format!("cannot parse expression: {other}")),
    }
}

/// Where PromQL-only syntax starts in `src` and what tocsin spells instead, for the
/// first such construct found.
pub(super) fn promql_hint(src: &str) -> Option<(usize, String)> {
    const IMPORT: &str = "`tocsin import prometheus` translates whole Prometheus rule files";
    let words = word_offsets(src);
    for (k, &(at, w)) in words.iter().enumerate() {
        let next = words.get(k + 1).map(|&(_, n)| n);
        let hint = match (w, next) {
            ("by" | "without", _) if k > 0 => format!(
                "`{w} (…)` is PromQL; in tocsin an aggregation such as `sum(m)` groups by the rule's `by: [labels]` (docs/rules.md, \"Instances, selectors and joins\"); {IMPORT}"
            ),
            ("on" | "ignoring" | "group_left" | "group_right", _) => format!(
                "`{w}(…)` is PromQL vector matching; tocsin joins the metrics of an expression on their common labels by itself (docs/rules.md, \"Instances, selectors and joins\"); what needs `{w}` can stay in PromQL through a `query` source, which {IMPORT} sets up"
            ),
            ("and", _) => format!("PromQL's `and` is `&&` in tocsin; {IMPORT}"),
            ("or", _) => format!("PromQL's `or` is `||` in tocsin; {IMPORT}"),
            ("unless", _) => format!("PromQL's `unless` is `&& !(…)` in tocsin; {IMPORT}"),
            ("offset", _) => {
                format!("tocsin has no `offset`: compare with a window function such as `delta(m, \"1h\")`; {IMPORT}")
            }
            _ => continue,
        };
        return Some((at, hint));
    }
    None
}

/// A PromQL range `x[5m]` (or subquery `x[1h:5m]`): tocsin has no `[`, the window is a
/// function's duration argument.
fn promql_range(src: &str) -> Option<ExprError> {
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' => {
                let metric = word_offsets(&src[..i]).last().map_or("m", |&(_, w)| w).to_string();
                let range = src[i + 1..].split(']').next().unwrap_or("5m").trim().to_string();
                return Some(
                    ExprError::new("`[…]` is PromQL range syntax, which tocsin does not have")
                        .hint(format!(
                            "tocsin gives the window to the function: `rate({metric}, \"{range}\")`, `avg_over_time({metric}, \"{range}\")`; `tocsin import prometheus` translates whole Prometheus rule files"
                        ))
                        .at(i),
                );
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The identifier-like words of `src` outside string literals, with their offsets.
fn word_offsets(src: &str) -> Vec<(usize, &str)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b.is_ascii_alphabetic() || b == b'_' || b == b':' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                i += 1;
            }
            out.push((start, &src[start..i]));
        } else {
            i += 1;
        }
    }
    out
}

struct Compiler<'a> {
    tokens: &'a [Token],
    /// Label matchers by the offset of the metric name they follow.
    selectors: Vec<Selector>,
    slots: Vec<Slot>,
    longest_window: Duration,
    aged: Vec<u32>,
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
    HistogramQuantile,
}

/// Every function, with its signature for messages.
const FUNCTIONS: &[(&str, Func, &str)] = &[
    ("rate", Func::Window(WinFn::Rate), "rate(metric, \"5m\")"),
    ("increase", Func::Window(WinFn::Increase), "increase(metric, \"5m\")"),
    ("delta", Func::Window(WinFn::Delta), "delta(metric, \"5m\")"),
    ("deriv", Func::Window(WinFn::Deriv), "deriv(metric, \"5m\")"),
    (
        "predict_linear",
        Func::PredictLinear,
        "predict_linear(metric, \"1h\", seconds)",
    ),
    ("time_to", Func::TimeTo, "time_to(metric, limit, \"1h\")"),
    (
        "avg_over_time",
        Func::Window(WinFn::Avg),
        "avg_over_time(metric, \"5m\")",
    ),
    (
        "min_over_time",
        Func::Window(WinFn::Min),
        "min_over_time(metric, \"5m\")",
    ),
    (
        "max_over_time",
        Func::Window(WinFn::Max),
        "max_over_time(metric, \"5m\")",
    ),
    (
        "sum_over_time",
        Func::Window(WinFn::Sum),
        "sum_over_time(metric, \"5m\")",
    ),
    (
        "count_over_time",
        Func::Window(WinFn::Count),
        "count_over_time(metric, \"5m\")",
    ),
    (
        "stddev_over_time",
        Func::Window(WinFn::Stddev),
        "stddev_over_time(metric, \"5m\")",
    ),
    (
        "quantile_over_time",
        Func::Quantile,
        "quantile_over_time(0.95, metric, \"5m\")",
    ),
    ("ci_low", Func::Window(WinFn::CiLow), "ci_low(metric, \"5m\")"),
    ("ci_high", Func::Window(WinFn::CiHigh), "ci_high(metric, \"5m\")"),
    ("zscore", Func::Window(WinFn::Zscore), "zscore(metric, \"1h\")"),
    ("changes", Func::Window(WinFn::Changes), "changes(metric, \"5m\")"),
    (
        "histogram_quantile",
        Func::HistogramQuantile,
        "histogram_quantile(0.99, metric_bucket, \"5m\")",
    ),
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

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, as in Prometheus
/// (recording rules are conventionally named `level:metric:operations`).
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
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

/// How a function argument is compiled.
#[derive(Clone, Copy)]
enum Arg {
    /// A bare metric name, read as a slot of this kind.
    Metric(SlotKind),
    /// A duration string literal.
    Duration,
    /// Any number-typed expression.
    Number,
}

/// The arguments `func` takes when called with `n` of them; `None` when `n` is wrong.
fn signature_of(func: Func, n: usize) -> Option<&'static [Arg]> {
    use Arg::{Duration as D, Metric as M, Number as N};
    const SERIES: Arg = M(SlotKind::Series);
    const GROUP: Arg = M(SlotKind::Aggregate);
    const BUCKETS: Arg = M(SlotKind::Buckets);
    let args: &'static [Arg] = match func {
        Func::Window(_) => &[SERIES, D],
        Func::Quantile => &[N, SERIES, D],
        Func::PredictLinear => &[SERIES, D, N],
        Func::TimeTo => &[SERIES, N, D],
        Func::Age | Func::Present => &[SERIES],
        Func::Agg(_) => &[GROUP],
        Func::MinMax(..) if n == 1 => &[GROUP],
        Func::MinMax(..) => &[N, N],
        Func::Math(_) => &[N],
        Func::Clamp => &[N, N, N],
        Func::HistogramQuantile => &[N, BUCKETS, D],
    };
    (args.len() == n).then_some(args)
}

/// Builds the node for a call whose arguments are compiled: the metric's slot, the
/// duration, and the number arguments in order (as many as [`signature_of`] asked for).
fn assemble(func: Func, slot: u32, d: Duration, nums: Vec<Num>) -> Option<Num> {
    let mut nums = nums.into_iter().map(Box::new);
    Some(match func {
        Func::Window(f) => Num::Window(f, slot, d),
        Func::Quantile => Num::Quantile(nums.next()?, slot, d),
        Func::PredictLinear => Num::PredictLinear(slot, d, nums.next()?),
        Func::TimeTo => Num::TimeTo(slot, nums.next()?, d),
        Func::Age => Num::Age(slot),
        Func::Present => Num::Present(slot),
        Func::Agg(agg) => Num::Agg(agg, slot),
        Func::MinMax(agg, arith) => match (nums.next(), nums.next()) {
            (Some(a), Some(b)) => Num::Arith(arith, a, b),
            _ => Num::Agg(agg, slot),
        },
        Func::Math(m) => Num::Math(m, nums.next()?),
        Func::Clamp => Num::Clamp(Box::new([*nums.next()?, *nums.next()?, *nums.next()?])),
        Func::HistogramQuantile => Num::HistQuantile(nums.next()?, slot, d),
    })
}

/// Combines two compiled operands under a binary operator; on a type mismatch returns the
/// operand types for the message.
fn combine(op: &Operator, l: Typed, r: Typed) -> Result<Typed, (Type, Type)> {
    use Operator as O;
    Ok(match (op, l, r) {
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
            match (a, b) {
                (Num::Current(slot), Num::Const(c)) => Typed::Cond(Cond::CmpCurrent(cmp, slot, c)),
                (a, b) => Typed::Cond(Cond::Cmp(cmp, Box::new(a), Box::new(b))),
            }
        }
        (O::Eq | O::Neq, Typed::Cond(a), Typed::Cond(b)) => {
            Typed::Cond(Cond::Same(matches!(op, O::Neq), Box::new(a), Box::new(b)))
        }
        (O::And, Typed::Cond(a), Typed::Cond(b)) => Typed::Cond(Cond::And(Box::new(a), Box::new(b))),
        (O::Or, Typed::Cond(a), Typed::Cond(b)) => Typed::Cond(Cond::Or(Box::new(a), Box::new(b))),
        (_, l, r) => return Err((l.ty(), r.ty())),
    })
}

// The recursive functions (`node`, `prefix`, `binary`, `call`, `number_arg`) stay small and
// leave message building to separate functions: in debug builds every local of a function
// takes stack space for the whole call, and the recursion depth is what the caps bound.
impl Compiler<'_> {
    /// Byte offset of the token at index `pos`, if the scan and the tree agree it exists.
    fn at(&self, pos: usize) -> Option<usize> {
        self.tokens.get(pos).map(|t| t.offset)
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            message: message.into(),
            hint: None,
            offset: self.at(pos),
        }
    }

    /// The matchers written after the metric name at token `pos` (none when there are none).
    fn matchers_at(&self, pos: usize) -> Vec<LabelMatcher> {
        let Some(at) = self.at(pos) else { return Vec::new() };
        self.selectors
            .iter()
            .find(|(o, _)| *o == at)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn slot(&mut self, metric: &str, kind: SlotKind, pos: usize) -> u32 {
        let matchers = self.matchers_at(pos);
        let i = match self
            .slots
            .iter()
            .position(|s| s.metric == metric && s.kind == kind && s.matchers == matchers)
        {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    metric: metric.to_string(),
                    kind,
                    matchers,
                    join_without: Vec::new(),
                });
                self.slots.len() - 1
            }
        };
        // At most MAX_LEN identifiers fit in an expression, far below u32::MAX.
        i as u32
    }

    /// Compiles `n`, whose first token is at index `pos`; returns it and its token count.
    fn node(&mut self, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        use Operator as O;
        match n.operator() {
            O::RootNode => match n.children() {
                [only] => self.node(only, pos),
                _ => Err(self.bad_parens(n, pos)),
            },
            O::Const { value } => Ok((self.constant(value, pos)?, 1)),
            O::VariableIdentifierRead { identifier } => {
                self.metric_name(identifier, pos)?;
                Ok((
                    Typed::Num(Num::Current(self.slot(identifier, SlotKind::Series, pos))),
                    1,
                ))
            }
            O::FunctionIdentifier { identifier } => self.call(identifier, n, pos),
            O::Neg | O::Not => self.prefix(n, pos),
            O::Add
            | O::Sub
            | O::Mul
            | O::Div
            | O::Mod
            | O::Exp
            | O::Eq
            | O::Neq
            | O::Gt
            | O::Lt
            | O::Geq
            | O::Leq
            | O::And
            | O::Or => self.binary(n, pos),
            _ => Err(self.misplaced(n, pos)),
        }
    }

    fn prefix(&mut self, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        let [child] = n.children() else {
            return Err(self.missing_operand(n, pos));
        };
        let neg = matches!(n.operator(), Operator::Neg);
        let (c, k) = self.node(child, pos + 1)?;
        let typed = match (neg, c) {
            (true, Typed::Num(x)) => Typed::Num(Num::Neg(Box::new(x))),
            (false, Typed::Cond(x)) => Typed::Cond(Cond::Not(Box::new(x))),
            _ => return Err(self.prefix_type_error(neg, child, pos)),
        };
        Ok((typed, k + 1))
    }

    fn binary(&mut self, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        let [left, right] = n.children() else {
            return Err(self.missing_operand(n, pos));
        };
        let (l, nl) = self.node(left, pos)?;
        let (r, nr) = self.node(right, pos + nl + 1)?;
        match combine(n.operator(), l, r) {
            Ok(typed) => Ok((typed, nl + 1 + nr)),
            Err((lt, rt)) => Err(self.type_error(n.operator(), lt, rt, pos + nl)),
        }
    }

    /// A function call `name(args)`; `n` is the FunctionIdentifier node at token `pos`.
    fn call(&mut self, name: &str, n: &Node, pos: usize) -> Result<(Typed, usize), ExprError> {
        let (func, args, tokens) = self.call_args(name, n, pos)?;
        let (mut slot, mut d, mut nums) = (0, Duration::ZERO, Vec::new());
        for (i, (&(a, at), kind)) in args
            .iter()
            .zip(signature_of(func, args.len()).unwrap_or(&[]))
            .enumerate()
        {
            match kind {
                Arg::Metric(kind) => slot = self.metric_arg(name, i + 1, a, at, *kind)?,
                Arg::Duration => d = self.duration_arg(name, i + 1, a, at)?,
                Arg::Number => nums.push(self.number_arg(name, i + 1, a, at)?),
            }
        }
        if matches!(func, Func::Age) {
            self.aged.push(slot);
        }
        match assemble(func, slot, d, nums) {
            Some(num) => Ok((Typed::Num(num), tokens)),
            None => Err(self.err(pos, format!("wrong arguments for `{name}`"))),
        }
    }

    fn number_arg(&mut self, func: &str, nth: usize, a: &Node, pos: usize) -> Result<Num, ExprError> {
        match self.node(a, pos)?.0 {
            Typed::Num(x) => Ok(x),
            Typed::Cond(_) => Err(self.err(
                pos,
                format!("argument {nth} of `{func}` must be a number, not a condition"),
            )),
        }
    }

    /// Resolves a call's function and splits its arguments, each with the index of its first
    /// token; checks the arity. Also returns the tokens the call spans.
    #[allow(clippy::type_complexity)]
    fn call_args<'n>(
        &self,
        name: &str,
        n: &'n Node,
        pos: usize,
    ) -> Result<(Func, Vec<(&'n Node, usize)>, usize), ExprError> {
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
                None => "see the function list in docs/rules.md".to_string(),
            });
            return Err(e);
        };
        let mut args = Vec::new();
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
        if signature_of(func, args.len()).is_none() {
            let takes = match func {
                Func::MinMax(..) => "1 or 2 arguments".to_string(),
                _ => match signature.matches(',').count() + 1 {
                    1 => "1 argument".to_string(),
                    n => format!("{n} arguments"),
                },
            };
            return Err(self
                .err(pos, format!("`{name}` takes {takes}, got {}", args.len()))
                .hint(format!("usage: {signature}")));
        }
        Ok((func, args, next - pos))
    }

    fn constant(&self, value: &Value, pos: usize) -> Result<Typed, ExprError> {
        match value {
            Value::Int(i) => Ok(Typed::Num(Num::Const(*i as f64))),
            Value::Float(f) if f.is_finite() => Ok(Typed::Num(Num::Const(*f))),
            Value::Boolean(b) => Ok(Typed::Cond(Cond::Const(*b))),
            _ => Err(self.bad_constant(value, pos)),
        }
    }

    fn bad_constant(&self, value: &Value, pos: usize) -> ExprError {
        let text = self.tokens.get(pos).map_or("", |t| &*t.text);
        match value {
            Value::String(_) => self
                .err(pos, "a string is only allowed as the duration of a window function")
                .hint("e.g. rate(metric, \"5m\")"),
            Value::Float(_) => self
                .err(pos, format!("number `{text}` is not finite"))
                .hint("use a finite number; `inf` and `nan` are not metric names either"),
            _ => self.err(pos, "unsupported value"),
        }
    }

    fn metric_name(&self, name: &str, pos: usize) -> Result<(), ExprError> {
        if is_metric_name(name) {
            return Ok(());
        }
        let mut e = self.err(
            pos,
            format!("`{name}` is not a valid metric name (names match [a-zA-Z_:][a-zA-Z0-9_:]*)"),
        );
        if humantime::parse_duration(name).is_ok() {
            e = e.hint(format!("durations are quoted strings: \"{name}\""));
        } else if name.starts_with('$') {
            e = e.hint(
                "`$value` and `$labels` belong in annotations, where they are `{{ value }}` and `{{ labels.x }}`",
            );
        }
        Err(e)
    }

    /// An argument that must be a bare metric name; returns its slot.
    fn metric_arg(&mut self, func: &str, nth: usize, a: &Node, pos: usize, kind: SlotKind) -> Result<u32, ExprError> {
        let Operator::VariableIdentifierRead { identifier } = unwrap_parens(a).operator() else {
            let (what, example) = match kind {
                SlotKind::Aggregate => ("an aggregation", ""),
                SlotKind::Buckets => ("a histogram function", ", \"5m\""),
                SlotKind::Series if func == "age" || func == "present" => ("a window function", ""),
                SlotKind::Series => ("a window function", ", \"5m\""),
            };
            return Err(self
                .err(pos, format!("argument {nth} of `{func}` must be a metric name: `{func}` is {what}"))
                .hint(format!(
                    "{what} reads the samples of one metric, e.g. `{func}(http_requests_total{example})`; put arithmetic outside the call"
                )));
        };
        self.metric_name(identifier, pos)?;
        Ok(self.slot(identifier, kind, pos))
    }

    /// An argument that must be a non-zero duration string literal.
    fn duration_arg(&mut self, func: &str, nth: usize, a: &Node, pos: usize) -> Result<Duration, ExprError> {
        let a = unwrap_parens(a);
        let Operator::Const {
            value: Value::String(s),
        } = a.operator()
        else {
            let text = self.tokens.get(pos).map_or("", |t| &*t.text);
            let mut e = self.err(
                pos,
                format!("argument {nth} of `{func}` must be a duration string such as \"5m\""),
            );
            e.hint = match a.operator() {
                Operator::Const {
                    value: Value::Int(_) | Value::Float(_),
                } => Some(format!("durations need a unit and quotes, e.g. \"{text}s\"")),
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

    fn bad_parens(&self, n: &Node, pos: usize) -> ExprError {
        if n.children().is_empty() {
            self.err(pos, "empty parentheses `()`")
        } else {
            self.err(pos, "missing operator between two operands")
        }
    }

    /// An operator evalexpr kept with a missing operand (it keeps such nodes short a child).
    fn missing_operand(&self, n: &Node, pos: usize) -> ExprError {
        let text = op_text(n.operator());
        if matches!(n.operator(), Operator::Neg | Operator::Not) {
            return self.err(pos, format!("`{text}` is missing its operand"));
        }
        if self.tokens.get(pos).is_some_and(|t| &*t.text == text) {
            self.err(pos, format!("`{text}` is missing its left operand"))
        } else {
            self.err(
                pos + n.children().first().map_or(0, count),
                format!("`{text}` is missing its right operand"),
            )
        }
    }

    /// Assignments, chains and tuples: syntax evalexpr has and expressions do not.
    fn misplaced(&self, n: &Node, pos: usize) -> ExprError {
        let op_pos = pos + n.children().first().map_or(0, count);
        match n.operator() {
            Operator::Chain => self
                .err(op_pos, "`;` is not allowed: an expression is one formula")
                .hint("combine conditions with `&&` or `||`"),
            Operator::Tuple => self
                .err(op_pos, "`,` separates function arguments and is not allowed here")
                .hint("a list such as `(a, b)` is not a value"),
            Operator::Assign => self
                .err(op_pos, "`=` is assignment, which expressions cannot do")
                .hint("to compare, write `==`"),
            op => self.err(
                op_pos,
                format!("`{}` is assignment, which expressions cannot do", op_text(op)),
            ),
        }
    }

    fn prefix_type_error(&self, neg: bool, child: &Node, pos: usize) -> ExprError {
        if neg {
            return self.err(pos, "`-` needs a number, but its operand is a condition");
        }
        let e = self.err(pos, "`!` needs a condition, but its operand is a number");
        match unwrap_parens(child).operator() {
            Operator::FunctionIdentifier { identifier } if identifier == "present" => {
                e.hint("present() returns 1 or 0: write `present(m) == 0`")
            }
            _ => e.hint("compare it, e.g. `!(x > 0)` or `x <= 0`"),
        }
    }

    fn type_error(&self, op: &Operator, l: Type, r: Type, op_pos: usize) -> ExprError {
        use Operator as O;
        let text = op_text(op);
        let (want, hint) = match op {
            O::And | O::Or => (Type::Bool, Some("compare numbers first, e.g. `a > 0 && b > 0`")),
            O::Eq | O::Neq => {
                return self.err(
                    op_pos,
                    format!(
                        "`{text}` compares two numbers or two conditions, not {} with {}",
                        describe(l),
                        describe(r)
                    ),
                );
            }
            O::Lt | O::Leq | O::Gt | O::Geq => (Type::Number, None),
            _ => (
                Type::Number,
                Some("conditions are not numbers; tiers compare a numeric expr"),
            ),
        };
        let (side, got) = if l != want { ("left", l) } else { ("right", r) };
        let mut e = self.err(
            op_pos,
            format!(
                "`{text}` needs {} on both sides, but its {side} operand is {}",
                plural(want),
                describe(got)
            ),
        );
        e.hint = hint.map(str::to_string);
        e
    }
}

fn plural(t: Type) -> &'static str {
    match t {
        Type::Number => "numbers",
        Type::Bool => "conditions",
    }
}
