//! Pure decisions of the put path: how much to reserve, which nodes carry a
//! chunk, who gets a missing replica, and whether a receipt counts.
//!
//! Nothing here does I/O, so every rule is tested on its own.

use std::collections::{HashMap, HashSet};

use ifs_core::codec::CHUNK_OVERHEAD;
use ifs_core::wire::{ChunkRef, Receipt};
use ifs_core::{NodeId, UserId};

use crate::error::ReceiptError;

/// Ciphertext bytes a plaintext of `size` encodes to at most, in segments of
/// `segment_size` (compression only makes it smaller).
pub fn cipher_estimate(size: u64, segment_size: u64) -> u64 {
    let segments = size.div_ceil(segment_size.max(1)).max(1);
    size.saturating_add(segments.saturating_mul(CHUNK_OVERHEAD as u64))
}

/// Bytes to ask each of `nodes` nodes to reserve for `total` ciphertext bytes
/// replicated `replicas` times, spread evenly, plus `overprovision_pct`
/// percent and one whole chunk of slack (chunks do not split over nodes).
/// Never less than one chunk.
pub fn reservation_bytes(
    total: u64,
    replicas: usize,
    nodes: usize,
    overprovision_pct: u32,
    max_chunk: u64,
) -> u64 {
    let nodes = nodes.max(1) as u128;
    let share = (u128::from(total) * replicas as u128).div_ceil(nodes);
    let padded = share * (100 + u128::from(overprovision_pct)) / 100;
    let bytes = padded.saturating_add(u128::from(max_chunk));
    u64::try_from(bytes).unwrap_or(u64::MAX).max(max_chunk)
}

/// What one put has learnt about its nodes so far, so the chunks that
/// follow steer clear of what failed for the chunks before.
#[derive(Clone, Debug, Default)]
pub struct Hazards {
    /// Links a chain broke on: (upstream, downstream), where the upstream
    /// node got nothing through to the downstream one (a cut subnet, a dead
    /// connection).
    broken: HashSet<(NodeId, NodeId)>,
    /// Failures charged to each node in this put.
    strikes: HashMap<NodeId, u32>,
}

impl Hazards {
    /// Charge one failure to `node`.
    pub fn strike(&mut self, node: NodeId) {
        *self.strikes.entry(node).or_default() += 1;
    }

    /// Failures charged to `node` so far.
    pub fn strikes(&self, node: &NodeId) -> u32 {
        self.strikes.get(node).copied().unwrap_or(0)
    }

    /// Remember that `from` could not pass a chunk on to `to`.
    pub fn broken_link(&mut self, from: NodeId, to: NodeId) {
        self.broken.insert((from, to));
    }

    /// Whether a chain may send from `from` on to `to`.
    pub fn link_ok(&self, from: &NodeId, to: &NodeId) -> bool {
        !self.broken.contains(&(*from, *to))
    }
}

/// The header chain of chunk `index`: up to `replicas` distinct nodes of
/// `ranked` (best first) that `usable` accepts, starting at a rotating
/// offset so consecutive chunks start on different nodes and load spreads
/// over the whole preliminary table.
///
/// What the put learnt (`hz`) shapes it: nodes with fewer failures come
/// first (in rotation order among equals), and a node never follows one
/// that could not reach it earlier in the put. A chain stops short rather
/// than cross a broken link; the replicas it lacks go out in a later chain,
/// which starts from the client. Empty only when no node is usable.
pub fn chain_for(
    index: u32,
    ranked: &[NodeId],
    replicas: usize,
    usable: impl Fn(&NodeId) -> bool,
    hz: &Hazards,
) -> Vec<NodeId> {
    if ranked.is_empty() {
        return Vec::new();
    }
    let start = index as usize % ranked.len();
    let mut order: Vec<NodeId> = ranked
        .iter()
        .cycle()
        .skip(start)
        .take(ranked.len())
        .filter(|n| usable(n))
        .copied()
        .collect();
    order.sort_by_key(|n| hz.strikes(n)); // stable: rotation order among equals
    let mut chain: Vec<NodeId> = Vec::with_capacity(replicas);
    while chain.len() < replicas {
        let next = order
            .iter()
            .find(|n| !chain.contains(n) && chain.last().is_none_or(|prev| hz.link_ok(prev, n)));
        match next {
            Some(n) => chain.push(*n),
            None => break,
        }
    }
    chain
}

