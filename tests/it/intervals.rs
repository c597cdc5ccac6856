//! Time intervals end to end: rule tests on the simulated clock with `start:` (the shipped
//! Berlin night, across both daylight-saving changes, is run by `tests/policy.rs`), `check`'s
//! located errors, and the real daemon holding a muted route's news until a reload ends the
//! muting.

use crate::common;
use crate::common::recorder;

use std::time::Duration;

use common::*;
use recorder::Recorder;

const S10: Duration = Duration::from_secs(10);

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn start_decides_what_the_simulated_clock_reads_in_berlin() {
    let shipped = std::fs::read_to_string(root().join("tests/rules/intervals_spring_test.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = root().join("tests/fixtures/intervals");
    let with = |start: &str| {
        shipped
            .replace("../fixtures/intervals", &rules.to_string_lossy())
            .replace("start: 2026-03-28T22:00:00Z", start)
    };
    write(dir.path(), "as_shipped_test.yaml", &with("start: 2026-03-28T22:00:00Z"));
    let out = tocsin_in(dir.path(), &["test", "as_shipped_test.yaml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // At the Unix epoch (the default) it is 01:00 in Berlin: the alert fires and resolves in
    // the night, so the pager hears nothing at all.
    write(dir.path(), "epoch_test.yaml", &with(""));
    let out = tocsin_in(dir.path(), &["test", "epoch_test.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("- at    30m  pager        firing"), "{stdout}");
    assert!(!stdout.contains("+ at"), "{stdout}");
    // An instant that is not RFC 3339 is a located error.
    write(dir.path(), "bad_test.yaml", &with("start: 2026-03-28 late"));
    let out = tocsin_in(dir.path(), &["check", "bad_test.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad_test.yaml:8:8"), "{stderr}");
    assert!(stderr.contains("is not an RFC 3339 instant"), "{stderr}");
}

#[test]
fn check_locates_a_bad_zone_a_bad_time_and_an_undefined_interval() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "receivers.yaml",
        "receivers:\n  - { name: pager, console: {} }\ntime_intervals:\n  - name: night\n    time_intervals:\n      - times: [{ start_time: '22:00', end_time: '25:00' }]\n        location: Mars/Olympus\nroutes:\n  - receivers: [pager]\n    mute_time_intervals: [nigth]\n",
    );
    let out = tocsin_in(dir.path(), &["check", "receivers.yaml"]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for needle in [
        "receivers.yaml:6:50",
        "invalid end_time `25:00`",
        "receivers.yaml:7:19",
        "unknown time zone `Mars/Olympus`",
        "receivers.yaml:10:27",
        "names time interval `nigth`, which is not defined",
        "did you mean `night`?",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

/// Receivers: one webhook, its route muted by `maintenance`, defined as `period`.
fn receivers(hook: &str, period: &str) -> String {
    format!(
        "receivers:\n  - name: hook\n    webhook: {{ url: \"{hook}\", format: native }}\ntime_intervals:\n  - name: maintenance\n    time_intervals: [{period}]\nroutes:\n  - receivers: [hook]\n    mute_time_intervals: [maintenance]\n"
    )
}

fn firing(d: &Daemon, name: &str) -> bool {
    d.alerts()
        .iter()
        .any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
}

#[test]
fn a_reload_that_ends_the_muting_delivers_what_was_held_and_not_what_resolved_meanwhile() {
    let http = Recorder::start();
    // Muted at every instant: an empty part of a period contains them all.
    let env = Env::pushed(
        "",
        &receivers(&http.url("/hook"), "{}"),
        "      - alert: Held\n        expr: held > 1\n      - alert: Gone\n        expr: gone > 1\n",
    );
    let d = env.spawn(&[]);
    assert_eq!(d.push("held 2\ngone 2\n").status, 200);
    d.wait_alert("Held", "firing", S10);
    d.wait_alert("Gone", "firing", S10);
    assert_eq!(d.push("gone 0\n").status, 200);
    assert!(
        wait_for(S10, || (!firing(&d, "Gone")).then_some(())).is_some(),
        "Gone never resolved"
    );
    assert!(http.requests("/hook").is_empty(), "sent while muted");

    // The period now lies in the past: the route is unmuted and its groups send their state.
    write(
        env.path(),
        "receivers/r.yaml",
        &receivers(&http.url("/hook"), "{ years: ['1999'] }"),
    );
    let sent = http.wait_ok("/hook", 1, S10);
    let body = sent[0].json();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "Held", "{body}");
    assert_eq!(body["alerts"][0]["status"], "firing", "{body}");
    // Unmuted, a resolve goes out at once; Gone, which resolved unseen, never does.
    assert_eq!(d.push("held 0\n").status, 200);
    let sent = http.wait_ok("/hook", 2, S10);
    assert_eq!(sent[1].json()["alerts"][0]["labels"]["alertname"], "Held");
    assert_eq!(sent[1].json()["alerts"][0]["status"], "resolved");
    assert!(
        http.requests("/hook")
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("Gone")),
        "a firing that resolved while muted was sent"
    );
}
