//! The dispatcher: alert notes in, per-receiver messages out (semantics in the module doc of
//! [`crate::route`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::intervals::Intervals;
use super::mute::{Inhibit, SilenceMatcherCache, Sources};
use super::small_map::SmallMap;
use super::{LabelMatchers, ReceiverPolicy, RoutingTable, fnv, matches_all};
use crate::alert::notify::NoteKind;
use crate::config::{MatchValue, RouteDef};
use crate::message::{AlertNote, Dispatch, Silence, Status};
use crate::series::{Labels, Timestamp};

/// Row key of the persisted counter of timer-caused and multi-alert flushes.
const COUNTER_KEY: &str = "n";
/// Row key prefix of a group.
const GROUP_PREFIX: &str = "g/";
/// A group: its route's id and the hash of its `group_by` values (the alert's instance key
/// for per-instance groups). Ordered as its row key (zero-padded hex) sorts, so groups flush
/// in the order they did when they were keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupId {
    route: u64,
    group: u64,
}

impl GroupId {
    /// The persisted row key, `g/{route:016x}/{group:016x}`.
    fn row_key(self) -> String {
        format!("{GROUP_PREFIX}{:016x}/{:016x}", self.route, self.group)
    }

    /// The id of a group's row key.
    fn parse(key: &str) -> Option<GroupId> {
        let (route, group) = key.strip_prefix(GROUP_PREFIX)?.split_once('/')?;
        Some(GroupId {
            route: u64::from_str_radix(route, 16).ok()?,
            group: u64::from_str_radix(group, 16).ok()?,
        })
    }
}

/// Row key prefix of a firing-map entry.
const FIRING_PREFIX: &str = "f/";
/// Flushes of one group at one instant: a deferred new episode needs a second one; more
/// would mean a bug, and must not hang the caller.
const MAX_FLUSHES_PER_INSTANT: usize = 4;
/// `Group::held_until` of a route muted by a period that does not end in sight.
const NEVER: Timestamp = Timestamp(i64::MAX);

/// One compiled route of the receiver files.
#[derive(Debug)]
struct RouteSpec {
    /// Identity across reloads and restarts: a hash of the definition.
    id: u64,
    matchers: LabelMatchers,
    /// The Alertmanager route key, `{}` or `{}/{matchers}`.
    path: String,
    settings: Arc<Settings>,
    cont: bool,
}

/// What a group needs of its route; kept in the group so that a group whose route was
/// removed by a reload can still finish the alerts it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Settings {
    receivers: Vec<String>,
    /// `None`: one group per alert instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group_by: Option<Vec<String>>,
    group_wait: Duration,
    group_interval: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repeat: Option<Duration>,
    /// `mute_time_intervals` by name (absent from rows written before time intervals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mute: Vec<String>,
    /// `active_time_intervals` by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    active: Vec<String>,
}

/// One alert of a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// The latest note that says what state the alert is in (never a `Flapping` or
    /// `Acknowledged` one).
    note: AlertNote,
    /// The resolve of an earlier episode that receivers were told fires, not flushed yet
    /// when the alert fired again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended: Option<Box<AlertNote>>,
    /// Kind of the latest note that changed the firing state (names escalations).
    change: NoteKind,
    /// News owed although the state did not change (`Repeat`, `Flapping`, `Acknowledged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forced: Option<NoteKind>,
}

/// What one receiver of a group was told.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Told {
    /// Fingerprint → severity it was last delivered firing at.
    firing: SmallMap<u64, String>,
    /// Next re-send (receivers with a `resend` policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resend_at: Option<Timestamp>,
}

/// An aggregation group and everything it remembers. Its row is written for every group
/// a burst touches, so options left empty are left out of it (rows that spell them `null`,
/// as earlier versions wrote, read the same; versions before read their absence as `None`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Group {
    route: u64,
    /// Shared with the route and every other group of it (a group per alert is the default).
    settings: Arc<Settings>,
    group_key: String,
    group_labels: Labels,
    /// Most groups hold one alert: a small map holds it without a B-tree node.
    alerts: SmallMap<u64, Entry>,
    /// When pending news is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due: Option<Timestamp>,
    last_flush: Option<Timestamp>,
    /// Next route `repeat_interval` re-send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repeat_at: Option<Timestamp>,
    /// Some change was held back by muting: re-check at flushes after `group_interval`.
    muted_wait: bool,
    /// Per-instance groups: `seq` of the newest note not flushed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause_seq: Option<u64>,
    /// Held by its route's time intervals until then ([`NEVER`]: no end in sight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held_until: Option<Timestamp>,
    told: SmallMap<String, Told>,
}

