//! Scaling out on existing engines, with the real engines: Debian's `prometheus` (scraping
//! an exposition the test serves, with its remote-write receiver on) as the datasource of a
//! `query` source and as the remote-write endpoint, two `prometheus-alertmanager` peers
//! clustered over loopback, two tocsin replicas. Plus every way a datasource can answer
//! badly, against servers that answer exactly that.
//!
//! Without the peer binaries the tests that need them are skipped, unless `CI` is set: then
//! a missing binary fails them.

use crate::common;
use crate::common::recorder;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use recorder::Recorder;
use serde_json::Value;

const S10: Duration = Duration::from_secs(10);
const S30: Duration = Duration::from_secs(30);

/// `binary`, or `None` (the test is skipped) when it is missing and `CI` is unset.
pub(crate) fn binary(path: &'static str, package: &str) -> Option<&'static str> {
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{path} is missing (install {package})"
    );
    eprintln!("skipped: {path} is not installed");
    None
}

/// A child process killed when dropped, with its working directory.
pub(crate) struct Peer {
    pub(crate) child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) _dir: tempfile::TempDir,
}

impl Peer {
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Prometheus on 127.0.0.1, scraping `target` (host:port) every second, with no rules of
/// its own and its remote-write receiver on.
fn prometheus(target: &str) -> Option<Peer> {
    let bin = binary("/usr/bin/prometheus", "prometheus")?;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "prometheus.yml",
        &format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: app\n    static_configs: [{{ targets: ['{target}'] }}]\n"
        ),
    );
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let peer = Peer {
        child: Some(child),
        port,
        _dir: dir,
    };
    let ready = wait_for(S30, || get(port, "/-/ready").ok().filter(|r| r.status == 200));
    assert!(ready.is_some(), "prometheus never became ready");
    Some(peer)
}

