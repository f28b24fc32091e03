use super::*;
use crate::codec::NoncePrefix;
use crate::ids::{ChunkId, NodeId, UserId};
use crate::keys::{NodeKey, UserKey, wrap_key};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn node(seed: u64) -> NodeKey {
    NodeKey::generate(&mut StdRng::seed_from_u64(seed))
}

fn user(seed: u64) -> UserKey {
    UserKey::generate(&mut StdRng::seed_from_u64(seed))
}

fn report(key: &NodeKey, seq: u64) -> CapacityReport {
    let stats = CapacityStats {
        donated_bytes: 100,
        free_bytes: 60,
        used_bytes: 30,
        reserved_bytes: 10,
        ..Default::default()
    };
    CapacityReport::new(
        key,
        seq,
        vec!["/ip4/127.0.0.1/tcp/4001".into()],
        stats,
        "0.1.0".into(),
        1_000,
    )
}

fn manifest(owner: &UserKey, version: u64) -> Manifest {
    let wrap = wrap_key(
        &[9; 32],
        &owner.x25519_public(),
        &mut StdRng::seed_from_u64(99),
    )
    .unwrap();
    Manifest::new(
        owner,
        ManifestFields {
            name: "photos/cat.jpg".into(),
            version,
            size: 10,
            created_at_ms: 5,
            segment_size: 8 << 20,
            nonce_prefix: NoncePrefix([1; 7]),
            chunks: vec![ChunkRef {
                id: ChunkId::of(b"c0"),
                len: 42,
            }],
            key_wraps: vec![wrap],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .unwrap()
}

#[test]
fn capacity_report_round_trips_and_detects_tampering() {
    let r = report(&node(1), 7);
    assert_eq!(r.verify(), Ok(()));
    let back = CapacityReport::decode(&r.encode()).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.stats().free_bytes, 60);

    let mut inflated = r.clone();
    inflated.free_bytes = 90;
    assert!(matches!(
        inflated.verify(),
        Err(WireError::BadSignature { .. })
    ));

    // Claiming another node's identity with one's own signature fails.
    let mut forged = report(&node(2), 8);
    forged.node = r.node;
    assert!(matches!(
        forged.verify(),
        Err(WireError::BadSignature { .. })
    ));
}

/// The report as nodes wrote it before the download cap: the same fields
/// minus `bandwidth_down_bps`, signed over the same tuple.
#[derive(serde::Serialize, serde::Deserialize)]
struct ReportBeforeCaps {
    node: NodeId,
    seq: u64,
    addrs: Vec<String>,
    donated_bytes: u64,
    used_bytes: u64,
    reserved_bytes: u64,
    free_bytes: u64,
    owner_need_pct: u8,
    bandwidth_bps: u64,
    uptime_s: u64,
    version: String,
    issued_at_ms: u64,
    sig: crate::keys::Sig,
}

fn signed_before_caps(r: &ReportBeforeCaps) -> Vec<u8> {
    to_cbor(&(
        &r.node,
        r.seq,
        &r.addrs,
        (
            r.donated_bytes,
            r.used_bytes,
            r.reserved_bytes,
            r.free_bytes,
        ),
        r.owner_need_pct,
        r.bandwidth_bps,
        r.uptime_s,
        &r.version,
        r.issued_at_ms,
    ))
}

#[test]
fn reports_written_before_bandwidth_caps_still_decode_and_verify() {
    let key = node(3);
    let mut old = ReportBeforeCaps {
        node: key.node_id(),
        seq: 4,
        addrs: vec!["/ip4/10.0.0.1/tcp/4100".into()],
        donated_bytes: 100,
        used_bytes: 30,
        reserved_bytes: 10,
        free_bytes: 60,
        owner_need_pct: 5,
        bandwidth_bps: 0,
        uptime_s: 9,
        version: "0.1.0".into(),
        issued_at_ms: 1_000,
        sig: crate::keys::Sig([0; 64]),
    };
    old.sig = key.sign(crate::keys::domain::CAPACITY, &signed_before_caps(&old));
    let r = CapacityReport::decode(&to_cbor(&old)).unwrap();
    assert_eq!(r.verify(), Ok(()));
    assert_eq!(r.bandwidth_down_bps, None);
    assert_eq!(r.stats().bandwidth_bps, 0, "no upload cap: unlimited");

    // A report without a download cap is, byte for byte, what older nodes
    // write and sign, so they verify it too.
    let stats = CapacityStats {
        donated_bytes: 100,
        used_bytes: 30,
        reserved_bytes: 10,
        free_bytes: 60,
        owner_need_pct: 5,
        bandwidth_bps: 8_000_000,
        bandwidth_down_bps: 0,
        uptime_s: 9,
    };
    let new = CapacityReport::new(&key, 5, old.addrs.clone(), stats, "0.1.0".into(), 1_000);
    let seen_by_old: ReportBeforeCaps = from_cbor(&new.encode(), 8192, "old").unwrap();
    assert_eq!(to_cbor(&seen_by_old), new.encode());
    crate::keys::verify(
        key.node_id().as_bytes(),
        crate::keys::domain::CAPACITY,
        &signed_before_caps(&seen_by_old),
        &seen_by_old.sig,
    )
    .unwrap();
}

#[test]
fn bandwidth_caps_are_signed() {
    let key = node(3);
    let stats = CapacityStats {
        donated_bytes: 100,
        free_bytes: 100,
        bandwidth_bps: 8_000_000,
        bandwidth_down_bps: 20_000_000,
        ..Default::default()
    };
    let r = CapacityReport::new(&key, 1, vec![], stats, "0.1.0".into(), 1_000);
    let back = CapacityReport::decode(&r.encode()).unwrap();
    assert_eq!(back.verify(), Ok(()));
    assert_eq!(back.stats(), stats);
    // Raising, dropping or zeroing a cap breaks the signature or the rules.
    for down in [Some(40_000_000), None] {
        let mut t = back.clone();
        t.bandwidth_down_bps = down;
        assert!(matches!(t.verify(), Err(WireError::BadSignature { .. })));
    }
    let mut t = back.clone();
    t.bandwidth_bps = 80_000_000;
    assert!(matches!(t.verify(), Err(WireError::BadSignature { .. })));
    t.bandwidth_down_bps = Some(0);
    assert!(matches!(
        CapacityReport::decode(&t.encode()),
        Err(WireError::Invalid { .. })
    ));
}

#[test]
fn capacity_report_rules_are_enforced_on_decode() {
    let mut r = report(&node(1), 1);
    r.owner_need_pct = 101;
    assert!(matches!(
        CapacityReport::decode(&r.encode()),
        Err(WireError::Invalid { .. })
    ));
    let mut r = report(&node(1), 1);
    r.addrs = vec!["x".repeat(300)];
    assert!(matches!(
        CapacityReport::decode(&r.encode()),
        Err(WireError::Invalid { .. })
    ));
}

#[test]
fn decode_rejects_oversized_garbage_and_trailing_input() {
    let big = vec![0u8; CapacityReport::MAX_BYTES + 1];
    assert_eq!(
        CapacityReport::decode(&big),
        Err(WireError::TooLarge {
            what: "capacity report",
            len: big.len(),
            max: CapacityReport::MAX_BYTES
        })
    );
    assert!(matches!(
        Receipt::decode(b"\xff\x00garbage"),
        Err(WireError::Malformed { .. })
    ));
    let mut bytes = Receipt::new(
        &node(1),
        ChunkId::of(b"x"),
        1,
        (user(2).user_id(), [5; 32]),
        3,
    )
    .encode();
    bytes.push(0);
    assert_eq!(
        Receipt::decode(&bytes),
        Err(WireError::TrailingBytes { what: "receipt" })
    );
}

#[test]
fn receipt_and_grant_are_signed_by_the_node() {
    let n = node(3);
    let owner = user(4).user_id();
    let rc = Receipt::new(&n, ChunkId::of(b"data"), 4, (owner, [6; 32]), 10);
    assert_eq!(Receipt::decode(&rc.encode()).unwrap().verify(), Ok(()));
    let mut moved = rc.clone();
    moved.chunk = ChunkId::of(b"other");
    assert!(moved.verify().is_err());
    // Nor can a receipt be moved into another file record.
    let mut rebound = rc.clone();
    rebound.record = [7; 32];
    assert!(rebound.verify().is_err());

    let g = ReservationGrant::new(&n, [5; 16], owner, 1 << 20, 2_000);
    assert_eq!(
        ReservationGrant::decode(&g.encode()).unwrap().verify(),
        Ok(())
    );
    assert!(!g.is_expired(1_999));
    assert!(g.is_expired(2_000));
    let mut bigger = g;
    bigger.bytes *= 2;
    assert!(bigger.verify().is_err());
}

#[test]
fn header_chain_is_forwarded_hop_by_hop_without_resigning() {
    let owner = user(10);
    let nodes: Vec<NodeKey> = (0..3).map(|i| node(20 + i)).collect();
    let hops: Vec<ChainHop> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| ChainHop {
            node: n.node_id(),
            reservation_id: [i as u8; 16],
        })
        .collect();
    let chain = HeaderChain::new(&owner, ChunkId::of(b"c"), 100, ([1; 32], 1), hops).unwrap();

    let mut at = HeaderChain::decode(&chain.encode()).unwrap();
    for (i, n) in nodes.iter().enumerate() {
        let mine = at.accept(&n.node_id()).unwrap();
        assert_eq!(mine.reservation_id, [i as u8; 16]);
        assert_eq!(at.position_of(&n.node_id()), Some(i));
        assert_eq!(at.remaining().len(), 3 - i);
        // A node that is not at the cursor is refused.
        let other = &nodes[(i + 1) % 3];
        assert!(at.accept(&other.node_id()).is_err());
        match at.forwarded() {
            Some(next) => {
                assert_eq!(next.current(), at.next_hop());
                at = HeaderChain::decode(&next.encode()).unwrap();
            }
            None => assert_eq!(i, 2),
        }
    }
}

