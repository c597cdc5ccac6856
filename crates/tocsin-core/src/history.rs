//! Value history: per alert instance and recorded series, one point per step of
//! `history_resolution` holding the minimum, maximum and last value seen in that step.
//!
//! Pure: values and times come in as arguments, encoded bytes go out; `store` keeps them
//! (tables `value_series` and `value_points`) and `api` serves them as `/api/v1/series`.
//!
//! **Encoding.** Points are stored in *chunks* of [`CHUNK_STEPS`] steps, one SQLite row per
//! (series, chunk), each closed point appended to its row's bytes in the transaction of the
//! evaluation that closed it. A point is one header byte (its step within the chunk, and
//! whether min and max equal last) followed by `last` XORed with the previous point's `last`
//! and, when they differ from it, `min` and `max` XORed with `last`; an XOR is written as its
//! significant bytes only (a 0 XOR is one byte). A series that holds its value costs two
//! bytes a point. After a restart the encoder does not know the row's previous value, so
//! its first point in a chunk carries [`RESET`]: XORed with 0 instead.
//!
//! A step is closed, and its point written, by the first evaluation at or after its end
//! (or when the instance is no longer evaluated); the step still open at shutdown is lost.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::engine::{Engine, RuleRef};
use crate::series::{KeyedHash, Labels, Timestamp};

/// Steps per stored chunk (one SQLite row): 32 minutes at the default resolution.
pub const CHUNK_STEPS: i64 = 32;

/// Header bits: the step's index within its chunk.
const INDEX_MASK: u8 = 0x1f;
/// Header bit: `last` is XORed with 0, not with the previous point's (a restart).
pub const RESET: u8 = 0x20;
/// Header bit: `min == last`, not written.
const MIN_IS_LAST: u8 = 0x40;
/// Header bit: `max == last`, not written.
const MAX_IS_LAST: u8 = 0x80;

/// One step of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Start of the step, Unix ms.
    pub t_ms: i64,
    /// Smallest value of the step.
    pub min: f64,
    /// Largest value of the step.
    pub max: f64,
    /// Last value of the step.
    pub last: f64,
}

/// A series to record in `value_series` before its first point.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    /// [`series_id`] of (group, rule, instance).
    pub id: i64,
    /// Rule group name.
    pub group: String,
    /// Rule name.
    pub rule: String,
    /// The rule's expression as written, which produced the values: `tocsin backtest
    /// --data` replays a rule from its own values only while its expression is this one.
    pub expr: String,
    /// The instance's labels (the joined series labels, without rule labels).
    pub labels: BTreeMap<String, String>,
}

/// Bytes to append to one chunk row.
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    /// The series.
    pub series: i64,
    /// Start of the chunk, Unix ms (a multiple of `step_ms * CHUNK_STEPS`).
    pub start_ms: i64,
    /// The step the chunk was written with.
    pub step_ms: i64,
    /// Encoded points.
    pub bytes: Vec<u8>,
}

/// What one evaluation adds to the value history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Written {
    /// Series seen for the first time by this process.
    pub series: Vec<SeriesRow>,
    /// Closed points, in order.
    pub points: Vec<Append>,
}

impl Written {
    /// True when it holds nothing to write.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.points.is_empty()
    }
}

/// The stable id of a series: FNV-1a 64 over the group, the rule and the instance key, so
/// the same instance keeps its series across restarts without a lookup.
pub fn series_id(group: &str, rule: &str, instance: u64) -> i64 {
    id_of(rule_prefix(group, rule), instance)
}

