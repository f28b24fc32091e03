//! The owner-signed manifest of one file version.

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::codec::NoncePrefix;
use crate::ids::{ChunkId, UserId};
use crate::keys::{KeyWrap, Sig, UserKey, domain, verify};

const WHAT: &str = "manifest";
/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Most chunks one manifest lists (512 GiB at 8 MiB segments). A put
/// writes at most [`PAGE_CHUNKS`] into one manifest; the higher cap is what
/// nodes accept from records written before pages.
pub const MAX_CHUNKS: usize = 65_536;
/// Chunks per manifest page: a file's root manifest lists its first
/// `PAGE_CHUNKS` chunks, page `p ≥ 1` (a record of its own, see
/// [`page_name`]) the next. 112 keeps a record under the 2 MiB a DHT
/// record holds even when every chunk carries the most receipts and
/// releases a record keeps (which anyone with node keys can make it
/// carry), and for the root also the most readers, key wraps and page
/// references.
pub const PAGE_CHUNKS: usize = 112;
/// Most pages besides the root: 458,752 chunks in all, 3.5 TiB at 8 MiB
/// segments (28 TiB at 64 MiB). Bounded by the root's page references,
/// which share its record with its own chunks' receipts.
pub const MAX_PAGES: usize = 4_095;

/// The name of page `page` (≥ 1) of the file whose root record is named
/// `root` (its handle): a record of its own, keyed like any file record.
pub fn page_name(root: &str, page: usize) -> String {
    format!("{root}~p{page}")
}

/// How a root manifest names one of its pages: the page's chunk count and
/// the BLAKE3 of its chunk list, which the page's own manifest must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageRef {
    /// Chunks in the page (1..=[`PAGE_CHUNKS`]).
    pub chunks: u32,
    /// [`page_hash`] of the page's chunk list.
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
}

/// The BLAKE3 of a page's chunk list, as a [`PageRef`] carries it.
pub fn page_hash(chunks: &[ChunkRef]) -> [u8; 32] {
    *blake3::hash(&to_cbor(&chunks)).as_bytes()
}
/// Most key wraps (owner plus grantees).
pub const MAX_WRAPS: usize = 256;
/// Most readers in the fetch ACL.
pub const MAX_READERS: usize = 256;

/// One chunk of the file, in segment order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    /// BLAKE3 of the chunk's ciphertext.
    pub id: ChunkId,
    /// Ciphertext length in bytes.
    pub len: u64,
}

/// Most copies of a chunk a manifest may ask for.
pub const MAX_REPLICAS: u8 = 16;

/// Everything in a [`Manifest`] except the owner and signature, which
/// [`Manifest::new`] fills from the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFields {
    /// The file's name (its path in the owner's namespace).
    pub name: String,
    /// Version; a higher one replaces a lower one.
    pub version: u64,
    /// Plaintext size in bytes.
    pub size: u64,
    /// When the version was made, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Codec segment size used to encode (plaintext bytes).
    pub segment_size: u64,
    /// Codec nonce prefix used to encode.
    pub nonce_prefix: NoncePrefix,
    /// The chunks, in segment order.
    pub chunks: Vec<ChunkRef>,
    /// The file key wrapped for the owner and every grantee.
    pub key_wraps: Vec<KeyWrap>,
    /// Users besides the owner that nodes serve the chunks to.
    pub readers: Vec<UserId>,
    /// Copies of every chunk the owner asked for: what repair restores
    /// (1..=[`MAX_REPLICAS`]).
    pub replicas: u8,
    /// The file's further pages, in order, when it has more than
    /// [`PAGE_CHUNKS`] chunks (then `chunks` holds exactly the first
    /// `PAGE_CHUNKS`); empty otherwise, and in every page's own manifest.
    pub pages: Vec<PageRef>,
}

/// An owner-signed description of one version of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The file's owner; the signer.
    pub owner: UserId,
    /// See [`ManifestFields::name`].
    pub name: String,
    /// See [`ManifestFields::version`].
    pub version: u64,
    /// See [`ManifestFields::size`].
    pub size: u64,
    /// See [`ManifestFields::created_at_ms`].
    pub created_at_ms: u64,
    /// See [`ManifestFields::segment_size`].
    pub segment_size: u64,
    /// See [`ManifestFields::nonce_prefix`].
    pub nonce_prefix: NoncePrefix,
    /// See [`ManifestFields::chunks`].
    pub chunks: Vec<ChunkRef>,
    /// See [`ManifestFields::key_wraps`].
    pub key_wraps: Vec<KeyWrap>,
    /// See [`ManifestFields::readers`].
    pub readers: Vec<UserId>,
    /// See [`ManifestFields::replicas`].
    pub replicas: u8,
    /// See [`ManifestFields::pages`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageRef>,
    /// The owner's signature.
    pub sig: Sig,
}

