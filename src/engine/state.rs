//! Per-instance tier state machine (SPEC §3.3–§3.4).
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

/// What an evaluation without data does (SPEC §3.4 step 0).
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
    /// (the `nodata="true"` label).
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
}

impl InstanceState {
    /// One evaluation at `now` (SPEC §3.4 steps 0–3), pushing at most one event into `out`.
    ///
    /// `obs` is `None` for "no data", else one [`TierObs`] per tier (missing entries count as
    /// neither met nor holding). A state restored from before a reload that removed tiers is
    /// clamped to the policy: extra pending timers are dropped and a firing tier past the last
    /// one becomes the last one, silently, since the tier it named no longer exists.
    pub fn step(
        &mut self,
        policy: &Policy,
        now: Timestamp,
        obs: Option<&[TierObs]>,
        out: &mut Vec<Event>,
    ) {
        let n = policy.tiers.len();
        if self.pending.len() != n {
            self.pending.resize(n, None);
        }
        if let Some(f) = &mut self.firing
            && n > 0
        {
            f.tier = f.tier.min(n - 1);
        }
        match (obs, policy.no_data) {
            (Some(obs), _) => self.advance(policy, now, false, out, |i| {
                obs.get(i).copied().unwrap_or_default()
            }),
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
