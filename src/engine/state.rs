//! Per-instance tier state machine (SPEC §3.3–§3.4).
use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The condition of one tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// Met when v > threshold, holds when v > clear.
    Above { threshold: f64, clear: f64 },
    /// Met when v < threshold, holds when v < clear.
    Below { threshold: f64, clear: f64 },
    /// A boolean condition; the caller builds its observation.
    When,
}

/// One compiled tier.
#[derive(Clone, Debug, PartialEq)]
pub struct TierSpec {
    pub severity: Arc<str>,
    pub condition: Condition,
    pub for_: Duration,
}

/// What an evaluation without data does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NoData {
    #[default]
    Keep,
    Resolve,
    Alert,
}

/// The state-machine policy of one alert rule.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Policy {
    pub tiers: Vec<TierSpec>,
    pub keep_firing_for: Duration,
    pub no_data: NoData,
}

/// Whether a tier is met and whether it holds at one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TierObs {
    pub met: bool,
    pub holds: bool,
}

impl Policy {
    /// met/holds of tier `tier` for value `v`.
    pub fn observe(&self, tier: usize, v: f64) -> TierObs {
        let _ = (tier, v);
        unimplemented!()
    }
}

/// A state change of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    Firing,
    Escalated,
    Deescalated,
    Resolved,
}

/// One transition produced by [`InstanceState::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub transition: Transition,
    pub tier: usize,
    pub at: Timestamp,
    pub nodata: bool,
}

/// The externally visible phase of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Inactive,
    Pending { tier: usize },
    Firing { tier: usize, starts_at: Timestamp },
}

/// Persisted per-instance state.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceState {
    pending: Vec<Option<Timestamp>>,
}

impl InstanceState {
    /// One evaluation at `now`.
    pub fn step(&mut self, policy: &Policy, now: Timestamp, obs: Option<&[TierObs]>, out: &mut Vec<Event>) {
        let _ = (policy, now, obs, out);
        unimplemented!()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        unimplemented!()
    }
}
