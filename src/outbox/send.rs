//! Transport: one attempt at handing a [`Rendered`] message to a [`Receiver`].
//!
//! Returns a [`SendResult`] and never decides what it means ([`super::policy`] does). Errors
//! never carry URLs or header values: Slack webhook URLs, bearer tokens and SMTP passwords
//! are secrets, and these strings end up in logs and in the database.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use sha2::{Digest as _, Sha256};

use super::policy::{MAX_ERROR_BODY, SendResult};
use crate::config::TlsMode;
use crate::http_client;
use crate::receivers::{Delivery, Email, HttpTarget, Receiver, Rendered};

/// Request header carrying the idempotency key (HTTP and email).
pub const IDEMPOTENCY_HEADER: &str = "X-Tocsin-Idempotency-Key";
/// Request header carrying `sha256=<hex HMAC-SHA256 of the body>` for webhooks with an
/// `hmac_secret`.
pub const SIGNATURE_HEADER: &str = "X-Tocsin-Signature";

/// How much of a successful response body is read so its connection can be reused; a
/// longer body is abandoned (and the connection with it).
const DRAIN_LIMIT: usize = 64 * 1024;

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as sent in
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The Message-ID of the email for an idempotency key: the same key always yields the same
/// id, so mail systems that deduplicate by Message-ID drop a re-sent copy.
pub fn message_id(idempotency_key: &str, from_domain: &str) -> String {
    let digest = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
    format!("<{}@{}>", &digest[..32], from_domain)
}

/// The SMTP settings a cached transport was built from: a reload that changes any of them
/// gets a new transport.
#[derive(Clone, PartialEq, Eq)]
struct SmtpKey {
    host: String,
    port: u16,
    tls: TlsMode,
    username: Option<String>,
    password: Option<String>,
    timeout: Duration,
}

impl SmtpKey {
    fn of(e: &Email) -> SmtpKey {
        SmtpKey {
            host: e.host.clone(),
            port: e.port,
            tls: e.tls,
            username: e.username.clone(),
            password: e.password.clone(),
            timeout: e.timeout,
        }
    }
}

/// Sends messages: one shared HTTP client (keep-alive connections across all HTTP
/// receivers, built at the first HTTP send) and one pooled SMTP transport per email receiver.
pub struct Transport {
    http: http_client::Lazy,
    smtp: Mutex<HashMap<String, (SmtpKey, AsyncSmtpTransport<Tokio1Executor>)>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Default for Transport {
    fn default() -> Transport {
        Transport::new()
    }
}

impl Transport {
    /// A transport with no connections yet.
    pub fn new() -> Transport {
        Transport {
            http: http_client::Lazy::new(|| {
                http_client::builder()
                    .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
                    .pool_idle_timeout(Duration::from_secs(90))
                    // Redirects would re-send alert bodies (and signatures) to wherever a
                    // server points; a 3xx is reported as the answer instead.
                    .redirect(reqwest::redirect::Policy::none())
            }),
            smtp: Mutex::new(HashMap::new()),
        }
    }

    /// One attempt at delivering `msg` to `receiver`, carrying `idempotency_key`.
    pub async fn send(&self, receiver: &Receiver, idempotency_key: &str, msg: &Rendered) -> SendResult {
        match (receiver.kind.delivery(), msg) {
            (Delivery::Http(t), Rendered::Json(body)) => self.post(&t, idempotency_key, body).await,
            (Delivery::Http(t), Rendered::Posts(bodies)) => {
                // In order, each answered before the next: a later event (the trigger after
                // a resolve) must not overtake an earlier one.
                for body in bodies {
                    let result = self.post(&t, idempotency_key, body).await;
                    if !matches!(&result, SendResult::Http { status, .. } if (200..300).contains(status)) {
                        return result;
                    }
                }
                SendResult::Accepted
            }
            (Delivery::Email(e), Rendered::Email { subject, text, html }) => {
                self.mail(&receiver.name, e, idempotency_key, subject, text, html).await
            }
            (Delivery::Console, Rendered::Line(line)) => {
                // A closed stdout must not turn into endless retries: the line is best-effort.
                let _ = writeln!(std::io::stdout().lock(), "{line}");
                SendResult::Accepted
            }
            (_, msg) => SendResult::Invalid(format!(
                "a {} message cannot be sent to a {} receiver",
                rendered_kind(msg),
                receiver.kind.name()
            )),
        }
    }

