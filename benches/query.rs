//! What scaling out costs tocsin per tick: decoding a 1,000-series instant-query answer
//! and storing it (the query source's work per tick, promised ≤ 1 ms of CPU), and encoding
//! 10,000 remote-write samples (a second's worth at 10,000 samples/s, promised ≤ 5 % of a
//! core, i.e. ≤ 50 ms).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin::datasource::decode_instant;
use tocsin::remote_write::{Label, Written, encode};
use tocsin::series::{Sample, SeriesStore, Timestamp};
use tocsin::sources::query::samples_of;

const SERIES: usize = 1_000;
const T: i64 = 1_700_000_000_000;

/// An instant-query answer as Prometheus sends it: `SERIES` series of a node_exporter-like
/// metric with four labels each.
fn answer() -> String {
    let items: Vec<String> = (0..SERIES)
        .map(|i| {
            format!(
                r#"{{"metric":{{"__name__":"node_memory_used_percent","instance":"host-{i}.example.com:9100","job":"node","region":"eu-{}","team":"infra"}},"value":[{}.000,"{}.25"]}}"#,
                i % 4,
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

fn query_tick(c: &mut Criterion) {
    let body = answer();
    let mut g = c.benchmark_group("query_source");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("decode_1000_series", |b| {
        b.iter(|| decode_instant(black_box(body.as_bytes()), 10_000).unwrap())
    });
    // The steady state: the series exist, each tick appends one sample to each.
    let mut store = SeriesStore::new(Duration::from_secs(600));
    let mut tick = 0i64;
    g.bench_function("decode_and_store_1000_series", |b| {
        b.iter(|| {
            tick += 1;
            let now = Timestamp(T + tick * 1000);
            let series = decode_instant(black_box(body.as_bytes()), 10_000).unwrap();
            let mut samples = Vec::with_capacity(SERIES);
            samples_of("mem_used_percent", series, &mut samples);
            for s in &samples {
                let sample = Sample { t: now, v: s.value };
                store
                    .ingest("query:prom", 10_000, &s.name, &s.labels, sample, now)
                    .unwrap();
            }
        })
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
