//! The outbox table (store migration 2), as the delivery loop and the API use it.
//!
//! Rows are queued by the daemon's [`Store::commit`] and only ever removed here. An entry is
//! `pending` until it is delivered (the row is deleted), rejected (`failed`) or too old
//! (`dead`); failed and dead rows stay for inspection until [`Store::outbox_prune`].
//!
//! Ordering within a notification group: only the oldest pending entry of a
//! (receiver, group key) — its *head* — is ever due. To keep the due query an index range
//! scan even with a large backlog, a pending entry queued behind another of its group has
//! `next_attempt_ms = `[`BLOCKED`]; removing a head unblocks its successor. The due query
//! still checks head-ness itself, so ordering never depends on that bookkeeping being up to
//! date (a row the daemon committed a moment ago is simply skipped until admitted).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension as _, TransactionBehavior, params};

use crate::store::{Store, StoreError};

/// `next_attempt_ms` of a pending entry waiting for an older entry of its group.
pub const BLOCKED: i64 = i64::MAX;

/// The error recorded for entries of a receiver removed by a reload.
pub const UNCONFIGURED: &str = "receiver no longer configured";

const COLUMNS: &str = "SELECT id, receiver, idempotency_key, group_key, payload, created_ms, next_attempt_ms, \
     attempts, status, last_error FROM outbox";

/// "Another pending entry of the same group is older than `outbox`'s row."
const HAS_OLDER: &str = "EXISTS (SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.receiver = outbox.receiver \
     AND p.group_key = outbox.group_key AND p.id < outbox.id)";

/// "A pending entry queued after row ?1 (up to row ?2), not yet blocked (?3)"; with
/// [`HAS_OLDER`], what an admission blocks.
const ADMITTED_UNBLOCKED: &str = "id > ?1 AND id <= ?2 AND status = 'pending' AND next_attempt_ms <> ?3";

/// Where an entry is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Rejected by the receiver (or its receiver was removed); not retried.
    Failed,
    /// Undelivered for `max_retry_age`; not retried.
    Dead,
}

impl EntryStatus {
    /// The value of the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Pending => "pending",
            EntryStatus::Failed => "failed",
            EntryStatus::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<EntryStatus> {
        [EntryStatus::Pending, EntryStatus::Failed, EntryStatus::Dead]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// One row of the outbox.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    /// Row id (queue order).
    pub id: i64,
    /// Receiver name.
    pub receiver: String,
    /// Idempotency key sent with every attempt.
    pub idempotency_key: String,
    /// Notification group key.
    pub group_key: String,
    /// JSON of the `receivers::Rendered` message.
    pub payload: String,
    /// When it was queued (Unix ms).
    pub created_ms: i64,
    /// When it is next due (Unix ms; [`BLOCKED`] behind an older entry of its group).
    pub next_attempt_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Life-cycle status.
    pub status: EntryStatus,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// What [`Store::outbox_retry`] did with an entry that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// It is pending again.
    Requeued,
    /// It was left alone: it has this status, neither failed nor dead.
    NotStopped(EntryStatus),
}

/// How an attempt settles an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Delete it.
    Delivered,
    /// Keep it pending with this attempt count, due again at `next_attempt_ms`.
    Retry {
        /// Attempts made so far, this one included.
        attempts: u32,
        /// When to try again.
        next_attempt_ms: i64,
        /// This attempt's error.
        error: String,
    },
    /// Mark it `failed`.
    Failed {
        /// Attempts made so far, this one included.
        attempts: u32,
        /// Why.
        error: String,
    },
    /// Mark it `dead`.
    Dead {
        /// Attempts made so far, this one included.
        attempts: u32,
        /// The last error.
        error: String,
    },
}

