//! Acknowledgements as the API reads and shows them: the body of
//! `POST /api/v1/alerts/{fingerprint}/ack` and the `acknowledged` object of alert entries.
//!
//! Owns validating what a person typed (`by`, `comment`, `until`); what an acknowledgement
//! does (no repeats until the alert changes) is `alert::notify`'s. Pure: `now` is passed.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::alert::notify::Ack;
use crate::series::Timestamp;
use crate::silence::parse_time;

/// The longest `by` and `comment` accepted, in bytes: they are stored with the state and
/// listed with the alert.
pub const MAX_TEXT: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    until: Option<String>,
}

/// Reads an acknowledgement body (`{"by": …, "comment": …, "until": RFC 3339}`, `by`
/// required, `until` optional and in the future), made at `now`.
pub fn parse(body: &[u8], now: Timestamp) -> Result<Ack, String> {
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| format!("{e}; expected a JSON object with `by`, `comment` and optionally `until`"))?;
    if b.by.trim().is_empty() {
        return Err("`by` must name who acknowledges".into());
    }
    if b.by.len() > MAX_TEXT || b.comment.len() > MAX_TEXT {
        return Err(format!("`by` and `comment` are limited to {MAX_TEXT} bytes"));
    }
    let until = match b.until.as_deref() {
        None => None,
        Some(s) => {
            let t = parse_time(s).map_err(|e| format!("`until`: {e}"))?;
            if t <= now {
                return Err(format!("`until` ({s}) is not in the future"));
            }
            Some(t)
        }
    };
    Ok(Ack {
        by: b.by,
        comment: b.comment,
        at: now,
        until,
    })
}

/// The `acknowledged` value of an alert entry: `{"by", "comment", "at", "until"}` or `null`.
pub fn to_json(ack: Option<&Ack>, rfc3339: impl Fn(Timestamp) -> String) -> Value {
    match ack {
        None => Value::Null,
        Some(a) => json!({
            "by": a.by,
            "comment": a.comment,
            "at": rfc3339(a.at),
            "until": a.until.map(&rfc3339),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn a_body_is_read_and_checked() {
        let a = parse(
            br#"{"by": "ana", "comment": "on it", "until": "2030-01-01T00:00:00Z"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!((a.by.as_str(), a.comment.as_str(), a.at), ("ana", "on it", NOW));
        assert_eq!(a.until, Some(Timestamp(1_893_456_000_000)));
        assert_eq!(parse(br#"{"by": "ana"}"#, NOW).unwrap().until, None);
        for (body, needle) in [
            (&br#"{"comment": "x"}"#[..], "missing field `by`"),
            (br#"{"by": " "}"#, "`by` must name"),
            (br#"{"by": "a", "until": "2001-01-01T00:00:00Z"}"#, "not in the future"),
            (
                br#"{"by": "a", "until": "soon"}"#,
                "`until`: `soon` is not an RFC 3339 time",
            ),
            (br#"{"by": "a", "who": 1}"#, "unknown field `who`"),
            (b"[", "expected a JSON object"),
        ] {
            let e = parse(body, NOW).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let long = format!(r#"{{"by": "a", "comment": "{}"}}"#, "x".repeat(MAX_TEXT + 1));
        assert!(parse(long.as_bytes(), NOW).unwrap_err().contains("limited"));
    }
}
