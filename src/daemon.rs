//! The daemon (`tocsin run`) and `tocsin eval`: the runtime around the pure core.
//!
//! Owns wiring: the tokio runtime, one aligned scheduler per rule group, the sources that
//! feed the series store (system, scrape, logs; push arrives through the API), hot reload
//! (directory watch, SIGHUP, `POST /-/reload`, a slow periodic re-read), persistence of
//! instance state and history in SQLite after every evaluation (on the store thread, in
//! order, kept in memory while the store fails), running admitted actions (as tasks, after
//! that commit), console delivery, and graceful shutdown. It holds no
//! alerting semantics: evaluation is `engine`, validation is `reload`/`check`, storage is
//! `store`, running actions is `actions`, HTTP is `api`.

use crate::pipeline::{self, ActionJob, Effects, Pipeline};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use crate::actions;
use crate::alert::state::Phase;
use crate::config::{self, EngineConfig};
use crate::diag::{Diagnostic, render_text};
use crate::engine::{Output, RuleRef, Settings};
use crate::outbox::Outbox;
use crate::reload::{self, PolicySet};
use crate::series::{Labels, Refusal, Sample, Timestamp};
use crate::sources::ParsedSample;
use crate::sources::host::logs::LogTailer;
use crate::sources::host::system::SystemCollector;
use crate::store::{self, Batch, Store};

/// How often the files are re-read even without a file-system event, for file systems
/// that send none (some network mounts).
const PERIODIC_RELOAD: Duration = Duration::from_secs(60);
/// How long a burst of file-system events is collapsed before reloading.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often log files are polled.
const LOG_POLL: Duration = Duration::from_secs(1);
/// Default scrape timeout.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default host-metrics interval.
const SYSTEM_INTERVAL: Duration = Duration::from_secs(5);
/// Longest pause between two sweeps of dead series.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How long requests still in flight at SIGTERM/SIGINT may take before the daemon exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch, now.
pub fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    )
}

/// The engine config and the folder its relative paths are relative to.
pub struct Loaded {
    /// The parsed config (defaults when there is no file).
    pub cfg: EngineConfig,
    /// The config file's folder, or the working directory.
    pub base: PathBuf,
    /// The config file as named (log lines about its keys name it), `tocsin.yaml` when
    /// there is none.
    pub file: String,
}

impl Loaded {
    /// A configured path, relative to the config's folder.
    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn rule_paths(&self) -> Vec<PathBuf> {
        self.cfg.rules.iter().map(|t| self.path(t.expose())).collect()
    }

    fn receiver_paths(&self) -> Vec<PathBuf> {
        self.cfg.receivers.iter().map(|t| self.path(t.expose())).collect()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads `path`, or `tocsin.yaml` in the working directory when it exists, or the defaults.
pub fn load_config(path: Option<&Path>) -> Result<Loaded, Vec<Diagnostic>> {
    let found = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("tocsin.yaml")).filter(|p| p.is_file()),
    };
    let Some(file) = found else {
        return Ok(Loaded {
            cfg: EngineConfig::default(),
            base: PathBuf::from("."),
            file: "tocsin.yaml".into(),
        });
    };
    let src = reload::read_source(&file).map_err(|d| vec![d])?;
    let cfg = config::parse_config(&src, &env)?;
    let base = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| ".".into());
    let file = file.display().to_string();
    Ok(Loaded { cfg, base, file })
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

/// Counters and gauges exposed on `/metrics`.
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

/// What every task shares.
pub struct Shared {
    /// Engine config.
    pub loaded: Loaded,
    /// `--dry-run`: evaluate and log, never deliver or run anything.
    pub dry_run: bool,
    /// The evaluator and series (held briefly; never across an await).
    pub core: Mutex<Core>,
    /// The database, for the API's reads and silence writes (commits go through `writer`).
    pub db: Mutex<Store>,
    /// Commits state on the store thread, in order.
    pub writer: StoreWriter,
    /// Why the last state commit failed, while the store refuses commits (`/-/ready` answers
    /// 503 then); `None` while commits succeed.
    pub store_error: Mutex<Option<String>>,
    /// Ownership of `data_dir` (none for a dry run, which never writes it).
    pub data_lock: Option<store::DirLock>,
    /// A dry run's private copy of the state, removed at exit.
    pub snapshot: Option<store::Snapshot>,
    /// Own metrics.
    pub metrics: Metrics,
    /// Set once the first policy is loaded and state restored.
    pub ready: AtomicBool,
    /// When the daemon started: until the sources have had time to deliver (see
    /// [`first_data_wait`]), rules whose inputs have no series yet are not evaluated.
    pub started: Instant,
    /// Asks the reload task to reload; the reply says how it went.
    pub reload_tx: mpsc::Sender<Option<oneshot::Sender<Result<(), String>>>>,
    /// Runs admitted actions, a bounded number at a time.
    pub actions: actions::Runner,
    /// Delivers what evaluations queue (its own SQLite connection).
    pub outbox: Arc<Outbox>,
    /// Wakes the dispatch timer when a group's timers may have moved earlier.
    pub dispatch_wake: tokio::sync::Notify,
    /// Whether each query of the `query` sources works (`/metrics`).
    pub query_health: Arc<crate::sources::query::Health>,
    /// The remote-write endpoints, their queues and counters.
    pub remote_write: crate::remote_write::Writers,
}

