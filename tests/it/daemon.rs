//! `tocsin run` end to end: the real binary, real files, real processes and real sockets on
//! 127.0.0.1. Every test has its own temp dir and port, so they run in parallel; every wait
//! is a bounded poll.

use crate::common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::recorder::Recorder;
use common::*;

const S2: Duration = Duration::from_secs(2);
const S5: Duration = Duration::from_secs(5);

fn is_rfc3339(s: &str) -> bool {
    humantime::parse_rfc3339(s).is_ok()
}

fn rule_names(d: &Daemon) -> Vec<String> {
    d.get("/api/v1/rules").json()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until `/api/v1/rules` lists `name`, and it has been evaluated since.
fn wait_rule_evaluating(d: &Daemon, name: &str, timeout: Duration) {
    let found = wait_for(timeout, || {
        let rules = d.get("/api/v1/rules").json();
        rules["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter())
            .find(|r| r["name"] == name && r["last_evaluation"].is_string())
            .map(|_| ())
    });
    assert!(
        found.is_some(),
        "rule {name} never evaluating; rules: {:?}\nstderr:\n{}",
        rule_names(d),
        d.stderr()
    );
}

// 1. push → fire → API, and the push endpoint's error answers.
#[test]
fn push_fires_alert_visible_in_api_and_console() {
    let env = Env::new(
        "",
        Some("sources:\n  system: ~\n  push: { enabled: true, max_body: 2KiB }\n"),
        &rules_file(
            "      - alert: TestHigh\n        expr: test_value > 5\n      - alert: JsonHigh\n        expr: json_value > 5\n      - record: good_rec\n        expr: good_value\n",
        ),
    );
    let d = env.spawn(&[]);

    let r = d.push("test_value 10\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let a = d.wait_alert("TestHigh", "firing", S5);
    assert!(is_rfc3339(a["starts_at"].as_str().unwrap()), "{a}");
    assert!(!a["fingerprint"].as_str().unwrap().is_empty(), "{a}");
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["value"], 10.0, "a comparison `a > b` shows `a`, as PromQL does: {a}");
    let line = d.wait_stdout("TestHigh", S2);
    assert!(line.contains("FIRING"), "{line}");

    // JSON push.
    let r = d.post(
        "/api/v1/push",
        &[("Content-Type", "application/json")],
        br#"[{"name":"json_value","labels":{"host":"a"},"value":7}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let a = d.wait_alert("JsonHigh", "firing", S5);
    assert_eq!(a["labels"]["host"], "a", "{a}");

    // An invalid body: 400 naming the line, nothing of it stored.
    let r = d.push("good_value 1\nthis is { not valid\n");
    assert_eq!(r.status, 400, "{}", r.body);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("line 2"), "names the line: {err}");
    let r = d.post("/api/v1/push", &[("Content-Type", "application/json")], b"[{\"name\":");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].is_string());
    let r = d.post(
        "/api/v1/push",
        &[("Content-Type", "application/json")],
        br#"[{"name":"good_value","value":1},{"name":"bad name","value":2}]"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].is_string());
    // Two evaluations later the recording rule still has nothing to record.
    wait_for(Duration::from_millis(2200), || None::<()>);
    assert_eq!(d.metric_line("good_rec"), None, "{}", d.get("/metrics").body);
    let rules = d.get("/api/v1/rules").json();
    let rec = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "good_rec")
        .unwrap()
        .clone();
    assert_eq!(rec["last_error"], "no series for good_value", "{rec}");

    // Over max_body: 413.
    let big = "x_value 1\n".repeat(400);
    let r = d.push(&big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].is_string());

    // And a good push of the same series does get recorded.
    assert_eq!(d.push("good_value 3\n").status, 200);
    d.wait_metric("good_rec 3", S5);
}

const RULE_A: &str =
    "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Version1\n        expr: v > 5\n";
const RULE_B: &str =
    "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Version2\n        expr: v > 50\n";
const RULE_C: &str =
    "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Version3\n        expr: v > 500\n";

