//! Loading of the four file kinds from bytes: the documented examples, each error kind with
//! its location, hostile inputs, environment substitution and secret redaction.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin::config::*;
use tocsin::diag::{Diagnostic, render_text};

macro_rules! kind_of {
    ($name:ident, $variant:ident, $def:ty) => {
        fn $name(r: &ReceiverDef) -> &$def {
            match &r.kind {
                ReceiverKindDef::$variant(k) => k,
                other => panic!("expected a {} receiver, got {other:?}", stringify!($variant)),
            }
        }
    };
}
kind_of!(webhook_of, Webhook, WebhookDef);
kind_of!(slack_of, Slack, SlackDef);
kind_of!(email_of, Email, EmailDef);
kind_of!(alertmanager_of, Alertmanager, AlertmanagerDef);

fn fixture(name: &str) -> Source {
    let path = format!("tests/fixtures/config/{name}");
    let bytes = std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("fixture exists");
    Source::new(&path, bytes).expect("fixture is UTF-8")
}

fn text(path: &str, text: &str) -> Source {
    Source::from_text(path, text).unwrap()
}

/// An environment where every variable is set to `<NAME>`, and `*_URL` variables to a URL
/// ending in it (URLs are checked after substitution).
fn echo_env(name: &str) -> Option<String> {
    if name.ends_with("_URL") {
        Some(format!("https://hooks.example.com/<{name}>"))
    } else {
        Some(format!("<{name}>"))
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The single diagnostic of a failed parse, as (code, line, column).
fn only<T: std::fmt::Debug>(result: Result<T, Vec<Diagnostic>>) -> Diagnostic {
    let diags = result.expect_err("parse fails");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    diags.into_iter().next().unwrap()
}

fn at(d: &Diagnostic) -> (&str, u64, u64) {
    (d.code, d.line, d.column)
}

#[test]
fn spec_rule_file_parses_with_positions() {
    let source = fixture("spec-rules.yaml");
    assert_eq!(detect_kind(&source), Some(FileKind::Rules));
    let file = parse_rules(&source).unwrap();
    let group = &file.groups[0];
    assert_eq!(group.name.value, "memory");
    assert_eq!(group.interval.as_ref().unwrap().value, Dur(Duration::from_secs(15)));
    let record = &group.rules[0];
    assert_eq!(record.record.as_ref().unwrap().value, "rss_growth_bytes_per_second");
    let alert = &group.rules[1];
    assert_eq!((alert.line(), alert.column()), (9, 9));
    assert_eq!(alert.expr.value, "mem_used_percent");
    assert_eq!((alert.expr.line(), alert.expr.column()), (10, 15));
    let tiers = alert.tiers.as_ref().unwrap();
    assert_eq!(tiers.len(), 4);
    assert_eq!(tiers[3].severity.value, "emergency");
    assert_eq!(tiers[3].above.as_ref().map(|a| a.value), Some(95.0));
    assert_eq!(
        (
            tiers[1].above.as_ref().unwrap().line(),
            tiers[1].above.as_ref().unwrap().column()
        ),
        (13, 43)
    );
    assert_eq!(tiers[0].r#for.as_ref().unwrap().value.0, Duration::from_secs(300));
    assert_eq!(alert.hysteresis.as_ref().unwrap().value, 5.0);
    assert_eq!(
        alert.repeat_interval.as_ref().unwrap().value.0,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(alert.labels["team"].value, "infrastructure");
    assert!(
        alert.annotations["summary"]
            .value
            .starts_with("Memory usage is {{ value")
    );
    let action = &alert.actions[0];
    assert_eq!(
        action.exec.as_deref(),
        Some(&["/usr/local/bin/drop-caches".to_string()][..])
    );
    assert_eq!(
        action.on.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(),
        ["critical", "emergency"]
    );
    assert_eq!(action.max_per_hour.as_ref().unwrap().value, 3);
}

#[test]
fn every_rule_key_parses() {
    let file = parse_rules(&fixture("valid-rules-all-keys.yaml")).unwrap();
    let rule = &file.groups[0].rules[1];
    assert_eq!(rule.no_data, Some(NoDataDef::Alert));
    assert_eq!(rule.select.len(), 0);
    assert_eq!(file.groups[0].rules[0].select["device"].value, "~nvme.*");
    assert_eq!(rule.flap.as_ref().unwrap().transitions.value, 6);
    assert_eq!(
        rule.tiers.as_ref().unwrap()[2].when.as_ref().unwrap().value,
        "disk_used_percent > 99"
    );
    assert_eq!(rule.tiers.as_ref().unwrap()[0].clear.as_ref().unwrap().value, 100000.0);
    assert_eq!(rule.actions[0].webhook.as_ref().unwrap().headers["X-Source"], "tocsin");
    assert_eq!(rule.keep_firing_for.as_ref().unwrap().value.0, Duration::ZERO);
    assert_eq!(rule.cooldown_escalations, Some(true));
    let down = &file.groups[0].rules[2];
    assert_eq!(down.severity.as_ref().unwrap().value, "critical");
    assert_eq!(down.r#for.as_ref().unwrap().value.0, Duration::from_secs(60));
}

#[test]
fn spec_receivers_file_parses_with_substitution() {
    let source = fixture("spec-receivers.yaml");
    assert_eq!(detect_kind(&source), Some(FileKind::Receivers));
    let file = parse_receivers(&source, &echo_env).unwrap();
    assert_eq!(file.receivers.len(), 3);
    let hook = webhook_of(&file.receivers[0]);
    assert_eq!(hook.url.expose(), "http://127.0.0.1:8080/alerts");
    assert!(!hook.url.is_secret());
    assert_eq!(hook.format, Some(WebhookFormat::Alertmanager));
    assert_eq!(hook.headers["Authorization"].expose(), "Bearer <HOOK_TOKEN>");
    assert_eq!(hook.hmac_secret.as_ref().unwrap().expose(), "<HOOK_SECRET>");
    let slack = slack_of(&file.receivers[1]);
    assert_eq!(
        slack.webhook_url.expose(),
        "https://hooks.example.com/<SLACK_WEBHOOK_URL>"
    );
    assert_eq!(slack.channel.as_ref().unwrap().expose(), "#memory-alerts");
    let title = slack.title.as_ref().unwrap();
    assert_eq!((title.line(), title.column()), (15, 14));
    let email = email_of(&file.receivers[2]);
    assert_eq!(email.smtp.port.value, 587);
    assert_eq!(email.smtp.tls, Some(TlsMode::Starttls));
    assert_eq!(email.smtp.password.as_ref().unwrap().expose(), "<SMTP_PASSWORD>");
    let route = &file.routes[0];
    let severities: Vec<&str> = route.r#match["severity"].0.iter().map(Text::expose).collect();
    assert_eq!(severities, ["critical", "emergency"]);
    assert!(route.r#continue);
    assert_eq!(route.group_wait.as_ref().unwrap().value.0, Duration::from_secs(10));
    assert!(file.routes[1].r#match.is_empty());
    let inhibit = &file.inhibit_rules[0];
    assert_eq!(inhibit.source["alertname"].0[0].expose(), "HostDown");
    assert_eq!(inhibit.target["severity"].0.len(), 2);
    assert_eq!(inhibit.equal[0].expose(), "instance");
}

#[test]
fn every_receiver_kind_parses() {
    let file = parse_receivers(&fixture("valid-receivers-all-kinds.yaml"), &no_env).unwrap();
    assert!(matches!(file.receivers[0].kind, ReceiverKindDef::Console(_)));
    let am = &file.receivers[1];
    assert_eq!(am.send_resolved, Some(false));
    assert_eq!(
        alertmanager_of(am).url.as_ref().unwrap().expose(),
        "http://127.0.0.1:9093"
    );
    assert_eq!(webhook_of(&file.receivers[2]).format, Some(WebhookFormat::Native));
    assert_eq!(email_of(&file.receivers[3]).smtp.tls, Some(TlsMode::Tls));
    let matchers = &file.routes[0].r#match;
    assert_eq!(matchers["code"].0[0].expose(), "500");
    let single = &matchers["severity"].0[0];
    assert_eq!((single.expose(), single.line(), single.column()), ("critical", 16, 46));
}

#[test]
fn spec_config_parses_and_defaults_fill_the_rest() {
    let source = fixture("spec-config.yaml");
    assert_eq!(detect_kind(&source), Some(FileKind::Config));
    let config = parse_config(&source, &no_env).unwrap();
    assert_eq!(config.rules[0].expose(), "rules/");
    assert_eq!(config.listen.expose(), "127.0.0.1:9470");
    assert_eq!(config.history_retention.value.0, Duration::from_secs(30 * 86400));
    assert_eq!(
        config.api_token, None,
        "an empty token from `${{TOCSIN_API_TOKEN:-}}` is unset"
    );
    let system = config.sources.system.as_ref().unwrap();
    assert_eq!(system.processes[0].expose(), "postgres");
    assert_eq!(config.sources.scrape[0].name.expose(), "app");
    assert_eq!(config.sources.push.max_body, ByteSize(1 << 20));
    assert_eq!(
        config.sources.logs[0].patterns["oom_kill"].expose(),
        "Out of memory: Kill process"
    );
    assert_eq!(config.staleness.value.0, Duration::from_secs(300));

    let with_token = parse_config(&source, &|n| (n == "TOCSIN_API_TOKEN").then(|| "t0k".to_string())).unwrap();
    let token = with_token.api_token.unwrap();
    assert_eq!(token.expose(), "t0k");
    assert_eq!(format!("{token:?} {token}"), "<redacted> <redacted>");
}

#[test]
fn empty_files_are_valid_and_default() {
    let empty = fixture("valid-empty.yaml");
    assert_eq!(detect_kind(&empty), None);
    assert_eq!(parse_rules(&empty).unwrap(), RuleFile::default());
    assert_eq!(parse_receivers(&empty, &no_env).unwrap(), ReceiverFile::default());
    assert_eq!(parse_test(&empty).unwrap(), TestFile::default());
    let config = parse_config(&text("tocsin.yaml", ""), &no_env).unwrap();
    assert_eq!(config, EngineConfig::default());
    assert_eq!(config.evaluation_interval.value.0, Duration::from_secs(15));
    assert_eq!(config.data_dir.expose(), "data/");
    assert!(config.sources.push.enabled);
}

#[test]
fn spec_test_file_parses() {
    let source = fixture("spec-test.yaml");
    assert_eq!(detect_kind(&source), Some(FileKind::Test));
    let file = parse_test(&source).unwrap();
    assert_eq!(file.rule_files[0].value, "../../rules/memory.yaml");
    let case = &file.tests[0];
    assert_eq!(case.name.value, "escalates, then clears with hysteresis");
    assert_eq!(case.input_series[1].series.value, "disk_used_percent{mount=\"/\"}");
    assert_eq!(case.input_series[1].values.value, "50+1x10 _ _ 70x3");
    assert_eq!(case.alerts[0].at.value.0, Duration::from_secs(360));
    assert_eq!(case.alerts[0].firing[0].labels["severity"], "warning");
    assert!(case.alerts[2].firing.is_empty());
    let notifications = case.notifications.as_ref().unwrap();
    assert_eq!(notifications.until.as_ref().unwrap().value.0, Duration::from_secs(1200));
    let second = &notifications.expect[1];
    assert_eq!(second.value["at"], "8m");
    assert_eq!(second.value["event"], "escalated");
    assert_eq!(second.line(), 23);
}

#[test]
fn expected_alerts_take_annotations_and_scalar_values() {
    let yaml = "tests:\n  - name: t\n    alerts:\n      - at: 1m\n        firing:\n          - { alertname: A, code: 500, annotations: { summary: hot, n: 2 } }\n    notifications:\n      expect:\n        - { at: 90s, event: firing, value: 2.5, ok: true }\n";
    let file = parse_test(&text("t.yaml", yaml)).unwrap();
    let alert = &file.tests[0].alerts[0].firing[0];
    assert_eq!(
        alert.labels,
        BTreeMap::from([("alertname".into(), "A".into()), ("code".into(), "500".into())])
    );
    assert_eq!(
        alert.annotations,
        BTreeMap::from([("n".into(), "2".into()), ("summary".into(), "hot".into())])
    );
    let expect = &file.tests[0].notifications.as_ref().unwrap().expect[0].value;
    assert_eq!(
        (expect["at"].as_str(), expect["value"].as_str(), expect["ok"].as_str()),
        ("90s", "2.5", "true")
    );
}

#[test]
fn unknown_key_names_the_closest_key() {
    let d = only(parse_rules(&fixture("invalid/unknown-key.yaml")));
    assert_eq!(at(&d), ("unknown-key", 6, 9));
    assert_eq!(d.message, "unknown key `severty`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `severity`?"));
    let far = only(parse_rules(&text("r.yaml", "groups: []\nzzz: 1\n")));
    assert_eq!(at(&far), ("unknown-key", 2, 1));
    assert_eq!(far.hint.as_deref(), Some("expected one of: `groups`"));
}

#[test]
fn duplicate_key_is_located() {
    let d = only(parse_rules(&fixture("invalid/duplicate-key.yaml")));
    assert_eq!(at(&d), ("duplicate-key", 6, 9));
    assert_eq!(d.message, "duplicate key `expr`");
}

#[test]
fn bad_duration_is_located() {
    let d = only(parse_rules(&fixture("invalid/bad-duration.yaml")));
    assert_eq!(at(&d), ("invalid-value", 3, 15));
    assert!(d.message.contains("`15` has no unit"), "{}", d.message);
    let d = only(parse_rules(&text(
        "r.yaml",
        "groups:\n  - name: x\n    interval: soon\n",
    )));
    assert_eq!(at(&d), ("invalid-value", 3, 15));
    assert!(d.message.contains("`soon` is not a duration"), "{}", d.message);
}

#[test]
fn non_finite_thresholds_are_located() {
    let d = only(parse_rules(&fixture("invalid/non-finite.yaml")));
    assert_eq!(at(&d), ("non-finite", 7, 41));
    assert_eq!(d.message, "`above` must be a finite number, not inf");
    let d = only(parse_rules(&text(
        "r.yaml",
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: a\n        hysteresis: .nan\n",
    )));
    assert_eq!(at(&d), ("non-finite", 6, 21));
}

#[test]
fn missing_key_and_wrong_shape_are_located() {
    let d = only(parse_rules(&text(
        "r.yaml",
        "groups:\n  - name: x\n    rules:\n      - alert: A\n",
    )));
    assert_eq!(at(&d), ("missing-key", 4, 9));
    assert_eq!(d.message, "missing key `expr`");
    let d = only(parse_rules(&text("r.yaml", "groups: memory\n")));
    assert_eq!(at(&d), ("invalid-type", 1, 9));
    assert_eq!(d.message, "expected a list here");
    let d = only(parse_rules(&text(
        "r.yaml",
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: a\n        no_data: resolv\n",
    )));
    assert_eq!(d.hint.as_deref(), Some("did you mean `resolve`?"));
}

#[test]
fn yaml_syntax_errors_are_located() {
    let d = only(parse_rules(&text("r.yaml", "groups:\n  - name: \"x\n")));
    assert_eq!(d.code, "yaml");
    assert!(d.line >= 2, "{d:?}");
    let d = only(parse_receivers(
        &text("r.yaml", "receivers:\n  - { name: x, webhook: { url: ${URL} } }\n"),
        &echo_env,
    ));
    assert_eq!(d.code, "yaml");
    assert!(d.hint.unwrap().contains("must be quoted"));
}

#[test]
fn alias_bomb_fails_fast() {
    let source = fixture("invalid/alias-bomb.yaml");
    // The kind may be told from the top-level keys alone; the parse must fail either way.
    assert!(parse_rules(&source).is_err());
    // Either the expansion hits the alias limits, or the typed parse stops at the first
    // unknown key before expanding anything; both fail without building the bomb.
    let d = only(parse_any(&source, &no_env));
    assert!(
        d.code == "unknown-key" || (d.code == "yaml" && d.message.contains("limits")),
        "{d:?}"
    );
    let d = only(parse_config(&source, &no_env));
    assert!(
        d.code == "unknown-key" || (d.code == "yaml" && d.message.contains("limits")),
        "{d:?}"
    );
    let typed = "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: a\n        labels: &l { a: b }\n        annotations: *l\n";
    assert!(parse_rules(&text("r.yaml", typed)).is_ok(), "ordinary aliases work");
}

#[test]
fn deep_nesting_fails_without_overflow() {
    for doc in [
        format!("groups: {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("groups: {}1{}", "{a: ".repeat(100_000), "}".repeat(100_000)),
        // Block nesting is bounded by the file size cap: 1,400 levels fit in 4 MiB.
        (0..1_400)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect::<String>(),
    ] {
        let source = Source::from_text("deep.yaml", doc);
        let Ok(source) = source else { continue };
        assert!(parse_rules(&source).is_err());
        assert!(parse_any(&source, &no_env).is_err());
    }
}

#[test]
fn non_utf8_and_oversized_files_are_rejected() {
    let d = Source::new("bad.yaml", b"groups:\n  - name: caf\xe9\n".to_vec()).unwrap_err();
    assert_eq!(at(&d), ("encoding", 2, 14));
    let d = Source::new("big.yaml", vec![b'#'; MAX_FILE_BYTES + 1]).unwrap_err();
    assert_eq!(d.code, "too-large");
    let bom = Source::new("bom.yaml", b"\xEF\xBB\xBFgroups: []\n".to_vec()).unwrap();
    assert_eq!(bom.text(), "groups: []\n");
}

#[test]
fn missing_environment_variable_is_located() {
    let d = only(parse_receivers(&fixture("invalid/missing-env.yaml"), &no_env));
    assert_eq!(at(&d), ("env", 5, 20));
    assert_eq!(d.message, "environment variable `HOOK_SECRET` is not set");
    let yaml = "listen: ${HOST:-0.0.0.0}:${PORT}\napi_token: ${A}${B}\n";
    let diags = parse_config(&text("tocsin.yaml", yaml), &no_env).unwrap_err();
    let found: Vec<_> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (1, "environment variable `PORT` is not set"),
            (2, "environment variable `A` is not set"),
            (2, "environment variable `B` is not set"),
        ]
    );
    let config = parse_config(&text("tocsin.yaml", yaml), &|n| match n {
        "HOST" => None,
        "PORT" => Some("9470".to_string()),
        other => Some(other.to_lowercase()),
    })
    .unwrap();
    assert_eq!(config.listen.expose(), "0.0.0.0:9470");
    assert_eq!(config.api_token.unwrap().expose(), "ab");
}

#[test]
fn rule_files_are_not_substituted() {
    let yaml =
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: a\n        annotations: { s: \"${X}\" }\n";
    let file = parse_rules(&text("r.yaml", yaml)).unwrap();
    assert_eq!(file.groups[0].rules[0].annotations["s"].value, "${X}");
}

#[test]
fn secrets_are_redacted_in_debug_and_serialize() {
    let hunter2 = |name: &str| {
        Some(
            if name.ends_with("_URL") {
                "https://hunter2.example"
            } else {
                "hunter2"
            }
            .to_string(),
        )
    };
    let file = parse_receivers(&fixture("spec-receivers.yaml"), &hunter2).unwrap();
    let debug = format!("{file:?}");
    let json = serde_json::to_string(&file).unwrap();
    for shown in [&debug, &json] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(
            shown.contains("http://127.0.0.1:8080/alerts"),
            "plain values stay visible"
        );
    }
    let email = email_of(&file.receivers[2]);
    assert_eq!(email.smtp.password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!(email.smtp.password.as_ref().unwrap().to_string(), "<redacted>");
}

#[test]
fn receivers_need_exactly_one_kind() {
    let d = only(parse_receivers(&fixture("invalid/receiver-kind.yaml"), &no_env));
    assert_eq!(at(&d), ("receiver-kind", 2, 5));
    assert_eq!(d.message, "receiver `both` has several kinds: webhook, console");
    let d = only(parse_receivers(
        &text("r.yaml", "receivers:\n  - name: none\n"),
        &no_env,
    ));
    assert_eq!(d.message, "receiver `none` has no kind");
}

#[test]
fn kinds_are_told_by_top_level_keys() {
    let kind = |yaml: &str| detect_kind(&text("x.yaml", yaml));
    assert_eq!(kind("groups: []"), Some(FileKind::Rules));
    assert_eq!(kind("routes: []"), Some(FileKind::Receivers));
    assert_eq!(kind("inhibit_rules: []"), Some(FileKind::Receivers));
    assert_eq!(
        kind("receivers:\n  - name: x\n    console: {}\n"),
        Some(FileKind::Receivers)
    );
    assert_eq!(kind("receivers: [receivers/]\n"), Some(FileKind::Config));
    assert_eq!(kind("rules: [rules/]\nlisten: x\n"), Some(FileKind::Config));
    assert_eq!(kind("listen: 0.0.0.0:1\n"), Some(FileKind::Config));
    assert_eq!(kind("rule_files: [a]\nevaluation_interval: 1m\n"), Some(FileKind::Test));
    assert_eq!(kind("tests: []"), Some(FileKind::Test));
    assert_eq!(kind("something: else"), None);
    assert_eq!(kind("- a list"), None);
    assert_eq!(kind("groups: [{ a: .nan }]"), Some(FileKind::Rules));
    let d = only(parse_any(&text("x.yaml", "something: else\n"), &no_env));
    assert_eq!(at(&d), ("kind", 0, 0));
    assert!(matches!(
        parse_any(&fixture("spec-test.yaml"), &no_env),
        Ok(AnyFile::Test(_))
    ));
}

#[test]
fn diagnostics_render_with_the_source_line() {
    let source = fixture("invalid/unknown-key.yaml");
    let diags = parse_rules(&source).unwrap_err();
    let out = render_text(&diags, &|path| {
        (path == source.path()).then(|| source.text().to_string())
    });
    let expected = "\
error[unknown-key]: unknown key `severty`
  --> tests/fixtures/config/invalid/unknown-key.yaml:6:9
  |
6 |         severty: critical
  |         ^
  = hint: did you mean `severity`?
";
    assert_eq!(out, expected);
}

/// Every (code, line, column) of a failed parse, in order.
fn all_at<T: std::fmt::Debug>(result: Result<T, Vec<Diagnostic>>) -> Vec<(&'static str, u64, u64)> {
    result
        .expect_err("parse fails")
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

#[test]
fn listen_must_be_host_and_port() {
    let d = only(parse_config(&text("tocsin.yaml", "listen: 9999\n"), &no_env));
    assert_eq!(at(&d), ("listen", 1, 9));
    assert!(d.message.contains("9999"), "{d:?}");
    assert!(d.hint.as_deref().unwrap_or("").contains("127.0.0.1:9999"), "{d:?}");
    for bad in ["\":9470\"", "localhost", "127.0.0.1:99999", "\"[::1]\"", "\"a b:80\""] {
        let src = text("tocsin.yaml", &format!("listen: {bad}\n"));
        assert_eq!(at(&only(parse_config(&src, &no_env))), ("listen", 1, 9), "{bad}");
    }
    for good in [
        "127.0.0.1:9470",
        "\"[::1]:9470\"",
        "localhost:80",
        "0.0.0.0:0",
        "tocsin.internal:9470",
    ] {
        let src = text("tocsin.yaml", &format!("listen: {good}\n"));
        assert!(parse_config(&src, &no_env).is_ok(), "{good}");
    }
}

#[test]
fn receiver_urls_must_be_absolute_http_with_a_host() {
    let yaml = "\
receivers:
  - name: a
    webhook: { url: \"not a url\" }
  - name: b
    slack: { webhook_url: \"file:///etc/passwd\" }
  - name: c
    alertmanager: { url: \"ftp://am.example.com\" }
  - name: d
    webhook: { url: \"http://\" }
  - name: ok
    webhook: { url: \"https://hooks.example.com/x\" }
";
    let diags = parse_receivers(&text("r.yaml", yaml), &no_env).unwrap_err();
    let got: Vec<_> = diags.iter().map(|d| (d.code, d.line, d.column)).collect();
    assert_eq!(
        got,
        [("url", 3, 21), ("url", 5, 27), ("url", 7, 26), ("url", 9, 21)],
        "{diags:#?}"
    );
    assert!(diags[1].message.contains("`file`"), "{:?}", diags[1]);
}

#[test]
fn receiver_headers_must_be_valid_http() {
    let yaml = "\
receivers:
  - name: a
    webhook:
      url: http://127.0.0.1:1/x
      headers:
        X Bad: one
        X-Good: \"two\\nlines\"
        X-Fine: ok
";
    let diags = parse_receivers(&text("r.yaml", yaml), &no_env).unwrap_err();
    let got: Vec<_> = diags.iter().map(|d| (d.code, d.line, d.column)).collect();
    assert_eq!(got, [("header", 6, 9), ("header", 7, 17)], "{diags:#?}");
    assert!(diags[0].message.contains("`X Bad`"), "{:?}", diags[0]);
}

#[test]
fn urls_from_the_environment_are_checked_after_substitution_and_stay_redacted() {
    let env = |name: &str| (name == "HOOK").then(|| "hunter2-not-a-url".to_string());
    let yaml = "receivers:\n  - name: a\n    slack: { webhook_url: \"${HOOK}\" }\n";
    let d = only(parse_receivers(&text("r.yaml", yaml), &env));
    assert_eq!(at(&d), ("url", 3, 27));
    let shown = format!("{d:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains(REDACTED), "{shown}");
    let env = |name: &str| (name == "HOOK").then(|| "https://hooks.slack.com/T/B/x".to_string());
    assert!(parse_receivers(&text("r.yaml", yaml), &env).is_ok());
}

#[test]
fn action_webhooks_and_scrape_targets_take_http_urls_only() {
    let rules = "\
groups:
  - name: g
    rules:
      - alert: A
        expr: m > 1
        actions:
          - name: hook
            webhook: { url: \"ftp://x\", headers: { \"bad header\": v } }
";
    assert_eq!(
        all_at(parse_rules(&text("r.yaml", rules))),
        [("url", 8, 29), ("header", 8, 29)]
    );
    let cfg = "sources:\n  scrape:\n    - { name: app, url: \"localhost:8000/metrics\" }\n";
    assert_eq!(
        all_at(parse_config(&text("tocsin.yaml", cfg), &no_env)),
        [("url", 3, 25)]
    );
}

#[test]
fn a_misspelt_engine_key_is_told_apart_from_an_unknown_kind() {
    // Named tocsin.yaml, or mostly engine keys: the engine config, with its "did you mean".
    for (path, yaml, line) in [
        ("deploy/tocsin.yaml", "listne: 127.0.0.1:9470\n", 1),
        ("engine.yaml", "data_dir: d/\nevaluation_interval: 1m\nlistne: x\n", 3),
    ] {
        let src = text(path, yaml);
        assert_eq!(detect_kind(&src), Some(FileKind::Config), "{path}");
        let d = only(parse_any(&src, &no_env));
        assert_eq!(at(&d), ("unknown-key", line, 1), "{path}");
        assert_eq!(d.hint.as_deref(), Some("did you mean `listen`?"), "{path}");
    }
    // Elsewhere a lone misspelt key cannot decide the kind, but the hint still names it.
    let d = only(parse_any(&text("x.yaml", "# rules\ngrups: []\n"), &no_env));
    assert_eq!(at(&d), ("kind", 2, 1));
    assert_eq!(d.hint.as_deref(), Some("did you mean `groups`? (a key of rules files)"));
}

#[test]
fn value_offsets_follow_folding_and_escapes() {
    let yaml = "a:\n  expr: mem > 1\n    && cpu   \n\n    > 2 # note\n  b: \"x \\u00e9\\\n    y\"\n";
    // Plain, folded over a line break (one space) and an empty line (one newline).
    let value = "mem > 1 && cpu\n> 2";
    let at = |i| scalar_position(yaml, 2, 9, i);
    assert_eq!(at(0), (2, 9));
    assert_eq!(at(value.find("&&").unwrap()), (3, 5));
    assert_eq!(at(value.find('\n').unwrap()), (3, 14));
    assert_eq!(at(value.rfind('2').unwrap()), (5, 7));
    // Double-quoted: an escape is one character, an escaped line break none.
    assert_eq!(scalar_position(yaml, 6, 6, 2), (6, 9));
    assert_eq!(scalar_position(yaml, 6, 6, 3), (7, 5));
    // A folded block scalar and a position outside the text fall back to the start.
    assert_eq!(scalar_position("e: >\n  a b\n", 2, 3, 2), (2, 3));
    assert_eq!(scalar_position("e: x\n", 9, 1, 2), (9, 1));
}

#[test]
fn every_structural_error_of_a_file_is_reported() {
    let yaml = "\
groups:
  - name: a
    rules:
      - alert: A
        expr: m > 1
        severty: high
      - alert: B
        for: 5m
  - name: b
    rules: memory
  - name: c
    intervl: 1m
    rules:
      - alert: C
        expr: m
        no_data: resolv
        tiers:
          - { severity: high, abve: 1 }
extra: 1
";
    let diags = parse_rules(&text("r.yaml", yaml)).unwrap_err();
    let got: Vec<_> = diags.iter().map(|d| (d.code, d.line, d.column)).collect();
    assert_eq!(
        got,
        [
            ("unknown-key", 6, 9),
            ("missing-key", 7, 9),
            ("invalid-type", 10, 12),
            ("unknown-key", 12, 5),
            ("invalid-value", 16, 18),
            ("unknown-key", 18, 31),
            ("unknown-key", 19, 1),
        ],
        "{diags:#?}"
    );
    let hints: Vec<_> = diags.iter().filter_map(|d| d.hint.as_deref()).collect();
    for hint in [
        "did you mean `severity`?",
        "did you mean `interval`?",
        "did you mean `resolve`?",
        "did you mean `above`?",
    ] {
        assert!(hints.contains(&hint), "{hint} in {hints:?}");
    }
    // Receivers, with `${ENV}`: each receiver and route reports its own error.
    let yaml = "\
receivers:
  - name: a
    webhok: { url: \"${URL}\" }
  - name: b
    console: { verbose: true }
routes:
  - receivers: [a]
    grup_by: [x]
";
    let diags = parse_receivers(&text("r.yaml", yaml), &echo_env).unwrap_err();
    let got: Vec<_> = diags.iter().map(|d| (d.code, d.line, d.column)).collect();
    assert_eq!(
        got,
        [("unknown-key", 3, 5), ("unknown-key", 5, 16), ("unknown-key", 8, 5)],
        "{diags:#?}"
    );
}
