//! The SQLite store against real database files in temporary directories.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use tocsin::series::Labels;
use tocsin::store::{
    Backlog, Batch, DB_FILE, HistoryQuery, HistoryRow, MAX_HISTORY_LIMIT, NewOutboxEntry, Opened, SCHEMA_VERSION,
    Store, StoreError, open,
};

fn fresh(dir: &Path) -> Store {
    let Opened { store, recovered } = open(dir, 1).expect("open");
    assert_eq!(recovered, None);
    store
}

fn row(at_ms: i64, rule: &str, fingerprint: u64, value: Option<f64>) -> HistoryRow {
    HistoryRow {
        at_ms,
        group: "g".into(),
        rule: rule.into(),
        fingerprint,
        event: "firing".into(),
        severity: "warning".into(),
        value,
        labels: Labels::from_pairs([("instance", "db-1"), ("ünï", "\"quoted\"\n")]),
        detail: None,
    }
}

fn upserts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    upserts(pairs)
}

/// Bitwise comparison, so NaN == NaN and -0.0 != 0.0.
fn same_row(a: &HistoryRow, b: &HistoryRow) -> bool {
    let bits = |r: &HistoryRow| r.value.map(f64::to_bits);
    bits(a) == bits(b)
        && HistoryRow {
            value: None,
            ..a.clone()
        } == HistoryRow {
            value: None,
            ..b.clone()
        }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn states_and_history_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let values = [
        Some(1.5),
        None,
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(-0.0),
        Some(f64::MIN_POSITIVE / 4.0), // subnormal
        Some(f64::MAX),
        Some(0.1 + 0.2),
    ];
    let rows: Vec<HistoryRow> = values
        .iter()
        .enumerate()
        .map(|(i, v)| HistoryRow {
            detail: (i % 2 == 0).then(|| format!("detail {i}")),
            ..row(1_000 + i as i64, "CpuHigh", u64::MAX - i as u64, *v)
        })
        .collect();
    {
        let mut s = fresh(dir.path());
        s.commit(&Batch {
            upserts: upserts(&[("g\u{1f}r\u{1f}1", r#"{"tier":1}"#), ("g\u{1f}r\u{1f}2", "{}")]),
            deletes: vec![],
            history: rows.clone(),
            ..Batch::default()
        })
        .unwrap();
    }
    let s = fresh(dir.path());
    assert_eq!(
        s.load_states().unwrap(),
        states(&[("g\u{1f}r\u{1f}1", r#"{"tier":1}"#), ("g\u{1f}r\u{1f}2", "{}")])
    );
    let mut got = s.history(&HistoryQuery::default()).unwrap();
    got.reverse();
    assert_eq!(got.len(), rows.len());
    for (g, w) in got.iter().zip(&rows) {
        assert!(same_row(g, w), "{g:?} != {w:?}");
    }
    assert!(got[2].value.unwrap().is_nan());
    assert!(got[5].value.unwrap().is_sign_negative());
}

#[test]
fn upsert_replaces_and_delete_removes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh(dir.path());
    s.commit(&Batch {
        upserts: upserts(&[("a", "1"), ("b", "1"), ("c", "1")]),
        ..Batch::default()
    })
    .unwrap();
    s.commit(&Batch {
        upserts: upserts(&[("a", "2")]),
        deletes: vec!["b".into(), "nope".into()],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.load_states().unwrap(), states(&[("a", "2"), ("c", "1")]));
    // Within one batch deletes apply after upserts.
    s.commit(&Batch {
        upserts: upserts(&[("c", "3"), ("d", "3")]),
        deletes: vec!["c".into()],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.load_states().unwrap(), states(&[("a", "2"), ("d", "3")]));
    // The same key twice in one batch: the last write wins.
    s.commit(&Batch {
        upserts: upserts(&[("a", "x"), ("a", "y")]),
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.load_states().unwrap(), states(&[("a", "y"), ("d", "3")]));
    s.commit(&Batch::default()).unwrap();
    assert_eq!(s.load_states().unwrap().len(), 2);
}

#[test]
fn a_failing_batch_leaves_nothing_behind_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh(dir.path());
    s.commit(&Batch {
        upserts: upserts(&[("keep", "1"), ("gone", "1")]),
        history: vec![row(1, "R", 1, None)],
        ..Batch::default()
    })
    .unwrap();
    // A real SQLite failure in the middle of the batch: a trigger aborts the 3rd history insert.
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON history WHEN NEW.event = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let bad = Batch {
        upserts: upserts(&[("keep", "2"), ("new", "2")]),
        deletes: vec!["gone".into()],
        history: vec![
            row(2, "R", 1, None),
            row(3, "R", 1, None),
            HistoryRow {
                event: "boom".into(),
                ..row(4, "R", 1, None)
            },
        ],
        ..Batch::default()
    };
    let err = s.commit(&bad).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(DB_FILE) && msg.contains("boom"), "{msg}");
    assert_eq!(s.load_states().unwrap(), states(&[("gone", "1"), ("keep", "1")]));
    assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 1);

    // Still usable, and the failure is not remembered across a reopen either.
    s.commit(&Batch {
        upserts: upserts(&[("keep", "3")]),
        ..Batch::default()
    })
    .unwrap();
    drop(s);
    let s = fresh(dir.path());
    assert_eq!(s.load_states().unwrap(), states(&[("gone", "1"), ("keep", "3")]));
    assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 1);
}

#[test]
fn history_filters_limits_and_orders_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh(dir.path());
    let big = 0x8000_0000_0000_0001u64; // does not fit an i64: stored as its bit pattern
    let mut history = Vec::new();
    for t in 0..20 {
        history.push(HistoryRow {
            detail: Some(format!("a{t}")),
            ..row(t, "A", 7, Some(t as f64))
        });
        history.push(HistoryRow {
            detail: Some(format!("b{t}")),
            ..row(t, "B", big, Some(t as f64))
        });
    }
    s.commit(&Batch {
        history,
        ..Batch::default()
    })
    .unwrap();

    let q =
        |q: HistoryQuery| -> Vec<String> { s.history(&q).unwrap().into_iter().map(|r| r.detail.unwrap()).collect() };
    let all = q(HistoryQuery::default());
    assert_eq!(all.len(), 40);
    // Newest first; equal times newest insertion first.
    assert_eq!(&all[..4], ["b19", "a19", "b18", "a18"]);
    assert_eq!(
        q(HistoryQuery {
            rule: Some("A".into()),
            limit: 3,
            ..Default::default()
        }),
        ["a19", "a18", "a17"]
    );
    assert_eq!(
        q(HistoryQuery {
            since_ms: Some(5),
            until_ms: Some(7),
            ..Default::default()
        }),
        ["b6", "a6", "b5", "a5"],
        "since inclusive, until exclusive"
    );
    assert_eq!(
        q(HistoryQuery {
            fingerprint: Some(big),
            until_ms: Some(2),
            ..Default::default()
        }),
        ["b1", "b0"]
    );
    let fps = s
        .history(&HistoryQuery {
            fingerprint: Some(big),
            ..Default::default()
        })
        .unwrap();
    assert!(fps.len() == 20 && fps.iter().all(|r| r.fingerprint == big && r.rule == "B"));
    assert!(
        q(HistoryQuery {
            rule: Some("A".into()),
            fingerprint: Some(big),
            ..Default::default()
        })
        .is_empty()
    );
    assert!(
        q(HistoryQuery {
            rule: Some("nope".into()),
            ..Default::default()
        })
        .is_empty()
    );
    assert!(
        q(HistoryQuery {
            since_ms: Some(10),
            until_ms: Some(10),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        q(HistoryQuery {
            since_ms: Some(i64::MIN),
            until_ms: Some(i64::MAX),
            ..Default::default()
        })
        .len(),
        40
    );
}

#[test]
fn history_limit_defaults_to_1000_and_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh(dir.path());
    let history: Vec<HistoryRow> = (0..MAX_HISTORY_LIMIT as i64 + 5)
        .map(|t| row(t, "R", 1, None))
        .collect();
    s.commit(&Batch {
        history,
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 1000);
    assert_eq!(
        s.history(&HistoryQuery {
            limit: 7,
            ..Default::default()
        })
        .unwrap()
        .len(),
        7
    );
    let capped = s
        .history(&HistoryQuery {
            limit: usize::MAX,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(capped.len(), MAX_HISTORY_LIMIT);
    assert_eq!(capped[0].at_ms, MAX_HISTORY_LIMIT as i64 + 4);
}

#[test]
fn prune_deletes_only_older_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = fresh(dir.path());
    let history = (0..10).map(|t| row(t * 100, "R", 1, None)).collect();
    s.commit(&Batch {
        history,
        upserts: upserts(&[("k", "v")]),
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.prune_history(500).unwrap(), 5);
    assert_eq!(s.prune_history(500).unwrap(), 0);
    let left: Vec<i64> = s
        .history(&HistoryQuery::default())
        .unwrap()
        .iter()
        .map(|r| r.at_ms)
        .collect();
    assert_eq!(left, [900, 800, 700, 600, 500]);
    assert_eq!(s.load_states().unwrap().len(), 1, "pruning never touches states");
    drop(s);
    assert_eq!(fresh(dir.path()).history(&HistoryQuery::default()).unwrap().len(), 5);
}

#[test]
fn schema_version_is_recorded_and_wal_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = fresh(dir.path());
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 1) };
    assert_eq!(s.path(), dir.path().join(DB_FILE));
    drop(s);
    let c = raw(dir.path());
    let v: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!((v, mode.as_str()), (SCHEMA_VERSION, "wal"));
    // Reopening an up-to-date database changes nothing.
    drop(c);
    assert_eq!(fresh(dir.path()).schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn creates_missing_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/data");
    let mut s = fresh(&nested);
    s.commit(&Batch {
        upserts: upserts(&[("k", "v")]),
        ..Batch::default()
    })
    .unwrap();
    assert!(nested.join(DB_FILE).is_file());
}

fn refused_untouched(dir: &Path, check: impl Fn(&StoreError)) {
    let before = std::fs::read(dir.join(DB_FILE)).unwrap();
    let others = files(dir);
    let err = open(dir, 42).expect_err("must refuse");
    check(&err);
    assert!(
        err.to_string().contains(&dir.join(DB_FILE).display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join(DB_FILE)).unwrap(),
        before,
        "database bytes changed"
    );
    let after = files(dir);
    assert!(
        after.keys().all(|k| !k.contains("corrupt")),
        "nothing moved aside: {:?}",
        after.keys()
    );
    for (name, bytes) in &others {
        assert_eq!(after.get(name), Some(bytes), "{name} changed");
    }
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = fresh(dir.path());
        s.commit(&Batch {
            upserts: upserts(&[("k", "v")]),
            history: vec![row(1, "R", 1, None)],
            ..Batch::default()
        })
        .unwrap();
    }
    raw(dir.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    refused_untouched(dir.path(), |e| {
        assert!(
            matches!(e, StoreError::NewerSchema { found, .. } if *found == i64::from(SCHEMA_VERSION) + 1),
            "{e}"
        );
        assert!(e.to_string().contains("newer"), "{e}");
    });
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    raw(dir.path())
        .execute_batch("CREATE TABLE states (x); INSERT INTO states VALUES (1);")
        .unwrap();
    refused_untouched(dir.path(), |e| assert!(matches!(e, StoreError::Foreign { .. }), "{e}"));
}

fn assert_moved_aside(dir: &Path, opened: &Opened, name: &str, bytes: &[u8]) {
    let msg = opened.recovered.as_deref().expect("recovered must be set");
    let moved = dir.join(name);
    assert!(msg.contains(&moved.display().to_string()), "{msg}");
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        bytes,
        "moved-aside file must keep its bytes"
    );
}

#[test]
fn a_garbage_file_is_moved_aside_and_a_fresh_database_works() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = b"this is not a database\n".repeat(500);
    std::fs::write(dir.path().join(DB_FILE), &garbage).unwrap();
    std::fs::write(dir.path().join("tocsin.db-wal"), b"stale wal").unwrap();
    let mut opened = open(dir.path(), 1234).unwrap();
    assert_moved_aside(dir.path(), &opened, "tocsin.db.corrupt-1234", &garbage);
    assert_eq!(
        std::fs::read(dir.path().join("tocsin.db.corrupt-1234-wal")).unwrap(),
        b"stale wal"
    );
    assert!(opened.recovered.as_deref().unwrap().contains("not a SQLite database"));
    assert!(opened.store.load_states().unwrap().is_empty());
    opened
        .store
        .commit(&Batch {
            upserts: upserts(&[("k", "v")]),
            ..Batch::default()
        })
        .unwrap();
    drop(opened);
    assert_eq!(fresh(dir.path()).load_states().unwrap(), states(&[("k", "v")]));

    // The same clock reading twice never overwrites an earlier moved-aside file.
    std::fs::remove_file(dir.path().join("tocsin.db-wal")).ok();
    std::fs::remove_file(dir.path().join("tocsin.db-shm")).ok();
    std::fs::write(dir.path().join(DB_FILE), b"garbage again, with some length to it").unwrap();
    let opened = open(dir.path(), 1234).unwrap();
    assert_moved_aside(
        dir.path(),
        &opened,
        "tocsin.db.corrupt-1234.1",
        b"garbage again, with some length to it",
    );
    assert_eq!(
        std::fs::read(dir.path().join("tocsin.db.corrupt-1234")).unwrap(),
        garbage
    );
}

#[test]
fn a_file_with_a_sqlite_header_and_garbage_after_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(dir.path().join(DB_FILE), &bytes).unwrap();
    let opened = open(dir.path(), 7).unwrap();
    assert_moved_aside(dir.path(), &opened, "tocsin.db.corrupt-7", &bytes);
    assert!(opened.store.load_states().unwrap().is_empty());
}

#[test]
fn a_truncated_database_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = fresh(dir.path());
        let history = (0..2_000)
            .map(|t| HistoryRow {
                detail: Some("x".repeat(100)),
                ..row(t, "R", 1, None)
            })
            .collect();
        let ups: Vec<(String, String)> = (0..500).map(|i| (format!("key{i}"), "y".repeat(200))).collect();
        s.commit(&Batch {
            upserts: ups,
            history,
            ..Batch::default()
        })
        .unwrap();
    }
    // Closed cleanly: everything is checkpointed into the main file and the WAL is gone.
    let path = dir.path().join(DB_FILE);
    assert!(!dir.path().join("tocsin.db-wal").exists());
    let full = std::fs::read(&path).unwrap();
    assert!(full.len() > 100_000, "{}", full.len());
    let half = &full[..full.len() / 2];
    std::fs::write(&path, half).unwrap();
    let opened = open(dir.path(), 99).unwrap();
    assert_moved_aside(dir.path(), &opened, "tocsin.db.corrupt-99", half);
    assert!(opened.store.load_states().unwrap().is_empty());
    assert_eq!(opened.store.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_wal_without_its_database_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tocsin.db-wal"), b"orphan").unwrap();
    let opened = open(dir.path(), 5).unwrap();
    assert_moved_aside(dir.path(), &opened, "tocsin.db.corrupt-5-wal", b"orphan");
}

#[test]
fn an_empty_file_is_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
    let s = fresh(dir.path());
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn an_uncreatable_data_dir_is_an_error_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&file.join("data"), 1).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("plain-file/data") && err.to_string().contains("data directory"),
        "{err}"
    );
}

