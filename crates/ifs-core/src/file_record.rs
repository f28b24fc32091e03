//! The file record: the FAT entry of one file, kept in the DHT as a CRDT.
//!
//! It holds the winning owner-signed manifest (highest version, ties by
//! hash), the owner's delete tombstone if any, and per chunk an add-wins set
//! of holder receipts: a holder's release cancels only the receipts it saw
//! (stored at or before `receipt_stored_at_ms`), so a later re-store is live.
//! Every entry is verified on the way in; merging is a pure join.
//!
//! Receipts and releases are kept only for chunks the winning manifest
//! names. A version's chunks are its own (a fresh file key per put; `share`
//! carries the same chunks into the next version), so once a newer manifest
//! wins, the entries of chunks it dropped can never count again: keeping
//! them would grow the record with every overwrite. Holders free such
//! chunks by their own binding (see [`FileRecord::may_free`]), not by the
//! receipts. The same rule keeps a holder from growing a record with
//! receipts for chunks the owner never named, and a record without a
//! manifest (a delete only) keeps no receipts or releases at all.
//!
//! The rule is a join (merges commute, associate, are idempotent) as long
//! as no chunk comes back: a chunk named by two manifests is named by every
//! manifest ranked between them. Every client here keeps that (a fresh file
//! key per put; `share` carries the same chunks into the next version). An
//! owner who signs versions that bring back a dropped chunk can make the
//! replicas of its own record disagree about that chunk's receipts; no one
//! else can, as only the owner signs manifests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crdt::{Crdt, RecordError, lww};
use crate::ids::{ChunkId, NodeId, UserId};
use crate::wire::{ChunkRelease, FileDelete, Manifest, Receipt, from_cbor, to_cbor};

const WHAT: &str = "file record";

/// Replicated FAT entry of one file (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    owner: UserId,
    name: String,
    manifest: Option<Manifest>,
    delete: Option<FileDelete>,
    receipts: BTreeMap<(ChunkId, NodeId), Receipt>,
    releases: BTreeMap<(ChunkId, NodeId), ChunkRelease>,
}

/// The flat form on the wire and on disk; maps are rebuilt on decode.
#[derive(Serialize, Deserialize)]
struct FileRecordWire {
    /// [`FileRecord::FORMAT`]; absent in records written before formats
    /// were numbered (read as 0 and refused).
    #[serde(default)]
    format: u32,
    owner: UserId,
    name: String,
    manifest: Option<Manifest>,
    delete: Option<FileDelete>,
    receipts: Vec<Receipt>,
    releases: Vec<ChunkRelease>,
}

