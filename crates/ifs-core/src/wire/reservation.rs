//! A node's signed promise to hold space for a client until a deadline.

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::ids::{NodeId, UserId};
use crate::keys::{NodeKey, Sig, domain, verify};

const WHAT: &str = "reservation grant";

/// Space a node holds for a client until `expires_at_ms`, released by
/// commit, by the client, or by expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationGrant {
    /// The node's name for this reservation; chains refer to it.
    #[serde(with = "serde_bytes")]
    pub reservation_id: [u8; 16],
    /// The granting node; the signer.
    pub node: NodeId,
    /// The client the space is held for.
    pub client: UserId,
    /// Bytes held.
    pub bytes: u64,
    /// Deadline, ms since the Unix epoch (node's clock).
    pub expires_at_ms: u64,
    /// The node's signature.
    pub sig: Sig,
}

wire_codec!(ReservationGrant, WHAT, 512);

impl ReservationGrant {
    /// Build and sign a grant by `key`'s node.
    pub fn new(
        key: &NodeKey,
        reservation_id: [u8; 16],
        client: UserId,
        bytes: u64,
        expires_at_ms: u64,
    ) -> Self {
        let mut g = ReservationGrant {
            reservation_id,
            node: key.node_id(),
            client,
            bytes,
            expires_at_ms,
            sig: Sig([0; 64]),
        };
        g.sig = key.sign(domain::RESERVATION, &g.signed_bytes());
        g
    }

    /// Whether the grant has lapsed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            serde_bytes::Bytes::new(&self.reservation_id),
            &self.node,
            &self.client,
            self.bytes,
            self.expires_at_ms,
        ))
    }

    /// Check structure and that `node` signed it.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.node.as_bytes(),
            domain::RESERVATION,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(self.bytes > 0, WHAT, "zero-byte reservation")
    }
}
