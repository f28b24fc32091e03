//! What the fuzz targets in `fuzz_targets/` check, shared so that a target
//! for a message also runs the checks of every record the message carries.
//!
//! Each function decodes its input through the same entry point the node or
//! client uses, and where the input decodes it goes on as a caller would
//! (structure checks, signature checks, accessors) and checks that the value
//! re-encodes to bytes that decode again to the same encoding. Decoding must
//! never panic; a panic or a failed check is a finding.

use std::fmt::Debug;

use ifs_core::admin::AdminRequest;
use ifs_core::audit::AuditChallenge;
use ifs_core::crdt::{Crdt, merged};
use ifs_core::dir_record::{DirEntry, DirRecord};
use ifs_core::file_record::FileRecord;
use ifs_core::folder_record::{FolderKey, FolderRecord};
use ifs_core::ids::{ChunkId, NodeId, UserId};
use ifs_core::keys::{NodeKey, UserKey};
use ifs_core::node_table::NodeTable;
use ifs_core::proto::{self, RecordKey};
use ifs_core::wire::{
    CapacityReport, ChunkRelease, FetchRequest, FileDelete, HeaderChain, Manifest, Receipt,
    ReservationGrant, Tombstone,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

// The node's config parser lives in the binary crate; its two pure modules
// are compiled in here so the target needs none of the node's networking.
#[allow(dead_code, unused_imports)]
#[path = "../../node/src/volume.rs"]
mod volume;

#[allow(dead_code, unused_imports)]
#[path = "../../node/src/config.rs"]
mod config;

// The hop probe's datagram codec, likewise, without the rest of ifs-net.
#[allow(dead_code)]
#[path = "../../crates/ifs-net/src/hops/wire.rs"]
mod hop_wire;

/// Encode `value`, decode the bytes again and check that the second value
/// encodes to the same bytes; returns the second value.
pub fn stable<T, E: Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> T {
    let bytes = encode(value);
    let again = decode(&bytes)
        .unwrap_or_else(|e| panic!("the re-encoding of a decoded value does not decode: {e:?}"));
    assert_eq!(encode(&again), bytes, "re-encoding is not stable");
    again
}

/// [`stable`] for a protocol message decoded with `proto::decode`.
pub fn stable_msg<T: Serialize + DeserializeOwned>(value: &T, cap: usize) -> T {
    stable(value, |v| proto::encode(v), |b| proto::decode::<T>(b, cap))
}

/// [`stable`] for a type with `PartialEq`, checking the values are equal too.
pub fn same<T: PartialEq + Debug, E: Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) {
    let again = stable(value, encode, decode);
    assert_eq!(&again, value, "a re-encoded value decodes to another value");
}

/// A file record as a DHT node or a client takes it in.
pub fn file_record(bytes: &[u8]) -> Option<FileRecord> {
    let rec = FileRecord::decode(bytes).ok()?;
    rec.validate()
        .expect("a decoded file record validates (decode checks every entry)");
    let _ = (rec.record_key(), rec.next_version(), rec.is_deleted());
    let _ = (rec.live_manifest(), rec.delete(), rec.min_live_replicas());
    if let Some(m) = rec.manifest() {
        manifest_checks(m);
        for c in &m.chunks {
            rec.live_holders(&c.id);
            rec.grants_fetch(&c.id, rec.owner());
        }
    }
    for r in rec.receipts() {
        rec.live_holders(&r.chunk);
        rec.live_receipt(&r.chunk, &r.node);
        rec.freeable_by(&r.node);
    }
    same(&rec, FileRecord::encode, FileRecord::decode);
    assert_eq!(merged(&rec, &rec), rec, "merge is not idempotent");
    Some(rec)
}

/// A directory record as a DHT node or a client takes it in.
pub fn dir_record(bytes: &[u8]) -> Option<DirRecord> {
    let rec = DirRecord::decode(bytes).ok()?;
    rec.validate()
        .expect("a decoded directory record validates (decode checks every entry)");
    let _ = DirRecord::key(rec.owner());
    for e in rec.entries() {
        e.verify().expect("a decoded directory entry verifies");
        assert!(rec.get(&e.name).is_some(), "an entry is not found by name");
    }
    let _ = rec.live().count();
    same(&rec, DirRecord::encode, DirRecord::decode);
    assert_eq!(merged(&rec, &rec), rec, "merge is not idempotent");
    Some(rec)
}

