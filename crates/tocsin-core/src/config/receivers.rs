//! The typed form of a receivers file (`receivers/*.yaml`), as parsed. Every string
//! value is a [`Text`] (after `${ENV}` substitution, secret-aware). Cross-references (route
//! receivers that exist, templates that render) are checked by the policy compiler
//! (`crate::policy`); that a receiver has exactly one kind is [`ReceiverDef`]'s type.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::intervals::TimeIntervalDef;
use super::value::{Dur, MatchValue, Sp, Text};
use crate::diag::Diagnostic;

/// A receivers file: receivers, routes and inhibit rules.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tocsin receivers file")]
pub struct ReceiverFile {
    /// Where notifications can go.
    #[serde(default)]
    pub receivers: Vec<Sp<ReceiverDef>>,
    /// Which notifications go where, first match first (see `continue`).
    #[serde(default)]
    pub routes: Vec<Sp<RouteDef>>,
    /// Mute targets while a source fires.
    #[serde(default)]
    pub inhibit_rules: Vec<Sp<InhibitDef>>,
    /// Named periods that routes mute or activate by (Alertmanager's syntax).
    #[serde(default)]
    pub time_intervals: Vec<Sp<TimeIntervalDef>>,
}

/// A named receiver: the settings every kind shares, and its one [`ReceiverKindDef`].
///
/// In YAML the kind is a key beside the common ones (`- name: x` / `webhook: {...}`). It is
/// read through [`RawReceiverDef`] rather than `#[serde(flatten)]`: serde buffers a
/// flattened value, and serde-saphyr loses every line and column inside a buffered value,
/// so durations and URLs of the kind could no longer be reported where they are written.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "RawReceiverDef", into = "RawReceiverDef")]
pub struct ReceiverDef {
    /// Receiver name, referenced by routes and `notify:`.
    pub name: Text,
    /// Whether resolutions are sent too (default true).
    pub send_resolved: Option<bool>,
    /// How long an undelivered notification is retried before it is given up (default 24h).
    pub max_retry_age: Option<Sp<Dur>>,
    /// Delay before the first retry; it doubles per attempt, with jitter (default 1s).
    pub retry_backoff: Option<Sp<Dur>>,
    /// Ceiling of the retry delay (default 5m).
    pub max_backoff: Option<Sp<Dur>>,
    /// Sends to this receiver at once, across its groups (default 128; at least 1).
    pub max_in_flight: Option<Sp<u32>>,
    /// The circuit breaker's first cool-off (default 1s; more than 0).
    pub breaker_cool_off: Option<Sp<Dur>>,
    /// The circuit breaker's longest cool-off (default 1m; more than 0).
    pub breaker_max_cool_off: Option<Sp<Dur>>,
    /// What kind of receiver it is, with the kind's own settings.
    pub kind: ReceiverKindDef,
}

/// The kind of a receiver, with its settings: exactly one per receiver, by construction.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverKindDef {
    /// HTTP webhook.
    Webhook(WebhookDef),
    /// Slack incoming webhook.
    Slack(SlackDef),
    /// Email over SMTP.
    Email(EmailDef),
    /// One line per notification on standard output.
    Console(ConsoleDef),
    /// An Alertmanager's `POST /api/v2/alerts`.
    Alertmanager(AlertmanagerDef),
    /// PagerDuty Events API v2.
    Pagerduty(PagerdutyDef),
    /// Microsoft Teams workflow webhook.
    Msteams(MsteamsDef),
}

/// What separates a refusal of a receiver's kinds from the list of kinds, so the loader
/// can give the list as the diagnostic's hint.
pub(crate) const KIND_HINT: &str = "; give exactly one of ";

/// The YAML keys of the receiver kinds, in the order the hint lists them.
pub const RECEIVER_KINDS: [&str; 7] = [
    "webhook",
    "slack",
    "email",
    "console",
    "alertmanager",
    "pagerduty",
    "msteams",
];

