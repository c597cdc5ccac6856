//! The one pipeline `tocsin run` and `tocsin test` share: samples and time in, effects out.
//!
//! Owns the running policy's moving parts (the [`Engine`] with its compiled rules, the
//! [`SeriesStore`], the routing [`Dispatcher`], the compiled [`Receivers`] and the silences)
//! and the glue between them: an evaluation's transitions become history rows, its admitted
//! actions become jobs, its notifications go through routing, grouping, inhibition and
//! silences, and what is due is rendered for its receiver and queued as an outbox row,
//! together with the state changes that produced it ([`Effects`]).
//!
//! Must not touch: a clock, a file, a socket, the environment. Time is an argument, the
//! effects are values, and the shells perform them (the daemon commits the batch, then
//! sends, then runs the actions; the test runner compares them with expectations). Because
//! both shells drive this very type, what `tocsin test` checks is what production does.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use crate::alert::notify::NoteKind;
use crate::engine::{ActionRun, Blocked, Emitted, Engine, Output, RuleRef, Settings};
use crate::history::Accumulator;
use crate::message::{AlertNote, Dispatch, Silence};
use crate::policy::Policy;
use crate::receivers::Receivers;
use crate::route::Dispatcher;
use crate::rules::{Action, RuleSet};
use crate::series::{Labels, SeriesStore, Timestamp};
use crate::template::TemplateError;

/// One transition, action run or refusal in the history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// The rule's group.
    pub group: String,
    /// The rule.
    pub rule: String,
    /// The alert's fingerprint.
    pub fingerprint: u64,
    /// `firing`, `escalated`, …, `action`, `action_blocked`.
    pub event: String,
    /// The severity it happened at.
    pub severity: String,
    /// Stored bit-exactly (NaN and ±Inf included). Note `PartialEq` compares NaN unequal.
    pub value: Option<f64>,
    /// The alert's labels (shared with the alert's own: a burst writes a row per alert).
    pub labels: Labels,
    /// What an action did or why it did not run.
    pub detail: Option<String>,
}

/// Everything one step wants persisted, applied atomically by the store in this order:
/// upserts, deletes (so a key both upserted and deleted ends up deleted), history, groups,
/// outbox.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// (key, JSON state) rows to insert or replace. Keys are opaque to the store (the engine
    /// uses "group\u{1f}rule\u{1f}fingerprint").
    pub upserts: Vec<(String, String)>,
    /// Instance state keys to delete.
    pub deletes: Vec<String>,
    /// Transitions and action runs.
    pub history: Vec<HistoryRow>,
    /// (key, JSON state or `None` to delete) of notification groups (`route`'s dispatcher).
    pub groups: Vec<(String, Option<String>)>,
    /// Notifications to queue for delivery, committed with the state that produced them.
    pub outbox: Vec<NewOutboxEntry>,
    /// Value history: new series and closed points.
    pub values: crate::history::Written,
}

impl Batch {
    /// True when committing it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.deletes.is_empty()
            && self.history.is_empty()
            && self.groups.is_empty()
            && self.outbox.is_empty()
            && self.values.is_empty()
    }
}

/// A notification for one receiver, as queued in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxEntry {
    /// Receiver name.
    pub receiver: String,
    /// Idempotency key (group fingerprint + sequence).
    pub idempotency_key: String,
    /// The notification group's key (entries of one group are delivered in order).
    pub group_key: String,
    /// JSON of the `receivers::Rendered` message.
    pub payload: String,
    /// When it was queued; also its first attempt time.
    pub created_ms: i64,
}

/// An admitted action, with what is needed to run it and record the result.
#[derive(Clone, Debug)]
pub struct ActionJob {
    /// The action's definition.
    pub action: Action,
    /// The event that admitted it.
    pub run: ActionRun,
    /// The rule's name.
    pub alertname: String,
    /// The history row to write when it finishes (detail and time filled in then).
    pub row: HistoryRow,
}

/// An action its own cooldown or hourly limit kept from running.
#[derive(Clone, Debug)]
pub struct RefusedAction {
    /// The event that wanted it.
    pub run: ActionRun,
    /// Why it did not run.
    pub blocked: Blocked,
}

