//! Node and user keys, domain-separated signatures and key wrapping.
//!
//! Every signature in IFS covers `"ifs-sig\0" ‖ len(domain) ‖ domain ‖ msg`,
//! so a signature made for one purpose (say a receipt) can never be replayed
//! as another (say a capacity report). The domains in use are listed in
//! [`domain`].

mod public;
mod wrap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use std::fmt;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

use crate::ids::{NodeId, UserId};

pub use public::{PublicKeyError, UserPublic};
pub use wrap::{KeyWrap, wrap_key};

/// Signature domains: one per kind of signed statement.
pub mod domain {
    /// A node's [`crate::wire::CapacityReport`].
    pub const CAPACITY: &str = "ifs/capacity/v1";
    /// A node's [`crate::wire::ReservationGrant`].
    pub const RESERVATION: &str = "ifs/reservation/v1";
    /// A client's [`crate::wire::HeaderChain`].
    pub const CHAIN: &str = "ifs/chain/v1";
    /// A node's [`crate::wire::Receipt`].
    pub const RECEIPT: &str = "ifs/receipt/v1";
    /// An owner's [`crate::wire::Manifest`].
    pub const MANIFEST: &str = "ifs/manifest/v1";
    /// An owner's delete of a file ([`crate::wire::FileDelete`]).
    pub const DELETE: &str = "ifs/delete/v1";
    /// A holder's release of one chunk copy ([`crate::wire::ChunkRelease`]).
    pub const RELEASE: &str = "ifs/release/v1";
    /// A requester's [`crate::wire::FetchRequest`].
    pub const FETCH: &str = "ifs/fetch/v1";
    /// An owner's directory entry ([`crate::dir_record::DirEntry`]).
    pub const DIR_ENTRY: &str = "ifs/dir-entry/v1";
    /// An owner's folder entry ([`crate::folder_record::FolderEntry`]).
    pub const FOLDER_ENTRY: &str = "ifs/folder-entry/v1";
    /// A user's [`crate::wire::ReserveRequest`].
    pub const RESERVE: &str = "ifs/reserve/v1";
    /// A user's [`crate::wire::SettleRequest`].
    pub const SETTLE: &str = "ifs/settle/v1";
}

/// Errors loading or using key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key bytes have the wrong length.
    #[error("key material has {got} bytes, expected {expected}")]
    BadLength {
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The serialized user key does not start with the IFS magic.
    #[error("not an IFS user key (bad magic)")]
    BadMagic,
    /// The serialized user key uses a format version this build cannot read.
    #[error("unsupported user key format version {0}")]
    UnsupportedVersion(u8),
    /// The serialized user key's checksum does not match (corrupt file).
    #[error("user key checksum mismatch (corrupt key file)")]
    BadChecksum,
    /// A key wrap is not addressed to this key or does not decrypt.
    #[error("key wrap cannot be opened with this key")]
    UnwrapFailed,
    /// A public key is a low-order point (no shared secret possible).
    #[error("recipient x25519 key is not usable")]
    WeakPublicKey,
}

/// Errors checking a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigError {
    /// The signer's public key is not a valid ed25519 point.
    #[error("signer public key is malformed")]
    BadPublicKey,
    /// The signature does not match the message under this key and domain.
    #[error("signature does not verify")]
    Invalid,
}

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sig(#[serde(with = "serde_bytes")] pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({}…)", &hex::encode(&self.0[..6]))
    }
}

/// The exact bytes that get signed: a fixed prefix, the domain (length
/// prefixed so that no domain is a prefix of another's signed input), the message.
fn signed_input(domain: &str, msg: &[u8]) -> Vec<u8> {
    let d = domain.as_bytes();
    let dlen = u8::try_from(d.len()).unwrap_or(u8::MAX);
    let mut out = Vec::with_capacity(9 + d.len() + msg.len());
    out.extend_from_slice(b"ifs-sig\0");
    out.push(dlen);
    out.extend_from_slice(&d[..usize::from(dlen)]);
    out.extend_from_slice(msg);
    out
}