    async fn post(&self, target: &HttpTarget<'_>, key: &str, body: &str) -> SendResult {
        let signature = target.hmac_secret.map(|s| signature(s, body.as_bytes()));
        let http = match self.http.get().await {
            Ok(c) => c,
            Err(e) => return SendResult::Transport(e),
        };
        let mut req = http.post(target.url.as_ref()).timeout(target.timeout);
        for (name, value) in target.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, key);
        if let Some(sig) = signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        let mut resp = match req.body(body.to_owned()).send().await {
            Ok(r) => r,
            Err(e) => return request_error(e),
        };
        let status = resp.status().as_u16();
        // PagerDuty (and other rate-limited APIs) say when to come back in
        // `ratelimit-reset` (seconds) where others send `Retry-After`.
        let retry_after = [reqwest::header::RETRY_AFTER.as_str(), "ratelimit-reset"]
            .into_iter()
            .find_map(|name| resp.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let success = resp.status().is_success();
        let limit = if success { DRAIN_LIMIT } else { MAX_ERROR_BODY };
        let mut buf = Vec::new();
        // A body that breaks off or times out does not change the status's meaning.
        while buf.len() < limit {
            match resp.chunk().await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let body = if success {
            String::new()
        } else {
            buf.truncate(MAX_ERROR_BODY);
            String::from_utf8_lossy(&buf).into_owned()
        };
        SendResult::Http {
            status,
            retry_after,
            body,
        }
    }

    async fn mail(&self, name: &str, e: &Email, key: &str, subject: &str, text: &str, html: &str) -> SendResult {
        let msg = match build_email(e, key, subject, text, html) {
            Ok(m) => m,
            Err(why) => return SendResult::Invalid(why),
        };
        let transport = match self.smtp_transport(name, e) {
            Ok(t) => t,
            Err(why) => return SendResult::Invalid(why),
        };
        // lettre's timeout bounds each SMTP command; this bounds the whole transaction.
        match tokio::time::timeout(e.timeout, transport.send(msg)).await {
            Err(_) => SendResult::Transport(format!("SMTP transaction timed out after {:?}", e.timeout)),
            Ok(Ok(_)) => SendResult::Accepted,
            Ok(Err(err)) => smtp_error(&err),
        }
    }

    fn smtp_transport(&self, name: &str, e: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let key = SmtpKey::of(e);
        let mut cache = self.smtp.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, t)) = cache.get(name)
            && *k == key
        {
            return Ok(t.clone());
        }
        let builder = match e.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host)
                .map_err(|err| format!("SMTP TLS setup for {}: {err}", e.host))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host)
                .map_err(|err| format!("SMTP TLS setup for {}: {err}", e.host))?,
        };
        let mut builder = builder
            .port(e.port)
            .timeout(Some(e.timeout))
            .pool_config(PoolConfig::new());
        if let (Some(user), Some(password)) = (&e.username, &e.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let transport = builder.build();
        cache.insert(name.to_owned(), (key, transport.clone()));
        Ok(transport)
    }
}

/// The email for one notification: From, To (all recipients), Subject, the idempotency key
/// header, a Message-ID derived from it, and text + HTML as `multipart/alternative`.
pub fn build_email(e: &Email, key: &str, subject: &str, text: &str, html: &str) -> Result<Message, String> {
    let from: Mailbox = e
        .from
        .parse()
        .map_err(|err| format!("invalid from address {:?}: {err}", e.from))?;
    let domain = from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(message_id(key, &domain)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER),
            key.to_owned(),
        ));
    if e.to.is_empty() {
        return Err("no recipients".into());
    }
    for to in &e.to {
        let mbox: Mailbox = to
            .parse()
            .map_err(|err| format!("invalid recipient address {to:?}: {err}"))?;
        builder = builder.to(mbox);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))
        .map_err(|err| format!("cannot build the email: {err}"))
}

/// Classifies a lettre error: reply codes are the server's answer (4xx transient, 5xx
/// permanent); a client-side error is permanent; everything else (connection, TLS, timeout,
/// a garbled reply) is worth retrying.
fn smtp_error(err: &lettre::transport::smtp::Error) -> SendResult {
    let code = err.status().and_then(|c| c.to_string().parse::<u16>().ok());
    match code {
        Some(code) if err.is_permanent() || err.is_transient() => SendResult::SmtpReply {
            code,
            message: chain(err),
        },
        _ if err.is_client() => SendResult::Invalid(chain(err)),
        _ => SendResult::Transport(chain(err)),
    }
}

fn request_error(e: reqwest::Error) -> SendResult {
    let e = e.without_url();
    if e.is_builder() {
        SendResult::Invalid(chain(&e))
    } else {
        SendResult::Transport(chain(&e))
    }
}

/// An error with its causes: "error sending request: tcp connect error: Connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s
}

fn rendered_kind(msg: &Rendered) -> &'static str {
    match msg {
        Rendered::Json(_) | Rendered::Posts(_) => "JSON",
        Rendered::Email { .. } => "email",
        Rendered::Line(_) => "console",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn message_ids_are_stable_per_key() {
        let a = message_id("fp:1", "example.com");
        assert_eq!(a, message_id("fp:1", "example.com"));
        assert_ne!(a, message_id("fp:2", "example.com"));
        assert!(a.starts_with('<') && a.ends_with("@example.com>") && a.len() == "<@example.com>".len() + 32);
    }

    fn email(to: &[&str]) -> Email {
        Email {
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            from: "Tocsin <tocsin@example.com>".into(),
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::None,
            username: None,
            password: None,
            subject: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn emails_carry_key_id_and_both_parts() {
        let m = build_email(&email(&["a@x.org", "b@x.org"]), "fp:7", "Subj", "plain", "<b>h</b>").unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("X-Tocsin-Idempotency-Key: fp:7\r\n"), "{raw}");
        assert!(
            raw.contains(&format!("Message-ID: {}", message_id("fp:7", "example.com"))),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn bad_addresses_are_permanent() {
        assert!(build_email(&email(&["not an address"]), "k", "s", "t", "h").is_err());
        assert!(build_email(&email(&[]), "k", "s", "t", "h").is_err());
    }
}
