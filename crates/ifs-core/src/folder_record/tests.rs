use super::*;
use crate::crdt::merged;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::OnceLock;

fn owner() -> &'static UserKey {
    static K: OnceLock<UserKey> = OnceLock::new();
    K.get_or_init(|| UserKey::generate(&mut StdRng::seed_from_u64(1)))
}

fn root() -> FolderKey {
    FolderKey::root(owner())
}

fn file(name: &str, size: u64) -> Child {
    Child {
        name: name.into(),
        kind: ChildKind::File,
        size,
        chunks: 1,
        readers: vec![],
        handle: None,
        pack: None,
        props: vec![],
    }
}

fn entry(
    folder: &FolderKey,
    child: &Child,
    version: u64,
    deleted: bool,
    at_ms: u64,
) -> FolderEntry {
    let mut rng = StdRng::seed_from_u64(version ^ at_ms ^ child.size);
    FolderEntry::seal(
        owner(),
        folder,
        child,
        EntryFields {
            version,
            deleted,
            at_ms,
            rev: 0,
        },
        &mut rng,
    )
}

/// `child` with dead property `name` = `value`, sealed at `version` with
/// properties revision `rev`.
fn with_prop(
    folder: &FolderKey,
    child: &Child,
    version: u64,
    rev: u64,
    value: &str,
) -> FolderEntry {
    let child = Child {
        props: vec![prop("color", value)],
        ..child.clone()
    };
    let mut rng = StdRng::seed_from_u64(version ^ rev << 8);
    FolderEntry::seal(
        owner(),
        folder,
        &child,
        EntryFields {
            version,
            deleted: false,
            at_ms: 50 + rev,
            rev,
        },
        &mut rng,
    )
}

