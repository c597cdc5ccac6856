//! Time interval tests: Alertmanager's semantics, daylight-saving changes, located errors,
//! and property tests against a brute-force reading of the same definitions.

use super::*;
use crate::config::{Source, parse_receivers};

use proptest::prelude::*;

const MIN: i64 = MINUTE_MS;

fn files(yaml: &str) -> Vec<(String, ReceiverFile)> {
    let f = parse_receivers(&Source::from_text("r.yaml", yaml).unwrap(), &|_| None).unwrap();
    vec![("r.yaml".into(), f)]
}

/// The one interval `name` of a receivers file holding only `time_intervals` entries.
fn interval(body: &str) -> TimeInterval {
    let f = files(&format!("time_intervals:\n  - name: t\n    time_intervals:\n{body}"));
    TimeInterval::compile("r.yaml", &f[0].1.time_intervals[0]).expect("compiles")
}

/// A Unix instant in ms from RFC 3339.
fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[test]
fn business_hours_in_berlin() {
    let t = interval(
        "      - times: [{ start_time: '09:00', end_time: '17:00' }]\n        weekdays: ['monday:friday']\n        location: Europe/Berlin\n",
    );
    // Tuesday 2026-12-01, CET (UTC+1).
    assert!(!t.contains(at("2026-12-01T07:59:59Z")));
    assert!(t.contains(at("2026-12-01T08:00:00Z")));
    assert!(t.contains(at("2026-12-01T15:59:59.999Z")));
    assert!(!t.contains(at("2026-12-01T16:00:00Z")), "end_time is excluded");
    assert_eq!(
        t.next_change(at("2026-12-01T07:00:00Z")),
        Some(at("2026-12-01T08:00:00Z"))
    );
    assert_eq!(
        t.next_change(at("2026-12-01T12:00:00Z")),
        Some(at("2026-12-01T16:00:00Z"))
    );
    // Friday evening → Monday morning.
    assert_eq!(
        t.next_change(at("2026-12-04T16:00:00Z")),
        Some(at("2026-12-07T08:00:00Z"))
    );
    // Summer time: 09:00 CEST is 07:00 UTC.
    assert!(t.contains(at("2026-07-01T07:00:00Z")));
    assert!(!t.contains(at("2026-07-01T06:59:00Z")));
}

#[test]
fn a_night_in_berlin_is_seven_hours_when_clocks_go_forward_and_nine_when_they_go_back() {
    let t = interval("      - times: [{ start_time: '00:00', end_time: '08:00' }]\n        location: Europe/Berlin\n");
    // 2026-03-29: 02:00 CET becomes 03:00 CEST.
    let start = at("2026-03-28T23:00:00Z");
    assert!(t.contains(start));
    assert!(!t.contains(start - 1));
    assert_eq!(t.next_change(start), Some(at("2026-03-29T06:00:00Z")));
    assert_eq!(t.next_change(start - MIN), Some(start));
    // 2026-10-25: 03:00 CEST becomes 02:00 CET.
    let start = at("2026-10-24T22:00:00Z");
    assert!(t.contains(start));
    assert_eq!(t.next_change(start), Some(at("2026-10-25T07:00:00Z")));
}

#[test]
fn a_boundary_inside_the_skipped_hour_takes_effect_when_the_clock_jumps() {
    // 02:30 does not exist on 2026-03-29 in Berlin: at 01:00 UTC the wall clock goes from
    // 01:59:59 to 03:00, past 02:30.
    let t = interval("      - times: [{ start_time: '02:30', end_time: '24:00' }]\n        location: Europe/Berlin\n");
    assert!(!t.contains(at("2026-03-29T00:59:00Z")));
    assert!(t.contains(at("2026-03-29T01:00:00Z")));
    assert_eq!(
        t.next_change(at("2026-03-28T23:30:00Z")),
        Some(at("2026-03-29T01:00:00Z"))
    );
}

#[test]
fn days_months_and_years_read_as_alertmanager_reads_them() {
    let last_days = interval("      - days_of_month: ['-3:-1']\n");
    assert!(last_days.contains(at("2026-02-26T00:00:00Z")));
    assert!(!last_days.contains(at("2026-02-25T23:59:00Z")));
    assert!(last_days.contains(at("2026-12-31T12:00:00Z")));
    assert!(!last_days.contains(at("2026-12-28T12:00:00Z")));
    // `1:-1` is the whole month; a range starting after a month's end holds none of its days.
    assert!(interval("      - days_of_month: ['1:-1']\n").contains(at("2026-02-14T00:00:00Z")));
    let thirtieth = interval("      - days_of_month: ['30:31']\n");
    assert!(!thirtieth.contains(at("2026-02-28T00:00:00Z")));
    assert!(thirtieth.contains(at("2026-04-30T00:00:00Z")));
    let winter = interval("      - months: ['december', 'january:february', 3]\n        years: ['2026:2027']\n");
    assert!(winter.contains(at("2026-12-01T00:00:00Z")));
    assert!(winter.contains(at("2027-03-31T23:59:00Z")));
    assert!(!winter.contains(at("2027-04-01T00:00:00Z")));
    assert!(!winter.contains(at("2028-01-01T00:00:00Z")));
    assert_eq!(
        winter.next_change(at("2027-12-15T00:00:00Z")),
        Some(at("2028-01-01T00:00:00Z"))
    );
    assert_eq!(winter.next_change(at("2028-01-01T00:00:00Z")), None, "never again");
    // An empty part is every instant; no parts is none.
    assert!(interval("      - {}\n").contains(0));
    let none = files("time_intervals:\n  - name: t\n");
    assert!(
        !TimeInterval::compile("r.yaml", &none[0].1.time_intervals[0])
            .unwrap()
            .contains(0)
    );
}

