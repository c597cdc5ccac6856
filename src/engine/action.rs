//! Action gating (SPEC §3.6).
use super::state::Event;
use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When an action runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionTrigger {
    pub on_tiers: Vec<usize>,
    pub on_resolved: bool,
    pub cooldown: Duration,
    pub max_per_hour: Option<u32>,
}

/// Per (instance, action) persisted state.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ActionGate {
    last_run: Option<Timestamp>,
}

impl ActionGate {
    /// Whether `ev` runs the action now.
    pub fn admit(&mut self, t: &ActionTrigger, ev: &Event) -> bool {
        let _ = (t, ev);
        unimplemented!()
    }
}
