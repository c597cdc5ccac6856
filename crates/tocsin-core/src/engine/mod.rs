//! Engine: one deterministic evaluation of a rule group at a given time.
//!
//! Owns the alert instances of every rule: which series each instance reads (
//! `select`, joins on label sets, broadcast, `by` groups), evaluating its expressions,
//! feeding the per-instance state machine, the notification rules and the action gates of
//! [`crate::alert`], and writing recording-rule outputs back to the series
//! store. It is sans-IO: time comes in as an argument, samples live in the caller's
//! [`SeriesStore`], and what happened goes out as an [`Output`]. It must never read a clock,
//! a file or a socket; `run`, `check` and `test` all drive it the same way.

use crate::alert::{action, notify, state};

mod state_hash;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub use crate::alert::action::{Blocked, Verdict};
use crate::expr::{Data, EvalCtx, SlotKind};
use crate::rules::{Rule, RuleKind, RuleSet};
use crate::series::{Labels, Sample, SeriesId, SeriesStore, Timestamp, Window, is_stale_marker, stale_marker};
use crate::template::Context;
use action::ActionGate;
use notify::{NoteKind, Notification, NotifyState};
use state::{Event, InstanceState, NoData, Phase, TierObs, Transition};

/// Identifies a rule inside the engine's [`RuleSet`]: (group index, rule index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef {
    /// Index of the group.
    pub group: usize,
    /// Index of the rule in its group.
    pub rule: usize,
}

/// What one instance of one alert did: a transition, a notification or an action run.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted<K> {
    /// The rule.
    pub rule: RuleRef,
    /// Alertmanager's fingerprint of `labels`, the label set as sent: the one
    /// fingerprint of the API, history, receivers and actions.
    pub fingerprint: u64,
    /// The instance's full labels: joined series labels, rule labels, `alertname` and
    /// `severity`. `no_data: alert` never adds one (see `nodata`).
    pub labels: Labels,
    /// What happened.
    pub kind: K,
    /// The tier concerned (for resolutions: the tier it was firing at).
    pub tier: usize,
    /// That tier's severity.
    pub severity: Arc<str>,
    /// When.
    pub at: Timestamp,
    /// The expression's value at that evaluation.
    pub value: Option<f64>,
    /// Per-instance notification sequence number (notifications only; 0 otherwise).
    pub seq: u64,
    /// Start of the instance's (current or just ended) firing episode, when it has one.
    pub starts_at: Option<Timestamp>,
    /// Raised by `no_data: alert`: a flag on the notification, never a label.
    pub nodata: bool,
}

/// An action that is due to run, with the name of the action inside its rule.
pub type ActionRun = Emitted<(String, Transition)>;

/// Everything one evaluation produced, in order.
#[derive(Debug, Default)]
pub struct Output {
    /// State-machine transitions (for history).
    pub events: Vec<Emitted<Transition>>,
    /// Notifications after cooldowns, coalescing, repeats and flap holding.
    pub notifications: Vec<Emitted<NoteKind>>,
    /// Actions admitted by their own cooldown and rate limit.
    pub actions: Vec<ActionRun>,
    /// Actions an event wanted that their cooldown or rate limit refused.
    pub refused: Vec<(ActionRun, Blocked)>,
}

/// The JSON of a persisted state row, without spare room: a burst holds one per alert
/// until it is committed, and `serde_json` grows its buffer by doubling (a 660-byte row
/// kept 1,024).
pub fn row_json(row: &impl serde::Serialize) -> String {
    let mut json = serde_json::to_string(row).expect("a state row serializes");
    json.shrink_to_fit();
    json
}

/// Entries an [`Output`] buffer keeps room for across [`Output::clear`]: what ordinary
/// evaluations need. A burst (30,000 alerts crossing at once) grows a buffer far past it,
/// and that room would otherwise stay allocated, about 250 bytes an alert, while the
/// alerts rest.
const OUTPUT_KEEP: usize = 64;

impl Output {
    /// Forgets everything, keeping the allocations of ordinary steps (up to
    /// [`OUTPUT_KEEP`] entries a buffer; a steady cycle stays allocation-free).
    pub fn clear(&mut self) {
        fn reset<T>(v: &mut Vec<T>) {
            v.clear();
            if v.capacity() > OUTPUT_KEEP {
                v.shrink_to(OUTPUT_KEEP);
            }
        }
        reset(&mut self.events);
        reset(&mut self.notifications);
        reset(&mut self.actions);
        reset(&mut self.refused);
    }
}

/// What one instance reads for one rule slot.
#[derive(Clone, Debug, PartialEq)]
enum Binding {
    Unbound,
    Series(SeriesId),
    Group(Vec<SeriesId>),
}

/// One alert instance (or recording-rule output) of one rule.
#[derive(Debug)]
pub struct Instance {
    /// The joined series labels (without rule labels, `alertname` or `severity`).
    pub labels: Labels,
    /// [`Labels::state_key`] of `labels`: the instance's identity across evaluations,
    /// reloads and restarts (persisted state is keyed by it). Not the fingerprint receivers
    /// see, which covers rule labels, `alertname` and `severity` too.
    pub fingerprint: u64,
    /// The expression's value at the last evaluation.
    pub value: Option<f64>,
    /// Tier state machine.
    pub machine: InstanceState,
    /// Cooldown / repeat / flap state.
    pub notify: NotifyState,
    /// One gate per action of the rule.
    pub gates: Vec<ActionGate>,
    /// Whether the last no-data evaluation raised it through `no_data: alert`.
    pub nodata: bool,
    /// `labels` plus the rule's labels and `alertname`: everything but `severity`, built once.
    base: Labels,
    /// Hash of the persisted form last handed out by [`Engine::take_changes`].
    persisted: Option<u64>,
    bindings: Vec<Binding>,
    output: Option<SeriesId>,
    /// Its series were removed from the store while it was not at rest.
    orphaned: bool,
    /// It appeared during a replay without persisted state: the replay moves its tier
    /// machine, silently (see [`Engine::begin_replay`]).
    replaying: bool,
}

