//! Timestamps as text: the one RFC 3339 formatter of the API, history and messages, and
//! the Go flavour Alertmanager-compatible bodies need.
//!
//! Pure arithmetic on [`Timestamp`]s (ms since the Unix epoch); never reads a clock.

use crate::series::Timestamp;

/// UTC calendar fields of a timestamp (ms since the Unix epoch): year, month, day, hour,
/// minute, second, millisecond. Computed here rather than through `SystemTime` so that
/// timestamps before 1970 format instead of panicking.
fn civil(t: Timestamp) -> (i64, u32, u32, u32, u32, u32, u32) {
    let ms = t.0.rem_euclid(1000) as u32;
    let secs = t.0.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days, on the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, sod / 3600, sod / 60 % 60, sod % 60, ms)
}

/// RFC 3339 in UTC with exactly three fraction digits (`2026-11-23T08:22:07.400Z`): tocsin's
/// own format, the same as its API's.
pub fn rfc3339_millis(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// RFC 3339 in UTC the way Go's `time.RFC3339Nano` prints it, as Alertmanager does: the
/// fraction without trailing zeros, and none at all on a whole second
/// (`2026-11-23T08:22:07.4Z`, `2026-11-23T08:22:13Z`).
pub fn rfc3339_go(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if ms != 0 {
        let frac = format!("{ms:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's zero `time.Time`, which Alertmanager sends as the `endsAt` of a firing alert.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
