//! The outbox end to end: the shared recorder (a real HTTP server) and a real SMTP server
//! (aiosmtpd) on 127.0.0.1, a real SQLite store, the delivery loop on a current-thread
//! runtime. Every wait is a bounded poll; backoffs are tens of milliseconds.

use crate::common;
use crate::common::recorder;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::free_port;
use hmac::{Hmac, KeyInit as _, Mac as _};
use recorder::{Recorder, Reply, Smtp};
use sha2::Sha256;
use tocsin::config::{TlsMode, WebhookFormat};
use tocsin::outbox::Outbox;
use tocsin::outbox::db::{EntryStatus, UNCONFIGURED};
use tocsin::receivers::{
    BreakerPolicy, DEFAULT_MAX_IN_FLIGHT, Email, Receiver, ReceiverKind, Receivers, Rendered, RetryPolicy, Webhook,
};
use tocsin::store::{self, Batch, NewOutboxEntry, Store};

const KEY: &str = "X-Tocsin-Idempotency-Key";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The shared recorder answering `/hook` with `script(n)` for the n-th request.
fn hook_server(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Recorder {
    let r = Recorder::start();
    r.respond_nth("/hook", script);
    r
}

/// Idempotency keys of the requests on `/hook` handled to their end, in that order.
fn done_keys(server: &Recorder) -> Vec<String> {
    server
        .done("/hook")
        .iter()
        .map(|h| h.header(KEY).unwrap_or_default().to_owned())
        .collect()
}

fn retry(backoff_ms: u64, max_ms: u64, age_ms: u64) -> RetryPolicy {
    RetryPolicy {
        backoff: Duration::from_millis(backoff_ms),
        max_backoff: Duration::from_millis(max_ms),
        max_retry_age: Duration::from_millis(age_ms),
    }
}

fn webhook(name: &str, url: &str, retry: RetryPolicy, timeout: Duration) -> Receiver {
    Receiver {
        name: name.into(),
        send_resolved: true,
        retry,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        breaker: BreakerPolicy::default(),
        kind: ReceiverKind::Webhook(Webhook {
            url: url.into(),
            format: WebhookFormat::Native,
            headers: vec![],
            hmac_secret: None,
            timeout,
        }),
    }
}

/// A data dir with the daemon's connection (which queues) and the outbox's own.
struct Env {
    dir: tempfile::TempDir,
    daemon: Store,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let daemon = store::open(dir.path(), 0).unwrap().store;
        Env { dir, daemon }
    }

    fn outbox(&self, receivers: Vec<Receiver>, dry_run: bool) -> (Arc<Outbox>, tokio::task::JoinHandle<()>) {
        let own = store::open(self.dir.path(), 0).unwrap().store;
        let list = Receivers {
            list: receivers,
            ..Receivers::default()
        };
        let ob = Outbox::new(own, Arc::new(list), dry_run);
        let task = tokio::spawn(ob.clone().run());
        (ob, task)
    }

    /// Queues one message per (receiver, group, key).
    fn queue(&mut self, entries: &[(&str, &str, &str)], msg: &Rendered) {
        let payload = serde_json::to_string(msg).unwrap();
        let outbox = entries
            .iter()
            .map(|(receiver, group, key)| NewOutboxEntry {
                receiver: (*receiver).into(),
                idempotency_key: (*key).into(),
                group_key: (*group).into(),
                payload: payload.clone(),
                created_ms: now_ms(),
            })
            .collect();
        self.daemon
            .commit(&Batch {
                outbox,
                ..Batch::default()
            })
            .unwrap();
    }

    fn pending(&self) -> usize {
        self.daemon.outbox_pending_counts().unwrap().values().sum::<u64>() as usize
    }

    fn entries(&self, status: EntryStatus) -> Vec<tocsin::outbox::db::OutboxEntry> {
        self.daemon.outbox_entries(status, 1_000).unwrap()
    }
}

async fn until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ok()
}

fn metrics(ob: &Outbox) -> String {
    let mut out = String::new();
    ob.render_metrics(&mut out);
    out
}

fn json(body: &str) -> Rendered {
    Rendered::Json(body.into())
}