#[test]
fn a_directory_in_place_of_the_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(DB_FILE)).unwrap();
    let err = open(dir.path(), 1).unwrap_err();
    assert!(err.to_string().contains(DB_FILE), "{err}");
    assert!(dir.path().join(DB_FILE).is_dir());
    assert!(files(dir.path()).keys().all(|k| !k.contains("corrupt")));
}

const UNREADABLE_ENV: &str = "TOCSIN_STORE_UNREADABLE_DIR";

/// Not a test on its own: the check of `an_unreadable_database_is_an_error_not_corruption`,
/// run in a child process that has no right to read the file. Does nothing unless
/// `UNREADABLE_ENV` is set.
#[test]
fn unreadable_child() {
    let Some(dir) = std::env::var_os(UNREADABLE_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let path = dir.join(DB_FILE);
    assert!(
        std::fs::File::open(&path).is_err(),
        "the child can read {}",
        path.display()
    );
    let err = open(dir, 1).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    println!("checked: {err}");
}

#[cfg(unix)]
#[test]
fn an_unreadable_database_is_an_error_not_corruption() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let path = dir.path().join(DB_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // The directory stays open to anyone, so a child that took the file for corruption could
    // move it aside: that would show below.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["store::unreadable_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(UNREADABLE_ENV, dir.path());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads any file whatever its mode: the check runs as `nobody` instead.
        child.uid(65534).gid(65534);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("checked: "),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(files(dir.path()).keys().all(|k| !k.contains("corrupt")));
}

// ---- kill -9 safety ----------------------------------------------------------------------------

const KILL_ENV: &str = "TOCSIN_STORE_KILL_WRITER_DIR";
const KILL_KEYS: usize = 300;
const KILL_HISTORY: usize = 10;

/// Batch `i` of the writer: every key gets state `i`; "marker" exists exactly after odd
/// batches; `KILL_HISTORY` rows at time `i`.
fn kill_batch(i: i64) -> Batch {
    let mut upserts: Vec<(String, String)> = (0..KILL_KEYS).map(|k| (format!("k{k:03}"), i.to_string())).collect();
    let mut deletes = Vec::new();
    if i % 2 == 1 {
        upserts.push(("marker".into(), i.to_string()));
    } else {
        deletes.push("marker".into());
    }
    let history = (0..KILL_HISTORY)
        .map(|j| HistoryRow {
            detail: Some(j.to_string()),
            ..row(i, "K", j as u64, None)
        })
        .collect();
    Batch {
        upserts,
        deletes,
        history,
        ..Batch::default()
    }
}

/// The last batch committed, after checking the database holds exactly batches `0..=n`.
fn check_prefix(s: &Store) -> Option<i64> {
    let st = s.load_states().unwrap();
    if st.is_empty() {
        assert!(s.history(&HistoryQuery::default()).unwrap().is_empty());
        return None;
    }
    let n: i64 = st[0].1.parse().unwrap();
    let keys: Vec<&(String, String)> = st.iter().filter(|(k, _)| k != "marker").collect();
    assert_eq!(keys.len(), KILL_KEYS);
    assert!(
        keys.iter().all(|(_, v)| *v == n.to_string()),
        "states from different batches: {st:?}"
    );
    let marker = st.iter().find(|(k, _)| k == "marker").map(|(_, v)| v.clone());
    assert_eq!(marker, (n % 2 == 1).then(|| n.to_string()), "marker after batch {n}");
    for i in 0..=n {
        let rows = s
            .history(&HistoryQuery {
                since_ms: Some(i),
                until_ms: Some(i + 1),
                ..Default::default()
            })
            .unwrap();
        let details: Vec<String> = rows.into_iter().rev().map(|r| r.detail.unwrap()).collect();
        let want: Vec<String> = (0..KILL_HISTORY).map(|j| j.to_string()).collect();
        assert_eq!(details, want, "history of batch {i} (last committed {n})");
    }
    assert!(
        s.history(&HistoryQuery {
            since_ms: Some(n + 1),
            ..Default::default()
        })
        .unwrap()
        .is_empty()
    );
    assert!(
        s.history(&HistoryQuery {
            until_ms: Some(0),
            ..Default::default()
        })
        .unwrap()
        .is_empty()
    );
    Some(n)
}

/// Not a test on its own: the writer process of `kill_9_leaves_a_consistent_prefix`. Does
/// nothing unless `KILL_ENV` is set.
#[test]
fn kill_writer_child() {
    let Some(dir) = std::env::var_os(KILL_ENV) else { return };
    let mut s = open(Path::new(&dir), 0).unwrap().store;
    let start = check_prefix(&s).map_or(0, |n| n + 1);
    for i in start.. {
        s.commit(&kill_batch(i)).unwrap();
        println!("committed {i}");
    }
}

#[test]
fn kill_9_leaves_a_consistent_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last_seen = -1;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args(["store::kill_writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(KILL_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let target = last_seen + 40 + round * 7;
        for line in out.lines() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("committed ") {
                last_seen = i.parse().unwrap();
                if last_seen >= target {
                    break;
                }
            }
        }
        assert!(last_seen >= target, "writer stopped early");
        // Let it get into the middle of some later commit, then SIGKILL.
        std::thread::sleep(std::time::Duration::from_micros(300 * round as u64));
        child.kill().unwrap();
        child.wait().unwrap();

        let opened = open(dir.path(), 1).unwrap();
        assert_eq!(opened.recovered, None, "a killed writer must not look like corruption");
        let n = check_prefix(&opened.store).expect("batches were committed");
        assert!(
            n >= last_seen,
            "batch {last_seen} was reported committed, database ends at {n}"
        );
        last_seen = n;
    }
}