/// The alternates that should receive a chunk's missing replicas: up to
/// `missing` nodes of `ranked`, none of which already holds it or is in
/// `excluded`, chained as [`chain_for`] does.
pub fn resend_targets(
    index: u32,
    ranked: &[NodeId],
    missing: usize,
    holders: &[NodeId],
    excluded: &[NodeId],
    hz: &Hazards,
) -> Vec<NodeId> {
    chain_for(
        index,
        ranked,
        missing,
        |n| !holders.contains(n) && !excluded.contains(n),
        hz,
    )
}

/// Who a chain's shortfall is charged to, from its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blame {
    /// Nodes charged with a failure for this chunk.
    pub charged: Vec<NodeId>,
    /// The link the chain broke on, when the failure looks like one.
    pub broken_link: Option<(NodeId, NodeId)>,
}

/// Read a chain's reply: `chain` the nodes it went along, `held` the ones
/// that sent a valid receipt, `failure` the node the reply names as failed.
///
/// Only the named node is charged: the nodes after it got nothing to
/// store, through no fault of theirs, and stay eligible for the resend.
/// When it is not the first hop and no node after it holds the chunk, the
/// chunk never got past it, so the link from the hop before it is taken as
/// broken. A reply that names no failure, or one outside the chain, or a
/// node that did hold the chunk, charges every node that holds nothing.
pub fn blame(chain: &[NodeId], held: &[NodeId], failure: Option<&NodeId>) -> Blame {
    let named = failure
        .and_then(|f| chain.iter().position(|n| n == f))
        .filter(|&i| !held.contains(&chain[i]));
    match named {
        Some(i) => {
            let passed_on = chain[i + 1..].iter().any(|n| held.contains(n));
            Blame {
                charged: vec![chain[i]],
                broken_link: (i > 0 && !passed_on).then(|| (chain[i - 1], chain[i])),
            }
        }
        None => Blame {
            charged: chain
                .iter()
                .filter(|n| !held.contains(n))
                .copied()
                .collect(),
            broken_link: None,
        },
    }
}

/// Check one receipt for `chunk`, owned by `owner`, sent along `chain`.
pub fn check_receipt(
    r: &Receipt,
    chunk: &ChunkRef,
    owner: &UserId,
    chain: &[NodeId],
) -> Result<(), ReceiptError> {
    let node = node_name(&r.node);
    if !chain.contains(&r.node) {
        return Err(ReceiptError::NotInChain { node });
    }
    if r.chunk != chunk.id {
        return Err(ReceiptError::WrongChunk { node });
    }
    if r.len != chunk.len {
        return Err(ReceiptError::WrongLength {
            node,
            got: r.len,
            want: chunk.len,
        });
    }
    if r.owner != *owner {
        return Err(ReceiptError::WrongOwner { node });
    }
    r.verify().map_err(|e| ReceiptError::BadSignature {
        node,
        reason: e.to_string(),
    })
}