#[tokio::test]
async fn retries_5xx_until_delivered_once_with_key_and_signature() {
    let server = hook_server(|n| Reply::status(if n < 3 { 503 } else { 200 }));
    let mut env = Env::new();
    let mut hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(50, 200, 3_600_000),
        Duration::from_secs(2),
    );
    if let ReceiverKind::Webhook(w) = &mut hook.kind {
        w.hmac_secret = Some("s3cret".into());
        w.headers = vec![("X-Team".into(), "ops".into())];
    }
    env.queue(&[("hook", "g", "fp1:1")], &json(r#"{"status":"firing"}"#));
    let (ob, task) = env.outbox(vec![hook], false);

    assert!(until(Duration::from_secs(10), || env.pending() == 0).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = server.requests("/hook");
    assert_eq!(hits.len(), 4, "delivered on the 4th attempt, exactly once");
    for hit in &hits {
        assert_eq!(hit.header(KEY).unwrap_or_default(), "fp1:1");
        assert_eq!(hit.header("content-type").unwrap_or_default(), "application/json");
        assert_eq!(hit.header("x-team").unwrap_or_default(), "ops");
        assert_eq!(&hit.body[..], br#"{"status":"firing"}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&hit.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(hit.header("x-tocsin-signature").unwrap_or_default(), expected);
    }
    let m = metrics(&ob);
    assert!(
        m.contains("tocsin_notifications_total{receiver=\"hook\",result=\"retried\"} 3\n"),
        "{m}"
    );
    assert!(
        m.contains("tocsin_notifications_total{receiver=\"hook\",result=\"sent\"} 1\n"),
        "{m}"
    );
    assert!(m.contains("tocsin_outbox_pending{receiver=\"hook\"} 0\n"), "{m}");
    assert!(m.contains("tocsin_notification_latency_seconds_count 1\n"), "{m}");
    task.abort();
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = hook_server(|n| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after".into(), "1".into())],
                ..Reply::status(429)
            }
        } else {
            Reply::status(200)
        }
    });
    let mut env = Env::new();
    env.queue(&[("hook", "g", "k")], &json("{}"));
    let (_ob, task) = env.outbox(
        vec![webhook(
            "hook",
            &server.url("/hook"),
            retry(50, 100, 3_600_000),
            Duration::from_secs(2),
        )],
        false,
    );
    assert!(until(Duration::from_secs(10), || env.pending() == 0).await);
    let hits = server.requests("/hook");
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(950), "second attempt after {gap:?}");
    task.abort();
}

#[tokio::test]
async fn client_errors_fail_without_retry_and_keep_the_body() {
    let server = hook_server(|_| Reply {
        body: "field \"x\" is unknown".into(),
        ..Reply::status(400)
    });
    let mut env = Env::new();
    env.queue(&[("hook", "g", "k")], &json("{}"));
    let (ob, task) = env.outbox(
        vec![webhook(
            "hook",
            &server.url("/hook"),
            retry(10, 10, 3_600_000),
            Duration::from_secs(2),
        )],
        false,
    );
    assert!(until(Duration::from_secs(10), || !env.entries(EntryStatus::Failed).is_empty()).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.requests("/hook").len(), 1, "a 4xx is not retried");
    let failed = env.entries(EntryStatus::Failed);
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("HTTP 400: field \"x\" is unknown")
    );
    assert!(metrics(&ob).contains("tocsin_notifications_total{receiver=\"hook\",result=\"failed\"} 1\n"));
    task.abort();
}

/// A port nothing listens on.

