//! Series: label sets, timestamps and bounded windows of samples.
//!
//! Owns the vocabulary every other module speaks about metric data: [`Timestamp`],
//! [`Sample`], [`Labels`], [`Window`] and the [`SeriesStore`] that holds one window per
//! series. It is pure data: nothing here reads a clock, a file or a socket, so the rule
//! test runner and the daemon feed it the same way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A point in time, in milliseconds since an epoch chosen by the caller.
///
/// The daemon uses the Unix epoch; `tocsin test` uses the start of the test. The core never
/// asks which, it only subtracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The timestamp `d` after `self` (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// The timestamp `d` before `self` (saturating).
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_ms(d)))
    }

    /// Time elapsed from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Milliseconds in `d`, saturating at `i64::MAX`.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The bit pattern Prometheus uses for a staleness marker: a NaN that is not the default NaN.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker as a sample value: after it a series has no current value.
pub fn stale_marker() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (and not any other NaN).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One observation of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When the value was observed.
    pub t: Timestamp,
    /// The value; may be NaN, ±Inf or a [stale marker](stale_marker).
    pub v: f64,
}

/// A bounded, time-ordered window of the recent samples of one series.
///
/// Samples older than the window's retention (relative to its newest sample) are dropped on
/// push, so memory per series is bounded by the longest window any rule reads.
#[derive(Clone, Debug, Default)]
pub struct Window {
    samples: VecDeque<Sample>,
}

impl Window {
    /// Appends a sample and forgets those older than `retention` before it.
    ///
    /// A sample not newer than the newest one replaces it when equal in time and is dropped
    /// when older: windows stay strictly ordered, which every window function relies on.
    pub fn push(&mut self, s: Sample, retention: Duration) {
        match self.samples.back_mut() {
            Some(last) if last.t == s.t => *last = s,
            Some(last) if last.t > s.t => return,
            _ => self.samples.push_back(s),
        }
        let horizon = s.t.minus(retention);
        while self.samples.len() > 1 && self.samples.front().is_some_and(|f| f.t < horizon) {
            self.samples.pop_front();
        }
    }

    /// The newest sample, stale markers included.
    pub fn newest(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    /// The series' current value at `now`: the newest sample if it is not a stale
    /// marker, not later than `now`, and younger than `staleness`.
    pub fn current(&self, now: Timestamp, staleness: Duration) -> Option<f64> {
        let s = self.latest_at(now)?;
        if is_stale_marker(s.v) || now.since(s.t) >= staleness {
            return None;
        }
        Some(s.v)
    }

    /// The newest sample at or before `now`.
    pub fn latest_at(&self, now: Timestamp) -> Option<Sample> {
        let end = self.samples.partition_point(|s| s.t <= now);
        end.checked_sub(1).map(|i| self.samples[i])
    }

    /// The samples with `from < t <= to`, oldest first, stale markers excluded.
    ///
    /// The range is left-open like Prometheus' range selectors, so a window of `5m`
    /// evaluated every `1m` never counts one sample twice at its edges.
    pub fn range(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = Sample> + '_ {
        let start = self.samples.partition_point(|s| s.t <= from);
        let end = self.samples.partition_point(|s| s.t <= to);
        self.samples
            .range(start..end.max(start))
            .copied()
            .filter(|s| !is_stale_marker(s.v))
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// A set of labels: names to values, sorted by name, without duplicates.
///
/// Names and values are shared (`Arc<str>`) because the same few strings repeat across
/// thousands of series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Vec<(Arc<str>, Arc<str>)>);

impl Labels {
    /// The empty label set.
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs; a later duplicate name wins.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Labels {
        let mut l = Labels::new();
        for (k, v) in pairs {
            l.set(k.as_ref(), v.as_ref());
        }
        l
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    /// Sets label `name` to `value`, replacing any previous value.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
            Ok(i) => self.0[i].1 = Arc::from(value),
            Err(i) => self.0.insert(i, (Arc::from(name), Arc::from(value))),
        }
    }

    /// Sets label `name` to `value` from shared strings, without allocating new ones.
    pub fn set_shared(&mut self, name: &Arc<str>, value: &Arc<str>) {
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
            Ok(i) => self.0[i].1 = Arc::clone(value),
            Err(i) => self.0.insert(i, (Arc::clone(name), Arc::clone(value))),
        }
    }

    /// A copy with room for `extra` more labels, in one allocation: a label set that is
    /// kept (an instance's, a notification's) would otherwise keep the doubled capacity its
    /// first insertion grew it to.
    pub fn clone_with_room(&self, extra: usize) -> Labels {
        let mut pairs = Vec::with_capacity(self.0.len() + extra);
        pairs.extend(self.0.iter().cloned());
        Labels(pairs)
    }

    /// Sets every label of `other` here, sharing its strings.
    pub fn overlay(&mut self, other: &Labels) {
        for (name, value) in &other.0 {
            self.set_shared(name, value);
        }
    }

    /// Sets each label of `other` that is not set here, sharing its strings.
    pub fn underlay(&mut self, other: &Labels) {
        for (name, value) in &other.0 {
            if let Err(i) = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
                self.0.insert(i, (Arc::clone(name), Arc::clone(value)));
            }
        }
    }

