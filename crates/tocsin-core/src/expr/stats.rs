//! Window functions: statistics over the samples of one series with `from < t <= to`.
//!
//! Every function returns `None` ("no data") when the window holds too few samples or any
//! non-finite one. Stale markers are not samples here (`Window::range` drops them). Nothing
//! allocates except [`quantile`], which reuses a per-thread buffer.

use std::cell::RefCell;

use crate::series::{Sample, Timestamp, Window, is_stale_marker};

/// Window functions of the form `f(m, d)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WinFn {
    Rate,
    Increase,
    Delta,
    Deriv,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Stddev,
    CiLow,
    CiHigh,
    Zscore,
    Changes,
}

/// Fewest samples that make `f` meaningful.
fn min_samples(f: WinFn) -> usize {
    match f {
        WinFn::Avg | WinFn::Min | WinFn::Max | WinFn::Sum | WinFn::Count | WinFn::Changes => 1,
        _ => 2,
    }
}

/// Summary of a window: count, first, last, sum, min, max, and changes between neighbours.
struct Summary {
    n: usize,
    first: Sample,
    last: Sample,
    sum: f64,
    min: f64,
    max: f64,
    /// Sum of increases with counter resets handled.
    increase: f64,
    changes: usize,
}

/// One pass over the window; `None` if it is empty or holds a non-finite value.
fn summary(w: &Window, from: Timestamp, to: Timestamp) -> Option<Summary> {
    let mut it = w.range(from, to);
    let first = it.next()?;
    let mut s = Summary {
        n: 1,
        first,
        last: first,
        sum: first.v,
        min: first.v,
        max: first.v,
        increase: 0.0,
        changes: 0,
    };
    if !first.v.is_finite() {
        return None;
    }
    for x in it {
        if !x.v.is_finite() {
            return None;
        }
        let prev = s.last.v;
        // A drop means the counter restarted from zero, so the new value is all increase.
        s.increase += if x.v >= prev { x.v - prev } else { x.v };
        if x.v != prev {
            s.changes += 1;
        }
        s.n += 1;
        s.sum += x.v;
        s.min = s.min.min(x.v);
        s.max = s.max.max(x.v);
        s.last = x;
    }
    Some(s)
}

/// Sum of squared deviations from `mean` (second pass, for numerical stability).
fn squared_deviations(w: &Window, from: Timestamp, to: Timestamp, mean: f64) -> f64 {
    w.range(from, to).map(|x| (x.v - mean) * (x.v - mean)).sum()
}

/// Evaluates window function `f` over `from < t <= to`.
pub(super) fn window(f: WinFn, w: &Window, from: Timestamp, to: Timestamp) -> Option<f64> {
    let s = summary(w, from, to)?;
    if s.n < min_samples(f) {
        return None;
    }
    let n = s.n as f64;
    let mean = s.sum / n;
    Some(match f {
        WinFn::Increase => s.increase,
        WinFn::Rate => s.increase / seconds(s.last.t, s.first.t),
        WinFn::Delta => s.last.v - s.first.v,
        WinFn::Avg => mean,
        WinFn::Min => s.min,
        WinFn::Max => s.max,
        WinFn::Sum => s.sum,
        WinFn::Count => n,
        WinFn::Changes => s.changes as f64,
        WinFn::Stddev => (squared_deviations(w, from, to, mean) / n).sqrt(),
        WinFn::CiLow | WinFn::CiHigh => {
            let sd = (squared_deviations(w, from, to, mean) / (n - 1.0)).sqrt();
            let half = t975(s.n - 1) * sd / n.sqrt();
            if f == WinFn::CiLow { mean - half } else { mean + half }
        }
        WinFn::Zscore => {
            let sd = (squared_deviations(w, from, to, mean) / n).sqrt();
            if sd == 0.0 {
                return None;
            }
            (s.last.v - mean) / sd
        }
        WinFn::Deriv => fit(w, from, to)?.slope,
    })
}

/// Seconds from `earlier` to `later`.
fn seconds(later: Timestamp, earlier: Timestamp) -> f64 {
    (later.0 - earlier.0) as f64 / 1000.0
}

