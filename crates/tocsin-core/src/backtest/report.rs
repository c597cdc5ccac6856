//! The tally of a replay: per alert name, what receivers would have been sent, how long it
//! fired at each severity, its episodes and its actions.
//!
//! Owns turning the [`Effects`] of each pipeline step into a [`Report`]; it reads the
//! effects only (transitions from the history rows, notifications before or after routing,
//! admitted and refused actions) and decides nothing about alerting.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::alert::notify::NoteKind;
use crate::alert::severity_order;
use crate::alert::state::Transition;
use crate::pipeline::Effects;
use crate::rules::RuleSet;
use crate::series::{Labels, Timestamp};

use super::{Gap, Plan};

/// A notification a receiver would have got.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// When (Unix ms).
    pub at: Timestamp,
    /// The receiver, when the replay ran with receiver files.
    pub receiver: Option<String>,
    /// `firing`, `escalated`, `deescalated`, `repeat`, `resolved`, `flapping`, …
    pub kind: NoteKind,
    /// The severity it names.
    pub severity: String,
    /// The alert's labels.
    pub labels: Labels,
}

impl Sent {
    /// Whether it counts as a notification: a firing state or a resolve, not news about an
    /// alert without a state of its own (`flapping`, `acknowledged`).
    pub fn counts(&self) -> bool {
        !self.kind.is_news_only()
    }
}

/// An action that would have run, or that its gate would have refused.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionSeen {
    /// When (Unix ms).
    pub at: Timestamp,
    /// The action's name.
    pub action: String,
    /// The severity entered, or `resolved`.
    pub event: String,
    /// Why it would not have run (`cooldown`, `max_per_hour`); `None`: it would have run.
    pub blocked: Option<&'static str>,
    /// The alert's labels.
    pub labels: Labels,
}

/// One firing episode of one instance: from `firing` to `resolved`.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// The instance's labels, `severity` left out (it changes within an episode).
    pub instance: BTreeMap<String, String>,
    /// When it started firing (Unix ms).
    pub start: Timestamp,
    /// When it resolved, or the end of the range when it still fired then.
    pub end: Timestamp,
    /// Whether it still fired at the end of the range.
    pub open: bool,
    /// The most severe severity it fired at.
    pub worst: String,
}

impl Episode {
    /// How long it fired, in ms.
    pub fn duration_ms(&self) -> i64 {
        self.end.0 - self.start.0
    }

    /// Whether it and `other` are of one instance and overlap in time: the same episode, as
    /// far as a comparison of two replays goes.
    pub fn matches(&self, other: &Episode) -> bool {
        self.instance == other.instance && self.start <= other.end && other.start <= self.end
    }
}

/// What one alert name did over the replay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleReport {
    /// The alert name.
    pub alertname: String,
    /// What receivers would have got, in time order.
    pub sent: Vec<Sent>,
    /// Milliseconds firing per severity.
    pub firing_ms: BTreeMap<String, i64>,
    /// Its episodes, in order of their start.
    pub episodes: Vec<Episode>,
    /// Actions it would have run or had refused, in time order.
    pub actions: Vec<ActionSeen>,
    /// Inputs it reads that the history does not fully hold.
    pub gaps: Vec<Gap>,
    /// Why it could not be replayed at all, when it could not.
    pub not_replayable: Option<String>,
}

impl RuleReport {
    /// Firing-state and resolved notifications receivers would have got.
    pub fn notifications(&self) -> usize {
        self.sent.iter().filter(|s| s.counts()).count()
    }

    /// Seconds firing, all severities.
    pub fn firing_seconds(&self) -> f64 {
        self.firing_ms.values().sum::<i64>() as f64 / 1000.0
    }

    /// The longest episode's length in ms (0 without episodes).
    pub fn longest_ms(&self) -> i64 {
        self.episodes.iter().map(Episode::duration_ms).max().unwrap_or(0)
    }

    /// Notifications per receiver (`None`: counted once, without receiver files).
    pub fn per_receiver(&self) -> BTreeMap<Option<&str>, usize> {
        let mut out = BTreeMap::new();
        for s in self.sent.iter().filter(|s| s.counts()) {
            *out.entry(s.receiver.as_deref()).or_insert(0) += 1;
        }
        out
    }
}

/// What a replay would have done, per alert name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The first evaluation (Unix ms).
    pub from: Timestamp,
    /// The end of the range (Unix ms).
    pub to: Timestamp,
    /// Whether notifications were routed to receivers (receiver files were given).
    pub routed: bool,
    /// One entry per alert name, in rule-file order.
    pub rules: Vec<RuleReport>,
}

/// An instance firing now.
struct Open {
    start: Timestamp,
    severity: String,
    since: Timestamp,
    worst: String,
}

/// Accumulates the effects of each step of a replay.
pub(super) struct Tally {
    routed: bool,
    /// Index into `rules` by alert name.
    index: HashMap<String, usize>,
    rules: Vec<RuleReport>,
    /// By (alert name, instance labels without `severity`).
    open: BTreeMap<(String, BTreeMap<String, String>), Open>,
}

impl Tally {
    /// An empty tally with one entry per alert name of `rules`.
    pub(super) fn new(rules: &RuleSet, routed: bool) -> Tally {
        let mut tally = Tally {
            routed,
            index: HashMap::new(),
            rules: Vec::new(),
            open: BTreeMap::new(),
        };
        for r in rules.rules().filter(|r| r.alert().is_some()) {
            if !tally.index.contains_key(&r.name) {
                tally.index.insert(r.name.clone(), tally.rules.len());
                tally.rules.push(RuleReport {
                    alertname: r.name.clone(),
                    ..RuleReport::default()
                });
            }
        }
        tally
    }

