//! The compiled form and its evaluator.
//!
//! A typed tree of boxed nodes: numbers and conditions are separate node types, so the
//! evaluator never checks a type at run time, and metrics are slot indices bound at compile
//! time. Evaluation recurses once per node; the compiler bounds the depth.

use std::time::Duration;

use super::stats;
use super::{Data, EvalCtx};
use crate::series::{Window, is_stale_marker};

/// A number-valued node. `None` from [`Num::eval`] means "no data".
#[derive(Clone, Debug)]
pub(super) enum Num {
    Const(f64),
    /// A bare metric read: the current value of a Series slot.
    Current(u32),
    Neg(Box<Num>),
    Arith(Arith, Box<Num>, Box<Num>),
    Math(Math, Box<Num>),
    Clamp(Box<[Num; 3]>),
    /// A window function of one Series slot over the last `range`.
    Window(stats::WinFn, u32, Duration),
    Quantile(Box<Num>, u32, Duration),
    PredictLinear(u32, Duration, Box<Num>),
    TimeTo(u32, Box<Num>, Duration),
    /// An aggregation over the group of an Aggregate slot.
    Agg(Agg, u32),
    /// `histogram_quantile(q, m_bucket, d)` over the buckets of a Buckets slot.
    HistQuantile(Box<Num>, u32, Duration),
    Age(u32),
    Present(u32),
}

/// A condition node.
#[derive(Clone, Debug)]
pub(super) enum Cond {
    Const(bool),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Cmp(CmpOp, Box<Num>, Box<Num>),
    /// `metric <op> constant`, the most common alert condition, without the two boxed
    /// operands: it is a third of the cost of evaluating `m > 50`.
    CmpCurrent(CmpOp, u32, f64),
    /// `==` (false) or `!=` (true) between two conditions.
    Same(bool, Box<Cond>, Box<Cond>),
}

/// Binary number operators, the two-argument `min`/`max` included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Min,
    Max,
}

/// One-argument math functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Math {
    Abs,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Ln,
    Log10,
    Exp,
}

/// Comparisons of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// Aggregations across a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

impl Arith {
    /// `a op b`; `None` ("no data") for a division or modulo by zero, which f64 would turn
    /// into ±inf or NaN and a tier would then compare against.
    pub(super) fn apply(self, a: f64, b: f64) -> Option<f64> {
        Some(match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div | Arith::Rem if b == 0.0 => return None,
            Arith::Div => a / b,
            Arith::Rem => a % b,
            Arith::Pow => a.powf(b),
            // f64::min would drop a NaN operand and hide that the input was garbage.
            Arith::Min if a.is_nan() || b.is_nan() => f64::NAN,
            Arith::Max if a.is_nan() || b.is_nan() => f64::NAN,
            Arith::Min => a.min(b),
            Arith::Max => a.max(b),
        })
    }
}

impl Math {
    /// `f(x)`; `None` ("no data") outside the domain: `ln`/`log10` of a non-positive number
    /// (f64 gives -inf or NaN) and `sqrt` of a negative one (NaN).
    pub(super) fn apply(self, x: f64) -> Option<f64> {
        Some(match self {
            Math::Abs => x.abs(),
            // Prometheus rounds ties up (towards +inf), not away from zero.
            Math::Round => (x + 0.5).floor(),
            Math::Floor => x.floor(),
            Math::Ceil => x.ceil(),
            Math::Sqrt | Math::Ln | Math::Log10 if x < 0.0 => return None,
            Math::Ln | Math::Log10 if x == 0.0 => return None,
            Math::Sqrt => x.sqrt(),
            Math::Ln => x.ln(),
            Math::Log10 => x.log10(),
            Math::Exp => x.exp(),
        })
    }
}

impl CmpOp {
    pub(super) fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

/// `clamp(x, lo, hi)`; no value when the bounds are crossed, as in Prometheus.
pub(super) fn clamp(x: f64, lo: f64, hi: f64) -> Option<f64> {
    if lo > hi {
        return None;
    }
    // Written out because f64::clamp panics on NaN bounds.
    Some(if x.is_nan() || lo.is_nan() || hi.is_nan() {
        f64::NAN
    } else if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    })
}

impl Num {
    pub(super) fn eval<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> Option<f64> {
        match self {
            Num::Const(v) => Some(*v),
            Num::Current(slot) => current(data.series(*slot as usize)?, ctx),
            Num::Neg(x) => Some(-x.eval(ctx, data)?),
            Num::Arith(op, a, b) => op.apply(a.eval(ctx, data)?, b.eval(ctx, data)?),
            Num::Math(f, x) => f.apply(x.eval(ctx, data)?),
            Num::Clamp(args) => {
                let [x, lo, hi] = &**args;
                clamp(x.eval(ctx, data)?, lo.eval(ctx, data)?, hi.eval(ctx, data)?)
            }
            Num::Window(f, slot, range) => {
                let w = data.series(*slot as usize)?;
                stats::window(*f, w, ctx.now.minus(*range), ctx.now)
            }
            Num::Quantile(q, slot, range) => {
                let q = q.eval(ctx, data)?;
                let w = data.series(*slot as usize)?;
                stats::quantile(q, w, ctx.now.minus(*range), ctx.now)
            }
            Num::PredictLinear(slot, range, ahead) => {
                let ahead = ahead.eval(ctx, data)?;
                let w = data.series(*slot as usize)?;
                let fit = stats::fit(w, ctx.now.minus(*range), ctx.now)?;
                Some(fit.at_now + fit.slope * ahead)
            }
            Num::TimeTo(slot, limit, range) => {
                let limit = limit.eval(ctx, data)?;
                let w = data.series(*slot as usize)?;
                stats::time_to(limit, w, ctx.now.minus(*range), ctx.now)
            }
            Num::Agg(agg, slot) => aggregate(*agg, *slot, ctx, data),
            Num::HistQuantile(q, slot, range) => {
                let q = q.eval(ctx, data)?;
                histogram_quantile(q, *slot, *range, ctx, data)
            }
            Num::Age(slot) => stats::age(data.series(*slot as usize)?, ctx.now),
            Num::Present(slot) => {
                let fresh = data
                    .series(*slot as usize)
                    .and_then(|w| w.current(ctx.now, ctx.staleness))
                    .is_some();
                Some(if fresh { 1.0 } else { 0.0 })
            }
        }
    }
}

