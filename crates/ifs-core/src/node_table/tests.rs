use super::*;
use crate::crdt::merged;
use crate::keys::NodeKey;
use crate::wire::CapacityStats;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::OnceLock;

fn key(seed: u64) -> NodeKey {
    NodeKey::generate(&mut StdRng::seed_from_u64(seed))
}

fn report(k: &NodeKey, seq: u64, free: u64) -> CapacityReport {
    let stats = CapacityStats {
        donated_bytes: 1000,
        free_bytes: free,
        ..Default::default()
    };
    CapacityReport::new(k, seq, vec![], stats, "t".into(), seq * 10)
}

#[test]
fn newest_seq_wins_and_replays_are_stale() {
    let k = key(1);
    let mut t = NodeTable::new();
    assert_eq!(
        t.insert(report(&k, 2, 500), 100),
        Ok(InsertOutcome::Adopted)
    );
    assert_eq!(t.insert(report(&k, 1, 900), 200), Ok(InsertOutcome::Stale));
    assert_eq!(t.insert(report(&k, 2, 500), 300), Ok(InsertOutcome::Stale));
    let e = t.get(&k.node_id()).unwrap();
    assert_eq!(
        (e.report.seq, e.report.free_bytes, e.last_heard_ms),
        (2, 500, 100)
    );
    assert_eq!(
        t.insert(report(&k, 3, 400), 400),
        Ok(InsertOutcome::Adopted)
    );
    assert_eq!(t.get(&k.node_id()).unwrap().last_heard_ms, 400);
}

#[test]
fn forged_report_never_enters() {
    let victim = key(1);
    let attacker = key(2);
    let mut t = NodeTable::new();
    t.insert(report(&victim, 1, 10), 0).unwrap();
    let mut forged = report(&attacker, 99, 999);
    forged.node = victim.node_id();
    assert!(matches!(
        t.insert(forged.clone(), 5),
        Err(WireError::BadSignature { .. })
    ));
    assert_eq!(t.get(&victim.node_id()).unwrap().report.seq, 1);

    // Nor can it ride in on a full-table exchange.
    let bytes = to_cbor(&vec![NodeEntry {
        report: forged,
        last_heard_ms: 0,
    }]);
    assert!(matches!(
        NodeTable::decode(&bytes),
        Err(WireError::BadSignature { .. })
    ));
}

#[test]
fn liveness_follows_missed_intervals() {
    let k = key(3);
    let mut t = NodeTable::new();
    t.insert(report(&k, 1, 1), 1_000).unwrap();
    let at = |now| {
        t.state(
            &k.node_id(),
            now,
            10_000,
            DEFAULT_SUSPECT_AFTER,
            DEFAULT_DEAD_AFTER,
        )
    };
    assert_eq!(at(1_000), Liveness::Alive);
    assert_eq!(at(29_999), Liveness::Alive);
    assert_eq!(at(31_000), Liveness::Suspect);
    assert_eq!(at(101_000), Liveness::Dead);
    assert_eq!(t.state(&key(4).node_id(), 0, 10_000, 3, 10), Liveness::Dead);
    // A fresh report brings it back.
    t.insert(report(&k, 2, 1), 200_000).unwrap();
    assert_eq!(
        t.state(&k.node_id(), 200_001, 10_000, 3, 10),
        Liveness::Alive
    );
}

#[test]
fn absorb_takes_newer_reports_at_local_time() {
    let (a, b) = (key(5), key(6));
    let mut mine = NodeTable::new();
    mine.insert(report(&a, 5, 1), 10).unwrap();
    let mut peer = NodeTable::new();
    peer.insert(report(&a, 4, 1), 999).unwrap();
    peer.insert(report(&b, 1, 1), 999).unwrap();
    assert_eq!(mine.absorb(&peer, 50), 1);
    assert_eq!(mine.get(&a.node_id()).unwrap().report.seq, 5);
    assert_eq!(mine.get(&b.node_id()).unwrap().last_heard_ms, 50);
}

#[test]
fn table_round_trips_and_caps_input() {
    let mut t = NodeTable::new();
    for i in 0..5 {
        t.insert(report(&key(10 + i), i + 1, i), i * 7).unwrap();
    }
    assert_eq!(NodeTable::decode(&t.encode()), Ok(t));
    let big = vec![0x80; NodeTable::MAX_BYTES + 1];
    assert!(matches!(
        NodeTable::decode(&big),
        Err(WireError::TooLarge { .. })
    ));
    assert!(matches!(
        NodeTable::decode(b"\x9f\x01"),
        Err(WireError::Malformed { .. })
    ));
}

/// Signed reports for 3 nodes × 3 seqs, plus an equivocation (same seq,
/// other content), made once: signing in every proptest case is slow.
fn pool() -> &'static Vec<CapacityReport> {
    static POOL: OnceLock<Vec<CapacityReport>> = OnceLock::new();
    POOL.get_or_init(|| {
        let keys: Vec<NodeKey> = (0..3).map(|i| key(100 + i)).collect();
        let mut v = Vec::new();
        for k in &keys {
            for seq in 1..=3 {
                v.push(report(k, seq, seq));
            }
            v.push(report(k, 3, 77));
        }
        v
    })
}

fn arb_table() -> impl Strategy<Value = NodeTable> {
    proptest::collection::vec((0..pool().len(), 0u64..50), 0..8).prop_map(|picks| {
        let mut t = NodeTable::new();
        for (i, heard) in picks {
            t.merge(&NodeTable {
                entries: [(
                    pool()[i].node,
                    NodeEntry {
                        report: pool()[i].clone(),
                        last_heard_ms: heard,
                    },
                )]
                .into(),
            });
        }
        t
    })
}

proptest! {
    #[test]
    fn merge_laws_hold(a in arb_table(), b in arb_table(), c in arb_table()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        prop_assert_eq!(NodeTable::decode(&a.encode()), Ok(a));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Random bytes can at most spell an empty table: no unsigned entry gets in.
        prop_assert!(NodeTable::decode(&bytes).map_or(true, |t| t.is_empty()));
    }
}

#[test]
fn the_table_is_bounded_and_forgets_long_silent_nodes() {
    let mut t = NodeTable::new();
    let k = key(1);
    t.insert(report(&k, 1, 5), 100).unwrap();
    assert_eq!(t.forget_silent(1_000, 2_000), 0);
    assert_eq!(t.forget_silent(10_000, 2_000), 1);
    assert!(t.is_empty());

    // A peer's table full of made-up nodes adds at most a bounded number.
    let mut flood = NodeTable::new();
    for i in 0..(NodeTable::MAX_NEW_PER_EXCHANGE + 10) {
        let k = NodeKey::generate(&mut rand::rng());
        flood.insert(report(&k, 1, (i % 1000) as u64), 1).unwrap();
    }
    let mut mine = NodeTable::new();
    mine.insert(report(&key(2), 1, 1), 1).unwrap();
    assert_eq!(mine.absorb(&flood, 5), NodeTable::MAX_NEW_PER_EXCHANGE);
    assert_eq!(mine.len(), NodeTable::MAX_NEW_PER_EXCHANGE + 1);
}
