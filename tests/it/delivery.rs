//! Delivery end to end: the real `tocsin run` binary notifying real receivers on 127.0.0.1
//! (a recording HTTP server for webhook and Slack, Python's aiosmtpd for email), through the
//! durable outbox. Every wait is a bounded poll.

use crate::common;
use crate::common::recorder;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use hmac::{KeyInit, Mac};
use recorder::{Recorder, Smtp};

const S5: Duration = Duration::from_secs(5);
const S10: Duration = Duration::from_secs(10);

/// One alert with two tiers, an annotation and a runbook.
const DISK_RULE: &str = "      - alert: DiskFull\n        expr: disk_used\n        tiers:\n          - { severity: warning, above: 80 }\n          - { severity: critical, above: 90 }\n        annotations:\n          summary: \"Disk is {{ value }}% full\"\n          runbook_url: https://runbooks.example.com/disk\n";

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn firing_and_resolved_reach_webhook_slack_and_email() {
    let http = Recorder::start();
    let smtp = Smtp::start();
    let mut receivers = format!(
        "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\", hmac_secret: s3cret }}\n  - name: chat\n    slack:\n      webhook_url: \"{}\"\n      channel: \"#ops\"\n      title: \"{{{{ alertname }}}} is {{{{ status }}}} ({{{{ severity }}}})\"\n",
        http.url("/hook"),
        http.url("/slack")
    );
    let mut route = "hook, chat".to_string();
    if let Some(s) = &smtp {
        receivers.push_str(&format!(
            "  - name: mail\n    email:\n      to: [oncall@example.com]\n      from: tocsin@example.com\n      smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n      subject: \"[{{{{ severity | upper }}}}] {{{{ alertname }}}}\"\n",
            s.port
        ));
        route.push_str(", mail");
    }
    receivers.push_str(&format!("routes:\n  - receivers: [{route}]\n"));
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);

    assert_eq!(d.push("disk_used{mount=\"/\"} 95\n").status, 200);
    d.wait_alert("DiskFull", "firing", S5);
    // The firing notifications arrive before the resolve is provoked.
    http.wait_ok("/hook", 1, S5);
    http.wait_ok("/slack", 1, S5);
    assert_eq!(d.push("disk_used{mount=\"/\"} 10\n").status, 200);
    let hook = http.wait_ok("/hook", 2, S5);
    let slack = http.wait_ok("/slack", 2, S5);

    // Webhook: Alertmanager v4 bodies, signed, with distinct idempotency keys.
    let (fire, resolve) = (hook[0].json(), hook[1].json());
    assert_eq!(fire["version"], "4");
    assert_eq!(fire["status"], "firing");
    assert_eq!(fire["receiver"], "hook");
    assert_eq!(fire["alerts"][0]["labels"]["alertname"], "DiskFull");
    assert_eq!(fire["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(fire["alerts"][0]["labels"]["mount"], "/");
    assert_eq!(fire["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(fire["alerts"][0]["annotations"]["summary"], "Disk is 95.0% full");
    assert_eq!(resolve["status"], "resolved");
    assert_ne!(resolve["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    for r in &hook {
        assert_eq!(
            r.header("x-tocsin-signature").unwrap(),
            format!("sha256={}", hmac_hex("s3cret", &r.body)),
            "signature of {:?}",
            r.json()
        );
    }
    let keys: BTreeSet<&str> = hook
        .iter()
        .map(|r| r.header("x-tocsin-idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");

    // Slack: coloured by severity, titled by the template, with the runbook link.
    let (fire, resolve) = (slack[0].json(), slack[1].json());
    assert_eq!(fire["channel"], "#ops");
    assert_eq!(fire["attachments"][0]["color"], "#d00000", "{fire}");
    assert_eq!(resolve["attachments"][0]["color"], "#2eb67d", "{resolve}");
    assert!(
        fire["text"].as_str().unwrap().contains("DiskFull is firing (critical)"),
        "{fire}"
    );
    let blocks = fire["attachments"][0]["blocks"].to_string();
    assert!(blocks.contains("https://runbooks.example.com/disk"), "{blocks}");
    assert!(blocks.contains("95"), "the value is listed: {blocks}");

    // Email: a multipart message with text and HTML parts and the templated subject.
    if let Some(s) = &smtp {
        let mails = s.wait_messages(2, S10);
        let fire = mails
            .iter()
            .find(|m| m.contains("Subject: [CRITICAL] DiskFull"))
            .expect("firing mail");
        assert!(fire.contains("multipart/alternative"), "{fire}");
        assert!(fire.contains("text/plain") && fire.contains("text/html"), "{fire}");
        assert!(fire.contains("To: oncall@example.com"), "{fire}");
    }
    assert_eq!(
        d.metric("tocsin_notifications_total{receiver=\"hook\",result=\"sent\"}")
            .unwrap_or(0.0),
        2.0
    );
}

#[test]
fn a_webhook_answering_503_three_times_gets_the_notification_once_on_the_fourth_attempt() {
    let http = Recorder::start();
    http.script("/flaky", &[503, 503, 503]);
    let receivers = format!(
        "receivers:\n  - name: flaky\n    retry_backoff: 100ms\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [flaky]\n",
        http.url("/flaky")
    );
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);
    d.push("disk_used 85\n");
    let ok = http.wait_ok("/flaky", 1, S10);
    assert_eq!(ok.len(), 1);
    // Give a wrong extra attempt time to show up.
    std::thread::sleep(Duration::from_millis(800));
    let all = http.requests("/flaky");
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 503, 503, 200]
    );
    let keys: BTreeSet<&str> = all
        .iter()
        .map(|r| r.header("x-tocsin-idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "retries carry the same key: {keys:?}");
    assert_eq!(
        d.metric("tocsin_notifications_total{receiver=\"flaky\",result=\"sent\"}")
            .unwrap_or(0.0),
        1.0
    );
    assert_eq!(
        d.metric("tocsin_notifications_total{receiver=\"flaky\",result=\"retried\"}")
            .unwrap_or(0.0),
        3.0
    );
    assert_eq!(
        d.metric("tocsin_outbox_pending{receiver=\"flaky\"}").unwrap_or(0.0),
        0.0
    );
}

#[test]
fn a_hanging_webhook_does_not_delay_slack() {
    let http = Recorder::start();
    http.hang("/slow");
    let receivers = format!(
        "receivers:\n  - name: slow\n    webhook: {{ url: \"{}\", timeout: 20s }}\n  - name: chat\n    slack: {{ webhook_url: \"{}\" }}\nroutes:\n  - receivers: [slow, chat]\n",
        http.url("/slow"),
        http.url("/slack")
    );
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);
    // Two notifications (firing, then escalated) while the webhook hangs on the first.
    d.push("disk_used 85\n");
    http.wait_ok("/slack", 1, S5);
    let pushed = Instant::now();
    d.push("disk_used 95\n");
    let slack = http.wait_ok("/slack", 2, S5);
    assert!(
        slack[1].at.duration_since(pushed) < Duration::from_secs(3),
        "Slack waited {:?} behind the hanging webhook",
        slack[1].at.duration_since(pushed)
    );
    assert_eq!(
        http.requests("/slow").len(),
        1,
        "one group's messages go in order: the second waits"
    );
}

#[test]
fn kill_9_during_an_outage_then_recovery_delivers_everything_that_was_due() {
    let port = free_port();
    let receivers = format!(
        "receivers:\n  - name: hook\n    retry_backoff: 100ms\n    max_backoff: 500ms\n    webhook: {{ url: \"http://127.0.0.1:{port}/hook\", timeout: 1s }}\nroutes:\n  - receivers: [hook]\n"
    );
    let env = Env::pushed("", &receivers, "      - alert: Over\n        expr: v > 5\n");
    let d = env.spawn(&[]);
    let n = 5;
    let samples: String = (0..n).map(|i| format!("v{{i=\"{i}\"}} 10\n")).collect();
    assert_eq!(d.push(&samples).status, 200);
    let pending = wait_for(S10, || {
        (d.metric("tocsin_outbox_pending{receiver=\"hook\"}").unwrap_or(0.0) == n as f64).then_some(())
    });
    assert!(
        pending.is_some(),
        "{n} notifications never pending:\n{}",
        d.get("/metrics").body
    );
    let (_, stderr) = d.kill9();

    // The receiver comes back, then tocsin restarts and delivers what the dead process queued.
    let http = Recorder::start_on(port);
    let d = env.spawn(&[]);
    let got = wait_for(Duration::from_secs(15), || {
        let keys: BTreeSet<String> = http
            .requests("/hook")
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.header("x-tocsin-idempotency-key").unwrap().to_string())
            .collect();
        (keys.len() >= n).then_some(keys)
    })
    .unwrap_or_else(|| {
        panic!(
            "not every notification arrived: {:?}\nfirst run:\n{stderr}\nsecond run:\n{}",
            http.requests("/hook"),
            d.stderr()
        )
    });
    assert_eq!(got.len(), n, "{got:?}");
    let instances: BTreeSet<String> = http
        .requests("/hook")
        .iter()
        .map(|r| r.json()["alerts"][0]["labels"]["i"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(instances.len(), n);
    assert!(
        wait_for(S5, || (d
            .metric("tocsin_outbox_pending{receiver=\"hook\"}")
            .unwrap_or(0.0)
            == 0.0)
            .then_some(()))
        .is_some()
    );
}

#[test]
fn a_label_that_looks_like_a_command_reaches_an_exec_action_only_as_data() {
    let env = Env::new("", Some(PUSHED), "");
    let out = env.path().join("labels.json");
    let rules = format!(
        "      - alert: Hostile\n        expr: v > 5\n        actions:\n          - name: record\n            on: [warning]\n            exec: [/bin/sh, -c, 'printf \"%s\" \"$TOCSIN_LABELS\" > \"$0\"', \"{}\"]\n",
        out.display()
    );
    write(env.path(), "rules/r.yaml", &rules_file(&rules));
    let d = env.spawn(&[]);
    assert_eq!(
        d.push("v{cmd=\"$(touch pwned)\",sep=\"; touch pwned2\"} 10\n").status,
        200
    );
    let json = wait_for(S5, || std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| panic!("the action never ran; stderr:\n{}", d.stderr()));
    let labels: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(labels["cmd"], "$(touch pwned)");
    assert_eq!(labels["sep"], "; touch pwned2");
    for dir in [env.path().to_path_buf(), std::env::current_dir().unwrap()] {
        assert!(
            !dir.join("pwned").exists() && !dir.join("pwned2").exists(),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn a_template_failing_at_run_time_still_delivers_with_the_fallback_text() {
    let http = Recorder::start();
    // Compiles, and renders on `check`'s sample data; fails only for values over 1000.
    let receivers = format!(
        "receivers:\n  - name: chat\n    slack:\n      webhook_url: \"{}\"\n      title: \"{{% if value > 1000 %}}{{{{ no_such_function() }}}}{{% endif %}}{{{{ alertname }}}}\"\nroutes:\n  - receivers: [chat]\n",
        http.url("/slack")
    );
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);
    d.push("disk_used 5000\n");
    let slack = http.wait_ok("/slack", 1, S5);
    let body = slack[0].json();
    assert!(body["text"].as_str().unwrap().contains("template error"), "{body}");
    assert!(body.to_string().contains("DiskFull"), "{body}");
    assert!(
        d.metric("tocsin_template_errors_total").unwrap_or(0.0) >= 1.0,
        "{}",
        d.get("/metrics").body
    );
}

#[test]
fn an_alertmanager_receiver_gets_firing_alerts_re_sent_and_an_end_on_resolve() {
    let http = Recorder::start();
    let receivers = format!(
        "receivers:\n  - name: am\n    alertmanager: {{ url: \"{}\", resend_interval: 1s }}\nroutes:\n  - receivers: [am]\n",
        http.url("/")
    );
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);
    d.push("disk_used 95\n");
    // The first POST and at least one re-send while the alert fires.
    let posts = http.wait_ok("/api/v2/alerts", 2, S5);
    for p in &posts {
        let alerts = p.json();
        assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull", "{alerts}");
        let ends = humantime::parse_rfc3339(alerts[0]["endsAt"].as_str().unwrap()).unwrap();
        assert!(
            ends > std::time::SystemTime::now(),
            "a firing alert ends in the future: {alerts}"
        );
    }
    d.push("disk_used 10\n");
    let resolved = wait_for(S5, || {
        http.requests("/api/v2/alerts").into_iter().find(|r| {
            let ends = r.json()[0]["endsAt"]
                .as_str()
                .map(|e| humantime::parse_rfc3339(e).unwrap());
            ends.is_some_and(|e| e <= std::time::SystemTime::now())
        })
    });
    assert!(resolved.is_some(), "no resolve: {:?}", http.requests("/api/v2/alerts"));
}

#[test]
fn a_silence_mutes_delivery_until_it_is_expired() {
    let http = Recorder::start();
    let receivers = format!(
        "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n",
        http.url("/hook")
    );
    let env = Env::pushed("", &receivers, DISK_RULE);
    let d = env.spawn(&[]);
    let ends = humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(3600));
    let body = format!(
        r#"{{"matchers":[{{"name":"alertname","value":"DiskFull"}}],"ends_at":"{ends}","created_by":"test","comment":"maintenance"}}"#
    );
    let r = d.post(
        "/api/v1/silences",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["silence_id"].as_str().unwrap().to_string();

    d.push("disk_used 95\n");
    d.wait_alert("DiskFull", "firing", S5);
    // Several evaluations and dispatch-timer turns pass without a message.
    d.wait_evaluations(3, S5);
    assert!(http.requests("/hook").is_empty(), "{:?}", http.requests("/hook"));

    let r = request(d.port, "DELETE", &format!("/api/v1/silences/{id}"), &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let got = http.wait_ok("/hook", 1, S5);
    assert_eq!(got[0].json()["alerts"][0]["labels"]["alertname"], "DiskFull");
    assert_eq!(got[0].json()["status"], "firing");
}
