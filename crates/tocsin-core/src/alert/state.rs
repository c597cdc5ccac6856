//! Per-instance tier state machine.
//!
//! Owns the compiled tier policy of an alert rule ([`Policy`]) and the persisted state of one
//! instance ([`InstanceState`]): pending starts, the firing tier, the episode start and the
//! `keep_firing_for` countdown. [`InstanceState::step`] turns one evaluation into at most one
//! [`Event`]. This module is pure: no I/O, no clock (time is always an argument), no
//! notification or action logic (see `notify` and `action`). `step` runs once per instance per
//! evaluation, so it never allocates once the pending vector has the policy's size.

use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The condition of one tier, with its clear threshold already resolved by the compiler
/// (explicit `clear`, else threshold ∓ hysteresis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// Met while the value is > `threshold`, holds while it is > `clear`.
    Above {
        /// The firing threshold.
        threshold: f64,
        /// The clear threshold (≤ `threshold`).
        clear: f64,
    },
    /// Met while the value is < `threshold`, holds while it is < `clear`.
    Below {
        /// The firing threshold.
        threshold: f64,
        /// The clear threshold (≥ `threshold`).
        clear: f64,
    },
    /// A boolean `when:` condition: met and holding are the same thing.
    When,
}

/// One compiled tier.
#[derive(Clone, Debug, PartialEq)]
pub struct TierSpec {
    /// The tier's severity name, as notified.
    pub severity: Arc<str>,
    /// When the tier is met and when it holds.
    pub condition: Condition,
    /// How long the tier must be met continuously before it is due (inclusive).
    pub for_: Duration,
}

/// What an evaluation without data does (step 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NoData {
    /// Leave a firing instance as it is; clear pending starts.
    #[default]
    Keep,
    /// Resolve a firing instance at once; clear pending starts.
    Resolve,
    /// Treat the least severe tier as met (and holding) and every other tier as not met.
    Alert,
}

/// The state-machine policy of one alert rule.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Policy {
    /// Tiers from least to most severe.
    pub tiers: Vec<TierSpec>,
    /// How long an instance keeps firing after no tier holds any more (inclusive).
    pub keep_firing_for: Duration,
    /// Behaviour on evaluations without data.
    pub no_data: NoData,
}

/// Where each tier of a rule's old policy went in its new one, by severity: what a reload
/// hands over, so reordering, adding or removing tiers keeps every tier's own timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierMap(Vec<Option<usize>>);

impl TierMap {
    /// Maps each tier of `old` to the tier of `new` with the same severity, if any.
    pub fn new(old: &Policy, new: &Policy) -> TierMap {
        TierMap(
            old.tiers
                .iter()
                .map(|t| new.tiers.iter().position(|n| n.severity == t.severity))
                .collect(),
        )
    }

    /// Whether every tier keeps its index (the usual reload): nothing needs moving.
    pub fn is_identity(&self) -> bool {
        self.0.iter().enumerate().all(|(i, j)| *j == Some(i))
    }

    /// The new index of old tier `tier`, if its severity survived.
    pub fn survivor(&self, tier: usize) -> Option<usize> {
        self.0.get(tier).copied().flatten()
    }

    /// The new index of old tier `tier`: the same severity, else the nearest less severe tier
    /// that survived, else the least severe one. A firing instance whose tier was removed
    /// keeps firing there, and steps 3b–3d take it on from that tier.
    pub fn tier(&self, tier: usize) -> usize {
        (0..=tier.min(self.0.len()))
            .rev()
            .find_map(|i| self.survivor(i))
            .unwrap_or(0)
    }
}

/// Whether a tier is met and whether it holds, at one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierObs {
    /// The tier's condition is true.
    pub met: bool,
    /// The value is on the firing side of the tier's clear threshold.
    pub holds: bool,
}

