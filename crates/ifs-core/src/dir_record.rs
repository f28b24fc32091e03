//! The per-owner directory record behind `ls`: name → latest version, size,
//! chunk count and whether it was deleted. Each entry is owner-signed; the
//! record is a last-writer-wins map per name, merged like the file record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crdt::{Crdt, RecordError, lww};
use crate::ids::UserId;
use crate::keys::{Sig, UserKey, domain, verify};
use crate::wire::{
    MAX_NAME_LEN, Manifest, WireError, ensure, from_cbor, sig_err, to_cbor, wire_codec,
};

const WHAT: &str = "directory entry";

/// One file in an owner's directory, signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DirEntry {
    /// The owner; the signer.
    pub owner: UserId,
    /// The file's name.
    pub name: String,
    /// The file version this entry describes.
    pub version: u64,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Whether the owner deleted this version.
    pub deleted: bool,
    /// When written, ms since the Unix epoch (client's clock).
    pub updated_at_ms: u64,
    /// The owner's signature.
    pub sig: Sig,
}

wire_codec!(DirEntry, WHAT, 2 * 1024);

impl DirEntry {
    /// The entry for a freshly committed manifest.
    pub fn live(owner: &UserKey, m: &Manifest) -> Self {
        Self::signed(
            owner,
            m.name.clone(),
            m.version,
            m.size,
            m.chunks.len() as u64,
            false,
            m.created_at_ms,
        )
    }

    /// The entry recording that `name` was deleted up to `version`.
    pub fn deleted(owner: &UserKey, name: String, version: u64, at_ms: u64) -> Self {
        Self::signed(owner, name, version, 0, 0, true, at_ms)
    }

    fn signed(
        owner: &UserKey,
        name: String,
        version: u64,
        size: u64,
        chunks: u64,
        deleted: bool,
        at: u64,
    ) -> Self {
        let mut e = DirEntry {
            owner: owner.user_id(),
            name,
            version,
            size,
            chunks,
            deleted,
            updated_at_ms: at,
            sig: Sig([0; 64]),
        };
        e.sig = owner.sign(domain::DIR_ENTRY, &e.signed_bytes());
        e
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.owner,
            &self.name,
            self.version,
            self.size,
            self.chunks,
            self.deleted,
            self.updated_at_ms,
        ))
    }

    /// Check structure and the owner's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.owner.as_bytes(),
            domain::DIR_ENTRY,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(
            !self.name.is_empty() && self.name.len() <= MAX_NAME_LEN,
            WHAT,
            "bad name length",
        )?;
        // A deleted entry may name a file from before the name rule, so
        // such a file can still be removed.
        if self.deleted {
            return Ok(());
        }
        crate::name::validate_name(&self.name)
            .map_err(|source| WireError::BadName { what: WHAT, source })
    }
}

/// Higher version wins; at equal versions a delete beats the live entry it
/// deletes; then the content hash, so merges commute.
fn rank(e: &DirEntry) -> (u64, bool, [u8; 32]) {
    (e.version, e.deleted, *blake3::hash(&e.encode()).as_bytes())
}

/// An owner's directory: the newest signed entry per file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRecord {
    owner: UserId,
    entries: BTreeMap<String, DirEntry>,
}

#[derive(Serialize, Deserialize)]
struct DirRecordWire {
    owner: UserId,
    entries: Vec<DirEntry>,
}

impl DirRecord {
    /// Largest accepted encoding, in bytes.
    pub const MAX_BYTES: usize = 4 << 20;

    /// The DHT key of `owner`'s directory. Derived in its own BLAKE3 context
    /// so it can never equal a [`crate::file_record::FileRecord::key`].
    pub fn key(owner: &UserId) -> [u8; 32] {
        blake3::derive_key("ifs 2026 directory record v1", owner.as_bytes())
    }

    /// An empty directory for `owner`.
    pub fn new(owner: UserId) -> Self {
        DirRecord {
            owner,
            entries: BTreeMap::new(),
        }
    }

    /// The owner.
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// Verify `entry` and keep it if it is the newest for its name.
    pub fn insert(&mut self, entry: DirEntry) -> Result<(), RecordError> {
        entry.verify()?;
        if entry.owner != self.owner {
            return Err(RecordError::ForeignOwner { what: WHAT });
        }
        let mut slot = self.entries.remove(&entry.name);
        let name = entry.name.clone();
        lww(&mut slot, Some(&entry), rank);
        if let Some(e) = slot {
            self.entries.insert(name, e);
        }
        Ok(())
    }

    /// The entry for `name`, deleted or not.
    pub fn get(&self, name: &str) -> Option<&DirEntry> {
        self.entries.get(name)
    }

    /// Every entry, by name, including deletions.
    pub fn entries(&self) -> impl Iterator<Item = &DirEntry> {
        self.entries.values()
    }

    /// The files `ls` shows: entries not deleted, by name.
    pub fn live(&self) -> impl Iterator<Item = &DirEntry> {
        self.entries.values().filter(|e| !e.deleted)
    }

    /// Re-check every entry's signature and owner.
    pub fn validate(&self) -> Result<(), RecordError> {
        for e in self.entries.values() {
            e.verify()?;
            if e.owner != self.owner {
                return Err(RecordError::ForeignOwner { what: WHAT });
            }
        }
        Ok(())
    }

    /// The encoding, for the DHT and for disk.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(&DirRecordWire {
            owner: self.owner,
            entries: self.entries.values().cloned().collect(),
        })
    }

    /// Decode and verify every entry; refuses more than [`Self::MAX_BYTES`]
    /// before parsing.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let w: DirRecordWire = from_cbor(bytes, Self::MAX_BYTES, "directory record")?;
        let mut rec = DirRecord::new(w.owner);
        for e in w.entries {
            rec.insert(e)?;
        }
        Ok(rec)
    }
}

impl Crdt for DirRecord {
    /// Per name, the higher-ranked entry. Another owner's directory is ignored.
    fn merge(&mut self, other: &Self) {
        if other.owner != self.owner {
            return;
        }
        for (name, e) in &other.entries {
            let mut slot = self.entries.remove(name);
            lww(&mut slot, Some(e), rank);
            if let Some(v) = slot {
                self.entries.insert(name.clone(), v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
