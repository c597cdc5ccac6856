//! What a deployment adds to everything it sends, end to end with real daemons: links start
//! at `external_url` (or at a connectable form of `listen`), `external_labels` are on every
//! alert (webhook body, API, history, fingerprint) without overriding an alert's own labels
//! and without re-notifying when added, and scrape targets keep or export their own `job`
//! with and without `honor_labels`.

use crate::common;
use crate::common::recorder;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use common::*;
use recorder::Recorder;
use serde_json::Value;

const S10: Duration = Duration::from_secs(10);

/// A daemon home with push enabled, `extra` in `tocsin.yaml`, one webhook receiver posting
/// to `http`'s `/hook` and `rules`.
fn hook_env(extra: &str, http: &Recorder, rules: &str) -> Env {
    hook_env_routed(extra, http, rules, "")
}

/// [`hook_env`] with `route` (indented YAML keys) added to the only route.
fn hook_env_routed(extra: &str, http: &Recorder, rules: &str, route: &str) -> Env {
    Env::pushed(
        extra,
        &format!(
            "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n{route}",
            http.url("/hook")
        ),
        rules,
    )
}

/// The first webhook body received.
fn first_body(http: &Recorder) -> Value {
    http.wait_ok("/hook", 1, S10)[0].json()
}

const ABOVE: &str = "      - alert: Above\n        expr: m > 1\n";

#[test]
fn links_in_a_webhook_body_start_at_external_url() {
    let http = Recorder::start();
    let env = hook_env("external_url: https://alerts.example.com/tocsin/\n", &http, ABOVE);
    let d = env.spawn(&[]);
    d.push("m 5\n");
    let body = first_body(&http);
    assert_eq!(body["externalURL"], "https://alerts.example.com/tocsin", "{body}");
    let link = body["alerts"][0]["generatorURL"].as_str().unwrap();
    let fp = body["alerts"][0]["fingerprint"].as_str().unwrap();
    assert_eq!(
        link,
        format!("https://alerts.example.com/tocsin/#/alert/{fp}"),
        "{body}"
    );
}

/// An HTTP GET of `url` (`http://host:port/path`) through the system's name resolution,
/// as a person following the link would: the status code.
fn follow(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not http: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // A client keeps the fragment (the status page's route) to itself.
    let path = path.split('#').next().unwrap_or_default();
    let addr = authority
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("{authority} does not resolve: {e}"))
        .next()
        .unwrap();
    let mut s = TcpStream::connect_timeout(&addr, S10).unwrap_or_else(|e| panic!("{url}: {e}"));
    s.set_read_timeout(Some(S10)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"))
}

#[test]
fn a_wildcard_listen_address_gives_links_that_work() {
    let http = Recorder::start();
    let env = hook_env("", &http, ABOVE);
    let config = std::fs::read_to_string(env.config()).unwrap();
    let wildcard = config.replace(
        &format!("listen: 127.0.0.1:{}", env.port),
        &format!("listen: 0.0.0.0:{}", env.port),
    );
    assert_ne!(config, wildcard);
    std::fs::write(env.config(), wildcard).unwrap();
    let d = env.spawn(&[]);
    d.push("m 5\n");
    let body = first_body(&http);
    let link = body["alerts"][0]["generatorURL"].as_str().unwrap().to_string();
    assert!(!link.contains("0.0.0.0"), "{link}");
    let fp = body["alerts"][0]["fingerprint"].as_str().unwrap();
    assert!(link.ends_with(&format!(":{}/#/alert/{fp}", env.port)), "{link}");
    assert_eq!(follow(&link), 200, "{link}");
    drop(d);
}

const LABELLED: &str = "      - alert: Above\n        expr: m > 1\n        labels: { team: db }\n";

