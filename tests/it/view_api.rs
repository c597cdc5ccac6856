//! The operator's API against a real daemon: the value history (`/api/v1/series`), the
//! outbox listing and retry, and the markers `/api/v1/alerts` gives the status page.

use crate::common;
use crate::common::recorder;

use std::time::Duration;

use common::{Env, rules_file, wait_for, write};
use recorder::Recorder;

const S10: Duration = Duration::from_secs(10);
const TOKEN: &str = "Authorization: Bearer t0k";

fn auth() -> [(&'static str, &'static str); 1] {
    [("Authorization", "Bearer t0k")]
}

const TEMP_RULE: &str = "      - alert: Hot\n        expr: temp\n        tiers:\n          - { severity: warning, above: 50 }\n          - { severity: critical, above: 80, for: 1h }\n";

/// The points of the only series of `rule` between `from` and `to` (query string parts).
fn points(d: &common::Daemon, query: &str) -> Vec<serde_json::Value> {
    let r = d.get(&format!("/api/v1/series?{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let series = body["series"].as_array().unwrap();
    match series.as_slice() {
        [] => Vec::new(),
        [one] => one["points"].as_array().unwrap().clone(),
        more => panic!("one series expected: {more:?}"),
    }
}

#[test]
fn value_history_has_a_point_per_step_and_survives_a_restart() {
    let env = Env::new("history_resolution: 1s\n", None, &rules_file(TEMP_RULE));
    let d = env.spawn(&[]);
    for v in [60, 70, 90] {
        d.push(&format!("temp{{host=\"a\"}} {v}\n"));
        // One value per step: wait until the daemon has evaluated it.
        wait_for(S10, || d.alerts().first().filter(|a| a["value"] == v as f64).cloned())
            .unwrap_or_else(|| panic!("value {v} never evaluated: {:?}", d.alerts()));
    }
    let got = wait_for(S10, || {
        Some(points(&d, "rule=Hot")).filter(|p| p.iter().any(|p| p[3] == 90.0))
    })
    .unwrap_or_else(|| panic!("90 never recorded: {:?}", points(&d, "rule=Hot")));
    let body = d.get("/api/v1/series?rule=Hot").json();
    assert_eq!(body["series"][0]["labels"], serde_json::json!({"host": "a"}), "{body}");
    let lasts: Vec<f64> = got.iter().map(|p| p[3].as_f64().unwrap()).collect();
    for v in [60.0, 70.0, 90.0] {
        assert!(lasts.contains(&v), "{lasts:?}");
    }
    for p in &got {
        let (t, min, max, last) = (
            p[0].as_i64().unwrap(),
            p[1].as_f64().unwrap(),
            p[2].as_f64().unwrap(),
            p[3].as_f64().unwrap(),
        );
        assert_eq!(t % 1000, 0, "steps start on the second: {p:?}");
        assert!(min <= last && last <= max, "{p:?}");
    }
    let ts: Vec<i64> = got.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "one point per step, in order: {ts:?}"
    );

    // `from`/`to` in Unix seconds and RFC 3339 select a half-open range.
    let first = ts[0];
    let one = points(&d, &format!("rule=Hot&from={}&to={}", first / 1000, first / 1000 + 1));
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0][0], first);
    let to = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(first as u64));
    assert!(points(&d, &format!("rule=Hot&to={to}")).is_empty(), "`to` is excluded");

    drop(d);
    let d = env.spawn(&[]);
    let after = points(&d, "rule=Hot");
    assert!(after.len() >= got.len(), "kept across a restart: {after:?} vs {got:?}");
}