#[test]
fn weekday_names_and_ranges() {
    let weekend = interval("      - weekdays: [saturday, Sunday]\n");
    assert!(weekend.contains(at("2026-12-05T10:00:00Z")));
    assert!(weekend.contains(at("2026-12-06T23:59:00Z")));
    assert!(!weekend.contains(at("2026-12-07T00:00:00Z")));
    let mid = interval("      - weekdays: ['tuesday:thursday']\n");
    assert!(mid.contains(at("2026-12-01T00:00:00Z")));
    assert!(!mid.contains(at("2026-12-04T00:00:00Z")));
}

fn check_yaml(yaml: &str) -> Vec<String> {
    check_files(&files(yaml))
        .iter()
        .map(|d| format!("{}:{} {} {}", d.line, d.column, d.code, d.message))
        .collect()
}

#[test]
fn mistakes_are_located_errors() {
    let diags = check_yaml(
        "time_intervals:
  - name: night
    time_intervals:
      - times: [{ start_time: '25:00', end_time: '08:00' }, { start_time: '10:00', end_time: '09:00' }]
        weekdays: [mondey, 'friday:monday']
        days_of_month: [0, '15:3']
        months: [smarch, 13]
        years: ['abc']
        location: Europe/Berln
  - name: night
routes:
  - receivers: []
    mute_time_intervals: [nigth]
    active_time_intervals: [day]
",
    );
    assert_eq!(
        diags,
        vec![
            "4:31 time-interval invalid start_time `25:00`",
            "4:61 time-interval start_time `10:00` is not before end_time `09:00`",
            "5:20 time-interval unknown weekday `mondey`",
            "5:28 time-interval weekday range `friday:monday` starts after it ends",
            "6:25 time-interval invalid day of month `0`",
            "6:28 time-interval day of month range `15:3` starts after it ends",
            "7:18 time-interval unknown month `smarch`",
            "7:26 time-interval unknown month `13`",
            "8:17 time-interval invalid year `abc`",
            "9:19 time-interval unknown time zone `Europe/Berln`",
            "10:11 duplicate-time-interval time interval `night` is already defined at r.yaml:2:11",
            "13:27 unknown-time-interval `mute_time_intervals` names time interval `nigth`, which is not defined",
            "14:29 unknown-time-interval `active_time_intervals` names time interval `day`, which is not defined",
        ]
    );
    let f = files("time_intervals:\n  - name: night\nroutes:\n  - receivers: []\n    mute_time_intervals: [nigth]\n");
    assert_eq!(check_files(&f)[0].hint.as_deref(), Some("did you mean `night`?"));
}

#[test]
fn routes_mute_inside_mute_intervals_and_outside_active_ones() {
    let f = files(
        "time_intervals:
  - name: night
    time_intervals: [{ times: [{ start_time: '00:00', end_time: '06:00' }] }]
  - name: day
    time_intervals: [{ times: [{ start_time: '08:00', end_time: '18:00' }] }]
",
    );
    let i = Intervals::compile(&f);
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (night, day, none) = (names(&["night"]), names(&["day"]), names(&[]));
    let h = |hour: i64| hour * 60 * MIN;
    assert!(i.muted(&night, &none, h(1)));
    assert!(!i.muted(&night, &none, h(7)));
    assert!(i.muted(&none, &day, h(7)));
    assert!(!i.muted(&none, &day, h(9)));
    assert_eq!(i.unmuted_at(&night, &none, h(1)), Some(h(6)));
    assert_eq!(i.unmuted_at(&none, &day, h(19)), Some(h(24 + 8)));
    // Muted by both until the day starts: the end of the night is not the end of the muting.
    assert_eq!(i.unmuted_at(&night, &day, h(1)), Some(h(8)));
    // Names that are not defined (check reports them) mute nothing.
    assert!(!i.muted(&names(&["gone"]), &names(&["gone"]), h(1)));
}

/// A generated range, as written and as a brute-force reader sees it.
#[derive(Clone, Debug)]
struct Spec {
    times: Vec<(i64, i64)>,
    weekdays: Vec<(i8, i8)>,
    days: Vec<(i8, i8)>,
    months: Vec<(i8, i8)>,
    zone: &'static str,
}

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];