/// FNV-1a 64's initial state.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 over `bytes`, from the state `h`.
fn fnv(mut h: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The state of [`series_id`]'s hash after the group and the rule, the same for all
/// instances of the rule.
fn rule_prefix(group: &str, rule: &str) -> u64 {
    fnv(
        FNV_OFFSET,
        group.bytes().chain([0x1f]).chain(rule.bytes()).chain([0x1f]),
    )
}

/// FNV-1a 64 of `text`.
fn text_hash(text: &str) -> u64 {
    fnv(FNV_OFFSET, text.bytes())
}

/// [`series_id`] of `instance`, from its rule's [`rule_prefix`].
fn id_of(prefix: u64, instance: u64) -> i64 {
    fnv(prefix, instance.to_le_bytes()) as i64
}

/// The step being accumulated.
#[derive(Clone, Copy, Debug)]
struct Step {
    start_ms: i64,
    min: f64,
    max: f64,
    last: f64,
}

/// One series' state between evaluations: what encoding its next point needs, and no
/// more. Its series row (rule, expression, labels) is written when the series is first
/// observed, where the rule and the instance are at hand, so no series keeps a copy of
/// them (one per alert instance, for the whole life of the process).
#[derive(Debug)]
struct Open {
    step: Option<Step>,
    /// Chunk start and `last` bits of the previous point written by this process.
    written: Option<(i64, u64)>,
    /// [`text_hash`] of the expression its series row names: a reload that changes the
    /// rule's expression writes the row again before the next point.
    expr: u64,
}

/// Accumulates every series' current step and encodes the steps that close.
#[derive(Debug)]
pub struct Accumulator {
    step_ms: i64,
    /// By group name.
    groups: HashMap<String, GroupSeries>,
}

/// The open series of one group.
#[derive(Debug, Default)]
struct GroupSeries {
    /// By [`series_id`].
    series: HashMap<i64, Open, KeyedHash>,
    /// No [`Accumulator::finish`] before this instant (Unix ms) has anything to close or
    /// forget: the end of the earliest open step, or of the chunk of a series with none.
    /// `finish` runs after every evaluation, and without it would visit every series each
    /// time, though steps close once a resolution.
    due_ms: i64,
}

/// The series of one rule of one group, as one evaluation observes its instances.
struct RuleSeries<'a> {
    group: &'a str,
    series: &'a mut GroupSeries,
    rule: &'a str,
    expr: &'a str,
    /// [`text_hash`] of `expr`.
    expr_hash: u64,
    prefix: u64,
    step_ms: i64,
}

impl Accumulator {
    /// An accumulator of steps of `step` (at least a millisecond).
    pub fn new(step: Duration) -> Accumulator {
        Accumulator {
            step_ms: i64::try_from(step.as_millis()).unwrap_or(i64::MAX).max(1),
            groups: HashMap::new(),
        }
    }

    /// Records `value` of the instance `instance` (its key, with `labels`) of `rule` in
    /// `group` at `now`, as its expression `expr` computed it; closes its previous step when
    /// `now` is past it. NaN is no value.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        group: &str,
        rule: &str,
        expr: &str,
        instance: u64,
        labels: &Labels,
        value: f64,
        now: Timestamp,
        out: &mut Written,
    ) {
        self.rule_series(group, rule, expr)
            .observe(instance, labels, value, now, out);
    }

    /// The series of `rule` in `group`, whose expression is now `expr`: what is looked up
    /// once per rule and evaluation rather than once per instance.
    fn rule_series<'a>(&'a mut self, group: &'a str, rule: &'a str, expr: &'a str) -> RuleSeries<'a> {
        // Looked up before inserting: a group's name is allocated once, not per value.
        if !self.groups.contains_key(group) {
            self.groups.insert(group.to_string(), GroupSeries::default());
        }
        let series = self.groups.get_mut(group).expect("inserted above");
        RuleSeries {
            group,
            series,
            rule,
            expr,
            expr_hash: text_hash(expr),
            prefix: rule_prefix(group, rule),
            step_ms: self.step_ms,
        }
    }

    /// Ends an evaluation of `group` at `now`: writes the steps that ended before `now`
    /// (those of instances not evaluated in the current step) and forgets series that
    /// have written nothing for a whole chunk.
    pub fn finish(&mut self, group: &str, now: Timestamp, out: &mut Written) {
        let step_ms = self.step_ms;
        let Some(series) = self.groups.get_mut(group) else {
            return;
        };
        if now.0 < series.due_ms {
            return;
        }
        let chunk_ms = step_ms.saturating_mul(CHUNK_STEPS);
        let mut due = i64::MAX;
        series.series.retain(|&id, open| {
            if open.step.is_some_and(|s| s.start_ms.saturating_add(step_ms) <= now.0) {
                close(id, open, step_ms, out);
            }
            let until = match (open.step, open.written) {
                (Some(s), _) => s.start_ms.saturating_add(step_ms),
                (None, Some((start, _))) if now.0 < start.saturating_add(chunk_ms) => start.saturating_add(chunk_ms),
                (None, _) => return false,
            };
            due = due.min(until);
            true
        });
        series.due_ms = due;
        if series.series.is_empty() {
            self.groups.remove(group);
        }
    }

    /// Forgets the groups not in `names` (a reload removed them): their open steps are lost.
    pub fn keep_groups(&mut self, names: &[&str]) {
        self.groups.retain(|g, _| names.contains(&g.as_str()));
    }
}