// 2. Reload on the three ways files get replaced.
#[test]
fn reload_follows_rename_inplace_write_and_symlink_swap() {
    let env = Env::new("", None, RULE_A);
    let d = env.spawn(&[]);
    wait_rule_evaluating(&d, "Version1", S5);
    let rules = env.path().join("rules");

    // Editor save: write a temp file in the same dir, rename it over the old one.
    let tmp = rules.join(".r.yaml.swp");
    std::fs::write(&tmp, RULE_B).unwrap();
    std::fs::rename(&tmp, rules.join("r.yaml")).unwrap();
    let t = Instant::now();
    wait_rule_evaluating(&d, "Version2", S2 + Duration::from_millis(500));
    eprintln!("rename-save picked up in {:?}", t.elapsed());
    assert_eq!(rule_names(&d), ["Version2"]);

    // In place: truncate and write.
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(rules.join("r.yaml"))
            .unwrap();
        f.write_all(RULE_C.as_bytes()).unwrap();
    }
    wait_rule_evaluating(&d, "Version3", S2 + Duration::from_millis(500));
    assert_eq!(rule_names(&d), ["Version3"]);

    // Reading the files during a reload must not count as a change: once the edits have
    // been applied, reloads stop.
    let reloads = || d.metric_line("tocsin_config_reloads_total").unwrap_or_default();
    std::thread::sleep(Duration::from_millis(700));
    let settled = reloads();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reloads(), settled, "the daemon keeps reloading without any file change");
}

#[test]
fn reload_follows_kubernetes_symlink_swap() {
    let env = Env::new("", None, RULE_A);
    let rules = env.path().join("rules");
    std::fs::remove_file(rules.join("r.yaml")).unwrap();
    write(&rules, "..v1/x.yaml", RULE_A);
    std::os::unix::fs::symlink("..v1", rules.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/x.yaml", rules.join("x.yaml")).unwrap();
    let d = env.spawn(&[]);
    wait_rule_evaluating(&d, "Version1", S5);

    write(&rules, "..v2/x.yaml", RULE_B);
    std::os::unix::fs::symlink("..v2", rules.join("..data_tmp")).unwrap();
    std::fs::rename(rules.join("..data_tmp"), rules.join("..data")).unwrap();
    std::fs::remove_dir_all(rules.join("..v1")).unwrap();
    wait_rule_evaluating(&d, "Version2", S2 + Duration::from_millis(500));
    assert_eq!(rule_names(&d), ["Version2"]);
}

// 3. A broken edit keeps the old rules running; the error is exposed; SIGHUP reloads.
#[test]
fn invalid_edit_keeps_old_rules_and_is_exposed() {
    let env = Env::new("", None, &rules_file("      - alert: Old\n        expr: v > 5\n"));
    let d = env.spawn(&[]);
    d.wait_metric("tocsin_config_last_reload_successful 1", S2);
    wait_rule_evaluating(&d, "Old", S5);

    let file = env.path().join("rules/r.yaml");
    std::fs::write(
        &file,
        rules_file(
            "      - alert: Old\n        expr: v > 5\n      - alert: Broken\n        expr: rat(v, \"5m\") > 1\n",
        ),
    )
    .unwrap();
    d.wait_metric(
        "tocsin_config_last_reload_successful 0",
        S2 + Duration::from_millis(500),
    );

    // The old rule still evaluates and fires.
    assert_eq!(d.push("v 10\n").status, 200);
    let old = d.wait_alert("Old", "firing", S5);
    d.wait_stdout(" Old ", S2);
    assert_eq!(rule_names(&d), ["Old"]);

    let r = d.post("/-/reload", &[], b"");
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("r.yaml:8"), "names file:line: {err}");

    // Fixing the file puts the metric back to 1.
    std::fs::write(
        &file,
        rules_file(
            "      - alert: Old\n        expr: v > 5\n      - alert: Fixed\n        expr: rate(v, \"5m\") > 1\n",
        ),
    )
    .unwrap();
    d.wait_metric(
        "tocsin_config_last_reload_successful 1",
        S2 + Duration::from_millis(500),
    );
    wait_rule_evaluating(&d, "Fixed", S5);
    // The surviving rule kept its state across the reloads, and was notified once.
    let a = d.wait_alert("Old", "firing", S2);
    assert_eq!(a["starts_at"], old["starts_at"], "{a} vs {old}");
    let fired = d.stdout().lines().filter(|l| l.contains(" Old ")).count();
    assert_eq!(fired, 1, "stdout:\n{}", d.stdout());
}

