//! `tocsin backtest` end to end, against real history: Debian's `prometheus` opening a data
//! directory that `promtool tsdb create-blocks-from openmetrics` filled with a week of
//! samples this test wrote, so every count is worked out by hand from series it knows.
//!
//! Without the peer binaries the tests that need them are skipped, unless `CI` is set: then
//! a missing binary fails them.

use crate::common::peers::prometheus_with_history;
use crate::common::*;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// 2026-11-02T00:00:00Z, the start of the generated week.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
/// One sample every 30 s.
const STEP: i64 = 30;

/// `temp{host="a"}`: 50, but 95 for 2 minutes at 03:00 every day and for an hour at 12:00 on
/// the third day; `temp{host="b"}`: 40 throughout. As OpenMetrics text for promtool.
fn week_of_temperatures() -> String {
    let mut out = String::from("# TYPE temp gauge\n");
    for host in ["a", "b"] {
        let mut t = T0;
        while t < T0 + 7 * DAY {
            let of_day = (t - T0) % DAY;
            let spike = (3 * 3600..3 * 3600 + 120).contains(&of_day);
            let long = t - T0 >= 2 * DAY + 12 * 3600 && t - T0 < 2 * DAY + 13 * 3600;
            let v = match host {
                "a" if spike || long => 95,
                "a" => 50,
                _ => 40,
            };
            let _ = writeln!(out, "temp{{host=\"{host}\"}} {v} {t}");
            t += STEP;
        }
    }
    out.push_str("# EOF\n");
    out
}

const RULES: &str = r#"
groups:
  - name: temps
    interval: 30s
    rules:
      - alert: Hot
        expr: temp
        tiers:
          - { severity: warning,  above: 80 }
          - { severity: critical, above: 90, for: 10m }
      - alert: HottestHost
        expr: temp_max
        tiers:
          - { severity: warning, above: 90 }
      - alert: Gone
        expr: not_in_prometheus > 1
"#;

/// A project directory: the rules and a config naming the datasource `prom` at `url`, with a
/// `query` source defining `temp_max`.
fn project(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/temps.yaml", RULES);
    write(
        dir.path(),
        "tocsin.yaml",
        &format!(
            "datasources:\n  - name: prom\n    url: {url}\nsources:\n  query:\n    - datasource: prom\n      series:\n        temp_max: 'max(temp)'\n"
        ),
    );
    dir
}

