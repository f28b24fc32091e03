//! Pure decisions of the put path: how much to reserve, which nodes carry a
//! chunk, who gets a missing replica, and whether a receipt counts.
//!
//! Nothing here does I/O, so every rule is tested on its own.

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

/// The header chain of chunk `index`: `replicas` distinct nodes from
/// `ranked` (best first) that `usable` accepts, starting at a rotating
/// offset so consecutive chunks start on different nodes and load spreads
/// over the whole preliminary table. Fewer when not enough are usable.
pub fn chain_for(
    index: u32,
    ranked: &[NodeId],
    replicas: usize,
    usable: impl Fn(&NodeId) -> bool,
) -> Vec<NodeId> {
    if ranked.is_empty() {
        return Vec::new();
    }
    let start = index as usize % ranked.len();
    ranked
        .iter()
        .cycle()
        .skip(start)
        .take(ranked.len())
        .filter(|n| usable(n))
        .take(replicas)
        .copied()
        .collect()
}

/// The alternates that should receive a chunk's missing replicas: up to
/// `missing` nodes of `ranked`, none of which already holds it or failed it.
pub fn resend_targets(
    index: u32,
    ranked: &[NodeId],
    missing: usize,
    holders: &[NodeId],
    failed: &[NodeId],
) -> Vec<NodeId> {
    chain_for(index, ranked, missing, |n| {
        !holders.contains(n) && !failed.contains(n)
    })
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
        let c0 = chain_for(0, &nodes, 3, |_| true);
        let c1 = chain_for(1, &nodes, 3, |_| true);
        assert_eq!(c0, nodes[0..3].to_vec());
        assert_eq!(c1, nodes[1..4].to_vec());
        let c4 = chain_for(4, &nodes, 3, |_| true);
        assert_eq!(c4, vec![nodes[4], nodes[0], nodes[1]]);
        // Over 5 chunks every node carries the same load.
        let mut load = [0; 5];
        for i in 0..5 {
            for n in chain_for(i, &nodes, 3, |_| true) {
                load[n.0[0] as usize] += 1;
            }
        }
        assert_eq!(load, [3; 5]);
    }

    #[test]
    fn chains_skip_unusable_nodes_and_shrink_when_too_few() {
        let nodes = ids(4);
        let c = chain_for(0, &nodes, 3, |n| *n != nodes[1]);
        assert_eq!(c, vec![nodes[0], nodes[2], nodes[3]]);
        assert_eq!(chain_for(0, &nodes, 3, |n| *n == nodes[2]), vec![nodes[2]]);
        assert!(chain_for(0, &[], 3, |_| true).is_empty());
    }

    #[test]
    fn resends_go_to_nodes_that_neither_hold_nor_failed_the_chunk() {
        let nodes = ids(5);
        let t = resend_targets(0, &nodes, 1, &[nodes[0], nodes[2]], &[nodes[1]]);
        assert_eq!(t, vec![nodes[3]]);
        let none = resend_targets(0, &nodes, 2, &nodes[0..3], &nodes[3..5]);
        assert!(none.is_empty());
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
        let good = Receipt::new(&key, chunk.id, 5, owner, 1);
        assert_eq!(check_receipt(&good, &chunk, &owner, &chain), Ok(()));

        let mut forged = good.clone();
        forged.stored_at_ms = 2; // the signature no longer covers it
        assert!(matches!(
            check_receipt(&forged, &chunk, &owner, &chain),
            Err(ReceiptError::BadSignature { .. })
        ));
        let other = Receipt::new(&stranger, chunk.id, 5, owner, 1);
        assert!(matches!(
            check_receipt(&other, &chunk, &owner, &chain),
            Err(ReceiptError::NotInChain { .. })
        ));
        let wrong_len = Receipt::new(&key, chunk.id, 6, owner, 1);
        assert!(matches!(
            check_receipt(&wrong_len, &chunk, &owner, &chain),
            Err(ReceiptError::WrongLength {
                got: 6,
                want: 5,
                ..
            })
        ));
        let wrong_chunk = Receipt::new(&key, ChunkId::of(b"x"), 5, owner, 1);
        assert!(matches!(
            check_receipt(&wrong_chunk, &chunk, &owner, &chain),
            Err(ReceiptError::WrongChunk { .. })
        ));
        let wrong_owner = Receipt::new(&key, chunk.id, 5, UserId([8; 32]), 1);
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