#[test]
fn sighup_reloads() {
    let env = Env::new("", None, &rules_file("      - alert: BeforeHup\n        expr: v > 5\n"));
    let d = env.spawn(&[]);
    wait_rule_evaluating(&d, "BeforeHup", S5);
    // Break the file, then SIGHUP: the failure shows even if the watcher were slow.
    std::fs::write(env.path().join("rules/r.yaml"), "groups: [ {\n").unwrap();
    d.signal("HUP");
    d.wait_metric("tocsin_config_last_reload_successful 0", S2);
    let hup_before = d.stderr().matches("SIGHUP").count();
    std::fs::write(
        env.path().join("rules/r.yaml"),
        rules_file("      - alert: AfterHup\n        expr: v > 5\n"),
    )
    .unwrap();
    d.signal("HUP");
    wait_rule_evaluating(&d, "AfterHup", S2 + Duration::from_millis(500));
    d.wait_metric("tocsin_config_last_reload_successful 1", S2);
    assert!(
        wait_for(S2, || (d.stderr().matches("SIGHUP").count() > hup_before).then_some(())).is_some(),
        "SIGHUP logged: {}",
        d.stderr()
    );
}

// 4. kill -9 and restart: state survives, nothing re-notified.
#[test]
fn kill9_restart_keeps_starts_at_and_does_not_renotify() {
    let env = Env::new(
        "",
        None,
        &rules_file(
            "      - alert: StaysPending\n        expr: p > 5\n        for: 1h\n      - alert: Fires\n        expr: f > 5\n",
        ),
    );
    let body = "p 10\nf 10\n";
    let d = env.spawn(&[]);
    assert_eq!(d.push(body).status, 200);
    let pending = d.wait_alert("StaysPending", "pending", S5);
    let firing = d.wait_alert("Fires", "firing", S5);
    d.wait_stdout("Fires", S2);
    // One more evaluation run to its end, so the state is certainly committed after the
    // firing.
    d.wait_evaluations(2, S5);
    let (out1, _) = d.kill9();
    assert_eq!(out1.lines().filter(|l| l.contains("Fires")).count(), 1, "{out1}");

    let d = env.spawn(&[]);
    // Let the first scheduled evaluation after the restart pass before any data arrives, as
    // it does when sources are slower than the first tick: that must not count as "no data"
    // and clear the pending alert's `for` timer.
    let ticked = |l: &str| {
        l.rsplit(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1)
    };
    wait_for(S5, || {
        d.metric_line("tocsin_rule_group_iterations_total{")
            .filter(|l| ticked(l))
    })
    .unwrap_or_else(|| panic!("no evaluation tick; stderr:\n{}", d.stderr()));
    assert_eq!(d.push(body).status, 200);
    let pending2 = d.wait_alert("StaysPending", "pending", S5);
    let firing2 = d.wait_alert("Fires", "firing", S5);
    assert_eq!(pending2["starts_at"], pending["starts_at"], "{pending} vs {pending2}");
    assert_eq!(firing2["starts_at"], firing["starts_at"], "{firing} vs {firing2}");
    assert_eq!(pending2["fingerprint"], pending["fingerprint"]);
    // Two more evaluations with data: no second notification.
    d.wait_evaluations(3, S5);
    let a = d.alerts();
    assert!(
        a.iter().any(|x| x["alertname"] == "StaysPending"
            && x["state"] == "pending"
            && x["starts_at"] == pending["starts_at"]),
        "{a:?}"
    );
    let out2 = d.stdout();
    assert_eq!(
        out2.lines().filter(|l| l.contains("Fires")).count(),
        0,
        "re-notified after restart:\n{out2}\nstderr:\n{}",
        d.stderr()
    );
}

