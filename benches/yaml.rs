//! What YAML costs `tocsin check` on 1,000 rules: the benchmark's rule file (the scheme of
//! `bench/gen_workload.py`, 1,000 alerts with a tier and an annotation each) through the
//! YAML event parser alone (granit-parser, the saphyr parser serde-saphyr runs on) and
//! through `config::parse_rules` (serde-saphyr with spans, into typed rule files).
//! Instruction counts, which load on the machine does not move, come from callgrind:
//!
//! ```text
//! cargo bench --bench yaml --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/yaml-HASH events
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/yaml-HASH typed
//! ```
//!
//! Without an argument (as `cargo test --all-targets` and `cargo bench` run it) it parses
//! the file both ways a few times and prints wall times per byte.

use std::time::Instant;

use tocsin::config::{Source, parse_rules};

fn workload() -> String {
    let tiers = [
        ("info", 50, "1m"),
        ("warning", 70, "2m"),
        ("critical", 90, "1m"),
        ("page", 95, ""),
    ];
    let mut y = String::from("groups:\n  - name: synth\n    interval: 15s\n    rules:\n");
    for i in 0..1000 {
        let (sev, thr, for_) = tiers[(i / 300) % tiers.len()];
        let for_ = if for_.is_empty() {
            String::new()
        } else {
            format!(", for: {for_}")
        };
        y += &format!(
            "      - alert: SynthCpu{i:04}\n        expr: synth_cpu_percent\n        select: {{ instance: host-{:03} }}\n        tiers: [{{ severity: {sev}, above: {thr}{for_} }}]\n        annotations: {{ summary: \"{{{{ labels.instance }}}} CPU at {{{{ value }}}}%\" }}\n",
            i % 300
        );
    }
    y
}

/// Events of the whole file (every scalar's text and span included).
fn events(text: &str) -> usize {
    let mut n = 0;
    for ev in granit_parser::Parser::new_from_str(text) {
        ev.expect("the workload is valid YAML");
        n += 1;
    }
    n
}

/// Rules of the typed parse.
fn typed(text: &str) -> usize {
    let file = parse_rules(&Source::from_text("synth.yaml", text.to_string()).unwrap()).expect("the workload parses");
    file.groups.iter().map(|g| g.rules.len()).sum()
}

fn main() {
    let text = workload();
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "events" => println!("{} events", events(&text)),
        "typed" => println!("{} rules", typed(&text)),
        _ => {
            let runs = 5;
            for (name, f) in [("events", events as fn(&str) -> usize), ("typed", typed)] {
                let t = Instant::now();
                let mut n = 0;
                for _ in 0..runs {
                    n = f(&text);
                }
                let per = t.elapsed() / runs;
                println!(
                    "yaml/{name}: {n} items from {} bytes in {per:?} ({:.1} ns/byte)",
                    text.len(),
                    per.as_nanos() as f64 / text.len() as f64
                );
            }
        }
    }
}