impl ReceiverKindDef {
    /// The kind's key in receiver files.
    pub fn name(&self) -> &'static str {
        match self {
            ReceiverKindDef::Webhook(_) => "webhook",
            ReceiverKindDef::Slack(_) => "slack",
            ReceiverKindDef::Email(_) => "email",
            ReceiverKindDef::Console(_) => "console",
            ReceiverKindDef::Alertmanager(_) => "alertmanager",
            ReceiverKindDef::Pagerduty(_) => "pagerduty",
            ReceiverKindDef::Msteams(_) => "msteams",
        }
    }

    /// The URLs the receiver sends to, by key, so the loader checks them all alike.
    pub fn urls(&self) -> Vec<(&'static str, &Text)> {
        match self {
            ReceiverKindDef::Webhook(w) => vec![("url", &w.url)],
            ReceiverKindDef::Slack(s) => vec![("webhook_url", &s.webhook_url)],
            // Checked with the rest of its endpoints: `alertmanager_endpoints`.
            ReceiverKindDef::Alertmanager(_) => Vec::new(),
            ReceiverKindDef::Pagerduty(p) => p.url.iter().map(|u| ("url", u)).collect(),
            ReceiverKindDef::Msteams(t) => vec![("webhook_url", &t.webhook_url)],
            ReceiverKindDef::Email(_) | ReceiverKindDef::Console(_) => Vec::new(),
        }
    }
}

/// A receiver as written: the common settings and one optional key per kind. Only the
/// schema and the conversion into [`ReceiverDef`] see it, which refuses none or several
/// kinds.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReceiverDef")]
pub struct RawReceiverDef {
    /// Receiver name, referenced by routes and `notify:`.
    pub name: Text,
    /// Whether resolutions are sent too (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    /// How long an undelivered notification is retried before it is given up (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_age: Option<Sp<Dur>>,
    /// Delay before the first retry; it doubles per attempt, with jitter (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<Sp<Dur>>,
    /// Ceiling of the retry delay (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Sp<Dur>>,
    /// Sends to this receiver at once, across its groups (default 128; at least 1). `1`
    /// suits a rate-limited chat webhook such as Slack's or Teams'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_in_flight: Option<Sp<u32>>,
    /// How long the circuit breaker holds sends back when it first opens after repeated
    /// failures; each reopening without a success doubles it (default 1s; more than 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_cool_off: Option<Sp<Dur>>,
    /// The longest cool-off of the circuit breaker (default 1m; more than 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_max_cool_off: Option<Sp<Dur>>,
    /// HTTP webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookDef>,
    /// Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackDef>,
    /// Email over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDef>,
    /// One line per notification on standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleDef>,
    /// An Alertmanager's `POST /api/v2/alerts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerDef>,
    /// PagerDuty Events API v2: `trigger` and `resolve` events, `dedup_key` = fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerdutyDef>,
    /// Microsoft Teams workflow webhook: an Adaptive Card per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteams: Option<MsteamsDef>,
}

impl TryFrom<RawReceiverDef> for ReceiverDef {
    type Error = String;

    fn try_from(raw: RawReceiverDef) -> Result<ReceiverDef, String> {
        let mut kinds = Vec::new();
        kinds.extend(raw.webhook.map(ReceiverKindDef::Webhook));
        kinds.extend(raw.slack.map(ReceiverKindDef::Slack));
        kinds.extend(raw.email.map(ReceiverKindDef::Email));
        kinds.extend(raw.console.map(ReceiverKindDef::Console));
        kinds.extend(raw.alertmanager.map(ReceiverKindDef::Alertmanager));
        kinds.extend(raw.pagerduty.map(ReceiverKindDef::Pagerduty));
        kinds.extend(raw.msteams.map(ReceiverKindDef::Msteams));
        let one_of = RECEIVER_KINDS.map(|k| format!("`{k}`")).join(", ");
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(ReceiverKindDef::name).collect();
            return Err(format!(
                "receiver `{}` has several kinds: {}{KIND_HINT}{one_of}",
                raw.name,
                names.join(", ")
            ));
        }
        let Some(kind) = kinds.pop() else {
            return Err(format!("receiver `{}` has no kind{KIND_HINT}{one_of}", raw.name));
        };
        Ok(ReceiverDef {
            name: raw.name,
            send_resolved: raw.send_resolved,
            max_retry_age: raw.max_retry_age,
            retry_backoff: raw.retry_backoff,
            max_backoff: raw.max_backoff,
            max_in_flight: raw.max_in_flight,
            breaker_cool_off: raw.breaker_cool_off,
            breaker_max_cool_off: raw.breaker_max_cool_off,
            kind,
        })
    }
}