    /// Removes label `name`.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// The (name, value) pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every label both sets have has the same value in both.
    pub fn compatible(&self, other: &Labels) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < other.0.len() {
            match self.0[i].0.cmp(&other.0[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    if self.0[i].1 != other.0[j].1 {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        true
    }

    /// The union of two compatible label sets (values of `self` win on conflict), sharing
    /// both sets' strings in one allocation of the exact size: an instance keeps the union
    /// of its inputs' labels for as long as it lives.
    pub fn union(&self, other: &Labels) -> Labels {
        let mut out = Vec::with_capacity(merged(&self.0, &other.0).count());
        out.extend(merged(&self.0, &other.0).cloned());
        Labels(out)
    }

    /// Only the labels whose names are in `names`.
    pub fn project(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(k, _)| names.iter().any(|n| n.as_str() == k.as_ref()))
                .cloned()
                .collect(),
        )
    }

    /// Alertmanager's fingerprint of this label set (`model.LabelSet.Fingerprint` of
    /// prometheus/common): FNV-1a 64 over the names and values in name order, each name
    /// and each value followed by the byte 0xff. Printed as 16 hex digits, it is the
    /// `fingerprint` receivers, the API and history show, and what label-keyed consumers
    /// (Alertmanager, PagerDuty's `dedup_key`) key on (ARCHITECTURE.md, "Identity").
    pub fn fingerprint(&self) -> u64 {
        self.fnv(0xff)
    }

    /// The key persisted per-instance state is stored under (engine instances, notification
    /// groups). FNV-1a 64 like [`Labels::fingerprint`], but each value is followed by 0xfe:
    /// this is what every earlier release keyed the state database with, so keeping it lets
    /// an upgraded daemon find its instances and groups instead of forgetting pending timers
    /// or re-notifying. Never shown to receivers.
    pub fn state_key(&self) -> u64 {
        self.fnv(0xfe)
    }

    fn fnv(&self, after_value: u8) -> u64 {
        let mut h = Fnv::default();
        for (k, v) in &self.0 {
            h.eat(k.as_bytes());
            h.eat(&[0xff]);
            h.eat(v.as_bytes());
            h.eat(&[after_value]);
        }
        h.finish()
    }

    /// The labels as an ordered map, for serialization and templates.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// Serialized as a JSON object of strings (the shape receivers and the outbox use).
impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let map = <BTreeMap<String, String> as serde::Deserialize>::deserialize(d)?;
        Ok(Labels::from_pairs(map))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// Compiles a label-value regex anchored at both ends, as PromQL matchers, selects and
/// silences apply it. The regex must be valid on its own first: wrapped unchecked, a value
/// such as `a)|(b` would become `^(?:a)|(b)$`, which matches far more than it says.
pub fn anchored_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(re)?;
    regex::Regex::new(&format!("^(?:{re})$"))
}

/// A value as Prometheus spells it in text: `NaN`, `+Inf`, `-Inf`, else the shortest
/// representation that reads back exactly.
pub fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

/// Identifies one series inside a [`SeriesStore`] for as long as it lives.
///
/// A removed series' slot is reused, under a new incarnation, so an id kept across a
/// removal never reads another series: [`SeriesStore::contains`] tells it is gone. A
/// removed slot at the end of the table may be dropped instead; its id then reads as an
/// empty series with no labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    slot: u32,
    incarnation: u32,
}

/// How far ahead of the caller's clock a sample may lie: further ahead it would stay the
/// newest sample for that long and freeze the series (every later sample is older).
pub const MAX_AHEAD: Duration = Duration::from_secs(600);

