//! Routes, grouping, inhibition and silences: which receivers hear about an alert,
//! when, and in which message.
//!
//! [`Dispatcher`] decides which receivers hear about an alert (ordered routes, exact values,
//! lists and anchored `~regex`, the first match wins unless it says `continue: true`, a
//! route without `match` catches everything, a rule's `notify:` list bypasses routes) and
//! turns the engine's per-alert notes ([`AlertNote`](crate::message::AlertNote)) into
//! per-receiver messages ([`Dispatch`](crate::message::Dispatch)) after grouping,
//! inhibition and silences. It is pure: time, silences and persisted state come in as arguments and go out as values;
//! nothing here sends, reads a clock or touches a file.
//!
//! # Dispatcher semantics
//!
//! The routing file format names the knobs; where it is silent, these are the choices (Alertmanager's
//! where one exists):
//!
//! * **Groups.** An aggregation group is (route, values of its `group_by` labels). Without
//!   `group_by` (or with `['...']`) every alert instance is its own group, so with the
//!   defaults (`group_wait` 0, `group_interval` 0, no route `repeat_interval`) routing is
//!   transparent: each note becomes a message at the same instant, and the timings of rule
//!   tests stay what the engine produced. A rule's `notify:` list is an implicit route with
//!   per-instance groups and no waits. A note that matches nothing goes nowhere, but still
//!   counts as a firing source for inhibition.
//! * **Membership.** An alert joins the groups of the routes its labels match when it fires,
//!   and stays in every group it joined until it resolves *there*: later notes (an
//!   escalation that changes which routes match, a reload that removed the route, a rule
//!   whose `notify:` changed) still reach those groups. Otherwise a receiver told "firing"
//!   could be left without the resolve.
//! * **Timing.** A new group flushes at its first note + `group_wait`; later news flushes at
//!   max(note time, last flush + `group_interval`); with a route `repeat_interval`, the
//!   group's firing alerts are re-sent (news `repeat`) that long after the last flush. A
//!   `repeat` note from the engine forces news for its alert although its state is known.
//! * **Per receiver**, a group remembers the state each alert was last delivered in (firing
//!   at a severity). News is every change of that state, plus forced repeats and `flapping`
//!   (the latter only to receivers that know the alert fires: it does not change the state).
//!   A receiver without news is skipped. The message carries every unmuted firing alert of
//!   the group, then the resolved ones of this message.
//! * **Resolves are never lost.** A resolve goes to exactly the receivers that were told the
//!   alert fires and have `send_resolved`, muted or not. When an alert resolves and fires
//!   again before its group flushed, the flush sends the resolve and the new episode
//!   follows at the next flush (`group_interval` later), so one message never carries the
//!   same alert twice. An alert that fires and resolves inside `group_wait` is never sent.
//! * **Muting.** Silences (active when `starts_at <= now < ends_at`, every matcher
//!   matching, an absent label matching as empty) and inhibit rules (some *other* firing
//!   alert matches `source`, this one `target`, and both agree on every `equal` label,
//!   absent equal to absent) are evaluated at flush time. Firing news of a muted alert is not
//!   sent; it is sent at the first flush (any call at or after last flush +
//!   `group_interval`) after the muting ends. "Firing" for inhibition means the latest note
//!   of the alert, routed or not, is a firing one.
//! * **Time intervals.** A route is muted inside any of its `mute_time_intervals` and,
//!   when it names `active_time_intervals`, outside all of them ([`intervals`]). Unlike
//!   Alertmanager nothing is dropped: a muted route's group holds its news, resolves and
//!   timers (repeats, re-sends) untouched, and at the first flush once the period ends (its
//!   end is the group's [`Dispatcher::next_due`]) sends the group's state as it is then: a
//!   firing that resolved meanwhile is not sent at all, a resolve of a firing receivers were
//!   told about is. Time intervals read wall clocks: [`Dispatcher::set_origin`] says which
//!   Unix instant `Timestamp(0)` is. A route's identity leaves its intervals out, so a reload
//!   that changes when a route is muted keeps its groups (and releases what they hold).
//! * **Re-sends.** `alertmanager` receivers are re-sent their group's delivered firing
//!   alerts every `resend` (Alertmanager drops alerts that are not refreshed), with empty
//!   news.
//! * **Identity.** An alert is followed across severities by `AlertNote::instance` (its
//!   labels without `severity`), so an escalation is news about the same alert. What
//!   receivers see is the label set as sent: when a receiver was told another severity
//!   than the one it now hears (an escalation, a de-escalation, a resolve of a change it
//!   never heard of), its copy of the note carries `ended_severity`, and label-keyed
//!   receivers end that label set in the same message.
//! * **Fresh content.** [`Dispatcher::refresh`] takes each evaluation's annotations and
//!   value of a firing alert without making news, so every re-send carries what was
//!   rendered at the latest evaluation.
//! * **Idempotency keys**, stable across restarts, never repeated for two messages to one
//!   receiver: a per-instance group's flush is `{fingerprint:016x}-{seq}` of the note that
//!   caused it (the fingerprint of its labels as sent), or `{fingerprint:016x}-{seq}-r{n}`
//!   when a timer or the end of a muting caused it; other groups use `{group:016x}-{n}`;
//!   `n` is a persisted counter.
//! * **Group keys** are Alertmanager's: `{}` then `/{matchers}` of the route, `:` and the
//!   group labels, e.g. `{}/{severity=~"critical|emergency"}:{alertname="HighCpu"}`.
//! * **Persistence.** Everything above (groups and their pending notes, delivered states,
//!   timers, counters, the firing map) goes out as opaque JSON rows through
//!   [`Dispatcher::take_changes`] and comes back through [`Dispatcher::restore`]; a run split
//!   and restored at any point produces the same messages as one that was not.
//! * **Reloads** ([`Dispatcher::replace`]) keep every group: a route's identity is a hash of
//!   its definition, so a group whose route survives goes on receiving new alerts, and one
//!   whose route is gone only finishes the alerts it holds. Receivers no longer defined are
//!   not sent to.

