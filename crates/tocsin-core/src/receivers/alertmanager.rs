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
//!
//! A receiver with several `urls` (the peers of a cluster) becomes one delivery stream per
//! peer ([`streams`]): each has its own outbox entries, retries and circuit breaker, so a
//! peer that is down delays no other, and every peer gets every alert (the cluster
//! de-duplicates). The body is the same for every peer.

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
    /// Extra request headers, credentials as `Authorization` (values are secrets: never
    /// logged).
    pub headers: Vec<(String, String)>,
}

impl Alertmanager {
    /// Where alerts are POSTed: `<url>/api/v2/alerts`.
    pub fn alerts_url(&self) -> String {
        format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
    }
}

/// An `alertmanager` definition with its defaults (10 s, re-sent every minute), for its
/// first URL; credentials become an `Authorization` header.
pub fn compile(def: &AlertmanagerDef) -> Alertmanager {
    let mut headers: Vec<(String, String)> = def
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect();
    let basic = def
        .basic_auth
        .as_ref()
        .map(|b| (b.username.expose(), b.password.expose()));
    if let Some(auth) = crate::config::authorization(basic, def.bearer_token.as_ref().map(|t| t.expose())) {
        headers.push(("Authorization".into(), auth));
    }
    Alertmanager {
        url: def
            .all_urls()
            .next()
            .map_or_else(String::new, |u| u.expose().to_string()),
        timeout: dur(&def.timeout, DEFAULT_TIMEOUT),
        resend_interval: dur(&def.resend_interval, DEFAULT_RESEND_INTERVAL),
        headers,
    }
}

/// The delivery streams of the `alertmanager` receiver `name`: `(stream name, settings)`
/// per URL. One URL keeps the receiver's name (so entries queued by an earlier release
/// still find their receiver); several are named `name@host:port` (`name@1`, `name@2`, … in
/// `urls` order when two share a host and port), the names the outbox, its metrics and
/// `/api/v1/outbox` show. Credentials become an `Authorization` header.
pub fn streams(name: &str, def: &AlertmanagerDef) -> Vec<(String, Alertmanager)> {
    let base = compile(def);
    let settings = |url: &str| Alertmanager {
        url: url.to_string(),
        ..base.clone()
    };
    let urls: Vec<&str> = def.all_urls().map(|u| u.expose()).collect();
    if urls.len() <= 1 {
        return urls.iter().map(|u| (name.to_string(), settings(u))).collect();
    }
    let hosts: Vec<Option<String>> = urls.iter().map(|u| host_port(u)).collect();
    let distinct = hosts.iter().all(Option::is_some)
        && hosts.iter().collect::<std::collections::BTreeSet<_>>().len() == hosts.len();
    urls.iter()
        .zip(&hosts)
        .enumerate()
        .map(|(i, (url, host))| {
            let tag = match host {
                Some(h) if distinct => h.clone(),
                _ => (i + 1).to_string(),
            };
            (format!("{name}@{tag}"), settings(url))
        })
        .collect()
}

/// `host:port` of a URL (the scheme's port when it has none), without user info or path.
fn host_port(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
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
            headers: Vec::new(),
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
            headers: Vec::new(),
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

    fn def(yaml: &str) -> AlertmanagerDef {
        let file = crate::config::parse_receivers(
            &crate::config::Source::from_text(
                "r.yaml",
                format!("receivers:\n  - name: am\n    alertmanager: {yaml}\n"),
            )
            .unwrap(),
            &|name| (name == "AM_PASSWORD").then(|| "pw".to_string()),
        )
        .unwrap();
        match &file.receivers[0].kind {
            crate::config::ReceiverKindDef::Alertmanager(a) => a.clone(),
            other => panic!("not an alertmanager: {other:?}"),
        }
    }

    #[test]
    fn each_peer_of_a_cluster_is_a_stream_of_its_own() {
        let one = streams("am", &def("{ url: 'http://am:9093' }"));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, "am", "one URL keeps the receiver's name");
        let two = streams(
            "am",
            &def(
                "{ urls: ['http://a:9093', 'http://b:9094/'], headers: { X-Scope-OrgID: t }, basic_auth: { username: u, password: '${AM_PASSWORD}' } }",
            ),
        );
        let names: Vec<&str> = two.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["am@a:9093", "am@b:9094"]);
        assert_eq!(two[1].1.url, "http://b:9094/");
        assert_eq!(
            two[0].1.headers,
            [
                ("X-Scope-OrgID".to_string(), "t".to_string()),
                ("Authorization".to_string(), "Basic dTpwdw==".to_string())
            ]
        );
        let same_host = streams("am", &def("{ urls: ['http://m:80/a', 'http://m/b'] }"));
        let names: Vec<&str> = same_host.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["am@1", "am@2"]);
    }

    #[test]
    fn url_and_urls_are_exclusive_and_one_is_needed() {
        let parse = |yaml: &str| {
            crate::config::parse_receivers(
                &crate::config::Source::from_text(
                    "r.yaml",
                    format!("receivers:\n  - name: am\n    alertmanager: {yaml}\n"),
                )
                .unwrap(),
                &|_| None,
            )
        };
        let both = parse("{ url: 'http://a', urls: ['http://b'] }").unwrap_err();
        assert!(both[0].message.contains("not both"), "{both:?}");
        let none = parse("{ resend_interval: 1m }").unwrap_err();
        assert!(none[0].message.contains("needs `url` or `urls`"), "{none:?}");
        let bad = parse("{ urls: ['http://a', 'ftp://b'] }").unwrap_err();
        assert_eq!(bad.len(), 1, "{bad:?}");
        let auth = parse("{ url: 'http://a', bearer_token: x, basic_auth: { username: u, password: p } }").unwrap_err();
        assert!(auth[0].message.contains("not both"), "{auth:?}");
    }
}
