//! Outbox: owns delivering queued notifications; never decides what to notify.
//!
//! The daemon commits each notification (one row per receiver, with an idempotency key) in
//! the same SQLite transaction as the state change that produced it, then calls
//! [`Outbox::wake`]. [`Outbox::run`] sends what is due, and settles each attempt in its own
//! connection: a delivered row is deleted, a retryable failure is rescheduled with
//! exponential backoff and jitter ([`policy`]), a rejection is marked `failed`, and an entry
//! still undelivered after `max_retry_age` is marked `dead`.
//!
//! **At-least-once.** Rows are committed before the first attempt and deleted only after the
//! receiver accepted them, so a crash loses nothing: on start everything pending resumes. A
//! crash (even `kill -9`) between a successful send and the deletion sends that notification
//! again after the restart. That duplicate is the price of never losing one; every attempt
//! carries the same idempotency key (`X-Tocsin-Idempotency-Key`, and a Message-ID derived from
//! it for email) so receivers can drop it.
//!
//! **Isolation.** Each receiver has its own entries, its own budget of `max_in_flight`
//! concurrent sends (default [`crate::receivers::DEFAULT_MAX_IN_FLIGHT`]) and its own
//! circuit breaker ([`policy::Breaker`], with the receiver's cool-offs); sends run as tasks
//! with per-receiver time limits, so a failing or hanging receiver never delays another.
//!
//! **Order.** Within one notification group of a receiver, entries go strictly one at a
//! time, oldest first: only a group's oldest pending entry is due ([`db`]), and no attempt
//! starts while another of its group is in flight or awaiting settlement
//! ([`policy::pick`]). An attempt ends when its send task does: a timed-out HTTP request is
//! dropped with its connection (the client never reuses a connection with a request in
//! progress), so the receiver cannot act on it after the next attempt has started.

pub mod db;
pub mod policy;
pub mod send;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::{Id, JoinSet};

use self::db::{Admitted, OutboxEntry, Settled, Settlement};
use self::policy::{Breaker, Permit, Schedule, SendResult, Verdict};
use self::send::Transport;
use crate::receivers::{BreakerPolicy, Receiver, Receivers, Rendered, RetryPolicy};
use crate::sources::exposition::{escape_label_value, write_family};
use crate::store::{Store, StoreError};

/// Upper bounds (seconds) of the `tocsin_notification_latency_seconds` buckets.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How long the loop waits before trying the database again after an error.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// When the queue runs empty after at least this many entries left it, the heap their
/// rendering, rows and sends used is given back ([`crate::memory::give_back`]): a burst
/// would otherwise stay resident.
const GIVE_BACK_AFTER: u64 = 1_000;

