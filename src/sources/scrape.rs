//! `scrape`: Prometheus text exposition over HTTP.
//!
//! Owns one HTTP GET per target per interval with a timeout, adding `job` and `instance`
//! labels (the target's own kept as `exported_*`, or kept as they are with `honor_labels`), and the per-target meta series `up` and `scrape_duration_seconds`. Parsing is
//! the pure [`exposition`](super::exposition) module's; a malformed line is reported with
//! its number and the rest of the body kept. [`Exposed`] remembers what a target exposed,
//! so that series it drops are ended with a staleness marker.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Context, Sink, Source};
use super::{LineError, ParsedSample, exposition};
use crate::series::{Labels, Timestamp, stale_marker};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Largest body read from a target; a larger one is an error rather than unbounded memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One scrape target.
#[derive(Debug)]
pub struct Target {
    /// The `job` label.
    pub job: String,
    /// The `instance` label (host:port of the URL).
    pub instance: String,
    /// Whether the target's own `job` and `instance` labels win over the scrape's.
    honor_labels: bool,
    url: reqwest::Url,
    client: reqwest::Client,
}

/// What one successful scrape produced.
#[derive(Debug)]
pub struct Scraped {
    /// The samples, with `job` and `instance` added.
    pub samples: Vec<ParsedSample>,
    /// Lines that could not be parsed (the rest was kept).
    pub errors: Vec<LineError>,
    /// How long the request and parsing took.
    pub duration: Duration,
}

impl Target {
    /// A target named `job` at `url`; with `honor_labels`, samples that carry their own
    /// `job` or `instance` keep it.
    pub fn new(job: &str, url: &str, timeout: Duration, honor_labels: bool) -> Result<Target, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        let host = url.host_str().ok_or_else(|| format!("URL `{url}` has no host"))?;
        let instance = match url.port_or_known_default() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let client = crate::http_client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target {
            job: job.to_string(),
            instance,
            honor_labels,
            url,
            client,
        })
    }

    /// Fetches and parses the target once.
    pub async fn scrape(&self) -> Result<Scraped, String> {
        let started = Instant::now();
        let mut resp = self
            .client
            .get(self.url.clone())
            .header("Accept", "text/plain;version=0.0.4")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("body larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let (mut samples, errors) = exposition::parse_lenient(&text);
        for s in &mut samples {
            self.label(&mut s.labels);
        }
        Ok(Scraped {
            samples,
            errors,
            duration: started.elapsed(),
        })
    }

    /// A meta series of this target (`up`, `scrape_duration_seconds`).
    pub fn meta(&self, name: &str, value: f64) -> ParsedSample {
        let mut labels = Labels::new();
        self.label(&mut labels);
        ParsedSample {
            name: name.to_string(),
            labels,
            value,
            timestamp_ms: None,
        }
    }

    /// Sets `job` and `instance`, as Prometheus does: a target's own labels of those names
    /// are kept as `exported_job`/`exported_instance`, or, with `honor_labels`, kept as
    /// they are (the scrape's are then only added where the sample has none).
    fn label(&self, labels: &mut Labels) {
        for (name, value) in [("job", &self.job), ("instance", &self.instance)] {
            if let Some(old) = labels.get(name).map(str::to_string) {
                if self.honor_labels {
                    continue;
                }
                labels.set(&format!("exported_{name}"), &old);
            }
            labels.set(name, value);
        }
    }
}

/// The series a target exposed at its last successful scrape, so that those it stops
/// exposing get a staleness marker at once (as Prometheus does) instead of lingering for
/// the whole staleness period.
///
/// Sets, not lists: a target with n series costs O(n) per scrape, not O(n²), since this
/// runs on the runtime thread between scrapes of every target.
#[derive(Debug, Default)]
pub struct Exposed {
    last: HashSet<(String, Labels)>,
}

