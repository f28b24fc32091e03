use super::*;
use crate::codec::NoncePrefix;
use crate::crdt::merged;
use crate::keys::{NodeKey, UserKey};
use crate::wire::{ChunkRef, ManifestFields, WireError};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::OnceLock;

const NAME: &str = "docs/report.pdf";

fn user(seed: u64) -> UserKey {
    UserKey::generate(&mut StdRng::seed_from_u64(seed))
}
fn node(seed: u64) -> NodeKey {
    NodeKey::generate(&mut StdRng::seed_from_u64(seed))
}
fn chunk(i: u8) -> ChunkId {
    ChunkId::of(&[i])
}

fn manifest(owner: &UserKey, version: u64, chunks: &[u8], created: u64) -> Manifest {
    Manifest::new(
        owner,
        ManifestFields {
            name: NAME.into(),
            version,
            size: 100,
            created_at_ms: created,
            segment_size: 1 << 20,
            nonce_prefix: NoncePrefix([0; 7]),
            chunks: chunks
                .iter()
                .map(|&i| ChunkRef {
                    id: chunk(i),
                    len: 50,
                })
                .collect(),
            key_wraps: vec![],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .unwrap()
}

struct Fixture {
    owner: UserKey,
    nodes: Vec<NodeKey>,
}

fn fx() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| Fixture {
        owner: user(1),
        nodes: (0..3).map(|i| node(10 + i)).collect(),
    })
}

fn receipt(n: usize, c: u8, at: u64) -> Receipt {
    Receipt::new(
        &fx().nodes[n],
        chunk(c),
        50,
        (
            fx().owner.user_id(),
            FileRecord::key(&fx().owner.user_id(), NAME),
        ),
        at,
    )
}

#[test]
fn committed_put_reports_live_replicas() {
    let f = fx();
    let m = manifest(&f.owner, 1, &[0, 1], 5);
    let rs = vec![
        receipt(0, 0, 10),
        receipt(1, 0, 10),
        receipt(2, 0, 10),
        receipt(0, 1, 10),
        receipt(1, 1, 10),
    ];
    let rec = FileRecord::from_manifest(m, rs).unwrap();
    assert_eq!(rec.record_key(), FileRecord::key(&f.owner.user_id(), NAME));
    assert_eq!(rec.live_holders(&chunk(0)).len(), 3);
    assert_eq!(rec.min_live_replicas(), Some(2));
    assert_eq!(FileRecord::decode(&rec.encode()), Ok(rec.clone()));
    assert_eq!(rec.validate(), Ok(()));
}

#[test]
fn release_cancels_only_the_receipts_it_saw() {
    let f = fx();
    let mut rec =
        FileRecord::from_manifest(manifest(&f.owner, 1, &[0], 5), vec![receipt(0, 0, 10)]).unwrap();
    let release = ChunkRelease::new(&f.nodes[0], chunk(0), f.owner.user_id(), 10, 11);
    rec.add_release(release).unwrap();
    assert!(rec.live_holders(&chunk(0)).is_empty());
    // The node stores the chunk again later (repair): the new receipt wins.
    rec.add_receipt(receipt(0, 0, 20)).unwrap();
    assert_eq!(rec.live_holders(&chunk(0)), vec![f.nodes[0].node_id()]);
}

#[test]
fn delete_hides_the_file_and_frees_its_chunks() {
    let f = fx();
    let mut rec =
        FileRecord::from_manifest(manifest(&f.owner, 1, &[0], 5), vec![receipt(0, 0, 10)]).unwrap();
    rec.add_delete(FileDelete::new(&f.owner, NAME.into(), 1, 30))
        .unwrap();
    assert!(rec.is_deleted());
    assert_eq!(rec.live_manifest(), None);
    assert_eq!(rec.min_live_replicas(), None);
    assert_eq!(rec.freeable_by(&f.nodes[0].node_id()), vec![chunk(0)]);
    assert_eq!(rec.next_version(), 2);

    // A later put under the same name is live, and the old chunk stays freeable.
    rec.add_manifest(manifest(&f.owner, 2, &[1], 40)).unwrap();
    rec.add_receipt(receipt(0, 1, 41)).unwrap();
    assert!(!rec.is_deleted());
    assert_eq!(rec.freeable_by(&f.nodes[0].node_id()), vec![chunk(0)]);
}

