use super::*;
use crate::codec::NoncePrefix;
use crate::keys::{NodeKey, UserKey};
use crate::placement::AddrRange;
use crate::wire::{ChunkRef, ChunkRelease, FileDelete, Manifest, ManifestFields, Receipt};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NAME: &str = "photos/cat.jpg";

fn owner() -> UserKey {
    UserKey::generate(&mut StdRng::seed_from_u64(7))
}

/// Node keys sorted by node id, so index 0 is the lowest.
fn nodes(n: usize) -> Vec<NodeKey> {
    let mut v: Vec<NodeKey> = (0..n)
        .map(|i| NodeKey::generate(&mut StdRng::seed_from_u64(100 + i as u64)))
        .collect();
    v.sort_by_key(|k| k.node_id());
    v
}

fn chunk(i: u8) -> ChunkId {
    ChunkId::of(&[i])
}

fn record(owner: &UserKey, chunks: &[u8], holders: &[(usize, u8)], keys: &[NodeKey]) -> FileRecord {
    let m = Manifest::new(
        owner,
        ManifestFields {
            name: NAME.into(),
            version: 1,
            size: 10,
            created_at_ms: 1,
            segment_size: 1 << 20,
            nonce_prefix: NoncePrefix([0; 7]),
            chunks: chunks
                .iter()
                .map(|&i| ChunkRef {
                    id: chunk(i),
                    len: 40 + u64::from(i),
                })
                .collect(),
            key_wraps: vec![],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .unwrap();
    let receipts = holders
        .iter()
        .map(|&(n, c)| {
            let bound = (owner.user_id(), FileRecord::key(&owner.user_id(), NAME));
            Receipt::new(&keys[n], chunk(c), 40 + u64::from(c), bound, 5)
        })
        .collect();
    FileRecord::from_manifest(m, receipts).unwrap()
}

#[test]
fn lowest_live_holder_repairs_under_replicated_chunks_only() {
    let o = owner();
    let k = nodes(5);
    let id = |i: usize| k[i].node_id();
    // chunk 1 on 0,1,2; chunk 2 on 1,2,3.
    let rec = record(
        &o,
        &[1, 2],
        &[(0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2)],
        &k,
    );
    let all_live = |_: &NodeId| true;
    for me in 0..5 {
        assert!(repair_plan(&rec, all_live, 3, &id(me)).is_empty());
    }
    // Node 0 dies: chunk 1 has 2 live holders; node 1 is now lowest.
    let dead0 = |n: &NodeId| *n != id(0);
    assert!(repair_plan(&rec, dead0, 3, &id(0)).is_empty());
    assert!(repair_plan(&rec, dead0, 3, &id(2)).is_empty());
    let plan = repair_plan(&rec, dead0, 3, &id(1));
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].chunk, chunk(1));
    assert_eq!(plan[0].len, 41);
    assert_eq!(plan[0].missing, 1);
    assert_eq!(plan[0].live, vec![id(1), id(2)]);
    assert_eq!(plan[0].holders, vec![id(0), id(1), id(2)]);
    // Higher target: both chunks need copies, each assigned to its lowest.
    assert_eq!(repair_plan(&rec, all_live, 4, &id(0)).len(), 1);
    assert_eq!(repair_plan(&rec, all_live, 4, &id(1)).len(), 1);
}

#[test]
fn released_copies_do_not_count_and_deleted_files_need_nothing() {
    let o = owner();
    let k = nodes(3);
    let mut rec = record(&o, &[1], &[(0, 1), (1, 1), (2, 1)], &k);
    rec.add_release(ChunkRelease::new(&k[0], chunk(1), o.user_id(), 5, 9))
        .unwrap();
    let plan = repair_plan(&rec, |_| true, 3, &k[1].node_id());
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].missing, 1);
    assert!(
        plan[0].holders.contains(&k[0].node_id()),
        "past holders are excluded as targets"
    );
    rec.add_delete(FileDelete::new(&o, NAME.into(), 1, 10))
        .unwrap();
    assert!(repair_plan(&rec, |_| false, 3, &k[1].node_id()).is_empty());
}

#[test]
fn release_needs_a_copy_unless_others_suffice() {
    let o = owner();
    let k = nodes(4);
    let rec = record(&o, &[1], &[(0, 1), (1, 1), (2, 1)], &k);
    let me = k[0].node_id();
    assert!(needs_copy_before_release(&rec, &chunk(1), |_| true, 3, &me));
    assert!(!needs_copy_before_release(
        &rec,
        &chunk(1),
        |_| true,
        2,
        &me
    ));
    let rec4 = record(&o, &[1], &[(0, 1), (1, 1), (2, 1), (3, 1)], &k);
    assert!(!needs_copy_before_release(
        &rec4,
        &chunk(1),
        |_| true,
        3,
        &me
    ));
    let dead3 = |n: &NodeId| *n != k[3].node_id();
    assert!(needs_copy_before_release(&rec4, &chunk(1), dead3, 3, &me));
}