    fn rule(&mut self, name: &str) -> Option<&mut RuleReport> {
        self.index.get(name).map(|&i| &mut self.rules[i])
    }

    /// Takes in what one step of the pipeline produced.
    pub(super) fn take(&mut self, fx: &Effects) {
        for row in &fx.batch.history {
            let Some(transition) = transition(&row.event) else {
                continue;
            };
            let mut instance = row.labels.to_map();
            instance.remove("severity");
            self.transition(&row.rule, instance, transition, &row.severity, Timestamp(row.at_ms));
        }
        if self.routed {
            for d in &fx.dispatches {
                for (fp, kind) in &d.news {
                    let Some(a) = d.alerts.iter().find(|a| a.instance == *fp) else {
                        continue;
                    };
                    let Some(name) = a.labels.get("alertname") else {
                        continue;
                    };
                    let sent = Sent {
                        at: d.at,
                        receiver: Some(d.receiver.clone()),
                        kind: *kind,
                        severity: a.severity.clone(),
                        labels: a.labels.clone(),
                    };
                    if let Some(r) = self.rule(name) {
                        r.sent.push(sent);
                    }
                }
            }
        } else {
            for n in &fx.notifications {
                let Some(name) = n.labels.get("alertname").map(str::to_string) else {
                    continue;
                };
                let sent = Sent {
                    at: n.at,
                    receiver: None,
                    kind: n.kind,
                    severity: n.severity.to_string(),
                    labels: n.labels.clone(),
                };
                if let Some(r) = self.rule(&name) {
                    r.sent.push(sent);
                }
            }
        }
        let event = |run: &crate::engine::ActionRun| match run.kind.1 {
            Transition::Resolved => Transition::Resolved.name().to_string(),
            _ => run.severity.to_string(),
        };
        let runs = (fx.actions.iter().map(|j| (&j.run, None)))
            .chain(fx.refused.iter().map(|r| (&r.run, Some(r.blocked.name()))));
        for (run, blocked) in runs {
            let Some(name) = run.labels.get("alertname").map(str::to_string) else {
                continue;
            };
            let seen = ActionSeen {
                at: run.at,
                action: run.kind.0.clone(),
                event: event(run),
                blocked,
                labels: run.labels.clone(),
            };
            if let Some(r) = self.rule(&name) {
                r.actions.push(seen);
            }
        }
    }

    fn transition(
        &mut self,
        rule: &str,
        instance: BTreeMap<String, String>,
        t: Transition,
        severity: &str,
        at: Timestamp,
    ) {
        let key = (rule.to_string(), instance);
        match t {
            Transition::Firing => {
                self.open.insert(
                    key,
                    Open {
                        start: at,
                        severity: severity.to_string(),
                        since: at,
                        worst: severity.to_string(),
                    },
                );
            }
            Transition::Escalated | Transition::Deescalated => {
                let Some(mut o) = self.open.remove(&key) else { return };
                self.add_firing(rule, &o.severity, o.since, at);
                if severity_order(severity) > severity_order(&o.worst) {
                    o.worst = severity.to_string();
                }
                o.severity = severity.to_string();
                o.since = at;
                self.open.insert(key, o);
            }
            Transition::Resolved => {
                let Some(o) = self.open.remove(&key) else { return };
                self.close(key.0, key.1, o, at, false);
            }
        }
    }

    fn add_firing(&mut self, rule: &str, severity: &str, since: Timestamp, until: Timestamp) {
        if let Some(r) = self.rule(rule) {
            *r.firing_ms.entry(severity.to_string()).or_insert(0) += until.0 - since.0;
        }
    }

    fn close(&mut self, rule: String, instance: BTreeMap<String, String>, o: Open, end: Timestamp, open: bool) {
        self.add_firing(&rule, &o.severity, o.since, end);
        if let Some(r) = self.rule(&rule) {
            r.episodes.push(Episode {
                instance,
                start: o.start,
                end,
                open,
                worst: o.worst,
            });
        }
    }

    /// Ends the replay at `plan.to`: episodes still firing end there. `reads` gives each
    /// alert name's input metrics, to file each of `gaps` under the rules it concerns.
    pub(super) fn finish(mut self, plan: &Plan, reads: &BTreeMap<String, BTreeSet<String>>, gaps: &[Gap]) -> Report {
        for ((rule, instance), o) in std::mem::take(&mut self.open) {
            self.close(rule, instance, o, plan.to, true);
        }
        for r in &mut self.rules {
            r.episodes
                .sort_by(|a, b| (a.start, &a.instance).cmp(&(b.start, &b.instance)));
            r.sent.sort_by_key(|s| s.at);
            r.actions.sort_by_key(|a| a.at);
            let read = reads.get(&r.alertname);
            r.gaps = (gaps.iter())
                .filter(|g| read.is_some_and(|m| m.contains(&g.metric)))
                .cloned()
                .collect();
            r.not_replayable = plan.not_replayable.get(&r.alertname).cloned();
        }
        Report {
            from: plan.from,
            to: plan.to,
            routed: self.routed,
            rules: self.rules,
        }
    }
}

/// The state-machine transition a history row records, if it records one.
fn transition(event: &str) -> Option<Transition> {
    [
        Transition::Firing,
        Transition::Escalated,
        Transition::Deescalated,
        Transition::Resolved,
    ]
    .into_iter()
    .find(|t| t.name() == event)
}
