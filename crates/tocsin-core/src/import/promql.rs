//! PromQL (as promql-parser reads it) into tocsin's expression language, or the reason why
//! not.
//!
//! Translated: selectors with matchers, `f(x[d])` window functions, `predict_linear`,
//! `quantile_over_time`, `histogram_quantile` over `rate(m_bucket[d])`, `sum/avg/min/max/
//! count [by (…)]` of a selector (the `by` labels become the rule's `by:`), arithmetic,
//! comparisons (as conditions), `and`/`or`/`unless` between conditions, and scalar math.
//! Everything else (vector matching with `on`/`ignoring`/`group_*`, `bool`, `absent`,
//! `offset`, subqueries, aggregations of anything but a selector, …) is refused with a
//! reason, which the import turns into a `query` source or a "not imported" entry.

use std::fmt::Write as _;
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorSelector};

/// A translated expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    /// The tocsin expression text.
    pub expr: String,
    /// The rule's `by:` labels, when the expression aggregates.
    pub by: Option<Vec<String>>,
    /// Where tocsin's result differs from Prometheus' for this expression, in words.
    pub notes: Vec<String>,
}

/// A comparison of a numeric side with a number at the top of an expression: what a
/// threshold family varies.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The numeric side, translated.
    pub value: String,
    /// True for `value > n`, false for `value < n`.
    pub above: bool,
    /// The threshold.
    pub n: f64,
}

/// Whether a translated node is a number or a condition.
#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Num,
    Cond,
}

struct Walk {
    by: Option<Vec<String>>,
    notes: Vec<String>,
}

/// Parses PromQL; the error is promql-parser's message.
pub fn parse(src: &str) -> Result<Expr, String> {
    parser::parse(src)
}

/// Translates a parsed expression.
pub fn translate(e: &Expr) -> Result<Translated, String> {
    let mut w = Walk {
        by: None,
        notes: Vec::new(),
    };
    let (expr, _) = w.node(e)?;
    let mut reads = Vec::new();
    selectors(e, &mut reads);
    let joined = reads.iter().any(|(name, ms)| {
        reads.iter().any(|(n, other)| {
            n == name
                && other != ms
                && (ms.iter().any(|m| m.contains("=\"")) || other.iter().any(|m| m.contains("=\"")))
        })
    });
    if joined {
        w.note("two reads of one metric with different `=` matchers are joined without the matched labels (Prometheus would need `ignoring(…)` and matches nothing here)");
    }
    Ok(Translated {
        expr,
        by: w.by,
        notes: w.notes,
    })
}

/// The top-level `x > n` / `x < n` (or `n < x` / `n > x`) of `e`, with `x` translated.
pub fn threshold(e: &Expr) -> Option<Threshold> {
    let Expr::Binary(b) = unparen(e) else { return None };
    if b.modifier
        .as_ref()
        .is_some_and(|m| m.return_bool || m.matching.is_some())
    {
        return None;
    }
    let op = b.op.to_string();
    let (side, n, above): (&Expr, f64, bool) = match (number(&b.lhs), number(&b.rhs), op.as_str()) {
        (None, Some(n), ">") => (&b.lhs, n, true),
        (None, Some(n), "<") => (&b.lhs, n, false),
        (Some(n), None, "<") => (&b.rhs, n, true),
        (Some(n), None, ">") => (&b.rhs, n, false),
        _ => return None,
    };
    let mut w = Walk {
        by: None,
        notes: Vec::new(),
    };
    match w.node(side) {
        Ok((value, Ty::Num)) => Some(Threshold { value, above, n }),
        _ => None,
    }
}

/// The top-level `x > n` / `x < n` of `e` with `x` left in PromQL (printed back): for an
/// alert whose `x` runs in the datasource while the comparison stays local.
pub fn split_threshold(e: &Expr) -> Option<(String, bool, f64)> {
    let Expr::Binary(b) = unparen(e) else { return None };
    if b.modifier.as_ref().is_some_and(|m| m.return_bool) {
        return None;
    }
    match (number(&b.lhs), number(&b.rhs), b.op.to_string().as_str()) {
        (None, Some(n), ">") => Some((b.lhs.to_string(), true, n)),
        (None, Some(n), "<") => Some((b.lhs.to_string(), false, n)),
        (Some(n), None, "<") => Some((b.rhs.to_string(), true, n)),
        (Some(n), None, ">") => Some((b.rhs.to_string(), false, n)),
        _ => None,
    }
}