fn prop(name: &str, value: &str) -> DeadProp {
    DeadProp {
        namespace: Some("urn:example".into()),
        prefix: Some("x".into()),
        name: name.into(),
        xml: Some(serde_bytes::ByteBuf::from(
            format!(r#"<x:{name} xmlns:x="urn:example">{value}</x:{name}>"#).into_bytes(),
        )),
    }
}

fn record(folder: &FolderKey) -> FolderRecord {
    FolderRecord::new(owner().user_id(), folder.locator())
}

#[test]
fn keys_are_stable_per_user_and_distinct_per_folder_and_name() {
    let r = root();
    assert_eq!(r, FolderKey::root(owner()));
    let other = UserKey::generate(&mut StdRng::seed_from_u64(9));
    assert_ne!(r, FolderKey::root(&other));
    let photos = r.child("photos");
    assert_ne!(photos, r.child("photo"));
    assert_ne!(photos.locator(), r.locator());
    assert_eq!(
        FolderKey::of_parent(&r, "photos/2024/a.jpg"),
        photos.child("2024")
    );
    assert_eq!(FolderKey::of_parent(&r, "a.jpg"), r);
    // A file `a` and a folder `a/` have different slots.
    assert_ne!(r.slot("a", ChildKind::File), r.slot("a", ChildKind::Folder));
    assert_ne!(
        r.slot("a", ChildKind::File),
        photos.slot("a", ChildKind::File)
    );
    assert_eq!(split_path("a/b/c"), (vec!["a", "b"], "c"));
    assert_eq!(split_path("c"), (vec![], "c"));
}

#[test]
fn an_entry_opens_only_with_its_folder_key_and_hides_the_name() {
    let photos = root().child("photos");
    let e = entry(&photos, &file("holiday-in-rome.jpg", 7), 1, false, 10);
    assert_eq!(e.open(&photos), Ok(file("holiday-in-rome.jpg", 7)));
    assert_eq!(e.open(&root()), Err(OpenError::Decrypt));
    let bytes = e.encode();
    assert!(!bytes.windows(7).any(|w| w == b"holiday"));
    assert!(!bytes.windows(6).any(|w| w == b"photos"));
    // The version is bound into the ciphertext: a changed one fails to open
    // (and its signature fails too).
    let mut bumped = e.clone();
    bumped.version = 2;
    assert_eq!(bumped.open(&photos), Err(OpenError::Decrypt));
    assert!(matches!(
        bumped.verify(),
        Err(WireError::BadSignature { .. })
    ));
}

#[test]
fn a_sealed_name_must_hash_to_its_slot() {
    let r = root();
    let mut e = entry(&r, &file("a", 1), 1, false, 10);
    e.slot = r.slot("b", ChildKind::File);
    e.sig = owner().sign(domain::FOLDER_ENTRY, &e.signed_bytes());
    // Re-seal would be needed for the AAD; a moved entry never opens.
    assert!(e.open(&r).is_err());
}

#[test]
fn newest_version_wins_and_a_delete_hides_a_file() {
    let r = root();
    let mut rec = record(&r);
    rec.insert(entry(&r, &file("a", 1), 1, false, 10)).unwrap();
    rec.insert(entry(&r, &file("a", 2), 2, false, 20)).unwrap();
    rec.insert(entry(&r, &file("a", 1), 1, false, 10)).unwrap(); // late copy
    rec.insert(entry(&r, &file("b", 5), 1, false, 10)).unwrap();
    rec.insert(entry(&r, &file("b", 0), 1, true, 30)).unwrap();
    assert_eq!(rec.len(), 2);
    let a = rec.get(&r.slot("a", ChildKind::File)).unwrap();
    assert_eq!((a.version, a.open(&r).unwrap().size), (2, 2));
    assert!(rec.get(&r.slot("b", ChildKind::File)).unwrap().deleted);
    assert_eq!(FolderRecord::decode(&rec.encode()), Ok(rec.clone()));
}

#[test]
fn foreign_moved_or_forged_entries_are_refused() {
    let r = root();
    let mut rec = record(&r);
    let other = UserKey::generate(&mut StdRng::seed_from_u64(2));
    let theirs = FolderEntry::seal(
        &other,
        &r,
        &file("x", 1),
        EntryFields {
            version: 1,
            deleted: false,
            at_ms: 1,
            rev: 0,
        },
        &mut StdRng::seed_from_u64(3),
    );
    assert_eq!(
        rec.insert(theirs.clone()),
        Err(RecordError::ForeignOwner { what: WHAT })
    );
    // An entry of another folder cannot be moved into this one.
    let elsewhere = entry(&r.child("d"), &file("x", 1), 1, false, 1);
    assert_eq!(
        rec.insert(elsewhere),
        Err(RecordError::ForeignRecord { what: WHAT })
    );
    let mut forged = theirs;
    forged.owner = owner().user_id();
    assert!(matches!(
        rec.insert(forged),
        Err(RecordError::Wire(WireError::BadSignature { .. }))
    ));
    assert!(rec.is_empty());
    assert!(FolderRecord::decode(&[0u8; 10]).is_err());
    let big = vec![0u8; FolderRecord::MAX_BYTES + 1];
    assert!(matches!(
        FolderRecord::decode(&big),
        Err(RecordError::Wire(WireError::TooLarge { .. }))
    ));
}

#[test]
fn another_format_is_refused() {
    let r = root();
    let wire = FolderRecordWire {
        format: FORMAT + 1,
        owner: owner().user_id(),
        locator: r.locator(),
        entries: vec![],
    };
    assert_eq!(
        FolderRecord::decode(&to_cbor(&wire)),
        Err(RecordError::Format {
            found: FORMAT + 1,
            supported: FORMAT
        })
    );
}

#[test]
fn a_folder_refuses_entries_beyond_its_cap() {
    let r = root();
    let mut rec = record(&r);
    let one = entry(&r, &file("a", 1), 1, false, 1);
    for i in 0..FolderRecord::MAX_ENTRIES {
        let mut e = one.clone();
        e.slot = *blake3::hash(&i.to_le_bytes()).as_bytes();
        rec.entries.insert(e.slot, e);
    }
    let late = entry(&r, &file("late", 1), 1, false, 1);
    assert_eq!(
        rec.insert(late),
        Err(RecordError::OverLimit("too many entries in one folder"))
    );
}

#[test]
fn compaction_drops_only_old_deletion_markers() {
    let r = root();
    let mut rec = record(&r);
    let now = 100 * DELETE_GRACE_MS;
    rec.insert(entry(
        &r,
        &file("old", 0),
        1,
        true,
        now - DELETE_GRACE_MS - 1,
    ))
    .unwrap();
    rec.insert(entry(&r, &file("recent", 0), 1, true, now - 5))
        .unwrap();
    rec.insert(entry(&r, &file("live", 3), 1, false, 1))
        .unwrap();
    assert_eq!(rec.compact(now), 1);
    assert!(rec.get(&r.slot("old", ChildKind::File)).is_none());
    assert!(rec.get(&r.slot("recent", ChildKind::File)).unwrap().deleted);
    assert!(!rec.get(&r.slot("live", ChildKind::File)).unwrap().deleted);
    // Within the grace period an older live copy cannot bring "recent" back.
    let mut late = rec.clone();
    late.insert(entry(&r, &file("recent", 3), 1, false, 1))
        .unwrap();
    assert!(
        late.get(&r.slot("recent", ChildKind::File))
            .unwrap()
            .deleted
    );
}

fn pool() -> &'static Vec<FolderEntry> {
    static P: OnceLock<Vec<FolderEntry>> = OnceLock::new();
    P.get_or_init(|| {
        let r = root();
        let mut v = Vec::new();
        for name in ["a", "b"] {
            for version in 1..=2 {
                v.push(entry(&r, &file(name, version), version, false, version));
                v.push(entry(
                    &r,
                    &file(name, version + 100),
                    version,
                    false,
                    version,
                ));
                v.push(entry(&r, &file(name, 0), version, true, 7));
                v.push(with_prop(&r, &file(name, version), version, 1, "red"));
                v.push(with_prop(&r, &file(name, version), version, 2, "blue"));
            }
        }
        v
    })
}