impl Instance {
    /// Whether nothing about it needs keeping: no episode, no notification ever sent (the
    /// notify state outlives an episode: sequence numbers, a running cooldown), no gate
    /// state.
    fn at_rest(&self) -> bool {
        self.machine.is_at_rest()
            && self.notify == NotifyState::default()
            && self.gates.iter().all(|g| *g == ActionGate::default())
    }

    /// The instance without any series: it reads no data.
    fn orphaned(mut self, slots: usize) -> Instance {
        self.bindings = vec![Binding::Unbound; slots];
        self.output = None;
        self.orphaned = true;
        self
    }
}

impl Binding {
    /// Whether it reads a series the store has removed since.
    fn lost(&self, store: &SeriesStore) -> bool {
        match self {
            Binding::Unbound => false,
            Binding::Series(id) => !store.contains(*id),
            Binding::Group(ids) => ids.iter().any(|id| !store.contains(*id)),
        }
    }
}

#[derive(Debug, Default)]
struct RuleState {
    /// Store generation the bindings were computed at; `None` forces a rebind.
    bound_at: Option<u64>,
    /// How many series the first input had then (see [`Engine::bind_new_series`]).
    bound_len: usize,
    instances: Vec<Instance>,
}

/// A pending or firing instance, as the API and rule tests see it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertView {
    /// The rule.
    pub rule: RuleRef,
    /// The alert's name.
    pub alertname: String,
    /// Pending or firing, and at which tier.
    pub phase: Phase,
    /// The severity of that tier.
    pub severity: Arc<str>,
    /// Full labels including `alertname` and `severity`: the label set as sent, with the
    /// external labels.
    pub labels: Labels,
    /// The same without the external labels (what this process' own `ALERTS` series show,
    /// as Prometheus' do).
    pub local_labels: Labels,
    /// The last value.
    pub value: Option<f64>,
    /// Alertmanager's fingerprint of `labels`, as receivers see it.
    pub fingerprint: u64,
    /// The engine's key of the instance ([`Instance::fingerprint`]).
    pub instance: u64,
    /// Firing through `no_data: alert`.
    pub nodata: bool,
    /// The acknowledgement of a firing alert, if any.
    pub acknowledged: Option<notify::Ack>,
}

/// Evaluation settings that are not part of the rules.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How old a sample may be and still be a series' current value.
    pub staleness: Duration,
}

/// The evaluator: a compiled rule set and the state of every instance of every rule.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    state: Vec<Vec<RuleState>>,
    settings: Settings,
    obs: Vec<TierObs>,
    events: Vec<Event>,
    notes: Vec<Notification>,
    recorded: Vec<(SeriesId, f64)>,
    /// Persisted instance states not yet claimed by an instance (their series have not
    /// appeared yet), by [`instance_key`].
    restored: HashMap<String, Persisted>,
    /// `external_labels` of the engine config, added to every alert's labels where the
    /// alert has no label of that name.
    external: Labels,
    /// A replay is running (between [`Engine::begin_replay`] and [`Engine::end_replay`]).
    replaying: bool,
}

/// The persisted form of one instance: everything that survives a restart.
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    /// Tier state machine.
    pub machine: InstanceState,
    /// Cooldown / repeat / flap state.
    pub notify: NotifyState,
    /// Action gates, by action name.
    pub gates: BTreeMap<String, ActionGate>,
    /// Whether it fires through `no_data: alert`.
    #[serde(default)]
    pub nodata: bool,
}

/// [`Persisted`] as [`Engine::take_changes`] serializes it, borrowed from the instance: it
/// runs for every instance not at rest at every evaluation, and most have not changed.
#[derive(serde::Serialize)]
struct PersistedRef<'a> {
    machine: &'a InstanceState,
    notify: &'a NotifyState,
    gates: GatesRef<'a>,
    nodata: bool,
}

/// A rule's actions and an instance's gates, one per action, serialized as
/// [`Persisted::gates`] is: a map by action name, in name order.
struct GatesRef<'a>(&'a [crate::rules::Action], &'a [ActionGate]);

impl serde::Serialize for GatesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut named: Vec<(&str, &ActionGate)> = self.0.iter().map(|a| a.name.as_str()).zip(self.1).collect();
        named.sort_unstable_by_key(|(name, _)| *name);
        s.collect_map(named)
    }
}

/// `labels` without the labels `names` lists (for joins that ignore them).
/// A new instance of `rule` for `labels`, with the state persisted for it before a restart
/// if there is any (taken out of `restored`).
fn new_instance(
    restored: &mut HashMap<String, Persisted>,
    replaying: bool,
    group_name: &str,
    rule: &Rule,
    labels: Labels,
    fingerprint: u64,
    bindings: Vec<Binding>,
) -> Instance {
    let claimed = restored.remove(&instance_key(group_name, &rule.name, fingerprint));
    let replaying = replaying && claimed.is_none();
    let restored = claimed.unwrap_or_default();
    let mut gates = restored.gates;
    let action_names = rule.alert().map_or(&[][..], |a| &a.actions[..]);
    Instance {
        base: base_labels(rule, &labels),
        labels,
        fingerprint,
        value: None,
        machine: restored.machine,
        notify: restored.notify,
        gates: action_names
            .iter()
            .map(|a| gates.remove(a.name.as_str()).unwrap_or_default())
            .collect(),
        nodata: restored.nodata,
        persisted: None,
        bindings,
        output: None,
        orphaned: false,
        replaying,
    }
}

fn without(labels: &Labels, names: &[String]) -> Labels {
    let mut l = labels.clone();
    for n in names {
        l.remove(n);
    }
    l
}

/// The key persisted instance state is stored under: group, rule and fingerprint.
pub fn instance_key(group: &str, rule: &str, fingerprint: u64) -> String {
    format!("{group}\u{1f}{rule}\u{1f}{fingerprint:016x}")
}

struct Bound<'a> {
    store: &'a SeriesStore,
    bindings: &'a [Binding],
    map: &'a [usize],
}

