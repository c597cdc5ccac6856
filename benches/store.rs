//! The store's per-evaluation cost: one commit of 300 instance-state upserts and 10 history
//! rows (a busy evaluation cycle), on a real file in `target/tmp` with the shipped durability
//! settings (WAL, `synchronous=NORMAL`). Also: loading 300 states and reading 1,000 history rows.

use std::hint::black_box;
use tocsin::series::Labels;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin::store::{Batch, HistoryQuery, HistoryRow, open};

fn batch(i: i64) -> Batch {
    let upserts = (0..300)
        .map(|k| {
            (
                format!("synth\u{1f}Synth{k:04}\u{1f}{:016x}", k * 7919),
                format!(
                    r#"{{"tier":1,"pending_since":{i},"firing_since":null,"last_notified":{i},"repeat":0,"flap":[{i},{i}],"value":{k}.5}}"#
                ),
            )
        })
        .collect();
    let history = (0..10)
        .map(|j| HistoryRow {
            at_ms: i,
            group: "synth".into(),
            rule: format!("Synth{j:04}"),
            fingerprint: (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            event: "firing".into(),
            severity: "warning".into(),
            value: Some(71.5),
            labels: Labels::from_pairs([("host", "db-1"), ("mount", "/var")]),
            detail: Some("cpu above 70 for 2m".into()),
        })
        .collect();
    Batch {
        upserts,
        deletes: vec![],
        history,
        ..Batch::default()
    }
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut s = open(dir.path(), 0).unwrap().store;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    // Batches are built outside the timed region; each commit writes fresh values.
    let batches: Vec<Batch> = (0..64).map(batch).collect();
    let mut i = 0;
    g.bench_function("commit_300_upserts_10_history", |b| {
        b.iter(|| {
            i += 1;
            s.commit(black_box(&batches[i % batches.len()])).unwrap();
        })
    });
    g.bench_function("load_states_300", |b| b.iter(|| black_box(s.load_states().unwrap())));
    g.bench_function("history_1000_newest", |b| {
        b.iter(|| black_box(s.history(&HistoryQuery::default()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