impl Policy {
    /// met/holds of tier `tier` for the numeric value `v`. Comparisons are strict, so NaN
    /// meets nothing.
    ///
    /// A `When` tier reads `v` as a boolean (non-zero and not NaN is true), which is how a
    /// float-only evaluator hands back a comparison; callers holding a real `bool` build the
    /// [`TierObs`] themselves. A tier index past the policy observes nothing.
    pub fn observe(&self, tier: usize, v: f64) -> TierObs {
        match self.tiers.get(tier).map(|t| &t.condition) {
            Some(&Condition::Above { threshold, clear }) => TierObs {
                met: v > threshold,
                holds: v > clear,
            },
            Some(&Condition::Below { threshold, clear }) => TierObs {
                met: v < threshold,
                holds: v < clear,
            },
            Some(Condition::When) => {
                let b = v != 0.0 && !v.is_nan();
                TierObs { met: b, holds: b }
            }
            None => TierObs::default(),
        }
    }
}

/// A state change of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Not firing → firing; a new episode starts.
    Firing,
    /// Firing → firing at a more severe tier.
    Escalated,
    /// Firing → firing at a less severe tier.
    Deescalated,
    /// Firing → not firing; the episode ends.
    Resolved,
}

impl Transition {
    /// The lower-case name history, the API and `TOCSIN_EVENT` use.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Escalated => "escalated",
            Transition::Deescalated => "deescalated",
            Transition::Resolved => "resolved",
        }
    }
}

/// One transition produced by [`InstanceState::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub transition: Transition,
    /// The new tier; for `Resolved` the tier the instance was firing at.
    pub tier: usize,
    /// The evaluation time.
    pub at: Timestamp,
    /// The event came from an evaluation without data under `no_data: alert`
    /// (the notification flag `nodata`, never a label).
    pub nodata: bool,
}

/// The externally visible phase of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
    /// Neither firing nor pending.
    #[default]
    Inactive,
    /// Not firing, and `tier` is the most severe tier with a running `for` timer.
    Pending {
        /// The most severe pending tier.
        tier: usize,
    },
    /// Firing at `tier` since the episode started at `starts_at`.
    Firing {
        /// The current tier.
        tier: usize,
        /// When the episode started (survives escalations and de-escalations).
        starts_at: Timestamp,
    },
}

/// The firing part of an instance's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Firing {
    tier: usize,
    starts_at: Timestamp,
    /// Start of the running `keep_firing_for` countdown, if any.
    keep_since: Option<Timestamp>,
}

/// The persisted state of one alert instance.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceState {
    /// Per tier: when it became met, while it stays met.
    pending: Vec<Option<Timestamp>>,
    firing: Option<Firing>,
    /// Start of the latest episode, kept after it ends: a resolution names the episode it
    /// ends (`starts_at` of a resolved alert). Absent in states saved by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_start: Option<Timestamp>,
}

impl InstanceState {
    /// Inactive with no tier pending: nothing about it needs remembering.
    pub fn is_at_rest(&self) -> bool {
        self.firing.is_none() && self.pending.iter().all(Option::is_none)
    }

    /// One evaluation at `now` (steps 0–3), pushing at most one event into `out`.
    ///
    /// `obs` is `None` for "no data", else one [`TierObs`] per tier (missing entries count as
    /// neither met nor holding). A state restored from before a reload that removed tiers is
    /// clamped to the policy: extra pending timers are dropped and a firing tier past the last
    /// one becomes the last one, silently, since the tier it named no longer exists.
    pub fn step(&mut self, policy: &Policy, now: Timestamp, obs: Option<&[TierObs]>, out: &mut Vec<Event>) {
        let n = policy.tiers.len();
        if self.pending.len() != n {
            // Exactly `n`: the timers live as long as the instance, and growing from empty
            // would reserve room for four.
            self.pending.truncate(n);
            self.pending.reserve_exact(n - self.pending.len());
            self.pending.resize(n, None);
        }
        if let Some(f) = &mut self.firing
            && n > 0
        {
            f.tier = f.tier.min(n - 1);
        }
        match (obs, policy.no_data) {
            (Some(obs), _) => self.advance(policy, now, false, out, |i| obs.get(i).copied().unwrap_or_default()),
            (None, NoData::Keep) => self.pending.fill(None),
            (None, NoData::Resolve) => {
                self.pending.fill(None);
                if let Some(f) = self.firing.take() {
                    out.push(Event {
                        transition: Transition::Resolved,
                        tier: f.tier,
                        at: now,
                        nodata: false,
                    });
                }
            }
            (None, NoData::Alert) => self.advance(policy, now, true, out, |i| TierObs {
                met: i == 0,
                holds: i == 0,
            }),
        }
    }