impl Data for Bound<'_> {
    fn series(&self, slot: usize) -> Option<&Window> {
        match self.bindings.get(*self.map.get(slot)?)? {
            Binding::Series(id) => Some(self.store.window(*id)),
            _ => None,
        }
    }

    fn group(&self, slot: usize, f: &mut dyn FnMut(&Window)) {
        if let Some(Binding::Group(ids)) = self.map.get(slot).and_then(|i| self.bindings.get(*i)) {
            for id in ids {
                f(self.store.window(*id));
            }
        }
    }

    fn buckets(&self, slot: usize, f: &mut dyn FnMut(&str, &Window)) {
        if let Some(Binding::Group(ids)) = self.map.get(slot).and_then(|i| self.bindings.get(*i)) {
            for id in ids {
                if let Some(le) = self.store.labels(*id).get("le") {
                    f(le, self.store.window(*id));
                }
            }
        }
    }
}

impl Engine {
    /// An engine with no instance yet.
    pub fn new(rules: Arc<RuleSet>, settings: Settings) -> Engine {
        let state = rules
            .groups
            .iter()
            .map(|g| g.rules.iter().map(|_| RuleState::default()).collect())
            .collect();
        Engine {
            rules,
            state,
            settings,
            obs: Vec::new(),
            events: Vec::new(),
            notes: Vec::new(),
            recorded: Vec::new(),
            restored: HashMap::new(),
            external: Labels::new(),
            replaying: false,
        }
    }

    /// Sets the labels added to every alert (`external_labels` of the engine config). They
    /// take part in the labels and fingerprint of every notification, event, action and
    /// API view, but not in instance state keys or [`crate::message::AlertNote::instance`]:
    /// adding them to a running setup keeps every pending timer and notification state.
    pub fn set_external_labels(&mut self, labels: Labels) {
        self.external = labels;
    }

    /// Seeds instance states saved by an earlier process (a restart neither
    /// re-notifies nor forgets a pending alert). Each is claimed when its instance appears;
    /// undecodable entries are returned so the caller can report them.
    pub fn restore(&mut self, states: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        for (key, json) in states {
            match serde_json::from_str::<Persisted>(&json) {
                Ok(p) => {
                    self.restored.insert(key, p);
                }
                Err(e) => bad.push((key, e.to_string())),
            }
        }
        for rs in self.state.iter_mut().flatten() {
            rs.bound_at = None;
        }
        bad
    }

    /// Replaces the rule set (a reload). Instances of rules that exist in both sets (same
    /// group and rule name) keep their state and timers, tier state by severity and action
    /// gates by action name; the others start afresh.
    pub fn replace_rules(&mut self, rules: Arc<RuleSet>) {
        let before = Arc::clone(&self.rules);
        let mut old: HashMap<(&str, &str), (RuleState, &Rule)> = HashMap::new();
        for (g, group) in before.groups.iter().enumerate() {
            for (r, rule) in group.rules.iter().enumerate() {
                let rs = std::mem::take(&mut self.state[g][r]);
                old.insert((group.name.as_str(), rule.name.as_str()), (rs, rule));
            }
        }
        self.state = rules
            .groups
            .iter()
            .map(|g| {
                g.rules
                    .iter()
                    .map(|r| match old.remove(&(g.name.as_str(), r.name.as_str())) {
                        Some((mut rs, was)) => {
                            carry_over(&mut rs, was, r);
                            rs
                        }
                        None => RuleState::default(),
                    })
                    .collect()
            })
            .collect();
        self.rules = rules;
    }

    /// The persisted form of every instance of group `g` that changed since the last call:
    /// `(key, Some(json))` to store, `(key, None)` to delete (the instance went back to rest).
    pub fn take_changes(&mut self, g: usize, out: &mut Vec<(String, Option<String>)>) {
        let group = &self.rules.groups[g];
        for (r, rule) in group.rules.iter().enumerate() {
            let Some(alert) = rule.alert() else { continue };
            for inst in &mut self.state[g][r].instances {
                let key = || instance_key(&group.name, &rule.name, inst.fingerprint);
                if inst.at_rest() {
                    if inst.persisted.take().is_some() {
                        out.push((key(), None));
                    }
                    continue;
                }
                let p = PersistedRef {
                    machine: &inst.machine,
                    notify: &inst.notify,
                    gates: GatesRef(&alert.actions, &inst.gates),
                    nodata: inst.nodata,
                };
                let hash = state_hash::of(&p);
                if hash.is_none() || inst.persisted != hash {
                    inst.persisted = hash;
                    let json = row_json(&p);
                    out.push((key(), Some(json)));
                }
            }
        }
    }

    /// Metrics whose series must outlive their staleness: those read through `age()` (its
    /// newest sample matters however old it is) and those read by `no_data: alert` rules
    /// (a silent series is what they alert on, per instance). The series store keeps
    /// these when it sweeps; for every other metric, removing a series that went stale
    /// past every window changes nothing the rules do (see [`Engine::evaluate_rule`]).
    pub fn pinned_metrics(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for rule in self.rules.rules() {
            out.extend(rule.exprs().flat_map(|e| e.aged_metrics()).map(str::to_string));
            if rule.alert().is_some_and(|a| a.policy.no_data == NoData::Alert) {
                out.extend(rule.slots.iter().map(|s| s.metric.clone()));
            }
        }
        out
    }

    /// The rule set being evaluated.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The instances of a rule.
    pub fn instances(&self, r: RuleRef) -> &[Instance] {
        &self.state[r.group][r.rule].instances
    }

    /// Evaluates every rule of group `g` at `now`, in order, appending to `out`.
    /// Recording rules write their outputs to `store` at once, so later rules read them.
    pub fn evaluate_group(&mut self, g: usize, now: Timestamp, store: &mut SeriesStore, out: &mut Output) {
        for r in 0..self.rules.groups[g].rules.len() {
            self.evaluate_rule(RuleRef { group: g, rule: r }, now, store, out);
        }
    }

