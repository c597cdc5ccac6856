//! Receivers: turning a routed [`Dispatch`] into what a receiver is sent.
//!
//! Owns the compiled receiver definitions ([`Receiver`]: durations are `Duration`s, secrets
//! resolved, templates compiled) and the pure formatting of a dispatch into a [`Rendered`]
//! message per kind: Alertmanager webhook v4 and native JSON (`webhook`), Block Kit
//! (`slack`), multipart text + HTML (`email`), `POST /api/v2/alerts` bodies
//! (`alertmanager`), Events API v2 events (`pagerduty`), an Adaptive Card (`msteams`) and
//! the console line. Each kind's module owns its compiled type, its compilation and its
//! rendering; the `match`es here only delegate. It never decides *whether* to notify
//! (`alert::notify`), *whom* (`route`) or *when to retry* (`outbox`), and it performs no
//! I/O: the outbox sends what these functions return.

pub mod alertmanager;
pub mod console;
pub mod email;
pub mod msteams;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::alertmanager::Alertmanager;
pub use self::email::Email;
pub use self::msteams::Msteams;
pub use self::pagerduty::Pagerduty;
pub use self::slack::Slack;
pub use self::webhook::Webhook;
use crate::alert::notify::NoteKind;
use crate::config::{Dur, ReceiverDef, ReceiverFile, ReceiverKindDef, Sp, Text};
use crate::diag::Diagnostic;
use crate::message::{AlertNote, Dispatch, Status};
use crate::series::{Labels, Timestamp};
use crate::template::{Context, TemplateError, TemplateRef, Templates};
pub use crate::time::{GO_ZERO_TIME, rfc3339_go, rfc3339_millis};

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
    /// In file order; names are unique (the policy compiler reports a repeated one).
    pub list: Vec<Receiver>,
    /// Compiled receiver templates (`title`, `text`, `subject`, `summary`, …).
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

    /// The receiver routes and `notify:` call `name`: itself, or for a receiver delivered
    /// as several streams, its first stream (they share every setting but the URL).
    pub fn named(&self, name: &str) -> Option<&Receiver> {
        self.get(name).or_else(|| self.streams(name).into_iter().next())
    }

    /// The delivery streams of the receiver routes call `name`: its peers' streams, or the
    /// receiver itself. Each gets its own outbox entry of every message.
    pub fn streams<'a>(&'a self, name: &str) -> Vec<&'a Receiver> {
        match self.peers.get(name) {
            Some(peers) => peers.iter().filter_map(|p| self.get(p)).collect(),
            None => self.get(name).into_iter().collect(),
        }
    }

    /// Compiles the receivers of parsed receiver files, reporting into `diagnostics` what
    /// `run` could not use: a repeated name (the first definition is kept) and each
    /// template that does not compile or fails on sample data.
    pub fn compile(files: &[(String, ReceiverFile)], diagnostics: &mut Vec<Diagnostic>) -> Receivers {
        let mut out = Receivers::default();
        let mut defined: Vec<(&str, &str, u64, u64)> = Vec::new();
        for (path, file) in files {
            for def in &file.receivers {
                let name = def.name.expose();
                if let Some((_, p, l, c)) = defined.iter().find(|d| d.0 == name) {
                    diagnostics.push(Diagnostic::error(
                        path,
                        def.name.line(),
                        def.name.column(),
                        "duplicate-receiver",
                        format!("receiver `{name}` is already defined at {p}:{l}:{c}"),
                    ));
                    continue;
                }
                defined.push((name, path, def.name.line(), def.name.column()));
                let receiver = Compiler::new(path, &mut out.templates, diagnostics).receiver(def);
                match &def.kind {
                    ReceiverKindDef::Alertmanager(am) if am.all_urls().count() > 1 => {
                        let streams = alertmanager::streams(&receiver.name, am);
                        let names = streams.iter().map(|(n, _)| n.clone()).collect();
                        out.peers.insert(receiver.name.clone(), names);
                        out.list.extend(streams.into_iter().map(|(name, a)| Receiver {
                            name,
                            kind: ReceiverKind::Alertmanager(a),
                            ..receiver.clone()
                        }));
                    }
                    _ => out.list.push(receiver),
                }
            }
        }
        out
    }
}

