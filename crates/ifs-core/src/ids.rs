//! Identifiers: chunk ids (BLAKE3 of ciphertext) and node / user public keys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Error parsing an identifier from text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdParseError {
    /// Not 64 hex digits.
    #[error("expected 64 hex digits, got {0:?}")]
    BadHex(String),
}

fn parse_hex32(s: &str) -> Result<[u8; 32], IdParseError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdParseError::BadHex(s.to_string()))?;
    Ok(out)
}

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(#[serde(with = "serde_bytes")] pub [u8; 32]);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Lower-case hex, 64 digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parse 64 hex digits.
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                parse_hex32(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

id32!(
    /// A chunk's name: BLAKE3 of its ciphertext.
    ChunkId
);
id32!(
    /// A node's identity: its ed25519 public key. `ifs-net` maps it to a libp2p `PeerId`.
    NodeId
);
id32!(
    /// A user's signing identity: the ed25519 public key of a user key.
    UserId
);

impl ChunkId {
    /// The id of a chunk with these ciphertext bytes.
    pub fn of(ciphertext: &[u8]) -> Self {
        ChunkId(*blake3::hash(ciphertext).as_bytes())
    }
}

/// Chunk bytes known to hash to their id. Checked once, where the bytes
/// arrive (a fetch that must fall back to another holder on a mismatch
/// checks anyway), so later stages such as
/// [`Decoder::push_checked`](crate::codec::Decoder::push_checked) need not
/// hash them again. The only way to make one is [`CheckedChunk::check`].
#[derive(Debug)]
pub struct CheckedChunk {
    id: ChunkId,
    data: Vec<u8>,
}

impl CheckedChunk {
    /// The bytes, if they hash to `id`; else the bytes back, unchanged.
    pub fn check(id: &ChunkId, data: Vec<u8>) -> Result<Self, Vec<u8>> {
        if ChunkId::of(&data) == *id {
            Ok(CheckedChunk { id: *id, data })
        } else {
            Err(data)
        }
    }

    /// The id the bytes hash to.
    pub fn id(&self) -> &ChunkId {
        &self.id
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes, giving up the proof.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_bytes_are_checked() {
        let id = ChunkId::of(b"the real chunk");
        let ok = CheckedChunk::check(&id, b"the real chunk".to_vec()).unwrap();
        assert_eq!((ok.id(), ok.data()), (&id, &b"the real chunk"[..]));
        let bad = CheckedChunk::check(&id, b"the fake chunk".to_vec()).unwrap_err();
        assert_eq!(bad, b"the fake chunk", "the buffer comes back for reuse");
    }

    #[test]
    fn hex_round_trip() {
        let id = ChunkId::of(b"hello");
        assert_eq!(ChunkId::from_hex(&id.to_hex()).unwrap(), id);
        assert!(ChunkId::from_hex("zz").is_err());
    }
}
