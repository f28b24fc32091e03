//! Per-node reputation as this node sees it: audit results it got as a
//! challenger, get results clients reported to it, and liveness it observed.
//! Kept in memory, persisted in the local table on every change, shown by
//! `ifsnode peers` and used by repair's placement.

use ifs_core::NodeId;
use ifs_core::audit::AuditOutcome;
use ifs_core::node_table::Liveness;
use ifs_core::proto::FetchOutcome;
use ifs_core::reputation::ReputationRecord;
use ifs_net::PeerId;
use ifs_store::MetaTable;
use tracing::{debug, info, warn};

use super::Shared;
use super::shared::lock;

/// Most results one client report may carry that count (the rest are
/// ignored), so one client cannot swing a node's reputation in one message.
const MAX_RESULTS_PER_REPORT: usize = 64;

impl Shared {
    /// The score in 0..=1 this node gives `node` (1 for itself and for nodes
    /// it knows nothing bad about).
    pub fn reputation_of(&self, node: &NodeId) -> f64 {
        if *node == self.node_id {
            return 1.0;
        }
        lock(&self.durability.reputation)
            .get(node)
            .map_or(1.0, ReputationRecord::score)
    }

    /// Load persisted reputation at start.
    pub async fn load_reputation(&self) {
        let rows = match self
            .store
            .meta_list(MetaTable::Reputation, Vec::new())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read reputation: {e}");
                return;
            }
        };
        let mut map = lock(&self.durability.reputation);
        for (k, v) in rows {
            let (Ok(id), Ok(rec)) = (
                <[u8; 32]>::try_from(k.as_slice()),
                ReputationRecord::decode(&v),
            ) else {
                warn!("ignoring a corrupt reputation row");
                continue;
            };
            map.insert(NodeId(id), rec);
        }
        if !map.is_empty() {
            info!(nodes = map.len(), "restored reputation");
        }
    }

    async fn update_reputation(&self, node: NodeId, f: impl FnOnce(&mut ReputationRecord)) {
        if node == self.node_id {
            return;
        }
        let rec = {
            let mut map = lock(&self.durability.reputation);
            let rec = map.entry(node).or_default();
            f(rec);
            *rec
        };
        if let Err(e) = self
            .store
            .meta_put(
                MetaTable::Reputation,
                node.as_bytes().to_vec(),
                rec.encode(),
            )
            .await
        {
            warn!(%node, "cannot persist reputation: {e}");
        }
    }

    /// Record the outcome of an audit this node ran against `node`.
    pub async fn note_audit(&self, node: NodeId, outcome: AuditOutcome, now_ms: u64) {
        self.telemetry.audit(&node, outcome);
        if outcome == AuditOutcome::Fail {
            warn!(%node, "audit failed");
        }
        self.update_reputation(node, |r| r.record_audit(outcome, now_ms))
            .await;
    }

    /// A client's report of how nodes served its get.
    pub async fn note_get_results(
        &self,
        peer: PeerId,
        results: &[(NodeId, FetchOutcome)],
        now_ms: u64,
    ) {
        for (node, outcome) in results.iter().take(MAX_RESULTS_PER_REPORT) {
            debug!(%peer, %node, ?outcome, "fetch result reported");
            self.update_reputation(*node, |r| r.record_get(*outcome, now_ms))
                .await;
        }
    }

    /// Count one liveness observation of every other node in the table.
    pub(crate) async fn observe_liveness(&self, now_ms: u64) {
        let nodes: Vec<NodeId> = lock(&self.table)
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != self.node_id)
            .collect();
        for node in nodes {
            // A node only others vouch for is no one's to judge yet (and
            // made-up ones must not get reputation rows).
            if self.liveness_in(&lock(&self.table), &node, now_ms) == Liveness::Unverified {
                continue;
            }
            let alive = self.node_alive(&node, now_ms);
            self.update_reputation(node, |r| r.record_liveness(alive, now_ms))
                .await;
        }
    }
}
