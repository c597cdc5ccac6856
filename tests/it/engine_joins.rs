//! Instances and joins (docs/rules.md, "Instances and labels"): which label sets a rule is
//! evaluated for, whatever order its expression names its metrics in, and how a rule-level
//! `select` treats inputs without the selected label.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, RuleRef, Settings};
use tocsin::rules::{RuleSet, compile};
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

fn ruleset(yaml: &str) -> Arc<RuleSet> {
    let src = Source::new("joins.yaml", yaml.as_bytes().to_vec()).unwrap();
    let (set, d) = compile(&[("joins.yaml".to_string(), parse_rules(&src).unwrap())]);
    Arc::new(set.unwrap_or_else(|| panic!("{d:?}")))
}

fn settings() -> Settings {
    Settings {
        staleness: Duration::from_secs(300),
    }
}

/// One series: metric, labels and its value.
type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// A store holding one sample at t=0 for each series.
fn store(series: &[Spec]) -> SeriesStore {
    let mut store = SeriesStore::new(Duration::from_secs(3600));
    for (metric, labels, v) in series {
        store.push(
            metric,
            &Labels::from_pairs(labels.iter().copied()),
            Sample { t: Timestamp(0), v: *v },
        );
    }
    store
}

/// A group of recording rules, one per expression, named `r0`, `r1`, ...
fn recording(exprs: &[&str]) -> Arc<RuleSet> {
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("      - record: r{i}\n        expr: \"{e}\"\n"))
        .collect();
    ruleset(&format!("groups:\n  - name: g\n    rules:\n{rules}"))
}

/// Each rule's instances after one evaluation at t=0: labels → value.
fn instances(rules: Arc<RuleSet>, store: &mut SeriesStore) -> Vec<BTreeMap<Labels, Option<f64>>> {
    let n = rules.groups[0].rules.len();
    let mut engine = Engine::new(rules, settings());
    let mut out = Output::default();
    engine.evaluate_group(0, Timestamp(0), store, &mut out);
    (0..n)
        .map(|rule| {
            engine
                .instances(RuleRef { group: 0, rule })
                .iter()
                .map(|i| (i.labels.clone(), i.value))
                .collect()
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn every_series_of_every_input_makes_an_instance_whatever_the_operand_order() {
    let mut s = store(&[
        ("used", &[("m", "a")], 1.0),
        ("used", &[("m", "b")], 2.0),
        ("total", &[("m", "a")], 4.0),
        ("total", &[("m", "c")], 8.0),
    ]);
    let got = instances(recording(&["used / total", "1 / (total / used)"]), &mut s);
    let want: BTreeMap<Labels, Option<f64>> = [
        (labels(&[("m", "a")]), Some(0.25)),
        // One input has no counterpart: no data, so `no_data: alert` can report it.
        (labels(&[("m", "b")]), None),
        (labels(&[("m", "c")]), None),
    ]
    .into_iter()
    .collect();
    assert_eq!(got[0], want, "used / total");
    assert_eq!(got[1], want, "1 / (total / used)");
}

/// `disk_used_gb > disk_budget_gb` over two mounts and one unlabelled budget, with a rule-level
/// `select` on `mount`: the firing instances after one evaluation.
fn firing_with_select(select: &str) -> Vec<Labels> {
    let rules = ruleset(&format!(
        "groups:\n  - name: g\n    rules:\n      - alert: DiskOverBudget\n        expr: disk_used_gb > disk_budget_gb\n        select: {{ mount: \"{select}\" }}\n"
    ));
    let mut s = store(&[
        ("disk_used_gb", &[("mount", "/")], 90.0),
        ("disk_used_gb", &[("mount", "/boot")], 80.0),
        ("disk_used_gb", &[("mount", "/home")], 10.0),
        ("disk_budget_gb", &[], 50.0),
    ]);
    let mut engine = Engine::new(rules, settings());
    let mut out = Output::default();
    engine.evaluate_group(0, Timestamp(0), &mut s, &mut out);
    let mut firing: Vec<Labels> = engine
        .alerts()
        .into_iter()
        .map(|a| {
            let mut l = a.labels;
            l.remove("alertname");
            l.remove("severity");
            l
        })
        .collect();
    firing.sort();
    firing
}

#[test]
fn a_rule_level_select_keeps_broadcasting_an_unlabelled_input() {
    assert_eq!(firing_with_select("/"), vec![labels(&[("mount", "/")])]);
    assert_eq!(firing_with_select("~/b.*"), vec![labels(&[("mount", "/boot")])]);
}

#[test]
fn select_takes_negated_values_and_regexes() {
    assert_eq!(firing_with_select("!/"), vec![labels(&[("mount", "/boot")])]);
    assert_eq!(firing_with_select("!~/(boot)?"), Vec::<Labels>::new());
    assert_eq!(
        firing_with_select("!~/h.*"),
        vec![labels(&[("mount", "/")]), labels(&[("mount", "/boot")])]
    );
}

/// Label sets over two keys with two values each, some keys missing: series of different
/// metrics overlap on some labels and not others.
fn label_set() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    (
        prop::option::of(prop_oneof![Just("1"), Just("2")]),
        prop::option::of(prop_oneof![Just("1"), Just("2")]),
    )
        .prop_map(|(x, y)| {
            let mut l = Vec::new();
            if let Some(x) = x {
                l.push(("x", x));
            }
            if let Some(y) = y {
                l.push(("y", y));
            }
            l
        })
}

fn metric_series() -> impl Strategy<Value = Vec<(Vec<(&'static str, &'static str)>, f64)>> {
    prop::collection::vec((label_set(), 1u32..100), 0..5)
        .prop_map(|v| v.into_iter().map(|(l, x)| (l, f64::from(x))).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A rule's instances and their values depend on the metrics it reads, not on the order
    /// its expression names them in.
    #[test]
    fn instances_do_not_depend_on_operand_order(a in metric_series(), b in metric_series(), c in metric_series()) {
        let mut series: Vec<Spec> = Vec::new();
        for (metric, list) in [("a", &a), ("b", &b), ("c", &c)] {
            for (l, v) in list {
                series.push((metric, l.as_slice(), *v));
            }
        }
        let mut s = store(&series);
        let got = instances(
            recording(&["a / b", "1 / (b / a)", "a + b", "b + a", "a + b * c", "c * b + a"]),
            &mut s,
        );
        let close = |x: &BTreeMap<Labels, Option<f64>>, y: &BTreeMap<Labels, Option<f64>>| {
            x.len() == y.len()
                && x.iter().zip(y).all(|((lx, vx), (ly, vy))| {
                    lx == ly
                        && match (vx, vy) {
                            (Some(p), Some(q)) => (p - q).abs() <= 1e-12 * p.abs().max(q.abs()),
                            (None, None) => true,
                            _ => false,
                        }
                })
        };
        prop_assert!(close(&got[0], &got[1]), "a / b {:?} vs 1 / (b / a) {:?}", got[0], got[1]);
        prop_assert_eq!(&got[2], &got[3]);
        prop_assert_eq!(&got[4], &got[5]);
        // Every series of an input with several is read by some instance (a single series is
        // broadcast to all of them).
        for (metric, list) in [("a", &a), ("b", &b)] {
            let distinct: std::collections::BTreeSet<_> = list.iter().map(|(l, _)| l).collect();
            if distinct.len() < 2 {
                continue;
            }
            for (l, _) in list {
                let l = Labels::from_pairs(l.iter().copied());
                prop_assert!(
                    got[2].keys().any(|inst| inst.compatible(&l)),
                    "{metric}{l:?} has no instance in {:?}", got[2]
                );
            }
        }
    }
}