/// What [`Store::outbox_settle`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Pending entries that left the queue (delivered, failed, dead), per receiver.
    pub removed: BTreeMap<String, u64>,
    /// The largest row id left in the table after the transaction (0 when empty). SQLite
    /// hands the next insert `max(id) + 1`, so deleting the newest rows makes ids reusable:
    /// whoever tracks "rows after id N" must lower N to this.
    pub max_id: i64,
}

/// What [`Store::outbox_admit`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Pending entries queued since the previous admission, per receiver.
    pub added: BTreeMap<String, u64>,
    /// The largest row id now in the table: pass it to the next admission.
    pub max_id: i64,
}

impl Store {
    /// Prepares the queue after a start: blocks every pending entry queued behind an older
    /// one of its group and unblocks every head (in one transaction). Returns the largest row
    /// id, the starting point of [`Store::outbox_admit`].
    pub fn outbox_recover(&mut self) -> Result<i64, StoreError> {
        let e = owned_err(&self.path, "prepare the outbox");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        tx.execute(
            &format!(
                "UPDATE outbox SET next_attempt_ms = ?1 WHERE status = 'pending' AND next_attempt_ms <> ?1 AND {HAS_OLDER}"
            ),
            params![BLOCKED],
        )
        .map_err(&e)?;
        tx.execute(
            &format!(
                "UPDATE outbox SET next_attempt_ms = created_ms \
                 WHERE status = 'pending' AND next_attempt_ms = ?1 AND NOT {HAS_OLDER}"
            ),
            params![BLOCKED],
        )
        .map_err(&e)?;
        let max_id = max_id(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(max_id)
    }

    /// Admits entries queued after row `after_id`: blocks those behind an older entry of
    /// their group and counts them per receiver.
    ///
    /// It runs every delivery round, so it reads first and takes the write lock only when a
    /// new entry queued behind another of its group: most rounds admit nothing, or a group's
    /// first entry, and then writing would only contend with the evaluations' commits.
    pub fn outbox_admit(&mut self, after_id: i64) -> Result<Admitted, StoreError> {
        let e = owned_err(&self.path, "admit queued notifications");
        // One read snapshot: the counts and `max_id` agree, and rows committed meanwhile are
        // left to the next admission.
        let tx = self.conn.transaction().map_err(&e)?;
        let max_id = max_id(&tx).map_err(&e)?;
        let mut added = BTreeMap::new();
        {
            let mut st = tx
                .prepare_cached(
                    "SELECT receiver, COUNT(*) FROM outbox WHERE id > ?1 AND id <= ?2 AND status = 'pending' \
                     GROUP BY receiver",
                )
                .map_err(&e)?;
            let rows = st
                .query_map(params![after_id, max_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(&e)?;
            for row in rows {
                let (receiver, n) = row.map_err(&e)?;
                added.insert(receiver, n as u64);
            }
        }
        let behind: bool = !added.is_empty()
            && tx
                .prepare_cached(&format!(
                    "SELECT EXISTS (SELECT 1 FROM outbox WHERE {ADMITTED_UNBLOCKED} AND {HAS_OLDER})"
                ))
                .and_then(|mut st| st.query_row(params![after_id, max_id, BLOCKED], |r| r.get(0)))
                .map_err(&e)?;
        tx.finish().map_err(&e)?;
        if behind {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&e)?;
            tx.prepare_cached(&format!(
                "UPDATE outbox SET next_attempt_ms = ?3 WHERE {ADMITTED_UNBLOCKED} AND {HAS_OLDER}"
            ))
            .and_then(|mut st| st.execute(params![after_id, max_id, BLOCKED]))
            .map_err(&e)?;
            tx.commit().map_err(&e)?;
        }
        Ok(Admitted { added, max_id })
    }

    /// Up to `limit` entries of `receiver` due at `now_ms`, soonest first: pending, with
    /// `next_attempt_ms <= now_ms`, and the oldest pending entry of their group.
    pub fn outbox_due(&self, receiver: &str, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let e = self.err("read due notifications");
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "{COLUMNS} WHERE status = 'pending' AND receiver = ?1 AND next_attempt_ms <= ?2 AND NOT {HAS_OLDER} \
                 ORDER BY next_attempt_ms, id LIMIT ?3"
            ))
            .map_err(&e)?;
        let rows = st
            .query_map(params![receiver, now_ms, limit as i64], entry)
            .map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    /// The earliest `next_attempt_ms` of `receiver`'s pending entries later than `after_ms`
    /// (blocked entries excluded): when the delivery loop should look again.
    pub fn outbox_next_attempt(&self, receiver: &str, after_ms: i64) -> Result<Option<i64>, StoreError> {
        let e = self.err("read the next attempt time");
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT MIN(next_attempt_ms) FROM outbox \
                 WHERE status = 'pending' AND receiver = ?1 AND next_attempt_ms > ?2 AND next_attempt_ms < ?3",
            )
            .map_err(&e)?;
        st.query_row(params![receiver, after_ms, BLOCKED], |r| r.get(0))
            .map_err(&e)
    }