#[test]
fn offload_moves_largest_chunks_until_the_excess_is_covered() {
    let held = [
        (chunk(1), 10),
        (chunk(2), 30),
        (chunk(3), 20),
        (chunk(4), 30),
    ];
    assert!(offload_plan(&held, 0).is_empty());
    let p = offload_plan(&held, 35);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|c| *c == chunk(2) || *c == chunk(4)));
    assert_eq!(offload_plan(&held, 1000).len(), 4);
    assert_eq!(offload_plan(&held, 1), offload_plan(&held, 1));
}

fn cand(rtt: f64, free: u64, rep: f64, range: u8) -> Candidate {
    Candidate {
        rtt_ms: Some(rtt),
        hops: Some(0),
        free_bytes: free,
        owner_need_pct: 0,
        reputation: rep,
        range: Some(AddrRange::V4([10, 0, range])),
        alive: true,
        up_bps: 0,
        down_bps: 0,
    }
}

#[test]
fn targets_skip_holders_full_and_distrusted_nodes() {
    let k = nodes(5);
    let id = |i: usize| k[i].node_id();
    let cands = vec![
        (id(0), cand(1.0, 1000, 1.0, 0)),
        (id(1), cand(1.0, 10, 1.0, 1)),    // no space
        (id(2), cand(1.0, 1000, 0.05, 2)), // failed audits
        (id(3), cand(5.0, 1000, 1.0, 3)),
        (id(4), cand(1.0, 1000, 1.0, 4)),
    ];
    let t = pick_targets(&cands, &[id(0)], 100, 5);
    assert_eq!(t, vec![id(4), id(3)]);
    assert_eq!(pick_targets(&cands, &[id(0)], 100, 1), vec![id(4)]);
    assert!(pick_targets(&cands, &[id(0), id(3), id(4)], 100, 3).is_empty());
}

#[test]
fn failed_targets_are_skipped_for_a_while_and_bounded() {
    let k = nodes(2);
    let (a, b) = (k[0].node_id(), k[1].node_id());
    let mut f = FailedTargets::new();
    f.failed(a, 1_000, 500);
    assert!(f.skips(&a, 1_000) && f.skips(&a, 1_499));
    assert!(!f.skips(&a, 1_500), "the window ends");
    assert!(!f.skips(&b, 1_000), "only the node that failed");
    f.failed(b, 1_000, 500);
    f.succeeded(&b);
    assert!(!f.skips(&b, 1_000), "a success clears it");

    // Full: the entry that ends first makes room; expired ones go first.
    let mut f = FailedTargets::new();
    for i in 0..FailedTargets::MAX as u64 {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_le_bytes());
        f.failed(NodeId(id), 10, 1_000 + i);
    }
    f.failed(a, 10, 10_000);
    assert_eq!(f.len(), FailedTargets::MAX);
    assert!(f.skips(&a, 10));
    assert!(
        !f.skips(&NodeId([0; 32]), 10),
        "the earliest ending entry left"
    );
    f.failed(b, 5_000, 10);
    assert!(f.len() < FailedTargets::MAX, "expired entries are dropped");
}

#[test]
fn only_the_highest_live_holder_trims_and_never_below_the_target() {
    let o = owner();
    let k = nodes(6);
    let id = |i: usize| k[i].node_id();
    // chunk 1 on 0,1,2,3 (one copy too many); chunk 2 on 1,2,3 (enough).
    let rec = record(
        &o,
        &[1, 2],
        &[(0, 1), (1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)],
        &k,
    );
    let all = |_: &NodeId| true;
    for me in 0..3 {
        assert!(
            trim_plan(&rec, all, all, 3, &id(me)).is_empty(),
            "node {me}"
        );
    }
    assert_eq!(trim_plan(&rec, all, all, 3, &id(3)), vec![chunk(1)]);
    // A suspect co-holder still counts as a holder (node 3 stays highest)
    // but not as a sure copy: node 3 keeps its own.
    let suspect0 = |n: &NodeId| *n != id(0);
    assert!(trim_plan(&rec, all, suspect0, 3, &id(3)).is_empty());
    // Node 3 seen dead by node 2: node 2 is the highest it counts, but
    // without node 3 there is no surplus, so nothing goes.
    let dead3 = |n: &NodeId| *n != id(3);
    assert!(trim_plan(&rec, dead3, dead3, 3, &id(2)).is_empty());
    // A higher target trims nothing.
    assert!(trim_plan(&rec, all, all, 4, &id(3)).is_empty());
}