/// What one step produced. The shells perform it: the daemon commits [`Effects::batch`]
/// first and only then lets the outbox send and the actions run, so nothing is sent or run
/// for state that is not durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// State changes, history rows and outbox rows, to commit in one transaction.
    pub batch: Batch,
    /// Actions admitted by their gates, to run once the batch is committed.
    pub actions: Vec<ActionJob>,
    /// Actions their gates refused (already recorded in the batch's history).
    pub refused: Vec<RefusedAction>,
    /// The engine's notifications of the evaluations in this step, after cooldowns, before
    /// routing.
    pub notifications: Vec<Emitted<NoteKind>>,
    /// The messages routing made due in this step, one per receiver, as rendered into the
    /// batch's outbox rows.
    pub dispatches: Vec<Dispatch>,
    /// Templates that failed while rendering those messages (each was sent with the
    /// fallback text), with the receiver's name.
    pub template_errors: Vec<(String, TemplateError)>,
    /// Messages that could not be queued (receiver, why), and were dropped: a receiver the
    /// running policy does not define.
    pub undeliverable: Vec<(String, String)>,
}

/// How a [`Pipeline`] is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// The engine's settings.
    pub settings: Settings,
    /// How long series keep samples.
    pub retention: Duration,
    /// Where links in messages point.
    pub external_url: String,
    /// The value history's step.
    pub history_resolution: Duration,
    /// The most messages one flush renders; the groups left stay due at once, for the next
    /// flush. `None` renders everything due. The daemon bounds it so that a burst is
    /// committed, and starts going out, in parts, instead of all of it being held in memory
    /// at once; what is sent, and when it was due, does not change.
    pub flush_chunk: Option<NonZeroUsize>,
}

/// The running policy and everything it moves.
pub struct Pipeline {
    /// The evaluator, holding the compiled rules and every instance's state.
    pub engine: Engine,
    /// Every series.
    pub series: SeriesStore,
    /// Routing, grouping and inhibition state.
    pub dispatcher: Dispatcher,
    /// The running receivers, compiled.
    pub receivers: Arc<Receivers>,
    /// Silences that mute now or will.
    pub silences: Vec<Silence>,
    /// The value history's open steps.
    pub values: Accumulator,
    rules: Arc<RuleSet>,
    external_url: String,
    /// The latest time the dispatcher was flushed at. Evaluations run at their aligned tick
    /// (slightly in the past) and timers at the wall clock; the dispatcher only ever sees
    /// time move forward.
    dispatched_at: Timestamp,
    /// Whether steps produce instance-state rows and value-history points.
    persisting: bool,
    /// [`Options::flush_chunk`], `usize::MAX` for none.
    flush_chunk: usize,
    out: Output,
    fresh: Vec<AlertNote>,
}

impl Pipeline {
    /// A pipeline for `rules` and the receiver `policy` (receivers, routes, inhibit rules).
    pub fn new(rules: Arc<RuleSet>, policy: &Policy, options: Options) -> Pipeline {
        Pipeline {
            engine: Engine::new(Arc::clone(&rules), options.settings),
            series: SeriesStore::new(options.retention),
            values: Accumulator::new(options.history_resolution),
            dispatcher: Dispatcher::new(&policy.routing),
            receivers: Arc::clone(&policy.receivers),
            silences: Vec::new(),
            rules,
            external_url: options.external_url,
            dispatched_at: Timestamp(i64::MIN),
            persisting: true,
            flush_chunk: options.flush_chunk.map_or(usize::MAX, NonZeroUsize::get),
            out: Output::default(),
            fresh: Vec::new(),
        }
    }

    /// Takes over a reloaded policy: surviving instances keep their state (see
    /// [`Engine::replace_rules`]), groups their timers, series their samples.
    pub fn replace(&mut self, rules: Arc<RuleSet>, policy: &Policy, retention: Duration) {
        self.engine.replace_rules(Arc::clone(&rules));
        self.dispatcher.replace(&policy.routing);
        self.receivers = Arc::clone(&policy.receivers);
        self.series.set_retention(retention);
        let groups: Vec<&str> = rules.groups.iter().map(|g| g.name.as_str()).collect();
        self.values.keep_groups(&groups);
        self.rules = rules;
    }

    /// Stops (`false`) or resumes producing what only a store keeps: instance-state rows
    /// and value-history points. For a replay that persists nothing (`tocsin backtest`):
    /// transitions, notifications, routing and actions are the same either way, and
    /// serializing every instance's state at every evaluation would cost more than
    /// evaluating it.
    pub fn set_persisting(&mut self, on: bool) {
        self.persisting = on;
    }

    /// The latest time the dispatcher was flushed at (`i64::MIN` before the first flush).
    pub fn dispatched_at(&self) -> Timestamp {
        self.dispatched_at
    }

