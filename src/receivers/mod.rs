//! Receivers: turning a routed [`Dispatch`] into what a receiver is sent.
//!
//! Owns the compiled receiver definitions ([`Receiver`]: durations are `Duration`s, secrets
//! resolved, templates compiled) and the pure formatting of a dispatch into a [`Rendered`]
//! message per kind: Alertmanager webhook v4 and native JSON (`webhook`), Block Kit
//! (`slack`), multipart text + HTML (`email`), `POST /api/v2/alerts` bodies
//! (`alertmanager`) and the console line. It never decides *whether* to notify
//! (`engine::notify`), *whom* (`route`) or *when to retry* (`outbox`), and it performs no
//! I/O: the outbox sends what these functions return.

pub mod alertmanager;
pub mod console;
pub mod email;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Dur, ReceiverDef, ReceiverFile, Sp, Text, TlsMode, WebhookFormat};
use crate::message::{AlertNote, Dispatch, Status};
use crate::series::Timestamp;
use crate::template::{Context, TemplateError, TemplateRef, Templates};

/// Default `max_retry_age`.
pub const DEFAULT_MAX_RETRY_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default first retry delay.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// Default ceiling of the retry delay.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Default request time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default re-send interval of firing alerts to an Alertmanager (Prometheus' `resend_delay`).
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// Default `max_in_flight`. Each send waits a network round trip, and the outbox settles
/// and fetches once per loop turn, so the budget is what bounds throughput: 32 gave
/// ≈ 6,900 notifications/s to a loopback webhook, 128 gives ≈ 10,000/s (`cargo bench
/// --bench delivery`). A receiver that answers 429 slows itself down through
/// `Retry-After` and the circuit breaker.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 128;
/// Default `breaker_cool_off`: the first cool-off of an opened circuit breaker.
pub const DEFAULT_BREAKER_COOL_OFF: Duration = Duration::from_secs(1);
/// Default `breaker_max_cool_off`: a receiver that comes back is noticed within a minute.
pub const DEFAULT_BREAKER_MAX_COOL_OFF: Duration = Duration::from_secs(60);

/// Every receiver of the running policy, with the templates their messages use.
#[derive(Debug, Default)]
pub struct Receivers {
    /// In file order; names are unique (`check` guarantees it).
    pub list: Vec<Receiver>,
    /// Compiled `title`/`text`/`subject` templates.
    pub templates: Templates,
    /// Receivers delivered to as several streams (an `alertmanager` receiver with several
    /// `urls`): the receiver's name → its streams' names in `list`.
    pub peers: std::collections::BTreeMap<String, Vec<String>>,
}

impl Receivers {
    /// The receiver called `name`.
    pub fn get(&self, name: &str) -> Option<&Receiver> {
        self.list.iter().find(|r| r.name == name)
    }

    /// The delivery streams of the receiver routes call `name`: its peers' streams, or the
    /// receiver itself. Each gets its own outbox entry of every message.
    pub fn streams<'a>(&'a self, name: &str) -> Vec<&'a Receiver> {
        match self.peers.get(name) {
            Some(peers) => peers.iter().filter_map(|p| self.get(p)).collect(),
            None => self.get(name).into_iter().collect(),
        }
    }

    /// Compiles parsed receiver files (already validated by `check`): defaults applied,
    /// secrets exposed, templates compiled into [`Receivers::templates`].
    ///
    /// Total on purpose, because it runs on files `check` accepted: a template that does not
    /// compile becomes `None` (the message uses the default text), a definition without a
    /// kind is skipped and a repeated name keeps the first definition, as [`Receivers::get`]
    /// would anyway.
    pub fn compile(files: &[(String, ReceiverFile)]) -> Receivers {
        let mut out = Receivers::default();
        for (_, file) in files {
            for def in &file.receivers {
                if out.get(def.name.expose()).is_some() {
                    continue;
                }
                let Some(r) = compile_one(def, &mut out.templates) else {
                    continue;
                };
                match &def.alertmanager {
                    Some(am) if am.all_urls().count() > 1 => {
                        let streams = alertmanager::streams(&r.name, am);
                        let names = streams.iter().map(|(n, _)| n.clone()).collect();
                        out.peers.insert(r.name.clone(), names);
                        out.list.extend(streams.into_iter().map(|(name, a)| Receiver {
                            name,
                            kind: ReceiverKind::Alertmanager(a),
                            ..r.clone()
                        }));
                    }
                    _ => out.list.push(r),
                }
            }
        }
        out
    }
}

