//! Repair and offload planning: which chunks of a file need new copies and
//! which holder makes them, which chunks a node sheds to get back under its
//! donation, and where new copies go. Pure: liveness and candidates are
//! passed in.
//!
//! Exactly one node acts on each under-replicated chunk so copies are not
//! made twice: the live holder with the lowest node id (every holder sees
//! the same record and, once gossip settles, the same liveness, so they agree
//! without talking).

use crate::file_record::FileRecord;
use crate::ids::{ChunkId, NodeId};
use crate::placement::{Candidate, Policy, rank};

/// One chunk that needs more copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairTask {
    /// The chunk.
    pub chunk: ChunkId,
    /// Its length (from the manifest).
    pub len: u64,
    /// Holders counted live, lowest id first.
    pub live: Vec<NodeId>,
    /// Every node with a receipt (live or not): never a target.
    pub holders: Vec<NodeId>,
    /// Copies to add to get back to the target.
    pub missing: usize,
}

/// Chunks of `record`'s live manifest with fewer than `replicas` live
/// holders, for which `me` is the lowest-id live holder. `is_live` says
/// whether a node counts (alive in the node table, not failing audits).
/// A deleted file or one without a manifest needs nothing.
pub fn repair_plan(
    record: &FileRecord,
    is_live: impl Fn(&NodeId) -> bool,
    replicas: usize,
    me: &NodeId,
) -> Vec<RepairTask> {
    let Some(manifest) = record.live_manifest() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in &manifest.chunks {
        let holders = record.live_holders(&c.id);
        let mut live: Vec<NodeId> = holders.iter().copied().filter(|n| is_live(n)).collect();
        live.sort();
        if live.len() >= replicas || live.first() != Some(me) {
            continue;
        }
        let mut all: Vec<NodeId> = record.past_holders(&c.id);
        all.sort();
        all.dedup();
        out.push(RepairTask {
            chunk: c.id,
            len: c.len,
            missing: replicas - live.len(),
            live,
            holders: all,
        });
    }
    out
}

/// Whether `me` should hand `chunk` to a new node before freeing it: true
/// unless the other live holders already reach `replicas` without it.
pub fn needs_copy_before_release(
    record: &FileRecord,
    chunk: &ChunkId,
    is_live: impl Fn(&NodeId) -> bool,
    replicas: usize,
    me: &NodeId,
) -> bool {
    let others = record
        .live_holders(chunk)
        .into_iter()
        .filter(|n| n != me && is_live(n))
        .count();
    others < replicas
}

/// Chunks of `record`'s live manifest of which `me` should drop its copy
/// because more than `replicas` live copies exist (a holder came back after
/// its chunks were repaired elsewhere). Exactly one holder trims at a time:
/// the highest-id holder that `is_live` counts; and only while the others,
/// without `me`, still reach `replicas` with nodes `is_alive` (seen alive
/// now: a suspect holder does not count), so a trim never takes a chunk
/// below its target even when two holders' views differ.
pub fn trim_plan(
    record: &FileRecord,
    is_live: impl Fn(&NodeId) -> bool,
    is_alive: impl Fn(&NodeId) -> bool,
    replicas: usize,
    me: &NodeId,
) -> Vec<ChunkId> {
    let Some(manifest) = record.live_manifest() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in &manifest.chunks {
        let holders = record.live_holders(&c.id);
        let live: Vec<&NodeId> = holders.iter().filter(|n| is_live(n)).collect();
        if live.len() <= replicas || live.iter().max() != Some(&me) {
            continue;
        }
        let others_alive = live.iter().filter(|n| **n != me && is_alive(n)).count();
        if others_alive >= replicas {
            out.push(c.id);
        }
    }
    out
}

/// Chunks to move off a node holding `held` (id, bytes) to shed `excess`
/// bytes: largest first, so the fewest transfers free the space; stops once
/// the sum reaches `excess`. Ties go to the lower id, so the plan is stable.
pub fn offload_plan(held: &[(ChunkId, u64)], excess: u64) -> Vec<ChunkId> {
    if excess == 0 {
        return Vec::new();
    }
    let mut sorted: Vec<&(ChunkId, u64)> = held.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut freed = 0u64;
    let mut out = Vec::new();
    for (id, len) in sorted {
        if freed >= excess {
            break;
        }
        out.push(*id);
        freed = freed.saturating_add(*len);
    }
    out
}

/// New homes for a chunk of `len` bytes, best first: candidates that pass
/// placement's checks, are not in `exclude` (current and past holders, the
/// node itself), ranked by the placement score across address ranges.
pub fn pick_targets(
    candidates: &[(NodeId, Candidate)],
    exclude: &[NodeId],
    len: u64,
    want: usize,
) -> Vec<NodeId> {
    let eligible: Vec<&(NodeId, Candidate)> = candidates
        .iter()
        .filter(|(n, _)| !exclude.contains(n))
        .collect();
    let cands: Vec<Candidate> = eligible.iter().map(|(_, c)| *c).collect();
    let policy = Policy {
        need_bytes: len,
        ..Policy::default()
    };
    rank(&cands, &policy, want)
        .into_iter()
        .map(|i| eligible[i].0)
        .collect()
}

/// Nodes that failed a copy pushed to them (a refusal, a stall, a broken
/// stream), left out of repair and offload targets for a while: a peer that
/// takes a stream and never reads it costs one timeout per window, not one
/// per chunk. Bounded: when full, the entry that ends first makes room.
#[derive(Clone, Debug, Default)]
pub struct FailedTargets {
    until: std::collections::HashMap<NodeId, u64>,
}

impl FailedTargets {
    /// Most nodes remembered at once.
    pub const MAX: usize = 4096;

    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `node` failed at `now_ms`: skip it until `now_ms + for_ms`.
    pub fn failed(&mut self, node: NodeId, now_ms: u64, for_ms: u64) {
        self.until.retain(|_, &mut t| t > now_ms);
        if self.until.len() >= Self::MAX && !self.until.contains_key(&node) {
            let first = self.until.iter().min_by_key(|(_, t)| **t).map(|(n, _)| *n);
            if let Some(n) = first {
                self.until.remove(&n);
            }
        }
        self.until.insert(node, now_ms.saturating_add(for_ms));
    }

    /// `node` took a copy: it is a good target again.
    pub fn succeeded(&mut self, node: &NodeId) {
        self.until.remove(node);
    }

    /// Whether `node` is still left out at `now_ms`.
    pub fn skips(&self, node: &NodeId, now_ms: u64) -> bool {
        self.until.get(node).is_some_and(|&t| t > now_ms)
    }

    /// Nodes remembered (some may have expired).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether no node is remembered.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests;
