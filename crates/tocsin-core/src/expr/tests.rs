use std::cell::Cell;
use std::time::Duration;

use proptest::prelude::*;

use super::compile::MAX_TREE_DEPTH;
use super::*;
use crate::series::{Sample, stale_marker};

const RETENTION: Duration = Duration::from_secs(24 * 3600);
const STALENESS: Duration = Duration::from_secs(300);

/// Test data: windows by metric name, bound to an expression's slots by name and kind.
#[derive(Default)]
struct TestData {
    series: Vec<Option<Window>>,
    groups: Vec<Vec<Window>>,
    /// Bucket series (`le`, window) per Buckets slot.
    buckets: Vec<Vec<(String, Window)>>,
    /// Counts `series` calls, to prove short-circuit skips the right side.
    reads: Cell<usize>,
}

impl TestData {
    fn bind(e: &Expr, series: &[(&str, Window)], groups: &[(&str, Vec<Window>)]) -> TestData {
        let mut d = TestData::default();
        for slot in e.slots() {
            let find_series = || series.iter().find(|(m, _)| *m == slot.metric).map(|(_, w)| w.clone());
            let find_group = || groups.iter().find(|(m, _)| *m == slot.metric).map(|(_, g)| g.clone());
            match slot.kind {
                SlotKind::Series => {
                    d.series.push(find_series());
                    d.groups.push(Vec::new());
                }
                SlotKind::Aggregate => {
                    d.series.push(None);
                    d.groups.push(find_group().unwrap_or_default());
                }
                SlotKind::Buckets => {
                    d.series.push(None);
                    d.groups.push(Vec::new());
                }
            }
            d.buckets.push(Vec::new());
        }
        d
    }
}

impl Data for TestData {
    fn series(&self, slot: usize) -> Option<&Window> {
        self.reads.set(self.reads.get() + 1);
        self.series.get(slot)?.as_ref()
    }

    fn group(&self, slot: usize, f: &mut dyn FnMut(&Window)) {
        for w in self.groups.get(slot).into_iter().flatten() {
            f(w);
        }
    }

    fn buckets(&self, slot: usize, f: &mut dyn FnMut(&str, &Window)) {
        for (le, w) in self.buckets.get(slot).into_iter().flatten() {
            f(le, w);
        }
    }
}

/// A window from (seconds, value) pairs.
fn win(points: &[(f64, f64)]) -> Window {
    let mut w = Window::default();
    for &(t, v) in points {
        w.push(
            Sample {
                t: Timestamp((t * 1000.0) as i64),
                v,
            },
            RETENTION,
        );
    }
    w
}

fn ctx(now_secs: f64) -> EvalCtx {
    EvalCtx {
        now: Timestamp((now_secs * 1000.0) as i64),
        staleness: STALENESS,
    }
}

fn compile(src: &str) -> Expr {
    Expr::compile(src).unwrap_or_else(|e| panic!("{src:?} should compile: {e:?}"))
}

/// Evaluates `src` at `now` with the given series (no groups).
fn eval_at(src: &str, now: f64, series: &[(&str, Window)]) -> Option<f64> {
    let e = compile(src);
    e.eval(&ctx(now), &TestData::bind(&e, series, &[]))
}

fn eval(src: &str) -> Option<f64> {
    eval_at(src, 1000.0, &[])
}

