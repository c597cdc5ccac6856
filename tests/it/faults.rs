//! Reliability under real faults, against the real `tocsin run` binary: a data directory on a
//! tmpfs that fills up, a burst killed while it goes out, a database corrupted on disk, two
//! daemons on one data directory, and a dry run before a real run. Every wait is a bounded poll.

use crate::common;
use crate::common::recorder;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use recorder::Recorder;

const S10: Duration = Duration::from_secs(10);
const S20: Duration = Duration::from_secs(20);

/// A daemon home with push enabled and one webhook receiver `hook` posting to `/hook`.
fn env_with_hook(http: &Recorder, sources: &str, rules: &str) -> Env {
    let env = Env::new("", Some(sources), &rules_file(rules));
    env.set_receivers(&format!(
        "receivers:\n  - name: hook\n    webhook: {{ url: \"{}\" }}\nroutes:\n  - receivers: [hook]\n",
        http.url("/hook")
    ));
    env
}

const PUSH: &str = "sources:\n  push: { enabled: true }\n";

/// One alert per `i` label: fires above 0.5.
const LOAD_RULE: &str =
    "      - alert: Load\n        expr: load\n        tiers:\n          - { severity: warning, above: 0.5 }\n";

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `2m`) on `dir`. `None` (the test is skipped) only when
    /// mounting is not permitted here and the `CI` variable is unset: CI runs as root and
    /// must run the test.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={size}")).unwrap();
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc == 0 {
            return Some(Tmpfs(dir.to_path_buf()));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EPERM) && std::env::var_os("CI").is_none() {
            eprintln!("skipped: mounting a tmpfs is not permitted here ({err}); CI runs this test as root");
            return None;
        }
        panic!("cannot mount a tmpfs on {}: {err}", dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH also lets go of a busy mount.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Writes a file into `dir` until the file system is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 4096];
    for _ in 0..100_000 {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.flush()) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return path;
        }
    }
    panic!("{} never filled up", dir.display());
}