/// What Prometheus shows as the value of an alert: the left side of its leftmost
/// comparison (through `and`/`or`/`unless`), translated.
pub fn shown(e: &Expr) -> Option<String> {
    let Expr::Binary(b) = unparen(e) else { return None };
    let op = b.op.to_string();
    if matches!(op.as_str(), "and" | "or" | "unless") {
        return shown(&b.lhs);
    }
    if !matches!(op.as_str(), ">" | "<" | ">=" | "<=" | "==" | "!=") {
        return None;
    }
    let mut w = Walk {
        by: None,
        notes: Vec::new(),
    };
    match w.node(&b.lhs) {
        Ok((v, Ty::Num)) => Some(v),
        _ => None,
    }
}

fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// A number literal, negative ones included.
fn number(e: &Expr) -> Option<f64> {
    match unparen(e) {
        Expr::NumberLiteral(n) => Some(n.val),
        Expr::Unary(u) => number(&u.expr).map(|v| -v),
        _ => None,
    }
}

/// `d` as a tocsin duration string: `"5m"`, `"1h30m"`, `"90s"`.
pub fn duration(d: Duration) -> String {
    let mut s = d.as_secs();
    let ms = d.subsec_millis();
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= len {
            let _ = write!(out, "{}{unit}", s / len);
            s %= len;
        }
    }
    if s > 0 || (out.is_empty() && ms == 0) {
        let _ = write!(out, "{s}s");
    }
    if ms > 0 {
        let _ = write!(out, "{ms}ms");
    }
    out
}

/// A number as tocsin's expression parser reads it back exactly.
fn num_text(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Err(format!("the number {v} has no tocsin spelling"));
    }
    let s = format!("{v}");
    Ok(if v < 0.0 { format!("({s})") } else { s })
}

fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn matcher_text(m: &Matcher) -> String {
    let op = match &m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    };
    format!("{}{op}{}", m.name, quote(&m.value))
}

impl Walk {
    fn node(&mut self, e: &Expr) -> Result<(String, Ty), String> {
        match e {
            Expr::NumberLiteral(n) => Ok((num_text(n.val)?, Ty::Num)),
            Expr::Paren(p) => {
                let (inner, ty) = self.node(&p.expr)?;
                Ok((format!("({inner})"), ty))
            }
            Expr::Unary(u) => match self.node(&u.expr)? {
                (inner, Ty::Num) => Ok((format!("-({inner})"), Ty::Num)),
                _ => Err("a negated condition".into()),
            },
            Expr::VectorSelector(v) => Ok((selector(v)?, Ty::Num)),
            Expr::MatrixSelector(_) => Err("a range selector outside a window function".into()),
            Expr::Subquery(_) => Err("a subquery (`[range:step]`)".into()),
            Expr::StringLiteral(_) => Err("a string value".into()),
            Expr::Call(c) => self.call(c).map(|s| (s, Ty::Num)),
            Expr::Aggregate(a) => self.aggregate(a).map(|s| (s, Ty::Num)),
            Expr::Binary(b) => self.binary(b),
            Expr::Extension(_) => Err("an extension expression".into()),
        }
    }

    fn binary(&mut self, b: &BinaryExpr) -> Result<(String, Ty), String> {
        let op = b.op.to_string();
        if let Some(m) = &b.modifier {
            if m.return_bool {
                return Err(format!("`{op} bool`, a comparison that yields 0 or 1"));
            }
            match &m.matching {
                Some(LabelModifier::Include(l)) => {
                    return Err(format!("vector matching `on({})`", l.labels.join(", ")));
                }
                Some(LabelModifier::Exclude(l)) if !l.labels.is_empty() => {
                    return Err(format!("vector matching `ignoring({})`", l.labels.join(", ")));
                }
                _ => {}
            }
            if m.card.labels().is_some_and(|l| !l.labels.is_empty())
                || matches!(
                    m.card,
                    parser::VectorMatchCardinality::ManyToOne(_) | parser::VectorMatchCardinality::OneToMany(_)
                )
            {
                return Err("`group_left`/`group_right` many-to-one matching".into());
            }
        }
        let (l, lt) = self.node(&b.lhs)?;
        let (r, rt) = self.node(&b.rhs)?;
        match (op.as_str(), lt, rt) {
            ("+" | "-" | "*" | "/" | "%" | "^", Ty::Num, Ty::Num) => Ok((format!("{l} {op} {r}"), Ty::Num)),
            ("atan2", _, _) => Err("`atan2`".into()),
            (">" | "<" | ">=" | "<=" | "==" | "!=", Ty::Num, Ty::Num) => Ok((format!("{l} {op} {r}"), Ty::Cond)),
            ("and", Ty::Cond, Ty::Cond) => Ok((format!("{l} && {r}"), Ty::Cond)),
            ("or", Ty::Cond, Ty::Cond) => {
                self.note("`or` of two conditions fires while either holds; Prometheus also keeps the series of both sides apart");
                Ok((format!("({l} || {r})"), Ty::Cond))
            }
            ("unless", Ty::Cond, Ty::Cond) => Ok((format!("{l} && !({r})"), Ty::Cond)),
            ("and" | "or" | "unless", _, _) => Err(format!(
                "`{op}` over a series that is not a comparison (a set operation)"
            )),
            (_, _, _) => Err(format!("a filtering comparison used as a number around `{op}`")),
        }
    }

