//! The engine's binding cache against the rebind it stands in for.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::{Engine, Output, RuleRef, Settings};
use crate::config::{Source, parse_rules};
use crate::series::{Labels, Sample, SeriesStore, Timestamp};

/// One rule of each shape: a single input (bound incrementally), one with a matcher, a
/// join of two inputs and one with `select` (both always rebound), and an alert on a
/// recorded series (its input gains series as the recording rule writes them).
const RULES: &str = "groups:
  - name: g
    interval: 1s
    rules:
      - record: doubled
        expr: a * 2
      - alert: Single
        expr: a > 5
      - alert: Matched
        expr: a{dc=\"x\"} > 5
      - alert: Joined
        expr: a + b > 5
      - alert: Selected
        expr: a > 5
        select: { dc: \"x\" }
      - alert: OnRecorded
        expr: doubled > 10
";

fn engine() -> Engine {
    let src = Source::new("r.yaml", RULES.as_bytes().to_vec()).unwrap();
    let (set, d) = crate::rules::compile(&[("r.yaml".to_string(), parse_rules(&src).unwrap())]);
    let set = set.unwrap_or_else(|| panic!("{d:?}"));
    Engine::new(
        Arc::new(set),
        Settings {
            staleness: Duration::from_secs(5),
        },
    )
}

#[derive(Clone, Debug)]
enum Op {
    /// A sample of `a` (false) or `b` (true) for instance `i` in datacenter `x` or `y`.
    Push { b: bool, i: u8, x: bool, v: f64 },
    /// One evaluation of the group, one second after the last.
    Evaluate,
    /// Time passes, then a sweep (removing what went stale).
    Sweep { secs: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0u8..6, any::<bool>(), 0.0f64..10.0).prop_map(|(b, i, x, v)| Op::Push { b, i, x, v }),
        4 => Just(Op::Evaluate),
        1 => (0u8..20).prop_map(|secs| Op::Sweep { secs }),
    ]
}

/// What a rule's instances are: their identity, bindings and state, in order.
fn instances(e: &Engine) -> Vec<String> {
    let groups = &e.rules().groups;
    (0..groups[0].rules.len())
        .flat_map(|r| e.instances(RuleRef { group: 0, rule: r }))
        .map(|i| format!("{} {:?} {} {:?}", i.fingerprint, i.bindings, i.orphaned, i.machine))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Binding only a rule's new series (or nothing, when what it reads did not change)
    /// leaves every rule with the instances, in the order and state, a full rebind before
    /// each evaluation gives, and the same output.
    #[test]
    fn bound_incrementally_is_bound_as_a_rebind_would(ops in proptest::collection::vec(op(), 1..120)) {
        let (mut cached, mut fresh) = (engine(), engine());
        let (mut cached_store, mut fresh_store) = (SeriesStore::new(Duration::from_secs(60)), SeriesStore::new(Duration::from_secs(60)));
        let mut now = 0i64;
        for op in ops {
            match op {
                Op::Push { b, i, x, v } => {
                    let labels = Labels::from_pairs([("i", i.to_string()), ("dc", if x { "x" } else { "y" }.to_string())]);
                    let metric = if b { "b" } else { "a" };
                    for store in [&mut cached_store, &mut fresh_store] {
                        store.push(metric, &labels, Sample { t: Timestamp(now), v });
                    }
                }
                Op::Evaluate => {
                    now += 1_000;
                    let (mut a, mut b) = (Output::default(), Output::default());
                    for rs in fresh.state.iter_mut().flatten() {
                        rs.bound_at = None;
                    }
                    for r in 0..cached.rules().groups[0].rules.len() {
                        let rref = RuleRef { group: 0, rule: r };
                        cached.evaluate_rule(rref, Timestamp(now), &mut cached_store, &mut a);
                        fresh.evaluate_rule(rref, Timestamp(now), &mut fresh_store, &mut b);
                    }
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                    prop_assert_eq!(instances(&cached), instances(&fresh));
                }
                Op::Sweep { secs } => {
                    now += i64::from(secs) * 1_000;
                    for store in [&mut cached_store, &mut fresh_store] {
                        store.sweep(Timestamp(now), Duration::from_secs(5), Duration::from_secs(5), |_| false);
                    }
                }
            }
        }
    }
}
