//! Time intervals: the named periods of receivers files' `time_intervals` (Alertmanager's
//! syntax and semantics), compiled, and the muting of routes by them.
//!
//! Owns reading the definitions (with located errors for `check`), whether an instant is in
//! a period ([`TimeInterval::contains`]) and when that next changes
//! ([`TimeInterval::next_change`]), so the dispatcher can hold a muted route's news and know
//! when to release it. Pure: instants are Unix milliseconds passed in, time zones come from
//! the tz database compiled into the binary (no `/usr/share/zoneinfo` needed).
//!
//! Every field is read in the range's `location` (default UTC) as a wall clock: a period
//! `00:00`–`08:00` in `Europe/Berlin` lasts seven hours on the night clocks go forward and
//! nine on the night they go back, as in Alertmanager.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;

use crate::config::{ReceiverFile, RouteDef, ScalarString, Sp, TimeIntervalDef, TimeRangeDef};
use crate::diag::Diagnostic;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Boundaries examined before [`TimeInterval::next_change`] gives up. Each local day has at
/// most a few per range, so this looks well over ten years ahead: a period that changes
/// later than that is treated as never changing.
const MAX_STEPS: usize = 50_000;

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// One compiled part of a named period (an entry of its `time_intervals`).
#[derive(Clone, Debug)]
struct Range {
    /// Minutes of the day, start included, end excluded; empty: the whole day.
    times: Vec<(i64, i64)>,
    /// Days of the week, Sunday 0, inclusive ranges.
    weekdays: Vec<(i8, i8)>,
    /// Days of the month, negative from the end, inclusive ranges.
    days: Vec<(i8, i8)>,
    /// Months 1–12, inclusive ranges.
    months: Vec<(i8, i8)>,
    /// Years, inclusive ranges.
    years: Vec<(i16, i16)>,
    tz: TimeZone,
}

impl Range {
    fn contains(&self, unix_ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(unix_ms) else {
            return false;
        };
        let dt = self.tz.to_datetime(ts);
        let minute = i64::from(dt.hour()) * 60 + i64::from(dt.minute());
        let weekday = dt.weekday().to_sunday_zero_offset();
        let in_list = |list: &[(i8, i8)], v: i8| list.is_empty() || list.iter().any(|&(a, b)| a <= v && v <= b);
        (self.times.is_empty() || self.times.iter().any(|&(s, e)| s <= minute && minute < e))
            && in_list(&self.weekdays, weekday)
            && (self.days.is_empty() || self.days.iter().any(|&r| day_in(r, dt.day(), dt.days_in_month())))
            && in_list(&self.months, dt.month())
            && (self.years.is_empty() || self.years.iter().any(|&(a, b)| a <= dt.year() && dt.year() <= b))
    }

    /// The first instant after `unix_ms` at which [`contains`](Self::contains) may change:
    /// the next time-of-day boundary or local midnight, or the zone's next offset change
    /// when that comes first (the wall clock jumps there).
    fn next_boundary(&self, unix_ms: i64) -> Option<i64> {
        let ts = jiff::Timestamp::from_millisecond(unix_ms).ok()?;
        let offset = i64::from(self.tz.to_offset(ts).seconds()) * 1000;
        let local = unix_ms + offset;
        let day_start = local.div_euclid(DAY_MS) * DAY_MS;
        let in_day = local - day_start;
        let next_local = self
            .times
            .iter()
            .flat_map(|&(s, e)| [s * MINUTE_MS, e * MINUTE_MS])
            .filter(|&b| b > in_day && b < DAY_MS)
            .min()
            .map_or(day_start + DAY_MS, |b| day_start + b);
        let candidate = next_local - offset;
        let transition = self
            .tz
            .following(ts)
            .map(|t| t.timestamp().as_millisecond())
            .find(|&t| t > unix_ms);
        Some(match transition {
            Some(t) if t < candidate => t,
            _ => candidate,
        })
    }
}

/// Whether `day` of a month of `len` days is in the `days_of_month` range `(a, b)`, negative
/// values counting from the month's end (-1 the last day), as Alertmanager reads them: a range
/// starting after the month's end contains none of its days, and its ends are clamped to the
/// month.
fn day_in((a, b): (i8, i8), day: i8, len: i8) -> bool {
    let resolve = |v: i8| if v < 0 { len + v + 1 } else { v };
    let (begin, end) = (resolve(a), resolve(b));
    if begin > len {
        return false;
    }
    let (begin, end) = (begin.clamp(1, len), end.clamp(1, len));
    begin <= day && day <= end
}

/// A compiled named period.
#[derive(Clone, Debug)]
pub struct TimeInterval {
    ranges: Vec<Range>,
}