fn approx(got: Option<f64>, want: f64) {
    let got = got.expect("expected a value, got no data");
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

fn err(src: &str) -> ExprError {
    match Expr::compile(src) {
        Ok(e) => panic!("{src:?} should not compile, got {e:?}"),
        Err(e) => e,
    }
}

fn err_contains(src: &str, needle: &str) -> ExprError {
    let e = err(src);
    assert!(
        e.message.contains(needle),
        "{src:?}: message {:?} lacks {needle:?}",
        e.message
    );
    e
}

// ---- arithmetic, typing, short-circuit ----

#[test]
fn arithmetic_is_floating_point() {
    assert_eq!(eval("5 / 2"), Some(2.5));
    assert_eq!(eval("9 / 10"), Some(0.9));
    assert_eq!(eval("1 == 1.0"), Some(1.0));
    assert_eq!(eval("7 % 4"), Some(3.0));
    assert_eq!(eval("2 ^ 10"), Some(1024.0));
    assert_eq!(eval("-2 ^ 2"), Some(-4.0));
    assert_eq!(eval("1 + 2 * 3"), Some(7.0));
    assert_eq!(eval("(1 + 2) * 3"), Some(9.0));
    assert_eq!(eval("0x10 + 1e-3 * 1000"), Some(17.0));
    assert_eq!(eval("1 - -2"), Some(3.0));
    assert_eq!(eval("10 - 2 - 3"), Some(5.0));
}

#[test]
fn undefined_arithmetic_is_no_data_never_an_infinity() {
    for src in [
        "1 / 0",
        "-1 / 0",
        "0 / 0",
        "5 / (2 - 2)",
        "5 % 0",
        "ln(0)",
        "ln(-1)",
        "log10(0)",
        "log10(-2)",
        "sqrt(-1)",
    ] {
        assert_eq!(eval(src), None, "{src}");
    }
    // Compared against a threshold it is still no data: `5/0` must not meet `above: 90`,
    // and `!`, `||` or `!=` around it must not turn it into a decision either.
    for src in [
        "5 / 0 > 90",
        "(0 / 0) > 1",
        "!(ln(0) < 0)",
        "sqrt(-4) != 1",
        "1 / 0 > 1 || true",
    ] {
        assert_eq!(eval(src), None, "{src}");
    }
    let zero = [("m", win(&[(0.0, 0.0)]))];
    assert_eq!(eval_at("5 / m", 10.0, &zero), None);
    assert_eq!(eval_at("5 % m", 10.0, &zero), None);
    // Defined results stay values, an overflow to infinity included.
    assert_eq!(eval("0 / 5"), Some(0.0));
    assert_eq!(eval("5 % 3"), Some(2.0));
    assert_eq!(eval("sqrt(0)"), Some(0.0));
    assert_eq!(eval("ln(1)"), Some(0.0));
    assert_eq!(eval("exp(1000)"), Some(f64::INFINITY));
}

#[test]
fn types_are_static() {
    assert_eq!(compile("m > 1").ty(), Type::Bool);
    assert_eq!(compile("m * 2").ty(), Type::Number);
    assert_eq!(compile("true").ty(), Type::Bool);
    assert_eq!(compile("(a > 1) == (b > 2)").ty(), Type::Bool);
    assert_eq!(eval("(1 > 2) != true"), Some(1.0));
    let e = err_contains(
        "a + (b > 1)",
        "`+` needs numbers on both sides, but its right operand is a condition",
    );
    assert_eq!(e.offset, Some(2));
    err_contains(
        "m && true",
        "`&&` needs conditions on both sides, but its left operand is a number",
    );
    err_contains("true || 1", "right operand is a number");
    let e = err_contains("!present(m)", "`!` needs a condition");
    assert_eq!(
        e.hint.as_deref(),
        Some("present() returns 1 or 0: write `present(m) == 0`")
    );
    err_contains("-(a > 1)", "`-` needs a number");
    err_contains(
        "(a > 1) == 2",
        "`==` compares two numbers or two conditions, not a condition with a number",
    );
    err_contains("(a > 1) < (b > 1)", "`<` needs numbers on both sides");
    err_contains("abs(a > 1)", "argument 1 of `abs` must be a number");
}

#[test]
fn and_or_short_circuit() {
    let missing: &[(&str, Window)] = &[];
    assert_eq!(eval_at("false && m > 1", 0.0, missing), Some(0.0));
    assert_eq!(eval_at("true || m > 1", 0.0, missing), Some(1.0));
    assert_eq!(eval_at("true && m > 1", 0.0, missing), None);
    assert_eq!(eval_at("false || m > 1", 0.0, missing), None);
    assert_eq!(eval_at("m > 1 && false", 0.0, missing), None);
    // The right side is not even read.
    let e = compile("false && m > 1");
    let d = TestData::bind(&e, &[("m", win(&[(0.0, 5.0)]))], &[]);
    assert_eq!(e.eval(&ctx(0.0), &d), Some(0.0));
    assert_eq!(d.reads.get(), 0);
    let e = compile("true || m > 1");
    assert_eq!(e.eval(&ctx(0.0), &d), Some(1.0));
    assert_eq!(d.reads.get(), 0);
}

// ---- bare reads, staleness, markers ----

#[test]
fn bare_read_is_current_value() {
    let m = win(&[(0.0, 1.0), (10.0, 42.0)]);
    assert_eq!(eval_at("m", 20.0, &[("m", m.clone())]), Some(42.0));
    assert_eq!(eval_at("m > 40", 20.0, &[("m", m.clone())]), Some(1.0));
    // Not yet sampled at `now` = 5s: the 0s sample is current.
    assert_eq!(eval_at("m", 5.0, &[("m", m.clone())]), Some(1.0));
    // Stale after 5 minutes.
    assert_eq!(eval_at("m", 10.0 + 300.0, &[("m", m.clone())]), None);
    assert_eq!(eval_at("m", 10.0 + 299.0, &[("m", m)]), Some(42.0));
    // Missing series.
    assert_eq!(eval_at("m + 1", 0.0, &[]), None);
}

#[test]
fn stale_marker_and_non_finite_current_are_no_data() {
    let marked = win(&[(0.0, 1.0), (10.0, stale_marker())]);
    assert_eq!(eval_at("m", 20.0, &[("m", marked)]), None);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let w = win(&[(0.0, 1.0), (10.0, bad)]);
        assert_eq!(eval_at("m * 0", 20.0, &[("m", w.clone())]), None);
        assert_eq!(eval_at("present(m)", 20.0, &[("m", w)]), Some(1.0));
    }
}

#[test]
fn present_is_never_no_data() {
    let m = win(&[(0.0, 1.0)]);
    assert_eq!(eval_at("present(m)", 10.0, &[("m", m.clone())]), Some(1.0));
    assert_eq!(eval_at("present(m)", 400.0, &[("m", m)]), Some(0.0));
    assert_eq!(eval_at("present(m)", 10.0, &[]), Some(0.0));
    let marked = win(&[(0.0, 1.0), (5.0, stale_marker())]);
    assert_eq!(eval_at("present(m)", 10.0, &[("m", marked)]), Some(0.0));
    assert_eq!(eval_at("present(m) == 0 || m > 5", 10.0, &[]), Some(1.0));
}

#[test]
fn age_skips_stale_markers_and_ignores_staleness() {
    let m = win(&[(0.0, 1.0), (50.0, 2.0)]);
    assert_eq!(eval_at("age(m)", 60.0, &[("m", m.clone())]), Some(10.0));
    assert_eq!(eval_at("age(m)", 1050.0, &[("m", m)]), Some(1000.0));
    let marked = win(&[(0.0, 1.0), (50.0, 2.0), (55.0, stale_marker())]);
    assert_eq!(eval_at("age(m)", 60.0, &[("m", marked)]), Some(10.0));
    let only_marker = win(&[(55.0, stale_marker())]);
    assert_eq!(eval_at("age(m)", 60.0, &[("m", only_marker)]), None);
    assert_eq!(eval_at("age(m)", 60.0, &[]), None);
}

// ---- window functions ----

fn counter() -> Window {
    // A reset between 30s and 40s: 20 -> 5.
    win(&[(10.0, 0.0), (20.0, 10.0), (30.0, 20.0), (40.0, 5.0), (50.0, 15.0)])
}

#[test]
fn increase_and_rate_handle_counter_resets_without_extrapolation() {
    let s = [("m", counter())];
    approx(eval_at("increase(m, \"1m\")", 60.0, &s), 35.0);
    approx(eval_at("rate(m, \"1m\")", 60.0, &s), 35.0 / 40.0);
    approx(eval_at("delta(m, \"1m\")", 60.0, &s), 15.0);
    // Only 40s and 50s inside a 25s window ending at 60s: 5 -> 15.
    approx(eval_at("increase(m, \"25s\")", 60.0, &s), 10.0);
    approx(eval_at("rate(m, \"25s\")", 60.0, &s), 1.0);
}

#[test]
fn window_is_left_open() {
    let s = [("m", counter())];
    // now - 30s = 30s exactly: the sample at 30s is outside.
    approx(eval_at("count_over_time(m, \"30s\")", 60.0, &s), 2.0);
    approx(eval_at("count_over_time(m, \"31s\")", 60.0, &s), 3.0);
    // Samples after `now` are not read.
    approx(eval_at("count_over_time(m, \"1h\")", 35.0, &s), 3.0);
}