#[test]
fn series_errors_name_the_problem() {
    let env = Env::new("", None, &rules_file(TEMP_RULE));
    let d = env.spawn(&[]);
    for (query, status, needle) in [
        ("", 400, "`rule` is required"),
        ("rule=Nope", 404, "no rule named `Nope`"),
        ("rule=Hot&from=yesterday", 400, "`from`"),
        ("rule=Hot&to=12x", 400, "`to`"),
        ("rule=Hot&from=200&to=100", 400, "`from` must be before `to`"),
    ] {
        let r = d.get(&format!("/api/v1/series?{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{query}: {msg}");
    }
    assert_eq!(
        d.get("/api/v1/series?rule=Hot").json(),
        serde_json::json!({"series": []})
    );
}

#[test]
fn a_dry_run_writes_no_value_history() {
    let env = Env::new("history_resolution: 1s\n", None, &rules_file(TEMP_RULE));
    let d = env.spawn(&["--dry-run"]);
    d.push("temp{host=\"a\"} 60\n");
    d.wait_alert("Hot", "firing", S10);
    // Steps of 1 s close within about two evaluations; give them five.
    d.wait_evaluations(6, S10);
    assert_eq!(
        d.get("/api/v1/series?rule=Hot").json(),
        serde_json::json!({"series": []})
    );
    drop(d);
    assert!(!env.path().join("data").exists(), "data_dir untouched");
}

#[test]
fn failed_notifications_are_listed_and_re_queued_with_the_token() {
    let http = Recorder::start();
    // Rejected (4xx: failed at once), then accepted.
    http.script("/hook", &[400]);
    let env = Env::new("api_token: t0k\n", None, &rules_file(TEMP_RULE));
    write(
        env.path(),
        "receivers/console.yaml",
        &format!(
            "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n",
            http.url("/hook")
        ),
    );
    let d = env.spawn(&[]);
    d.post("/api/v1/push", &auth(), b"temp{host=\"a\"} 60\n");
    let failed = wait_for(S10, || {
        let body = d.get("/api/v1/outbox?status=failed").json();
        body["entries"].as_array().unwrap().first().cloned()
    })
    .unwrap_or_else(|| panic!("nothing failed: {}", d.get("/api/v1/outbox").body));
    assert_eq!(failed["receiver"], "hook");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 1);
    assert!(failed["last_error"].as_str().unwrap().contains("400"), "{failed}");
    assert!(failed["next_attempt"].is_null(), "{failed}");
    assert!(failed["group"].is_string() && failed["created"].is_string(), "{failed}");
    let listing = d.get("/api/v1/outbox").json();
    assert_eq!(listing["receivers"][0]["name"], "hook", "{listing}");
    assert_eq!(listing["receivers"][0]["circuit_open"], false, "{listing}");
    let bad = d.get("/api/v1/outbox?status=lost");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("pending, failed or dead")
    );

    let id = failed["id"].as_i64().unwrap();
    let path = format!("/api/v1/outbox/{id}/retry");
    assert_eq!(d.post(&path, &[], b"").status, 401, "the token is required ({TOKEN})");
    let r = d.post(&path, &auth(), b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"id": id, "status": "pending"}));
    let sent = http.wait_ok("/hook", 1, S10);
    assert_eq!(sent.len(), 1);
    assert_eq!(http.requests("/hook").len(), 2, "rejected once, then re-sent once");
    // Delivered entries leave the outbox: nothing to re-queue any more.
    let gone = wait_for(S10, || Some(d.post(&path, &auth(), b"")).filter(|r| r.status == 404))
        .expect("the delivered entry is gone");
    assert!(gone.json()["error"].as_str().unwrap().contains(&id.to_string()));
    assert_eq!(d.post("/api/v1/outbox/x/retry", &auth(), b"").status, 400);
}

#[test]
fn a_pending_notification_is_not_re_queued() {
    let http = Recorder::start();
    // Keeps failing with 503: the entry stays pending, waiting for its next attempt.
    http.script("/hook", &[503; 50]);
    let env = Env::new("", None, &rules_file(TEMP_RULE));
    write(
        env.path(),
        "receivers/console.yaml",
        &format!(
            "receivers:\n  - name: hook\n    retry_backoff: 1h\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n",
            http.url("/hook")
        ),
    );
    let d = env.spawn(&[]);
    d.push("temp{host=\"a\"} 60\n");
    let pending = wait_for(S10, || {
        let body = d.get("/api/v1/outbox?status=pending").json();
        body["entries"]
            .as_array()
            .unwrap()
            .first()
            .filter(|e| e["attempts"] == 1)
            .cloned()
    })
    .unwrap_or_else(|| panic!("no attempt: {}", d.get("/api/v1/outbox").body));
    assert!(pending["next_attempt"].is_string(), "{pending}");
    assert!(pending["last_error"].as_str().unwrap().contains("503"), "{pending}");
    let r = d.post(&format!("/api/v1/outbox/{}/retry", pending["id"]), &[], b"");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("is pending"), "{}", r.body);
    let listing = d.get("/api/v1/outbox").json();
    assert_eq!(listing["receivers"][0]["pending"], 1, "{listing}");
}