/// Compiling receiver definitions: where they come from, the template set they compile
/// into and the findings. Each kind's `compile` takes one.
pub struct Compiler<'a> {
    path: &'a str,
    templates: &'a mut Templates,
    sample: Context,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Compiler<'a> {
    /// A compiler for the definitions of file `path`, adding templates to `templates` and
    /// findings to `diagnostics`.
    pub fn new(path: &'a str, templates: &'a mut Templates, diagnostics: &'a mut Vec<Diagnostic>) -> Compiler<'a> {
        Compiler {
            path,
            templates,
            sample: context(&sample_dispatch()),
            diagnostics,
        }
    }

    /// Compiles an optional template and renders it against a sample group, as `run` will
    /// render it: a template that does not compile or fails on the sample is an error
    /// (located in its file), one that reads a variable templates do not have a warning.
    /// `None` when there is no template or it does not compile; the policy is then refused.
    pub fn template(&mut self, t: Option<&Text>) -> Option<TemplateRef> {
        let t = t?;
        match self.templates.add(t.expose()) {
            Ok(id) => {
                if let Err(e) = self.templates.render(id, &self.sample) {
                    self.diagnostics.push(Diagnostic::error(
                        self.path,
                        t.line(),
                        t.column(),
                        "template",
                        format!("template fails on sample data: {}", e.message),
                    ));
                }
                for var in self.templates.unknown_variables(id) {
                    self.diagnostics.push(Diagnostic::warning(
                        self.path,
                        t.line(),
                        t.column(),
                        "template-variable",
                        format!("template reads `{var}`, which templates do not have"),
                    ));
                }
                Some(id)
            }
            Err(e) => {
                self.diagnostics.push(Diagnostic::error(
                    self.path,
                    t.line() + e.line.map_or(0, |l| l as u64 - 1),
                    t.column(),
                    "template",
                    format!("template does not compile: {}", e.message),
                ));
                None
            }
        }
    }

    /// Reports an error at `line`:`column` of the file being compiled.
    pub fn error(&mut self, line: u64, column: u64, code: &'static str, message: String) {
        self.diagnostics
            .push(Diagnostic::error(self.path, line, column, code, message));
    }

    /// Compiles one receiver definition: defaults applied, secrets exposed, templates
    /// compiled, each kind by its own module.
    pub fn receiver(&mut self, def: &ReceiverDef) -> Receiver {
        let kind = match &def.kind {
            ReceiverKindDef::Webhook(w) => ReceiverKind::Webhook(webhook::compile(w)),
            ReceiverKindDef::Slack(s) => ReceiverKind::Slack(slack::compile(s, self)),
            ReceiverKindDef::Email(e) => ReceiverKind::Email(email::compile(e, self)),
            ReceiverKindDef::Console(_) => ReceiverKind::Console,
            // Several `urls` are expanded into streams by `Receivers::compile`.
            ReceiverKindDef::Alertmanager(a) => ReceiverKind::Alertmanager(alertmanager::compile(a)),
            ReceiverKindDef::Pagerduty(p) => ReceiverKind::Pagerduty(pagerduty::compile(p, self)),
            ReceiverKindDef::Msteams(t) => ReceiverKind::Msteams(msteams::compile(t, self)),
        };
        Receiver {
            name: def.name.expose().to_string(),
            send_resolved: def.send_resolved.unwrap_or(true),
            retry: RetryPolicy {
                backoff: dur(&def.retry_backoff, DEFAULT_RETRY_BACKOFF),
                max_backoff: dur(&def.max_backoff, DEFAULT_MAX_BACKOFF),
                max_retry_age: dur(&def.max_retry_age, DEFAULT_MAX_RETRY_AGE),
            },
            // The loader refuses 0 with its location, so this is the value as written.
            max_in_flight: def
                .max_in_flight
                .as_ref()
                .map_or(DEFAULT_MAX_IN_FLIGHT, |n| **n as usize),
            breaker: BreakerPolicy {
                cool_off: dur(&def.breaker_cool_off, DEFAULT_BREAKER_COOL_OFF),
                max_cool_off: dur(&def.breaker_max_cool_off, DEFAULT_BREAKER_MAX_COOL_OFF),
            },
            kind,
        }
    }
}

