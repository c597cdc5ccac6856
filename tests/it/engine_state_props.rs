//! Property tests of the per-instance state machine and notification rules
//! over random policies and random value sequences, including missing data.

use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tocsin::alert::notify::{FlapPolicy, NoteKind, Notification, NotifyPolicy, NotifyState};
use tocsin::alert::state::{Condition, Event, InstanceState, NoData, Policy, TierObs, TierSpec, Transition};
use tocsin::series::Timestamp;

/// Evaluation spacing unit; `for`, cooldowns etc. are multiples of half of it, so some are
/// hit exactly and some fall between evaluations.
const STEP: i64 = 10_000;

fn ms(n: i64) -> Duration {
    Duration::from_millis(n as u64)
}

#[derive(Clone, Debug)]
struct Case {
    policy: Policy,
    notify: NotifyPolicy,
    /// (time, value); `None` is "no data".
    evals: Vec<(Timestamp, Option<f64>)>,
    /// A value on the clear side of every tier, used to drive the instance to resolution.
    calm: f64,
}

fn policy() -> impl Strategy<Value = (Policy, f64)> {
    (
        prop::collection::vec((1.0f64..20.0, 0.0f64..12.0, 0i64..8), 1..=4),
        any::<bool>(),
        0i64..8,
        prop_oneof![Just(NoData::Keep), Just(NoData::Resolve), Just(NoData::Alert)],
    )
        .prop_map(|(tiers, below, keep, no_data)| {
            let mut threshold = if below { 100.0 } else { 0.0 };
            let tiers = tiers
                .into_iter()
                .enumerate()
                .map(|(i, (gap, hysteresis, for_halfsteps))| {
                    let condition = if below {
                        threshold -= gap;
                        Condition::Below {
                            threshold,
                            clear: threshold + hysteresis,
                        }
                    } else {
                        threshold += gap;
                        Condition::Above {
                            threshold,
                            clear: threshold - hysteresis,
                        }
                    };
                    TierSpec {
                        severity: Arc::from(format!("t{i}")),
                        condition,
                        for_: ms(for_halfsteps * STEP / 2),
                    }
                })
                .collect();
            let calm = if below { 1e9 } else { -1e9 };
            (
                Policy {
                    tiers,
                    keep_firing_for: ms(keep * STEP / 2),
                    no_data,
                },
                calm,
            )
        })
}

