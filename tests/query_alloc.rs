//! What a query source's tick allocates once its series exist: decoding the answer
//! (`Answer::vector`), handing its samples over (`sources::query::Answered`) and storing
//! them (`SeriesStore::ingest`, as the daemon's `Shared::ingest` does) — the path of
//! `sources::query::run`. Its buffers are per answer; nothing may be per series, or a
//! 1,000-series tick would pay a thousand allocations and frees for every answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tocsin::datasource::Answer;
use tocsin::series::{Sample, SeriesStore, Timestamp};
use tocsin::sources::query::Answered;

#[path = "heap/mod.rs"]
mod heap;
use heap::{ALLOCATIONS, live};

/// An instant-query answer of `n` series with four labels, as Prometheus writes it.
fn answer(n: usize, t: i64) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"metric":{{"__name__":"node_memory_used_percent","instance":"host-{i}.example.com:9100","job":"node","region":"eu-{}","team":"infra"}},"value":[{t},"{}.25"]}}"#,
                i % 4,
                40 + i % 50
            )
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        items.join(",")
    )
}

/// Allocations of one tick of `n` series once the series exist and their windows are full,
/// and the bytes it leaves allocated.
fn steady_tick(n: usize) -> (usize, isize) {
    // Ticks every second and windows of 5 s: after a few ticks a window drops a sample for
    // each it takes, so its buffer stops growing.
    let mut store = SeriesStore::new(Duration::from_secs(5));
    let mut answered = Answered::default();
    let mut tick = |t: i64| {
        let body = answer(n, t);
        let (before, heap) = (ALLOCATIONS.load(Ordering::Relaxed), live());
        let decoded = Answer::vector(body.as_bytes(), n).expect("a valid answer");
        let at = Timestamp(t * 1000);
        for s in answered.answer("mem", &decoded, at) {
            let sample = Sample {
                t: s.timestamp_ms.map(Timestamp).unwrap_or(at),
                v: s.value,
            };
            store
                .ingest("query:prom", n, &s.name, &s.labels, sample, at)
                .expect("within the budget");
        }
        drop(decoded);
        (ALLOCATIONS.load(Ordering::Relaxed) - before, live() - heap)
    };
    let (first, _) = tick(1_700_000_000);
    assert!(first >= n, "the first tick creates {n} series: {first} allocations");
    for t in 1..20 {
        tick(1_700_000_000 + t);
    }
    tick(1_700_000_020)
}

#[test]
fn a_steady_tick_allocates_per_answer_not_per_series_and_keeps_nothing() {
    let ((small, kept), (large, _)) = (steady_tick(1_000), steady_tick(2_000));
    println!("allocations of a steady tick: {small} for 1,000 series, {large} for 2,000; {kept} B kept");
    // Its buffers go with the answer: the series and their windows are as large as before.
    assert_eq!(kept, 0, "a steady tick keeps {kept} B more");
    // Per answer: the decoding's few buffers, each grown by doubling (one more doubling for
    // twice the series). Per series would be at least a thousand.
    assert!(small <= 64, "a 1,000-series tick allocates {small} times");
    assert!(large <= small + 8, "twice the series: {small} -> {large} allocations");
}