impl TimeInterval {
    /// Compiles a definition, or reports every mistake in it, located, against `path`.
    pub fn compile(path: &str, def: &TimeIntervalDef) -> Result<TimeInterval, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let ranges = def
            .time_intervals
            .iter()
            .filter_map(|r| compile_range(path, r, &mut diags))
            .collect();
        if diags.is_empty() {
            Ok(TimeInterval { ranges })
        } else {
            Err(diags)
        }
    }

    /// Whether the Unix instant `unix_ms` is in the period. A period without parts contains
    /// nothing, one with an empty part contains everything (as in Alertmanager).
    pub fn contains(&self, unix_ms: i64) -> bool {
        self.ranges.iter().any(|r| r.contains(unix_ms))
    }

    /// The first instant after `unix_ms` at which [`contains`](Self::contains) differs from
    /// its value at `unix_ms`; `None` when it never changes (or not within years).
    pub fn next_change(&self, unix_ms: i64) -> Option<i64> {
        let now = self.contains(unix_ms);
        let mut at = unix_ms;
        for _ in 0..MAX_STEPS {
            at = self.ranges.iter().filter_map(|r| r.next_boundary(at)).min()?;
            if self.contains(at) != now {
                return Some(at);
            }
        }
        None
    }
}

/// The compiled `time_intervals` of all receiver files, by name, and what routes make of
/// them.
#[derive(Clone, Debug, Default)]
pub struct Intervals {
    by_name: BTreeMap<String, TimeInterval>,
}

impl Intervals {
    /// Compiles every definition of `files`. One that does not compile is left out, and so
    /// is a second one of a name: `check` (which a reload runs first) reports both.
    pub fn compile(files: &[(String, ReceiverFile)]) -> Intervals {
        let mut by_name = BTreeMap::new();
        for (path, f) in files {
            for def in &f.time_intervals {
                if let Ok(ti) = TimeInterval::compile(path, def) {
                    by_name.entry(def.name.expose().to_string()).or_insert(ti);
                }
            }
        }
        Intervals { by_name }
    }

    /// Whether a route with these `mute_time_intervals` and `active_time_intervals` is muted
    /// at `unix_ms`: inside any mute interval, or outside every active one (when it names
    /// any). Names that are not defined are ignored.
    pub fn muted(&self, mute: &[String], active: &[String], unix_ms: i64) -> bool {
        let inside = |names: &[String]| {
            names
                .iter()
                .any(|n| self.by_name.get(n).is_some_and(|i| i.contains(unix_ms)))
        };
        let known_active = active.iter().any(|n| self.by_name.contains_key(n));
        inside(mute) || (known_active && !inside(active))
    }

    /// When a route muted at `unix_ms` is no longer muted; `None` when not in sight.
    pub fn unmuted_at(&self, mute: &[String], active: &[String], unix_ms: i64) -> Option<i64> {
        let named: Vec<&TimeInterval> = mute.iter().chain(active).filter_map(|n| self.by_name.get(n)).collect();
        let mut at = unix_ms;
        for _ in 0..MAX_STEPS {
            at = named.iter().filter_map(|i| i.next_change(at)).min()?;
            if !self.muted(mute, active, at) {
                return Some(at);
            }
        }
        None
    }
}

/// Checks every `time_intervals` definition of `files` (zones, times, weekdays, days, months,
/// years, duplicate names) and every route's reference to one.
pub fn check_files(files: &[(String, ReceiverFile)]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut defined: BTreeMap<&str, (&str, u64, u64)> = BTreeMap::new();
    for (path, f) in files {
        for def in &f.time_intervals {
            if let Err(d) = TimeInterval::compile(path, def) {
                diags.extend(d);
            }
            let name = def.name.expose();
            if let Some((p, l, c)) = defined.get(name) {
                diags.push(Diagnostic::error(
                    path,
                    def.name.line(),
                    def.name.column(),
                    "duplicate-time-interval",
                    format!("time interval `{name}` is already defined at {p}:{l}:{c}"),
                ));
            } else {
                defined.insert(name, (path, def.name.line(), def.name.column()));
            }
        }
    }
    for (path, f) in files {
        for route in &f.routes {
            diags.extend(route_references(path, route, &defined));
        }
    }
    diags
}

fn route_references(path: &str, route: &RouteDef, defined: &BTreeMap<&str, (&str, u64, u64)>) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (key, names) in [
        ("mute_time_intervals", &route.mute_time_intervals),
        ("active_time_intervals", &route.active_time_intervals),
    ] {
        for n in names {
            if !defined.contains_key(n.expose()) {
                let mut d = Diagnostic::error(
                    path,
                    n.line(),
                    n.column(),
                    "unknown-time-interval",
                    format!("`{key}` names time interval `{}`, which is not defined", n.expose()),
                );
                let best = defined
                    .keys()
                    .map(|k| (strsim::jaro_winkler(k, n.expose()), *k))
                    .filter(|(s, _)| *s > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                d = match best {
                    Some((_, k)) => d.with_hint(format!("did you mean `{k}`?")),
                    None => d.with_hint("define it under `time_intervals:` in a receivers file"),
                };
                diags.push(d);
            }
        }
    }
    diags
}

