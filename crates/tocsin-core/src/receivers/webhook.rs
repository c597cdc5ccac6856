//! The `webhook` receiver's two body formats.
//!
//! **`format: alertmanager`** (the default) is exactly the body Alertmanager 0.25 POSTs to
//! a webhook (version `"4"`), same keys in the same order, so consumers written for
//! Alertmanager work unchanged: `receiver`, `status`, `alerts[]` (`status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`), `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `externalURL`, `version`, `groupKey`,
//! `truncatedAlerts`. Times are printed as Go prints them (see
//! [`rfc3339_go`](super::rfc3339_go)); a firing alert's `endsAt` is Go's zero time
//! `0001-01-01T00:00:00Z`; `generatorURL` is the alert's view on tocsin's status page (see
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
use std::time::Duration;

use serde::Serialize;

use super::{DEFAULT_TIMEOUT, dur};
use super::{GO_ZERO_TIME, fingerprint_hex, generator_url, rfc3339_go, rfc3339_millis, status_name, to_json};
use crate::config::{WebhookDef, WebhookFormat};
use crate::message::{AlertNote, Dispatch, Status};
use crate::series::Labels;

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

/// A `webhook` definition with its defaults (format `alertmanager`, 10 s) and secrets
/// exposed; the loader has checked its URL and headers.
pub fn compile(w: &WebhookDef) -> Webhook {
    Webhook {
        url: w.url.expose().to_string(),
        format: w.format.unwrap_or(WebhookFormat::Alertmanager),
        headers: w
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect(),
        hmac_secret: w.hmac_secret.as_ref().map(|t| t.expose().to_string()),
        timeout: dur(&w.timeout, DEFAULT_TIMEOUT),
    }
}

