//! Debian's peers, started for real on 127.0.0.1: Prometheus (scraping one target, its
//! remote-write receiver on) and Alertmanager (alone, or a pair clustered over loopback),
//! each notifying a [`Recorder`] and killed when dropped.
//!
//! A missing binary skips the test (the starter returns `None` and says so) unless `CI` is
//! set: then it fails.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::recorder::Recorder;
use super::{free_port, get, wait_for, write};

/// How long a peer may take to become ready or to form its cluster.
const READY: Duration = Duration::from_secs(60);

const PROMETHEUS: (&str, &str) = ("/usr/bin/prometheus", "prometheus");
const PROMTOOL: (&str, &str) = ("/usr/bin/promtool", "prometheus");
const ALERTMANAGER: (&str, &str) = ("/usr/bin/prometheus-alertmanager", "prometheus-alertmanager");

/// The binary at `path` (Debian package `package`), or `None` when it is missing and `CI`
/// is unset.
pub fn binary((path, package): (&'static str, &str)) -> Option<&'static str> {
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

/// A running peer; killed when dropped (or at [`Peer::stop`]).
pub struct Peer {
    child: Option<Child>,
    /// Its HTTP port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `cmd` (its state under `dir`) listening on `port`, and waits for `/-/ready`.
    fn start(what: &str, mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Peer {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let peer = Peer {
            child: Some(child),
            port,
            _dir: dir,
        };
        let ready = wait_for(READY, || get(port, "/-/ready").ok().filter(|r| r.status == 200));
        assert!(ready.is_some(), "{what} never became ready");
        peer
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it now (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The alerts an Alertmanager holds as active (neither silenced nor inhibited).
    pub fn active_alerts(&self) -> Vec<Value> {
        let r = get(self.port, "/api/v2/alerts?active=true&silenced=false&inhibited=false").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"]["state"] == "active")
            .cloned()
            .collect()
    }

    /// Waits (up to 10 s) until an Alertmanager's active alerts satisfy `f`.
    pub fn wait_active(&self, what: &str, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_for(Duration::from_secs(10), || Some(self.active_alerts()).filter(|a| f(a)))
            .unwrap_or_else(|| panic!("alertmanager never held {what}; active: {:?}", self.active_alerts()))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Prometheus scraping `target` (host:port) as job `app` every second, with its
/// remote-write receiver on.
pub fn prometheus(target: &str) -> Option<Peer> {
    let bin = binary(PROMETHEUS)?;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "prometheus.yml",
        &format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: app\n    static_configs: [{{ targets: ['{target}'] }}]\n"
        ),
    );
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver");
    Some(Peer::start("prometheus", cmd, port, dir))
}

/// Prometheus over a data directory that `promtool tsdb create-blocks-from openmetrics`
/// filled from `openmetrics` (history written by a test, kept for a century), scraping
/// nothing.
pub fn prometheus_with_history(openmetrics: &str) -> Option<Peer> {
    let bin = binary(PROMETHEUS)?;
    let promtool = binary(PROMTOOL)?;
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "history.om", openmetrics);
    let data = dir.path().join("data");
    let created = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let config = write(dir.path(), "prometheus.yml", "global: { scrape_interval: 1m }\n");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    Some(Peer::start("prometheus", cmd, port, dir))
}

/// How an Alertmanager clusters.
#[derive(Clone, Copy)]
pub enum Cluster {
    /// Clustering off.
    Alone,
    /// Gossip on this port, joining the peer at the other port if any.
    On { listen: u16, join: Option<u16> },
}

/// An Alertmanager whose one route (`group_wait` and `group_interval` 1 s) posts to
/// `hook`'s `/am`.
pub fn alertmanager(hook: &Recorder, cluster: Cluster) -> Option<Peer> {
    let bin = binary(ALERTMANAGER)?;
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
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    match cluster {
        Cluster::Alone => {
            cmd.arg("--cluster.listen-address=");
        }
        Cluster::On { listen, join } => {
            cmd.arg(format!("--cluster.listen-address=127.0.0.1:{listen}"))
                .arg("--cluster.peer-timeout=2s")
                .arg("--cluster.gossip-interval=100ms")
                .arg("--cluster.pushpull-interval=1s");
            if let Some(p) = join {
                cmd.arg(format!("--cluster.peer=127.0.0.1:{p}"));
            }
        }
    }
    Some(Peer::start("alertmanager", cmd, port, dir))
}

/// Two Alertmanagers clustered over loopback (waited for until each sees both), both
/// posting to `hook`'s `/am`.
pub fn alertmanager_pair(hook: &Recorder) -> Option<(Peer, Peer)> {
    let first = free_port();
    let a = alertmanager(
        hook,
        Cluster::On {
            listen: first,
            join: None,
        },
    )?;
    let b = alertmanager(
        hook,
        Cluster::On {
            listen: free_port(),
            join: Some(first),
        },
    )?;
    for p in [&a, &b] {
        let joined = wait_for(READY, || {
            let r = get(p.port, "/api/v2/status").ok()?;
            (r.json()["cluster"]["peers"].as_array()?.len() == 2).then_some(())
        });
        assert!(joined.is_some(), "the alertmanagers never formed a cluster");
    }
    Some((a, b))
}
