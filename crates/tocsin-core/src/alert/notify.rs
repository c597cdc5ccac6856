//! Notification rules: cooldown, coalescing, repeats and flapping, per instance.
//!
//! Owns [`NotifyState`], which turns the [`Event`]s of one instance into [`Notification`]s.
//! Pure: no I/O, no clock (times come from events and from the caller), no routing, grouping,
//! inhibition or delivery, which happen after this module on the notifications it returns.
//!
//! The state a receiver knows is the last state notified ("firing at tier S" or "resolved").
//! Every decision compares against it, so events inside a cooldown or a flapping period are
//! coalesced into the latest state, and a resolve is sent exactly when receivers were told the
//! instance fires.

use super::state::{Event, TierMap, Transition};
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
    /// Someone acknowledged the firing instance: it gets no repeat until it changes.
    Acknowledged,
}

impl NoteKind {
    /// The lower-case name receivers print and rule test files use (`firing`, `escalated`,
    /// `deescalated`, `repeat`, `resolved`, `flapping`, `acknowledged`).
    pub fn name(self) -> &'static str {
        match self {
            NoteKind::Firing => "firing",
            NoteKind::Escalated => "escalated",
            NoteKind::Deescalated => "deescalated",
            NoteKind::Repeat => "repeat",
            NoteKind::Resolved => "resolved",
            NoteKind::Flapping => "flapping",
            NoteKind::Acknowledged => "acknowledged",
        }
    }

    /// Whether it is news about an alert without a state of its own (`flapping`,
    /// `acknowledged`): it goes only to receivers that know the alert fires.
    pub fn is_news_only(self) -> bool {
        matches!(self, NoteKind::Flapping | NoteKind::Acknowledged)
    }
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
    /// Carries the `nodata` flag (an annotation in bodies, never a label).
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
    /// The acknowledgement of the firing receivers know, if any. Boxed: few instances
    /// are acknowledged, and inline it would make every instance 64 bytes larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<Box<Ack>>,
}

