//! Mapping between `ifs-core`'s [`NodeId`] (a raw ed25519 public key) and
//! libp2p's [`PeerId`], and building a libp2p keypair from the node key file.
//!
//! An ed25519 `PeerId` is an *identity* multihash (code `0x00`) whose digest is
//! the protobuf encoding of the public key, so the mapping is exact both ways.

use ifs_core::NodeId;
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey, ed25519};

use crate::error::IdentityError;

/// Multihash code of the identity hash, used by libp2p for small keys.
const IDENTITY_MULTIHASH: u64 = 0x00;

/// The libp2p `PeerId` of the node whose ed25519 public key is `node`.
pub fn node_id_to_peer_id(node: &NodeId) -> Result<PeerId, IdentityError> {
    let key = ed25519::PublicKey::try_from_bytes(node.as_bytes())
        .map_err(|_| IdentityError::BadPublicKey)?;
    Ok(PublicKey::from(key).to_peer_id())
}

/// The `NodeId` behind `peer`, or `None` when the `PeerId` is not an ed25519
/// identity hash (e.g. an RSA or secp256k1 peer, which IFS never uses).
pub fn peer_id_to_node_id(peer: &PeerId) -> Option<NodeId> {
    let hash = peer.as_ref();
    if hash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(hash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(NodeId(ed.to_bytes()))
}

/// The libp2p keypair for a 32-byte ed25519 secret (the node key file), so the
/// same file always yields the same `PeerId`.
pub fn keypair_from_ed25519_secret(secret: [u8; 32]) -> Keypair {
    let mut bytes = secret;
    // `try_from_bytes` only fails on a length other than 32, which the array type rules out.
    let secret = ed25519::SecretKey::try_from_bytes(&mut bytes)
        .expect("a 32-byte array is always a valid ed25519 secret key");
    Keypair::from(ed25519::Keypair::from(secret))
}

/// The `NodeId` of a keypair, or `None` when it is not ed25519.
pub fn keypair_node_id(keypair: &Keypair) -> Option<NodeId> {
    let ed = keypair.public().try_into_ed25519().ok()?;
    Some(NodeId(ed.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_peer_ids_round_trip() {
        let kp = keypair_from_ed25519_secret([7u8; 32]);
        let node = keypair_node_id(&kp).expect("ed25519");
        let peer = node_id_to_peer_id(&node).expect("valid key");
        assert_eq!(peer, kp.public().to_peer_id());
        assert_eq!(peer_id_to_node_id(&peer), Some(node));
    }

    #[test]
    fn same_secret_gives_same_peer_id() {
        let a = keypair_from_ed25519_secret([42u8; 32])
            .public()
            .to_peer_id();
        let b = keypair_from_ed25519_secret([42u8; 32])
            .public()
            .to_peer_id();
        let c = keypair_from_ed25519_secret([43u8; 32])
            .public()
            .to_peer_id();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn random_peer_id_is_not_a_node_id() {
        // A sha256-hashed PeerId carries no key to recover.
        assert_eq!(peer_id_to_node_id(&PeerId::random()), None);
    }

    #[test]
    fn invalid_point_is_rejected() {
        // Not every 32-byte string is a curve point; find one that is not.
        let bad = (0u8..=255)
            .map(|b| NodeId([b; 32]))
            .find(|n| node_id_to_peer_id(n).is_err());
        assert!(
            bad.is_some(),
            "some constant byte string must fail to decode"
        );
    }
}