impl Group {
    fn per_instance(&self) -> bool {
        self.settings.group_by.is_none()
    }

    /// Whether a flush may ever find it due without news arriving: it has a timer, or a
    /// muted change to re-check. Only such groups are in [`Dispatcher::timed`].
    fn timed(&self) -> bool {
        self.due.is_some()
            || self.repeat_at.is_some()
            || self.muted_wait
            || self.told.iter().any(|(_, t)| t.resend_at.is_some())
    }

    /// Whether a flush at `now` has work (a muted change counts only when a flush is allowed).
    fn due_at(&self, now: Timestamp, policies: &BTreeMap<String, ReceiverPolicy>) -> bool {
        self.due.is_some_and(|d| d <= now)
            || self.repeat_at.is_some_and(|r| r <= now)
            || (self.muted_wait
                && self
                    .last_flush
                    .is_none_or(|l| l.plus(self.settings.group_interval) <= now))
            || self.told.iter().any(|(r, t)| {
                t.resend_at.is_some_and(|at| at <= now) && policies.get(r).is_some_and(|p| p.resend.is_some())
            })
    }

    /// The earliest timer (muted re-checks have none: they ride on other flushes).
    fn next_due(&self, policies: &BTreeMap<String, ReceiverPolicy>) -> Option<Timestamp> {
        let resend = self.told.iter().filter_map(|(r, t)| {
            t.resend_at
                .filter(|_| policies.get(r).is_some_and(|p| p.resend.is_some()))
        });
        self.due.into_iter().chain(self.repeat_at).chain(resend).min()
    }

    /// When news that arrives at `at` is due.
    fn schedule(&mut self, at: Timestamp) {
        if self.due.is_none() {
            self.due = Some(match self.last_flush {
                None => at,
                Some(l) => at.max(l.plus(self.settings.group_interval)),
            });
        }
    }
}

/// Turns alert notes into per-receiver messages: routes, groups, inhibition, silences.
#[derive(Debug)]
pub struct Dispatcher {
    routes: Vec<RouteSpec>,
    inhibit: Vec<Inhibit>,
    policies: BTreeMap<String, ReceiverPolicy>,
    /// Boxed: a B-tree node has room for 11 values, and a `Group` is large.
    /// Keyed by id rather than row key: the key strings would cost an alert 70 bytes.
    groups: BTreeMap<GroupId, Box<Group>>,
    /// Every alert whose latest note fires, routed or not: the inhibition sources.
    firing: BTreeMap<u64, Labels>,
    /// Counter for idempotency keys of multi-alert and timer-caused flushes.
    counter: u64,
    /// Derived: the groups each alert is in (keys of `groups`; the values say nothing).
    /// (instance, group) pairs rather than a set per instance: a set of one would cost its
    /// own allocation.
    member_of: BTreeSet<(u64, GroupId)>,
    /// Derived: the groups that are [`Group::timed`], so that looking for what is due reads
    /// those, not every group of every firing alert at every evaluation.
    timed: BTreeSet<GroupId>,
    /// Row keys changed since the last `take_changes`.
    dirty: BTreeSet<String>,
    silence_cache: SilenceMatcherCache,
    /// The `time_intervals` routes mute by.
    intervals: Intervals,
    /// The Unix instant (ms) of `Timestamp(0)`: time intervals read wall clocks.
    origin: i64,
    /// The instant of the last flush, when [`Dispatcher::flush_at_most`] stopped it short:
    /// what it left is due then, a muted group's re-check included, which has no timer.
    cut_short: Option<Timestamp>,
}

impl Dispatcher {
    /// A dispatcher for the routes, inhibit rules and receivers of `table`, with no state.
    pub fn new(table: &RoutingTable) -> Dispatcher {
        let mut d = Dispatcher {
            routes: Vec::new(),
            inhibit: Vec::new(),
            policies: BTreeMap::new(),
            groups: BTreeMap::new(),
            firing: BTreeMap::new(),
            counter: 0,
            member_of: BTreeSet::new(),
            timed: BTreeSet::new(),
            dirty: BTreeSet::new(),
            silence_cache: SilenceMatcherCache::default(),
            intervals: Intervals::default(),
            origin: 0,
            cut_short: None,
        };
        d.replace(table);
        d
    }

