//! Store: the daemon's SQLite database (`<data_dir>/tocsin.db`).
//!
//! Holds every alert instance's persisted state (opaque JSON keyed by an opaque string; the
//! daemon uses `group\u{1f}rule\u{1f}fingerprint`) and the history of transitions served by
//! `GET /api/v1/history`, the notification outbox, notification groups and silences.
//!
//! Guarantees:
//!
//! * [`Store::commit`] applies a whole [`Batch`] in one transaction: after a crash (even
//!   `kill -9` mid-commit) a reopen sees every committed batch whole and nothing of an
//!   uncommitted one.
//! * [`open`] never silently empties, and never deletes, a database. An unreadable or corrupt
//!   file is *moved aside* (`tocsin.db.corrupt-<now_ms>`, with its `-wal`/`-shm`) and a fresh
//!   database is started; [`Opened::recovered`] says so. A database written by a newer tocsin
//!   (schema version above [`SCHEMA_VERSION`]) or by another program is refused and left
//!   byte-for-byte untouched. Permission problems and unusable directories are errors, never
//!   "corruption".
//! * [`Backlog`] keeps batches whose commit failed, in order, and commits them together with
//!   the next ones ([`Store::commit_all`], one transaction): the database then ends exactly as
//!   if every batch had been committed on its own, in order.
//! * A database moved aside is not abandoned: [`carry`] copies what can still be read of it
//!   (states, notification groups, silences, outbox rows with their ids, history) into the
//!   fresh one before [`open`] returns, and the message in [`Opened::recovered`] counts it.
//! * [`lock`] makes one process the owner of a data directory; [`Snapshot`] gives a dry run
//!   a private copy of the state without writing the data directory.
//! * Nothing here reads the clock: `now_ms` only names a moved-aside file.
//!
//! Values are stored exactly: the `history.value_bits` column holds the `f64` bit pattern, so
//! every value round-trips, including `-0.0`, NaN and ±Inf (SQLite's REAL cannot hold NaN and
//! folds `-0.0` into `0`). `history.value` mirrors it as REAL for humans using `sqlite3`
//! (NULL when absent or NaN); the code never reads it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::ffi::ErrorCode;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params, params_from_iter};

/// The database file inside `data_dir`.
pub const DB_FILE: &str = "tocsin.db";

/// The schema version this code writes and understands: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `PRAGMA synchronous` for the read-write connection.
///
/// In WAL mode, `NORMAL` syncs the WAL only at checkpoints, not at every commit. A committed
/// transaction is in the WAL file (the OS page cache) when `commit` returns, so it survives a
/// crash or `kill -9` of the *process* — which is what the daemon needs, since it commits every
/// evaluation. It does not survive a power loss or kernel crash: the last transactions before
/// the outage may roll back (the database stays consistent, never corrupt). `FULL` would fsync
/// the WAL on every commit and close that window at the cost of one fsync per evaluation
/// (measure with `cargo bench --bench store`).
pub const SYNCHRONOUS: &str = "NORMAL";

/// How long a statement waits for a lock held by another connection before failing with
/// `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// [`HistoryQuery::limit`] when it is 0.
pub const DEFAULT_HISTORY_LIMIT: usize = 1_000;
/// The largest [`HistoryQuery::limit`] honoured.
pub const MAX_HISTORY_LIMIT: usize = 10_000;

/// Upper bound of the WAL file size kept after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Schema migrations, in order: `MIGRATIONS[i]` takes the database from version `i` to
/// `i + 1`. All pending ones run in one transaction at [`open`]. Never edit a shipped entry;
/// append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: instance states and transition history.
    "CREATE TABLE states (
        key   TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE history (
        id          INTEGER PRIMARY KEY,
        at_ms       INTEGER NOT NULL,
        grp         TEXT NOT NULL,
        rule        TEXT NOT NULL,
        fingerprint INTEGER NOT NULL, -- the u64 fingerprint's bit pattern as i64
        event       TEXT NOT NULL,
        severity    TEXT NOT NULL,
        value       REAL,             -- for humans only: NULL when absent or NaN
        value_bits  INTEGER,          -- exact f64 bit pattern as i64; NULL when absent
        labels      TEXT NOT NULL,    -- JSON object of strings
        detail      TEXT
    );
    CREATE INDEX history_at ON history (at_ms);
    CREATE INDEX history_rule_at ON history (rule, at_ms);
    CREATE INDEX history_fingerprint_at ON history (fingerprint, at_ms);",
    // 2: delivery: the durable outbox, notification-group state and silences.
    "CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        receiver        TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        group_key       TEXT NOT NULL,
        payload         TEXT NOT NULL,            -- JSON of receivers::Rendered
        created_ms      INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        status          TEXT NOT NULL DEFAULT 'pending', -- pending | failed | dead
        last_error      TEXT
    );
    CREATE INDEX outbox_due ON outbox (status, receiver, next_attempt_ms);
    CREATE INDEX outbox_group ON outbox (status, receiver, group_key, id); -- oldest of a group
    CREATE TABLE route_groups (
        key   TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE silences (
        id         TEXT PRIMARY KEY NOT NULL,
        ends_at_ms INTEGER NOT NULL,
        silence    TEXT NOT NULL                  -- JSON of message::Silence
    ) WITHOUT ROWID;",
    // 3: value history (`history`): series, and chunks of encoded min/max/last points.
    "CREATE TABLE value_series (
        id     INTEGER PRIMARY KEY,               -- history::series_id
        grp    TEXT NOT NULL,
        rule   TEXT NOT NULL,
        labels TEXT NOT NULL                      -- JSON object of strings
    );
    CREATE INDEX value_series_rule ON value_series (rule);
    CREATE TABLE value_points (
        series   INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,                -- chunk start, Unix ms
        step_ms  INTEGER NOT NULL,
        data     BLOB NOT NULL,                   -- history::decode
        PRIMARY KEY (series, start_ms, step_ms)
    ) WITHOUT ROWID;
    CREATE INDEX value_points_start ON value_points (start_ms);",
    // 4: the expression that produced a series' values, so `tocsin backtest --data` knows
    // when a rule's own values still answer for it (NULL: written before this column).
    "ALTER TABLE value_series ADD COLUMN expr TEXT;",
];

const UPSERT_STATE: &str =
    "INSERT INTO states (key, state) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET state = excluded.state";
