//! The vendor receivers end to end: the real `tocsin run` binary sending to PagerDuty
//! (Events API v2) and Microsoft Teams (workflow webhook) stand-ins on 127.0.0.1 that answer
//! as the services do, bodies compared key for key and type for type with the vendors'
//! documented examples (`tests/fixtures/vendors/`), and `check`'s errors for bad
//! definitions. Every wait is a bounded poll.

use crate::common;
use crate::common::recorder;

use std::time::Duration;

use common::*;
use recorder::{Recorded, Recorder, Reply};
use serde_json::{Value, json};

const S10: Duration = Duration::from_secs(10);

/// One alert with two tiers, a summary and a runbook.
const DISK_RULE: &str = "      - alert: DiskFull\n        expr: disk_used\n        tiers:\n          - { severity: warning, above: 80 }\n          - { severity: critical, above: 90 }\n        annotations:\n          summary: \"Disk is {{ value }}% full\"\n          runbook_url: https://runbooks.example.com/disk\n";

/// A daemon home whose only receivers file is `receivers`, fed by push.
fn env_with(receivers: &str) -> Env {
    Env::pushed("external_url: http://tocsin.example.com:9470\n", receivers, DISK_RULE)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/vendors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `ours` is a key of the documented example `theirs`, with a value of the same
/// JSON type, recursively (array elements against the example's element of the same
/// `type`, else its first); `free` names objects whose keys are the sender's to choose.
fn conforms(ours: &Value, theirs: &Value, at: &str, free: &[&str]) {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            if free.iter().any(|f| at.ends_with(f)) {
                return;
            }
            for (k, v) in o {
                let Some(tv) = t.get(k) else {
                    panic!(
                        "{at}.{k} is not in the vendor's example (keys: {:?})",
                        t.keys().collect::<Vec<_>>()
                    );
                };
                // The example's `null` stands for "absent or null", ours must be the same.
                assert_eq!(json_type(v), json_type(tv), "{at}.{k}: {v} vs the example's {tv}");
                conforms(v, tv, &format!("{at}.{k}"), free);
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, v) in o.iter().enumerate() {
                let like = t
                    .iter()
                    .find(|e| e.get("type").is_some() && e.get("type") == v.get("type"))
                    .or_else(|| t.first())
                    .unwrap_or_else(|| panic!("{at}: the example's list is empty"));
                conforms(v, like, &format!("{at}[{i}]"), free);
            }
        }
        _ => {}
    }
}

/// PagerDuty's answer to an event it accepts: `202` echoing the `dedup_key`.
fn pagerduty_accepts(body: &[u8]) -> Reply {
    let event: Value = serde_json::from_slice(body).unwrap();
    Reply::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}),
    )
}

/// PagerDuty's `400` to an invalid event.
fn pagerduty_refuses() -> Reply {
    Reply::json(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'routing_key' is invalid"]}),
    )
}