/// The mutable heart: the pipeline (engine, series, routing, receivers, silences) and the
/// running policy's files and health.
pub struct Core {
    /// Everything evaluation and routing move; pure, shared with `tocsin test`.
    pub pipeline: Pipeline,
    /// The running policy.
    pub policy: PolicySet,
    /// Per group, per rule health.
    pub status: Vec<Vec<RuleStatus>>,
    /// Metric names the rules read (sources collect only these); shared, so a collection
    /// takes a reference instead of copying the set.
    pub wanted: Arc<HashSet<String>>,
    /// The last reload error, if the last attempt failed.
    pub reload_error: Option<String>,
}

/// The core reads as its pipeline (`core.engine`, `core.series`): the shells' many readers
/// need no path through it.
impl std::ops::Deref for Core {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl std::ops::DerefMut for Core {
    fn deref_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }
}

impl Shared {
    /// The URL receivers link back to (`generatorURL`, links in messages): see
    /// [`EngineConfig::external_url`].
    pub fn external_url(&self) -> String {
        self.loaded.cfg.external_url(hostname_once())
    }

    /// Locks the core; a poisoned lock (a panic elsewhere) is taken over, since the core's
    /// invariants hold between statements.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the database.
    pub fn db(&self) -> MutexGuard<'_, Store> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

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

/// What [`Shared::ingest`] did with a batch of samples (and, summed, with a source's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Samples stored.
    pub accepted: u64,
    /// Samples refused, indexed by [`Refusal`] (`Refusal::ALL` order).
    pub refused: [u64; 3],
}

impl Ingested {
    /// Samples refused for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// How many were refused for `why`.
    pub fn refused_for(&self, why: Refusal) -> u64 {
        self.refused[why as usize]
    }

    fn add(&mut self, other: &Ingested) {
        self.accepted += other.accepted;
        for (a, b) in self.refused.iter_mut().zip(other.refused) {
            *a += b;
        }
    }
}

/// The limit for sources whose series are fixed by configuration (host, logs).
const CONFIGURED_MAX_SERIES: u32 = 100_000;

fn wanted_metrics(p: &PolicySet) -> Arc<HashSet<String>> {
    Arc::new(
        p.rules
            .rules()
            .flat_map(|r| r.slots.iter().map(|s| s.metric.clone()))
            .collect(),
    )
}

fn status_for(p: &PolicySet) -> Vec<Vec<RuleStatus>> {
    p.rules
        .groups
        .iter()
        .map(|g| vec![RuleStatus::default(); g.rules.len()])
        .collect()
}

/// Series keep the longest window any rule reads, and at least the staleness period.
fn retention(p: &PolicySet, staleness: Duration) -> Duration {
    p.rules.longest_window().max(staleness) + Duration::from_secs(60)
}

/// Prints diagnostics to standard error.
fn report(diags: &[Diagnostic]) {
    let text = render_text(diags, &|f: &str| std::fs::read_to_string(f).ok());
    if !text.is_empty() {
        eprint!("{text}");
    }
}

