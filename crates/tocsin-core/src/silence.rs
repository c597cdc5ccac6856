//! Silences as the API sees them: validating a `POST /api/v1/silences` body into a
//! [`Silence`], and a silence's status at a time. Pure: the caller passes the time and the
//! randomness of a fresh id; the `silences` table is the store's.
//!
//! Whether a silence mutes an alert is decided by `route`. Field names follow the spec (`starts_at`, `ends_at`, `created_by`), and Alertmanager
//! v2's (`startsAt`, `endsAt`, `createdBy`) are accepted too, so its clients' bodies work.

use std::fmt;

use serde_json::{Map, Value};

use crate::message::{Silence, SilenceMatcher};
use crate::series::Timestamp;

/// At most this many matchers in one silence.
pub const MAX_MATCHERS: usize = 64;
/// The longest accepted silence id.
const MAX_ID_LEN: usize = 128;

/// A request body that is not a valid silence: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceError {
    /// The field at fault (`ends_at`, `matchers[1].value`, ...), or `body`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SilenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for SilenceError {}

fn bad(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
    SilenceError {
        field: field.into(),
        message: message.into(),
    }
}

/// A validated request: the silence to store, and whether it replaces an existing one
/// (the body named an `id`) or is new (a fresh id was drawn).
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// The silence, with its id.
    pub silence: Silence,
    /// The body named the id of a silence to replace.
    pub replaces: bool,
}

/// Where a silence is in its life at some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Muting now.
    Active,
    /// Starts later.
    Pending,
    /// Ended.
    Expired,
}

impl Status {
    /// `active`, `pending` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Pending => "pending",
            Status::Expired => "expired",
        }
    }
}

/// The status of `s` at `now`: pending before `starts_at`, expired from `ends_at` on.
pub fn status(s: &Silence, now: Timestamp) -> Status {
    if now >= s.ends_at {
        Status::Expired
    } else if now < s.starts_at {
        Status::Pending
    } else {
        Status::Active
    }
}

/// A fresh random id: 128 bits as 32 hex digits.
pub fn new_id(random: u128) -> String {
    format!("{random:032x}")
}

/// Replaces the silence with `s`'s id in `list` (or adds it), and drops the ones expired at
/// `now`: the in-memory list holds only silences that mute now or will.
pub fn remember(list: &mut Vec<Silence>, s: Silence, now: Timestamp) {
    list.retain(|x| x.id != s.id);
    list.push(s);
    forget_expired(list, now);
}

/// Drops the silences expired at `now` from `list`.
pub fn forget_expired(list: &mut Vec<Silence>, now: Timestamp) {
    list.retain(|x| status(x, now) != Status::Expired);
}

/// Validates a request body at `now` into a silence.
///
/// Body: `{"id"?, "matchers": [{"name", "value", "isRegex"?, "isEqual"?}], "starts_at"?,
/// "ends_at", "created_by", "comment"}` (times RFC 3339; Alertmanager's camel-case names
/// accepted). `starts_at` defaults to `now`, and a start in the past becomes `now`, as in
/// Alertmanager; `ends_at` must be after both. A `status` or `updatedAt` field (what `GET`
/// answers) is ignored, so a listed silence can be posted back edited.
pub fn parse(body: &[u8], now: Timestamp, random: u128) -> Result<Draft, SilenceError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad("body", format!("not valid JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(bad("body", "must be a JSON object"));
    };
    let id = take(&mut obj, "id", None)?;
    let matchers = take(&mut obj, "matchers", None)?;
    let starts_at = take(&mut obj, "starts_at", Some("startsAt"))?;
    let ends_at = take(&mut obj, "ends_at", Some("endsAt"))?;
    let created_by = take(&mut obj, "created_by", Some("createdBy"))?;
    let comment = take(&mut obj, "comment", None)?;
    for ignored in ["status", "updatedAt", "updated_at"] {
        obj.remove(ignored);
    }
    if let Some(unknown) = obj.keys().next() {
        return Err(bad(
            unknown.as_str(),
            "unknown field; expected id, matchers, starts_at, ends_at, created_by, comment",
        ));
    }

    let (id, replaces) = match id {
        None | Some(Value::Null) => (new_id(random), false),
        Some(Value::String(id)) => {
            let ok = !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(bad(
                    "id",
                    format!("must be 1 to {MAX_ID_LEN} letters, digits, `-` or `_`"),
                ));
            }
            (id, true)
        }
        Some(_) => return Err(bad("id", "must be a string")),
    };

    let matchers = parse_matchers(matchers)?;

    let starts_at = match starts_at {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => parse_time(&s).map_err(|e| bad("starts_at", e))?.max(now),
        Some(_) => return Err(bad("starts_at", "must be an RFC 3339 time string")),
    };
    let ends_at = match ends_at {
        None | Some(Value::Null) => return Err(bad("ends_at", "is required")),
        Some(Value::String(s)) => parse_time(&s).map_err(|e| bad("ends_at", e))?,
        Some(_) => return Err(bad("ends_at", "must be an RFC 3339 time string")),
    };
    if ends_at <= now {
        return Err(bad("ends_at", "must be in the future"));
    }
    if ends_at <= starts_at {
        return Err(bad("ends_at", "must be after starts_at"));
    }

    let created_by = match created_by {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        None | Some(Value::Null) => return Err(bad("created_by", "is required")),
        Some(_) => return Err(bad("created_by", "must be a non-empty string")),
    };
    let comment = match comment {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(bad("comment", "is required (it may be empty)")),
        Some(_) => return Err(bad("comment", "must be a string")),
    };

    Ok(Draft {
        silence: Silence {
            id,
            matchers,
            starts_at,
            ends_at,
            created_by,
            comment,
        },
        replaces,
    })
}

