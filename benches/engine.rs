//! One evaluation cycle of 1,000 compiled threshold rules over 300 instances each
//! (300,000 instance evaluations: expression, tier observation, state machine and
//! notification rules). Target: ≥ 10 million instance evaluations per second
//! on one core, i.e. ≤ 30 ms per cycle here.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, Settings};
use tocsin::rules::compile;
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

const RULES: usize = 1_000;
const INSTANCES: usize = 300;

fn rule_file() -> String {
    let mut y = String::from("groups:\n  - name: synth\n    interval: 15s\n    rules:\n");
    for i in 0..RULES {
        let (sev, t, f) = [
            ("info", 50, "1m"),
            ("warning", 70, "2m"),
            ("critical", 90, "1m"),
            ("page", 95, "0s"),
        ][i / 300];
        y += &format!(
            "      - alert: Synth{i:04}\n        expr: synth_cpu_percent\n        tiers: [{{ severity: {sev}, above: {t}, for: {f} }}]\n        hysteresis: 2\n        cooldown: 5m\n"
        );
    }
    y
}

/// A ready engine and store with 300 `synth_cpu_percent` series.
struct Fixture {
    engine: Engine,
    store: SeriesStore,
    ids: Vec<tocsin::series::SeriesId>,
    out: Output,
    t: i64,
}

impl Fixture {
    fn new() -> Fixture {
        let src = Source::new("bench.yaml", rule_file().into_bytes()).expect("source");
        let file = parse_rules(&src).expect("rules parse");
        let (set, diags) = compile(&[("bench.yaml".to_string(), file)]);
        let set = Arc::new(set.unwrap_or_else(|| panic!("{diags:?}")));
        let mut store = SeriesStore::new(Duration::from_secs(600));
        let ids = (0..INSTANCES)
            .map(|h| {
                store.id(
                    "synth_cpu_percent",
                    &Labels::from_pairs([("instance", format!("host-{h:03}"))]),
                )
            })
            .collect();
        let engine = Engine::new(
            set,
            Settings {
                staleness: Duration::from_secs(300),
            },
        );
        Fixture {
            engine,
            store,
            ids,
            out: Output::default(),
            t: 0,
        }
    }

    /// Pushes one sample per series (`value(host, cycle)`) and evaluates the group once.
    fn cycle(&mut self, value: fn(usize, i64) -> f64) {
        self.t += 15_000;
        let k = self.t / 15_000;
        for (h, id) in self.ids.iter().enumerate() {
            self.store.push_id(
                *id,
                Sample {
                    t: Timestamp(self.t),
                    v: value(h, k),
                },
            );
        }
        self.out.clear();
        self.engine
            .evaluate_group(0, Timestamp(self.t), &mut self.store, &mut self.out);
        black_box(self.out.notifications.len());
    }
}

/// Steady state: each host sits at its own level with ±0.5 of noise, so instances are
/// inactive, pending or firing and stay so (hysteresis 2 absorbs the noise).
fn steady(h: usize, k: i64) -> f64 {
    ((h * 37) % 100) as f64 + if (h as i64 + k) % 2 == 0 { 0.5 } else { -0.5 }
}

/// Churn: values sweep across every threshold, so a large share of the 300,000 instances
/// change state in every cycle (far more than any real fleet), exercising events,
/// notifications and cooldowns.
fn churn(h: usize, k: i64) -> f64 {
    ((h * 37 + k as usize * 7) % 100) as f64
}

fn bench_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements((RULES * INSTANCES) as u64));
    g.sample_size(20);
    for (name, value) in [("steady", steady as fn(usize, i64) -> f64), ("churn", churn)] {
        let mut f = Fixture::new();
        // Warm up: bind instances and let the state machines reach their mix of states.
        for _ in 0..50 {
            f.cycle(value);
        }
        g.bench_function(format!("cycle_1000_rules_x_300_instances_{name}"), |b| {
            b.iter(|| f.cycle(value))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_cycle);
criterion_main!(benches);
