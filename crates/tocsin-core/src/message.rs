//! What a notification carries from the engine to receivers: [`AlertNote`] (one alert's
//! news, everything rendered), [`Dispatch`] (one message for one receiver, after routing,
//! grouping, inhibition and silences) and [`Silence`].
//!
//! Plain serializable data shared by `route` (which produces dispatches, purely),
//! `receivers` (which formats them) and `outbox` (which delivers them). No logic that
//! decides anything lives here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::notify::NoteKind;
use crate::series::{Labels, Timestamp};

/// Whether an alert is firing or resolved, as receivers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Firing at some severity.
    Firing,
    /// No longer firing.
    Resolved,
}

/// One alert instance's notification, with everything a receiver may print.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertNote {
    /// Which alert this is, whatever its severity: the [`Labels::state_key`] of its labels
    /// without `severity`. It keys the dispatcher's groups and delivered states, so an
    /// escalation is news about the same alert; never shown (receivers show
    /// [`AlertNote::fingerprint`]). Rows persisted before the rename call it `fingerprint`.
    #[serde(alias = "fingerprint")]
    pub instance: u64,
    /// The instance's notification sequence number: with the fingerprint, the
    /// idempotency key of a single-alert message.
    pub seq: u64,
    /// What the engine said.
    pub kind: NoteKind,
    /// Firing or resolved.
    pub status: Status,
    /// Severity it fires (or fired) at.
    pub severity: String,
    /// Full labels, including `alertname` and `severity`.
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: BTreeMap<String, String>,
    /// The expression's value at the notification, when it had one.
    pub value: Option<f64>,
    /// The threshold of the tier (numeric tiers only).
    pub threshold: Option<f64>,
    /// Start of the firing episode.
    pub starts_at: Timestamp,
    /// When it resolved (resolved notes only).
    pub ends_at: Option<Timestamp>,
    /// When the engine emitted the notification.
    pub at: Timestamp,
    /// Raised by `no_data: alert`: a flag (template variable `nodata`, annotation
    /// `nodata: "true"`), never a label, so the episode's resolve carries the labels of
    /// its firing.
    #[serde(default)]
    pub nodata: bool,
    /// Set by the dispatcher, per receiver: the severity that receiver was last told this
    /// alert fires at, when this message changes it (an escalation, a de-escalation, or a
    /// resolve of a change it never heard of). Receivers that key on labels end that label
    /// set ([`AlertNote::ended_labels`]) in the same message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_severity: Option<String>,
}

impl AlertNote {
    /// The alert's name (`alertname` label).
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// Alertmanager's fingerprint of the labels as sent: what every receiver, the API and
    /// idempotency keys show.
    pub fn fingerprint(&self) -> u64 {
        self.labels.fingerprint()
    }

    /// The label set that ends with this message ([`AlertNote::ended_severity`]): the
    /// labels at the severity the receiver knew.
    pub fn ended_labels(&self) -> Option<Labels> {
        self.ended_severity.as_ref().map(|s| {
            let mut l = self.labels.clone();
            l.set("severity", s);
            l
        })
    }
}

/// One message for one receiver: a group's alerts at a flush.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The receiver's name.
    pub receiver: String,
    /// Alertmanager-style group key, e.g. `{}:{alertname="HighCpu"}`.
    pub group_key: String,
    /// The `group_by` labels' values of this group.
    pub group_labels: BTreeMap<String, String>,
    /// Every alert the message carries: firing ones first, then resolved ones.
    pub alerts: Vec<AlertNote>,
    /// Stable across retries and restarts: group hash + counter (for a single-alert group,
    /// the alert's [`AlertNote::fingerprint`] and `seq`).
    pub idempotency_key: String,
    /// When the flush happened.
    pub at: Timestamp,
    /// The alerts this message brings news of, with the kind of news (what `tocsin test`
    /// compares against `receiver:` expectations), by [`AlertNote::instance`]; a subset of
    /// `alerts`.
    pub news: Vec<(u64, NoteKind)>,
}

impl Dispatch {
    /// `firing` when any alert fires, else `resolved` (Alertmanager's group status).
    pub fn status(&self) -> Status {
        if self.alerts.iter().any(|a| a.status == Status::Firing) {
            Status::Firing
        } else {
            Status::Resolved
        }
    }
}

/// One matcher of a silence, in Alertmanager's v2 API shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value, or an anchored regex when `is_regex`.
    pub value: String,
    /// Treat `value` as a regex (anchored at both ends).
    #[serde(default, rename = "isRegex", alias = "is_regex")]
    pub is_regex: bool,
    /// `false` negates the matcher.
    #[serde(default = "yes", rename = "isEqual", alias = "is_equal")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence: mutes matching alerts between `starts_at` and `ends_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique id (assigned on creation).
    pub id: String,
    /// All must match for an alert to be muted.
    pub matchers: Vec<SilenceMatcher>,
    /// Start of the muting window.
    pub starts_at: Timestamp,
    /// End of the muting window (exclusive).
    pub ends_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_persisted_by_earlier_releases_still_load() {
        // A dispatcher row's note as the release before `instance` wrote it: the key was
        // called `fingerprint`, and there was no `nodata` or `ended_severity`.
        let old = r#"{"fingerprint":12345,"seq":2,"kind":"Firing","status":"firing","severity":"warning",
            "labels":{"alertname":"A","severity":"warning"},"annotations":{},"value":1.0,
            "threshold":null,"starts_at":0,"ends_at":null,"at":0}"#;
        let n: AlertNote = serde_json::from_str(old).unwrap();
        assert_eq!(
            (n.instance, n.seq, n.nodata, n.ended_severity.as_deref()),
            (12345, 2, false, None)
        );
        assert_eq!(n.fingerprint(), n.labels.fingerprint());
        let again: AlertNote = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(again, n);
    }
}