#[test]
fn too_few_samples_is_no_data() {
    let one = [("m", win(&[(10.0, 3.0)]))];
    for f in [
        "rate",
        "increase",
        "delta",
        "deriv",
        "stddev_over_time",
        "ci_low",
        "ci_high",
        "zscore",
    ] {
        assert_eq!(eval_at(&format!("{f}(m, \"1m\")"), 20.0, &one), None, "{f}");
    }
    assert_eq!(eval_at("predict_linear(m, \"1m\", 60)", 20.0, &one), None);
    assert_eq!(eval_at("time_to(m, 5, \"1m\")", 20.0, &one), None);
    for (f, want) in [
        ("avg_over_time", 3.0),
        ("min_over_time", 3.0),
        ("max_over_time", 3.0),
        ("sum_over_time", 3.0),
        ("count_over_time", 1.0),
        ("changes", 0.0),
    ] {
        assert_eq!(eval_at(&format!("{f}(m, \"1m\")"), 20.0, &one), Some(want), "{f}");
        // The sample is older than the window.
        assert_eq!(eval_at(&format!("{f}(m, \"5s\")"), 20.0, &one), None, "{f}");
    }
    assert_eq!(eval_at("quantile_over_time(0.5, m, \"5s\")", 20.0, &one), None);
    assert_eq!(eval_at("avg_over_time(m, \"5s\")", 20.0, &[]), None);
}

fn stats_window() -> Window {
    let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    win(&v
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64 * 10.0, *v))
        .collect::<Vec<_>>())
}

#[test]
fn window_statistics() {
    let s = [("m", stats_window())];
    let at = |f: &str| eval_at(f, 70.0, &s);
    approx(at("avg_over_time(m, \"1h\")"), 5.0);
    approx(at("min_over_time(m, \"1h\")"), 2.0);
    approx(at("max_over_time(m, \"1h\")"), 9.0);
    approx(at("sum_over_time(m, \"1h\")"), 40.0);
    approx(at("count_over_time(m, \"1h\")"), 8.0);
    approx(at("stddev_over_time(m, \"1h\")"), 2.0);
    approx(at("zscore(m, \"1h\")"), 2.0);
    approx(at("ci_low(m, \"1h\")"), 3.2125120817637893);
    approx(at("ci_high(m, \"1h\")"), 6.787487918236211);
    approx(at("changes(m, \"1h\")"), 4.0);
}

#[test]
fn zscore_of_constant_window_is_no_data() {
    let s = [("m", win(&[(0.0, 3.0), (10.0, 3.0), (20.0, 3.0)]))];
    assert_eq!(eval_at("zscore(m, \"1m\")", 20.0, &s), None);
    approx(eval_at("ci_low(m, \"1m\")", 20.0, &s), 3.0);
}

#[test]
fn quantile_interpolates_like_prometheus() {
    let s = [("m", win(&[(0.0, 5.0), (1.0, 1.0), (2.0, 4.0), (3.0, 2.0), (4.0, 3.0)]))];
    let q = |q: &str| eval_at(&format!("quantile_over_time({q}, m, \"1m\")"), 4.0, &s);
    approx(q("0.5"), 3.0);
    approx(q("0.9"), 4.6);
    approx(q("0"), 1.0);
    approx(q("1"), 5.0);
    approx(q("0.25"), 2.0);
    assert_eq!(q("-1"), Some(f64::NEG_INFINITY));
    assert_eq!(q("2"), Some(f64::INFINITY));
    assert_eq!(q("0/0"), None);
}

#[test]
fn deriv_and_predict_linear() {
    let s = [("m", win(&[(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)]))];
    approx(eval_at("deriv(m, \"1m\")", 20.0, &s), 1.0);
    approx(eval_at("predict_linear(m, \"1m\", 10)", 20.0, &s), 30.0);
    // The fit is anchored at `now`, not at the newest sample.
    approx(eval_at("predict_linear(m, \"1m\", 10)", 30.0, &s), 40.0);
    // Noisy points: slope of least squares through (0,1),(10,1),(20,4) is 0.15.
    let noisy = [("m", win(&[(0.0, 1.0), (10.0, 1.0), (20.0, 4.0)]))];
    approx(eval_at("deriv(m, \"1m\")", 20.0, &noisy), 0.15);
}

#[test]
fn time_to_follows_the_trend() {
    let rising = [("m", win(&[(10.0, 10.0), (20.0, 20.0), (30.0, 30.0)]))];
    let t = |src: &str| eval_at(src, 30.0, &rising);
    approx(t("time_to(m, 50, \"1m\")"), 20.0);
    approx(t("time_to(m, 30, \"1m\")"), 0.0);
    // Already past the limit and moving away from it, whether it crossed the limit inside the
    // window or before: the line will not reach the limit.
    assert_eq!(t("time_to(m, 25, \"1m\")"), Some(f64::INFINITY));
    assert_eq!(t("time_to(m, 10, \"1m\")"), Some(f64::INFINITY));
    assert_eq!(t("time_to(m, 0, \"1m\")"), Some(f64::INFINITY));
    let falling = [("m", win(&[(10.0, 30.0), (20.0, 20.0), (30.0, 10.0)]))];
    approx(eval_at("time_to(m, 0, \"1m\")", 30.0, &falling), 10.0);
    assert_eq!(eval_at("time_to(m, 100, \"1m\")", 30.0, &falling), Some(f64::INFINITY));
    // A steep fall from just below the limit: the fitted line starts above 100, but the
    // series never got there and is moving away from it.
    let freed = [("m", win(&[(0.0, 99.0), (10.0, 99.0), (20.0, 50.0), (30.0, 50.0)]))];
    assert_eq!(eval_at("time_to(m, 100, \"1m\")", 30.0, &freed), Some(f64::INFINITY));
    let flat = [("m", win(&[(10.0, 5.0), (20.0, 5.0)]))];
    assert_eq!(eval_at("time_to(m, 10, \"1m\")", 30.0, &flat), Some(f64::INFINITY));
    approx(eval_at("time_to(m, 5, \"1m\")", 30.0, &flat), 0.0);
    // No limit is ever reached by a line: an infinite one is +inf.
    assert_eq!(
        eval_at("time_to(m, exp(1000), \"1m\")", 30.0, &rising),
        Some(f64::INFINITY)
    );
}