/// A duration setting, or its default.
pub(crate) fn dur(d: &Option<Sp<Dur>>, default: Duration) -> Duration {
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
        ReceiverKind::Webhook(w) => Rendered::Json(webhook::body(d, w, external_url)),
        ReceiverKind::Slack(s) => Rendered::Json(slack::body(d, s, templates, &mut errors)),
        ReceiverKind::Email(e) => email::message(d, e, templates, &mut errors),
        ReceiverKind::Console => Rendered::Line(console::lines(d)),
        ReceiverKind::Alertmanager(a) => Rendered::Json(alertmanager::body(d, a, external_url)),
        ReceiverKind::Pagerduty(p) => Rendered::Posts(pagerduty::events(d, p, templates, external_url, &mut errors)),
        ReceiverKind::Msteams(t) => Rendered::Json(msteams::body(d, t, templates, &mut errors)),
    };
    (rendered, errors)
}

/// What a dispatch's sample group looks like to `check`: two alerts (one firing with value
/// and threshold, one resolved), so that every template variable (`alerts` included) has
/// the shape it has at run time.
pub fn sample_dispatch() -> Dispatch {
    let note = |key, instance: &str, status, severity: &str| AlertNote {
        instance: key,
        seq: 1,
        kind: match status {
            Status::Firing => NoteKind::Firing,
            Status::Resolved => NoteKind::Resolved,
        },
        status,
        severity: severity.to_string(),
        labels: Labels::from_pairs([
            ("alertname", "SampleAlert"),
            ("severity", severity),
            ("instance", instance),
        ]),
        annotations: [
            ("summary", format!("SampleAlert on {instance}")),
            ("runbook_url", "https://runbooks.example.com/sample".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        value: Some(91.5),
        threshold: Some(90.0),
        starts_at: Timestamp(1_795_420_800_000),
        ends_at: (status == Status::Resolved).then_some(Timestamp(1_795_421_100_000)),
        at: Timestamp(1_795_421_100_000),
        nodata: false,
        ended_severity: None,
    };
    let alerts = vec![
        note(1, "host-1", Status::Firing, "critical"),
        note(2, "host-2", Status::Resolved, "warning"),
    ];
    Dispatch {
        receiver: "sample".to_string(),
        group_key: "{}:{alertname=\"SampleAlert\"}".to_string(),
        group_labels: [("alertname".to_string(), "SampleAlert".to_string())].into(),
        news: alerts.iter().map(|a| (a.instance, a.kind)).collect(),
        alerts,
        idempotency_key: "sample-1".to_string(),
        at: Timestamp(1_795_421_100_000),
    }
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

/// What a default title says the first alert is: `acknowledged` when that is the news
/// about it (it still fires; receivers keyed by status see `firing`), else its status.
pub fn headline(d: &Dispatch) -> &'static str {
    match d.alerts.first() {
        Some(a) if a.kind == crate::alert::notify::NoteKind::Acknowledged => "acknowledged",
        Some(a) => status_name(a.status),
        None => status_name(d.status()),
    }
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

/// How bad a severity is, for colouring a group by its worst alert: 3 from `critical` up
/// (`page`, `emergency`), 2 from `high` (`major`, `error`), 1 from `warning`, 0 below
/// (`info`) and for names the ranking does not know, which get no alarming colour. Derived
/// from the one ranking, [`crate::alert::severity_order`].
pub fn severity_rank(severity: &str) -> u8 {
    let order = crate::alert::severity_order;
    if !crate::alert::SEVERITY_ORDER
        .iter()
        .any(|s| s.eq_ignore_ascii_case(severity))
    {
        return 0;
    }
    match order(severity) {
        o if o >= order("critical") => 3,
        o if o >= order("high") => 2,
        o if o >= order("warning") => 1,
        _ => 0,
    }
}

/// The [`severity_rank`] of the worst firing alert of `d` (0 when none fires): what Slack's
/// and Teams' colours follow.
pub fn worst_firing_rank(d: &Dispatch) -> u8 {
    d.alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .map(|a| severity_rank(&a.severity))
        .max()
        .unwrap_or(0)
}

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

/// What kind of receiver, with its settings; each kind's module owns its type.
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
    /// PagerDuty Events API v2.
    Pagerduty(Pagerduty),
    /// Microsoft Teams workflow webhook.
    Msteams(Msteams),
}

impl ReceiverKind {
    /// The kind's name as in receiver files.
    pub fn name(&self) -> &'static str {
        match self {
            ReceiverKind::Webhook(_) => "webhook",
            ReceiverKind::Slack(_) => "slack",
            ReceiverKind::Email(_) => "email",
            ReceiverKind::Console => "console",
            ReceiverKind::Alertmanager(_) => "alertmanager",
            ReceiverKind::Pagerduty(_) => "pagerduty",
            ReceiverKind::Msteams(_) => "msteams",
        }
    }

    /// How the outbox hands this kind its messages.
    pub fn delivery(&self) -> Delivery<'_> {
        match self {
            ReceiverKind::Webhook(w) => Delivery::Http(HttpTarget {
                url: Cow::Borrowed(&w.url),
                timeout: w.timeout,
                headers: &w.headers,
                hmac_secret: w.hmac_secret.as_deref(),
            }),
            ReceiverKind::Slack(s) => Delivery::Http(HttpTarget::plain(&s.webhook_url, s.timeout)),
            ReceiverKind::Alertmanager(a) => Delivery::Http(HttpTarget {
                url: Cow::Owned(a.alerts_url()),
                headers: &a.headers,
                ..HttpTarget::plain("", a.timeout)
            }),
            ReceiverKind::Pagerduty(p) => Delivery::Http(HttpTarget::plain(&p.url, p.timeout)),
            ReceiverKind::Msteams(t) => Delivery::Http(HttpTarget::plain(&t.webhook_url, t.timeout)),
            ReceiverKind::Email(e) => Delivery::Email(e),
            ReceiverKind::Console => Delivery::Console,
        }
    }

    /// Delivered firing alerts are re-sent this often (`alertmanager`), with no news.
    pub fn resend(&self) -> Option<Duration> {
        match self {
            ReceiverKind::Alertmanager(a) => Some(a.resend_interval),
            _ => None,
        }
    }
}

