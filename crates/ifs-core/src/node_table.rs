//! The node table: every node's view of all capacity reports (the seed's
//! "FAT of servers"), a last-writer-wins map keyed by node, ranked by `seq`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crdt::Crdt;
use crate::ids::NodeId;
use crate::wire::{CapacityReport, WireError, from_cbor, to_cbor};

const WHAT: &str = "node table";
/// Missed report intervals after which a node is suspect.
pub const DEFAULT_SUSPECT_AFTER: u32 = 3;
/// Missed report intervals after which a node is dead.
pub const DEFAULT_DEAD_AFTER: u32 = 10;

/// How recently a node was heard from, in report intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Liveness {
    /// Heard within the suspect threshold.
    Alive,
    /// Heard within the suspect threshold, but only second-hand: this node
    /// has not reached it at an address its report gives (see
    /// [`crate::reach`]). Not used for placement, audits or repair copies.
    Unverified,
    /// Missed at least `suspect_after` intervals.
    Suspect,
    /// Missed at least `dead_after` intervals, or never heard.
    Dead,
}

/// What [`NodeTable::insert`] did with a verified report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The report is newer than what the table held and replaced it.
    Adopted,
    /// The table already held this or a newer report (a replay or a late copy).
    Stale,
    /// The table is full ([`NodeTable::MAX_NODES`]) and the node is new.
    Full,
}

/// One node's newest report and when this replica last heard news of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The newest verified report.
    pub report: CapacityReport,
    /// Local time a report of this node was last adopted, ms since the epoch.
    pub last_heard_ms: u64,
}

/// LWW map `NodeId → CapacityReport`. Only verified reports ever enter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeTable {
    entries: BTreeMap<NodeId, NodeEntry>,
}

/// Total order on reports of one node: `seq`, then content hash, so that a
/// node that signs two reports with one `seq` cannot make replicas diverge.
fn rank(r: &CapacityReport) -> (u64, [u8; 32]) {
    (r.seq, *blake3::hash(&r.encode()).as_bytes())
}

impl NodeTable {
    /// Largest accepted encoding of a whole table, in bytes.
    pub const MAX_BYTES: usize = 8 << 20;
    /// Most nodes a table holds; a report of a new node is refused when
    /// full (entries already held are never pushed out by newcomers, so a
    /// flood of made-up identities cannot evict real nodes).
    pub const MAX_NODES: usize = 16_384;
    /// Most new nodes one full-table exchange may add.
    pub const MAX_NEW_PER_EXCHANGE: usize = 1024;

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verify `report` and adopt it if it is newer than what the table holds
    /// for its node; adopting marks the node heard at `now_ms`.
    pub fn insert(
        &mut self,
        report: CapacityReport,
        now_ms: u64,
    ) -> Result<InsertOutcome, WireError> {
        report.verify()?;
        Ok(self.adopt(report, now_ms))
    }

    fn adopt(&mut self, report: CapacityReport, now_ms: u64) -> InsertOutcome {
        let full = self.entries.len() >= Self::MAX_NODES;
        match self.entries.get_mut(&report.node) {
            Some(e) if rank(&report) <= rank(&e.report) => InsertOutcome::Stale,
            Some(e) => {
                e.report = report;
                e.last_heard_ms = e.last_heard_ms.max(now_ms);
                InsertOutcome::Adopted
            }
            None if full => InsertOutcome::Full,
            None => {
                let entry = NodeEntry {
                    report,
                    last_heard_ms: now_ms,
                };
                self.entries.insert(entry.report.node, entry);
                InsertOutcome::Adopted
            }
        }
    }

    /// Take every report from a peer's table (the full-table exchange) that
    /// is newer than ours, marking those nodes heard at `now_ms`. The peer's
    /// own `last_heard_ms` is ignored: it is the peer's clock, not ours.
    /// Returns how many reports were adopted.
    /// At most [`Self::MAX_NEW_PER_EXCHANGE`] nodes new to this table are
    /// taken from one exchange.
    pub fn absorb(&mut self, peer: &NodeTable, now_ms: u64) -> usize {
        let (mut adopted, mut new) = (0, 0);
        for e in peer.entries.values() {
            let known = self.entries.contains_key(&e.report.node);
            if !known && new >= Self::MAX_NEW_PER_EXCHANGE {
                continue;
            }
            if self.adopt(e.report.clone(), now_ms) == InsertOutcome::Adopted {
                adopted += 1;
                new += usize::from(!known);
            }
        }
        adopted
    }

    /// Forget nodes not heard of for `max_silence_ms` (they left long ago);
    /// returns how many were dropped.
    pub fn forget_silent(&mut self, now_ms: u64, max_silence_ms: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.last_heard_ms) < max_silence_ms);
        before - self.entries.len()
    }

    /// The entry of `node`.
    pub fn get(&self, node: &NodeId) -> Option<&NodeEntry> {
        self.entries.get(node)
    }

    /// Every entry, ordered by node id.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &NodeEntry)> {
        self.entries.iter()
    }

    /// Number of known nodes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Liveness of `node` at `now_ms` given the report interval: suspect after
    /// `suspect_after` whole missed intervals, dead after `dead_after`
    /// (defaults [`DEFAULT_SUSPECT_AFTER`], [`DEFAULT_DEAD_AFTER`]). A node
    /// never heard of is dead.
    pub fn state(
        &self,
        node: &NodeId,
        now_ms: u64,
        interval_ms: u64,
        suspect_after: u32,
        dead_after: u32,
    ) -> Liveness {
        let Some(e) = self.entries.get(node) else {
            return Liveness::Dead;
        };
        let missed = now_ms.saturating_sub(e.last_heard_ms) / interval_ms.max(1);
        if missed >= u64::from(dead_after) {
            Liveness::Dead
        } else if missed >= u64::from(suspect_after) {
            Liveness::Suspect
        } else {
            Liveness::Alive
        }
    }

    /// Encoding of the whole table, for persistence and the full-table exchange.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(&self.entries.values().collect::<Vec<_>>())
    }

    /// Decode a table, refusing more than [`Self::MAX_BYTES`] before parsing
    /// and any report whose signature does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let list: Vec<NodeEntry> = from_cbor(bytes, Self::MAX_BYTES, WHAT)?;
        if list.len() > Self::MAX_NODES {
            return Err(WireError::Invalid {
                what: WHAT,
                reason: "more nodes than a table holds",
            });
        }
        let mut table = NodeTable::new();
        for e in list {
            e.report.verify()?;
            table.merge_entry(&e);
        }
        Ok(table)
    }

    fn merge_entry(&mut self, theirs: &NodeEntry) {
        match self.entries.get_mut(&theirs.report.node) {
            None => {
                self.entries.insert(theirs.report.node, theirs.clone());
            }
            Some(mine) => {
                if rank(&theirs.report) > rank(&mine.report) {
                    mine.report = theirs.report.clone();
                }
                mine.last_heard_ms = mine.last_heard_ms.max(theirs.last_heard_ms);
            }
        }
    }
}

impl Crdt for NodeTable {
    /// Per node: the higher-ranked report, and the later `last_heard_ms`
    /// (a product of two semilattices, so the laws hold).
    fn merge(&mut self, other: &Self) {
        for e in other.entries.values() {
            self.merge_entry(e);
        }
    }
}

#[cfg(test)]
mod tests;