/// Sets up everything `run` and `eval` share: config, policy, engine, store.
fn start(config: Option<&Path>, dry_run: bool) -> Result<(Arc<Shared>, mpsc::Receiver<ReloadRequest>), ExitCode> {
    let loaded = load_config(config).map_err(|d| {
        report(&d);
        ExitCode::from(1)
    })?;
    let policy = reload::load(&loaded.rule_paths(), &loaded.receiver_paths(), &env, None)
        .map_err(|d| {
            report(&d);
            ExitCode::from(1)
        })?
        .expect("a load without a known hash always yields a set");
    report(&policy.warnings);
    let data_dir = loaded.path(loaded.cfg.data_dir.expose());
    let (opened, data_lock, snapshot) = if dry_run {
        // A dry run never writes the data directory, so it takes no lock and can run beside
        // the daemon that owns it: it reads the state once (read-only) into a private
        // database in a scratch directory and runs on that copy.
        let (snapshot, store, carried) =
            store::Snapshot::take(&data_dir, &std::env::temp_dir(), now().0).map_err(fatal)?;
        tracing::info!(data_dir = %data_dir.display(), "dry run: working on a private copy of the state ({carried})");
        let opened = store::Opened { store, recovered: None };
        (opened, None, Some(snapshot))
    } else {
        // Before the database is touched: a second daemon must not even move it aside.
        let lock = store::lock(&data_dir).map_err(fatal)?;
        (store::open(&data_dir, now().0).map_err(fatal)?, Some(lock), None)
    };
    if let Some(msg) = &opened.recovered {
        tracing::error!("{msg}");
    }
    let staleness = loaded.cfg.staleness.value.0;
    let external_url = loaded.cfg.external_url(hostname_once());
    let options = pipeline::Options {
        settings: Settings { staleness },
        retention: retention(&policy, staleness),
        external_url,
        history_resolution: loaded.cfg.history_resolution.value.0,
    };
    let mut pipeline = Pipeline::new(Arc::clone(&policy.rules), &policy.policy, options);
    pipeline.engine.set_external_labels(Labels::from_pairs(
        loaded.cfg.external_labels.iter().map(|(k, v)| (k.as_str(), v.expose())),
    ));
    let saved = opened.store.load_states().map_err(fatal)?;
    let restored = saved.len();
    for (key, err) in pipeline.engine.restore(saved) {
        tracing::warn!(
            key,
            err,
            "persisted instance state could not be read; that instance starts afresh"
        );
    }
    tracing::info!(restored, db = %opened.store.path().display(), "state restored");
    pipeline.silences = opened.store.load_silences().map_err(fatal)?;
    crate::silence::forget_expired(&mut pipeline.silences, now());
    let runner = actions::Runner::new(actions::MAX_CONCURRENT).map_err(fatal)?;
    pipeline.dispatcher.restore(opened.store.load_groups().map_err(fatal)?);
    // The outbox gets its own connection: sends settle entries while evaluations commit.
    let outbox_store = opened.store.another_connection().map_err(fatal)?;
    let outbox = Outbox::new(outbox_store, Arc::clone(&pipeline.receivers), dry_run);
    let writer = StoreWriter::new(opened.store.another_connection().map_err(fatal)?);
    let (reload_tx, reload_rx) = mpsc::channel(8);
    let core = Core {
        pipeline,
        status: status_for(&policy),
        wanted: wanted_metrics(&policy),
        policy,
        reload_error: None,
    };
    let remote_write = crate::remote_write::Writers {
        endpoints: loaded
            .cfg
            .remote_write
            .iter()
            .filter_map(|rw| match crate::remote_write::Endpoint::new(rw, &loaded.cfg) {
                Ok(e) => Some(Arc::new(e)),
                Err(e) => {
                    tracing::error!("remote write: {e}");
                    None
                }
            })
            .collect(),
    };
    let shared = Arc::new(Shared {
        loaded,
        dry_run,
        core: Mutex::new(core),
        db: Mutex::new(opened.store),
        writer,
        store_error: Mutex::new(None),
        data_lock,
        snapshot,
        metrics: Metrics::default(),
        ready: AtomicBool::new(false),
        started: Instant::now(),
        reload_tx,
        actions: runner,
        outbox,
        dispatch_wake: tokio::sync::Notify::new(),
        query_health: Arc::default(),
        remote_write,
    });
    shared.metrics.reload_ok.store(true, Ordering::Relaxed);
    shared
        .metrics
        .reload_ok_at
        .store(now().0 as u64 / 1000, Ordering::Relaxed);
    Ok((shared, reload_rx))
}

/// Reports a start-up error and turns it into the exit code.
fn fatal(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("tocsin: {e}");
    ExitCode::from(1)
}

type ReloadRequest = Option<oneshot::Sender<Result<(), String>>>;

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The runtime: one thread. The daemon's work is small and bursty; a single thread keeps
/// the idle footprint low and evaluation order simple.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tocsin: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// `tocsin run`.
pub fn run(config: Option<&Path>, dry_run: bool) -> ExitCode {
    init_tracing();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        // Signal handlers come first: a SIGTERM or SIGHUP during start-up must not kill the
        // process with the default action.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tocsin: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        let (shared, reload_rx) = match start(config, dry_run) {
            Ok(s) => s,
            Err(code) => return code,
        };
        if let Err(code) = StoreWriter::start(&shared, tokio::runtime::Handle::current()) {
            return code;
        }
        let code = serve(Arc::clone(&shared), reload_rx, signals).await;
        // What the last evaluations queued is committed before the process exits.
        shared.writer.stop(SHUTDOWN_GRACE);
        code
    })
}

/// The signals the daemon handles, installed before anything else happens.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

async fn serve(shared: Arc<Shared>, reload_rx: mpsc::Receiver<ReloadRequest>, signals: Signals) -> ExitCode {
    let listen = shared.loaded.cfg.listen.expose().to_string();
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tocsin: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(%listen, dry_run = shared.dry_run, "tocsin running");
    let (policy_tx, policy_rx) = watch::channel(0u64);
    spawn_sources(&shared);
    tokio::spawn(schedule(Arc::clone(&shared), policy_rx));
    tokio::spawn(reloader(Arc::clone(&shared), reload_rx, policy_tx));
    let _watcher = start_watcher(&shared);
    tokio::spawn(periodic(Arc::clone(&shared)));
    tokio::spawn(Arc::clone(&shared.outbox).run());
    tokio::spawn(dispatch_timer(Arc::clone(&shared)));
    tokio::spawn(sweep_loop(Arc::clone(&shared)));
    shared.ready.store(true, Ordering::Relaxed);
    let app = crate::api::router(Arc::clone(&shared));
    let (stop_tx, stop_rx) = oneshot::channel();
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::spawn(shutdown_signal(Arc::clone(&shared), signals, stop_tx));
    tokio::spawn(async move {
        if stop_rx.await.is_ok() {
            let _ = stopping_tx.send(true);
        }
    });
    // Graceful shutdown waits for every request in flight; a stalled client (a body that
    // never arrives) must not hold the exit for the whole request timeout.
    let max_connections = shared.loaded.cfg.max_connections.get() as usize;
    if !crate::listener::serve(listener, app, max_connections, stopping, SHUTDOWN_GRACE).await {
        tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    // Every evaluation commits its own transaction, so nothing is left to flush beyond
    // what the in-flight evaluation (which ran to completion: it has no await) committed.
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT; SIGHUP asks for a reload meanwhile.
async fn shutdown_signal(shared: Arc<Shared>, signals: Signals, stopping: oneshot::Sender<()>) {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = shared.reload_tx.send(None).await;
            }
        }
    }
    tracing::info!("shutting down");
    let _ = stopping.send(());
}

