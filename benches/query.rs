//! What scaling out costs tocsin per tick: decoding a 1,000-series instant-query answer
//! and storing it (the query source's work per tick, promised ≤ 1 ms of CPU), decoding a
//! backfill's range answer, and encoding 10,000 remote-write samples (a second's worth at
//! 10,000 samples/s, promised ≤ 5 % of a core, i.e. ≤ 50 ms).
//!
//! The store is filled before the timed ticks, so even criterion's `--test` run (one
//! iteration) is the steady state: the instructions of that run minus those of a run whose
//! filter matches nothing (`valgrind --tool=cachegrind --cache-sim=no`, `I refs`) are one
//! tick's, a figure the machine's load does not move.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin::datasource::{Answer, decode_range};
use tocsin::remote_write::{Label, Written, encode};
use tocsin::series::{Sample, SeriesStore, Timestamp};
use tocsin::sources::query::Answered;

const SERIES: usize = 1_000;
/// Points per series of the range answer: a 5-minute backfill at 15 s.
const POINTS: usize = 20;
const T: i64 = 1_700_000_000_000;

fn metric(i: usize) -> String {
    format!(
        r#"{{"__name__":"node_memory_used_percent","instance":"host-{i}.example.com:9100","job":"node","region":"eu-{}","team":"infra"}}"#,
        i % 4
    )
}

/// An instant-query answer as Prometheus sends it: `SERIES` series of a node_exporter-like
/// metric with four labels each.
fn answer() -> String {
    let items: Vec<String> = (0..SERIES)
        .map(|i| {
            format!(
                r#"{{"metric":{},"value":[{}.000,"{}.25"]}}"#,
                metric(i),
                T / 1000,
                40 + i % 50
            )
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        items.join(",")
    )
}

/// A range-query answer: the same series with `POINTS` samples each.
fn range_answer() -> String {
    let items: Vec<String> = (0..SERIES)
        .map(|i| {
            let values: Vec<String> = (0..POINTS)
                .map(|p| format!(r#"[{}.000,"{}.25"]"#, T / 1000 + 15 * p as i64, 40 + (i + p) % 50))
                .collect();
            format!(r#"{{"metric":{},"values":[{}]}}"#, metric(i), values.join(","))
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
        items.join(",")
    )
}

/// One tick as `sources::query::run` does it, then as the daemon's `Shared::ingest` stores
/// the samples it hands the sink.
fn tick(body: &[u8], answered: &mut Answered, store: &mut SeriesStore, at: Timestamp) {
    let answer = Answer::vector(body, 10_000).unwrap();
    for s in answered.answer("mem_used_percent", &answer, at) {
        let t = s.timestamp_ms.map(Timestamp).unwrap_or(at);
        store
            .ingest("query:prom", 10_000, &s.name, &s.labels, Sample { t, v: s.value }, at)
            .unwrap();
    }
}

/// This thread's CPU time: what the tick's promise counts, and what the other processes of
/// a shared machine add nothing to (they do to wall time, by taking the core away).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill; the clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn query_tick(c: &mut Criterion) {
    let body = answer();
    let range = range_answer();
    let mut g = c.benchmark_group("query_source");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("decode_1000_series", |b| {
        b.iter(|| Answer::vector(black_box(body.as_bytes()), 10_000).unwrap().len())
    });
    // The steady state: the series exist, each tick appends one sample to each.
    let mut store = SeriesStore::new(Duration::from_secs(600));
    let mut answered = Answered::default();
    let mut at = Timestamp(T);
    tick(body.as_bytes(), &mut answered, &mut store, at);
    g.bench_function("decode_and_store_1000_series", |b| {
        b.iter(|| {
            at = at.plus(Duration::from_secs(1));
            tick(black_box(body.as_bytes()), &mut answered, &mut store, at);
        })
    });
    // The same ticks, timed in CPU time rather than wall time.
    g.bench_function("decode_and_store_1000_series_cpu_time", |b| {
        b.iter_custom(|ticks| {
            let start = cpu_time();
            for _ in 0..ticks {
                at = at.plus(Duration::from_secs(1));
                tick(black_box(body.as_bytes()), &mut answered, &mut store, at);
            }
            cpu_time() - start
        })
    });
    g.throughput(Throughput::Elements((SERIES * POINTS) as u64));
    g.bench_function("decode_range_1000x20", |b| {
        b.iter(|| decode_range(black_box(range.as_bytes()), 10_000).unwrap())
    });
    g.finish();
}
fn remote_write(c: &mut Criterion) {
    let label = |name: &str, value: String| Label {
        name: name.to_string(),
        value,
    };
    // 1,000 recorded series of 10 samples each, with external and replica labels.
    let samples: Vec<Written> = (0..10_000)
        .map(|i| Written {
            labels: vec![
                label("__name__", "job:http_requests:rate5m".into()),
                label("cluster", "eu-1".into()),
                label("instance", format!("host-{}.example.com:9100", i / 10)),
                label("job", "api".into()),
                label("replica", "a".into()),
            ],
            t: T + (i % 10) * 15_000,
            v: i as f64 * 0.5,
        })
        .collect();
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("encode_10000_samples", |b| b.iter(|| encode(black_box(&samples))));
    g.finish();
}

criterion_group!(benches, query_tick, remote_write);
criterion_main!(benches);
