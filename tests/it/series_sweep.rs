//! Removing series is invisible to the rules: the engine run over a store swept at every
//! evaluation (series gone stale past every window removed, slots reused) emits exactly
//! the transitions and notifications of the same run over a store that keeps every series
//! forever, whatever the pattern of hosts going silent and coming back, for every
//! `no_data` mode, aggregates, recording rules and `age()` (the engine names the metrics
//! the store must keep: `Engine::pinned_metrics`).

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, Settings};
use tocsin::rules::{RuleSet, compile};
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

const RULES: &str = r#"
groups:
  - name: g
    interval: 15s
    rules:
      - record: doubled
        expr: m * 2
      - alert: Keep
        expr: m
        tiers: [{ severity: warning, above: 5, for: 30s }]
      - alert: Resolve
        expr: doubled
        no_data: resolve
        tiers: [{ severity: warning, above: 10, for: 15s }]
      - alert: NoData
        expr: avg_over_time(nd, "1m")
        no_data: alert
        tiers: [{ severity: warning, above: 7 }]
      - alert: PerZone
        expr: count(m)
        by: [zone]
        tiers: [{ severity: warning, above: 1 }]
      - alert: Silent
        expr: age(hb)
        tiers: [{ severity: warning, above: 100 }]
"#;

const STEP: i64 = 15_000;
const STALENESS: Duration = Duration::from_secs(30);

fn rules() -> Arc<RuleSet> {
    let file = parse_rules(&Source::from_text("r.yaml", RULES.to_string()).unwrap()).unwrap();
    let (set, d) = compile(&[("r.yaml".into(), file)]);
    Arc::new(set.unwrap_or_else(|| panic!("{d:?}")))
}

/// Every transition and notification of the run, per evaluation, as text (values may be
/// NaN), and how many series the sweeps removed.
fn run(plan: &[Vec<Option<u8>>], sweep: bool) -> (Vec<String>, usize) {
    let rules = rules();
    let window = rules.longest_window();
    let mut engine = Engine::new(Arc::clone(&rules), Settings { staleness: STALENESS });
    let pinned = engine.pinned_metrics();
    let mut store = SeriesStore::new(window.max(STALENESS) + Duration::from_secs(60));
    let mut out = Output::default();
    let mut log = Vec::new();
    let mut removed = 0;
    let steps = plan.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..steps {
        let now = Timestamp(k as i64 * STEP);
        for (h, values) in plan.iter().enumerate() {
            if let Some(Some(v)) = values.get(k) {
                let labels = Labels::from_pairs([("host", format!("h{h}")), ("zone", format!("z{}", h % 2))]);
                store.push(
                    "m",
                    &labels,
                    Sample {
                        t: now,
                        v: f64::from(*v),
                    },
                );
                store.push("hb", &labels, Sample { t: now, v: 1.0 });
                store.push(
                    "nd",
                    &labels,
                    Sample {
                        t: now,
                        v: f64::from(*v),
                    },
                );
            }
        }
        if sweep {
            removed += store.sweep(now, STALENESS, window, |m| pinned.contains(m));
        }
        out.clear();
        engine.evaluate_group(0, now, &mut store, &mut out);
        // Per evaluation as a sorted list: the order of different instances' news within one
        // evaluation follows series creation order, and a series that comes back after
        // being removed is created again, later.
        let mut step: Vec<String> = out.events.iter().map(|e| format!("{e:?}")).collect();
        step.extend(out.notifications.iter().map(|n| format!("{n:?}")));
        step.sort();
        log.push(format!("{k}: {step:?}"));
    }
    (log, removed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sweeping_never_changes_what_rules_do(
        plan in prop::collection::vec(prop::collection::vec(prop::option::weighted(0.5, 0u8..12), 10..60), 1..5)
    ) {
        let (kept, _) = run(&plan, false);
        let (swept, _) = run(&plan, true);
        for (a, b) in kept.iter().zip(&swept) {
            prop_assert_eq!(a, b);
        }
    }
}

/// The property is not vacuous: a host silent long enough is removed, and without the
/// `age()` exemption the swept run would differ.
#[test]
fn a_silent_host_is_removed_and_its_alerts_carry_on() {
    let mut plan = vec![vec![Some(9u8); 40]; 2];
    for v in &mut plan[0][8..30] {
        *v = None;
    }
    let (kept, _) = run(&plan, false);
    let (swept, removed) = run(&plan, true);
    assert!(removed > 0, "the silent host's series should have been swept");
    assert_eq!(kept, swept);
    assert!(
        kept.iter().any(|l| l.contains("Silent")),
        "the age() alert should fire: {kept:#?}"
    );
}