    /// When routing next has something to send (`group_wait`, `group_interval`, repeats,
    /// re-sends, held news), if ever.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.dispatcher.next_due()
    }

    /// Evaluates group `g` at `now`, every rule of it, and finishes the step (see
    /// [`Pipeline::finish_group`]); `next` is when the group evaluates again.
    pub fn evaluate(&mut self, g: usize, now: Timestamp, next: Timestamp, fx: &mut Effects) {
        for r in 0..self.rules.groups[g].rules.len() {
            self.evaluate_rule(RuleRef { group: g, rule: r }, now);
        }
        self.finish_group(g, now, next, fx);
    }

    /// Evaluates one rule at `now`; its results wait for [`Pipeline::finish_group`]. For a
    /// shell that times rules or skips some (the daemon skips rules whose inputs have not
    /// arrived yet while it warms up).
    pub fn evaluate_rule(&mut self, rref: RuleRef, now: Timestamp) {
        self.engine.evaluate_rule(rref, now, &mut self.series, &mut self.out);
    }

    /// Turns the results of the rules of group `g` evaluated since the last call into
    /// effects: state changes, history, admitted and refused actions, notifications routed;
    /// re-sends due before `next` (the group's next evaluation) get this evaluation's
    /// content; then routing is flushed at `now`.
    pub fn finish_group(&mut self, g: usize, now: Timestamp, next: Timestamp, fx: &mut Effects) {
        if self.persisting {
            crate::history::observe_group(&mut self.values, &self.engine, g, now, &mut fx.batch.values);
            self.take_state(g, fx);
        }
        self.record_events(fx);
        let rules = &self.rules;
        let out = &mut self.out;
        for a in &out.actions {
            let rule = &rules.groups[a.rule.group].rules[a.rule.rule];
            let Some(def) = rule.alert().and_then(|r| r.actions.iter().find(|d| d.name == a.kind.0)) else {
                continue;
            };
            fx.actions.push(ActionJob {
                action: def.clone(),
                run: a.clone(),
                alertname: rule.name.clone(),
                row: history_row(rules, a, "action", None),
            });
        }
        for (a, blocked) in out.refused.drain(..) {
            let detail = format!("{}: blocked by {}", a.kind.0, blocked.name());
            fx.batch
                .history
                .push(history_row(rules, &a, "action_blocked", Some(detail)));
            fx.refused.push(RefusedAction { run: a, blocked });
        }
        self.route_notifications(fx);
        let sending = self.dispatcher.sending_by(next);
        self.fresh.clear();
        self.engine.firing_notes(g, now, &sending, &mut self.fresh);
        for note in &self.fresh {
            self.dispatcher.refresh(note);
        }
        // Room for a burst's refresh (every alert of it is due at once) is not kept while
        // the alerts rest: it would cost each firing alert a note's size.
        self.fresh.clear();
        self.fresh.shrink_to(64);
        self.flush(now, fx);
    }

    /// Replays the samples the series hold for `metrics` (what a `query` source backfilled)
    /// from `from` up to `now`, before the first evaluation after a start. Every rule whose
    /// inputs are all in `metrics`, or recorded by such a rule, evaluates at each tick of its
    /// group in `[from, now)` (multiples of `intervals[g]`, in time order across groups);
    /// rules that read anything else sit out, since their samples would lie in the replay's
    /// future. Instances with persisted state keep it; the others move through their tier
    /// machines without notifying, running or recording anything (see
    /// [`Engine::begin_replay`]), and those that fire when the replay reaches `now` are
    /// notified as current then. The states reached go into `fx`'s batch, so a second
    /// restart resumes from them.
    pub fn replay(
        &mut self,
        metrics: &HashSet<String>,
        from: Timestamp,
        now: Timestamp,
        intervals: &[Duration],
        fx: &mut Effects,
    ) {
        let mut readable = metrics.clone();
        let mut ticks: Vec<(Timestamp, RuleRef)> = Vec::new();
        for (g, group) in self.rules.groups.iter().enumerate() {
            let every = crate::series::duration_ms(intervals.get(g).copied().unwrap_or_default()).max(1);
            let first = from.0.div_euclid(every) * every;
            let first = if first < from.0 { first + every } else { first };
            for (r, rule) in group.rules.iter().enumerate() {
                if !rule.slots.iter().all(|s| readable.contains(&s.metric)) {
                    continue;
                }
                if rule.alert().is_none() {
                    readable.insert(rule.name.clone());
                }
                let rref = RuleRef { group: g, rule: r };
                ticks.extend((first..now.0).step_by(every as usize).map(|t| (Timestamp(t), rref)));
            }
        }
        // Within one instant, groups and rules keep their order: a recording rule's output is
        // there for the rules after it, as in a live evaluation.
        ticks.sort_by_key(|&(t, rref)| (t, rref));
        self.engine.begin_replay();
        for (t, rref) in ticks {
            self.engine.evaluate_rule(rref, t, &mut self.series, &mut self.out);
        }
        self.engine.end_replay(now, &mut self.out);
        for g in 0..self.rules.groups.len() {
            self.take_state(g, fx);
        }
        self.record_events(fx);
        self.route_notifications(fx);
        self.flush(now, fx);
    }

    /// The engine's pending transitions as history rows of the batch.
    fn record_events(&mut self, fx: &mut Effects) {
        for ev in &self.out.events {
            fx.batch
                .history
                .push(history_row(&self.rules, ev, ev.kind.name(), None));
        }
    }

    /// Acknowledges (`Some`) or clears the acknowledgement of (`None`) the firing alert with
    /// `fingerprint` at `now`: its instance state (which holds the ack), a history row and the
    /// `acknowledged` messages to the receivers that were told it fires go into `fx`, as an
    /// evaluation's would. Returns the alert as it now is; `None` when no alert with that
    /// fingerprint fires.
    pub fn acknowledge(
        &mut self,
        fingerprint: u64,
        ack: Option<crate::alert::notify::Ack>,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Option<crate::engine::AlertView> {
        let rref = self.engine.acknowledge(fingerprint, ack.clone(), &mut self.out)?;
        if self.persisting {
            self.take_state(rref.group, fx);
        }
        let view = self
            .engine
            .alerts()
            .into_iter()
            .find(|a| a.fingerprint == fingerprint)?;
        let group = &self.rules.groups[rref.group];
        fx.batch.history.push(HistoryRow {
            at_ms: now.0,
            group: group.name.clone(),
            rule: group.rules[rref.rule].name.clone(),
            fingerprint,
            event: if ack.is_some() {
                "acknowledged"
            } else {
                "unacknowledged"
            }
            .to_string(),
            severity: view.severity.to_string(),
            value: view.value,
            labels: view.labels.clone(),
            detail: ack.as_ref().map(|a| format!("by {}: {}", a.by, a.comment)),
        });
        self.route_notifications(fx);
        self.flush(now, fx);
        Some(view)
    }

    /// Group `g`'s changed instance states, as upserts and deletes of the batch.
    fn take_state(&mut self, g: usize, fx: &mut Effects) {
        let mut changes = Vec::new();
        self.engine.take_changes(g, &mut changes);
        for (k, v) in changes {
            match v {
                Some(json) => fx.batch.upserts.push((k, json)),
                None => fx.batch.deletes.push(k),
            }
        }
    }

    /// Hands the engine's pending notifications to routing (with each rule's `notify:`) and
    /// reports them in `fx`; the engine's output is empty afterwards.
    fn route_notifications(&mut self, fx: &mut Effects) {
        for n in &self.out.notifications {
            let rule = &self.rules.groups[n.rule.group].rules[n.rule.rule];
            let notify = rule.alert().map_or(&[][..], |a| &a.receivers[..]);
            self.dispatcher.notify(self.engine.alert_note(n), notify);
        }
        fx.notifications.append(&mut self.out.notifications);
        self.out.clear();
    }

    /// Flushes routing at `now` (never earlier than the last flush): every due message (up
    /// to [`Options::flush_chunk`]) is rendered for its receiver and queued in the batch's
    /// outbox, together with the dispatcher's changed state, so the queue and the state that
    /// produced it commit in one transaction.
    pub fn flush(&mut self, now: Timestamp, fx: &mut Effects) {
        let now = now.max(self.dispatched_at);
        self.dispatched_at = now;
        let first = fx.dispatches.len();
        self.dispatcher
            .flush_at_most(now, &self.silences, self.flush_chunk, &mut fx.dispatches);
        for d in &fx.dispatches[first..] {
            // A cluster's peers are streams of their own, each with the same body.
            let streams = self.receivers.streams(&d.receiver);
            let Some(r) = streams.first().copied() else {
                fx.undeliverable
                    .push((d.receiver.clone(), "the receiver is not defined".to_string()));
                continue;
            };
            let (rendered, errors) = crate::receivers::render(d, r, &self.receivers.templates, &self.external_url);
            fx.template_errors
                .extend(errors.into_iter().map(|e| (d.receiver.clone(), e)));
            let payload = match serde_json::to_string(&rendered) {
                Ok(p) => p,
                Err(e) => {
                    fx.undeliverable
                        .push((d.receiver.clone(), format!("cannot serialize the message: {e}")));
                    continue;
                }
            };
            for stream in &streams {
                fx.batch.outbox.push(NewOutboxEntry {
                    receiver: stream.name.clone(),
                    idempotency_key: d.idempotency_key.clone(),
                    group_key: d.group_key.clone(),
                    payload: payload.clone(),
                    created_ms: now.0,
                });
            }
        }
        self.dispatcher.take_changes(&mut fx.batch.groups);
    }
}