/// A folder record as a DHT node takes it in: decode, validate, compact,
/// and (with a key that is not the folder's) try to open each entry.
pub fn folder_record(bytes: &[u8]) -> Option<FolderRecord> {
    let rec = FolderRecord::decode(bytes).ok()?;
    rec.validate()
        .expect("a decoded folder record validates (decode checks every entry)");
    let stranger = FolderKey::from_bytes([7; 32]);
    for e in rec.entries() {
        assert!(rec.get(&e.slot).is_some(), "an entry is not found by slot");
        let _ = e.open(&stranger);
    }
    same(&rec, FolderRecord::encode, FolderRecord::decode);
    assert_eq!(merged(&rec, &rec), rec, "merge is not idempotent");
    let mut compacted = rec.clone();
    compacted.compact(u64::MAX);
    assert!(compacted.entries().all(|e| !e.deleted), "a marker survived");
    Some(rec)
}

/// One directory entry on its own.
pub fn dir_entry(bytes: &[u8]) {
    let Ok(e) = DirEntry::decode(bytes) else {
        return;
    };
    let _ = e.verify();
    same(&e, DirEntry::encode, DirEntry::decode);
}

/// A DHT record value under `key`, as `PutRecord` hands it to a node.
pub fn record(key: &[u8], value: &[u8]) {
    match RecordKey::from_bytes(key) {
        Some(RecordKey::File(k)) => {
            if let Some(rec) = file_record(value) {
                let _ = rec.record_key() == k;
            }
        }
        Some(RecordKey::Dir(owner)) => {
            if let Some(rec) = dir_record(value) {
                let _ = *rec.owner() == owner;
            }
        }
        Some(RecordKey::Folder(locator)) => {
            if let Some(rec) = folder_record(value) {
                let _ = *rec.locator() == locator;
            }
        }
        None => {
            // The node refuses foreign keys but a record may still be parsed.
            file_record(value);
            dir_record(value);
            folder_record(value);
        }
    }
}

/// A full node table from a `TableExchange` or from disk.
pub fn node_table(bytes: &[u8]) {
    let Ok(t) = NodeTable::decode(bytes) else {
        return;
    };
    for (node, e) in t.iter() {
        e.report
            .verify()
            .expect("a decoded table holds verified reports");
        for now in [0, e.last_heard_ms, u64::MAX] {
            t.state(node, now, 10_000, 3, 10);
            t.state(node, now, 0, 0, 0);
        }
    }
    let _ = (t.len(), t.is_empty());
    same(&t, NodeTable::encode, NodeTable::decode);
    assert_eq!(merged(&t, &t), t, "merge is not idempotent");
    let mut absorbed = NodeTable::new();
    absorbed.absorb(&t, u64::MAX);
    absorbed.merge(&t);
}

/// A signed capacity report (gossip, node table rows).
pub fn capacity_report(bytes: &[u8]) {
    let Ok(r) = CapacityReport::decode(bytes) else {
        return;
    };
    let _ = r.verify();
    let _ = r.stats();
    same(&r, CapacityReport::encode, CapacityReport::decode);
}

fn manifest_checks(m: &Manifest) {
    let _ = m.verify();
    let _ = (m.hash(), m.fields(), m.stored_bytes());
    let _ = m.may_read(&m.owner);
    let _ = m.may_read(&UserId([0; 32]));
    let _ = m.wrap_for(&[0; 32]);
    for c in &m.chunks {
        assert!(m.chunk_len(&c.id).is_some(), "a listed chunk has no length");
    }
}

/// An owner-signed manifest.
pub fn manifest(bytes: &[u8]) {
    let Ok(m) = Manifest::decode(bytes) else {
        return;
    };
    manifest_checks(&m);
    same(&m, Manifest::encode, Manifest::decode);
}

/// Either tombstone, and each kind on its own.
pub fn tombstone(bytes: &[u8]) {
    if let Ok(t) = Tombstone::decode(bytes) {
        let _ = t.verify();
        same(&t, Tombstone::encode, Tombstone::decode);
    }
    if let Ok(d) = FileDelete::decode(bytes) {
        let _ = d.verify();
        same(&d, FileDelete::encode, FileDelete::decode);
    }
    if let Ok(r) = ChunkRelease::decode(bytes) {
        let _ = r.verify();
        same(&r, ChunkRelease::encode, ChunkRelease::decode);
    }
}

