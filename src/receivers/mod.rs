//! Receivers: turning a routed [`Dispatch`] into what a receiver is sent.
//!
//! Owns the compiled receiver definitions ([`Receiver`]: durations are `Duration`s, secrets
//! resolved, templates compiled) and the pure formatting of a dispatch into a [`Rendered`]
//! message per kind: Alertmanager webhook v4 and native JSON (`webhook`), Block Kit
//! (`slack`), multipart text + HTML (`email`), `POST /api/v2/alerts` bodies
//! (`alertmanager`) and the console line. It never decides *whether* to notify
//! (`engine::notify`), *whom* (`route`) or *when to retry* (`outbox`), and it performs no
//! I/O: the outbox sends what these functions return.

pub mod console;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{TlsMode, WebhookFormat};
use crate::template::{TemplateRef, Templates};

/// Default `max_retry_age` (SPEC §4).
pub const DEFAULT_MAX_RETRY_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default first retry delay.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// Default ceiling of the retry delay.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Default request time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default re-send interval of firing alerts to an Alertmanager (Prometheus' `resend_delay`).
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// Every receiver of the running policy, with the templates their messages use.
#[derive(Debug, Default)]
pub struct Receivers {
    /// In file order; names are unique (`check` guarantees it).
    pub list: Vec<Receiver>,
    /// Compiled `title`/`text`/`subject` templates.
    pub templates: Templates,
}

impl Receivers {
    /// The receiver called `name`.
    pub fn get(&self, name: &str) -> Option<&Receiver> {
        self.list.iter().find(|r| r.name == name)
    }
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
    /// Kind-specific settings.
    pub kind: ReceiverKind,
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