#[tokio::test]
async fn connection_refused_retries_until_dead() {
    let mut env = Env::new();
    env.queue(&[("hook", "g", "k")], &json("{}"));
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let (ob, task) = env.outbox(
        vec![webhook("hook", &url, retry(20, 50, 400), Duration::from_secs(2))],
        false,
    );
    assert!(until(Duration::from_secs(10), || !env.entries(EntryStatus::Dead).is_empty()).await);
    let dead = env.entries(EntryStatus::Dead);
    assert!(dead[0].attempts > 1, "{dead:?}");
    let error = dead[0].last_error.as_deref().unwrap();
    assert!(error.contains("onnect"), "{error}");
    assert!(!error.contains("127.0.0.1"), "errors carry no URL: {error}");
    // The metrics follow the database commit: wait for them too.
    let dead = "tocsin_notifications_total{receiver=\"hook\",result=\"dead\"} 1\n";
    assert!(until(Duration::from_secs(2), || metrics(&ob).contains(dead)).await);
    assert_eq!(env.pending(), 0);
    task.abort();
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another() {
    let slow = hook_server(|_| Reply {
        delay: Duration::from_secs(30),
        ..Reply::status(200)
    });
    let fast = hook_server(|_| Reply::status(200));
    let mut env = Env::new();
    let budget = DEFAULT_MAX_IN_FLIGHT;
    let groups: Vec<String> = (0..budget + 18).map(|i| format!("g{i}")).collect();
    let slow_entries: Vec<(&str, &str, &str)> = groups.iter().map(|g| ("slow", g.as_str(), g.as_str())).collect();
    env.queue(&slow_entries, &json("{}"));
    let (ob, task) = env.outbox(
        vec![
            webhook(
                "slow",
                &slow.url("/hook"),
                retry(50, 100, 3_600_000),
                Duration::from_secs(3),
            ),
            webhook(
                "fast",
                &fast.url("/hook"),
                retry(50, 100, 3_600_000),
                Duration::from_secs(3),
            ),
        ],
        false,
    );
    // The slow receiver's whole in-flight budget hangs.
    assert!(until(Duration::from_secs(5), || slow.requests("/hook").len() >= budget).await);
    for i in 0..5 {
        let queued = Instant::now();
        env.queue(&[("fast", "f", &format!("f{i}"))], &json("{}"));
        ob.wake();
        assert!(until(Duration::from_secs(2), || fast.requests("/hook").len() == i + 1).await);
        let latency = fast.requests("/hook")[i].at - queued;
        assert!(latency < Duration::from_millis(500), "fast delivery took {latency:?}");
    }
    assert_eq!(
        slow.requests("/hook").len(),
        budget,
        "at most {budget} sends in flight per receiver"
    );
    task.abort();
}

#[tokio::test]
async fn circuit_breaker_slows_a_failing_receiver_to_probes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let server = hook_server(move |_| Reply::status(if h.load(Ordering::SeqCst) { 200 } else { 503 }));
    let mut env = Env::new();
    let groups: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    let entries: Vec<(&str, &str, &str)> = groups.iter().map(|g| ("hook", g.as_str(), g.as_str())).collect();
    env.queue(&entries, &json("{}"));
    // Without a breaker, 10 entries retried every ≤ 10 ms would make hundreds of requests.
    let (ob, task) = env.outbox(
        vec![webhook(
            "hook",
            &server.url("/hook"),
            retry(10, 10, 3_600_000),
            Duration::from_secs(2),
        )],
        false,
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let n = server.requests("/hook").len();
    // The first burst (≤ 10 + a few retries racing the fifth failure) and then one probe
    // after the 1 s cool-off.
    assert!((6..=20).contains(&n), "{n} requests in 2.5 s");
    let m = metrics(&ob);
    assert!(m.contains("tocsin_receiver_circuit_open{receiver=\"hook\"} 1\n"), "{m}");

    healthy.store(true, Ordering::SeqCst);
    // The metrics follow the database commit: wait for them, not for the table.
    let sent = "tocsin_notifications_total{receiver=\"hook\",result=\"sent\"} 10\n";
    assert!(until(Duration::from_secs(10), || metrics(&ob).contains(sent)).await);
    assert_eq!(env.pending(), 0);
    let m = metrics(&ob);
    assert!(m.contains("tocsin_receiver_circuit_open{receiver=\"hook\"} 0\n"), "{m}");
    task.abort();
}

#[tokio::test]
async fn pending_entries_survive_a_restart_and_arrive_once_in_group_order() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut env = Env::new();
    let mut entries = Vec::new();
    for seq in 0..4 {
        for g in 0..5 {
            entries.push((format!("g{g}"), format!("g{g}:{seq}")));
        }
    }
    let refs: Vec<(&str, &str, &str)> = entries.iter().map(|(g, k)| ("hook", g.as_str(), k.as_str())).collect();
    env.queue(&refs, &json("{}"));
    let hook = webhook("hook", &url, retry(50, 200, 3_600_000), Duration::from_secs(2));

    let (ob, task) = env.outbox(vec![hook.clone()], false);
    assert!(
        until(Duration::from_secs(5), || {
            env.entries(EntryStatus::Pending).iter().any(|e| e.attempts > 0)
        })
        .await
    );
    task.abort();
    let _ = task.await;
    drop(ob);
    assert_eq!(env.pending(), 20);

    let server = Recorder::start_on(port);
    server.respond_nth("/hook", |_| Reply::status(200));
    let (_ob, task) = env.outbox(vec![hook], false);
    assert!(until(Duration::from_secs(10), || env.pending() == 0).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let keys: Vec<String> = server
        .requests("/hook")
        .iter()
        .map(|h| h.header(KEY).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(keys.len(), 20, "{keys:?}");
    for g in 0..5 {
        let of_group: Vec<&String> = keys.iter().filter(|k| k.starts_with(&format!("g{g}:"))).collect();
        let expected: Vec<String> = (0..4).map(|s| format!("g{g}:{s}")).collect();
        assert_eq!(
            of_group,
            expected.iter().collect::<Vec<_>>(),
            "group g{g} in order, once each"
        );
    }
    task.abort();
}

#[tokio::test]
async fn dry_run_logs_and_removes_without_sending() {
    let server = hook_server(|_| Reply::status(200));
    let mut env = Env::new();
    env.queue(&[("hook", "g", "a"), ("hook", "g", "b")], &json("{}"));
    let (ob, task) = env.outbox(
        vec![webhook(
            "hook",
            &server.url("/hook"),
            retry(50, 100, 3_600_000),
            Duration::from_secs(2),
        )],
        true,
    );
    assert!(until(Duration::from_secs(5), || env.pending() == 0).await);
    assert_eq!(server.requests("/hook").len(), 0);
    let dry = "tocsin_notifications_total{receiver=\"hook\",result=\"dry_run\"} 2\n";
    assert!(until(Duration::from_secs(2), || metrics(&ob).contains(dry)).await);
    task.abort();
}

#[tokio::test]
async fn entries_of_removed_receivers_fail() {
    let server = hook_server(|_| Reply::status(200));
    let mut env = Env::new();
    env.queue(&[("gone", "g", "a")], &json("{}"));
    let hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(50, 100, 3_600_000),
        Duration::from_secs(2),
    );
    let (ob, task) = env.outbox(vec![hook.clone()], false);
    assert!(until(Duration::from_secs(5), || env.entries(EntryStatus::Failed).len() == 1).await);
    assert_eq!(
        env.entries(EntryStatus::Failed)[0].last_error.as_deref(),
        Some(UNCONFIGURED)
    );

    // A reload that removes a receiver fails what it still had queued.
    env.queue(&[("hook", "g", "b")], &json("{}"));
    ob.wake();
    assert!(until(Duration::from_secs(5), || server.requests("/hook").len() == 1).await);
    // `b` is settled first: this is about what is still queued, not what is in flight.
    assert!(until(Duration::from_secs(5), || env.entries(EntryStatus::Pending).is_empty()).await);
    ob.set_receivers(Arc::new(Receivers::default()));
    env.queue(&[("hook", "g", "c")], &json("{}"));
    ob.set_receivers(Arc::new(Receivers::default()));
    assert!(until(Duration::from_secs(5), || env.entries(EntryStatus::Failed).len() == 2).await);
    assert_eq!(server.requests("/hook").len(), 1);
    task.abort();
}

#[tokio::test]
async fn email_is_sent_as_multipart_alternative_over_smtp() {
    let Some(smtp) = Smtp::start() else { return };
    let mut env = Env::new();
    let receiver = Receiver {
        name: "mail".into(),
        send_resolved: true,
        retry: retry(50, 100, 3_600_000),
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        breaker: BreakerPolicy::default(),
        kind: ReceiverKind::Email(Email {
            to: vec!["oncall@example.com".into(), "Second <two@example.com>".into()],
            from: "tocsin@example.org".into(),
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls: TlsMode::None,
            username: None,
            password: None,
            subject: None,
            timeout: Duration::from_secs(5),
        }),
    };
    let msg = Rendered::Email {
        subject: "[CRITICAL] DiskFull is firing".into(),
        text: "DiskFull is firing on host a".into(),
        html: "<p><b>DiskFull</b> is firing on host a</p>".into(),
    };
    env.queue(&[("mail", "g", "fp9:3")], &msg);
    let (_ob, task) = env.outbox(vec![receiver], false);
    assert!(until(Duration::from_secs(15), || env.pending() == 0).await);
    assert!(env.entries(EntryStatus::Failed).is_empty());

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let raw = mails[0].replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap();
    // Unfold continuation lines so each header is one line.
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| -> String {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} header in\n{head}"))
    };
    assert_eq!(header("Subject"), "[CRITICAL] DiskFull is firing");
    assert_eq!(header("From"), "tocsin@example.org");
    let to = header("To");
    assert!(
        to.contains("oncall@example.com") && to.contains("two@example.com"),
        "{to}"
    );
    assert_eq!(header(KEY), "fp9:3");
    assert_eq!(
        header("Message-ID"),
        tocsin::outbox::send::message_id("fp9:3", "example.org")
    );
    let content_type = header("Content-Type");
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "--")
        .collect();
    assert_eq!(parts.len(), 2, "{body}");
    assert!(
        parts[0].to_ascii_lowercase().contains("content-type: text/plain"),
        "{}",
        parts[0]
    );
    assert!(parts[0].contains("DiskFull is firing on host a"), "{}", parts[0]);
    assert!(
        parts[1].to_ascii_lowercase().contains("content-type: text/html"),
        "{}",
        parts[1]
    );
    assert!(parts[1].contains("<b>DiskFull</b>"), "{}", parts[1]);
    task.abort();
}