const DELETE_STATE: &str = "DELETE FROM states WHERE key = ?1";
const INSERT_HISTORY: &str = "INSERT INTO history \
     (at_ms, grp, rule, fingerprint, event, severity, value, value_bits, labels, detail) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const UPSERT_GROUP: &str =
    "INSERT INTO route_groups (key, state) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET state = excluded.state";
const DELETE_GROUP: &str = "DELETE FROM route_groups WHERE key = ?1";
const INSERT_OUTBOX: &str = "INSERT INTO outbox \
     (receiver, idempotency_key, group_key, payload, created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
const UPSERT_VALUE_SERIES: &str = "INSERT INTO value_series (id, grp, rule, labels, expr) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (id) DO UPDATE SET grp = excluded.grp, rule = excluded.rule, labels = excluded.labels, \
     expr = excluded.expr";
/// Appends to a chunk row (SQLite's `||` yields text; the cast keeps the bytes a blob).
const APPEND_VALUE_POINTS: &str = "INSERT INTO value_points (series, start_ms, step_ms, data) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (series, start_ms, step_ms) DO UPDATE SET data = CAST(data || excluded.data AS BLOB)";
const HISTORY_COLUMNS: &str =
    "SELECT id, at_ms, grp, rule, fingerprint, event, severity, value_bits, labels, detail FROM history";

/// Everything that can go wrong. Every message names the database file (or directory).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed (permissions, missing or unusable directory, ...).
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// SQLite reported an error.
    #[error("{}: {action}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer tocsin. It was not modified.
    #[error(
        "{}: database schema version {found} is newer than this tocsin understands (up to {known}); \
         refusing to use it (the file was not modified): upgrade tocsin or point data_dir elsewhere",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: i64, known: u32 },
    /// A valid SQLite database that tocsin did not create. It was not modified.
    #[error(
        "{}: a SQLite database with tables but no tocsin schema version: not a tocsin database; \
         refusing to use it (the file was not modified)",
        path.display()
    )]
    Foreign { path: PathBuf },
    /// The database can't be used for a reason that is not corruption (e.g. WAL unsupported).
    #[error("{}: {what}", path.display())]
    Unusable { path: PathBuf, what: String },
    /// Another process owns the data directory (see [`lock`]).
    #[error(
        "{}: data_dir is in use by another tocsin (pid {}); one daemon owns a data_dir: stop it or point data_dir elsewhere",
        path.display(),
        pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    /// A stored history row could not be decoded.
    #[error("{}: history row {id}: {what}", path.display())]
    BadRow { path: PathBuf, id: i64, what: String },
}

/// The result of [`open`].
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    /// Set when an unreadable/corrupt database was moved aside: says where to.
    pub recovered: Option<String>,
}

pub use crate::pipeline::{Batch, HistoryRow, NewOutboxEntry};

mod silences;

/// One series of the value history, as [`Store::value_history`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueSeries {
    /// The instance's labels.
    pub labels: BTreeMap<String, String>,
    /// Its points, oldest first.
    pub points: Vec<crate::history::Point>,
}

/// A history query. Bounds are half-open: `since_ms <= at_ms < until_ms`, so adjacent windows
/// never return a row twice.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub rule: Option<String>,
    pub fingerprint: Option<u64>,
    /// 0 = [`DEFAULT_HISTORY_LIMIT`]; capped at [`MAX_HISTORY_LIMIT`].
    pub limit: usize,
}

impl HistoryQuery {
    /// The number of rows the query returns at most.
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => DEFAULT_HISTORY_LIMIT,
            n => n.min(MAX_HISTORY_LIMIT),
        }
    }
}

/// An open read-write database. `Send`, not `Sync`: the daemon owns it from one task.
pub struct Store {
    /// Other modules' `impl Store` blocks (the outbox, silences) use it directly.
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens (creating) `dir/tocsin.db`; `now_ms` only names a moved-aside file (the module never reads the clock).
///
/// Creates `dir` if needed. Checks an existing database (`PRAGMA quick_check`, schema version)
/// through a read-only connection first, so a refused database is never modified; moves a
/// corrupt one aside; then opens read-write (WAL, [`SYNCHRONOUS`]) and applies pending
/// migrations in one transaction.
pub fn open(dir: &Path, now_ms: i64) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        action: "create the data directory",
        source,
    })?;
    let path = dir.join(DB_FILE);
    let moved = match inspect(&path)? {
        Health::Usable => None,
        Health::Bad(why) => Some((why, move_aside(&path, now_ms)?)),
    };
    let mut store = Store::open_rw(path.clone())?;
    let recovered = match moved {
        None => None,
        Some((why, moved)) => {
            // Before anything uses the new database: what can still be read of the old one
            // (pending notifications above all) is carried over.
            let carried = match moved.first().filter(|p| !p.to_string_lossy().ends_with("-wal")) {
                Some(old) => carry(old, &mut store, true)?,
                None => Carried::default(),
            };
            let names: Vec<String> = moved.iter().map(|p| p.display().to_string()).collect();
            Some(format!(
                "{}: {why}; moved it aside to {} and started a fresh database, carrying over what could \
                 still be read (rows carried of rows found: {carried})",
                path.display(),
                names.join(", ")
            ))
        }
    };
    Ok(Opened { store, recovered })
}

