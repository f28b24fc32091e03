//! What the admin API returns, as plain serializable structs: the JSON of
//! `/api/overview` and `/api/bandwidth` (field names documented in the
//! README). The node table is `ifs_core::proto::PeerRow`, as `peers --json`.

use serde::Serialize;

use super::bandwidth::Bucket;

/// `/api/overview`: this node at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// `ifsnode` version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Dialable addresses.
    pub addrs: Vec<String>,
    /// Whether other nodes can be reached.
    pub reachability: Reachability,
    /// Node-wide space figures.
    pub capacity: CapacityView,
    /// Each volume, in configuration order.
    pub volumes: Vec<VolumeView>,
    /// Chunks held.
    pub chunks: u64,
    /// The node table by state.
    pub nodes: NodeCounts,
    /// Audits run and answered.
    pub audits: AuditView,
    /// The repair queue.
    pub repair: RepairView,
    /// The offload queue.
    pub offload: OffloadView,
    /// Bytes in and out over the last hour and day.
    pub traffic: TrafficView,
    /// Warning events still in the event log.
    pub warnings: u64,
}

/// Whether the node is part of a network.
#[derive(Clone, Debug, Serialize)]
pub struct Reachability {
    /// `connected` (at least one other node alive) or `alone`.
    pub state: String,
    /// Peers with an open connection (nodes and clients).
    pub connected_peers: u32,
    /// Other nodes alive in the node table.
    pub alive_peers: u32,
}

/// Node-wide space, bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CapacityView {
    /// What IFS may hold on all volumes.
    pub donated_bytes: u64,
    /// Committed chunks.
    pub used_bytes: u64,
    /// Held by open reservations, not yet written.
    pub reserved_bytes: u64,
    /// Still grantable.
    pub free_bytes: u64,
    /// Held chunks no committed file names, freed after `collect_after_secs`.
    pub awaiting_collection_bytes: u64,
    /// In the volumes' quarantines.
    pub quarantined_bytes: u64,
    /// Held beyond the donation: what offload still has to move.
    pub excess_bytes: u64,
    /// Percent of each filesystem always left to the machine's owner.
    pub owner_reserve_pct: u8,
    /// Percent of the filesystems the owner uses now.
    pub owner_need_pct: u8,
}

/// One volume, bytes.
#[derive(Clone, Debug, Serialize)]
pub struct VolumeView {
    /// The volume directory.
    pub path: String,
    /// What IFS may hold here now.
    pub donated_bytes: u64,
    /// Committed pieces here.
    pub used_bytes: u64,
    /// What a new piece may still take here.
    pub free_bytes: u64,
    /// Files of freed chunks that could not be removed yet.
    pub unremoved_bytes: u64,
    /// Size of the volume's filesystem.
    pub fs_size_bytes: u64,
    /// Free bytes on that filesystem.
    pub fs_avail_bytes: u64,
}

/// The node table by state (this node included).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeCounts {
    /// Every node in the table.
    pub total: u64,
    /// Alive.
    pub alive: u64,
    /// Alive in the table but its connection closed and a redial failed.
    pub unreachable: u64,
    /// Heard of only through other nodes: not reached at its own address yet.
    pub unverified: u64,
    /// Missed a few reports.
    pub suspect: u64,
    /// Missed enough reports to be given up on (its chunks are repaired).
    pub dead: u64,
    /// Any other state.
    pub other: u64,
}

/// Audits: the ones this node ran against co-holders, and the challenges it
/// answered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditView {
    /// Co-holders that answered correctly.
    pub passed: u64,
    /// Co-holders that answered wrongly or lost the chunk.
    pub failed: u64,
    /// Co-holders that did not answer.
    pub no_answer: u64,
    /// Challenges this node answered with a proof.
    pub answered: u64,
    /// Challenges this node could not answer (refused, chunk damaged).
    pub answer_errors: u64,
    /// Lowest reputation this node gives another node (1 when none known).
    pub min_peer_reputation: f64,
    /// Mean reputation this node gives other nodes (1 when none known).
    pub mean_peer_reputation: f64,
}

/// Repair progress.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairView {
    /// Chunks waiting for a copy slot or being copied.
    pub queued: u64,
    /// Chunks being copied right now (repair, offload, refetch).
    pub copying: u64,
    /// Repairs that made every missing copy, since start.
    pub completed: u64,
    /// Repairs that found too few targets, since start.
    pub incomplete: u64,
}

/// Offload progress.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OffloadView {
    /// Whether the node is leaving (hands every chunk over).
    pub leaving: bool,
    /// Bytes held beyond the donation.
    pub excess_bytes: u64,
    /// Chunks waiting for or being moved.
    pub queued: u64,
    /// Chunks moved and released, since start.
    pub offloaded: u64,
}

/// Traffic totals, bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrafficView {
    /// Received in the last hour.
    pub hour_in_bytes: u64,
    /// Sent in the last hour.
    pub hour_out_bytes: u64,
    /// Received in the last day.
    pub day_in_bytes: u64,
    /// Sent in the last day.
    pub day_out_bytes: u64,
}

/// `/api/bandwidth`: the traffic history.
#[derive(Clone, Debug, Serialize)]
pub struct BandwidthView {
    /// Received in the last hour.
    pub hour_in_bytes: u64,
    /// Sent in the last hour.
    pub hour_out_bytes: u64,
    /// Received in the last day.
    pub day_in_bytes: u64,
    /// Sent in the last day.
    pub day_out_bytes: u64,
    /// The last hour, one bucket per minute, oldest first.
    pub minutes: Vec<Bucket>,
    /// The last day, one bucket per quarter hour, oldest first.
    pub quarters: Vec<Bucket>,
}