// 5. SIGTERM and SIGINT exit 0, promptly.
#[test]
fn sigterm_and_sigint_exit_zero_promptly() {
    for sig in ["TERM", "INT"] {
        let env = Env::new("", None, &rules_file("      - alert: A\n        expr: v > 5\n"));
        let mut d = env.spawn(&[]);
        // An idle keep-alive connection and a request whose body never finishes must not hold
        // the exit (the request timeout is 30 s).
        let mut idle = std::net::TcpStream::connect(("127.0.0.1", env.port)).unwrap();
        idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut stalled = std::net::TcpStream::connect(("127.0.0.1", env.port)).unwrap();
        stalled
            .write_all(b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nv 1")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        d.signal(sig);
        let st = d
            .wait_exit(S5)
            .unwrap_or_else(|| panic!("SIG{sig}: still running after 5 s; stderr:\n{}", d.stderr()));
        assert_eq!(st.code(), Some(0), "SIG{sig}; stderr:\n{}", d.stderr());
        eprintln!("SIG{sig}: exited in {:?}", t.elapsed());
        drop((idle, stalled));
    }
}

// 6. A scrape target going away: up 1 → 0, the AppDown alert fires.
#[test]
fn scrape_target_going_away_fires_up_alert() {
    let app = Recorder::start();
    app.serve(
        "/metrics",
        "# TYPE app_requests_total counter\napp_requests_total{path=\"/a,b\"} 5\n",
    );
    let port = app.port;
    let env = Env::new(
        "",
        Some(&format!(
            "sources:\n  system: ~\n  scrape:\n    - {{ name: app, url: \"http://127.0.0.1:{port}/metrics\", interval: 1s, timeout: 1s }}\n"
        )),
        &rules_file(
            "      - record: app_up\n        expr: up\n      - record: app_requests\n        expr: app_requests_total\n      - record: app_present\n        expr: present(app_requests_total)\n      - alert: AppDown\n        expr: up == 0\n",
        ),
    );
    let d = env.spawn(&[]);
    let labels = format!("instance=\"127.0.0.1:{port}\",job=\"app\"");
    d.wait_metric(&format!("app_up{{{labels}}} 1"), S5);
    let line = d.wait_metric("app_requests{", S5);
    assert!(line.contains("path=\"/a,b\""), "quoted comma kept: {line}");
    assert!(line.contains(&labels) && line.ends_with(" 5"), "{line}");
    assert!(d.alerts().iter().all(|a| a["alertname"] != "AppDown"));
    d.wait_metric("app_present{", S2);
    assert!(d.metric_line("app_present{").unwrap().ends_with(" 1"));

    // Stopping the server closes the port: scrapes now get "connection refused".
    drop(app);
    d.wait_metric(&format!("app_up{{{labels}}} 0"), S5);
    let a = d.wait_alert("AppDown", "firing", S5);
    assert_eq!(a["labels"]["job"], "app", "{a}");
    d.wait_stdout("AppDown", S2);
    // The target's series went stale with it (a stale marker, not five minutes of staleness).
    d.wait_metric("app_present{", S2);
    wait_for(S2, || d.metric_line("app_present{").filter(|l| l.ends_with(" 0")))
        .unwrap_or_else(|| panic!("app_requests_total still current:\n{}", d.get("/metrics").body));
}

// 7. Log rotation: counts continue across the rename.
#[test]
fn log_source_counts_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "ERROR before start (not counted)\n").unwrap();
    let env = Env::new(
        "",
        Some(&format!(
            "sources:\n  system: ~\n  logs:\n    - {{ path: \"{}\", patterns: {{ oops: \"ERROR\" }} }}\n",
            log.display()
        )),
        &rules_file("      - record: errors_seen\n        expr: log_matches_total\n"),
    );
    let d = env.spawn(&[]);
    let prefix = "errors_seen{";
    d.wait_metric(prefix, S5);
    // The tailer has opened the file (at its end) once a sample exists.
    let line = d.metric_line(prefix).unwrap();
    assert!(line.ends_with(" 0"), "{line}");
    assert!(line.contains("pattern=\"oops\""), "{line}");

    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("ERROR one\nINFO fine\nERROR two\n");
    wait_for(S5, || d.metric_line(prefix).filter(|l| l.ends_with(" 2")))
        .unwrap_or_else(|| panic!("{:?}", d.metric_line(prefix)));
    append("ERROR three, written just before rotation\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append("ERROR four\nERROR five\nok\n");
    let got = wait_for(S5, || d.metric_line(prefix).filter(|l| l.ends_with(" 5")));
    assert!(
        got.is_some(),
        "expected 5 across both files: {:?}\nstderr:\n{}",
        d.metric_line(prefix),
        d.stderr()
    );
}