#[test]
fn external_labels_are_on_every_alert_sent_and_an_alert_label_wins() {
    let http = Recorder::start();
    let env = hook_env("external_labels: { cluster: eu-1, team: infra }\n", &http, LABELLED);
    let d = env.spawn(&[]);
    d.push("m{host=\"a\"} 5\n");
    let api = d.wait_alert("Above", "firing", S10);
    assert_eq!(api["labels"]["cluster"], "eu-1", "{api}");
    assert_eq!(api["labels"]["team"], "db", "the rule's own label wins: {api}");
    assert_eq!(
        api["fingerprint"].as_str().unwrap(),
        am_fingerprint(&api["labels"]),
        "{api}"
    );

    let body = first_body(&http);
    let sent = &body["alerts"][0];
    assert_eq!(sent["labels"], api["labels"], "body {body} vs API {api}");
    assert_eq!(sent["fingerprint"], api["fingerprint"], "body {body} vs API {api}");
    assert_eq!(body["commonLabels"]["cluster"], "eu-1", "{body}");

    let history = d.get("/api/v1/history?rule=Above").json();
    let row = &history["history"][0];
    assert_eq!(row["labels"]["cluster"], "eu-1", "{history}");
    assert_eq!(row["fingerprint"], api["fingerprint"], "{history}");

    // Like Prometheus' own exposition, `/metrics` describes this process: no external labels.
    let alerts = d.wait_metric("ALERTS{", S10);
    assert!(!alerts.contains("cluster"), "{alerts}");
}

