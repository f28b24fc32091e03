//! The benchmarks' clock: CPU time of the calling thread.

use std::time::Instant;

/// CPU seconds used by the calling thread (on-CPU time, so time spent
/// waiting for a core another process holds is not counted). Where the
/// kernel gives no schedstat, wall time since the first call.
pub fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if ns > 0 {
        ns as f64 / 1e9
    } else {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
}
