//! A steady-state evaluation cycle allocates nothing per instance: with values that do not
//! cross thresholds, evaluating 200 rules over 50 instances each makes zero allocations
//! (budgets 0.1 µs per instance; allocation would blow it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use tocsin::config::{Source, parse_rules};
use tocsin::engine::{Engine, Output, Settings};
use tocsin::rules::compile;
use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_steady_cycle_does_not_allocate() {
    let mut y = String::from("groups:\n  - name: g\n    interval: 15s\n    rules:\n");
    for i in 0..200 {
        let t = 40 + (i % 4) * 15;
        y += &format!(
            "      - alert: R{i}\n        expr: cpu\n        tiers: [{{ severity: warning, above: {t}, for: 1m }}, {{ severity: critical, above: {}, for: 30s }}]\n        hysteresis: 2\n        cooldown: 5m\n",
            t + 20
        );
    }
    let file = parse_rules(&Source::from_text("a.yaml", y).unwrap()).unwrap();
    let set = Arc::new(compile(&[("a.yaml".into(), file)]).0.expect("compiles"));
    let mut store = SeriesStore::new(Duration::from_secs(600));
    let ids: Vec<_> = (0..50)
        .map(|h| store.id("cpu", &Labels::from_pairs([("host", format!("h{h}"))])))
        .collect();
    let mut engine = Engine::new(
        set,
        Settings {
            staleness: Duration::from_secs(300),
        },
    );
    let mut out = Output::default();
    let cycle = |k: i64, engine: &mut Engine, store: &mut SeriesStore, out: &mut Output| {
        let now = Timestamp(k * 15_000);
        for (h, id) in ids.iter().enumerate() {
            // Fixed levels: some hosts below every tier, some pending, some firing.
            store.push_id(
                *id,
                Sample {
                    t: now,
                    v: (h * 2) as f64,
                },
            );
        }
        out.clear();
        engine.evaluate_group(0, now, store, out);
    };
    // Warm up: bind instances, fire what fires, fill the windows to their retention.
    for k in 0..100 {
        cycle(k, &mut engine, &mut store, &mut out);
    }
    let before = ALLOCATIONS.with(Cell::get);
    for k in 100..110 {
        cycle(k, &mut engine, &mut store, &mut out);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(
        allocations, 0,
        "10 steady cycles of 10,000 instance evaluations allocated {allocations} times"
    );
    assert!(!engine.alerts().is_empty(), "the fixture should have firing alerts");
}