fn backtest_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["backtest", "rules", "-c", "tocsin.yaml", "--format", "json"];
    all.extend_from_slice(args);
    let out = tocsin_in(dir, &all);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rule<'a>(report: &'a Value, name: &str) -> &'a Value {
    (report["rules"].as_array().unwrap().iter())
        .find(|r| r["alertname"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {report:#}"))
}

#[test]
fn a_week_in_prometheus_replays_to_the_hand_worked_counts() {
    let Some(prom) = prometheus_with_history(&week_of_temperatures()) else {
        return;
    };
    let dir = project(&prom.url());
    // A week at a 30 s step is 20,161 points a series: two chunks of query_range.
    let report = backtest_json(
        dir.path(),
        &[
            "--datasource",
            "prom",
            "--from",
            "2026-11-02T00:00:00Z",
            "--to",
            "2026-11-09T00:00:00Z",
        ],
    );
    let hot = rule(&report, "Hot");
    // Seven 2-minute blips (firing, resolved) and the hour on the third day (firing at
    // 12:00, escalated at 12:10 once `for: 10m` is over, resolved at 13:00).
    assert_eq!(hot["notifications"], 17, "{hot:#}");
    assert_eq!(hot["episodes"], 8);
    assert_eq!(hot["longest_episode_seconds"], 3600.0);
    assert_eq!(hot["firing_seconds_by_severity"]["warning"], 7.0 * 120.0 + 600.0);
    assert_eq!(hot["firing_seconds_by_severity"]["critical"], 3000.0);
    assert_eq!(hot["firing_seconds"], 4440.0);
    let sent = hot["sent"].as_array().unwrap();
    assert_eq!(sent[0]["at"], "2026-11-02T03:00:00.000Z");
    assert_eq!(sent[0]["event"], "firing");
    assert_eq!(sent[0]["labels"]["host"], "a");
    assert_eq!(sent[1]["at"], "2026-11-02T03:02:00.000Z");
    assert_eq!(sent[1]["event"], "resolved");
    let escalated: Vec<&Value> = sent.iter().filter(|s| s["event"] == "escalated").collect();
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["at"], "2026-11-04T12:10:00.000Z");
    assert_eq!(escalated[0]["severity"], "critical");
    assert!(hot["gaps"].as_array().unwrap().is_empty(), "{hot:#}");
    // The query source's PromQL: the hottest host is host a.
    let max = rule(&report, "HottestHost");
    assert_eq!(max["notifications"], 16);
    assert_eq!(max["firing_seconds"], 7.0 * 120.0 + 3600.0);
    // A metric Prometheus does not hold is named, not counted as quiet.
    let gone = rule(&report, "Gone");
    assert_eq!(gone["notifications"], 0);
    assert_eq!(gone["gaps"][0]["metric"], "not_in_prometheus");
    assert_eq!(gone["gaps"][0]["reason"], "no samples in the range");
}

#[test]
fn a_range_prometheus_holds_only_part_of_is_named_in_the_report() {
    let Some(prom) = prometheus_with_history(&week_of_temperatures()) else {
        return;
    };
    let dir = project(&prom.url());
    let report = backtest_json(
        dir.path(),
        &[
            "--datasource",
            "prom",
            "--from",
            "2026-10-30T00:00:00Z",
            "--to",
            "2026-11-03T00:00:00Z",
            "--step",
            "1m",
        ],
    );
    let hot = rule(&report, "Hot");
    assert_eq!(
        hot["gaps"][0]["reason"], "the datasource holds samples only from 2026-11-02T00:00:00.000Z",
        "{hot:#}"
    );
    // The one blip inside the held part still counts.
    assert_eq!(hot["notifications"], 2);
    // Text names it too.
    let out = tocsin_in(
        dir.path(),
        &[
            "backtest",
            "rules",
            "-c",
            "tocsin.yaml",
            "--datasource",
            "prom",
            "--from",
            "2026-10-30T00:00:00Z",
            "--to",
            "2026-11-03T00:00:00Z",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("! input `temp`: the datasource holds samples only from 2026-11-02T00:00:00.000Z"),
        "{text}"
    );
}

#[test]
fn bad_invocations_are_refused_with_the_reason() {
    let dir = project("http://127.0.0.1:9");
    let run = |args: &[&str]| {
        let mut all = vec!["backtest", "rules", "-c", "tocsin.yaml"];
        all.extend_from_slice(args);
        let out = tocsin_in(dir.path(), &all);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--datasource", "nope", "--from", "-1d", "--to", "now"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the config defines no datasource `nope` (it defines: prom)"),
        "{err}"
    );
    let (code, err) = run(&["--datasource", "prom", "--from", "now", "--to", "-1h"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not before --to"), "{err}");
    let (code, err) = run(&["--datasource", "prom", "--from", "yesterday", "--to", "now"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("`yesterday` is not an RFC 3339 time"), "{err}");
    let (code, err) = run(&["--datasource", "prom", "--from", "-1h", "--to", "now"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("datasource `prom` did not answer"), "{err}");
}

const HISTORY_RULES: &str = r#"groups:
  - name: g
    interval: 1s
    rules:
      - record: temp_rec
        expr: temp
      - alert: Hot
        expr: temp
        tiers:
          - { severity: warning, above: 90 }
      - alert: HotRec
        expr: temp_rec
        tiers:
          - { severity: warning, above: 90 }
"#;

/// The points of rule `rule`'s one series in `d`'s value history, as `[t, min, max, last]`.
fn points(d: &Daemon, rule: &str) -> Vec<Value> {
    let r = d.get(&format!("/api/v1/series?rule={rule}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["series"][0]["points"].as_array().cloned().unwrap_or_default()
}

/// A daemon whose value history (at 1 s) holds `temp{host="a"}` at 50, then 95, 50, 85 and
/// 50 again, each for at least one closed step of every rule of [`HISTORY_RULES`].
fn daemon_with_history() -> (Env, Daemon) {
    let env = Env::new("history_resolution: 1s\n", None, HISTORY_RULES);
    let d = env.spawn(&[]);
    let mut after = 0;
    for v in [50.0, 95.0, 50.0, 85.0, 50.0] {
        d.push(&format!("temp{{host=\"a\"}} {v}\n"));
        for rule in ["Hot", "HotRec", "temp_rec"] {
            let t = wait_for(Duration::from_secs(10), || {
                (points(&d, rule).iter())
                    .find(|p| p[3] == v && p[0].as_i64().unwrap() > after)
                    .map(|p| p[0].as_i64().unwrap())
            })
            .unwrap_or_else(|| panic!("{rule} never recorded {v}: {:?}", points(&d, rule)));
            if rule == "temp_rec" {
                after = t;
            }
        }
    }
    (env, d)
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = tocsin_in(dir, args);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_running_daemons_value_history_replays_changed_thresholds_and_names_what_it_cannot() {
    let (env, d) = daemon_with_history();
    let data = env.path().join("data");
    let changed = r#"groups:
  - name: g
    interval: 1s
    rules:
      - record: temp_rec
        expr: temp
      - alert: Hot
        expr: temp
        tiers:
          - { severity: warning, above: 80 }
      - alert: HotRec
        expr: temp_rec * 2
        tiers:
          - { severity: warning, above: 170 }
"#;
    write(env.path(), "changed/r.yaml", changed);
    let data_arg = data.to_str().unwrap();
    let args = [
        "backtest", "changed", "--data", data_arg, "--from", "-10m", "--to", "now", "--format", "json",
    ];
    let report: Value = serde_json::from_str(&run_ok(env.path(), &args)).unwrap();
    // Hot replays from its own values at the lower threshold: 95 and now 85 fire, each a
    // firing and a resolve.
    let hot = rule(&report, "Hot");
    assert_eq!(hot["notifications"], 4, "{hot:#}");
    assert_eq!(hot["episodes"], 2);
    assert_eq!(hot["not_replayable"], Value::Null);
    assert!(hot["gaps"].as_array().unwrap().is_empty(), "{hot:#}");
    let sent = hot["sent"].as_array().unwrap();
    assert_eq!(sent[0]["labels"]["host"], "a");
    assert_eq!(sent[0]["labels"]["alertname"], "Hot");
    // HotRec's expression changed, but it reads a recorded series the history holds:
    // 2 × 95 = 190 fires, 2 × 85 = 170 does not.
    let rec = rule(&report, "HotRec");
    assert_eq!(rec["notifications"], 2, "{rec:#}");
    assert_eq!(rec["episodes"], 1);

    // An expression reading what the history does not hold cannot be replayed: said so.
    write(
        env.path(),
        "raw/r.yaml",
        &changed
            .replace("expr: temp\n", "expr: temp * 2\n")
            .replace("above: 80", "above: 170"),
    );
    let args = [
        "backtest", "raw", "--data", data_arg, "--from", "-10m", "--to", "now", "--format", "json",
    ];
    let report: Value = serde_json::from_str(&run_ok(env.path(), &args)).unwrap();
    let hot = rule(&report, "Hot");
    assert_eq!(hot["notifications"], 0);
    assert_eq!(
        hot["not_replayable"],
        "its expression changed (the value history's values are of `temp`), and the value history holds no series of `temp`, which it reads"
    );
    let args = ["backtest", "raw", "--data", data_arg, "--from", "-10m", "--to", "now"];
    let text = run_ok(env.path(), &args);
    assert!(text.contains("! not replayable: its expression changed"), "{text}");
    // All of it read while the daemon runs on the directory.
    assert_eq!(d.get("/-/ready").status, 200);
}

/// `git ARGS` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn base_replays_the_files_at_a_git_revision_and_prints_the_difference() {
    let (env, d) = daemon_with_history();
    drop(d);
    let repo = env.path().join("policy");
    write(&repo, "rules/r.yaml", HISTORY_RULES);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "page above 90"]);
    write(
        &repo,
        "rules/r.yaml",
        &HISTORY_RULES.replacen("above: 90", "above: 80", 1),
    );
    let data = env.path().join("data");
    let data_arg = data.to_str().unwrap();
    let base = [
        "backtest", "rules", "--data", data_arg, "--from", "-10m", "--to", "now", "--base", "HEAD",
    ];
    let json_args: Vec<&str> = base.iter().copied().chain(["--format", "json"]).collect();
    let report: Value = serde_json::from_str(&run_ok(&repo, &json_args)).unwrap();
    let hot = rule(&report, "Hot");
    // At HEAD only the 95 pages; in the working tree the 85 does too.
    assert_eq!(hot["base"]["notifications"], 2, "{hot:#}");
    assert_eq!(hot["notifications"], 4);
    assert_eq!(hot["base"]["episodes"], 1);
    assert_eq!(hot["episodes"], 2);
    assert_eq!(hot["episodes_added"], 1);
    assert_eq!(hot["episodes_removed"], 0);
    let summary = hot["summary"].as_str().unwrap();
    assert!(summary.starts_with("Hot: 2 → 4 notifications, firing "), "{summary}");
    assert!(summary.contains("; 1 episode added, the longest "), "{summary}");
    let unchanged = rule(&report, "HotRec");
    assert_eq!(unchanged["summary"], "HotRec: unchanged, 2 notifications");
    let md_args: Vec<&str> = base.iter().copied().chain(["--format", "markdown"]).collect();
    let md = run_ok(&repo, &md_args);
    assert!(md.contains("| Hot | 2 → 4 | "), "{md}");
    assert!(md.contains("- Hot: 2 → 4 notifications"), "{md}");

    // A revision git cannot resolve, and a file it cannot show at one, are named.
    let bad: Vec<&str> = base
        .iter()
        .map(|a| if *a == "HEAD" { "no-such-rev" } else { a })
        .collect();
    let out = tocsin_in(&repo, &bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("git cannot resolve revision `no-such-rev`"), "{err}");
    write(&repo, "extra.yaml", HISTORY_RULES);
    let extra: Vec<&str> = base.iter().chain(&["extra.yaml"]).copied().collect();
    let out = tocsin_in(&repo, &extra);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("git cannot show extra.yaml at revision `HEAD`"), "{err}");
}

/// The `run` script of the step named `name` in examples/ci/workflow.yml.
fn workflow_step(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/workflow.yml");
    let workflow: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = workflow["jobs"]["policy"]["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["name"] == name).expect("the step exists");
    assert_eq!(step["if"], "github.event_name == 'pull_request'");
    step["run"].as_str().unwrap().to_string()
}

#[test]
fn the_ci_examples_backtest_step_writes_the_comparison_to_the_job_summary() {
    let script = workflow_step("Backtest against main");
    let Some(prom) = prometheus_with_history(&week_of_temperatures()) else {
        return;
    };
    let repo = project(&prom.url());
    let repo = repo.path();
    // The step's datasource name is a repository variable; here the project calls it prom.
    write(repo, "receivers/console.yaml", CONSOLE);
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "rules"]);
    git(repo, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    let summary = repo.join("summary.md");
    let step = |dir: &Path| {
        let bin = Path::new(env!("CARGO_BIN_EXE_tocsin")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        // As GitHub runs a `run:` script: bash -e.
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-e", "-c", &script])
            .current_dir(dir)
            .env("PATH", path)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("TOCSIN_BACKTEST_DATASOURCE", "prom")
            .env("TOCSIN_BACKTEST_FROM", "2026-11-02T00:00:00Z")
            .env("TOCSIN_BACKTEST_TO", "2026-11-09T00:00:00Z")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&summary).unwrap()
    };
    // Unchanged: said so, nothing replayed.
    assert_eq!(
        step(repo),
        "rules/ and receivers/ are as on main: nothing to backtest.\n"
    );
    std::fs::remove_file(&summary).unwrap();
    // The pull request escalates after 1 minute instead of 10: every blip now escalates too.
    write(repo, "rules/temps.yaml", &RULES.replace("for: 10m", "for: 1m"));
    let md = step(repo);
    assert!(md.starts_with("### tocsin backtest\n"), "{md}");
    // Base: 17 (as counted above); now each of the seven blips fires, escalates at 03:01
    // and resolves, and the hour escalates at 12:01: 24. Firing time and episodes are the same.
    assert!(md.contains("| Hot | 17 → 24 | 1h 14m → 1h 14m | 0 | 0 |"), "{md}");
    assert!(
        md.contains("- Hot: 17 → 24 notifications, firing 1h 14m → 1h 14m"),
        "{md}"
    );
    assert!(md.contains("| HottestHost | 16 → 16 |"), "{md}");
    assert!(
        md.contains("- **Gone** input `not_in_prometheus`: no samples in the range"),
        "{md}"
    );
}
