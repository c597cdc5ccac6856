//! Alert identity end to end: one fingerprint (Alertmanager's, over the labels as sent) in
//! the API, history and webhook bodies; severity changes that end the old label set in a
//! real Alertmanager; re-sends with fresh annotations; `nodata` as a flag, never a label.
//!
//! The Alertmanager tests start Debian's `prometheus-alertmanager` on 127.0.0.1. Without
//! the binary they are skipped, unless `CI` is set: then a missing binary fails them.

use crate::common;
use crate::common::{peers, recorder};

use std::time::Duration;

use common::*;
use peers::{Cluster, Peer, alertmanager};
use recorder::Recorder;
use serde_json::Value;

const S10: Duration = Duration::from_secs(10);

fn webhook_receivers(http: &Recorder) -> String {
    format!(
        "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n",
        http.url("/hook")
    )
}

/// Every alert of every webhook body received so far, in order.
fn hook_alerts(http: &Recorder) -> Vec<Value> {
    http.requests("/hook")
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn the_api_history_and_webhook_show_one_fingerprint_and_two_rules_never_share_one() {
    let http = Recorder::start();
    // Two rules over one unlabelled series: their instances have the same (empty) series
    // labels, which is what the API used to fingerprint.
    let rules = "      - alert: Above1\n        expr: m > 1\n      - alert: Above2\n        expr: m > 2\n";
    let env = Env::pushed("", &webhook_receivers(&http), rules);
    let d = env.spawn(&[]);
    d.push("m 5\n");
    let a1 = d.wait_alert("Above1", "firing", S10);
    let a2 = d.wait_alert("Above2", "firing", S10);
    let (f1, f2) = (a1["fingerprint"].as_str().unwrap(), a2["fingerprint"].as_str().unwrap());
    assert_ne!(f1, f2, "two rules share a fingerprint: {a1} {a2}");
    assert_ne!(f1, "cbf29ce484222325", "the hash of nothing: {a1}");
    assert_eq!(f1, am_fingerprint(&a1["labels"]), "{a1}");
    assert_eq!(f2, am_fingerprint(&a2["labels"]), "{a2}");

    let got = wait_for(S10, || {
        let alerts = hook_alerts(&http);
        let by_name = |n: &str| alerts.iter().find(|a| a["labels"]["alertname"] == n).cloned();
        Some((by_name("Above1")?, by_name("Above2")?))
    });
    let (w1, w2) = got.unwrap_or_else(|| panic!("webhook bodies: {:?}", hook_alerts(&http)));
    assert_eq!(w1["fingerprint"], f1, "API {a1} vs webhook {w1}");
    assert_eq!(w2["fingerprint"], f2, "API {a2} vs webhook {w2}");
    assert_eq!(w1["labels"], a1["labels"]);

    let history = d.get("/api/v1/history?rule=Above1").json();
    let row = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "firing")
        .cloned()
        .unwrap_or_else(|| panic!("no firing row: {history}"));
    assert_eq!(row["fingerprint"], f1, "{row}");
}

#[test]
fn a_nodata_episode_fires_and_resolves_with_one_label_set() {
    let http = Recorder::start();
    let rules = "      - alert: Quiet\n        expr: heartbeat\n        no_data: alert\n        tiers:\n          - { severity: warning, above: 10 }\n        annotations:\n          summary: \"{% if nodata %}no data{% else %}value {{ value }}{% endif %}\"\n";
    let env = Env::pushed("staleness: 2s\n", &webhook_receivers(&http), rules);
    let d = env.spawn(&[]);
    d.push("heartbeat{host=\"a\"} 1\n");
    // The sample goes stale: no data, so the least severe tier fires.
    let api = d.wait_alert("Quiet", "firing", S10);
    assert!(api["labels"].get("nodata").is_none(), "{api}");
    assert_eq!(api["annotations"]["nodata"], "true", "{api}");
    let firing = http.wait_ok("/hook", 1, S10)[0].json()["alerts"][0].clone();
    d.push("heartbeat{host=\"a\"} 1\n");
    let resolved = wait_for(S10, || {
        hook_alerts(&http).into_iter().find(|a| a["status"] == "resolved")
    })
    .unwrap_or_else(|| panic!("no resolve: {:?}", hook_alerts(&http)));

    assert_eq!(firing["status"], "firing");
    assert!(firing["labels"].get("nodata").is_none(), "{firing}");
    assert_eq!(firing["annotations"]["nodata"], "true", "{firing}");
    assert_eq!(
        firing["annotations"]["summary"], "no data",
        "template variable: {firing}"
    );
    assert_eq!(resolved["labels"], firing["labels"], "{firing} vs {resolved}");
    assert_eq!(resolved["fingerprint"], firing["fingerprint"]);
    assert_eq!(firing["fingerprint"], am_fingerprint(&firing["labels"]));
}

fn severities(active: &[Value]) -> Vec<String> {
    let mut s: Vec<String> = active
        .iter()
        .map(|a| a["labels"]["severity"].as_str().unwrap_or("").to_string())
        .collect();
    s.sort();
    s
}

const DISK_RULE: &str = "      - alert: DiskFull\n        expr: disk_used\n        tiers:\n          - { severity: warning, above: 50 }\n          - { severity: critical, above: 90 }\n        annotations:\n          summary: \"Disk is {{ value }}% full\"\n";

fn am_receivers(am: &Peer, resend: &str) -> String {
    format!(
        "receivers:\n  - name: am\n    alertmanager: {{ url: \"{}\", resend_interval: {resend} }}\nroutes:\n  - receivers: [am]\n",
        am.url()
    )
}

#[test]
fn an_escalation_ends_the_old_severity_in_alertmanager_and_a_resolve_ends_the_current_one() {
    let hook = Recorder::start();
    let Some(am) = alertmanager(&hook, Cluster::Alone) else {
        return;
    };
    // A long resend interval: an old severity left behind would stay active for 4 minutes.
    let env = Env::pushed("", &am_receivers(&am, "1m"), DISK_RULE);
    let d = env.spawn(&[]);
    d.push("disk_used 60\n");
    am.wait_active("the warning", |a| severities(a) == ["warning"]);
    d.push("disk_used 95\n");
    let active = am.wait_active("the critical", |a| severities(a).contains(&"critical".to_string()));
    assert_eq!(severities(&active), ["critical"], "{active:?}");
    let api = d.wait_alert("DiskFull", "firing", S10);
    assert_eq!(api["severity"], "critical");
    assert_eq!(active[0]["fingerprint"], api["fingerprint"], "{active:?} vs {api}");
    d.push("disk_used 10\n");
    am.wait_active("nothing", |a| a.is_empty());
}

#[test]
fn alertmanager_re_posts_carry_the_annotations_of_the_latest_evaluation() {
    let hook = Recorder::start();
    let Some(am) = alertmanager(&hook, Cluster::Alone) else {
        return;
    };
    let env = Env::pushed("", &am_receivers(&am, "1s"), DISK_RULE);
    let d = env.spawn(&[]);
    d.push("disk_used 60\n");
    let summary = |a: &[Value]| {
        a.first()
            .and_then(|a| a["annotations"]["summary"].as_str())
            .unwrap_or("")
            .to_string()
    };
    am.wait_active("the first summary", |a| summary(a).starts_with("Disk is 60"));
    // Same tier, new value: no news, only re-posts can carry it.
    d.push("disk_used 70\n");
    let active = am.wait_active("the fresh summary", |a| summary(a).starts_with("Disk is 70"));
    assert_eq!(severities(&active), ["warning"]);
}
