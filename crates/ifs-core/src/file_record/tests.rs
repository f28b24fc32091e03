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

    // A later put under the same name is live; the old chunk's entries go,
    // and its holder frees it by its binding to version 1.
    rec.add_manifest(manifest(&f.owner, 2, &[1], 40)).unwrap();
    rec.add_receipt(receipt(0, 1, 41)).unwrap();
    assert!(!rec.is_deleted());
    assert!(rec.freeable_by(&f.nodes[0].node_id()).is_empty());
    assert!(rec.past_holders(&chunk(0)).is_empty());
    assert!(rec.may_free(&chunk(0), 1));
    assert!(!rec.may_free(&chunk(1), 2));
}

/// Every overwrite used to leave the old version's receipts until their
/// holders freed the chunks, and then their releases for good: a name put
/// over and over grew its record (and every merge's signature checks)
/// without bound, until the DHT refused it.
#[test]
fn overwrites_leave_no_entries_of_old_versions() {
    let f = fx();
    let mut rec = FileRecord::new(f.owner.user_id(), NAME.into());
    let mut sizes = vec![];
    for v in 1..=10u8 {
        // Version v: two fresh chunks, a receipt from every node.
        let chunks = [2 * v, 2 * v + 1];
        let at = 1_000_000 + 100 * u64::from(v); // one CBOR width throughout
        let put = FileRecord::from_manifest(
            manifest(&f.owner, v.into(), &chunks, at),
            (0..3)
                .flat_map(|n| chunks.map(|c| receipt(n, c, at)))
                .collect(),
        )
        .unwrap();
        rec.merge(&put);
        // The holders of the previous version free their copies and say so.
        for c in [2 * v - 2, 2 * v - 1].into_iter().filter(|_| v > 1) {
            for n in 0..3 {
                let r = ChunkRelease::new(&f.nodes[n], chunk(c), f.owner.user_id(), at - 100, at);
                rec.add_release(r).unwrap();
            }
        }
        assert_eq!(rec.live_holders(&chunk(2 * v)).len(), 3);
        assert_eq!(rec.receipts().count(), 6, "version {v}");
        sizes.push(rec.encode().len());
    }
    assert!(
        sizes.windows(2).all(|w| w[0] == w[1]),
        "the record grows with overwrites: {sizes:?}"
    );
    assert_eq!(FileRecord::decode(&rec.encode()), Ok(rec.clone()));
}

/// Attack: a node key (anyone can make one) signs receipts for chunks the
/// owner never wrote, to grow a victim's record until the DHT refuses it
/// and the owner's next put cannot merge.
#[test]
fn made_up_receipts_cannot_grow_a_victims_record() {
    let f = fx();
    let attacker = node(66);
    let victim = FileRecord::from_manifest(
        manifest(&f.owner, 1, &[0], 5),
        vec![receipt(0, 0, 10), receipt(1, 0, 10)],
    )
    .unwrap();
    let size = victim.encode().len();
    let record_key = FileRecord::key(&f.owner.user_id(), NAME);
    let junk: Vec<Receipt> = (0..2_000u32)
        .map(|i| {
            let c = ChunkId::of(&i.to_le_bytes());
            Receipt::new(&attacker, c, 50, (f.owner.user_id(), record_key), 10)
        })
        .collect();

    // Added one by one, each is refused with a typed error.
    let mut rec = victim.clone();
    assert_eq!(
        rec.add_receipt(junk[0].clone()),
        Err(RecordError::NotNamed {
            chunk: junk[0].chunk,
            node: attacker.node_id()
        })
    );
    let release = ChunkRelease::new(&attacker, junk[1].chunk, f.owner.user_id(), 10, 11);
    rec.add_release(release).unwrap();
    assert_eq!(rec, victim, "a release of a chunk never named is not kept");

    // Sent as a whole record beside the victim's real manifest, the junk is
    // dropped on decode and on merge.
    let wire = FileRecordWire {
        format: FileRecord::FORMAT,
        owner: f.owner.user_id(),
        name: NAME.into(),
        manifest: victim.manifest().cloned(),
        delete: None,
        receipts: junk,
        releases: vec![],
    };
    let crafted = FileRecord::decode(&to_cbor(&wire)).unwrap();
    assert_eq!(crafted.encode().len(), manifest_only_size(&victim));
    rec.merge(&crafted);
    assert_eq!(rec, victim);
    assert_eq!(rec.encode().len(), size);
    assert_eq!(
        rec.live_holders(&chunk(0)).len(),
        2,
        "the victim's holders stay"
    );
}

fn manifest_only_size(rec: &FileRecord) -> usize {
    FileRecord::from_manifest(rec.manifest().unwrap().clone(), vec![])
        .unwrap()
        .encode()
        .len()
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
    // Without a manifest there is nothing to name the chunk: refused.
    assert!(matches!(
        rec.add_receipt(liar.clone()),
        Err(RecordError::NotNamed { .. })
    ));
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
        // Chunk 1 is carried from version 1 into both versions 2 (as `share`
        // does); 2 and 3 are each one version's own, 4 is version 3's. No
        // chunk comes back once a newer version dropped it, whichever
        // version 2 wins.
        let mut v = vec![
            Entry::M(manifest(&f.owner, 1, &[0, 1], 1)),
            Entry::M(manifest(&f.owner, 2, &[1, 2], 2)),
            Entry::M(manifest(&f.owner, 2, &[1, 3], 3)), // same version: hash decides
            Entry::M(manifest(&f.owner, 3, &[4], 4)),
            Entry::D(FileDelete::new(&f.owner, NAME.into(), 1, 5)),
            Entry::D(FileDelete::new(&f.owner, NAME.into(), 2, 6)),
        ];
        for n in 0..3 {
            for c in 0..5u8 {
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

/// Records as honest writers make them: a receipt or release enters a
/// record beside a manifest that names its chunk (a put commits its
/// receipts with its manifest; repairs and releases edit the record they
/// read). Entries made up for chunks no manifest names are the attack test's.
fn arb_record() -> impl Strategy<Value = FileRecord> {
    proptest::collection::vec(0..pool().len(), 0..12).prop_map(|picks| {
        let mut rec = FileRecord::new(fx().owner.user_id(), NAME.into());
        let beside_manifest = |rec: &FileRecord, c: &ChunkId| {
            rec.manifest().is_some_and(|m| m.chunk_len(c).is_some())
        };
        for i in picks {
            let res = match &pool()[i] {
                Entry::M(m) => rec.add_manifest(m.clone()),
                Entry::D(d) => rec.add_delete(d.clone()),
                Entry::R(r) if beside_manifest(&rec, &r.chunk) => rec.add_receipt(r.clone()),
                Entry::L(l) if beside_manifest(&rec, &l.chunk) => rec.add_release(l.clone()),
                Entry::R(_) | Entry::L(_) => Ok(()),
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
    fn merges_keep_every_receipt_the_winner_names(a in arb_record(), b in arb_record()) {
        let m = merged(&a, &b);
        for r in a.receipts().chain(b.receipts()) {
            let key = (r.chunk, r.node);
            let kept = m.receipts.get(&key).is_some_and(|k| k.stored_at_ms >= r.stored_at_ms);
            let released = m.releases.get(&key).is_some_and(|l| l.receipt_stored_at_ms >= r.stored_at_ms);
            prop_assert_eq!(kept || released, m.names(&r.chunk), "{:?}", key);
        }
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
