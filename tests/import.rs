//! Coming from Prometheus: the PromQL habits the rule language accepts (label matchers,
//! colons, `histogram_quantile`, the value of a comparison), and `tocsin import prometheus`
//! over a corpus of real public rule files, compared with promtool on the same series.

mod common;

use std::path::Path;

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
