//! Response actions against real child processes and a real HTTP server on 127.0.0.1.
//!
//! Every command line here is written by the test: tocsin only runs argv as configured and
//! passes alert data in `TOCSIN_*` environment variables.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::recorder::{Recorder, Reply};

use tocsin::actions::{self, ActionOutcome, RunResult};
use tocsin::alert::action::ActionTrigger;
use tocsin::alert::state::Transition;
use tocsin::engine::{ActionRun, Emitted, RuleRef};
use tocsin::rules::{Action, ActionKind};
use tocsin::series::{Labels, Timestamp};

fn exec_action(argv: &[&str], timeout: Duration) -> Action {
    Action {
        name: "act".into(),
        trigger: ActionTrigger::default(),
        kind: ActionKind::Exec(argv.iter().map(|s| s.to_string()).collect()),
        timeout,
    }
}

fn admitted(labels: &[(&str, &str)], transition: Transition, value: Option<f64>) -> ActionRun {
    Emitted {
        rule: RuleRef { group: 0, rule: 0 },
        fingerprint: 0x00ab_cdef_0123_4567,
        labels: Labels::from_pairs(labels.iter().copied()),
        kind: ("act".to_string(), transition),
        tier: 0,
        severity: "critical".into(),
        at: Timestamp(1_700_000_000_000),
        value,
        seq: 0,
        starts_at: None,
        nodata: false,
    }
}

async fn run_exec(argv: &[&str], timeout: Duration, run: &ActionRun) -> ActionOutcome {
    actions::run(
        &exec_action(argv, timeout),
        run,
        "DiskFull",
        false,
        &tocsin::http_client::Lazy::new(tocsin::http_client::builder),
    )
    .await
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Writes each `TOCSIN_*` variable into its own file under the directory `$1`.
const DUMP_ENV: &str = r#"cd "$1" || exit 9
printf '%s' "$TOCSIN_ALERT" > alert
printf '%s' "$TOCSIN_SEVERITY" > severity
printf '%s' "$TOCSIN_VALUE" > value
printf '%s' "$TOCSIN_LABELS" > labels
printf '%s' "$TOCSIN_EVENT" > event
printf '%s' "$TOCSIN_FINGERPRINT" > fingerprint
printf '%s' "$2" > arg
printf '%s' "$HOME" > home"#;

#[tokio::test]
async fn exec_passes_alert_data_only_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = admitted(
        &[("alertname", "DiskFull"), ("mount", "/var"), ("severity", "critical")],
        Transition::Escalated,
        Some(91.5),
    );
    let o = run_exec(
        &["/bin/sh", "-c", DUMP_ENV, "sh", d, "{{ alertname }} $TOCSIN_ALERT"],
        Duration::from_secs(10),
        &run,
    )
    .await;
    assert!(o.ok, "{o:?}");
    assert!(matches!(o.result, RunResult::Exec { code: Some(0), .. }), "{o:?}");
    let p = dir.path();
    assert_eq!(read(p, "alert"), "DiskFull");
    assert_eq!(read(p, "severity"), "critical");
    assert_eq!(read(p, "value"), "91.5");
    assert_eq!(read(p, "event"), "escalated");
    assert_eq!(read(p, "fingerprint"), "00abcdef01234567");
    let labels: BTreeMap<String, String> = serde_json::from_str(&read(p, "labels")).unwrap();
    assert_eq!(labels["mount"], "/var");
    assert_eq!(labels["alertname"], "DiskFull");
    assert_eq!(
        read(p, "arg"),
        "{{ alertname }} $TOCSIN_ALERT",
        "argv is passed exactly as configured"
    );
    assert_eq!(
        read(p, "home"),
        std::env::var("HOME").unwrap_or_default(),
        "the rest of the environment is inherited"
    );

    // No value: TOCSIN_VALUE is empty.
    let o = run_exec(
        &["/bin/sh", "-c", DUMP_ENV, "sh", d, ""],
        Duration::from_secs(10),
        &admitted(&[("alertname", "DiskFull")], Transition::Resolved, None),
    )
    .await;
    assert!(o.ok, "{o:?}");
    assert_eq!(read(p, "value"), "");
    assert_eq!(read(p, "event"), "resolved");
}

#[tokio::test]
async fn hostile_label_values_stay_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let evil1 = "$(touch pwned)";
    let evil2 = "; touch pwned2 `touch pwned3` \"' && touch pwned4\n";
    let run = admitted(
        &[("a", evil1), ("alertname", "DiskFull"), ("b", evil2)],
        Transition::Firing,
        Some(1.0),
    );
    let o = run_exec(
        &["/bin/sh", "-c", DUMP_ENV, "sh", d, evil1],
        Duration::from_secs(10),
        &run,
    )
    .await;
    assert!(o.ok, "{o:?}");
    let labels: BTreeMap<String, String> = serde_json::from_str(&read(dir.path(), "labels")).unwrap();
    assert_eq!(labels["a"], evil1, "byte-identical");
    assert_eq!(labels["b"], evil2, "byte-identical");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("pwned")), "{names:?}");
    assert!(!Path::new("pwned").exists() && !Path::new("pwned2").exists());
}

/// Whether `pid` is gone: no such process, or a zombie (in a container without an init
/// that reaps, an orphan killed by the timeout may stay a zombie).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild");
    let started = Instant::now();
    let o = run_exec(
        &[
            "/bin/sh",
            "-c",
            r#"sleep 100 & echo $! > "$1"; echo started; sleep 100"#,
            "sh",
            pidfile.to_str().unwrap(),
        ],
        Duration::from_millis(500),
        &admitted(&[("alertname", "DiskFull")], Transition::Firing, None),
    )
    .await;
    let took = started.elapsed();
    assert!(o.timed_out && !o.ok, "{o:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    match &o.result {
        RunResult::Exec {
            code: None,
            signal: Some(9),
            stdout,
            ..
        } => assert_eq!(stdout, "started\n", "output before the kill is kept"),
        other => panic!("{other:?}"),
    }
    assert!(o.detail().starts_with("timed out after"), "{}", o.detail());
    let grandchild = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !gone(&grandchild) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(&grandchild), "grandchild {grandchild} survived the timeout");
}

