//! `tocsin backtest`'s replay: one week of 15 s evaluations of 100 threshold rules over
//! 1,000 series (100 metrics of 10 hosts each, every rule reading one metric: 1,000
//! instances), each host spiking above the threshold for 5 minutes twice a day, through the
//! whole pipeline (engine, value history, routing, tally). Target: under 5 s for the week.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tocsin::config::{Source, parse_rules};
use tocsin::rules::compile;
use tocsin::series::{Labels, Sample, Timestamp};
use tocsin_core::backtest::{Input, Plan, replay};

const RULES: usize = 100;
const HOSTS: usize = 10;
const STEP_MS: i64 = 15_000;
const STEPS: i64 = 7 * 24 * 3600 * 1000 / STEP_MS;

fn rule_file() -> String {
    let mut y = String::from("groups:\n  - name: synth\n    interval: 15s\n    rules:\n");
    for i in 0..RULES {
        y += &format!(
            "      - alert: Synth{i:03}\n        expr: synth_{i:03}\n        tiers:\n          - {{ severity: warning, above: 80, for: 1m }}\n          - {{ severity: critical, above: 90, for: 2m }}\n        hysteresis: 2\n        cooldown: 5m\n"
        );
    }
    y
}

/// 50, but 95 for 5 minutes twice a day, at a time of its own for each series.
fn inputs() -> Vec<Input> {
    let mut out = Vec::with_capacity(RULES * HOSTS);
    for m in 0..RULES {
        for h in 0..HOSTS {
            let offset = ((m * HOSTS + h) * 97) as i64 % 2880;
            let samples = (0..=STEPS)
                .map(|k| Sample {
                    t: Timestamp(k * STEP_MS),
                    v: if (k + offset) % 2880 < 20 { 95.0 } else { 50.0 },
                })
                .collect();
            out.push(Input {
                metric: format!("synth_{m:03}"),
                labels: Labels::from_pairs([("host", format!("host-{h}"))]),
                samples,
            });
        }
    }
    out
}

fn bench_week(c: &mut Criterion) {
    let src = Source::new("bench.yaml", rule_file().into_bytes()).expect("source");
    let file = parse_rules(&src).expect("rules parse");
    let (set, diags) = compile(&[("bench.yaml".to_string(), file)]);
    let set = Arc::new(set.unwrap_or_else(|| panic!("{diags:?}")));
    let inputs = inputs();
    let plan = Plan {
        from: Timestamp(0),
        to: Timestamp(STEPS * STEP_MS),
        step: None,
        evaluation_interval: Duration::from_secs(15),
        staleness: Duration::from_secs(300),
        not_replayable: BTreeMap::new(),
    };
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("week_15s_100_rules_x_1000_series", |b| {
        b.iter(|| {
            let report = replay(&set, None, &plan, &inputs, &[]);
            black_box(report.rules.iter().map(|r| r.notifications()).sum::<usize>())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_week);
criterion_main!(benches);
