//! Throughput of the exposition and JSON push parsers over a ~10 MB generated body.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tocsin::sources::{exposition, push_json};

/// A node_exporter-like body of about `target` bytes: gauges and counters with a few
/// labels, HELP/TYPE per family, a histogram per family, some escaped label values.
fn text_body(target: usize) -> String {
    let mut out = String::with_capacity(target + 1024);
    let mut family = 0;
    while out.len() < target {
        let name = format!("node_family{family}_bytes_total");
        out.push_str(&format!(
            "# HELP {name} Bytes seen by family {family}.\n# TYPE {name} counter\n"
        ));
        for i in 0..20 {
            out.push_str(&format!(
                "{name}{{instance=\"host-{i}.example.com:9100\",job=\"node\",device=\"sd{i}\",path=\"C:\\\\dir\\\\{i}\"}} {}.5 1700000000{i:03}\n",
                1_234_567 + i * 31
            ));
        }
        let h = format!("rpc:latency_seconds{family}");
        out.push_str(&format!("# TYPE {h} histogram\n"));
        for le in ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"] {
            out.push_str(&format!(
                "{h}_bucket{{le=\"{le}\",method=\"GET\"}} {}\n",
                family * 7 + 3
            ));
        }
        out.push_str(&format!(
            "{h}_sum{{method=\"GET\"}} 1.7560473e+07\n{h}_count{{method=\"GET\"}} 2693\n"
        ));
        family += 1;
    }
    out
}

/// The same kind of samples as a JSON push body.
fn json_body(target: usize) -> String {
    let mut items = Vec::new();
    let mut len = 2;
    let mut n = 0u64;
    while len < target {
        let item = format!(
            r#"{{"name":"node_family{}_bytes_total","labels":{{"instance":"host-{}.example.com:9100","job":"node","device":"sd{}"}},"value":{}.5,"timestamp":1700000000{:03}}}"#,
            n / 20,
            n % 20,
            n % 20,
            1_234_567 + n * 31,
            n % 1000
        );
        len += item.len() + 1;
        items.push(item);
        n += 1;
    }
    format!("[{}]", items.join(","))
}

fn bench(c: &mut Criterion) {
    let text = text_body(10 << 20);
    let json = json_body(10 << 20);
    assert!(exposition::parse_strict(&text).is_ok());
    assert!(push_json::parse(json.as_bytes()).is_ok());

    let mut g = c.benchmark_group("sources");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("exposition_strict_10MB", |b| {
        b.iter(|| exposition::parse_strict(black_box(&text)))
    });
    g.bench_function("exposition_lenient_10MB", |b| {
        b.iter(|| exposition::parse_lenient(black_box(&text)))
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("push_json_10MB", |b| {
        b.iter(|| push_json::parse(black_box(json.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
