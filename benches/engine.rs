//! One evaluation cycle of 1,000 compiled threshold rules over 300 instances each
//! (300,000 instance evaluations: expression, tier observation, state machine and
//! notification rules). Target (SPEC §11): ≥ 10 million instance evaluations per second
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

fn bench_cycle(c: &mut Criterion) {
    let src = Source::new("bench.yaml", rule_file().into_bytes()).expect("source");
    let file = parse_rules(&src).expect("rules parse");
    let (set, diags) = compile(&[("bench.yaml".to_string(), file)]);
    let set = Arc::new(set.unwrap_or_else(|| panic!("{diags:?}")));
    let mut store = SeriesStore::new(Duration::from_secs(600));
    let labels: Vec<Labels> = (0..INSTANCES)
        .map(|h| Labels::from_pairs([("instance", format!("host-{h:03}"))]))
        .collect();
    let ids: Vec<_> = labels.iter().map(|l| store.id("synth_cpu_percent", l)).collect();
    let mut engine = Engine::new(
        set,
        Settings {
            staleness: Duration::from_secs(300),
        },
    );
    let mut out = Output::default();
    let mut t = 0i64;
    let mut cycle = |store: &mut SeriesStore, engine: &mut Engine, out: &mut Output| {
        t += 15_000;
        for (h, id) in ids.iter().enumerate() {
            // Values wander across every threshold so all tiers and transitions happen.
            let v = ((h * 37 + (t / 15_000) as usize * 7) % 100) as f64;
            store.push_id(*id, Sample { t: Timestamp(t), v });
        }
        out.clear();
        engine.evaluate_group(0, Timestamp(t), store, out);
        black_box(out.notifications.len());
    };
    // Warm up: bind instances and let the state machines reach a steady mix of states.
    for _ in 0..50 {
        cycle(&mut store, &mut engine, &mut out);
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements((RULES * INSTANCES) as u64));
    g.sample_size(20);
    g.bench_function("cycle_1000_rules_x_300_instances", |b| {
        b.iter(|| cycle(&mut store, &mut engine, &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench_cycle);
criterion_main!(benches);