/// A backlog of many groups drains completely. (A loop turn in which every send of a full
/// in-flight budget had finished once counted them as still busy, fetched nothing and waited
/// forever; it showed in release builds at this scale, rarely in debug ones.)
#[tokio::test]
async fn a_full_in_flight_budget_keeps_flowing() {
    let server = hook_server(|_| Reply::status(200));
    let mut env = Env::new();
    let keys: Vec<(String, String)> = (0..5_000)
        .map(|i| (format!("g{}", i % 1_000), format!("k{i}")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = keys.iter().map(|(g, k)| ("hook", g.as_str(), k.as_str())).collect();
    env.queue(&refs, &json("{}"));
    let (_ob, task) = env.outbox(
        vec![webhook(
            "hook",
            &server.url("/hook"),
            retry(50, 100, 3_600_000),
            Duration::from_secs(5),
        )],
        false,
    );
    assert!(
        until(Duration::from_secs(60), || env.pending() == 0).await,
        "{} sent",
        server.requests("/hook").len()
    );
    assert_eq!(server.requests("/hook").len(), 5_000);
    task.abort();
}

/// Within a group, a receiver sees messages in the order they were produced, even when
/// attempts time out while the server is still working on them. The server here is slow for
/// every fourth request (longer than the client's time limit) and acts on a request when it
/// has handled it; 70 groups each go firing → resolved → firing (210 notifications in three
/// waves). A timed-out attempt that went on in the background landed after its group's
/// next message, a stale resolve after the new firing.
#[tokio::test]
async fn a_slow_receiver_sees_every_group_in_order_despite_timeouts() {
    let server = hook_server(|n| Reply {
        delay: Duration::from_millis(if n % 4 == 1 { 600 } else { 5 }),
        ..Reply::status(200)
    });
    let mut env = Env::new();
    let groups: Vec<String> = (0..70).map(|g| format!("g{g}")).collect();
    let hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(20, 100, 3_600_000),
        Duration::from_millis(300),
    );
    let (ob, task) = env.outbox(vec![hook], false);
    for seq in 1..=3 {
        let keys: Vec<String> = groups.iter().map(|g| format!("{g}-{seq}")).collect();
        let entries: Vec<(&str, &str, &str)> = groups
            .iter()
            .zip(&keys)
            .map(|(g, k)| ("hook", g.as_str(), k.as_str()))
            .collect();
        let status = if seq == 2 { "resolved" } else { "firing" };
        env.queue(&entries, &json(&format!(r#"{{"status":"{status}"}}"#)));
        ob.wake();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        until(Duration::from_secs(30), || env.pending() == 0).await,
        "{} pending",
        env.pending()
    );
    // Attempts the server was still working on when their client gave up finish by now.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let keys = done_keys(&server);
    // The test means something only if attempts did time out mid-request.
    let retried = metrics(&ob)
        .lines()
        .find_map(|l| l.strip_prefix("tocsin_notifications_total{receiver=\"hook\",result=\"retried\"} "))
        .map_or(0, |n| n.parse::<usize>().unwrap());
    assert!(retried >= 20, "only {retried} attempts timed out");
    for g in &groups {
        let seqs: Vec<u32> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&format!("{g}-"))?.parse().ok())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] <= w[1]),
            "group {g} arrived as {seqs:?} (of {} requests)",
            keys.len()
        );
        assert_eq!(seqs.last(), Some(&3), "group {g}'s last state arrived: {seqs:?}");
    }
    assert!(env.entries(EntryStatus::Failed).is_empty());
    task.abort();
}