    /// Evaluates one rule at `now` (the daemon times each rule; everything else evaluates
    /// whole groups).
    pub fn evaluate_rule(&mut self, rref: RuleRef, now: Timestamp, store: &mut SeriesStore, out: &mut Output) {
        let rules = Arc::clone(&self.rules);
        let rule = &rules.groups[rref.group].rules[rref.rule];
        let bound_at = self.state[rref.group][rref.rule].bound_at;
        match bound_at {
            Some(at) if at == store.generation() => {}
            // Most changes to the store are series of other metrics: the bindings still hold.
            Some(at)
                if !rule.slots.iter().any(|s| store.changed_since(&s.metric, at))
                    && !store.changed_since(&rule.name, at) =>
            {
                self.state[rref.group][rref.rule].bound_at = Some(store.generation());
            }
            Some(at) if self.bind_new_series(rref, rule, store, at) => {}
            _ => self.rebind(rref, rule, store),
        }
        match &rule.kind {
            RuleKind::Record => self.evaluate_record(rref, rule, now, store),
            RuleKind::Alert(_) => self.evaluate_alert(rref, rule, now, store, out),
        }
    }

    /// Metrics a rule reads that have no series at all (after `select`), for rule health.
    pub fn missing_metrics(&self, rref: RuleRef, store: &SeriesStore) -> Vec<String> {
        let rule = &self.rules.groups[rref.group].rules[rref.rule];
        rule.slots
            .iter()
            .filter(|s| store.series_of(&s.metric).is_empty())
            .map(|s| s.metric.clone())
            .collect()
    }

    fn evaluate_record(&mut self, rref: RuleRef, rule: &Rule, now: Timestamp, store: &mut SeriesStore) {
        let ctx = EvalCtx {
            now,
            staleness: self.settings.staleness,
        };
        let rs = &mut self.state[rref.group][rref.rule];
        self.recorded.clear();
        let mut new_series = false;
        for inst in &mut rs.instances {
            let data = Bound {
                store,
                bindings: &inst.bindings,
                map: &rule.expr_slots[0],
            };
            inst.value = rule.expr.eval(&ctx, &data);
            if inst.output.is_none() && inst.value.is_some() {
                new_series = true;
            }
        }
        // Outputs are created with their first value: an empty one would only be swept
        // away again (the store removes series without samples) and force a rebind.
        if new_series {
            for inst in &mut rs.instances {
                if inst.output.is_none() && inst.value.is_some() {
                    inst.output = Some(store.id(&rule.name, &base_record_labels(rule, &inst.labels, 0)));
                }
            }
            // Creating the outputs changed the store; this rule's own bindings are still
            // right, so keep them instead of rebinding on the next evaluation.
            rs.bound_at = Some(store.generation());
        }
        for inst in &rs.instances {
            let Some(id) = inst.output else { continue };
            match inst.value {
                Some(v) => self.recorded.push((id, v)),
                // No value now: end the recorded series at once with a staleness marker, as
                // Prometheus does, instead of letting its last value linger for `staleness`.
                None if store.window(id).newest().is_some_and(|s| !is_stale_marker(s.v)) => {
                    self.recorded.push((id, stale_marker()));
                }
                None => {}
            }
        }
        for (id, v) in self.recorded.drain(..) {
            store.push_id(id, Sample { t: now, v });
        }
    }

    fn evaluate_alert(&mut self, rref: RuleRef, rule: &Rule, now: Timestamp, store: &SeriesStore, out: &mut Output) {
        let RuleKind::Alert(alert) = &rule.kind else { return };
        let ctx = EvalCtx {
            now,
            staleness: self.settings.staleness,
        };
        let replaying = self.replaying;
        let rs = &mut self.state[rref.group][rref.rule];
        let policy = &alert.policy;
        for inst in &mut rs.instances {
            // Persisted state is newer than any replayed instant: a replay leaves it alone.
            if replaying && !inst.replaying {
                continue;
            }
            let data = Bound {
                store,
                bindings: &inst.bindings,
                map: &rule.expr_slots[0],
            };
            let (v, shown) = rule.expr.eval_shown(&ctx, &data);
            inst.value = shown;
            let obs = match v {
                None => None,
                Some(v) => {
                    self.obs.clear();
                    let mut when_exprs = alert.when.iter().flatten().zip(&rule.expr_slots[1..]);
                    for (i, w) in alert.when.iter().enumerate() {
                        let o = if alert.boolean {
                            TierObs {
                                met: v != 0.0,
                                holds: v != 0.0,
                            }
                        } else if w.is_some() {
                            let (e, map) = when_exprs.next().expect("one slot map per when expression");
                            let data = Bound {
                                store,
                                bindings: &inst.bindings,
                                map,
                            };
                            let b = e.eval(&ctx, &data).is_some_and(|x| x != 0.0);
                            TierObs { met: b, holds: b }
                        } else {
                            policy.observe(i, v)
                        };
                        self.obs.push(o);
                    }
                    Some(self.obs.as_slice())
                }
            };
            self.events.clear();
            inst.machine.step(policy, now, obs, &mut self.events);
            if replaying {
                // Timers and tiers move; nothing is notified, run or recorded.
                if let Some(ev) = self.events.last() {
                    inst.nodata = ev.nodata;
                }
                continue;
            }
            self.notes.clear();
            for ev in &self.events {
                inst.nodata = ev.nodata;
                inst.notify.on_event(&alert.notify, ev, &mut self.notes);
                let labels = full_labels(
                    inst,
                    &policy.tiers[ev.tier.min(policy.tiers.len() - 1)].severity,
                    &self.external,
                );
                for (a, gate) in alert.actions.iter().zip(inst.gates.iter_mut()) {
                    let verdict = gate.admit(&a.trigger, ev);
                    if verdict != Verdict::Unwanted {
                        let run = emitted(
                            rref,
                            ev.nodata,
                            labels.clone(),
                            (a.name.clone(), ev.transition),
                            ev.tier,
                            policy,
                            ev.at,
                            inst.value,
                            0,
                            inst.machine.episode_start(),
                        );
                        match verdict {
                            Verdict::Blocked(why) => out.refused.push((run, why)),
                            _ => out.actions.push(run),
                        }
                    }
                }
                out.events.push(emitted(
                    rref,
                    ev.nodata,
                    labels,
                    ev.transition,
                    ev.tier,
                    policy,
                    ev.at,
                    inst.value,
                    0,
                    inst.machine.episode_start(),
                ));
            }
            let firing = match inst.machine.phase() {
                Phase::Firing { tier, .. } => Some(tier),
                _ => None,
            };
            inst.notify
                .after_evaluation(&alert.notify, now, firing, &mut self.notes);
            push_notes(rref, inst, policy, &self.external, &self.notes, out);
        }
    }