impl RuleSeries<'_> {
    /// [`Accumulator::observe`] for one instance of this rule.
    fn observe(&mut self, instance: u64, labels: &Labels, value: f64, now: Timestamp, out: &mut Written) {
        if value.is_nan() {
            return;
        }
        let step_ms = self.step_ms;
        let start_ms = now.0.div_euclid(step_ms) * step_ms;
        let id = id_of(self.prefix, instance);
        let open = self.series.series.entry(id).or_insert_with(|| Open {
            step: None,
            written: None,
            // Not this expression's hash, so the row is written below.
            expr: !self.expr_hash,
        });
        // New to this process, or a reload changed the expression: the series row goes
        // in the same batch as (and so before) the series' next point.
        if open.expr != self.expr_hash {
            open.expr = self.expr_hash;
            out.series.push(SeriesRow {
                id,
                group: self.group.to_string(),
                rule: self.rule.to_string(),
                expr: self.expr.to_string(),
                labels: labels.to_map(),
            });
        }
        match &mut open.step {
            Some(s) if s.start_ms == start_ms => {
                s.min = s.min.min(value);
                s.max = s.max.max(value);
                s.last = value;
            }
            _ => {
                close(id, open, step_ms, out);
                open.step = Some(Step {
                    start_ms,
                    min: value,
                    max: value,
                    last: value,
                });
                let due = &mut self.series.due_ms;
                *due = (*due).min(start_ms.saturating_add(step_ms));
            }
        }
    }
}

/// Writes the open step of `open`, if any, and clears it.
fn close(id: i64, open: &mut Open, step_ms: i64, out: &mut Written) {
    let Some(s) = open.step.take() else { return };
    let chunk_ms = step_ms.saturating_mul(CHUNK_STEPS);
    let chunk = s.start_ms.div_euclid(chunk_ms) * chunk_ms;
    let index = ((s.start_ms - chunk) / step_ms) as u8;
    let (reference, mut header) = match open.written {
        Some((start, bits)) if start == chunk => (bits, index),
        _ => (0, index | RESET),
    };
    let last = s.last.to_bits();
    let mut bytes = Vec::with_capacity(4);
    if s.min.to_bits() == last {
        header |= MIN_IS_LAST;
    }
    if s.max.to_bits() == last {
        header |= MAX_IS_LAST;
    }
    bytes.push(header);
    put_xor(&mut bytes, last ^ reference);
    if header & MIN_IS_LAST == 0 {
        put_xor(&mut bytes, s.min.to_bits() ^ last);
    }
    if header & MAX_IS_LAST == 0 {
        put_xor(&mut bytes, s.max.to_bits() ^ last);
    }
    open.written = Some((chunk, last));
    // Consecutive points of one chunk in one evaluation's output share an append.
    match out.points.last_mut() {
        Some(a) if a.series == id && a.start_ms == chunk && a.step_ms == step_ms => a.bytes.extend(bytes),
        _ => out.points.push(Append {
            series: id,
            start_ms: chunk,
            step_ms,
            bytes,
        }),
    }
}

/// An XOR as a byte `leading zero bytes << 4 | significant bytes` and those bytes
/// (big-endian); 0 is the single byte 0.
fn put_xor(out: &mut Vec<u8>, x: u64) {
    if x == 0 {
        out.push(0);
        return;
    }
    let lead = x.leading_zeros() / 8;
    let trail = x.trailing_zeros() / 8;
    let n = 8 - lead - trail;
    out.push(((lead as u8) << 4) | n as u8);
    let be = x.to_be_bytes();
    out.extend_from_slice(&be[lead as usize..(lead + n) as usize]);
}

fn take_xor(data: &[u8], at: &mut usize) -> Option<u64> {
    let b = *data.get(*at)?;
    *at += 1;
    if b == 0 {
        return Some(0);
    }
    let (lead, n) = (usize::from(b >> 4), usize::from(b & 0x0f));
    if n == 0 || lead + n > 8 {
        return None;
    }
    let bytes = data.get(*at..*at + n)?;
    *at += n;
    let mut be = [0u8; 8];
    be[lead..lead + n].copy_from_slice(bytes);
    Some(u64::from_be_bytes(be))
}