/// An acknowledgement of a firing instance: someone has it. It suppresses repeats until the
/// instance changes severity or resolves (which clears it) or `until` passes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Who acknowledged.
    pub by: String,
    /// Why, or what they are doing.
    pub comment: String,
    /// When.
    pub at: Timestamp,
    /// When it lapses by itself; `None`: when the instance changes.
    pub until: Option<Timestamp>,
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
            // Hold the newest state, even one receivers knew before the flapping: they were
            // told it flaps and must hear where it settled.
            self.held = Some(note);
            return;
        }
        match ev.transition {
            // Rules 1 and 4.
            Transition::Resolved => self.release(p, note, ev.at, out),
            // Rule 2, unless receivers would see a step down (rule 4): that waits like one.
            Transition::Escalated if !p.cooldown_escalations && !self.steps_down(note.tier) => {
                self.release(p, note, ev.at, out)
            }
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
            // All recorded transitions are outside the window by now; forget them outright.
            self.transitions.clear();
            // The settled state goes out even when it is the one notified before the flapping
            // (rule 4 does not apply), and a resolve even of a firing only `flapping` told
            // receivers about: delivery treats that as firing.
            if let Some(h) = self.held.take() {
                self.send(p, h.kind, h.tier, now, h.nodata, out);
            }
        } else if let Some(h) = self.held
            && !self.cooling(now)
        {
            self.release(p, h, now, out);
        }

        if self.ack.as_ref().is_some_and(|a| a.until.is_some_and(|u| u <= now)) {
            self.ack = None;
        }
        if let (Some(tier), Some(interval), Some(last), None, Some(Known::Firing(_)), None) = (
            firing,
            p.repeat_interval,
            self.last_sent,
            self.held,
            self.known,
            &self.ack,
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

    /// Moves the tiers receivers were told about, and that of a held notification, to a
    /// reloaded policy (by severity, as the state machine's own).
    pub fn remap_tiers(&mut self, map: &TierMap) {
        if let Some(Known::Firing(t)) = &mut self.known {
            *t = map.tier(*t);
        }
        if let Some(h) = &mut self.held {
            h.tier = map.tier(h.tier);
        }
    }

    /// Whether the instance is flapping (its notifications are held).
    pub fn flapping(&self) -> bool {
        self.flapping
    }

    /// Acknowledges the firing instance (replacing an earlier acknowledgement). Receivers
    /// that were told it fires get one `acknowledged` notification at `ack.at`; it starts no
    /// cooldown and is no state, so what follows is decided as if it had not been sent.
    /// Returns whether receivers know it fires (else the ack is kept and nothing is sent).
    pub fn acknowledge(&mut self, ack: Ack, out: &mut Vec<Notification>) -> bool {
        let at = ack.at;
        self.ack = Some(Box::new(ack));
        let Some(Known::Firing(tier)) = self.known else {
            return false;
        };
        self.seq += 1;
        out.push(Notification {
            kind: NoteKind::Acknowledged,
            tier,
            at,
            seq: self.seq,
            nodata: self.last_nodata,
        });
        true
    }

    /// Removes the acknowledgement; returns whether there was one.
    pub fn clear_ack(&mut self) -> bool {
        self.ack.take().is_some()
    }

    /// The acknowledgement in force, if any.
    pub fn ack(&self) -> Option<&Ack> {
        self.ack.as_deref()
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
    fn release(&mut self, p: &NotifyPolicy, note: Held, at: Timestamp, out: &mut Vec<Notification>) {
        self.held = None;
        let receivers_know_firing = matches!(self.known, Some(Known::Firing(_)));
        if note.kind == NoteKind::Resolved && !receivers_know_firing || self.redundant(note) {
            return;
        }
        self.send(p, note.kind, note.tier, at, note.nodata, out);
    }

    /// Whether receivers were last told a tier more severe than `tier`: firing at `tier` is a
    /// step down for them, whatever the state machine's event was.
    fn steps_down(&self, tier: usize) -> bool {
        matches!(self.known, Some(Known::Firing(s)) if tier < s)
    }

    /// Rule 4: the notification would tell receivers the state they already know.
    fn redundant(&self, note: Held) -> bool {
        let state = match note.kind {
            NoteKind::Repeat | NoteKind::Flapping | NoteKind::Acknowledged => return false,
            NoteKind::Resolved => Known::Resolved,
            NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated => Known::Firing(note.tier),
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
            (NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated, Some(Known::Firing(s))) if tier > s => {
                NoteKind::Escalated
            }
            (NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated, Some(Known::Firing(s))) if tier < s => {
                NoteKind::Deescalated
            }
            (NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated, _) => NoteKind::Firing,
            (other, _) => other,
        };
        match kind {
            NoteKind::Resolved => self.known = Some(Known::Resolved),
            NoteKind::Flapping | NoteKind::Acknowledged => {}
            _ => {
                self.known = Some(Known::Firing(tier));
                self.last_nodata = nodata;
            }
        }
        // A change of what receivers know (a severity change, a resolve) ends the ack: the
        // person who has it acknowledged the state they were told about.
        if !matches!(kind, NoteKind::Repeat | NoteKind::Flapping) {
            self.ack = None;
        }
        self.repeats = if kind == NoteKind::Repeat {
            self.repeats.saturating_add(1)
        } else {
            0
        };
        self.seq += 1;
        self.last_sent = Some(at);
        self.cooldown_until = Some(at.plus(p.cooldown));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::state::{Condition, InstanceState, NoData, Policy, TierSpec};
    use std::sync::Arc;

    const MIN: i64 = 60_000;

    fn pol(cooldown_min: u64) -> NotifyPolicy {
        NotifyPolicy {
            cooldown: Duration::from_secs(cooldown_min * 60),
            ..NotifyPolicy::default()
        }
    }

    fn ev(transition: Transition, tier: usize, at: i64) -> Event {
        Event {
            transition,
            tier,
            at: Timestamp(at),
            nodata: false,
        }
    }

    /// (kind, tier, at) of each notification: seq is checked separately.
    fn brief(out: &[Notification]) -> Vec<(NoteKind, usize, i64)> {
        out.iter().map(|n| (n.kind, n.tier, n.at.0)).collect()
    }

    /// Feeds `events` (each followed by an evaluation at its time), then evaluations at
    /// `ticks`; `firing` tracks the instance's tier from the events.
    fn drive(s: &mut NotifyState, p: &NotifyPolicy, events: &[Event], ticks: &[i64]) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut firing = None;
        let mut evs = events.iter().peekable();
        let mut times: Vec<i64> = events.iter().map(|e| e.at.0).chain(ticks.iter().copied()).collect();
        times.sort();
        times.dedup();
        for t in times {
            while let Some(e) = evs.next_if(|e| e.at.0 == t) {
                firing = (e.transition != Transition::Resolved).then_some(e.tier);
                s.on_event(p, e, &mut out);
            }
            s.after_evaluation(p, Timestamp(t), firing, &mut out);
        }
        out
    }

    use NoteKind as K;
    use Transition as T;

    #[test]
    fn worked_example_of_spec_section_8() {
        let above = |severity: &str, threshold: f64, for_s: u64| TierSpec {
            severity: Arc::from(severity),
            condition: Condition::Above {
                threshold,
                clear: threshold - 5.0,
            },
            for_: Duration::from_secs(for_s),
        };
        let policy = Policy {
            tiers: vec![
                above("warning", 70.0, 300),
                above("high", 80.0, 180),
                above("critical", 90.0, 60),
                above("emergency", 95.0, 30),
            ],
            keep_firing_for: Duration::from_secs(60),
            no_data: NoData::Keep,
        };
        let np = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(4 * 3600)),
            ..pol(5)
        };
        let values = [
            60.0, 72.0, 74.0, 76.0, 78.0, 82.0, 85.0, 92.0, 93.0, 94.0, 86.0, 76.0, 66.0, 60.0,
        ];
        let mut state = InstanceState::default();
        let mut notify = NotifyState::default();
        let (mut events, mut notes, mut obs) = (Vec::new(), Vec::new(), Vec::new());
        let mut firing_at = Vec::new();
        // Evaluations every minute up to `until: 20m`, the last value standing in after 13m.
        for m in 0..=20 {
            let now = Timestamp(m * MIN);
            let v = values[(m as usize).min(values.len() - 1)];
            obs.clear();
            obs.extend((0..policy.tiers.len()).map(|i| policy.observe(i, v)));
            let first = events.len();
            state.step(&policy, now, Some(&obs), &mut events);
            for e in &events[first..] {
                notify.on_event(&np, e, &mut notes);
            }
            notify.after_evaluation(&np, now, state.firing_tier(), &mut notes);
            firing_at.push(state.firing_tier());
        }
        assert_eq!(
            brief(&notes),
            vec![
                (K::Firing, 0, 6 * MIN),
                (K::Escalated, 2, 8 * MIN),
                (K::Deescalated, 0, 13 * MIN),
                (K::Resolved, 0, 14 * MIN),
            ]
        );
        assert_eq!(notes.iter().map(|n| n.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(firing_at[6], Some(0));
        assert_eq!(firing_at[10], Some(2), "86 still holds critical");
        assert_eq!(firing_at[11], Some(1));
        assert_eq!(firing_at[12], Some(0));
        assert_eq!(firing_at[13], Some(0), "inside keep_firing_for");
        assert_eq!(firing_at[14], None);
        assert_eq!(
            events
                .iter()
                .map(|e| (e.transition, e.tier, e.at.0 / MIN))
                .collect::<Vec<_>>(),
            vec![
                (T::Firing, 0, 6),
                (T::Escalated, 2, 8),
                (T::Deescalated, 1, 11),
                (T::Deescalated, 0, 12),
                (T::Resolved, 0, 14)
            ]
        );
    }

    #[test]
    fn rule1_resolved_is_sent_at_once_when_firing_was_notified() {
        let mut s = NotifyState::default();
        let out = drive(&mut s, &pol(5), &[ev(T::Firing, 0, 0), ev(T::Resolved, 0, MIN)], &[]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0), (K::Resolved, 0, MIN)]);
    }

    #[test]
    fn rule1_resolved_of_an_unnotified_firing_is_dropped_with_the_held_one() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 1, 2 * MIN), // held: cooldown till 5m
            ev(T::Resolved, 1, 3 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[4 * MIN, 5 * MIN, 6 * MIN, 20 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0), (K::Resolved, 0, MIN)]);
    }

    #[test]
    fn rule1_resolved_drops_a_held_deescalation() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 0, MIN),
            ev(T::Resolved, 0, 2 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[5 * MIN, 10 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 2, 0), (K::Resolved, 0, 2 * MIN)]);
    }

    #[test]
    fn rule2_escalation_bypasses_cooldown() {
        let mut s = NotifyState::default();
        let out = drive(&mut s, &pol(5), &[ev(T::Firing, 0, 0), ev(T::Escalated, 2, MIN)], &[]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0), (K::Escalated, 2, MIN)]);
    }

    #[test]
    fn rule2_escalation_of_a_held_firing_is_sent_as_firing() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN), // held
            ev(T::Escalated, 2, 3 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[20 * MIN]);
        assert_eq!(
            brief(&out),
            vec![(K::Firing, 0, 0), (K::Resolved, 0, MIN), (K::Firing, 2, 3 * MIN)]
        );
    }

    #[test]
    fn rule4_an_escalation_receivers_see_as_a_step_down_waits_for_the_cooldown() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 0, MIN), // held: cooldown until 5m
            ev(T::Escalated, 1, 2 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[3 * MIN, 4 * MIN, 5 * MIN, 6 * MIN]);
        // Receivers were told tier 2: tier 1 is a step down for them, held like rule 3.
        assert_eq!(brief(&out), vec![(K::Firing, 2, 0), (K::Deescalated, 1, 5 * MIN)]);
    }

    #[test]
    fn rule4_an_escalation_back_to_the_notified_tier_drops_the_held_step_down() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 0, MIN),
            ev(T::Escalated, 2, 2 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[5 * MIN, 6 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 2, 0)]);
    }

    #[test]
    fn rule2_cooldown_escalations_makes_escalations_wait() {
        let p = NotifyPolicy {
            cooldown_escalations: true,
            ..pol(5)
        };
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Escalated, 1, MIN),
            ev(T::Escalated, 2, 2 * MIN),
        ];
        let out = drive(&mut s, &p, &events, &[3 * MIN, 4 * MIN, 5 * MIN, 6 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0), (K::Escalated, 2, 5 * MIN)]);
    }

    #[test]
    fn rule3_held_during_cooldown_and_newer_replaces_older() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 3, 0),
            ev(T::Deescalated, 2, MIN),
            ev(T::Deescalated, 1, 2 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[3 * MIN, 4 * MIN, 5 * MIN, 6 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 3, 0), (K::Deescalated, 1, 5 * MIN)]);
    }

    #[test]
    fn rule3_firing_sent_at_once_without_cooldown() {
        let mut s = NotifyState::default();
        let events = [ev(T::Firing, 0, 0), ev(T::Resolved, 0, MIN), ev(T::Firing, 1, 2 * MIN)];
        let out = drive(&mut s, &pol(0), &events, &[]);
        assert_eq!(
            brief(&out),
            vec![(K::Firing, 0, 0), (K::Resolved, 0, MIN), (K::Firing, 1, 2 * MIN)]
        );
    }

    #[test]
    fn rule4_state_receivers_know_is_not_sent_and_drops_held() {
        let mut s = NotifyState::default();
        // Down to 1 (held), back up to 2: receivers already know "firing at 2".
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 1, MIN),
            ev(T::Escalated, 2, 2 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[5 * MIN, 6 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 2, 0)]);
    }

    #[test]
    fn rule4_applies_when_a_held_one_is_released() {
        let p = NotifyPolicy {
            cooldown_escalations: true,
            ..pol(5)
        };
        let mut s = NotifyState::default();
        // Held escalation to 2, then a held de-escalation back to 0: nothing changed for receivers.
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Escalated, 2, MIN),
            ev(T::Deescalated, 0, 2 * MIN),
        ];
        let out = drive(&mut s, &p, &events, &[5 * MIN, 6 * MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0)]);
    }

    #[test]
    fn rule5_cooldown_is_inclusive() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 1, 5 * MIN - 1),
            ev(T::Deescalated, 0, 10 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[5 * MIN - 1, 5 * MIN]);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 2, 0),
                (K::Deescalated, 1, 5 * MIN),
                (K::Deescalated, 0, 10 * MIN)
            ]
        );
    }

    #[test]
    fn rule5_a_sent_notification_drops_the_held_one_and_restarts_cooldown() {
        let mut s = NotifyState::default();
        // Held de-escalation to 1 is replaced by the escalation sent at once; that escalation
        // restarts the cooldown, so the later de-escalation waits until 2m + 5m.
        let events = [
            ev(T::Firing, 2, 0),
            ev(T::Deescalated, 1, MIN),
            ev(T::Escalated, 3, 2 * MIN),
            ev(T::Deescalated, 0, 3 * MIN),
        ];
        let out = drive(&mut s, &pol(5), &events, &[5 * MIN, 6 * MIN, 7 * MIN]);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 2, 0),
                (K::Escalated, 3, 2 * MIN),
                (K::Deescalated, 0, 7 * MIN)
            ]
        );
    }

    #[test]
    fn rule6_held_is_sent_after_the_evaluation_that_ends_the_cooldown() {
        let mut s = NotifyState::default();
        let p = pol(5);
        let mut out = Vec::new();
        s.on_event(&p, &ev(T::Firing, 0, 0), &mut out);
        s.on_event(&p, &ev(T::Escalated, 1, MIN), &mut out);
        s.on_event(&p, &ev(T::Deescalated, 0, 2 * MIN), &mut out);
        // A de-escalated state is held; evaluations inside the cooldown do not send it.
        s.after_evaluation(&p, Timestamp(6 * MIN - 1), Some(0), &mut out);
        assert_eq!(out.len(), 2);
        s.after_evaluation(&p, Timestamp(6 * MIN), Some(0), &mut out);
        assert_eq!(brief(&out[2..]), vec![(K::Deescalated, 0, 6 * MIN)]);
    }

    #[test]
    fn seq_is_strictly_increasing() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Escalated, 1, MIN),
            ev(T::Resolved, 1, 2 * MIN),
            ev(T::Firing, 0, 3 * MIN),
        ];
        let out = drive(&mut s, &pol(0), &events, &[]);
        assert_eq!(out.iter().map(|n| n.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(s.seq(), 4);
    }

    #[test]
    fn nodata_flag_is_carried_and_reused_by_repeats() {
        let p = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(60)),
            ..pol(0)
        };
        let mut s = NotifyState::default();
        let firing = Event {
            nodata: true,
            ..ev(T::Firing, 0, 0)
        };
        let out = drive(&mut s, &p, &[firing], &[MIN]);
        assert_eq!(brief(&out), vec![(K::Firing, 0, 0), (K::Repeat, 0, MIN)]);
        assert!(out.iter().all(|n| n.nodata));
    }

    #[test]
    fn repeat_follows_the_last_notification_with_backoff_and_cap() {
        let p = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(60)),
            repeat_backoff: 2.0,
            repeat_max: Duration::from_secs(300),
            ..pol(0)
        };
        let mut s = NotifyState::default();
        let ticks: Vec<i64> = (1..=20).map(|m| m * MIN).collect();
        let out = drive(&mut s, &p, &[ev(T::Firing, 1, 0)], &ticks);
        // waits 1, 2, 4, 5 (cap), 5 minutes
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 1, 0),
                (K::Repeat, 1, MIN),
                (K::Repeat, 1, 3 * MIN),
                (K::Repeat, 1, 7 * MIN),
                (K::Repeat, 1, 12 * MIN),
                (K::Repeat, 1, 17 * MIN)
            ]
        );
    }

    #[test]
    fn repeat_backoff_is_reset_by_other_notifications() {
        let p = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(60)),
            repeat_backoff: 3.0,
            ..pol(0)
        };
        let mut s = NotifyState::default();
        let ticks: Vec<i64> = (1..=8).map(|m| m * MIN).collect();
        let out = drive(&mut s, &p, &[ev(T::Firing, 0, 0), ev(T::Escalated, 1, 4 * MIN)], &ticks);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Repeat, 0, MIN),
                (K::Escalated, 1, 4 * MIN),
                (K::Repeat, 1, 5 * MIN),
                (K::Repeat, 1, 8 * MIN)
            ]
        );
    }

    #[test]
    fn repeat_only_while_firing_and_held_by_cooldown() {
        let p = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(60)),
            ..pol(3)
        };
        let mut s = NotifyState::default();
        let ticks: Vec<i64> = (1..=12).map(|m| m * MIN).collect();
        let out = drive(&mut s, &p, &[ev(T::Firing, 0, 0), ev(T::Resolved, 0, 7 * MIN)], &ticks);
        // Due from 1m, but the cooldown (3m) holds it; nothing after the resolve.
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Repeat, 0, 3 * MIN),
                (K::Repeat, 0, 6 * MIN),
                (K::Resolved, 0, 7 * MIN)
            ]
        );
    }

    #[test]
    fn repeat_is_not_sent_for_an_unnotified_firing() {
        let p = NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(60)),
            ..pol(10)
        };
        let mut s = NotifyState::default();
        let events = [ev(T::Firing, 0, 0), ev(T::Resolved, 0, MIN), ev(T::Firing, 1, 2 * MIN)];
        let ticks: Vec<i64> = (3..=12).map(|m| m * MIN).collect();
        let out = drive(&mut s, &p, &events, &ticks);
        // The firing waits for the cooldown of the resolve (1m + 10m); no repeat before it.
        assert_eq!(
            brief(&out),
            vec![(K::Firing, 0, 0), (K::Resolved, 0, MIN), (K::Firing, 1, 11 * MIN)]
        );
    }

    fn flappy() -> NotifyPolicy {
        NotifyPolicy {
            flap: Some(FlapPolicy {
                transitions: 4,
                within: Duration::from_secs(600),
            }),
            ..pol(0)
        }
    }

    #[test]
    fn flapping_sends_one_flapping_then_holds_until_stable() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN),
            ev(T::Resolved, 0, 3 * MIN), // 4th transition: flapping
            ev(T::Firing, 1, 4 * MIN),
            ev(T::Resolved, 1, 5 * MIN),
            ev(T::Firing, 1, 6 * MIN),
        ];
        let ticks: Vec<i64> = (7..=20).map(|m| m * MIN).collect();
        let out = drive(&mut s, &flappy(), &events, &ticks);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Resolved, 0, MIN),
                (K::Firing, 0, 2 * MIN),
                (K::Flapping, 0, 3 * MIN),
                // stable for 10m after the last transition at 6m: the current state.
                (K::Escalated, 1, 16 * MIN),
            ]
        );
        assert!(!s.flapping());
    }

    #[test]
    fn flapping_settled_in_the_state_notified_before_it_is_still_sent() {
        // Settles firing at the tier receivers were told before the flapping.
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN),
            ev(T::Resolved, 0, 3 * MIN), // 4th transition: flapping
            ev(T::Firing, 0, 4 * MIN),
        ];
        let ticks: Vec<i64> = (5..=15).map(|m| m * MIN).collect();
        let out = drive(&mut s, &flappy(), &events, &ticks);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Resolved, 0, MIN),
                (K::Firing, 0, 2 * MIN),
                (K::Flapping, 0, 3 * MIN),
                (K::Firing, 0, 14 * MIN),
            ]
        );

        // Settles resolved while receivers were last told "resolved" (the firing at 2m was
        // held by the cooldown when the flapping began).
        let p = NotifyPolicy {
            cooldown: Duration::from_secs(300),
            ..flappy()
        };
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN),
            ev(T::Resolved, 0, 3 * MIN),
        ];
        let ticks: Vec<i64> = (4..=13).map(|m| m * MIN).collect();
        let out = drive(&mut s, &p, &events, &ticks);
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Resolved, 0, MIN),
                (K::Flapping, 0, 3 * MIN),
                (K::Resolved, 0, 13 * MIN)
            ]
        );
        assert!(!s.flapping());
    }

    #[test]
    fn flapping_release_resolves_a_notified_firing() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN),
            ev(T::Resolved, 0, 3 * MIN),
        ];
        let ticks: Vec<i64> = (4..=12).map(|m| m * MIN).collect();
        let out = drive(&mut s, &flappy(), &events, &ticks);
        assert!(s.flapping(), "stable since 3m, released at 13m");
        assert_eq!(brief(&out).last(), Some(&(K::Flapping, 0, 3 * MIN)));
        let out = drive(&mut s, &flappy(), &[], &[13 * MIN]);
        assert_eq!(brief(&out), vec![(K::Resolved, 0, 13 * MIN)]);
    }

    #[test]
    fn flapping_release_resolves_whatever_receivers_were_told() {
        let p = NotifyPolicy {
            flap: Some(FlapPolicy {
                transitions: 2,
                within: Duration::from_secs(600),
            }),
            ..pol(0)
        };
        let mut s = NotifyState::default();
        // The second transition (the resolve) starts flapping before any firing was notified...
        let mut out = Vec::new();
        s.on_event(&p, &ev(T::Firing, 0, 0), &mut out);
        s.after_evaluation(&p, Timestamp(0), Some(0), &mut out);
        s.on_event(&p, &ev(T::Resolved, 0, MIN), &mut out);
        s.on_event(&p, &ev(T::Firing, 1, 2 * MIN), &mut out);
        s.on_event(&p, &ev(T::Resolved, 1, 3 * MIN), &mut out);
        s.after_evaluation(&p, Timestamp(13 * MIN), None, &mut out);
        // ...Firing at 0 was notified, so its resolve is sent at release, once.
        assert_eq!(
            brief(&out),
            vec![(K::Firing, 0, 0), (K::Flapping, 0, MIN), (K::Resolved, 1, 13 * MIN)]
        );

        let mut s = NotifyState::default();
        let mut out = Vec::new();
        let p3 = NotifyPolicy {
            flap: Some(FlapPolicy {
                transitions: 1,
                within: Duration::from_secs(600),
            }),
            ..pol(0)
        };
        s.on_event(&p3, &ev(T::Firing, 0, 0), &mut out);
        s.on_event(&p3, &ev(T::Resolved, 0, MIN), &mut out);
        s.after_evaluation(&p3, Timestamp(11 * MIN), None, &mut out);
        // Only `flapping` was sent, but that told receivers the alert exists (delivery treats
        // it as firing), so they hear where it settled.
        assert_eq!(brief(&out), vec![(K::Flapping, 0, 0), (K::Resolved, 0, 11 * MIN)]);
    }

    #[test]
    fn transitions_outside_the_window_do_not_count() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, 5 * MIN),
            ev(T::Firing, 0, 10 * MIN), // the 0m transition left the 10m window
            ev(T::Resolved, 0, 12 * MIN),
        ];
        let out = drive(&mut s, &flappy(), &events, &[]);
        assert!(out.iter().all(|n| n.kind != K::Flapping));
        assert!(!s.flapping());
    }

    #[test]
    fn removing_the_flap_policy_releases_a_flapping_instance() {
        let mut s = NotifyState::default();
        let events = [
            ev(T::Firing, 0, 0),
            ev(T::Resolved, 0, MIN),
            ev(T::Firing, 0, 2 * MIN),
            ev(T::Escalated, 1, 3 * MIN),
        ];
        drive(&mut s, &flappy(), &events, &[]);
        assert!(s.flapping());
        let out = drive(&mut s, &pol(0), &[], &[4 * MIN]);
        assert_eq!(brief(&out), vec![(K::Escalated, 1, 4 * MIN)]);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = NotifyState::default();
        drive(
            &mut s,
            &flappy(),
            &[
                ev(T::Firing, 0, 0),
                ev(T::Resolved, 0, MIN),
                ev(T::Firing, 0, 2 * MIN),
                ev(T::Resolved, 0, 3 * MIN),
            ],
            &[],
        );
        let back: NotifyState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    fn ack(at: i64, until: Option<i64>) -> Ack {
        Ack {
            by: "ana".into(),
            comment: "on it".into(),
            at: Timestamp(at),
            until: until.map(Timestamp),
        }
    }

    /// Evaluations at `ticks` of an instance firing at `tier`.
    fn ticks(s: &mut NotifyState, p: &NotifyPolicy, tier: usize, ticks: &[i64]) -> Vec<Notification> {
        let mut out = Vec::new();
        for t in ticks {
            s.after_evaluation(p, Timestamp(*t), Some(tier), &mut out);
        }
        out
    }

    fn repeating() -> NotifyPolicy {
        NotifyPolicy {
            repeat_interval: Some(Duration::from_secs(600)),
            ..NotifyPolicy::default()
        }
    }

    #[test]
    fn an_ack_sends_one_acknowledged_and_stops_repeats_until_the_severity_changes() {
        let p = repeating();
        let mut s = NotifyState::default();
        let mut out = drive(&mut s, &p, &[ev(T::Firing, 0, 0)], &[]);
        assert!(s.acknowledge(ack(MIN, None), &mut out));
        out.extend(ticks(&mut s, &p, 0, &[10 * MIN, 20 * MIN, 30 * MIN]));
        // An escalation clears it: repeats follow the escalation again.
        out.extend(drive(&mut s, &p, &[ev(T::Escalated, 1, 31 * MIN)], &[]));
        out.extend(ticks(&mut s, &p, 1, &[41 * MIN]));
        assert_eq!(
            brief(&out),
            vec![
                (K::Firing, 0, 0),
                (K::Acknowledged, 0, MIN),
                (K::Escalated, 1, 31 * MIN),
                (K::Repeat, 1, 41 * MIN)
            ]
        );
        assert!(s.ack().is_none());
        let seqs: Vec<u64> = out.iter().map(|n| n.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4], "the ack has its own sequence number");
    }

    #[test]
    fn an_ack_lapses_at_until_and_a_resolve_clears_it() {
        let p = repeating();
        let mut s = NotifyState::default();
        let mut out = drive(&mut s, &p, &[ev(T::Firing, 0, 0)], &[]);
        s.acknowledge(ack(MIN, Some(15 * MIN)), &mut out);
        out.extend(ticks(&mut s, &p, 0, &[10 * MIN, 15 * MIN]));
        assert_eq!(brief(&out)[2..], [(K::Repeat, 0, 15 * MIN)]);
        assert!(s.ack().is_none());
        s.acknowledge(ack(16 * MIN, None), &mut out);
        drive(&mut s, &p, &[ev(T::Resolved, 0, 17 * MIN)], &[]);
        assert!(s.ack().is_none(), "a resolve ends the episode the ack was about");
        // A cleared ack lets repeats through again.
        let mut s = NotifyState::default();
        let mut out = drive(&mut s, &p, &[ev(T::Firing, 0, 0)], &[]);
        s.acknowledge(ack(MIN, None), &mut out);
        assert!(s.clear_ack());
        out.extend(ticks(&mut s, &p, 0, &[10 * MIN]));
        assert_eq!(brief(&out)[2..], [(K::Repeat, 0, 10 * MIN)]);
    }

    #[test]
    fn an_ack_of_a_firing_receivers_were_not_told_about_sends_nothing() {
        let p = pol(5);
        let mut s = NotifyState::default();
        let mut out = Vec::new();
        s.on_event(&p, &ev(T::Firing, 0, 0), &mut out);
        s.on_event(&p, &ev(T::Resolved, 0, MIN), &mut out);
        out.clear();
        assert!(!s.acknowledge(ack(2 * MIN, None), &mut out));
        assert!(out.is_empty());
    }

    use proptest::prelude::*;

    proptest! {
        /// Acks change nothing but repeats: the notifications of a run with acks are those of
        /// the same run without them, less the repeats between an ack and the next
        /// notification that changes what receivers know, plus one `acknowledged` per ack of
        /// a notified firing. Cooldowns are shorter than the time between evaluations here:
        /// a repeat the ack suppressed would otherwise have started one that delays what
        /// follows.
        #[test]
        fn acks_only_remove_repeats_until_a_change(
            steps in prop::collection::vec((0..4u8, 0..3usize, any::<bool>()), 1..40),
            cooldown in 0..3u64,
        ) {
            let p = NotifyPolicy { cooldown: Duration::from_secs(cooldown * 60), ..repeating() };
            let (mut plain, mut acked) = (NotifyState::default(), NotifyState::default());
            let (mut out_plain, mut out_acked) = (Vec::new(), Vec::new());
            let mut firing: Option<usize> = None;
            let mut in_force = false;
            for (i, (what, tier, do_ack)) in steps.into_iter().enumerate() {
                let t = i as i64 * 4 * MIN;
                let event = match (what, firing) {
                    (0, None) => Some(ev(T::Firing, tier, t)),
                    (0 | 1, Some(f)) if tier > f => Some(ev(T::Escalated, tier, t)),
                    (0 | 1, Some(f)) if tier < f => Some(ev(T::Deescalated, tier, t)),
                    (2, Some(_)) => Some(ev(T::Resolved, firing.unwrap(), t)),
                    _ => None,
                };
                let (mut np, mut na) = (Vec::new(), Vec::new());
                if let Some(e) = event {
                    firing = (e.transition != T::Resolved).then_some(e.tier);
                    plain.on_event(&p, &e, &mut np);
                    acked.on_event(&p, &e, &mut na);
                }
                plain.after_evaluation(&p, Timestamp(t), firing, &mut np);
                acked.after_evaluation(&p, Timestamp(t), firing, &mut na);
                for n in &np {
                    if n.kind != K::Repeat {
                        in_force = false;
                    }
                    if !(in_force && n.kind == K::Repeat) {
                        out_plain.push((n.kind, n.tier, n.at));
                    }
                }
                out_acked.extend(na.iter().map(|n| (n.kind, n.tier, n.at)));
                if do_ack && firing.is_some() {
                    let mut a = Vec::new();
                    if acked.acknowledge(ack(t, None), &mut a) {
                        out_plain.push((K::Acknowledged, a[0].tier, a[0].at));
                        out_acked.extend(a.iter().map(|n| (n.kind, n.tier, n.at)));
                    }
                    in_force = true;
                }
            }
            prop_assert_eq!(out_acked, out_plain);
        }
    }
}