#[test]
fn time_to_is_infinite_for_a_recovering_series_below_the_limit() {
    // `104-2x15` one minute apart: the oldest sample was above 100, the series is now at 74
    // and still falling. Disk exhaustion is not 0 s away; the line moves away from 100.
    let points: Vec<(f64, f64)> = (0..=15).map(|k| (60.0 * k as f64, 104.0 - 2.0 * k as f64)).collect();
    let recovering = [("m", win(&points))];
    assert_eq!(
        eval_at("time_to(m, 100, \"30m\")", 900.0, &recovering),
        Some(f64::INFINITY)
    );
    assert_eq!(eval_at("time_to(m, 100, \"30m\") < 900", 900.0, &recovering), Some(0.0));
    // The same series read upwards reaches 100 in the future.
    let up: Vec<(f64, f64)> = (0..=15).map(|k| (60.0 * k as f64, 74.0 + 2.0 * k as f64)).collect();
    approx(eval_at("time_to(m, 110, \"30m\")", 900.0, &[("m", win(&up))]), 180.0);
}

#[test]
fn time_to_is_zero_within_a_relative_1e9_of_the_limit() {
    // 0.1 + 0.2 is 0.30000000000000004: a flat line there is at the limit 0.3.
    let flat = [("m", win(&[(10.0, 0.1 + 0.2), (20.0, 0.1 + 0.2)]))];
    assert_eq!(eval_at("time_to(m, 0.3, \"1m\")", 20.0, &flat), Some(0.0));
    // 1e-6 relative is not the limit: flat elsewhere is +inf.
    let near = [("m", win(&[(10.0, 100.0001), (20.0, 100.0001)]))];
    assert_eq!(eval_at("time_to(m, 100, \"1m\")", 20.0, &near), Some(f64::INFINITY));
}

#[test]
fn non_finite_samples_in_window_are_no_data_but_markers_are_skipped() {
    for bad in [f64::NAN, f64::INFINITY] {
        let s = [("m", win(&[(0.0, 1.0), (10.0, bad), (20.0, 3.0)]))];
        for f in ["avg_over_time", "rate", "deriv", "changes", "stddev_over_time"] {
            assert_eq!(eval_at(&format!("{f}(m, \"1m\")"), 20.0, &s), None, "{f} with {bad}");
        }
        assert_eq!(eval_at("quantile_over_time(0.5, m, \"1m\")", 20.0, &s), None);
        assert_eq!(eval_at("time_to(m, 9, \"1m\")", 20.0, &s), None);
    }
    let s = [("m", win(&[(0.0, 1.0), (10.0, stale_marker()), (20.0, 3.0)]))];
    approx(eval_at("avg_over_time(m, \"1m\")", 20.0, &s), 2.0);
}

#[test]
fn student_t_quantile() {
    use super::stats::t975;
    approx(Some(t975(1)), 12.706204736174704);
    approx(Some(t975(7)), 2.3646242515927853);
    approx(Some(t975(30)), 2.042272456301238);
    for (df, want) in [
        (31, 2.0395134463964085),
        (40, 2.0210753903062734),
        (120, 1.979930405082441),
    ] {
        assert!((t975(df) - want).abs() < 1e-7, "df {df}: {}", t975(df));
    }
    assert!((t975(1_000_000) - 1.959963984540054).abs() < 1e-5);
}

// ---- aggregations and scalar math ----

#[test]
fn aggregations_use_fresh_finite_members() {
    let members = vec![
        win(&[(390.0, 1.0)]),
        win(&[(390.0, 2.0)]),
        win(&[(390.0, 3.0)]),
        win(&[(0.0, 100.0)]), // stale at 400s
        win(&[(390.0, f64::NAN)]),
        win(&[(380.0, 7.0), (390.0, stale_marker())]),
    ];
    let run = |src: &str| {
        let e = compile(src);
        e.eval(&ctx(400.0), &TestData::bind(&e, &[], &[("m", members.clone())]))
    };
    assert_eq!(run("sum(m)"), Some(6.0));
    assert_eq!(run("avg(m)"), Some(2.0));
    assert_eq!(run("min(m)"), Some(1.0));
    assert_eq!(run("max(m)"), Some(3.0));
    assert_eq!(run("count(m)"), Some(3.0));
    let empty = |src: &str| {
        let e = compile(src);
        e.eval(&ctx(400.0), &TestData::bind(&e, &[], &[]))
    };
    assert_eq!(empty("sum(m)"), None);
    assert_eq!(empty("max(m)"), None);
    assert_eq!(empty("count(m)"), Some(0.0));
}

#[test]
fn scalar_math() {
    assert_eq!(eval("min(3, 2)"), Some(2.0));
    assert_eq!(eval("max(3, 2)"), Some(3.0));
    // inf - inf is NaN, which min/max propagate instead of dropping.
    assert_eq!(eval("max(exp(1000) - exp(1000), 2) == 2"), Some(0.0));
    assert_eq!(eval("abs(-3)"), Some(3.0));
    assert_eq!(eval("round(2.5)"), Some(3.0));
    assert_eq!(eval("round(-2.5)"), Some(-2.0));
    assert_eq!(eval("round(2.4)"), Some(2.0));
    assert_eq!(eval("floor(-1.5)"), Some(-2.0));
    assert_eq!(eval("ceil(1.2)"), Some(2.0));
    assert_eq!(eval("sqrt(16)"), Some(4.0));
    approx(eval("ln(exp(2))"), 2.0);
    assert_eq!(eval("log10(1000)"), Some(3.0));
    assert_eq!(eval("clamp(5, 0, 3)"), Some(3.0));
    assert_eq!(eval("clamp(-5, 0, 3)"), Some(0.0));
    assert_eq!(eval("clamp(2, 0, 3)"), Some(2.0));
    assert_eq!(eval("clamp(2, 3, 0)"), None);
    assert_eq!(eval("clamp(2, 0/0, 3)"), None);
}

// ---- slots and windows ----

