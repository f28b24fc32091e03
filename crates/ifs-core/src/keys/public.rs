//! A user's shareable public key: the ed25519 id that signs and the x25519
//! key that file keys are wrapped to, as one self-checking string.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// Prefix of the text form; the digit is the format version.
const PREFIX: &str = "ifspub1";
/// ed25519 public ‖ x25519 public ‖ 4-byte checksum.
const BODY_LEN: usize = 32 + 32 + 4;

/// Why a public key string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicKeyError {
    /// It does not start with `ifspub1`.
    #[error("not an IFS public key: it must start with \"{PREFIX}\" (see `ifsnode key show`)")]
    BadPrefix,
    /// Wrong length or not hex.
    #[error("malformed IFS public key: expected \"{PREFIX}\" and {} hex digits", 2 * BODY_LEN)]
    Malformed,
    /// The checksum does not match (a typo or a truncated copy).
    #[error("IFS public key checksum mismatch: the key was mistyped or cut short")]
    BadChecksum,
    /// The ed25519 half is not a valid curve point.
    #[error("IFS public key holds an invalid ed25519 key")]
    BadSigningKey,
}

/// The public half of a [`super::UserKey`]: who a user is and how to wrap
/// a file key for them. Text form: `ifspub1` followed by 136 hex digits
/// (ed25519 ‖ x25519 ‖ first 4 bytes of BLAKE3 of both).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserPublic {
    /// The user's id (ed25519 public key).
    pub user: UserId,
    /// The user's x25519 public key.
    #[serde(with = "serde_bytes")]
    pub x25519: [u8; 32],
}

impl UserPublic {
    fn checksum(&self) -> [u8; 4] {
        let mut h = blake3::Hasher::new();
        h.update(PREFIX.as_bytes());
        h.update(self.user.as_bytes());
        h.update(&self.x25519);
        let mut out = [0u8; 4];
        out.copy_from_slice(&h.finalize().as_bytes()[..4]);
        out
    }
}

impl fmt::Display for UserPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = Vec::with_capacity(BODY_LEN);
        body.extend_from_slice(self.user.as_bytes());
        body.extend_from_slice(&self.x25519);
        body.extend_from_slice(&self.checksum());
        write!(f, "{PREFIX}{}", hex::encode(body))
    }
}

impl fmt::Debug for UserPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserPublic({:?})", self.user)
    }
}

impl FromStr for UserPublic {
    type Err = PublicKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let hex_part = s.strip_prefix(PREFIX).ok_or(PublicKeyError::BadPrefix)?;
        let mut body = [0u8; BODY_LEN];
        hex::decode_to_slice(hex_part, &mut body).map_err(|_| PublicKeyError::Malformed)?;
        let mut user = [0u8; 32];
        user.copy_from_slice(&body[..32]);
        let mut x25519 = [0u8; 32];
        x25519.copy_from_slice(&body[32..64]);
        let key = UserPublic {
            user: UserId(user),
            x25519,
        };
        if key.checksum() != body[64..] {
            return Err(PublicKeyError::BadChecksum);
        }
        VerifyingKey::from_bytes(&user).map_err(|_| PublicKeyError::BadSigningKey)?;
        Ok(key)
    }
}