    fn note(&mut self, n: &str) {
        if !self.notes.iter().any(|x| x == n) {
            self.notes.push(n.to_string());
        }
    }

    fn aggregate(&mut self, a: &AggregateExpr) -> Result<String, String> {
        let op = a.op.to_string();
        if !matches!(op.as_str(), "sum" | "avg" | "min" | "max" | "count") {
            return Err(format!("the aggregation `{op}`"));
        }
        let by = match &a.modifier {
            None => Vec::new(),
            Some(LabelModifier::Include(l)) => l.labels.clone(),
            Some(LabelModifier::Exclude(l)) => {
                return Err(format!("`{op} without ({})`", l.labels.join(", ")));
            }
        };
        let Expr::VectorSelector(v) = unparen(&a.expr) else {
            return Err(format!(
                "`{op}` of an expression that is not a plain selector (tocsin aggregates current values of one metric)"
            ));
        };
        match &self.by {
            Some(b) if *b != by => return Err("aggregations with different `by` labels in one expression".into()),
            _ => self.by = Some(by),
        }
        Ok(format!("{op}({})", selector(v)?))
    }

    fn call(&mut self, c: &Call) -> Result<String, String> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| &**a).collect();
        let range = |e: &Expr| -> Result<(String, String), String> {
            match unparen(e) {
                Expr::MatrixSelector(m) => Ok((selector(&m.vs)?, duration(m.range))),
                Expr::Subquery(_) => Err(format!("`{name}` of a subquery")),
                _ => Err(format!("`{name}` of something that is not a range selector")),
            }
        };
        match (name, args.as_slice()) {
            (
                "rate" | "increase" | "delta" | "deriv" | "avg_over_time" | "min_over_time" | "max_over_time"
                | "sum_over_time" | "count_over_time" | "stddev_over_time" | "changes",
                [m],
            ) => {
                let (sel, d) = range(m)?;
                if matches!(name, "rate" | "increase") {
                    self.note("`rate`/`increase` are not extrapolated to the window's edges as in Prometheus: values can be a little lower");
                }
                Ok(format!("{name}({sel}, \"{d}\")"))
            }
            ("quantile_over_time", [q, m]) => {
                let (q, _) = self.num(q)?;
                let (sel, d) = range(m)?;
                Ok(format!("quantile_over_time({q}, {sel}, \"{d}\")"))
            }
            ("predict_linear", [m, s]) => {
                let (sel, d) = range(m)?;
                let (s, _) = self.num(s)?;
                Ok(format!("predict_linear({sel}, \"{d}\", {s})"))
            }
            ("histogram_quantile", [q, inner]) => {
                let (q, _) = self.num(q)?;
                match unparen(inner) {
                    Expr::Call(r) if r.func.name == "rate" && r.args.args.len() == 1 => {
                        let (sel, d) = range(&r.args.args[0])?;
                        Ok(format!("histogram_quantile({q}, {sel}, \"{d}\")"))
                    }
                    _ => Err(
                        "`histogram_quantile` over an aggregation (tocsin groups the buckets by every label but `le`)"
                            .into(),
                    ),
                }
            }
            ("abs" | "floor" | "ceil" | "sqrt" | "ln" | "log10" | "exp", [x]) => {
                let (x, _) = self.num(x)?;
                Ok(format!("{name}({x})"))
            }
            ("round", [x]) => {
                let (x, _) = self.num(x)?;
                Ok(format!("round({x})"))
            }
            ("clamp", [x, lo, hi]) => {
                let (x, _) = self.num(x)?;
                let (lo, _) = self.num(lo)?;
                let (hi, _) = self.num(hi)?;
                Ok(format!("clamp({x}, {lo}, {hi})"))
            }
            ("clamp_min", [x, lo]) => {
                let (x, _) = self.num(x)?;
                let (lo, _) = self.num(lo)?;
                Ok(format!("max({x}, {lo})"))
            }
            ("clamp_max", [x, hi]) => {
                let (x, _) = self.num(x)?;
                let (hi, _) = self.num(hi)?;
                Ok(format!("min({x}, {hi})"))
            }
            _ => Err(format!("the function `{name}`")),
        }
    }

    fn num(&mut self, e: &Expr) -> Result<(String, Ty), String> {
        match self.node(e)? {
            (s, Ty::Num) => Ok((s, Ty::Num)),
            _ => Err("a condition where a number is needed".into()),
        }
    }
}