impl From<ReceiverDef> for RawReceiverDef {
    fn from(def: ReceiverDef) -> RawReceiverDef {
        let mut raw = RawReceiverDef {
            name: def.name,
            send_resolved: def.send_resolved,
            max_retry_age: def.max_retry_age,
            retry_backoff: def.retry_backoff,
            max_backoff: def.max_backoff,
            max_in_flight: def.max_in_flight,
            breaker_cool_off: def.breaker_cool_off,
            breaker_max_cool_off: def.breaker_max_cool_off,
            ..RawReceiverDef::default()
        };
        match def.kind {
            ReceiverKindDef::Webhook(k) => raw.webhook = Some(k),
            ReceiverKindDef::Slack(k) => raw.slack = Some(k),
            ReceiverKindDef::Email(k) => raw.email = Some(k),
            ReceiverKindDef::Console(k) => raw.console = Some(k),
            ReceiverKindDef::Alertmanager(k) => raw.alertmanager = Some(k),
            ReceiverKindDef::Pagerduty(k) => raw.pagerduty = Some(k),
            ReceiverKindDef::Msteams(k) => raw.msteams = Some(k),
        }
        raw
    }
}

impl JsonSchema for ReceiverDef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        RawReceiverDef::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawReceiverDef::json_schema(generator)
    }
}

/// Body format of a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Alertmanager webhook v4 JSON (the default).
    Alertmanager,
    /// tocsin's own JSON.
    Native,
}

/// HTTP webhook receiver.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookDef {
    /// Where to POST.
    pub url: Text,
    /// Body format (default `alertmanager`).
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// Adds `X-Tocsin-Signature: sha256=<hex>` of the body.
    #[serde(default)]
    pub hmac_secret: Option<Text>,
    /// Request time limit (default 10s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
}

/// Slack incoming-webhook receiver.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackDef {
    /// The incoming webhook URL.
    pub webhook_url: Text,
    /// Channel override.
    #[serde(default)]
    pub channel: Option<Text>,
    /// Title template.
    #[serde(default)]
    pub title: Option<Text>,
    /// Text template.
    #[serde(default)]
    pub text: Option<Text>,
    /// Request time limit (default 10s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
}

/// Email receiver.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailDef {
    /// Recipients.
    pub to: Vec<Text>,
    /// Sender address.
    pub from: Text,
    /// SMTP server.
    pub smtp: SmtpDef,
    /// Subject template.
    #[serde(default)]
    pub subject: Option<Text>,
    /// Time limit of one SMTP transaction (default 10s).
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
}

/// SMTP connection settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpDef {
    /// Server host name.
    pub host: Text,
    /// Server port.
    pub port: Sp<u16>,
    /// Transport security (default `starttls`).
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Login user.
    #[serde(default)]
    pub username: Option<Text>,
    /// Login password.
    #[serde(default)]
    pub password: Option<Text>,
}

/// SMTP transport security.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text.
    None,
    /// Upgrade with STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// The console receiver has no settings: `console: {}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleDef {}

/// Alertmanager receiver: one Alertmanager (`url`) or every peer of a cluster (`urls`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerDef {
    /// Base URL of one Alertmanager (give this or `urls`).
    #[serde(default)]
    pub url: Option<Text>,
    /// Base URLs of every peer of an Alertmanager cluster: each gets every alert, as its
    /// own delivery stream with its own retries and circuit breaker, so a dead peer delays
    /// no other (give this or `url`).
    #[serde(default)]
    pub urls: Vec<Text>,
    /// Extra request headers, e.g. `X-Scope-OrgID` for a multi-tenant Mimir Alertmanager.
    #[serde(default)]
    pub headers: BTreeMap<String, Text>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<Text>,
    /// HTTP basic authentication.
    #[serde(default)]
    pub basic_auth: Option<super::BasicAuth>,
    /// Request time limit.
    #[serde(default)]
    pub timeout: Option<Sp<Dur>>,
    /// How often firing alerts are re-sent (default 1m); each one is sent with an `endsAt`
    /// four intervals ahead, so the Alertmanager resolves it if tocsin stops sending.
    #[serde(default)]
    pub resend_interval: Option<Sp<Dur>>,
}

