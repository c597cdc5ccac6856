//! Real receivers for delivery tests: an HTTP server on 127.0.0.1 that records every request
//! and answers from a per-path script, and Python's aiosmtpd as an SMTP server writing a
//! maildir.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};

use crate::common::{free_port, wait_for};

/// One request the recorder saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// When it arrived by the wall clock, for latencies against times in bodies.
    pub wall: SystemTime,
    /// The status the recorder answered.
    pub status: u16,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A scripted answer: status, extra headers and body, after a delay.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How long the service takes before it answers (the request counts as being handled
    /// meanwhile; a client that gives up first cancels it).
    pub delay: Duration,
}

impl Reply {
    /// An empty answer with `status`, at once.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer with `body`.
    pub fn with_body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }

    /// The same answer, given after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// A JSON answer with `status`.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Builds the answer to the n-th request on a path (0-based) from its body, as the service
/// it stands in for would.
type Responder = Arc<dyn Fn(usize, &[u8]) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    /// Per path: answers given (in order) before anything else.
    replies: HashMap<String, VecDeque<Reply>>,
    /// Per path: how the service answers when nothing is scripted.
    responders: HashMap<String, Responder>,
    requests: Vec<Recorded>,
    /// Per path: statuses to answer before answering 200.
    scripts: HashMap<String, VecDeque<u16>>,
    /// Paths that never answer (the request hangs until the client gives up).
    hang: HashSet<String>,
    /// Per path: the body answered (a metrics endpoint for scrape tests).
    bodies: HashMap<String, String>,
    /// Indices into `requests` of those handled to their end (after the reply's delay), in
    /// that order: what a service that acts on a request once it has processed it acts on.
    /// A request whose client went away first is cancelled and never lands here.
    done: Vec<usize>,
    /// Requests being handled now, and the most ever handled at once.
    handling: usize,
    peak: usize,
}

/// Counts one request as being handled until dropped (also when the server cancels it).
struct Handling(Arc<Mutex<State>>);

impl Handling {
    fn start(st: &Arc<Mutex<State>>) -> Handling {
        let mut s = st.lock().unwrap();
        s.handling += 1;
        s.peak = s.peak.max(s.handling);
        Handling(Arc::clone(st))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.lock().unwrap().handling -= 1;
    }
}