#[test]
fn header_chain_rejects_bad_routes_and_forgery() {
    let owner = user(10);
    let hop = ChainHop {
        node: node(1).node_id(),
        reservation_id: [0; 16],
    };
    assert!(HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![]).is_err());
    assert!(HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![hop, hop]).is_err());

    let mut c = HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![hop]).unwrap();
    c.hops[0].reservation_id = [1; 16];
    assert!(matches!(c.verify(), Err(WireError::BadSignature { .. })));
    // The binding to a record and version is signed too.
    let mut c = HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![hop]).unwrap();
    c.record = [2; 32];
    assert!(matches!(c.verify(), Err(WireError::BadSignature { .. })));
    let mut c = HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![hop]).unwrap();
    c.version = 2;
    assert!(matches!(c.verify(), Err(WireError::BadSignature { .. })));
    let mut c = HeaderChain::new(&owner, ChunkId::of(b"c"), 1, ([1; 32], 1), vec![hop]).unwrap();
    c.cursor = 5;
    assert!(matches!(
        HeaderChain::decode(&c.encode()),
        Err(WireError::Invalid { .. })
    ));
}

#[test]
fn a_manifest_whose_name_breaks_the_rule_is_neither_built_nor_accepted() {
    let owner = user(70);
    let good = manifest(&owner, 1);
    let long = "n".repeat(MAX_NAME_LEN + 1);
    for bad in ["", "/etc/passwd", "a/../b", "dir/", "x\u{1b}[2J", &long] {
        let mut f = good.fields();
        f.name = bad.into();
        assert!(
            matches!(Manifest::new(&owner, f), Err(WireError::BadName { .. })),
            "{bad:?} built"
        );
        let mut m = good.clone();
        m.name = bad.into();
        assert!(
            matches!(m.verify(), Err(WireError::BadName { .. })),
            "{bad:?} verified"
        );
        assert!(Manifest::decode(&m.encode()).is_err(), "{bad:?} decoded");
    }
}

