//! The typed form of a receivers file (`receivers/*.yaml`), as parsed. Every string
//! value is a [`Text`] (after `${ENV}` substitution, secret-aware). Cross-references (route
//! receivers that exist, templates that render) are checked by the integrating pass.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
}

/// A named receiver; exactly one of `webhook`, `slack`, `email`, `console`, `alertmanager`
/// is set (the loader checks it).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverDef {
    /// Receiver name, referenced by routes and `notify:`.
    pub name: Text,
    /// Whether resolutions are sent too (default true).
    #[serde(default)]
    pub send_resolved: Option<bool>,
    /// How long an undelivered notification is retried before it is given up (default 24h).
    #[serde(default)]
    pub max_retry_age: Option<Sp<Dur>>,
    /// Delay before the first retry; it doubles per attempt, with jitter (default 1s).
    #[serde(default)]
    pub retry_backoff: Option<Sp<Dur>>,
    /// Ceiling of the retry delay (default 5m).
    #[serde(default)]
    pub max_backoff: Option<Sp<Dur>>,
    /// Sends to this receiver at once, across its groups (default 128; at least 1). `1`
    /// suits a rate-limited chat webhook such as Slack's.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_in_flight: Option<Sp<u32>>,
    /// How long the circuit breaker holds sends back when it first opens after repeated
    /// failures; each reopening without a success doubles it (default 1s; more than 0).
    #[serde(default)]
    pub breaker_cool_off: Option<Sp<Dur>>,
    /// The longest cool-off of the circuit breaker (default 1m; more than 0).
    #[serde(default)]
    pub breaker_max_cool_off: Option<Sp<Dur>>,
    /// HTTP webhook.
    #[serde(default)]
    pub webhook: Option<WebhookDef>,
    /// Slack incoming webhook.
    #[serde(default)]
    pub slack: Option<SlackDef>,
    /// Email over SMTP.
    #[serde(default)]
    pub email: Option<EmailDef>,
    /// One line per notification on standard output.
    #[serde(default)]
    pub console: Option<ConsoleDef>,
    /// An Alertmanager's `POST /api/v2/alerts`.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerDef>,
}

impl ReceiverDef {
    /// Names of the receiver kinds that are set, in declaration order.
    pub fn kinds(&self) -> Vec<&'static str> {
        let set = [
            ("webhook", self.webhook.is_some()),
            ("slack", self.slack.is_some()),
            ("email", self.email.is_some()),
            ("console", self.console.is_some()),
            ("alertmanager", self.alertmanager.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect()
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
