//! The daemon's life: start-up (config, policy, restored state, the store thread), the
//! runtime, serving, signals, hot reload (watch, SIGHUP, `POST /-/reload`, the periodic
//! re-read) and shutdown.
//!
//! Owns the order things start and stop in; what runs meanwhile is `schedule`'s,
//! `ingest`'s and `writer`'s.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::ingest::{start_sources, sweep_loop};
use super::schedule::{dispatch_timer, replay, schedule};
use super::state::{Core, Shared, env, hostname_once, load_config, now, report, retention, status_for, wanted_metrics};
use super::writer::{StoreWork, StoreWriter};
use crate::actions;
use crate::diag::render_text;
use crate::engine::Settings;
use crate::http::Metrics;
use crate::outbox::Outbox;
use crate::pipeline::{self, Pipeline};
use crate::reload;
use crate::series::Labels;
use crate::store;

/// How often the files are re-read even without a file-system event, for file systems
/// that send none (some network mounts).
const PERIODIC_RELOAD: Duration = Duration::from_secs(60);

/// How long a burst of file-system events is collapsed before reloading.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// How long requests still in flight at SIGTERM/SIGINT may take before the daemon exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The most messages one flush renders and commits: a burst of alerts goes to the store in
/// parts of this size, so the first part is sent while the next renders, and memory holds
/// one part's bodies rather than the burst's. Smaller parts would start sending sooner, but
/// each pays a transaction of its own.
const FLUSH_CHUNK: std::num::NonZeroUsize = std::num::NonZeroUsize::new(1_000).expect("not zero");

/// Sets up everything `run` and `eval` share: config, policy, engine, store.
pub(crate) fn start(
    config: Option<&Path>,
    dry_run: bool,
) -> Result<(Arc<Shared>, mpsc::Receiver<ReloadRequest>), ExitCode> {
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
        flush_chunk: Some(FLUSH_CHUNK),
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
    let runner = actions::Runner::new(actions::MAX_CONCURRENT);
    pipeline.dispatcher.restore(opened.store.load_groups().map_err(fatal)?);
    // The outbox gets its own connection: sends settle entries while evaluations commit.
    let outbox_store = opened.store.another_connection().map_err(fatal)?;
    outbox_store.leave_checkpoints_to_another().map_err(fatal)?;
    let outbox = Outbox::new(outbox_store, Arc::clone(&pipeline.receivers), dry_run);
    let writer = StoreWriter::new(
        opened.store.another_connection().map_err(fatal)?,
        opened.store.another_connection().map_err(fatal)?,
    )
    .map_err(fatal)?;
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
pub(crate) fn fatal(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("tocsin: {e}");
    ExitCode::from(1)
}

type ReloadRequest = Option<oneshot::Sender<Result<(), String>>>;

pub(crate) fn init_tracing() {
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
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
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
    spawn_remote_write(&shared);
    // Rules evaluate once the backfills are in and replayed, so `for` timers and episodes
    // resume where the data says; the API serves meanwhile.
    let starting = Arc::clone(&shared);
    tokio::spawn(async move {
        let (slowest, backfilled) = start_sources(&starting).await;
        replay(&starting, &backfilled);
        schedule(starting, policy_rx, slowest).await;
    });
    tokio::spawn(reloader(Arc::clone(&shared), reload_rx, policy_tx));
    let _watcher = start_watcher(&shared);
    tokio::spawn(periodic(Arc::clone(&shared)));
    tokio::spawn(Arc::clone(&shared.outbox).run());
    tokio::spawn(dispatch_timer(Arc::clone(&shared)));
    tokio::spawn(sweep_loop(Arc::clone(&shared)));
    tokio::spawn(crate::memory::scavenge());
    shared.ready.store(true, Ordering::Relaxed);
    let app = crate::http::router(Arc::clone(&shared));
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
            // The replaced set (rules, engine state of removed rules) is free now.
            crate::memory::give_back();
            tracing::info!(groups = core.policy.rules.groups.len(), "rules reloaded");
            Ok(true)
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