/// The body of `d` in the webhook's format.
pub fn body(d: &Dispatch, w: &Webhook, external_url: &str) -> String {
    match w.format {
        WebhookFormat::Alertmanager => alertmanager_body(d, external_url),
        WebhookFormat::Native => native_body(d),
    }
}

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
///
/// Consumers of this format key on label sets (and their `fingerprint`), as Alertmanager's
/// own do. When an alert's severity changed since the receiver last heard of it, the old
/// label set is listed as `resolved` (ended at the dispatch time) after the firing alerts,
/// as Alertmanager would show the end of that alert; `status` stays `firing` while any
/// alert fires.
pub fn alertmanager_body(d: &Dispatch, external_url: &str) -> String {
    let mut alerts: Vec<AmAlert<'_>> = Vec::with_capacity(d.alerts.len());
    let mut ended = Vec::new();
    for a in &d.alerts {
        let ends_at = match a.status {
            Status::Firing => GO_ZERO_TIME.to_string(),
            Status::Resolved => rfc3339_go(a.ends_at.unwrap_or(a.at)),
        };
        alerts.push(am_alert(a, a.status, &a.labels, ends_at, external_url));
        if let Some(old) = a.ended_labels() {
            ended.push(am_alert(a, Status::Resolved, &old, rfc3339_go(d.at), external_url));
        }
    }
    // Firing first, then resolved, as everywhere in a message.
    let split = alerts
        .iter()
        .position(|a| a.status == "resolved")
        .unwrap_or(alerts.len());
    alerts.splice(split..split, ended);
    let common_labels = common(alerts.iter().map(|a| &a.labels));
    let common_annotations = common(alerts.iter().map(|a| a.annotations));
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

/// One alert of an Alertmanager webhook body: `a` with `labels` (its own, or the label set
/// it ended), as `status`.
fn am_alert<'a>(a: &'a AlertNote, status: Status, labels: &Labels, ends_at: String, external_url: &str) -> AmAlert<'a> {
    AmAlert {
        status: status_name(status),
        labels: labels.to_map(),
        annotations: &a.annotations,
        starts_at: rfc3339_go(a.starts_at),
        ends_at,
        generator_url: generator_url(external_url, labels.fingerprint()),
        fingerprint: fingerprint_hex(labels.fingerprint()),
    }
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
        event: a.kind.name(),
        severity: &a.severity,
        labels: a.labels.to_map(),
        annotations: &a.annotations,
        value: a.value.filter(|v| v.is_finite()),
        threshold: a.threshold.filter(|v| v.is_finite()),
        starts_at: rfc3339_millis(a.starts_at),
        ends_at: a.ends_at.map(rfc3339_millis),
        fingerprint: fingerprint_hex(a.fingerprint()),
        seq: a.seq,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::alert::notify::NoteKind;
    use crate::receivers::testing::*;
    use crate::series::{Labels, Timestamp};

    const FIRING: &str = include_str!("../../../../tests/fixtures/alertmanager/alertmanager-0.25-webhook-firing.json");
    const RESOLVED: &str =
        include_str!("../../../../tests/fixtures/alertmanager/alertmanager-0.25-webhook-resolved.json");
    const TOP_KEYS: &[&str] = &[
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ];
    const ALERT_KEYS: &[&str] = &[
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ];

    fn ms(rfc3339: &str) -> i64 {
        let t = humantime::parse_rfc3339(rfc3339).unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    }

    /// The dispatch that should produce the fixture `fixture` (parsed).
    fn dispatch_like(fixture: &Value) -> Dispatch {
        let a = &fixture["alerts"][0];
        let map = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        };
        let labels = map(&a["labels"]);
        let resolved = a["status"] == "resolved";
        // The fixture's `fingerprint` is not passed in: the body must compute it from the labels.
        let note = AlertNote {
            instance: 7,
            seq: 1,
            kind: if resolved { NoteKind::Resolved } else { NoteKind::Firing },
            status: if resolved { Status::Resolved } else { Status::Firing },
            severity: labels["severity"].clone(),
            labels: Labels::from_pairs(labels.iter()),
            annotations: map(&a["annotations"]),
            value: Some(97.0),
            threshold: Some(90.0),
            starts_at: Timestamp(ms(a["startsAt"].as_str().unwrap())),
            ends_at: resolved.then(|| Timestamp(ms(a["endsAt"].as_str().unwrap()))),
            at: Timestamp(ms("2026-11-23T08:22:13Z")),
            nodata: false,
            ended_severity: None,
        };
        Dispatch {
            receiver: fixture["receiver"].as_str().unwrap().to_string(),
            group_key: fixture["groupKey"].as_str().unwrap().to_string(),
            group_labels: map(&fixture["groupLabels"]),
            news: vec![(note.instance, note.kind)],
            alerts: vec![note],
            idempotency_key: "b1efd309ff798888-1".to_string(),
            at: Timestamp(ms("2026-11-23T08:22:13Z")),
        }
    }

    /// Same JSON types and object keys everywhere, arrays of the same length.
    fn assert_same_shape(ours: &Value, theirs: &Value, path: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                let ka: Vec<&String> = a.keys().collect();
                let kb: Vec<&String> = b.keys().collect();
                assert_eq!(ka, kb, "keys of {path}");
                for (k, v) in a {
                    assert_same_shape(v, &b[k], &format!("{path}.{k}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "length of {path}");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert_same_shape(x, y, &format!("{path}[{i}]"));
                }
            }
            (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Null, Value::Null) => {}
            _ => panic!("{path}: {ours} is not the same type as {theirs}"),
        }
    }

    /// `keys` appear in this order in `text` from `from` on; returns where the last one is.
    fn assert_key_order(text: &str, keys: &[&str], mut from: usize) -> usize {
        for k in keys {
            let at = text[from..]
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("`{k}` missing or out of order in {text}"));
            from += at + 1;
        }
        from
    }

    #[test]
    fn alertmanager_format_matches_what_alertmanager_0_25_sent() {
        for fixture_text in [FIRING, RESOLVED] {
            let fixture: Value = serde_json::from_str(fixture_text).unwrap();
            let d = dispatch_like(&fixture);
            let body = alertmanager_body(&d, "http://vm:9093");
            let ours: Value = serde_json::from_str(&body).unwrap();
            assert_same_shape(&ours, &fixture, "$");
            for text in [fixture_text, body.as_str()] {
                assert_key_order(text, TOP_KEYS, 0);
                assert_key_order(text, ALERT_KEYS, text.find("\"alerts\":[").unwrap());
            }
            // Everything is equal but what cannot be: our clock has milliseconds, and our
            // generatorURL points at tocsin.
            let (mut ours, mut theirs) = (ours, fixture);
            for v in [&mut ours, &mut theirs] {
                let a = v["alerts"][0].as_object_mut().unwrap();
                let starts = a.remove("startsAt").unwrap();
                assert!(starts.as_str().unwrap().starts_with("2026-11-23T08:22:07.405"));
                a.remove("generatorURL");
            }
            assert_eq!(ours, theirs);
            let d_ours: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(d_ours["alerts"][0]["startsAt"], "2026-11-23T08:22:07.405Z");
            assert_eq!(
                d_ours["alerts"][0]["generatorURL"],
                "http://vm:9093/#/alert/b1efd309ff798888"
            );
        }
    }

    #[test]
    fn common_labels_and_annotations_are_those_all_alerts_share() {
        let mut b = firing(2, "HighCpu", "warning", &[("job", "node"), ("host", "b")]);
        b.annotations.insert("summary".into(), "other".into());
        let d = dispatch(
            "hook",
            vec![firing(1, "HighCpu", "critical", &[("job", "node"), ("host", "a")]), b],
        );
        let v: Value = serde_json::from_str(&alertmanager_body(&d, "http://t")).unwrap();
        assert_eq!(v["commonLabels"], json!({"alertname": "HighCpu", "job": "node"}));
        assert_eq!(v["commonAnnotations"], json!({}));
        assert_eq!(v["alerts"][1]["fingerprint"], "68d9ec68f5c2546a");
        let empty: Value = serde_json::from_str(&alertmanager_body(&dispatch("hook", vec![]), "")).unwrap();
        assert_eq!(empty["status"], "resolved");
        assert_eq!(empty["commonLabels"], json!({}));
    }

    #[test]
    fn native_format() {
        let mut a = firing(0xb1ef, "HighCpu", "critical", &[("host", "a")]);
        a.kind = NoteKind::Escalated;
        a.seq = 3;
        let mut b = resolved(firing(2, "HighCpu", "warning", &[("host", "b")]));
        b.value = None;
        b.threshold = Some(f64::NAN);
        let d = dispatch("hook", vec![a, b]);
        let v: Value = serde_json::from_str(&native_body(&d)).unwrap();
        assert_eq!(
            v,
            json!({
                "version": "1",
                "receiver": "hook",
                "status": "firing",
                "group_key": "{}:{alertname=\"HighCpu\"}",
                "group_labels": {"alertname": "HighCpu"},
                "idempotency_key": "00000000000000aa-1",
                "alerts": [
                    {
                        "alertname": "HighCpu",
                        "status": "firing",
                        "event": "escalated",
                        "severity": "critical",
                        "labels": {"alertname": "HighCpu", "host": "a", "severity": "critical"},
                        "annotations": {"summary": "HighCpu is bad"},
                        "value": 97.0,
                        "threshold": 90.0,
                        "starts_at": "2026-11-23T08:00:00.000Z",
                        "ends_at": null,
                        "fingerprint": "7642bbe1736f697d",
                        "seq": 3
                    },
                    {
                        "alertname": "HighCpu",
                        "status": "resolved",
                        "event": "resolved",
                        "severity": "warning",
                        "labels": {"alertname": "HighCpu", "host": "b", "severity": "warning"},
                        "annotations": {"summary": "HighCpu is bad"},
                        "value": null,
                        "threshold": null,
                        "starts_at": "2026-11-23T08:00:00.000Z",
                        "ends_at": "2026-11-23T08:00:06.500Z",
                        "fingerprint": "04f8e89a02e15ef9",
                        "seq": 2
                    }
                ]
            })
        );
    }

    #[test]
    fn alertmanager_format_shows_the_old_severity_resolved() {
        let mut escalated = firing(1, "HighCpu", "critical", &[("host", "a")]);
        escalated.kind = NoteKind::Escalated;
        escalated.ended_severity = Some("warning".into());
        let gone = resolved(firing(2, "HighCpu", "warning", &[("host", "b")]));
        let d = dispatch("hook", vec![escalated, gone]);
        let v: Value = serde_json::from_str(&alertmanager_body(&d, "http://t")).unwrap();
        assert_eq!(v["status"], "firing");
        let alerts = v["alerts"].as_array().unwrap();
        let summary: Vec<(&str, &str, &str, &str)> = alerts
            .iter()
            .map(|a| {
                (
                    a["status"].as_str().unwrap(),
                    a["labels"]["host"].as_str().unwrap(),
                    a["labels"]["severity"].as_str().unwrap(),
                    a["endsAt"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("firing", "a", "critical", GO_ZERO_TIME),
                ("resolved", "a", "warning", "2026-11-23T08:00:10Z"),
                ("resolved", "b", "warning", "2026-11-23T08:00:06.5Z"),
            ]
        );
        assert_eq!(alerts[0]["fingerprint"], "7642bbe1736f697d");
        let old = Labels::from_pairs([("alertname", "HighCpu"), ("host", "a"), ("severity", "warning")]);
        assert_eq!(alerts[1]["fingerprint"], fingerprint_hex(old.fingerprint()));
        assert_eq!(v["commonLabels"], json!({"alertname": "HighCpu"}));
    }
}
