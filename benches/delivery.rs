//! Whole-process delivery benchmark: the release `tocsin run` binary notifying a
//! webhook sink on 127.0.0.1 through the durable outbox, and Alertmanager (Debian's
//! `prometheus-alertmanager`) notifying the same sink, one after the other in one run.
//!
//! * sink capacity: first, 16 keep-alive clients POST a notification-sized body to the
//!   sink as fast as it answers, so a figure below is known not to be the sink's;
//! * latency: one transition per evaluation tick (group interval 100 ms, `group_wait` 0);
//!   latency = sink arrival − the evaluation instant (`starts_at` of the native payload),
//!   so it includes the outbox commit, the send and the tick's own scheduling delay.
//!   Alertmanager's: sink arrival − the instant its `POST /api/v2/alerts` was sent;
//! * throughput: N instances cross their threshold in one evaluation; durable
//!   notifications/s = N / (last arrival − evaluation instant), and tocsin's peak RSS
//!   (`VmHWM` of the tocsin process); Alertmanager: N alerts posted at once;
//! * memory per firing routed alert at rest: tocsin's `RssAnon` once the burst is
//!   delivered and the outbox empty, less `RssAnon` before it, over N. An upper bound of
//!   the heap: what the allocator kept from the burst counts too.
//!
//! `cargo bench --bench delivery` runs the full sizes (300 transitions, 30,000 at once);
//! `cargo bench --bench delivery -- --quick` a few seconds of each, to check the plumbing;
//! `--json FILE` writes the figures for `bench/peers.sh`. Without `--bench` (as `cargo
//! test --all-targets` runs it) it is a small smoke run that only checks everything arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde_json::{Value, json};

/// Arrivals at the sink: (wall-clock ms, body).
type Arrivals = Arc<Mutex<Vec<(f64, Bytes)>>>;

