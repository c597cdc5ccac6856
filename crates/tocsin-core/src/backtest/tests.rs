use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{Source, parse_receivers, parse_rules, parse_test};
use crate::ruletest::notation::{Point, parse_series, parse_values};

const MIN: i64 = 60_000;

/// The memory rule of docs/rules.md, with an action.
const MEMORY: &str = r#"
groups:
  - name: memory
    interval: 15s
    rules:
      - alert: MemoryPressure
        expr: mem_used_percent
        tiers:
          - { severity: warning,   above: 70, for: 5m }
          - { severity: high,      above: 80, for: 3m }
          - { severity: critical,  above: 90, for: 1m }
          - { severity: emergency, above: 95, for: 30s }
        hysteresis: 5
        keep_firing_for: 1m
        cooldown: 5m
        actions:
          - name: drop-caches
            on: [critical]
            exec: ["/bin/true"]
            cooldown: 10m
"#;

const MEMORY_VALUES: &str = "60 72 74 76 78 82 85 92 93 94 86 76 66 60";

fn rules(yaml: &str) -> Arc<RuleSet> {
    let src = Source::new("rules.yaml", yaml.as_bytes().to_vec()).unwrap();
    let file = parse_rules(&src).unwrap();
    let (set, diags) = crate::rules::compile(&[("rules.yaml".to_string(), file)]);
    assert!(diags.is_empty(), "{diags:?}");
    Arc::new(set.unwrap())
}

/// Input series in promtool's notation, one sample every `step_ms` from `start`.
fn input(series: &str, values: &str, start: i64, step_ms: i64) -> Input {
    let (metric, labels) = parse_series(series).unwrap();
    let samples = (parse_values(values).unwrap().into_iter().enumerate())
        .filter_map(|(i, p)| match p {
            Point::Value(v) => Some(Sample {
                t: Timestamp(start + step_ms * i as i64),
                v,
            }),
            _ => None,
        })
        .collect();
    Input {
        metric,
        labels,
        samples,
    }
}

fn plan(from: i64, to: i64) -> Plan {
    Plan {
        from: Timestamp(from),
        to: Timestamp(to),
        step: None,
        evaluation_interval: Duration::from_secs(60),
        staleness: Duration::from_secs(300),
        not_replayable: BTreeMap::new(),
    }
}

fn events(r: &RuleReport) -> Vec<(i64, &'static str, &str)> {
    r.sent
        .iter()
        .map(|s| (s.at.0, s.kind.name(), s.severity.as_str()))
        .collect()
}

#[test]
fn the_documented_memory_example_counts_by_hand() {
    let set = rules(MEMORY);
    let inputs = [input("mem_used_percent", MEMORY_VALUES, 0, MIN)];
    let report = replay(&set, None, &plan(0, 20 * MIN), &inputs, &[]);
    let r = &report.rules[0];
    assert_eq!(r.alertname, "MemoryPressure");
    // docs/testing.md works these out: firing at 6m, one escalation at 8m, the coalesced
    // step down when the cooldown ends at 13m, the resolve at 14m.
    assert_eq!(
        events(r),
        [
            (6 * MIN, "firing", "warning"),
            (8 * MIN, "escalated", "critical"),
            (13 * MIN, "deescalated", "warning"),
            (14 * MIN, "resolved", "warning"),
        ]
    );
    assert_eq!(r.notifications(), 4);
    // The state machine: warning 6–8m, critical 8–11m, high 11–12m, warning 12–14m.
    let firing: Vec<(&str, i64)> = r.firing_ms.iter().map(|(s, ms)| (s.as_str(), *ms)).collect();
    assert_eq!(firing, [("critical", 3 * MIN), ("high", MIN), ("warning", 4 * MIN)]);
    assert_eq!(r.firing_seconds(), 480.0);
    assert_eq!(r.episodes.len(), 1);
    assert_eq!((r.episodes[0].start.0, r.episodes[0].end.0), (6 * MIN, 14 * MIN));
    assert_eq!(r.episodes[0].worst, "critical");
    assert!(!r.episodes[0].open);
    assert_eq!(r.longest_ms(), 8 * MIN);
    let actions: Vec<(i64, &str, &str, Option<&str>)> = (r.actions.iter())
        .map(|a| (a.at.0, a.action.as_str(), a.event.as_str(), a.blocked))
        .collect();
    assert_eq!(actions, [(8 * MIN, "drop-caches", "critical", None)]);
    assert!(r.gaps.is_empty());
}

#[test]
fn an_episode_still_firing_at_the_end_is_cut_there_and_marked_open() {
    let set = rules(MEMORY);
    let inputs = [input("mem_used_percent", MEMORY_VALUES, 0, MIN)];
    let report = replay(&set, None, &plan(0, 10 * MIN), &inputs, &[]);
    let r = &report.rules[0];
    assert_eq!(r.episodes.len(), 1);
    assert!(r.episodes[0].open);
    assert_eq!(r.episodes[0].end.0, 10 * MIN);
    // warning 6–8m, critical 8–10m.
    assert_eq!(r.firing_seconds(), 240.0);
    assert_eq!(r.notifications(), 2);
}

