//! Giving freed heap back to the operating system after the daemon shrinks.
//!
//! Owns one decision: when memory the daemon no longer holds should leave its resident set.
//! glibc's allocator keeps what is freed for reuse and returns only the top of each arena on
//! its own; after a burst of notifications or a sweep of many dead series, the freed chunks
//! lie between live ones and stay resident, so RSS would keep the high-water mark of the
//! burst. It must not be called per request: a trim walks every arena.
//!
//! Callers: the series sweep, the outbox after a burst, and every policy load (start and
//! reload), whose parse, validation and compile of the files need about twice what the
//! compiled set keeps (the parsed YAML trees, the source texts, the diagnostics). Growth
//! that no such event follows (the first evaluations of a policy binding its instances,
//! whose temporaries end up between the instances they built) is left to [`scavenge`].

use std::time::Duration;

/// How often [`scavenge`] looks at the resident heap: what is freed leaves the resident
/// set within about this long, as with jemalloc's default `dirty_decay_ms`.
const SCAVENGE_EVERY: Duration = Duration::from_secs(10);

/// Growth of the resident heap since the last trim that makes [`scavenge`] trim again. A
/// daemon whose heap holds steady never trims, and so pays nothing at rest.
const SCAVENGE_GROWTH: u64 = 512 * 1024;

/// Returns whole free pages of every malloc arena to the kernel (`malloc_trim(0)`), off
/// the runtime thread (a trim of a large heap takes milliseconds); on the calling thread
/// when there is no runtime. A no-op where the allocator is not glibc's.
pub fn give_back() {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(trim)),
        Err(_) => trim(),
    }
}

/// Trims every [`SCAVENGE_EVERY`] when the resident heap has grown by [`SCAVENGE_GROWTH`]
/// since the last trim; runs until the runtime stops. Returns at once where there is
/// nothing to trim (the allocator is not glibc's) or the resident heap cannot be read.
pub async fn scavenge() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let Some(mut base) = resident_heap() else { return };
    loop {
        tokio::time::sleep(SCAVENGE_EVERY).await;
        let Some(now) = resident_heap() else { return };
        if now < base.saturating_add(SCAVENGE_GROWTH) {
            base = base.min(now);
            continue;
        }
        match tokio::task::spawn_blocking(|| {
            trim();
            resident_heap()
        })
        .await
        {
            Ok(after) => base = after.unwrap_or(now),
            Err(_) => return, // the runtime is shutting down
        }
    }
}

/// `malloc_trim(0)` on the calling thread, where the allocator is glibc's.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free lists, under
    // its arena locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident anonymous memory in bytes (resident minus file-backed and
/// shared pages, from `/proc/self/statm`): its heap, stacks and anonymous maps.
fn resident_heap() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut fields = statm.split_ascii_whitespace().skip(1);
    let resident: u64 = fields.next()?.parse().ok()?;
    let shared: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(resident.saturating_sub(shared) * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_heap_is_read_and_grows_with_touched_memory() {
        let before = resident_heap().expect("Linux has /proc/self/statm");
        // 64 MiB touched page by page, so it is resident, not merely reserved; half of it
        // is required, so that other tests freeing memory meanwhile cannot hide it.
        let block = vec![1u8; 64 << 20];
        let during = resident_heap().expect("readable");
        assert!(during >= before + (32 << 20), "{before} -> {during}");
        drop(std::hint::black_box(block));
    }
}
