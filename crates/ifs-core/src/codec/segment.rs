//! One segment ⇄ one chunk, with no threads: the unit both pipelines run on
//! their workers, and what [`decode_segment`] exposes to the network get path.

use super::pool::BufferPool;
use super::{CodecError, EncodedChunk, FileKey, NoncePrefix};
use crate::ids::ChunkId;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// `plain_len: u32 LE ‖ encoding: u8` at the end of the sealed plaintext.
pub(crate) const TRAILER_LEN: usize = 5;
/// AES-GCM tag appended to every chunk.
pub(crate) const TAG_LEN: usize = 16;
/// Binds every chunk to this format, so a future version cannot be confused with it.
const AAD: &[u8] = b"ifs/chunk/1";
const STORED: u8 = 0;
const ZSTD: u8 = 1;
/// The sample that decides whether a segment is worth compressing: a few
/// windows spread over it, so a segment whose head is compressible but whose
/// body is not (an archive with a text header) is judged by its body too.
const SAMPLE_WINDOWS: usize = 4;
const SAMPLE_WINDOW: usize = 16 << 10;

/// The 12-byte GCM nonce of a segment.
fn nonce(prefix: &NoncePrefix, index: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(&prefix.0);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// AES-256-GCM under the file key. aws-lc's implementation (already in the
/// build for QUIC) runs several times faster here than the pure-Rust one,
/// which the tests keep as an independent check of the format.
fn cipher(key: &FileKey) -> Result<LessSafeKey, CodecError> {
    UnboundKey::new(&AES_256_GCM, &key.0)
        .map(LessSafeKey::new)
        .map_err(|_| CodecError::Worker)
}

/// Compresses (or not), encrypts and names segments; one per worker thread,
/// so the zstd context and the expanded AES key are built once.
pub(crate) struct Sealer {
    cipher: LessSafeKey,
    prefix: NoncePrefix,
    zstd: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl Sealer {
    pub(crate) fn new(key: &FileKey, prefix: NoncePrefix, level: i32) -> Result<Self, CodecError> {
        let zstd = zstd::bulk::Compressor::new(level)
            .map_err(|source| CodecError::Compress { index: 0, source })?;
        Ok(Sealer {
            cipher: cipher(key)?,
            prefix,
            zstd,
            scratch: Vec::with_capacity(zstd::zstd_safe::compress_bound(SAMPLE_WINDOW)),
        })
    }

    /// Seals the segment in `plain` (capacity for the overhead is reserved
    /// if missing). Buffers no longer needed go back to `buffers`.
    pub(crate) fn seal(
        &mut self,
        index: u32,
        last: bool,
        mut plain: Vec<u8>,
        buffers: &BufferPool,
    ) -> Result<EncodedChunk, CodecError> {
        let plain_len = plain.len();
        let mut body = plain_len;
        let mut encoding = STORED;
        if self.worth_compressing(&plain) {
            let mut packed = buffers.take();
            // A body that would not fit in the segment's own size is no
            // saving; zstd then reports "too small" and the segment is stored.
            packed.reserve_exact(plain_len);
            if let Ok(n) = self.zstd.compress_to_buffer(&plain[..], &mut packed)
                && n < plain_len
            {
                body = n;
                encoding = ZSTD;
                std::mem::swap(&mut plain, &mut packed);
            }
            buffers.give(packed);
        }
        let mut sealed = plain;
        sealed.truncate(body);
        sealed.reserve_exact(super::CHUNK_OVERHEAD);
        // plain_len ≤ MAX_SEGMENT_SIZE < 2^32, checked with the params.
        sealed.extend_from_slice(&(plain_len as u32).to_le_bytes());
        sealed.push(encoding);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                nonce(&self.prefix, index, last),
                Aad::from(AAD),
                sealed.as_mut_slice(),
            )
            .map_err(|_| CodecError::Encrypt { index })?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(EncodedChunk {
            index,
            id: ChunkId::of(&sealed),
            last,
            plain_len: plain_len as u64,
            data: sealed,
        })
    }

    /// Whether a sample of `plain` shrinks by at least 1/32 under zstd.
    /// Small segments skip the sample: compressing them whole costs as little.
    fn worth_compressing(&mut self, plain: &[u8]) -> bool {
        if plain.len() <= SAMPLE_WINDOWS * SAMPLE_WINDOW {
            return !plain.is_empty();
        }
        let step = (plain.len() - SAMPLE_WINDOW) / (SAMPLE_WINDOWS - 1);
        let mut packed = 0;
        for w in 0..SAMPLE_WINDOWS {
            let window = &plain[w * step..w * step + SAMPLE_WINDOW];
            packed += self
                .zstd
                .compress_to_buffer(window, &mut self.scratch)
                .unwrap_or(SAMPLE_WINDOW);
        }
        let sampled = SAMPLE_WINDOWS * SAMPLE_WINDOW;
        packed + sampled / 32 <= sampled
    }
}

/// Checks, decrypts and decompresses chunks of one file; one per worker.
pub(crate) struct Opener {
    cipher: LessSafeKey,
    prefix: NoncePrefix,
    zstd: zstd::bulk::Decompressor<'static>,
    max_plain: usize,
}

impl Opener {
    pub(crate) fn new(
        key: &FileKey,
        prefix: NoncePrefix,
        max_plain: usize,
    ) -> Result<Self, CodecError> {
        let zstd = zstd::bulk::Decompressor::new().map_err(|_| CodecError::Worker)?;
        Ok(Opener {
            cipher: cipher(key)?,
            prefix,
            zstd,
            max_plain,
        })
    }

    /// Opens the chunk at `index` into its plaintext. A compressed segment
    /// inflates into a buffer from `buffers`, and `data` goes back there.
    /// `id` is `None` when the caller already checked the bytes against it.
    pub(crate) fn open(
        &mut self,
        index: u32,
        last: bool,
        id: Option<&ChunkId>,
        data: Vec<u8>,
        buffers: &BufferPool,
    ) -> Result<Vec<u8>, CodecError> {
        let max = self.max_plain + super::CHUNK_OVERHEAD;
        if data.len() > max {
            return Err(CodecError::ChunkTooLarge {
                index,
                len: data.len(),
                max,
            });
        }
        if id.is_some_and(|id| ChunkId::of(&data) != *id) {
            return Err(CodecError::IdMismatch { index });
        }
        let data = self.decrypt(index, last, data, buffers)?;
        let Some(body_len) = data.len().checked_sub(TRAILER_LEN) else {
            return Err(CodecError::BadTrailer { index });
        };
        let trailer = &data[body_len..];
        let encoding = trailer[4];
        let plain_len =
            u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
        if plain_len > self.max_plain {
            return Err(CodecError::SegmentTooLarge {
                index,
                len: plain_len as u64,
                max: self.max_plain,
            });
        }
        match encoding {
            STORED if body_len == plain_len => {
                let mut data = data;
                data.truncate(body_len);
                Ok(data)
            }
            ZSTD => {
                let mut plain = buffers.take();
                plain.reserve_exact(plain_len);
                let n = self
                    .zstd
                    .decompress_to_buffer(&data[..body_len], &mut plain)
                    .map_err(|_| CodecError::Decompress { index })?;
                buffers.give(data);
                if n != plain_len {
                    return Err(CodecError::Decompress { index });
                }
                Ok(plain)
            }
            _ => Err(CodecError::BadTrailer { index }),
        }
    }

    /// Decrypts `data` into a buffer from `buffers` (out of place, so the
    /// ciphertext survives a failed tag check) and gives `data` back there;
    /// returns the sealed plaintext. When the expected last flag fails, the
    /// other one is tried, so a cut-short or overlong chunk list gets its own
    /// error rather than a bare `Decrypt`.
    fn decrypt(
        &self,
        index: u32,
        last: bool,
        data: Vec<u8>,
        buffers: &BufferPool,
    ) -> Result<Vec<u8>, CodecError> {
        let Some(sealed_len) = data.len().checked_sub(TAG_LEN) else {
            return Err(CodecError::Decrypt { index });
        };
        let (sealed, tag) = data.split_at(sealed_len);
        let mut plain = buffers.take_len(sealed_len);
        let attempt = |last: bool, out: &mut [u8]| {
            self.cipher.open_separate_gather(
                nonce(&self.prefix, index, last),
                Aad::from(AAD),
                sealed,
                tag,
                out,
            )
        };
        if attempt(last, &mut plain).is_err() {
            return Err(match (attempt(!last, &mut plain).is_ok(), last) {
                (true, true) => CodecError::Truncated { index },
                (true, false) => CodecError::UnexpectedLast { index },
                (false, _) => CodecError::Decrypt { index },
            });
        }
        buffers.give(data);
        Ok(plain)
    }
}

/// Seals one segment on the calling thread: `plain` as segment `index`
/// of the file under `key` and `prefix`, the file's last when `last`,
/// compressed at zstd `level` when that pays. The same chunk the
/// [`super::Encoder`] would make from these bytes at this position.
pub fn seal_segment(
    key: &FileKey,
    prefix: NoncePrefix,
    index: u32,
    last: bool,
    plain: Vec<u8>,
    level: i32,
) -> Result<EncodedChunk, CodecError> {
    if plain.len() > super::MAX_SEGMENT_SIZE {
        return Err(CodecError::InvalidParams {
            reason: "segment_size must be in 1..=MAX_SEGMENT_SIZE",
        });
    }
    let mut sealer = Sealer::new(key, prefix, level)?;
    sealer.seal(index, last, plain, &BufferPool::new(0, 0))
}

/// Decodes one chunk on the calling thread: checks it against `id`,
/// decrypts it as segment `index` (the file's last when `last`) and
/// decompresses it, refusing more than `max_plain` bytes of plaintext
/// (pass the file's `segment_size`).
///
/// The get path calls this per fetched chunk; it must itself make sure it
/// has every chunk of the manifest, in order ([`super::Decoder`] does that
/// for a whole stream).
pub fn decode_segment(
    key: &FileKey,
    prefix: &NoncePrefix,
    index: u32,
    last: bool,
    id: &ChunkId,
    data: Vec<u8>,
    max_plain: usize,
) -> Result<Vec<u8>, CodecError> {
    let max_plain = max_plain.min(super::MAX_SEGMENT_SIZE);
    let mut opener = Opener::new(key, *prefix, max_plain)?;
    // No pool to share with: fresh buffers, nothing kept.
    let buffers = BufferPool::new(0, 0);
    opener.open(index, last, Some(id), data, &buffers)
}
