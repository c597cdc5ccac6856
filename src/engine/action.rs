//! Action gating (SPEC §3.6): whether an event runs a rule's action now.
//!
//! Owns the per (instance, action) rate-limit state, [`ActionGate`]. Pure: running the action
//! (exec, webhook, timeouts, dry-run) is someone else's job, and time comes from the event.
//! Actions are gated on events, not on notifications, so a notification cooldown never delays
//! an automated response; the action's own `cooldown` and `max_per_hour` limit it instead.

use super::state::{Event, Transition};
use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// When an action runs.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ActionTrigger {
    /// Tiers whose entry (firing, escalating or de-escalating into them) runs the action.
    pub on_tiers: Vec<usize>,
    /// Whether a resolve runs the action.
    pub on_resolved: bool,
    /// Minimum time between two runs (inclusive).
    pub cooldown: Duration,
    /// At most this many runs in any hour.
    pub max_per_hour: Option<u32>,
}

/// Per (instance, action) persisted state: when the action last ran.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ActionGate {
    last_run: Option<Timestamp>,
    /// Runs inside the last hour, oldest first; only kept while `max_per_hour` is set.
    runs: VecDeque<Timestamp>,
}

impl ActionGate {
    /// Whether `ev` should run the action now: it enters a tier listed in `on_tiers` or is a
    /// resolve with `on_resolved`, the action's cooldown since its last run is over, and fewer
    /// than `max_per_hour` runs happened in the hour before. Records the run when it says yes.
    pub fn admit(&mut self, t: &ActionTrigger, ev: &Event) -> bool {
        let wanted = match ev.transition {
            Transition::Resolved => t.on_resolved,
            Transition::Firing | Transition::Escalated | Transition::Deescalated => t.on_tiers.contains(&ev.tier),
        };
        if !wanted || self.last_run.is_some_and(|last| ev.at.since(last) < t.cooldown) {
            return false;
        }
        while self.runs.front().is_some_and(|&r| ev.at.since(r) >= HOUR) {
            self.runs.pop_front();
        }
        match t.max_per_hour {
            Some(max) if self.runs.len() >= max as usize => return false,
            Some(_) => self.runs.push_back(ev.at),
            None => self.runs.clear(),
        }
        self.last_run = Some(ev.at);
        true
    }

    /// When the action last ran.
    pub fn last_run(&self) -> Option<Timestamp> {
        self.last_run
    }
}