/// Split `receipts` into the valid ones from nodes not yet counted (at most
/// one per node) and the reasons the rest were refused.
pub fn accept_receipts(
    receipts: Vec<Receipt>,
    chunk: &ChunkRef,
    owner: &UserId,
    chain: &[NodeId],
    counted: &[NodeId],
) -> (Vec<Receipt>, Vec<ReceiptError>) {
    let mut ok: Vec<Receipt> = Vec::new();
    let mut bad = Vec::new();
    for r in receipts {
        match check_receipt(&r, chunk, owner, chain) {
            Ok(()) if counted.contains(&r.node) || ok.iter().any(|o| o.node == r.node) => {}
            Ok(()) => ok.push(r),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

/// A node as users see it: its libp2p peer id, or hex if it has none.
pub fn node_name(node: &NodeId) -> String {
    ifs_net::node_id_to_peer_id(node).map_or_else(|_| node.to_hex(), |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::ChunkId;
    use ifs_core::keys::NodeKey;

    fn ids(n: u8) -> Vec<NodeId> {
        (0..n).map(|i| NodeId([i; 32])).collect()
    }

    #[test]
    fn chains_rotate_over_the_table_and_never_repeat_a_node() {
        let nodes = ids(5);
        let hz = Hazards::default();
        let c0 = chain_for(0, &nodes, 3, |_| true, &hz);
        let c1 = chain_for(1, &nodes, 3, |_| true, &hz);
        assert_eq!(c0, nodes[0..3].to_vec());
        assert_eq!(c1, nodes[1..4].to_vec());
        let c4 = chain_for(4, &nodes, 3, |_| true, &hz);
        assert_eq!(c4, vec![nodes[4], nodes[0], nodes[1]]);
        // Over 5 chunks every node carries the same load.
        let mut load = [0; 5];
        for i in 0..5 {
            for n in chain_for(i, &nodes, 3, |_| true, &hz) {
                load[n.0[0] as usize] += 1;
            }
        }
        assert_eq!(load, [3; 5]);
    }

    #[test]
    fn chains_skip_unusable_nodes_and_shrink_when_too_few() {
        let nodes = ids(4);
        let hz = Hazards::default();
        let c = chain_for(0, &nodes, 3, |n| *n != nodes[1], &hz);
        assert_eq!(c, vec![nodes[0], nodes[2], nodes[3]]);
        assert_eq!(
            chain_for(0, &nodes, 3, |n| *n == nodes[2], &hz),
            vec![nodes[2]]
        );
        assert!(chain_for(0, &[], 3, |_| true, &hz).is_empty());
    }

    #[test]
    fn resends_go_to_nodes_that_neither_hold_nor_failed_the_chunk() {
        let nodes = ids(5);
        let hz = Hazards::default();
        let t = resend_targets(0, &nodes, 1, &[nodes[0], nodes[2]], &[nodes[1]], &hz);
        assert_eq!(t, vec![nodes[3]]);
        let none = resend_targets(0, &nodes, 2, &nodes[0..3], &nodes[3..5], &hz);
        assert!(none.is_empty());
    }

    /// Subnet c is cut off from a and b while the client still reaches
    /// every node (it sits on all three): a chain that crosses the cut
    /// breaks where it crosses. Places chunks as `Placer::place` does, with
    /// the network simulated, and counts the failed chains.
    fn place_across_a_cut(chunks: u32) -> (Vec<Vec<NodeId>>, usize) {
        // Ranked as the placement would: best of a, b, c, then the seconds.
        let (a1, a2, b1, c1, c2) = (
            NodeId([1; 32]),
            NodeId([2; 32]),
            NodeId([3; 32]),
            NodeId([4; 32]),
            NodeId([5; 32]),
        );
        let ranked = vec![a1, b1, c1, a2, c2];
        let side_c = |n: &NodeId| *n == c1 || *n == c2;
        let reaches = |from: &NodeId, to: &NodeId| side_c(from) == side_c(to);
        let mut hz = Hazards::default();
        let mut failures = 0;
        let mut placed = Vec::new();
        for index in 0..chunks {
            let mut held: Vec<NodeId> = Vec::new();
            let mut charged: Vec<NodeId> = Vec::new();
            let mut rounds = 0;
            while held.len() < 3 {
                rounds += 1;
                assert!(rounds < 20, "chunk {index} never placed");
                let excluded: Vec<NodeId> = charged
                    .iter()
                    .filter(|n| charged.iter().filter(|m| m == n).count() >= 2)
                    .copied()
                    .collect();
                let chain = resend_targets(index, &ranked, 3 - held.len(), &held, &excluded, &hz);
                assert!(!chain.is_empty(), "chunk {index} ran out of nodes");
                // The client reaches the first hop; each hop stores and passes
                // the chunk on if it reaches the next one.
                let mut got = vec![chain[0]];
                let mut failure = None;
                for pair in chain.windows(2) {
                    if !reaches(&pair[0], &pair[1]) {
                        failure = Some(pair[1]);
                        break;
                    }
                    got.push(pair[1]);
                }
                if failure.is_some() {
                    failures += 1;
                }
                let b = blame(&chain, &got, failure.as_ref());
                for n in b.charged {
                    hz.strike(n);
                    charged.push(n);
                }
                if let Some((from, to)) = b.broken_link {
                    hz.broken_link(from, to);
                }
                held.extend(got);
            }
            placed.push(held);
        }
        (placed, failures)
    }

    #[test]
    fn a_put_across_a_cut_subnet_places_every_chunk_and_learns_the_cut() {
        let (placed, failures) = place_across_a_cut(40);
        for (i, held) in placed.iter().enumerate() {
            let mut distinct = held.clone();
            distinct.sort_by_key(|n| n.0);
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "chunk {i} on {held:?}");
        }
        // Every failure teaches a broken link that no later chain crosses:
        // at most one failure per directed link across the cut (3 × 2 × 2).
        assert!(failures <= 12, "{failures} failed chains");
        // Before, a node was charged for the nodes after it in a broken
        // chain and every chunk relearnt the cut: the first chunks fail,
        // the rest of the put does not.
        let (_, late) = place_across_a_cut(10);
        assert_eq!(failures, late, "no chain failed after the tenth chunk");
    }

    #[test]
    fn a_broken_link_is_never_crossed_again_and_a_chain_stops_short_of_it() {
        let n = ids(3);
        let mut hz = Hazards::default();
        hz.broken_link(n[0], n[1]);
        hz.broken_link(n[0], n[2]);
        assert_eq!(chain_for(0, &n, 3, |_| true, &hz), vec![n[0]]);
        assert_eq!(chain_for(1, &n, 3, |_| true, &hz), vec![n[1], n[2], n[0]]);
        // A node with failures goes last.
        hz.strike(n[1]);
        assert_eq!(chain_for(1, &n, 3, |_| true, &hz), vec![n[2], n[0]]);
    }

    #[test]
    fn a_node_that_fails_on_its_own_is_charged_without_a_broken_link() {
        let n = ids(3);
        // n1 refused to store but passed the chunk on to n2.
        assert_eq!(
            blame(&n, &[n[0], n[2]], Some(&n[1])),
            Blame {
                charged: vec![n[1]],
                broken_link: None
            }
        );
        // The first hop failed: the client itself sent to it.
        assert_eq!(
            blame(&n, &[], Some(&n[0])),
            Blame {
                charged: vec![n[0]],
                broken_link: None
            }
        );
        // No failure named, or a failure outside the chain: everyone who
        // holds nothing is charged.
        let all_missing = Blame {
            charged: vec![n[1], n[2]],
            broken_link: None,
        };
        assert_eq!(blame(&n, &[n[0]], None), all_missing);
        assert_eq!(blame(&n, &[n[0]], Some(&NodeId([9; 32]))), all_missing);
        assert_eq!(blame(&n, &[n[0]], Some(&n[0])), all_missing);
    }

    #[test]
    fn reservations_cover_a_share_plus_overprovision_and_one_chunk() {
        // 100 MB, R=3 over 5 nodes: 60 MB each, +20% = 72 MB, + an 8 MB chunk.
        let b = reservation_bytes(100_000_000, 3, 5, 20, 8_000_000);
        assert_eq!(b, 80_000_000);
        // An empty file still needs room for its one (tiny) chunk.
        assert_eq!(reservation_bytes(0, 3, 5, 20, 21), 21);
        assert_eq!(reservation_bytes(u64::MAX, 16, 1, 1000, 1), u64::MAX);
        assert_eq!(cipher_estimate(0, 8), CHUNK_OVERHEAD as u64);
        assert_eq!(cipher_estimate(17, 8), 17 + 3 * CHUNK_OVERHEAD as u64);
    }

    #[test]
    fn receipts_are_checked_for_signature_chunk_length_owner_and_chain() {
        let mut rng = rand::rng();
        let key = NodeKey::generate(&mut rng);
        let stranger = NodeKey::generate(&mut rng);
        let owner = UserId([7; 32]);
        let chunk = ChunkRef {
            id: ChunkId::of(b"chunk"),
            len: 5,
        };
        let chain = vec![key.node_id()];
        let good = Receipt::new(&key, chunk.id, 5, (owner, [0; 32]), 1);
        assert_eq!(check_receipt(&good, &chunk, &owner, &chain), Ok(()));

        let mut forged = good.clone();
        forged.stored_at_ms = 2; // the signature no longer covers it
        assert!(matches!(
            check_receipt(&forged, &chunk, &owner, &chain),
            Err(ReceiptError::BadSignature { .. })
        ));
        let other = Receipt::new(&stranger, chunk.id, 5, (owner, [0; 32]), 1);
        assert!(matches!(
            check_receipt(&other, &chunk, &owner, &chain),
            Err(ReceiptError::NotInChain { .. })
        ));
        let wrong_len = Receipt::new(&key, chunk.id, 6, (owner, [0; 32]), 1);
        assert!(matches!(
            check_receipt(&wrong_len, &chunk, &owner, &chain),
            Err(ReceiptError::WrongLength {
                got: 6,
                want: 5,
                ..
            })
        ));
        let wrong_chunk = Receipt::new(&key, ChunkId::of(b"x"), 5, (owner, [0; 32]), 1);
        assert!(matches!(
            check_receipt(&wrong_chunk, &chunk, &owner, &chain),
            Err(ReceiptError::WrongChunk { .. })
        ));
        let wrong_owner = Receipt::new(&key, chunk.id, 5, (UserId([8; 32]), [0; 32]), 1);
        assert!(matches!(
            check_receipt(&wrong_owner, &chunk, &owner, &chain),
            Err(ReceiptError::WrongOwner { .. })
        ));

        let (ok, bad) = accept_receipts(
            vec![good.clone(), good.clone(), forged],
            &chunk,
            &owner,
            &chain,
            &[],
        );
        assert_eq!((ok.len(), bad.len()), (1, 1));
        let (ok, _) = accept_receipts(vec![good], &chunk, &owner, &chain, &chain);
        assert!(ok.is_empty(), "a node already counted is not counted twice");
    }
}