/// The replay of a rule test's input series sends what `tocsin test` checks: a test file
/// expecting exactly the backtest's notifications passes (its `until` makes `tocsin test`
/// fail on any notification missing or extra).
#[test]
fn backtest_of_a_rule_tests_inputs_equals_what_tocsin_test_reports() {
    let set = rules(MEMORY);
    let inputs = [
        input("mem_used_percent{host=\"a\"}", MEMORY_VALUES, 0, MIN),
        input("mem_used_percent{host=\"b\"}", "60 75x9 99x6 60x10", 0, MIN),
    ];
    let report = replay(&set, None, &plan(0, 30 * MIN), &inputs, &[]);
    let r = &report.rules[0];
    assert!(r.notifications() > 4, "both hosts notify: {:?}", events(r));
    let mut expect = String::new();
    for s in &r.sent {
        expect.push_str(&format!(
            "          - {{ at: {}s, alertname: MemoryPressure, event: {}, severity: {}, host: {} }}\n",
            s.at.0 / 1000,
            s.kind.name(),
            s.severity,
            s.labels.get("host").unwrap()
        ));
    }
    let test = format!(
        r#"
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: replayed
    interval: 1m
    input_series:
      - series: 'mem_used_percent{{host="a"}}'
        values: '{MEMORY_VALUES}'
      - series: 'mem_used_percent{{host="b"}}'
        values: '60 75x9 99x6 60x10'
    notifications:
      until: 30m
      expect:
{expect}"#
    );
    let file = parse_test(&Source::new("t.yaml", test.into_bytes()).unwrap()).unwrap();
    let load = |_: &str| parse_rules(&Source::new("rules.yaml", MEMORY.as_bytes().to_vec()).unwrap());
    let result = crate::ruletest::run_file("t.yaml", &file, &load, None);
    assert!(result.diagnostics.is_empty(), "{:?}", result.diagnostics);
    assert_eq!(result.cases.len(), 1);
    assert!(
        result.cases[0].failures.is_empty(),
        "{}",
        result.cases[0].failures.join("\n")
    );
}

const THRESHOLD: &str = r#"
groups:
  - name: g
    rules:
      - alert: Hot
        expr: temp
        tiers:
          - { severity: warning, above: __T__ }
"#;

#[test]
fn a_diff_counts_what_a_higher_threshold_drops() {
    // One sample a minute: blips of 75 at 2m and 10m, 90 from 20m to 29m.
    let values = "50 50 75 50 50 50 50 50 50 50 75 50x8 90x9 50x10";
    let inputs = [input("temp", values, 0, MIN)];
    let range = plan(0, 40 * MIN);
    let base = replay(&rules(&THRESHOLD.replace("__T__", "70")), None, &range, &inputs, &[]);
    let head = replay(&rules(&THRESHOLD.replace("__T__", "80")), None, &range, &inputs, &[]);
    // Base: episodes 2–3m, 10–11m, 20–30m, each a firing and a resolve.
    assert_eq!(base.rules[0].notifications(), 6);
    assert_eq!(base.rules[0].firing_seconds(), 12.0 * 60.0);
    assert_eq!(head.rules[0].notifications(), 2);
    assert_eq!(head.rules[0].firing_seconds(), 10.0 * 60.0);
    let diffs = compare(&head, &base);
    assert_eq!(diffs.len(), 1);
    let d = &diffs[0];
    assert_eq!((d.added.len(), d.removed.len()), (0, 2));
    assert_eq!(
        d.summary(),
        "Hot: 6 → 2 notifications, firing 12m → 10m; 2 episodes dropped, all at most 1m long"
    );
    let json: serde_json::Value = serde_json::from_str(&render(Format::Json, &head, Some(&base))).unwrap();
    let rule = &json["rules"][0];
    assert_eq!(rule["alertname"], "Hot");
    assert_eq!(rule["notifications"], 2);
    assert_eq!(rule["firing_seconds"], 600.0);
    assert_eq!(rule["episodes"], 1);
    assert_eq!(rule["base"]["notifications"], 6);
    assert_eq!(rule["base"]["firing_seconds"], 720.0);
    assert_eq!(rule["base"]["episodes"], 3);
    assert_eq!(rule["episodes_removed"], 2);
    let md = render(Format::Markdown, &head, Some(&base));
    assert!(md.contains("| Hot | 6 → 2 | 12m → 10m | 0 | 2 |"), "{md}");
    assert!(md.contains("- Hot: 6 → 2 notifications"), "{md}");
    let text = render(Format::Text, &head, Some(&base));
    assert!(text.contains("  Hot: 6 → 2 notifications"), "{text}");
    assert!(
        text.contains("T00:20:00.000Z  firing      warning   {alertname=\"Hot\""),
        "{text}"
    );
}