/// (label `i`, status) of every alert of an Alertmanager-format webhook body.
fn alerts_of(body: &serde_json::Value) -> Vec<(String, String)> {
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["i"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_full_disk_holds_delivery_and_loses_nothing() {
    let http = Recorder::start();
    let ran = tempfile::tempdir().unwrap();
    let marker = ran.path().join("ran");
    // An alert whose action leaves a file outside the full file system.
    let probe = format!(
        "      - alert: Probe\n        expr: probe\n        tiers:\n          - {{ severity: warning, above: 0.5 }}\n        labels: {{ i: probe }}\n        actions:\n          - name: touch\n            on: [warning]\n            exec: [\"/bin/sh\", \"-c\", 'touch \"$1\"', \"sh\", \"{}\"]\n",
        marker.display()
    );
    let env = env_with_hook(&http, PUSH, &format!("{LOAD_RULE}{probe}"));
    let Some(_tmpfs) = Tmpfs::mount(&env.path().join("data"), "32m") else {
        return;
    };
    let d = env.spawn(&[]);
    let series = |v: u8, n: usize| (0..n).map(|i| format!("load{{i=\"{i}\"}} {v}\n")).collect::<String>();
    assert_eq!(d.push(&series(1, 100)).status, 200);
    let smallest = http
        .wait_ok("/hook", 100, S20)
        .iter()
        .map(|r| r.body.len())
        .min()
        .unwrap() as u64;

    let filler = fill(&env.path().join("data"));
    // On a full disk a commit still succeeds when it fits in the write-ahead log's space,
    // which SQLite reuses once a checkpoint has copied the log back. So as many new alerts
    // fire as make sure their one commit cannot fit: each queues at least a webhook body.
    let wal = std::fs::metadata(env.path().join("data/tocsin.db-wal")).map_or(0, |m| m.len());
    let fresh = (wal / smallest) as usize + 1;
    let total = 100 + fresh;
    // They fire while nothing can be committed: the API shows them from memory, but
    // nothing is sent for them and the action the probe admits does not run.
    let burst: String = (100..total).map(|i| format!("load{{i=\"{i}\"}} 1\n")).collect();
    assert_eq!(d.push(&format!("{burst}probe 1\n")).status, 200);
    wait_for(S10, || (d.get("/-/ready").status == 503).then_some(()))
        .unwrap_or_else(|| panic!("/-/ready never answered 503; stderr:\n{}", d.stderr()));
    assert!(
        d.alerts()
            .iter()
            .any(|a| a["labels"]["i"] == "100" && a["state"] == "firing"),
        "{:?}",
        d.alerts()
    );
    // Every alert resolves while the store still fails.
    assert_eq!(d.push(&format!("{}probe 0\n", series(0, total))).status, 200);
    let errors = d.metric("tocsin_state_store_errors_total").unwrap_or(0.0);
    wait_for(S10, || {
        (d.metric("tocsin_state_store_errors_total").unwrap_or(0.0) >= errors + 2.0).then_some(())
    })
    .expect("failed commits are counted");
    assert!(d.alerts().is_empty(), "resolved in memory: {:?}", d.alerts());
    assert_eq!(d.get("/-/ready").status, 503);
    assert!(d.stderr().contains("database or disk is full"), "{}", d.stderr());
    assert_eq!(
        http.requests("/hook").len(),
        100,
        "nothing is sent before its state is durable"
    );
    assert!(
        !marker.exists(),
        "an action ran before the state that admitted it was durable"
    );

    std::fs::remove_file(filler).unwrap();
    wait_for(S10, || (d.get("/-/ready").status == 200).then_some(()))
        .unwrap_or_else(|| panic!("never ready again; stderr:\n{}", d.stderr()));
    // Firing before the fault; then, once durable, the new ones firing, and all resolved.
    let got = http.wait_ok("/hook", 100 + (fresh + 1) + (total + 1), S20);
    wait_for(S10, || marker.exists().then_some(())).expect("the action runs once its batch commits");
    // Per alert: firing, then resolved — exactly once each, in that order.
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &got {
        for (i, status) in alerts_of(&r.json()) {
            seen.entry(i).or_default().push(status);
        }
    }
    assert_eq!(seen.len(), total + 1, "{seen:?}");
    for (i, statuses) in &seen {
        assert_eq!(statuses, &["firing", "resolved"], "alert {i}");
    }
    let keys: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|r| r.header("x-tocsin-idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), got.len(), "no duplicates");
}

#[test]
fn a_burst_killed_while_it_goes_out_in_parts_loses_none_of_it() {
    let http = Recorder::start();
    // Slow enough that the burst is still going out when the first message arrives.
    http.respond("/hook", |_| {
        recorder::Reply::status(200).after(Duration::from_millis(20))
    });
    let env = env_with_hook(&http, PUSH, LOAD_RULE);
    let d = env.spawn(&[]);
    // More alerts than one flush renders (1,000): they are committed and sent in parts.
    let n = 2_500;
    let burst: String = (0..n).map(|i| format!("load{{i=\"{i}\"}} 1\n")).collect();
    assert_eq!(d.push(&burst).status, 200);
    http.wait_ok("/hook", 1, S20);
    let (_, stderr) = d.kill9();
    let before = http.requests("/hook").len();
    assert!(
        before < n,
        "the whole burst went out before the kill; stderr:\n{stderr}"
    );

    let d = env.spawn(&[]);
    // Every alert is told it fires; one sent again after the restart carries the key it
    // had, and no two alerts share one.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut of_alert: BTreeMap<String, String> = BTreeMap::new();
    wait_for(Duration::from_secs(60), || {
        for r in http.requests("/hook").iter().filter(|r| r.status < 300) {
            let key = r.header("x-tocsin-idempotency-key").unwrap().to_string();
            for (i, status) in alerts_of(&r.json()) {
                assert_eq!(status, "firing", "alert {i}");
                assert_eq!(keys.entry(key.clone()).or_insert_with(|| i.clone()), &i, "key {key}");
                assert_eq!(of_alert.entry(i).or_insert_with(|| key.clone()), &key);
            }
        }
        (of_alert.len() == n).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{} of {n} alerts were notified ({before} before the kill); stderr:\n{}",
            of_alert.len(),
            d.stderr()
        )
    });
}

#[test]
fn a_second_daemon_on_the_same_data_dir_exits_naming_the_first() {
    let env = Env::new("", Some(PUSH), &rules_file(LOAD_RULE));
    let first = env.spawn(&[]);
    let mut second = env.spawn_unready(&[]);
    let status = second
        .wait_exit(S10)
        .unwrap_or_else(|| panic!("the second daemon kept running; stderr:\n{}", second.stderr()));
    assert_eq!(status.code(), Some(1), "stderr:\n{}", second.stderr());
    let err = wait_for(S10, || {
        let e = second.stderr();
        e.contains(&format!("pid {}", first.pid())).then_some(e)
    })
    .unwrap_or_else(|| panic!("no pid {} in:\n{}", first.pid(), second.stderr()));
    assert!(err.contains("data_dir"), "{err}");
    // The first one goes on undisturbed.
    assert_eq!(first.get("/-/ready").status, 200);
    drop(first);
    // Its lock died with it: a new daemon starts.
    env.spawn(&[]);
}

/// An alert that always fires while host metrics flow, as `rules/watchdog.yaml`, evaluated
/// every second.
const WATCHDOG: &str = "      - alert: Watchdog\n        expr: present(uptime_seconds) == 1\n        severity: info\n";

#[test]
fn a_dry_run_leaves_the_data_dir_as_it_found_it() {
    let http = Recorder::start();
    let env = env_with_hook(&http, "sources:\n  system: { interval: 1s }\n", WATCHDOG);
    let data = env.path().join("data");
    let snapshot = |dir: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    };
    let before = snapshot(&data);
    let mut dry = env.spawn(&["--dry-run"]);
    wait_for(S20, || {
        dry.stderr().contains("dry run: would send notification").then_some(())
    })
    .unwrap_or_else(|| panic!("the dry run never would send; stderr:\n{}", dry.stderr()));
    dry.signal("TERM");
    assert!(dry.wait_exit(S10).is_some_and(|s| s.success()), "{}", dry.stderr());
    assert_eq!(snapshot(&data), before, "the dry run wrote the data directory");
    assert!(http.requests("/hook").is_empty());

    // The real run sends the firing the dry run only pretended to send.
    let d = env.spawn(&[]);
    let got = http.wait_ok("/hook", 1, S20);
    let body = got[0].json();
    assert_eq!(body["status"], "firing", "{body}");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "Watchdog", "{body}");
    drop(d);
}