/// A holder's receipt.
pub fn receipt(bytes: &[u8]) {
    let Ok(r) = Receipt::decode(bytes) else {
        return;
    };
    receipt_checks(&r);
}

fn receipt_checks(r: &Receipt) {
    let _ = r.verify();
    // Unchecked when it came inside a message: re-check before comparing.
    if Receipt::decode(&r.encode()).is_ok() {
        same(r, Receipt::encode, Receipt::decode);
    }
}

/// A node's reservation grant.
pub fn reservation_grant(bytes: &[u8]) {
    let Ok(g) = ReservationGrant::decode(bytes) else {
        return;
    };
    grant_checks(&g);
}

fn grant_checks(g: &ReservationGrant) {
    let _ = g.verify();
    let _ = (g.is_expired(0), g.is_expired(u64::MAX));
    if ReservationGrant::decode(&g.encode()).is_ok() {
        same(g, ReservationGrant::encode, ReservationGrant::decode);
    }
}

/// A header chain, as the first frame of a store stream carries it.
pub fn header_chain(bytes: &[u8]) {
    let Ok(c) = HeaderChain::decode(bytes) else {
        return;
    };
    chain_checks(&c);
}

fn chain_checks(c: &HeaderChain) {
    // A chain inside a `StreamOpen` is parsed but not yet checked: the node
    // calls `accept` (structure, signature, addressee) before anything else,
    // so every accessor must be safe on an unchecked chain.
    let checked = HeaderChain::decode(&c.encode()).is_ok();
    let _ = c.verify();
    let current = c.current();
    if let Some(hop) = current {
        let _ = c.accept(&hop.node);
    }
    let _ = c.accept(&NodeId([0; 32]));
    let _ = (c.next_hop(), c.remaining());
    let forwarded = c.forwarded();
    if !checked {
        return;
    }
    let hop = current.expect("a checked chain has a current hop");
    assert_eq!(c.position_of(&hop.node), Some(c.cursor as usize));
    assert_eq!(c.remaining().first(), Some(&hop));
    if let Some(next) = forwarded {
        assert_eq!(next.current(), c.next_hop());
        same(&next, HeaderChain::encode, HeaderChain::decode);
    }
    same(c, HeaderChain::encode, HeaderChain::decode);
}

/// A signed fetch request.
pub fn fetch_request(bytes: &[u8]) {
    let Ok(r) = FetchRequest::decode(bytes) else {
        return;
    };
    fetch_checks(&r);
}

fn fetch_checks(r: &FetchRequest) {
    let _ = r.verify();
    for now in [0, r.issued_at_ms, u64::MAX] {
        let _ = r.is_fresh(now, 60_000);
        let _ = r.is_fresh(now, u64::MAX);
    }
    if FetchRequest::decode(&r.encode()).is_ok() {
        same(r, FetchRequest::encode, FetchRequest::decode);
    }
}

/// An audit challenge as a holder answers it.
pub fn audit_challenge(bytes: &[u8]) {
    let Ok(c) = proto::decode::<AuditChallenge>(bytes, proto::MAX_CTL_REQUEST) else {
        return;
    };
    audit_checks(&c);
}

fn audit_checks(c: &AuditChallenge) {
    let copy = [0x5a; 4096];
    for len in [0u64, 1, 4096, u64::MAX] {
        let _ = c.check(len);
    }
    if let Ok(proof) = c.answer(&copy) {
        assert!(
            c.verify(&copy, &proof),
            "a holder's own answer does not verify"
        );
    }
    let _ = c.answer(&[]);
    same(
        c,
        |v| proto::encode(v),
        |b| proto::decode::<AuditChallenge>(b, proto::MAX_CTL_REQUEST),
    );
}

/// An operator's signed admin request.
pub fn admin_request(bytes: &[u8]) {
    let Ok(a) = AdminRequest::decode(bytes) else {
        return;
    };
    admin_checks(&a);
}