enum Health {
    /// Absent, empty, or a healthy database of a version we can migrate.
    Usable,
    /// Corrupt or not a database: the reason.
    Bad(String),
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Decides whether the file at `path` may be opened read-write, without modifying it.
fn inspect(path: &Path) -> Result<Health, StoreError> {
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A WAL left without its database (e.g. a move-aside interrupted half-way) would
            // be replayed into the new database: move it aside instead.
            return Ok(match sibling(path, "-wal").try_exists() {
                Ok(true) => Health::Bad(format!("found {DB_FILE}-wal without {DB_FILE}")),
                Ok(false) => Health::Usable,
                Err(e) => return Err(io("look for the write-ahead log", e)),
            });
        }
        Err(e) => return Err(io("read file metadata", e)),
    };
    if !meta.is_file() {
        return Err(StoreError::Unusable {
            path: path.to_path_buf(),
            what: "exists but is not a regular file".into(),
        });
    }
    // Read the header ourselves: distinguishes "cannot read" (an error) from "not SQLite".
    let mut header = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut header))
        .map_err(|e| io("read the database", e))?;
    if header.is_empty() {
        return Ok(Health::Usable); // SQLite treats an empty file as an empty database.
    }
    if header != b"SQLite format 3\0" {
        return Ok(Health::Bad("not a SQLite database (bad file header)".into()));
    }

    let sqlite = |action, source| StoreError::Sqlite {
        path: path.to_path_buf(),
        action,
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        Err(e) if is_corruption(&e) => return Ok(Health::Bad(format!("unreadable database: {e}"))),
        Err(e) => return Err(sqlite("open read-only to check it", e)),
    };
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite("set busy timeout", e))?;

    // Version first: a newer database is refused without scanning it.
    let version: i64 = match conn.pragma_query_value(None, "user_version", |r| r.get(0)) {
        Ok(v) => v,
        Err(e) if is_corruption(&e) => return Ok(Health::Bad(format!("unreadable database: {e}"))),
        Err(e) => return Err(sqlite("read the schema version", e)),
    };
    if version < 0 || version > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }

    let mut problems = Vec::new();
    let checked = conn.prepare("PRAGMA quick_check(20)").and_then(|mut st| {
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let line: String = r.get(0)?;
            problems.push(line);
        }
        Ok(())
    });
    match checked {
        Ok(()) if problems.len() == 1 && problems[0] == "ok" => {}
        Ok(()) => return Ok(Health::Bad(format!("integrity check failed: {}", problems.join("; ")))),
        Err(e) if is_corruption(&e) => return Ok(Health::Bad(format!("integrity check failed: {e}"))),
        Err(e) => return Err(sqlite("run the integrity check", e)),
    }

    if version == 0 && has_tables(&conn).map_err(|e| sqlite("read the schema", e))? {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
        });
    }
    Ok(Health::Usable)
}

fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\')",
        [],
        |r| r.get(0),
    )
}

/// Renames `path` (and its `-wal`, `-shm`) to `path.corrupt-<now_ms>[.N]`, keeping SQLite's
/// naming so the three can still be opened together for forensics. Returns the new names.
fn move_aside(path: &Path, now_ms: i64) -> Result<Vec<PathBuf>, StoreError> {
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let suffixes = ["", "-wal", "-shm"];
    let base = sibling(path, &format!(".corrupt-{now_ms}"));
    let mut target = base.clone();
    for n in 1.. {
        let mut taken = false;
        for s in suffixes {
            taken |= sibling(&target, s)
                .try_exists()
                .map_err(|e| io("look for a free name to move it aside", e))?;
        }
        if !taken {
            break;
        }
        target = sibling(&base, &format!(".{n}"));
    }
    let mut moved = Vec::new();
    for s in suffixes {
        let from = sibling(path, s);
        match std::fs::symlink_metadata(&from) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("look at a file to move aside", e)),
        }
        let to = sibling(&target, s);
        std::fs::rename(&from, &to).map_err(|e| io("move the corrupt database aside", e))?;
        moved.push(to);
    }
    Ok(moved)
}

impl Store {
    fn open_rw(path: PathBuf) -> Result<Store, StoreError> {
        let sqlite = |action, source| StoreError::Sqlite {
            path: path.clone(),
            action,
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sqlite("open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite("set busy timeout", e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| sqlite("enable WAL journal mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unusable {
                path,
                what: format!("could not enable WAL journal mode (got {mode:?}); is it on a network file system?"),
            });
        }
        conn.pragma_update(None, "synchronous", SYNCHRONOUS)
            .map_err(|e| sqlite("set synchronous", e))?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(|e| sqlite("set journal_size_limit", e))?;
        // The bundled SQLite is built with STAT4: without the planner's stability guarantee,
        // a statement whose plan could depend on a bound value (a `LIMIT ?`, a range on an
        // indexed column) is compiled again whenever that value changes. The outbox's queries
        // bind a new time and limit every round, and re-preparing them was most of a round.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| sqlite("enable the query planner stability guarantee", e))?;
        conn.set_prepared_statement_cache_capacity(32);
        let mut store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    /// A second read-write connection to the same database (the outbox settles its entries
    /// on its own connection while evaluations commit). The database was checked and
    /// migrated by [`open`]; this skips both.
    pub fn another_connection(&self) -> Result<Store, StoreError> {
        Store::open_rw(self.path.clone())
    }

    /// Stops this connection from checkpointing the WAL when a commit of its own grows it
    /// past SQLite's threshold: such a checkpoint writes and syncs the database file inside
    /// that commit, a stall of milliseconds on the way from an evaluation to its
    /// notifications. The daemon's committing connections hand the job to [`Store::checkpoint`]
    /// on a connection of its own.
    pub fn leave_checkpoints_to_another(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(self.err("turn automatic checkpoints off"))
    }

    /// Copies what the WAL holds into the database file as far as no reader needs it
    /// (`PRAGMA wal_checkpoint(PASSIVE)`): it never waits for, nor blocks, a writer.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.err("checkpoint the WAL"))
    }

