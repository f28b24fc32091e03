//! How the C allocator treats chunk-sized buffers.
//!
//! Every chunk a node receives, forwards, stores or serves, and every chunk a
//! client encodes or decodes, lives in a buffer of up to 8 MiB. glibc serves
//! blocks that large with a fresh `mmap` and gives them back with `munmap`
//! (its threshold adapts upwards only slowly, and per arena), so each chunk
//! pays to fault in 2,048 new pages, which the kernel zeroes first; on a
//! virtual machine whose host reclaims freed guest memory each of those
//! faults also traps to the host. Raising the mmap threshold above the
//! largest chunk and the trim threshold well above that keeps freed chunk
//! buffers in the heap, where the next chunk reuses pages that are already
//! mapped. What a process keeps is bounded by its peak of buffers in flight.

/// Blocks below this come from the heap, not from their own mapping: above
/// the largest chunk (8 MiB segment + overhead) and the 4 MiB pieces.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap is returned to the system only beyond
/// this much.
const TRIM_THRESHOLD: i32 = 128 << 20;

/// Applies the thresholds; a no-op where the C library is not glibc.
pub fn keep_chunk_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only adjusts allocator parameters; it is called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