impl Exposed {
    /// Records a successful scrape's `samples` and appends, at `t`, a stale marker for
    /// every series the previous scrape had and this one has not.
    pub fn scraped(&mut self, samples: &[ParsedSample], t: Timestamp, out: &mut Vec<ParsedSample>) {
        let current: HashSet<(String, Labels)> = samples.iter().map(|s| (s.name.clone(), s.labels.clone())).collect();
        let last = std::mem::replace(&mut self.last, current);
        out.extend(
            last.into_iter()
                .filter(|k| !self.last.contains(k))
                .map(|(name, labels)| marker(name, labels, t)),
        );
    }

    /// A failed scrape: every series of the last successful one gets a stale marker at `t`.
    pub fn failed(&mut self, t: Timestamp, out: &mut Vec<ParsedSample>) {
        out.extend(self.last.drain().map(|(name, labels)| marker(name, labels, t)));
    }
}

fn marker(name: String, labels: Labels, t: Timestamp) -> ParsedSample {
    ParsedSample {
        name,
        labels,
        value: stale_marker(),
        timestamp_ms: Some(t.0),
    }
}

/// Default scrape timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One `scrape` entry: its [`Target`] scraped every `every`, stored as `scrape:<job>`.
pub struct Scrape {
    target: Target,
    every: Duration,
    max_series: u32,
}

/// One `scrape` source per `sources.scrape` entry whose target can be built.
pub fn configured(ctx: &Context<'_>) -> Vec<Box<dyn Source>> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for s in &ctx.cfg.sources.scrape {
        let every = s
            .interval
            .as_ref()
            .map(|d| d.value.0)
            .unwrap_or(ctx.cfg.evaluation_interval.value.0);
        let timeout = s.timeout.as_ref().map(|d| d.value.0).unwrap_or(DEFAULT_TIMEOUT);
        match Target::new(s.name.expose(), s.url.expose(), timeout, s.honor_labels) {
            Ok(target) => out.push(Box::new(Scrape {
                target,
                every,
                max_series: s.max_series,
            })),
            Err(e) => tracing::error!("scrape target {}: {e}", s.name.expose()),
        }
    }
    out
}

impl Source for Scrape {
    fn name(&self) -> String {
        format!("scrape:{}", self.target.job)
    }

    fn every(&self) -> Duration {
        self.every
    }

    fn run(self: Box<Self>, sink: Arc<dyn Sink>, clock: fn() -> Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Scrape {
                target,
                every,
                max_series,
            } = *self;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            // Series of the last successful scrape: marked stale when the target drops them.
            let mut exposed = Exposed::default();
            loop {
                tick.tick().await;
                let t = clock();
                let result = target.scrape().await;
                let mut samples = Vec::new();
                let up = match result {
                    Ok(scraped) => {
                        for e in &scraped.errors {
                            tracing::warn!(job = %target.job, line = e.line, "scrape: {}", e.message);
                        }
                        exposed.scraped(&scraped.samples, t, &mut samples);
                        samples.extend(scraped.samples);
                        samples.push(target.meta("scrape_duration_seconds", scraped.duration.as_secs_f64()));
                        1.0
                    }
                    Err(e) => {
                        tracing::warn!(job = %target.job, "scrape failed: {e}");
                        exposed.failed(t, &mut samples);
                        0.0
                    }
                };
                samples.push(target.meta("up", up));
                sink.ingest(&format!("scrape:{}", target.job), max_series, &samples, t);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::is_stale_marker;

    fn sample(name: &str, i: usize) -> ParsedSample {
        ParsedSample {
            name: name.to_string(),
            labels: Labels::from_pairs([("i", i.to_string())]),
            value: 1.0,
            timestamp_ms: None,
        }
    }

    #[test]
    fn vanished_series_get_one_marker_and_failures_mark_all() {
        let mut e = Exposed::default();
        let mut out = Vec::new();
        e.scraped(&[sample("a", 1), sample("a", 2)], Timestamp(10), &mut out);
        assert!(out.is_empty());
        e.scraped(&[sample("a", 2), sample("b", 3)], Timestamp(20), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].name.as_str(), out[0].labels.get("i")), ("a", Some("1")));
        assert!(is_stale_marker(out[0].value) && out[0].timestamp_ms == Some(20));
        out.clear();
        e.failed(Timestamp(30), &mut out);
        let mut got: Vec<_> = out.iter().map(|s| s.name.clone()).collect();
        got.sort();
        assert_eq!(got, ["a", "b"]);
        out.clear();
        e.failed(Timestamp(40), &mut out);
        assert!(out.is_empty(), "a second failure has nothing left to mark");
    }