    /// Sets the Unix instant, in ms, that `Timestamp(0)` stands for (default 0, the daemon's
    /// clock; a rule test's `start:`), so time intervals read the right wall clock.
    pub fn set_origin(&mut self, unix_ms: i64) {
        self.origin = unix_ms;
    }

    /// Takes new receiver files (a reload). Every group is kept: one whose route survives
    /// (same definition) goes on as before, one whose route is gone finishes its alerts.
    pub fn replace(&mut self, table: &RoutingTable) {
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        let mut paths: BTreeSet<String> = BTreeSet::new();
        self.routes = table
            .routes
            .iter()
            .enumerate()
            .map(|(i, (r, matchers))| {
                let base = route_hash(r);
                // Identical definitions are different routes: number the repeats.
                let n = seen.entry(base).or_default();
                let id = fnv(&[&base.to_le_bytes(), &n.to_le_bytes()]);
                *n += 1;
                let mut path = route_path(&r.r#match);
                if !paths.insert(path.clone()) {
                    path = format!("{path}/{i}");
                }
                let group_by: Vec<String> = r.group_by.iter().map(|t| t.expose().to_string()).collect();
                RouteSpec {
                    id,
                    matchers: matchers.clone(),
                    path,
                    settings: Arc::new(Settings {
                        receivers: r.receivers.iter().map(|t| t.expose().to_string()).collect(),
                        group_by: (!group_by.is_empty() && !group_by.iter().any(|g| g == "...")).then_some(group_by),
                        group_wait: r.group_wait.as_ref().map(|d| d.value.0).unwrap_or_default(),
                        group_interval: r.group_interval.as_ref().map(|d| d.value.0).unwrap_or_default(),
                        repeat: r.repeat_interval.as_ref().map(|d| d.value.0).filter(|d| !d.is_zero()),
                        mute: r.mute_time_intervals.iter().map(|t| t.expose().to_string()).collect(),
                        active: r.active_time_intervals.iter().map(|t| t.expose().to_string()).collect(),
                    }),
                    cont: r.r#continue,
                }
            })
            .collect();
        self.inhibit.clone_from(&table.inhibit);
        self.policies.clone_from(&table.receivers);
        self.intervals.clone_from(&table.intervals);
        // A route's identity leaves out its time intervals, so that a reload changing when a
        // route is muted keeps its groups, and what they hold goes out when it is unmuted.
        // The periods may have changed too: a held group is re-examined at its next flush.
        for (id, g) in &mut self.groups {
            let mut changed = g.held_until.take().is_some();
            if let Some(r) = self.routes.iter().find(|r| r.id == g.route)
                && (g.settings.mute != r.settings.mute || g.settings.active != r.settings.active)
            {
                let settings = Arc::make_mut(&mut g.settings);
                settings.mute.clone_from(&r.settings.mute);
                settings.active.clone_from(&r.settings.active);
                changed = true;
            }
            if changed {
                self.dirty.insert(id.row_key());
            }
        }
    }

    /// Feeds one note; its time is `note.at`. `notify` is the rule's `notify:` list (empty
    /// for routing by labels).
    pub fn notify(&mut self, note: AlertNote, notify: &[String]) {
        let fp = note.instance;
        self.track_firing(&note);
        let mut targets: BTreeSet<GroupId> = self.member_of.range(member_range(fp)).map(|(_, id)| *id).collect();
        // Only a firing note makes an alert join groups; a resolve or a flapping note for an
        // alert no group holds concerns no receiver.
        if note.status == Status::Firing && !note.kind.is_news_only() {
            for (route, path, settings) in self.targets(&note.labels, notify) {
                targets.insert(self.join(route, &path, &settings, &note));
            }
        }
        for id in targets {
            if let Some(g) = self.groups.get_mut(&id) {
                add_note(g, &note);
                self.dirty.insert(id.row_key());
                self.reindex(id);
            }
        }
    }

    /// Puts group `id` in [`timed`](Self::timed) or takes it out, after a change to it.
    fn reindex(&mut self, id: GroupId) {
        if self.groups.get(&id).is_some_and(|g| g.timed()) {
            self.timed.insert(id);
        } else {
            self.timed.remove(&id);
        }
    }

    /// Whether [`timed`](Self::timed) holds exactly the groups that are timed.
    #[cfg(test)]
    pub(crate) fn timed_index_is_exact(&self) -> bool {
        let timed: BTreeSet<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.timed())
            .map(|(id, _)| *id)
            .collect();
        timed == self.timed
    }

