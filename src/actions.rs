//! Running response actions: `exec` and `webhook`, with timeouts, and a
//! one-line record of each run for the history.
//!
//! The engine decides *whether* an action runs (`alert::action`); this module runs it. It is
//! I/O by nature (processes, sockets, a clock for durations) and knows nothing about
//! scheduling: the daemon spawns [`run`] and records its [`ActionOutcome`].
//!
//! Alert data never reaches a command line. `exec` runs argv exactly as configured, without
//! a shell, and passes the alert only in `TOCSIN_*` environment variables, so a label value
//! such as `$(rm -rf /)` is inert data. The child runs in its own process group so a timeout
//! can kill everything it started, not just the first process.

use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::engine::ActionRun;
use crate::http_client;
use crate::rules::{Action, ActionKind};
use crate::time::rfc3339_millis;

/// How much of stdout, stderr or a response body is kept.
pub const HEAD_BYTES: usize = 4096;
/// How much of each head [`ActionOutcome::detail`] quotes: the history row stays short.
const DETAIL_HEAD_CHARS: usize = 200;

/// What happened when an action ran (or would have run).
#[derive(Clone, Debug, PartialEq)]
pub struct ActionOutcome {
    /// The run succeeded: exit code 0, or a 2xx answer.
    pub ok: bool,
    /// The run was stopped at the action's timeout.
    pub timed_out: bool,
    /// How long the run took, timeout and cleanup included.
    pub duration: Duration,
    /// The kind-specific result.
    pub result: RunResult,
}

/// The kind-specific part of an [`ActionOutcome`].
#[derive(Clone, Debug, PartialEq)]
pub enum RunResult {
    /// `dry_run`: nothing ran; what would have.
    DryRun(String),
    /// The action could not be started or the request not sent (no such program, refused
    /// connection, ...).
    Error(String),
    /// A process ran.
    Exec {
        /// Its exit code, when it exited by itself.
        code: Option<i32>,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
        /// The first [`HEAD_BYTES`] of standard output (lossy UTF-8).
        stdout: String,
        /// The first [`HEAD_BYTES`] of standard error (lossy UTF-8).
        stderr: String,
    },
    /// A webhook answered.
    Webhook {
        /// The HTTP status.
        status: u16,
        /// The first [`HEAD_BYTES`] of the response body (lossy UTF-8).
        body: String,
    },
}

impl ActionOutcome {
    fn error(started: Instant, msg: String) -> ActionOutcome {
        ActionOutcome {
            ok: false,
            timed_out: false,
            duration: started.elapsed(),
            result: RunResult::Error(msg),
        }
    }

    /// A compact summary for the history's `detail` column, e.g.
    /// `exit 0 in 12ms; stdout: done` or `timed out after 30s, killed (signal 9)`.
    pub fn detail(&self) -> String {
        let took = format_duration(self.duration);
        let mut s = match &self.result {
            RunResult::DryRun(what) => return what.clone(),
            RunResult::Error(e) => format!("failed in {took}: {e}"),
            RunResult::Exec { code, signal, .. } => {
                let end = match (code, signal) {
                    (Some(c), _) => format!("exit {c}"),
                    (None, Some(sig)) => format!("killed (signal {sig})"),
                    (None, None) => "ended".to_string(),
                };
                if self.timed_out {
                    format!("timed out after {took}, {end}")
                } else {
                    format!("{end} in {took}")
                }
            }
            RunResult::Webhook { status, .. } => format!("HTTP {status} in {took}"),
        };
        if self.timed_out && !matches!(self.result, RunResult::Exec { .. }) {
            s = format!("timed out: {s}");
        }
        let mut quote = |name: &str, text: &str| {
            let t = one_line(text);
            if !t.is_empty() {
                s.push_str("; ");
                s.push_str(name);
                s.push_str(": ");
                s.push_str(&t);
            }
        };
        match &self.result {
            RunResult::Exec { stdout, stderr, .. } => {
                quote("stdout", stdout);
                quote("stderr", stderr);
            }
            RunResult::Webhook { body, .. } => quote("body", body),
            RunResult::DryRun(_) | RunResult::Error(_) => {}
        }
        s
    }
}

/// Whitespace collapsed to single spaces, cut to [`DETAIL_HEAD_CHARS`] characters.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > DETAIL_HEAD_CHARS {
        out = out.chars().take(DETAIL_HEAD_CHARS).collect();
        out.push('…');
    }
    out
}

fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// What running `action` means, for logs and dry runs: `would run ["a", "b"]` or
/// `would POST <url>`.
pub fn describe(action: &Action) -> String {
    match &action.kind {
        ActionKind::Exec(argv) => format!("would run {argv:?}"),
        ActionKind::Webhook { url, .. } => format!("would POST {url}"),
    }
}

/// Runs `action` for `run` (an admitted action of an instance of alert `alertname`) and
/// reports how it went. Never fails: every problem is in the outcome. With `dry_run`,
/// nothing runs and the outcome says what would have. `client` is built only for a webhook.
pub async fn run(
    action: &Action,
    run: &ActionRun,
    alertname: &str,
    dry_run: bool,
    client: &http_client::Lazy,
) -> ActionOutcome {
    let started = Instant::now();
    if dry_run {
        return ActionOutcome {
            ok: true,
            timed_out: false,
            duration: started.elapsed(),
            result: RunResult::DryRun(format!("dry-run: {}", describe(action))),
        };
    }
    match &action.kind {
        ActionKind::Exec(argv) => exec(argv, &environment(run, alertname), action.timeout).await,
        ActionKind::Webhook { url, headers } => {
            let body = json!({
                "action": action.name,
                "alertname": alertname,
                "event": run.kind.1.name(),
                "severity": &*run.severity,
                "value": run.value.filter(|v| v.is_finite()),
                "labels": run.labels.to_map(),
                "fingerprint": format!("{:016x}", run.fingerprint),
                "at": rfc3339_millis(run.at),
            });
            match client.get().await {
                Ok(client) => webhook(client, url, headers, &body, action.timeout).await,
                Err(e) => ActionOutcome::error(started, format!("POST {url}: {e}")),
            }
        }
    }
}

/// How many actions the daemon runs at once; more wait for a slot.
pub const MAX_CONCURRENT: usize = 8;

/// What the daemon keeps for running actions: a limit on concurrent runs (a burst of
/// alerts must not fork hundreds of processes) and one HTTP client for every webhook,
/// built at the first webhook (most policies have none).
#[derive(Debug)]
pub struct Runner {
    slots: tokio::sync::Semaphore,
    client: http_client::Lazy,
}

impl Runner {
    /// A runner allowing `max_concurrent` runs at once.
    pub fn new(max_concurrent: usize) -> Runner {
        Runner {
            slots: tokio::sync::Semaphore::new(max_concurrent.max(1)),
            client: http_client::Lazy::new(http_client::builder),
        }
    }

    /// [`run`] once a slot is free (the action's timeout starts then).
    pub async fn run(&self, action: &Action, run: &ActionRun, alertname: &str) -> ActionOutcome {
        // The semaphore is never closed, so acquiring cannot fail; if it ever did, running
        // without a slot beats dropping the action.
        let _slot = self.slots.acquire().await.ok();
        self::run(action, run, alertname, false, &self.client).await
    }
}

/// The `TOCSIN_*` variables an `exec` action gets.
fn environment(run: &ActionRun, alertname: &str) -> Vec<(&'static str, String)> {
    let labels = serde_json::to_string(&run.labels.to_map()).unwrap_or_else(|_| "{}".into());
    vec![
        ("TOCSIN_ALERT", alertname.to_string()),
        ("TOCSIN_SEVERITY", run.severity.to_string()),
        (
            "TOCSIN_VALUE",
            run.value.map(crate::series::float_text).unwrap_or_default(),
        ),
        ("TOCSIN_LABELS", labels),
        ("TOCSIN_EVENT", run.kind.1.name().to_string()),
        ("TOCSIN_FINGERPRINT", format!("{:016x}", run.fingerprint)),
        ("TOCSIN_ACTION", run.kind.0.clone()),
    ]
}

