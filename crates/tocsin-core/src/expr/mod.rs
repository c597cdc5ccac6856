//! Expressions: compiles a rule's `expr` and evaluates it for one instance.
//!
//! Owns the expression language: syntax checks, static typing (number or condition), metric
//! names bound to slot indices, window functions, aggregations and the float-only,
//! short-circuit evaluator. evalexpr 11.3.1 is used only to parse; its tree is compiled into
//! this module's own form and its evaluator is never called.
//!
//! It must not touch I/O or a clock: time arrives in [`EvalCtx`], samples through [`Data`],
//! which the engine implements. It does not decide which series an instance reads (that is
//! the engine's join); it only says which metrics it reads and how ([`Slot`]).
//!
//! Semantics the specification leaves open, decided here:
//! - `rate` and `increase` are not extrapolated to the window edges as in Prometheus:
//!   `increase` is the sum of the rises between the samples inside the window (a drop is a
//!   counter reset, and the value after it counts as rise since the reset), and `rate` is
//!   that divided by the seconds between the window's first and last sample.
//! - `time_to` of an infinite limit is +inf (no line reaches it) and of a NaN one no data.
//! - `age(m)` skips stale markers: it is the time since the newest real sample, so it keeps
//!   growing after a target disappears. It ignores staleness and counts non-finite samples.
//! - `present(m)` is 1 when m has a current value, even a non-finite one.
//! - `zscore` and `stddev_over_time` use the population standard deviation (as Prometheus'
//!   `stddev_over_time`); `ci_low`/`ci_high` use the sample standard deviation.
//! - `quantile_over_time` follows Prometheus: q < 0 gives -inf, q > 1 gives +inf.
//! - `round` rounds ties up (towards +inf) like Prometheus; `min`/`max` of two numbers are
//!   NaN when either is; `clamp` with `lo > hi` is no data.
//! - `&&` and `||` evaluate left to right: a left side without data is no data even when the
//!   right side would have decided.
//! - Operator precedence and associativity are evalexpr's; note `2 ^ 3 ^ 2` is `(2 ^ 3) ^ 2`.

mod compile;
mod eval;
mod lex;
mod matchers;
mod stats;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::series::{Labels, Timestamp, Window};

pub use compile::is_metric_name;
pub use lex::{MAX_DEPTH, MAX_LEN};
pub use matchers::{LabelMatcher, MatchOp};

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Expr {
    root: compile::Typed,
    // Shared: a rule whose only expression is this one reads exactly these slots, and its
    // list is then this one (see [`Expr::shared_slots`]). Boxed slices: a compiled
    // expression lives as long as its rule set and never grows.
    slots: Arc<[Slot]>,
    longest_window: Duration,
    aged: Box<[u32]>,
    source: Box<str>,
}

/// The static type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// A number: compared against tiers, or recorded.
    Number,
    /// A condition: the rule has one implicit tier.
    Bool,
}

/// How an expression reads a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// One series of the metric per instance: bare reads and window functions.
    Series,
    /// Every series of the metric in the instance's `by:` group: `sum(m)` and the like.
    Aggregate,
    /// The bucket series of a classic histogram that share every label but `le`:
    /// `histogram_quantile(q, m_bucket, d)`.
    Buckets,
}

/// One metric the expression reads.
///
/// A metric read both plainly or in window functions (Series) and inside an aggregation such
/// as `sum(m)` (Aggregate) gets two slots. Slot indices are positions in [`Expr::slots`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The metric name.
    pub metric: String,
    /// How it is read.
    pub kind: SlotKind,
    /// The PromQL label matchers written on this read (`m{k="v"}`); only series they all
    /// select are read. Reads of one metric with different matchers are different slots.
    pub matchers: Vec<LabelMatcher>,
    /// Labels the instances are joined without: those an `=` matcher fixes, when the
    /// expression reads the same metric with other matchers too, so that
    /// `m{type="vms"} - m{type="rss"}` pairs the two series of each process.
    pub join_without: Vec<String>,
}

impl Slot {
    /// Whether this read selects a series with `labels`: every matcher written on it holds.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels.get(&m.label)))
    }
}