fn hash_of(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

// Total orders used for last-writer-wins; content hashes break ties so
// merges commute even when a signer equivocates.
fn manifest_rank(m: &Manifest) -> (u64, [u8; 32]) {
    (m.version, m.hash())
}
fn delete_rank(d: &FileDelete) -> (u64, u64, [u8; 32]) {
    (d.version, d.deleted_at_ms, hash_of(&d.encode()))
}
fn receipt_rank(r: &Receipt) -> (u64, [u8; 32]) {
    (r.stored_at_ms, hash_of(&r.encode()))
}
fn release_rank(r: &ChunkRelease) -> (u64, u64, [u8; 32]) {
    (
        r.receipt_stored_at_ms,
        r.released_at_ms,
        hash_of(&r.encode()),
    )
}

/// Every (chunk, node) key of `chunk` in a per-chunk map.
fn chunk_range(chunk: &ChunkId) -> std::ops::RangeInclusive<(ChunkId, NodeId)> {
    (*chunk, NodeId([0; 32]))..=(*chunk, NodeId([0xff; 32]))
}

/// Whether the holder's `release` cancels receipt `r` (it saw `r` or a later one).
fn cancels(release: Option<&ChunkRelease>, r: &Receipt) -> bool {
    release.is_some_and(|rel| rel.receipt_stored_at_ms >= r.stored_at_ms)
}

fn lww_map<K: Ord + Clone, T: Clone + PartialEq, R: Ord>(
    map: &mut BTreeMap<K, T>,
    key: K,
    theirs: &T,
    rank: impl Fn(&T) -> R,
) {
    let mut slot = map.remove(&key);
    lww(&mut slot, Some(theirs), rank);
    if let Some(v) = slot {
        map.insert(key, v);
    }
}

impl FileRecord {
    /// Largest accepted encoding, in bytes. Files with more chunks than fit
    /// keep their manifest in chunks of its own (DESIGN "The FAT as CRDTs").
    pub const MAX_BYTES: usize = 8 << 20;
    /// The record format written and read: 2 binds receipts to their record.
    pub const FORMAT: u32 = 2;
    /// Most receipt entries (live or released) kept for one chunk; a merge
    /// that would pass it is refused, so fake holders cannot grow a record
    /// without bound.
    pub const MAX_RECEIPTS_PER_CHUNK: usize = 32;

    /// The DHT key of `owner`'s file `name`: BLAKE3(owner pubkey ‖ name).
    pub fn key(owner: &UserId, name: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(owner.as_bytes());
        h.update(name.as_bytes());
        *h.finalize().as_bytes()
    }

    /// An empty record for `owner`'s file `name`.
    pub fn new(owner: UserId, name: String) -> Self {
        FileRecord {
            owner,
            name,
            manifest: None,
            delete: None,
            receipts: BTreeMap::new(),
            releases: BTreeMap::new(),
        }
    }

    /// The record a client commits after a put: its manifest and receipts.
    pub fn from_manifest(manifest: Manifest, receipts: Vec<Receipt>) -> Result<Self, RecordError> {
        let mut rec = FileRecord::new(manifest.owner, manifest.name.clone());
        rec.add_manifest(manifest)?;
        for r in receipts {
            rec.add_receipt(r)?;
        }
        Ok(rec)
    }

    /// This record's DHT key.
    pub fn record_key(&self) -> [u8; 32] {
        Self::key(&self.owner, &self.name)
    }

    /// The file's owner.
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The winning manifest, even if a delete covers it.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The winning manifest unless the owner deleted that version.
    pub fn live_manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref().filter(|_| !self.is_deleted())
    }

    /// The owner's newest delete, if any.
    pub fn delete(&self) -> Option<&FileDelete> {
        self.delete.as_ref()
    }

    /// Whether a delete covers the winning manifest (or there is a delete
    /// and no manifest).
    pub fn is_deleted(&self) -> bool {
        match (&self.delete, &self.manifest) {
            (Some(d), Some(m)) => d.version >= m.version,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The version a new put must use to supersede everything seen.
    pub fn next_version(&self) -> u64 {
        let m = self.manifest.as_ref().map_or(0, |m| m.version);
        let d = self.delete.as_ref().map_or(0, |d| d.version);
        m.max(d).saturating_add(1)
    }

    fn check_owner(&self, owner: &UserId, what: &'static str) -> Result<(), RecordError> {
        if *owner == self.owner {
            Ok(())
        } else {
            Err(RecordError::ForeignOwner { what })
        }
    }

    fn check_name(&self, name: &str, what: &'static str) -> Result<(), RecordError> {
        if name == self.name {
            Ok(())
        } else {
            Err(RecordError::ForeignName { what })
        }
    }

    fn check_receipt_len(&self, r: &Receipt) -> Result<(), RecordError> {
        match self.manifest.as_ref().and_then(|m| m.chunk_len(&r.chunk)) {
            Some(len) if len != r.len => Err(RecordError::LengthMismatch {
                chunk: r.chunk,
                node: r.node,
            }),
            _ => Ok(()),
        }
    }

    /// Verify and add a manifest version (kept if it ranks highest; the
    /// entries of chunks a new winner does not name go).
    pub fn add_manifest(&mut self, m: Manifest) -> Result<(), RecordError> {
        m.verify()?;
        self.check_owner(&m.owner, "manifest")?;
        self.check_name(&m.name, "manifest")?;
        lww(&mut self.manifest, Some(&m), manifest_rank);
        self.prune();
        Ok(())
    }

    /// Verify and add the owner's delete.
    pub fn add_delete(&mut self, d: FileDelete) -> Result<(), RecordError> {
        d.verify()?;
        self.check_owner(&d.owner, "file delete")?;
        self.check_name(&d.name, "file delete")?;
        lww(&mut self.delete, Some(&d), delete_rank);
        Ok(())
    }

    /// Verify and add a holder's receipt. Refuses a receipt for a chunk the
    /// manifest does not name, or whose length disagrees with the
    /// manifest's, so a client or a repairer learns at once.
    pub fn add_receipt(&mut self, r: Receipt) -> Result<(), RecordError> {
        if !self.names(&r.chunk) {
            return Err(RecordError::NotNamed {
                chunk: r.chunk,
                node: r.node,
            });
        }
        self.check_receipt_len(&r)?;
        let chunk = r.chunk;
        self.insert_receipt(r)?;
        self.prune_chunk(&chunk);
        self.check_chunk_caps(&chunk)
    }

    /// Whether entries about `chunk` belong here: the winning manifest
    /// names it. A record without a manifest (a delete only) keeps none:
    /// receipts travel with the manifest they belong to.
    fn names(&self, chunk: &ChunkId) -> bool {
        self.manifest
            .as_ref()
            .is_some_and(|m| m.chunk_len(chunk).is_some())
    }

    /// Verify and insert without pruning or caps (decode checks those once).
    fn insert_receipt(&mut self, r: Receipt) -> Result<(), RecordError> {
        r.verify()?;
        self.check_owner(&r.owner, "receipt")?;
        self.check_record(&r.record, "receipt")?;
        lww_map(&mut self.receipts, (r.chunk, r.node), &r, receipt_rank);
        Ok(())
    }

    /// [`Self::prune`] for the entries of one chunk.
    fn prune_chunk(&mut self, chunk: &ChunkId) {
        let dead: Vec<_> = if self.names(chunk) {
            self.receipts
                .range(chunk_range(chunk))
                .filter(|(k, r)| cancels(self.releases.get(k), r))
                .map(|(k, _)| *k)
                .collect()
        } else {
            let released: Vec<_> = self
                .releases
                .range(chunk_range(chunk))
                .map(|(k, _)| *k)
                .collect();
            for k in released {
                self.releases.remove(&k);
            }
            self.receipts
                .range(chunk_range(chunk))
                .map(|(k, _)| *k)
                .collect()
        };
        for k in dead {
            self.receipts.remove(&k);
        }
    }

    fn check_chunk_caps(&self, chunk: &ChunkId) -> Result<(), RecordError> {
        if self.receipts.range(chunk_range(chunk)).count() > Self::MAX_RECEIPTS_PER_CHUNK {
            return Err(RecordError::OverLimit("too many receipts for one chunk"));
        }
        if self.releases.range(chunk_range(chunk)).count() > Self::MAX_RECEIPTS_PER_CHUNK {
            return Err(RecordError::OverLimit("too many releases for one chunk"));
        }
        Ok(())
    }

    fn check_record(&self, record: &[u8; 32], what: &'static str) -> Result<(), RecordError> {
        if *record == self.record_key() {
            Ok(())
        } else {
            Err(RecordError::ForeignRecord { what })
        }
    }

    /// Drop the receipts and releases of chunks the winning manifest does
    /// not name, and receipts their holder's release cancels (the release
    /// stays and keeps cancelling any copy that arrives again). A pure
    /// function of the merged state, so merges still commute.
    fn prune(&mut self) {
        let named: Option<std::collections::HashSet<ChunkId>> = self
            .manifest
            .as_ref()
            .map(|m| m.chunks.iter().map(|c| c.id).collect());
        let keep = |c: &ChunkId| named.as_ref().is_some_and(|n| n.contains(c));
        self.releases.retain(|(c, _), _| keep(c));
        let releases = &self.releases;
        self.receipts
            .retain(|k, r| keep(&k.0) && !cancels(releases.get(k), r));
    }

    /// Per-chunk caps on receipts and releases.
    pub fn check_caps(&self) -> Result<(), RecordError> {
        let over = |keys: &mut dyn Iterator<Item = &ChunkId>| {
            let mut run = (None, 0usize);
            for c in keys {
                run = if run.0 == Some(*c) {
                    (run.0, run.1 + 1)
                } else {
                    (Some(*c), 1)
                };
                if run.1 > Self::MAX_RECEIPTS_PER_CHUNK {
                    return true;
                }
            }
            false
        };
        if over(&mut self.receipts.keys().map(|(c, _)| c)) {
            return Err(RecordError::OverLimit("too many receipts for one chunk"));
        }
        if over(&mut self.releases.keys().map(|(c, _)| c)) {
            return Err(RecordError::OverLimit("too many releases for one chunk"));
        }
        Ok(())
    }

    /// Verify and add a holder's release of its copy. A release of a chunk
    /// the manifest does not name has nothing to cancel and is not kept.
    pub fn add_release(&mut self, r: ChunkRelease) -> Result<(), RecordError> {
        r.verify()?;
        self.check_owner(&r.owner, "chunk release")?;
        lww_map(&mut self.releases, (r.chunk, r.node), &r, release_rank);
        self.prune_chunk(&r.chunk);
        self.check_chunk_caps(&r.chunk)
    }

    /// Re-check every entry: manifest and delete signed by the owner and
    /// naming this file, each receipt and release signed by its node (the
    /// signature covers its chunk id and length) and held for this owner.
    pub fn validate(&self) -> Result<(), RecordError> {
        if let Some(m) = &self.manifest {
            m.verify()?;
            self.check_owner(&m.owner, "manifest")?;
            self.check_name(&m.name, "manifest")?;
        }
        if let Some(d) = &self.delete {
            d.verify()?;
            self.check_owner(&d.owner, "file delete")?;
            self.check_name(&d.name, "file delete")?;
        }
        for r in self.receipts.values() {
            r.verify()?;
            self.check_owner(&r.owner, "receipt")?;
            self.check_record(&r.record, "receipt")?;
        }
        for r in self.releases.values() {
            r.verify()?;
            self.check_owner(&r.owner, "chunk release")?;
        }
        if self.manifest.is_none() && self.delete.is_none() {
            return Err(RecordError::Unsigned);
        }
        if self.name.is_empty() || self.name.len() > crate::wire::MAX_NAME_LEN {
            return Err(RecordError::OverLimit("file name length"));
        }
        self.check_caps()
    }

    /// Whether this node may free its copy of `chunk`, held bound to this
    /// record at `bound_version` (from the owner-signed header chain): the
    /// owner has signed a version at least that new (a manifest or a delete)
    /// and the live manifest does not list the chunk. A chunk of a put
    /// still in progress (its version not committed yet) is never freed
    /// here; collection of abandoned puts is a separate, slower rule.
    pub fn may_free(&self, chunk: &ChunkId, bound_version: u64) -> bool {
        let signed = self.manifest.is_some() || self.delete.is_some();
        signed
            && self.newest_version() >= bound_version
            && self
                .live_manifest()
                .is_none_or(|m| m.chunk_len(chunk).is_none())
    }

    /// The highest version the owner signed (manifest or delete).
    pub fn newest_version(&self) -> u64 {
        self.manifest
            .as_ref()
            .map_or(0, |m| m.version)
            .max(self.delete.as_ref().map_or(0, |d| d.version))
    }

    fn is_live(&self, r: &Receipt) -> bool {
        !cancels(self.releases.get(&(r.chunk, r.node)), r) && self.check_receipt_len(r).is_ok()
    }

    /// Whether a node holding `chunk` for this record's owner may serve it
    /// to `requester`: the live manifest lists the chunk and lets the
    /// requester read (the owner or a granted reader). A deleted file, or a
    /// chunk only an older version used, grants nothing.
    pub fn grants_fetch(&self, chunk: &ChunkId, requester: &UserId) -> bool {
        self.live_manifest()
            .is_some_and(|m| m.chunk_len(chunk).is_some() && m.may_read(requester))
    }

    /// Nodes holding a live copy of `chunk`, by node id: a receipt not
    /// cancelled by the holder's release, whose length agrees with the
    /// manifest. Independent of deletion: after `rm` it lists who still must free space.
    pub fn live_holders(&self, chunk: &ChunkId) -> Vec<NodeId> {
        self.receipts
            .range(chunk_range(chunk))
            .filter(|(_, r)| self.is_live(r))
            .map(|((_, n), _)| *n)
            .collect()
    }

    /// The live receipt of `node` for `chunk`.
    pub fn live_receipt(&self, chunk: &ChunkId, node: &NodeId) -> Option<&Receipt> {
        self.receipts
            .get(&(*chunk, *node))
            .filter(|r| self.is_live(r))
    }

    /// Every node that ever held `chunk` for this record: a receipt kept or
    /// a release (released receipts are pruned, their releases stay).
    pub fn past_holders(&self, chunk: &ChunkId) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .receipts
            .range(chunk_range(chunk))
            .map(|((_, n), _)| *n)
            .chain(
                self.releases
                    .range(chunk_range(chunk))
                    .map(|((_, n), _)| *n),
            )
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Every receipt kept (newest per chunk and node) not cancelled by a release.
    pub fn receipts(&self) -> impl Iterator<Item = &Receipt> {
        self.receipts.values()
    }

    /// Fewest live holders over the live manifest's chunks (what `ls`
    /// shows); `None` if the file is deleted, has no manifest or no chunks.
    pub fn min_live_replicas(&self) -> Option<usize> {
        let m = self.live_manifest()?;
        m.chunks
            .iter()
            .map(|c| self.live_holders(&c.id).len())
            .min()
    }

    /// Chunks `node` holds live copies of that the live manifest does not
    /// reference (the file is deleted): space it may free. A superseded
    /// version's chunks have no entries left here; their holders free them
    /// by their own binding ([`Self::may_free`]).
    pub fn freeable_by(&self, node: &NodeId) -> Vec<ChunkId> {
        let live = self.live_manifest();
        self.receipts
            .iter()
            .filter(|((_, n), r)| n == node && self.is_live(r))
            .map(|((c, _), _)| *c)
            .filter(|c| live.is_none_or(|m| m.chunk_len(c).is_none()))
            .collect()
    }

    /// The encoding, for the DHT and for disk.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(&FileRecordWire {
            format: Self::FORMAT,
            owner: self.owner,
            name: self.name.clone(),
            manifest: self.manifest.clone(),
            delete: self.delete.clone(),
            receipts: self.receipts.values().cloned().collect(),
            releases: self.releases.values().cloned().collect(),
        })
    }

    /// Decode and validate every entry; refuses more than
    /// [`Self::MAX_BYTES`] before parsing.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let w: FileRecordWire = from_cbor(bytes, Self::MAX_BYTES, WHAT)?;
        if w.format != Self::FORMAT {
            return Err(RecordError::Format {
                found: w.format,
                supported: Self::FORMAT,
            });
        }
        if w.name.is_empty() || w.name.len() > crate::wire::MAX_NAME_LEN {
            return Err(RecordError::OverLimit("file name length"));
        }
        if w.manifest.is_none() && w.delete.is_none() {
            return Err(RecordError::Unsigned);
        }
        let mut rec = FileRecord::new(w.owner, w.name);
        if let Some(m) = w.manifest {
            rec.add_manifest(m)?;
        }
        if let Some(d) = w.delete {
            rec.add_delete(d)?;
        }
        for r in w.receipts {
            rec.insert_receipt(r)?;
        }
        for r in w.releases {
            r.verify()?;
            rec.check_owner(&r.owner, "chunk release")?;
            lww_map(&mut rec.releases, (r.chunk, r.node), &r, release_rank);
        }
        rec.prune();
        rec.check_caps()?;
        Ok(rec)
    }
}

impl Crdt for FileRecord {
    /// Per part, last writer wins by a total rank: the manifest, the delete,
    /// each (chunk, node) receipt and release. A record for another owner or
    /// name is ignored (it has a different DHT key).
    fn merge(&mut self, other: &Self) {
        if other.owner != self.owner || other.name != self.name {
            return;
        }
        lww(&mut self.manifest, other.manifest.as_ref(), manifest_rank);
        lww(&mut self.delete, other.delete.as_ref(), delete_rank);
        for (k, r) in &other.receipts {
            lww_map(&mut self.receipts, *k, r, receipt_rank);
        }
        for (k, r) in &other.releases {
            lww_map(&mut self.releases, *k, r, release_rank);
        }
        self.prune();
    }
}

#[cfg(test)]
mod tests;
