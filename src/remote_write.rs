//! Remote write: recorded series, `ALERTS` and `ALERTS_FOR_STATE` sent to a Prometheus
//! remote-write 1.0 receiver (protobuf `WriteRequest`, snappy block compression).
//!
//! Owns the pure parts — what a tick sends ([`snapshot`]: each recorded sample once, at its
//! own time; `ALERTS{alertstate}` = 1 and `ALERTS_FOR_STATE` = the Unix seconds the alert
//! became active, at the tick, with Prometheus' names and labels), the labels
//! (`external_labels` where a series has no label of the name, then `replica_labels`), the
//! bounded queue ([`Queue`]: the oldest samples are dropped, and counted, when it is full),
//! the encoding ([`encode`]) and the meaning of an answer ([`judge`]: 2xx sent, 5xx, 429 and
//! connection errors retried with backoff, other 4xx failed) — and one task per endpoint
//! ([`run`]) that samples every `interval` and sends batches of at most
//! `max_samples_per_send`. Sending runs beside evaluation and delivery and never holds the
//! core: an endpoint that is down only fills (and then drops from) its own queue.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::alert::state::Phase;
use crate::config::{EngineConfig, RemoteWriteConfig, RemoteWriteSend};
use crate::engine::Engine;
use crate::rules::{RuleKind, RuleSet};
use crate::series::{Labels, SeriesStore, Timestamp};
use crate::sources::exposition::{escape_label_value, write_family};

/// Default time limit of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// First retry delay; it doubles per failed attempt up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(250);
/// Ceiling of the retry delay, and of a `Retry-After` honoured.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A label of the protocol.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample of the protocol.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct PbSample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One series of a request: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
}

/// The body of a request, before compression.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One sample waiting to be written, with its series' full label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// Sorted by name, `__name__` included.
    pub labels: Vec<Label>,
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// What one endpoint sends and adds.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Recorded series.
    pub recorded: bool,
    /// `ALERTS` and `ALERTS_FOR_STATE`.
    pub alerts: bool,
    /// Added where a series has no label of the name.
    pub external_labels: Labels,
    /// Added to every written series, replacing a label of the name.
    pub replica_labels: Labels,
}