fn compile_one(def: &ReceiverDef, templates: &mut Templates) -> Option<Receiver> {
    let mut template = |t: &Option<Text>| t.as_ref().and_then(|t| templates.add(t.expose()).ok());
    let kind = if let Some(w) = &def.webhook {
        ReceiverKind::Webhook(Webhook {
            url: w.url.expose().to_string(),
            format: w.format.unwrap_or(WebhookFormat::Alertmanager),
            headers: w
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect(),
            hmac_secret: w.hmac_secret.as_ref().map(|t| t.expose().to_string()),
            timeout: dur(&w.timeout, DEFAULT_TIMEOUT),
        })
    } else if let Some(s) = &def.slack {
        ReceiverKind::Slack(Slack {
            webhook_url: s.webhook_url.expose().to_string(),
            channel: s.channel.as_ref().map(|t| t.expose().to_string()),
            title: template(&s.title),
            text: template(&s.text),
            timeout: dur(&s.timeout, DEFAULT_TIMEOUT),
        })
    } else if let Some(e) = &def.email {
        ReceiverKind::Email(Email {
            to: e.to.iter().map(|t| t.expose().to_string()).collect(),
            from: e.from.expose().to_string(),
            host: e.smtp.host.expose().to_string(),
            port: *e.smtp.port,
            tls: e.smtp.tls.unwrap_or(TlsMode::Starttls),
            username: e.smtp.username.as_ref().map(|t| t.expose().to_string()),
            password: e.smtp.password.as_ref().map(|t| t.expose().to_string()),
            subject: template(&e.subject),
            timeout: dur(&e.timeout, DEFAULT_TIMEOUT),
        })
    } else if def.console.is_some() {
        ReceiverKind::Console
    } else if let Some(a) = &def.alertmanager {
        // Its first URL; `compile` splits a cluster into one stream per peer.
        let (_, settings) = alertmanager::streams(def.name.expose(), a).into_iter().next()?;
        ReceiverKind::Alertmanager(settings)
    } else {
        // The loader rejects a receiver without a kind; nothing could be sent to it.
        return None;
    };
    Some(Receiver {
        name: def.name.expose().to_string(),
        send_resolved: def.send_resolved.unwrap_or(true),
        retry: RetryPolicy {
            backoff: dur(&def.retry_backoff, DEFAULT_RETRY_BACKOFF),
            max_backoff: dur(&def.max_backoff, DEFAULT_MAX_BACKOFF),
            max_retry_age: dur(&def.max_retry_age, DEFAULT_MAX_RETRY_AGE),
        },
        // `check` rejects 0; a file that got past it anyway still sends, one at a time.
        max_in_flight: def
            .max_in_flight
            .as_ref()
            .map_or(DEFAULT_MAX_IN_FLIGHT, |n| (**n as usize).max(1)),
        breaker: BreakerPolicy {
            cool_off: dur(&def.breaker_cool_off, DEFAULT_BREAKER_COOL_OFF),
            max_cool_off: dur(&def.breaker_max_cool_off, DEFAULT_BREAKER_MAX_COOL_OFF),
        },
        kind,
    })
}

fn dur(d: &Option<Sp<Dur>>, default: Duration) -> Duration {
    d.as_ref().map_or(default, |d| d.0)
}

/// Formats `d` for receiver `r`. Pure: the outbox stores and sends what this returns.
///
/// Never fails: a template that fails at run time is replaced by its fallback text (
/// a broken template never blackholes an alert) and its error is returned, one per failed
/// render, for the caller to count in `tocsin_template_errors_total`. `external_url` is
/// where tocsin's API is reachable from the receiver's side (Alertmanager's `externalURL`,
/// and the base of each alert's `generatorURL`).
pub fn render(d: &Dispatch, r: &Receiver, templates: &Templates, external_url: &str) -> (Rendered, Vec<TemplateError>) {
    let mut errors = Vec::new();
    let rendered = match &r.kind {
        ReceiverKind::Webhook(w) => match w.format {
            WebhookFormat::Alertmanager => Rendered::Json(webhook::alertmanager_body(d, external_url)),
            WebhookFormat::Native => Rendered::Json(webhook::native_body(d)),
        },
        ReceiverKind::Slack(s) => Rendered::Json(slack::body(d, s, templates, &mut errors)),
        ReceiverKind::Email(e) => email::message(d, e, templates, &mut errors),
        ReceiverKind::Console => Rendered::Line(console::lines(d)),
        ReceiverKind::Alertmanager(a) => Rendered::Json(alertmanager::body(d, a, external_url)),
    };
    (rendered, errors)
}

