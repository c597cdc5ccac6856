//! Evaluation cost of compiled expressions for one instance (≤ 0.1 µs).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tocsin::expr::{Data, EvalCtx, Expr};
use tocsin::series::{Sample, Timestamp, Window};

/// One window per slot, as the engine would hand them out.
struct Bench {
    windows: Vec<Window>,
}

impl Data for Bench {
    fn series(&self, slot: usize) -> Option<&Window> {
        self.windows.get(slot)
    }

    fn group(&self, slot: usize, f: &mut dyn FnMut(&Window)) {
        if let Some(w) = self.windows.get(slot) {
            f(w);
        }
    }

    fn buckets(&self, slot: usize, f: &mut dyn FnMut(&str, &Window)) {
        if let Some(w) = self.windows.get(slot) {
            f("+Inf", w);
        }
    }
}

fn bench(c: &mut Criterion) {
    // Five minutes of 15 s samples.
    let mut w = Window::default();
    for i in 0..20 {
        w.push(
            Sample {
                t: Timestamp(i * 15_000),
                v: 40.0 + i as f64,
            },
            Duration::from_secs(600),
        );
    }
    let ctx = EvalCtx {
        now: Timestamp(19 * 15_000),
        staleness: Duration::from_secs(300),
    };
    for src in [
        "cpu > 50",
        "mem_used / mem_total * 100 > 90 && present(mem_total) == 1",
        "rate(requests_total, \"5m\")",
        "quantile_over_time(0.95, latency, \"5m\")",
    ] {
        let e = Expr::compile(src).expect("compiles");
        let data = Bench {
            windows: vec![w.clone(); e.slots().len()],
        };
        c.bench_function(src, |b| b.iter(|| e.eval(black_box(&ctx), black_box(&data))));
    }
    c.bench_function("compile rate(m, \"5m\") > 10", |b| {
        b.iter(|| Expr::compile(black_box("rate(m, \"5m\") > 10")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