/// The value of the first `/metrics` line starting with `prefix`.
fn metric(d: &Daemon, prefix: &str) -> f64 {
    d.metric_line(prefix)
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn adding_external_labels_keeps_state_and_does_not_re_notify() {
    let http = Recorder::start();
    let env = hook_env("", &http, ABOVE);
    let d = env.spawn(&[]);
    d.push("m 5\n");
    let before = d.wait_alert("Above", "firing", S10);
    http.wait_ok("/hook", 1, S10);
    let d = restart_with_cluster_label(&env, d);
    d.push("m 5\n");
    let after = d.wait_alert("Above", "firing", S10);
    assert_eq!(after["labels"]["cluster"], "eu-1", "{after}");
    assert_eq!(
        after["starts_at"], before["starts_at"],
        "the episode continues: {before} {after}"
    );
    // Several evaluations of the claimed instance later, nothing new was sent.
    let iterations = metric(&d, "tocsin_rule_group_iterations_total");
    let later = wait_for(S10, || {
        (metric(&d, "tocsin_rule_group_iterations_total") >= iterations + 3.0).then_some(())
    });
    assert!(later.is_some(), "evaluations stopped: {}", d.stderr());
    let sent = http.requests("/hook");
    assert_eq!(
        sent.len(),
        1,
        "re-notified: {:?}",
        sent.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
}

/// Stops `d` cleanly and appends `external_labels: { cluster: eu-1 }` to its config.
fn restart_with_cluster_label(env: &Env, mut d: Daemon) -> Daemon {
    d.signal("TERM");
    assert!(d.wait_exit(S10).is_some_and(|s| s.success()), "{}", d.stderr());
    drop(d);
    let config = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(env.config(), format!("{config}external_labels: {{ cluster: eu-1 }}\n")).unwrap();
    env.spawn(&[])
}

#[test]
fn re_sends_after_adding_external_labels_carry_them_in_the_same_episode() {
    let http = Recorder::start();
    let env = hook_env_routed("", &http, ABOVE, "    repeat_interval: 2s\n");
    let d = env.spawn(&[]);
    d.push("m 5\n");
    let first = first_body(&http)["alerts"][0].clone();
    let d = restart_with_cluster_label(&env, d);
    d.push("m 5\n");
    let api = d.wait_alert("Above", "firing", S10);
    let resent = wait_for(S10, || {
        http.requests("/hook")
            .iter()
            .map(|r| r.json()["alerts"][0].clone())
            .find(|a| a["labels"]["cluster"] == "eu-1")
    })
    .unwrap_or_else(|| {
        let bodies: Vec<Value> = http.requests("/hook").iter().map(|r| r.json()).collect();
        panic!("no re-send with the external label: {bodies:?}")
    });
    assert_eq!(resent["startsAt"], first["startsAt"], "a new episode: {first} {resent}");
    assert_eq!(resent["labels"], api["labels"], "{resent} vs API {api}");
    assert_eq!(resent["fingerprint"], api["fingerprint"], "{resent} vs API {api}");
    assert_ne!(
        resent["fingerprint"], first["fingerprint"],
        "the label set as sent changed"
    );
}

#[test]
fn a_scraped_job_label_is_exported_unless_honor_labels() {
    let target = Recorder::start();
    target.serve("/metrics", "m{job=\"x\",instance=\"elsewhere:1\"} 5\n");
    let sources = format!(
        "sources:\n  system: ~\n  scrape:\n    - {{ name: plain, url: \"{}\", interval: 1s }}\n    \
         - {{ name: honored, url: \"{}\", interval: 1s, honor_labels: true }}\n",
        target.url("/metrics"),
        target.url("/metrics")
    );
    let env = Env::new("", Some(&sources), &rules_file(ABOVE));
    let d = env.spawn(&[]);
    let labels = wait_for(S10, || {
        let alerts = d.alerts();
        let got: Vec<Value> = alerts.iter().map(|a| a["labels"].clone()).collect();
        (got.len() == 2).then_some(got)
    })
    .unwrap_or_else(|| panic!("alerts: {:?}; stderr:\n{}", d.alerts(), d.stderr()));
    let honored = labels
        .iter()
        .find(|l| l["job"] == "x")
        .unwrap_or_else(|| panic!("{labels:?}"));
    assert_eq!(honored["job"], "x", "{labels:?}");
    assert_eq!(honored["instance"], "elsewhere:1", "{labels:?}");
    assert!(honored.get("exported_job").is_none(), "{labels:?}");
    let plain = labels
        .iter()
        .find(|l| l["job"] == "plain")
        .unwrap_or_else(|| panic!("{labels:?}"));
    assert_eq!(plain["exported_job"], "x", "{labels:?}");
    assert_eq!(plain["exported_instance"], "elsewhere:1", "{labels:?}");
    assert_eq!(plain["instance"], format!("127.0.0.1:{}", target.port), "{labels:?}");
}

#[test]
fn bad_external_url_and_external_labels_are_refused_where_they_are_written() {
    use tocsin::config::{Source, parse_config};
    let no_env = |_: &str| None;
    let parse = |yaml: &str| parse_config(&Source::from_text("tocsin.yaml", yaml).unwrap(), &no_env);
    for bad in ["tocsin.example.com", "ftp://tocsin.example.com", "\"http://\""] {
        let d = parse(&format!("external_url: {bad}\n")).expect_err(bad);
        assert_eq!(d.len(), 1, "{bad}: {d:?}");
        assert_eq!((d[0].code, d[0].line, d[0].column), ("url", 1, 15), "{bad}: {d:?}");
        assert!(d[0].message.contains("external_url"), "{d:?}");
    }
    assert!(parse("external_url: https://tocsin.example.com/base/\n").is_ok());

    let yaml = "external_labels:\n  cluster: eu-1\n  severity: x\n  __meta: x\n  \"a-b\": x\n  alertname: x\n";
    let d = parse(yaml).expect_err("reserved and invalid names");
    let got: Vec<_> = d.iter().map(|d| (d.code, d.line, d.message.as_str())).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for (name, line) in [("severity", 3), ("__meta", 4), ("a-b", 5), ("alertname", 6)] {
        assert!(
            got.iter()
                .any(|(c, l, m)| *c == "external-labels" && *l == line && m.contains(&format!("`{name}`"))),
            "{name}: {got:?}"
        );
    }
    let env = parse("external_labels: { cluster: eu-1, region: \"${REGION:-west}\" }\n");
    assert_eq!(
        env.map(|c| c.external_labels["region"].expose().to_string()),
        Ok("west".to_string())
    );
}