fn admin_checks(a: &AdminRequest) {
    for now in [0, a.issued_at_ms, u64::MAX] {
        let _ = a.verify_for(&a.node, now, 60_000);
        let _ = a.verify_for(&NodeId([0; 32]), now, u64::MAX);
    }
    same(a, AdminRequest::encode, AdminRequest::decode);
}

/// A control request, as a node's `/ifs/ctl/1` handler takes it in.
pub fn ctl_request(bytes: &[u8]) {
    use ifs_core::proto::CtlRequest as R;
    let Ok(req) = proto::decode::<R>(bytes, proto::MAX_CTL_REQUEST) else {
        return;
    };
    match &req {
        R::TableExchange { table, .. } => node_table(table),
        R::GetRecord { key, .. } => {
            let _ = RecordKey::from_bytes(key);
        }
        R::PutRecord { key, value, .. } => record(key, value),
        R::Forget { tombstone: t, .. } => tombstone(t),
        R::Audit(c) => audit_checks(c),
        R::Admin(a) => admin_checks(a),
        // The rest carry plain numbers and ids.
        _ => {}
    }
    stable_msg(&req, proto::MAX_CTL_REQUEST);
}

/// A control response, as a client or a node takes it in.
pub fn ctl_response(bytes: &[u8]) {
    use ifs_core::proto::CtlResponse as R;
    let Ok(resp) = proto::decode::<R>(bytes, proto::MAX_CTL_RESPONSE) else {
        return;
    };
    match &resp {
        R::Table { table, .. } => node_table(table),
        R::Granted(g) => grant_checks(g),
        R::Record(Some(value)) => {
            file_record(value);
            dir_record(value);
        }
        _ => {}
    }
    stable_msg(&resp, proto::MAX_CTL_RESPONSE);
}

/// The first frame of a chunk stream, as a node's `/ifs/chunk/1` handler
/// takes it in.
pub fn stream_open(bytes: &[u8]) {
    use ifs_core::proto::StreamOpen as S;
    let Ok(open) = proto::decode::<S>(bytes, proto::MAX_STREAM_FRAME) else {
        return;
    };
    match &open {
        S::Store { chain, .. } => chain_checks(chain),
        S::Fetch(r) => fetch_checks(r),
        _ => {}
    }
    stable_msg(&open, proto::MAX_STREAM_FRAME);
}

/// The reply frame after a stored chunk.
pub fn store_reply(bytes: &[u8]) {
    let Ok(reply) = proto::decode::<proto::StoreReply>(bytes, proto::MAX_STREAM_FRAME) else {
        return;
    };
    for r in &reply.receipts {
        receipt_checks(r);
    }
    stable_msg(&reply, proto::MAX_STREAM_FRAME);
}

/// The reply frame to a fetch.
pub fn fetch_reply(bytes: &[u8]) {
    let Ok(reply) = proto::decode::<proto::FetchReply>(bytes, proto::MAX_STREAM_FRAME) else {
        return;
    };
    stable_msg(&reply, proto::MAX_STREAM_FRAME);
}

/// A reputation row from the node's local table.
pub fn reputation(bytes: &[u8]) {
    use ifs_core::reputation::ReputationRecord;
    let Ok(r) = ReputationRecord::decode(bytes) else {
        return;
    };
    for f in [
        r.score(),
        r.audit_factor(),
        r.get_factor(),
        r.uptime_factor(),
    ] {
        assert!(
            f.is_nan() || (0.0..=1.0).contains(&f),
            "factor {f} out of 0..=1"
        );
    }
    let mut next = r;
    next.record_liveness(true, u64::MAX);
    next.record_liveness(false, 0);
    same(&r, ReputationRecord::encode, ReputationRecord::decode);
}

/// A raw row of the store's local table (chunks, then reservations).
pub fn store_row(bytes: &[u8]) {
    ifs_store::fuzz_row(ifs_store::RowKind::Chunk, bytes);
    ifs_store::fuzz_row(ifs_store::RowKind::Reservation, bytes);
}

/// `config.toml`, as `ifsnode` loads it; a loaded config must write back
/// to text that loads to the same config.
pub fn node_config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(c) = config::Config::parse(text) else {
        return;
    };
    let written = c.to_toml().expect("a loaded config serializes");
    let again = config::Config::parse(&written)
        .unwrap_or_else(|e| panic!("a written config does not load: {e:#}\n{written}"));
    assert_eq!(again, c, "a written config loads to another config");
}

