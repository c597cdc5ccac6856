//! The store thread: commits batches in the order produced, on its own SQLite connection,
//! off the runtime thread; keeps them while the store fails; prunes; and starts admitted
//! actions only once the state that admitted them is durable.
//!
//! Owns the ordering "commit, then send, then run"; it decides nothing about what a batch
//! holds. Also owns checkpointing the WAL, on a thread and connection of its own, so that no
//! commit pays for one.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lifecycle::fatal;
use super::state::{Shared, now};
use crate::pipeline::ActionJob;
use crate::series::Timestamp;
use crate::store::{self, Batch, Store};

/// What the store thread is asked to do, in the order asked.
pub(crate) enum StoreWork {
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

/// How often the checkpoint thread copies the WAL into the database file. A second of
/// commits is far below SQLite's own threshold of 1,000 pages, so the WAL stays small.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The handle to the store thread: state commits (evaluations, dispatch flushes, action
/// results) and pruning run there, on their own SQLite connection, so synchronous SQLite
/// never stalls the runtime thread (API, timers, sources). One thread and one FIFO channel
/// keep commits in the order they were produced; it is a plain thread rather than
/// `spawn_blocking` from a task because a commit then costs one hand-off, not a hand-off to
/// the blocking pool and another back to the runtime before the outbox is woken.
pub struct StoreWriter {
    tx: std::sync::mpsc::Sender<StoreWork>,
    /// Batches handed to [`StoreWriter::commit`] that the thread has not tried to commit yet.
    queued: AtomicUsize,
    /// Woken each time the thread has tried to commit what was queued.
    attempted: tokio::sync::Notify,
    /// Disconnects when the thread has finished.
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Taken by [`StoreWriter::start`], with the checkpoint thread's connection.
    parts: Mutex<Option<(WriterParts, Store)>>,
}

struct WriterParts {
    rx: std::sync::mpsc::Receiver<StoreWork>,
    done: std::sync::mpsc::Sender<()>,
    store: Store,
}

impl StoreWriter {
    /// A writer committing on `store` and checkpointing on `checkpoints` (two connections
    /// of their own). `store` no longer checkpoints by itself; neither should any other
    /// connection that commits often (see [`Store::leave_checkpoints_to_another`]).
    pub(crate) fn new(store: Store, checkpoints: Store) -> Result<StoreWriter, store::StoreError> {
        store.leave_checkpoints_to_another()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        Ok(StoreWriter {
            tx,
            queued: AtomicUsize::new(0),
            attempted: tokio::sync::Notify::new(),
            done: Mutex::new(Some(done_rx)),
            parts: Mutex::new(Some((
                WriterParts {
                    rx,
                    done: done_tx,
                    store,
                },
                checkpoints,
            ))),
        })
    }

    /// Starts the thread; admitted actions are spawned on `runtime`.
    pub(crate) fn start(shared: &Arc<Shared>, runtime: tokio::runtime::Handle) -> Result<(), ExitCode> {
        let Some((parts, checkpoints)) = shared.writer.parts.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let (alive, store_ended) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("tocsin-checkpoint".into())
            .spawn(move || checkpoint_thread(&checkpoints, &store_ended))
            .map_err(fatal)?;
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name("tocsin-store".into())
            .spawn(move || {
                let _alive = alive;
                store_thread(shared, parts, runtime)
            })
            .map(drop)
            .map_err(fatal)
    }

    /// Queues a batch (and the actions it admitted) for commit after every batch before it.
    pub(crate) fn commit(&self, batch: Batch, jobs: Vec<ActionJob>) {
        if batch.is_empty() && jobs.is_empty() {
            return;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        if !self.send(StoreWork::Commit(batch, jobs)) {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Returns once the thread has tried to commit every batch queued before the call (at
    /// once if none waits), so that a producer of many batches (a burst flushed in parts)
    /// keeps one in memory at a time, not all of them. A failing store does not hold it up
    /// for longer than one attempt: what it refuses waits in its backlog either way.
    pub(crate) async fn caught_up(&self) {
        loop {
            let attempted = self.attempted.notified();
            tokio::pin!(attempted);
            attempted.as_mut().enable();
            if self.queued.load(Ordering::Acquire) == 0 {
                return;
            }
            attempted.await;
        }
    }

    /// Hands `work` to the thread; `false` (logged) when the thread has stopped.
    pub(crate) fn send(&self, work: StoreWork) -> bool {
        let sent = self.tx.send(work).is_ok();
        if !sent {
            tracing::error!("the store thread has stopped; state is no longer persisted");
        }
        sent
    }

    /// Asks the thread to commit what waits and stop, and waits for it up to `grace`.
    pub(crate) fn stop(&self, grace: Duration) {
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
        let mut taken = 0;
        for work in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match work {
                StoreWork::Commit(batch, jobs) => {
                    taken += 1;
                    backlog.push(batch, jobs);
                }
                StoreWork::Prune(before) => prune = Some(before),
                StoreWork::Stop => stopping = true,
            }
        }
        if !backlog.is_empty() {
            flush(&shared, &mut store, &mut backlog, &runtime);
        }
        if taken > 0 {
            shared.writer.queued.fetch_sub(taken, Ordering::AcqRel);
            shared.writer.attempted.notify_waiters();
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

/// Checkpoints every [`CHECKPOINT_EVERY`] until the store thread has ended (`store_ended`
/// disconnects), then once more. A failed checkpoint is retried at the next; the commits
/// themselves report a failing store.
fn checkpoint_thread(checkpoints: &Store, store_ended: &std::sync::mpsc::Receiver<()>) {
    loop {
        let ended = matches!(
            store_ended.recv_timeout(CHECKPOINT_EVERY),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        if let Err(e) = checkpoints.checkpoint() {
            tracing::debug!("{e}");
        }
        if ended {
            return;
        }
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

/// Runs one action and records its outcome as one history row.
pub(crate) async fn run_action(shared: Arc<Shared>, job: ActionJob) {
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