/// Why [`SeriesStore::ingest`] refused a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// More than [`MAX_AHEAD`] after `now`.
    Future,
    /// Older than the series' newest sample.
    OutOfOrder,
    /// It would create a series beyond its source's `max_series`.
    Budget,
}

impl Refusal {
    /// Every reason, in a fixed order (for counters).
    pub const ALL: [Refusal; 3] = [Refusal::Future, Refusal::OutOfOrder, Refusal::Budget];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Future => "future",
            Refusal::OutOfOrder => "out_of_order",
            Refusal::Budget => "budget",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
struct Entry {
    metric: Arc<str>,
    labels: Labels,
    window: Window,
    /// Index into `owners` of the source that created it through [`SeriesStore::ingest`].
    owner: Option<usize>,
    alive: bool,
    /// Bumped each time the slot is reused.
    incarnation: u32,
}

/// All series known to the engine: one [`Window`] per (metric, labels).
///
/// The store counts a *generation* that changes whenever a series is added or removed, so
/// the engine can cache which series each rule instance reads and rebuild that only when
/// it changes. Series that went stale and that no window reads any more are removed by
/// [`sweep`](SeriesStore::sweep); their slots are reused, so memory follows the series
/// alive, not every series ever seen.
#[derive(Debug, Default)]
pub struct SeriesStore {
    by_key: HashMap<Arc<str>, HashMap<Labels, SeriesId, KeyedHash>, KeyedHash>,
    by_metric: HashMap<Arc<str>, MetricSeries, KeyedHash>,
    entries: Vec<Entry>,
    /// Slots of removed series, reused before the table grows.
    free: Vec<u32>,
    /// The incarnation a slot appended to the table starts at: above every incarnation of
    /// the slots a sweep dropped from its end, so no id kept from one reads the new series.
    next_incarnation: u32,
    /// Sources that created series, with how many of theirs are alive.
    owners: Vec<(Arc<str>, usize)>,
    retention: Duration,
    generation: u64,
    /// The generation of the last sweep that removed series.
    removed_at: u64,
}

/// The series of one metric, in creation order, and the generation that last added one:
/// a rule reading other metrics need not rebind when this one gains a series.
#[derive(Debug, Default)]
struct MetricSeries {
    ids: Vec<SeriesId>,
    added_at: u64,
}

impl SeriesStore {
    /// An empty store whose windows keep `retention` of history.
    pub fn new(retention: Duration) -> SeriesStore {
        SeriesStore {
            retention,
            ..SeriesStore::default()
        }
    }

    /// Changes how much history new pushes keep (after a reload that reads longer windows).
    pub fn set_retention(&mut self, retention: Duration) {
        self.retention = retention;
    }

    /// The id of series (metric, labels), if it exists. Allocation-free.
    pub fn get(&self, metric: &str, labels: &Labels) -> Option<SeriesId> {
        self.by_key.get(metric)?.get(labels).copied()
    }

    /// The id of series (metric, labels), creating it empty if it does not exist.
    pub fn id(&mut self, metric: &str, labels: &Labels) -> SeriesId {
        match self.get(metric, labels) {
            Some(id) => id,
            None => self.create(metric, labels, None),
        }
    }

    fn create(&mut self, metric: &str, labels: &Labels, owner: Option<usize>) -> SeriesId {
        let name: Arc<str> = self
            .by_metric
            .get_key_value(metric)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(metric));
        let mut entry = Entry {
            metric: name.clone(),
            labels: labels.clone(),
            window: Window::default(),
            owner,
            alive: true,
            incarnation: 0,
        };
        let id = match self.free.pop() {
            Some(slot) => {
                let incarnation = self.entries[slot as usize].incarnation.wrapping_add(1);
                entry.incarnation = incarnation;
                self.entries[slot as usize] = entry;
                SeriesId { slot, incarnation }
            }
            None => {
                entry.incarnation = self.next_incarnation;
                self.entries.push(entry);
                SeriesId {
                    slot: self.entries.len() as u32 - 1,
                    incarnation: self.next_incarnation,
                }
            }
        };
        if let Some(o) = owner {
            self.owners[o].1 += 1;
        }
        self.by_key.entry(name.clone()).or_default().insert(labels.clone(), id);
        self.generation += 1;
        let of_metric = self.by_metric.entry(name).or_default();
        of_metric.ids.push(id);
        of_metric.added_at = self.generation;
        id
    }

