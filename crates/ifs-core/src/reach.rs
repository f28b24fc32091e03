//! Which nodes this node has reached itself.
//!
//! A capacity report is self-signed, and keys are free: anyone can mint
//! reports for made-up nodes and hand them over in a table exchange or on
//! gossip. Such a node is *listed*, but it counts as alive only once this
//! node dialled it at an address its report gives and it answered under its
//! own key (the transport handshake proves the key). A made-up identity
//! therefore costs its maker a reachable endpoint, as a real node does.
//!
//! Pure bookkeeping: the node asks [`Reach::due`] which nodes to dial, dials
//! them, and feeds the results back with `now`.

use std::collections::BTreeMap;

use crate::ids::NodeId;

/// How long a successful dial vouches for a node.
pub const REACH_TTL_MS: u64 = 3_600_000;
/// Age after which a reached node is dialled again (before its vouch lapses,
/// so a live node never flips to unverified).
pub const REFRESH_AFTER_MS: u64 = REACH_TTL_MS / 2;
/// Wait before the first retry of a node that did not answer; each further
/// failure doubles it, up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: u64 = 10_000;
/// Longest wait between two dials of a node that does not answer.
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
/// How long a dial may stay outstanding before it counts as failed.
const IN_FLIGHT_MS: u64 = 60_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Contact {
    /// When a dial last reached it (0: never).
    reached_ms: u64,
    /// Earliest time of the next dial.
    next_try_ms: u64,
    /// Dials that failed since the last success.
    failures: u32,
}

/// Per node: when this node last reached it, and when to dial it next.
/// Holds only nodes the caller keeps (see [`Reach::retain`]), so it is
/// bounded by the node table.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    contacts: BTreeMap<NodeId, Contact>,
}

impl Reach {
    /// Nothing reached yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A dial of `node` at an address from its report succeeded.
    pub fn reached(&mut self, node: NodeId, now_ms: u64) {
        let c = self.contacts.entry(node).or_default();
        c.reached_ms = now_ms.max(1);
        c.failures = 0;
        c.next_try_ms = now_ms.saturating_add(REFRESH_AFTER_MS);
    }

    /// A dial of `node` failed: try again after a backoff that doubles with
    /// each failure.
    pub fn failed(&mut self, node: NodeId, now_ms: u64) {
        let c = self.contacts.entry(node).or_default();
        c.failures = c.failures.saturating_add(1);
        let backoff = FIRST_BACKOFF_MS
            .saturating_mul(1u64 << (c.failures - 1).min(20))
            .min(MAX_BACKOFF_MS);
        c.next_try_ms = now_ms.saturating_add(backoff);
    }

    /// Whether a dial reached `node` within [`REACH_TTL_MS`] of `now_ms`.
    pub fn is_reached(&self, node: &NodeId, now_ms: u64) -> bool {
        self.contacts
            .get(node)
            .is_some_and(|c| c.reached_ms > 0 && now_ms.saturating_sub(c.reached_ms) < REACH_TTL_MS)
    }

    /// Up to `max` of `candidates` to dial now: never reached, or reached
    /// long enough ago to refresh, and not dialled within their backoff.
    /// Those returned count as being dialled (not offered again for a
    /// minute, in case no result comes back).
    pub fn due(
        &mut self,
        candidates: impl IntoIterator<Item = NodeId>,
        now_ms: u64,
        max: usize,
    ) -> Vec<NodeId> {
        let mut out = Vec::new();
        for node in candidates {
            if out.len() >= max {
                break;
            }
            let c = self.contacts.entry(node).or_default();
            if c.next_try_ms <= now_ms {
                c.next_try_ms = now_ms.saturating_add(IN_FLIGHT_MS);
                out.push(node);
            }
        }
        out
    }

    /// Keep only the nodes `keep` accepts (the ones still in the table).
    pub fn retain(&mut self, mut keep: impl FnMut(&NodeId) -> bool) {
        self.contacts.retain(|n, _| keep(n));
    }

    /// Number of nodes tracked.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether no node is tracked.
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId([i; 32])
    }

    #[test]
    fn a_listed_node_is_unreached_until_a_dial_answers() {
        let mut r = Reach::new();
        assert!(!r.is_reached(&node(1), 0));
        assert_eq!(r.due([node(1), node(2)], 1_000, 16), vec![node(1), node(2)]);
        // Being dialled: not offered twice.
        assert!(r.due([node(1), node(2)], 2_000, 16).is_empty());
        r.reached(node(1), 3_000);
        assert!(r.is_reached(&node(1), 3_000));
        assert!(!r.is_reached(&node(2), 3_000));
    }

    #[test]
    fn failures_back_off_and_a_vouch_is_refreshed_before_it_lapses() {
        let mut r = Reach::new();
        r.due([node(1)], 0, 1);
        r.failed(node(1), 0);
        assert!(r.due([node(1)], FIRST_BACKOFF_MS - 1, 1).is_empty());
        assert_eq!(r.due([node(1)], FIRST_BACKOFF_MS, 1), vec![node(1)]);
        r.failed(node(1), FIRST_BACKOFF_MS);
        assert!(r.due([node(1)], 2 * FIRST_BACKOFF_MS, 1).is_empty());
        assert_eq!(r.due([node(1)], 3 * FIRST_BACKOFF_MS, 1), vec![node(1)]);
        for _ in 0..40 {
            r.failed(node(1), 0);
        }
        assert!(r.due([node(1)], MAX_BACKOFF_MS - 1, 1).is_empty());
        assert_eq!(r.due([node(1)], MAX_BACKOFF_MS, 1), vec![node(1)]);

        r.reached(node(2), 10);
        assert!(r.due([node(2)], 10 + REFRESH_AFTER_MS - 1, 1).is_empty());
        assert!(r.is_reached(&node(2), 10 + REFRESH_AFTER_MS));
        assert_eq!(r.due([node(2)], 10 + REFRESH_AFTER_MS, 1), vec![node(2)]);
        assert!(!r.is_reached(&node(2), 10 + REACH_TTL_MS));
    }

    #[test]
    fn dials_per_round_are_capped_and_forgotten_nodes_dropped() {
        let mut r = Reach::new();
        let many: Vec<NodeId> = (0..100).map(node).collect();
        assert_eq!(r.due(many.clone(), 0, 16).len(), 16);
        assert_eq!(r.due(many.clone(), 0, 16).first(), Some(&node(16)));
        r.retain(|n| *n == node(3));
        assert_eq!(r.len(), 1);
    }
}