/// The node's and the user's key files.
pub fn node_key(bytes: &[u8]) {
    if let Ok(k) = NodeKey::from_bytes(bytes) {
        assert_eq!(k.to_bytes().as_slice(), bytes);
        let _ = k.node_id();
    }
    if let Ok(k) = UserKey::from_bytes(bytes) {
        assert_eq!(k.to_bytes(), bytes);
        let _ = (k.user_id(), k.x25519_public());
    }
}

/// Two or three file records of one file from one input, merged in every
/// order: merges must commute, associate and be idempotent, and a merged
/// record must re-encode to itself.
///
/// Input: `len_a` (u16 LE), `a`, `len_b` (u16 LE), `b`, then `c` (may be empty).
pub fn file_record_merge(bytes: &[u8]) {
    let Some((a, rest)) = split(bytes) else {
        return;
    };
    let Some((b, c)) = split(rest) else {
        return;
    };
    let (Ok(a), Ok(b)) = (FileRecord::decode(a), FileRecord::decode(b)) else {
        return;
    };
    let same_file = a.owner() == b.owner() && a.name() == b.name();
    let ab = merged(&a, &b);
    let ba = merged(&b, &a);
    if same_file {
        assert_eq!(ab.encode(), ba.encode(), "merge does not commute");
        assert_eq!(ab, ba);
    } else {
        assert_eq!(ab, a, "a record of another file changed the merge");
    }
    assert_eq!(merged(&ab, &a), ab, "merge is not idempotent");
    assert_eq!(merged(&ab, &b), ab, "merge is not idempotent");
    ab.validate().expect("a merge of valid records validates");
    same(&ab, FileRecord::encode, FileRecord::decode);
    if let Ok(c) = FileRecord::decode(c) {
        let left = merged(&ab, &c);
        let right = merged(&a, &merged(&b, &c));
        let history = [a.manifest(), b.manifest(), c.manifest()];
        if same_file
            && a.owner() == c.owner()
            && a.name() == c.name()
            && !a_chunk_comes_back(&history)
        {
            assert_eq!(left.encode(), right.encode(), "merge does not associate");
        }
    }
}

/// Whether, among these owner-signed manifests in rank order, a chunk is
/// named by two and not by one ranked between them: the one history under
/// which a file record's merge need not associate (see the module doc of
/// `ifs_core::file_record`; only the owner can sign it).
fn a_chunk_comes_back(manifests: &[Option<&Manifest>]) -> bool {
    let mut ms: Vec<&Manifest> = manifests.iter().flatten().copied().collect();
    ms.sort_by_key(|m| (m.version, m.hash()));
    ms.dedup_by_key(|m| m.hash());
    let mut named: std::collections::BTreeMap<ChunkId, Vec<usize>> = Default::default();
    for (i, m) in ms.iter().enumerate() {
        for c in &m.chunks {
            named.entry(c.id).or_default().push(i);
        }
    }
    named.values_mut().any(|at| {
        at.dedup();
        at.last()
            .zip(at.first())
            .is_some_and(|(l, f)| l - f + 1 != at.len())
    })
}

fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// A UDP datagram at the hop-count responder, or back at the prober.
pub fn hop_probe(bytes: &[u8]) {
    if let Some(nonce) = hop_wire::parse_probe(bytes) {
        assert_eq!(hop_wire::encode_probe(&nonce).as_slice(), bytes);
        for ttl in [0, 1, 64, 200, 255] {
            let reply = hop_wire::encode_reply(ttl, &nonce);
            assert_eq!(hop_wire::parse_reply(&reply, &nonce), Some(ttl));
        }
    }
    let nonce: [u8; hop_wire::NONCE_LEN] = bytes
        .get(8..8 + hop_wire::NONCE_LEN)
        .and_then(|n| n.try_into().ok())
        .unwrap_or_default();
    if let Some(ttl) = hop_wire::parse_reply(bytes, &nonce) {
        assert_eq!(hop_wire::encode_reply(ttl, &nonce).as_slice(), bytes);
        let _ = hop_wire::hops_from_ttl(ttl);
    }
}
