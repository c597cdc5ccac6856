//! The daemon as the HTTP API's handle: `http::Daemon` implemented over [`Shared`].
//!
//! Owns only the translation from the handle's questions to the daemon's state (locks,
//! the reload channel, the store thread's error); what each answer means is the state's
//! and `schedule`'s.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::state::{Shared, now};
use crate::alert::notify::Ack;
use crate::config::EngineConfig;
use crate::engine::AlertView;
use crate::http::{Daemon, Metrics, Running, Unready};
use crate::message::Silence;
use crate::outbox::Outbox;
use crate::series::Timestamp;
use crate::sources::{Ingested, ParsedSample};
use crate::store::Store;

impl Daemon for Shared {
    fn config(&self) -> &EngineConfig {
        &self.loaded.cfg
    }

    fn now(&self) -> Timestamp {
        now()
    }

    fn readiness(&self) -> Result<(), Unready> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err(Unready::Starting);
        }
        let failing = self.store_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        failing.map_or(Ok(()), |e| Err(Unready::StoreFailing(e)))
    }

    fn running<R>(&self, f: impl FnOnce(&Running<'_>) -> R) -> R {
        let core = self.core();
        f(&Running {
            pipeline: &core.pipeline,
            policy: &core.policy,
            status: &core.status,
            reload_error: core.reload_error.as_deref(),
        })
    }

    fn silences<R>(&self, f: impl FnOnce(&mut Vec<Silence>) -> R) -> R {
        f(&mut self.core().silences)
    }

    fn db(&self) -> MutexGuard<'_, Store> {
        Shared::db(self)
    }

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn ingest(&self, source: &str, max_series: u32, samples: &[ParsedSample], now: Timestamp) -> Ingested {
        Shared::ingest(self, source, max_series, samples, now)
    }

    fn acknowledge(&self, fingerprint: u64, ack: Option<Ack>) -> Option<AlertView> {
        super::schedule::acknowledge(self, fingerprint, ack)
    }

    async fn reload(&self) -> Option<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        self.reload_tx.send(Some(tx)).await.ok()?;
        rx.await.ok()
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn write_task_metrics(&self, out: &mut String) {
        self.outbox.render_metrics(out);
        self.query_health.render_metrics(out);
        self.remote_write.render_metrics(out);
    }
}