thread_local! {
    /// Reused across evaluations so a quantile sorts without allocating once warm.
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// `quantile_over_time(q, …)` with Prometheus' interpolation between closest ranks.
pub(super) fn quantile(q: f64, w: &Window, from: Timestamp, to: Timestamp) -> Option<f64> {
    SCRATCH.with(|cell| {
        let mut v = cell.borrow_mut();
        v.clear();
        for x in w.range(from, to) {
            if !x.v.is_finite() {
                return None;
            }
            v.push(x.v);
        }
        if v.is_empty() {
            return None;
        }
        if q.is_nan() {
            return Some(f64::NAN);
        }
        if q < 0.0 {
            return Some(f64::NEG_INFINITY);
        }
        if q > 1.0 {
            return Some(f64::INFINITY);
        }
        v.sort_unstable_by(f64::total_cmp);
        let rank = q * (v.len() - 1) as f64;
        let lo = rank.floor() as usize;
        let hi = (lo + 1).min(v.len() - 1);
        let weight = rank - rank.floor();
        Some(v[lo] * (1.0 - weight) + v[hi] * weight)
    })
}

/// A least-squares line through a window, with time in seconds relative to `now`.
pub(super) struct Fit {
    /// The fitted value at `now`.
    pub at_now: f64,
    /// Slope per second.
    pub slope: f64,
}

/// Fits a line through the window; `None` with fewer than two samples or a non-finite one.
pub(super) fn fit(w: &Window, from: Timestamp, now: Timestamp) -> Option<Fit> {
    // Times relative to now keep the sums small: epoch seconds squared would lose precision.
    let x = |s: &Sample| seconds(s.t, now);
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for s in w.range(from, now) {
        if !s.v.is_finite() {
            return None;
        }
        n += 1;
        sx += x(&s);
        sy += s.v;
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for s in w.range(from, now) {
        let dx = x(&s) - mx;
        sxx += dx * dx;
        sxy += dx * (s.v - my);
    }
    let slope = sxy / sxx;
    Some(Fit {
        at_now: my - slope * mx,
        slope,
    })
}

/// Seconds from now until the least-squares line reaches `limit`.
///
/// 0 when the line's current value is the limit within a relative 1e-9 (so a flat line at a
/// limit that float rounding missed by an ulp is still at it); +inf when the line is flat
/// elsewhere or moves away from the limit, including a series already past the limit: one
/// that crossed it inside the window and went on is not "reached", and neither is a falling
/// series below the limit whose oldest sample was above it (a host recovering). Callers who
/// mean "exhausted or about to be" write `m >= limit || time_to(...) < d`.
pub(super) fn time_to(limit: f64, w: &Window, from: Timestamp, now: Timestamp) -> Option<f64> {
    if limit.is_nan() {
        return None;
    }
    let fit = fit(w, from, now)?;
    let gap = limit - fit.at_now;
    if gap.abs() <= 1e-9 * limit.abs().max(fit.at_now.abs()) && limit.is_finite() {
        return Some(0.0);
    }
    // A zero slope gives ±inf here and an infinite limit +inf or -inf: only a positive time
    // is reached.
    let t = gap / fit.slope;
    Some(if t > 0.0 { t } else { f64::INFINITY })
}

/// Seconds since the newest sample at or before `now` that is not a stale marker.
///
/// Markers are skipped so that `age(m)` keeps growing after a target disappears (the usual
/// "has not reported for 10m" alert) instead of restarting at the marker.
pub(super) fn age(w: &Window, now: Timestamp) -> Option<f64> {
    let newest = w.latest_at(now)?;
    let newest = if is_stale_marker(newest.v) {
        // Rare path: walk the window for the last real sample.
        w.range(Timestamp(i64::MIN), now).last()?
    } else {
        newest
    };
    Some(seconds(now, newest.t))
}

/// Two-sided 95 % Student t critical value, t(0.975, df), for `df >= 1`.
pub(super) fn t975(df: usize) -> f64 {
    /// Exact values for df = 1..=30.
    const TABLE: [f64; 30] = [
        12.706204736174704,
        4.302652729749464,
        3.18244630528371,
        2.776445105197794,
        2.570581835636316,
        2.44691185114497,
        2.364624251592785,
        2.306004135204167,
        2.262157162798206,
        2.228138851986275,
        2.20098516009164,
        2.178812829667229,
        2.160368656462793,
        2.144786687917804,
        2.131449545559776,
        2.119905299221255,
        2.109815577833317,
        2.100922040241039,
        2.09302405440831,
        2.085963447265865,
        2.07961384472768,
        2.073873067904026,
        2.068657610419049,
        2.063898561628026,
        2.059538552753298,
        2.055529438642873,
        2.051830516480286,
        2.048407141795245,
        2.045229642132704,
        2.042272456301238,
    ];
    if let Some(t) = df.checked_sub(1).and_then(|i| TABLE.get(i)) {
        return *t;
    }
    // Cornish-Fisher expansion around the normal quantile (Abramowitz & Stegun 26.7.5):
    // relative error below 2e-8 from df = 31 on.
    const Z: f64 = 1.959963984540054;
    let z2 = Z * Z;
    let g1 = (z2 + 1.0) * Z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * Z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * Z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * Z / 92160.0;
    let v = df as f64;
    Z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
}
