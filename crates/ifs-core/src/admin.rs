//! Operator commands to a running node (`ifsnode donate`, `ifsnode leave`),
//! signed with the node's own key.
//!
//! Any peer can reach a node's control protocol, so a command that changes
//! what the node donates must prove it comes from whoever holds the node's
//! key file: the operator. A time and nonce bound each command to one use.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::keys::{NodeKey, Sig, verify};
use crate::wire::{WireError, from_cbor, to_cbor};

const WHAT: &str = "admin request";
/// Signature domain of operator commands.
pub const ADMIN_DOMAIN: &str = "ifs/admin/v1";
/// Largest accepted encoding.
pub const MAX_ADMIN_BYTES: usize = 2048;

/// What the operator asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOp {
    /// Set every volume's donation (a lower one makes the node offload).
    Donate(DonationCap),
    /// Donate nothing: move every chunk elsewhere, then hold none.
    Leave,
    /// Report the donation and what is left to offload.
    Donation,
    /// Set the upload and download caps on chunk traffic.
    SetBandwidth(crate::proto::BandwidthCaps),
    /// Report the bandwidth caps.
    Bandwidth,
}

/// A donation, as `SIZE` (bytes) or `PCT` (percent of each volume's disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DonationCap {
    /// Bytes in total, split over volumes in proportion to their size.
    Bytes(u64),
    /// Percent of each volume's filesystem.
    Percent(u8),
}

/// A signed operator command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequest {
    /// The command.
    pub op: AdminOp,
    /// The node it is for; the signer.
    pub node: NodeId,
    /// When, ms since the Unix epoch.
    pub issued_at_ms: u64,
    /// Random, so two commands never sign the same bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 16],
    /// The node key's signature.
    pub sig: Sig,
}

/// A node's donation and offload progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonationStatus {
    /// Bytes donated now.
    pub donated_bytes: u64,
    /// Bytes held.
    pub used_bytes: u64,
    /// Bytes still to move elsewhere.
    pub excess_bytes: u64,
    /// Whether the node is leaving the network.
    pub leaving: bool,
}

impl AdminRequest {
    /// Build and sign a command with the node's key.
    pub fn new(key: &NodeKey, op: AdminOp, issued_at_ms: u64, nonce: [u8; 16]) -> Self {
        let mut r = AdminRequest {
            op,
            node: key.node_id(),
            issued_at_ms,
            nonce,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(ADMIN_DOMAIN, &r.signed_bytes());
        r
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_cbor(&(
            &self.op,
            &self.node,
            self.issued_at_ms,
            serde_bytes::Bytes::new(&self.nonce),
        ))
    }

    /// Check that `me`'s key signed it within `max_skew_ms` of `now_ms`.
    pub fn verify_for(&self, me: &NodeId, now_ms: u64, max_skew_ms: u64) -> Result<(), WireError> {
        if self.node != *me {
            return Err(WireError::Invalid {
                what: WHAT,
                reason: "addressed to another node",
            });
        }
        if now_ms.abs_diff(self.issued_at_ms) > max_skew_ms {
            return Err(WireError::Invalid {
                what: WHAT,
                reason: "stale",
            });
        }
        verify(
            self.node.as_bytes(),
            ADMIN_DOMAIN,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(|source| WireError::BadSignature { what: WHAT, source })
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Decode, refusing more than [`MAX_ADMIN_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        from_cbor(bytes, MAX_ADMIN_BYTES, WHAT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn key(seed: u64) -> NodeKey {
        NodeKey::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn only_the_node_key_may_command_the_node() {
        let k = key(1);
        let me = k.node_id();
        let r = AdminRequest::new(&k, AdminOp::Leave, 1000, [1; 16]);
        let r = AdminRequest::decode(&r.encode()).unwrap();
        r.verify_for(&me, 1500, 60_000).unwrap();
        // Someone else's key, even naming us.
        let mut forged = AdminRequest::new(&key(2), AdminOp::Leave, 1000, [1; 16]);
        assert!(forged.verify_for(&me, 1000, 60_000).is_err());
        forged.node = me;
        assert!(matches!(
            forged.verify_for(&me, 1000, 60_000),
            Err(WireError::BadSignature { .. })
        ));
        // Tampered op.
        let mut t = r.clone();
        t.op = AdminOp::Donate(DonationCap::Bytes(0));
        assert!(t.verify_for(&me, 1000, 60_000).is_err());
        // A bandwidth change is bound the same way.
        let caps = crate::proto::BandwidthCaps {
            up_bps: Some(8_000_000),
            down_bps: None,
        };
        let b = AdminRequest::new(&k, AdminOp::SetBandwidth(caps), 1000, [2; 16]);
        AdminRequest::decode(&b.encode())
            .unwrap()
            .verify_for(&me, 1000, 60_000)
            .unwrap();
        let mut raised = b.clone();
        raised.op = AdminOp::SetBandwidth(crate::proto::BandwidthCaps::default());
        assert!(raised.verify_for(&me, 1000, 60_000).is_err());
        // Replayed much later.
        assert!(r.verify_for(&me, 1000 + 120_000, 60_000).is_err());
        assert!(AdminRequest::decode(&vec![0u8; MAX_ADMIN_BYTES + 1]).is_err());
    }
}