#[test]
fn alerts_say_whether_they_are_silenced_inhibited_or_without_data() {
    let rules = "      - alert: Hot\n        expr: temp\n        tiers:\n          - { severity: warning, above: 50 }\n          - { severity: critical, above: 80, for: 1h }\n      - alert: Quiet\n        expr: heartbeat\n        no_data: alert\n        tiers:\n          - { severity: warning, above: 10 }\n";
    let env = Env::new("staleness: 2s\n", None, &rules_file(rules));
    write(
        env.path(),
        "receivers/console.yaml",
        "receivers:\n  - name: console\n    console: {}\nroutes:\n  - receivers: [console]\ninhibit_rules:\n  - source: { alertname: Quiet }\n    target: { alertname: Hot }\n    equal: [host]\n",
    );
    let d = env.spawn(&[]);
    d.push("temp{host=\"a\"} 90\ntemp{host=\"b\"} 60\nheartbeat{host=\"a\"} 1\n");
    let hot = d.wait_alert("Hot", "firing", S10);
    assert_eq!(
        (hot["silenced"].clone(), hot["inhibited"].clone(), hot["nodata"].clone()),
        (false.into(), false.into(), false.into()),
        "{hot}"
    );
    // Critical is pending for an hour: the page counts down to `fires_at`.
    let a = d
        .alerts()
        .into_iter()
        .find(|a| a["labels"]["host"] == "a" && a["alertname"] == "Hot")
        .unwrap();
    assert_eq!(a["severity"], "warning", "{a}");
    let body = serde_json::json!({
        "matchers": [{"name": "host", "value": "b"}],
        "ends_at": "2999-01-01T00:00:00Z", "created_by": "test", "comment": ""
    });
    assert_eq!(d.post("/api/v1/silences", &[], body.to_string().as_bytes()).status, 200);
    // The heartbeat goes stale: Quiet fires without data and inhibits Hot on host a.
    let quiet = d.wait_alert("Quiet", "firing", S10);
    assert_eq!(quiet["nodata"], true, "{quiet}");
    assert!(quiet["value"].is_null(), "{quiet}");
    let marks = wait_for(S10, || {
        let alerts = d.alerts();
        let of = |host: &str| {
            alerts
                .iter()
                .find(|a| a["alertname"] == "Hot" && a["labels"]["host"] == host)
                .cloned()
        };
        let (a, b) = (of("a")?, of("b")?);
        Some((
            a["inhibited"].clone(),
            b["silenced"].clone(),
            a["silenced"].clone(),
            b["inhibited"].clone(),
        ))
        .filter(|m| m.0 == true)
    })
    .unwrap_or_else(|| panic!("never inhibited: {:?}", d.alerts()));
    assert_eq!(marks, (true.into(), true.into(), false.into(), false.into()));
}

#[test]
fn pending_alerts_say_when_they_fire() {
    let rules = "      - alert: Slow\n        expr: temp\n        tiers:\n          - { severity: warning, above: 50, for: 1h }\n";
    let env = Env::new("", None, &rules_file(rules));
    let d = env.spawn(&[]);
    d.push("temp 60\n");
    let a = d.wait_alert("Slow", "pending", S10);
    let since = humantime::parse_rfc3339(a["starts_at"].as_str().unwrap()).unwrap();
    let fires = humantime::parse_rfc3339(a["fires_at"].as_str().unwrap()).unwrap();
    assert_eq!(fires.duration_since(since).unwrap(), Duration::from_secs(3600), "{a}");
    let rules = d.get("/api/v1/rules").json();
    let rule = &rules["groups"][0]["rules"][0];
    assert_eq!(
        rule["tiers"],
        serde_json::json!([{"severity": "warning", "condition": "above", "threshold": 50.0, "clear": 50.0, "for": 3600.0}]),
        "{rule}"
    );
    assert_eq!(rule["boolean"], false);
    assert_eq!(rules["last_reload"]["successful"], true, "{rules}");
    assert!(rules["last_reload"]["error"].is_null(), "{rules}");
    // A broken edit is reported with its diagnostic while the last good rules keep running.
    write(
        env.path(),
        "rules/r.yaml",
        "groups: [{ name: g, rules: [{ alert: X }] }]\n",
    );
    assert_eq!(d.post("/-/reload", &[], b"").status, 400);
    let rules = d.get("/api/v1/rules").json();
    assert_eq!(rules["last_reload"]["successful"], false, "{rules}");
    assert!(
        rules["last_reload"]["error"].as_str().unwrap().contains("r.yaml"),
        "{rules}"
    );
    assert_eq!(rules["groups"][0]["rules"][0]["name"], "Slow");
}

#[test]
fn the_page_and_its_assets_are_served_with_a_policy_that_runs_only_them() {
    let env = Env::new("", None, &rules_file(TEMP_RULE));
    let d = env.spawn(&[]);
    let header = |r: &common::Resp, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for (path, kind) in [
        ("/", "text/html"),
        ("/page/page.js", "text/javascript"),
        ("/page/page.css", "text/css"),
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(header(&r, "content-type").starts_with(kind), "{path}: {:?}", r.headers);
        let csp = header(&r, "content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    let html = d.get("/").body;
    assert!(
        html.contains("src=\"page/page.js\"") && !html.contains("http"),
        "relative, no external asset: {html}"
    );
}