/// Delivers the outbox. See the module documentation.
pub struct Outbox {
    store: Mutex<Store>,
    receivers: Mutex<Arc<Receivers>>,
    /// Set by [`Outbox::set_receivers`]: the loop fails entries of removed receivers.
    reconfigured: AtomicBool,
    /// Set by [`Outbox::requeued`]: count pending entries afresh.
    requeued: AtomicBool,
    notify: Notify,
    metrics: Mutex<Metrics>,
    transport: Transport,
    dry_run: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox delivering from `store` — its own connection (open a second one with
    /// `store::open` on the daemon's data directory) — to `receivers`. With `dry_run`, entries
    /// are logged and removed instead of sent.
    pub fn new(store: Store, receivers: Arc<Receivers>, dry_run: bool) -> Arc<Outbox> {
        Arc::new(Outbox {
            store: Mutex::new(store),
            receivers: Mutex::new(receivers),
            reconfigured: AtomicBool::new(true),
            requeued: AtomicBool::new(false),
            notify: Notify::new(),
            metrics: Mutex::new(Metrics::default()),
            transport: Transport::new(),
            dry_run,
        })
    }

    /// Replaces the receivers (on reload). Pending entries of receivers no longer present are
    /// marked failed ("receiver no longer configured"). Call it *before* committing entries
    /// for newly added receivers.
    pub fn set_receivers(&self, receivers: Arc<Receivers>) {
        *lock(&self.receivers) = receivers;
        self.reconfigured.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Tells the loop new entries were committed.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Tells the loop that entries were put back in the queue (`POST
    /// /api/v1/outbox/{id}/retry`): they are not new rows, so the pending counts are redone.
    pub fn requeued(&self) {
        self.requeued.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn receivers(&self) -> Arc<Receivers> {
        lock(&self.receivers).clone()
    }

    /// Delivers until the task is aborted or the runtime shuts down; works on a
    /// current-thread runtime (SQLite runs on the blocking pool). Aborting it cancels the
    /// sends in flight: their entries stay pending and are sent again by the next run.
    pub async fn run(self: Arc<Self>) {
        let mut lp = LoopState::default();
        let mut sends: JoinSet<SendResult> = JoinSet::new();
        loop {
            let now = now_ms();
            let receivers = self.receivers();
            let sweep = self
                .reconfigured
                .swap(false, Ordering::SeqCst)
                .then(|| receivers.list.iter().map(|r| r.name.clone()).collect::<Vec<_>>());
            let judged = self.judge(&mut lp, now);
            lp.recount |= self.requeued.swap(false, Ordering::SeqCst);

            // Entries settled in this round free their slots in it: counting them as busy
            // could leave a receiver whose sends all just finished with nothing to fetch and
            // nothing to wait for.
            let mut settling: HashMap<&str, usize> = HashMap::new();
            for j in &judged {
                *settling.entry(j.receiver.as_str()).or_default() += 1;
            }
            let mut asks = Vec::new();
            let mut wake_at: Option<i64> = None;
            for r in &receivers.list {
                let busy = lp.in_flight.get(&r.name).map_or(0, HashMap::len);
                let busy = busy.saturating_sub(settling.get(r.name.as_str()).copied().unwrap_or(0));
                let free = r.max_in_flight.saturating_sub(busy);
                if free == 0 {
                    continue;
                }
                let breaker = lp.breakers.entry(r.name.clone()).or_default();
                match breaker.permit(now) {
                    Permit::Send => asks.push((r.name.clone(), free, busy, false)),
                    Permit::Probe => asks.push((r.name.clone(), 1, busy, true)),
                    Permit::Wait(until) => wake_at = min_opt(wake_at, until),
                }
            }

            // Attempts that outlive their receiver's removal are spared by the sweep and
            // settled by their outcome; one that ends in a retry is swept next turn.
            let in_flight: Vec<i64> = match &sweep {
                Some(_) => {
                    let settled: std::collections::HashSet<i64> = judged.iter().map(|j| j.id).collect();
                    lp.in_flight
                        .values()
                        .flat_map(|m| m.keys().copied())
                        .filter(|id| !settled.contains(id))
                        .collect()
                }
                None => Vec::new(),
            };
            if judged.iter().any(|j| receivers.get(&j.receiver).is_none()) {
                self.reconfigured.store(true, Ordering::SeqCst);
                self.notify.notify_one();
            }
            let round = Round {
                recover: !lp.started,
                sweep: sweep.clone(),
                in_flight,
                recount: lp.recount,
                settle: judged.iter().map(|j| (j.id, j.settlement.clone())).collect(),
                after_id: lp.last_id,
                asks: asks
                    .iter()
                    .map(|(name, free, busy, _)| (name.clone(), free + busy))
                    .collect(),
                now,
            };
            let me = self.clone();
            let outcome = tokio::task::spawn_blocking(move || round.run(&mut lock(&me.store))).await;
            let out = match outcome {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "outbox: database error; retrying in {STORE_RETRY:?}");
                    self.fail_round(&mut lp, judged, sweep, &asks);
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox: database task failed; retrying in {STORE_RETRY:?}");
                    self.fail_round(&mut lp, judged, sweep, &asks);
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            lp.started = true;
            self.account(&mut lp, &judged, &out, now);
            lp.left_since_give_back += out.settled.removed.values().sum::<u64>();
            if lp.left_since_give_back >= GIVE_BACK_AFTER && lp.pending.values().all(|n| *n == 0) {
                lp.left_since_give_back = 0;
                crate::memory::give_back();
            }

            let mut due: HashMap<String, Vec<OutboxEntry>> = out.due.into_iter().collect();
            for (name, free, _, probe) in &asks {
                let entries = due.remove(name).unwrap_or_default();
                let Some(receiver) = receivers.get(name) else { continue };
                let flying = lp.in_flight.entry(name.clone()).or_default();
                let picked = {
                    let keys: Vec<(i64, &str)> = entries.iter().map(|e| (e.id, e.group_key.as_str())).collect();
                    // Settled in this round (`account` dropped them from `flying`) frees
                    // their groups; anything else still in `flying` holds its group.
                    let busy_groups: std::collections::HashSet<&str> = flying.values().map(String::as_str).collect();
                    policy::pick(&keys, |g| busy_groups.contains(g), *free)
                };
                let started = picked.len();
                let mut entries: Vec<Option<OutboxEntry>> = entries.into_iter().map(Some).collect();
                for i in picked {
                    let Some(entry) = entries[i].take() else { continue };
                    flying.insert(entry.id, entry.group_key.clone());
                    self.dispatch(&mut lp.flights, &mut lp.finished, &mut sends, receiver, entry, *probe);
                }
                if *probe && started == 0 {
                    lp.breakers.entry(name.clone()).or_default().return_probe();
                }
            }
            for t in out.next.into_values().flatten() {
                wake_at = min_opt(wake_at, Some(t));
            }
            self.publish_breakers(&receivers, &lp);

            if !lp.finished.is_empty() {
                continue; // dry-run results settle at once
            }
            let sleep = wake_at.map(|t| Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64));
            tokio::select! {
                _ = self.notify.notified() => {}
                Some(res) = sends.join_next_with_id(), if !sends.is_empty() => {
                    lp.collect(res);
                    while let Some(res) = sends.try_join_next_with_id() {
                        lp.collect(res);
                    }
                }
                _ = tokio::time::sleep(sleep.unwrap_or_default()), if sleep.is_some() => {}
            }
        }
    }

    /// Starts one attempt (or, in dry-run mode, logs it and records it as done).
    fn dispatch(
        self: &Arc<Self>,
        flights: &mut HashMap<Id, Flight>,
        finished: &mut Vec<(Flight, Result<SendResult, String>)>,
        sends: &mut JoinSet<SendResult>,
        receiver: &Receiver,
        entry: OutboxEntry,
        probe: bool,
    ) {
        let flight = Flight {
            id: entry.id,
            receiver: receiver.name.clone(),
            created_ms: entry.created_ms,
            attempts: entry.attempts.saturating_add(1),
            retry: receiver.retry,
            breaker: receiver.breaker,
            probe,
            dry_run: self.dry_run,
        };
        if self.dry_run {
            tracing::info!(
                receiver = %receiver.name,
                kind = receiver.kind.name(),
                idempotency_key = %entry.idempotency_key,
                payload = %entry.payload,
                "dry run: would send notification"
            );
            finished.push((flight, Ok(SendResult::Accepted)));
            return;
        }
        let me = self.clone();
        let receiver = receiver.clone();
        let handle = sends.spawn(async move {
            match serde_json::from_str::<Rendered>(&entry.payload) {
                Ok(msg) => me.transport.send(&receiver, &entry.idempotency_key, &msg).await,
                Err(e) => SendResult::Invalid(format!("undecodable queued message: {e}")),
            }
        });
        flights.insert(handle.id(), flight);
    }

    /// Turns finished attempts into settlements, updating breakers and logging.
    fn judge(&self, lp: &mut LoopState, now: i64) -> Vec<Judged> {
        let mut judged = std::mem::take(&mut lp.unsettled);
        for (flight, result) in lp.finished.drain(..) {
            let result = result.unwrap_or_else(SendResult::Transport);
            let verdict = policy::classify(result, now);
            let reached = !matches!(verdict, Verdict::Retry { .. });
            if !flight.dry_run {
                let breaker = lp.breakers.entry(flight.receiver.clone()).or_default();
                let was_open = breaker.is_open();
                breaker.record(reached, flight.probe, &flight.breaker, now);
                match (was_open, breaker.is_open()) {
                    (false, true) => tracing::warn!(receiver = %flight.receiver, "circuit breaker opened"),
                    (true, false) => tracing::info!(receiver = %flight.receiver, "circuit breaker closed"),
                    _ => {}
                }
            }
            let attempts = flight.attempts;
            let (settlement, result) = match verdict {
                Verdict::Delivered if flight.dry_run => (Settlement::Delivered, "dry_run"),
                Verdict::Delivered => (Settlement::Delivered, "sent"),
                Verdict::Failed(error) => {
                    tracing::warn!(receiver = %flight.receiver, attempts, %error, "notification failed; not retrying");
                    (Settlement::Failed { attempts, error }, "failed")
                }
                Verdict::Retry { retry_after, error } => {
                    match policy::schedule_retry(
                        &flight.retry,
                        flight.created_ms,
                        now,
                        attempts,
                        fastrand::f64(),
                        retry_after,
                    ) {
                        Schedule::At(next_attempt_ms) => {
                            tracing::warn!(
                                receiver = %flight.receiver,
                                attempts,
                                %error,
                                retry_in_ms = next_attempt_ms - now,
                                "notification not delivered; will retry"
                            );
                            let s = Settlement::Retry {
                                attempts,
                                next_attempt_ms,
                                error,
                            };
                            (s, "retried")
                        }
                        Schedule::Dead => {
                            tracing::warn!(
                                receiver = %flight.receiver,
                                attempts,
                                %error,
                                "notification undelivered for max_retry_age; dead-lettered"
                            );
                            (Settlement::Dead { attempts, error }, "dead")
                        }
                    }
                }
            };
            judged.push(Judged {
                id: flight.id,
                receiver: flight.receiver,
                created_ms: flight.created_ms,
                settlement,
                result,
            });
        }
        judged
    }

    /// A round failed: keep its settlements (their entries stay "in flight" so they are not
    /// sent again meanwhile) and redo the sweep next time.
    fn fail_round(
        &self,
        lp: &mut LoopState,
        judged: Vec<Judged>,
        sweep: Option<Vec<String>>,
        asks: &[(String, usize, usize, bool)],
    ) {
        lp.unsettled = judged;
        lp.recount = true;
        if sweep.is_some() {
            self.reconfigured.store(true, Ordering::SeqCst);
        }
        for (name, _, _, probe) in asks {
            if *probe {
                lp.breakers.entry(name.clone()).or_default().return_probe();
            }
        }
    }

    /// Applies a successful round to the loop state and the metrics.
    fn account(&self, lp: &mut LoopState, judged: &[Judged], out: &RoundOut, now: i64) {
        for j in judged {
            if let Some(set) = lp.in_flight.get_mut(&j.receiver) {
                set.remove(&j.id);
            }
        }
        lp.last_id = out.admitted.max_id;
        lp.recount = false;
        match &out.counts {
            Some(counts) => lp.pending = counts.clone(),
            None => {
                for (r, n) in &out.admitted.added {
                    *lp.pending.entry(r.clone()).or_default() += n;
                }
                for (r, n) in &out.settled.removed {
                    let c = lp.pending.entry(r.clone()).or_default();
                    *c = c.saturating_sub(*n);
                }
            }
        }
        let mut m = lock(&self.metrics);
        for j in judged {
            *m.totals.entry((j.receiver.clone(), j.result)).or_default() += 1;
            if j.result == "sent" {
                m.latency
                    .observe(now.saturating_sub(j.created_ms).max(0) as f64 / 1000.0);
            }
        }
        for (r, n) in &out.failed_unconfigured {
            tracing::warn!(receiver = %r, count = n, "{}: notifications marked failed", db::UNCONFIGURED);
            *m.totals.entry((r.clone(), "failed")).or_default() += n;
        }
        m.pending = lp.pending.clone();
    }

    fn publish_breakers(&self, receivers: &Receivers, lp: &LoopState) {
        let mut m = lock(&self.metrics);
        m.circuit = receivers
            .list
            .iter()
            .map(|r| (r.name.clone(), lp.breakers.get(&r.name).is_some_and(Breaker::is_open)))
            .collect();
        m.configured = receivers.list.iter().map(|r| r.name.clone()).collect();
    }

    /// Each configured receiver's name, pending entries and whether its circuit breaker is
    /// open, as `/metrics` shows them (`tocsin_outbox_pending`, `tocsin_receiver_circuit_open`).
    pub fn receiver_states(&self) -> Vec<(String, u64, bool)> {
        let m = lock(&self.metrics);
        m.configured
            .iter()
            .map(|r| {
                (
                    r.clone(),
                    m.pending.get(r).copied().unwrap_or(0),
                    m.circuit.get(r).copied().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Writes the outbox's metrics in the Prometheus text exposition format (HELP and TYPE
    /// lines included): `tocsin_notifications_total{receiver,result}` (result: sent, retried,
    /// failed, dead, dry_run), `tocsin_outbox_pending{receiver}`,
    /// `tocsin_notification_latency_seconds` (queued → delivered) and
    /// `tocsin_receiver_circuit_open{receiver}`.
    pub fn render_metrics(&self, out: &mut String) {
        let m = lock(&self.metrics);
        write_family(
            out,
            "tocsin_notifications_total",
            "counter",
            "Notification delivery attempts by receiver and result (sent, retried, failed, dead, dry_run).",
        );
        for ((r, result), n) in &m.totals {
            let _ = writeln!(
                out,
                "tocsin_notifications_total{{receiver=\"{}\",result=\"{result}\"}} {n}",
                escape_label_value(r)
            );
        }
        write_family(
            out,
            "tocsin_outbox_pending",
            "gauge",
            "Notifications waiting in the outbox for delivery.",
        );
        let mut pending: BTreeMap<&str, u64> = m.configured.iter().map(|r| (r.as_str(), 0)).collect();
        for (r, n) in &m.pending {
            if *n > 0 || pending.contains_key(r.as_str()) {
                pending.insert(r, *n);
            }
        }
        for (r, n) in pending {
            let _ = writeln!(
                out,
                "tocsin_outbox_pending{{receiver=\"{}\"}} {n}",
                escape_label_value(r)
            );
        }
        write_family(
            out,
            "tocsin_notification_latency_seconds",
            "histogram",
            "Time from queueing a notification to its delivery.",
        );
        let mut cumulative = 0;
        for (le, n) in LATENCY_BUCKETS.iter().zip(&m.latency.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "tocsin_notification_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "tocsin_notification_latency_seconds_bucket{{le=\"+Inf\"}} {}\n\
             tocsin_notification_latency_seconds_sum {}\n\
             tocsin_notification_latency_seconds_count {}",
            m.latency.count, m.latency.sum, m.latency.count
        );
        write_family(
            out,
            "tocsin_receiver_circuit_open",
            "gauge",
            "Whether a receiver's circuit breaker holds sends back (1) after repeated failures.",
        );
        for (r, open) in &m.circuit {
            let _ = writeln!(
                out,
                "tocsin_receiver_circuit_open{{receiver=\"{}\"}} {}",
                escape_label_value(r),
                u8::from(*open)
            );
        }
    }
}

/// One attempt in progress (or finished, not yet settled).
#[derive(Clone, Debug)]
struct Flight {
    id: i64,
    receiver: String,
    created_ms: i64,
    /// Attempts including this one.
    attempts: u32,
    retry: RetryPolicy,
    breaker: BreakerPolicy,
    probe: bool,
    dry_run: bool,
}

/// A finished attempt and what it means for its entry.
#[derive(Clone, Debug)]
struct Judged {
    id: i64,
    receiver: String,
    created_ms: i64,
    settlement: Settlement,
    /// The `result` label.
    result: &'static str,
}

/// State of [`Outbox::run`]; lives in the task, so it dies with it.
#[derive(Default)]
struct LoopState {
    /// Whether the start-up recovery ran.
    started: bool,
    /// Ids being sent or awaiting settlement, with their group keys, per receiver: never
    /// fetched twice, and their groups start nothing else meanwhile.
    in_flight: HashMap<String, HashMap<i64, String>>,
    /// Send tasks by task id.
    flights: HashMap<Id, Flight>,
    /// Attempts finished since the last round.
    finished: Vec<(Flight, Result<SendResult, String>)>,
    /// Settlements of a failed round, to apply in the next.
    unsettled: Vec<Judged>,
    breakers: HashMap<String, Breaker>,
    /// Rows up to this id have been admitted.
    last_id: i64,
    /// Pending entries per receiver (kept incrementally between recounts).
    pending: BTreeMap<String, u64>,
    /// Count pending entries from scratch in the next round.
    recount: bool,
    /// Entries that left the queue since the heap was last given back.
    left_since_give_back: u64,
}

impl LoopState {
    fn collect(&mut self, res: Result<(Id, SendResult), tokio::task::JoinError>) {
        let (id, result) = match res {
            Ok((id, r)) => (id, Ok(r)),
            Err(e) => (e.id(), Err(format!("send task failed: {e}"))),
        };
        if let Some(flight) = self.flights.remove(&id) {
            self.finished.push((flight, result));
        }
    }
}

/// The database work of one loop iteration, run on the blocking pool.
struct Round {
    recover: bool,
    sweep: Option<Vec<String>>,
    /// Ids still being sent, which the sweep spares.
    in_flight: Vec<i64>,
    recount: bool,
    settle: Vec<(i64, Settlement)>,
    after_id: i64,
    /// (receiver, how many due entries to fetch).
    asks: Vec<(String, usize)>,
    now: i64,
}

struct RoundOut {
    settled: Settled,
    admitted: Admitted,
    failed_unconfigured: BTreeMap<String, u64>,
    /// Full pending counts, when recounted.
    counts: Option<BTreeMap<String, u64>>,
    due: Vec<(String, Vec<OutboxEntry>)>,
    /// Next future attempt time per asked receiver.
    next: BTreeMap<String, Option<i64>>,
}

impl Round {
    fn run(self, store: &mut Store) -> Result<RoundOut, StoreError> {
        let mut after_id = self.after_id;
        if self.recover {
            after_id = store.outbox_recover()?;
        }
        let settled = if self.settle.is_empty() {
            Settled {
                max_id: i64::MAX,
                ..Settled::default()
            }
        } else {
            store.outbox_settle(&self.settle, self.now)?
        };
        // Deleting the newest rows makes their ids reusable by the next insert.
        after_id = after_id.min(settled.max_id);
        let failed_unconfigured = match &self.sweep {
            Some(known) => {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                store.outbox_fail_unconfigured(&known, &self.in_flight)?
            }
            None => BTreeMap::new(),
        };
        let admitted = store.outbox_admit(after_id)?;
        let counts = if self.recover || self.recount || !failed_unconfigured.is_empty() {
            Some(store.outbox_pending_counts()?)
        } else {
            None
        };
        let mut due = Vec::with_capacity(self.asks.len());
        let mut next = BTreeMap::new();
        for (receiver, limit) in self.asks {
            due.push((receiver.clone(), store.outbox_due(&receiver, self.now, limit)?));
            next.insert(receiver.clone(), store.outbox_next_attempt(&receiver, self.now)?);
        }
        Ok(RoundOut {
            settled,
            admitted,
            failed_unconfigured,
            counts,
            due,
            next,
        })
    }
}

#[derive(Default)]
struct Metrics {
    totals: BTreeMap<(String, &'static str), u64>,
    pending: BTreeMap<String, u64>,
    circuit: BTreeMap<String, bool>,
    configured: Vec<String>,
    latency: Histogram,
}

struct Histogram {
    /// Per bucket (not cumulative), for [`LATENCY_BUCKETS`].
    buckets: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: [0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|le| v <= *le) {
            self.buckets[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_the_exposition() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(dir.path(), 0).unwrap().store;
        let ob = Outbox::new(store, Arc::new(Receivers::default()), false);
        {
            let mut m = lock(&ob.metrics);
            m.latency.observe(0.0001);
            m.latency.observe(0.003);
            m.latency.observe(100.0);
            m.totals.insert(("we\"b".into(), "sent"), 2);
            m.configured = vec!["idle".into()];
        }
        let mut out = String::new();
        ob.render_metrics(&mut out);
        assert!(
            out.contains("tocsin_notification_latency_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("tocsin_notification_latency_seconds_bucket{le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("tocsin_notification_latency_seconds_bucket{le=\"60\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("tocsin_notification_latency_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("tocsin_notification_latency_seconds_count 3\n"), "{out}");
        assert!(
            out.contains("tocsin_notifications_total{receiver=\"we\\\"b\",result=\"sent\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("tocsin_outbox_pending{receiver=\"idle\"} 0\n"), "{out}");
        for name in [
            "tocsin_notifications_total",
            "tocsin_outbox_pending",
            "tocsin_notification_latency_seconds",
            "tocsin_receiver_circuit_open",
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
            assert!(out.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