/// A reload that drops a receiver fails its pending entries, but the attempt in flight goes
/// on. When the receiver comes back and the daemon queues the group's next message, that
/// message waits for the old attempt to end: it used to be sent at once, next to it, and
/// the receiver acted on the newer message first.
#[tokio::test]
async fn a_group_waits_for_an_attempt_that_outlived_its_receivers_removal() {
    let server = hook_server(|n| Reply {
        delay: Duration::from_millis(if n == 0 { 1_500 } else { 5 }),
        ..Reply::status(200)
    });
    let mut env = Env::new();
    let hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(20, 100, 3_600_000),
        Duration::from_secs(5),
    );
    env.queue(&[("hook", "g", "g-1")], &json("{}"));
    let (ob, task) = env.outbox(vec![hook.clone()], false);
    assert!(until(Duration::from_secs(5), || server.requests("/hook").len() == 1).await);
    ob.set_receivers(Arc::new(Receivers::default()));
    // The sweep of the removed receiver runs now, and spares the attempt under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env.entries(EntryStatus::Failed).is_empty(),
        "an attempt under way was failed"
    );
    ob.set_receivers(Arc::new(Receivers {
        list: vec![hook],
        ..Receivers::default()
    }));
    env.queue(&[("hook", "g", "g-2")], &json("{}"));
    ob.wake();
    assert!(until(Duration::from_secs(10), || done_keys(&server).len() == 2).await);
    assert_eq!(done_keys(&server), ["g-1", "g-2"]);
    assert_eq!(server.peak_concurrency(), 1, "one attempt of the group at a time");
    assert!(
        until(Duration::from_secs(5), || env.entries(EntryStatus::Pending).is_empty()).await,
        "both delivered"
    );
    assert!(
        env.entries(EntryStatus::Failed).is_empty(),
        "a delivered entry is listed as failed"
    );
    task.abort();
}

