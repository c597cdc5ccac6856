//! Samples into the series store: counting what each source's samples became, sweeping
//! dead series, and the loops of the polled sources.
//!
//! Owns the one path by which samples reach the store (`Shared::ingest`, with the
//! daemon's clock and each source's budget); it never evaluates and never delivers.

use std::sync::Arc;
use std::time::Duration;

use super::lifecycle::spawn_remote_write;
use super::state::{Shared, now};
use crate::series::{Sample, Timestamp};
use crate::sources::host::logs::LogTailer;
use crate::sources::host::system::SystemCollector;
use crate::sources::{Ingested, ParsedSample};

/// How often log files are polled.
pub(crate) const LOG_POLL: Duration = Duration::from_secs(1);

/// Default scrape timeout.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default host-metrics interval.
pub(crate) const SYSTEM_INTERVAL: Duration = Duration::from_secs(5);

/// Longest pause between two sweeps of dead series.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

impl Shared {
    /// Stores samples from `source` at `now` (or their own timestamps) and counts them.
    /// A sample more than [`MAX_AHEAD`](crate::series::MAX_AHEAD) in the future, older than
    /// its series' newest sample, or that would create a series while the source already
    /// has `max_series` alive is refused.
    pub fn ingest(&self, source: &str, max_series: u32, samples: &[ParsedSample], now: Timestamp) -> Ingested {
        let mut done = Ingested::default();
        let mut guard = self.core();
        let series = &mut guard.series;
        let max = max_series as usize;
        for s in samples {
            let t = s.timestamp_ms.map(Timestamp).unwrap_or(now);
            match series.ingest(source, max, &s.name, &s.labels, Sample { t, v: s.value }, now) {
                Ok(_) => done.accepted += 1,
                Err(why) => done.refused[why as usize] += 1,
            }
        }
        drop(guard);
        let mut m = self.metrics.samples.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(source.to_string()).or_default().add(&done);
        drop(m);
        if done.refused_total() > 0 {
            let [future, out_of_order, budget] = done.refused;
            tracing::warn!(source, future, out_of_order, budget, max_series, "samples refused");
        }
        done
    }

    /// Removes the series no rule can read any more (stale, past every window), so that
    /// budgets and memory follow the series alive.
    pub fn sweep_series(&self, now: Timestamp) -> usize {
        let staleness = self.loaded.cfg.staleness.value.0;
        let mut guard = self.core();
        let core = &mut *guard;
        let window = core.policy.rules.longest_window();
        // Rebuilt at each sweep rather than at each reload: a handful of names, every few
        // seconds.
        let pinned = core.engine.pinned_metrics();
        core.series.sweep(now, staleness, window, |m| pinned.contains(m))
    }
}

/// The limit for sources whose series are fixed by configuration (host, logs).
const CONFIGURED_MAX_SERIES: u32 = 100_000;

/// Removes dead series (see [`Shared::sweep_series`]) every few seconds: soon enough that
/// a source's budget recovers shortly after its junk went stale, rarely enough that the
/// pass (one look at each series' newest sample) costs nothing next to evaluations.
pub(crate) async fn sweep_loop(shared: Arc<Shared>) {
    let every = (shared.loaded.cfg.staleness.value.0 / 2).clamp(Duration::from_secs(1), SWEEP_EVERY);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let removed = shared.sweep_series(now());
        if removed > 0 {
            tracing::debug!(removed, "stale series removed");
        }
    }
}

