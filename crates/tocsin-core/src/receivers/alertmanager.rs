//! The `alertmanager` receiver: the body of an Alertmanager's `POST /api/v2/alerts`.
//!
//! An array of `{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}`, the
//! `postableAlert` of Alertmanager's v2 API. A firing alert's `endsAt` is the dispatch time
//! plus four times the receiver's `resend_interval`, as Prometheus does: the Alertmanager
//! keeps the alert alive only while tocsin keeps re-sending it, and resolves it by itself
//! if tocsin goes away. A resolved alert carries the time it resolved. Times are printed
//! the way Go prints them, as Alertmanager itself does.
//!
//! Alertmanager identifies an alert by its label set, `severity` included. When an alert
//! changes severity (or resolves at a severity this Alertmanager never heard of), the
//! body also posts the label set it knew with `endsAt` = the dispatch time, in the same
//! request that starts the new one: it never holds two severities of one alert, and a
//! resolve ends what it holds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{DEFAULT_RESEND_INTERVAL, DEFAULT_TIMEOUT, dur, generator_url, rfc3339_go, to_json};
use crate::config::AlertmanagerDef;
use crate::message::{Dispatch, Status};

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

impl Alertmanager {
    /// Where alerts are POSTed: `<url>/api/v2/alerts`.
    pub fn alerts_url(&self) -> String {
        format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
    }
}

/// An `alertmanager` definition with its defaults (10 s, re-sent every minute).
pub fn compile(a: &AlertmanagerDef) -> Alertmanager {
    Alertmanager {
        url: a.url.expose().to_string(),
        timeout: dur(&a.timeout, DEFAULT_TIMEOUT),
        resend_interval: dur(&a.resend_interval, DEFAULT_RESEND_INTERVAL),
    }
}

/// How many resend intervals a firing alert is valid for (Prometheus' factor).
const RESEND_FACTOR: u32 = 4;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
}

/// The `POST /api/v2/alerts` body of `d` for Alertmanager receiver `a`.
pub fn body(d: &Dispatch, a: &Alertmanager, external_url: &str) -> String {
    let valid_for = a.resend_interval.saturating_mul(RESEND_FACTOR);
    let mut alerts: Vec<PostableAlert<'_>> = Vec::with_capacity(d.alerts.len());
    for n in &d.alerts {
        let generator = generator_url(external_url, n.fingerprint());
        if let Some(old) = n.ended_labels() {
            alerts.push(PostableAlert {
                labels: old.to_map(),
                annotations: &n.annotations,
                starts_at: rfc3339_go(n.starts_at),
                ends_at: rfc3339_go(d.at),
                generator_url: generator.clone(),
            });
        }
        alerts.push(PostableAlert {
            labels: n.labels.to_map(),
            annotations: &n.annotations,
            starts_at: rfc3339_go(n.starts_at),
            ends_at: rfc3339_go(match n.status {
                Status::Firing => d.at.plus(valid_for),
                Status::Resolved => n.ends_at.unwrap_or(n.at),
            }),
            generator_url: generator,
        });
    }
    to_json(&alerts)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::receivers::testing::*;

    #[test]
    fn firing_alerts_stay_valid_for_four_resend_intervals() {
        let d = dispatch(
            "am",
            vec![
                firing(1, "HighCpu", "critical", &[("host", "a")]),
                resolved(firing(2, "HighCpu", "warning", &[("host", "b")])),
            ],
        );
        let am = Alertmanager {
            url: "http://am:9093".into(),
            timeout: Duration::from_secs(10),
            resend_interval: Duration::from_secs(60),
        };
        let v: Value = serde_json::from_str(&body(&d, &am, "http://tocsin:9470")).unwrap();
        assert_eq!(
            v,
            json!([
                {
                    "labels": {"alertname": "HighCpu", "host": "a", "severity": "critical"},
                    "annotations": {"summary": "HighCpu is bad"},
                    "startsAt": "2026-11-23T08:00:00Z",
                    "endsAt": "2026-11-23T08:04:10Z",
                    "generatorURL": generator_url("http://tocsin:9470", d.alerts[0].fingerprint())
                },
                {
                    "labels": {"alertname": "HighCpu", "host": "b", "severity": "warning"},
                    "annotations": {"summary": "HighCpu is bad"},
                    "startsAt": "2026-11-23T08:00:00Z",
                    "endsAt": "2026-11-23T08:00:06.5Z",
                    "generatorURL": generator_url("http://tocsin:9470", d.alerts[1].fingerprint())
                }
            ])
        );
    }

    #[test]
    fn a_severity_change_ends_the_label_set_alertmanager_knew() {
        let mut escalated = firing(1, "HighCpu", "critical", &[("host", "a")]);
        escalated.ended_severity = Some("warning".into());
        let d = dispatch("am", vec![escalated]);
        let am = Alertmanager {
            url: "http://am:9093".into(),
            timeout: Duration::from_secs(10),
            resend_interval: Duration::from_secs(60),
        };
        let v: Value = serde_json::from_str(&body(&d, &am, "http://tocsin:9470")).unwrap();
        let v = v.as_array().unwrap();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0]["labels"]["severity"], "warning");
        assert_eq!(v[0]["endsAt"], "2026-11-23T08:00:10Z", "ended at the dispatch time");
        assert_eq!(v[1]["labels"]["severity"], "critical");
        assert_eq!(v[1]["endsAt"], "2026-11-23T08:04:10Z");
        assert_eq!(v[0]["labels"]["host"], v[1]["labels"]["host"]);
    }
}