    /// Starts a replay: until [`Engine::end_replay`], evaluations move only the tier
    /// machines of instances that appear without persisted state, and notify, run and
    /// record nothing; instances with state are left as they are. The daemon replays the
    /// samples a `query` source backfilled at start, so `for` timers and episodes of
    /// instances it has never seen resume where the data says they are.
    pub fn begin_replay(&mut self) {
        self.replaying = true;
    }

    /// Ends a replay at `now`: each replayed instance that fires is notified as firing at
    /// its current tier, its episode starting when the replay found it started (the event
    /// goes to history too; no action runs for it: the transitions it stands for are past).
    pub fn end_replay(&mut self, now: Timestamp, out: &mut Output) {
        self.replaying = false;
        let rules = Arc::clone(&self.rules);
        for (g, group) in rules.groups.iter().enumerate() {
            for (r, rule) in group.rules.iter().enumerate() {
                let rref = RuleRef { group: g, rule: r };
                let alert = rule.alert();
                for inst in &mut self.state[g][r].instances {
                    if !std::mem::take(&mut inst.replaying) {
                        continue;
                    }
                    let (Some(alert), Some(tier)) = (alert, inst.machine.firing_tier()) else {
                        continue;
                    };
                    let policy = &alert.policy;
                    let ev = Event {
                        transition: Transition::Firing,
                        tier,
                        at: now,
                        nodata: inst.nodata,
                    };
                    self.notes.clear();
                    inst.notify.on_event(&alert.notify, &ev, &mut self.notes);
                    inst.notify
                        .after_evaluation(&alert.notify, now, Some(tier), &mut self.notes);
                    out.events.push(emitted(
                        rref,
                        ev.nodata,
                        full_labels(inst, &policy.tiers[tier].severity, &self.external),
                        ev.transition,
                        tier,
                        policy,
                        now,
                        inst.value,
                        0,
                        inst.machine.episode_start(),
                    ));
                    push_notes(rref, inst, policy, &self.external, &self.notes, out);
                }
            }
        }
    }

    /// Recomputes which series each instance of a rule reads, keeping the state of
    /// instances that still exist (by fingerprint).
    fn rebind(&mut self, rref: RuleRef, rule: &Rule, store: &SeriesStore) {
        let rows: Vec<Vec<(Labels, Binding)>> = rule
            .slots
            .iter()
            .map(|slot| {
                let series = store.series_of(&slot.metric);
                // A rule-level `select` filters only the inputs that have the selected label:
                // an unlabelled budget or limit is still broadcast.
                let select: Vec<&(String, crate::rules::Matcher)> = rule
                    .select
                    .iter()
                    .filter(|(k, _)| series.iter().any(|id| store.labels(*id).get(k).is_some()))
                    .collect();
                let selected = series.iter().copied().filter(|id| {
                    let l = store.labels(*id);
                    select.iter().all(|(k, m)| m.matches(l.get(k))) && slot.selects(l)
                });
                match slot.kind {
                    SlotKind::Series => selected
                        .map(|id| (without(store.labels(id), &slot.join_without), Binding::Series(id)))
                        .collect(),
                    SlotKind::Buckets => {
                        let mut groups: BTreeMap<Labels, Vec<SeriesId>> = BTreeMap::new();
                        for id in selected {
                            let le = ["le".to_string()];
                            groups.entry(without(store.labels(id), &le)).or_default().push(id);
                        }
                        groups.into_iter().map(|(l, ids)| (l, Binding::Group(ids))).collect()
                    }
                    SlotKind::Aggregate => {
                        let mut groups: BTreeMap<Labels, Vec<SeriesId>> = BTreeMap::new();
                        for id in selected {
                            groups.entry(store.labels(id).project(&rule.by)).or_default().push(id);
                        }
                        groups.into_iter().map(|(l, ids)| (l, Binding::Group(ids))).collect()
                    }
                }
            })
            .collect();
        // Join the slots with many rows first and the richest label sets first, so single
        // series broadcast onto instances that already exist; ties go by metric, never by
        // the position in the expression, so `a/b` and `1/(b/a)` make the same instances.
        let mut order: Vec<usize> = (0..rule.slots.len()).collect();
        order.sort_by_cached_key(|&s| {
            let widest = rows[s].iter().map(|(l, _)| l.len()).max().unwrap_or(0);
            let slot = &rule.slots[s];
            (
                rows[s].len() <= 1,
                std::cmp::Reverse(widest),
                slot.metric.as_str(),
                slot.kind == SlotKind::Aggregate,
            )
        });
        let mut joined: Vec<(Labels, Vec<Binding>)> = vec![(Labels::new(), vec![Binding::Unbound; rule.slots.len()])];
        for s in order {
            match rows[s].as_slice() {
                [] => {}
                [(l, b)] => {
                    for (labels, binds) in &mut joined {
                        binds[s] = b.clone();
                        if labels.compatible(l) {
                            *labels = labels.union(l);
                        }
                    }
                }
                many => {
                    let mut next = Vec::with_capacity(joined.len() * many.len());
                    let mut taken = vec![false; many.len()];
                    for (labels, binds) in joined {
                        let mut matched = false;
                        for (i, (l, b)) in many.iter().enumerate() {
                            if !labels.compatible(l) {
                                continue;
                            }
                            let mut nb = binds.clone();
                            nb[s] = b.clone();
                            next.push((labels.union(l), nb));
                            matched = true;
                            taken[i] = true;
                        }
                        if !matched {
                            next.push((labels, binds));
                        }
                    }
                    // A series no instance so far could take is an instance of its own, "no
                    // data" for the inputs joined before it: it must not depend on which
                    // operand the expression names first.
                    for ((l, b), _) in many.iter().zip(&taken).filter(|(_, taken)| !**taken) {
                        let mut binds = vec![Binding::Unbound; rule.slots.len()];
                        binds[s] = b.clone();
                        next.push((l.clone(), binds));
                    }
                    joined = next;
                }
            }
        }
        let rs = &mut self.state[rref.group][rref.rule];
        let mut old: HashMap<u64, (usize, Instance)> = rs
            .instances
            .drain(..)
            .enumerate()
            .map(|(n, i)| (i.fingerprint, (n, i)))
            .collect();
        let group_name = &self.rules.groups[rref.group].name;
        let mut seen = std::collections::HashSet::new();
        let mut placed: Vec<(Option<usize>, Instance)> = Vec::with_capacity(joined.len());
        for (labels, bindings) in joined {
            let fingerprint = labels.state_key();
            // A cross join can produce one label set twice; the first binding wins.
            if !seen.insert(fingerprint) {
                continue;
            }
            let (was, inst) = match old.remove(&fingerprint) {
                Some((n, mut i)) => {
                    i.bindings = bindings;
                    i.orphaned = false;
                    // The store reuses the ids of removed series: look the output up again.
                    if i.output.is_some() {
                        i.output = store.get(&rule.name, &base_record_labels(rule, &i.labels, 0));
                    }
                    (Some(n), i)
                }
                None => {
                    let inst = new_instance(
                        &mut self.restored,
                        self.replaying,
                        group_name,
                        rule,
                        labels,
                        fingerprint,
                        bindings,
                    );
                    (None, inst)
                }
            };
            placed.push((was, inst));
        }
        // An instance whose series the store removed (stale past every window) keeps its
        // state and reads no data, just as it did while they lingered stale; one at rest
        // has nothing to keep: reading no data it would stay at rest (rules that would
        // alert on it, `no_data: alert`, have their series kept: `pinned_metrics`). Instances that vanished otherwise (a join that changed their
        // labels, the label-less instance of a rule before its first series) go, as they
        // always did.
        let mut orphans: Vec<(usize, Instance)> = old
            .into_values()
            .filter(|(_, i)| !i.at_rest() && (i.orphaned || i.bindings.iter().any(|b| b.lost(store))))
            .collect();
        // Each orphan goes back where it was among the instances that stayed, so the order
        // of their news is the order a store that kept their series would give (nothing
        // follows a hash map's order).
        orphans.sort_unstable_by_key(|(n, _)| *n);
        // Exactly as many as there are: a rule often has one instance, and a vector grown by
        // `push` would reserve four (about 1.6 KiB each time).
        rs.instances = Vec::with_capacity(placed.len() + orphans.len());
        let mut orphans = orphans.into_iter().peekable();
        for (was, inst) in placed {
            if let Some(k) = was {
                while let Some((_, o)) = orphans.next_if(|(n, _)| *n < k) {
                    rs.instances.push(o.orphaned(rule.slots.len()));
                }
            }
            rs.instances.push(inst);
        }
        rs.instances.extend(orphans.map(|(_, o)| o.orphaned(rule.slots.len())));
        rs.bound_at = Some(store.generation());
        rs.bound_len = match &rule.slots[..] {
            [slot] => store.series_of(&slot.metric).len(),
            _ => 0,
        };
    }