fn start_watcher(shared: &Arc<Shared>) -> Option<reload::Watcher> {
    let mut paths = shared.loaded.rule_paths();
    paths.extend(shared.loaded.receiver_paths());
    let tx = shared.reload_tx.clone();
    match reload::watch(&reload::watch_dirs(&paths), DEBOUNCE, move || {
        let _ = tx.try_send(None);
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("{e}; relying on SIGHUP, POST /-/reload and the periodic re-read");
            None
        }
    }
}

async fn periodic(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(PERIODIC_RELOAD);
    tick.tick().await;
    loop {
        tick.tick().await;
        let _ = shared.reload_tx.send(None).await;
        let retention = shared.loaded.cfg.history_retention.value.0;
        // On the store thread, behind the commits queued before it.
        shared.writer.send(StoreWork::Prune(now().minus(retention)));
        crate::silence::forget_expired(&mut shared.core().silences, now());
    }
}

/// Applies reload requests one at a time.
async fn reloader(shared: Arc<Shared>, mut rx: mpsc::Receiver<ReloadRequest>, policy_tx: watch::Sender<u64>) {
    let mut generation = 0u64;
    while let Some(reply) = rx.recv().await {
        let result = reload_now(&shared);
        match &result {
            Ok(true) => {
                generation += 1;
                let _ = policy_tx.send(generation);
            }
            Ok(false) => {}
            Err(e) => tracing::error!("reload failed, keeping the running rules:\n{e}"),
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map(|_| ()));
        }
    }
}

/// Reads and validates the policy; applies it when valid and different. Ok(true) when a
/// new set was applied.
pub fn reload_now(shared: &Shared) -> Result<bool, String> {
    let loaded = &shared.loaded;
    let running = shared.core().policy.hash;
    let result = reload::load(&loaded.rule_paths(), &loaded.receiver_paths(), &env, Some(running));
    let m = &shared.metrics;
    m.reloads.fetch_add(1, Ordering::Relaxed);
    match result {
        Err(diags) => {
            let text = render_text(&diags, &|f: &str| std::fs::read_to_string(f).ok());
            m.reload_ok.store(false, Ordering::Relaxed);
            shared.core().reload_error = Some(text.clone());
            Err(text)
        }
        Ok(policy) => {
            m.reload_ok.store(true, Ordering::Relaxed);
            m.reload_ok_at.store(now().0 as u64 / 1000, Ordering::Relaxed);
            let mut core = shared.core();
            core.reload_error = None;
            // Unchanged files (or a broken edit reverted): the running set stays.
            let Some(policy) = policy.filter(|p| p.hash != core.policy.hash) else {
                return Ok(false);
            };
            report(&policy.warnings);
            let retention = retention(&policy, loaded.cfg.staleness.value.0);
            core.pipeline
                .replace(Arc::clone(&policy.rules), &policy.policy, retention);
            // Before any entry for a new receiver is committed (the core lock is held).
            shared.outbox.set_receivers(Arc::clone(&core.receivers));
            core.status = status_for(&policy);
            core.wanted = wanted_metrics(&policy);
            core.policy = policy;
            tracing::info!(groups = core.policy.rules.groups.len(), "rules reloaded");
            Ok(true)
        }
    }
}

/// Runs one task per rule group, restarting them all when the policy changes.
async fn schedule(shared: Arc<Shared>, mut policy_rx: watch::Receiver<u64>) {
    loop {
        let groups: Vec<(usize, String, Duration)> = {
            let core = shared.core();
            let default = shared.loaded.cfg.evaluation_interval.value.0;
            core.policy
                .rules
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (i, g.name.clone(), g.interval.unwrap_or(default)))
                .collect()
        };
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|(g, name, every)| tokio::spawn(run_group(Arc::clone(&shared), g, name, every)))
            .collect();
        if policy_rx.changed().await.is_err() {
            return;
        }
        for t in tasks {
            t.abort();
        }
    }
}

