//! Series: label sets, timestamps and bounded windows of samples.
//!
//! Owns the vocabulary every other module speaks about metric data: [`Timestamp`],
//! [`Sample`], [`Labels`], [`Window`] and the [`SeriesStore`] that holds one window per
//! series. It is pure data: nothing here reads a clock, a file or a socket, so the rule
//! test runner and the daemon feed it the same way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
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

    /// The union of two compatible label sets (values of `self` win on conflict).
    pub fn union(&self, other: &Labels) -> Labels {
        let mut out = self.clone();
        for (k, v) in other.0.iter() {
            if out.get(k).is_none() {
                out.set(k, v);
            }
        }
        out
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
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for (k, v) in &self.0 {
            eat(k.as_bytes());
            eat(&[0xff]);
            eat(v.as_bytes());
            eat(&[after_value]);
        }
        h
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

/// Identifies one series inside a [`SeriesStore`]; stable for the store's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

/// All series known to the engine: one [`Window`] per (metric, labels).
///
/// The store counts a *generation* that changes whenever a series is added, so the engine
/// can cache which series each rule instance reads and rebuild that only when it changes.
#[derive(Debug, Default)]
pub struct SeriesStore {
    by_key: HashMap<Arc<str>, HashMap<Labels, SeriesId>>,
    by_metric: HashMap<Arc<str>, Vec<SeriesId>>,
    entries: Vec<(Arc<str>, Labels, Window)>,
    retention: Duration,
    generation: u64,
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
        if let Some(id) = self.get(metric, labels) {
            return id;
        }
        let name: Arc<str> = self
            .by_metric
            .get_key_value(metric)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(metric));
        let id = SeriesId(self.entries.len() as u32);
        self.entries.push((name.clone(), labels.clone(), Window::default()));
        self.by_key.entry(name.clone()).or_default().insert(labels.clone(), id);
        self.by_metric.entry(name).or_default().push(id);
        self.generation += 1;
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
        self.entries[id.0 as usize].2.push(s, retention);
    }

    /// The series of `metric`, in creation order.
    pub fn series_of(&self, metric: &str) -> &[SeriesId] {
        self.by_metric.get(metric).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The labels of a series.
    pub fn labels(&self, id: SeriesId) -> &Labels {
        &self.entries[id.0 as usize].1
    }

    /// The metric name of a series.
    pub fn metric(&self, id: SeriesId) -> &str {
        &self.entries[id.0 as usize].0
    }

    /// The window of a series.
    pub fn window(&self, id: SeriesId) -> &Window {
        &self.entries[id.0 as usize].2
    }

    /// Changes whenever a series is added.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every series id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = SeriesId> + use<> {
        (0..self.entries.len() as u32).map(SeriesId)
    }
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

    #[test]
    fn labels_compatibility_and_union() {
        let a = Labels::from_pairs([("host", "a"), ("mount", "/")]);
        let b = Labels::from_pairs([("host", "a")]);
        let c = Labels::from_pairs([("host", "b")]);
        assert!(a.compatible(&b));
        assert!(!a.compatible(&c));
        assert_eq!(b.union(&a), a);
        assert_eq!(
            a.fingerprint(),
            Labels::from_pairs([("mount", "/"), ("host", "a")]).fingerprint()
        );
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