fn arb_folder() -> impl Strategy<Value = FolderRecord> {
    proptest::collection::vec(0..pool().len(), 0..8).prop_map(|picks| {
        let mut d = record(&root());
        for i in picks {
            assert_eq!(d.insert(pool()[i].clone()), Ok(()));
        }
        d
    })
}

proptest! {
    #[test]
    fn merge_laws_hold(a in arb_folder(), b in arb_folder(), c in arb_folder()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        prop_assert_eq!(FolderRecord::decode(&a.encode()), Ok(a));
    }

    #[test]
    fn compacting_before_or_after_a_merge_keeps_every_surviving_slot(a in arb_folder(), b in arb_folder(), now in 0u64..20) {
        // Nodes compact at different moments: whatever survives a merge
        // then compaction also survives compacting each copy first.
        let now = now + DELETE_GRACE_MS;
        let mut ab = merged(&a, &b);
        ab.compact(now);
        let (mut ca, mut cb) = (a.clone(), b.clone());
        ca.compact(now);
        cb.compact(now);
        let mut each = merged(&ca, &cb);
        each.compact(now);
        for e in ab.entries() {
            prop_assert!(each.get(&e.slot).is_some());
        }
    }
}

fn packed(name: &str, size: u64, offset: u64) -> Child {
    Child {
        pack: Some(PackSlice {
            handle: "ab".repeat(32),
            version: 3,
            offset,
            len: size,
            hash: [7; 32],
        }),
        chunks: 0,
        ..file(name, size)
    }
}

#[test]
fn a_packed_child_round_trips_and_an_entry_without_a_pack_still_opens() {
    let r = root();
    let c = packed("small.txt", 4096, 8192);
    let e = entry(&r, &c, 2, false, 5);
    e.verify().unwrap();
    assert_eq!(e.open(&r).unwrap(), c);
    // Entries written before packs existed hold no `pack` field at all.
    let plain = file("old.txt", 10);
    let old = entry(&r, &plain, 1, false, 5);
    assert_eq!(old.open(&r).unwrap().pack, None);
}