    /// The timed groups, in id order.
    fn timed_groups(&self) -> impl Iterator<Item = (GroupId, &Group)> + '_ {
        self.timed.iter().filter_map(|id| Some((*id, &**self.groups.get(id)?)))
    }

    /// Takes what `note` says about a firing alert at the latest evaluation (annotations,
    /// value, threshold, labels) into every group that holds it at the same severity and
    /// episode, without news: re-sends (Alertmanager re-posts, a group's later flushes, route
    /// repeats) then carry what was rendered at that evaluation, not the first firing's. The
    /// labels differ when `external_labels` changed across a restart: re-sends carry the
    /// label set the API shows.
    pub fn refresh(&mut self, note: &AlertNote) {
        for (_, id) in self.member_of.range(member_range(note.instance)) {
            let Some(e) = self.groups.get_mut(id).and_then(|g| g.alerts.get_mut(&note.instance)) else {
                continue;
            };
            let n = &mut e.note;
            let same = n.status == Status::Firing && n.severity == note.severity && n.starts_at == note.starts_at;
            let changed = n.annotations != note.annotations
                || n.value != note.value
                || n.threshold != note.threshold
                || n.labels != note.labels;
            if same && changed {
                n.labels.clone_from(&note.labels);
                n.annotations.clone_from(&note.annotations);
                n.value = note.value;
                n.threshold = note.threshold;
                self.dirty.insert(id.row_key());
            }
        }
    }

    /// The alert instances (by [`AlertNote::instance`]) of groups with a timer due by
    /// `until`: the alerts a message will carry before the next evaluation, and so the only
    /// ones whose content is worth refreshing (rendering every firing alert's annotations at
    /// every evaluation would cost more than all the rest of the evaluation).
    pub fn sending_by(&self, until: Timestamp) -> BTreeSet<u64> {
        self.timed_groups()
            .map(|(_, g)| g)
            .filter(|g| g.next_due(&self.policies).is_some_and(|d| d <= until))
            .flat_map(|g| g.alerts.keys().copied())
            .collect()
    }

    /// Emits every message due at `now`, muting by `silences` (those active at `now`).
    pub fn flush(&mut self, now: Timestamp, silences: &[Silence], out: &mut Vec<Dispatch>) {
        self.flush_at_most(now, silences, usize::MAX, out);
    }

    /// As [`flush`](Self::flush), but starts no further group once `max` messages are out:
    /// what is left is due at `now` ([`next_due`](Self::next_due)), for the next call.
    /// A burst then goes out in parts, each with the state that produced it.
    pub fn flush_at_most(&mut self, now: Timestamp, silences: &[Silence], max: usize, out: &mut Vec<Dispatch>) {
        self.cut_short = None;
        let due: Vec<GroupId> = self
            .timed_groups()
            .filter(|(_, g)| g.due_at(now, &self.policies))
            .map(|(id, _)| id)
            .collect();
        if due.is_empty() {
            return;
        }
        let sources = Sources::index(&self.inhibit, &self.firing);
        let first = out.len();
        for key in due {
            if out.len() - first >= max {
                self.cut_short = Some(now);
                break;
            }
            for _ in 0..MAX_FLUSHES_PER_INSTANT {
                let Some(g) = self.groups.get(&key) else { break };
                if !g.due_at(now, &self.policies) {
                    break;
                }
                // A muted route's group holds everything, timers included: its state as it is
                // when the period ends is what goes out. It only learns when that is.
                if self.time_muted(g, now) {
                    // Known already (a reload, which may change the periods, forgets it).
                    if g.held_until.is_some_and(|h| h > now) {
                        break;
                    }
                    let until = self
                        .intervals
                        .unmuted_at(&g.settings.mute, &g.settings.active, self.unix(now));
                    let until = until.map_or(NEVER, |u| Timestamp(u.saturating_sub(self.origin)));
                    if let Some(g) = self.groups.get_mut(&key)
                        && g.held_until != Some(until)
                    {
                        g.held_until = Some(until);
                        self.dirty.insert(key.row_key());
                    }
                    break;
                }
                self.flush_group(key, now, silences, &sources, out);
            }
        }
        self.silence_cache.trim(silences);
    }

    /// Whether a silence active at `now`, and whether another firing alert's inhibition,
    /// mutes each of `alerts` (instance key as in [`AlertNote::instance`], labels as sent):
    /// what `flush` would decide, for the API. Reads only; builds its own regex cache.
    pub fn muting(&self, now: Timestamp, silences: &[Silence], alerts: &[(u64, &Labels)]) -> Vec<(bool, bool)> {
        let sources = Sources::index(&self.inhibit, &self.firing);
        let mut cache = SilenceMatcherCache::default();
        alerts
            .iter()
            .map(|&(instance, labels)| {
                (
                    cache.silenced(silences, now, labels),
                    sources.inhibits(&self.inhibit, instance, labels),
                )
            })
            .collect()
    }

    /// The earliest time [`flush`](Self::flush) has timed work (news, repeats, re-sends).
    /// Changes held back by a silence have no timer: they go out at the first flush after
    /// the silence ends, so callers flush after every evaluation as well. A group that its
    /// route's time intervals hold is due when the period ends. The rest of a flush cut
    /// short is due at that flush's instant.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timed_groups()
            .filter_map(|(_, g)| {
                let due = g.next_due(&self.policies)?;
                match g.held_until {
                    Some(NEVER) => None,
                    Some(until) => Some(due.max(until)),
                    None => Some(due),
                }
            })
            .chain(self.cut_short)
            .min()
    }

    /// Whether `g`'s route is muted by its time intervals at `now`.
    fn time_muted(&self, g: &Group, now: Timestamp) -> bool {
        (!g.settings.mute.is_empty() || !g.settings.active.is_empty())
            && self
                .intervals
                .muted(&g.settings.mute, &g.settings.active, self.unix(now))
    }

    /// `t` as a Unix instant in ms.
    fn unix(&self, t: Timestamp) -> i64 {
        self.origin.saturating_add(t.0)
    }

    /// The persisted rows changed since the last call: `(key, Some(json))` to store,
    /// `(key, None)` to delete. Keys are opaque.
    pub fn take_changes(&mut self, out: &mut Vec<(String, Option<String>)>) {
        for key in std::mem::take(&mut self.dirty) {
            let json = if key == COUNTER_KEY {
                Some(self.counter.to_string())
            } else if let Some(fp) = key.strip_prefix(FIRING_PREFIX) {
                u64::from_str_radix(fp, 16)
                    .ok()
                    .and_then(|fp| self.firing.get(&fp))
                    .map(crate::engine::row_json)
            } else {
                GroupId::parse(&key)
                    .and_then(|id| self.groups.get(&id))
                    .map(crate::engine::row_json)
            };
            out.push((key, json));
        }
    }

    /// Restores the rows of [`take_changes`](Self::take_changes) after a restart. Rows that
    /// do not decode are skipped (their state is lost, the rest is not).
    pub fn restore(&mut self, rows: impl IntoIterator<Item = (String, String)>) {
        for (key, json) in rows {
            if key == COUNTER_KEY {
                if let Ok(n) = json.parse() {
                    self.counter = n;
                }
            } else if let Some(fp) = key.strip_prefix(FIRING_PREFIX) {
                if let (Ok(fp), Ok(labels)) = (u64::from_str_radix(fp, 16), serde_json::from_str(&json)) {
                    self.firing.insert(fp, labels);
                }
            } else if let Some(id) = GroupId::parse(&key)
                && let Ok(g) = serde_json::from_str::<Group>(&json)
            {
                for fp in g.alerts.keys() {
                    self.member_of.insert((*fp, id));
                }
                self.groups.insert(id, Box::new(g));
                self.reindex(id);
            }
        }
    }

    fn track_firing(&mut self, note: &AlertNote) {
        if note.kind.is_news_only() {
            return;
        }
        let fp = note.instance;
        let changed = match note.status {
            Status::Firing => self.firing.insert(fp, note.labels.clone()).as_ref() != Some(&note.labels),
            Status::Resolved => self.firing.remove(&fp).is_some(),
        };
        if changed {
            self.dirty.insert(format!("{FIRING_PREFIX}{fp:016x}"));
        }
    }

    /// The routes a note goes to: (route id, route key, settings).
    fn targets(&self, labels: &Labels, notify: &[String]) -> Vec<(u64, String, Arc<Settings>)> {
        if !notify.is_empty() {
            let names: Vec<&[u8]> = notify.iter().map(String::as_bytes).collect();
            let mut parts: Vec<&[u8]> = vec![b"notify"];
            parts.extend(names);
            let settings = Arc::new(Settings {
                receivers: notify.to_vec(),
                group_by: None,
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat: None,
                mute: Vec::new(),
                active: Vec::new(),
            });
            return vec![(fnv(&parts), format!("{{}}/notify={{{}}}", notify.join(",")), settings)];
        }
        let mut out = Vec::new();
        for r in &self.routes {
            if !matches_all(&r.matchers, labels) {
                continue;
            }
            out.push((r.id, r.path.clone(), r.settings.clone()));
            if !r.cont {
                break;
            }
        }
        out
    }

    /// The key of the group of `route` that `note` belongs in, creating the group if needed.
    fn join(&mut self, route: u64, path: &str, settings: &Arc<Settings>, note: &AlertNote) -> GroupId {
        let (gfp, group_labels) = match &settings.group_by {
            None => {
                let mut l = note.labels.clone();
                l.remove("severity");
                l.remove("nodata");
                (note.instance, l)
            }
            Some(by) => {
                let l = note.labels.project(by);
                let mut parts: Vec<&[u8]> = Vec::new();
                for (k, v) in l.iter() {
                    parts.push(k.as_bytes());
                    parts.push(v.as_bytes());
                }
                (fnv(&parts), l)
            }
        };
        let id = GroupId { route, group: gfp };
        self.groups.entry(id).or_insert_with(|| {
            Box::new(Group {
                route,
                settings: Arc::clone(settings),
                group_key: format!("{path}:{}", am_labels(&group_labels)),
                group_labels,
                alerts: SmallMap::default(),
                due: Some(note.at.plus(settings.group_wait)),
                last_flush: None,
                repeat_at: None,
                muted_wait: false,
                cause_seq: None,
                held_until: None,
                told: SmallMap::default(),
            })
        });
        self.member_of.insert((note.instance, id));
        id
    }

    fn flush_group(
        &mut self,
        id: GroupId,
        now: Timestamp,
        silences: &[Silence],
        sources: &Sources,
        out: &mut Vec<Dispatch>,
    ) {
        let Some(mut g) = self.groups.remove(&id) else { return };
        let repeat_due = g.repeat_at.is_some_and(|r| r <= now);
        let timed = g.due.is_some_and(|d| d <= now)
            || repeat_due
            || g.told.iter().any(|(r, t)| {
                self.policies.get(r).is_some_and(|p| p.resend.is_some()) && t.resend_at.is_some_and(|at| at <= now)
            });
        // A re-check of muted changes that sends nothing must leave no trace (no row write,
        // no shifted timer): keep the group as it was.
        let before = (!timed).then(|| g.clone());
        // Muting is per alert, the same for every receiver: decide it once.
        let muted: BTreeMap<u64, bool> = g
            .alerts
            .iter()
            .filter(|(_, e)| e.note.status == Status::Firing && e.ended.is_none())
            .map(|(fp, e)| {
                let m = self.silence_cache.silenced(silences, now, &e.note.labels)
                    || sources.inhibits(&self.inhibit, *fp, &e.note.labels);
                (*fp, m)
            })
            .collect();
        let is_muted = |fp: &u64| muted.get(fp).copied().unwrap_or(false);
        let mut muted_wait = false;
        let mut sent = false;
        let mut flush_key: Option<String> = None;
        for receiver in g.settings.receivers.clone() {
            // A receiver a reload removed (or a `notify:` naming none) gets nothing.
            let Some(policy) = self.policies.get(&receiver).copied() else {
                continue;
            };
            let told = g.told.get_or_default(receiver.clone());
            let resend_due = policy.resend.is_some() && told.resend_at.is_some_and(|at| at <= now);
            let (mut alerts, mut resolved, mut news) = (Vec::new(), Vec::new(), Vec::new());
            for (fp, e) in &g.alerts {
                let ending = e
                    .ended
                    .as_deref()
                    .or((e.note.status == Status::Resolved).then_some(&e.note));
                if let Some(end) = ending {
                    // Never lost: whoever was told it fires hears it resolved, muted or not.
                    if let Some(known) = told.firing.remove(fp)
                        && policy.send_resolved
                    {
                        resolved.push(ending_at(end, Some(known)));
                        news.push((*fp, NoteKind::Resolved));
                    }
                    continue;
                }
                let known = told.firing.get(fp);
                if is_muted(fp) {
                    muted_wait |= known != Some(&e.note.severity);
                    continue;
                }
                alerts.push(ending_at(&e.note, known.cloned()));
                if known != Some(&e.note.severity) {
                    let kind = match (known, e.change) {
                        (Some(_), k @ (NoteKind::Escalated | NoteKind::Deescalated)) => k,
                        _ => NoteKind::Firing,
                    };
                    news.push((*fp, kind));
                    told.firing.insert(*fp, e.note.severity.clone());
                } else if let Some(k) = e.forced {
                    // News without a state of its own is named on the copy receivers render
                    // (`event` of native bodies), not only in the news list.
                    if k.is_news_only()
                        && let Some(a) = alerts.last_mut()
                    {
                        a.kind = k;
                    }
                    news.push((*fp, k));
                } else if repeat_due {
                    news.push((*fp, NoteKind::Repeat));
                }
            }
            let send = !news.is_empty() || (resend_due && !alerts.is_empty());
            if let Some(every) = policy.resend
                && (send || resend_due || told.firing.is_empty())
            {
                told.resend_at = (!told.firing.is_empty()).then(|| now.plus(every));
            }
            if !send {
                continue;
            }
            let idempotency_key = flush_key
                .get_or_insert_with(|| idempotency_key(&g, &mut self.counter, &mut self.dirty))
                .clone();
            alerts.extend(resolved);
            out.push(Dispatch {
                receiver,
                group_key: g.group_key.clone(),
                group_labels: g.group_labels.to_map(),
                alerts,
                idempotency_key,
                at: now,
                news,
            });
            sent = true;
        }
        if let Some(before) = before
            && !sent
        {
            self.groups.insert(id, before);
            self.reindex(id);
            return;
        }
        // Resolved alerts leave; a new episode behind a flushed resolve is due next.
        let mut deferred = None;
        let mut left = Vec::new();
        g.alerts.retain(|fp, e| {
            if e.note.status == Status::Resolved {
                left.push(*fp);
                return false;
            }
            if e.ended.take().is_some() {
                deferred = Some(e.note.seq);
            } else {
                e.forced = None;
            }
            true
        });
        for fp in left {
            self.member_of.remove(&(fp, id));
            for t in g.told.values_mut() {
                t.firing.remove(&fp);
            }
        }
        g.told.retain(|_, t| !t.firing.is_empty());
        g.last_flush = Some(now);
        g.held_until = None;
        g.muted_wait = muted_wait;
        g.due = deferred.map(|_| now.plus(g.settings.group_interval));
        g.cause_seq = if g.per_instance() { deferred } else { None };
        let has_firing = !g.alerts.is_empty();
        g.repeat_at = match g.settings.repeat {
            Some(r) if has_firing && (sent || g.repeat_at.is_none_or(|at| at <= now)) => Some(now.plus(r)),
            Some(_) if has_firing => g.repeat_at,
            _ => None,
        };
        self.dirty.insert(id.row_key());
        if !g.alerts.is_empty() {
            self.groups.insert(id, g);
        }
        self.reindex(id);
    }
}

