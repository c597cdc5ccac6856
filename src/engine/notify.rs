//! Notification rules (SPEC §3.5).
use super::state::Event;
use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Flap detection policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlapPolicy {
    pub transitions: u32,
    pub within: Duration,
}

/// Notification policy of one alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotifyPolicy {
    pub cooldown: Duration,
    pub cooldown_escalations: bool,
    pub repeat_interval: Option<Duration>,
    pub repeat_backoff: f64,
    pub repeat_max: Duration,
    pub flap: Option<FlapPolicy>,
}

/// Kind of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoteKind {
    Firing,
    Escalated,
    Deescalated,
    Repeat,
    Resolved,
    Flapping,
}

/// A notification to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NoteKind,
    pub tier: usize,
    pub at: Timestamp,
    pub seq: u64,
    pub nodata: bool,
}

/// Persisted per-instance notification state.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct NotifyState {
    seq: u64,
}

impl NotifyState {
    /// Feed one event.
    pub fn on_event(&mut self, p: &NotifyPolicy, ev: &Event, out: &mut Vec<Notification>) {
        let _ = (p, ev, out);
        unimplemented!()
    }

    /// Called once after every evaluation.
    pub fn after_evaluation(&mut self, p: &NotifyPolicy, now: Timestamp, firing: Option<usize>, out: &mut Vec<Notification>) {
        let _ = (p, now, firing, out);
        unimplemented!()
    }
}
