//! Harness for driving the real `tocsin` binary: temp dirs, free ports, a guard that kills
//! the child on drop, captured output, and a tiny HTTP/1.1 client over `TcpStream`.

#![allow(dead_code)]

pub mod peers;
pub mod recorder;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often bounded waits poll.
pub const POLL: Duration = Duration::from_millis(50);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` every [`POLL`] until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Writes `text` to `dir/name`, creating parent folders.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A rule file with one group `g` at `interval: 1s` holding `rules` (YAML list items,
/// indented by six spaces).
pub fn rules_file(rules: &str) -> String {
    format!("groups:\n  - name: g\n    interval: 1s\n    rules:\n{rules}")
}

pub const CONSOLE: &str = "receivers:\n  - name: console\n    console: {}\nroutes:\n  - receivers: [console]\n";

/// The `sources` of a home fed by `POST /api/v1/push`, with host collection off.
pub const PUSHED: &str = "sources:\n  system: ~\n  push: { enabled: true }\n";

/// A daemon's home: config, rules, receivers and data in one temp dir, and its port.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Env {
    /// `extra` is appended to `tocsin.yaml` (top-level keys); `sources` replaces the
    /// default `sources: { system: ~ }` block when given.
    pub fn new(extra: &str, sources: Option<&str>, rules: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sources = sources.unwrap_or("sources:\n  system: ~\n");
        write(
            dir.path(),
            "tocsin.yaml",
            &format!(
                "listen: 127.0.0.1:{port}\ndata_dir: data/\nrules: [rules/]\nreceivers: [receivers/]\n\
                 evaluation_interval: 1s\n{sources}{extra}"
            ),
        );
        write(dir.path(), "rules/r.yaml", rules);
        write(dir.path(), "receivers/console.yaml", CONSOLE);
        Env { dir, port }
    }

    /// A home fed by push ([`PUSHED`]): `extra` in `tocsin.yaml`, the group of `rules`
    /// ([`rules_file`]) and `receivers` as its only receivers file.
    pub fn pushed(extra: &str, receivers: &str, rules: &str) -> Env {
        let env = Env::new(extra, Some(PUSHED), &rules_file(rules));
        env.set_receivers(receivers);
        env
    }

    /// Makes `receivers` the only receivers file, instead of the console.
    pub fn set_receivers(&self, receivers: &str) {
        std::fs::remove_file(self.path().join("receivers/console.yaml")).unwrap();
        write(self.path(), "receivers/r.yaml", receivers);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tocsin.yaml")
    }

    /// Starts `tocsin run -c <config> <args>` and waits until `/-/ready` answers 200.
    pub fn spawn(&self, args: &[&str]) -> Daemon {
        self.spawn_with_env(args, &[])
    }

    /// [`Env::spawn`] with `vars` added to the daemon's environment.
    pub fn spawn_with_env(&self, args: &[&str], vars: &[(&str, &Path)]) -> Daemon {
        let d = self.spawn_unready_with_env(args, vars);
        let ready = wait_for(Duration::from_secs(15), || {
            get(self.port, "/-/ready").ok().filter(|r| r.status == 200)
        });
        assert!(ready.is_some(), "daemon never became ready; stderr:\n{}", d.stderr());
        d
    }

    pub fn spawn_unready(&self, args: &[&str]) -> Daemon {
        self.spawn_unready_with_env(args, &[])
    }

    fn spawn_unready_with_env(&self, args: &[&str], vars: &[(&str, &Path)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .arg("run")
            .arg("-c")
            .arg(self.config())
            .args(args)
            .env("TOCSIN_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tocsin starts");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        Daemon {
            child,
            port: self.port,
            stdout,
            stderr,
        }
    }
}

fn capture(r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut lines = BufReader::new(r);
        let mut line = String::new();
        while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            b.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    buf
}

/// A running `tocsin run`; killed (SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`, `KILL`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([format!("-{sig}"), self.pid()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.child.try_wait().ok().flatten())
    }

    /// kill -9 and reap.
    pub fn kill9(mut self) -> (String, String) {
        self.signal("KILL");
        assert!(self.wait_exit(Duration::from_secs(5)).is_some());
        // Let the reader threads drain what the pipes still hold.
        std::thread::sleep(Duration::from_millis(100));
        (self.stdout(), self.stderr())
    }

    pub fn get(&self, path: &str) -> Resp {
        get(self.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}; stderr:\n{}", self.stderr()))
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.port, "POST", path, headers, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}; stderr:\n{}", self.stderr()))
    }

    pub fn push(&self, text: &str) -> Resp {
        self.post("/api/v1/push", &[("Content-Type", "text/plain")], text.as_bytes())
    }

    /// `/api/v1/alerts` as JSON.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let r = self.get("/api/v1/alerts");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The alert named `name` in `state`, waiting up to `timeout`.
    pub fn wait_alert(&self, name: &str, state: &str, timeout: Duration) -> serde_json::Value {
        wait_for(timeout, || {
            self.alerts()
                .into_iter()
                .find(|a| a["alertname"] == name && a["state"] == state)
        })
        .unwrap_or_else(|| {
            panic!(
                "alert {name} never {state}; alerts: {:?}\nstderr:\n{}",
                self.alerts(),
                self.stderr()
            )
        })
    }

    /// A `/metrics` line starting with `prefix`, waiting up to `timeout`.
    pub fn wait_metric(&self, prefix: &str, timeout: Duration) -> String {
        wait_for(timeout, || self.metric_line(prefix)).unwrap_or_else(|| {
            panic!(
                "no metric line `{prefix}`; /metrics:\n{}\nstderr:\n{}",
                self.get("/metrics").body,
                self.stderr()
            )
        })
    }

    /// The value of the `/metrics` sample named exactly `series` (name and labels), if any.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let prefix = format!("{series} ");
        self.metric_line(&prefix)?.strip_prefix(&prefix)?.parse().ok()
    }

    pub fn metric_line(&self, prefix: &str) -> Option<String> {
        self.get("/metrics")
            .body
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
    }

    /// Scheduled evaluations so far, summed over the rule groups
    /// (`tocsin_rule_group_iterations_total`).
    pub fn evaluations(&self) -> u64 {
        self.get("/metrics")
            .body
            .lines()
            .filter(|l| l.starts_with("tocsin_rule_group_iterations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until `n` more evaluations have started than when it was called, so that
    /// `n - 1` have run to the end: what a test checking that something does *not* happen
    /// waits for, instead of a fixed sleep.
    pub fn wait_evaluations(&self, n: u64, timeout: Duration) {
        let from = self.evaluations();
        wait_for(timeout, || (self.evaluations() >= from + n).then_some(()))
            .unwrap_or_else(|| panic!("fewer than {n} evaluations after {from}; stderr:\n{}", self.stderr()))
    }

    /// Waits until stdout holds a line containing `needle`.
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        wait_for(timeout, || {
            self.stdout().lines().find(|l| l.contains(needle)).map(str::to_string)
        })
        .unwrap_or_else(|| {
            panic!(
                "no stdout line with `{needle}`; stdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn get(port: u16, path: &str) -> std::io::Result<Resp> {
    request(port, "GET", path, &[], b"")
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole response.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413) before reading a large body and close: ignore write errors
    // then and read what it said.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    // Until the server closes, or the body its Content-Length announces is in (a server that
    // keeps the connection open despite `Connection: close`, as chromedriver does).
    while !has_whole_body(&raw) {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    parse_response(&raw)
}

/// Whether `raw` holds the headers and as many body bytes as their Content-Length says.
fn has_whole_body(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|len| raw.len() >= split + 4 + len)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Resp> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_txt = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Alertmanager's `model.LabelSet.Fingerprint`, written out independently of tocsin's:
/// FNV-1a 64 over names and values in name order, each followed by 0xff.
pub fn am_fingerprint(labels: &serde_json::Value) -> String {
    let map: std::collections::BTreeMap<&str, &str> = labels
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in map {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// `tocsin ARGS` in `dir` with its output captured, killed and failed when it runs longer
/// than 30 s (a command that blocks, on a FIFO say, must fail the test, not hang it).
pub fn tocsin_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tocsin runs");
    let exited = wait_for(Duration::from_secs(30), || child.try_wait().ok().flatten());
    if exited.is_none() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("tocsin {args:?} did not exit within 30 s");
    }
    child.wait_with_output().unwrap()
}