wire_codec!(Manifest, WHAT, 4 << 20);

impl Manifest {
    /// Build and sign a manifest, checking its structure.
    pub fn new(owner: &UserKey, f: ManifestFields) -> Result<Self, WireError> {
        let mut m = Manifest {
            owner: owner.user_id(),
            name: f.name,
            version: f.version,
            size: f.size,
            created_at_ms: f.created_at_ms,
            segment_size: f.segment_size,
            nonce_prefix: f.nonce_prefix,
            chunks: f.chunks,
            key_wraps: f.key_wraps,
            readers: f.readers,
            replicas: f.replicas,
            pages: f.pages,
            sig: Sig([0; 64]),
        };
        m.check()?;
        m.sig = owner.sign(domain::MANIFEST, &m.signed_bytes());
        Ok(m)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        if !self.pages.is_empty() {
            return to_cbor(&(
                &self.owner,
                &self.name,
                self.version,
                self.size,
                self.created_at_ms,
                self.segment_size,
                &self.nonce_prefix,
                &self.chunks,
                &self.key_wraps,
                &self.readers,
                self.replicas,
                &self.pages,
            ));
        }
        // Unpaged manifests sign what they signed before pages existed.
        to_cbor(&(
            &self.owner,
            &self.name,
            self.version,
            self.size,
            self.created_at_ms,
            self.segment_size,
            &self.nonce_prefix,
            &self.chunks,
            &self.key_wraps,
            &self.readers,
            self.replicas,
        ))
    }

    /// Check structure and the owner's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.owner.as_bytes(),
            domain::MANIFEST,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    /// BLAKE3 of the encoding: breaks ties between equal versions.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// The signed content, to build the next version from (see
    /// [`Manifest::new`], which signs it again).
    pub fn fields(&self) -> ManifestFields {
        ManifestFields {
            name: self.name.clone(),
            version: self.version,
            size: self.size,
            created_at_ms: self.created_at_ms,
            segment_size: self.segment_size,
            nonce_prefix: self.nonce_prefix,
            chunks: self.chunks.clone(),
            key_wraps: self.key_wraps.clone(),
            readers: self.readers.clone(),
            replicas: self.replicas,
            pages: self.pages.clone(),
        }
    }

    /// Chunks of the whole file: this manifest's and its pages'.
    pub fn total_chunks(&self) -> u64 {
        self.pages
            .iter()
            .fold(self.chunks.len() as u64, |acc, p| acc + u64::from(p.chunks))
    }

    /// Whether nodes should serve this file's chunks to `user`.
    pub fn may_read(&self, user: &UserId) -> bool {
        *user == self.owner || self.readers.contains(user)
    }

    /// The wrap addressed to this x25519 public key, if any.
    pub fn wrap_for(&self, x25519_pub: &[u8; 32]) -> Option<&KeyWrap> {
        self.key_wraps.iter().find(|w| w.recipient == *x25519_pub)
    }

    /// The length the manifest gives `chunk`, if it lists it.
    pub fn chunk_len(&self, chunk: &ChunkId) -> Option<u64> {
        self.chunks.iter().find(|c| c.id == *chunk).map(|c| c.len)
    }

    /// Ciphertext bytes of one copy of the file.
    pub fn stored_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .fold(0u64, |acc, c| acc.saturating_add(c.len))
    }

    fn check(&self) -> Result<(), WireError> {
        crate::name::validate_name(&self.name)
            .map_err(|source| WireError::BadName { what: WHAT, source })?;
        ensure(
            (1..=MAX_REPLICAS).contains(&self.replicas),
            WHAT,
            "replicas out of range",
        )?;
        ensure(self.segment_size > 0, WHAT, "zero segment size")?;
        ensure(self.chunks.len() <= MAX_CHUNKS, WHAT, "too many chunks")?;
        ensure(self.pages.len() <= MAX_PAGES, WHAT, "too many pages")?;
        ensure(
            self.pages.is_empty() || self.chunks.len() == PAGE_CHUNKS,
            WHAT,
            "a paged manifest's root page is not full",
        )?;
        ensure(
            self.pages
                .iter()
                .all(|p| (1..=PAGE_CHUNKS as u32).contains(&p.chunks)),
            WHAT,
            "a page of a bad size",
        )?;
        ensure(
            self.pages
                .split_last()
                .is_none_or(|(_, full)| full.iter().all(|p| p.chunks == PAGE_CHUNKS as u32)),
            WHAT,
            "a page before the last is not full",
        )?;
        ensure(
            self.key_wraps.len() <= MAX_WRAPS,
            WHAT,
            "too many key wraps",
        )?;
        ensure(self.readers.len() <= MAX_READERS, WHAT, "too many readers")
    }
}