#[test]
fn slots_and_longest_window() {
    let e = compile("a + sum(a) + rate(a, \"5m\") + b - avg_over_time(b, \"1h30m\") + max(a) + a");
    assert_eq!(
        e.slots(),
        &[
            Slot {
                metric: "a".into(),
                kind: SlotKind::Series,
                matchers: vec![],
                join_without: vec![],
            },
            Slot {
                metric: "a".into(),
                kind: SlotKind::Aggregate,
                matchers: vec![],
                join_without: vec![],
            },
            Slot {
                metric: "b".into(),
                kind: SlotKind::Series,
                matchers: vec![],
                join_without: vec![],
            },
        ]
    );
    assert_eq!(e.longest_window(), Duration::from_secs(5400));
    assert_eq!(compile("a > 1").longest_window(), Duration::ZERO);
    assert_eq!(compile("  a > 1 ").source(), "  a > 1 ");
    // Parentheses around the metric argument are fine.
    assert_eq!(compile("rate((a), (\"1m\"))").slots().len(), 1);
}

#[test]
fn metrics_read_through_age_are_listed() {
    let e = compile("age(hb) > 600 && up > 0 && age(other) > 1");
    assert_eq!(e.aged_metrics().collect::<Vec<_>>(), ["hb", "other"]);
    assert_eq!(compile("rate(a, \"5m\") > 1").aged_metrics().count(), 0);
}

// ---- compile errors ----

#[test]
fn unknown_function_suggests_a_name() {
    let e = err_contains("1 + rat(m, \"5m\")", "unknown function `rat`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `rate`?"));
    assert_eq!(e.offset, Some(4));
    let e = err_contains("stddev_overtime(m, \"5m\")", "unknown function");
    assert_eq!(e.hint.as_deref(), Some("did you mean `stddev_over_time`?"));
    let e = err_contains("zzz(m)", "unknown function `zzz`");
    assert_eq!(e.hint.as_deref(), Some("see the function list in docs/rules.md"));
}

#[test]
fn wrong_arity() {
    let e = err_contains("rate(m)", "`rate` takes 2 arguments, got 1");
    assert_eq!(e.hint.as_deref(), Some("usage: rate(metric, \"5m\")"));
    err_contains("abs(1, 2)", "`abs` takes 1 argument, got 2");
    err_contains("min(1, 2, 3)", "`min` takes 1 or 2 arguments, got 3");
    err_contains("clamp(1, 2)", "`clamp` takes 3 arguments, got 2");
    err_contains("present()", "`present` takes 1 argument, got 0");
    err_contains("abs(1,)", "empty argument in call of `abs`");
}

#[test]
fn window_and_aggregation_need_a_bare_metric() {
    let e = err_contains("rate(m * 2, \"5m\")", "argument 1 of `rate` must be a metric name");
    assert_eq!(e.offset, Some(5));
    err_contains("sum(m + 1)", "argument 1 of `sum` must be a metric name");
    err_contains("max(5)", "argument 1 of `max` must be a metric name");
    err_contains(
        "quantile_over_time(0.5, 3, \"5m\")",
        "argument 2 of `quantile_over_time` must be a metric name",
    );
    err_contains("age(rate(m, \"1m\"))", "argument 1 of `age` must be a metric name");
}

#[test]
fn durations_must_be_non_zero_string_literals() {
    let e = err_contains("rate(m, \"5 parsecs\")", "malformed duration \"5 parsecs\" in `rate`");
    assert_eq!(e.offset, Some(8));
    err_contains("rate(m, \"\")", "malformed duration");
    err_contains("rate(m, \"0s\")", "the duration of `rate` must be longer than zero");
    let e = err_contains("rate(m, 5)", "argument 2 of `rate` must be a duration string");
    assert_eq!(e.hint.as_deref(), Some("durations need a unit and quotes, e.g. \"5s\""));
    let e = err_contains("rate(m, 5m)", "argument 2 of `rate` must be a duration string");
    assert_eq!(e.hint.as_deref(), Some("quote it: \"5m\""));
    err_contains("rate(m, x)", "must be a duration string");
}

#[test]
fn strings_only_as_durations() {
    let e = err_contains("m > \"5\"", "a string is only allowed as the duration");
    assert_eq!(e.offset, Some(4));
    err_contains("\"abc\"", "a string is only allowed");
    err_contains("abs(\"1m\")", "a string is only allowed");
}

#[test]
fn assignments_chains_and_tuples_are_rejected() {
    let e = err_contains("m = 5", "`=` is assignment");
    assert_eq!(e.hint.as_deref(), Some("to compare, write `==`"));
    assert_eq!(e.offset, Some(2));
    err_contains("m += 1", "`+=` is assignment");
    err_contains("m &&= true", "`&&=` is assignment");
    let e = err_contains("a; b", "`;` is not allowed");
    assert_eq!(e.offset, Some(1));
    let e = err_contains("(a, b)", "`,` separates function arguments");
    assert_eq!(e.offset, Some(2));
    err_contains("abs((a, b))", "`,` separates function arguments");
    err_contains("a, b", "`,` separates function arguments");
}

#[test]
fn incomplete_operators_are_rejected() {
    let e = err_contains("cpu > ", "`>` is missing its right operand");
    assert_eq!(e.offset, Some(4));
    let e = err_contains("> 5", "`>` is missing its left operand");
    assert_eq!(e.offset, Some(0));
    let e = err_contains("1 + + 2", "`+` is missing its right operand");
    assert_eq!(e.offset, Some(2));
    err_contains("-", "`-` is missing its operand");
    err_contains("!", "`!` is missing its operand");
    err_contains("a && ", "`&&` is missing its right operand");
    err_contains("abs(1 *)", "`*` is missing its right operand");
    err_contains("a b", "missing operator after `a`");
    err_contains("abs m", "`abs` must be called with parentheses");
    err_contains("1 2", "missing operator between two operands");
    err_contains("f(a)(b)", "missing operator between two operands");
}

#[test]
fn empty_and_malformed_input() {
    err_contains("", "empty expression");
    err_contains("   \n", "empty expression");
    err_contains("// nothing", "empty expression");
    err_contains("()", "empty parentheses");
    let e = err_contains("(a + 1", "unclosed `(`");
    assert_eq!(e.offset, Some(0));
    let e = err_contains("a + 1)", "unmatched `)`");
    assert_eq!(e.offset, Some(5));
    let e = err_contains("rate(m, \"5m)", "unterminated string literal");
    assert_eq!(e.offset, Some(8));
    err_contains("\"\\n\"", "invalid escape sequence");
    let e = err_contains("a & b", "single `&` is not an operator");
    assert_eq!(e.offset, Some(2));
    err_contains("a | b", "single `|` is not an operator");
    err_contains("a /* open", "unterminated `/*` comment");
}