    /// Appends a sample to series (metric, labels).
    pub fn push(&mut self, metric: &str, labels: &Labels, s: Sample) {
        let id = self.id(metric, labels);
        self.push_id(id, s);
    }

    /// Appends a sample to a series by id.
    pub fn push_id(&mut self, id: SeriesId, s: Sample) {
        let retention = self.retention;
        if let Some(e) = self.entries.get_mut(id.slot as usize) {
            e.window.push(s, retention);
        }
    }

    /// Stores a sample from source `owner` received at `now`, or says why not: it lies more
    /// than [`MAX_AHEAD`] after `now`, it is older than the series' newest sample, or it
    /// would create a series while `owner` already has `max_series` alive.
    pub fn ingest(
        &mut self,
        owner: &str,
        max_series: usize,
        metric: &str,
        labels: &Labels,
        s: Sample,
        now: Timestamp,
    ) -> Result<SeriesId, Refusal> {
        if s.t > now.plus(MAX_AHEAD) {
            return Err(Refusal::Future);
        }
        let id = match self.get(metric, labels) {
            Some(id) => {
                if self.window(id).newest().is_some_and(|n| s.t < n.t) {
                    return Err(Refusal::OutOfOrder);
                }
                id
            }
            None => {
                let o = self.owner(owner);
                if self.owners[o].1 >= max_series {
                    return Err(Refusal::Budget);
                }
                self.create(metric, labels, Some(o))
            }
        };
        self.push_id(id, s);
        Ok(id)
    }

    fn owner(&mut self, name: &str) -> usize {
        match self.owners.iter().position(|(n, _)| n.as_ref() == name) {
            Some(i) => i,
            None => {
                self.owners.push((Arc::from(name), 0));
                self.owners.len() - 1
            }
        }
    }

