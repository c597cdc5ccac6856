//! Acknowledgements end to end: the real daemon, a recording webhook on 127.0.0.1 and the
//! `tocsin ack` client. An acked alert gets one `acknowledged` message and no repeats (while
//! an un-acked one beside it goes on repeating: the clock the waits are measured by), keeps
//! its ack across a restart, and loses it when it escalates.

use crate::common;
use crate::common::recorder;

use std::time::Duration;

use common::*;
use recorder::{Recorded, Recorder};

const S10: Duration = Duration::from_secs(10);
const AUTH: (&str, &str) = ("Authorization", "Bearer secret");

/// (alertname, event) of each native webhook body's first alert.
fn events(reqs: &[Recorded]) -> Vec<(String, String)> {
    reqs.iter()
        .map(|r| {
            let a = &r.json()["alerts"][0];
            (
                a["alertname"].as_str().unwrap().to_string(),
                a["event"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `hook` has at least `n` more `repeat`s of `alertname` than at index `from`.
fn wait_repeats(http: &Recorder, alertname: &str, from: usize, n: usize) {
    let got = wait_for(S10, || {
        let ev = events(&http.requests("/hook"));
        let k = ev[from.min(ev.len())..]
            .iter()
            .filter(|(a, e)| a == alertname && e == "repeat")
            .count();
        (k >= n).then_some(())
    });
    assert!(
        got.is_some(),
        "{alertname} did not repeat {n} times: {:?}",
        events(&http.requests("/hook"))
    );
}

fn push(d: &Daemon, text: &str) {
    let r = d.post("/api/v1/push", &[AUTH, ("Content-Type", "text/plain")], text.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
}

fn alert(d: &Daemon, name: &str) -> serde_json::Value {
    d.alerts()
        .into_iter()
        .find(|a| a["alertname"] == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", d.alerts()))
}

fn ack_cli(env: &Env, args: &[&str]) -> std::process::Output {
    let url = format!("http://127.0.0.1:{}", env.port);
    let mut all = vec!["ack", "--url", url.as_str(), "--token", "secret"];
    all.extend(args);
    tocsin_in(env.path(), &all)
}

#[test]
fn an_ack_stops_repeats_until_the_alert_escalates_and_survives_a_restart() {
    let http = Recorder::start();
    let rule = |name: &str, metric: &str| {
        format!(
            "      - alert: {name}\n        expr: {metric}\n        repeat_interval: 1s\n        tiers:\n          - {{ severity: warning, above: 1 }}\n          - {{ severity: critical, above: 5 }}\n"
        )
    };
    let env = Env::pushed(
        "api_token: secret\n",
        &format!(
            "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\", format: native }}\nroutes:\n  - receivers: [hook]\n",
            http.url("/hook")
        ),
        &(rule("Paged", "paged") + &rule("Ticking", "ticking")),
    );
    let mut d = env.spawn(&[]);
    push(&d, "paged 2\nticking 2\n");
    d.wait_alert("Paged", "firing", S10);
    wait_repeats(&http, "Paged", 0, 1);
    let fp = alert(&d, "Paged")["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(alert(&d, "Paged")["acknowledged"], serde_json::Value::Null);

    // The API wants the token, and a fingerprint that fires.
    let path = format!("/api/v1/alerts/{fp}/ack");
    assert_eq!(d.post(&path, &[], br#"{"by": "ana"}"#).status, 401);
    let r = d.post("/api/v1/alerts/0123456789abcdef/ack", &[AUTH], br#"{"by": "ana"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = d.post(&path, &[AUTH], br#"{"until": "x"}"#);
    assert_eq!(r.status, 400, "{}", r.body);

    let out = ack_cli(&env, &[&fp, "--by", "ana", "--comment", "on it"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let acked = alert(&d, "Paged")["acknowledged"].clone();
    assert_eq!(acked["by"], "ana");
    assert_eq!(acked["comment"], "on it");
    assert_eq!(acked["until"], serde_json::Value::Null);
    assert!(acked["at"].as_str().unwrap().ends_with('Z'), "{acked}");
    assert_eq!(alert(&d, "Ticking")["acknowledged"], serde_json::Value::Null);

    // One `acknowledged` message; then Ticking repeats and Paged does not.
    let got = wait_for(S10, || {
        let ev = events(&http.requests("/hook"));
        ev.iter().position(|(a, e)| a == "Paged" && e == "acknowledged")
    });
    let at = got.expect("no acknowledged message");
    wait_repeats(&http, "Ticking", at, 3);
    let after: Vec<(String, String)> = events(&http.requests("/hook"))[at + 1..]
        .iter()
        .filter(|(a, _)| a == "Paged")
        .cloned()
        .collect();
    assert!(after.is_empty(), "Paged was sent after its ack: {after:?}");
    let history = d.get("/api/v1/history?rule=Paged").json();
    assert!(
        history["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "acknowledged"),
        "{history}"
    );

    // A restart keeps the ack.
    d.signal("TERM");
    assert!(d.wait_exit(S10).is_some(), "the daemon did not stop");
    let d = env.spawn(&[]);
    // Samples are not persisted: the sources start again; the instance state is.
    let n = http.requests("/hook").len();
    push(&d, "paged 2\nticking 2\n");
    d.wait_alert("Paged", "firing", S10);
    assert_eq!(alert(&d, "Paged")["acknowledged"]["by"], "ana");
    wait_repeats(&http, "Ticking", n, 3);
    let after = events(&http.requests("/hook"))[n..]
        .iter()
        .filter(|(a, _)| a == "Paged")
        .count();
    assert_eq!(after, 0, "Paged repeated after the restart");

    // An escalation clears it: the escalation goes out and repeats start again.
    push(&d, "paged 9\n");
    let n = http.requests("/hook").len();
    assert!(
        wait_for(S10, || events(&http.requests("/hook"))[n..]
            .iter()
            .any(|(a, e)| a == "Paged" && e == "escalated")
            .then_some(()))
        .is_some(),
        "no escalation"
    );
    wait_repeats(&http, "Paged", n, 1);
    assert_eq!(alert(&d, "Paged")["acknowledged"], serde_json::Value::Null);

    // Acknowledged again, then cleared from the client: repeats resume.
    let fp = alert(&d, "Paged")["fingerprint"].as_str().unwrap().to_string();
    assert!(ack_cli(&env, &[&fp, "--by", "ana"]).status.success());
    let out = ack_cli(&env, &[&fp, "--clear"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(alert(&d, "Paged")["acknowledged"], serde_json::Value::Null);
    let n = http.requests("/hook").len();
    wait_repeats(&http, "Paged", n, 1);
}
