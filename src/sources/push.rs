//! `push`: samples a client sends to `POST /api/v1/push`, in exposition text or JSON.
//!
//! Owns reading a push body into samples. Push is a source without a loop: the HTTP
//! endpoint (`http::push`) receives the body, this parses it, and the daemon stores the
//! samples as the `push` source, under `sources.push`'s limits, as it stores every
//! source's.

use super::ParsedSample;

/// Parses a push request body (JSON when the content type says so, else exposition text).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Vec<ParsedSample>, String> {
    if content_type.is_some_and(|c| c.starts_with("application/json")) {
        crate::sources::push_json::parse(body).map_err(|e| format!("line {}: {}", e.line, e.message))
    } else {
        let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        crate::sources::exposition::parse_strict(text).map_err(|e| format!("line {}: {}", e.line, e.message))
    }
}
