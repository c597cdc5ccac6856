//! Notification rules (SPEC §3.5): cooldown, coalescing, repeats and flapping, per instance.
//!
//! Owns [`NotifyState`], which turns the [`Event`]s of one instance into [`Notification`]s.
//! Pure: no I/O, no clock (times come from events and from the caller), no routing, grouping,
//! inhibition or delivery, which happen after this module on the notifications it returns.
//!
//! The state a receiver knows is the last state notified ("firing at tier S" or "resolved").
//! Every decision compares against it, so events inside a cooldown or a flapping period are
//! coalesced into the latest state, and a resolve is sent exactly when receivers were told the
//! instance fires.

use super::state::{Event, Transition};
use crate::series::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// Flap detection: `transitions` state changes inside `within` mark an instance flapping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlapPolicy {
    /// Number of transitions (inside `within`) that makes an instance flapping.
    pub transitions: u32,
    /// The window for counting transitions, and how long an instance must be stable to stop
    /// flapping.
    pub within: Duration,
}

/// Notification policy of one alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotifyPolicy {
    /// Minimum time between two notifications of an instance (inclusive; rules 3, 5, 6).
    pub cooldown: Duration,
    /// Whether escalations wait for the cooldown too (rule 2).
    pub cooldown_escalations: bool,
    /// Re-notify a firing instance this long after its last notification.
    pub repeat_interval: Option<Duration>,
    /// Factor applied to the repeat wait after each consecutive repeat (≥ 1).
    pub repeat_backoff: f64,
    /// Longest repeat wait.
    pub repeat_max: Duration,
    /// Flap detection, if enabled.
    pub flap: Option<FlapPolicy>,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            cooldown: Duration::ZERO,
            cooldown_escalations: false,
            repeat_interval: None,
            repeat_backoff: 1.0,
            repeat_max: Duration::from_secs(24 * 3600),
            flap: None,
        }
    }
}

/// Kind of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoteKind {
    /// Receivers learn that the instance fires at `tier`.
    Firing,
    /// Firing at a more severe tier than receivers were last told.
    Escalated,
    /// Firing at a less severe tier than receivers were last told.
    Deescalated,
    /// Still firing at `tier`.
    Repeat,
    /// No longer firing; `tier` is the tier it fired at.
    Resolved,
    /// The instance is flapping; its notifications are held until it is stable.
    Flapping,
}

/// A notification to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What receivers are told.
    pub kind: NoteKind,
    /// The tier it is about.
    pub tier: usize,
    /// When it is sent (later than its event when it was held).
    pub at: Timestamp,
    /// Per-instance sequence number, strictly increasing from 1: part of the idempotency key.
    pub seq: u64,
    /// Carries the `nodata="true"` label.
    pub nodata: bool,
}

/// The state receivers were last told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Known {
    Firing(usize),
    Resolved,
}

/// A notification waiting for a cooldown to end or for flapping to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    kind: NoteKind,
    tier: usize,
    nodata: bool,
}

/// The persisted notification state of one instance.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct NotifyState {
    /// Sequence number of the last notification sent.
    seq: u64,
    /// Last state notified; `None` before the first notification.
    known: Option<Known>,
    /// Time of the last notification sent.
    last_sent: Option<Timestamp>,
    /// `nodata` of the last firing-state notification, reused by repeats.
    last_nodata: bool,
    /// The running cooldown is over at this time.
    cooldown_until: Option<Timestamp>,
    held: Option<Held>,
    /// Repeats sent since the last other notification: the backoff exponent.
    repeats: u32,
    /// Recent transitions, newest last, at most `transitions` of them.
    transitions: VecDeque<Timestamp>,
    flapping: bool,
}

impl NotifyState {
    /// Feeds one event produced by `InstanceState::step` (rules 1–5 and flap detection).
    pub fn on_event(&mut self, p: &NotifyPolicy, ev: &Event, out: &mut Vec<Notification>) {
        if let Some(fp) = &p.flap {
            self.count_transition(fp, ev.at);
            if !self.flapping && self.transitions.len() >= fp.transitions.max(1) as usize {
                self.flapping = true;
                self.send(p, NoteKind::Flapping, ev.tier, ev.at, ev.nodata, out);
            }
        }
        let kind = match ev.transition {
            Transition::Firing => NoteKind::Firing,
            Transition::Escalated => NoteKind::Escalated,
            Transition::Deescalated => NoteKind::Deescalated,
            Transition::Resolved => NoteKind::Resolved,
        };
        let note = Held {
            kind,
            tier: ev.tier,
            nodata: ev.nodata,
        };
        if self.flapping {
            // Hold the newest state; one that receivers already know needs nothing.
            self.held = (!self.redundant(note)).then_some(note);
            return;
        }
        match ev.transition {
            // Rules 1 and 4.
            Transition::Resolved => self.release(p, note, ev.at, out),
            // Rule 2.
            Transition::Escalated if !p.cooldown_escalations => self.release(p, note, ev.at, out),
            // Rule 3.
            _ => self.offer(p, note, ev.at, out),
        }
    }