/// PagerDuty receiver (Events API v2).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyDef {
    /// The integration's routing key (a secret: write it as `${PD_ROUTING_KEY}`).
    pub routing_key: Text,
    /// Where events are POSTed (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Text>,
    /// tocsin severity → PagerDuty severity (`critical`, `error`, `warning`, `info`); a
    /// severity the map does not name is sent as `info`. Default: `emergency` and `critical`
    /// → `critical`, `high` → `error`, `warning` → `warning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<BTreeMap<String, Sp<PagerdutySeverity>>>,
    /// Summary template (default: alert name, severity and the `summary` annotation); cut to
    /// PagerDuty's 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    /// Source template: the affected system (default: the `instance` label, else the
    /// alert name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    /// Component template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Text>,
    /// Group template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Text>,
    /// Class template (default: the alert name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Text>,
    /// Extra `custom_details`, each value a template; the labels, annotations, value and
    /// threshold are always there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Text>,
    /// Request time limit (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Sp<Dur>>,
}

/// A PagerDuty event severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PagerdutySeverity {
    /// `critical`.
    Critical,
    /// `error`.
    Error,
    /// `warning`.
    Warning,
    /// `info`.
    Info,
}

/// Microsoft Teams receiver: a Teams workflow ("Post to a channel when a webhook request
/// is received") webhook.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MsteamsDef {
    /// The workflow's webhook URL (a secret: write it as `${TEAMS_WEBHOOK_URL}`).
    pub webhook_url: Text,
    /// Title template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// Text template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    /// Request time limit (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Sp<Dur>>,
}

/// A route: notifications whose labels match go to `receivers`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    /// Label matchers; absent or empty matches everything.
    #[serde(default, rename = "match")]
    pub r#match: BTreeMap<String, MatchValue>,
    /// Receiver names.
    #[serde(default)]
    pub receivers: Vec<Text>,
    /// Labels that split notifications into groups.
    #[serde(default)]
    pub group_by: Vec<Text>,
    /// Wait before the first notification of a new group.
    #[serde(default)]
    pub group_wait: Option<Sp<Dur>>,
    /// Wait between notifications of a group that changed.
    #[serde(default)]
    pub group_interval: Option<Sp<Dur>>,
    /// Re-send interval for an unchanged group.
    #[serde(default)]
    pub repeat_interval: Option<Sp<Dur>>,
    /// Go on matching the following routes.
    #[serde(default, rename = "continue")]
    pub r#continue: bool,
    /// Names of `time_intervals` during which the route's notifications are held.
    #[serde(default)]
    pub mute_time_intervals: Vec<Text>,
    /// Names of `time_intervals` outside which the route's notifications are held.
    #[serde(default)]
    pub active_time_intervals: Vec<Text>,
}

/// An inhibit rule: while a `source` alert fires, matching `target` alerts are muted when
/// they agree on the `equal` labels.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InhibitDef {
    /// Matchers of the muting alert.
    #[serde(default)]
    pub source: BTreeMap<String, MatchValue>,
    /// Matchers of the muted alerts.
    #[serde(default)]
    pub target: BTreeMap<String, MatchValue>,
    /// Labels that must be equal in source and target.
    #[serde(default)]
    pub equal: Vec<Text>,
}

impl AlertmanagerDef {
    /// The configured URLs: `url`, then `urls`.
    pub fn all_urls(&self) -> impl Iterator<Item = &Text> {
        self.url.iter().chain(&self.urls)
    }
}

/// Checks of an `alertmanager` receiver at `at` (its name): exactly one of `url` and
/// `urls` (non-empty), every URL absolute http(s), headers the HTTP client takes, at most
/// one of `bearer_token` and `basic_auth`.
pub(super) fn alertmanager_endpoints(path: &str, text: &str, am: &AlertmanagerDef, at: &Text) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let key = if am.url.is_some() { "url" } else { "urls" };
    for url in am.all_urls() {
        diags.extend(super::validate::text_url(path, key, url));
    }
    if am.url.is_some() != am.urls.is_empty() {
        diags.push(
            Diagnostic::error(
                path,
                at.line(),
                at.column(),
                "alertmanager-url",
                if am.url.is_some() {
                    "give `url` or `urls`, not both"
                } else {
                    "an `alertmanager` receiver needs `url` or `urls`"
                },
            )
            .with_hint("`urls: [http://am-1:9093, http://am-2:9093]` sends to every peer of a cluster"),
        );
    }
    diags.extend(super::engine::endpoint_auth(
        path,
        text,
        &am.headers,
        &am.basic_auth,
        &am.bearer_token,
        at,
    ));
    diags
}
