//! Action gating: whether an event runs a rule's action now.
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

/// What a gate says to an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The action does not react to this event (another tier, or a resolve without
    /// `resolved` in `on:`).
    Unwanted,
    /// Run it now.
    Run,
    /// Wanted, but its own limits refuse it.
    Blocked(Blocked),
}

/// Why a wanted action did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Its `cooldown` since the last run is not over.
    Cooldown,
    /// It ran `max_per_hour` times in the hour before.
    MaxPerHour,
}

impl Blocked {
    /// The name rule tests and history use: `cooldown`, `max_per_hour`.
    pub const fn name(self) -> &'static str {
        match self {
            Blocked::Cooldown => "cooldown",
            Blocked::MaxPerHour => "max_per_hour",
        }
    }
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
    /// resolve with `on_resolved` (else [`Verdict::Unwanted`]), the action's cooldown since
    /// its last run is over, and fewer than `max_per_hour` runs happened in the hour before
    /// (else [`Verdict::Blocked`]). Records the run when it says [`Verdict::Run`].
    pub fn admit(&mut self, t: &ActionTrigger, ev: &Event) -> Verdict {
        let wanted = match ev.transition {
            Transition::Resolved => t.on_resolved,
            Transition::Firing | Transition::Escalated | Transition::Deescalated => t.on_tiers.contains(&ev.tier),
        };
        if !wanted {
            return Verdict::Unwanted;
        }
        if self.last_run.is_some_and(|last| ev.at.since(last) < t.cooldown) {
            return Verdict::Blocked(Blocked::Cooldown);
        }
        while self.runs.front().is_some_and(|&r| ev.at.since(r) >= HOUR) {
            self.runs.pop_front();
        }
        match t.max_per_hour {
            Some(max) if self.runs.len() >= max as usize => return Verdict::Blocked(Blocked::MaxPerHour),
            Some(_) => self.runs.push_back(ev.at),
            None => self.runs.clear(),
        }
        self.last_run = Some(ev.at);
        Verdict::Run
    }

    /// When the action last ran.
    pub fn last_run(&self) -> Option<Timestamp> {
        self.last_run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ev(transition: Transition, tier: usize, at: i64) -> Event {
        Event {
            transition,
            tier,
            at: Timestamp(at),
            nodata: false,
        }
    }

    fn trigger(on_tiers: Vec<usize>, on_resolved: bool, cooldown_min: u64, max_per_hour: Option<u32>) -> ActionTrigger {
        ActionTrigger {
            on_tiers,
            on_resolved,
            cooldown: Duration::from_secs(cooldown_min * 60),
            max_per_hour,
        }
    }

    #[test]
    fn runs_on_entering_a_listed_tier_by_any_move() {
        let t = trigger(vec![2, 3], false, 0, None);
        let mut g = ActionGate::default();
        assert!(g.admit(&t, &ev(Transition::Firing, 2, 0)) == Verdict::Run);
        assert!(g.admit(&t, &ev(Transition::Escalated, 3, 1)) == Verdict::Run);
        assert!(g.admit(&t, &ev(Transition::Deescalated, 2, 2)) == Verdict::Run);
        assert_eq!(g.admit(&t, &ev(Transition::Deescalated, 1, 3)), Verdict::Unwanted);
        assert_eq!(g.admit(&t, &ev(Transition::Firing, 0, 4)), Verdict::Unwanted);
        assert_eq!(
            g.admit(&t, &ev(Transition::Resolved, 2, 5)),
            Verdict::Unwanted,
            "a resolve enters no tier"
        );
        assert_eq!(g.last_run(), Some(Timestamp(2)));
    }

    #[test]
    fn runs_on_resolved_only_when_asked() {
        let mut g = ActionGate::default();
        assert!(g.admit(&trigger(vec![], true, 0, None), &ev(Transition::Resolved, 0, 0)) == Verdict::Run);
        assert_eq!(
            g.admit(&trigger(vec![0], false, 0, None), &ev(Transition::Resolved, 0, 1)),
            Verdict::Unwanted
        );
    }

    #[test]
    fn cooldown_is_inclusive_and_rejections_do_not_restart_it() {
        let t = trigger(vec![0], false, 10, None);
        let mut g = ActionGate::default();
        assert!(g.admit(&t, &ev(Transition::Firing, 0, 0)) == Verdict::Run);
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 5 * MIN)),
            Verdict::Blocked(Blocked::Cooldown)
        );
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 10 * MIN - 1)),
            Verdict::Blocked(Blocked::Cooldown)
        );
        assert!(g.admit(&t, &ev(Transition::Firing, 0, 10 * MIN)) == Verdict::Run);
    }

    #[test]
    fn max_per_hour_is_a_sliding_hour() {
        let t = trigger(vec![0], false, 0, Some(3));
        let mut g = ActionGate::default();
        for m in [0, 10, 20] {
            assert!(g.admit(&t, &ev(Transition::Firing, 0, m * MIN)) == Verdict::Run);
        }
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 30 * MIN)),
            Verdict::Blocked(Blocked::MaxPerHour)
        );
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 60 * MIN - 1)),
            Verdict::Blocked(Blocked::MaxPerHour)
        );
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 60 * MIN)),
            Verdict::Run,
            "the 0m run is an hour old"
        );
        assert_eq!(
            g.admit(&t, &ev(Transition::Firing, 0, 65 * MIN)),
            Verdict::Blocked(Blocked::MaxPerHour)
        );
        assert!(g.admit(&t, &ev(Transition::Firing, 0, 70 * MIN)) == Verdict::Run);
    }

    #[test]
    fn max_per_hour_zero_never_runs() {
        let mut g = ActionGate::default();
        assert_eq!(
            g.admit(&trigger(vec![0], true, 0, Some(0)), &ev(Transition::Firing, 0, 0)),
            Verdict::Blocked(Blocked::MaxPerHour)
        );
        assert_eq!(g.last_run(), None);
    }

    #[test]
    fn gate_round_trips_through_json() {
        let t = trigger(vec![0], false, 0, Some(2));
        let mut g = ActionGate::default();
        g.admit(&t, &ev(Transition::Firing, 0, 0));
        let mut back: ActionGate = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
        assert!(back.admit(&t, &ev(Transition::Firing, 0, 1)) == Verdict::Run);
        assert_eq!(
            back.admit(&t, &ev(Transition::Firing, 0, 2)),
            Verdict::Blocked(Blocked::MaxPerHour),
            "the restored run still counts"
        );
    }
}