#[test]
fn entries_signed_by_the_wrong_key_never_enter() {
    let f = fx();
    let thief = user(99);
    let mut rec = FileRecord::from_manifest(manifest(&f.owner, 1, &[0], 5), vec![]).unwrap();

    let mut forged = manifest(&thief, 9, &[7], 5);
    forged.owner = f.owner.user_id();
    assert!(matches!(
        rec.add_manifest(forged.clone()),
        Err(RecordError::Wire(WireError::BadSignature { .. }))
    ));
    // The thief's own, validly signed manifest belongs to another record.
    let own = manifest(&thief, 9, &[7], 5);
    assert_eq!(
        rec.add_manifest(own),
        Err(RecordError::ForeignOwner { what: "manifest" })
    );
    assert_eq!(rec.manifest().unwrap().version, 1);

    let mut fake_delete = FileDelete::new(&thief, NAME.into(), 5, 1);
    fake_delete.owner = f.owner.user_id();
    assert!(rec.add_delete(fake_delete).is_err());
    let mut fake_release = ChunkRelease::new(&node(98), chunk(0), f.owner.user_id(), 99, 99);
    fake_release.node = f.nodes[0].node_id();
    assert!(rec.add_release(fake_release).is_err());

    // A record carrying a forged manifest is refused as a whole.
    let wire = FileRecordWire {
        format: FileRecord::FORMAT,
        owner: f.owner.user_id(),
        name: NAME.into(),
        manifest: Some(forged),
        delete: None,
        receipts: vec![],
        releases: vec![],
    };
    assert!(FileRecord::decode(&to_cbor(&wire)).is_err());
}

#[test]
fn only_the_live_version_grants_fetch_and_only_to_its_readers() {
    let f = fx();
    let (grantee, stranger) = (user(50), user(51));
    let mut rec = FileRecord::from_manifest(manifest(&f.owner, 1, &[0], 5), vec![]).unwrap();
    let (owner, g) = (f.owner.user_id(), grantee.user_id());
    assert!(rec.grants_fetch(&chunk(0), &owner));
    assert!(!rec.grants_fetch(&chunk(0), &g));

    // Share: the next version lists the grantee as a reader.
    let mut fields = rec.manifest().unwrap().fields();
    fields.version = 2;
    fields.readers.push(g);
    rec.add_manifest(Manifest::new(&f.owner, fields).unwrap())
        .unwrap();
    assert!(rec.grants_fetch(&chunk(0), &g));
    assert!(!rec.grants_fetch(&chunk(0), &stranger.user_id()));
    assert!(
        !rec.grants_fetch(&chunk(9), &g),
        "a chunk the file does not list"
    );

    // A grantee cannot add another reader: the edit breaks the owner's signature.
    let mut tampered = rec.manifest().unwrap().clone();
    tampered.version = 3;
    tampered.readers.push(stranger.user_id());
    assert!(matches!(
        rec.add_manifest(tampered),
        Err(RecordError::Wire(WireError::BadSignature { .. }))
    ));
    assert!(!rec.grants_fetch(&chunk(0), &stranger.user_id()));

    // Revoke: a re-keyed version with new chunks and without the grantee.
    rec.add_manifest(manifest(&f.owner, 3, &[1], 40)).unwrap();
    assert!(!rec.grants_fetch(&chunk(1), &g));
    assert!(!rec.grants_fetch(&chunk(0), &g), "old chunks grant nothing");
    assert!(!rec.grants_fetch(&chunk(0), &owner));
    assert!(rec.grants_fetch(&chunk(1), &owner));

    // Deleted: nobody is granted anything.
    rec.add_delete(FileDelete::new(&f.owner, NAME.into(), 3, 50))
        .unwrap();
    assert!(!rec.grants_fetch(&chunk(1), &owner));
}