    pub(crate) fn err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sql_err(&self.path, action)
    }

    /// Applies the pending [`MIGRATIONS`] and records the version, in one transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |action, source| StoreError::Sqlite {
            path: path.clone(),
            action,
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite("begin migration", e))?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| sqlite("read schema version", e))?;
        if version < 0 || version > i64::from(SCHEMA_VERSION) {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version == i64::from(SCHEMA_VERSION) {
            return Ok(()); // dropping `tx` rolls back the (empty) transaction
        }
        if version == 0 && has_tables(&tx).map_err(|e| sqlite("read the schema", e))? {
            return Err(StoreError::Foreign { path });
        }
        for m in &MIGRATIONS[version as usize..] {
            tx.execute_batch(m).map_err(|e| sqlite("apply schema migration", e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sqlite("record schema version", e))?;
        tx.commit().map_err(|e| sqlite("commit schema migration", e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All persisted instance states, ordered by key.
    pub fn load_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        let e = self.err("load states");
        let mut st = self
            .conn
            .prepare_cached("SELECT key, state FROM states ORDER BY key")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    /// Every persisted notification group (`route`'s dispatcher state), by key.
    pub fn load_groups(&self) -> Result<Vec<(String, String)>, StoreError> {
        let e = self.err("load notification groups");
        let mut st = self
            .conn
            .prepare_cached("SELECT key, state FROM route_groups ORDER BY key")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    /// Applies a batch in ONE transaction (all or nothing).
    ///
    /// On error nothing of the batch is visible and the store remains usable.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.commit_all(std::iter::once(batch))
    }

    /// Applies `batches` in order in ONE transaction (all or nothing): the database ends
    /// exactly as if each had been committed on its own, one after the other.
    ///
    /// On error nothing of any batch is visible and the store remains usable.
    pub fn commit_all<'a>(&mut self, batches: impl IntoIterator<Item = &'a Batch>) -> Result<(), StoreError> {
        let mut batches = batches.into_iter().filter(|b| !b.is_empty()).peekable();
        if batches.peek().is_none() {
            return Ok(());
        }
        let sqlite = |action| sql_err(&self.path, action);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("begin batch"))?;
        for batch in batches {
            apply(&tx, batch, &self.path)?;
        }
        tx.commit().map_err(sqlite("commit batch"))
    }

    /// Newest first (ties by insertion order, newest first).
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        let mut sql = String::from(HISTORY_COLUMNS);
        let mut args: Vec<Value> = Vec::new();
        let cond = |sql: &mut String, args: &mut Vec<Value>, clause: &str, v: Value| {
            sql.push_str(if args.is_empty() { " WHERE " } else { " AND " });
            args.push(v);
            let _ = write!(sql, "{clause} ?{}", args.len());
        };
        if let Some(s) = q.since_ms {
            cond(&mut sql, &mut args, "at_ms >=", Value::Integer(s));
        }
        if let Some(u) = q.until_ms {
            cond(&mut sql, &mut args, "at_ms <", Value::Integer(u));
        }
        if let Some(r) = &q.rule {
            cond(&mut sql, &mut args, "rule =", Value::Text(r.clone()));
        }
        if let Some(f) = q.fingerprint {
            cond(&mut sql, &mut args, "fingerprint =", Value::Integer(f as i64));
        }
        args.push(Value::Integer(q.effective_limit() as i64));
        let _ = write!(sql, " ORDER BY at_ms DESC, id DESC LIMIT ?{}", args.len());

        let e = self.err("query history");
        let mut st = self.conn.prepare_cached(&sql).map_err(&e)?;
        let mut rows = st.query(params_from_iter(args)).map_err(&e)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let id: i64 = r.get(0).map_err(&e)?;
            let labels: String = r.get(8).map_err(&e)?;
            let labels = serde_json::from_str(&labels).map_err(|err| StoreError::BadRow {
                path: self.path.clone(),
                id,
                what: format!("labels are not a JSON object of strings: {err}"),
            })?;
            let bits: Option<i64> = r.get(7).map_err(&e)?;
            let fingerprint: i64 = r.get(4).map_err(&e)?;
            out.push(HistoryRow {
                at_ms: r.get(1).map_err(&e)?,
                group: r.get(2).map_err(&e)?,
                rule: r.get(3).map_err(&e)?,
                fingerprint: fingerprint as u64,
                event: r.get(5).map_err(&e)?,
                severity: r.get(6).map_err(&e)?,
                value: bits.map(|b| f64::from_bits(b as u64)),
                labels,
                detail: r.get(9).map_err(&e)?,
            });
        }
        Ok(out)
    }

    /// Deletes history older than `before_ms`; returns how many rows.
    pub fn prune_history(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        let e = self.err("prune history");
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM history WHERE at_ms < ?1")
            .map_err(&e)?;
        st.execute(params![before_ms]).map_err(&e)
    }

    /// The value history of `rule`'s series (every group's rule of that name) with points
    /// in `from_ms <= t < to_ms`, each series' points in time order, series by labels.
    /// `None` when there are more than `max_points` points in all: the caller asks for less.
    pub fn value_history(
        &self,
        rule: &str,
        from_ms: i64,
        to_ms: i64,
        max_points: usize,
    ) -> Result<Option<Vec<ValueSeries>>, StoreError> {
        let e = self.err("query value history");
        let mut st = self
            .conn
            .prepare_cached("SELECT id, labels FROM value_series WHERE rule = ?1")
            .map_err(&e)?;
        let ids: Vec<(i64, String)> = st
            .query_map(params![rule], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&e)?
            .collect::<Result<_, _>>()
            .map_err(&e)?;
        let mut chunks = self.conn.prepare_cached(&chunks_sql()).map_err(&e)?;
        let mut out = Vec::with_capacity(ids.len());
        let mut total = 0usize;
        for (id, labels) in ids {
            let bad = |what: String| StoreError::BadRow {
                path: self.path.clone(),
                id,
                what,
            };
            let labels = serde_json::from_str(&labels)
                .map_err(|err| bad(format!("value series labels are not a JSON object of strings: {err}")))?;
            let points = points_of(&mut chunks, id, from_ms, to_ms, &self.path)?;
            if points.is_empty() {
                continue;
            }
            total += points.len();
            if total > max_points {
                return Ok(None);
            }
            out.push(ValueSeries { labels, points });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Some(out))
    }

    /// Deletes value history chunks that end before `before_ms`, and series left without
    /// any; returns how many chunks.
    pub fn prune_values(&mut self, before_ms: i64) -> Result<usize, StoreError> {
        let e = self.err("prune value history");
        let n = self
            .conn
            .prepare_cached(&format!(
                "DELETE FROM value_points WHERE start_ms < ?1 AND start_ms + step_ms * {} <= ?1",
                crate::history::CHUNK_STEPS
            ))
            .and_then(|mut st| st.execute(params![before_ms]))
            .map_err(&e)?;
        if n > 0 {
            self.conn
                .prepare_cached(
                    "DELETE FROM value_series WHERE NOT EXISTS \
                     (SELECT 1 FROM value_points WHERE value_points.series = value_series.id)",
                )
                .and_then(|mut st| st.execute([]))
                .map_err(&e)?;
        }
        Ok(n)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.err("read schema version"))?;
        u32::try_from(v).map_err(|_| StoreError::NewerSchema {
            path: self.path.clone(),
            found: v,
            known: SCHEMA_VERSION,
        })
    }
}

/// Batches waiting to be committed, oldest first, each with what must happen once it is
/// durable (the daemon's admitted actions).
///
/// A commit that fails (disk full, I/O error, locked database) loses nothing: the batch stays
/// here and is committed with the next ones, in order and in one transaction, once the store
/// works again. The database then holds exactly what committing every batch on its own, in
/// order, would have left.
#[derive(Debug)]
pub struct Backlog<T> {
    queue: VecDeque<(Batch, T)>,
}

impl<T> Default for Backlog<T> {
    fn default() -> Self {
        Backlog { queue: VecDeque::new() }
    }
}

impl<T> Backlog<T> {
    /// Queues `batch` behind every batch still waiting; `then` comes back from the
    /// [`Backlog::flush`] that commits it.
    pub fn push(&mut self, batch: Batch, then: T) {
        self.queue.push_back((batch, then));
    }