/// What receiver templates are rendered against: the first alert's fields (firing alerts
/// come first, so this is a firing one whenever the group fires), with `alerts` holding
/// every alert of the dispatch. One helper for every kind, so that a template means the
/// same thing in Slack and in email, and `check` renders against this very shape.
pub fn context(d: &Dispatch) -> Context {
    let mut ctx = d.alerts.first().map(note_context).unwrap_or_else(|| Context {
        status: status_name(d.status()).to_string(),
        ..Context::default()
    });
    ctx.alerts = d.alerts.iter().map(note_context).collect();
    ctx
}

/// One alert's template variables (without `alerts`).
pub fn note_context(a: &AlertNote) -> Context {
    Context {
        alertname: a.alertname().to_string(),
        status: status_name(a.status).to_string(),
        severity: a.severity.clone(),
        value: a.value,
        threshold: a.threshold,
        labels: a.labels.to_map(),
        annotations: a.annotations.clone(),
        starts_at: Some(rfc3339_millis(a.starts_at)),
        alerts: Vec::new(),
        nodata: a.nodata,
    }
}

/// Renders an optional receiver template; `None` when the receiver has none (the caller
/// uses its default text). A failed render yields the fallback text and records the error.
fn render_template(
    templates: &Templates,
    t: Option<TemplateRef>,
    ctx: &Context,
    errors: &mut Vec<TemplateError>,
) -> Option<String> {
    let t = t?;
    let (text, err) = templates.render_or_fallback(t, ctx, templates.source(t).unwrap_or(""));
    errors.extend(err);
    Some(text)
}

/// `firing` or `resolved`.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    }
}

/// The 16-hex-digit form of a fingerprint, as Alertmanager prints it.
pub fn fingerprint_hex(f: u64) -> String {
    format!("{f:016x}")
}

/// How bad a severity is, for picking the worst of a group: 3 for `emergency`/`critical`,
/// 2 for `high`/`error`, 1 for `warning`, 0 for anything else (`info`, custom names).
pub fn severity_rank(severity: &str) -> u8 {
    match severity.to_ascii_lowercase().as_str() {
        "emergency" | "critical" => 3,
        "high" | "error" => 2,
        "warning" => 1,
        _ => 0,
    }
}

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

/// One compiled receiver.
#[derive(Clone, Debug)]
pub struct Receiver {
    /// Its name.
    pub name: String,
    /// Whether resolutions are sent (default true).
    pub send_resolved: bool,
    /// How failed deliveries are retried.
    pub retry: RetryPolicy,
    /// Sends in flight at once, across the receiver's groups (at least 1).
    pub max_in_flight: usize,
    /// The cool-offs of its circuit breaker.
    pub breaker: BreakerPolicy,
    /// Kind-specific settings.
    pub kind: ReceiverKind,
}

/// Circuit-breaker cool-offs of one receiver: the first opening holds sends back for
/// `cool_off`, each reopening without a success in between doubles it, up to
/// `max_cool_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// The first cool-off.
    pub cool_off: Duration,
    /// The longest cool-off.
    pub max_cool_off: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> BreakerPolicy {
        BreakerPolicy {
            cool_off: DEFAULT_BREAKER_COOL_OFF,
            max_cool_off: DEFAULT_BREAKER_MAX_COOL_OFF,
        }
    }
}

/// Retry settings of one receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry; doubles per attempt (with jitter).
    pub backoff: Duration,
    /// Ceiling of the delay.
    pub max_backoff: Duration,
    /// A notification still undelivered this long after it was queued is dead-lettered.
    pub max_retry_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            backoff: DEFAULT_RETRY_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_retry_age: DEFAULT_MAX_RETRY_AGE,
        }
    }
}