#[tokio::test]
async fn exit_code_and_stderr_are_recorded() {
    let o = run_exec(
        &["/bin/sh", "-c", "echo partial; echo 'disk is busy' >&2; exit 3"],
        Duration::from_secs(10),
        &admitted(&[("alertname", "DiskFull")], Transition::Firing, None),
    )
    .await;
    assert!(!o.ok && !o.timed_out, "{o:?}");
    match &o.result {
        RunResult::Exec {
            code, stdout, stderr, ..
        } => {
            assert_eq!(*code, Some(3));
            assert_eq!(stdout, "partial\n");
            assert_eq!(stderr, "disk is busy\n");
        }
        other => panic!("{other:?}"),
    }
    let d = o.detail();
    assert!(
        d.starts_with("exit 3 in ") && d.ends_with("; stdout: partial; stderr: disk is busy"),
        "{d}"
    );
}

#[tokio::test]
async fn large_output_does_not_hang_and_keeps_only_the_head() {
    let started = Instant::now();
    let o = run_exec(
        &[
            "/bin/sh",
            "-c",
            "head -c 8000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero >&2; echo done",
        ],
        Duration::from_secs(30),
        &admitted(&[("alertname", "DiskFull")], Transition::Firing, None),
    )
    .await;
    assert!(o.ok, "{}", o.detail());
    assert!(started.elapsed() < Duration::from_secs(20));
    match &o.result {
        RunResult::Exec { stdout, stderr, .. } => {
            assert_eq!(stdout.len(), actions::HEAD_BYTES);
            assert!(stdout.bytes().all(|b| b == b'a'));
            assert_eq!(stderr.len(), actions::HEAD_BYTES);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_program_fails_without_panicking() {
    let o = run_exec(
        &["/nonexistent/tocsin-action"],
        Duration::from_secs(5),
        &admitted(&[("alertname", "DiskFull")], Transition::Firing, None),
    )
    .await;
    assert!(!o.ok, "{o:?}");
    assert!(matches!(&o.result, RunResult::Error(e) if e.contains("/nonexistent/tocsin-action")));
}

#[tokio::test]
async fn dry_run_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let a = exec_action(&["/usr/bin/touch", marker.to_str().unwrap()], Duration::from_secs(5));
    let o = actions::run(
        &a,
        &admitted(&[("alertname", "DiskFull")], Transition::Firing, None),
        "DiskFull",
        true,
        &tocsin::http_client::Lazy::new(tocsin::http_client::builder),
    )
    .await;
    assert!(
        o.detail().starts_with("dry-run: would run [\"/usr/bin/touch\""),
        "{}",
        o.detail()
    );
    assert!(!marker.exists());
}

/// The shared recorder standing in for the webhook's backend: `/ok` answers 202, `/fail`
/// 500 with a body, `/slow` never.
fn hook_server() -> Recorder {
    let hook = Recorder::start();
    hook.respond("/ok", |_| Reply::status(202));
    hook.respond("/fail", |_| Reply::status(500).with_body("backend down"));
    hook.hang("/slow");
    hook
}

fn webhook_action(url: String, timeout: Duration) -> Action {
    Action {
        name: "notify-cmdb".into(),
        trigger: ActionTrigger::default(),
        kind: ActionKind::Webhook {
            url,
            headers: BTreeMap::from([("X-Token".to_string(), "s3cret".to_string())]),
        },
        timeout,
    }
}

#[tokio::test]
async fn webhook_posts_the_event_as_json() {
    let hook = hook_server();
    let base = hook.url("");
    let client = tocsin::http_client::Lazy::new(tocsin::http_client::builder);
    let run = admitted(
        &[("alertname", "DiskFull"), ("mount", "/var"), ("severity", "critical")],
        Transition::Firing,
        Some(97.25),
    );
    let o = actions::run(
        &webhook_action(format!("{base}/ok"), Duration::from_secs(5)),
        &run,
        "DiskFull",
        false,
        &client,
    )
    .await;
    assert!(o.ok, "{o:?}");
    assert!(matches!(o.result, RunResult::Webhook { status: 202, .. }), "{o:?}");
    let got = hook.requests("/ok");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header("x-token"), Some("s3cret"));
    let body = got[0].json();
    assert_eq!(body["action"], "notify-cmdb");
    assert_eq!(body["alertname"], "DiskFull");
    assert_eq!(body["event"], "firing");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["value"], 97.25);
    assert_eq!(body["labels"]["mount"], "/var");
    assert_eq!(body["fingerprint"], "00abcdef01234567");
    assert_eq!(body["at"], "2023-11-14T22:13:20.000Z");

    let o = actions::run(
        &webhook_action(format!("{base}/fail"), Duration::from_secs(5)),
        &run,
        "DiskFull",
        false,
        &client,
    )
    .await;
    assert!(!o.ok);
    assert!(o.detail().starts_with("HTTP 500 in "), "{}", o.detail());
    assert!(o.detail().ends_with("; body: backend down"), "{}", o.detail());

    let started = Instant::now();
    let o = actions::run(
        &webhook_action(format!("{base}/slow"), Duration::from_millis(300)),
        &run,
        "DiskFull",
        false,
        &client,
    )
    .await;
    assert!(!o.ok && o.timed_out, "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