    /// How many batches are waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// True when some waiting batch queues notifications.
    pub fn has_outbox_rows(&self) -> bool {
        self.queue.iter().any(|(b, _)| !b.outbox.is_empty())
    }

    /// Commits every waiting batch, oldest first, in one transaction. On success the backlog
    /// is empty and the `then` values come back in order; on failure nothing is committed and
    /// every batch keeps waiting.
    pub fn flush(&mut self, store: &mut Store) -> Result<Vec<T>, StoreError> {
        store.commit_all(self.queue.iter().map(|(b, _)| b))?;
        Ok(self.queue.drain(..).map(|(_, t)| t).collect())
    }
}

/// The lock file inside `data_dir`; holds the owner's pid.
pub const LOCK_FILE: &str = "LOCK";

/// Ownership of a `data_dir` (an exclusive `flock` on [`LOCK_FILE`]), released when dropped
/// or when the process dies, however it dies.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// Takes ownership of `dir` (created if needed) for this process, or says which process owns
/// it: one daemon per data directory.
pub fn lock(dir: &Path) -> Result<DirLock, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        action: "create the data directory",
        source,
    })?;
    let path = dir.join(LOCK_FILE);
    let io = |action, source| StoreError::Io {
        path: path.clone(),
        action,
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // The owner writes its pid right after locking: an empty file means it is starting.
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock the data directory", e)),
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| io("write the lock file", e))?;
    Ok(DirLock { _file: file })
}

/// What [`carry`] brought from an old database into a new one, per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// (table, rows carried, rows the old file says it holds — `None` when it cannot count
    /// them) in the order carried.
    pub tables: Vec<(&'static str, u64, Option<u64>)>,
}

impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tables.is_empty() {
            return f.write_str("nothing");
        }
        for (i, (table, carried, total)) in self.tables.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match total {
                Some(t) => write!(f, "{sep}{table}: {carried} of {t}")?,
                None => write!(f, "{sep}{table}: {carried} of an unknown number")?,
            }
        }
        Ok(())
    }
}

/// The tables [`carry`] copies: name, columns, and the column rows are ordered by (unique).
const CARRIED: &[(&str, &str, &str)] = &[
    ("states", "key, state", "key"),
    ("route_groups", "key, state", "key"),
    ("silences", "id, ends_at_ms, silence", "id"),
    (
        "outbox",
        "id, receiver, idempotency_key, group_key, payload, created_ms, next_attempt_ms, attempts, status, last_error",
        "id",
    ),
    (
        "history",
        "id, at_ms, grp, rule, fingerprint, event, severity, value, value_bits, labels, detail",
        "id",
    ),
];

/// Copies what can still be read of the database at `from` (opened read-only, never
/// modified) into `into`: persisted states, notification groups, silences, the outbox (row
/// ids kept, so delivery order is kept) and, with `history`, the transition history.
///
/// Best effort, row by row: each table is read forwards until the first unreadable page and
/// then backwards from its end down to that point, so one damaged region loses only the
/// rows it holds. Fails only when `into` cannot be written.
pub fn carry(from: &Path, into: &mut Store, history: bool) -> Result<Carried, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let old = Connection::open_with_flags(from, flags).ok();
    let mut carried = Carried::default();
    for &(table, columns, key) in CARRIED.iter().filter(|t| history || t.0 != "history") {
        let Some(old) = &old else {
            carried.tables.push((table, 0, None));
            continue;
        };
        let total = old
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
            .ok()
            .map(|n| n as u64);
        let n = carry_table(old, into, table, columns, key)?;
        carried.tables.push((table, n, total));
    }
    Ok(carried)
}

fn carry_table(old: &Connection, into: &mut Store, table: &str, columns: &str, key: &str) -> Result<u64, StoreError> {
    let width = columns.split(',').count();
    let path = into.path.clone();
    let e = sql_err(&path, "carry rows into the new database");
    let tx = into
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&e)?;
    let placeholders = vec!["?"; width].join(", ");
    let mut carried = 0u64;
    {
        let mut insert = tx
            .prepare(&format!(
                "INSERT OR IGNORE INTO {table} ({columns}) VALUES ({placeholders})"
            ))
            .map_err(&e)?;
        let mut put = |row: &[Value]| -> Result<(), StoreError> {
            // A row whose values the damage turned into the wrong types is refused by the
            // new table's constraints: it is not carried, the others are.
            if let Ok(1) = insert.execute(params_from_iter(row)) {
                carried += 1;
            }
            Ok(())
        };
        let forward = format!("SELECT {columns} FROM {table} ORDER BY {key}");
        let key_at = columns.split(", ").position(|c| c == key).unwrap_or(0);
        let mut last: Option<Value> = None;
        scan(old, &forward, None, width, &mut |row| {
            last = Some(row[key_at].clone());
            put(row)
        })?;
        let backward = match &last {
            Some(_) => format!("SELECT {columns} FROM {table} WHERE {key} > ?1 ORDER BY {key} DESC"),
            None => format!("SELECT {columns} FROM {table} ORDER BY {key} DESC"),
        };
        scan(old, &backward, last.as_ref(), width, &mut put)?;
    }
    tx.commit().map_err(&e)?;
    Ok(carried)
}