    /// Binds only the series the rule's input gained since generation `at`, as new
    /// instances at the end, when that is exactly what [`rebind`](Engine::rebind) would
    /// do; returns false, changing nothing, when it might not be. A new series would
    /// otherwise cost a rule a rebuild of all its instances, and a rule with thousands of
    /// them would pay that for each one that appears.
    ///
    /// That holds for the common shape: one input read series by series, no `select`
    /// (it looks at every series of the input), every instance bound and none orphaned
    /// (a rebind may place a new instance among orphans, or drop the label-less
    /// instance of a rule that had no series), and no series removed since `at` (so the
    /// input's series then are a prefix of its series now) nor any of the rule's own
    /// output series added (a rebind looks those up again).
    fn bind_new_series(&mut self, rref: RuleRef, rule: &Rule, store: &SeriesStore, at: u64) -> bool {
        let [slot] = &rule.slots[..] else { return false };
        let rs = &self.state[rref.group][rref.rule];
        if slot.kind != SlotKind::Series
            || !rule.select.is_empty()
            || store.removed_since(at)
            || store.changed_since(&rule.name, at)
            || rs
                .instances
                .iter()
                .any(|i| i.orphaned || i.bindings.first() == Some(&Binding::Unbound))
        {
            return false;
        }
        let series = store.series_of(&slot.metric);
        let Some(new) = series.get(rs.bound_len..) else {
            return false;
        };
        let mut seen: HashSet<u64> = rs.instances.iter().map(|i| i.fingerprint).collect();
        let mut added = Vec::new();
        for &id in new {
            let l = store.labels(id);
            if !slot.selects(l) {
                continue;
            }
            let labels = without(l, &slot.join_without);
            let fingerprint = labels.state_key();
            // As in a rebind, the first series of a label set wins, and it came before.
            if seen.insert(fingerprint) {
                added.push((labels, fingerprint, id));
            }
        }
        let group_name = &self.rules.groups[rref.group].name;
        let rs = &mut self.state[rref.group][rref.rule];
        rs.instances.reserve_exact(added.len());
        for (labels, fingerprint, id) in added {
            let inst = new_instance(
                &mut self.restored,
                self.replaying,
                group_name,
                rule,
                labels,
                fingerprint,
                vec![Binding::Series(id)],
            );
            rs.instances.push(inst);
        }
        rs.bound_at = Some(store.generation());
        rs.bound_len = series.len();
        true
    }