/// Removes `name` (or its `alias`) from `obj`; both at once is an error.
fn take(obj: &mut Map<String, Value>, name: &str, alias: Option<&str>) -> Result<Option<Value>, SilenceError> {
    let main = obj.remove(name);
    let other = alias.and_then(|a| obj.remove(a));
    match (main, other) {
        (Some(_), Some(_)) => Err(bad(
            name,
            format!("given twice (as `{name}` and `{}`)", alias.unwrap_or_default()),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

fn parse_matchers(v: Option<Value>) -> Result<Vec<SilenceMatcher>, SilenceError> {
    let list = match v {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => return Err(bad("matchers", "is required")),
        Some(_) => return Err(bad("matchers", "must be a list of matchers")),
    };
    if list.is_empty() {
        return Err(bad("matchers", "needs at least one matcher"));
    }
    if list.len() > MAX_MATCHERS {
        return Err(bad("matchers", format!("at most {MAX_MATCHERS} matchers")));
    }
    let mut out = Vec::with_capacity(list.len());
    let mut all_match_empty = true;
    for (i, m) in list.into_iter().enumerate() {
        let field = format!("matchers[{i}]");
        let m: SilenceMatcher = serde_json::from_value(m).map_err(|e| bad(&field, e.to_string()))?;
        if !crate::rules::valid_name(&m.name) {
            return Err(bad(
                format!("{field}.name"),
                format!("`{}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", m.name),
            ));
        }
        let matches_empty = if m.is_regex {
            let re = crate::series::anchored_regex(&m.value)
                .map_err(|e| bad(format!("{field}.value"), format!("invalid regex: {e}")))?;
            re.is_match("")
        } else {
            m.value.is_empty()
        };
        // A negated matcher matches the empty value exactly when the plain one does not.
        all_match_empty &= matches_empty == m.is_equal;
        out.push(m);
    }
    // An alert lacking a label has it empty: a silence all of whose matchers accept the empty
    // value would mute nearly everything. Alertmanager refuses those too.
    if all_match_empty {
        return Err(bad(
            "matchers",
            "at least one matcher must not match the empty string, or the silence would mute every alert",
        ));
    }
    Ok(out)
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, fractional seconds and `±hh:mm`
/// offsets accepted) into milliseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let err = || format!("`{s}` is not an RFC 3339 time (e.g. 2024-05-01T12:00:00Z)");
    let (base, offset_min) = if let Some(b) = s.strip_suffix(['Z', 'z']) {
        (b, 0i64)
    } else {
        let cut = s.len().checked_sub(6).ok_or_else(err)?;
        let (b, off) = (s.get(..cut).ok_or_else(err)?, s.get(cut..).ok_or_else(err)?);
        let sign = match off.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(err()),
        };
        let (h, m) = off[1..].split_once(':').ok_or_else(err)?;
        let (h, m): (i64, i64) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
        if h > 23 || m > 59 {
            return Err(err());
        }
        (b, sign * (h * 60 + m))
    };
    let t = humantime::parse_rfc3339(&format!("{base}Z")).map_err(|_| err())?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?
        .as_millis();
    let ms = i64::try_from(ms).map_err(|_| err())?;
    Ok(Timestamp(ms - offset_min * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn parse_ok(body: &str) -> Draft {
        parse(body.as_bytes(), NOW, 7).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    fn field(body: &str) -> String {
        match parse(body.as_bytes(), NOW, 7) {
            Ok(d) => panic!("accepted: {d:?}"),
            Err(e) => e.field,
        }
    }

    #[test]
    fn parses_spec_and_alertmanager_names() {
        let d = parse_ok(
            r#"{"matchers":[{"name":"alertname","value":"Disk.*","isRegex":true}],
                "starts_at":"2023-11-14T22:13:20Z","ends_at":"2030-01-01T00:00:00Z",
                "created_by":"ops","comment":"maintenance"}"#,
        );
        assert!(!d.replaces);
        assert_eq!(d.silence.id.len(), 32);
        assert_eq!(d.silence.starts_at, NOW);
        assert_eq!(d.silence.ends_at, parse_time("2030-01-01T00:00:00Z").unwrap());
        assert!(d.silence.matchers[0].is_regex && d.silence.matchers[0].is_equal);
        let d = parse_ok(
            r#"{"id":"abc-1","matchers":[{"name":"job","value":"db","isEqual":true}],
                "startsAt":"2029-01-01T00:00:00+02:00","endsAt":"2030-01-01T00:00:00.5Z",
                "createdBy":"ops","comment":"","status":{"state":"active"}}"#,
        );
        assert!(d.replaces);
        assert_eq!(d.silence.id, "abc-1");
        assert_eq!(
            d.silence.starts_at.0,
            parse_time("2028-12-31T22:00:00Z").unwrap().0,
            "offsets are honoured"
        );
        assert_eq!(d.silence.ends_at.0 % 1000, 500);
    }

    #[test]
    fn errors_name_the_field() {
        let m = r#""matchers":[{"name":"a","value":"b"}]"#;
        let tail = r#""ends_at":"2030-01-01T00:00:00Z","created_by":"me","comment":"c""#;
        assert_eq!(field("[]"), "body");
        assert_eq!(field(&format!(r#"{{"matchers":[],{tail}}}"#)), "matchers");
        assert_eq!(field(&format!("{{{tail}}}")), "matchers");
        assert_eq!(
            field(&format!(
                r#"{{"matchers":[{{"name":"a","value":"(","isRegex":true}}],{tail}}}"#
            )),
            "matchers[0].value"
        );
        assert_eq!(
            field(&format!(r#"{{"matchers":[{{"name":"a b","value":"x"}}],{tail}}}"#)),
            "matchers[0].name"
        );
        assert_eq!(
            field(&format!(r#"{{"matchers":[{{"name":"a"}}],{tail}}}"#)),
            "matchers[0]"
        );
        assert_eq!(
            field(&format!(
                r#"{{"matchers":[{{"name":"a","value":".*","isRegex":true}}],{tail}}}"#
            )),
            "matchers",
            "would silence everything"
        );
        assert_eq!(
            field(&format!(
                r#"{{{m},"ends_at":"2001-01-01T00:00:00Z","created_by":"me","comment":""}}"#
            )),
            "ends_at"
        );
        assert_eq!(
            field(&format!(
                r#"{{{m},"starts_at":"2031-01-01T00:00:00Z","ends_at":"2030-01-01T00:00:00Z","created_by":"me","comment":""}}"#
            )),
            "ends_at"
        );
        assert_eq!(
            field(&format!(
                r#"{{{m},"ends_at":"tomorrow","created_by":"me","comment":""}}"#
            )),
            "ends_at"
        );
        assert_eq!(
            field(&format!(
                r#"{{{m},"ends_at":"2030-01-01T00:00:00Z","created_by":" ","comment":""}}"#
            )),
            "created_by"
        );
        assert_eq!(
            field(&format!(
                r#"{{{m},"ends_at":"2030-01-01T00:00:00Z","created_by":"me"}}"#
            )),
            "comment"
        );
        assert_eq!(field(&format!(r#"{{{m},{tail},"endz":1}}"#)), "endz");
        assert_eq!(
            field(&format!(r#"{{{m},{tail},"endsAt":"2030-01-01T00:00:00Z"}}"#)),
            "ends_at"
        );
        assert_eq!(field(&format!(r#"{{{m},{tail},"id":"../x"}}"#)), "id");
    }

    #[test]
    fn a_negated_empty_matcher_mutes_only_where_the_label_is_set() {
        let d = parse_ok(
            r#"{"matchers":[{"name":"team","value":"","isEqual":false}],
                "ends_at":"2030-01-01T00:00:00Z","created_by":"me","comment":""}"#,
        );
        // Through the dispatcher's own matching, as delivery decides it.
        let mut cache = crate::route::mute::SilenceMatcherCache::default();
        let silences = [d.silence];
        let with = crate::series::Labels::from_pairs([("alertname", "A"), ("team", "db")]);
        let without = crate::series::Labels::from_pairs([("alertname", "A")]);
        assert!(cache.silenced(&silences, NOW, &with));
        assert!(!cache.silenced(&silences, NOW, &without));
    }

    #[test]
    fn status_by_time() {
        let d = parse_ok(
            r#"{"matchers":[{"name":"a","value":"b"}],"starts_at":"2029-01-01T00:00:00Z",
                "ends_at":"2030-01-01T00:00:00Z","created_by":"me","comment":""}"#,
        );
        let s = &d.silence;
        assert_eq!(status(s, NOW), Status::Pending);
        assert_eq!(status(s, s.starts_at), Status::Active);
        assert_eq!(status(s, s.ends_at), Status::Expired);
        let mut list = vec![s.clone()];
        forget_expired(&mut list, s.ends_at);
        assert!(list.is_empty());
    }
}
