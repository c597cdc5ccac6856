//! The `alertmanager` receiver: the body of an Alertmanager's `POST /api/v2/alerts`.
//!
//! An array of `{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}`, the
//! `postableAlert` of Alertmanager's v2 API. A firing alert's `endsAt` is the dispatch time
//! plus four times the receiver's `resend_interval`, as Prometheus does: the Alertmanager
//! keeps the alert alive only while tocsin keeps re-sending it, and resolves it by itself
//! if tocsin goes away. A resolved alert carries the time it resolved. Times are printed
//! the way Go prints them, as Alertmanager itself does.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Alertmanager, generator_url, rfc3339_go, to_json};
use crate::message::{Dispatch, Status};

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
    let alerts: Vec<PostableAlert<'_>> = d
        .alerts
        .iter()
        .map(|n| PostableAlert {
            labels: n.labels.to_map(),
            annotations: &n.annotations,
            starts_at: rfc3339_go(n.starts_at),
            ends_at: rfc3339_go(match n.status {
                Status::Firing => d.at.plus(valid_for),
                Status::Resolved => n.ends_at.unwrap_or(n.at),
            }),
            generator_url: generator_url(external_url, n.alertname()),
        })
        .collect();
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
                    "generatorURL": "http://tocsin:9470/api/v1/history?rule=HighCpu"
                },
                {
                    "labels": {"alertname": "HighCpu", "host": "b", "severity": "warning"},
                    "annotations": {"summary": "HighCpu is bad"},
                    "startsAt": "2026-11-23T08:00:00Z",
                    "endsAt": "2026-11-23T08:00:06.5Z",
                    "generatorURL": "http://tocsin:9470/api/v1/history?rule=HighCpu"
                }
            ])
        );
    }
}