/// The result vector of `query` on Prometheus at `port`.
fn prom_query(port: u16, query: &str) -> Vec<Value> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = get(port, &format!("/api/v1/query?query={q}")).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Two Alertmanager peers clustered over loopback, both notifying `hook` at `/am`.
fn alertmanager_pair(hook: &Recorder) -> Option<(Peer, Peer)> {
    let bin = binary("/usr/bin/prometheus-alertmanager", "prometheus-alertmanager")?;
    let first_cluster = free_port();
    let start = |cluster: u16, peer: Option<u16>| {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "alertmanager.yml",
            &format!(
                "route:\n  receiver: rec\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: rec\n    webhook_configs:\n      - url: \"{}\"\n",
                hook.url("/am")
            ),
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
            .arg("--cluster.peer-timeout=2s")
            .arg("--cluster.gossip-interval=100ms")
            .arg("--cluster.pushpull-interval=1s");
        if let Some(p) = peer {
            cmd.arg(format!("--cluster.peer=127.0.0.1:{p}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts");
        let peer = Peer {
            child: Some(child),
            port,
            _dir: dir,
        };
        let ready = wait_for(S30, || get(port, "/-/ready").ok().filter(|r| r.status == 200));
        assert!(ready.is_some(), "alertmanager never became ready");
        peer
    };
    let a = start(first_cluster, None);
    let b = start(free_port(), Some(first_cluster));
    // Both see two members before the test relies on their de-duplication.
    for p in [&a, &b] {
        let joined = wait_for(S30, || {
            let r = get(p.port, "/api/v2/status").ok()?;
            (r.json()["cluster"]["peers"].as_array()?.len() == 2).then_some(())
        });
        assert!(joined.is_some(), "the alertmanagers never formed a cluster");
    }
    Some((a, b))
}

/// The alerts of the webhook notifications `hook` received at `/am`, as (status, alertname,
/// value label) in arrival order.
fn am_notifications(hook: &Recorder) -> Vec<(String, String)> {
    hook.requests("/am")
        .iter()
        .flat_map(|r| {
            let body = r.json();
            body["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    (
                        a["status"].as_str().unwrap_or("").to_string(),
                        a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A daemon home whose `tocsin.yaml` has `config` (top-level keys, `sources:` included) and
/// whose only receivers file is `receivers`.
fn home(config: &str, receivers: &str, rules: &str) -> Env {
    let env = Env::new(config, Some(""), &rules_file(rules));
    if !receivers.is_empty() {
        std::fs::remove_file(env.path().join("receivers/console.yaml")).unwrap();
        write(env.path(), "receivers/r.yaml", receivers);
    }
    env
}

#[test]
fn a_query_source_alerts_on_prometheus_data_and_remote_write_lands_back_in_prometheus() {
    let app = Recorder::start();
    app.serve("/metrics", "app_load 10\n");
    let Some(prom) = prometheus(&format!("127.0.0.1:{}", app.port)) else {
        return;
    };
    let rules = "      - record: app_load_doubled\n        expr: app_load * 2\n      - alert: HighLoad\n        expr: app_load\n        tiers: [{ severity: warning, above: 50 }]\n";
    let config = format!(
        "external_labels: {{ cluster: eu-1 }}\ndatasources:\n  - {{ name: prom, url: \"{}\", timeout: 2s }}\nremote_write:\n  - url: \"{}/api/v1/write\"\n    interval: 1s\n    replica_labels: {{ replica: a }}\nsources:\n  system: ~\n  query:\n    - datasource: prom\n      interval: 1s\n      backfill: 0s\n      series:\n        app_load: 'app_load{{job=\"app\"}}'\n",
        prom.url(),
        prom.url()
    );
    let env = home(&config, "", rules);
    let d = env.spawn(&[]);
    d.wait_metric("tocsin_query_up{datasource=\"prom\",series=\"app_load\"} 1", S30);
    app.serve("/metrics", "app_load 80\n");
    let alert = d.wait_alert("HighLoad", "firing", S30);
    assert_eq!(
        alert["labels"]["job"], "app",
        "the datasource's labels are kept: {alert}"
    );
    assert_eq!(alert["labels"]["cluster"], "eu-1");

    // Prometheus has no rules: what it holds of these came through remote write.
    let recorded = wait_for(S30, || {
        prom_query(prom.port, "app_load_doubled")
            .into_iter()
            .find(|s| s["value"][1] == "160")
    })
    .unwrap_or_else(|| panic!("recorded series never written; stderr:\n{}", d.stderr()));
    assert_eq!(recorded["metric"]["cluster"], "eu-1", "{recorded}");
    assert_eq!(recorded["metric"]["replica"], "a", "{recorded}");
    assert_eq!(recorded["metric"]["job"], "app", "{recorded}");
    let alerts = wait_for(S30, || {
        prom_query(prom.port, "ALERTS{alertname=\"HighLoad\",alertstate=\"firing\"}")
            .into_iter()
            .next()
    })
    .expect("ALERTS written");
    assert_eq!(alerts["metric"]["severity"], "warning", "{alerts}");
    assert_eq!(alerts["metric"]["cluster"], "eu-1", "{alerts}");
    let for_state = wait_for(S10, || {
        prom_query(prom.port, "ALERTS_FOR_STATE{alertname=\"HighLoad\"}")
            .into_iter()
            .next()
    })
    .expect("ALERTS_FOR_STATE written");
    let active_at: f64 = for_state["value"][1].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - active_at).abs() < 60.0, "active at {active_at}, now {now}");
    let line = d
        .metric_line("tocsin_remote_write_samples_sent_total")
        .expect("the counter is exposed");
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{line}");

    // Resolved: ALERTS leaves Prometheus at once (a staleness marker), not after 5 minutes.
    app.serve("/metrics", "app_load 5\n");
    let gone = wait_for(S30, || {
        prom_query(prom.port, "ALERTS{alertname=\"HighLoad\"}")
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "ALERTS stayed after the resolve");
}

#[test]
fn a_restarted_replica_resumes_its_for_timer_and_windows_at_once() {
    let app = Recorder::start();
    app.serve("/metrics", "app_load 80\n");
    let Some(prom) = prometheus(&format!("127.0.0.1:{}", app.port)) else {
        return;
    };
    // A `for` that is mostly over when the daemon restarts, and a window the backfill fills.
    let rules = "      - alert: Sustained\n        expr: app_load\n        tiers: [{ severity: warning, above: 50, for: 20s }]\n      - record: load_samples\n        expr: count_over_time(app_load, \"20s\")\n";
    let config = format!(
        "datasources:\n  - {{ name: prom, url: \"{}\" }}\nsources:\n  system: ~\n  query:\n    - datasource: prom\n      interval: 1s\n      series:\n        app_load: 'app_load'\n",
        prom.url()
    );
    let env = home(&config, "", rules);
    // Prometheus has scraped for a while before tocsin first starts.
    let scraped = wait_for(S30, || {
        (!prom_query(prom.port, "count_over_time(app_load[20s]) >= 16").is_empty()).then_some(())
    });
    assert!(scraped.is_some(), "prometheus never scraped the exposition");
    let d = env.spawn(&[]);
    d.wait_alert("Sustained", "pending", S30);
    let pending_at = Instant::now();
    // The first evaluation already sees the backfilled window, not the one or two samples
    // of its own first ticks (a loaded machine may leave a few seconds between the
    // backfill's end and that evaluation).
    let first = wait_for(S10, || d.metric_line("load_samples"))
        .unwrap_or_else(|| panic!("no recorded value; stderr:\n{}", d.stderr()));
    let n: f64 = first.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 10.0, "the window was not backfilled: {first}");
    // Most of the `for`, then a restart.
    wait_for(Duration::from_secs(16), || {
        (pending_at.elapsed() >= Duration::from_secs(14)).then_some(())
    });
    let (_, stderr) = d.kill9();
    let restarted = Instant::now();
    let d = env.spawn(&[]);
    d.wait_alert("Sustained", "firing", S30);
    assert!(
        restarted.elapsed() < Duration::from_secs(15),
        "fired {:?} after the restart: the timer started over (first run:\n{stderr})",
        restarted.elapsed()
    );
}

/// A server that accepts connections and then closes each at once (`close`) or holds it
/// without ever answering.
fn raw_server(close: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            if !close {
                held.push(conn);
            }
        }
    });
    port
}

#[test]
fn every_bad_datasource_answer_marks_its_query_down_with_a_located_line_and_stalls_nothing() {
    let ds = Recorder::start();
    let vector = |items: &str| format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{items}]}}}}"#);
    ds.serve("/good/api/v1/query", &vector(r#"{"metric":{"k":"v"},"value":[1,"7"]}"#));
    ds.script("/e5xx/api/v1/query", &[503; 200]);
    ds.serve("/e5xx/api/v1/query", "overloaded");
    ds.serve("/json/api/v1/query", r#"{"status":"success","data":{"#);
    ds.serve(
        "/scalar/api/v1/query",
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
    );
    ds.serve(
        "/nan/api/v1/query",
        &vector(r#"{"metric":{"k":"v"},"value":[1,"NaN"]}"#),
    );
    let three = r#"{"metric":{"i":"1"},"value":[1,"1"]},{"metric":{"i":"2"},"value":[1,"1"]},{"metric":{"i":"3"},"value":[1,"1"]}"#;
    ds.serve("/many/api/v1/query", &vector(three));
    let silent = raw_server(false);
    let closing = raw_server(true);
    let bad = [
        ("e5xx", ds.url("/e5xx"), "HTTP 503"),
        ("json", ds.url("/json"), "not Prometheus API JSON"),
        ("scalar", ds.url("/scalar"), "the result is a scalar, not a vector"),
        ("nan", ds.url("/nan"), "has the value NaN"),
        (
            "many",
            ds.url("/many"),
            "3 series, more than this source's max_series of 2",
        ),
        (
            "slow",
            format!("http://127.0.0.1:{silent}"),
            "no answer within the time limit",
        ),
        ("closed", format!("http://127.0.0.1:{closing}"), "connection failed"),
    ];
    let mut config = format!("datasources:\n  - {{ name: good, url: \"{}\" }}\n", ds.url("/good"));
    for (name, url, _) in &bad {
        config.push_str(&format!("  - {{ name: {name}, url: \"{url}\", timeout: 500ms }}\n"));
    }
    config.push_str("sources:\n  system: ~\n  query:\n    - { datasource: good, interval: 1s, backfill: 0s, series: { good_value: q } }\n");
    for (name, _, _) in &bad {
        config.push_str(&format!(
            "    - {{ datasource: {name}, interval: 1s, backfill: 0s, max_series: 2, series: {{ {name}_value: q }} }}\n"
        ));
    }
    let rules = "      - alert: Good\n        expr: good_value\n        tiers: [{ severity: warning, above: 5 }]\n";
    let env = home(&config, "", rules);
    let d = env.spawn(&[]);
    // Evaluation goes on: the good source's alert fires while every other source fails.
    let alert = d.wait_alert("Good", "firing", S30);
    assert_eq!(alert["labels"]["k"], "v");
    for (name, _, _) in &bad {
        d.wait_metric(
            &format!("tocsin_query_up{{datasource=\"{name}\",series=\"{name}_value\"}} 0"),
            S10,
        );
    }
    // Several failed ticks of each, so the rate limit shows.
    wait_for(S10, || {
        let line = d.metric_line("tocsin_query_failures_total{datasource=\"e5xx\"")?;
        (line.rsplit(' ').next()?.parse::<f64>().ok()? >= 4.0).then_some(())
    })
    .expect("the failing query keeps running");
    assert_eq!(
        d.metric("tocsin_query_up{datasource=\"good\",series=\"good_value\"}"),
        Some(1.0)
    );
    let stderr = d.stderr();
    let text = std::fs::read_to_string(env.config()).unwrap();
    for (name, _, why) in &bad {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&format!("query `{name}_value` failed")))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: one line per minute, got {lines:?}\n{stderr}");
        assert!(lines[0].contains(why), "{name}: {}", lines[0]);
        // Located at the PromQL string of that entry.
        let line_no = text
            .lines()
            .position(|l| l.contains(&format!("{name}_value: q")))
            .unwrap()
            + 1;
        assert!(
            lines[0].contains(&format!("tocsin.yaml:{line_no}:")),
            "{name}: not located at line {line_no}: {}",
            lines[0]
        );
    }
    // No series was stored from a failed answer, not even part of one.
    let metrics = d.get("/metrics").body;
    for (name, _, _) in &bad {
        assert!(
            !metrics.contains(&format!("tocsin_series{{source=\"query:{name}\"}}")),
            "{name}: {metrics}"
        );
    }
}

#[test]
fn a_replica_pair_feeding_an_alertmanager_cluster_notifies_once_and_survives_losing_one_of_each() {
    let hook = Recorder::start();
    let Some((mut am_a, am_b)) = alertmanager_pair(&hook) else {
        return;
    };
    let receivers = format!(
        "receivers:\n  - name: am\n    retry_backoff: 100ms\n    alertmanager: {{ urls: [\"{}\", \"{}\"], resend_interval: 1s }}\nroutes:\n  - receivers: [am]\n",
        am_a.url(),
        am_b.url()
    );
    let rules = "      - alert: DiskFull\n        expr: disk_used\n        tiers: [{ severity: warning, above: 50 }]\n";
    let sources = "sources:\n  system: ~\n  push: { enabled: true }\n";
    let one = home(sources, &receivers, rules);
    let two = home(sources, &receivers, rules);
    let (d1, d2) = (one.spawn(&[]), two.spawn(&[]));
    for d in [&d1, &d2] {
        d.push("disk_used{host=\"a\"} 60\n");
    }
    let firing = |n: &[(String, String)], name: &str| n.iter().filter(|(s, a)| s == "firing" && a == name).count();
    wait_for(S30, || {
        (firing(&am_notifications(&hook), "DiskFull") >= 1).then_some(())
    })
    .unwrap_or_else(|| panic!("no notification; tocsin:\n{}", d1.stderr()));
    // Both replicas posted to both peers; the cluster sends the transition once. The second
    // peer would send after its peer timeout (2s) if it had not heard of the first's.
    let settled = Instant::now() + Duration::from_secs(5);
    wait_for(Duration::from_secs(6), || (Instant::now() >= settled).then_some(()));
    assert_eq!(
        firing(&am_notifications(&hook), "DiskFull"),
        1,
        "{:?}",
        am_notifications(&hook)
    );

    // One replica and one peer die; the next transition still arrives.
    let _ = d1.kill9();
    am_a.stop();
    d2.push("disk_used{host=\"b\"} 70\n");
    let arrived = wait_for(S30, || {
        hook.requests("/am").iter().find_map(|r| {
            let body = r.json();
            body["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["labels"]["host"] == "b" && a["status"] == "firing")
                .then_some(())
        })
    });
    assert!(
        arrived.is_some(),
        "no notification after the failover: {:?}",
        am_notifications(&hook)
    );
}

/// The samples of one remote-write request body: `(metric name, value)`.
fn written(body: &[u8]) -> Vec<(String, f64)> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).expect("snappy");
    let req: tocsin::remote_write::WriteRequest = prost::Message::decode(raw.as_slice()).expect("protobuf");
    req.timeseries
        .iter()
        .flat_map(|ts| {
            let name = ts
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map(|l| l.value.clone())
                .unwrap_or_default();
            ts.samples.iter().map(move |s| (name.clone(), s.value))
        })
        .collect()
}