/// A reload that removes a receiver while one of its entries is being sent leaves that entry
/// to the attempt's outcome: a success deletes it (see the test above), and a retryable
/// failure marks it failed at once instead of retrying for a receiver that is gone.
#[tokio::test]
async fn an_attempt_under_way_when_its_receiver_goes_is_settled_by_its_outcome() {
    let server = hook_server(|n| Reply {
        delay: Duration::from_millis(if n == 0 { 800 } else { 5 }),
        ..Reply::status(if n == 0 { 503 } else { 200 })
    });
    let mut env = Env::new();
    let hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(20, 100, 3_600_000),
        Duration::from_secs(5),
    );
    env.queue(&[("hook", "g", "a")], &json("{}"));
    let (ob, task) = env.outbox(vec![hook], false);
    assert!(until(Duration::from_secs(5), || server.requests("/hook").len() == 1).await);
    ob.set_receivers(Arc::new(Receivers::default()));
    // The 503 ends the attempt; the entry's receiver is gone, so it fails then.
    assert!(until(Duration::from_secs(5), || env.entries(EntryStatus::Failed).len() == 1).await);
    assert_eq!(
        server.requests("/hook").len(),
        1,
        "nothing is retried for a removed receiver"
    );
    task.abort();
}

/// `max_in_flight: 1` (a rate-limited chat webhook): never two requests at the server at
/// once, across groups, and everything still arrives.
#[tokio::test]
async fn max_in_flight_one_sends_one_request_at_a_time() {
    let server = hook_server(|_| Reply {
        delay: Duration::from_millis(5),
        ..Reply::status(200)
    });
    let mut env = Env::new();
    let mut hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(20, 100, 3_600_000),
        Duration::from_secs(2),
    );
    hook.max_in_flight = 1;
    let keys: Vec<(String, String)> = (0..60).map(|i| (format!("g{}", i % 20), format!("k{i}"))).collect();
    let refs: Vec<(&str, &str, &str)> = keys.iter().map(|(g, k)| ("hook", g.as_str(), k.as_str())).collect();
    env.queue(&refs, &json("{}"));
    let (_ob, task) = env.outbox(vec![hook], false);
    assert!(until(Duration::from_secs(20), || env.pending() == 0).await);
    assert_eq!(done_keys(&server).len(), 60);
    assert_eq!(server.peak_concurrency(), 1);
    task.abort();
}