/// What kind of receiver, with its settings.
#[derive(Clone, Debug)]
pub enum ReceiverKind {
    /// HTTP POST of JSON.
    Webhook(Webhook),
    /// Slack incoming webhook.
    Slack(Slack),
    /// SMTP.
    Email(Email),
    /// A line on standard output.
    Console,
    /// An Alertmanager's `POST /api/v2/alerts`.
    Alertmanager(Alertmanager),
}

/// Settings of a `webhook` receiver.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// Body format.
    pub format: WebhookFormat,
    /// Extra request headers (values may be secrets: never logged).
    pub headers: Vec<(String, String)>,
    /// Key of the `X-Tocsin-Signature` HMAC-SHA256 of the body.
    pub hmac_secret: Option<String>,
    /// Request time limit.
    pub timeout: Duration,
}

/// Settings of a `slack` receiver.
#[derive(Clone, Debug)]
pub struct Slack {
    /// The incoming-webhook URL (a secret: never logged).
    pub webhook_url: String,
    /// Channel override.
    pub channel: Option<String>,
    /// Title template (default: alert name, status and severity).
    pub title: Option<TemplateRef>,
    /// Text template (default: a summary of the alerts).
    pub text: Option<TemplateRef>,
    /// Request time limit.
    pub timeout: Duration,
}

/// Settings of an `email` receiver.
#[derive(Clone, Debug)]
pub struct Email {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// Login, when both are set.
    pub username: Option<String>,
    /// Password (a secret: never logged).
    pub password: Option<String>,
    /// Subject template (default: `[SEVERITY] alertname is status`).
    pub subject: Option<TemplateRef>,
    /// Time limit of one SMTP transaction.
    pub timeout: Duration,
}

/// Settings of an `alertmanager` receiver.
#[derive(Clone, Debug)]
pub struct Alertmanager {
    /// Base URL; alerts are POSTed to `<url>/api/v2/alerts`.
    pub url: String,
    /// Request time limit.
    pub timeout: Duration,
    /// Firing alerts are re-sent this often while they fire, as Alertmanager expects.
    pub resend_interval: Duration,
    /// Extra request headers, `Authorization` from the credentials included (values may be
    /// secrets: never logged).
    pub headers: Vec<(String, String)>,
}

/// A dispatch formatted for its receiver: what the outbox stores and sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rendered {
    /// A JSON body to POST (webhook, Slack, Alertmanager).
    Json(String),
    /// An email.
    Email {
        /// Rendered subject.
        subject: String,
        /// Plain-text part.
        text: String,
        /// HTML part.
        html: String,
    },
    /// A console line.
    Line(String),
}

/// An alert's `generatorURL`: tocsin's history of the alert's rule,
/// `{external_url}/api/v1/history?rule=<alertname>`. Prometheus links a graph of the
/// expression; tocsin has no graph endpoint, and the rule's recent transitions are what
/// explains a notification. The link works with the API as it is, with no state in the URL.
pub fn generator_url(external_url: &str, alertname: &str) -> String {
    format!(
        "{}/api/v1/history?rule={}",
        external_url.trim_end_matches('/'),
        percent_encode(alertname)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for a URL query value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON text of a body. Every body here is structs, strings, numbers and string-keyed maps,
/// which serde_json cannot fail on (non-finite floats become `null`).
fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).expect("string-keyed plain data serializes")
}