/// How long after start a group with interval `every` waits for its rules' inputs to appear:
/// one interval of the group, or of the slowest source when that is longer. Evaluating
/// before any sample could arrive would take the restored state for "no data" and clear
/// the `for` timers of pending alerts that the restart was meant to keep.
fn first_data_wait(cfg: &EngineConfig, every: Duration) -> Duration {
    let s = &cfg.sources;
    let system = s
        .system
        .as_ref()
        .map(|sys| sys.interval.as_ref().map(|d| d.value.0).unwrap_or(SYSTEM_INTERVAL));
    let scrape = s.scrape.iter().map(|t| {
        t.interval
            .as_ref()
            .map(|d| d.value.0)
            .unwrap_or(cfg.evaluation_interval.value.0)
    });
    let logs = (!s.logs.is_empty()).then_some(LOG_POLL);
    let query = s.query.iter().map(|q| {
        q.interval
            .as_ref()
            .map_or(cfg.evaluation_interval.value.0, |d| d.value.0)
    });
    system
        .into_iter()
        .chain(scrape)
        .chain(logs)
        .chain(query)
        .fold(every, Duration::max)
}

/// Evaluates group `g` every `every`, aligned to multiples of `every` since the epoch so
/// that groups with the same interval tick together and never drift (each deadline comes
/// from the wall clock, not from a monotonic interval started once). A tick that comes too
/// late (the previous evaluation overran) is skipped and counted.
async fn run_group(shared: Arc<Shared>, g: usize, name: String, every: Duration) {
    let every_ms = crate::series::duration_ms(every).max(1);
    let mut next = (now().0 / every_ms + 1) * every_ms;
    loop {
        wait_until(next).await;
        let missed = (now().0 - next) / every_ms;
        {
            let mut it = shared.metrics.iterations.lock().unwrap_or_else(|e| e.into_inner());
            let e = it.entry(name.clone()).or_default();
            e.0 += 1;
            e.1 += missed as u64;
        }
        // Evaluate at the aligned instant, not whenever the task got the CPU.
        let at = next + missed * every_ms;
        let warming_up = shared.started.elapsed() < first_data_wait(&shared.loaded.cfg, every);
        evaluate(&shared, g, Timestamp(at), warming_up);
        next = at + every_ms;
    }
}

/// Sleeps until the wall clock reaches `deadline_ms`. tokio's timers round up to the
/// millisecond and the runtime parks in whole milliseconds, so a tick would come 1–2 ms late
/// (all of it transition-to-notification latency); the last stretch is slept precisely on
/// the blocking pool instead, while the runtime goes on serving.
async fn wait_until(deadline_ms: i64) {
    /// How much of the wait is left to the precise sleep.
    const LEAD: Duration = Duration::from_millis(2);
    loop {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let deadline = Duration::from_millis(deadline_ms.max(0) as u64);
        let Some(left) = deadline.checked_sub(wall).filter(|d| !d.is_zero()) else {
            return;
        };
        if left > LEAD {
            tokio::time::sleep(left - LEAD).await;
        } else if tokio::task::spawn_blocking(move || std::thread::sleep(left))
            .await
            .is_err()
        {
            tokio::time::sleep(left).await;
        }
    }
}

/// One evaluation of group `g` at `now`: evaluate, persist (one transaction), deliver.
/// While `warming_up`, rules that read a metric with no series yet are skipped.
pub fn evaluate(shared: &Arc<Shared>, g: usize, now: Timestamp, warming_up: bool) {
    let mut fx = Effects::default();
    {
        let mut guard = shared.core();
        let core = &mut *guard;
        if g >= core.policy.rules.groups.len() {
            return;
        }
        for r in 0..core.policy.rules.groups[g].rules.len() {
            let rref = RuleRef { group: g, rule: r };
            let missing = core.pipeline.engine.missing_metrics(rref, &core.pipeline.series);
            if warming_up && !missing.is_empty() {
                core.status[g][r].last_error = Some(format!("waiting for the first samples of {}", missing.join(", ")));
                continue;
            }
            let started = Instant::now();
            core.pipeline.evaluate_rule(rref, now);
            let st = &mut core.status[g][r];
            st.evaluation_seconds = started.elapsed().as_secs_f64();
            st.last_evaluation = Some(now);
            st.last_error = (!missing.is_empty()).then(|| format!("no series for {}", missing.join(", ")));
        }
        let every = core.policy.rules.groups[g]
            .interval
            .unwrap_or(shared.loaded.cfg.evaluation_interval.value.0);
        core.pipeline.finish_group(g, now, now.plus(every), &mut fx);
    }
    // The notes may have started groups whose timers come before the timer's next wake.
    shared.dispatch_wake.notify_one();
    perform(shared, fx);
}

/// Performs a step's effects: logs what could not be queued, turns actions into dry-run
/// history rows on a dry run, and hands the batch to the store thread, which starts the
/// actions only after the state that admitted them is committed (so a crash cannot run an
/// action whose gate, cooldown or hourly limit, was never saved).
fn perform(shared: &Arc<Shared>, fx: Effects) {
    let Effects {
        mut batch,
        mut actions,
        template_errors,
        undeliverable,
        ..
    } = fx;
    for (receiver, e) in &template_errors {
        tracing::warn!(receiver = %receiver, "template failed, sending the fallback text: {}", e.message);
    }
    shared
        .metrics
        .template_errors
        .fetch_add(template_errors.len() as u64, Ordering::Relaxed);
    for (receiver, why) in &undeliverable {
        tracing::warn!(receiver = %receiver, "message dropped: {why}");
    }
    if shared.dry_run {
        // A dry run writes no value history: its store is a scratch copy.
        batch.values = Default::default();
        for job in actions.drain(..) {
            let detail = format!("dry-run: {}", actions::describe(&job.action));
            tracing::info!(action = %job.action.name, alert = %job.alertname, severity = %job.run.severity, "{detail}");
            let mut row = job.row;
            row.detail = Some(format!("{}: {detail}", job.action.name));
            batch.history.push(row);
        }
    }
    shared.writer.commit(batch, actions);
}