#[test]
fn non_finite_literals_are_rejected() {
    let e = err_contains("m > 1e999", "number `1e999` is not finite");
    assert_eq!(e.offset, Some(4));
    err_contains("inf", "number `inf` is not finite");
    err_contains("NaN > 1", "not finite");
}

#[test]
fn metric_names_are_checked() {
    let e = err_contains("a.b > 1", "`a.b` is not a valid metric name");
    assert_eq!(e.offset, Some(0));
    err_contains("1 + 1abc", "`1abc` is not a valid metric name");
    err_contains("rate(x.y, \"1m\")", "`x.y` is not a valid metric name");
    err_contains("héllo", "not a valid metric name");
    assert!(Expr::compile("_a1 + B_2").is_ok());
    // Function names are plain metric names when not called.
    assert_eq!(compile("rate + 1").slots()[0].metric, "rate");
}

#[test]
fn offsets_survive_comments_and_scientific_notation() {
    let e = err_contains("1e-3 + /* c */ a.b", "`a.b`");
    assert_eq!(e.offset, Some(15));
    let e = err_contains("x - 2e+2 + rat(a, \"1m\")", "unknown function");
    assert_eq!(e.offset, Some(11));
}

#[test]
fn length_is_capped() {
    let long = format!("a{}", " + a".repeat(MAX_LEN));
    err_contains(&long, "the limit is 4096");
}

// ---- nesting safety ----

/// Runs `f` on a thread with a 2 MiB stack, as the engine's worker threads may have.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow or panic")
}

#[test]
fn absurd_nesting_is_an_error_not_an_abort() {
    on_small_stack(|| {
        let n = 100_000;
        let parens = format!("{}1{}", "(".repeat(n), ")".repeat(n));
        let minus = format!("{}1", "-".repeat(n));
        let spaced_minus = format!("{}1", "- ".repeat(n));
        let not = format!("{}true", "!".repeat(n));
        let calls = format!("{}1{}", "abs(".repeat(n), ")".repeat(n));
        let opens = "(".repeat(n);
        for src in [parens, minus, spaced_minus, not, calls, opens] {
            assert!(Expr::compile(&src).is_err());
        }
    });
}

#[test]
fn deepest_accepted_input_fits_a_small_stack() {
    on_small_stack(|| {
        let d = MAX_DEPTH;
        // Exactly at the cap: compiles and evaluates.
        let ok = [
            format!("{}1{}", "(".repeat(d), ")".repeat(d)),
            format!("{}1", "-".repeat(d)),
            format!("{}true", "!".repeat(d)),
            format!("{}1{}", "abs(".repeat(d), ")".repeat(d)),
            format!("{}1{}", "-(".repeat(d / 2), ")".repeat(d / 2)),
            format!("{}1{}", "clamp(0, 1, ".repeat(d), ")".repeat(d)),
        ];
        for src in &ok {
            let e = Expr::compile(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert!(e.eval(&ctx(0.0), &TestData::default()).is_some());
        }
        // One past the cap.
        let over = [
            format!("{}1{}", "(".repeat(d + 1), ")".repeat(d + 1)),
            format!("{}1", "-".repeat(d + 1)),
            format!("{}1{}", "-(".repeat(d / 2 + 1), ")".repeat(d / 2 + 1)),
        ];
        for src in &over {
            err_contains(src, "nests too deeply");
        }
        // The longest operator chain that fits the length cap: evalexpr builds a tree as deep
        // as the chain; it is refused after parsing without overflowing on the way.
        let chain = format!("1{}", "+1".repeat((MAX_LEN - 1) / 2));
        assert!(chain.len() <= MAX_LEN);
        err_contains(&chain, "nests too deeply");
        // Just under the tree cap, and the same with calls nested as deep as parentheses may.
        let chain = format!("a{}", "+a".repeat(MAX_TREE_DEPTH - 1));
        let e = compile(&chain);
        assert!(e.eval(&ctx(0.0), &TestData::default()).is_none());
        let level = "clamp(0, 1, ";
        let tail = " + 1 + 1 + 1)";
        let nested = format!("{}1{}", level.repeat(d - 1), tail.repeat(d - 1));
        assert!(nested.len() <= MAX_LEN);
        assert!(compile(&nested).eval(&ctx(0.0), &TestData::default()).is_some());
        // Deep on both axes at once.
        let both = format!("{}{}1{}", "(".repeat(d / 2), "-".repeat(d / 2), ")".repeat(d / 2));
        assert!(Expr::compile(&both).is_ok());
    });
}

// ---- properties ----

/// A generated number expression.
#[derive(Clone, Debug)]
enum G {
    Lit(f64),
    Metric(usize),
    Neg(Box<G>),
    Bin(char, Box<G>, Box<G>),
    Abs(Box<G>),
    Min(Box<G>, Box<G>),
    Max(Box<G>, Box<G>),
}

/// A generated condition.
#[derive(Clone, Debug)]
enum B {
    Lit(bool),
    Not(Box<B>),
    And(Box<B>, Box<B>),
    Or(Box<B>, Box<B>),
    Cmp(&'static str, G, G),
    Same(bool, Box<B>, Box<B>),
}

/// The metrics the generated expressions read: current values, `None` for no data.
const METRICS: [(&str, Option<f64>); 4] = [("a", Some(3.0)), ("b", Some(-2.5)), ("c", Some(0.0)), ("d", None)];

fn gen_num() -> impl Strategy<Value = G> {
    let leaf = prop_oneof![
        prop_oneof![Just(0.0), Just(1.0), Just(2.0), Just(0.5), Just(10.0), Just(3.0)].prop_map(G::Lit),
        (0..METRICS.len()).prop_map(G::Metric),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|g| G::Neg(Box::new(g))),
            inner.clone().prop_map(|g| G::Abs(Box::new(g))),
            (
                prop_oneof![Just('+'), Just('-'), Just('*'), Just('/'), Just('%'), Just('^')],
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| G::Bin(op, Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| G::Min(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| G::Max(Box::new(a), Box::new(b))),
        ]
    })
}

fn gen_cond() -> impl Strategy<Value = B> {
    let cmp = (
        prop_oneof![Just("<"), Just("<="), Just(">"), Just(">="), Just("=="), Just("!=")],
        gen_num(),
        gen_num(),
    )
        .prop_map(|(op, a, b)| B::Cmp(op, a, b));
    let leaf = prop_oneof![any::<bool>().prop_map(B::Lit), cmp];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|b| B::Not(Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| B::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| B::Or(Box::new(a), Box::new(b))),
            (any::<bool>(), inner.clone(), inner).prop_map(|(n, a, b)| B::Same(n, Box::new(a), Box::new(b))),
        ]
    })
}