    /// Removes every series that no evaluation at or after `now` can read: its newest
    /// sample (or a stale marker) is older than `staleness` and than `window` (the longest
    /// window any rule reads), or it never had one. Series of metrics for which `keep`
    /// says true stay (rules that read how long ago the newest sample was).
    ///
    /// One pass over the table, so callers run it every few seconds, not per evaluation.
    /// Returns how many were removed; the generation changes when any was.
    pub fn sweep(
        &mut self,
        now: Timestamp,
        staleness: Duration,
        window: Duration,
        keep: impl Fn(&str) -> bool,
    ) -> usize {
        let fresh_for = staleness.max(window);
        let mut dead = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.alive || keep(&e.metric) {
                continue;
            }
            let gone = match e.window.newest() {
                None => true,
                Some(n) if is_stale_marker(n.v) => n.t.plus(window) <= now,
                Some(n) => n.t.plus(fresh_for) <= now,
            };
            if gone {
                dead.push(i);
            }
        }
        if dead.is_empty() {
            return 0;
        }
        let mut metrics: Vec<Arc<str>> = Vec::new();
        for &i in &dead {
            let e = &mut self.entries[i];
            let labels = std::mem::take(&mut e.labels);
            e.window = Window::default();
            e.alive = false;
            if let Some(o) = e.owner.take() {
                self.owners[o].1 -= 1;
            }
            if let Some(m) = self.by_key.get_mut(&e.metric) {
                m.remove(&labels);
                if m.is_empty() {
                    self.by_key.remove(&e.metric);
                }
            }
            if metrics.last() != Some(&e.metric) {
                metrics.push(e.metric.clone());
            }
            self.free.push(i as u32);
        }
        metrics.sort_unstable();
        metrics.dedup();
        for m in metrics {
            let entries = &self.entries;
            if let Some(MetricSeries { ids, .. }) = self.by_metric.get_mut(&m) {
                ids.retain(|id| entries[id.slot as usize].alive);
                if ids.is_empty() {
                    self.by_metric.remove(&m);
                } else if ids.len() * 4 < ids.capacity() {
                    ids.shrink_to_fit();
                }
            }
            if let Some(keys) = self.by_key.get_mut(&m)
                && keys.len() * 4 < keys.capacity()
            {
                keys.shrink_to_fit();
            }
        }
        self.drop_dead_tail();
        self.generation += 1;
        self.removed_at = self.generation;
        dead.len()
    }

    /// Drops the removed slots at the end of the table, and gives back the table's spare
    /// room once it is mostly empty: a store that shrinks (a burst of series that died)
    /// returns their slots too, not only their samples and labels.
    fn drop_dead_tail(&mut self) {
        let before = self.entries.len();
        while let Some(last) = self.entries.last().filter(|e| !e.alive) {
            self.next_incarnation = self.next_incarnation.max(last.incarnation.wrapping_add(1));
            self.entries.pop();
        }
        if self.entries.len() < before {
            let len = self.entries.len();
            self.free.retain(|&slot| (slot as usize) < len);
        }
        if self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to_fit();
            self.free.shrink_to_fit();
        }
    }

    /// The series of `metric`, in creation order.
    pub fn series_of(&self, metric: &str) -> &[SeriesId] {
        self.by_metric.get(metric).map_or(&[], |m| m.ids.as_slice())
    }

    /// Whether [`series_of`](SeriesStore::series_of)`(metric)` may differ from what it was
    /// at `generation`: a series of `metric` was added since, or a sweep removed series
    /// (of any metric: a metric whose last series went is not remembered).
    pub fn changed_since(&self, metric: &str, generation: u64) -> bool {
        self.removed_since(generation) || self.by_metric.get(metric).is_some_and(|m| m.added_at > generation)
    }

    /// Whether a sweep removed series since `generation`. Until one does, the series of a
    /// metric at `generation` are a prefix of its series now.
    pub fn removed_since(&self, generation: u64) -> bool {
        self.removed_at > generation
    }

    /// Whether the series `id` names is still alive (not removed by a sweep).
    pub fn contains(&self, id: SeriesId) -> bool {
        self.entries
            .get(id.slot as usize)
            .is_some_and(|e| e.alive && e.incarnation == id.incarnation)
    }

    /// The labels of a series.
    pub fn labels(&self, id: SeriesId) -> &Labels {
        static NONE: Labels = Labels(Vec::new());
        self.entries.get(id.slot as usize).map_or(&NONE, |e| &e.labels)
    }

    /// The metric name of a series (empty for one whose slot a sweep dropped).
    pub fn metric(&self, id: SeriesId) -> &str {
        self.entries.get(id.slot as usize).map_or("", |e| &e.metric)
    }

    /// The window of a series.
    pub fn window(&self, id: SeriesId) -> &Window {
        static NONE: Window = Window {
            samples: VecDeque::new(),
        };
        self.entries.get(id.slot as usize).map_or(&NONE, |e| &e.window)
    }

    /// Changes whenever a series is added or removed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many series are alive.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Whether no series is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live series per source that created series through [`ingest`](Self::ingest), in
    /// the order the sources first did.
    pub fn per_source(&self) -> impl Iterator<Item = (&str, usize)> {
        self.owners.iter().map(|(n, c)| (n.as_ref(), *c))
    }
}

/// The hash of the store's tables (and of other tables keyed by label sets): foldhash,
/// seeded at random per table.
///
/// Every sample's lookup hashes its metric name and labels, so the hash is a good part of
/// a tick's cost; `std`'s SipHash was 7 % of a query source's tick. Pushed series come
/// from the network, so the hash stays keyed: the seeds come from `std`'s own random keys
/// (what a `std` `HashMap` is keyed with), a different one per table, and no output of it
/// is ever shown (tables are never listed in hash order). An attacker who cannot learn the
/// seed cannot aim for collisions; one who somehow could still only slows down the series
/// of its own budget (`max_series`), which bounds how long any collision chain gets.
#[derive(Clone, Debug)]
pub struct KeyedHash(foldhash::fast::SeedableRandomState);

impl Default for KeyedHash {
    fn default() -> KeyedHash {
        static SHARED: OnceLock<foldhash::SharedSeed> = OnceLock::new();
        let random = || std::collections::hash_map::RandomState::new().hash_one(0u64);
        let shared = SHARED.get_or_init(|| foldhash::SharedSeed::from_u64(random()));
        KeyedHash(foldhash::fast::SeedableRandomState::with_seed(random(), shared))
    }
}

