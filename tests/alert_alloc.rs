//! What a firing, routed alert keeps on the heap once its notification is out: the
//! daemon's `Pipeline` (engine, dispatcher with its inhibition map, receivers) with N
//! instances of one rule routed to a webhook, counted byte for byte by a global allocator.
//! The figure is "all N firing and delivered" less "the same N series and instances at
//! rest", over N: the cost of firing, not of the series or of the instance as such.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tocsin::config::{Source, parse_receivers, parse_rules};
use tocsin::engine::Settings;
use tocsin::pipeline::{Effects, Options, Pipeline};
use tocsin::series::{Labels, Sample, Timestamp};

#[path = "heap/mod.rs"]
mod heap;
use heap::live;

const N: usize = 5_000;

/// `benches/delivery.rs`'s policy: one rule over pushed series, every alert its own group
/// (default routing) to one native webhook; the rule has `annotation` when given.
fn pipeline(annotation: Option<&str>) -> Pipeline {
    let mut rule =
        "groups:\n  - name: bench\n    interval: 1s\n    rules:\n      - alert: Tp\n        expr: tp > 5\n".to_string();
    if let Some(a) = annotation {
        rule += &format!("        annotations: {{ summary: \"{a}\" }}\n");
    }
    let rules = parse_rules(&Source::from_text("r.yaml", rule).unwrap()).unwrap();
    let set = Arc::new(
        tocsin::rules::compile(&[("r.yaml".into(), rules)])
            .0
            .expect("the rule compiles"),
    );
    let receivers = parse_receivers(
        &Source::from_text(
            "recv.yaml",
            "receivers:\n  - name: sink\n    webhook: { url: \"http://127.0.0.1:9/hook\", format: native }\nroutes:\n  - receivers: [sink]\n",
        )
        .unwrap(),
        &|_| None,
    )
    .unwrap();
    let compiled = tocsin::policy::compile(&[("recv.yaml".into(), receivers)], &BTreeSet::new());
    assert!(
        compiled
            .diagnostics
            .iter()
            .all(|d| d.severity != tocsin::diag::Severity::Error),
        "{:?}",
        compiled.diagnostics
    );
    Pipeline::new(
        set,
        &compiled.policy,
        Options {
            settings: Settings {
                staleness: Duration::from_secs(300),
            },
            retention: Duration::from_secs(60),
            external_url: "http://127.0.0.1:9470".into(),
            history_resolution: Duration::from_secs(60),
            flush_chunk: None,
        },
    )
}

/// Heap bytes per alert that firing (and being delivered) adds to `N` instances at rest.
fn firing_cost(annotation: Option<&str>) -> isize {
    let mut p = pipeline(annotation);
    let ids: Vec<_> = (0..N)
        .map(|i| p.series.id("tp", &Labels::from_pairs([("i", i.to_string())])))
        .collect();
    let step = |p: &mut Pipeline, k: i64, v: f64| {
        let now = Timestamp(k * 1000);
        for id in &ids {
            p.series.push_id(*id, Sample { t: now, v });
        }
        // What the daemon does with the effects: commits them, then lets them go.
        let mut fx = Effects::default();
        p.evaluate(0, now, Timestamp(now.0 + 1000), &mut fx);
        fx
    };
    // At rest: every series has a sample window and an instance, none fires. Enough steps
    // to fill each window to its retention, so only firing adds memory below.
    for k in 0..70 {
        drop(step(&mut p, k, 1.0));
    }
    let at_rest = live();
    // All cross at once; the burst's messages go out (and are dropped, as after commit).
    let fx = step(&mut p, 70, 10.0);
    assert_eq!(fx.dispatches.len(), N, "one message per alert (its own group)");
    drop(fx);
    for k in 71..140 {
        drop(step(&mut p, k, 10.0));
    }
    let firing = live();
    assert_eq!(p.engine.alerts().len(), N, "every instance fires");
    (firing - at_rest) / N as isize
}

#[test]
fn a_firing_routed_alert_at_rest_keeps_little_heap() {
    let bare = firing_cost(None);
    let annotated = firing_cost(Some("{{ labels.i }} at {{ value }}"));
    println!(
        "heap per firing routed alert at rest ({N} alerts): {bare} B; {annotated} B with a one-line summary annotation"
    );
    // The promise is 1 KiB (docs: BENCHMARKS.md), for the delivery benchmark's alerts.
    assert!(
        bare <= 1024,
        "a firing routed alert keeps {bare} B at rest (budget 1 KiB)"
    );
}
