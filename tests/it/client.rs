//! `tocsin silence add|list|expire`, `tocsin alerts`, `completions`, `man` and `--version`
//! as operators run them: the real binary against a real daemon on 127.0.0.1.

use crate::common;
use crate::common::recorder;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use recorder::Recorder;
use serde_json::{Value, json};

const S5: Duration = Duration::from_secs(5);

/// `tocsin ARGS` with `envs` set and the API variables cleared unless `envs` sets them, so
/// the caller's environment cannot point a test at another daemon.
fn tocsin_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.args(args).env_remove("TOCSIN_URL").env_remove("TOCSIN_API_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("tocsin runs")
}

fn tocsin(args: &[&str]) -> Output {
    tocsin_env(args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn listed(d: &Daemon) -> Vec<Value> {
    let r = d.get("/api/v1/silences");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["silences"].as_array().cloned().unwrap()
}

#[test]
fn silence_add_list_and_expire_against_a_token_protected_daemon() {
    let env = Env::new(
        "api_token: secret\n",
        None,
        &rules_file("      - alert: A\n        expr: v > 5\n"),
    );
    let d = env.spawn(&[]);
    let url = format!("http://127.0.0.1:{}", env.port);
    let add = [
        "silence",
        "add",
        "alertname=Foo",
        "instance=~\"web.*\"",
        "x!=y",
        "--comment",
        "disk swap",
        "--author",
        "alice",
        "--duration",
        "2h",
        "--url",
        &url,
    ];

    // Without the token the daemon refuses, and its own message reaches the operator.
    let o = tocsin(&add);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("this endpoint needs `Authorization: Bearer <api_token>`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    assert!(listed(&d).is_empty());

    let o = tocsin(&[&add[..], &["--token", "secret"]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 32, "prints only the id: {:?}", stdout(&o));

    let list = listed(&d);
    assert_eq!(list.len(), 1, "{list:?}");
    let s = &list[0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(
        s["matchers"],
        json!([
            {"name": "alertname", "value": "Foo", "isRegex": false, "isEqual": true},
            {"name": "instance", "value": "web.*", "isRegex": true, "isEqual": true},
            {"name": "x", "value": "y", "isRegex": false, "isEqual": false},
        ])
    );
    assert_eq!(s["created_by"], "alice");
    assert_eq!(s["comment"], "disk swap");
    assert_eq!(s["status"], "active");
    // `--duration 2h` from now: the end is between 1h59m and 2h01m away, seen from the
    // daemon's clock (the same machine's).
    let ends = humantime::parse_rfc3339_weak(s["ends_at"].as_str().unwrap()).unwrap();
    let left = ends.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        (Duration::from_secs(7140)..Duration::from_secs(7260)).contains(&left),
        "{left:?}"
    );

    // The URL and the token from the environment, as a shell profile would set them.
    let envs = [("TOCSIN_URL", url.as_str()), ("TOCSIN_API_TOKEN", "secret")];
    let o = tocsin_env(&["silence", "list"], &envs);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let table = stdout(&o);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID ") && header.contains("MATCHERS"), "{table}");
    let row = lines.next().unwrap_or_else(|| panic!("no row: {table}"));
    assert!(row.starts_with(&id), "{table}");
    for needle in [
        r#"alertname="Foo" instance=~"web.*" x!="y""#,
        "alice",
        "disk swap",
        "active",
    ] {
        assert!(row.contains(needle), "`{needle}` missing: {table}");
    }

    let o = tocsin_env(&["silence", "query", "-o", "json"], &envs);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(json, Value::Array(list));

    // One unknown id is reported and fails the command, the known one is still expired.
    let o = tocsin_env(&["silence", "expire", "nope", &id], &envs);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no silence with id `nope`"), "{}", stderr(&o));
    let after = listed(&d);
    assert_eq!(after[0]["id"], id.as_str());
    assert_eq!(after[0]["status"], "expired", "{after:?}");

    // An explicit end time instead of a duration.
    let end = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(600)).to_string();
    let o = tocsin_env(&["silence", "add", "team=ops", "--author", "bob", "--end", &end], &envs);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id2 = stdout(&o).trim().to_string();
    let s2 = listed(&d).into_iter().find(|s| s["id"] == id2.as_str()).unwrap();
    assert_eq!(
        humantime::parse_rfc3339_weak(s2["ends_at"].as_str().unwrap()).unwrap(),
        humantime::parse_rfc3339_weak(&end).unwrap()
    );
}

#[test]
fn alerts_lists_a_firing_alert() {
    let env = Env::new("", None, &rules_file("      - alert: CliHigh\n        expr: v > 5\n"));
    let d = env.spawn(&[]);
    assert_eq!(d.push("v{host=\"a\"} 10\n").status, 200);
    let firing = d.wait_alert("CliHigh", "firing", S5);
    let fingerprint = firing["fingerprint"].as_str().unwrap();
    let url = format!("http://127.0.0.1:{}/", env.port);

    let o = tocsin(&["alerts", "--url", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let table = stdout(&o);
    let row = table
        .lines()
        .find(|l| l.starts_with("CliHigh "))
        .unwrap_or_else(|| panic!("no CliHigh row: {table}"));
    for needle in ["firing", fingerprint, "host=\"a\""] {
        assert!(row.contains(needle), "`{needle}` missing: {table}");
    }

    let o = tocsin(&["alerts", "--url", &url, "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let a = json
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alertname"] == "CliHigh")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(a["state"], "firing");
    assert_eq!(a["fingerprint"], fingerprint);
}

#[test]
fn an_unreachable_daemon_exits_1_naming_the_url() {
    // Bound then dropped: nothing listens there.
    let url = format!("http://127.0.0.1:{}/", free_port());
    for args in [
        &["alerts", "--url", &url][..],
        &["silence", "list", "--url", &url],
        &["silence", "expire", "abc", "--url", &url],
    ] {
        let o = tocsin(args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("cannot reach the daemon at {url}")), "{err}");
        assert!(err.contains("onnection refused"), "{err}");
    }
}

#[test]
fn a_bad_matcher_exits_2_before_any_request() {
    let rec = Recorder::start();
    let url = rec.url("");
    for bad in ["alertname", "x=~(", "1x=y", "a=\"open"] {
        let o = tocsin(&["silence", "add", bad, "--author", "a", "--url", &url]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(bad), "{bad}: {}", stderr(&o));
    }
    assert!(rec.requests("/api/v1/silences").is_empty());

    // The same invocation with a good matcher does reach the server, with the token.
    let o = tocsin(&[
        "silence", "add", "a=b", "--author", "a", "--url", &url, "--token", "t0k",
    ]);
    let seen = rec.requests("/api/v1/silences");
    assert_eq!(seen.len(), 1, "{}", stderr(&o));
    assert_eq!(seen[0].header("authorization"), Some("Bearer t0k"));
    assert_eq!(
        seen[0].json()["matchers"],
        json!([{"name": "a", "value": "b", "isRegex": false, "isEqual": true}])
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["silence", "add", "a=b", "--author", "a", "--url", "127.0.0.1:9470"][..],
        &["silence", "add", "a=b", "--author", "a", "--duration", "soon"],
        &["silence", "add", "a=b", "--author", "a", "--end", "tomorrow"],
        &[
            "silence",
            "add",
            "a=b",
            "--author",
            "a",
            "--duration",
            "1h",
            "--end",
            "2030-01-01T00:00:00Z",
        ],
        &["silence", "add"],
        &["silence", "expire"],
        &["alerts", "-o", "yaml"],
        &["completions", "tcsh"],
    ] {
        let o = tocsin(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn completions_and_man_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let o = tocsin(&["completions", shell]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("silence"), "{shell}: {script}");
        assert!(script.contains("expire"), "{shell}: {script}");
    }
    let o = tocsin(&["man"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.lines().any(|l| l.starts_with(".TH tocsin 1")), "{page}");
    assert!(page.contains("silence"), "{page}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let o = tocsin(&["--version"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let version = stdout(&o);
    assert!(
        version.starts_with(&format!("tocsin {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    // Outside a git checkout (a tarball) the commit is unknown, never made up.
    let expected = head.unwrap_or_else(|| "unknown".to_string());
    assert!(
        version.contains(&format!("(commit {expected})")),
        "{version} vs {expected}"
    );
}