/// The `member_of` entries of instance `fp`.
fn member_range(fp: u64) -> std::ops::RangeInclusive<(u64, GroupId)> {
    let (min, max) = (
        GroupId { route: 0, group: 0 },
        GroupId {
            route: u64::MAX,
            group: u64::MAX,
        },
    );
    (fp, min)..=(fp, max)
}

/// `note` as sent to a receiver that was last told it fires at `known`: when that is another
/// severity, the message also ends that label set (label-keyed receivers would otherwise
/// hold both severities of one alert).
fn ending_at(note: &AlertNote, known: Option<String>) -> AlertNote {
    let mut n = note.clone();
    n.ended_severity = known.filter(|k| *k != note.severity);
    n
}

/// Records `note` in group `g` and schedules the news.
fn add_note(g: &mut Group, note: &AlertNote) {
    let fp = note.instance;
    let told_firing = g.told.values().any(|t| t.firing.contains_key(&fp));
    match g.alerts.get_mut(&fp) {
        None if note.status == Status::Resolved || note.kind.is_news_only() => return,
        None => {
            g.alerts.insert(
                fp,
                Entry {
                    note: note.clone(),
                    ended: None,
                    change: NoteKind::Firing,
                    forced: (note.kind == NoteKind::Repeat).then_some(NoteKind::Repeat),
                },
            );
        }
        // Flapping and acknowledgements say nothing about the state: news, not a new state.
        Some(e) if note.kind.is_news_only() => e.forced = Some(note.kind),
        Some(e) if note.status == Status::Resolved => {
            e.note = note.clone();
            e.forced = None;
        }
        Some(e) => {
            let previous = std::mem::replace(&mut e.note, note.clone());
            if previous.status == Status::Resolved {
                // A new episode before the resolve went out: keep the first unsent resolve of an
                // episode receivers were told about; later episodes were never delivered.
                if e.ended.is_none() && told_firing {
                    e.ended = Some(Box::new(previous));
                }
                e.change = NoteKind::Firing;
            }
            match note.kind {
                NoteKind::Repeat => e.forced = Some(NoteKind::Repeat),
                k @ (NoteKind::Firing | NoteKind::Escalated | NoteKind::Deescalated) => e.change = k,
                NoteKind::Resolved | NoteKind::Flapping | NoteKind::Acknowledged => {}
            }
        }
    }
    if g.per_instance() {
        g.cause_seq = Some(note.seq);
    }
    g.schedule(note.at);
}

