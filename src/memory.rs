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
//! compiled set keeps (the parsed YAML trees, the source texts, the diagnostics).

/// Returns whole free pages of every malloc arena to the kernel (`malloc_trim(0)`), off
/// the runtime thread (a trim of a large heap takes milliseconds); on the calling thread
/// when there is no runtime. A no-op where the allocator is not glibc's.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        fn trim() {
            // SAFETY: malloc_trim only inspects and releases the allocator's own free
            // lists, under its arena locks; it is safe to call from any thread at any time.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(trim)),
            Err(_) => trim(),
        }
    }
}
