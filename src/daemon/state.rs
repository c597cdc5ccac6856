//! The daemon's shared state: the wall clock, the engine config and where it was read
//! from, the pipeline behind its lock (`Core`), the database handle, the store thread's
//! handle, and the daemon's own counters (`Metrics`, `RuleStatus`, whose types are the
//! HTTP handle's).
//!
//! Owns what every task of the daemon shares and how it is locked; it decides nothing and
//! starts nothing (start-up is `lifecycle`'s, evaluation `schedule`'s).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use super::writer::StoreWriter;
use crate::actions;
use crate::config::{self, EngineConfig};
use crate::diag::{Diagnostic, render_text};
use crate::http::{Metrics, RuleStatus};
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::reload::{self, PolicySet};
use crate::series::Timestamp;
use crate::store::{self, Store};

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

    pub(crate) fn rule_paths(&self) -> Vec<PathBuf> {
        self.cfg.rules.iter().map(|t| self.path(t.expose())).collect()
    }

    pub(crate) fn receiver_paths(&self) -> Vec<PathBuf> {
        self.cfg.receivers.iter().map(|t| self.path(t.expose())).collect()
    }
}

pub(crate) fn env(name: &str) -> Option<String> {
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
    /// `schedule::first_data_wait`), rules whose inputs have no series yet are not evaluated.
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
}

pub(crate) fn wanted_metrics(p: &PolicySet) -> Arc<HashSet<String>> {
    Arc::new(
        p.rules
            .rules()
            .flat_map(|r| r.slots.iter().map(|s| s.metric.clone()))
            .collect(),
    )
}

pub(crate) fn status_for(p: &PolicySet) -> Vec<Vec<RuleStatus>> {
    p.rules
        .groups
        .iter()
        .map(|g| vec![RuleStatus::default(); g.rules.len()])
        .collect()
}

/// Series keep the longest window any rule reads, and at least the staleness period.
pub(crate) fn retention(p: &PolicySet, staleness: Duration) -> Duration {
    p.rules.longest_window().max(staleness) + Duration::from_secs(60)
}

/// Prints diagnostics to standard error.
pub(crate) fn report(diags: &[Diagnostic]) {
    let text = render_text(diags, &|f: &str| std::fs::read_to_string(f).ok());
    if !text.is_empty() {
        eprint!("{text}");
    }
}

/// This machine's name, for links when `listen` is a wildcard address; `None` when the
/// system does not say.
/// [`hostname`], looked up once: a renamed host keeps the links of the running process
/// consistent.
pub(crate) fn hostname_once() -> Option<&'static str> {
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