    /// Steps 1–3 with observations given per tier index.
    fn advance(
        &mut self,
        policy: &Policy,
        now: Timestamp,
        nodata: bool,
        out: &mut Vec<Event>,
        obs: impl Fn(usize) -> TierObs,
    ) {
        let n = self.pending.len();
        let obs = |i: usize| if i < n { obs(i) } else { TierObs::default() };
        let event = |transition, tier| Event {
            transition,
            tier,
            at: now,
            nodata,
        };

        // Step 1: pending starts; remember the most severe due tier.
        let mut most_due = None;
        for (i, (pending, tier)) in self.pending.iter_mut().zip(&policy.tiers).enumerate() {
            if obs(i).met {
                let start = *pending.get_or_insert(now);
                if now.since(start) >= tier.for_ {
                    most_due = Some(i);
                }
            } else {
                *pending = None;
            }
        }

        let Some(f) = &mut self.firing else {
            // Step 2.
            if let Some(tier) = most_due {
                self.firing = Some(Firing {
                    tier,
                    starts_at: now,
                    keep_since: None,
                });
                self.last_start = Some(now);
                out.push(event(Transition::Firing, tier));
            }
            return;
        };

        // Step 3.
        if let Some(tier) = most_due.filter(|&d| d > f.tier) {
            f.tier = tier;
            f.keep_since = None;
            out.push(event(Transition::Escalated, tier));
        } else if obs(f.tier).holds {
            f.keep_since = None;
        } else if let Some(tier) = (0..f.tier.min(n)).rev().find(|&i| obs(i).holds) {
            f.tier = tier;
            f.keep_since = None;
            out.push(event(Transition::Deescalated, tier));
        } else {
            let since = *f.keep_since.get_or_insert(now);
            if now.since(since) >= policy.keep_firing_for {
                out.push(event(Transition::Resolved, f.tier));
                self.firing = None;
            }
        }
    }

    /// Moves the state to a reloaded policy of `tiers` tiers: pending starts follow their
    /// tier's severity (those of removed tiers are dropped) and so does the firing tier.
    pub fn remap_tiers(&mut self, map: &TierMap, tiers: usize) {
        let mut pending = vec![None; tiers];
        for (i, start) in self.pending.iter().enumerate() {
            if let Some(j) = map.survivor(i).filter(|&j| j < tiers) {
                pending[j] = *start;
            }
        }
        self.pending = pending;
        if let Some(f) = &mut self.firing {
            f.tier = map.tier(f.tier);
        }
    }

    /// The current phase. Pending is the most severe tier with a pending start, and only
    /// reported while not firing (pending instances are visible, never notified).
    pub fn phase(&self) -> Phase {
        match self.firing {
            Some(f) => Phase::Firing {
                tier: f.tier,
                starts_at: f.starts_at,
            },
            None => match self.pending.iter().rposition(Option::is_some) {
                Some(tier) => Phase::Pending { tier },
                None => Phase::Inactive,
            },
        }
    }

    /// Start of the current episode, or of the last one when the instance no longer fires
    /// (`None` before its first firing).
    pub fn episode_start(&self) -> Option<Timestamp> {
        self.firing.map(|f| f.starts_at).or(self.last_start)
    }

    /// The tier the instance fires at, if it is firing.
    pub fn firing_tier(&self) -> Option<usize> {
        self.firing.map(|f| f.tier)
    }

    /// Start of the running `keep_firing_for` countdown, if the instance is firing and no tier
    /// holds any more.
    pub fn keep_firing_since(&self) -> Option<Timestamp> {
        self.firing.and_then(|f| f.keep_since)
    }