/// What the store thread is asked to do, in the order asked.
enum StoreWork {
    /// Commit a batch; once it is durable, wake the outbox (if it queued notifications) and
    /// start these admitted actions.
    Commit(Batch, Vec<ActionJob>),
    /// Delete history, expired silences and settled outbox rows older than this.
    Prune(Timestamp),
    /// Try once more to commit what waits, then stop.
    Stop,
}

/// How often the store thread retries a failed commit when no new batch arrives.
const COMMIT_RETRY: Duration = Duration::from_secs(1);

/// The handle to the store thread: state commits (evaluations, dispatch flushes, action
/// results) and pruning run there, on their own SQLite connection, so synchronous SQLite
/// never stalls the runtime thread (API, timers, sources). One thread and one FIFO channel
/// keep commits in the order they were produced; it is a plain thread rather than
/// `spawn_blocking` from a task because a commit then costs one hand-off, not a hand-off to
/// the blocking pool and another back to the runtime before the outbox is woken.
pub struct StoreWriter {
    tx: std::sync::mpsc::Sender<StoreWork>,
    /// Disconnects when the thread has finished.
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Taken by [`StoreWriter::start`].
    parts: Mutex<Option<WriterParts>>,
}

struct WriterParts {
    rx: std::sync::mpsc::Receiver<StoreWork>,
    done: std::sync::mpsc::Sender<()>,
    store: Store,
}

impl StoreWriter {
    fn new(store: Store) -> StoreWriter {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        StoreWriter {
            tx,
            done: Mutex::new(Some(done_rx)),
            parts: Mutex::new(Some(WriterParts {
                rx,
                done: done_tx,
                store,
            })),
        }
    }

    /// Starts the thread; admitted actions are spawned on `runtime`.
    fn start(shared: &Arc<Shared>, runtime: tokio::runtime::Handle) -> Result<(), ExitCode> {
        let Some(parts) = shared.writer.parts.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name("tocsin-store".into())
            .spawn(move || store_thread(shared, parts, runtime))
            .map(drop)
            .map_err(fatal)
    }

    /// Queues a batch (and the actions it admitted) for commit after every batch before it.
    fn commit(&self, batch: Batch, jobs: Vec<ActionJob>) {
        if batch.is_empty() && jobs.is_empty() {
            return;
        }
        self.send(StoreWork::Commit(batch, jobs));
    }

    fn send(&self, work: StoreWork) {
        if self.tx.send(work).is_err() {
            tracing::error!("the store thread has stopped; state is no longer persisted");
        }
    }

    /// Asks the thread to commit what waits and stop, and waits for it up to `grace`.
    fn stop(&self, grace: Duration) {
        self.send(StoreWork::Stop);
        if let Some(done) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take()
            && let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(grace)
        {
            tracing::warn!("the last state commit did not finish within {grace:?}");
        }
    }
}

/// The store thread: commits batches in the order they arrive. A failed commit keeps its
/// batch (and everything behind it) in a [`store::Backlog`], retried with each new batch and
/// every [`COMMIT_RETRY`]; meanwhile `/-/ready` answers 503. Nothing a batch queued reaches
/// the outbox, and none of its actions runs, before it is durable.
fn store_thread(shared: Arc<Shared>, parts: WriterParts, runtime: tokio::runtime::Handle) {
    use std::sync::mpsc::RecvTimeoutError;
    let WriterParts {
        rx,
        done: _done,
        mut store,
    } = parts;
    let mut backlog: store::Backlog<Vec<ActionJob>> = store::Backlog::default();
    let mut stopping = false;
    while !stopping {
        let first = if backlog.is_empty() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(COMMIT_RETRY) {
                Ok(w) => Some(w),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(StoreWork::Stop),
            }
        };
        if first.is_none() && backlog.is_empty() {
            return; // every sender is gone
        }
        // Whatever queued meanwhile commits in the same transaction.
        let mut prune = None;
        for work in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match work {
                StoreWork::Commit(batch, jobs) => backlog.push(batch, jobs),
                StoreWork::Prune(before) => prune = Some(before),
                StoreWork::Stop => stopping = true,
            }
        }
        if !backlog.is_empty() {
            flush(&shared, &mut store, &mut backlog, &runtime);
        }
        if let Some(before) = prune {
            prune_store(&mut store, before);
        }
    }
    if !backlog.is_empty() {
        tracing::error!(
            batches = backlog.len(),
            "stopping with state the store did not accept; it is lost"
        );
    }
}