fn sign_with(key: &SigningKey, domain: &str, msg: &[u8]) -> Sig {
    Sig(key.sign(&signed_input(domain, msg)).to_bytes())
}

/// Check `sig` over `msg` in `domain` by the ed25519 key `signer_pubkey`
/// (a [`NodeId`] or [`UserId`]'s bytes). Uses strict verification, so
/// malleated signatures and small-order keys are rejected.
pub fn verify(
    signer_pubkey: &[u8; 32],
    domain: &str,
    msg: &[u8],
    sig: &Sig,
) -> Result<(), SigError> {
    let vk = VerifyingKey::from_bytes(signer_pubkey).map_err(|_| SigError::BadPublicKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    vk.verify_strict(&signed_input(domain, msg), &sig)
        .map_err(|_| SigError::Invalid)
}

/// Verify many signatures of one signer over `msgs` at once (ed25519
/// batch verification: about 4× as fast per signature as one by one, 1.4
/// to 1.6× ed25519-dalek's `verify_batch`, see `scripts/bench-sigs.sh`).
/// `Ok` only when every signature is valid; on an error [`verify`] each
/// one to learn which. A batch checks one random combination of the
/// signatures' equations, which [`verify`]'s strict check does not: a
/// signature with a small-order component made on purpose by the signer
/// (never by an honest one) may pass here, with a probability its
/// coefficient decides, and fail there. Only the signer can make such a
/// signature, and only over its own records.
pub fn verify_all(
    signer_pubkey: &[u8; 32],
    domain: &str,
    msgs: &[Vec<u8>],
    sigs: &[Sig],
) -> Result<(), SigError> {
    if msgs.len() != sigs.len() {
        return Err(SigError::Invalid);
    }
    if msgs.is_empty() {
        return Ok(());
    }
    let vk = VerifyingKey::from_bytes(signer_pubkey).map_err(|_| SigError::BadPublicKey)?;
    if vk.is_weak() {
        return Err(SigError::BadPublicKey);
    }
    let a = CompressedEdwardsY(*signer_pubkey)
        .decompress()
        .ok_or(SigError::BadPublicKey)?;
    // hram_i = SHA-512(R_i ‖ A ‖ M_i), as a single verification computes it.
    let mut hrams = Vec::with_capacity(msgs.len());
    let mut seed = blake3::Hasher::new_derive_key("ifs ed25519 batch coefficients v1");
    for (m, sig) in msgs.iter().zip(sigs) {
        let mut h = Sha512::new();
        h.update(&sig.0[..32]);
        h.update(signer_pubkey);
        h.update(signed_input(domain, m));
        let hram: [u8; 64] = h.finalize().into();
        seed.update(&hram);
        seed.update(&sig.0[32..]);
        hrams.push(Scalar::from_bytes_mod_order_wide(&hram));
    }
    // The coefficients z_i: 128 bits each, drawn from a hash of every
    // input (as ed25519-dalek's transcript does), so a forger cannot pick
    // signatures that cancel out.
    let mut zs_out = seed.finalize_xof();
    let mut b_coefficient = Scalar::ZERO;
    let mut a_coefficient = Scalar::ZERO;
    let mut zs = Vec::with_capacity(msgs.len());
    let mut rs = Vec::with_capacity(msgs.len());
    for (sig, hram) in sigs.iter().zip(&hrams) {
        let mut z = [0u8; 16];
        zs_out.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        let s_bytes: [u8; 32] = sig.0[32..].try_into().map_err(|_| SigError::Invalid)?;
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
            .ok_or(SigError::Invalid)?;
        let r_bytes: [u8; 32] = sig.0[..32].try_into().map_err(|_| SigError::Invalid)?;
        rs.push(CompressedEdwardsY(r_bytes).decompress());
        b_coefficient += z * s;
        a_coefficient += z * hram;
        zs.push(z);
    }
    // [-Σ z_i s_i] B + Σ z_i R_i + [Σ z_i hram_i] A = 0: ed25519-dalek's
    // batch equation with the one signer's n terms A folded into one,
    // n + 2 points in the multiplication instead of 2n + 1.
    let id = EdwardsPoint::optional_multiscalar_mul(
        std::iter::once(-b_coefficient)
            .chain(zs)
            .chain(std::iter::once(a_coefficient)),
        std::iter::once(Some(ED25519_BASEPOINT_POINT))
            .chain(rs)
            .chain(std::iter::once(Some(a))),
    )
    .ok_or(SigError::Invalid)?;
    if id.is_identity() {
        Ok(())
    } else {
        Err(SigError::Invalid)
    }
}

/// A node's ed25519 identity key. Its public half is the node's [`NodeId`].
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl NodeKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self {
            signing: SigningKey::generate(rng),
        }
    }

    /// Load from the 32-byte ed25519 secret (as written by [`Self::to_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let secret: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadLength {
            got: bytes.len(),
            expected: 32,
        })?;
        Ok(Self {
            signing: SigningKey::from_bytes(&secret),
        })
    }

    /// The 32-byte ed25519 secret. Keep it private (mode 0600 on disk).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// This node's id (its ed25519 public key).
    pub fn node_id(&self) -> NodeId {
        NodeId(self.signing.verifying_key().to_bytes())
    }

    /// Sign `msg` in `domain` (see [`domain`]).
    pub fn sign(&self, domain: &str, msg: &[u8]) -> Sig {
        sign_with(&self.signing, domain, msg)
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "NodeKey({:?})", self.node_id())
    }
}