/// How a receiver's messages leave: the transports the outbox has.
#[derive(Debug)]
pub enum Delivery<'a> {
    /// JSON POSTed over HTTP.
    Http(HttpTarget<'a>),
    /// An email over SMTP.
    Email(&'a Email),
    /// A line on standard output.
    Console,
}

/// Where and how an HTTP receiver is POSTed to.
#[derive(Debug)]
pub struct HttpTarget<'a> {
    /// The URL (may hold a secret: never logged).
    pub url: Cow<'a, str>,
    /// Request time limit.
    pub timeout: Duration,
    /// Extra request headers (values may be secrets: never logged).
    pub headers: &'a [(String, String)],
    /// Key of the `X-Tocsin-Signature` HMAC-SHA256 of the body.
    pub hmac_secret: Option<&'a str>,
}

impl<'a> HttpTarget<'a> {
    /// A POST to `url` without extra headers or signature.
    fn plain(url: &'a str, timeout: Duration) -> HttpTarget<'a> {
        HttpTarget {
            url: Cow::Borrowed(url),
            timeout,
            headers: &[],
            hmac_secret: None,
        }
    }
}

/// A dispatch formatted for its receiver: what the outbox stores and sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rendered {
    /// A JSON body to POST (webhook, Slack, Alertmanager, Teams).
    Json(String),
    /// JSON bodies POSTed one after another, each answered before the next (PagerDuty: one
    /// event per alert). The message is delivered when every one is accepted; a retry
    /// posts them all again, which the receiver's deduplication (`dedup_key`) absorbs.
    Posts(Vec<String>),
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

/// An alert's `generatorURL`: the alert's own view on the status page,
/// `{external_url}/#/alert/<fingerprint>` (its value plotted with the rule's thresholds,
/// its transitions), where Prometheus links a graph of the expression. The fragment keeps
/// the page at `/`, so the link works behind a proxy that serves tocsin under a path.
pub fn generator_url(external_url: &str, fingerprint: u64) -> String {
    format!(
        "{}/#/alert/{}",
        external_url.trim_end_matches('/'),
        fingerprint_hex(fingerprint)
    )
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

    use crate::alert::notify::NoteKind;
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
    use crate::config::{Source, TlsMode, WebhookFormat, parse_receivers};

    fn compile_with_diagnostics(yaml: &str) -> (Receivers, Vec<Diagnostic>) {
        let env = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        let file = parse_receivers(&Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap(), &env).unwrap();
        let mut diags = Vec::new();
        let r = Receivers::compile(&[("r.yaml".to_string(), file)], &mut diags);
        (r, diags)
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
        let (r, diags) = compile_with_diagnostics(
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
  - name: pd
    pagerduty: { routing_key: "${SECRET}" }
  - name: teams
    max_in_flight: 1
    breaker_cool_off: 5s
    msteams: { webhook_url: "https://example.webhook.office.com/${SECRET}" }
"#,
        );
        let found: Vec<(u64, &str)> = diags.iter().map(|d| (d.line, d.code)).collect();
        assert_eq!(found, [(20, "template"), (25, "duplicate-receiver")], "{diags:?}");
        let names: Vec<&str> = r.list.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hook", "mail", "chat", "am", "con", "pd", "teams"]);
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
        let pd = r.get("pd").unwrap();
        assert_eq!(
            (pd.max_in_flight, pd.breaker),
            (DEFAULT_MAX_IN_FLIGHT, BreakerPolicy::default())
        );
        let ReceiverKind::Pagerduty(p) = &pd.kind else { panic!() };
        assert_eq!(p.routing_key, "s3cret");
        assert_eq!(p.url, pagerduty::DEFAULT_URL);
        assert_eq!(p.severity, pagerduty::default_severity_map());
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        let teams = r.get("teams").unwrap();
        assert_eq!(teams.max_in_flight, 1);
        assert_eq!(teams.breaker.cool_off, Duration::from_secs(5));
        let ReceiverKind::Msteams(t) = &teams.kind else {
            panic!()
        };
        assert_eq!(t.webhook_url, "https://example.webhook.office.com/s3cret");
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
    fn generator_url_links_the_alerts_own_view_on_the_status_page() {
        assert_eq!(
            generator_url("http://tocsin:9470/", 0xb1ef_d309_ff79_8888),
            "http://tocsin:9470/#/alert/b1efd309ff798888"
        );
    }

    #[test]
    fn a_template_failing_at_run_time_still_yields_a_message_and_one_error() {
        // `check` refuses these (the policy compiler renders against sample data); a
        // failure only at run time must still deliver.
        let (r, diags) = compile_with_diagnostics(
            r#"
receivers:
  - name: chat
    slack: { webhook_url: "http://slack", title: "{{ (alerts | length) // 0 }}" }
  - name: mail
    email: { to: [a@x], from: b@x, smtp: { host: h, port: 25 }, subject: "{{ (alerts | length) // 0 }}" }
"#,
        );
        assert_eq!(diags.len(), 2, "{diags:?}");
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