    /// Every pending or firing instance of every alert rule.
    pub fn alerts(&self) -> Vec<AlertView> {
        let mut out = Vec::new();
        for (g, group) in self.rules.groups.iter().enumerate() {
            for (r, rule) in group.rules.iter().enumerate() {
                let Some(alert) = rule.alert() else { continue };
                for inst in &self.state[g][r].instances {
                    let tier = match inst.machine.phase() {
                        Phase::Inactive => continue,
                        Phase::Pending { tier } | Phase::Firing { tier, .. } => tier.min(alert.policy.tiers.len() - 1),
                    };
                    let severity = alert.policy.tiers[tier].severity.clone();
                    let labels = full_labels(inst, &severity, &self.external);
                    let local_labels = full_labels(inst, &severity, &Labels::new());
                    out.push(AlertView {
                        rule: RuleRef { group: g, rule: r },
                        alertname: rule.name.clone(),
                        phase: inst.machine.phase(),
                        severity,
                        fingerprint: labels.fingerprint(),
                        labels,
                        local_labels,
                        value: inst.value,
                        instance: inst.fingerprint,
                        nodata: inst.nodata && matches!(inst.machine.phase(), Phase::Firing { .. }),
                        acknowledged: inst
                            .notify
                            .ack()
                            .filter(|_| matches!(inst.machine.phase(), Phase::Firing { .. }))
                            .cloned(),
                    });
                }
            }
        }
        out
    }

    /// Acknowledges the firing alert whose fingerprint (of the label set as sent) is
    /// `fingerprint` with `Some(ack)`, or clears its acknowledgement with `None`. The
    /// `acknowledged` notification, for receivers that were told it fires, goes to `out`.
    /// Returns the alert's rule, `None` when no firing instance has that fingerprint.
    pub fn acknowledge(&mut self, fingerprint: u64, ack: Option<notify::Ack>, out: &mut Output) -> Option<RuleRef> {
        for (g, group) in self.rules.groups.iter().enumerate() {
            for (r, rule) in group.rules.iter().enumerate() {
                let Some(alert) = rule.alert() else { continue };
                let policy = &alert.policy;
                let severity = |t: usize| &policy.tiers[t.min(policy.tiers.len() - 1)].severity;
                for inst in &mut self.state[g][r].instances {
                    let Phase::Firing { tier, .. } = inst.machine.phase() else {
                        continue;
                    };
                    if full_labels(inst, severity(tier), &self.external).fingerprint() != fingerprint {
                        continue;
                    }
                    let rref = RuleRef { group: g, rule: r };
                    let Some(ack) = ack else {
                        inst.notify.clear_ack();
                        return Some(rref);
                    };
                    let mut notes = Vec::new();
                    inst.notify.acknowledge(ack, &mut notes);
                    for n in notes {
                        out.notifications.push(emitted(
                            rref,
                            n.nodata,
                            full_labels(inst, severity(n.tier), &self.external),
                            n.kind,
                            n.tier,
                            policy,
                            n.at,
                            inst.value,
                            n.seq,
                            inst.machine.episode_start(),
                        ));
                    }
                    return Some(rref);
                }
            }
        }
        None
    }

    /// Renders the annotations of an alert as shown in the API and checked by rule tests.
    /// Template failures render the plain fallback text.
    pub fn annotations(&self, view: &AlertView) -> BTreeMap<String, String> {
        let (tier, status) = match view.phase {
            Phase::Firing { tier, .. } => (tier, "firing"),
            Phase::Pending { tier } => (tier, "pending"),
            Phase::Inactive => (0, "inactive"),
        };
        let ctx = Context {
            status: status.to_string(),
            severity: view.severity.to_string(),
            value: view.value,
            labels: view.labels.to_map(),
            nodata: view.nodata,
            ..Context::default()
        };
        self.render_annotations(view.rule, tier, ctx)
    }

    /// Renders the annotations of a notification (status `resolved` for resolutions).
    pub fn notification_annotations(&self, n: &Emitted<NoteKind>) -> BTreeMap<String, String> {
        let status = if n.kind == NoteKind::Resolved {
            "resolved"
        } else {
            "firing"
        };
        let ctx = Context {
            status: status.to_string(),
            severity: n.severity.to_string(),
            value: n.value,
            labels: n.labels.to_map(),
            nodata: n.nodata,
            ..Context::default()
        };
        self.render_annotations(n.rule, n.tier, ctx)
    }

    /// The notification as receivers see it ([`crate::message::AlertNote`]): rendered
    /// annotations, the tier's threshold and the episode's start (for a resolution, the start
    /// of the episode it ends; `n.at` when the instance is gone or never recorded one).
    ///
    /// Its `instance` is the state key of the full labels without `severity` and without
    /// the external labels they carry, not the engine's instance key: two rules reading the
    /// same series share the latter, and the dispatcher must tell their alerts apart while
    /// following one alert across severities. Leaving the external labels out keeps the
    /// dispatcher's groups and delivered states when an operator adds or changes them.
    pub fn alert_note(&self, n: &Emitted<NoteKind>) -> crate::message::AlertNote {
        use crate::message::{AlertNote, Status};
        let resolved = n.kind == NoteKind::Resolved;
        let starts_at = n.starts_at.unwrap_or(n.at);
        let threshold = self.rules.groups[n.rule.group].rules[n.rule.rule]
            .alert()
            .and_then(|a| a.thresholds.get(n.tier).copied().flatten());
        let mut identity = n.labels.clone();
        identity.remove("severity");
        for (name, value) in self.external.iter() {
            if identity.get(name) == Some(value) {
                identity.remove(name);
            }
        }
        AlertNote {
            instance: identity.state_key(),
            seq: n.seq,
            kind: n.kind,
            status: if resolved { Status::Resolved } else { Status::Firing },
            severity: n.severity.to_string(),
            labels: n.labels.clone(),
            annotations: self.notification_annotations(n),
            value: n.value,
            threshold,
            starts_at,
            ends_at: resolved.then_some(n.at),
            at: n.at,
            nodata: n.nodata,
            ended_severity: None,
        }
    }