/// Commits the backlog; on success wakes the outbox and starts the admitted actions, in order.
fn flush(
    shared: &Arc<Shared>,
    store: &mut Store,
    backlog: &mut store::Backlog<Vec<ActionJob>>,
    runtime: &tokio::runtime::Handle,
) {
    let waiting = backlog.len();
    let wake = backlog.has_outbox_rows();
    match backlog.flush(store) {
        Ok(jobs) => {
            let mut failing = shared.store_error.lock().unwrap_or_else(|e| e.into_inner());
            if failing.take().is_some() {
                tracing::info!(
                    batches = waiting,
                    "the state store works again; the kept state is committed"
                );
            }
            drop(failing);
            if wake {
                shared.outbox.wake();
            }
            for job in jobs.into_iter().flatten() {
                runtime.spawn(run_action(Arc::clone(shared), job));
            }
        }
        Err(e) => {
            shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            let msg = e.to_string();
            let mut failing = shared.store_error.lock().unwrap_or_else(|e| e.into_inner());
            if failing.as_deref() != Some(msg.as_str()) {
                tracing::error!(
                    batches = waiting,
                    "cannot persist state: {msg}; keeping it in memory and retrying every {COMMIT_RETRY:?}"
                );
            } else {
                tracing::debug!(batches = waiting, "cannot persist state yet: {msg}");
            }
            *failing = Some(msg);
        }
    }
}

/// Deletes what the history retention no longer keeps.
fn prune_store(store: &mut Store, before: Timestamp) {
    if let Err(e) = store.prune_history(before.0) {
        tracing::warn!("pruning history: {e}");
    }
    if let Err(e) = store.prune_values(before.0) {
        tracing::warn!("pruning value history: {e}");
    }
    // Expired silences stay listed (and in the database) as long as history is kept.
    if let Err(e) = store.prune_silences(before.0) {
        tracing::warn!("pruning silences: {e}");
    }
    // Failed and dead-lettered notifications stay inspectable as long as history.
    if let Err(e) = store.outbox_prune(before.0) {
        tracing::warn!("pruning the outbox: {e}");
    }
}

/// Flushes notification groups whose timers (`group_wait`, `group_interval`, repeats,
/// Alertmanager re-sends, held news) come due between evaluations.
async fn dispatch_timer(shared: Arc<Shared>) {
    /// Upper bound of one sleep: silences ending and clock steps are noticed within it.
    const MAX_SLEEP: Duration = Duration::from_secs(1);
    loop {
        let next = shared.core().dispatcher.next_due();
        let wait = next.map_or(MAX_SLEEP, |t| {
            Duration::from_millis(t.0.saturating_sub(now().0).max(0) as u64).min(MAX_SLEEP)
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.dispatch_wake.notified() => continue,
        }
        let mut fx = Effects::default();
        {
            let mut core = shared.core();
            let t = now();
            if core.next_due().is_some_and(|d| d <= t) {
                core.pipeline.flush(t, &mut fx);
            }
        }
        perform(&shared, fx);
    }
}

/// Runs one action and records its outcome as one history row.
async fn run_action(shared: Arc<Shared>, job: ActionJob) {
    let ActionJob {
        action,
        run,
        alertname,
        mut row,
    } = job;
    let outcome = shared.actions.run(&action, &run, &alertname).await;
    let detail = outcome.detail();
    let result = match (outcome.ok, outcome.timed_out) {
        (true, _) => "ok",
        (false, true) => "timeout",
        (false, false) => "failed",
    };
    if outcome.ok {
        tracing::info!(action = %action.name, alert = %alertname, severity = %run.severity, "action ran: {detail}");
    } else {
        tracing::warn!(action = %action.name, alert = %alertname, severity = %run.severity, "action failed: {detail}");
    }
    *shared
        .metrics
        .actions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(result)
        .or_default() += 1;
    row.at_ms = now().0;
    row.detail = Some(format!("{}: {detail}", action.name));
    let batch = Batch {
        history: vec![row],
        ..Batch::default()
    };
    shared.writer.commit(batch, Vec::new());
}

/// This machine's name, for links when `listen` is a wildcard address; `None` when the
/// system does not say.
/// [`hostname`], looked up once: a renamed host keeps the links of the running process
/// consistent.
fn hostname_once() -> Option<&'static str> {
    static HOSTNAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOSTNAME.get_or_init(hostname).as_deref()
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what is passed.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&buf[..len])
        .ok()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// Removes dead series (see [`Shared::sweep_series`]) every few seconds: soon enough that
