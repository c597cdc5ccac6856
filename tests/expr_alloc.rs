//! Evaluating a compiled expression must not allocate (budgets ≤ 0.1 µs per instance).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use tocsin::expr::{Data, EvalCtx, Expr};
use tocsin::series::{Sample, Timestamp, Window};

/// Counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct One(Window);

impl Data for One {
    fn series(&self, _: usize) -> Option<&Window> {
        Some(&self.0)
    }

    fn group(&self, _: usize, f: &mut dyn FnMut(&Window)) {
        f(&self.0);
        f(&self.0);
    }

    fn buckets(&self, _: usize, f: &mut dyn FnMut(&str, &Window)) {
        f("0.5", &self.0);
        f("+Inf", &self.0);
    }
}

#[test]
fn evaluation_does_not_allocate() {
    let mut w = Window::default();
    for i in 0..50 {
        w.push(
            Sample {
                t: Timestamp(i * 10_000),
                v: (i % 7) as f64,
            },
            Duration::from_secs(3600),
        );
    }
    let data = One(w);
    let ctx = EvalCtx {
        now: Timestamp(490_000),
        staleness: Duration::from_secs(300),
    };
    let every_function = [
        "m > 3 && !(m < 1) || false",
        "-m + 2 * m / 3 % 2 ^ 2 == 1 != (m >= 0)",
        "rate(m, \"5m\") + increase(m, \"5m\") + delta(m, \"5m\") + deriv(m, \"5m\")",
        "predict_linear(m, \"5m\", 60) + time_to(m, 10, \"5m\")",
        "avg_over_time(m, \"5m\") + min_over_time(m, \"5m\") + max_over_time(m, \"5m\")",
        "sum_over_time(m, \"5m\") + count_over_time(m, \"5m\") + stddev_over_time(m, \"5m\")",
        "quantile_over_time(0.9, m, \"5m\") + ci_low(m, \"5m\") + ci_high(m, \"5m\")",
        "zscore(m, \"5m\") + changes(m, \"5m\") + age(m) + present(m)",
        "sum(m) + avg(m) + min(m) + max(m) + count(m) + min(1, m) + max(1, m)",
        "histogram_quantile(0.9, m_bucket, \"5m\") + m{a=\"1\"} + m{a=~\"x.*\"}",
        "abs(m) + round(m) + floor(m) + ceil(m) + sqrt(m) + ln(m) + log10(m) + exp(m) + clamp(m, 0, 1)",
    ];
    for src in every_function {
        let e = Expr::compile(src).expect("compiles");
        // Warm up: the quantile scratch buffer grows once per thread.
        e.eval(&ctx, &data);
        let before = ALLOCATIONS.with(Cell::get);
        for _ in 0..10 {
            std::hint::black_box(e.eval(&ctx, &data));
        }
        assert_eq!(ALLOCATIONS.with(Cell::get), before, "{src} allocated");
    }
}