/// Magic and version of the serialized [`UserKey`].
const USER_KEY_MAGIC: &[u8; 4] = b"IFSU";
/// BLAKE3 context of the owner → reader shared folder root.
const SHARED_ROOT_CONTEXT: &str = "ifs 2026 shared folder root v1";
const USER_KEY_VERSION: u8 = 1;
/// magic + version + ed25519 secret + x25519 secret + 4-byte checksum.
const USER_KEY_LEN: usize = 4 + 1 + 32 + 32 + 4;

/// A client's key: ed25519 for signing (its public half is the [`UserId`])
/// and a static x25519 secret for receiving shared file keys.
#[derive(Clone)]
pub struct UserKey {
    signing: SigningKey,
    x25519: StaticSecret,
}

impl UserKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let signing = SigningKey::generate(rng);
        let x25519 = StaticSecret::random_from_rng(rng);
        Self { signing, x25519 }
    }

    /// Serialize: `"IFSU" ‖ version 1 ‖ ed25519 secret ‖ x25519 secret ‖
    /// first 4 bytes of BLAKE3 of all before` (73 bytes). Secret: store 0600.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(USER_KEY_LEN);
        out.extend_from_slice(USER_KEY_MAGIC);
        out.push(USER_KEY_VERSION);
        out.extend_from_slice(&self.signing.to_bytes());
        out.extend_from_slice(&self.x25519.to_bytes());
        let sum = blake3::hash(&out);
        out.extend_from_slice(&sum.as_bytes()[..4]);
        out
    }

    /// Load what [`Self::to_bytes`] wrote, checking magic, version and checksum.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() >= 5 && &bytes[..4] == USER_KEY_MAGIC && bytes[4] != USER_KEY_VERSION {
            return Err(KeyError::UnsupportedVersion(bytes[4]));
        }
        if bytes.len() != USER_KEY_LEN {
            return Err(KeyError::BadLength {
                got: bytes.len(),
                expected: USER_KEY_LEN,
            });
        }
        if &bytes[..4] != USER_KEY_MAGIC {
            return Err(KeyError::BadMagic);
        }
        let (body, sum) = bytes.split_at(USER_KEY_LEN - 4);
        if &blake3::hash(body).as_bytes()[..4] != sum {
            return Err(KeyError::BadChecksum);
        }
        let mut ed = [0u8; 32];
        ed.copy_from_slice(&body[5..37]);
        let mut x = [0u8; 32];
        x.copy_from_slice(&body[37..69]);
        Ok(Self {
            signing: SigningKey::from_bytes(&ed),
            x25519: StaticSecret::from(x),
        })
    }

    /// The user's id (ed25519 public key).
    pub fn user_id(&self) -> UserId {
        UserId(self.signing.verifying_key().to_bytes())
    }

    /// The x25519 public key others wrap file keys to.
    pub fn x25519_public(&self) -> [u8; 32] {
        XPublic::from(&self.x25519).to_bytes()
    }

    /// The public half to give others (see [`UserPublic`]).
    pub fn public(&self) -> UserPublic {
        UserPublic {
            user: self.user_id(),
            x25519: self.x25519_public(),
        }
    }

    /// Sign `msg` in `domain` (see [`domain`]).
    pub fn sign(&self, domain: &str, msg: &[u8]) -> Sig {
        sign_with(&self.signing, domain, msg)
    }

    /// The key of the user's root folder (see [`crate::folder_record`]),
    /// derived from the ed25519 secret in its own BLAKE3 context, so it
    /// reveals nothing about the signing key and is the same on every
    /// machine holding this user key.
    pub fn folder_root_key(&self) -> [u8; 32] {
        blake3::derive_key("ifs 2026 root folder key v1", &self.signing.to_bytes())
    }

    /// The opaque handle of the user's file at `path`: what its manifest,
    /// record key and tombstones carry instead of the path. 64 hex digits
    /// of a BLAKE3 keyed by a secret derived from the signing key, so a
    /// node that sees a handle can neither read the path nor test a guess.
    pub fn file_handle(&self, path: &str) -> String {
        let key = blake3::derive_key("ifs 2026 file handle key v1", &self.signing.to_bytes());
        hex::encode(blake3::keyed_hash(&key, path.as_bytes()).as_bytes())
    }

    /// The secret this key shares with `other` (x25519 agreement between
    /// this key's secret and `other`'s public key), bound to the direction
    /// `from` → `to` (their x25519 public keys) and to `context`. Both ends
    /// derive the same bytes; nobody else can.
    fn pair_secret(
        &self,
        other: &[u8; 32],
        from: &[u8; 32],
        to: &[u8; 32],
        context: &str,
    ) -> [u8; 32] {
        let dh = self.x25519.diffie_hellman(&XPublic::from(*other));
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(dh.as_bytes());
        h.update(from);
        h.update(to);
        *h.finalize().as_bytes()
    }

    /// The root folder key of what this key (the owner) shares with
    /// `reader`: a folder tree only the two can locate and read, where a
    /// share leaves the shared file's handle under its path.
    pub fn shared_root_to(&self, reader: &UserPublic) -> [u8; 32] {
        let me = self.x25519_public();
        self.pair_secret(&reader.x25519, &me, &reader.x25519, SHARED_ROOT_CONTEXT)
    }

    /// The root folder key of what `owner` shares with this key (the
    /// reader): the same bytes as the owner's [`Self::shared_root_to`].
    pub fn shared_root_from(&self, owner: &UserPublic) -> [u8; 32] {
        let me = self.x25519_public();
        self.pair_secret(&owner.x25519, &owner.x25519, &me, SHARED_ROOT_CONTEXT)
    }

    /// Open a [`KeyWrap`] made for this key's x25519 public key.
    pub fn unwrap_key(&self, wrap: &KeyWrap) -> Result<[u8; 32], KeyError> {
        wrap::unwrap(&self.x25519, &self.x25519_public(), wrap)
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({:?})", self.user_id())
    }
}

#[cfg(test)]
mod tests;
