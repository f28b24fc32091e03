use super::*;
use crate::ChunkId;
use crate::codec::NoncePrefix;
use crate::crdt::merged;
use crate::file_record::FileRecord;
use crate::wire::{ChunkRef, ManifestFields};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::OnceLock;

fn owner() -> &'static UserKey {
    static K: OnceLock<UserKey> = OnceLock::new();
    K.get_or_init(|| UserKey::generate(&mut StdRng::seed_from_u64(1)))
}

fn manifest(name: &str, version: u64, size: u64) -> Manifest {
    Manifest::new(
        owner(),
        ManifestFields {
            name: name.into(),
            version,
            size,
            created_at_ms: version * 10,
            segment_size: 1 << 20,
            nonce_prefix: NoncePrefix([0; 7]),
            chunks: vec![ChunkRef {
                id: ChunkId::of(name.as_bytes()),
                len: size + 16,
            }],
            key_wraps: vec![],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .unwrap()
}

#[test]
fn a_live_entry_must_follow_the_name_rule_and_a_delete_need_not() {
    let k = owner();
    let bad = DirEntry::signed(k, "/abs\u{1b}[2J".into(), 1, 5, 1, false, 10);
    assert!(matches!(
        DirEntry::decode(&bad.encode()),
        Err(WireError::BadName { .. })
    ));
    assert!(matches!(bad.verify(), Err(WireError::BadName { .. })));
    // A file named before the rule can still be removed.
    let gone = DirEntry::deleted(k, "/abs".into(), 1, 10);
    assert_eq!(gone.verify(), Ok(()));
    let mut dir = DirRecord::new(k.user_id());
    assert!(dir.insert(bad).is_err());
    assert_eq!(dir.insert(gone), Ok(()));
}

#[test]
fn ls_shows_newest_versions_and_hides_deleted_files() {
    let k = owner();
    let mut dir = DirRecord::new(k.user_id());
    dir.insert(DirEntry::live(k, &manifest("a", 1, 10)))
        .unwrap();
    dir.insert(DirEntry::live(k, &manifest("a", 2, 20)))
        .unwrap();
    dir.insert(DirEntry::live(k, &manifest("a", 1, 10)))
        .unwrap(); // late copy
    dir.insert(DirEntry::live(k, &manifest("b", 1, 5))).unwrap();
    dir.insert(DirEntry::deleted(k, "b".into(), 1, 99)).unwrap();
    let ls: Vec<(&str, u64, u64)> = dir
        .live()
        .map(|e| (e.name.as_str(), e.version, e.size))
        .collect();
    assert_eq!(ls, vec![("a", 2, 20)]);
    assert!(dir.get("b").unwrap().deleted);
    // A new put of "b" after the delete reappears.
    dir.insert(DirEntry::live(k, &manifest("b", 2, 6))).unwrap();
    assert_eq!(dir.live().count(), 2);
    assert_eq!(DirRecord::decode(&dir.encode()), Ok(dir.clone()));
    assert_ne!(
        DirRecord::key(&k.user_id()),
        FileRecord::key(&k.user_id(), "")
    );
}

#[test]
fn foreign_or_forged_entries_are_refused() {
    let k = owner();
    let other = UserKey::generate(&mut StdRng::seed_from_u64(2));
    let mut dir = DirRecord::new(k.user_id());
    let theirs = DirEntry::live(&other, &manifest("x", 1, 1));
    assert_eq!(
        dir.insert(theirs.clone()),
        Err(RecordError::ForeignOwner { what: WHAT })
    );
    let mut forged = theirs;
    forged.owner = k.user_id();
    assert!(matches!(
        dir.insert(forged),
        Err(RecordError::Wire(WireError::BadSignature { .. }))
    ));
    assert!(dir.entries().next().is_none());
    assert!(matches!(
        DirRecord::decode(&[0u8; 10]),
        Err(RecordError::Wire(_))
    ));
    let big = vec![0u8; DirRecord::MAX_BYTES + 1];
    assert!(matches!(
        DirRecord::decode(&big),
        Err(RecordError::Wire(WireError::TooLarge { .. }))
    ));
}

fn pool() -> &'static Vec<DirEntry> {
    static P: OnceLock<Vec<DirEntry>> = OnceLock::new();
    P.get_or_init(|| {
        let k = owner();
        let mut v = Vec::new();
        for name in ["a", "b"] {
            for version in 1..=2 {
                v.push(DirEntry::live(k, &manifest(name, version, version)));
                v.push(DirEntry::live(k, &manifest(name, version, version + 100)));
                v.push(DirEntry::deleted(k, name.into(), version, 7));
            }
        }
        v
    })
}

fn arb_dir() -> impl Strategy<Value = DirRecord> {
    proptest::collection::vec(0..pool().len(), 0..8).prop_map(|picks| {
        let mut d = DirRecord::new(owner().user_id());
        for i in picks {
            assert_eq!(d.insert(pool()[i].clone()), Ok(()));
        }
        d
    })
}

proptest! {
    #[test]
    fn merge_laws_hold(a in arb_dir(), b in arb_dir(), c in arb_dir()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        prop_assert_eq!(DirRecord::decode(&a.encode()), Ok(a));
    }
}