fn show_num(g: &G) -> String {
    match g {
        G::Lit(v) => format!("{v}"),
        G::Metric(i) => METRICS[*i].0.to_string(),
        G::Neg(a) => format!("-({})", show_num(a)),
        G::Bin(op, a, b) => format!("({}) {op} ({})", show_num(a), show_num(b)),
        G::Abs(a) => format!("abs({})", show_num(a)),
        G::Min(a, b) => format!("min({}, {})", show_num(a), show_num(b)),
        G::Max(a, b) => format!("max({}, {})", show_num(a), show_num(b)),
    }
}

fn show_cond(b: &B) -> String {
    match b {
        B::Lit(v) => format!("{v}"),
        B::Not(a) => format!("!({})", show_cond(a)),
        B::And(a, b) => format!("({}) && ({})", show_cond(a), show_cond(b)),
        B::Or(a, b) => format!("({}) || ({})", show_cond(a), show_cond(b)),
        B::Cmp(op, a, b) => format!("({}) {op} ({})", show_num(a), show_num(b)),
        B::Same(neg, a, b) => format!(
            "({}) {} ({})",
            show_cond(a),
            if *neg { "!=" } else { "==" },
            show_cond(b)
        ),
    }
}

/// The reference semantics, written as plainly as possible.
fn ref_num(g: &G) -> Option<f64> {
    Some(match g {
        G::Lit(v) => *v,
        G::Metric(i) => METRICS[*i].1?,
        G::Neg(a) => -ref_num(a)?,
        G::Bin(op, a, b) => {
            let (a, b) = (ref_num(a)?, ref_num(b)?);
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                '/' | '%' if b == 0.0 => return None,
                '/' => a / b,
                '%' => a % b,
                _ => a.powf(b),
            }
        }
        G::Abs(a) => ref_num(a)?.abs(),
        G::Min(a, b) => {
            let (a, b) = (ref_num(a)?, ref_num(b)?);
            if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
        }
        G::Max(a, b) => {
            let (a, b) = (ref_num(a)?, ref_num(b)?);
            if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
        }
    })
}

fn ref_cond(b: &B) -> Option<bool> {
    Some(match b {
        B::Lit(v) => *v,
        B::Not(a) => !ref_cond(a)?,
        B::And(a, b) => {
            if !ref_cond(a)? {
                false
            } else {
                ref_cond(b)?
            }
        }
        B::Or(a, b) => {
            if ref_cond(a)? {
                true
            } else {
                ref_cond(b)?
            }
        }
        B::Cmp(op, a, b) => {
            let (a, b) = (ref_num(a)?, ref_num(b)?);
            match *op {
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                ">=" => a >= b,
                "==" => a == b,
                _ => a != b,
            }
        }
        B::Same(neg, a, b) => (ref_cond(a)? == ref_cond(b)?) != *neg,
    })
}

fn metric_data(e: &Expr) -> TestData {
    let series: Vec<(&str, Window)> = METRICS
        .iter()
        .filter_map(|(m, v)| v.map(|v| (*m, win(&[(0.0, v)]))))
        .collect();
    TestData::bind(e, &series, &[])
}

proptest! {
    #[test]
    fn numbers_agree_with_reference(g in gen_num()) {
        let src = show_num(&g);
        let e = Expr::compile(&src).map_err(|e| TestCaseError::fail(format!("{src}: {e:?}")))?;
        prop_assert_eq!(e.ty(), Type::Number);
        let got = e.eval(&ctx(1.0), &metric_data(&e));
        let want = ref_num(&g).filter(|v| !v.is_nan());
        prop_assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{}", src);
    }

    #[test]
    fn conditions_agree_with_reference(b in gen_cond()) {
        let src = show_cond(&b);
        let e = Expr::compile(&src).map_err(|e| TestCaseError::fail(format!("{src}: {e:?}")))?;
        prop_assert_eq!(e.ty(), Type::Bool);
        let got = e.eval(&ctx(1.0), &metric_data(&e));
        let want = ref_cond(&b).map(|b| if b { 1.0 } else { 0.0 });
        prop_assert_eq!(got, want, "{}", src);
    }

    #[test]
    fn compile_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = Expr::compile(&s);
    }

    #[test]
    fn compile_never_panics_on_expression_like_strings(s in "[a-z0-9_().,;+*/%^=!<>&| \"-]{0,80}") {
        if let Ok(e) = Expr::compile(&s) {
            let _ = e.eval(&ctx(1.0), &metric_data(&e));
        }
    }
}

// ---- PromQL habits: matchers, colons, histogram_quantile, shown values, hints ----