/// Kills a process group when dropped while armed: a run abandoned half-way (daemon
/// shutdown, task aborted) must not leave its processes behind. `kill_on_drop` alone would
/// only kill the group leader.
struct GroupGuard {
    pgid: Option<libc::pid_t>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; pgid is the group of a child we spawned and
            // have not reaped yet, or whose group still holds our pipes, so it names our group.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs argv with `env` added to the inherited environment, in a new process group, and
/// waits until it has exited and closed its output, or `timeout` passes; then the whole
/// group is killed.
async fn exec(argv: &[String], env: &[(&'static str, String)], timeout: Duration) -> ActionOutcome {
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return ActionOutcome::error(started, "empty argv".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ActionOutcome::error(started, format!("cannot start {program}: {e}")),
    };
    // With process_group(0) the child leads a group whose id is its pid.
    let mut guard = GroupGuard {
        pgid: child.id().and_then(|p| libc::pid_t::try_from(p).ok()),
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut status: Option<io::Result<ExitStatus>> = None;
    // Both pipes are drained concurrently with the wait, to EOF, keeping only their heads: a
    // child that writes a lot never blocks on a full pipe. Output still open after the leader
    // exited (a background process holding it) keeps the run going until the timeout.
    let finished = tokio::time::timeout(timeout, async {
        let (st, (), ()) = tokio::join!(child.wait(), read_head(stdout, &mut out), read_head(stderr, &mut err));
        status = Some(st);
    })
    .await
    .is_ok();
    if finished {
        // Everything in the group that held our pipes is gone; the rest is not ours to kill.
        guard.pgid = None;
    } else {
        guard.kill();
        status = Some(child.wait().await);
    }
    let (code, signal) = match status {
        Some(Ok(st)) => (st.code(), st.signal()),
        Some(Err(e)) => return ActionOutcome::error(started, format!("waiting for {program}: {e}")),
        None => (None, None),
    };
    ActionOutcome {
        ok: finished && code == Some(0),
        timed_out: !finished,
        duration: started.elapsed(),
        result: RunResult::Exec {
            code,
            signal,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        },
    }
}

/// Reads `r` to its end, keeping the first [`HEAD_BYTES`] in `head`. A read error ends the
/// reading (the process result still counts).
async fn read_head(r: Option<impl AsyncRead + Unpin>, head: &mut Vec<u8>) {
    let Some(mut r) = r else { return };
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = HEAD_BYTES.saturating_sub(head.len());
                head.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// POSTs `body` to `url` with `headers`; a 2xx answer is success.
async fn webhook(
    client: &reqwest::Client,
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    body: &serde_json::Value,
    timeout: Duration,
) -> ActionOutcome {
    let started = Instant::now();
    let mut req = client.post(url).timeout(timeout).json(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let send = async {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let mut head = Vec::new();
        // Only the head is wanted: stop reading there instead of downloading a huge body.
        while head.len() < HEAD_BYTES
            && let Some(chunk) = resp.chunk().await?
        {
            let room = HEAD_BYTES - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok::<_, reqwest::Error>((status, head))
    };
    // reqwest's own timeout covers the request; this one also bounds reading the body head.
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok((status, head))) => ActionOutcome {
            ok: (200..300).contains(&status),
            timed_out: false,
            duration: started.elapsed(),
            result: RunResult::Webhook {
                status,
                body: String::from_utf8_lossy(&head).into_owned(),
            },
        },
        Ok(Err(e)) => ActionOutcome {
            timed_out: e.is_timeout(),
            ..ActionOutcome::error(started, format!("POST {url}: {e}"))
        },
        Err(_) => ActionOutcome {
            timed_out: true,
            ..ActionOutcome::error(started, format!("POST {url}: no answer within {timeout:?}"))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(result: RunResult, timed_out: bool) -> ActionOutcome {
        ActionOutcome {
            ok: false,
            timed_out,
            duration: Duration::from_millis(12),
            result,
        }
    }

    #[test]
    fn detail_is_one_line_with_heads() {
        let o = outcome(
            RunResult::Exec {
                code: Some(0),
                signal: None,
                stdout: "done\nall good\n".into(),
                stderr: String::new(),
            },
            false,
        );
        assert_eq!(o.detail(), "exit 0 in 12ms; stdout: done all good");
        let o = outcome(
            RunResult::Exec {
                code: None,
                signal: Some(9),
                stdout: String::new(),
                stderr: "x".repeat(500),
            },
            true,
        );
        let d = o.detail();
        assert!(
            d.starts_with("timed out after 12ms, killed (signal 9); stderr: xxx"),
            "{d}"
        );
        assert!(d.chars().count() < 300, "{d}");
        let o = outcome(
            RunResult::Webhook {
                status: 503,
                body: "busy".into(),
            },
            false,
        );
        assert_eq!(o.detail(), "HTTP 503 in 12ms; body: busy");
        assert_eq!(
            outcome(RunResult::Error("refused".into()), true).detail(),
            "timed out: failed in 12ms: refused"
        );
    }

    #[test]
    fn values_use_prometheus_spelling() {
        assert_eq!(crate::series::float_text(1.5), "1.5");
        assert_eq!(crate::series::float_text(f64::INFINITY), "+Inf");
        assert_eq!(crate::series::float_text(f64::NAN), "NaN");
    }
}