#[test]
fn remote_write_retries_server_errors_refuses_nothing_twice_and_a_dead_endpoint_blocks_nothing() {
    let rw = Recorder::start();
    rw.script("/flaky", &[503, 503, 429]);
    rw.script("/refuse", &[400; 500]);
    let dead = free_port();
    let config = format!(
        "remote_write:\n  - {{ url: \"{}\", interval: 1s }}\n  - {{ url: \"{}\", interval: 1s, send: [recorded] }}\n  - {{ url: \"http://127.0.0.1:{dead}/api/v1/write\", interval: 1s, queue_capacity: 5, timeout: 200ms }}\nsources:\n  system: ~\n  push: {{ enabled: true }}\n",
        rw.url("/flaky"),
        rw.url("/refuse")
    );
    let rules = "      - record: doubled\n        expr: v * 2\n      - alert: High\n        expr: v\n        tiers: [{ severity: warning, above: 5 }]\n";
    let env = home(&config, "", rules);
    let d = env.spawn(&[]);
    d.push("v 10\n");
    // Delivery and evaluation go on while one endpoint is down and another refuses.
    d.wait_stdout("High", S10);
    let ok = rw.wait_ok("/flaky", 1, S30);
    let statuses: Vec<u16> = rw.requests("/flaky").iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..4], [503, 503, 429, 200], "retried until accepted");
    let first = rw.requests("/flaky");
    assert_eq!(first[0].body, first[3].body, "the same batch, retried");
    assert_eq!(ok[0].header("content-encoding"), Some("snappy"));
    let samples = written(&ok[0].body);
    assert!(samples.contains(&("doubled".to_string(), 20.0)), "{samples:?}");
    assert!(samples.iter().any(|(n, _)| n == "ALERTS"), "{samples:?}");
    let counter = |family: &str, path: &str| {
        d.metric(&format!("{family}{{url=\"{}\"}}", rw.url(path)))
            .unwrap_or(0.0)
    };
    wait_for(S10, || {
        (counter("tocsin_remote_write_samples_failed_total", "/refuse") >= 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("nothing failed; stderr:\n{}", d.stderr()));
    assert_eq!(counter("tocsin_remote_write_samples_sent_total", "/refuse"), 0.0);
    let refused = rw.requests("/refuse");
    let mut bodies: Vec<&Vec<u8>> = refused.iter().map(|r| &r.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), refused.len(), "a 400 is never retried");
    assert!(
        refused
            .iter()
            .all(|r| written(&r.body).iter().all(|(n, _)| n == "doubled")),
        "send: [recorded] sends no ALERTS"
    );
    // The dead endpoint's queue stays bounded; what it drops is counted.
    let dead_url = format!("http://127.0.0.1:{dead}/api/v1/write");
    wait_for(S30, || {
        (d.metric(&format!(
            "tocsin_remote_write_samples_dropped_total{{url=\"{dead_url}\"}}"
        ))? > 0.0)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("nothing dropped:\n{}", d.get("/metrics").body));
    let queued = d
        .metric(&format!("tocsin_remote_write_queue_samples{{url=\"{dead_url}\"}}"))
        .unwrap();
    assert!(queued <= 5.0, "{queued}");
    assert!(counter("tocsin_remote_write_samples_sent_total", "/flaky") >= 3.0);
}