fn events(requests: &[Recorded]) -> Vec<(String, String, Option<String>)> {
    requests
        .iter()
        .map(|r| {
            let e = r.json();
            (
                e["event_action"].as_str().unwrap().to_string(),
                e["dedup_key"].as_str().unwrap().to_string(),
                e["payload"]["severity"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// `status` and `last_error` of the outbox rows of `receiver`, from the daemon's database.
fn outbox_rows(env: &Env, receiver: &str) -> Vec<(String, Option<String>)> {
    let db = rusqlite::Connection::open_with_flags(
        env.path().join("data/tocsin.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut q = db
        .prepare("SELECT status, last_error FROM outbox WHERE receiver = ?1 ORDER BY id")
        .unwrap();
    q.query_map([receiver], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn pagerduty_is_triggered_re_keyed_on_a_severity_change_and_resolved() {
    let pd = Recorder::start();
    pd.respond("/v2/enqueue", pagerduty_accepts);
    let env = env_with(&format!(
        "receivers:\n  - name: pager\n    pagerduty:\n      routing_key: \"${{PD_KEY:-R0UT1NGKEY}}\"\n      url: \"{}\"\n      component: \"{{{{ labels.mount }}}}\"\n      details: {{ team: storage }}\nroutes:\n  - receivers: [pager]\n",
        pd.url("/v2/enqueue")
    ));
    let d = env.spawn(&[]);

    assert_eq!(d.push("disk_used{mount=\"/data\"} 85\n").status, 200);
    let warning = d.wait_alert("DiskFull", "firing", S10);
    pd.wait_ok("/v2/enqueue", 1, S10);
    assert_eq!(d.push("disk_used{mount=\"/data\"} 95\n").status, 200);
    pd.wait_ok("/v2/enqueue", 3, S10);
    let critical = wait_for(S10, || {
        d.alerts().into_iter().find(|a| a["labels"]["severity"] == "critical")
    })
    .expect("the alert escalates");
    assert_eq!(d.push("disk_used{mount=\"/data\"} 10\n").status, 200);
    let all = pd.wait_ok("/v2/enqueue", 4, S10);

    let (w, c) = (
        warning["fingerprint"].as_str().unwrap().to_string(),
        critical["fingerprint"].as_str().unwrap().to_string(),
    );
    assert_eq!(w, am_fingerprint(&warning["labels"]));
    assert_eq!(c, am_fingerprint(&critical["labels"]));
    assert_eq!(
        events(&all),
        [
            ("trigger".into(), w.clone(), Some("warning".into())),
            ("resolve".into(), w, None),
            ("trigger".into(), c.clone(), Some("critical".into())),
            ("resolve".into(), c, None),
        ],
        "dedup_key is the fingerprint; the old label set ends before the new one starts"
    );

    let trigger = all[2].json();
    conforms(
        &trigger,
        &fixture("pagerduty-events-v2-trigger.json"),
        "trigger",
        &["custom_details"],
    );
    conforms(
        &all[3].json(),
        &fixture("pagerduty-events-v2-resolve.json"),
        "resolve",
        &[],
    );
    for key in ["routing_key", "event_action", "dedup_key", "payload"] {
        assert!(trigger.get(key).is_some(), "a trigger needs `{key}`: {trigger}");
    }
    for key in ["summary", "source", "severity"] {
        assert!(
            trigger["payload"].get(key).is_some(),
            "a payload needs `{key}`: {trigger}"
        );
    }
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
    assert_eq!(trigger["payload"]["summary"], "DiskFull (critical): Disk is 95.0% full");
    assert_eq!(trigger["payload"]["component"], "/data");
    assert_eq!(trigger["payload"]["custom_details"]["team"], "storage");
    assert_eq!(trigger["payload"]["custom_details"]["value"], 95.0);
    assert_eq!(trigger["client_url"], "http://tocsin.example.com:9470");
    assert_eq!(
        trigger["links"],
        json!([
            {"href": format!("http://tocsin.example.com:9470/#/alert/{}", trigger["dedup_key"].as_str().unwrap()), "text": "Alert in tocsin"},
            {"href": "https://runbooks.example.com/disk", "text": "Runbook"}
        ])
    );
    assert_eq!(all[0].header("content-type"), Some("application/json"));
    assert!(all[0].header("x-tocsin-idempotency-key").is_some());
    // The counter moves once tocsin has read the answer, which may be after the recorder
    // logged the request: wait for it, bounded.
    let sent = || d.metric("tocsin_notifications_total{receiver=\"pager\",result=\"sent\"}");
    wait_for(S10, || (sent() == Some(3.0)).then_some(()));
    assert_eq!(sent(), Some(3.0), "three messages, one of them two events");
}

#[test]
fn pagerduty_rate_limits_are_waited_out_and_a_refused_event_is_failed_with_its_errors() {
    let pd = Recorder::start();
    pd.respond("/limited", pagerduty_accepts);
    // PagerDuty names the wait in `ratelimit-reset` (seconds); the backoff alone would
    // retry after 100 ms.
    pd.script_replies(
        "/limited",
        vec![
            Reply::json(
                429,
                json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly."}),
            )
            .with_header("ratelimit-reset", "2"),
        ],
    );
    pd.respond("/refusing", |_| pagerduty_refuses());
    let env = env_with(&format!(
        "receivers:\n  - name: limited\n    retry_backoff: 100ms\n    pagerduty: {{ routing_key: k, url: \"{}\" }}\n  - name: refusing\n    retry_backoff: 100ms\n    pagerduty: {{ routing_key: k, url: \"{}\" }}\nroutes:\n  - receivers: [limited, refusing]\n",
        pd.url("/limited"),
        pd.url("/refusing")
    ));
    let d = env.spawn(&[]);
    assert_eq!(d.push("disk_used 85\n").status, 200);

    let ok = pd.wait_ok("/limited", 1, S10);
    let tries = pd.requests("/limited");
    assert_eq!(tries.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 202]);
    let waited = ok[0].at - tries[0].at;
    assert!(waited >= Duration::from_millis(1900), "retried after {waited:?}");

    d.wait_metric(
        "tocsin_notifications_total{receiver=\"refusing\",result=\"failed\"} 1",
        S10,
    );
    assert_eq!(pd.requests("/refusing").len(), 1, "a 400 is not retried");
    let rows = outbox_rows(&env, "refusing");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "failed");
    let error = rows[0].1.as_deref().unwrap();
    assert!(
        error.contains("400")
            && error.contains("Event object is invalid")
            && error.contains("'routing_key' is invalid"),
        "{error}"
    );
}

#[test]
fn teams_gets_an_adaptive_card_and_its_answers_decide_retries() {
    let teams = Recorder::start();
    teams.script("/teams", &[503]);
    teams.respond("/bad", |_| {
        Reply::status(400).with_body("Bad payload received by generic incoming webhook.")
    });
    let env = env_with(&format!(
        "receivers:\n  - name: teams\n    max_in_flight: 1\n    retry_backoff: 100ms\n    msteams: {{ webhook_url: \"{}\" }}\n  - name: bad\n    msteams: {{ webhook_url: \"{}\" }}\nroutes:\n  - receivers: [teams, bad]\n",
        teams.url("/teams"),
        teams.url("/bad")
    ));
    let d = env.spawn(&[]);
    assert_eq!(d.push("disk_used{mount=\"/data\"} 95\n").status, 200);

    let ok = teams.wait_ok("/teams", 1, S10);
    assert_eq!(
        teams.requests("/teams").iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 200],
        "a 5xx is retried"
    );
    let card = ok[0].json();
    conforms(
        &card,
        &fixture("msteams-workflow-adaptive-card.json"),
        "message",
        &["msteams"],
    );
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["body"][0]["style"], "attention", "critical is red");
    let alert = &content["body"][1]["items"];
    assert_eq!(alert[0]["text"], "**DiskFull** firing (critical)");
    assert_eq!(alert[1]["text"], "Disk is 95.0% full");
    assert_eq!(
        alert[2]["facts"],
        json!([
            {"title": "mount", "value": "/data"},
            {"title": "Value", "value": "95"},
            {"title": "Threshold", "value": "90"}
        ])
    );
    assert_eq!(alert[3]["actions"][0]["url"], "https://runbooks.example.com/disk");

    d.wait_metric("tocsin_notifications_total{receiver=\"bad\",result=\"failed\"} 1", S10);
    assert_eq!(teams.requests("/bad").len(), 1, "a 400 is not retried");
    let rows = outbox_rows(&env, "bad");
    assert!(
        rows[0].1.as_deref().unwrap().contains("Bad payload received"),
        "{rows:?}"
    );
}

#[test]
fn check_reports_bad_vendor_definitions_where_they_are_written() {
    let yaml = "receivers:\n  - name: pager\n    pagerduti: { routing_key: k }\n  - name: nokey\n    pagerduty: { url: \"https://events.pagerduty.com/v2/enqueue\" }\n  - name: sev\n    pagerduty: { routing_key: k, severity: { critical: criticall } }\n";
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.yaml", yaml);
    let out = tocsin_in(dir.path(), &["check", "--format", "json", "r.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let at = |line: u64| {
        found
            .iter()
            .find(|d| d["line"] == line)
            .unwrap_or_else(|| panic!("nothing reported at line {line}: {found:?}"))
    };
    assert_eq!(at(3)["code"], "unknown-key");
    assert_eq!(at(3)["hint"], "did you mean `pagerduty`?");
    assert_eq!(at(5)["code"], "missing-key");
    assert!(at(5)["message"].as_str().unwrap().contains("routing_key"), "{found:?}");
    assert_eq!(at(7)["code"], "invalid-value");
    assert_eq!(at(7)["hint"], "did you mean `critical`?");
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn check_reports_a_bad_url_a_template_that_does_not_compile_and_two_kinds() {
    // Each in a file of its own: a file that does not parse gets no later checks, and "exactly
    // one kind" is the type's, which a schema walk after another error cannot see.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "r.yaml",
        "receivers:\n  - name: teams\n    msteams: { webhook_url: \"example.webhook.office.com/x\" }\nroutes:\n  - receivers: [teams]\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "receivers:\n  - name: tmpl\n    pagerduty: { routing_key: k, summary: \"{{ alertname\" }\nroutes:\n  - receivers: [tmpl]\n",
    );
    write(
        dir.path(),
        "k.yaml",
        "receivers:\n  - name: both\n    pagerduty: { routing_key: k }\n    msteams: { webhook_url: \"https://example.webhook.office.com/x\" }\n",
    );
    for (file, line, code) in [
        ("r.yaml", 3, "url"),
        ("t.yaml", 3, "template"),
        ("k.yaml", 2, "receiver-kind"),
    ] {
        let out = tocsin_in(dir.path(), &["check", "--format", "json", file]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let d = &found[0];
        assert_eq!(
            (d["line"].as_u64(), d["code"].as_str()),
            (Some(line), Some(code)),
            "{found:?}"
        );
    }
}

#[test]
fn max_in_flight_bounds_a_teams_receiver_and_an_unbounded_one_sends_at_once() {
    // Both paths never answer, so each attempt lasts its 1 s time limit: with a budget of
    // one, the second alert's message waits for the first attempt to end.
    let teams = Recorder::start();
    teams.hang("/one");
    teams.hang("/many");
    let env = env_with(&format!(
        "receivers:\n  - name: one\n    max_in_flight: 1\n    msteams: {{ webhook_url: \"{}\", timeout: 1s }}\n  - name: many\n    pagerduty: {{ routing_key: k, url: \"{}\", timeout: 1s }}\nroutes:\n  - receivers: [one, many]\n",
        teams.url("/one"),
        teams.url("/many")
    ));
    let d = env.spawn(&[]);
    assert_eq!(
        d.push("disk_used{mount=\"/a\"} 95\ndisk_used{mount=\"/b\"} 95\n")
            .status,
        200
    );
    let first_two = |path: &str| {
        wait_for(S10, || {
            let r = teams.requests(path);
            (r.len() >= 2).then(|| r[1].at - r[0].at)
        })
        .unwrap_or_else(|| panic!("{path}: fewer than two attempts"))
    };
    let serial = first_two("/one");
    assert!(serial >= Duration::from_millis(900), "second send after {serial:?}");
    let parallel = first_two("/many");
    assert!(parallel < Duration::from_millis(500), "second send after {parallel:?}");
}