pub(crate) fn spawn_sources(shared: &Arc<Shared>) {
    let cfg = &shared.loaded.cfg.sources;
    if let Some(sys) = &cfg.system {
        let every = sys.interval.as_ref().map(|d| d.value.0).unwrap_or(SYSTEM_INTERVAL);
        let processes = sys.processes.iter().map(|p| p.expose().to_string()).collect();
        tokio::spawn(system_loop(Arc::clone(shared), SystemCollector::new(processes), every));
    }
    for s in &cfg.scrape {
        let every = s
            .interval
            .as_ref()
            .map(|d| d.value.0)
            .unwrap_or(shared.loaded.cfg.evaluation_interval.value.0);
        let timeout = s.timeout.as_ref().map(|d| d.value.0).unwrap_or(SCRAPE_TIMEOUT);
        let target = crate::sources::scrape::Target::new(s.name.expose(), s.url.expose(), timeout, s.honor_labels);
        match target {
            Ok(t) => {
                tokio::spawn(scrape_loop(Arc::clone(shared), t, every, s.max_series));
            }
            Err(e) => tracing::error!("scrape target {}: {e}", s.name.expose()),
        }
    }
    spawn_queries(shared);
    spawn_remote_write(shared);
    for l in &cfg.logs {
        let patterns: Vec<(String, String)> = l
            .patterns
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        match LogTailer::new(shared.loaded.path(l.path.expose()), &patterns) {
            Ok(t) => {
                tokio::spawn(logs_loop(Arc::clone(shared), t));
            }
            Err(e) => tracing::error!("log source {}: {e}", l.path.expose()),
        }
    }
}

/// One task per `query` entry; its samples go through [`Shared::ingest`].
fn spawn_queries(shared: &Arc<Shared>) {
    let cfg = &shared.loaded.cfg;
    let datasources: Vec<_> = cfg
        .datasources
        .iter()
        .filter_map(|d| match crate::datasource::Datasource::new(d) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                tracing::error!("datasource {}: {e}", d.name.expose());
                None
            }
        })
        .collect();
    let rules = Arc::clone(&shared.core().policy.rules);
    for q in &cfg.sources.query {
        match crate::sources::query::QueryEntry::new(q, &shared.loaded.file, cfg, &datasources, &rules) {
            Ok(entry) => {
                let me = Arc::clone(shared);
                let sink: crate::sources::query::Sink = Box::new(move |source, max, samples, t| {
                    me.ingest(source, max as u32, samples, t);
                });
                let health = Arc::clone(&shared.query_health);
                tokio::spawn(crate::sources::query::run(entry, health, sink, now));
            }
            Err(e) => tracing::error!("query source: {e}"),
        }
    }
}

async fn system_loop(shared: Arc<Shared>, mut collector: SystemCollector, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut samples = Vec::new();
    loop {
        tick.tick().await;
        collect_system(&shared, &mut collector, &mut samples);
    }
}

/// One host collection of the metrics the rules read, stored at once.
pub(crate) fn collect_system(shared: &Shared, collector: &mut SystemCollector, samples: &mut Vec<ParsedSample>) {
    let wanted = Arc::clone(&shared.core().wanted);
    samples.clear();
    collector.collect(&|m| wanted.contains(m), &mut |name, labels, value| {
        samples.push(ParsedSample {
            name: name.to_string(),
            labels,
            value,
            timestamp_ms: None,
        });
    });
    shared.ingest("system", CONFIGURED_MAX_SERIES, samples, now());
}

async fn logs_loop(shared: Arc<Shared>, mut tailer: LogTailer) {
    let mut tick = tokio::time::interval(LOG_POLL);
    let mut samples = Vec::new();
    loop {
        tick.tick().await;
        samples.clear();
        let res = tailer.poll(&mut |name, labels, value| {
            samples.push(ParsedSample {
                name: name.to_string(),
                labels,
                value,
                timestamp_ms: None,
            });
        });
        if let Err(e) = res {
            tracing::warn!("log source: {e}");
        }
        shared.ingest("logs", CONFIGURED_MAX_SERIES, &samples, now());
    }
}

async fn scrape_loop(shared: Arc<Shared>, target: crate::sources::scrape::Target, every: Duration, max_series: u32) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Series of the last successful scrape: marked stale when the target drops them.
    let mut exposed = crate::sources::scrape::Exposed::default();
    loop {
        tick.tick().await;
        let t = now();
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
        shared.ingest(&format!("scrape:{}", target.job), max_series, &samples, t);
    }
}