impl Spec {
    fn yaml(&self) -> String {
        let hm = |m: i64| format!("'{:02}:{:02}'", m / 60, m % 60);
        let times: Vec<String> = self
            .times
            .iter()
            .map(|&(s, e)| format!("{{ start_time: {}, end_time: {} }}", hm(s), hm(e)))
            .collect();
        let list = |v: &[(i8, i8)], name: &dyn Fn(i8) -> String| {
            v.iter()
                .map(|&(a, b)| format!("'{}:{}'", name(a), name(b)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "      - times: [{}]\n        weekdays: [{}]\n        days_of_month: [{}]\n        months: [{}]\n        location: {}\n",
            times.join(", "),
            list(&self.weekdays, &|d| WEEKDAYS[d as usize].to_string()),
            list(&self.days, &|d| d.to_string()),
            list(&self.months, &|m| MONTHS[(m - 1) as usize].to_string()),
            self.zone
        )
    }

    /// Every field expanded into the set of values it allows, then looked up.
    fn brute_contains(&self, unix_ms: i64) -> bool {
        let tz = jiff::tz::db().get(self.zone).unwrap();
        let dt = tz.to_datetime(jiff::Timestamp::from_millisecond(unix_ms).unwrap());
        let len = dt.days_in_month();
        let mut minutes = [self.times.is_empty(); 1440];
        for &(s, e) in &self.times {
            for m in s..e {
                minutes[m as usize] = true;
            }
        }
        let mut weekdays = [self.weekdays.is_empty(); 7];
        for &(a, b) in &self.weekdays {
            for d in a..=b {
                weekdays[d as usize] = true;
            }
        }
        let mut days = [self.days.is_empty(); 32];
        for &(a, b) in &self.days {
            let abs = |v: i8| if v < 0 { len + 1 + v } else { v };
            for d in 1..=len {
                if abs(a) <= len && abs(a).max(1) <= d && d <= abs(b).min(len) {
                    days[d as usize] = true;
                }
            }
        }
        let mut months = [self.months.is_empty(); 13];
        for &(a, b) in &self.months {
            for m in a..=b {
                months[m as usize] = true;
            }
        }
        minutes[(i64::from(dt.hour()) * 60 + i64::from(dt.minute())) as usize]
            && weekdays[dt.weekday().to_sunday_zero_offset() as usize]
            && days[dt.day() as usize]
            && months[dt.month() as usize]
    }
}

fn ordered<T: PartialOrd>(a: T, b: T) -> (T, T) {
    if a <= b { (a, b) } else { (b, a) }
}

fn spec() -> impl Strategy<Value = Spec> {
    let time = (0..1440i64, 1..=1440i64).prop_filter_map("empty", |(a, b)| (a != b).then(|| ordered(a, b)));
    let day = prop_oneof![1..=31i8, -31..=-1i8];
    (
        prop::collection::vec(time, 0..3),
        prop::collection::vec((0..7i8, 0..7i8).prop_map(|(a, b)| ordered(a, b)), 0..3),
        prop::collection::vec(
            (day.clone(), day).prop_map(|(a, b)| if (a < 0) == (b < 0) { ordered(a, b) } else { (a, b) }),
            0..2,
        ),
        prop::collection::vec((1..=12i8, 1..=12i8).prop_map(|(a, b)| ordered(a, b)), 0..2),
        0..ZONES.len(),
    )
        .prop_map(|(times, weekdays, days, months, z)| Spec {
            times,
            weekdays,
            days,
            months,
            zone: ZONES[z],
        })
}

/// Instants around the 2026 daylight-saving changes of the zones above, at any millisecond.
fn instant() -> impl Strategy<Value = i64> {
    let anchors = [
        at("2026-03-07T00:00:00Z"),
        at("2026-03-27T00:00:00Z"),
        at("2026-04-03T00:00:00Z"),
        at("2026-10-03T00:00:00Z"),
        at("2026-10-23T00:00:00Z"),
        at("2026-10-31T00:00:00Z"),
    ];
    (0..anchors.len(), 0..4 * 86_400_000i64).prop_map(move |(a, d)| anchors[a] + d)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn contains_agrees_with_a_brute_force_reading(s in spec(), t in instant()) {
        let ti = interval(&s.yaml());
        for k in 0..240 {
            let u = t + k * 7 * MIN;
            prop_assert_eq!(ti.contains(u), s.brute_contains(u), "{} at {}", s.yaml(), u);
        }
    }

    #[test]
    fn next_change_is_the_first_minute_where_contains_flips(s in spec(), t in instant()) {
        let ti = interval(&s.yaml());
        let now = ti.contains(t);
        // Brute force: every minute boundary after `t`, for three days.
        let first = (t.div_euclid(MIN) + 1..t.div_euclid(MIN) + 3 * 1440)
            .map(|m| m * MIN)
            .find(|&m| ti.contains(m) != now);
        let got = ti.next_change(t);
        match first {
            Some(m) => prop_assert_eq!(got, Some(m), "{}", s.yaml()),
            None => prop_assert!(got.is_none_or(|g| g >= t + 3 * 1440 * MIN - MIN), "{} {:?}", s.yaml(), got),
        }
    }
}
