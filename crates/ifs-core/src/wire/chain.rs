//! The header chain: the ordered nodes one chunk must visit.
//!
//! The owner signs the full list once. Each node forwards the same signed
//! list with an unsigned `cursor` advanced by one, so no node can re-sign or
//! alter the route: a receiver checks the owner's signature and that the
//! hop at the cursor names it, and reads its successor from the list.
//!
//! The chain also binds the chunk to one file record and version: the owner
//! signs `(record, version)`, every hop stores that binding beside the chunk,
//! and later deletes and collection decide from it (see `docs/security.md`).

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::ids::{ChunkId, NodeId, UserId};
use crate::keys::{Sig, UserKey, domain, verify};

const WHAT: &str = "header chain";
/// Longest chain accepted (replication factors are far below this).
pub const MAX_HOPS: usize = 16;

/// One node on the chain and the reservation it must charge the chunk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHop {
    /// The node that stores the chunk at this step.
    pub node: NodeId,
    /// That node's reservation for the client.
    #[serde(with = "serde_bytes")]
    pub reservation_id: [u8; 16],
}

/// Owner-signed route of one chunk, plus the unsigned position reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderChain {
    /// The chunk travelling.
    pub chunk: ChunkId,
    /// Its length in bytes.
    pub len: u64,
    /// The client who built and signed the chain.
    pub owner: UserId,
    /// Key of the file record the chunk belongs to (`FileRecord::key`).
    #[serde(with = "serde_bytes")]
    pub record: [u8; 32],
    /// The manifest version the chunk is put for (a lower bound: the commit
    /// may use a higher one).
    pub version: u64,
    /// Every hop, in order (distinct nodes, 1..=[`MAX_HOPS`]).
    pub hops: Vec<ChainHop>,
    /// Index in `hops` of the node this copy is addressed to. Not signed:
    /// each hop advances it when forwarding.
    pub cursor: u32,
    /// The owner's signature over chunk, len, owner, record, version and hops.
    pub sig: Sig,
}

wire_codec!(HeaderChain, WHAT, 4 * 1024);

impl HeaderChain {
    /// Build and sign a chain for `chunk` of record `binding` (record key,
    /// version); the cursor starts at the first hop.
    pub fn new(
        owner: &UserKey,
        chunk: ChunkId,
        len: u64,
        binding: ([u8; 32], u64),
        hops: Vec<ChainHop>,
    ) -> Result<Self, WireError> {
        let mut c = HeaderChain {
            chunk,
            len,
            owner: owner.user_id(),
            record: binding.0,
            version: binding.1,
            hops,
            cursor: 0,
            sig: Sig([0; 64]),
        };
        c.check()?;
        c.sig = owner.sign(domain::CHAIN, &c.signed_bytes());
        Ok(c)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.chunk,
            self.len,
            &self.owner,
            serde_bytes::Bytes::new(&self.record),
            self.version,
            &self.hops,
        ))
    }

    /// Check structure and the owner's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.owner.as_bytes(),
            domain::CHAIN,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    /// What a receiving node runs: the chain verifies and this copy is
    /// addressed to `me`. Returns my hop (with my reservation id).
    pub fn accept(&self, me: &NodeId) -> Result<ChainHop, WireError> {
        self.verify()?;
        match self.current() {
            Some(hop) if hop.node == *me => Ok(hop),
            _ => Err(WireError::Invalid {
                what: WHAT,
                reason: "not addressed to this node",
            }),
        }
    }

    /// The hop this copy is addressed to.
    pub fn current(&self) -> Option<ChainHop> {
        self.hops.get(self.cursor as usize).copied()
    }

    /// The hop after the current one, if the chain continues.
    pub fn next_hop(&self) -> Option<ChainHop> {
        self.hops.get(self.cursor as usize + 1).copied()
    }

    /// Where `node` sits in the chain.
    pub fn position_of(&self, node: &NodeId) -> Option<usize> {
        self.hops.iter().position(|h| h.node == *node)
    }

    /// Hops from the current one to the end.
    pub fn remaining(&self) -> &[ChainHop] {
        self.hops.get(self.cursor as usize..).unwrap_or(&[])
    }

    /// The copy to send to [`Self::next_hop`], or `None` at the last hop.
    /// Still carries the owner's signature: nothing is re-signed.
    pub fn forwarded(&self) -> Option<HeaderChain> {
        self.next_hop()?;
        Some(HeaderChain {
            cursor: self.cursor + 1,
            ..self.clone()
        })
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(!self.hops.is_empty(), WHAT, "no hops")?;
        ensure(self.hops.len() <= MAX_HOPS, WHAT, "too many hops")?;
        ensure(
            (self.cursor as usize) < self.hops.len(),
            WHAT,
            "cursor past the last hop",
        )?;
        let distinct = self
            .hops
            .iter()
            .enumerate()
            .all(|(i, h)| self.hops[..i].iter().all(|o| o.node != h.node));
        ensure(distinct, WHAT, "a node appears twice")
    }
}