/// Writes a database with `groups` × `per_group` pending webhook notifications for `hook`
/// (payload `{"g":…,"seq":…}`) and `states` persisted states, then closes it.
fn pending_database(data: &Path, groups: usize, per_group: usize, states: usize) {
    use tocsin::store::{Batch, NewOutboxEntry};
    let mut s = tocsin::store::open(data, 0).unwrap().store;
    let now = tocsin::daemon::now().0;
    for seq in 0..per_group {
        let outbox = (0..groups)
            .map(|g| NewOutboxEntry {
                receiver: "hook".into(),
                idempotency_key: format!("grp-{g}-{seq}"),
                group_key: format!("grp-{g}"),
                payload: serde_json::to_string(&tocsin::receivers::Rendered::Json(
                    serde_json::json!({ "g": g, "seq": seq }).to_string(),
                ))
                .unwrap(),
                created_ms: now,
            })
            .collect();
        s.commit(&Batch {
            outbox,
            ..Batch::default()
        })
        .unwrap();
    }
    s.commit(&Batch {
        upserts: (0..states)
            .map(|i| (format!("g\u{1f}Gone\u{1f}{i}"), "{}".to_string()))
            .collect(),
        ..Batch::default()
    })
    .unwrap();
    // Closing the last connection checkpoints the WAL into the file.
    drop(s);
    assert!(!data.join("tocsin.db-wal").exists());
}

