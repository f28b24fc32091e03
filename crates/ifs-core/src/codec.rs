//! The chunk codec: segment → zstd → AES-256-GCM, chunk id = BLAKE3(ciphertext).
//!
//! # Format (version 1)
//!
//! The input is cut into *segments* of `segment_size` plaintext bytes (the
//! last one may be shorter; a 0-byte input is one empty segment). Cutting
//! before compressing lets every segment be compressed, encrypted and later
//! decoded on its own, in parallel, and bounds what one chunk can inflate to.
//!
//! Each segment becomes one chunk:
//!
//! ```text
//! sealed   = body ‖ plain_len: u32 LE ‖ encoding: u8      (the AEAD plaintext)
//! chunk    = AES-256-GCM(file key, nonce, aad = "ifs/chunk/1", sealed) ‖ tag[16]
//! nonce    = nonce prefix[7] ‖ segment index: u32 BE ‖ last: u8 (0 or 1)
//! chunk id = BLAKE3(chunk)
//! ```
//!
//! `encoding` is 0 (body stored as is) or 1 (body is one zstd frame). It sits
//! inside the authenticated plaintext, so it cannot be flipped without the
//! key; a trailer rather than a header lets a stored segment be decrypted in
//! place and handed out by truncation, without moving it. A segment is
//! compressed only when a sample of it shrinks by at least 1/32 *and* the
//! whole compressed body is smaller than the segment, so a chunk is never
//! longer than `segment_size + CHUNK_OVERHEAD`.
//!
//! The segment index and the last flag in the nonce make reordering and
//! truncation fail authentication; the ordered chunk ids in the manifest add
//! completeness. The decoder caps every segment at `segment_size` plaintext
//! bytes, checked against the trailer before any decompression.
//!
//! [`Encoder`] and [`Decoder`] stream: a few segments are in flight on worker
//! threads (`std::thread`), never the whole file. [`decode_segment`] decodes
//! one chunk with no threads, for callers that fetch chunks themselves.

mod decoder;
mod encoder;
mod error;
mod pool;
mod segment;

pub use decoder::{ChunkBuffers, Decoder, WriteAt};
pub use encoder::Encoder;
pub use error::CodecError;
pub use segment::{decode_segment, seal_segment};

use crate::ids::ChunkId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bytes a chunk adds to its segment at most: the 5-byte trailer and the 16-byte tag.
pub const CHUNK_OVERHEAD: usize = segment::TRAILER_LEN + segment::TAG_LEN;

/// Largest accepted `segment_size`: its chunk (segment plus
/// [`CHUNK_OVERHEAD`]) is the largest a node accepts on a stream
/// ([`crate::proto::MAX_CHUNK_BYTES`]), and a few of these per thread must
/// fit comfortably in memory.
pub const MAX_SEGMENT_SIZE: usize = 64 << 20;

/// Default plaintext bytes per segment (and so per chunk).
pub const DEFAULT_SEGMENT_SIZE: usize = 8 << 20;

/// Tuning of the encoder and decoder.
///
/// Only `segment_size` matters for compatibility: the decoder must be given
/// at least the encoder's value, as it refuses segments that inflate beyond
/// it. The other fields trade speed for memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecParams {
    /// Plaintext bytes per segment; 1..=[`MAX_SEGMENT_SIZE`]. Default 8 MiB.
    pub segment_size: usize,
    /// zstd level used when a segment compresses. Default 1.
    pub zstd_level: i32,
    /// Worker threads. Default: the available cores.
    pub threads: usize,
    /// Segments queued or being worked on at once; bounds memory to roughly
    /// `2 × in_flight × segment_size`. Default: `threads + 2`.
    pub in_flight: usize,
}

impl Default for CodecParams {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        CodecParams {
            segment_size: DEFAULT_SEGMENT_SIZE,
            zstd_level: 1,
            threads,
            in_flight: threads + 2,
        }
    }
}

impl CodecParams {
    /// The default parameters with another segment size.
    pub fn with_segment_size(segment_size: usize) -> Self {
        CodecParams {
            segment_size,
            ..CodecParams::default()
        }
    }

    /// Checks the values; zero threads or in-flight counts are raised to
    /// the smallest that work.
    pub(crate) fn validated(&self) -> Result<CodecParams, CodecError> {
        if self.segment_size == 0 || self.segment_size > MAX_SEGMENT_SIZE {
            return Err(CodecError::InvalidParams {
                reason: "segment_size must be in 1..=MAX_SEGMENT_SIZE",
            });
        }
        let threads = self.threads.max(1);
        Ok(CodecParams {
            segment_size: self.segment_size,
            zstd_level: self.zstd_level,
            threads,
            // Fewer than one queued job per worker would leave a core idle.
            in_flight: self.in_flight.max(threads),
        })
    }
}

/// The per-file AES-256-GCM key. Fresh and random for every file (and every
/// re-key); the manifest carries it wrapped for each reader.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey(pub [u8; 32]);

impl FileKey {
    /// A fresh random key from the given generator.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        FileKey(k)
    }

    /// The raw key bytes, for wrapping.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for FileKey {
    // Keys must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(…)")
    }
}

/// The random first 7 bytes of every nonce of one file. With a fresh
/// [`FileKey`] per file it is belt and braces; it matters if a key is ever
/// reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoncePrefix(#[serde(with = "serde_bytes")] pub [u8; 7]);

impl NoncePrefix {
    /// A fresh random prefix from the given generator.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut p = [0u8; 7];
        rng.fill_bytes(&mut p);
        NoncePrefix(p)
    }
}

impl fmt::Debug for NoncePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoncePrefix({})", hex::encode(self.0))
    }
}

/// One encrypted segment, ready to be placed and replicated.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedChunk {
    /// Position of the segment in the file, from 0.
    pub index: u32,
    /// BLAKE3 of `data`.
    pub id: ChunkId,
    /// Whether this is the file's final segment.
    pub last: bool,
    /// Plaintext bytes this chunk decodes to.
    pub plain_len: u64,
    /// The ciphertext with its tag: what is stored and sent.
    pub data: Vec<u8>,
}

impl fmt::Debug for EncodedChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedChunk")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("last", &self.last)
            .field("plain_len", &self.plain_len)
            .field("len", &self.data.len())
            .finish()
    }
}
