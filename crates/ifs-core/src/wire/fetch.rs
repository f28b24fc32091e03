//! A requester-signed request for one chunk.

use serde::{Deserialize, Serialize};

use super::{WireError, sig_err, to_cbor, wire_codec};
use crate::ids::{ChunkId, NodeId, UserId};
use crate::keys::{Sig, UserKey, domain, verify};

const WHAT: &str = "fetch request";

/// Signed by the requester. Naming the serving node and carrying a nonce and
/// time lets the node refuse a request replayed elsewhere or much later.
/// The node serves the chunk only if the file record `record` lists the chunk
/// and its manifest lets `requester` read ([`crate::wire::Manifest::may_read`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The chunk wanted.
    pub chunk: ChunkId,
    /// Key of the file record that grants access (see `FileRecord::key`).
    #[serde(with = "serde_bytes")]
    pub record: [u8; 32],
    /// The node asked.
    pub node: NodeId,
    /// Who asks; the signer.
    pub requester: UserId,
    /// When, ms since the Unix epoch (requester's clock).
    pub issued_at_ms: u64,
    /// Random, so two requests never sign the same bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
    /// The requester's signature.
    pub sig: Sig,
}

wire_codec!(FetchRequest, WHAT, 512);

impl FetchRequest {
    /// Build and sign a request.
    pub fn new(
        requester: &UserKey,
        chunk: ChunkId,
        record: [u8; 32],
        node: NodeId,
        issued_at_ms: u64,
        nonce: [u8; 16],
    ) -> Self {
        let mut r = FetchRequest {
            chunk,
            record,
            node,
            requester: requester.user_id(),
            issued_at_ms,
            nonce,
            sig: Sig([0; 64]),
        };
        r.sig = requester.sign(domain::FETCH, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.chunk,
            serde_bytes::Bytes::new(&self.record),
            &self.node,
            &self.requester,
            self.issued_at_ms,
            serde_bytes::Bytes::new(&self.nonce),
        ))
    }

    /// Check the requester's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        verify(
            self.requester.as_bytes(),
            domain::FETCH,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    /// Whether `issued_at_ms` is within `max_skew_ms` of `now_ms` either way.
    pub fn is_fresh(&self, now_ms: u64, max_skew_ms: u64) -> bool {
        super::is_fresh(self.issued_at_ms, now_ms, max_skew_ms)
    }

    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}