/// Overwrites, with garbage, the middle one of the pages holding outbox payloads; returns
/// how many payloads that page held.
fn corrupt_an_outbox_page(db: &Path) -> usize {
    const PAGE: usize = 4096;
    let bytes = std::fs::read(db).unwrap();
    let needle = br#"\"seq\""#;
    let count = |page: &[u8]| page.windows(needle.len()).filter(|w| w == needle).count();
    let pages: Vec<usize> = (1..bytes.len() / PAGE)
        .filter(|&p| count(&bytes[p * PAGE..(p + 1) * PAGE]) > 0)
        .collect();
    assert!(pages.len() > 4, "payloads on {} pages only", pages.len());
    let victim = pages[pages.len() / 2];
    let lost = count(&bytes[victim * PAGE..(victim + 1) * PAGE]);
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start((victim * PAGE) as u64)).unwrap();
    f.write_all(&[0xa5; PAGE]).unwrap();
    f.sync_all().unwrap();
    lost
}

/// `<table>: <carried> of <found>` in the recovery message.
fn carried(stderr: &str, table: &str) -> (usize, Option<usize>) {
    let at = stderr
        .find(&format!("{table}: "))
        .unwrap_or_else(|| panic!("no `{table}:` in:\n{stderr}"));
    let mut words = stderr[at + table.len() + 2..].split([' ', ',', ')']);
    let n = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    (n, words.next().unwrap().parse().ok())
}

#[test]
fn a_corrupt_database_hands_its_pending_notifications_to_the_new_one() {
    let http = Recorder::start();
    let env = env_with_hook(&http, PUSH, LOAD_RULE);
    let data = env.path().join("data");
    let (groups, per_group) = (32, 100);
    pending_database(&data, groups, per_group, 500);
    let lost = corrupt_an_outbox_page(&data.join("tocsin.db"));

    let d = env.spawn(&[]);
    let log = d.stderr();
    assert!(log.contains("moved it aside"), "{log}");
    let (outbox, _) = carried(&log, "outbox");
    assert_eq!(carried(&log, "states"), (500, Some(500)), "{log}");
    assert_eq!(
        outbox,
        groups * per_group - lost,
        "every readable row is carried: {log}"
    );

    let got = http.wait_ok("/hook", outbox, Duration::from_secs(60));
    let keys: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|r| r.header("x-tocsin-idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), got.len(), "no duplicates");
    // Within each group, what was carried arrives in the order it was queued.
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &got {
        let body = r.json();
        let (g, seq) = (body["g"].as_u64().unwrap(), body["seq"].as_u64().unwrap());
        if let Some(prev) = last.insert(g, seq) {
            assert!(prev < seq, "group {g}: {seq} after {prev}");
        }
    }
    drop(d);
}

/// A commit that waits on a locked database (another process's write transaction holds it,
/// up to the store's busy timeout and then retry after retry) waits on the store's own
/// thread: the API goes on answering at once, nothing is sent before the state is durable,
/// and the notification follows once the lock is released.
#[test]
fn a_locked_database_stalls_neither_the_api_nor_delivery_order() {
    let http = Recorder::start();
    let env = env_with_hook(&http, PUSH, LOAD_RULE);
    let d = env.spawn(&[]);
    let conn = rusqlite::Connection::open(env.path().join("data/tocsin.db")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(d.push("load{i=\"locked\"} 1\n").status, 200);
    wait_for(S10, || {
        d.alerts()
            .iter()
            .any(|a| a["labels"]["i"] == "locked" && a["state"] == "firing")
            .then_some(())
    })
    .expect("the alert fires in memory while its commit waits");
    // Longer than one busy timeout would block a thread that waits on the lock.
    let held = std::time::Instant::now();
    while held.elapsed() < Duration::from_secs(6) {
        let asked = std::time::Instant::now();
        assert_eq!(d.get("/-/healthy").status, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "the API stalled for {:?} behind a commit waiting on the lock",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        http.requests("/hook").is_empty(),
        "a notification went out before its state was durable"
    );
    conn.execute_batch("COMMIT").unwrap();
    let got = http.wait_ok("/hook", 1, S20);
    assert_eq!(
        alerts_of(&got[0].json()),
        vec![("locked".to_string(), "firing".to_string())]
    );
}
