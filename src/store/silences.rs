//! The `silences` table: saving, loading, expiring and pruning silences.
//!
//! Validation of what is saved is `silence`'s; this holds only the SQL.

use rusqlite::params;

use super::{Store, StoreError};
use crate::message::Silence;
use crate::series::Timestamp;
use crate::silence::{Status, status};

impl Store {
    /// Inserts or replaces a silence (by id).
    pub fn save_silence(&mut self, s: &Silence) -> Result<(), StoreError> {
        let json = serde_json::to_string(s).expect("a silence always serializes");
        self.conn
            .prepare_cached(
                "INSERT INTO silences (id, ends_at_ms, silence) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET ends_at_ms = excluded.ends_at_ms, silence = excluded.silence",
            )
            .and_then(|mut st| st.execute(params![s.id, s.ends_at.0, json]))
            .map_err(self.err("save silence"))?;
        Ok(())
    }

    /// The silence with `id`, if stored (and readable).
    pub fn silence(&self, id: &str) -> Result<Option<Silence>, StoreError> {
        let e = self.err("load silence");
        let mut st = self
            .conn
            .prepare_cached("SELECT silence FROM silences WHERE id = ?1")
            .map_err(&e)?;
        let mut rows = st.query(params![id]).map_err(&e)?;
        match rows.next().map_err(&e)? {
            Some(r) => {
                let json: String = r.get(0).map_err(&e)?;
                Ok(decode(id, &json))
            }
            None => Ok(None),
        }
    }

    /// Every stored silence, expired ones included, ordered by id. A row that cannot be
    /// read (written by hand, or by a future version) is skipped with a warning rather
    /// than keeping the daemon from starting.
    pub fn load_silences(&self) -> Result<Vec<Silence>, StoreError> {
        let e = self.err("load silences");
        let mut st = self
            .conn
            .prepare_cached("SELECT id, silence FROM silences ORDER BY id")
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(&e)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(&e)?;
            out.extend(decode(&id, &json));
        }
        Ok(out)
    }

    /// Ends the silence `id` at `now` (a pending one never starts). Returns it as stored
    /// now, or `None` when there is no such silence. An already expired silence is left as
    /// it is.
    pub fn expire_silence(&mut self, id: &str, now: Timestamp) -> Result<Option<Silence>, StoreError> {
        let Some(mut s) = self.silence(id)? else {
            return Ok(None);
        };
        if status(&s, now) != Status::Expired {
            s.starts_at = s.starts_at.min(now);
            s.ends_at = now;
            self.save_silence(&s)?;
        }
        Ok(Some(s))
    }

    /// Deletes silences that ended before `before_ms`; returns how many.
    pub fn prune_silences(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM silences WHERE ends_at_ms < ?1")
            .and_then(|mut st| st.execute(params![before_ms]))
            .map_err(self.err("prune silences"))
    }
}

fn decode(id: &str, json: &str) -> Option<Silence> {
    serde_json::from_str(json)
        .map_err(|e| tracing::warn!(id, "stored silence cannot be read, ignoring it: {e}"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    #[test]
    fn store_round_trip_expire_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::open(dir.path(), 0).unwrap().store;
        let d = crate::silence::parse(
            r#"{"matchers":[{"name":"a","value":"b"}],"ends_at":"2030-01-01T00:00:00Z","created_by":"me","comment":"x"}"#
            .as_bytes(),
            NOW,
            1,
        )
        .unwrap();
        store.save_silence(&d.silence).unwrap();
        assert_eq!(store.load_silences().unwrap(), vec![d.silence.clone()]);
        let later = Timestamp(NOW.0 + 1000);
        let expired = store.expire_silence(&d.silence.id, later).unwrap().unwrap();
        assert_eq!(status(&expired, later), Status::Expired);
        assert_eq!(store.silence(&d.silence.id).unwrap(), Some(expired));
        assert_eq!(store.expire_silence("nope", later).unwrap(), None);
        assert_eq!(store.prune_silences(later.0).unwrap(), 0, "ended exactly then");
        assert_eq!(store.prune_silences(later.0 + 1).unwrap(), 1);
        assert!(store.load_silences().unwrap().is_empty());
    }
}
