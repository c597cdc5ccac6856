//! The first hour's friction: what a newcomer trips over with the real binary and real
//! files (see docs/testing.md, docs/cli.md, docs/api.md, docs/configuration.md).

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Env, rules_file, tocsin_in, wait_for, write};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn eval_prints_small_values_with_their_significant_digits() {
    let env = Env::new(
        "",
        Some("sources:\n  system: {}\n"),
        &rules_file("      - record: tiny_rate\n        expr: mem_total_bytes * 0 + 0.000013275\n"),
    );
    let o = tocsin_in(env.path(), &["eval", "-c", env.config().to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("tiny_rate"))
        .unwrap_or_else(|| panic!("no row for tiny_rate:\n{out}"));
    assert_eq!(row.split_whitespace().nth(3), Some("0.000013275"), "{row}");
}

#[test]
fn the_configuration_page_documents_every_system_metric() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md")).unwrap();
    for m in tocsin::sources::host::system::SystemCollector::METRICS {
        assert!(
            page.contains(&format!("`{m}`")),
            "docs/configuration.md does not list `{m}`"
        );
    }
}

/// `promtool`, or `None` to skip where it is not installed; CI has it and never skips.
fn promtool() -> Option<&'static str> {
    let path = "/usr/bin/promtool";
    if Path::new(path).exists() {
        Some(path)
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must have {path}");
        eprintln!("skipped: {path} is not installed");
        None
    }
}

#[test]
fn metrics_pass_promtool_and_alerts_carry_their_alert_labels_only() {
    let Some(promtool) = promtool() else { return };
    let env = Env::new(
        "",
        Some("sources:\n  push: { enabled: true }\n"),
        &rules_file(
            "      - record: job_latency_bucket\n        expr: latency_bucket\n\
             \x20     - alert: SlowBucket\n        expr: job_latency_bucket > 1\n\
             \x20     - alert: SlowTotal\n        expr: sum(job_latency_bucket) > 1\n",
        ),
    );
    let d = env.spawn(&[]);
    let r = d.push("latency_bucket{le=\"0.5\"} 3\nlatency_bucket{le=\"+Inf\"} 5\n");
    assert_eq!(r.status, 200, "{}", r.body);
    let metrics = wait_for(Duration::from_secs(15), || {
        let m = d.get("/metrics").body;
        (m.matches("\nALERTS{").count() == 3).then_some(m)
    })
    .unwrap_or_else(|| panic!("three alerts never fired:\n{}", d.get("/metrics").body));
    assert!(metrics.contains("# HELP job_latency_bucket "), "{metrics}");

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && text(&o).is_empty(),
        "promtool:\n{}\n{metrics}",
        text(&o)
    );

    // Every ALERTS sample is one alert's labels plus `alertstate`.
    let mut alerts: Vec<String> = d
        .alerts()
        .iter()
        .map(|a| {
            let mut l: Vec<String> = a["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .chain([format!("alertstate=\"{}\"", a["state"].as_str().unwrap())])
                .collect();
            l.sort();
            format!("ALERTS{{{}}} 1", l.join(","))
        })
        .collect();
    alerts.sort();
    let mut exposed: Vec<String> = metrics
        .lines()
        .filter(|l| l.starts_with("ALERTS{"))
        .map(String::from)
        .collect();
    exposed.sort();
    assert_eq!(exposed, alerts);
}

const RULES: &str =
    "groups:\n  - name: g\n    rules:\n      - alert: MemoryHigh\n        expr: mem_used_percent > 90\n";

#[test]
fn a_missing_rule_file_is_reported_at_the_test_file_entry_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.yaml", RULES);
    let test = write(
        dir.path(),
        "t.yaml",
        "rule_files:\n  - r.yaml\n  - ../nowhere/gone.yaml\ntests: []\n",
    );
    let t = test.to_str().unwrap();
    for cmd in ["test", "check"] {
        let o = tocsin_in(dir.path(), &[cmd, t]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {out}");
        assert!(
            out.contains(&format!("{t}:3:5")),
            "{cmd}: the error is not at the entry:\n{out}"
        );
        assert!(
            out.contains("../nowhere/gone.yaml"),
            "{cmd}: the missing path is not named:\n{out}"
        );
        assert!(out.contains("rule_files"), "{cmd}: {out}");
    }
}

#[test]
fn an_input_series_no_rule_reads_is_warned_about_by_test_and_check() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.yaml", RULES);
    let test = write(
        dir.path(),
        "t.yaml",
        "rule_files: [r.yaml]\ntests:\n  - name: quiet\n    input_series:\n      - series: mem_used_percent\n        values: '50x5'\n      - series: 'mem_used_precent{host=\"a\"}'\n        values: '95x5'\n    alerts:\n      - { at: 5m, firing: [] }\n",
    );
    let t = test.to_str().unwrap();
    let o = tocsin_in(dir.path(), &["test", t]);
    let out = text(&o);
    // A warning, not a failure: the test still runs and passes.
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("PASS"), "{out}");
    let warning = out
        .lines()
        .find(|l| l.contains("unread-series"))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    assert!(
        warning.contains("test `quiet`") && warning.contains("mem_used_precent{host=\"a\"}"),
        "{warning}"
    );
    assert!(
        out.contains(&format!("{t}:7:")),
        "the warning names the test file's line:\n{out}"
    );
    // The series the rule reads is not warned about.
    assert_eq!(out.matches("unread-series").count(), 1, "{out}");

    let o = tocsin_in(dir.path(), &["check", t, "--format", "github"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let warning = out
        .lines()
        .find(|l| l.starts_with("::warning"))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    assert!(
        warning.contains(&format!("file={t},line=7,")) && warning.contains("test `quiet`"),
        "{warning}"
    );
    assert!(warning.contains("mem_used_precent"), "{warning}");
}
