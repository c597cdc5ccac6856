//! Evaluation on time: one aligned task per rule group (restarted on reload), the
//! start-up wait for first samples, the dispatch timer between evaluations, and
//! acknowledgements, each turning the pipeline's `Effects` into work (`perform`).
//!
//! Owns when the pipeline runs and what happens to its effects; it holds no alerting
//! semantics (those are the pipeline's) and commits nothing itself (the store thread does).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::state::{Shared, now};
use crate::actions;
use crate::engine::RuleRef;
use crate::pipeline::Effects;
use crate::series::Timestamp;
use crate::sources::Backfilled;

/// Runs one task per rule group, restarting them all when the policy changes; `slowest`
/// is how often the slowest source collects.
pub(crate) async fn schedule(shared: Arc<Shared>, mut policy_rx: watch::Receiver<u64>, slowest: Duration) {
    loop {
        let (policy, groups): (u64, Vec<(usize, String, Duration)>) = {
            let core = shared.core();
            let default = shared.loaded.cfg.evaluation_interval.value.0;
            let groups = core
                .policy
                .rules
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (i, g.name.clone(), g.interval.unwrap_or(default)))
                .collect();
            (core.policy.hash, groups)
        };
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|(g, name, every)| {
                let group = Group { g, name, every, policy };
                tokio::spawn(run_group(Arc::clone(&shared), group, slowest))
            })
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
/// one interval of the group, or of the slowest source (`slowest`) when that is longer.
/// Evaluating before any sample could arrive would take the restored state for "no data"
/// and clear the `for` timers of pending alerts that the restart was meant to keep.
fn first_data_wait(every: Duration, slowest: Duration) -> Duration {
    every.max(slowest)
}

/// One rule group of the policy a [`run_group`] task evaluates.
struct Group {
    /// Its index in the policy.
    g: usize,
    name: String,
    every: Duration,
    /// The hash of the policy it belongs to.
    policy: u64,
}

/// Evaluates a group every `every`, aligned to multiples of `every` since the epoch so
/// that groups with the same interval tick together and never drift (each deadline comes
/// from the wall clock, not from a monotonic interval started once). A tick that comes too
/// late (the previous evaluation overran) is skipped and counted.
///
/// tokio's timers round up to the millisecond and the runtime parks in whole
/// milliseconds, so a tick would come 1–2 ms late (all of it transition-to-notification
/// latency). The task sleeps on the runtime until shortly before the deadline, and a thread
/// of the blocking pool sleeps the last stretch precisely and evaluates at once: waking the
/// runtime to evaluate there would add a hand-off between threads to every notification.
async fn run_group(shared: Arc<Shared>, group: Group, slowest: Duration) {
    /// How much of the wait is left to the precise sleep.
    const LEAD: Duration = Duration::from_millis(2);
    let group = Arc::new(group);
    let every_ms = crate::series::duration_ms(group.every).max(1);
    let mut next = (now().0 / every_ms + 1) * every_ms;
    loop {
        if let Some(left) = until(next).and_then(|left| left.checked_sub(LEAD)) {
            tokio::time::sleep(left).await;
        }
        let (shared, group) = (Arc::clone(&shared), Arc::clone(&group));
        let ticked = tokio::task::spawn_blocking(move || {
            if let Some(left) = until(next) {
                std::thread::sleep(left);
            }
            tick(&shared, &group, next, every_ms, slowest)
        })
        .await;
        match ticked {
            Ok(at) => next = at + every_ms,
            // The runtime is shutting down.
            Err(_) => return,
        }
    }
}

/// How long until the wall clock reaches `deadline_ms`, if it has not yet.
fn until(deadline_ms: i64) -> Option<Duration> {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let deadline = Duration::from_millis(deadline_ms.max(0) as u64);
    deadline.checked_sub(wall).filter(|d| !d.is_zero())
}

/// The tick of `group` due at `due` (ms): counts it and the ticks missed since, evaluates
/// at the aligned instant (not whenever the thread got the CPU) and returns that instant.
fn tick(shared: &Shared, group: &Group, due: i64, every_ms: i64, slowest: Duration) -> i64 {
    let missed = (now().0 - due) / every_ms;
    {
        let mut it = shared.metrics.iterations.lock().unwrap_or_else(|e| e.into_inner());
        let e = it.entry(group.name.clone()).or_default();
        e.0 += 1;
        e.1 += missed as u64;
    }
    let at = due + missed * every_ms;
    let warming_up = shared.started.elapsed() < first_data_wait(group.every, slowest);
    evaluate(shared, group.g, group.policy, Timestamp(at), warming_up);
    at
}