/// The receiver's breaker cool-offs are used: with 100 ms instead of the default 1 s, a
/// failing receiver is probed about every 100 ms (the default would probe once in 1.5 s).
#[tokio::test]
async fn breaker_cool_offs_come_from_the_receiver() {
    let server = hook_server(|_| Reply::status(503));
    let mut env = Env::new();
    let groups: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    let entries: Vec<(&str, &str, &str)> = groups.iter().map(|g| ("hook", g.as_str(), g.as_str())).collect();
    env.queue(&entries, &json("{}"));
    let mut hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(10, 10, 3_600_000),
        Duration::from_secs(2),
    );
    hook.breaker = BreakerPolicy {
        cool_off: Duration::from_millis(100),
        max_cool_off: Duration::from_millis(100),
    };
    let (ob, task) = env.outbox(vec![hook], false);
    assert!(until(Duration::from_secs(5), || server.requests("/hook").len() >= 10).await);
    let burst = server.requests("/hook").len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let probes = server.requests("/hook").len() - burst;
    // One probe per cool-off (plus a probe's round trip): about 13 in 1.5 s; far from the
    // hundreds of an unbroken retry loop, far above the one of a 1 s cool-off.
    assert!((5..=30).contains(&probes), "{probes} probes in 1.5 s");
    assert!(metrics(&ob).contains("tocsin_receiver_circuit_open{receiver=\"hook\"} 1\n"));
    task.abort();
}

/// A timed-out attempt is abandoned with its connection: the server sees the client go and
/// cancels the request, so it can never act on it after a later attempt. (Had the client
/// kept the connection, the server would finish the request 1 s after it began.)
#[tokio::test]
async fn a_timed_out_attempt_is_abandoned_with_its_connection() {
    let server = hook_server(|n| Reply {
        delay: Duration::from_millis(if n == 0 { 1_000 } else { 5 }),
        ..Reply::status(200)
    });
    let mut env = Env::new();
    env.queue(&[("hook", "g", "k")], &json("{}"));
    let hook = webhook(
        "hook",
        &server.url("/hook"),
        retry(1_500, 1_500, 3_600_000),
        Duration::from_millis(200),
    );
    let (_ob, task) = env.outbox(vec![hook], false);
    assert!(until(Duration::from_secs(5), || server.requests("/hook").len() == 1).await);
    // Well before the server would finish it, and before the retry is due (≥ 750 ms).
    assert!(until(Duration::from_millis(600), || server.handling_now() == 0).await);
    assert_eq!(server.requests("/hook").len(), 1);
    assert!(done_keys(&server).is_empty(), "the abandoned request was not cancelled");
    assert!(until(Duration::from_secs(5), || env.pending() == 0).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(done_keys(&server), ["k"], "acted on once, by the retry");
    task.abort();
}