/// Where Debian installs Alertmanager.
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook sink on its own thread and runtime (not the benchmark's cores' business to
/// share with tocsin's runtime).
fn start_sink(port: u16) -> Arrivals {
    let arrivals: Arrivals = Arc::default();
    let a = Arc::clone(&arrivals);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            ready_tx.send(()).unwrap();
            let app = axum::Router::new().fallback(move |body: Bytes| {
                let a = Arc::clone(&a);
                async move {
                    a.lock().unwrap().push((wall_ms(), body));
                    "ok"
                }
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    ready_rx.recv().unwrap();
    arrivals
}

/// One request on its own connection; the status code (0 when there was no answer).
fn request(port: u16, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn post(port: u16, path: &str, body: &str) -> u16 {
    request(port, "POST", path, "text/plain", body).0
}

/// A keep-alive HTTP/1.1 client of one connection, for the sink's capacity.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl KeepAlive {
    fn connect(port: u16) -> KeepAlive {
        let writer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        writer.set_nodelay(true).unwrap();
        KeepAlive {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    /// POSTs `body` and reads the whole answer; whether it was a 200.
    fn post(&mut self, body: &str) -> bool {
        write!(
            self.writer,
            "POST /capacity HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let ok = line.starts_with("HTTP/1.1 200");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut rest = vec![0; length];
        self.reader.read_exact(&mut rest).unwrap();
        ok
    }
}

/// Requests per second the sink answers: `clients` keep-alive connections POSTing a body
/// the size of a native notification back to back for `span`.
fn sink_capacity(port: u16, arrivals: &Arrivals, span: Duration) -> f64 {
    let body = format!(
        "{{\"receiver\":\"sink\",\"status\":\"firing\",\"alerts\":[{}],\"pad\":\"{}\"}}",
        json!({"labels": {"alertname": "Tp", "i": "12345"}, "starts_at": "2026-12-01T00:00:00.000Z"}),
        "x".repeat(400)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (stop, done, body) = (Arc::clone(&stop), Arc::clone(&done), body.clone());
            std::thread::spawn(move || {
                let mut c = KeepAlive::connect(port);
                while !stop.load(Ordering::Relaxed) {
                    assert!(c.post(&body), "the sink refused a request");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(span);
    let n = done.load(Ordering::Relaxed);
    let elapsed = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    arrivals.lock().unwrap().clear();
    n as f64 / elapsed.as_secs_f64()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `GET /-/ready` to answer 200.
fn wait_ready(port: u16, what: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never became ready");
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
    wait_ready(port, "tocsin");
    d
}

/// Alertmanager with one route to the sink, one group per alert (as tocsin's default
/// routing) and no wait, clustering off.
fn start_alertmanager(dir: &Path, port: u16, sink: u16) -> Daemon {
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: sink\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1m\n  repeat_interval: 1h\n\
             receivers:\n  - name: sink\n    webhook_configs:\n      - url: \"http://127.0.0.1:{sink}/am\"\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let d = Daemon(child);
    wait_ready(port, "alertmanager");
    d
}

fn starts_at_ms(body: &[u8]) -> f64 {
    let v: Value = serde_json::from_slice(body).unwrap();
    let s = v["alerts"][0]["starts_at"]
        .as_str()
        .expect("native payload has starts_at");
    let t = humantime::parse_rfc3339(s).unwrap();
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn wait_count(arrivals: &Arrivals, n: usize, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if arrivals.lock().unwrap().len() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A `/proc/PID/status` field in KiB (`VmHWM`, `RssAnon`, …).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Median, p90, p99 and max of latencies in ms, printed and as JSON.
fn latency_summary(who: &str, mut lat: Vec<f64>) -> Value {
    lat.sort_by(f64::total_cmp);
    let (median, p90, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
    );
    println!(
        "delivery/latency {who} (n={}): median {median:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        lat.len()
    );
    json!({"n": lat.len(), "median_ms": median, "p90_ms": p90, "p99_ms": p99, "max_ms": max})
}

/// `tocsin_outbox_pending` from tocsin's `/metrics`.
fn outbox_pending(port: u16) -> Option<f64> {
    let (_, body) = request(port, "GET", "/metrics", "text/plain", "");
    body.lines()
        .find(|l| l.starts_with("tocsin_outbox_pending"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

fn measure_tocsin(dir: &Path, sink_port: u16, arrivals: &Arrivals, latency_n: usize, burst_n: usize) -> Value {
    let port = free_port();
    let d = start_tocsin(dir, port, sink_port);
    let pid = d.0.id();

    // Latency: one transition at a time.
    let mut lat = Vec::with_capacity(latency_n);
    for i in 0..latency_n {
        let before = arrivals.lock().unwrap().len();
        assert_eq!(post(port, "/api/v1/push", &format!("lat{{i=\"{i}\"}} 10\n")), 200);
        assert!(
            wait_count(arrivals, before + 1, Duration::from_secs(5)),
            "notification {i} never arrived"
        );
        let (at, body) = arrivals.lock().unwrap()[before].clone();
        lat.push(at - starts_at_ms(&body));
    }
    let latency = latency_summary("tocsin transition->webhook", lat);

    // Throughput: N transitions in one evaluation.
    let anon_before = status_kib(pid, "RssAnon");
    let before = arrivals.lock().unwrap().len();
    let body: String = (0..burst_n).map(|i| format!("tp{{i=\"{i}\"}} 10\n")).collect();
    assert_eq!(post(port, "/api/v1/push", &body), 200);
    assert!(
        wait_count(arrivals, before + burst_n, Duration::from_secs(120)),
        "only {} of {burst_n} notifications arrived",
        arrivals.lock().unwrap().len() - before
    );
    let got = arrivals.lock().unwrap()[before..].to_vec();
    let eval = starts_at_ms(&got[0].1);
    let last = got.iter().map(|(t, _)| *t).fold(f64::MIN, f64::max);
    let first = got.iter().map(|(t, _)| *t).fold(f64::MAX, f64::min);
    let from_eval = burst_n as f64 / ((last - eval) / 1000.0);
    let from_first = burst_n as f64 / ((last - first).max(1.0) / 1000.0);
    let peak_mib = status_kib(pid, "VmHWM") as f64 / 1024.0;
    // At rest: every row delivered and deleted, a few evaluations later.
    let t = Instant::now();
    while outbox_pending(port) != Some(0.0) && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let anon_rest = status_kib(pid, "RssAnon");
    let per_alert = (anon_rest as f64 - anon_before as f64) * 1024.0 / burst_n as f64;
    println!(
        "delivery/throughput tocsin (n={burst_n}): {from_eval:.0} notifications/s from the evaluation ({from_first:.0}/s from the first arrival), \
         peak RSS (VmHWM) {peak_mib:.1} MiB; at rest RssAnon {:.1} -> {:.1} MiB: {per_alert:.0} B per firing routed alert",
        anon_before as f64 / 1024.0,
        anon_rest as f64 / 1024.0
    );
    json!({
        "latency": latency,
        "burst": {
            "n": burst_n, "per_s_from_evaluation": from_eval, "per_s_from_first_arrival": from_first,
            "peak_rss_mib": peak_mib,
        },
        "at_rest": {
            "n": burst_n, "rss_anon_before_kib": anon_before, "rss_anon_after_kib": anon_rest,
            "bytes_per_alert": per_alert,
        },
    })
}

fn am_alerts(name: &str, range: std::ops::Range<usize>) -> String {
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let alerts: Vec<Value> = range
        .map(|i| json!({"labels": {"alertname": name, "i": i.to_string()}, "startsAt": now}))
        .collect();
    Value::Array(alerts).to_string()
}

fn measure_alertmanager(dir: &Path, sink_port: u16, arrivals: &Arrivals, latency_n: usize, burst_n: usize) -> Value {
    let port = free_port();
    let d = start_alertmanager(dir, port, sink_port);
    let pid = d.0.id();
    let mut lat = Vec::with_capacity(latency_n);
    for i in 0..latency_n {
        let before = arrivals.lock().unwrap().len();
        let body = am_alerts("Lat", i..i + 1);
        let sent = wall_ms();
        let (code, answer) = request(port, "POST", "/api/v2/alerts", "application/json", &body);
        assert_eq!(code, 200, "alertmanager refused an alert: {answer}");
        assert!(
            wait_count(arrivals, before + 1, Duration::from_secs(5)),
            "alertmanager's notification {i} never arrived"
        );
        lat.push(arrivals.lock().unwrap()[before].0 - sent);
    }
    let latency = latency_summary("alertmanager POST->webhook", lat);
    let before = arrivals.lock().unwrap().len();
    let body = am_alerts("Tp", 0..burst_n);
    let sent = wall_ms();
    let (code, answer) = request(port, "POST", "/api/v2/alerts", "application/json", &body);
    assert_eq!(code, 200, "alertmanager refused the burst: {answer}");
    let arrived = wait_count(arrivals, before + burst_n, Duration::from_secs(120));
    let got = arrivals.lock().unwrap().len() - before;
    let last = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| *t)
        .fold(f64::MIN, f64::max);
    let per_s = got as f64 / ((last - sent) / 1000.0);
    let peak_mib = status_kib(pid, "VmHWM") as f64 / 1024.0;
    println!(
        "delivery/throughput alertmanager (n={burst_n}, {got} arrived): {per_s:.0} notifications/s from the POST, peak RSS (VmHWM) {peak_mib:.1} MiB, not durable"
    );
    json!({
        "latency": latency,
        "burst": {"n": burst_n, "arrived": got, "complete": arrived, "per_s_from_post": per_s, "peak_rss_mib": peak_mib},
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = args
        .iter()
        .position(|a| a == "--json")
        .map(|i| PathBuf::from(args.get(i + 1).expect("--json needs a file")));
    let (latency_n, burst_n, capacity_span) = match (full, quick) {
        (true, false) => (300, 30_000, Duration::from_secs(3)),
        (true, true) => (30, 3_000, Duration::from_millis(500)),
        (false, _) => (5, 200, Duration::from_millis(200)),
    };
    let dir = tempfile::tempdir().unwrap();
    let sink_port = free_port();
    let arrivals = start_sink(sink_port);
    let capacity = sink_capacity(sink_port, &arrivals, capacity_span);
    println!("delivery/sink capacity: {capacity:.0} requests/s (16 keep-alive clients)");

    let tocsin = measure_tocsin(dir.path(), sink_port, &arrivals, latency_n, burst_n);
    arrivals.lock().unwrap().clear();
    let alertmanager = if !full {
        json!({"skipped": "smoke run"})
    } else if Path::new(ALERTMANAGER).exists() {
        measure_alertmanager(dir.path(), sink_port, &arrivals, latency_n, burst_n)
    } else {
        // A benchmark run in CI must measure the peer; elsewhere it may be missing.
        assert!(
            std::env::var_os("CI").is_none(),
            "{ALERTMANAGER} is missing (apt-get install prometheus-alertmanager)"
        );
        println!("delivery/alertmanager skipped: {ALERTMANAGER} is not installed");
        json!({"skipped": format!("{ALERTMANAGER} is not installed")})
    };
    if let Some(path) = json_out {
        let doc = json!({
            "sink_capacity_per_s": capacity,
            "tocsin": tocsin,
            "alertmanager": alertmanager,
            "sizes": {"latency_n": latency_n, "burst_n": burst_n},
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).expect("writes the --json file");
    }
}