fn notify_policy() -> impl Strategy<Value = NotifyPolicy> {
    (
        0i64..10,
        any::<bool>(),
        prop::option::of(1i64..10),
        1.0f64..3.0,
        1i64..30,
        prop::option::of((1u32..6, 1i64..12)),
    )
        .prop_map(
            |(cooldown, cooldown_escalations, repeat, backoff, repeat_max, flap)| NotifyPolicy {
                cooldown: ms(cooldown * STEP / 2),
                cooldown_escalations,
                repeat_interval: repeat.map(|r| ms(r * STEP / 2)),
                repeat_backoff: backoff,
                repeat_max: ms(repeat_max * STEP),
                flap: flap.map(|(transitions, within)| FlapPolicy {
                    transitions,
                    within: ms(within * STEP),
                }),
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        policy(),
        notify_policy(),
        prop::collection::vec((1i64..=3, prop::option::weighted(0.9, 0.0f64..110.0)), 1..120),
    )
        .prop_map(|((policy, calm), notify, raw)| {
            let mut t = 0;
            let evals = raw
                .into_iter()
                .map(|(gap, v)| {
                    t += gap * STEP / 2;
                    (Timestamp(t), v)
                })
                .collect();
            Case {
                policy,
                notify,
                evals,
                calm,
            }
        })
}

#[derive(Default, Debug, PartialEq)]
struct Trace {
    events: Vec<Event>,
    notes: Vec<Notification>,
}

/// One evaluation of the instance as the engine does it: step, then feed events, then rule 6.
fn evaluate(
    c: &Case,
    s: &mut InstanceState,
    n: &mut NotifyState,
    now: Timestamp,
    v: Option<f64>,
    obs: &mut Vec<TierObs>,
    trace: &mut Trace,
) {
    let first = trace.events.len();
    match v {
        Some(v) => {
            obs.clear();
            obs.extend((0..c.policy.tiers.len()).map(|i| c.policy.observe(i, v)));
            s.step(&c.policy, now, Some(obs), &mut trace.events);
        }
        None => s.step(&c.policy, now, None, &mut trace.events),
    }
    for e in &trace.events[first..] {
        n.on_event(&c.notify, e, &mut trace.notes);
    }
    n.after_evaluation(&c.notify, now, s.firing_tier(), &mut trace.notes);
}

fn run(c: &Case, evals: &[(Timestamp, Option<f64>)], s: &mut InstanceState, n: &mut NotifyState) -> Trace {
    let mut trace = Trace::default();
    let mut obs = Vec::new();
    for &(now, v) in evals {
        evaluate(c, s, n, now, v, &mut obs, &mut trace);
    }
    trace
}

/// The case's evaluations followed by calm ones, long enough for any episode to resolve, any
/// flapping to end and any cooldown to pass.
fn with_calm_tail(c: &Case) -> Vec<(Timestamp, Option<f64>)> {
    let last = c.evals.last().map_or(0, |e| e.0.0);
    let flap = c.notify.flap.as_ref().map_or(Duration::ZERO, |f| f.within);
    let span = c.policy.keep_firing_for + flap + c.notify.cooldown + ms(3 * STEP);
    let steps = span.as_millis() as i64 / STEP + 2;
    let tail = (1..=steps).map(|k| (Timestamp(last + k * STEP), Some(c.calm)));
    c.evals.iter().copied().chain(tail).collect()
}

/// What step 1 sees for tier `i`: the observation, or the no-data substitute.
fn effective(c: &Case, i: usize, v: Option<f64>) -> TierObs {
    match (v, c.policy.no_data) {
        (Some(v), _) => c.policy.observe(i, v),
        (None, NoData::Alert) => TierObs {
            met: i == 0,
            holds: i == 0,
        },
        (None, _) => TierObs::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A tier is entered by firing or escalation only after it has been met continuously for
    /// at least its `for`.
    #[test]
    fn never_fires_a_tier_before_its_for(c in case()) {
        let (mut s, mut n) = Default::default();
        let mut met_since: Vec<Option<Timestamp>> = vec![None; c.policy.tiers.len()];
        let mut obs = Vec::new();
        let mut trace = Trace::default();
        for &(now, v) in &c.evals {
            for (i, since) in met_since.iter_mut().enumerate() {
                if effective(&c, i, v).met {
                    since.get_or_insert(now);
                } else {
                    *since = None;
                }
            }
            let first = trace.events.len();
            evaluate(&c, &mut s, &mut n, now, v, &mut obs, &mut trace);
            for e in &trace.events[first..] {
                if matches!(e.transition, Transition::Firing | Transition::Escalated) {
                    let since = met_since[e.tier];
                    prop_assert!(since.is_some(), "{e:?} entered an unmet tier");
                    prop_assert!(now.since(since.unwrap()) >= c.policy.tiers[e.tier].for_, "{e:?} before `for`");
                }
            }
        }
    }

    /// De-escalation and resolution happen only once the tier being left no longer holds (or,
    /// for `no_data: resolve`, on missing data); a de-escalation lands on a tier that holds.
    #[test]
    fn never_leaves_a_tier_that_still_holds(c in case()) {
        let (mut s, mut n) = Default::default();
        let mut obs = Vec::new();
        let mut trace = Trace::default();
        let mut tier = None;
        for &(now, v) in &c.evals {
            let first = trace.events.len();
            evaluate(&c, &mut s, &mut n, now, v, &mut obs, &mut trace);
            for e in &trace.events[first..] {
                match e.transition {
                    Transition::Firing | Transition::Escalated => {}
                    Transition::Deescalated => {
                        let from = tier.expect("de-escalated while not firing");
                        prop_assert!(e.tier < from);
                        prop_assert!(!effective(&c, from, v).holds, "left t{from} while it held: {e:?}");
                        prop_assert!(effective(&c, e.tier, v).holds, "landed on t{} that does not hold", e.tier);
                    }
                    Transition::Resolved => {
                        let from = tier.expect("resolved while not firing");
                        prop_assert_eq!(e.tier, from);
                        let nodata_resolve = v.is_none() && c.policy.no_data == NoData::Resolve;
                        prop_assert!(nodata_resolve || (0..=from).all(|i| !effective(&c, i, v).holds));
                    }
                }
                tier = (e.transition != Transition::Resolved).then_some(e.tier);
            }
            prop_assert_eq!(s.firing_tier(), tier);
        }
    }

    /// Receivers see alternating episodes: a resolve only after a notified firing state (or a
    /// `flapping`), and, once the instance has calmed down, exactly one resolve after the last
    /// of them.
    #[test]
    fn every_notified_firing_gets_exactly_one_resolve(c in case()) {
        let (mut s, mut n) = Default::default();
        let trace = run(&c, &with_calm_tail(&c), &mut s, &mut n);
        prop_assert_eq!(s.firing_tier(), None);
        prop_assert!(!n.flapping());
        let mut receivers_know_firing = false;
        let mut seq = 0;
        for note in &trace.notes {
            prop_assert!(note.seq > seq, "seq not increasing");
            seq = note.seq;
            if note.kind == NoteKind::Resolved {
                prop_assert!(receivers_know_firing, "resolve without a notified firing: {:?}", trace.notes);
                receivers_know_firing = false;
            } else {
                // `flapping` tells receivers the alert exists (delivery sends it as firing).
                receivers_know_firing = true;
            }
        }
        prop_assert!(!receivers_know_firing, "a notified firing was never resolved: {:?}", trace.notes);
    }

    /// A firing-state notification is named after what receivers see change (rule 4):
    /// `escalated`/`deescalated` against the severity they were last told, `firing` when they
    /// were not told it fires (or hear where a flapping instance settled), `repeat` only of the
    /// state they know.
    #[test]
    fn notifications_are_named_after_what_receivers_see_change(c in case()) {
        let (mut s, mut n) = Default::default();
        let trace = run(&c, &with_calm_tail(&c), &mut s, &mut n);
        let mut known: Option<usize> = None;
        let mut after_flapping = false;
        for note in &trace.notes {
            match note.kind {
                NoteKind::Escalated => prop_assert!(known.is_some_and(|k| note.tier > k), "{note:?} after {known:?}"),
                NoteKind::Deescalated => prop_assert!(known.is_some_and(|k| note.tier < k), "{note:?} after {known:?}"),
                NoteKind::Repeat | NoteKind::Acknowledged => prop_assert_eq!(known, Some(note.tier), "{:?}", note),
                NoteKind::Firing => prop_assert!(
                    known.is_none() || after_flapping && known == Some(note.tier),
                    "{note:?} after {known:?}"
                ),
                NoteKind::Resolved | NoteKind::Flapping => {}
            }
            match note.kind {
                NoteKind::Resolved => known = None,
                NoteKind::Flapping | NoteKind::Acknowledged => {}
                _ => known = Some(note.tier),
            }
            after_flapping = note.kind == NoteKind::Flapping;
        }
    }

    /// Only escalations that receivers see as such pass a running cooldown (rule 2): a
    /// `deescalated` or `repeat`, which an escalation of the state machine can turn into, waits
    /// for the cooldown of the notification before it (rules 3 and 4). The settled state after
    /// flapping is released when the instance is stable, cooldown or not.
    #[test]
    fn step_downs_and_repeats_wait_for_the_cooldown(c in case()) {
        let (mut s, mut n) = Default::default();
        let trace = run(&c, &with_calm_tail(&c), &mut s, &mut n);
        for pair in trace.notes.windows(2) {
            let (prev, note) = (pair[0], pair[1]);
            if matches!(note.kind, NoteKind::Deescalated | NoteKind::Repeat) && prev.kind != NoteKind::Flapping {
                prop_assert!(
                    note.at.since(prev.at) >= c.notify.cooldown,
                    "{note:?} inside the cooldown of {prev:?}: {:?}", trace.notes
                );
            }
        }
    }

    /// Receivers told that an instance flaps always hear where it settled: once the instance
    /// has calmed down, a `flapping` is followed by another notification.
    #[test]
    fn flapping_is_always_followed_by_the_settled_state(c in case()) {
        let (mut s, mut n) = Default::default();
        let trace = run(&c, &with_calm_tail(&c), &mut s, &mut n);
        prop_assert!(!n.flapping());
        if let Some(last) = trace.notes.last() {
            prop_assert!(last.kind != NoteKind::Flapping, "{:?}", trace.notes);
        }
    }

    /// Stopping at any point, persisting both states as JSON and resuming from them changes
    /// nothing.
    #[test]
    fn persisting_and_restoring_changes_nothing(c in case(), split in any::<prop::sample::Index>()) {
        let evals = with_calm_tail(&c);
        let (mut s, mut n) = Default::default();
        let whole = run(&c, &evals, &mut s, &mut n);

        let k = split.index(evals.len() + 1);
        let (mut s1, mut n1) = Default::default();
        let mut halves = run(&c, &evals[..k], &mut s1, &mut n1);
        let mut s2: InstanceState = serde_json::from_str(&serde_json::to_string(&s1).unwrap()).unwrap();
        let mut n2: NotifyState = serde_json::from_str(&serde_json::to_string(&n1).unwrap()).unwrap();
        prop_assert_eq!(&s2, &s1);
        prop_assert_eq!(&n2, &n1);
        let rest = run(&c, &evals[k..], &mut s2, &mut n2);
        halves.events.extend(rest.events);
        halves.notes.extend(rest.notes);
        prop_assert_eq!(halves, whole);
        prop_assert_eq!(s2, s);
        prop_assert_eq!(n2, n);
    }
}
