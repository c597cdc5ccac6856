//! What 1,000 compiled rules keep on the heap: the rule set `run` holds after validation,
//! and the engine with one instance bound per rule. The workload is the benchmark's
//! (`bench/gen_workload.py`: one tier and one templated annotation per rule, each rule
//! selecting one of 300 instances), so the figure here is the heap half of the
//! "memory per 1,000 rules" row of BENCHMARKS.md, counted byte for byte instead of read
//! from a process's RSS; and what a distinct annotation template adds before it renders.

use std::sync::Arc;
use std::time::Duration;

use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, Settings};
use tocsin::rules::compile;
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

#[path = "heap/mod.rs"]
mod heap;
use heap::live;

const RULES: usize = 1000;
const HOSTS: usize = 300;

/// bench/daemon/memory_per_rules.py's rules: the benchmark workload at `interval: 1s`.
fn workload(distinct_templates: bool) -> String {
    let tiers = [
        ("info", 50, "1m"),
        ("warning", 70, "2m"),
        ("critical", 90, "1m"),
        ("page", 95, ""),
    ];
    let mut y = String::from("groups:\n  - name: synth\n    interval: 1s\n    rules:\n");
    for i in 0..RULES {
        let (sev, thr, for_) = tiers[(i / HOSTS) % tiers.len()];
        let for_ = if for_.is_empty() {
            String::new()
        } else {
            format!(", for: {for_}")
        };
        let summary = if distinct_templates {
            format!("{{{{ labels.instance }}}} CPU at {{{{ value }}}}% (rule {i})")
        } else {
            "{{ labels.instance }} CPU at {{ value }}%".to_string()
        };
        y += &format!(
            "      - alert: SynthCpu{i:04}\n        expr: synth_cpu_percent\n        select: {{ instance: host-{:03} }}\n        tiers: [{{ severity: {sev}, above: {thr}{for_} }}]\n        annotations: {{ summary: \"{summary}\" }}\n",
            i % HOSTS
        );
    }
    y
}

/// Heap bytes a compiled rule set of the workload keeps. The source text stays allocated
/// until after the count: freed inside it, it would be subtracted from what the set keeps.
fn rule_set_bytes(distinct_templates: bool) -> (isize, tocsin::rules::RuleSet) {
    let source = Source::from_text("synth.yaml", workload(distinct_templates)).unwrap();
    let before = live();
    let file = parse_rules(&source).unwrap();
    let set = compile(&[("synth.yaml".into(), file)])
        .0
        .expect("the workload compiles");
    let kept = live() - before;
    drop(source);
    (kept, set)
}

#[test]
fn a_thousand_rules_keep_little_heap() {
    let (shared, set) = rule_set_bytes(false);
    let set = Arc::new(set);
    let mut store = SeriesStore::new(Duration::from_secs(600));
    let ids: Vec<_> = (0..HOSTS)
        .map(|h| {
            store.id(
                "synth_cpu_percent",
                &Labels::from_pairs([("instance", format!("host-{h:03}"))]),
            )
        })
        .collect();
    let mut engine = Engine::new(
        Arc::clone(&set),
        Settings {
            staleness: Duration::from_secs(300),
        },
    );
    let mut out = Output::default();
    let before_engine = live();
    for k in 0..20 {
        let now = Timestamp(k * 1000);
        for (h, id) in ids.iter().enumerate() {
            store.push_id(
                *id,
                Sample {
                    t: now,
                    v: ((h * 37) % 100) as f64,
                },
            );
        }
        out.clear();
        engine.evaluate_group(0, now, &mut store, &mut out);
    }
    drop(out);
    let instances = live() - before_engine;
    let (distinct, _set) = rule_set_bytes(true);
    let per_template = (distinct - shared) / RULES as isize;
    println!(
        "1,000 rules: rule set {shared} B ({} B/rule), engine with 1,000 instances and 300 series {instances} B ({} B/rule); \
         a distinct annotation template costs {per_template} B more per rule",
        shared / RULES as isize,
        instances / RULES as isize,
    );
    assert!(!engine.alerts().is_empty(), "the workload's page tier fires");
    // Budgets with some headroom over today's 691 B and 1,017 B. The rule set was 2,470 B
    // while vectors kept the spare capacity `push` reserves, and 1,143 B while each rule
    // copied its file path, annotation text, severity name, slots and policies (the count
    // then left out the source text, freed inside it, and said 851 B). The promise is
    // +2 MiB of process memory per 1,000 rules, allocator and templates included.
    assert!(
        shared <= 768 * RULES as isize,
        "the compiled rule set keeps {shared} B for 1,000 rules (budget 768 B a rule)"
    );
    // A template is kept compiled only once it renders (minijinja reserves ~12 KiB for a
    // compiled one, which every distinct annotation paid until then).
    assert!(
        per_template <= 1024,
        "a distinct annotation template costs {per_template} B before it ever renders (budget 1 KiB)"
    );
    assert!(
        instances <= 1280 * RULES as isize,
        "the engine keeps {instances} B for 1,000 rules' instances (budget 1.25 KiB a rule)"
    );
}