#[test]
fn a_pack_slice_that_disagrees_with_its_child_is_refused() {
    let r = root();
    // A slice longer than the file it describes.
    let mut c = packed("a", 10, 0);
    c.pack.as_mut().unwrap().len = 11;
    assert_eq!(
        entry(&r, &c, 1, false, 1).open(&r),
        Err(OpenError::WrongSlot)
    );
    // A slice whose end overflows.
    let c = packed("b", 10, u64::MAX - 3);
    assert_eq!(
        entry(&r, &c, 1, false, 1).open(&r),
        Err(OpenError::WrongSlot)
    );
    // A handle longer than any handle.
    let mut c = packed("c", 10, 0);
    c.pack.as_mut().unwrap().handle = "a".repeat(65);
    assert_eq!(
        entry(&r, &c, 1, false, 1).open(&r),
        Err(OpenError::WrongSlot)
    );
}

#[test]
fn a_copy_decoded_against_a_known_one_still_verifies_what_is_new() {
    let r = root();
    let a = entry(&r, &file("a", 1), 1, false, 1);
    let mut known = record(&r);
    known.insert(a.clone()).unwrap();
    // Unchanged entries are accepted as the known copy holds them.
    let same = FolderRecord::decode_against(&known.encode(), &known).unwrap();
    assert_eq!(same.get(&a.slot), Some(&a));
    // A forged entry in another slot is refused.
    let mut forged = entry(&r, &file("b", 2), 1, false, 1);
    forged.sealed[20] ^= 1;
    let mut wire = known.clone();
    wire.entries.insert(forged.slot, forged);
    assert!(FolderRecord::decode_against(&wire.encode(), &known).is_err());
    // So is a forged entry in the known entry's own slot.
    let mut changed = a.clone();
    changed.version = 9;
    let mut wire = record(&r);
    wire.entries.insert(changed.slot, changed);
    assert!(FolderRecord::decode_against(&wire.encode(), &known).is_err());
}

#[test]
fn one_forged_entry_among_many_fails_the_whole_copy() {
    // The entries are checked as one batch: a single bad signature among
    // valid ones must still refuse the copy, and name no valid entry.
    let r = root();
    let mut rec = record(&r);
    for i in 0..64u64 {
        rec.insert(entry(&r, &file(&format!("f{i}"), i), 1, false, 1))
            .unwrap();
    }
    let good = rec.encode();
    assert_eq!(FolderRecord::decode(&good).unwrap().len(), 64);
    let mut forged = entry(&r, &file("x", 5), 2, false, 2);
    forged.version = 3; // signed at 2: the signature no longer matches
    let mut bad = rec.clone();
    bad.entries.insert(forged.slot, forged);
    assert!(FolderRecord::decode(&bad.encode()).is_err());
    // Another owner's key cannot sign into this record either.
    let other = UserKey::generate(&mut StdRng::seed_from_u64(77));
    let foreign = FolderEntry::seal(
        &other,
        &r,
        &file("y", 1),
        EntryFields {
            version: 1,
            deleted: false,
            at_ms: 1,
            rev: 0,
        },
        &mut StdRng::seed_from_u64(3),
    );
    let mut bad = rec.clone();
    bad.entries.insert(foreign.slot, foreign);
    assert!(FolderRecord::decode(&bad.encode()).is_err());
}

#[test]
fn a_property_change_outranks_its_version_but_not_a_delete_or_a_newer_version() {
    let r = root();
    let a = file("a", 3);
    let plain = entry(&r, &a, 1, false, 10);
    let red = with_prop(&r, &a, 1, 1, "red");
    let blue = with_prop(&r, &a, 1, 2, "blue");
    let slot = r.slot("a", ChildKind::File);
    let colour = |rec: &FolderRecord| {
        let e = rec.get(&slot).unwrap();
        if e.deleted {
            return "deleted".to_string();
        }
        let c = e.open(&r).unwrap();
        assert_eq!((e.version, c.size), (e.version, 3), "content untouched");
        c.props
            .first()
            .map(|p| String::from_utf8(p.xml.clone().unwrap().into_vec()).unwrap())
            .unwrap_or_default()
    };
    // In every order the latest revision wins.
    for order in [
        [&plain, &red, &blue],
        [&blue, &red, &plain],
        [&red, &blue, &plain],
    ] {
        let mut rec = record(&r);
        for e in order {
            rec.insert(e.clone()).unwrap();
        }
        assert!(colour(&rec).contains("blue"), "{}", colour(&rec));
    }
    // A delete of that version, or a new version, outranks any revision.
    let mut rec = record(&r);
    rec.insert(blue.clone()).unwrap();
    rec.insert(entry(&r, &file("a", 0), 1, true, 5)).unwrap();
    assert_eq!(colour(&rec), "deleted");
    let mut rec = record(&r);
    rec.insert(blue.clone()).unwrap();
    rec.insert(entry(&r, &file("a", 3), 2, false, 5)).unwrap();
    assert_eq!(rec.get(&slot).unwrap().version, 2);
    assert_eq!(colour(&rec), "");
}

