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

fn ruleset(yaml: &str) -> Arc<RuleSet> {
    let src = Source::new("reload.yaml", yaml.as_bytes().to_vec()).unwrap();
    let (set, d) = compile(&[("reload.yaml".to_string(), parse_rules(&src).unwrap())]);
    Arc::new(set.unwrap_or_else(|| panic!("{d:?}")))
}

/// One alert with the given tiers and actions, as YAML.
fn alert(tiers: &str, actions: &str) -> Arc<RuleSet> {
    ruleset(&format!(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: m\n        tiers:\n{tiers}        actions:\n{actions}"
    ))
}

/// Pushes `v` at `t` ms and evaluates; returns the output.
fn step(engine: &mut Engine, store: &mut SeriesStore, t: i64, v: f64) -> Output {
    store.push("m", &Labels::new(), Sample { t: Timestamp(t), v });
    let mut out = Output::default();
    engine.evaluate_group(0, Timestamp(t), store, &mut out);
    out
}

#[test]
fn a_reload_that_reorders_actions_keeps_each_actions_own_gate() {
    const TIERS: &str = "          - { severity: warning, above: 50 }\n          - { severity: critical, above: 90 }\n";
    const WARN_FIRST: &str = "          - { name: on-warning, on: [warning], exec: [/bin/true], cooldown: 10m }\n          - { name: on-critical, on: [critical], exec: [/bin/true], cooldown: 10m }\n";
    const CRIT_FIRST: &str = "          - { name: on-critical, on: [critical], exec: [/bin/true], cooldown: 10m }\n          - { name: on-warning, on: [warning], exec: [/bin/true], cooldown: 10m }\n";
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    let mut engine = Engine::new(alert(TIERS, WARN_FIRST), settings());
    let ran = |out: &Output| -> Vec<String> { out.actions.iter().map(|a| a.kind.0.clone()).collect() };
    assert_eq!(ran(&step(&mut engine, &mut store, 0, 60.0)), ["on-warning"]);
    engine.replace_rules(alert(TIERS, CRIT_FIRST));
    assert!(ran(&step(&mut engine, &mut store, 60_000, 40.0)).is_empty(), "resolved");
    // on-warning ran 2 minutes ago: its 10m cooldown still runs after the reorder...
    assert!(ran(&step(&mut engine, &mut store, 120_000, 60.0)).is_empty());
    // ...and on-critical never ran, so nothing holds it back.
    assert_eq!(ran(&step(&mut engine, &mut store, 180_000, 95.0)), ["on-critical"]);
}

#[test]
fn a_reload_that_adds_a_tier_keeps_timers_and_the_firing_tier_by_severity() {
    const TWO: &str = "          - { severity: warning, above: 50, for: 5m }\n          - { severity: critical, above: 90, for: 5m }\n";
    const THREE: &str = "          - { severity: warning, above: 50, for: 5m }\n          - { severity: high, above: 80, for: 5m }\n          - { severity: critical, above: 90, for: 5m }\n";
    const NONE: &str = "          []\n";
    const MIN: i64 = 60_000;
    let severities = |e: &Engine| -> Vec<String> { e.alerts().iter().map(|a| a.severity.to_string()).collect() };

    // Pending: critical's `for` timer started at 0 and stays critical's.
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    let mut engine = Engine::new(alert(TWO, NONE), settings());
    step(&mut engine, &mut store, 0, 95.0);
    engine.replace_rules(alert(THREE, NONE));
    for t in 1..5 {
        assert!(step(&mut engine, &mut store, t * MIN, 95.0).notifications.is_empty());
    }
    let out = step(&mut engine, &mut store, 5 * MIN, 95.0);
    let fired: Vec<(String, String)> = out
        .notifications
        .iter()
        .map(|n| (format!("{:?}", n.kind), n.severity.to_string()))
        .collect();
    assert_eq!(fired, [("Firing".to_string(), "critical".to_string())]);

    // Firing: still critical after a reload that moves critical to another position, and
    // receivers are told nothing new.
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    let mut engine = Engine::new(alert(TWO, NONE), settings());
    for t in 0..=5 {
        step(&mut engine, &mut store, t * MIN, 95.0);
    }
    assert_eq!(severities(&engine), ["critical"]);
    engine.replace_rules(alert(THREE, NONE));
    let out = step(&mut engine, &mut store, 6 * MIN, 95.0);
    assert_eq!(severities(&engine), ["critical"]);
    assert!(out.notifications.is_empty(), "{:?}", out.notifications);
    // Falling to high is a de-escalation receivers hear about.
    let out = step(&mut engine, &mut store, 7 * MIN, 85.0);
    let told: Vec<(String, String)> = out
        .notifications
        .iter()
        .map(|n| (format!("{:?}", n.kind), n.severity.to_string()))
        .collect();
    assert_eq!(told, [("Deescalated".to_string(), "high".to_string())]);
}