/// The idempotency key of a flush (see the module doc).
fn idempotency_key(g: &Group, counter: &mut u64, dirty: &mut BTreeSet<String>) -> String {
    let mut bump = || {
        *counter += 1;
        dirty.insert(COUNTER_KEY.to_string());
        *counter
    };
    if g.per_instance()
        && let Some(e) = g.alerts.values().next()
    {
        // The fingerprint of the label set the message is about, as receivers see it.
        return match (&e.ended, g.cause_seq) {
            (Some(end), _) => format!("{:016x}-{}", end.fingerprint(), end.seq),
            (None, Some(seq)) => format!("{:016x}-{seq}", e.note.fingerprint()),
            (None, None) => format!("{:016x}-{}-r{}", e.note.fingerprint(), e.note.seq, bump()),
        };
    }
    let gfp = fnv(&[g.group_key.as_bytes()]);
    format!("{gfp:016x}-{}", bump())
}

/// A route's definition as one stable hash.
fn route_hash(r: &RouteDef) -> u64 {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for (k, v) in &r.r#match {
        parts.push(k.as_bytes().to_vec());
        for t in &v.0 {
            parts.push(t.expose().as_bytes().to_vec());
        }
        parts.push(b"\x1e".to_vec());
    }
    parts.push(b"receivers".to_vec());
    parts.extend(r.receivers.iter().map(|t| t.expose().as_bytes().to_vec()));
    parts.push(b"group_by".to_vec());
    parts.extend(r.group_by.iter().map(|t| t.expose().as_bytes().to_vec()));
    for d in [&r.group_wait, &r.group_interval, &r.repeat_interval] {
        let ms = d.as_ref().map(|d| d.value.0.as_millis());
        parts.push(format!("{ms:?}").into_bytes());
    }
    parts.push(vec![u8::from(r.r#continue)]);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    fnv(&refs)
}

/// Alertmanager's route key: `{}` for a catch-all, else `{}/{name="v",other=~"a|b"}`.
fn route_path(m: &BTreeMap<String, MatchValue>) -> String {
    if m.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            let alts: Vec<&str> = v.0.iter().map(|t| t.expose()).collect();
            match alts.as_slice() {
                [one] if !one.starts_with('~') => format!("{k}={one:?}"),
                _ => {
                    let re: Vec<&str> = alts.iter().map(|a| a.strip_prefix('~').unwrap_or(a)).collect();
                    format!("{k}=~{:?}", re.join("|"))
                }
            }
        })
        .collect();
    format!("{{}}/{{{}}}", parts.join(","))
}

/// Labels as Alertmanager prints them in group keys: `{a="x", b="y"}`.
fn am_labels(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}
