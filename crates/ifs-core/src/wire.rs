//! Signed wire types with size-capped decoding.
//!
//! Every type here is CBOR (cbor4ii) on the wire and carries an ed25519
//! signature in its own domain (see [`crate::keys::domain`]). The signature
//! covers a CBOR encoding of every other field, recomputed from the decoded
//! values, so verification never depends on how the sender laid out bytes.
//!
//! `decode` refuses input above the type's `MAX_BYTES` before parsing, rejects
//! trailing bytes and checks structure (counts, lengths, ranges). It does not
//! check the signature: call `verify()` before trusting a value.

mod capacity;
mod chain;
mod fetch;
mod manifest;
mod receipt;
mod reservation;
mod tombstone;

use cbor4ii::core::dec::{Read, Reference};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::keys::SigError;

pub use capacity::{CapacityReport, CapacityStats, MAX_ADDR_LEN, MAX_ADDRS, MAX_VERSION_LEN};
pub use chain::{ChainHop, HeaderChain, MAX_HOPS};
pub use fetch::FetchRequest;
pub use manifest::{
    ChunkRef, MAX_CHUNKS, MAX_NAME_LEN, MAX_PAGES, MAX_READERS, MAX_WRAPS, Manifest,
    ManifestFields, PAGE_CHUNKS, PageRef, page_hash, page_name,
};
pub use receipt::Receipt;
pub use reservation::{ReservationGrant, ReserveRequest, SettleRequest};
pub use tombstone::{ChunkRelease, FileDelete, Tombstone};

/// Whether a request issued at `issued_at_ms` (the sender's clock) is
/// within `max_skew_ms` of `now_ms` either way.
pub fn is_fresh(issued_at_ms: u64, now_ms: u64, max_skew_ms: u64) -> bool {
    now_ms.abs_diff(issued_at_ms) <= max_skew_ms
}

/// Errors decoding or checking a wire message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The input is larger than the type allows; it was not parsed.
    #[error("{what}: {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Which type.
        what: &'static str,
        /// Bytes given.
        len: usize,
        /// The type's cap.
        max: usize,
    },
    /// The bytes are not a CBOR encoding of this type.
    #[error("{what}: malformed encoding: {detail}")]
    Malformed {
        /// Which type.
        what: &'static str,
        /// The decoder's description.
        detail: String,
    },
    /// A valid value was followed by extra bytes.
    #[error("{what}: trailing bytes after the value")]
    TrailingBytes {
        /// Which type.
        what: &'static str,
    },
    /// The value parsed but breaks a structural rule.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which type.
        what: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// The file name breaks the rule of [`crate::name`].
    #[error("{what}: {source}")]
    BadName {
        /// Which type.
        what: &'static str,
        /// The rule broken.
        source: crate::name::NameError,
    },
    /// The signature does not verify under the key the type names.
    #[error("{what}: bad signature: {source}")]
    BadSignature {
        /// Which type.
        what: &'static str,
        /// Why verification failed.
        source: SigError,
    },
}

/// CBOR encoding of a value we built ourselves.
pub(crate) fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec fails only when allocation fails, which aborts anyway.
    cbor4ii::serde::to_vec(Vec::new(), value).expect("CBOR encoding into memory")
}

/// Decode `bytes` as `T`, refusing more than `max` bytes before parsing
/// and any bytes after the value.
pub(crate) fn from_cbor<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let mut de = cbor4ii::serde::Deserializer::new(cbor4ii::core::utils::SliceReader::new(bytes));
    let value = T::deserialize(&mut de).map_err(|e| WireError::Malformed {
        what,
        detail: e.to_string(),
    })?;
    let mut rest = de.into_inner();
    let trailing = match rest.fill(1) {
        Ok(Reference::Long(b)) => !b.is_empty(),
        Ok(Reference::Short(b)) => !b.is_empty(),
        Err(_) => false,
    };
    if trailing {
        return Err(WireError::TrailingBytes { what });
    }
    Ok(value)
}

/// Map a signature failure to the wire error of type `what`.
pub(crate) fn sig_err(what: &'static str) -> impl FnOnce(SigError) -> WireError {
    move |source| WireError::BadSignature { what, source }
}

/// Fail with [`WireError::Invalid`] unless `ok`.
pub(crate) fn ensure(ok: bool, what: &'static str, reason: &'static str) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::Invalid { what, reason })
    }
}

/// Adds the inherent `MAX_BYTES`, `encode` and `decode` of a wire type whose
/// structural rules live in a private `fn check(&self) -> Result<(), WireError>`.
macro_rules! wire_codec {
    ($ty:ty, $what:expr, $max:expr) => {
        impl $ty {
            /// Largest accepted encoding, in bytes.
            pub const MAX_BYTES: usize = $max;

            /// The CBOR encoding.
            pub fn encode(&self) -> Vec<u8> {
                $crate::wire::to_cbor(self)
            }

            /// Parse and check structure (size cap first, then CBOR, then
            /// rules). Does not check the signature: call `verify`.
            pub fn decode(bytes: &[u8]) -> Result<Self, $crate::wire::WireError> {
                let value: Self = $crate::wire::from_cbor(bytes, $max, $what)?;
                value.check()?;
                Ok(value)
            }
        }
    };
}
pub(crate) use wire_codec;

#[cfg(test)]
mod tests;