/// Every selector `e` reads: (metric name, its matchers written out).
fn selectors(e: &Expr, out: &mut Vec<(String, Vec<String>)>) {
    let mut add = |v: &VectorSelector| {
        let ms = v
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(matcher_text)
            .collect();
        out.push((v.name.clone().unwrap_or_default(), ms));
    };
    match e {
        Expr::VectorSelector(v) => add(v),
        Expr::MatrixSelector(m) => add(&m.vs),
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Aggregate(a) => selectors(&a.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// A selector as a tocsin metric read with matchers.
fn selector(v: &VectorSelector) -> Result<String, String> {
    if v.offset.is_some() {
        return Err("`offset`".into());
    }
    if v.at.is_some() {
        return Err("the `@` modifier".into());
    }
    if !v.matchers.or_matchers.is_empty() {
        return Err("`or` between label matchers".into());
    }
    let name = match &v.name {
        Some(n) => n.clone(),
        None => return Err("a selector without a metric name".into()),
    };
    let ms: Vec<&Matcher> = v.matchers.matchers.iter().filter(|m| m.name != "__name__").collect();
    if v.matchers
        .matchers
        .iter()
        .any(|m| m.name == "__name__" && m.value != name)
    {
        return Err("a `__name__` matcher".into());
    }
    if ms.is_empty() {
        return Ok(name);
    }
    let list: Vec<String> = ms.iter().map(|m| matcher_text(m)).collect();
    Ok(format!("{name}{{{}}}", list.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str) -> Result<String, String> {
        translate(&parse(src).unwrap()).map(|t| t.expr)
    }

    #[test]
    fn translates_what_tocsin_evaluates() {
        let cases = [
            ("up == 0", "up == 0"),
            (r#"rate(x{code=~"5.."}[5m]) > 1"#, r#"rate(x{code=~"5.."}, "5m") > 1"#),
            (
                "predict_linear(d[6h], 4*3600) < 0",
                r#"predict_linear(d, "6h", 4 * 3600) < 0"#,
            ),
            ("a / b * 100 < 15 and c == 0", "a / b * 100 < 15 && c == 0"),
            (
                "histogram_quantile(0.99, rate(h_bucket[5m])) > 1",
                r#"histogram_quantile(0.99, h_bucket, "5m") > 1"#,
            ),
            ("clamp_min(a, 0)", "max(a, 0)"),
            ("job:x:rate5m > 1", "job:x:rate5m > 1"),
            ("-a", "-(a)"),
        ];
        for (src, want) in cases {
            assert_eq!(tr(src).as_deref(), Ok(want), "{src}");
        }
        let t = translate(&parse(r#"(m{type="vms"} - m{type="rss"}) / m{type="vms"} > 0.5"#).unwrap()).unwrap();
        assert!(
            t.notes.iter().any(|n| n.contains("joined without the matched labels")),
            "{:?}",
            t.notes
        );
        assert!(
            translate(&parse(r#"m{type="vms"} > 1"#).unwrap())
                .unwrap()
                .notes
                .is_empty()
        );
        let t = translate(&parse("sum by (job) (up) < 1").unwrap()).unwrap();
        assert_eq!(t.expr, "sum(up) < 1");
        assert_eq!(t.by, Some(vec!["job".to_string()]));
    }

    #[test]
    fn refuses_what_it_cannot_evaluate_with_a_reason() {
        for (src, reason) in [
            ("a / on(x) b", "on(x)"),
            ("a * ignoring(x) group_left b", "ignoring(x)"),
            ("absent(up)", "absent"),
            ("a offset 5m", "offset"),
            ("max_over_time(a[1h:5m])", "subquery"),
            ("sum(rate(a[5m]))", "plain selector"),
            ("a > bool 1", "bool"),
            ("a and b", "set operation"),
            ("sum by (a) (x) / sum by (b) (y)", "different"),
        ] {
            let e = tr(src).expect_err(src);
            assert!(e.contains(reason), "{src}: {e}");
        }
    }

    #[test]
    fn finds_the_threshold_of_a_family() {
        let t = threshold(&parse("a / b * 100 > 80").unwrap()).unwrap();
        assert_eq!(
            t,
            Threshold {
                value: "a / b * 100".into(),
                above: true,
                n: 80.0
            }
        );
        let t = threshold(&parse("5 > free").unwrap()).unwrap();
        assert!(!t.above);
        assert!(threshold(&parse("a > 1 and b > 2").unwrap()).is_none());
        assert!(threshold(&parse("a >= 1").unwrap()).is_none());
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