    /// When tier `tier` became met, if it is met now (its `for` timer).
    pub fn pending_since(&self, tier: usize) -> Option<Timestamp> {
        self.pending.get(tier).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn above(severity: &str, threshold: f64, clear: f64, for_: Duration) -> TierSpec {
        TierSpec {
            severity: Arc::from(severity),
            condition: Condition::Above { threshold, clear },
            for_,
        }
    }

    /// The `MemoryPressure` rule of the rule-file reference.
    fn memory() -> Policy {
        Policy {
            tiers: vec![
                above("warning", 70.0, 65.0, secs(300)),
                above("high", 80.0, 75.0, secs(180)),
                above("critical", 90.0, 85.0, secs(60)),
                above("emergency", 95.0, 90.0, secs(30)),
            ],
            keep_firing_for: secs(60),
            no_data: NoData::Keep,
        }
    }

    /// Drives `s` with one value per entry, `every` ms apart from `t0`; returns the events.
    fn run(s: &mut InstanceState, p: &Policy, t0: i64, every: i64, values: &[Option<f64>]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut obs = Vec::new();
        for (k, v) in values.iter().enumerate() {
            let now = Timestamp(t0 + k as i64 * every);
            match v {
                Some(v) => {
                    obs.clear();
                    obs.extend((0..p.tiers.len()).map(|i| p.observe(i, *v)));
                    s.step(p, now, Some(&obs), &mut out);
                }
                None => s.step(p, now, None, &mut out),
            }
        }
        out
    }

    fn ev(transition: Transition, tier: usize, at: i64) -> Event {
        Event {
            transition,
            tier,
            at: Timestamp(at),
            nodata: false,
        }
    }

    fn single(threshold: f64, clear: f64, for_: Duration, keep: Duration) -> Policy {
        Policy {
            tiers: vec![above("warning", threshold, clear, for_)],
            keep_firing_for: keep,
            no_data: NoData::Keep,
        }
    }

    #[test]
    fn observe_is_strict_and_uses_clear() {
        let p = Policy {
            tiers: vec![
                above("a", 70.0, 65.0, Duration::ZERO),
                TierSpec {
                    severity: Arc::from("b"),
                    condition: Condition::Below {
                        threshold: 10.0,
                        clear: 15.0,
                    },
                    for_: Duration::ZERO,
                },
                TierSpec {
                    severity: Arc::from("c"),
                    condition: Condition::When,
                    for_: Duration::ZERO,
                },
            ],
            ..Policy::default()
        };
        assert_eq!(
            p.observe(0, 70.0),
            TierObs {
                met: false,
                holds: true
            }
        );
        assert_eq!(p.observe(0, 70.5), TierObs { met: true, holds: true });
        assert_eq!(
            p.observe(0, 65.0),
            TierObs {
                met: false,
                holds: false
            }
        );
        assert_eq!(
            p.observe(1, 10.0),
            TierObs {
                met: false,
                holds: true
            }
        );
        assert_eq!(p.observe(1, 9.0), TierObs { met: true, holds: true });
        assert_eq!(
            p.observe(1, 15.0),
            TierObs {
                met: false,
                holds: false
            }
        );
        assert_eq!(p.observe(2, 1.0), TierObs { met: true, holds: true });
        assert_eq!(p.observe(2, 0.0), TierObs::default());
        assert_eq!(p.observe(2, f64::NAN), TierObs::default());
        assert_eq!(p.observe(0, f64::NAN), TierObs::default());
        assert_eq!(p.observe(9, 100.0), TierObs::default(), "tier past the policy");
    }

    #[test]
    fn step1_pending_start_is_kept_while_met_and_cleared_when_not() {
        let p = single(70.0, 70.0, secs(300), Duration::ZERO);
        let mut s = InstanceState::default();
        run(&mut s, &p, 0, MIN, &[Some(80.0), Some(81.0)]);
        assert_eq!(s.pending_since(0), Some(Timestamp(0)));
        assert_eq!(s.phase(), Phase::Pending { tier: 0 });
        run(&mut s, &p, 2 * MIN, MIN, &[Some(50.0)]);
        assert_eq!(s.pending_since(0), None);
        assert_eq!(s.phase(), Phase::Inactive);
        run(&mut s, &p, 3 * MIN, MIN, &[Some(80.0)]);
        assert_eq!(s.pending_since(0), Some(Timestamp(3 * MIN)), "a new run restarts `for`");
    }

    #[test]
    fn for_is_inclusive() {
        let p = single(70.0, 70.0, secs(300), Duration::ZERO);
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, MIN, &[Some(80.0); 6]);
        assert_eq!(out, vec![ev(Transition::Firing, 0, 5 * MIN)]);
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, 299_999, &[Some(80.0); 2]);
        assert!(out.is_empty(), "one millisecond short of `for`");
    }

    #[test]
    fn for_zero_fires_at_first_evaluation() {
        let p = single(70.0, 70.0, Duration::ZERO, Duration::ZERO);
        let mut s = InstanceState::default();
        assert_eq!(
            run(&mut s, &p, 7, MIN, &[Some(71.0)]),
            vec![ev(Transition::Firing, 0, 7)]
        );
        assert_eq!(
            s.phase(),
            Phase::Firing {
                tier: 0,
                starts_at: Timestamp(7)
            }
        );
    }

    #[test]
    fn step2_fires_at_most_severe_due_tier_not_most_severe_met() {
        let mut s = InstanceState::default();
        // 92 meets critical at 0 (due at 1m) but warning/high were met earlier.
        let out = run(
            &mut s,
            &memory(),
            0,
            MIN,
            &[Some(82.0), Some(82.0), Some(82.0), Some(92.0), Some(92.0), Some(92.0)],
        );
        // high (met 0, for 3m) due at 3m.
        assert_eq!(
            out,
            vec![
                ev(Transition::Firing, 1, 3 * MIN),
                ev(Transition::Escalated, 2, 4 * MIN)
            ]
        );
        assert_eq!(
            s.phase(),
            Phase::Firing {
                tier: 2,
                starts_at: Timestamp(3 * MIN)
            }
        );
    }

    #[test]
    fn step3a_escalates_straight_to_most_severe_due() {
        let mut s = InstanceState::default();
        let vals = [60.0, 72.0, 74.0, 76.0, 78.0, 82.0, 85.0, 92.0, 93.0];
        let out = run(&mut s, &memory(), 0, MIN, &vals.map(Some));
        assert_eq!(
            out,
            vec![
                ev(Transition::Firing, 0, 6 * MIN),
                ev(Transition::Escalated, 2, 8 * MIN)
            ]
        );
    }

    #[test]
    fn escalation_needs_for_of_the_new_tier() {
        let mut s = InstanceState::default();
        let out = run(&mut s, &memory(), 0, 10_000, &[Some(96.0); 4]);
        // critical due at 60s only; emergency (for 30s) due at 30s fires first.
        assert_eq!(out, vec![ev(Transition::Firing, 3, 30_000)]);
    }

    #[test]
    fn step3b_stays_while_tier_holds() {
        let p = single(70.0, 65.0, Duration::ZERO, Duration::ZERO);
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, MIN, &[Some(71.0), Some(66.0), Some(65.5), Some(65.0)]);
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 0, 0), ev(Transition::Resolved, 0, 3 * MIN)]
        );
    }

    #[test]
    fn step3b_cancels_keep_firing_countdown() {
        let p = single(70.0, 65.0, Duration::ZERO, secs(120));
        let mut s = InstanceState::default();
        let out = run(
            &mut s,
            &p,
            0,
            MIN,
            &[Some(71.0), Some(60.0), Some(66.0), Some(60.0), Some(60.0)],
        );
        assert_eq!(out, vec![ev(Transition::Firing, 0, 0)]);
        assert_eq!(s.keep_firing_since(), Some(Timestamp(3 * MIN)), "countdown restarted");
        let out = run(&mut s, &p, 5 * MIN, MIN, &[Some(60.0)]);
        assert_eq!(out, vec![ev(Transition::Resolved, 0, 5 * MIN)]);
    }

    #[test]
    fn step3c_deescalates_to_most_severe_holding_without_new_for() {
        let mut s = InstanceState::default();
        let vals = [95.5, 95.5, 76.0]; // emergency at 30s... then 76 holds high (clear 75) only
        let out = run(&mut s, &memory(), 0, 30_000, &vals.map(Some));
        assert_eq!(
            out,
            vec![
                ev(Transition::Firing, 3, 30_000),
                ev(Transition::Deescalated, 1, 60_000)
            ]
        );
        assert_eq!(
            s.phase(),
            Phase::Firing {
                tier: 1,
                starts_at: Timestamp(30_000)
            }
        );
    }

    #[test]
    fn step3c_cancels_keep_firing_countdown() {
        let p = Policy {
            tiers: vec![
                above("w", 70.0, 60.0, Duration::ZERO),
                above("c", 90.0, 90.0, Duration::ZERO),
            ],
            keep_firing_for: secs(600),
            no_data: NoData::Keep,
        };
        let mut s = InstanceState::default();
        // At 91 firing c; 50 nothing holds (countdown); 65 holds w → de-escalate, countdown off.
        let out = run(&mut s, &p, 0, MIN, &[Some(91.0), Some(50.0), Some(65.0)]);
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 1, 0), ev(Transition::Deescalated, 0, 2 * MIN)]
        );
        assert_eq!(s.keep_firing_since(), None);
    }

    #[test]
    fn step3d_keep_firing_for_is_inclusive_and_carries_tier() {
        let mut s = InstanceState::default();
        let out = run(
            &mut s,
            &memory(),
            0,
            30_000,
            &[Some(96.0), Some(96.0), Some(10.0), Some(10.0), Some(10.0)],
        );
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 3, 30_000), ev(Transition::Resolved, 3, 120_000)]
        );
        assert_eq!(s.phase(), Phase::Inactive);
    }

    #[test]
    fn step3d_keep_firing_for_zero_resolves_at_once() {
        let p = single(70.0, 70.0, Duration::ZERO, Duration::ZERO);
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, MIN, &[Some(71.0), Some(70.0)]);
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 0, 0), ev(Transition::Resolved, 0, MIN)]
        );
    }

    #[test]
    fn nodata_keep_leaves_firing_and_clears_pending() {
        let mut s = InstanceState::default();
        let p = memory();
        let out = run(
            &mut s,
            &p,
            0,
            MIN,
            &[Some(82.0), Some(82.0), Some(82.0), Some(82.0), Some(82.0), None, None],
        );
        assert_eq!(out, vec![ev(Transition::Firing, 1, 3 * MIN)]);
        assert_eq!(
            s.phase(),
            Phase::Firing {
                tier: 1,
                starts_at: Timestamp(3 * MIN)
            }
        );
        assert_eq!(s.pending_since(0), None);
        // warning must be met for a full 5m again.
        let out = run(&mut s, &p, 7 * MIN, MIN, &[Some(60.0), Some(60.0)]);
        assert_eq!(out, vec![ev(Transition::Resolved, 1, 8 * MIN)]);

        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, MIN, &[Some(72.0), Some(72.0), None, Some(72.0)]);
        assert!(out.is_empty());
        assert_eq!(s.pending_since(0), Some(Timestamp(3 * MIN)));
    }

    #[test]
    fn nodata_resolve_resolves_now_and_clears_pending() {
        let p = Policy {
            no_data: NoData::Resolve,
            ..memory()
        };
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, 30_000, &[Some(96.0), Some(96.0), None]);
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 3, 30_000), ev(Transition::Resolved, 3, 60_000)]
        );
        let out = run(&mut s, &p, 0, 30_000, &[Some(72.0), None, None]);
        assert!(out.is_empty(), "nothing to resolve");
        assert_eq!(s.phase(), Phase::Inactive);
    }

    #[test]
    fn nodata_alert_meets_least_severe_tier_only() {
        let p = Policy {
            no_data: NoData::Alert,
            ..memory()
        };
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, MIN, &[None; 6]);
        let nodata = |transition, tier, at| Event {
            nodata: true,
            ..ev(transition, tier, at)
        };
        assert_eq!(out, vec![nodata(Transition::Firing, 0, 5 * MIN)]);

        // Firing at critical, then no data: warning holds, critical does not.
        let mut s = InstanceState::default();
        let out = run(&mut s, &p, 0, 30_000, &[Some(92.0), Some(92.0), Some(92.0), None]);
        assert_eq!(
            out,
            vec![
                ev(Transition::Firing, 2, 60_000),
                nodata(Transition::Deescalated, 0, 90_000)
            ]
        );
        assert_eq!(s.pending_since(2), None);
    }

    #[test]
    fn phase_reports_most_severe_pending_and_keeps_episode_start() {
        let mut s = InstanceState::default();
        let p = memory();
        run(&mut s, &p, 0, MIN, &[Some(92.0)]);
        assert_eq!(s.phase(), Phase::Pending { tier: 2 });
        run(&mut s, &p, MIN, MIN, &[Some(82.0)]);
        assert_eq!(s.phase(), Phase::Pending { tier: 1 });
        run(&mut s, &p, 2 * MIN, MIN, &[Some(96.0), Some(96.0), Some(96.0)]);
        // emergency (for 30s) is met from 2m, due at the 3m evaluation.
        assert_eq!(
            s.phase(),
            Phase::Firing {
                tier: 3,
                starts_at: Timestamp(3 * MIN)
            }
        );
        assert_eq!(s.firing_tier(), Some(3));
    }

    #[test]
    fn restored_state_with_removed_tiers_is_clamped() {
        let mut s = InstanceState::default();
        run(&mut s, &memory(), 0, 30_000, &[Some(96.0), Some(96.0)]);
        assert_eq!(s.firing_tier(), Some(3));
        let json = serde_json::to_string(&s).unwrap();
        let mut restored: InstanceState = serde_json::from_str(&json).unwrap();
        let mut fewer = memory();
        fewer.tiers.truncate(2);
        let out = run(&mut restored, &fewer, 60_000, 30_000, &[Some(96.0)]);
        assert!(out.is_empty());
        assert_eq!(restored.firing_tier(), Some(1));
        let out = run(
            &mut restored,
            &fewer,
            90_000,
            30_000,
            &[Some(10.0), Some(10.0), Some(10.0)],
        );
        assert_eq!(out, vec![ev(Transition::Resolved, 1, 150_000)]);

        // No tiers at all: nothing holds, so it resolves rather than firing forever.
        let mut s: InstanceState = serde_json::from_str(&json).unwrap();
        let empty = Policy::default();
        let mut out = Vec::new();
        s.step(&empty, Timestamp(60_000), Some(&[]), &mut out);
        s.step(&empty, Timestamp(61_000), None, &mut out);
        assert_eq!(out, vec![ev(Transition::Resolved, 3, 60_000)]);
    }

    #[test]
    fn short_observation_slice_counts_as_not_met() {
        let mut s = InstanceState::default();
        let mut out = Vec::new();
        let obs = [TierObs { met: true, holds: true }];
        s.step(
            &single(1.0, 1.0, Duration::ZERO, Duration::ZERO),
            Timestamp(0),
            Some(&obs),
            &mut out,
        );
        s.step(&memory(), Timestamp(1), Some(&obs), &mut out);
        s.step(&memory(), Timestamp(2), Some(&[]), &mut out);
        assert_eq!(s.keep_firing_since(), Some(Timestamp(2)));
        s.step(&memory(), Timestamp(MIN + 2), Some(&[]), &mut out);
        assert_eq!(
            out,
            vec![ev(Transition::Firing, 0, 0), ev(Transition::Resolved, 0, MIN + 2)]
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = InstanceState::default();
        run(
            &mut s,
            &memory(),
            0,
            MIN,
            &[Some(82.0), Some(82.0), Some(82.0), Some(92.0), Some(10.0)],
        );
        let back: InstanceState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
