//! Checks of values that parse as YAML but that `run` could not use: the `listen` address,
//! the URLs tocsin sends to or links to (`external_url`), the HTTP headers it adds and the
//! `external_labels` names. They run inside the parse
//! functions, so the daemon (start and reload) and `tocsin check` reject exactly the same
//! things through the same code. Values are checked after `${ENV}` substitution; a secret
//! value is never quoted in a message.

use http::header::{HeaderName, HeaderValue};
use url::Url;

use super::value::{Sp, Text};
use crate::diag::Diagnostic;

/// The value as a message may quote it: `<redacted>` for a secret.
fn shown(value: &str, secret: bool) -> String {
    if secret {
        super::REDACTED.to_string()
    } else {
        format!("`{value}`")
    }
}

/// `listen` must be `host:port` (an IP address, `[v6]:port` or a host name), as the daemon
/// binds it; a bare port such as `9999` is the likeliest mistake.
pub(super) fn listen(path: &str, listen: &Text) -> Option<Diagnostic> {
    let value = listen.expose();
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return None;
    }
    let reason = match value.rsplit_once(':') {
        None => "it has no port",
        Some((host, port)) => {
            if port.parse::<u16>().is_err() {
                "its port is not a number from 0 to 65535"
            } else if host.is_empty() {
                "it has no host"
            } else if host.starts_with('[') || host.contains(':') || !host.split('.').all(is_dns_label) {
                "its host is neither an IP address nor a host name"
            } else {
                return None;
            }
        }
    };
    let hint = match value.parse::<u16>() {
        Ok(port) if !listen.is_secret() => {
            format!("to listen on port {port} of this host only, write `127.0.0.1:{port}`")
        }
        _ => "write `host:port`, e.g. `127.0.0.1:9470`, `0.0.0.0:9470` or `[::1]:9470`".to_string(),
    };
    Some(
        Diagnostic::error(
            path,
            listen.line(),
            listen.column(),
            "listen",
            format!(
                "`listen` is {}, which is not a `host:port` address: {reason}",
                shown(value, listen.is_secret())
            ),
        )
        .with_hint(hint),
    )
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A URL tocsin sends requests to must be absolute `http` or `https` with a host: anything
/// else parses here and then fails every single request in production.
pub(super) fn http_url(path: &str, key: &str, value: &str, secret: bool, line: u64, column: u64) -> Option<Diagnostic> {
    let reason = match Url::parse(value) {
        Err(e) => e.to_string(),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            if secret {
                "its scheme is not http or https".to_string()
            } else {
                format!("its scheme is `{}`, not http or https", url.scheme())
            }
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => "it has no host".to_string(),
        Ok(_) => return None,
    };
    Some(
        Diagnostic::error(
            path,
            line,
            column,
            "url",
            format!(
                "`{key}` is {}, which is not an absolute http(s) URL: {reason}",
                shown(value, secret)
            ),
        )
        .with_hint("write the full URL, e.g. `https://hooks.example.com/alerts`"),
    )
}

/// [`http_url`] for a located text value.
pub(super) fn text_url(path: &str, key: &str, url: &Text) -> Option<Diagnostic> {
    http_url(path, key, url.expose(), url.is_secret(), url.line(), url.column())
}

/// [`http_url`] for a located plain string.
pub(super) fn sp_url(path: &str, key: &str, url: &Sp<String>) -> Option<Diagnostic> {
    http_url(path, key, &url.value, false, url.line(), url.column())
}

/// An `external_labels` name must be a label name a receiver accepts, not reserved (`__…`)
/// and not `alertname` or `severity`: every alert has those, and its own label wins, so
/// such an entry would never show anywhere.
pub(super) fn external_label(path: &str, name: &str, value: &Text) -> Option<Diagnostic> {
    let reason = if !crate::exposition::is_label_name(name) {
        "it is not a label name"
    } else if name.starts_with("__") {
        "names starting with `__` are reserved"
    } else if name == "alertname" || name == "severity" {
        "every alert has its own, which always wins"
    } else {
        return None;
    };
    Some(
        Diagnostic::error(
            path,
            value.line(),
            value.column(),
            "external-labels",
            format!("`external_labels` cannot set `{}`: {reason}", name.escape_debug()),
        )
        .with_hint("label names are letters, digits and `_`, not starting with a digit, e.g. `cluster`"),
    )
}

/// Where a header is reported: the name's or the value's position.
pub(super) struct HeaderAt {
    /// Position of the header's name.
    pub name: (u64, u64),
    /// Position of the header's value.
    pub value: (u64, u64),
}

/// A header name must be an HTTP token and a value visible ASCII or tabs (no line breaks):
/// the HTTP client refuses anything else at send time.
pub(super) fn header(path: &str, name: &str, value: &str, secret: bool, at: HeaderAt) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        diags.push(
            Diagnostic::error(
                path,
                at.name.0,
                at.name.1,
                "header",
                format!("`{name}` is not a valid HTTP header name"),
            )
            .with_hint("header names are letters, digits and `-` (no spaces or `:`), e.g. `X-Scope-OrgID`"),
        );
    }
    if HeaderValue::from_str(value).is_err() {
        diags.push(
            Diagnostic::error(
                path,
                at.value.0,
                at.value.1,
                "header",
                format!(
                    "the value of header `{name}`, {}, is not a valid HTTP header value",
                    shown(&value.escape_debug().to_string(), secret)
                ),
            )
            .with_hint("header values are one line of printable characters"),
        );
    }
    diags
}

/// The position of `key` as written on line `line` before `column` (a mapping key that was
/// parsed without a position), or `(line, column)` when it cannot be found there.
pub(super) fn key_position(text: &str, key: &str, line: u64, column: u64) -> (u64, u64) {
    let found = usize::try_from(line)
        .ok()
        .and_then(|l| text.lines().nth(l.checked_sub(1)?))
        .and_then(|l| {
            let before: String = l
                .chars()
                .take(usize::try_from(column).ok()?.saturating_sub(1))
                .collect();
            let byte = before.rfind(key)?;
            Some(before[..byte].chars().count() as u64 + 1)
        });
    match found {
        Some(col) => (line, col),
        None => (line, column),
    }
}