/// Why stored bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("value history chunk is damaged at byte {at}")]
pub struct DecodeError {
    /// Offset of the point that could not be read.
    pub at: usize,
}

/// Decodes a chunk row written with `step_ms` from `start_ms`, appending its points.
pub fn decode(start_ms: i64, step_ms: i64, data: &[u8], out: &mut Vec<Point>) -> Result<(), DecodeError> {
    let mut at = 0;
    let mut previous = 0u64;
    while at < data.len() {
        let begin = at;
        let damaged = DecodeError { at: begin };
        let header = data[at];
        at += 1;
        let reference = if header & RESET != 0 { 0 } else { previous };
        let last = take_xor(data, &mut at).ok_or_else(|| damaged.clone())? ^ reference;
        let min = match header & MIN_IS_LAST {
            0 => take_xor(data, &mut at).ok_or_else(|| damaged.clone())? ^ last,
            _ => last,
        };
        let max = match header & MAX_IS_LAST {
            0 => take_xor(data, &mut at).ok_or_else(|| damaged.clone())? ^ last,
            _ => last,
        };
        previous = last;
        out.push(Point {
            t_ms: start_ms + i64::from(header & INDEX_MASK) * step_ms,
            min: f64::from_bits(min),
            max: f64::from_bits(max),
            last: f64::from_bits(last),
        });
    }
    Ok(())
}