// ---- model check ---------------------------------------------------------------------------------

fn arb_batch() -> impl Strategy<Value = Batch> {
    let key = prop::sample::select(vec!["a", "b", "c", "d", "g\u{1f}r\u{1f}1", ""]).prop_map(String::from);
    (
        prop::collection::vec((key.clone(), ".{0,12}"), 0..6),
        prop::collection::vec(key, 0..3),
        prop::collection::vec((any::<i64>(), any::<u64>(), any::<Option<f64>>(), ".{0,8}"), 0..3),
    )
        .prop_map(|(upserts, deletes, hist)| Batch {
            upserts,
            deletes,
            history: hist
                .into_iter()
                .map(|(t, fp, v, s)| HistoryRow {
                    labels: Labels::from_pairs([(&s, &s)]),
                    detail: Some(s.clone()),
                    group: s,
                    ..row(t, "P", fp, v)
                })
                .collect(),
            ..Batch::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batches_match_an_in_memory_model(batches in prop::collection::vec(arb_batch(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = fresh(dir.path());
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        let mut history: Vec<HistoryRow> = Vec::new();
        for b in &batches {
            s.commit(b).unwrap();
            for (k, v) in &b.upserts {
                model.insert(k.clone(), v.clone());
            }
            for k in &b.deletes {
                model.remove(k);
            }
            history.extend(b.history.iter().cloned());
            let want: Vec<(String, String)> = model.clone().into_iter().collect();
            prop_assert_eq!(s.load_states().unwrap(), want);
        }
        drop(s);
        let s = fresh(dir.path());
        let want: Vec<(String, String)> = model.into_iter().collect();
        prop_assert_eq!(s.load_states().unwrap(), want);
        // History: newest first, stable for equal times (later insertion first), bit-exact.
        let mut expect: Vec<(usize, HistoryRow)> = history.into_iter().enumerate().collect();
        expect.sort_by(|(i, a), (j, b)| b.at_ms.cmp(&a.at_ms).then(j.cmp(i)));
        let got = s.history(&HistoryQuery::default()).unwrap();
        prop_assert_eq!(got.len(), expect.len());
        for (g, (_, w)) in got.iter().zip(&expect) {
            prop_assert!(same_row(g, w), "{:?} != {:?}", g, w);
        }
    }
}

// ---- failed commits followed by working ones ----------------------------------------------------

fn arb_full_batch() -> impl Strategy<Value = Batch> {
    let group = prop::sample::select(vec!["r\u{1f}g1", "r\u{1f}g2", "r\u{1f}g3"]).prop_map(String::from);
    (
        arb_batch(),
        prop::collection::vec((group.clone(), prop::option::of(".{0,6}")), 0..3),
        prop::collection::vec((group, ".{0,10}", 0i64..1_000), 0..4),
        // Value history appends to a few chunk rows: their order within a row matters.
        prop::collection::vec((0i64..3, 0i64..2, prop::collection::vec(any::<u8>(), 1..4)), 0..4),
    )
        .prop_map(|(mut b, groups, outbox, appends)| {
            b.groups = groups;
            for (series, chunk, bytes) in appends {
                b.values.series.push(tocsin::history::SeriesRow {
                    id: series,
                    group: "g".into(),
                    rule: format!("r{series}"),
                    expr: format!("m{series}"),
                    labels: BTreeMap::new(),
                });
                b.values.points.push(tocsin::history::Append {
                    series,
                    start_ms: chunk * 32_000,
                    step_ms: 1_000,
                    bytes,
                });
            }
            b.outbox = outbox
                .into_iter()
                .enumerate()
                .map(|(i, (group_key, payload, created_ms))| NewOutboxEntry {
                    receiver: "hook".into(),
                    idempotency_key: format!("{group_key}-{i}"),
                    group_key,
                    payload,
                    created_ms,
                })
                .collect();
            b
        })
}

/// Makes every write to the store's tables fail with a real SQLite error (a trigger's
/// `RAISE(ABORT)`) while `fault.on` is 1. Set through a second connection, as another process
/// would; the store's own connection is not touched.
fn install_fault(dir: &Path) -> rusqlite::Connection {
    let c = raw(dir);
    c.execute_batch("CREATE TABLE fault (on_ INTEGER NOT NULL); INSERT INTO fault VALUES (0);")
        .unwrap();
    for table in [
        "states",
        "history",
        "route_groups",
        "outbox",
        "value_series",
        "value_points",
    ] {
        for op in ["INSERT", "DELETE"] {
            c.execute_batch(&format!(
                "CREATE TRIGGER fault_{table}_{op} BEFORE {op} ON {table} WHEN (SELECT on_ FROM fault) = 1 \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            ))
            .unwrap();
        }
    }
    c
}

/// Every row of the tables a batch writes, ids included, in id (or key) order.
fn dump(dir: &Path) -> Vec<(String, Vec<String>)> {
    let c = raw(dir);
    [
        "SELECT * FROM states ORDER BY key",
        "SELECT * FROM route_groups ORDER BY key",
        "SELECT * FROM history ORDER BY id",
        "SELECT * FROM outbox ORDER BY id",
        "SELECT * FROM value_series ORDER BY id",
        "SELECT * FROM value_points ORDER BY series, start_ms, step_ms",
    ]
    .iter()
    .map(|sql| {
        let mut st = c.prepare(sql).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let vals: Vec<rusqlite::types::Value> = (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok(format!("{vals:?}"))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (sql.to_string(), rows)
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn failed_commits_kept_in_a_backlog_end_as_an_uninterrupted_run(
        steps in prop::collection::vec((arb_full_batch(), any::<bool>()), 1..10)
    ) {
        let (plain_dir, faulty_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut plain = fresh(plain_dir.path());
        let mut faulty = fresh(faulty_dir.path());
        let control = install_fault(faulty_dir.path());
        let mut backlog: Backlog<usize> = Backlog::default();
        let mut released = Vec::new();
        for (i, (batch, fails)) in steps.iter().enumerate() {
            plain.commit(batch).unwrap();
            control.execute("UPDATE fault SET on_ = ?1", [*fails as i64]).unwrap();
            let before = dump(faulty_dir.path());
            backlog.push(batch.clone(), i);
            match backlog.flush(&mut faulty) {
                Ok(done) => released.extend(done),
                Err(e) => {
                    prop_assert!(*fails, "{}", e);
                    prop_assert!(e.to_string().contains("injected fault"), "{}", e);
                    prop_assert_eq!(dump(faulty_dir.path()), before, "a failed commit leaves nothing");
                }
            }
        }
        control.execute("UPDATE fault SET on_ = 0", []).unwrap();
        released.extend(backlog.flush(&mut faulty).unwrap());
        prop_assert!(backlog.is_empty());
        prop_assert_eq!(released, (0..steps.len()).collect::<Vec<_>>(), "each batch released once, in order");
        prop_assert_eq!(dump(faulty_dir.path()), dump(plain_dir.path()));
    }
}