/// The history row of an engine event.
pub fn history_row<K>(rules: &RuleSet, e: &Emitted<K>, event: &str, detail: Option<String>) -> HistoryRow {
    let group = &rules.groups[e.rule.group];
    HistoryRow {
        at_ms: e.at.0,
        group: group.name.clone(),
        rule: group.rules[e.rule.rule].name.clone(),
        fingerprint: e.fingerprint,
        event: event.to_string(),
        severity: e.severity.to_string(),
        value: e.value,
        labels: e.labels.clone(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::{Effects, Options, Pipeline};
    use crate::alert::notify::NoteKind;
    use crate::alert::state::Phase;
    use crate::config::{Source, parse_rules};
    use crate::engine::Settings;
    use crate::policy::Policy;
    use crate::series::{Labels, Sample, Timestamp};

    const STEP: i64 = 15_000;

    /// `mem > 80 for 1m`, and a rule that also reads a metric no backfill fills.
    const RULES: &str = "groups:
  - name: g
    interval: 15s
    rules:
      - alert: High
        expr: mem
        tiers: [{ severity: warning, above: 80, for: 1m }]
      - alert: Mixed
        expr: mem + local
        tiers: [{ severity: warning, above: 80 }]
";

    fn pipeline() -> Pipeline {
        let src = Source::new("r.yaml", RULES.as_bytes().to_vec()).unwrap();
        let (set, d) = crate::rules::compile(&[("r.yaml".to_string(), parse_rules(&src).unwrap())]);
        let options = Options {
            settings: Settings {
                staleness: Duration::from_secs(300),
            },
            retention: Duration::from_secs(3600),
            external_url: "http://tocsin.test".to_string(),
            history_resolution: Duration::from_secs(60),
            flush_chunk: None,
        };
        Pipeline::new(
            Arc::new(set.unwrap_or_else(|| panic!("{d:?}"))),
            &Policy::default(),
            options,
        )
    }

    /// Pushes `values` of `mem` at 0, 15 s, 30 s, … and `local` at `now` only.
    fn fill(p: &mut Pipeline, values: &[f64]) -> Timestamp {
        for (i, v) in values.iter().enumerate() {
            let t = Timestamp(i as i64 * STEP);
            p.series.push("mem", &Labels::new(), Sample { t, v: *v });
        }
        Timestamp(values.len() as i64 * STEP)
    }

    fn replay(p: &mut Pipeline, now: Timestamp) -> Effects {
        let mut fx = Effects::default();
        let metrics: HashSet<String> = ["mem".to_string()].into();
        p.replay(&metrics, Timestamp(0), now, &[Duration::from_secs(15)], &mut fx);
        fx
    }

    fn phase(p: &Pipeline, alertname: &str) -> Option<Phase> {
        p.engine
            .alerts()
            .into_iter()
            .find(|a| a.alertname == alertname)
            .map(|a| a.phase)
    }

    #[test]
    fn an_alert_found_firing_is_notified_once_as_current_with_its_real_start() {
        let mut p = pipeline();
        // Above 80 from 30 s on: due at 90 s, firing since then.
        let now = fill(&mut p, &[50., 50., 85., 85., 85., 85., 85., 85., 85., 85.]);
        let fx = replay(&mut p, now);
        assert_eq!(fx.notifications.len(), 1, "{:?}", fx.notifications);
        let n = &fx.notifications[0];
        assert_eq!(
            (n.kind, n.at, n.starts_at),
            (NoteKind::Firing, now, Some(Timestamp(90_000)))
        );
        assert_eq!(fx.batch.history.len(), 1, "the notified firing is in the history");
        assert!(!fx.batch.upserts.is_empty(), "the state reached is committed");
        // The next live evaluation has nothing new to say.
        let mut live = Effects::default();
        p.evaluate(0, now, now.plus(Duration::from_secs(15)), &mut live);
        assert!(live.notifications.is_empty(), "{:?}", live.notifications);
    }

    #[test]
    fn a_pending_timer_resumes_and_an_ended_episode_is_never_notified() {
        let mut p = pipeline();
        // An episode that fired and resolved inside the window, then 45 s above again.
        let now = fill(&mut p, &[85., 85., 85., 85., 85., 50., 50., 85., 85., 85.]);
        let fx = replay(&mut p, now);
        assert!(fx.notifications.is_empty(), "{:?}", fx.notifications);
        assert!(fx.actions.is_empty());
        assert_eq!(phase(&p, "High"), Some(Phase::Pending { tier: 0 }));
        // Met since 105 s: due at 165 s, 45 s after `now` rather than a minute.
        let mut fx = Effects::default();
        p.series.push("mem", &Labels::new(), Sample { t: now, v: 85. });
        p.evaluate(0, now, now.plus(Duration::from_secs(15)), &mut fx);
        assert!(fx.notifications.is_empty());
        for t in [now.0 + STEP, now.0 + 2 * STEP] {
            p.series.push(
                "mem",
                &Labels::new(),
                Sample {
                    t: Timestamp(t),
                    v: 85.,
                },
            );
            p.evaluate(0, Timestamp(t), Timestamp(t + STEP), &mut fx);
        }
        assert_eq!(fx.notifications.len(), 1);
        assert_eq!(fx.notifications[0].at, Timestamp(165_000));
    }

    #[test]
    fn a_rule_reading_what_no_backfill_filled_sits_out_and_persisted_state_is_kept() {
        let mut p = pipeline();
        let now = fill(&mut p, &[85.; 10]);
        p.series.push("local", &Labels::new(), Sample { t: now, v: 1. });
        // A previous process left `High` pending since `now - 15 s`.
        let mut before = pipeline();
        let t0 = Timestamp(now.0 - STEP);
        before.series.push("mem", &Labels::new(), Sample { t: t0, v: 85. });
        let mut fx = Effects::default();
        before.evaluate(0, t0, now, &mut fx);
        p.engine.restore(fx.batch.upserts);
        let fx = replay(&mut p, now);
        assert!(fx.notifications.is_empty(), "{:?}", fx.notifications);
        assert_eq!(phase(&p, "Mixed"), None, "`Mixed` reads `local`, which has no past");
        // Replayed, 150 s above 80 would fire; the restored state is pending since `t0`.
        assert_eq!(
            phase(&p, "High"),
            Some(Phase::Pending { tier: 0 }),
            "restored, not replayed"
        );
        let mut fx = Effects::default();
        p.series.push("mem", &Labels::new(), Sample { t: now, v: 85. });
        p.evaluate(0, now, now.plus(Duration::from_secs(15)), &mut fx);
        assert_eq!(phase(&p, "High"), Some(Phase::Pending { tier: 0 }));
        let names: Vec<&str> = fx
            .notifications
            .iter()
            .filter_map(|n| n.labels.get("alertname"))
            .collect();
        assert_eq!(names, ["Mixed"], "`Mixed` fires live, at once, once it has `local`");
    }

    proptest! {
        /// Replaying a window and then evaluating live reaches the state an engine that
        /// had evaluated all along reaches, and notifies at most the one current firing.
        #[test]
        fn replay_then_live_reaches_the_state_of_a_run_that_saw_everything(
            values in proptest::collection::vec(prop_oneof![Just(50.0), Just(85.0)], 1..30),
        ) {
            let mut live = pipeline();
            let now = fill(&mut live, &values);
            let mut fx = Effects::default();
            for i in 0..values.len() as i64 {
                live.evaluate(0, Timestamp(i * STEP), Timestamp((i + 1) * STEP), &mut fx);
            }
            let mut replayed = pipeline();
            fill(&mut replayed, &values);
            let fx = replay(&mut replayed, now);
            let want = phase(&live, "High");
            prop_assert_eq!(phase(&replayed, "High"), want);
            let firing = matches!(want, Some(Phase::Firing { .. }));
            prop_assert_eq!(fx.notifications.len(), usize::from(firing));
        }
    }
}