/// A compile error.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
    /// A byte offset into the expression source, when known.
    pub offset: Option<usize>,
}

impl ExprError {
    pub(crate) fn new(message: impl Into<String>) -> ExprError {
        ExprError {
            message: message.into(),
            hint: None,
            offset: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> ExprError {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn at(mut self, offset: usize) -> ExprError {
        self.offset = Some(offset);
        self
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(at) = self.offset {
            write!(f, " (at byte {at})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

/// What the evaluator reads for one rule instance.
///
/// Implemented by the engine. Both methods hand out borrowed windows so evaluation does not
/// allocate.
pub trait Data {
    /// The window of the single series `slot` (a [`SlotKind::Series`] slot) reads for this
    /// instance; `None` when there is none.
    fn series(&self, slot: usize) -> Option<&Window>;

    /// Calls `f` with the window of each series in this instance's aggregation group for
    /// `slot` (a [`SlotKind::Aggregate`] slot).
    fn group(&self, slot: usize, f: &mut dyn FnMut(&Window));

    /// Calls `f` with the `le` label and window of each bucket series of this instance's
    /// histogram for `slot` (a [`SlotKind::Buckets`] slot).
    fn buckets(&self, slot: usize, f: &mut dyn FnMut(&str, &Window));
}

/// The moment and rules of one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalCtx {
    /// The evaluation time; windows end here.
    pub now: Timestamp,
    /// How old a sample may be and still be a series' current value.
    pub staleness: Duration,
}

impl Expr {
    /// Compiles `src`, or explains why it is not a valid expression.
    ///
    /// Never panics, whatever `src` holds: input longer than [`MAX_LEN`] bytes or nested
    /// deeper than [`MAX_DEPTH`] is refused before the parser sees it.
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        let c = compile::compile(src)?;
        Ok(Expr {
            root: c.root,
            slots: c.slots.into(),
            longest_window: c.longest_window,
            aged: c.aged.into_boxed_slice(),
            source: src.into(),
        })
    }

    /// Whether the expression is a number or a condition.
    pub fn ty(&self) -> Type {
        self.root.ty()
    }

    /// The metrics the expression reads; [`Data`] is asked by index into this slice.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The same slots as [`Expr::slots`], for a caller that keeps them as long as the
    /// expression: a clone of this shares them instead of copying every metric name.
    pub fn shared_slots(&self) -> &Arc<[Slot]> {
        &self.slots
    }

    /// The metrics read through `age()`: their newest sample matters however old it is
    /// (a "has not reported for 10m" alert), so the series store must keep them.
    pub fn aged_metrics(&self) -> impl Iterator<Item = &str> {
        self.aged.iter().map(|&s| self.slots[s as usize].metric.as_str())
    }

    /// Longest window any window function reads (zero if none): the engine sizes series
    /// retention from it.
    pub fn longest_window(&self) -> Duration {
        self.longest_window
    }

    /// Evaluates the expression for one instance, without allocating.
    ///
    /// `None` means "no data". Conditions give 1.0 or 0.0. A NaN result is no data; ±inf is
    /// a value.
    pub fn eval<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> Option<f64> {
        match &self.root {
            compile::Typed::Num(n) => n.eval(ctx, data).filter(|v| !v.is_nan()),
            compile::Typed::Cond(c) => c.eval(ctx, data).map(|b| if b { 1.0 } else { 0.0 }),
        }
    }

    /// Evaluates the expression like [`Expr::eval`] and also gives the value to show for it:
    /// for a condition that is a comparison `a > b` (any of the six comparisons), `a`, as
    /// PromQL's filtering comparisons give; otherwise the value itself. The shown value is
    /// `None` whenever the expression has no data.
    pub fn eval_shown<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> (Option<f64>, Option<f64>) {
        let v = self.eval(ctx, data);
        let shown = match (&self.root, v) {
            (_, None) => None,
            (compile::Typed::Cond(c), Some(_)) => c.left_operand(ctx, data).or(v),
            (compile::Typed::Num(_), v) => v,
        };
        (v, shown)
    }

    /// The source text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }
}