impl Cond {
    pub(super) fn eval<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> Option<bool> {
        match self {
            Cond::Const(b) => Some(*b),
            Cond::Not(c) => Some(!c.eval(ctx, data)?),
            // Left to right: a missing left side is no data even if the right would decide.
            Cond::And(a, b) => Some(a.eval(ctx, data)? && b.eval(ctx, data)?),
            Cond::Or(a, b) => Some(a.eval(ctx, data)? || b.eval(ctx, data)?),
            Cond::Cmp(op, a, b) => Some(op.apply(a.eval(ctx, data)?, b.eval(ctx, data)?)),
            Cond::CmpCurrent(op, slot, c) => Some(op.apply(current(data.series(*slot as usize)?, ctx)?, *c)),
            Cond::Same(negate, a, b) => Some((a.eval(ctx, data)? == b.eval(ctx, data)?) != *negate),
        }
    }
}

impl Cond {
    /// The left operand's value when this condition is a comparison of two numbers: what a
    /// rule whose `expr` is `a > b` shows as its value, as in PromQL.
    pub(super) fn left_operand<D: Data + ?Sized>(&self, ctx: &EvalCtx, data: &D) -> Option<f64> {
        match self {
            Cond::Cmp(_, a, _) => a.eval(ctx, data),
            Cond::CmpCurrent(_, slot, _) => current(data.series(*slot as usize)?, ctx),
            _ => None,
        }
    }
}

/// Most buckets one histogram may have for `histogram_quantile`; past that it is no data.
/// A fixed buffer keeps evaluation free of allocation; classic histograms rarely have more
/// than 30.
pub(super) const MAX_BUCKETS: usize = 128;

/// Prometheus' `histogram_quantile` over the per-second rates of the bucket series: the
/// rates are cumulative counts by upper bound `le`, the quantile is interpolated linearly
/// inside the bucket the rank falls in. NaN (so no data) without a `+Inf` bucket, with
/// fewer than two buckets, or without observations.
fn histogram_quantile<D: Data + ?Sized>(q: f64, slot: u32, range: Duration, ctx: &EvalCtx, data: &D) -> Option<f64> {
    let mut buf = [(0.0f64, 0.0f64); MAX_BUCKETS];
    let mut n = 0usize;
    let mut overflow = false;
    let from = ctx.now.minus(range);
    data.buckets(slot as usize, &mut |le, w| {
        let Ok(upper) = le.trim().parse::<f64>() else { return };
        let Some(rate) = stats::window(stats::WinFn::Rate, w, from, ctx.now) else {
            return;
        };
        if n == MAX_BUCKETS {
            overflow = true;
            return;
        }
        buf[n] = (upper, rate);
        n += 1;
    });
    if overflow {
        return None;
    }
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let b = &mut buf[..n];
    b.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    if b.len() < 2 || b[b.len() - 1].0 != f64::INFINITY {
        return None;
    }
    // Scrapes are not atomic: a bucket may read below the one before it. Prometheus makes
    // the counts monotonic the same way.
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let total = b[b.len() - 1].1;
    if total <= 0.0 {
        return None;
    }
    let mut rank = q * total;
    let i = b.iter().position(|&(_, c)| c >= rank).unwrap_or(b.len() - 1);
    if i == b.len() - 1 {
        return Some(b[b.len() - 2].0);
    }
    if i == 0 && b[0].0 <= 0.0 {
        return Some(b[0].0);
    }
    let (mut start, end, mut count) = (0.0, b[i].0, b[i].1);
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    Some(start + (end - start) * (rank / count))
}

/// A series' current value if it is finite.
///
/// Same answer as `Window::current`, but tries the newest sample first: it is the current
/// one unless it lies after `now`, and that check is O(1) where `current`'s search is
/// O(log n) and most of the cost of a simple threshold.
#[inline]
fn current(w: &Window, ctx: &EvalCtx) -> Option<f64> {
    let v = match w.newest() {
        Some(s) if s.t <= ctx.now => {
            if is_stale_marker(s.v) || ctx.now.since(s.t) >= ctx.staleness {
                return None;
            }
            s.v
        }
        _ => w.current(ctx.now, ctx.staleness)?,
    };
    v.is_finite().then_some(v)
}

/// Aggregates the current values of a group; members without a fresh finite value are skipped.
fn aggregate<D: Data + ?Sized>(agg: Agg, slot: u32, ctx: &EvalCtx, data: &D) -> Option<f64> {
    let (mut n, mut sum, mut min, mut max) = (0usize, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
    data.group(slot as usize, &mut |w| {
        if let Some(v) = current(w, ctx) {
            n += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
    });
    match agg {
        Agg::Count => Some(n as f64),
        _ if n == 0 => None,
        Agg::Sum => Some(sum),
        Agg::Avg => Some(sum / n as f64),
        Agg::Min => Some(min),
        Agg::Max => Some(max),
    }
}
