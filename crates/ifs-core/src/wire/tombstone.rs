//! Signed deletes: an owner's delete of a file, a holder's release of a copy.

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::ids::{ChunkId, NodeId, UserId};
use crate::keys::{NodeKey, Sig, UserKey, domain, verify};
use crate::wire::manifest::MAX_NAME_LEN;

/// Owner-signed delete of every version of `name` up to `version`.
/// A later put uses a higher version and is live again.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileDelete {
    /// The file's owner; the signer.
    pub owner: UserId,
    /// The file's name.
    pub name: String,
    /// Highest version deleted.
    pub version: u64,
    /// When, ms since the Unix epoch (client's clock).
    pub deleted_at_ms: u64,
    /// The owner's signature.
    pub sig: Sig,
}

wire_codec!(FileDelete, "file delete", 2 * 1024);

impl FileDelete {
    /// Build and sign a delete.
    pub fn new(owner: &UserKey, name: String, version: u64, deleted_at_ms: u64) -> Self {
        let mut d = FileDelete {
            owner: owner.user_id(),
            name,
            version,
            deleted_at_ms,
            sig: Sig([0; 64]),
        };
        d.sig = owner.sign(domain::DELETE, &d.signed_bytes());
        d
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(&self.owner, &self.name, self.version, self.deleted_at_ms))
    }

    /// Check structure and the owner's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.owner.as_bytes(),
            domain::DELETE,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err("file delete"))
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(
            self.name.len() <= MAX_NAME_LEN,
            "file delete",
            "name too long",
        )
    }
}

/// Holder-signed release of its copy of `chunk`. It cancels the holder's
/// receipts stored at or before `receipt_stored_at_ms` only, so a later
/// re-store (a newer receipt) is live again: adds win over older removes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRelease {
    /// The chunk released.
    pub chunk: ChunkId,
    /// The holder; the signer.
    pub node: NodeId,
    /// The file owner the copy was held for.
    pub owner: UserId,
    /// `stored_at_ms` of the newest receipt this release cancels.
    pub receipt_stored_at_ms: u64,
    /// When, ms since the Unix epoch (node's clock).
    pub released_at_ms: u64,
    /// The holder's signature.
    pub sig: Sig,
}

wire_codec!(ChunkRelease, "chunk release", 512);

impl ChunkRelease {
    /// Build and sign a release by `key`'s node.
    pub fn new(
        key: &NodeKey,
        chunk: ChunkId,
        owner: UserId,
        receipt_stored_at_ms: u64,
        released_at_ms: u64,
    ) -> Self {
        let mut r = ChunkRelease {
            chunk,
            node: key.node_id(),
            owner,
            receipt_stored_at_ms,
            released_at_ms,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(domain::RELEASE, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.chunk,
            &self.node,
            &self.owner,
            self.receipt_stored_at_ms,
            self.released_at_ms,
        ))
    }

    /// Check the holder's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        verify(
            self.node.as_bytes(),
            domain::RELEASE,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err("chunk release"))
    }

    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}

/// Either kind of signed delete, for transports that carry both.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tombstone {
    /// The owner deletes a file (all versions up to one).
    Delete(FileDelete),
    /// A holder releases one copy of one chunk.
    Release(ChunkRelease),
}

wire_codec!(Tombstone, "tombstone", 2 * 1024);

impl Tombstone {
    /// Check structure and the signature by the right key (owner or holder).
    pub fn verify(&self) -> Result<(), WireError> {
        match self {
            Tombstone::Delete(d) => d.verify(),
            Tombstone::Release(r) => r.verify(),
        }
    }

    fn check(&self) -> Result<(), WireError> {
        match self {
            Tombstone::Delete(d) => d.check(),
            Tombstone::Release(r) => r.check(),
        }
    }
}