    /// The content of the firing alerts of group `g` whose instance key is in `wanted`, as
    /// of its latest evaluation, one note each (kind `firing`), for
    /// [`crate::route::Dispatcher::refresh`]: re-sends then carry the annotations and value
    /// of that evaluation, not those of the first firing.
    pub fn firing_notes(
        &self,
        g: usize,
        now: Timestamp,
        wanted: &std::collections::BTreeSet<u64>,
        out: &mut Vec<crate::message::AlertNote>,
    ) {
        if wanted.is_empty() {
            return;
        }
        for (r, rule) in self.rules.groups[g].rules.iter().enumerate() {
            let Some(alert) = rule.alert() else { continue };
            let rref = RuleRef { group: g, rule: r };
            for inst in &self.state[g][r].instances {
                let Phase::Firing { tier, starts_at } = inst.machine.phase() else {
                    continue;
                };
                // The note's instance key is the labels without `severity`: the base.
                if !wanted.contains(&inst.base.state_key()) {
                    continue;
                }
                let tier = tier.min(alert.policy.tiers.len() - 1);
                let labels = full_labels(inst, &alert.policy.tiers[tier].severity, &self.external);
                let n = emitted(
                    rref,
                    inst.nodata,
                    labels,
                    NoteKind::Firing,
                    tier,
                    &alert.policy,
                    now,
                    inst.value,
                    0,
                    Some(starts_at),
                );
                out.push(self.alert_note(&n));
            }
        }
    }

    /// Renders the rule's annotations against `ctx` (status, severity, value, labels and
    /// `nodata` filled in by the caller; the alert name and the tier's threshold here).
    fn render_annotations(&self, rref: RuleRef, tier: usize, mut ctx: Context) -> BTreeMap<String, String> {
        let rule = &self.rules.groups[rref.group].rules[rref.rule];
        let Some(alert) = rule.alert() else {
            return BTreeMap::new();
        };
        let nodata = ctx.nodata;
        ctx.alertname.clone_from(&rule.name);
        ctx.threshold = alert.thresholds.get(tier).copied().flatten();
        let mut out: BTreeMap<String, String> = alert
            .annotations
            .iter()
            .map(|(k, t, raw)| (k.clone(), self.rules.templates.render_or_fallback(*t, &ctx, raw).0))
            .collect();
        // The flag travels as an annotation because it must not be a label: label-keyed
        // consumers would see the episode's resolve as another alert.
        if nodata {
            out.insert("nodata".to_string(), "true".to_string());
        }
        out
    }
}

/// Adapts the state of a rule that survives a reload to its new definition. The new rule may
/// read other series or carry other labels: it is rebound, and what derives from the rule is
/// rebuilt. Tier state follows each tier's severity and gates each action's name (as the
/// persisted form keys them), so reordering tiers or actions in a file changes nothing.
fn carry_over(rs: &mut RuleState, was: &Rule, now: &Rule) {
    rs.bound_at = None;
    let tiers = match (was.alert(), now.alert()) {
        (Some(a), Some(b)) => Some((state::TierMap::new(&a.policy, &b.policy), b.policy.tiers.len()))
            .filter(|(map, n)| !map.is_identity() || a.policy.tiers.len() != *n),
        _ => None,
    };
    let old_actions = was.alert().map_or(&[][..], |a| &a.actions[..]);
    let new_actions = now.alert().map_or(&[][..], |a| &a.actions[..]);
    for inst in &mut rs.instances {
        inst.base = base_labels(now, &inst.labels);
        if let Some((map, n)) = &tiers {
            inst.machine.remap_tiers(map, *n);
            inst.notify.remap_tiers(map);
        }
        let mut gates: HashMap<&str, ActionGate> = old_actions
            .iter()
            .map(|a| a.name.as_str())
            .zip(inst.gates.drain(..))
            .collect();
        inst.gates = new_actions
            .iter()
            .map(|a| gates.remove(a.name.as_str()).unwrap_or_default())
            .collect();
    }
}

/// A recorded series' labels: the instance's, overridden by the rule's own, sharing their
/// strings; `extra` is room for labels the caller adds.
fn base_record_labels(rule: &Rule, series: &Labels, extra: usize) -> Labels {
    let mut l = series.clone_with_room(rule.labels.len() + extra);
    l.overlay(&rule.labels);
    l
}

/// Series labels overridden by the rule's labels, plus `alertname`.
fn base_labels(rule: &Rule, series: &Labels) -> Labels {
    static ALERTNAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    let mut l = base_record_labels(rule, series, 1);
    l.set_shared(
        ALERTNAME.get_or_init(|| Arc::from("alertname")),
        &Arc::from(rule.name.as_str()),
    );
    l
}

/// An instance's full labels at a severity; one allocation (the label vector), no string copies.
/// The labels as sent: the instance's, `severity`, then each external label the alert
/// has no label of (its own always win, as Prometheus' do over its external labels).
fn full_labels(inst: &Instance, severity: &Arc<str>, external: &Labels) -> Labels {
    static SEVERITY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    let mut l = inst.base.clone_with_room(1 + external.len());
    l.set_shared(SEVERITY.get_or_init(|| Arc::from("severity")), severity);
    l.underlay(external);
    l
}

/// `inst`'s notifications `notes` as emitted notifications in `out`.
fn push_notes(
    rref: RuleRef,
    inst: &Instance,
    policy: &state::Policy,
    external: &Labels,
    notes: &[Notification],
    out: &mut Output,
) {
    for n in notes {
        let sev = &policy.tiers[n.tier.min(policy.tiers.len() - 1)].severity;
        out.notifications.push(emitted(
            rref,
            n.nodata,
            full_labels(inst, sev, external),
            n.kind,
            n.tier,
            policy,
            n.at,
            inst.value,
            n.seq,
            inst.machine.episode_start(),
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn emitted<K>(
    rule: RuleRef,
    nodata: bool,
    labels: Labels,
    kind: K,
    tier: usize,
    policy: &state::Policy,
    at: Timestamp,
    value: Option<f64>,
    seq: u64,
    starts_at: Option<Timestamp>,
) -> Emitted<K> {
    let tier = tier.min(policy.tiers.len() - 1);
    Emitted {
        rule,
        fingerprint: labels.fingerprint(),
        labels,
        kind,
        tier,
        severity: policy.tiers[tier].severity.clone(),
        at,
        value,
        seq,
        starts_at,
        nodata,
    }
}