#[test]
fn manifest_round_trips_and_grants_access() {
    let owner = user(30);
    let stranger = user(31);
    let m = manifest(&owner, 1);
    let back = Manifest::decode(&m.encode()).unwrap();
    assert_eq!(back.verify(), Ok(()));
    assert!(back.may_read(&owner.user_id()));
    assert!(!back.may_read(&stranger.user_id()));
    let wrap = back.wrap_for(&owner.x25519_public()).unwrap();
    assert_eq!(owner.unwrap_key(wrap), Ok([9; 32]));
    assert_eq!(back.chunk_len(&ChunkId::of(b"c0")), Some(42));

    let mut widened = back;
    widened.readers.push(stranger.user_id());
    assert!(matches!(
        widened.verify(),
        Err(WireError::BadSignature { .. })
    ));
}

#[test]
fn tombstones_verify_against_the_right_key() {
    let owner = user(40);
    let d = Tombstone::Delete(FileDelete::new(&owner, "a".into(), 3, 9));
    assert_eq!(Tombstone::decode(&d.encode()).unwrap().verify(), Ok(()));
    let holder = node(41);
    let r = ChunkRelease::new(&holder, ChunkId::of(b"x"), owner.user_id(), 5, 6);
    let mut stolen = r.clone();
    stolen.node = node(42).node_id();
    assert_eq!(Tombstone::Release(r).verify(), Ok(()));
    assert!(Tombstone::Release(stolen).verify().is_err());
    let mut forged = FileDelete::new(&user(43), "a".into(), 3, 9);
    forged.owner = owner.user_id();
    assert!(forged.verify().is_err());
}

#[test]
fn fetch_request_names_node_and_time() {
    let req = user(50);
    let f = FetchRequest::new(
        &req,
        ChunkId::of(b"x"),
        [1; 32],
        NodeId([2; 32]),
        1_000,
        [3; 16],
    );
    assert_eq!(FetchRequest::decode(&f.encode()).unwrap().verify(), Ok(()));
    assert!(f.is_fresh(1_500, 1_000));
    assert!(!f.is_fresh(5_000, 1_000));
    let mut elsewhere = f;
    elsewhere.node = NodeId([4; 32]);
    assert!(elsewhere.verify().is_err());
    let _ = UserId([0; 32]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = CapacityReport::decode(&bytes);
        let _ = ReservationGrant::decode(&bytes);
        let _ = HeaderChain::decode(&bytes);
        let _ = Receipt::decode(&bytes);
        let _ = Manifest::decode(&bytes);
        let _ = Tombstone::decode(&bytes);
        // Whatever parses from noise never verifies.
        prop_assert!(Receipt::decode(&bytes).map_or(true, |r| r.verify().is_err()));
        prop_assert!(Manifest::decode(&bytes).map_or(true, |m| m.verify().is_err()));
    }

    #[test]
    fn flipping_any_byte_of_a_receipt_never_verifies_as_changed(pos in 0usize..200, bit in 0u8..8) {
        let rc = Receipt::new(&node(60), ChunkId::of(b"p"), 77, (user(61).user_id(), [3; 32]), 5);
        let mut bytes = rc.encode();
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(back) = Receipt::decode(&bytes) {
            // Either the flip hit nothing semantic, or the signature catches it.
            prop_assert!(back == rc || back.verify().is_err());
        }
    }
}
