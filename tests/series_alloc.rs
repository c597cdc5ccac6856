//! What a live series keeps on the heap, and what its removal gives back: the store with
//! N pushed series of two samples each (as `bench/daemon/series-memory.py` pushes them),
//! then after `SeriesStore::sweep` removed them all. Counted by a global allocator, so the
//! figure is the store's own; the daemon's RSS adds what the allocator keeps.

use std::time::Duration;

use tocsin::series::{Labels, Sample, SeriesStore, Timestamp};

#[path = "heap/mod.rs"]
mod heap;
use heap::live;

const N: usize = 20_000;

#[test]
fn a_live_series_keeps_little_heap_and_gives_it_back_when_swept() {
    let mut store = SeriesStore::new(Duration::from_secs(300));
    let labels: Vec<Labels> = (0..N)
        .map(|k| Labels::from_pairs([("series", format!("s{k:06}"))]))
        .collect();
    let empty = live();
    for t in [0, 1000] {
        for l in &labels {
            store
                .ingest(
                    "push",
                    N,
                    "bench_series",
                    l,
                    Sample {
                        t: Timestamp(t),
                        v: 1.0,
                    },
                    Timestamp(t),
                )
                .expect("within the budget");
        }
    }
    let alive = live();
    let removed = store.sweep(Timestamp(20_000), Duration::from_secs(10), Duration::ZERO, |_| false);
    assert_eq!(removed, N);
    let dead = live();
    let per_series = (alive - empty) / N as isize;
    let kept = (dead - empty) / N as isize;
    println!("heap per live series: {per_series} B; {kept} B per series still held once all were swept");
    assert!(per_series <= 1024, "a live series keeps {per_series} B (budget 1 KiB)");
    // What stays is the slot table: a slot is reused, never moved or dropped, because a
    // `SeriesId` names it (with its incarnation). Its labels and window are given back.
    assert!(
        kept <= per_series / 2,
        "a swept series still holds {kept} B of its {per_series} B"
    );
}