    /// Applies the outcomes of attempts in ONE transaction (delivered rows are deleted in
    /// batches: one commit per batch, not per notification). Removing a group's head
    /// unblocks its successor, due at `now_ms`. Entries no longer pending are left alone.
    pub fn outbox_settle(&mut self, outcomes: &[(i64, Settlement)], now_ms: i64) -> Result<Settled, StoreError> {
        let e = owned_err(&self.path, "settle notifications");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let mut settled = Settled::default();
        let mut heads_gone = BTreeSet::new();
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM outbox WHERE id = ?1 AND status = 'pending' RETURNING receiver, group_key")
                .map_err(&e)?;
            let mut retry = tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 \
                     WHERE id = ?1 AND status = 'pending'",
                )
                .map_err(&e)?;
            let mut stop = tx
                .prepare_cached(
                    "UPDATE outbox SET status = ?2, attempts = ?3, last_error = ?4 \
                     WHERE id = ?1 AND status = 'pending' RETURNING receiver, group_key",
                )
                .map_err(&e)?;
            let pair = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
            for (id, outcome) in outcomes {
                let gone = match outcome {
                    Settlement::Delivered => delete.query_row(params![id], pair).optional().map_err(&e)?,
                    Settlement::Retry {
                        attempts,
                        next_attempt_ms,
                        error,
                    } => {
                        retry
                            .execute(params![id, attempts, next_attempt_ms, error])
                            .map_err(&e)?;
                        None
                    }
                    Settlement::Failed { attempts, error } | Settlement::Dead { attempts, error } => {
                        let status = if matches!(outcome, Settlement::Failed { .. }) {
                            EntryStatus::Failed
                        } else {
                            EntryStatus::Dead
                        };
                        stop.query_row(params![id, status.as_str(), attempts, error], pair)
                            .optional()
                            .map_err(&e)?
                    }
                };
                if let Some((receiver, group)) = gone {
                    *settled.removed.entry(receiver.clone()).or_default() += 1;
                    heads_gone.insert((receiver, group));
                }
            }
            let mut unblock = tx
                .prepare_cached(
                    "UPDATE outbox SET next_attempt_ms = ?3 WHERE next_attempt_ms = ?4 AND id = \
                     (SELECT MIN(id) FROM outbox WHERE status = 'pending' AND receiver = ?1 AND group_key = ?2)",
                )
                .map_err(&e)?;
            for (receiver, group) in &heads_gone {
                unblock.execute(params![receiver, group, now_ms, BLOCKED]).map_err(&e)?;
            }
        }
        settled.max_id = max_id(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(settled)
    }

    /// Marks every pending entry of a receiver not in `known` failed with [`UNCONFIGURED`],
    /// except the ids in `in_flight`: an attempt under way may still succeed, and its
    /// settlement (delivered, or a retry that the next sweep fails) decides. Returns how
    /// many per receiver.
    pub fn outbox_fail_unconfigured(
        &mut self,
        known: &[&str],
        in_flight: &[i64],
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let e = owned_err(&self.path, "fail notifications of removed receivers");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let mut failed = BTreeMap::new();
        let present: Vec<String> = {
            let mut st = tx
                .prepare_cached("SELECT DISTINCT receiver FROM outbox WHERE status = 'pending'")
                .map_err(&e)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(&e)?;
            rows.collect::<Result<_, _>>().map_err(&e)?
        };
        for receiver in present.into_iter().filter(|r| !known.contains(&r.as_str())) {
            let ids: Vec<i64> = {
                let mut st = tx
                    .prepare_cached("SELECT id FROM outbox WHERE status = 'pending' AND receiver = ?1")
                    .map_err(&e)?;
                let rows = st.query_map(params![receiver], |r| r.get(0)).map_err(&e)?;
                rows.collect::<Result<_, _>>().map_err(&e)?
            };
            let mut fail = tx
                .prepare_cached("UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1")
                .map_err(&e)?;
            let mut n = 0;
            for id in ids.into_iter().filter(|id| !in_flight.contains(id)) {
                n += fail.execute(params![id, UNCONFIGURED]).map_err(&e)? as u64;
            }
            drop(fail);
            if n > 0 {
                failed.insert(receiver, n);
            }
        }
        tx.commit().map_err(&e)?;
        Ok(failed)
    }

    /// Pending entries per receiver.
    pub fn outbox_pending_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let e = self.err("count pending notifications");
        let mut st = self
            .conn
            .prepare_cached("SELECT receiver, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY receiver")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    /// Entries with `status`, newest first, at most `limit` (e.g. failed and dead ones for
    /// the API).
    pub fn outbox_entries(&self, status: EntryStatus, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let e = self.err("list notifications");
        let mut st = self
            .conn
            .prepare_cached(&format!("{COLUMNS} WHERE status = ?1 ORDER BY id DESC LIMIT ?2"))
            .map_err(&e)?;
        let rows = st
            .query_map(params![status.as_str(), limit as i64], entry)
            .map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    /// Re-queues the failed or dead entry `id` for delivery: pending again with no attempts
    /// and a full `max_retry_age` from `now_ms` (its new `created_ms`), due at once unless
    /// an older pending entry of its group goes first. Says what the entry was when it is
    /// not failed or dead, or `None` when there is no such entry.
    pub fn outbox_retry(&mut self, id: i64, now_ms: i64) -> Result<Option<Requeue>, StoreError> {
        let e = owned_err(&self.path, "re-queue a notification");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM outbox WHERE id = ?1", params![id], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        let Some(status) = status else { return Ok(None) };
        if status == EntryStatus::Pending.as_str() {
            return Ok(Some(Requeue::NotStopped(EntryStatus::Pending)));
        }
        tx.execute(
            &format!(
                "UPDATE outbox SET status = 'pending', attempts = 0, created_ms = ?2, \
                 next_attempt_ms = CASE WHEN {HAS_OLDER} THEN ?3 ELSE ?2 END WHERE id = ?1"
            ),
            params![id, now_ms, BLOCKED],
        )
        .map_err(&e)?;
        // It may now come before pending entries of its group: they wait behind it.
        tx.execute(
            &format!(
                "UPDATE outbox SET next_attempt_ms = ?1 WHERE status = 'pending' AND next_attempt_ms <> ?1 AND {HAS_OLDER} \
                 AND receiver = (SELECT receiver FROM outbox WHERE id = ?2) \
                 AND group_key = (SELECT group_key FROM outbox WHERE id = ?2)"
            ),
            params![BLOCKED, id],
        )
        .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(Some(Requeue::Requeued))
    }

    /// Deletes failed and dead entries queued before `before_ms`; returns how many.
    pub fn outbox_prune(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        let e = self.err("prune failed notifications");
        self.conn
            .prepare_cached("DELETE FROM outbox WHERE status IN ('failed', 'dead') AND created_ms < ?1")
            .and_then(|mut st| st.execute(params![before_ms]))
            .map_err(&e)
    }
}

