//! A node's signed promise to hold space for a client until a deadline.

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::ids::{NodeId, UserId};
use crate::keys::{NodeKey, Sig, UserKey, domain, verify};

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

/// A user's signed ask for space on one node. Signing it makes every grant
/// count against a user's quota on that node (see `ifs_core::quota`), and
/// naming the node and a time keeps it from being replayed elsewhere or
/// much later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    /// Who asks and will send chunks against the grant; the signer.
    pub client: UserId,
    /// The node asked.
    pub node: NodeId,
    /// Bytes to hold.
    pub bytes: u64,
    /// Requested lifetime; the node may shorten it.
    pub ttl_ms: u64,
    /// When, ms since the Unix epoch (client's clock).
    pub issued_at_ms: u64,
    /// The client's signature.
    pub sig: Sig,
}

wire_codec!(ReserveRequest, "reserve request", 512);

impl ReserveRequest {
    /// Build and sign a request by `key`'s user to `node`.
    pub fn new(key: &UserKey, node: NodeId, bytes: u64, ttl_ms: u64, issued_at_ms: u64) -> Self {
        let mut r = ReserveRequest {
            client: key.user_id(),
            node,
            bytes,
            ttl_ms,
            issued_at_ms,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(domain::RESERVE, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.client,
            &self.node,
            self.bytes,
            self.ttl_ms,
            self.issued_at_ms,
        ))
    }

    /// Check structure and the client's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.client.as_bytes(),
            domain::RESERVE,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err("reserve request"))
    }

    /// Whether `issued_at_ms` is within `max_skew_ms` of `now_ms` either way.
    pub fn is_fresh(&self, now_ms: u64, max_skew_ms: u64) -> bool {
        super::is_fresh(self.issued_at_ms, now_ms, max_skew_ms)
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(self.bytes > 0, "reserve request", "zero bytes asked")
    }
}

/// The grant holder's signed "done": keep what was stored under the
/// reservation and hand back the rest. Only the client the grant was made
/// for may end it, so a hop that saw the reservation id in a chain cannot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleRequest {
    /// The reservation.
    #[serde(with = "serde_bytes")]
    pub reservation_id: [u8; 16],
    /// The node that granted it.
    pub node: NodeId,
    /// The grant's client; the signer.
    pub client: UserId,
    /// When, ms since the Unix epoch (client's clock).
    pub issued_at_ms: u64,
    /// The client's signature.
    pub sig: Sig,
}

wire_codec!(SettleRequest, "settle request", 512);

impl SettleRequest {
    /// Build and sign a settle of `reservation_id` at `node`.
    pub fn new(key: &UserKey, node: NodeId, reservation_id: [u8; 16], issued_at_ms: u64) -> Self {
        let mut r = SettleRequest {
            reservation_id,
            node,
            client: key.user_id(),
            issued_at_ms,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(domain::SETTLE, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            serde_bytes::Bytes::new(&self.reservation_id),
            &self.node,
            &self.client,
            self.issued_at_ms,
        ))
    }

    /// Check the client's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        verify(
            self.client.as_bytes(),
            domain::SETTLE,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err("settle request"))
    }

    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }
}