// 8. Health, 404s, and the API token on mutating endpoints only.
#[test]
fn health_not_found_and_api_token() {
    let env = Env::new(
        "api_token: secret\n",
        None,
        &rules_file("      - alert: A\n        expr: v > 5\n"),
    );
    let d = env.spawn(&[]);
    assert_eq!(d.get("/-/healthy").status, 200);
    assert_eq!(d.get("/-/ready").status, 200);
    let r = d.get("/no/such/thing");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string(), "{}", r.body);

    let r = d.post("/-/reload", &[], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["error"].is_string());
    let r = d.post("/-/reload", &[("Authorization", "Bearer wrong!")], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = d.post("/-/reload", &[("Authorization", "Bearer secret")], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    // Push is mutating too.
    assert_eq!(d.push("v 1\n").status, 401);
    let r = d.post(
        "/api/v1/push",
        &[("Authorization", "Bearer secret"), ("Content-Type", "text/plain")],
        b"v 1\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);

    for path in ["/metrics", "/api/v1/alerts", "/api/v1/rules", "/api/v1/history", "/"] {
        assert_eq!(d.get(path).status, 200, "GET {path} stays open");
    }
}

// 9. --dry-run logs notifications and prints none.
#[test]
fn dry_run_logs_but_does_not_notify() {
    let env = Env::new("", None, &rules_file("      - alert: DryFire\n        expr: v > 5\n"));
    let d = env.spawn(&["--dry-run"]);
    assert_eq!(d.push("v 10\n").status, 200);
    d.wait_alert("DryFire", "firing", S5);
    wait_for(S2, || d.stderr().lines().any(|l| l.contains("DryFire")).then_some(()))
        .unwrap_or_else(|| panic!("not logged:\n{}", d.stderr()));
    // One more evaluation and its delivery run to their end.
    d.wait_evaluations(2, S5);
    assert!(!d.stdout().contains("DryFire"), "stdout:\n{}", d.stdout());
}

// 10. tocsin eval prints a row per rule and exits 0.
#[test]
fn eval_prints_a_row_per_rule() {
    let env = Env::new(
        "",
        None,
        &rules_file(
            "      - alert: NeverSeen\n        expr: nothing_here > 1\n      - record: also_missing\n        expr: nope\n",
        ),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["eval", "-c"])
        .arg(env.config())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.lines().next().unwrap().starts_with("rule"), "{out}");
    for name in ["NeverSeen", "also_missing"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} missing:\n{out}");
    }
}

#[test]
fn eval_with_system_source_shows_values() {
    let env = Env::new(
        "",
        Some("sources:\n  system: { interval: 1s }\n"),
        &rules_file(
            "      - record: mem\n        expr: mem_total_bytes\n      - alert: Up\n        expr: uptime_seconds > 0\n",
        ),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["eval", "-c"])
        .arg(env.config())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mem = out
        .lines()
        .find(|l| l.starts_with("mem "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(mem.contains("recorded"), "{mem}");
    let up = out
        .lines()
        .find(|l| l.starts_with("Up "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(up.contains("firing"), "{up}");
}