/// Feeds the value of every instance of every rule of group `g` (as of its evaluation at
/// `now`) into `acc`, then finishes the group: the daemon's call after each evaluation.
pub fn observe_group(acc: &mut Accumulator, engine: &Engine, g: usize, now: Timestamp, out: &mut Written) {
    let rules = std::sync::Arc::clone(engine.rules());
    let Some(group) = rules.groups.get(g) else { return };
    for (r, rule) in group.rules.iter().enumerate() {
        let instances = engine.instances(RuleRef { group: g, rule: r });
        if instances.iter().all(|i| i.value.is_none()) {
            continue;
        }
        let mut series = acc.rule_series(&group.name, &rule.name, rule.expr.source());
        for inst in instances {
            if let Some(v) = inst.value {
                series.observe(inst.fingerprint, &inst.labels, v, now, out);
            }
        }
    }
    acc.finish(&group.name, now, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels() -> Labels {
        Labels::from_pairs([("host", "a")])
    }

    fn decode_all(w: &Written) -> Vec<Point> {
        // Rows as the store holds them: every append of a (series, chunk) concatenated.
        let mut rows: BTreeMap<(i64, i64, i64), Vec<u8>> = BTreeMap::new();
        for a in &w.points {
            rows.entry((a.series, a.start_ms, a.step_ms))
                .or_default()
                .extend(&a.bytes);
        }
        let mut out = Vec::new();
        for ((_, start, step), bytes) in rows {
            decode(start, step, &bytes, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_steady_series_costs_two_bytes_a_point() {
        let mut acc = Accumulator::new(Duration::from_secs(60));
        let mut w = Written::default();
        for i in 0..=CHUNK_STEPS {
            acc.observe("g", "r", "x", 1, &labels(), 42.5, Timestamp(i * 60_000), &mut w);
            acc.finish("g", Timestamp(i * 60_000), &mut w);
        }
        assert_eq!(w.series.len(), 1, "announced once");
        assert_eq!(w.series[0].labels, labels().to_map());
        let bytes: usize = w.points.iter().map(|a| a.bytes.len()).sum();
        // The first point of the chunk is the whole value (1 + 1 + 3 bytes), every other
        // one a header and a zero XOR.
        assert_eq!(bytes, 1 + 1 + 3 + (CHUNK_STEPS as usize - 1) * 2, "{:?}", w.points);
        let points = decode_all(&w);
        assert_eq!(points.len(), CHUNK_STEPS as usize);
        assert!(points.iter().all(|p| (p.min, p.max, p.last) == (42.5, 42.5, 42.5)));
        assert_eq!(points[3].t_ms, 180_000);
    }

    #[test]
    fn a_step_is_closed_by_a_later_evaluation_or_when_its_instance_is_gone() {
        let mut acc = Accumulator::new(Duration::from_secs(10));
        let mut w = Written::default();
        for (t, v) in [(0, 3.0), (4_000, 1.0), (9_999, 2.0)] {
            acc.observe("g", "r", "x", 7, &labels(), v, Timestamp(t), &mut w);
            acc.finish("g", Timestamp(t), &mut w);
        }
        assert!(w.points.is_empty(), "the step is still open");
        // No observation at 10 s: the instance is gone, its step ends.
        acc.finish("g", Timestamp(10_000), &mut w);
        assert_eq!(
            decode_all(&w),
            [Point {
                t_ms: 0,
                min: 1.0,
                max: 3.0,
                last: 2.0
            }]
        );
        // A whole chunk later the series is forgotten; coming back re-announces it.
        acc.finish("g", Timestamp(10_000 * CHUNK_STEPS), &mut w);
        assert!(acc.groups.is_empty());
        assert_eq!(w.series.len(), 1);
        acc.observe(
            "g",
            "r",
            "x",
            7,
            &labels(),
            f64::NAN,
            Timestamp(10_000 * CHUNK_STEPS),
            &mut w,
        );
        assert_eq!(w.series.len(), 1, "no value, no series");
        acc.observe(
            "g",
            "r",
            "x",
            7,
            &labels(),
            4.0,
            Timestamp(10_000 * CHUNK_STEPS),
            &mut w,
        );
        assert_eq!(w.series.len(), 2);
        assert_eq!(w.series[0], w.series[1]);
    }

    #[test]
    fn a_series_row_names_the_expression_and_a_changed_one_is_announced_again() {
        let mut acc = Accumulator::new(Duration::from_secs(1));
        let mut w = Written::default();
        for t in 0..3 {
            acc.observe("g", "r", "temp", 1, &labels(), 5.0, Timestamp(t * 1000), &mut w);
        }
        // A reload changed the rule's expression.
        for t in 3..5 {
            acc.observe("g", "r", "temp * 2", 1, &labels(), 10.0, Timestamp(t * 1000), &mut w);
        }
        let exprs: Vec<&str> = w.series.iter().map(|s| s.expr.as_str()).collect();
        assert_eq!(exprs, ["temp", "temp * 2"]);
        assert!(
            w.series.iter().all(|s| s.id == w.series[0].id),
            "one series, its row updated"
        );
    }

    #[test]
    fn a_restarted_encoder_resets_the_reference() {
        let step = Duration::from_secs(1);
        let mut w = Written::default();
        let mut first = Accumulator::new(step);
        first.observe("g", "r", "x", 1, &labels(), 5.0, Timestamp(0), &mut w);
        first.observe("g", "r", "x", 1, &labels(), 6.0, Timestamp(1_000), &mut w);
        // A new process continues the same chunk row without knowing its last value.
        let mut second = Accumulator::new(step);
        let mut w2 = Written::default();
        second.observe("g", "r", "x", 1, &labels(), 7.0, Timestamp(2_000), &mut w2);
        second.observe("g", "r", "x", 1, &labels(), 8.0, Timestamp(3_000), &mut w2);
        assert!(w2.points[0].bytes[0] & RESET != 0);
        assert_eq!(w.points[0].start_ms, w2.points[0].start_ms, "the same chunk row");
        w.points.extend(w2.points);
        let lasts: Vec<f64> = decode_all(&w).iter().map(|p| p.last).collect();
        assert_eq!(lasts, [5.0, 7.0]);
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let mut out = Vec::new();
        for bad in [&[0x00, 0x38][..], &[0x00, 0x02, 0x01], &[0x00, 0x90, 1]] {
            assert!(decode(0, 1000, bad, &mut out).is_err(), "{bad:?}");
        }
        assert_eq!(series_id("g", "r", 1), series_id("g", "r", 1));
        assert_ne!(series_id("g", "r", 1), series_id("g", "r2", 1));
        assert_ne!(series_id("g", "r", 1), series_id("gr", "", 1));
    }

    proptest! {
        /// Every written point is the min, max and last of what was observed in its step
        /// since the process started, bit for bit (−0.0 and ±∞ included), whatever the gaps,
        /// chunk boundaries and restarts (which lose the step still open).
        #[test]
        fn points_are_the_steps_min_max_and_last(
            obs in proptest::collection::vec((0i64..5_000, any::<f64>(), any::<bool>()), 1..200),
            step in 1i64..400,
        ) {
            let new = || Accumulator::new(Duration::from_millis(step as u64));
            let mut acc = new();
            let mut w = Written::default();
            let mut t = 0i64;
            let mut open: Option<(i64, f64, f64, f64)> = None;
            let mut expected: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
            let mut write = |o: (i64, f64, f64, f64)| {
                expected.insert(o.0, (o.1.to_bits(), o.2.to_bits(), o.3.to_bits()));
            };
            for (gap, v, restart) in obs {
                t += gap / 10;
                if restart {
                    acc = new();
                    open = None;
                }
                acc.observe("g", "r", "x", 1, &labels(), v, Timestamp(t), &mut w);
                acc.finish("g", Timestamp(t), &mut w);
                let s = t.div_euclid(step) * step;
                if !v.is_nan() {
                    open = match open {
                        Some(o) if o.0 == s => Some((s, o.1.min(v), o.2.max(v), v)),
                        other => {
                            if let Some(o) = other {
                                write(o);
                            }
                            Some((s, v, v, v))
                        }
                    };
                }
                if let Some(o) = open.filter(|o| o.0 + step <= t) {
                    write(o);
                    open = None;
                }
            }
            acc.finish("g", Timestamp(i64::MAX), &mut w);
            if let Some(o) = open {
                write(o);
            }
            let points = decode_all(&w);
            prop_assert_eq!(points.len(), expected.len(), "one point per step");
            let got: BTreeMap<i64, (u64, u64, u64)> = points
                .iter()
                .map(|p| (p.t_ms, (p.min.to_bits(), p.max.to_bits(), p.last.to_bits())))
                .collect();
            prop_assert_eq!(got, expected);
        }

        /// With several instances, each one's step is written once it ends, by the next
        /// evaluation of the group, whichever instances that evaluation observed (the
        /// accumulator skips the pass over its series until a step can have ended).
        #[test]
        fn steps_end_per_instance_whatever_the_others_do(
            obs in proptest::collection::vec((0i64..5_000, -1e3f64..1e3, 0u64..3), 1..200),
            step in 1i64..400,
        ) {
            let mut acc = Accumulator::new(Duration::from_millis(step as u64));
            let mut w = Written::default();
            let mut t = 0i64;
            let mut open: BTreeMap<u64, (i64, f64, f64, f64)> = BTreeMap::new();
            let mut expected: BTreeMap<(i64, i64), (u64, u64, u64)> = BTreeMap::new();
            let mut write = |i: u64, o: (i64, f64, f64, f64)| {
                expected.insert((series_id("g", "r", i), o.0), (o.1.to_bits(), o.2.to_bits(), o.3.to_bits()));
            };
            for (gap, v, i) in obs {
                t += gap / 10;
                acc.observe("g", "r", "x", i, &labels(), v, Timestamp(t), &mut w);
                acc.finish("g", Timestamp(t), &mut w);
                let s = t.div_euclid(step) * step;
                let o = match open.remove(&i) {
                    Some(o) if o.0 == s => (s, o.1.min(v), o.2.max(v), v),
                    other => {
                        if let Some(o) = other {
                            write(i, o);
                        }
                        (s, v, v, v)
                    }
                };
                open.insert(i, o);
                let ended: Vec<u64> = open.iter().filter(|(_, o)| o.0 + step <= t).map(|(i, _)| *i).collect();
                for i in ended {
                    write(i, open.remove(&i).unwrap());
                }
            }
            acc.finish("g", Timestamp(i64::MAX), &mut w);
            for (i, o) in std::mem::take(&mut open) {
                write(i, o);
            }
            let mut rows: BTreeMap<(i64, i64, i64), Vec<u8>> = BTreeMap::new();
            for a in &w.points {
                rows.entry((a.series, a.start_ms, a.step_ms)).or_default().extend(&a.bytes);
            }
            let mut got = BTreeMap::new();
            for ((series, start, step), bytes) in rows {
                let mut points = Vec::new();
                decode(start, step, &bytes, &mut points).unwrap();
                for p in points {
                    prop_assert!(got.insert((series, p.t_ms), (p.min.to_bits(), p.max.to_bits(), p.last.to_bits())).is_none());
                }
            }
            prop_assert_eq!(got, expected);
        }
    }
}
