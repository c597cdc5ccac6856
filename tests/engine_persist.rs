//! The engine's persisted form and reloads: a run interrupted at any evaluation, whose
//! instance states are saved and restored into a fresh engine (a restart), or whose rule set
//! is replaced by an equal one (a reload), notifies exactly like the uninterrupted run.

use std::sync::Arc;
use std::time::Duration;

use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, Settings};
use tocsin::rules::{RuleSet, compile};
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

fn rules() -> Arc<RuleSet> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spec/rules/memory.yaml");
    let src = Source::new(path, std::fs::read(path).unwrap()).unwrap();
    let (set, d) = compile(&[(path.to_string(), parse_rules(&src).unwrap())]);
    Arc::new(set.unwrap_or_else(|| panic!("{d:?}")))
}

const VALUES: [f64; 14] = [60., 72., 74., 76., 78., 82., 85., 92., 93., 94., 86., 76., 66., 60.];
const STEP: i64 = 15_000;
const END: i64 = 20 * 60_000;

fn settings() -> Settings {
    Settings {
        staleness: Duration::from_secs(300),
    }
}

/// Runs the documented rule-test timeline; at evaluation `cut` (if any) the engine is interrupted by
/// `interrupt`, which returns the engine to continue with. Returns every notification as
/// (time, kind, severity).
fn run(cut: Option<i64>, interrupt: &dyn Fn(Engine) -> Engine) -> Vec<(i64, String, String)> {
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    let mut engine = Engine::new(rules(), settings());
    let mut out = Output::default();
    let mut got = Vec::new();
    let mut t = 0;
    while t <= END {
        if t % 60_000 == 0 && ((t / 60_000) as usize) < VALUES.len() {
            store.push(
                "mem_used_percent",
                &Labels::new(),
                Sample {
                    t: Timestamp(t),
                    v: VALUES[(t / 60_000) as usize],
                },
            );
        }
        if Some(t) == cut {
            engine = interrupt(engine);
        }
        out.clear();
        engine.evaluate_group(0, Timestamp(t), &mut store, &mut out);
        got.extend(
            out.notifications
                .iter()
                .map(|n| (n.at.0, format!("{:?}", n.kind), n.severity.to_string())),
        );
        t += STEP;
    }
    got
}

#[test]
fn restart_from_persisted_state_at_any_point_changes_nothing() {
    let whole = run(None, &|e| e);
    assert_eq!(whole.len(), 4, "{whole:?}");
    for cut in (0..=END).step_by(STEP as usize) {
        let restarted = run(Some(cut), &|mut old: Engine| {
            let mut changes = Vec::new();
            old.take_changes(0, &mut changes);
            let saved: Vec<(String, String)> = changes.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
            let mut fresh = Engine::new(rules(), settings());
            assert!(fresh.restore(saved).is_empty());
            fresh
        });
        assert_eq!(restarted, whole, "restart before the evaluation at {cut} ms");
    }
}

#[test]
fn take_changes_reports_only_changes_and_deletes_at_rest() {
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    let mut engine = Engine::new(rules(), settings());
    let mut out = Output::default();
    let mut changes = Vec::new();
    store.push(
        "mem_used_percent",
        &Labels::new(),
        Sample {
            t: Timestamp(0),
            v: 60.0,
        },
    );
    engine.evaluate_group(0, Timestamp(0), &mut store, &mut out);
    engine.take_changes(0, &mut changes);
    assert!(changes.is_empty(), "an instance at rest is not persisted: {changes:?}");
    store.push(
        "mem_used_percent",
        &Labels::new(),
        Sample {
            t: Timestamp(STEP),
            v: 75.0,
        },
    );
    engine.evaluate_group(0, Timestamp(STEP), &mut store, &mut out);
    engine.take_changes(0, &mut changes);
    assert_eq!(changes.len(), 1);
    assert!(changes[0].1.is_some(), "pending is persisted");
    changes.clear();
    engine.evaluate_group(0, Timestamp(2 * STEP), &mut store, &mut out);
    engine.take_changes(0, &mut changes);
    assert!(changes.is_empty(), "nothing changed: {changes:?}");
    store.push(
        "mem_used_percent",
        &Labels::new(),
        Sample {
            t: Timestamp(3 * STEP),
            v: 50.0,
        },
    );
    engine.evaluate_group(0, Timestamp(3 * STEP), &mut store, &mut out);
    engine.take_changes(0, &mut changes);
    assert_eq!(changes.len(), 1);
    assert!(changes[0].1.is_none(), "back at rest: deleted");
}

#[test]
fn reload_with_the_same_rules_at_any_point_changes_nothing() {
    let whole = run(None, &|e| e);
    for cut in (0..=END).step_by(4 * STEP as usize) {
        let reloaded = run(Some(cut), &|mut e: Engine| {
            e.replace_rules(rules());
            e
        });
        assert_eq!(reloaded, whole, "reload before the evaluation at {cut} ms");
    }
}