/// Runs `sql` on the old database and hands each row to `each` until the rows end or one
/// cannot be read.
fn scan(
    old: &Connection,
    sql: &str,
    after: Option<&Value>,
    width: usize,
    each: &mut dyn FnMut(&[Value]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let Ok(mut st) = old.prepare(sql) else {
        return Ok(());
    };
    let rows = match after {
        Some(v) => st.query([v]),
        None => st.query([]),
    };
    let Ok(mut rows) = rows else { return Ok(()) };
    let mut row_values = Vec::with_capacity(width);
    while let Ok(Some(r)) = rows.next() {
        row_values.clear();
        for i in 0..width {
            match r.get::<_, Value>(i) {
                Ok(v) => row_values.push(v),
                Err(_) => break,
            }
        }
        if row_values.len() == width {
            each(&row_values)?;
        }
    }
    Ok(())
}

/// A private copy of a data directory's state for `tocsin run --dry-run`: a fresh database in
/// a scratch directory, seeded by [`carry`] from `data_dir`'s database (read-only; history
/// is not copied). The scratch directory is removed when this is dropped.
#[derive(Debug)]
pub struct Snapshot {
    dir: PathBuf,
}

/// Scratch directories of dry runs are named `<SNAPSHOT_PREFIX><pid>-<now_ms>`.
const SNAPSHOT_PREFIX: &str = "tocsin-dry-run-";

impl Snapshot {
    /// Creates a scratch directory under `temp` and opens a store in it seeded from
    /// `data_dir`. Nothing in `data_dir` is created or modified. Scratch directories left by
    /// dry runs that were killed (their pid is gone) are removed first.
    pub fn take(data_dir: &Path, temp: &Path, now_ms: i64) -> Result<(Snapshot, Store, Carried), StoreError> {
        remove_stale_snapshots(temp);
        let scratch = temp.join(format!("{SNAPSHOT_PREFIX}{}-{now_ms}", std::process::id()));
        std::fs::create_dir(&scratch).map_err(|source| StoreError::Io {
            path: scratch.clone(),
            action: "create the dry run's scratch directory",
            source,
        })?;
        let snapshot = Snapshot { dir: scratch };
        let mut store = open(&snapshot.dir, now_ms)?.store;
        let from = data_dir.join(DB_FILE);
        let carried = match from.try_exists() {
            Ok(true) => carry(&from, &mut store, false)?,
            _ => Carried::default(),
        };
        Ok((snapshot, store, carried))
    }
}

/// Removes the scratch directories under `temp` whose dry run no longer exists (a `kill -9`
/// skips [`Snapshot`]'s `Drop`). A live or unknown owner keeps its directory.
fn remove_stale_snapshots(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SNAPSHOT_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        let gone =
            unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && pid > 0 {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes one batch inside an open transaction: upserts, deletes, history, groups, outbox.
fn apply(tx: &rusqlite::Transaction<'_>, batch: &Batch, path: &Path) -> Result<(), StoreError> {
    let sqlite = |action| sql_err(path, action);
    {
        let mut up = tx
            .prepare_cached(UPSERT_STATE)
            .map_err(sqlite("prepare state upsert"))?;
        for (key, state) in &batch.upserts {
            up.execute(params![key, state]).map_err(sqlite("upsert state"))?;
        }
        let mut del = tx
            .prepare_cached(DELETE_STATE)
            .map_err(sqlite("prepare state delete"))?;
        for key in &batch.deletes {
            del.execute(params![key]).map_err(sqlite("delete state"))?;
        }
        let mut ins = tx
            .prepare_cached(INSERT_HISTORY)
            .map_err(sqlite("prepare history insert"))?;
        for h in &batch.history {
            let labels = labels_json(&h.labels);
            let readable = h.value.filter(|v| !v.is_nan());
            let bits = h.value.map(|v| v.to_bits() as i64);
            ins.execute(params![
                h.at_ms,
                h.group,
                h.rule,
                h.fingerprint as i64,
                h.event,
                h.severity,
                readable,
                bits,
                labels,
                h.detail
            ])
            .map_err(sqlite("insert history"))?;
        }
        for (key, state) in &batch.groups {
            match state {
                Some(state) => tx
                    .prepare_cached(UPSERT_GROUP)
                    .and_then(|mut st| st.execute(params![key, state]))
                    .map_err(sqlite("upsert notification group"))?,
                None => tx
                    .prepare_cached(DELETE_GROUP)
                    .and_then(|mut st| st.execute(params![key]))
                    .map_err(sqlite("delete notification group"))?,
            };
        }
        let mut ob = tx
            .prepare_cached(INSERT_OUTBOX)
            .map_err(sqlite("prepare outbox insert"))?;
        for e in &batch.outbox {
            ob.execute(params![
                e.receiver,
                e.idempotency_key,
                e.group_key,
                e.payload,
                e.created_ms
            ])
            .map_err(sqlite("queue notification"))?;
        }
        let mut series = tx
            .prepare_cached(UPSERT_VALUE_SERIES)
            .map_err(sqlite("prepare value series upsert"))?;
        for r in &batch.values.series {
            series
                .execute(params![r.id, r.group, r.rule, labels_json(&r.labels), r.expr])
                .map_err(sqlite("record value series"))?;
        }
        let mut points = tx
            .prepare_cached(APPEND_VALUE_POINTS)
            .map_err(sqlite("prepare value history append"))?;
        for a in &batch.values.points {
            points
                .execute(params![a.series, a.start_ms, a.step_ms, a.bytes])
                .map_err(sqlite("append value history"))?;
        }
    }
    Ok(())
}

fn sql_err<'a>(path: &'a Path, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The chunks of one series overlapping `[?2, ?3)`.
fn chunks_sql() -> String {
    format!(
        "SELECT start_ms, step_ms, data FROM value_points \
         WHERE series = ?1 AND start_ms < ?3 AND start_ms + step_ms * {} > ?2",
        crate::history::CHUNK_STEPS
    )
}

/// The points of series `id` in `from_ms <= t < to_ms`, in time order, through the prepared
/// [`chunks_sql`].
fn points_of(
    chunks: &mut rusqlite::Statement<'_>,
    id: i64,
    from_ms: i64,
    to_ms: i64,
    path: &Path,
) -> Result<Vec<crate::history::Point>, StoreError> {
    let e = sql_err(path, "query value history");
    let mut points = Vec::new();
    let mut rows = chunks.query(params![id, from_ms, to_ms]).map_err(&e)?;
    while let Some(r) = rows.next().map_err(&e)? {
        let (start, step): (i64, i64) = (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?);
        let data: Vec<u8> = r.get(2).map_err(&e)?;
        crate::history::decode(start, step, &data, &mut points).map_err(|err| StoreError::BadRow {
            path: path.to_path_buf(),
            id,
            what: err.to_string(),
        })?;
    }
    points.retain(|p| (from_ms..to_ms).contains(&p.t_ms));
    // Chunks of two resolutions (a changed `history_resolution`) may interleave.
    points.sort_by_key(|p| p.t_ms);
    Ok(points)
}

/// One series of a data directory's value history, as [`read_values`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedSeries {
    /// The rule's group.
    pub group: String,
    /// The rule (alert name or recorded metric).
    pub rule: String,
    /// The expression that produced the values; `None` when an older tocsin wrote them.
    pub expr: Option<String>,
    /// The instance's labels (without the rule's own labels).
    pub labels: BTreeMap<String, String>,
    /// Its points in the range, oldest first.
    pub points: Vec<crate::history::Point>,
}

/// Every series of the value history of the data directory `dir` with its points in
/// `from_ms <= t < to_ms`, read through a read-only connection: the database is never
/// written (a daemon may be running on it), not even migrated.
pub fn read_values(dir: &Path, from_ms: i64, to_ms: i64) -> Result<Vec<RecordedSeries>, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return Err(StoreError::Unusable {
            path,
            what: "no tocsin database here: name a tocsin data directory (the daemon's `data_dir`)".to_string(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags).map_err(sql_err(&path, "open read-only"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_err(&path, "set busy timeout"))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql_err(&path, "read the schema version"))?;
    if version > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema {
            path,
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version < 3 {
        return Err(StoreError::Unusable {
            path,
            what: "this database holds no value history (written by a tocsin before it kept one)".to_string(),
        });
    }
    // Version 3 has no `expr` column: its series say nothing of their expression.
    let expr = if version >= 4 { "expr" } else { "NULL" };
    let e = sql_err(&path, "read value series");
    let mut st = conn
        .prepare(&format!(
            "SELECT id, grp, rule, {expr}, labels FROM value_series ORDER BY grp, rule, id"
        ))
        .map_err(&e)?;
    type Row = (i64, String, String, Option<String>, String);
    let rows: Vec<Row> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .map_err(&e)?
        .collect::<Result<_, _>>()
        .map_err(&e)?;
    let mut chunks = conn.prepare(&chunks_sql()).map_err(&e)?;
    let mut out = Vec::new();
    for (id, group, rule, expr, labels) in rows {
        let labels = serde_json::from_str(&labels).map_err(|err| StoreError::BadRow {
            path: path.clone(),
            id,
            what: format!("value series labels are not a JSON object of strings: {err}"),
        })?;
        let points = points_of(&mut chunks, id, from_ms, to_ms, &path)?;
        if !points.is_empty() {
            out.push(RecordedSeries {
                group,
                rule,
                expr,
                labels,
                points,
            });
        }
    }
    Ok(out)
}

fn labels_json(labels: &impl serde::Serialize) -> String {
    // Serializing a map of strings cannot fail; fall back to an empty object rather than panic.
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_caps() {
        let q = |limit| {
            HistoryQuery {
                limit,
                ..Default::default()
            }
            .effective_limit()
        };
        assert_eq!(
            (q(0), q(1), q(10_000), q(10_001), q(usize::MAX)),
            (1_000, 1, 10_000, 10_000, 10_000)
        );
    }

    #[test]
    fn sibling_names_follow_sqlite() {
        let p = Path::new("/d/tocsin.db");
        assert_eq!(sibling(p, "-wal"), Path::new("/d/tocsin.db-wal"));
        assert_eq!(
            sibling(&sibling(p, ".corrupt-5"), "-shm"),
            Path::new("/d/tocsin.db.corrupt-5-shm")
        );
    }

    #[test]
    fn migrations_build_the_documented_schema() {
        let conn = Connection::open_in_memory().unwrap();
        for m in MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            names,
            [
                "history",
                "history_at",
                "history_fingerprint_at",
                "history_rule_at",
                "outbox",
                "outbox_due",
                "outbox_group",
                "route_groups",
                "silences",
                "states",
                "value_points",
                "value_points_start",
                "value_series",
                "value_series_rule"
            ]
        );
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
        // The statements used at run time all prepare against the final schema.
        for sql in [
            UPSERT_STATE,
            DELETE_STATE,
            INSERT_HISTORY,
            HISTORY_COLUMNS,
            UPSERT_GROUP,
            DELETE_GROUP,
            INSERT_OUTBOX,
            UPSERT_VALUE_SERIES,
            APPEND_VALUE_POINTS,
        ] {
            conn.prepare(sql).unwrap();
        }
    }

    #[test]
    fn history_queries_use_the_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        let plan = |filter: &str| -> String {
            let sql =
                format!("EXPLAIN QUERY PLAN {HISTORY_COLUMNS} WHERE {filter} ORDER BY at_ms DESC, id DESC LIMIT 5");
            let mut st = conn.prepare(&sql).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
        };
        assert!(
            plan("rule = 'x' AND at_ms >= 1").contains("history_rule_at"),
            "{}",
            plan("rule = 'x'")
        );
        assert!(plan("fingerprint = 3").contains("history_fingerprint_at"));
        assert!(plan("at_ms >= 1 AND at_ms < 5").contains("history_at"));
    }

    #[test]
    fn a_dry_run_removes_only_the_scratch_of_dry_runs_that_are_gone() {
        let temp = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = temp.path().join(format!("{SNAPSHOT_PREFIX}{dead}-1"));
        let live = temp.path().join(format!("{SNAPSHOT_PREFIX}1-1")); // init never goes away
        let other = temp.path().join("unrelated-99999999");
        for d in [&stale, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        let (snapshot, _store, carried) = Snapshot::take(data.path(), temp.path(), 7).unwrap();
        assert_eq!(carried, Carried::default(), "no database to carry from");
        assert!(!stale.exists() && live.exists() && other.exists());
        assert!(snapshot.dir.join(DB_FILE).exists());
        assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "data_dir untouched");
        let dir = snapshot.dir.clone();
        drop(snapshot);
        assert!(!dir.exists());
    }

    #[test]
    fn undecodable_rows_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        let row = HistoryRow {
            at_ms: 1,
            group: "g".into(),
            rule: "r".into(),
            fingerprint: 1,
            event: "firing".into(),
            severity: "page".into(),
            value: Some(1.0),
            labels: crate::series::Labels::new(),
            detail: None,
        };
        s.commit(&Batch {
            history: vec![row],
            ..Batch::default()
        })
        .unwrap();
        s.conn.execute("UPDATE history SET labels = '[1'", []).unwrap();
        let err = s.history(&HistoryQuery::default()).unwrap_err();
        assert!(matches!(err, StoreError::BadRow { id: 1, .. }), "{err}");
        assert!(err.to_string().contains(DB_FILE), "{err}");
        s.conn
            .execute("UPDATE history SET labels = '{}', rule = x'00ff'", [])
            .unwrap();
        let err = s.history(&HistoryQuery::default()).unwrap_err();
        assert!(err.to_string().contains("query history"), "{err}");
    }

    fn values_of(acc: &mut crate::history::Accumulator, t: i64, values: &[(u64, f64)]) -> Batch {
        let mut batch = Batch::default();
        for &(instance, v) in values {
            let labels = crate::series::Labels::from_pairs([("i", instance.to_string().as_str())]);
            acc.observe(
                "g",
                "r",
                "m * 2",
                instance,
                &labels,
                v,
                crate::series::Timestamp(t),
                &mut batch.values,
            );
        }
        acc.finish("g", crate::series::Timestamp(t), &mut batch.values);
        batch
    }

    #[test]
    fn read_values_reads_series_with_their_expression_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        let mut acc = crate::history::Accumulator::new(Duration::from_secs(1));
        for t in 0..5 {
            s.commit(&values_of(&mut acc, t * 1000, &[(1, t as f64)])).unwrap();
        }
        drop(s);
        let file = dir.path().join(DB_FILE);
        let before = std::fs::read(&file).unwrap();
        let got = read_values(dir.path(), 1000, 10_000).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].group.as_str(), got[0].rule.as_str()), ("g", "r"));
        assert_eq!(got[0].expr.as_deref(), Some("m * 2"));
        assert_eq!(got[0].labels, BTreeMap::from([("i".to_string(), "1".to_string())]));
        let points: Vec<(i64, f64)> = got[0].points.iter().map(|p| (p.t_ms, p.last)).collect();
        assert_eq!(points, [(1000, 1.0), (2000, 2.0), (3000, 3.0)], "the 5th step is open");
        assert_eq!(std::fs::read(&file).unwrap(), before, "read-only");

        // A database of schema 3 (before the expression was kept) reads with no expression.
        let old = tempfile::tempdir().unwrap();
        let conn = Connection::open(old.path().join(DB_FILE)).unwrap();
        for m in &MIGRATIONS[..3] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute("INSERT INTO value_series VALUES (7, 'g', 'r', '{}')", [])
            .unwrap();
        conn.execute("INSERT INTO value_points VALUES (7, 0, 1000, x'e000')", [])
            .unwrap();
        drop(conn);
        let got = read_values(old.path(), 0, 10_000).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].expr, None);
        assert_eq!(got[0].points.len(), 1);

        let none = tempfile::tempdir().unwrap();
        let err = read_values(none.path(), 0, 1).unwrap_err().to_string();
        assert!(err.contains("no tocsin database here"), "{err}");
        assert!(!none.path().join(DB_FILE).exists(), "nothing created");
    }

    #[test]
    fn value_history_is_appended_queried_by_range_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0).unwrap().store;
        let mut acc = crate::history::Accumulator::new(Duration::from_secs(1));
        // 0.0 and a value whose bits hold zero bytes: the appended blob keeps every byte.
        for t in 0..70 {
            let v = if t % 2 == 0 {
                0.0
            } else {
                f64::from_bits(0x4000_0000_0000_0001)
            };
            s.commit(&values_of(&mut acc, t * 1000, &[(1, v), (2, t as f64)]))
                .unwrap();
        }
        let all = s.value_history("r", 0, 1_000_000, 1000).unwrap().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].labels, BTreeMap::from([("i".to_string(), "1".to_string())]));
        assert_eq!(all[0].points.len(), 69, "every closed step; the 70th is open");
        assert_eq!(all[0].points[1].last.to_bits(), 0x4000_0000_0000_0001);
        assert_eq!(all[1].points[68].t_ms, 68_000);
        assert_eq!(all[1].points[68].last, 68.0);
        let some = s.value_history("r", 10_000, 20_000, 1000).unwrap().unwrap();
        assert_eq!(
            some[1].points.iter().map(|p| p.t_ms).collect::<Vec<_>>(),
            (10..20).map(|t| t * 1000).collect::<Vec<_>>()
        );
        assert_eq!(
            s.value_history("r", 0, 1_000_000, 100).unwrap(),
            None,
            "138 points > 100"
        );
        assert!(s.value_history("other", 0, 1_000_000, 100).unwrap().unwrap().is_empty());
        // Chunks of 32 steps: [0, 32 s) and [32 s, 64 s) end before 64 s.
        assert_eq!(s.prune_values(64_000).unwrap(), 4);
        let left = s.value_history("r", 0, 1_000_000, 1000).unwrap().unwrap();
        assert_eq!(left[0].points.first().unwrap().t_ms, 64_000);
        assert_eq!(s.prune_values(1_000_000).unwrap(), 2);
        let series: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM value_series", [], |r| r.get(0))
            .unwrap();
        assert_eq!(series, 0, "series without points go with them");
        s.conn
            .execute("INSERT INTO value_points VALUES (1, 0, 1000, x'00ff')", [])
            .unwrap();
        s.conn
            .execute(
                "INSERT INTO value_series (id, grp, rule, labels) VALUES (1, 'g', 'r', '{}')",
                [],
            )
            .unwrap();
        let err = s.value_history("r", 0, 1_000_000, 1000).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    /// The figures in BENCHMARKS.md ("Value history"): bytes of the database file per point
    /// and per 1,000 instances, for series that hold their value, step through integers, and
    /// change every sample (full 64-bit noise, the worst case), with one sample per step.
    #[test]
    fn value_history_costs_a_few_bytes_per_point() {
        const INSTANCES: u64 = 1_000;
        const STEPS: i64 = 4 * crate::history::CHUNK_STEPS;
        let mut report = String::new();
        for (name, bound, value) in [
            ("steady", 5.0, &(|_: u64, _: i64| 42.0) as &dyn Fn(u64, i64) -> f64),
            ("integer steps", 5.5, &|i, t| ((i as i64 + t) / 3) as f64),
            ("noise", 16.0, &|i, t| {
                f64::from_bits(fastrand::Rng::with_seed(i ^ ((t as u64) << 20)).u64(..) >> 2)
            }),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut s = open(dir.path(), 0).unwrap().store;
            let pages = |s: &Store| -> i64 {
                s.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
                s.conn
                    .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
                    .unwrap()
                    * s.conn
                        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
                        .unwrap()
            };
            let empty = pages(&s);
            let mut acc = crate::history::Accumulator::new(Duration::from_secs(60));
            for t in 0..=STEPS {
                let values: Vec<(u64, f64)> = (0..INSTANCES).map(|i| (i, value(i, t))).collect();
                s.commit(&values_of(&mut acc, t * 60_000, &values)).unwrap();
            }
            let bytes = pages(&s) - empty;
            let per_point = bytes as f64 / (INSTANCES as f64 * STEPS as f64);
            let _ = writeln!(
                report,
                "{name}: {per_point:.2} bytes/point, {:.1} MB per 1,000 instances per day at 1m",
                per_point * 1440.0 * 1000.0 / 1e6
            );
            assert!(per_point < bound, "{name}: {per_point:.2} bytes per point");
        }
        println!("{report}");
    }
}