#[test]
fn an_unchanged_rule_and_one_only_at_the_base_are_told_apart() {
    let inputs = [input("temp", "90x5", 0, MIN)];
    let range = plan(0, 4 * MIN);
    let head = replay(&rules(&THRESHOLD.replace("__T__", "80")), None, &range, &inputs, &[]);
    let base = head.clone();
    let d = compare(&head, &base);
    assert!(!d[0].changed());
    assert_eq!(d[0].summary(), "Hot: unchanged, 1 notifications");
    let renamed = rules(&THRESHOLD.replace("__T__", "80").replace("Hot", "Warm"));
    let head = replay(&renamed, None, &range, &inputs, &[]);
    let d = compare(&head, &base);
    let names: Vec<(&str, String)> = d.iter().map(|d| (d.alertname, d.summary())).collect();
    assert_eq!(
        names,
        [
            (
                "Warm",
                "Warm: new rule, 1 notifications; 1 episode added, the longest 4m".to_string()
            ),
            (
                "Hot",
                "Hot: removed, was 1 notifications; 1 episode dropped, all at most 4m long".to_string()
            ),
        ]
    );
}

#[test]
fn missing_and_partly_held_inputs_are_named_under_every_rule_reading_them() {
    let set = rules(
        r#"
groups:
  - name: g
    rules:
      - record: used
        expr: total - free
      - alert: Full
        expr: used > 90
      - alert: Hot
        expr: temp > 80
"#,
    );
    let inputs = [input("total", "100x10", 0, MIN), input("temp", "50x10", 0, MIN)];
    let told = [Gap {
        metric: "temp".to_string(),
        reason: "samples only from 1970-01-01T00:05:00.000Z".to_string(),
    }];
    let report = replay(&set, None, &plan(0, 10 * MIN), &inputs, &told);
    let full = report.rules.iter().find(|r| r.alertname == "Full").unwrap();
    assert_eq!(
        full.gaps,
        [Gap {
            metric: "free".to_string(),
            reason: "no samples in the range".to_string()
        }]
    );
    let hot = report.rules.iter().find(|r| r.alertname == "Hot").unwrap();
    assert_eq!(hot.gaps, told);
    let text = render(Format::Text, &report, None);
    assert!(text.contains("  ! input `free`: no samples in the range"), "{text}");
    let md = render(Format::Markdown, &report, None);
    assert!(md.contains("- **Hot** input `temp`: samples only from"), "{md}");
}

#[test]
fn a_step_overrides_every_groups_interval() {
    let set = rules(MEMORY);
    let mut p = plan(0, 20 * MIN);
    p.step = Some(Duration::from_secs(60));
    assert_eq!(p.intervals(&set), [MIN]);
    assert_eq!(p.evaluations(&set), 21);
    let report = replay(&set, None, &p, &[input("mem_used_percent", MEMORY_VALUES, 0, MIN)], &[]);
    assert_eq!(report.rules[0].notifications(), 4);
}

#[test]
fn with_receivers_notifications_are_counted_per_receiver_after_grouping() {
    let set = rules(&THRESHOLD.replace("__T__", "80"));
    let receivers = r#"
receivers:
  - name: ops
    console: {}
  - name: quiet
    console: {}
    send_resolved: false
routes:
  - receivers: [ops, quiet]
    group_wait: 30s
"#;
    let file = parse_receivers(&Source::new("r.yaml", receivers.as_bytes().to_vec()).unwrap(), &|_| {
        None
    })
    .unwrap();
    let compiled = crate::policy::compile(&[("r.yaml".to_string(), file)], &Default::default());
    assert!(
        compiled
            .diagnostics
            .iter()
            .all(|d| d.severity != crate::diag::Severity::Error),
        "{:?}",
        compiled.diagnostics
    );
    // Two hosts firing at 2m, resolving at 5m: one group per alert by default.
    let inputs = [
        input("temp{host=\"a\"}", "50 50 90 90 90 50x5", 0, MIN),
        input("temp{host=\"b\"}", "50 50 90 90 90 50x5", 0, MIN),
    ];
    let report = replay(&set, Some(&compiled.policy), &plan(0, 8 * MIN), &inputs, &[]);
    let r = &report.rules[0];
    let per: Vec<(Option<&str>, usize)> = r.per_receiver().into_iter().collect();
    // ops: 2 firing + 2 resolved; quiet: 2 firing, no resolves.
    assert_eq!(per, [(Some("ops"), 4), (Some("quiet"), 2)]);
    // group_wait holds the firing 30 s.
    let ops: Vec<(i64, &str)> = (r.sent.iter())
        .filter(|s| s.receiver.as_deref() == Some("ops"))
        .map(|s| (s.at.0, s.kind.name()))
        .collect();
    assert_eq!(
        ops,
        [
            (2 * MIN + 30_000, "firing"),
            (2 * MIN + 30_000, "firing"),
            (5 * MIN, "resolved"),
            (5 * MIN, "resolved")
        ]
    );
}
