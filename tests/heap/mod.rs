//! The heap counter of the `*_alloc.rs` tests: a global allocator that tracks the bytes
//! currently allocated and counts allocations. Each such test binary includes it with
//! `#[path = "heap/mod.rs"] mod heap;` (a global allocator is one per binary, so the tests
//! cannot share one binary); every binary runs one test, so no other test's allocations mix
//! in.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

struct Counting;

/// Bytes currently allocated, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Allocations so far, by every thread (a reallocation is one: `GlobalAlloc`'s default
/// `realloc` allocates anew).
pub static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated now.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}