impl BuildHasher for KeyedHash {
    type Hasher = <foldhash::fast::SeedableRandomState as BuildHasher>::Hasher;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// FNV-1a 64, the one hash of everything persisted or shown (fingerprints, state keys,
/// group keys): stable across processes and Rust versions, unlike `std`'s hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Hashes `bytes` in.
    pub fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The pairs of two sorted label lists in name order, a name in both once (from `a`).
fn merged<'a>(
    a: &'a [(Arc<str>, Arc<str>)],
    b: &'a [(Arc<str>, Arc<str>)],
) -> impl Iterator<Item = &'a (Arc<str>, Arc<str>)> {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x.0 == y.0 => {
            b.next();
            a.next()
        }
        (Some(x), Some(y)) if x.0 > y.0 => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t: Timestamp(t), v }
    }

    #[test]
    fn window_drops_old_samples_and_keeps_order() {
        let mut w = Window::default();
        for t in 0..10 {
            w.push(s(t * 1000, t as f64), Duration::from_secs(3));
        }
        w.push(s(5000, 99.0), Duration::from_secs(3)); // older: dropped
        let got: Vec<f64> = w.range(Timestamp(-1), Timestamp(100_000)).map(|s| s.v).collect();
        assert_eq!(got, vec![6.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn current_honours_staleness_and_markers() {
        let mut w = Window::default();
        w.push(s(0, 1.0), Duration::from_secs(60));
        assert_eq!(w.current(Timestamp(1000), Duration::from_secs(5)), Some(1.0));
        assert_eq!(w.current(Timestamp(5000), Duration::from_secs(5)), None);
        w.push(s(6000, stale_marker()), Duration::from_secs(60));
        assert_eq!(w.current(Timestamp(6000), Duration::from_secs(5)), None);
        assert!(!is_stale_marker(f64::NAN));
    }

    fn l(i: usize) -> Labels {
        Labels::from_pairs([("i", i.to_string())])
    }

    #[test]
    fn future_and_out_of_order_samples_are_refused() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        let now = Timestamp(1_000_000);
        let ingest = |st: &mut SeriesStore, t: i64| st.ingest("push", 10, "m", &l(0), s(t, t as f64), now);
        assert_eq!(ingest(&mut st, i64::MAX), Err(Refusal::Future));
        assert_eq!(ingest(&mut st, now.plus(MAX_AHEAD).0 + 1), Err(Refusal::Future));
        assert!(st.is_empty(), "a refused sample creates no series");
        assert!(ingest(&mut st, now.plus(MAX_AHEAD).0).is_ok());
        assert_eq!(ingest(&mut st, now.0), Err(Refusal::OutOfOrder));
        let mut st = SeriesStore::new(Duration::from_secs(60));
        let id = ingest(&mut st, now.0).unwrap();
        assert_eq!(ingest(&mut st, now.0 - 1), Err(Refusal::OutOfOrder));
        assert_eq!(ingest(&mut st, now.0), Ok(id), "an equal time replaces");
        assert_eq!(ingest(&mut st, now.0 + 5), Ok(id));
        assert_eq!(st.window(id).newest(), Some(s(now.0 + 5, (now.0 + 5) as f64)));
    }

    #[test]
    fn a_burst_of_series_that_died_gives_its_slots_back_and_their_old_ids_stay_gone() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        let (stale, window) = (Duration::from_secs(5), Duration::from_secs(10));
        st.ingest("a", 10_000, "keep", &l(0), s(0, 1.0), Timestamp(0)).unwrap();
        let burst: Vec<SeriesId> = (0..1_000)
            .map(|i| st.ingest("a", 10_000, "m", &l(i), s(0, 1.0), Timestamp(0)).unwrap())
            .collect();
        st.ingest("a", 10_000, "keep", &l(0), s(20_000, 1.0), Timestamp(20_000))
            .unwrap();
        assert_eq!(st.sweep(Timestamp(20_000), stale, window, |_| false), 1_000);
        assert_eq!(st.entries.len(), 1, "the dead slots at the end are dropped");
        assert!(st.entries.capacity() < 100, "and the table's room is given back");
        // An id of a dropped slot reads as an empty series and never names a new one.
        assert!(st.labels(burst[5]).is_empty() && st.window(burst[5]).newest().is_none());
        st.push_id(burst[5], s(21_000, 1.0));
        let again: Vec<SeriesId> = (0..10)
            .map(|i| {
                st.ingest("a", 10_000, "m", &l(i), s(21_000, 2.0), Timestamp(21_000))
                    .unwrap()
            })
            .collect();
        for (old, new) in burst.iter().zip(&again) {
            assert!(!st.contains(*old) && st.contains(*new), "{old:?} is not {new:?}");
        }
        assert_eq!(st.labels(again[3]), &l(3));
    }

    #[test]
    fn a_metric_changes_when_it_gains_a_series_or_a_sweep_removes_any() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        st.ingest("a", 10, "m", &l(0), s(0, 1.0), Timestamp(0)).unwrap();
        let at = st.generation();
        assert!(!st.changed_since("m", at) && !st.changed_since("absent", at));
        // Another metric's new series leaves `m` as it was.
        st.ingest("a", 10, "other", &l(0), s(0, 1.0), Timestamp(0)).unwrap();
        assert!(!st.changed_since("m", at) && st.changed_since("other", at));
        // New samples of a known series change nothing.
        st.ingest("a", 10, "m", &l(0), s(1_000, 1.0), Timestamp(1_000)).unwrap();
        assert!(!st.changed_since("m", at));
        // A new series of `m` comes after the ones it had: they are a prefix.
        st.ingest("a", 10, "m", &l(1), s(1_000, 1.0), Timestamp(1_000)).unwrap();
        assert!(st.changed_since("m", at) && !st.removed_since(at));
        assert_eq!(st.series_of("m")[0], st.get("m", &l(0)).unwrap());
        // A sweep that removes anything changes every metric, even one now gone.
        let at = st.generation();
        st.ingest("a", 10, "m", &l(0), s(30_000, 1.0), Timestamp(30_000))
            .unwrap();
        st.ingest("a", 10, "m", &l(1), s(30_000, 1.0), Timestamp(30_000))
            .unwrap();
        assert_eq!(
            st.sweep(
                Timestamp(30_000),
                Duration::from_secs(5),
                Duration::from_secs(10),
                |_| false
            ),
            1
        );
        assert!(st.removed_since(at) && st.changed_since("m", at) && st.changed_since("other", at));
        let at = st.generation();
        assert!(!st.changed_since("m", at) && !st.changed_since("other", at));
    }

    #[test]
    fn budgets_count_live_series_and_sweeps_free_them() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        let stale = Duration::from_secs(5);
        let window = Duration::from_secs(10);
        for i in 0..3 {
            assert!(st.ingest("a", 3, "m", &l(i), s(0, 1.0), Timestamp(0)).is_ok());
        }
        assert_eq!(
            st.ingest("a", 3, "m", &l(3), s(0, 1.0), Timestamp(0)),
            Err(Refusal::Budget)
        );
        assert!(
            st.ingest("b", 3, "m", &l(3), s(0, 1.0), Timestamp(0)).is_ok(),
            "budgets are per source"
        );
        // Series 0 keeps reporting; series 1 ends with a stale marker.
        st.ingest("a", 3, "m", &l(0), s(9_000, 1.0), Timestamp(9_000)).unwrap();
        st.ingest("a", 3, "m", &l(1), s(1_000, stale_marker()), Timestamp(1_000))
            .unwrap();
        let generation = st.generation();
        let gone = st.get("m", &l(1)).unwrap();
        // Nothing is older than the longest window yet.
        assert_eq!(st.sweep(Timestamp(9_999), stale, window, |_| false), 0);
        assert_eq!(st.generation(), generation);
        // At 11 s the marker (1 s) and the plain sample (0 s) are past the window.
        assert_eq!(st.sweep(Timestamp(11_000), stale, window, |_| false), 3);
        assert_ne!(st.generation(), generation);
        assert_eq!(st.len(), 1);
        assert_eq!(st.per_source().collect::<Vec<_>>(), [("a", 1), ("b", 0)]);
        assert_eq!(st.series_of("m"), [st.get("m", &l(0)).unwrap()]);
        assert!(st.get("m", &l(1)).is_none());
        // The budget has room again, and the table does not grow: the dead slots at its end
        // were dropped, the others are reused.
        for i in 10..12 {
            assert!(st.ingest("a", 3, "m", &l(i), s(11_000, 2.0), Timestamp(11_000)).is_ok());
        }
        assert_eq!(
            st.ingest("a", 3, "m", &l(12), s(11_000, 1.0), Timestamp(11_000)),
            Err(Refusal::Budget)
        );
        assert!(st.entries.len() <= 4, "{} slots for 3 series", st.entries.len());
        let fresh = st.get("m", &l(10)).unwrap();
        assert_eq!(st.labels(fresh), &l(10));
        assert!(
            st.contains(fresh) && !st.contains(gone),
            "an old id never names a reused slot"
        );
        assert_eq!(st.window(fresh).len(), 1, "a reused slot starts empty");
    }

    #[test]
    fn sweeps_keep_what_a_window_or_age_still_reads() {
        let mut st = SeriesStore::new(Duration::from_secs(600));
        st.push("m", &l(0), s(0, 1.0));
        st.push("hb", &l(0), s(0, 1.0));
        st.id("empty", &l(0));
        let stale = Duration::from_secs(5);
        // Stale but inside a 60 s window: kept; the never-written series goes.
        assert_eq!(
            st.sweep(Timestamp(30_000), stale, Duration::from_secs(60), |_| false),
            1
        );
        assert_eq!(st.sweep(Timestamp(60_000), stale, Duration::ZERO, |m| m == "hb"), 1);
        assert!(st.get("m", &l(0)).is_none());
        assert!(
            st.get("hb", &l(0)).is_some(),
            "age() reads the newest sample however old"
        );
        assert!(st.series_of("empty").is_empty());
    }

    #[test]
    fn labels_compatibility_and_union() {
        let a = Labels::from_pairs([("host", "a"), ("mount", "/")]);
        let b = Labels::from_pairs([("host", "a")]);
        let c = Labels::from_pairs([("host", "b")]);
        assert!(a.compatible(&b));
        assert!(!a.compatible(&c));
        assert_eq!(b.union(&a), a);
        // Values of the left side win; the union is sized exactly and shares the strings.
        let d = Labels::from_pairs([("host", "z"), ("zone", "eu")]);
        let u = a.union(&d);
        assert_eq!(u, Labels::from_pairs([("host", "a"), ("mount", "/"), ("zone", "eu")]));
        assert_eq!(u.0.capacity(), 3);
        assert!(Arc::ptr_eq(&u.0[2].1, &d.0[1].1));
        assert_eq!(Labels::new().union(&Labels::new()), Labels::new());
        assert_eq!(
            a.fingerprint(),
            Labels::from_pairs([("mount", "/"), ("host", "a")]).fingerprint()
        );
    }

    proptest::proptest! {
        /// The merge gives what setting each missing label of the right side on a copy of
        /// the left side gives.
        #[test]
        fn union_is_the_left_side_with_the_rest_of_the_right(
            a in proptest::collection::btree_map("[a-e]", "[xy]", 0..5),
            b in proptest::collection::btree_map("[a-e]", "[xy]", 0..5),
        ) {
            let (a, b) = (Labels::from_pairs(&a), Labels::from_pairs(&b));
            let mut want = a.clone();
            for (k, v) in b.iter() {
                if want.get(k).is_none() {
                    want.set(k, v);
                }
            }
            let got = a.union(&b);
            proptest::prop_assert_eq!(got.0.capacity(), got.len());
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn fingerprint_is_alertmanagers() {
        // The alert of tests/fixtures/alertmanager/alertmanager-0.25-webhook-firing.json,
        // whose `fingerprint` a real Alertmanager 0.25 computed.
        let l = Labels::from_pairs([
            ("alertname", "HighCpu"),
            ("instance", "host-042"),
            ("job", "synth"),
            ("rule_id", "742"),
            ("severity", "critical"),
        ]);
        assert_eq!(format!("{:016x}", l.fingerprint()), "b1efd309ff798888");
        // The hash of nothing is the FNV offset basis, as in Alertmanager.
        assert_eq!(Labels::new().fingerprint(), 0xcbf2_9ce4_8422_2325);
        let mut warning = l.clone();
        warning.set("severity", "warning");
        assert_ne!(warning.fingerprint(), l.fingerprint());
    }

    #[test]
    fn state_key_is_what_earlier_releases_stored() {
        // Computed by the release before fingerprints became Alertmanager's: persisted
        // engine and dispatcher rows carry it, so it must never change.
        let l = Labels::from_pairs([("host", "a"), ("mount", "/")]);
        assert_eq!(l.state_key(), 0xb524_0778_a4c9_c8d8);
        assert_ne!(l.state_key(), l.fingerprint());
    }
}

#[cfg(test)]
mod anchored_tests {
    use super::anchored_regex;

    #[test]
    fn regexes_are_anchored_and_cannot_break_out_of_the_group() {
        let re = anchored_regex("nvme.*").unwrap();
        assert!(re.is_match("nvme0n1"));
        assert!(!re.is_match("xnvme0"));
        assert!(anchored_regex("a)|(b").is_err());
        assert!(anchored_regex("a|b").unwrap().is_match("b"));
        assert!(!anchored_regex("a|b").unwrap().is_match("ab"));
    }
}
