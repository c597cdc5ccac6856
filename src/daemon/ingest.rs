//! Samples into the series store: counting what each source's samples became, sweeping
//! dead series, and starting the sources (`sources::configured`) with the daemon as their
//! `Sink`.
//!
//! Owns the one path by which samples reach the store (`Shared::ingest`, with the
//! daemon's clock and each source's budget); it never evaluates and never delivers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::state::{Shared, now};
use crate::series::{Sample, Timestamp};
use crate::sources::{self, Backfilled, Ingested, ParsedSample, Sink};

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
            crate::memory::give_back();
        }
    }
}

/// Starts every source the config asks for (`sources::configured`), their samples going
/// through [`Shared::ingest`]: first every backfill, all at once (each bounded by its
/// datasource's timeout), then their loops. Returns how often the slowest of them collects
/// (the first-data wait of `schedule`) and what the backfills filled (for the replay).
pub(crate) async fn start_sources(shared: &Arc<Shared>) -> (Duration, Vec<Backfilled>) {
    let configured = {
        let rules = Arc::clone(&shared.core().policy.rules);
        let path = |p: &str| shared.loaded.path(p);
        let ctx = sources::Context {
            cfg: &shared.loaded.cfg,
            file: &shared.loaded.file,
            path: &path,
            rules: &rules,
            query_health: &shared.query_health,
        };
        sources::configured(&ctx)
    };
    let mut filling = tokio::task::JoinSet::new();
    for mut source in configured {
        let sink: Arc<dyn Sink> = Arc::clone(shared) as Arc<dyn Sink>;
        filling.spawn(async move {
            let filled = source.backfill(sink, now).await;
            (source, filled)
        });
    }
    let mut slowest = Duration::ZERO;
    let mut backfilled = Vec::new();
    while let Some(done) = filling.join_next().await {
        let Ok((source, filled)) = done else {
            tracing::error!("a source's backfill ended abnormally");
            continue;
        };
        backfilled.extend(filled);
        slowest = slowest.max(source.every());
        tracing::debug!(source = %source.name(), every = ?source.every(), "starting a source");
        let sink: Arc<dyn Sink> = Arc::clone(shared) as Arc<dyn Sink>;
        tokio::spawn(source.run(sink, now));
    }
    (slowest, backfilled)
}

/// Sources store through the daemon: the metric names its rules read, and
/// [`Shared::ingest`].
impl Sink for Shared {
    fn wanted(&self) -> Arc<HashSet<String>> {
        Arc::clone(&self.core().wanted)
    }

    fn ingest(&self, source: &str, max_series: u32, samples: &[ParsedSample], now: Timestamp) -> Ingested {
        Shared::ingest(self, source, max_series, samples, now)
    }
}