#[test]
fn matchers_make_separate_slots_and_join_without_fixed_labels() {
    let e = compile(r#"(mem{type="vms"} - mem{type="rss"}) / mem{type="vms"}"#);
    let slots = e.slots();
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert_eq!(slots[0].matchers[0].value, "vms");
    assert_eq!(slots[1].matchers[0].value, "rss");
    assert_eq!(slots[0].join_without, ["type"]);
    // A single read keeps its labels: its alerts carry `type` as in Prometheus.
    let one = compile(r#"mem{type="percent"} > 70"#);
    assert!(one.slots()[0].join_without.is_empty());
    // Regex matchers fix no label, so they never drop one.
    let re = compile(r#"mem{type=~"v.*"} - mem{type="rss"}"#);
    assert!(re.slots()[0].join_without.is_empty());
    assert_eq!(re.slots()[1].join_without, ["type"]);
    // Matchers inside window functions and aggregations.
    let w = compile(r#"rate(http_requests_total{code=~"5.."}, "5m") / sum(http_requests_total{code!="404"})"#);
    assert_eq!(w.slots()[0].kind, SlotKind::Series);
    assert_eq!(w.slots()[1].kind, SlotKind::Aggregate);
    assert_eq!(w.slots()[1].matchers[0].op, MatchOp::NotEqual);
}

#[test]
fn matcher_errors_point_at_their_character() {
    let e = err(r#"a + mem{type="vms""#);
    assert_eq!(e.offset, Some(7));
    assert!(e.message.contains("unclosed"), "{e:?}");
    let e = err(r#"a + mem{type=~"("}"#);
    assert_eq!(e.offset, Some(14));
    assert!(e.message.contains("invalid regex"), "{e:?}");
    // Offsets after a matcher block stay right.
    let e = err(r#"mem{type="vms"} + nope(1)"#);
    assert_eq!(e.offset, Some(18));
}

#[test]
fn metric_names_may_hold_colons() {
    let e = compile("job:http_errors:rate5m / instance:node_cpus:count > 0.1");
    assert_eq!(e.slots()[0].metric, "job:http_errors:rate5m");
    assert!(is_metric_name(":a:b"));
    assert!(!is_metric_name("1a"));
    assert_eq!(
        eval_at("job:x:rate5m * 2", 10.0, &[("job:x:rate5m", win(&[(0.0, 4.0)]))]),
        Some(8.0)
    );
}

/// Data for one Buckets slot: (le, window) pairs.
fn hist(e: &Expr, buckets: &[(&str, Window)]) -> TestData {
    let mut d = TestData::bind(e, &[], &[]);
    let slot = e.slots().iter().position(|s| s.kind == SlotKind::Buckets).unwrap();
    d.buckets[slot] = buckets.iter().map(|(le, w)| (le.to_string(), w.clone())).collect();
    d
}

/// A counter rising by `per_min` each minute for 10 minutes.
fn rising(per_min: f64) -> Window {
    let points: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64 * 60.0, per_min * i as f64)).collect();
    win(&points)
}

#[test]
fn histogram_quantile_interpolates_like_prometheus() {
    let e = compile(r#"histogram_quantile(0.5, lat_bucket, "5m")"#);
    assert_eq!(e.slots()[0].kind, SlotKind::Buckets);
    // Cumulative rates 10/s ≤ 0.1, 30 ≤ 0.5, 40 ≤ 1, 40 ≤ +Inf (per minute × 60).
    let buckets = [
        ("+Inf", rising(2400.0)),
        ("0.1", rising(600.0)),
        ("0.5", rising(1800.0)),
        ("1", rising(2400.0)),
    ];
    let d = hist(&e, &buckets);
    // rank 20 lies in (0.1, 0.5]: 0.1 + 0.4 * (20 - 10) / (30 - 10) = 0.3.
    let v = e.eval(&ctx(600.0), &d).unwrap();
    assert!((v - 0.3).abs() < 1e-9, "{v}");
    // The top rank falls into the +Inf bucket: the largest finite bound.
    let top = compile(r#"histogram_quantile(1, lat_bucket, "5m")"#);
    assert_eq!(top.eval(&ctx(600.0), &hist(&top, &buckets)), Some(1.0));
    // q outside [0, 1] is ∓inf, as in Prometheus.
    let neg = compile(r#"histogram_quantile(-1, lat_bucket, "5m")"#);
    assert_eq!(neg.eval(&ctx(600.0), &hist(&neg, &buckets)), Some(f64::NEG_INFINITY));
    // Without a +Inf bucket, or without observations: no data.
    assert_eq!(e.eval(&ctx(600.0), &hist(&e, &buckets[1..])), None);
    let flat = [("0.1", rising(0.0)), ("+Inf", rising(0.0))];
    assert_eq!(e.eval(&ctx(600.0), &hist(&e, &flat)), None);
    // Non-monotonic buckets (a non-atomic scrape) are made monotonic first.
    let odd = [("0.1", rising(600.0)), ("0.5", rising(300.0)), ("+Inf", rising(1200.0))];
    let v = e.eval(&ctx(600.0), &hist(&e, &odd)).unwrap();
    // counts 10, 10, 20; rank 10 is met by the first bucket: 0.1 * 10 / 10.
    assert!((v - 0.1).abs() < 1e-9, "{v}");
    assert!(
        err(r#"histogram_quantile(0.5, lat_bucket * 2, "5m")"#)
            .message
            .contains("metric name")
    );
    assert!(
        err(r#"histogram_quantile(0.5, lat_bucket)"#)
            .message
            .contains("3 arguments")
    );
}

#[test]
fn a_comparison_shows_its_left_operand() {
    let temp = [("temp", win(&[(0.0, 62.5)]))];
    for src in ["temp > 50", "temp * 1 > 50", "temp < 50"] {
        let e = compile(src);
        let d = TestData::bind(&e, &temp, &[]);
        let (v, shown) = e.eval_shown(&ctx(10.0), &d);
        assert_eq!(shown, Some(62.5), "{src}");
        assert_eq!(v, Some(if src.contains('>') { 1.0 } else { 0.0 }), "{src}");
    }
    // Logic over comparisons and numbers show the value itself.
    let e = compile("temp > 50 && temp < 100");
    let (_, shown) = e.eval_shown(&ctx(10.0), &TestData::bind(&e, &temp, &[]));
    assert_eq!(shown, Some(1.0));
    let e = compile("temp + 1");
    assert_eq!(e.eval_shown(&ctx(10.0), &TestData::bind(&e, &temp, &[])).1, Some(63.5));
    // No data stays no data.
    let e = compile("temp > other");
    assert_eq!(e.eval_shown(&ctx(10.0), &TestData::bind(&e, &temp, &[])), (None, None));
}

#[test]
fn promql_only_syntax_names_the_tocsin_spelling() {
    let hint = |src: &str| err(src).hint.unwrap_or_default();
    assert!(
        hint("rate(x[5m]) > 1").contains(r#"rate(x, "5m")"#),
        "{}",
        hint("rate(x[5m]) > 1")
    );
    assert!(hint("sum by (job) (x) > 1").contains("by: [labels]"));
    assert!(hint("a / on(instance) b > 1").contains("query"));
    assert!(hint("a > 1 and b > 2").contains("&&"));
    assert!(hint("$value > 1").contains("{{ value }}"));
    for src in ["rate(x[5m]) > 1", "sum by (job) (x) > 1", "a > 1 and b > 2"] {
        assert!(hint(src).contains("tocsin import prometheus"), "{src}: {}", hint(src));
    }
}