mod dispatch;
pub mod intervals;
pub(crate) mod mute;
mod small_map;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

pub use dispatch::Dispatcher;
pub use intervals::{Intervals, TimeInterval};

use crate::config::{InhibitDef, MatchValue, RouteDef, Text};
use crate::rules::Matcher;
use crate::series::Labels;

/// How the dispatcher treats one receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverPolicy {
    /// Whether resolutions are sent (default true).
    pub send_resolved: bool,
    /// Re-send delivered firing alerts this often (Alertmanager receivers).
    pub resend: Option<Duration>,
}

impl Default for ReceiverPolicy {
    fn default() -> Self {
        ReceiverPolicy {
            send_resolved: true,
            resend: None,
        }
    }
}

/// A checked routing policy: routes with their matchers compiled, inhibit rules and the
/// dispatch policy of each receiver. Only the policy compiler (`crate::policy`) builds one,
/// from definitions it has checked, so the dispatcher never sees a matcher that failed.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    pub(crate) routes: Vec<(RouteDef, LabelMatchers)>,
    pub(crate) inhibit: Vec<mute::Inhibit>,
    pub(crate) receivers: BTreeMap<String, ReceiverPolicy>,
    pub(crate) intervals: intervals::Intervals,
}

impl RoutingTable {
    /// Adds a route (in file order) with its compiled `match`.
    pub(crate) fn add_route(&mut self, def: RouteDef, matchers: LabelMatchers) {
        self.routes.push((def, matchers));
    }

    /// Adds an inhibit rule with its compiled `source` and `target`.
    pub(crate) fn add_inhibit(&mut self, def: &InhibitDef, source: LabelMatchers, target: LabelMatchers) {
        self.inhibit.push(mute::Inhibit::new(def, source, target));
    }

    /// Sets how the dispatcher treats receiver `name`.
    pub(crate) fn add_receiver(&mut self, name: String, policy: ReceiverPolicy) {
        self.receivers.insert(name, policy);
    }
}

/// Compiled label matchers: per label, alternatives any of which may match.
pub(crate) type LabelMatchers = Vec<(String, Vec<Matcher>)>;

/// A `match`-style value that is not a valid matcher: the label, the value as written and
/// why.
pub(crate) struct BadMatcher<'a> {
    pub label: &'a str,
    pub value: &'a Text,
    pub message: String,
}

/// Compiles a `match`-style map, or says which values are invalid (every one of them).
pub(crate) fn compile_matchers(map: &BTreeMap<String, MatchValue>) -> Result<LabelMatchers, Vec<BadMatcher<'_>>> {
    let mut bad = Vec::new();
    let mut out = Vec::with_capacity(map.len());
    for (label, alternatives) in map {
        let mut compiled = Vec::with_capacity(alternatives.0.len());
        for value in &alternatives.0 {
            match Matcher::parse(value.expose()) {
                Ok(m) => compiled.push(m),
                Err(e) => bad.push(BadMatcher {
                    label,
                    value,
                    message: e.to_string(),
                }),
            }
        }
        out.push((label.clone(), compiled));
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// Whether every label matches one of its alternatives.
pub(crate) fn matches_all(matchers: &LabelMatchers, labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|(k, alts)| alts.iter().any(|m| m.matches(labels.get(k))))
}

/// [`Fnv`](crate::series::Fnv) of `parts`, each followed by the byte 0xff: stable across
/// processes and Rust versions, so it can key persisted rows.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h = crate::series::Fnv::default();
    for part in parts {
        h.eat(part);
        h.eat(&[0xff]);
    }
    h.finish()
}