/// Builders shared by the receiver kinds' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use crate::engine::notify::NoteKind;
    use crate::message::{AlertNote, Dispatch, Status};
    use crate::series::{Labels, Timestamp};

    /// 2026-11-23T08:00:00Z in ms.
    pub const T0: i64 = 1_795_420_800_000;

    /// A firing alert `name` at `severity` with extra labels, value 97 over threshold 90.
    pub fn firing(fp: u64, name: &str, severity: &str, labels: &[(&str, &str)]) -> AlertNote {
        let mut l = Labels::from_pairs(labels.iter().copied());
        l.set("alertname", name);
        l.set("severity", severity);
        AlertNote {
            instance: fp,
            seq: 1,
            kind: NoteKind::Firing,
            status: Status::Firing,
            severity: severity.to_string(),
            labels: l,
            annotations: BTreeMap::from([("summary".to_string(), format!("{name} is bad"))]),
            value: Some(97.0),
            threshold: Some(90.0),
            starts_at: Timestamp(T0),
            ends_at: None,
            at: Timestamp(T0),
            nodata: false,
            ended_severity: None,
        }
    }

    /// `a` resolved 6.5 s after `T0`.
    pub fn resolved(mut a: AlertNote) -> AlertNote {
        a.kind = NoteKind::Resolved;
        a.status = Status::Resolved;
        a.ends_at = Some(Timestamp(T0 + 6_500));
        a.at = Timestamp(T0 + 6_500);
        a.seq += 1;
        a
    }

    /// A dispatch to `receiver` of `alerts`, grouped by `alertname`, all of them news.
    pub fn dispatch(receiver: &str, alerts: Vec<AlertNote>) -> Dispatch {
        let name = alerts.first().map_or("", |a| a.alertname()).to_string();
        Dispatch {
            receiver: receiver.to_string(),
            group_key: format!("{{}}:{{alertname=\"{name}\"}}"),
            group_labels: BTreeMap::from([("alertname".to_string(), name)]),
            news: alerts.iter().map(|a| (a.instance, a.kind)).collect(),
            idempotency_key: "00000000000000aa-1".to_string(),
            at: Timestamp(T0 + 10_000),
            alerts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::config::{Source, parse_receivers};

    fn compile_yaml(yaml: &str) -> Receivers {
        let env = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        let file = parse_receivers(&Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap(), &env).unwrap();
        Receivers::compile(&[("r.yaml".to_string(), file)])
    }

    #[test]
    fn zero_delivery_settings_are_located_errors() {
        let yaml = "receivers:\n  - name: chat\n    max_in_flight: 0\n    breaker_cool_off: 0s\n    \
                    breaker_max_cool_off: 1m\n    console: {}\n";
        let source = Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap();
        let diags = parse_receivers(&source, &|_: &str| None).unwrap_err();
        let got: Vec<(u64, u64, &str, &str)> = diags
            .iter()
            .map(|d| (d.line, d.column, d.code, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    3,
                    20,
                    "invalid-value",
                    "`max_in_flight` of receiver `chat` must be more than 0"
                ),
                (
                    4,
                    23,
                    "invalid-value",
                    "`breaker_cool_off` of receiver `chat` must be more than 0"
                ),
            ]
        );
    }

    #[test]
    fn compile_applies_defaults_and_exposes_secrets() {
        let r = compile_yaml(
            r#"
receivers:
  - name: hook
    webhook: { url: "http://h/x", hmac_secret: "${SECRET}", headers: { Authorization: "Bearer ${SECRET}" } }
  - name: mail
    send_resolved: false
    max_retry_age: 1h
    retry_backoff: 2s
    max_backoff: 1m
    max_in_flight: 1
    breaker_cool_off: 2s
    breaker_max_cool_off: 30s
    email:
      to: [a@example.com]
      from: t@example.com
      smtp: { host: smtp, port: 25, password: "${SECRET}" }
      subject: "{{ alertname }}"
      timeout: 3s
  - name: chat
    slack: { webhook_url: "https://hooks.slack.com/${SECRET}", title: "{{ nope", text: "{{ status }}" }
  - name: am
    alertmanager: { url: "http://am:9093" }
  - name: con
    console: {}
  - name: hook
    console: {}
"#,
        );
        let names: Vec<&str> = r.list.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hook", "mail", "chat", "am", "con"]);
        let hook = r.get("hook").unwrap();
        assert!(hook.send_resolved);
        assert_eq!(hook.retry, RetryPolicy::default());
        assert_eq!(hook.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(hook.breaker, BreakerPolicy::default());
        let ReceiverKind::Webhook(w) = &hook.kind else { panic!() };
        assert_eq!(w.format, WebhookFormat::Alertmanager);
        assert_eq!(w.hmac_secret.as_deref(), Some("s3cret"));
        assert_eq!(w.headers, [("Authorization".to_string(), "Bearer s3cret".to_string())]);
        assert_eq!(w.timeout, DEFAULT_TIMEOUT);
        let mail = r.get("mail").unwrap();
        assert!(!mail.send_resolved);
        assert_eq!(
            mail.retry,
            RetryPolicy {
                backoff: Duration::from_secs(2),
                max_backoff: Duration::from_secs(60),
                max_retry_age: Duration::from_secs(3600),
            }
        );
        assert_eq!(mail.max_in_flight, 1);
        assert_eq!(
            mail.breaker,
            BreakerPolicy {
                cool_off: Duration::from_secs(2),
                max_cool_off: Duration::from_secs(30),
            }
        );
        let ReceiverKind::Email(e) = &mail.kind else { panic!() };
        assert_eq!(e.tls, TlsMode::Starttls);
        assert_eq!(e.password.as_deref(), Some("s3cret"));
        assert_eq!(e.timeout, Duration::from_secs(3));
        assert!(e.subject.is_some());
        let ReceiverKind::Slack(s) = &r.get("chat").unwrap().kind else {
            panic!()
        };
        assert_eq!(s.webhook_url, "https://hooks.slack.com/s3cret");
        assert!(
            s.title.is_none(),
            "a template that does not compile falls back to the default"
        );
        assert!(s.text.is_some());
        let ReceiverKind::Alertmanager(a) = &r.get("am").unwrap().kind else {
            panic!()
        };
        assert_eq!(a.resend_interval, DEFAULT_RESEND_INTERVAL);
        assert!(matches!(r.get("con").unwrap().kind, ReceiverKind::Console));
    }

    #[test]
    fn context_is_the_first_alert_with_every_alert() {
        let d = dispatch(
            "x",
            vec![
                firing(1, "HighCpu", "critical", &[("host", "a")]),
                resolved(firing(2, "HighCpu", "warning", &[("host", "b")])),
            ],
        );
        let ctx = context(&d);
        assert_eq!(ctx.alertname, "HighCpu");
        assert_eq!(ctx.status, "firing");
        assert_eq!(ctx.severity, "critical");
        assert_eq!(ctx.labels["host"], "a");
        assert_eq!(ctx.starts_at.as_deref(), Some("2026-11-23T08:00:00.000Z"));
        assert_eq!(ctx.alerts.len(), 2);
        assert_eq!(ctx.alerts[1].status, "resolved");
        assert!(ctx.alerts[1].alerts.is_empty());
        let empty = context(&dispatch("x", vec![]));
        assert_eq!(empty.status, "resolved");
    }

    #[test]
    fn times_format_like_tocsin_and_like_go() {
        for ms in [
            0,
            1,
            T0,
            T0 + 405,
            951_782_400_000, /* 2000-02-29 */
            4_102_444_799_999,
        ] {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            assert_eq!(
                rfc3339_millis(Timestamp(ms)),
                humantime::format_rfc3339_millis(st).to_string()
            );
        }
        assert_eq!(rfc3339_go(Timestamp(T0 + 405)), "2026-11-23T08:00:00.405Z");
        assert_eq!(rfc3339_go(Timestamp(T0 + 400)), "2026-11-23T08:00:00.4Z");
        assert_eq!(rfc3339_go(Timestamp(T0)), "2026-11-23T08:00:00Z");
        // Before 1970 formats instead of panicking.
        assert_eq!(rfc3339_go(Timestamp(-1)), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn generator_url_links_the_rule_history() {
        assert_eq!(
            generator_url("http://tocsin:9470/", "High Cpu&x"),
            "http://tocsin:9470/api/v1/history?rule=High%20Cpu%26x"
        );
    }

    #[test]
    fn a_template_failing_at_run_time_still_yields_a_message_and_one_error() {
        let r = compile_yaml(
            r#"
receivers:
  - name: chat
    slack: { webhook_url: "http://slack", title: "{{ (alerts | length) // 0 }}" }
  - name: mail
    email: { to: [a@x], from: b@x, smtp: { host: h, port: 25 }, subject: "{{ (alerts | length) // 0 }}" }
"#,
        );
        let d = dispatch("chat", vec![firing(1, "HighCpu", "critical", &[])]);
        let (out, errors) = render(&d, r.get("chat").unwrap(), &r.templates, "http://t");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let Rendered::Json(body) = out else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(text.starts_with("[template error:"), "{text}");
        assert!(text.contains("HighCpu firing (critical)"), "{text}");
        let (out, errors) = render(&d, r.get("mail").unwrap(), &r.templates, "http://t");
        assert_eq!(errors.len(), 1);
        let Rendered::Email { subject, text, .. } = out else {
            panic!()
        };
        assert!(subject.starts_with("[template error:"), "{subject}");
        assert!(text.contains("[FIRING] HighCpu (critical)"));
    }
}
