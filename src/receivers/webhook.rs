//! The `webhook` receiver's two body formats.
//!
//! **`format: alertmanager`** (the default) is exactly the body Alertmanager 0.25 POSTs to
//! a webhook (version `"4"`), same keys in the same order, so consumers written for
//! Alertmanager work unchanged: `receiver`, `status`, `alerts[]` (`status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`), `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `externalURL`, `version`, `groupKey`,
//! `truncatedAlerts`. Times are printed as Go prints them (see
//! [`rfc3339_go`](super::rfc3339_go)); a firing alert's `endsAt` is Go's zero time
//! `0001-01-01T00:00:00Z`; `generatorURL` is tocsin's history of the rule (see
//! [`generator_url`](super::generator_url)); `truncatedAlerts` is always 0 (tocsin never
//! truncates). No key is added: the idempotency key travels in a header.
//!
//! **`format: native`** is tocsin's own JSON, with what Alertmanager's lacks (the kind of
//! news, value, threshold, sequence number):
//!
//! ```json
//! {
//!   "version": "1",
//!   "receiver": "ops-webhook",
//!   "status": "firing",
//!   "group_key": "{}:{alertname=\"HighCpu\"}",
//!   "group_labels": {"alertname": "HighCpu"},
//!   "idempotency_key": "b1efd309ff798888-3",
//!   "alerts": [{
//!     "alertname": "HighCpu",
//!     "status": "firing",
//!     "event": "escalated",
//!     "severity": "critical",
//!     "labels": {"alertname": "HighCpu", "instance": "host-042", "severity": "critical"},
//!     "annotations": {"summary": "CPU on host-042 is 97%"},
//!     "value": 97.0,
//!     "threshold": 90.0,
//!     "starts_at": "2026-11-23T08:22:07.405Z",
//!     "ends_at": null,
//!     "fingerprint": "b1efd309ff798888",
//!     "seq": 3
//!   }]
//! }
//! ```
//!
//! `status` is `firing` or `resolved`; `event` is the alert's latest notification kind
//! (`firing`, `escalated`, `deescalated`, `repeat`, `resolved`, `flapping`); `value` and
//! `threshold` are `null` when absent (or not finite); times are RFC 3339 UTC with
//! milliseconds, `ends_at` is `null` while firing; `fingerprint` is 16 lowercase hex
//! digits. Alerts come firing first, then resolved.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{GO_ZERO_TIME, fingerprint_hex, generator_url, rfc3339_go, rfc3339_millis, status_name, to_json};
use crate::message::{AlertNote, Dispatch, Status};

/// Alertmanager's webhook message (`template.Data` plus the v4 envelope), in its key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AmMessage<'a> {
    receiver: &'a str,
    status: &'static str,
    alerts: Vec<AmAlert<'a>>,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert<'a> {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// The Alertmanager webhook v4 body of `d`.
pub fn alertmanager_body(d: &Dispatch, external_url: &str) -> String {
    let labels: Vec<BTreeMap<String, String>> = d.alerts.iter().map(|a| a.labels.to_map()).collect();
    let common_labels = common(labels.iter());
    let common_annotations = common(d.alerts.iter().map(|a| &a.annotations));
    let alerts = d
        .alerts
        .iter()
        .zip(labels)
        .map(|(a, labels)| AmAlert {
            status: status_name(a.status),
            labels,
            annotations: &a.annotations,
            starts_at: rfc3339_go(a.starts_at),
            ends_at: match a.status {
                Status::Firing => GO_ZERO_TIME.to_string(),
                Status::Resolved => rfc3339_go(a.ends_at.unwrap_or(a.at)),
            },
            generator_url: generator_url(external_url, a.alertname()),
            fingerprint: fingerprint_hex(a.fingerprint),
        })
        .collect();
    to_json(&AmMessage {
        receiver: &d.receiver,
        status: status_name(d.status()),
        alerts,
        group_labels: &d.group_labels,
        common_labels,
        common_annotations,
        external_url,
        version: "4",
        group_key: &d.group_key,
        truncated_alerts: 0,
    })
}

/// The pairs present, with the same value, in every map (Alertmanager's `commonLabels` and
/// `commonAnnotations`); empty when there are no maps.
fn common<'a>(mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

#[derive(Serialize)]
struct Native<'a> {
    version: &'static str,
    receiver: &'a str,
    status: &'static str,
    group_key: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    idempotency_key: &'a str,
    alerts: Vec<NativeAlert<'a>>,
}

#[derive(Serialize)]
struct NativeAlert<'a> {
    alertname: &'a str,
    status: &'static str,
    event: &'static str,
    severity: &'a str,
    labels: BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    value: Option<f64>,
    threshold: Option<f64>,
    starts_at: String,
    ends_at: Option<String>,
    fingerprint: String,
    seq: u64,
}

/// tocsin's native webhook body of `d` (format in the module documentation).
pub fn native_body(d: &Dispatch) -> String {
    to_json(&Native {
        version: "1",
        receiver: &d.receiver,
        status: status_name(d.status()),
        group_key: &d.group_key,
        group_labels: &d.group_labels,
        idempotency_key: &d.idempotency_key,
        alerts: d.alerts.iter().map(native_alert).collect(),
    })
}

fn native_alert(a: &AlertNote) -> NativeAlert<'_> {
    NativeAlert {
        alertname: a.alertname(),
        status: status_name(a.status),
        event: crate::ruletest::note_name(a.kind),
        severity: &a.severity,
        labels: a.labels.to_map(),
        annotations: &a.annotations,
        value: a.value.filter(|v| v.is_finite()),
        threshold: a.threshold.filter(|v| v.is_finite()),
        starts_at: rfc3339_millis(a.starts_at),
        ends_at: a.ends_at.map(rfc3339_millis),
        fingerprint: fingerprint_hex(a.fingerprint),
        seq: a.seq,
    }
}