/// The full label set of a written series named `name` with `labels`.
fn written_labels(name: &str, labels: &Labels, sel: &Selection) -> Vec<Label> {
    let mut l = labels.clone();
    for (k, v) in sel.external_labels.iter() {
        if l.get(k).is_none() {
            l.set(k, v);
        }
    }
    for (k, v) in sel.replica_labels.iter() {
        l.set(k, v);
    }
    l.set("__name__", name);
    // `Labels` keeps its pairs sorted by name, as the protocol requires.
    l.iter()
        .map(|(name, value)| Label {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// What a tick at `to`, after the one at `from`, sends: every recorded sample with
/// `from < t <= to` (each once, at the time its rule computed it), and for every pending or
/// firing alert `ALERTS{…, alertstate}` = 1 and `ALERTS_FOR_STATE{…}` = the Unix seconds it
/// became active (pending since, or the episode start), both at `to`. Pure: the caller
/// holds the core while this runs (it only reads).
pub fn snapshot(
    engine: &Engine,
    series: &SeriesStore,
    rules: &RuleSet,
    from: Timestamp,
    to: Timestamp,
    sel: &Selection,
    out: &mut Vec<Written>,
) {
    if sel.recorded {
        let mut seen = std::collections::HashSet::new();
        for rule in rules.rules().filter(|r| matches!(r.kind, RuleKind::Record)) {
            // Two groups may record one name: its series are written once.
            if !seen.insert(rule.name.as_str()) {
                continue;
            }
            for id in series.series_of(&rule.name) {
                let labels = written_labels(&rule.name, series.labels(*id), sel);
                for s in series.window(*id).range(from, to) {
                    out.push(Written {
                        labels: labels.clone(),
                        t: s.t.0,
                        v: s.v,
                    });
                }
            }
        }
    }
    if sel.alerts {
        for a in engine.alerts() {
            let (state, active_at) = match a.phase {
                Phase::Firing { starts_at, .. } => ("firing", Some(starts_at)),
                Phase::Pending { tier } => (
                    "pending",
                    engine
                        .instances(a.rule)
                        .iter()
                        .find(|i| i.fingerprint == a.instance)
                        .and_then(|i| i.machine.pending_since(tier)),
                ),
                Phase::Inactive => continue,
            };
            // The label set as receivers see it (external labels included) is the one a
            // TSDB should hold; replica labels come on top.
            let mut with_state = a.labels.clone();
            with_state.set("alertstate", state);
            out.push(Written {
                labels: written_labels("ALERTS", &with_state, sel),
                t: to.0,
                v: 1.0,
            });
            if let Some(at) = active_at {
                out.push(Written {
                    labels: written_labels("ALERTS_FOR_STATE", &a.labels, sel),
                    t: to.0,
                    v: at.0 as f64 / 1000.0,
                });
            }
        }
    }
}

/// Appends, at `t`, a staleness marker for every `ALERTS`/`ALERTS_FOR_STATE` series of the
/// previous tick (`last`) that `samples` (this tick's) no longer has, and remembers this
/// tick's: a resolved alert then leaves the TSDB's `ALERTS` at once, as Prometheus' do,
/// instead of lingering for its lookback.
pub fn mark_resolved(last: &mut std::collections::HashSet<Vec<Label>>, samples: &mut Vec<Written>, t: i64) {
    let is_alerts = |l: &[Label]| {
        l.iter()
            .any(|l| l.name == "__name__" && (l.value == "ALERTS" || l.value == "ALERTS_FOR_STATE"))
    };
    let now: std::collections::HashSet<Vec<Label>> = samples
        .iter()
        .filter(|s| s.t == t && is_alerts(&s.labels))
        .map(|s| s.labels.clone())
        .collect();
    let gone = std::mem::replace(last, now);
    for labels in gone.into_iter().filter(|l| !last.contains(l)) {
        samples.push(Written {
            labels,
            t,
            v: crate::series::stale_marker(),
        });
    }
}

/// The snappy-compressed protobuf `WriteRequest` of `samples`; consecutive samples of one
/// label set share a `TimeSeries`.
pub fn encode(samples: &[Written]) -> Vec<u8> {
    let mut req = WriteRequest::default();
    for s in samples {
        let sample = PbSample {
            value: s.v,
            timestamp: s.t,
        };
        match req.timeseries.last_mut() {
            Some(ts) if ts.labels == s.labels => ts.samples.push(sample),
            _ => req.timeseries.push(TimeSeries {
                labels: s.labels.clone(),
                samples: vec![sample],
            }),
        }
    }
    let raw = prost::Message::encode_to_vec(&req);
    // Compressing a buffer in memory cannot fail short of a buffer larger than snappy's
    // 4 GiB block limit, which `max_samples_per_send` rules out.
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

/// A bounded FIFO of samples: past its capacity the oldest are dropped.
#[derive(Debug)]
pub struct Queue {
    samples: VecDeque<Written>,
    capacity: usize,
}

impl Queue {
    /// An empty queue holding at most `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Queue {
        Queue {
            samples: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends `samples`; returns how many old ones were dropped to make room.
    pub fn push(&mut self, samples: impl IntoIterator<Item = Written>) -> u64 {
        let mut dropped = 0;
        for s in samples {
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
                dropped += 1;
            }
            self.samples.push_back(s);
        }
        dropped
    }

    /// Takes up to `n` of the oldest samples.
    pub fn take(&mut self, n: usize) -> Vec<Written> {
        let n = n.min(self.samples.len());
        self.samples.drain(..n).collect()
    }

    /// Samples waiting.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// What an attempt's answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Sent,
    /// Try the same batch again after this long.
    Retry(Duration),
    /// The receiver refused it for good (a 4xx other than 429): counted as failed.
    Failed,
}

/// The verdict on attempt number `attempt` (1 for the first) answered with `status` (`None`:
/// no answer, a connection error or time-out) and `retry_after` (seconds).
pub fn judge(status: Option<u16>, retry_after: Option<&str>, attempt: u32) -> Verdict {
    let backoff = BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    match status {
        Some(200..=299) => Verdict::Sent,
        Some(429) => {
            let asked = retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Verdict::Retry(asked.map_or(backoff, |d| d.min(MAX_BACKOFF)))
        }
        Some(500..=599) | None => Verdict::Retry(backoff),
        Some(_) => Verdict::Failed,
    }
}

/// One configured endpoint: its settings, queue and counters.
#[derive(Debug)]
pub struct Endpoint {
    /// Scheme, host, port and path of the URL (no credentials, no query): the `url` label
    /// of its metrics.
    pub shown_url: String,
    url: String,
    client: reqwest::Client,
    selection: Selection,
    every: Duration,
    batch: usize,
    queue: Mutex<Queue>,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Endpoint {
    /// The endpoint of `cfg` in the engine config `engine`.
    pub fn new(cfg: &RemoteWriteConfig, engine: &EngineConfig) -> Result<Endpoint, String> {
        let mut headers = crate::datasource::auth_headers(
            cfg.headers.iter().map(|(k, v)| (k.as_str(), v.expose())),
            cfg.basic_auth
                .as_ref()
                .map(|b| (b.username.expose(), b.password.expose())),
            cfg.bearer_token.as_ref().map(|t| t.expose()),
        )?;
        use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        headers.insert("X-Prometheus-Remote-Write-Version", HeaderValue::from_static("0.1.0"));
        let client = crate::http_client::builder()
            .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(cfg.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |d| d.value.0))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let url = cfg.url.expose().to_string();
        let shown_url = reqwest::Url::parse(&url)
            .map(|u| {
                format!(
                    "{}://{}{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default(),
                    u.path()
                )
            })
            .map_err(|e| format!("invalid URL: {e}"))?;
        let pairs = |m: &std::collections::BTreeMap<String, crate::config::Text>| {
            Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.expose())))
        };
        Ok(Endpoint {
            shown_url,
            url,
            client,
            selection: Selection {
                recorded: cfg.send.contains(&RemoteWriteSend::Recorded),
                alerts: cfg.send.contains(&RemoteWriteSend::Alerts),
                external_labels: pairs(&engine.external_labels),
                replica_labels: pairs(&cfg.replica_labels),
            },
            every: cfg
                .interval
                .as_ref()
                .map_or(engine.evaluation_interval.value.0, |d| d.value.0),
            batch: cfg.max_samples_per_send.max(1) as usize,
            queue: Mutex::new(Queue::new(cfg.queue_capacity as usize)),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// What this endpoint sends.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues samples, counting what the full queue drops.
    pub fn enqueue(&self, samples: Vec<Written>) {
        let dropped = self.queue().push(samples);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    async fn post(&self, body: Vec<u8>) -> (Option<u16>, Option<String>, String) {
        match self.client.post(&self.url).body(body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(256).collect();
                (Some(status), retry_after, text.trim().to_string())
            }
            Err(e) => (None, None, e.without_url().to_string()),
        }
    }
}

/// Every endpoint, for `/metrics`.
#[derive(Debug, Default)]
pub struct Writers {
    /// In config order.
    pub endpoints: Vec<std::sync::Arc<Endpoint>>,
}

impl Writers {
    /// Appends `tocsin_remote_write_samples_{sent,failed,dropped}_total{url}` and
    /// `tocsin_remote_write_queue_samples{url}` (nothing without endpoints).
    pub fn render_metrics(&self, out: &mut String) {
        if self.endpoints.is_empty() {
            return;
        }
        type Read = fn(&Endpoint) -> u64;
        let families: [(&str, &str, &str, Read); 4] = [
            (
                "tocsin_remote_write_samples_sent_total",
                "counter",
                "Samples the remote-write endpoint accepted.",
                |e| e.sent.load(Ordering::Relaxed),
            ),
            (
                "tocsin_remote_write_samples_failed_total",
                "counter",
                "Samples the remote-write endpoint refused for good (a 4xx other than 429).",
                |e| e.failed.load(Ordering::Relaxed),
            ),
            (
                "tocsin_remote_write_samples_dropped_total",
                "counter",
                "Samples dropped from the full in-memory queue while the endpoint lagged.",
                |e| e.dropped.load(Ordering::Relaxed),
            ),
            (
                "tocsin_remote_write_queue_samples",
                "gauge",
                "Samples waiting in the in-memory queue.",
                |e| e.queue().len() as u64,
            ),
        ];
        for (name, kind, help, read) in families {
            write_family(out, name, kind, help);
            for e in &self.endpoints {
                let _ = writeln!(
                    out,
                    "{name}{{url=\"{}\"}} {}",
                    escape_label_value(&e.shown_url),
                    read(e)
                );
            }
        }
    }
}

/// Fills `out` with what a tick at `to` after `from` sends (see [`snapshot`]).
pub type Collect = Box<dyn Fn(Timestamp, Timestamp, &mut Vec<Written>) + Send + Sync>;

/// Runs `endpoint` until the task is dropped: every `interval` (aligned, collected half an
/// interval late) `collect` queues
/// the tick's samples; batches go out as long as the queue holds some, each retried until
/// it is accepted or refused for good, the queue meanwhile dropping its oldest samples if
/// it fills. `clock` is the wall clock.
pub async fn run(endpoint: std::sync::Arc<Endpoint>, collect: Collect, clock: fn() -> Timestamp) {
    let every = crate::series::duration_ms(endpoint.every).max(1);
    let mut from = clock();
    let mut next = Timestamp((from.0 / every + 1) * every);
    let mut batch: Vec<Written> = Vec::new();
    let mut attempt = 0u32;
    let mut retry_at: Option<Timestamp> = None;
    let mut alerting = std::collections::HashSet::new();
    // A tick's samples are collected half an interval after it: evaluations at that aligned
    // instant (of this interval or a multiple of it) have stored their values by then.
    let lag = every / 2;
    loop {
        let now = clock();
        if now.0 >= next.0 + lag {
            let mut samples = Vec::new();
            collect(from, next, &mut samples);
            mark_resolved(&mut alerting, &mut samples, next.0);
            endpoint.enqueue(samples);
            from = next;
            next = Timestamp(((now.0 - lag) / every + 1) * every);
        }
        if batch.is_empty() {
            batch = endpoint.queue().take(endpoint.batch);
            attempt = 0;
        }
        let ready = retry_at.is_none_or(|t| clock() >= t);
        if batch.is_empty() || !ready {
            let collect_at = Timestamp(next.0 + lag);
            let until = retry_at.filter(|t| *t < collect_at).unwrap_or(collect_at);
            let wait = (until.0 - clock().0).max(1) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            continue;
        }
        attempt += 1;
        let (status, retry_after, text) = endpoint.post(encode(&batch)).await;
        match judge(status, retry_after.as_deref(), attempt) {
            Verdict::Sent => {
                endpoint.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                retry_at = None;
            }
            Verdict::Failed => {
                tracing::warn!(
                    url = %endpoint.shown_url,
                    samples = batch.len(),
                    "remote write refused a batch ({}): {text}",
                    status.unwrap_or_default()
                );
                endpoint.failed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                retry_at = None;
            }
            Verdict::Retry(after) => {
                // One line at the first failure and then every 8th, not one per retry.
                if attempt == 1 || attempt.is_multiple_of(8) {
                    let what = status.map_or_else(|| format!("no answer: {text}"), |s| format!("HTTP {s}: {text}"));
                    tracing::warn!(url = %endpoint.shown_url, attempt, "remote write failed, retrying in {after:?}: {what}");
                }
                retry_at = Some(clock().plus(after));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, i: usize, t: i64) -> Written {
        Written {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: name.into(),
                },
                Label {
                    name: "i".into(),
                    value: i.to_string(),
                },
            ],
            t,
            v: i as f64,
        }
    }

    #[test]
    fn encoding_is_snappy_protobuf_grouped_by_series() {
        let samples = [w("a", 1, 10), w("a", 1, 20), w("a", 2, 10)];
        let body = encode(&samples);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(req.timeseries[0].samples.len(), 2);
        assert_eq!(req.timeseries[0].labels[0].name, "__name__");
        assert_eq!(req.timeseries[1].samples[0].value, 2.0);
    }

    #[test]
    fn labels_get_external_where_missing_and_replica_always() {
        let sel = Selection {
            recorded: true,
            alerts: true,
            external_labels: Labels::from_pairs([("cluster", "eu-1"), ("job", "ext")]),
            replica_labels: Labels::from_pairs([("__replica__", "a")]),
        };
        let got = written_labels("m", &Labels::from_pairs([("job", "own")]), &sel);
        let pairs: Vec<(&str, &str)> = got.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("__name__", "m"),
                ("__replica__", "a"),
                ("cluster", "eu-1"),
                ("job", "own")
            ]
        );
    }

    #[test]
    fn a_resolved_alert_gets_one_staleness_marker() {
        let mut last = std::collections::HashSet::new();
        let mut tick = vec![w("ALERTS", 1, 10), w("ALERTS", 2, 10), w("rec", 3, 10)];
        mark_resolved(&mut last, &mut tick, 10);
        assert_eq!(tick.len(), 3, "nothing had gone yet");
        let mut tick = vec![w("ALERTS", 2, 20)];
        mark_resolved(&mut last, &mut tick, 20);
        assert_eq!(tick.len(), 2);
        assert_eq!(tick[1].labels, w("ALERTS", 1, 0).labels);
        assert!(crate::series::is_stale_marker(tick[1].v) && tick[1].t == 20);
        let mut tick = vec![w("ALERTS", 2, 30)];
        mark_resolved(&mut last, &mut tick, 30);
        assert_eq!(tick.len(), 1, "marked once");
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_how_many() {
        let mut q = Queue::new(3);
        assert_eq!(q.push((0..2).map(|i| w("a", i, 0))), 0);
        assert_eq!(q.push((2..5).map(|i| w("a", i, 0))), 2);
        let left: Vec<f64> = q.take(10).iter().map(|s| s.v).collect();
        assert_eq!(left, [2.0, 3.0, 4.0]);
        assert!(q.is_empty());
    }

    #[test]
    fn server_errors_and_429_are_retried_other_4xx_are_not() {
        assert_eq!(judge(Some(204), None, 1), Verdict::Sent);
        assert_eq!(judge(Some(503), None, 1), Verdict::Retry(BACKOFF));
        assert_eq!(judge(Some(503), None, 3), Verdict::Retry(BACKOFF * 4));
        assert_eq!(judge(None, None, 40), Verdict::Retry(MAX_BACKOFF));
        assert_eq!(judge(Some(429), Some("7"), 1), Verdict::Retry(Duration::from_secs(7)));
        assert_eq!(judge(Some(429), Some("3600"), 1), Verdict::Retry(MAX_BACKOFF));
        assert_eq!(judge(Some(400), None, 1), Verdict::Failed);
        assert_eq!(judge(Some(404), None, 1), Verdict::Failed);
    }

    proptest::proptest! {
        /// Whatever goes in, the queue holds the newest `capacity` samples in order and the
        /// dropped count is exactly what did not fit.
        #[test]
        fn the_queue_keeps_the_newest_and_counts_the_rest(
            capacity in 1usize..20,
            pushes in proptest::collection::vec(0usize..15, 0..10),
        ) {
            let mut q = Queue::new(capacity);
            let (mut n, mut dropped) = (0, 0);
            for k in pushes {
                dropped += q.push((n..n + k).map(|i| w("a", i, 0)));
                n += k;
            }
            proptest::prop_assert_eq!(dropped as usize, n.saturating_sub(capacity));
            let kept: Vec<usize> = q.take(usize::MAX).iter().map(|s| s.v as usize).collect();
            let want: Vec<usize> = (n.saturating_sub(capacity)..n).collect();
            proptest::prop_assert_eq!(kept, want);
        }

        /// Any batch encodes into a request that decodes back to the same samples.
        #[test]
        fn encoding_round_trips(series in proptest::collection::vec((0usize..4, -1e9f64..1e9, 0i64..1 << 40), 0..50)) {
            let samples: Vec<Written> = series.iter().map(|(i, v, t)| Written { v: *v, ..w("m", *i, *t) }).collect();
            let raw = snap::raw::Decoder::new().decompress_vec(&encode(&samples)).unwrap();
            let req: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
            let back: Vec<Written> = req
                .timeseries
                .iter()
                .flat_map(|ts| ts.samples.iter().map(|s| Written { labels: ts.labels.clone(), t: s.timestamp, v: s.value }))
                .collect();
            proptest::prop_assert_eq!(back, samples);
        }
    }
}