/// A recording HTTP server; stops when dropped.
pub struct Recorder {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Set when the recorder stops: hanging requests end then, so stopping does not wait
    /// for them.
    stopping: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        Recorder::start_on(free_port())
    }

    /// Listens on `port` (a test that simulates an outage starts it late).
    pub fn start_on(port: u16) -> Recorder {
        let state = Arc::new(Mutex::new(State::default()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
                ready_tx.send(()).unwrap();
                let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                    let (st, stopping) = (Arc::clone(&st), stopping_rx.clone());
                    async move { answer(st, stopping, uri, headers, body).await }
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("recorder listens");
        Recorder {
            port,
            state,
            stop: Some(stop_tx),
            stopping,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers `statuses` (in order) to the next requests on `path`, then 200.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_string(), statuses.iter().copied().collect());
    }

    /// Answers `replies` (in order) to the next requests on `path`, then as before.
    pub fn script_replies(&self, path: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(path.to_string(), replies.into());
    }

    /// Answers every request on `path` that nothing scripted with `f(request body)`.
    pub fn respond(&self, path: &str, f: impl Fn(&[u8]) -> Reply + Send + Sync + 'static) {
        self.state
            .lock()
            .unwrap()
            .responders
            .insert(path.to_string(), Arc::new(move |_, body: &[u8]| f(body)));
    }

    /// Answers the n-th request on `path` (0-based) that nothing scripted with `f(n)`.
    pub fn respond_nth(&self, path: &str, f: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        self.state
            .lock()
            .unwrap()
            .responders
            .insert(path.to_string(), Arc::new(move |n, _: &[u8]| f(n)));
    }

    /// Answers `body` to requests on `path` (as a metrics endpoint would).
    pub fn serve(&self, path: &str, body: &str) {
        self.state
            .lock()
            .unwrap()
            .bodies
            .insert(path.to_string(), body.to_string());
    }

    /// Requests on `path` never get an answer.
    pub fn hang(&self, path: &str) {
        self.state.lock().unwrap().hang.insert(path.to_string());
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests it has seen on every path (cheap enough for a tight poll).
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// The requests on `path` handled to their end, in the order they ended.
    pub fn done(&self, path: &str) -> Vec<Recorded> {
        let s = self.state.lock().unwrap();
        s.done
            .iter()
            .map(|&i| &s.requests[i])
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Requests being handled right now.
    pub fn handling_now(&self) -> usize {
        self.state.lock().unwrap().handling
    }

    /// The most requests ever handled at once.
    pub fn peak_concurrency(&self) -> usize {
        self.state.lock().unwrap().peak
    }

    /// Waits until `path` has seen `n` requests answered 2xx.
    pub fn wait_ok(&self, path: &str, n: usize, timeout: Duration) -> Vec<Recorded> {
        wait_for(timeout, || {
            let ok: Vec<Recorded> = self.requests(path).into_iter().filter(|r| r.status < 300).collect();
            (ok.len() >= n).then_some(ok)
        })
        .unwrap_or_else(|| {
            panic!(
                "{path}: fewer than {n} delivered requests; saw {:?}",
                self.requests(path)
            )
        })
    }
}

async fn answer(
    st: Arc<Mutex<State>>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let _handling = Handling::start(&st);
    let path = uri.path().to_string();
    let (status, hang, reply, index) = {
        let mut s = st.lock().unwrap();
        let n = s.requests.iter().filter(|r| r.path == path).count();
        let hang = s.hang.contains(&path);
        let reply = match s.replies.get_mut(&path).and_then(VecDeque::pop_front) {
            Some(r) => r,
            None => match s.scripts.get_mut(&path).and_then(VecDeque::pop_front) {
                Some(status) => Reply::status(status),
                None => match s.responders.get(&path) {
                    Some(f) => f(n, &body),
                    None => Reply::status(200).with_body(s.bodies.get(&path).map_or("", String::as_str)),
                },
            },
        };
        let status = if hang { 0 } else { reply.status };
        s.requests.push(Recorded {
            path,
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
            status,
        });
        (status, hang, reply, s.requests.len() - 1)
    };
    // A hanging request and a delayed answer both end when the recorder stops, so that
    // stopping it never waits for them.
    let wait = if hang { Duration::from_secs(60) } else { reply.delay };
    let stopped = !wait.is_zero() && tokio::time::timeout(wait, stopping.wait_for(|s| *s)).await.is_ok();
    if !hang && !stopped {
        st.lock().unwrap().done.push(index);
    }
    let mut out = HeaderMap::new();
    for (name, value) in &reply.headers {
        out.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    (StatusCode::from_u16(status.max(200)).unwrap(), out, reply.body)
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.stopping.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Python's aiosmtpd writing every message into a maildir; killed when dropped.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts aiosmtpd, or returns `None` (with a note) when it is not installed and
    /// `TOCSIN_REQUIRE_SMTP` is unset. CI sets it, so there a missing server fails.
    pub fn start() -> Option<Smtp> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                std::env::var_os("TOCSIN_REQUIRE_SMTP").is_none(),
                "TOCSIN_REQUIRE_SMTP is set but python3 cannot import aiosmtpd"
            );
            eprintln!("note: aiosmtpd not installed (pip install aiosmtpd); email checks skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let up = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "aiosmtpd never listened on {port}");
        Some(Smtp {
            port,
            maildir,
            child,
            _dir: dir,
        })
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                files.sort();
                out.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
            }
        }
        out
    }

    pub fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<String> {
        wait_for(timeout, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| panic!("fewer than {n} emails arrived; got {:?}", self.messages()))
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
