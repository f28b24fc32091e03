//! [`DurabilityConfig`]: how often a node checks its data and its peers, and
//! how much bandwidth repair may take.

use std::time::Duration;

/// Scrub, audit, repair and offload settings of one node.
#[derive(Clone, Debug)]
pub struct DurabilityConfig {
    /// Target live copies of every chunk (the network's R).
    pub replicas: usize,
    /// Time between two scrubs of every stored chunk.
    pub scrub_interval: Duration,
    /// Disk read rate of a scrub, bytes per second (`None`: unpaced).
    pub scrub_bytes_per_sec: Option<u64>,
    /// Time between two repair passes (replica counts, audits, offload,
    /// freeing chunks of deleted files).
    pub repair_interval: Duration,
    /// Chunks audited per pass, each against every other live holder.
    pub audits_per_pass: usize,
    /// Copies made at once by repair and offload.
    pub repair_concurrency: usize,
    /// Bytes per second repair and offload may send (`None`: unpaced).
    pub repair_bytes_per_sec: Option<u64>,
    /// How long a held chunk that no committed record names (a failed or
    /// abandoned put) is kept before it is freed. Longer than the longest
    /// reservation, so a put in progress is never collected.
    pub collect_after: Duration,
    /// How long a chunk must hold more live copies than its target before
    /// one holder drops its copy (a node back from a short restart must not
    /// make others churn).
    pub trim_after: Duration,
    /// Test fault: answer every audit with garbage.
    #[doc(hidden)]
    pub fault_garbage_audits: bool,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig {
            replicas: 3,
            scrub_interval: Duration::from_secs(6 * 3600),
            scrub_bytes_per_sec: Some(32 << 20),
            repair_interval: Duration::from_secs(60),
            audits_per_pass: 4,
            repair_concurrency: 4,
            repair_bytes_per_sec: Some(64 << 20),
            collect_after: Duration::from_secs(3600),
            trim_after: Duration::from_secs(600),
            fault_garbage_audits: false,
        }
    }
}