/// Like `Store::err`, without borrowing the store (its connection is borrowed mutably next).
fn owned_err(path: &std::path::Path, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |source| StoreError::Sqlite {
        path: path.clone(),
        action,
        source,
    }
}

fn max_id(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM outbox")?
        .query_row([], |r| r.get(0))
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let status: String = r.get(8)?;
    Ok(OutboxEntry {
        id: r.get(0)?,
        receiver: r.get(1)?,
        idempotency_key: r.get(2)?,
        group_key: r.get(3)?,
        payload: r.get(4)?,
        created_ms: r.get(5)?,
        next_attempt_ms: r.get(6)?,
        attempts: r.get(7)?,
        status: EntryStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown outbox status {status:?}").into(),
            )
        })?,
        last_error: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, NewOutboxEntry, open};

    fn queue(s: &mut Store, rows: &[(&str, &str, i64)]) {
        let outbox = rows
            .iter()
            .map(|(receiver, group, created_ms)| NewOutboxEntry {
                receiver: (*receiver).into(),
                idempotency_key: format!("{group}:{created_ms}"),
                group_key: (*group).into(),
                payload: "{}".into(),
                created_ms: *created_ms,
            })
            .collect();
        s.commit(&Batch {
            outbox,
            ..Batch::default()
        })
        .unwrap();
    }

    fn ids(v: &[OutboxEntry]) -> Vec<i64> {
        v.iter().map(|e| e.id).collect()
    }

    #[test]
    fn only_group_heads_are_due_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        queue(
            &mut s,
            &[("a", "g1", 10), ("a", "g1", 11), ("a", "g2", 12), ("b", "g1", 13)],
        );
        // Un-admitted rows are already ordered correctly by the query itself.
        assert_eq!(ids(&s.outbox_due("a", 100, 10).unwrap()), [1, 3]);
        let admitted = s.outbox_admit(0).unwrap();
        assert_eq!(admitted.max_id, 4);
        assert_eq!(admitted.added, BTreeMap::from([("a".into(), 3), ("b".into(), 1)]));
        assert_eq!(ids(&s.outbox_due("a", 100, 10).unwrap()), [1, 3]);
        assert_eq!(ids(&s.outbox_due("a", 10, 10).unwrap()), [1]);
        assert_eq!(ids(&s.outbox_due("b", 100, 10).unwrap()), [4]);
        assert_eq!(s.outbox_next_attempt("a", 10).unwrap(), Some(12));

        // Head 1 retries later: its successor stays blocked; the other group goes on.
        let retry = Settlement::Retry {
            attempts: 1,
            next_attempt_ms: 500,
            error: "HTTP 503".into(),
        };
        let settled = s.outbox_settle(&[(1, retry), (3, Settlement::Delivered)], 100).unwrap();
        assert_eq!(settled.removed, BTreeMap::from([("a".into(), 1)]));
        assert_eq!(ids(&s.outbox_due("a", 499, 10).unwrap()), Vec::<i64>::new());
        assert_eq!(s.outbox_next_attempt("a", 100).unwrap(), Some(500));
        let due = s.outbox_due("a", 500, 10).unwrap();
        assert_eq!((due[0].id, due[0].attempts), (1, 1));
        assert_eq!(due[0].last_error.as_deref(), Some("HTTP 503"));

        // Delivering the head unblocks the successor, due at once.
        s.outbox_settle(&[(1, Settlement::Delivered)], 600).unwrap();
        assert_eq!(ids(&s.outbox_due("a", 600, 10).unwrap()), [2]);
        assert_eq!(s.outbox_pending_counts().unwrap().get("a"), Some(&1));
    }

    #[test]
    fn failed_and_dead_stay_listed_until_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        queue(&mut s, &[("a", "g", 10), ("a", "g", 20), ("a", "h", 30)]);
        s.outbox_admit(0).unwrap();
        let failed = Settlement::Failed {
            attempts: 1,
            error: "HTTP 400: no".into(),
        };
        let dead = Settlement::Dead {
            attempts: 9,
            error: "refused".into(),
        };
        let settled = s.outbox_settle(&[(1, failed), (3, dead)], 50).unwrap();
        assert_eq!(settled.removed.get("a"), Some(&2));
        // A settled entry is not settled twice.
        let again = s.outbox_settle(&[(1, Settlement::Delivered)], 50).unwrap();
        assert!(again.removed.is_empty());
        assert_eq!(ids(&s.outbox_due("a", 50, 10).unwrap()), [2]);
        let f = s.outbox_entries(EntryStatus::Failed, 10).unwrap();
        assert_eq!((f[0].id, f[0].last_error.as_deref()), (1, Some("HTTP 400: no")));
        let d = s.outbox_entries(EntryStatus::Dead, 10).unwrap();
        assert_eq!((d[0].id, d[0].attempts), (3, 9));
        assert_eq!(s.outbox_prune(25).unwrap(), 1);
        assert_eq!(s.outbox_prune(1_000).unwrap(), 1);
        assert_eq!(ids(&s.outbox_entries(EntryStatus::Pending, 10).unwrap()), [2]);
    }

    #[test]
    fn recovery_blocks_successors_and_unblocks_heads() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        queue(&mut s, &[("a", "g", 10), ("a", "g", 20)]);
        s.conn
            .execute("UPDATE outbox SET next_attempt_ms = ?1 WHERE id = 1", params![BLOCKED])
            .unwrap();
        assert_eq!(s.outbox_recover().unwrap(), 2);
        let pending = s.outbox_entries(EntryStatus::Pending, 10).unwrap();
        assert_eq!(
            pending.iter().map(|e| e.next_attempt_ms).collect::<Vec<_>>(),
            [BLOCKED, 10]
        );
    }

    #[test]
    fn reused_ids_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        queue(&mut s, &[("a", "g", 10), ("a", "h", 20)]);
        assert_eq!(s.outbox_admit(0).unwrap().max_id, 2);
        let settled = s.outbox_settle(&[(2, Settlement::Delivered)], 30).unwrap();
        assert_eq!(settled.max_id, 1);
        queue(&mut s, &[("a", "h", 40)]);
        let admitted = s.outbox_admit(settled.max_id).unwrap();
        assert_eq!(admitted.added.get("a"), Some(&1));
    }

    #[test]
    fn unconfigured_receivers_fail() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        queue(&mut s, &[("a", "g", 10), ("gone", "g", 20), ("gone", "h", 30)]);
        let failed = s.outbox_fail_unconfigured(&["a"], &[]).unwrap();
        assert_eq!(failed, BTreeMap::from([("gone".into(), 2)]));
        let f = s.outbox_entries(EntryStatus::Failed, 10).unwrap();
        assert!(f.iter().all(|e| e.last_error.as_deref() == Some(UNCONFIGURED)));
        assert_eq!(s.outbox_pending_counts().unwrap(), BTreeMap::from([("a".into(), 1)]));
    }

    #[test]
    fn queries_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), 0).unwrap().store;
        let plan = |sql: &str| -> String {
            let mut st = s.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
        };
        let due = plan(&format!(
            "{COLUMNS} WHERE status = 'pending' AND receiver = 'a' AND next_attempt_ms <= 5 AND NOT {HAS_OLDER} \
             ORDER BY next_attempt_ms, id LIMIT 3"
        ));
        assert!(due.contains("outbox_due") && due.contains("outbox_group"), "{due}");
        assert!(!due.contains("TEMP B-TREE"), "{due}");
    }
}