/// a source's budget recovers shortly after its junk went stale, rarely enough that the
/// pass (one look at each series' newest sample) costs nothing next to evaluations.
async fn sweep_loop(shared: Arc<Shared>) {
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

fn spawn_sources(shared: &Arc<Shared>) {
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

/// One sending task per remote-write endpoint; it samples the core for a moment per tick.
fn spawn_remote_write(shared: &Arc<Shared>) {
    if shared.dry_run {
        return;
    }
    for endpoint in &shared.remote_write.endpoints {
        let (me, sel) = (Arc::clone(shared), endpoint.selection().clone());
        let collect: crate::remote_write::Collect = Box::new(move |from, to, out| {
            let core = me.core();
            crate::remote_write::snapshot(&core.engine, &core.series, &core.policy.rules, from, to, &sel, out);
        });
        tokio::spawn(crate::remote_write::run(Arc::clone(endpoint), collect, now));
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
fn collect_system(shared: &Shared, collector: &mut SystemCollector, samples: &mut Vec<ParsedSample>) {
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

/// `tocsin eval`: one collection from the live sources and one evaluation of every group,
/// printed as a table.
pub fn eval(config: Option<&Path>) -> ExitCode {
    init_tracing();
    let (shared, _rx) = match start(config, true) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let cfg = &shared.loaded.cfg.sources;
        if let Some(sys) = &cfg.system {
            let mut c = SystemCollector::new(sys.processes.iter().map(|p| p.expose().to_string()).collect());
            // CPU percentages need two readings some time apart.
            let mut samples = Vec::new();
            collect_system(&shared, &mut c, &mut samples);
            tokio::time::sleep(Duration::from_millis(500)).await;
            collect_system(&shared, &mut c, &mut samples);
        }
        for s in &cfg.scrape {
            let timeout = s.timeout.as_ref().map(|d| d.value.0).unwrap_or(SCRAPE_TIMEOUT);
            if let Ok(t) = crate::sources::scrape::Target::new(s.name.expose(), s.url.expose(), timeout, s.honor_labels)
            {
                let mut samples = Vec::new();
                let up = match t.scrape().await {
                    Ok(sc) => {
                        samples = sc.samples;
                        1.0
                    }
                    Err(e) => {
                        eprintln!("scrape {}: {e}", t.job);
                        0.0
                    }
                };
                samples.push(t.meta("up", up));
                shared.ingest(&format!("scrape:{}", t.job), s.max_series, &samples, now());
            }
        }
    });
    let t = now();
    let mut core = shared.core();
    let core = &mut *core;
    let mut out = Output::default();
    println!(
        "{:<28} {:<10} {:<10} {:>12}  labels",
        "rule", "state", "severity", "value"
    );
    for g in 0..core.policy.rules.groups.len() {
        let p = &mut core.pipeline;
        p.engine.evaluate_group(g, t, &mut p.series, &mut out);
        for (r, rule) in core.policy.rules.groups[g].rules.iter().enumerate() {
            let rref = RuleRef { group: g, rule: r };
            let missing = core.engine.missing_metrics(rref, &core.series);
            if !missing.is_empty() {
                println!(
                    "{:<28} {:<10} {:<10} {:>12}  no series for {}",
                    rule.name,
                    "-",
                    "-",
                    "-",
                    missing.join(", ")
                );
                continue;
            }
            for inst in core.engine.instances(rref) {
                let (state, sev) = match (inst.machine.phase(), rule.alert()) {
                    (Phase::Firing { tier, .. }, Some(a)) => (
                        "firing",
                        a.policy.tiers[tier.min(a.policy.tiers.len() - 1)].severity.to_string(),
                    ),
                    (Phase::Pending { tier }, Some(a)) => (
                        "pending",
                        a.policy.tiers[tier.min(a.policy.tiers.len() - 1)].severity.to_string(),
                    ),
                    (_, Some(_)) => ("inactive", "-".to_string()),
                    (_, None) => ("recorded", "-".to_string()),
                };
                // Every significant digit: a rate of 1.3275e-05 must not read as 0.
                let value = inst
                    .value
                    .map(crate::series::float_text)
                    .unwrap_or_else(|| "no data".into());
                println!(
                    "{:<28} {:<10} {:<10} {:>12}  {}",
                    rule.name, state, sev, value, inst.labels
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// Parses a push request body (JSON when the content type says so, else exposition text).
pub fn parse_push(content_type: Option<&str>, body: &[u8]) -> Result<Vec<ParsedSample>, String> {
    if content_type.is_some_and(|c| c.starts_with("application/json")) {
        crate::sources::push_json::parse(body).map_err(|e| format!("line {}: {}", e.line, e.message))
    } else {
        let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        crate::sources::exposition::parse_strict(text).map_err(|e| format!("line {}: {}", e.line, e.message))
    }
}

/// Acknowledges (`Some`) or clears the acknowledgement of (`None`) the firing alert with
/// `fingerprint`, for `POST`/`DELETE /api/v1/alerts/{fingerprint}/ack`. The instance state
/// (which holds the ack, so a restart keeps it), a history row and the `acknowledged`
/// messages to the receivers that were told it fires are committed in one batch, as an
/// evaluation's are. Returns the alert as the API lists it; `None` when no alert with that
/// fingerprint fires.
pub fn acknowledge(
    shared: &Arc<Shared>,
    fingerprint: u64,
    ack: Option<crate::alert::notify::Ack>,
) -> Option<crate::engine::AlertView> {
    let mut fx = Effects::default();
    let view = shared.core().pipeline.acknowledge(fingerprint, ack, now(), &mut fx);
    shared.dispatch_wake.notify_one();
    perform(shared, fx);
    view
}