#[test]
fn a_node_cannot_raise_strip_or_lower_a_revision() {
    // A node holding the folder would like an old value to win again: it
    // raises the revision of the older entry, or strips the newer one's.
    let r = root();
    let a = file("a", 3);
    let red = with_prop(&r, &a, 1, 1, "red");
    let blue = with_prop(&r, &a, 1, 2, "blue");
    let mut raised = red.clone();
    raised.rev = 9;
    let mut stripped = blue.clone();
    stripped.rev = 0;
    for forged in [raised, stripped] {
        assert!(forged.verify().is_err());
        let mut rec = record(&r);
        rec.insert(blue.clone()).unwrap();
        assert!(rec.insert(forged.clone()).is_err());
        let copy = FolderRecordWire {
            format: FORMAT,
            owner: owner().user_id(),
            locator: r.locator(),
            entries: vec![forged],
        };
        assert!(FolderRecord::decode(&to_cbor(&copy)).is_err());
        assert_eq!(rec.get(&blue.slot), Some(&blue));
    }
    // Replaying the older revision changes nothing.
    let mut rec = record(&r);
    rec.insert(blue.clone()).unwrap();
    rec.insert(red).unwrap();
    assert_eq!(rec.get(&blue.slot), Some(&blue));
}

#[test]
fn a_record_is_format_1_until_an_entry_has_a_revision_and_both_formats_read() {
    let r = root();
    let format = |rec: &FolderRecord| {
        from_cbor::<FolderRecordWire>(&rec.encode(), FolderRecord::MAX_BYTES, "t")
            .unwrap()
            .format
    };
    let mut rec = record(&r);
    rec.insert(entry(&r, &file("a", 1), 1, false, 10)).unwrap();
    assert_eq!(format(&rec), OLDEST_FORMAT);
    // An entry without a revision encodes as format 1 wrote it: no field
    // a format-1 build does not know.
    let plain = rec.get(&r.slot("a", ChildKind::File)).unwrap().encode();
    assert!(!plain.windows(3).any(|w| w == b"rev"));
    assert_eq!(FolderRecord::decode(&rec.encode()), Ok(rec.clone()));
    rec.insert(with_prop(&r, &file("b", 1), 1, 1, "red"))
        .unwrap();
    assert_eq!(format(&rec), FORMAT);
    assert_eq!(FolderRecord::decode(&rec.encode()), Ok(rec.clone()));
}

#[test]
fn properties_beyond_the_caps_are_never_opened() {
    let r = root();
    let many: Vec<DeadProp> = (0..=MAX_PROPS)
        .map(|i| prop(&format!("p{i}"), "v"))
        .collect();
    let big = vec![prop("big", &"v".repeat(MAX_PROPS_BYTES))];
    let twice = vec![prop("p", "1"), prop("p", "2")];
    assert!(props_fit(&many[..MAX_PROPS]));
    for props in [many, big, twice] {
        assert!(!props_fit(&props));
        let child = Child {
            props,
            ..file("a", 1)
        };
        let e = FolderEntry::seal(
            owner(),
            &r,
            &child,
            EntryFields {
                version: 1,
                deleted: false,
                at_ms: 1,
                rev: 1,
            },
            &mut StdRng::seed_from_u64(3),
        );
        assert_eq!(e.open(&r), Err(OpenError::Malformed));
    }
}