    /// `own` as the target `scrape-job` at 127.0.0.1:9100 labels it. The two targets are
    /// built once: an HTTP client per property-test case would dominate the run time.
    fn relabelled(honor_labels: bool, own: &[(&str, &str)]) -> Labels {
        static TARGETS: std::sync::LazyLock<[Target; 2]> = std::sync::LazyLock::new(|| {
            [false, true].map(|honor| {
                Target::new(
                    "scrape-job",
                    "http://127.0.0.1:9100/metrics",
                    Duration::from_secs(1),
                    honor,
                )
                .expect("a valid target")
            })
        });
        let mut labels = Labels::from_pairs(own.iter().copied());
        TARGETS[usize::from(honor_labels)].label(&mut labels);
        labels
    }

    #[test]
    fn own_job_and_instance_are_exported_unless_honored() {
        let own = [("job", "x"), ("instance", "h:1"), ("a", "b")];
        let plain = relabelled(false, &own);
        assert_eq!(
            plain.to_map(),
            Labels::from_pairs([
                ("a", "b"),
                ("exported_instance", "h:1"),
                ("exported_job", "x"),
                ("instance", "127.0.0.1:9100"),
                ("job", "scrape-job"),
            ])
            .to_map()
        );
        let honored = relabelled(true, &own);
        assert_eq!(honored.to_map(), Labels::from_pairs(own).to_map());
        // Samples without their own still get the scrape's, honored or not.
        assert_eq!(relabelled(true, &[]).get("job"), Some("scrape-job"));
        assert_eq!(relabelled(true, &[]).get("instance"), Some("127.0.0.1:9100"));
    }

    proptest::proptest! {
        /// Whatever a target exposes: every other label is untouched; without
        /// `honor_labels` `job`/`instance` are the scrape's and the target's own survive as
        /// `exported_*`; with it the target's own stay and only missing ones are filled in.
        #[test]
        fn relabelling_keeps_every_label_somewhere(
            own in proptest::collection::btree_map("[a-z_]{1,8}|job|instance", "[a-z0-9:]{0,6}", 0..6),
            honor in proptest::bool::ANY,
        ) {
            let pairs: Vec<(&str, &str)> = own.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let got = relabelled(honor, &pairs).to_map();
            for (name, value) in &own {
                let scrape_owned = name == "job" || name == "instance";
                if !scrape_owned && !name.starts_with("exported_") {
                    proptest::prop_assert_eq!(got.get(name), Some(value));
                }
                if scrape_owned {
                    let kept = if honor { got.get(name) } else { got.get(&format!("exported_{name}")) };
                    proptest::prop_assert_eq!(kept, Some(value));
                }
            }
            for (name, scrape) in [("job", "scrape-job"), ("instance", "127.0.0.1:9100")] {
                let expected = if honor { own.get(name).map_or(scrape, String::as_str) } else { scrape };
                proptest::prop_assert_eq!(got.get(name).map(String::as_str), Some(expected));
            }
        }
    }

    /// 100,000 series replaced by 100,000 others: with a list scan this is 10^10
    /// comparisons (minutes); with sets it is a fraction of a second.
    #[test]
    fn a_large_target_is_diffed_in_linear_time() {
        let n = 100_000;
        let first: Vec<_> = (0..n).map(|i| sample("m", i)).collect();
        let second: Vec<_> = (n..2 * n).map(|i| sample("m", i)).collect();
        let mut e = Exposed::default();
        let mut out = Vec::new();
        e.scraped(&first, Timestamp(1), &mut out);
        let started = Instant::now();
        e.scraped(&second, Timestamp(2), &mut out);
        assert_eq!(out.len(), n);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}
