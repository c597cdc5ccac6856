//! Coming from Prometheus: the PromQL habits the rule language accepts (label matchers,
//! colons, `histogram_quantile`, the value of a comparison), and `tocsin import prometheus`
//! over a corpus of real public rule files, compared with promtool on the same series.

use crate::common;

use std::path::{Path, PathBuf};

use common::{tocsin_in, write};

/// Runs `tocsin ARGS` in `dir`; returns (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tocsin_in(dir, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---- the language ----

#[test]
fn two_reads_of_one_metric_with_different_matchers_join_per_process() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules.yaml",
        r#"groups:
  - name: mem
    rules:
      - alert: SwappedOut
        expr: (memory_usage_bytes{type="vms"} - memory_usage_bytes{type="rss"}) / memory_usage_bytes{type="vms"} > 0.5
        annotations:
          summary: "{{ labels.process }} {{ value }}"
"#,
    );
    write(
        dir.path(),
        "test.yaml",
        r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: each vms series pairs with the rss series of its own process
    interval: 1m
    input_series:
      - series: 'memory_usage_bytes{process="a", type="vms"}'
        values: '100x5'
      - series: 'memory_usage_bytes{process="a", type="rss"}'
        values: '20x5'
      - series: 'memory_usage_bytes{process="b", type="vms"}'
        values: '100x5'
      - series: 'memory_usage_bytes{process="b", type="rss"}'
        values: '90x5'
      - series: 'memory_usage_bytes{process="b", type="percent"}'
        values: '1x5'
    alerts:
      - at: 2m
        firing:
          - alertname: SwappedOut
            process: a
            annotations: { summary: "a 0.8" }
"#,
    );
    let (code, out, err) = run(dir.path(), &["test", "test.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_comparison_alert_shows_its_left_side_as_value_and_colons_are_metric_names() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules.yaml",
        r#"groups:
  - name: temp
    rules:
      - record: job:temp_celsius:max
        expr: max(demo_temp_celsius{sensor!~"test.*"})
      - alert: Hot
        expr: job:temp_celsius:max > 50
        annotations:
          summary: "{{ value }}"
"#,
    );
    write(
        dir.path(),
        "test.yaml",
        r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: the value is the temperature, not 1
    interval: 1m
    input_series:
      - series: 'demo_temp_celsius{sensor="cpu"}'
        values: '40 62.5 62.5'
      - series: 'demo_temp_celsius{sensor="test-rig"}'
        values: '99 99 99'
    alerts:
      - at: 0m
        firing: []
      - at: 1m
        firing:
          - alertname: Hot
            annotations: { summary: "62.5" }
"#,
    );
    let (code, out, err) = run(dir.path(), &["test", "test.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn the_api_shows_a_comparison_alerts_left_side_as_its_value() {
    let env = common::Env::new(
        "",
        Some("sources:\n  push: { enabled: true }\n"),
        &common::rules_file(
            "      - alert: Hot\n        expr: demo_temp_celsius{sensor=\"cpu\"} > 50\n        labels: { room: lab }\n",
        ),
    );
    let d = env.spawn(&[]);
    assert_eq!(d.push("demo_temp_celsius{sensor=\"cpu\"} 62.5\n").status, 200);
    let alert = d.wait_alert("Hot", "firing", std::time::Duration::from_secs(10));
    assert_eq!(alert["value"], 62.5, "{alert}");
    assert_eq!(alert["labels"]["sensor"], "cpu", "{alert}");
}

#[test]
fn histogram_quantile_groups_buckets_by_every_label_but_le() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules.yaml",
        r#"groups:
  - name: latency
    rules:
      - alert: SlowRequests
        expr: histogram_quantile(0.5, http_request_duration_seconds_bucket, "5m")
        tiers:
          - { severity: warning, above: 0.2 }
        annotations:
          summary: "{{ labels.job }} {{ value | round(3) }}"
"#,
    );
    // Per minute: job fast puts every request under 0.1 (median 0.05); job slow a quarter
    // under 0.1 and the rest up to 0.5, so its median is 0.1 + 0.4 × (0.5 − 0.25) / 0.75.
    write(
        dir.path(),
        "test.yaml",
        r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: one instance per job
    interval: 1m
    input_series:
      - series: 'http_request_duration_seconds_bucket{job="fast", le="0.1"}'
        values: '0+60x6'
      - series: 'http_request_duration_seconds_bucket{job="fast", le="0.5"}'
        values: '0+60x6'
      - series: 'http_request_duration_seconds_bucket{job="fast", le="+Inf"}'
        values: '0+60x6'
      - series: 'http_request_duration_seconds_bucket{job="slow", le="0.1"}'
        values: '0+15x6'
      - series: 'http_request_duration_seconds_bucket{job="slow", le="0.5"}'
        values: '0+60x6'
      - series: 'http_request_duration_seconds_bucket{job="slow", le="+Inf"}'
        values: '0+60x6'
    alerts:
      - at: 5m
        firing:
          - alertname: SlowRequests
            job: slow
            annotations: { summary: "slow 0.233" }
"#,
    );
    let (code, out, err) = run(dir.path(), &["test", "test.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_names_the_tocsin_spelling_of_promql_habits() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules.yaml",
        r#"groups:
  - name: habits
    rules:
      - alert: Ranged
        expr: rate(http_requests_total[5m]) > 1
      - alert: Grouped
        expr: sum by (job) (up) < 1
      - alert: Templated
        expr: up == 0
        annotations:
          summary: "{{ $value }}"
      - alert: Badmatcher
        expr: up{job=node} == 0
"#,
    );
    let (code, out, err) = run(dir.path(), &["check", "rules.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    let text = format!("{out}{err}");
    for needle in [
        r#"rate(http_requests_total, "5m")"#,
        "by: [labels]",
        "{{ value }}",
        "a label value must be quoted",
        "tocsin import prometheus",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    assert!(!text.contains("SPEC"), "{text}");
}

// ---- tocsin import prometheus ----

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prometheus")
}

/// Every file of the corpus with the given suffix, sorted.
fn corpus_files(suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(corpus()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.to_string_lossy().ends_with(suffix) {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

/// (alert or record names, in order) of a Prometheus rule file.
fn source_rules(path: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for g in v["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let name = r.get("alert").or_else(|| r.get("record")).unwrap();
            out.push(name.as_str().unwrap().to_string());
        }
    }
    out
}

/// Imports the whole corpus (rules and promtool tests) into `out`; returns stdout.
fn import_corpus(out: &Path, extra: &[&str]) -> String {
    let rules = corpus_files(".rules.yaml");
    let tests = corpus_files(".tests.yaml");
    let mut args: Vec<String> = vec!["import".into(), "prometheus".into()];
    args.extend(rules.iter().map(|p| p.display().to_string()));
    args.push("--tests".into());
    args.extend(tests.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--out".into());
    args.push(out.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, err) = run(out.parent().unwrap(), &args);
    assert_eq!(code, 0, "{stdout}{err}");
    stdout
}

#[test]
fn the_corpus_imports_with_every_rule_accounted_for_and_passes_check_and_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let summary = import_corpus(&out, &[]);
    let report = std::fs::read_to_string(out.join("IMPORT.md")).unwrap();
    let mut total = 0;
    for file in corpus_files(".rules.yaml") {
        let shown = file.display().to_string();
        let rows: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with(&format!("| {shown}:")))
            .collect();
        let names = source_rules(&file);
        assert_eq!(
            rows.len(),
            names.len(),
            "{shown}: every source rule has its row in IMPORT.md"
        );
        for (row, name) in rows.iter().zip(&names) {
            assert!(row.contains(&format!("`{name}`")), "{row} should be {name}");
        }
        total += names.len();
    }
    assert!(summary.starts_with(&format!("{total} source rules: ")), "{summary}");
    // Every written file carries its schema modeline, and the schemas are there.
    for (path, schema) in [
        ("rules/node-exporter.rules.yaml", "../schemas/rules.schema.json"),
        ("tests/node-exporter.tests.yaml", "../schemas/test.schema.json"),
    ] {
        let text = std::fs::read_to_string(out.join(path)).unwrap();
        assert!(
            text.starts_with(&format!("# yaml-language-server: $schema={schema}")),
            "{path}"
        );
        assert!(out.join(path).parent().unwrap().join(schema).exists(), "{schema}");
    }
    let (code, o, e) = run(&out, &["check", "rules", "tests"]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = run(&out, &["test", "tests"]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains(" 0 failed"), "{o}");
}

/// promtool, unless it is missing outside CI (in CI it must be there).
fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_none() {
        eprintln!("promtool is not installed: comparison skipped");
        return None;
    }
    assert!(found, "promtool must be installed in CI (Debian package prometheus)");
    Some("promtool")
}

#[test]
fn promtool_and_tocsin_agree_on_the_corpus_tests() {
    let Some(promtool) = promtool() else { return };
    // The same input series and expectations, once as promtool runs them on the source
    // rules, once translated as tocsin runs them on the imported rules: both pass, so both
    // fire the same alerts at the same times (merged tiers fire at their most severe).
    let tests = corpus_files(".tests.yaml");
    assert!(tests.len() >= 2, "the corpus has promtool tests");
    for t in &tests {
        let out = std::process::Command::new(promtool)
            .args(["test", "rules"])
            .arg(t.file_name().unwrap())
            .current_dir(t.parent().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool on {}: {}{}",
            t.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    import_corpus(&out, &[]);
    let translated: Vec<String> = tests
        .iter()
        .map(|t| format!("tests/{}", t.file_name().unwrap().to_string_lossy()))
        .collect();
    let mut args = vec!["test"];
    args.extend(translated.iter().map(String::as_str));
    let (code, o, e) = run(&out, &args);
    assert_eq!(code, 0, "{o}{e}");
    // A translated test that expects nothing would agree with anything: each checks firings.
    for t in &translated {
        let text = std::fs::read_to_string(out.join(t)).unwrap();
        assert!(text.contains("firing:\n          - alertname:"), "{t}");
    }
}

#[test]
fn a_promtool_test_that_disagrees_fails_in_tocsin_too() {
    // The comparison can fail: the same expectation shifted by one step before the tier's
    // `for` has run is refused by tocsin as it is by promtool.
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "r.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: Hot\n        expr: temp > 50\n        for: 2m\n        labels: { severity: warning }\n",
    );
    let tests = write(
        dir.path(),
        "t.yml",
        "rule_files: [r.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'temp{room=\"a\"}'\n        values: '60x10'\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: Hot\n        exp_alerts:\n          - exp_labels: { severity: warning, room: a }\n",
    );
    let out = dir.path().join("out");
    let (code, o, e) = run(
        dir.path(),
        &[
            "import",
            "prometheus",
            rules.to_str().unwrap(),
            "--tests",
            tests.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = run(&out, &["test", "tests/t.yaml"]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(o.contains("at 1m"), "{o}");
}

#[test]
fn bad_input_is_reported_with_file_line_and_rule_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up == 0\n        labels: { severity: critical }\n",
    );
    let broken = write(
        dir.path(),
        "broken.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: Bad\n        expr: rate(x[5m) > 1\n      - alert: Template\n        expr: up == 0\n        annotations:\n          summary: '{{ range query \"up\" }}{{ end }}'\n      - alert: Absent\n        expr: absent(up)\n",
    );
    let not_yaml = write(dir.path(), "junk.yml", "groups: [ {\n");
    let out = dir.path().join("out");
    let args = |strict: bool| {
        let mut a = vec![
            "import".to_string(),
            "prometheus".into(),
            good.display().to_string(),
            broken.display().to_string(),
            not_yaml.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        if strict {
            a.push("--strict".into());
        }
        a
    };
    let a = args(false);
    let (code, o, e) = run(dir.path(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{o}{e}");
    let broken_name = broken.display().to_string();
    assert!(
        o.contains(&format!("{broken_name}:5 (Bad): PromQL does not parse")),
        "{o}"
    );
    assert!(
        o.contains(&format!(
            "{broken_name}:6 (Template): annotation `summary` not imported"
        )),
        "{o}"
    );
    assert!(o.contains("junk.yml:"), "{o}");
    let report = std::fs::read_to_string(out.join("IMPORT.md")).unwrap();
    assert!(
        report.contains("alert `Absent` | **not imported**: tocsin cannot evaluate the function `absent`"),
        "{report}"
    );
    // The rest went on: the good file and the good rule of the broken one are there.
    let (code, o, e) = run(&out, &["check", "rules"]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(
        std::fs::read_to_string(out.join("rules/good.yaml"))
            .unwrap()
            .contains("alert: \"Up\"")
    );
    let a = args(true);
    let (code, o, e) = run(dir.path(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{o}{e}");
    let (code, _, e) = run(dir.path(), &["import", "prometheus", "nope.yml", "--out", "x"]);
    assert_eq!(code, 2, "{e}");
}

#[test]
fn untranslatable_rules_become_a_query_source_with_a_datasource() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = import_corpus(&out, &["--datasource", "prom=http://127.0.0.1:9090"]);
    assert!(stdout.contains(" not imported"), "{stdout}");
    let cfg = std::fs::read_to_string(out.join("tocsin.yaml")).unwrap();
    assert!(
        cfg.contains("- { name: prom, url: \"http://127.0.0.1:9090\" }"),
        "{cfg}"
    );
    assert!(cfg.contains("    - datasource: prom\n      series:\n"), "{cfg}");
    let (code, o, e) = run(&out, &["check", "rules", "tests"]);
    assert_eq!(code, 0, "{o}{e}");
    // Passes once the `query` source and `datasources:` exist in tocsin.yaml.
    let (code, o, e) = run(&out, &["check", "tocsin.yaml", "rules", "tests"]);
    assert_eq!(code, 0, "{o}{e}");
}

// ---- --alertmanager ----

/// Imports `rules` with the Alertmanager config `am`; returns the output dir's path
/// (inside `dir`) and the receivers file.
fn import_am(dir: &Path, rules: &str, am: &str) -> (PathBuf, String) {
    let r = write(dir, "rules.yml", rules);
    let a = write(dir, "alertmanager.yml", am);
    let out = dir.join("out");
    let (code, o, e) = run(
        dir,
        &[
            "import",
            "prometheus",
            r.to_str().unwrap(),
            "--alertmanager",
            a.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{o}{e}");
    let text = std::fs::read_to_string(out.join("receivers/alertmanager.yaml")).unwrap();
    (out, text)
}

const MEM_RULES: &str = "groups:\n  - name: mem\n    rules:\n      - alert: MemHigh\n        expr: mem_used_percent > 80\n        labels: { severity: warning }\n      - alert: MemCritical\n        expr: mem_used_percent > 95\n        labels: { severity: critical }\n";

#[test]
fn an_alertmanager_config_becomes_a_receivers_file_that_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let am = std::fs::read_to_string(corpus().join("alertmanager/basic.yml")).unwrap();
    let am = format!(
        "{am}  - source_matchers: ['alertname=\"MemCritical\"']\n    target_matchers: ['alertname=\"Other\"']\n"
    );
    let (out, text) = import_am(dir.path(), MEM_RULES, &am);
    assert!(
        text.starts_with("# yaml-language-server: $schema=../schemas/receivers.schema.json"),
        "{text}"
    );
    // A route or inhibit rule naming a merged alert names the merged rule and its tier.
    assert!(
        text.contains(r#"source: { "alertname": "MemHigh", "severity": ["critical"] }"#),
        "{text}"
    );
    assert!(text.contains("  - receivers: [\"oncall\"]\n    match: { \"severity\": \"critical\" }\n    group_by: [\"alertname\", \"instance\"]"), "{text}");
    let (code, o, e) = run(&out, &["check", "receivers", "rules"]);
    assert_eq!(code, 0, "{o}{e}");
}

/// Imports an Alertmanager config using a receiver kind or key another change adds, and
/// checks the result.
fn check_am_kind(am: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = import_am(dir.path(), MEM_RULES, am);
    assert!(text.contains(needle), "{text}");
    let (code, o, e) = run(&out, &["check", "receivers"]);
    assert_eq!(code, 0, "{o}{e}");
}

#[test]
fn pagerduty_receivers_translate() {
    check_am_kind(
        "route: { receiver: pager }\nreceivers:\n  - name: pager\n    pagerduty_configs: [{ routing_key: abc123 }]\n",
        "pagerduty:\n      routing_key: \"abc123\"",
    );
}

#[test]
fn msteams_receivers_translate() {
    check_am_kind(
        "route: { receiver: teams }\nreceivers:\n  - name: teams\n    msteams_configs: [{ webhook_url: \"http://127.0.0.1:9/teams\" }]\n",
        "msteams: { webhook_url: \"http://127.0.0.1:9/teams\" }",
    );
}

#[test]
fn time_intervals_and_muted_routes_translate() {
    let am = std::fs::read_to_string(corpus().join("alertmanager/more-kinds.yml")).unwrap();
    let am = am.replace(
        "pagerduty_configs: [{ routing_key: \"${PD_ROUTING_KEY}\" }]",
        "webhook_configs: [{ url: \"http://127.0.0.1:9/hook\" }]",
    );
    let am = am.replace(
        "msteams_configs: [{ webhook_url: http://127.0.0.1:9/teams }]",
        "webhook_configs: [{ url: \"http://127.0.0.1:9/hook2\" }]",
    );
    check_am_kind(&am, "    mute_time_intervals: [\"nights\"]\n");
}

#[test]
fn unknown_receiver_kinds_are_reported_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(dir.path(), "rules.yml", MEM_RULES);
    let a = write(
        dir.path(),
        "am.yml",
        "route: { receiver: ops }\nreceivers:\n  - name: ops\n    opsgenie_configs: [{ api_key: x }]\n",
    );
    let out = dir.path().join("out");
    let args = [
        "import",
        "prometheus",
        r.to_str().unwrap(),
        "--alertmanager",
        a.to_str().unwrap(),
        "--strict",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, o, e) = run(dir.path(), &args);
    assert_eq!(code, 1, "{o}{e}");
    assert!(
        o.contains("am.yml:3: receiver `ops`: `opsgenie_configs` has no tocsin receiver kind"),
        "{o}"
    );
}

// ---- docs/migrating.md ----

/// The fenced blocks of a Markdown page: (info string, the marker comment before it, text).
fn fenced(page: &str) -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    let mut lines = page.lines().peekable();
    let mut last_nonempty: Option<String> = None;
    while let Some(line) = lines.next() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            let marker = last_nonempty
                .as_deref()
                .and_then(|l| l.trim().strip_prefix("<!--"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|m| m.trim().to_string());
            let mut text = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            out.push((info.trim().to_string(), marker, text));
            last_nonempty = None;
            continue;
        }
        if !line.trim().is_empty() {
            last_nonempty = Some(line.to_string());
        }
    }
    out
}

#[test]
fn the_migration_guide_example_runs_as_written() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migrating.md")).unwrap();
    let blocks = fenced(&page);
    let dir = tempfile::tempdir().unwrap();
    let mut sources = 0;
    for (info, _, text) in &blocks {
        if let Some(path) = info.strip_prefix("yaml file=") {
            write(dir.path(), path, text);
            sources += 1;
        }
    }
    assert_eq!(sources, 2, "the example's rule file and promtool test");
    if let Some(promtool) = promtool() {
        let out = std::process::Command::new(promtool)
            .args(["test", "rules", "rules_test.yml"])
            .current_dir(dir.path().join("prometheus"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let (code, stdout, e) = run(
        dir.path(),
        &[
            "import",
            "prometheus",
            "prometheus/rules.yml",
            "--tests",
            "prometheus/rules_test.yml",
            "--out",
            "tocsin",
        ],
    );
    assert_eq!(code, 0, "{stdout}{e}");
    let said = stdout.lines().next().unwrap();
    assert!(
        page.replace('\n', " ").contains(&format!("prints `{said}`")),
        "the page quotes: {said}"
    );
    let shown = blocks
        .iter()
        .find(|(_, marker, _)| marker.as_deref() == Some("file: rules/rules.yaml"))
        .map(|(_, _, t)| t.clone())
        .unwrap();
    let written = std::fs::read_to_string(dir.path().join("tocsin/rules/rules.yaml")).unwrap();
    assert_eq!(written, shown, "docs/migrating.md shows the file the import writes");
    let (code, o, e) = run(&dir.path().join("tocsin"), &["test", "tests"]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("1 passed, 0 failed"), "{o}");
}