    /// Called once after steps 0–3 of every evaluation, with the current tier when the instance
    /// fires: ends flapping, sends a held notification whose cooldown is over (rule 6) and
    /// produces due repeats.
    pub fn after_evaluation(
        &mut self,
        p: &NotifyPolicy,
        now: Timestamp,
        firing: Option<usize>,
        out: &mut Vec<Notification>,
    ) {
        if self.flapping {
            let stable = match (&p.flap, self.transitions.back()) {
                (Some(fp), Some(&last)) => now.since(last) >= fp.within,
                _ => true,
            };
            if !stable {
                return;
            }
            self.flapping = false;
            self.transitions.clear();
            if let Some(h) = self.held.take() {
                self.release(p, h, now, out);
            }
        } else if let Some(h) = self.held
            && !self.cooling(now)
        {
            self.held = None;
            self.release(p, h, now, out);
        }

        if let (Some(tier), Some(interval), Some(last), None, Some(Known::Firing(_))) = (
            firing,
            p.repeat_interval,
            self.last_sent,
            self.held,
            self.known,
        ) && now.since(last) >= self.repeat_wait(p, interval)
        {
            let note = Held {
                kind: NoteKind::Repeat,
                tier,
                nodata: self.last_nodata,
            };
            self.offer(p, note, now, out);
        }
    }

    /// Whether the instance is flapping (its notifications are held).
    pub fn flapping(&self) -> bool {
        self.flapping
    }

    /// Sequence number of the last notification sent (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Rule 3: send now unless a cooldown runs, else hold (replacing an older held one).
    fn offer(&mut self, p: &NotifyPolicy, note: Held, at: Timestamp, out: &mut Vec<Notification>) {
        if self.redundant(note) {
            self.held = None;
        } else if self.cooling(at) {
            self.held = Some(note);
        } else {
            self.send(p, note.kind, note.tier, at, note.nodata, out);
        }
    }

    /// Sends `note` now, regardless of the cooldown, subject to rules 1 and 4; drops a held
    /// notification either way.
    fn release(
        &mut self,
        p: &NotifyPolicy,
        note: Held,
        at: Timestamp,
        out: &mut Vec<Notification>,
    ) {
        self.held = None;
        let receivers_know_firing = matches!(self.known, Some(Known::Firing(_)));
        if note.kind == NoteKind::Resolved && !receivers_know_firing || self.redundant(note) {
            return;
        }
        self.send(p, note.kind, note.tier, at, note.nodata, out);
    }

    /// Rule 4: the notification would tell receivers the state they already know.
    fn redundant(&self, note: Held) -> bool {
        let state = match note.kind {
            NoteKind::Repeat | NoteKind::Flapping => return false,
            NoteKind::Resolved => Known::Resolved,
            NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated => {
                Known::Firing(note.tier)
            }
        };
        self.known == Some(state)
    }

    /// Emits a notification (rule 5: starts the cooldown, drops a held one).
    ///
    /// A firing-state notification is named after what receivers see change, not after the
    /// event that caused it: `Firing` when they do not know the instance fires (rule 2's
    /// escalation of a held firing, or a de-escalation coalesced with a held firing),
    /// `Escalated`/`Deescalated` by comparing with the tier they were last told.
    fn send(
        &mut self,
        p: &NotifyPolicy,
        kind: NoteKind,
        tier: usize,
        at: Timestamp,
        nodata: bool,
        out: &mut Vec<Notification>,
    ) {
        let kind = match (kind, self.known) {
            (
                NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated,
                Some(Known::Firing(s)),
            ) if tier > s => NoteKind::Escalated,
            (
                NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated,
                Some(Known::Firing(s)),
            ) if tier < s => NoteKind::Deescalated,
            (NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated, _) => NoteKind::Firing,
            (other, _) => other,
        };
        match kind {
            NoteKind::Resolved => self.known = Some(Known::Resolved),
            NoteKind::Flapping => {}
            _ => {
                self.known = Some(Known::Firing(tier));
                self.last_nodata = nodata;
            }
        }
        self.repeats = if kind == NoteKind::Repeat {
            self.repeats.saturating_add(1)
        } else {
            0
        };
        self.seq += 1;
        self.last_sent = Some(at);
        self.cooldown_until = Some(at.add(p.cooldown));
        self.held = None;
        out.push(Notification {
            kind,
            tier,
            at,
            seq: self.seq,
            nodata,
        });
    }

    /// Whether a cooldown is running at `at` (one that began at t is over at t + cooldown).
    fn cooling(&self, at: Timestamp) -> bool {
        self.cooldown_until.is_some_and(|until| at < until)
    }

    /// The wait before the next repeat: `interval · backoff^repeats`, capped at `repeat_max`
    /// (a cap below `interval` does not shorten the first wait).
    fn repeat_wait(&self, p: &NotifyPolicy, interval: Duration) -> Duration {
        if self.repeats == 0 {
            return interval;
        }
        let cap = p.repeat_max.max(interval);
        let exp = i32::try_from(self.repeats).unwrap_or(i32::MAX);
        let secs = interval.as_secs_f64() * p.repeat_backoff.max(1.0).powi(exp);
        if secs < cap.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            cap
        }
    }

    /// Records a transition at `at`, forgetting those outside the window and keeping no more
    /// than the threshold needs.
    fn count_transition(&mut self, fp: &FlapPolicy, at: Timestamp) {
        self.transitions.push_back(at);
        let keep = fp.transitions.max(1) as usize;
        while let Some(&first) = self.transitions.front()
            && (at.since(first) >= fp.within || self.transitions.len() > keep)
        {
            self.transitions.pop_front();
        }
    }
}