/// Replays what the sources' backfills filled, before the first evaluation (see
/// [`crate::pipeline::Pipeline::replay`]: instances without persisted state resume where
/// the data says they are, silently, and what fires now is notified once), and performs it.
pub(crate) fn replay(shared: &Shared, backfilled: &[Backfilled]) {
    let Some(from) = backfilled.iter().map(|b| b.from).min() else {
        return;
    };
    let metrics: HashSet<String> = backfilled.iter().flat_map(|b| b.metrics.iter().cloned()).collect();
    let mut fx = Effects::default();
    {
        let mut core = shared.core();
        let default = shared.loaded.cfg.evaluation_interval.value.0;
        let intervals: Vec<Duration> = core
            .policy
            .rules
            .groups
            .iter()
            .map(|g| g.interval.unwrap_or(default))
            .collect();
        core.pipeline.replay(&metrics, from, now(), &intervals, &mut fx);
        tracing::info!(
            since = %crate::time::rfc3339_millis(from),
            notified = fx.notifications.len(),
            "replayed the backfill"
        );
        perform(shared, fx);
    }
    shared.dispatch_wake.notify_one();
}

/// One evaluation of group `g` of the policy whose hash is `policy` at `now`: evaluate,
/// persist (one transaction), deliver. While `warming_up`, rules that read a metric with no
/// series yet are skipped. Nothing happens once another policy runs: a reload aborts the
/// group's task, but not a tick already under way on the blocking pool, and `g` may name
/// another group now.
pub fn evaluate(shared: &Shared, g: usize, policy: u64, now: Timestamp, warming_up: bool) {
    let mut fx = Effects::default();
    {
        let mut guard = shared.core();
        let core = &mut *guard;
        if core.policy.hash != policy || g >= core.policy.rules.groups.len() {
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
        perform(shared, fx);
    }
    // The notes may have started groups whose timers come before the timer's next wake,
    // and a burst leaves the parts after its first due at once.
    shared.dispatch_wake.notify_one();
}

/// Performs a step's effects: logs what could not be queued, turns actions into dry-run
/// history rows on a dry run, and hands the batch to the store thread, which starts the
/// actions only after the state that admitted them is committed (so a crash cannot run an
/// action whose gate, cooldown or hourly limit, was never saved).
///
/// Callers perform while they still hold the core's lock: batches then reach the store in
/// the order the pipeline produced them. Two steps' batches may carry the same row (the
/// routing's sequence counter, a group both flushed), and the later one must commit last.
pub(crate) fn perform(shared: &Shared, fx: Effects) {
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

/// Flushes notification groups whose timers (`group_wait`, `group_interval`, repeats,
/// Alertmanager re-sends, held news) come due between evaluations.
pub(crate) async fn dispatch_timer(shared: Arc<Shared>) {
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
        // Most wakes (one a second at least) find nothing due: that takes no thread.
        if shared.core().next_due().is_none_or(|d| d > now()) {
            continue;
        }
        // A burst goes out in parts (`flush_chunk`), each flushed once the store has taken the
        // one before: one part at a time is held in memory, and sending starts with the first.
        let _ = tokio::time::timeout(MAX_SLEEP, shared.writer.caught_up()).await;
        // Rendering a part takes milliseconds: off the runtime thread, which sends the part
        // before it meanwhile.
        let shared = Arc::clone(&shared);
        let flushed = tokio::task::spawn_blocking(move || {
            let mut fx = Effects::default();
            let mut core = shared.core();
            let t = now();
            if core.next_due().is_some_and(|d| d <= t) {
                core.pipeline.flush(t, &mut fx);
            }
            perform(&shared, fx);
        });
        if flushed.await.is_err() {
            return; // the runtime is shutting down
        }
    }
}

/// Acknowledges (`Some`) or clears the acknowledgement of (`None`) the firing alert with
/// `fingerprint`, for `POST`/`DELETE /api/v1/alerts/{fingerprint}/ack`. The instance state
/// (which holds the ack, so a restart keeps it), a history row and the `acknowledged`
/// messages to the receivers that were told it fires are committed in one batch, as an
/// evaluation's are. Returns the alert as the API lists it; `None` when no alert with that
/// fingerprint fires.
pub fn acknowledge(
    shared: &Shared,
    fingerprint: u64,
    ack: Option<crate::alert::notify::Ack>,
) -> Option<crate::engine::AlertView> {
    let mut fx = Effects::default();
    let view = {
        let mut core = shared.core();
        let view = core.pipeline.acknowledge(fingerprint, ack, now(), &mut fx);
        perform(shared, fx);
        view
    };
    shared.dispatch_wake.notify_one();
    view
}
