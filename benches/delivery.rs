//! Whole-process delivery benchmark: the release `tocsin run` binary notifying a
//! webhook sink on 127.0.0.1 through the durable outbox.
//!
//! * latency: one transition per evaluation tick (group interval 100 ms, `group_wait` 0);
//!   latency = sink arrival − the evaluation instant (`starts_at` of the native payload),
//!   so it includes the outbox commit, the send and the tick's own scheduling delay;
//! * throughput: N instances cross their threshold in one evaluation; durable
//!   notifications/s = N / (last arrival − evaluation instant), and tocsin's peak RSS.
//!
//! `cargo bench --bench delivery` runs the full sizes; without `--bench` (as `cargo test
//! --all-targets` runs it) it is a small smoke run that only checks everything arrives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The integration tests' harness, for its recorder as the webhook sink (on its own thread
/// and runtime, not the benchmark's cores' business to share with tocsin's runtime).
#[path = "../tests/it/common/mod.rs"]
mod common;

use common::free_port;
use common::recorder::Recorder;

/// `t` in ms since the Unix epoch.
fn wall_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn post(port: u16, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tocsin(dir: &Path, port: u16, sink: u16) -> Daemon {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("receivers")).unwrap();
    std::fs::write(
        dir.join("tocsin.yaml"),
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: data/\nrules: [rules/]\nreceivers: [receivers/]\n\
             evaluation_interval: 1s\nsources:\n  system: ~\n  push: {{ enabled: true, max_body: 64MiB, max_series: 1000000 }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/r.yaml"),
        "groups:\n  - name: bench\n    interval: 100ms\n    rules:\n      - alert: Lat\n        expr: lat > 5\n      - alert: Tp\n        expr: tp > 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("receivers/r.yaml"),
        format!(
            "receivers:\n  - name: sink\n    webhook: {{ url: \"http://127.0.0.1:{sink}/hook\", format: native }}\nroutes:\n  - receivers: [sink]\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["run", "-c"])
        .arg(dir.join("tocsin.yaml"))
        .env("TOCSIN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tocsin starts");
    let d = Daemon(child);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return d;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tocsin never became ready");
}

fn starts_at_ms(body: &[u8]) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let s = v["alerts"][0]["starts_at"]
        .as_str()
        .expect("native payload has starts_at");
    let t = humantime::parse_rfc3339(s).unwrap();
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn wait_count(sink: &Recorder, n: usize, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if sink.total() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (latency_n, throughput_n) = if full { (300, 30_000) } else { (5, 200) };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = Recorder::start();
    let d = start_tocsin(dir.path(), port, sink.port);

    // Latency: one transition at a time.
    let mut lat = Vec::with_capacity(latency_n);
    for i in 0..latency_n {
        let before = sink.total();
        assert_eq!(post(port, "/api/v1/push", &format!("lat{{i=\"{i}\"}} 10\n")), 200);
        assert!(
            wait_count(&sink, before + 1, Duration::from_secs(5)),
            "notification {i} never arrived"
        );
        let arrived = &sink.requests("/hook")[before];
        lat.push(wall_ms(arrived.wall) - starts_at_ms(&arrived.body));
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "delivery/latency transition->webhook (n={latency_n}): median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // Throughput: N transitions in one evaluation.
    let before = sink.total();
    let body: String = (0..throughput_n).map(|i| format!("tp{{i=\"{i}\"}} 10\n")).collect();
    assert_eq!(post(port, "/api/v1/push", &body), 200);
    assert!(
        wait_count(&sink, before + throughput_n, Duration::from_secs(120)),
        "only {} of {throughput_n} notifications arrived",
        sink.total() - before
    );
    let got = sink.requests("/hook")[before..].to_vec();
    let eval = starts_at_ms(&got[0].body);
    let last = got.iter().map(|r| wall_ms(r.wall)).fold(f64::MIN, f64::max);
    let first = got.iter().map(|r| wall_ms(r.wall)).fold(f64::MAX, f64::min);
    println!(
        "delivery/throughput (n={throughput_n}): {:.0} notifications/s from the evaluation ({:.0}/s from the first arrival), tocsin peak RSS {:.1} MiB",
        throughput_n as f64 / ((last - eval) / 1000.0),
        throughput_n as f64 / ((last - first).max(1.0) / 1000.0),
        peak_rss_kib(d.0.id()) as f64 / 1024.0
    );
}