#[test]
fn receipt_with_wrong_length_does_not_count() {
    let f = fx();
    let mut rec = FileRecord::new(f.owner.user_id(), NAME.into());
    let liar = Receipt::new(
        &f.nodes[1],
        chunk(0),
        9999,
        (f.owner.user_id(), FileRecord::key(&f.owner.user_id(), NAME)),
        10,
    );
    rec.add_receipt(liar.clone()).unwrap(); // no manifest yet to compare with
    rec.add_manifest(manifest(&f.owner, 1, &[0], 5)).unwrap();
    assert!(rec.live_holders(&chunk(0)).is_empty());
    let mut fresh = FileRecord::from_manifest(manifest(&f.owner, 1, &[0], 5), vec![]).unwrap();
    assert_eq!(
        fresh.add_receipt(liar),
        Err(RecordError::LengthMismatch {
            chunk: chunk(0),
            node: f.nodes[1].node_id()
        })
    );
}

#[test]
fn oversized_and_garbage_records_are_typed_errors() {
    let big = vec![0u8; FileRecord::MAX_BYTES + 1];
    assert!(matches!(
        FileRecord::decode(&big),
        Err(RecordError::Wire(WireError::TooLarge { .. }))
    ));
    assert!(matches!(
        FileRecord::decode(b"\xa1\x00"),
        Err(RecordError::Wire(WireError::Malformed { .. }))
    ));
}

/// A pool of signed entries, made once, that random records draw from.
enum Entry {
    M(Manifest),
    D(FileDelete),
    R(Receipt),
    L(ChunkRelease),
}

fn pool() -> &'static Vec<Entry> {
    static POOL: OnceLock<Vec<Entry>> = OnceLock::new();
    POOL.get_or_init(|| {
        let f = fx();
        let mut v = vec![
            Entry::M(manifest(&f.owner, 1, &[0, 1], 1)),
            Entry::M(manifest(&f.owner, 2, &[1, 2], 2)),
            Entry::M(manifest(&f.owner, 2, &[2, 3], 3)), // same version: hash decides
            Entry::D(FileDelete::new(&f.owner, NAME.into(), 1, 5)),
            Entry::D(FileDelete::new(&f.owner, NAME.into(), 2, 6)),
        ];
        for n in 0..3 {
            for c in 0..3u8 {
                v.push(Entry::R(receipt(n, c, 10)));
                v.push(Entry::R(receipt(n, c, 20)));
            }
            v.push(Entry::L(ChunkRelease::new(
                &f.nodes[n],
                chunk(1),
                f.owner.user_id(),
                10,
                15,
            )));
            v.push(Entry::L(ChunkRelease::new(
                &f.nodes[n],
                chunk(2),
                f.owner.user_id(),
                20,
                25,
            )));
        }
        v
    })
}

fn arb_record() -> impl Strategy<Value = FileRecord> {
    proptest::collection::vec(0..pool().len(), 0..10).prop_map(|picks| {
        let mut rec = FileRecord::new(fx().owner.user_id(), NAME.into());
        for i in picks {
            let res = match &pool()[i] {
                Entry::M(m) => rec.add_manifest(m.clone()),
                Entry::D(d) => rec.add_delete(d.clone()),
                Entry::R(r) => rec.admit_receipt(r.clone()),
                Entry::L(l) => rec.add_release(l.clone()),
            };
            assert_eq!(res, Ok(()));
        }
        rec
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_laws_hold(a in arb_record(), b in arb_record(), c in arb_record()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
    }

    #[test]
    fn encode_decode_round_trips(a in arb_record(), b in arb_record()) {
        let m = merged(&a, &b);
        if m.manifest().is_none() && m.delete().is_none() {
            // Nothing the owner signed: no node keeps or accepts it.
            prop_assert_eq!(FileRecord::decode(&m.encode()), Err(RecordError::Unsigned));
            prop_assert_eq!(m.validate(), Err(RecordError::Unsigned));
        } else {
            prop_assert_eq!(FileRecord::decode(&m.encode()), Ok(m.clone()));
            prop_assert_eq!(m.validate(), Ok(()));
        }
    }

    #[test]
    fn garbage_never_yields_entries(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(rec) = FileRecord::decode(&bytes) {
            prop_assert!(rec.manifest().is_none() && rec.receipts().next().is_none());
        }
    }
}
