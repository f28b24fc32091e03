//! Errors of the chunk codec.

use std::io;

/// Why encoding or decoding failed. Chunk indexes are segment positions in
/// the file, from 0.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The parameters are unusable.
    #[error("invalid codec parameters: {reason}")]
    InvalidParams {
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading the input failed.
    #[error("reading the input failed")]
    Read(#[source] io::Error),
    /// Writing the plaintext out failed.
    #[error("writing the output failed")]
    Write(#[source] io::Error),
    /// The input needs more segments than a `u32` index can number.
    #[error("input too large: more than 2^32 segments")]
    TooManySegments,
    /// zstd could not compress a segment (it ran out of memory).
    #[error("compressing segment {index} failed")]
    Compress {
        /// The segment.
        index: u32,
        /// zstd's report.
        #[source]
        source: io::Error,
    },
    /// AES-GCM refused to seal a segment (it cannot happen below 64 GiB).
    #[error("encrypting segment {index} failed")]
    Encrypt {
        /// The segment.
        index: u32,
    },
    /// The manifest lists no chunks; even an empty file has one.
    #[error("the chunk list is empty")]
    EmptyManifest,
    /// A chunk's BLAKE3 is not the id the manifest lists at its position.
    #[error("chunk {index} does not match its id")]
    IdMismatch {
        /// Position of the chunk.
        index: u32,
    },
    /// A chunk is longer than any segment of `segment_size` can seal to.
    #[error("chunk {index} is {len} bytes, more than the {max} allowed")]
    ChunkTooLarge {
        /// Position of the chunk.
        index: u32,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Authentication failed: wrong key or nonce prefix, or a chunk sealed
    /// for another position or file.
    #[error("chunk {index} failed authentication")]
    Decrypt {
        /// Position of the chunk.
        index: u32,
    },
    /// The chunk list ends at a chunk that was sealed as not last: the file
    /// was cut short.
    #[error("chunk {index} ends the list but is not the file's last segment")]
    Truncated {
        /// Position of the chunk.
        index: u32,
    },
    /// A chunk sealed as the file's last is followed by further list entries.
    #[error("chunk {index} is the file's last segment but more chunks are listed")]
    UnexpectedLast {
        /// Position of the chunk.
        index: u32,
    },
    /// A chunk arrived ahead of the one expected next.
    #[error("expected chunk {expected}, got chunk {got}")]
    OutOfOrder {
        /// The position the decoder waits for.
        expected: u32,
        /// The position offered.
        got: u32,
    },
    /// A chunk arrived for a position already consumed.
    #[error("chunk {index} was already given")]
    Duplicate {
        /// Position of the chunk.
        index: u32,
    },
    /// A chunk arrived for a position past the end of the list.
    #[error("chunk {index} is past the end of the {count}-chunk list")]
    UnknownIndex {
        /// The position offered.
        index: u32,
        /// Chunks in the list.
        count: usize,
    },
    /// Decoding was finished before every listed chunk arrived.
    #[error("chunk {index} is missing")]
    Missing {
        /// The first position not given.
        index: u32,
    },
    /// The authenticated trailer is malformed (unknown encoding, too short).
    #[error("chunk {index} has a malformed trailer")]
    BadTrailer {
        /// Position of the chunk.
        index: u32,
    },
    /// A segment claims more plaintext than `segment_size` allows.
    #[error("segment {index} would inflate to {len} bytes, more than the {max} allowed")]
    SegmentTooLarge {
        /// Position of the chunk.
        index: u32,
        /// Its claimed plaintext length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The zstd body is corrupt or does not decompress to the length the
    /// trailer states.
    #[error("segment {index} does not decompress")]
    Decompress {
        /// Position of the chunk.
        index: u32,
    },
    /// A manifest's plaintext size does not fit its number of chunks and
    /// segment size (positional decoding needs both to place each segment).
    #[error("a file of {size} bytes cannot be {chunks} segments of this size")]
    SizeMismatch {
        /// The manifest's plaintext size.
        size: u64,
        /// Chunks it lists.
        chunks: u64,
    },
    /// A worker thread died or could not be started.
    #[error("a codec worker thread failed")]
    Worker,
    /// An earlier error already ended this stream.
    #[error("the codec stream already failed")]
    Aborted,
}
