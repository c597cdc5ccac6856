//! The handle the HTTP API holds on the running daemon: what the endpoints may read of it
//! and ask of it, as a trait the daemon implements.
//!
//! Owns that interface and the few plain values crossing it (`Running`, `RuleStatus`,
//! `Metrics`, `Unready`), so `http` depends on this module rather than on the daemon's
//! state, and sits below `daemon` in the layers. Nothing here evaluates, stores or starts
//! anything.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};

use crate::alert::notify::Ack;
use crate::config::EngineConfig;
use crate::engine::AlertView;
use crate::message::Silence;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::reload::PolicySet;
use crate::series::Timestamp;
use crate::sources::{Ingested, ParsedSample};
use crate::store::Store;

/// What the endpoints may read of the running daemon and ask of it. Every read of the
/// pipeline happens inside [`Daemon::running`], under the daemon's lock and never across
/// an `.await`.
pub trait Daemon: Send + Sync + 'static {
    /// The engine config (`api_token`, push limits, intervals, staleness).
    fn config(&self) -> &EngineConfig;

    /// The daemon's wall clock.
    fn now(&self) -> Timestamp;

    /// `Ok` when the daemon does its job (`/-/ready`).
    fn readiness(&self) -> Result<(), Unready>;

    /// Runs `f` on the running pipeline and policy, under the daemon's lock.
    fn running<R>(&self, f: impl FnOnce(&Running<'_>) -> R) -> R;

    /// Runs `f` on the daemon's mirror of the non-expired silences (after the database has
    /// been written), under the daemon's lock.
    fn silences<R>(&self, f: impl FnOnce(&mut Vec<Silence>) -> R) -> R;

    /// The database, for reads and silence writes.
    fn db(&self) -> MutexGuard<'_, Store>;

    /// The outbox, for its entries, receiver states and re-queueing.
    fn outbox(&self) -> &Outbox;

    /// Stores pushed samples from `source` at `now` (or their own timestamps) and counts
    /// them, as every source's samples are stored.
    fn ingest(&self, source: &str, max_series: u32, samples: &[ParsedSample], now: Timestamp) -> Ingested;

    /// Acknowledges (`Some`) or clears the acknowledgement of (`None`) the firing alert with
    /// `fingerprint`, committing and delivering what that changes; `None` when no alert with
    /// that fingerprint fires.
    fn acknowledge(&self, fingerprint: u64, ack: Option<Ack>) -> Option<AlertView>;

    /// Asks for a reload and waits for its outcome (`Err` holds the rendered diagnostics);
    /// `None` when the daemon is shutting down.
    fn reload(&self) -> impl Future<Output = Option<Result<(), String>>> + Send + '_;

    /// The daemon's own counters.
    fn metrics(&self) -> &Metrics;

    /// Appends the metric families of the daemon's tasks (outbox, query sources, remote
    /// write) in exposition format.
    fn write_task_metrics(&self, out: &mut String);
}

/// Why the daemon does not do its job (`/-/ready` answers 503).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unready {
    /// The first policy is not loaded or the state not restored yet.
    Starting,
    /// The state store refuses commits, for this reason (state is kept and retried).
    StoreFailing(String),
}

/// The running pipeline and policy as the endpoints read them; reads as the pipeline
/// (`running.engine`, `running.series`).
pub struct Running<'a> {
    /// Engine, series, dispatcher, receivers, silences.
    pub pipeline: &'a Pipeline,
    /// The running policy.
    pub policy: &'a PolicySet,
    /// Per group, per rule evaluation health.
    pub status: &'a [Vec<RuleStatus>],
    /// The last reload error, if the last attempt failed.
    pub reload_error: Option<&'a str>,
}

impl std::ops::Deref for Running<'_> {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        self.pipeline
    }
}

/// Per-rule evaluation health, for `/api/v1/rules`.
#[derive(Clone, Debug, Default)]
pub struct RuleStatus {
    /// When it was last evaluated.
    pub last_evaluation: Option<Timestamp>,
    /// How long that took.
    pub evaluation_seconds: f64,
    /// Why it could not be evaluated fully, if so.
    pub last_error: Option<String>,
}

/// Counters and gauges the daemon keeps and `/metrics` exposes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Whether the last reload attempt succeeded (starts true: the initial load succeeded).
    pub reload_ok: AtomicBool,
    /// Unix seconds of the last successful (re)load.
    pub reload_ok_at: AtomicU64,
    /// Samples accepted and refused (by reason), by source.
    pub samples: Mutex<BTreeMap<String, Ingested>>,
    /// Group iterations done and skipped, by group name.
    pub iterations: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Receiver templates that failed at run time (the message went out with the fallback).
    pub template_errors: AtomicU64,
    /// Failed state commits.
    pub store_errors: AtomicU64,
    /// Reload attempts, successful or not, changed or not.
    pub reloads: AtomicU64,
    /// Finished action runs, by result (`ok`, `failed`, `timeout`).
    pub actions: Mutex<BTreeMap<&'static str, u64>>,
}
