//! `GET|POST|DELETE /api/v1/silences` against the real binary: validation, the token,
//! status by time, expiry, and persistence across a restart.

use crate::common;

use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{Value, json};

const AUTH: (&str, &str) = ("Authorization", "Bearer secret");

fn at(from_now_secs: i64) -> String {
    let now = SystemTime::now();
    let t = if from_now_secs >= 0 {
        now + Duration::from_secs(from_now_secs as u64)
    } else {
        now - Duration::from_secs(from_now_secs.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

fn post(d: &Daemon, body: &Value) -> Resp {
    d.post(
        "/api/v1/silences",
        &[AUTH, ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn delete(d: &Daemon, id: &str, auth: bool) -> Resp {
    let headers: &[(&str, &str)] = if auth { &[AUTH] } else { &[] };
    request(d.port, "DELETE", &format!("/api/v1/silences/{id}"), headers, b"").unwrap()
}

fn list(d: &Daemon) -> Vec<Value> {
    let r = d.get("/api/v1/silences");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["silences"].as_array().cloned().unwrap()
}

fn find(d: &Daemon, id: &str) -> Value {
    list(d)
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("silence {id} not listed"))
}

/// Posts `body` and returns the 400 error message.
fn rejected(d: &Daemon, body: Value) -> String {
    let r = post(d, &body);
    assert_eq!(r.status, 400, "{body} → {}", r.body);
    r.json()["error"].as_str().unwrap().to_string()
}

#[test]
fn silences_round_trip_validate_expire_and_persist() {
    let env = Env::new(
        "api_token: secret\n",
        None,
        &rules_file("      - alert: A\n        expr: v > 5\n"),
    );
    let d = env.spawn(&[]);
    assert!(list(&d).is_empty());

    let body = json!({
        "matchers": [{"name": "alertname", "value": "Disk.*", "isRegex": true}, {"name": "team", "value": "ops"}],
        "ends_at": at(3600),
        "created_by": "alice",
        "comment": "disk swap",
    });
    // The token is required.
    let r = d.post("/api/v1/silences", &[], body.to_string().as_bytes());
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(list(&d).is_empty());

    let r = post(&d, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let active = r.json()["silence_id"].as_str().unwrap().to_string();
    assert_eq!(active.len(), 32, "{active}");
    let s = find(&d, &active);
    assert_eq!(s["status"], "active", "{s}");
    assert_eq!(s["created_by"], "alice");
    assert_eq!(s["comment"], "disk swap");
    assert_eq!(s["matchers"][0]["name"], "alertname");
    assert_eq!(s["matchers"][0]["isRegex"], true);
    assert_eq!(s["matchers"][1]["isEqual"], true);
    assert!(
        humantime::parse_rfc3339(s["starts_at"].as_str().unwrap()).is_ok(),
        "{s}"
    );

    // Alertmanager's names; a start in the future makes it pending.
    let r = post(
        &d,
        &json!({
            "matchers": [{"name": "instance", "value": "db-1"}],
            "startsAt": at(1800),
            "endsAt": at(7200),
            "createdBy": "bob",
            "comment": "",
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let pending = r.json()["silence_id"].as_str().unwrap().to_string();
    assert_eq!(find(&d, &pending)["status"], "pending");

    // Replacing by id keeps the id.
    let mut edited = body.clone();
    edited["id"] = json!(active);
    edited["comment"] = json!("disk swap, take two");
    let r = post(&d, &edited);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["silence_id"], active.as_str());
    assert_eq!(find(&d, &active)["comment"], "disk swap, take two");
    assert_eq!(list(&d).len(), 2);
    edited["id"] = json!("0123abc");
    let r = post(&d, &edited);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("0123abc"));

    // Validation errors name the field.
    let mut b = body.clone();
    b.as_object_mut().unwrap().remove("ends_at");
    assert!(rejected(&d, b).contains("ends_at"));
    let mut b = body.clone();
    b["ends_at"] = json!(at(-60));
    assert!(rejected(&d, b).contains("ends_at"));
    let mut b = body.clone();
    b["matchers"] = json!([]);
    assert!(rejected(&d, b).contains("matchers"));
    let mut b = body.clone();
    b["matchers"] = json!([{"name": "job", "value": "(", "isRegex": true}]);
    assert!(rejected(&d, b).contains("matchers[0].value"));
    let mut b = body.clone();
    b["created_by"] = json!("");
    assert!(rejected(&d, b).contains("created_by"));
    let r = d.post("/api/v1/silences", &[AUTH], b"{not json");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(list(&d).len(), 2, "nothing invalid was stored");

    // DELETE: token, unknown id, then expiry.
    assert_eq!(delete(&d, &active, false).status, 401);
    let r = delete(&d, "nosuchsilence", true);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json()["error"].is_string());
    let r = delete(&d, &active, true);
    assert_eq!(r.status, 200, "{}", r.body);
    let s = find(&d, &active);
    assert_eq!(s["status"], "expired", "{s}");
    assert_eq!(list(&d).first().unwrap()["id"], pending.as_str(), "live ones first");

    // Both survive a restart, with their status.
    d.kill9();
    let d = env.spawn(&[]);
    assert_eq!(find(&d, &active)["status"], "expired");
    let p = find(&d, &pending);
    assert_eq!(p["status"], "pending");
    assert_eq!(p["created_by"], "bob");
}
