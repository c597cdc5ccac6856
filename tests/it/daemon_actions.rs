//! `tocsin run` running response actions: the real binary, a pushed sample, a real child
//! process, and the history row it leaves.

use crate::common;

use std::time::Duration;

use common::*;

const S5: Duration = Duration::from_secs(5);

/// A rule whose `critical` tier runs an exec action writing its `TOCSIN_*` environment into
/// `out` (the command line is this test's, not tocsin's).
fn rules_with_action(out: &std::path::Path) -> String {
    rules_file(&format!(
        r#"      - alert: DiskFull
        expr: disk_used_percent
        tiers:
          - {{ severity: critical, above: 90 }}
        labels: {{ team: ops }}
        actions:
          - name: record-env
            on: [critical]
            exec: ["/bin/sh", "-c", 'printf "%s|%s|%s|%s|%s" "$TOCSIN_ALERT" "$TOCSIN_SEVERITY" "$TOCSIN_EVENT" "$TOCSIN_VALUE" "$TOCSIN_LABELS" > "$1"; echo ran', "sh", "{}"]
            timeout: 5s
"#,
        out.display()
    ))
}

/// The `action` rows of `/api/v1/history`, waiting until there is one.
fn wait_action_rows(d: &Daemon) -> Vec<serde_json::Value> {
    wait_for(S5, || {
        let rows: Vec<serde_json::Value> = d.get("/api/v1/history").json()["history"]
            .as_array()?
            .iter()
            .filter(|r| r["event"] == "action")
            .cloned()
            .collect();
        (!rows.is_empty()).then_some(rows)
    })
    .unwrap_or_else(|| panic!("no action in the history; stderr:\n{}", d.stderr()))
}

#[test]
fn firing_alert_runs_its_exec_action_and_records_it() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("env.txt");
    let env = Env::new("", None, &rules_with_action(&out));
    let d = env.spawn(&[]);
    assert_eq!(d.push("disk_used_percent{mount=\"/var\"} 97\n").status, 200);
    d.wait_alert("DiskFull", "firing", S5);

    let content = wait_for(S5, || std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| panic!("the action never wrote {}; stderr:\n{}", out.display(), d.stderr()));
    let parts: Vec<&str> = content.splitn(5, '|').collect();
    assert_eq!(parts[..4], ["DiskFull", "critical", "firing", "97"], "{content}");
    let labels: serde_json::Value = serde_json::from_str(parts[4]).unwrap();
    assert_eq!(labels["mount"], "/var", "{labels}");
    assert_eq!(labels["team"], "ops", "{labels}");
    assert_eq!(labels["alertname"], "DiskFull", "{labels}");

    let rows = wait_action_rows(&d);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["rule"], "DiskFull");
    assert_eq!(row["severity"], "critical");
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.starts_with("record-env: exit 0 in "), "{detail}");
    assert!(detail.ends_with("; stdout: ran"), "{detail}");
    d.wait_metric("tocsin_actions_total{result=\"ok\"} 1", S5);

    // Still firing at the same tier for two more evaluations: no second run.
    d.wait_evaluations(3, S5);
    assert_eq!(wait_action_rows(&d).len(), 1);
}

#[test]
fn dry_run_records_what_would_run_and_runs_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("env.txt");
    let env = Env::new("", None, &rules_with_action(&out));
    let d = env.spawn(&["--dry-run"]);
    assert_eq!(d.push("disk_used_percent 97\n").status, 200);
    let rows = wait_action_rows(&d);
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("record-env: dry-run: would run [\"/bin/sh\", \"-c\""),
        "{detail}"
    );
    // One more evaluation run to its end, long after a run would have been spawned.
    d.wait_evaluations(2, S5);
    assert!(!out.exists(), "a dry run ran the action");
    assert!(d.stderr().contains("dry-run: would run"), "{}", d.stderr());
}