fn compile_range(path: &str, r: &Sp<TimeRangeDef>, diags: &mut Vec<Diagnostic>) -> Option<Range> {
    let before = diags.len();
    let mut error = |line: u64, column: u64, msg: String, hint: &str| {
        diags.push(Diagnostic::error(path, line, column, "time-interval", msg).with_hint(hint));
    };
    let mut times = Vec::new();
    for t in &r.times {
        let start = parse_time(&t.start_time.0);
        let end = parse_time(&t.end_time.0);
        if start.is_none() {
            let v = &t.start_time;
            error(v.line(), v.column(), format!("invalid start_time `{}`", v.0), TIME_HINT);
        }
        if end.is_none() {
            let v = &t.end_time;
            error(v.line(), v.column(), format!("invalid end_time `{}`", v.0), TIME_HINT);
        }
        if let (Some(s), Some(e)) = (start, end) {
            if s < e {
                times.push((s, e));
            } else {
                error(
                    t.line(),
                    t.column(),
                    format!(
                        "start_time `{}` is not before end_time `{}`",
                        t.start_time.0, t.end_time.0
                    ),
                    "a range that crosses midnight is two ranges: `22:00`–`24:00` and `00:00`–`06:00`",
                );
            }
        }
    }
    let weekdays = ranges(&r.weekdays, "weekday", &mut error, |s| {
        name_index(s, &WEEKDAYS, 0).ok_or_else(|| format!("unknown weekday `{s}`"))
    });
    let days = ranges(&r.days_of_month, "day of month", &mut error, |s| {
        match s.parse::<i8>() {
            Ok(d) if (1..=31).contains(&d) || (-31..=-1).contains(&d) => Ok(d),
            _ => Err(format!("invalid day of month `{s}`")),
        }
    });
    let months = ranges(&r.months, "month", &mut error, |s| {
        name_index(s, &MONTHS, 1)
            .or_else(|| s.parse::<i8>().ok().filter(|m| (1..=12).contains(m)))
            .ok_or_else(|| format!("unknown month `{s}`"))
    });
    let years = ranges(&r.years, "year", &mut error, |s| match s.parse::<i16>() {
        Ok(y) if (1..=9999).contains(&y) => Ok(y),
        _ => Err(format!("invalid year `{s}`")),
    });
    let tz = match &r.location {
        None => Some(TimeZone::UTC),
        Some(l) => match jiff::tz::db().get(l.as_str()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                error(
                    l.line(),
                    l.column(),
                    format!("unknown time zone `{}`", l.as_str()),
                    "use an IANA zone name such as `Europe/Berlin`, `America/New_York` or `UTC`",
                );
                None
            }
        },
    };
    (diags.len() == before).then_some(Range {
        times,
        weekdays,
        days,
        months,
        years,
        tz: tz?,
    })
}

const TIME_HINT: &str = "write `HH:MM` from `00:00` to `24:00`, e.g. `09:00`";

/// `HH:MM` (00:00–24:00) as minutes of the day.
fn parse_time(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// The position of `s` (any case) in `names`, plus `base`.
fn name_index(s: &str, names: &[&str], base: i8) -> Option<i8> {
    let s = s.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == s)
        .and_then(|i| i8::try_from(i).ok())
        .map(|i| i + base)
}

/// Reads `a` and `a:b` entries with `one` reading each end; a range whose start is after its
/// end is an error, except for days of the month of different signs (`1:-1` is the whole
/// month).
fn ranges<T: Copy + Ord + Into<i32>>(
    items: &[Sp<ScalarString>],
    what: &str,
    error: &mut impl FnMut(u64, u64, String, &str),
    one: impl Fn(&str) -> Result<T, String>,
) -> Vec<(T, T)> {
    let hint = match what {
        "weekday" => "write a day name or a range: `monday`, `monday:friday` (sunday first)",
        "day of month" => "write 1 to 31, or -31 to -1 counting from the month's end; ranges as `1:15`",
        "month" => "write a month name or 1 to 12; ranges as `january:march`",
        _ => "write a year or a range: `2026`, `2026:2028`",
    };
    let mut out = Vec::new();
    for item in items {
        let text = item.0.trim();
        let (a, b) = text.split_once(':').unwrap_or((text, text));
        match (one(a.trim()), one(b.trim())) {
            (Ok(a), Ok(b)) => {
                let same_sign = (a.into() < 0) == (b.into() < 0);
                if same_sign && a > b {
                    error(
                        item.line(),
                        item.column(),
                        format!("{what} range `{text}` starts after it ends"),
                        hint,
                    );
                } else {
                    out.push((a, b));
                }
            }
            (Err(e), _) | (_, Err(e)) => error(item.line(), item.column(), e, hint),
        }
    }
    out
}

#[cfg(test)]
mod tests;
