//! Wrapping a file key for one recipient (DESIGN "Sharing").
//!
//! Ephemeral x25519 with the recipient's static key, HKDF-SHA256 over the
//! shared secret and both public keys, AES-256-GCM over the 32-byte file key.
//! A fresh ephemeral key per wrap makes every derived AES key single-use,
//! so the nonce can be derived rather than stored.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

use super::KeyError;

const WRAP_INFO: &[u8] = b"ifs/keywrap/v1";

/// A file key encrypted to one recipient's x25519 key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyWrap {
    /// The recipient's x25519 public key, so a reader finds its own wrap.
    #[serde(with = "serde_bytes")]
    pub recipient: [u8; 32],
    /// The sender's one-time x25519 public key.
    #[serde(with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// AES-256-GCM of the file key: 32 bytes plus a 16-byte tag.
    #[serde(with = "serde_bytes")]
    pub sealed: [u8; 48],
}

/// AES key and nonce for one wrap, bound to both public keys.
fn derive(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> ([u8; 32], [u8; 12]) {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut okm = [0u8; 44];
    // 44 bytes is far below HKDF-SHA256's 255*32 limit, so expand cannot fail.
    let _ = hk.expand(WRAP_INFO, &mut okm);
    let mut key = [0u8; 32];
    key.copy_from_slice(&okm[..32]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    (key, nonce)
}

/// Wrap `file_key` so that only the holder of `recipient_x25519_pub`'s secret can open it.
pub fn wrap_key(
    file_key: &[u8; 32],
    recipient_x25519_pub: &[u8; 32],
    rng: &mut impl CryptoRng,
) -> Result<KeyWrap, KeyError> {
    let eph = StaticSecret::random_from_rng(rng);
    let eph_pub = XPublic::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&XPublic::from(*recipient_x25519_pub));
    // A low-order recipient key yields an all-zero secret anyone can compute.
    if !shared.was_contributory() {
        return Err(KeyError::WeakPublicKey);
    }
    let (key, nonce) = derive(shared.as_bytes(), &eph_pub, recipient_x25519_pub);
    let cipher = Aes256Gcm::new(&key.into());
    let sealed = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: file_key,
                aad: WRAP_INFO,
            },
        )
        .map_err(|_| KeyError::UnwrapFailed)?;
    let sealed: [u8; 48] = sealed.try_into().map_err(|_| KeyError::UnwrapFailed)?;
    Ok(KeyWrap {
        recipient: *recipient_x25519_pub,
        ephemeral: eph_pub,
        sealed,
    })
}

pub(super) fn unwrap(
    secret: &StaticSecret,
    own_pub: &[u8; 32],
    wrap: &KeyWrap,
) -> Result<[u8; 32], KeyError> {
    if &wrap.recipient != own_pub {
        return Err(KeyError::UnwrapFailed);
    }
    let shared = secret.diffie_hellman(&XPublic::from(wrap.ephemeral));
    if !shared.was_contributory() {
        return Err(KeyError::UnwrapFailed);
    }
    let (key, nonce) = derive(shared.as_bytes(), &wrap.ephemeral, own_pub);
    let cipher = Aes256Gcm::new(&key.into());
    let plain = cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &wrap.sealed,
                aad: WRAP_INFO,
            },
        )
        .map_err(|_| KeyError::UnwrapFailed)?;
    plain.try_into().map_err(|_| KeyError::UnwrapFailed)
}
