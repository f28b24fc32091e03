//! A storing node's signed proof that it holds a chunk.

use serde::{Deserialize, Serialize};

use super::{WireError, sig_err, to_cbor, wire_codec};
use crate::ids::{ChunkId, NodeId, UserId};
use crate::keys::{NodeKey, Sig, domain, verify};

const WHAT: &str = "receipt";

/// Signed by `node` once the whole chunk matched its id and is durable on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Receipt {
    /// The chunk stored.
    pub chunk: ChunkId,
    /// Its length in bytes (ciphertext).
    pub len: u64,
    /// The storing node; the signer.
    pub node: NodeId,
    /// The file owner the chunk is held for.
    pub owner: UserId,
    /// The file record the copy is held for: a receipt counts only in that
    /// record, so it cannot be replayed into another.
    #[serde(with = "serde_bytes")]
    pub record: [u8; 32],
    /// When it became durable, ms since the Unix epoch (node's clock).
    pub stored_at_ms: u64,
    /// The node's signature.
    pub sig: Sig,
}

wire_codec!(Receipt, WHAT, 512);

impl Receipt {
    /// Build and sign a receipt by `key`'s node for a copy held for
    /// `owner`'s file record `record`.
    pub fn new(
        key: &NodeKey,
        chunk: ChunkId,
        len: u64,
        (owner, record): (UserId, [u8; 32]),
        stored_at_ms: u64,
    ) -> Self {
        let mut r = Receipt {
            chunk,
            len,
            node: key.node_id(),
            owner,
            record,
            stored_at_ms,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(domain::RECEIPT, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.chunk,
            self.len,
            &self.node,
            &self.owner,
            serde_bytes::Bytes::new(&self.record),
            self.stored_at_ms,
        ))
    }

    /// Check that `node` signed it.
    pub fn verify(&self) -> Result<(), WireError> {
        verify(
            self.node.as_bytes(),
            domain::RECEIPT,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}
