//! The streaming decoder: takes chunks in order, opens them on worker
//! threads, and writes the plaintext in order, or, into an output that
//! takes writes at offsets (a file), from the workers themselves.

use super::pool::{BufferPool, OrderedPool};
use super::segment::Opener;
use super::{CHUNK_OVERHEAD, CodecError, CodecParams, FileKey, NoncePrefix};
use crate::ids::{CheckedChunk, ChunkId};
use std::io::Write;
use std::sync::Arc;

/// A chunk to open: its data, whether the list ends with it, its listed id,
/// and whether the data is already known to hash to that id.
type Job = (Vec<u8>, bool, ChunkId, bool);

/// An output that takes writes at byte offsets from several threads at
/// once, such as a file (`std::os::unix::fs::FileExt::write_all_at`).
pub trait WriteAt: Send + Sync + 'static {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
}

/// What a worker hands back for one chunk.
enum Opened {
    /// The plaintext, for the caller's thread to write in order.
    Plain(Vec<u8>),
    /// This many bytes were already written at their place.
    Written(u64),
}

/// Where positional decoding writes, and the geometry that places each
/// segment: every segment but the last holds exactly `segment` bytes of
/// plaintext, the last the rest of `size`.
struct Placement {
    out: Arc<dyn WriteAt>,
    segment: u64,
    size: u64,
    count: u64,
}

impl Placement {
    /// Offset and plaintext length of segment `index`.
    fn span(&self, index: u32) -> (u64, u64) {
        let offset = u64::from(index) * self.segment;
        let len = if u64::from(index) + 1 == self.count {
            self.size.saturating_sub(offset)
        } else {
            self.segment
        };
        (offset, len)
    }
}

/// Rebuilds a file from its chunks, given the ordered chunk ids of its
/// manifest.
///
/// Chunks are [`push`](Decoder::push)ed in list order; each is checked
/// against its id, decrypted as the segment at its position (the last
/// position expecting the last flag) and decompressed on a worker thread,
/// with at most `params.in_flight` in progress. Plaintext is written to the
/// output in order, on the caller's thread. [`finish`](Decoder::finish)
/// confirms that every listed chunk arrived.
///
/// The output holds the whole file only once `finish` returns `Ok`; on an
/// error it may hold a prefix of it. A chunk given at the wrong position
/// (`OutOfOrder`, `Duplicate`, `UnknownIndex`) is refused without harm and
/// decoding can go on; any other error ends the stream and later calls
/// return [`CodecError::Aborted`].
pub struct Decoder<W: Write> {
    out: W,
    ids: Vec<ChunkId>,
    in_flight: usize,
    pool: OrderedPool<Job, Opened>,
    buffers: Arc<BufferPool>,
    next_in: u64,
    next_out: u32,
    written: u64,
    failed: bool,
}

impl<W: Write> Decoder<W> {
    /// Prepares to decode the file whose manifest lists `ids`, writing to
    /// `out`. `params.segment_size` must be at least the encoder's: larger
    /// segments are refused as [`CodecError::SegmentTooLarge`].
    pub fn new(
        key: &FileKey,
        prefix: NoncePrefix,
        ids: Vec<ChunkId>,
        out: W,
        params: &CodecParams,
    ) -> Result<Self, CodecError> {
        Self::build(key, prefix, ids, out, None, params)
    }

    /// Like [`new`](Decoder::new), but each worker writes the plaintext it
    /// opened straight into `at`, at its place in the file, so writing is
    /// spread over the workers instead of queueing on the caller's thread;
    /// `out` is only flushed and handed back by [`finish`](Decoder::finish).
    /// `size` is the file's plaintext size from its manifest: every segment
    /// but the last must open to exactly `params.segment_size` bytes and the
    /// last to the rest ([`CodecError::SegmentTooLarge`] or
    /// [`CodecError::Truncated`] otherwise), so no write lands outside the
    /// file or over another segment.
    pub fn new_at(
        key: &FileKey,
        prefix: NoncePrefix,
        ids: Vec<ChunkId>,
        out: W,
        at: Arc<dyn WriteAt>,
        size: u64,
        params: &CodecParams,
    ) -> Result<Self, CodecError> {
        let count = ids.len() as u64;
        let place = Placement {
            out: at,
            segment: params.segment_size as u64,
            size,
            count,
        };
        // The encoder's geometry: full segments, then a last one of at least
        // one byte (or a single empty one for an empty file).
        let full = count.saturating_sub(1).saturating_mul(place.segment);
        let fits = size <= count.saturating_mul(place.segment) && (size > full || size == 0);
        if count == 0 || !fits || (size == 0 && count != 1) {
            return Err(CodecError::SizeMismatch {
                size,
                chunks: count,
            });
        }
        Self::build(key, prefix, ids, out, Some(place), params)
    }

    fn build(
        key: &FileKey,
        prefix: NoncePrefix,
        ids: Vec<ChunkId>,
        out: W,
        place: Option<Placement>,
        params: &CodecParams,
    ) -> Result<Self, CodecError> {
        let params = params.validated()?;
        if ids.is_empty() {
            return Err(CodecError::EmptyManifest);
        }
        if ids.len() as u64 > u64::from(u32::MAX) + 1 {
            return Err(CodecError::TooManySegments);
        }
        let buffers = Arc::new(BufferPool::new(
            params.segment_size + CHUNK_OVERHEAD,
            params.in_flight + 1,
        ));
        let (key, max_plain, pool_buffers) =
            (key.clone(), params.segment_size, Arc::clone(&buffers));
        let pool = OrderedPool::new(
            params.threads,
            params.in_flight,
            move || Opener::new(&key, prefix, max_plain),
            move |opener: &mut Opener, index, (data, last, id, checked): Job| {
                let plain =
                    opener.open(index, last, (!checked).then_some(&id), data, &pool_buffers)?;
                let Some(place) = &place else {
                    return Ok(Opened::Plain(plain));
                };
                let (offset, want) = place.span(index);
                let got = plain.len() as u64;
                if got != want {
                    return Err(if got > want {
                        CodecError::SegmentTooLarge {
                            index,
                            len: got,
                            max: want as usize,
                        }
                    } else {
                        CodecError::Truncated { index }
                    });
                }
                place
                    .out
                    .write_all_at(&plain, offset)
                    .map_err(CodecError::Write)?;
                pool_buffers.give(plain);
                // Written: only the count goes back to be tallied in order.
                Ok(Opened::Written(got))
            },
        )?;
        Ok(Decoder {
            out,
            ids,
            in_flight: params.in_flight,
            pool,
            buffers,
            next_in: 0,
            next_out: 0,
            written: 0,
            failed: false,
        })
    }

    /// The position of the chunk expected next, or `None` once all were given.
    pub fn expected(&self) -> Option<u32> {
        u32::try_from(self.next_in)
            .ok()
            .filter(|&i| (i as usize) < self.ids.len())
    }

    /// An empty buffer with room for one chunk, reused from chunks already
    /// written out when there is one. Receiving the next chunk into it
    /// instead of a fresh allocation spares faulting in new pages.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers.take()
    }

    /// A handle on the same buffers that other threads can take from, e.g.
    /// the tasks that receive chunks while the decoder runs on its own thread.
    pub fn buffers(&self) -> ChunkBuffers {
        ChunkBuffers(Arc::clone(&self.buffers))
    }

    /// Plaintext bytes written to the output so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Gives the chunk at position `index` (which must be the one
    /// [`expected`](Decoder::expected)). May block while earlier chunks are
    /// opened and written, and return their errors.
    pub fn push(&mut self, index: u32, data: Vec<u8>) -> Result<(), CodecError> {
        self.push_job(index, data, None)
    }

    /// Like [`push`](Decoder::push) for bytes already checked against their
    /// id: the chunk's id must be the one listed at `index`
    /// ([`CodecError::IdMismatch`] otherwise), and it is not hashed again.
    pub fn push_checked(&mut self, index: u32, chunk: CheckedChunk) -> Result<(), CodecError> {
        let id = *chunk.id();
        self.push_job(index, chunk.into_bytes(), Some(id))
    }

    fn push_job(
        &mut self,
        index: u32,
        data: Vec<u8>,
        checked: Option<ChunkId>,
    ) -> Result<(), CodecError> {
        if self.failed {
            return Err(CodecError::Aborted);
        }
        let count = self.ids.len();
        if index as usize >= count {
            return Err(CodecError::UnknownIndex { index, count });
        }
        if u64::from(index) < self.next_in {
            return Err(CodecError::Duplicate { index });
        }
        if u64::from(index) > self.next_in {
            let expected = self.next_in as u32; // < count ≤ 2^32, checked in `new`
            return Err(CodecError::OutOfOrder {
                expected,
                got: index,
            });
        }
        let last = index as usize == count - 1;
        let id = self.ids[index as usize];
        if checked.is_some_and(|c| c != id) {
            self.failed = true;
            return Err(CodecError::IdMismatch { index });
        }
        self.guard(|d| {
            while d.pool.outstanding() >= d.in_flight {
                d.write_next()?;
            }
            d.pool.submit(index, (data, last, id, checked.is_some()))
        })?;
        self.next_in += 1;
        Ok(())
    }

    /// Waits for every chunk in progress, writes it out, flushes, and checks
    /// that the whole list was given. Returns the output.
    pub fn finish(mut self) -> Result<W, CodecError> {
        if self.failed {
            return Err(CodecError::Aborted);
        }
        // Chunks already given come first: their errors name earlier positions.
        while self.pool.outstanding() > 0 {
            self.write_next()?;
        }
        if let Some(index) = self.expected() {
            return Err(CodecError::Missing { index });
        }
        self.out.flush().map_err(CodecError::Write)?;
        Ok(self.out)
    }

    /// Runs `f`, marking the stream failed if it errs.
    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, CodecError>,
    ) -> Result<T, CodecError> {
        let result = f(self);
        self.failed = result.is_err();
        result
    }

    /// Takes the oldest chunk's plaintext and writes it (or, positional,
    /// counts what a worker wrote).
    fn write_next(&mut self) -> Result<(), CodecError> {
        match self.pool.take(self.next_out)? {
            Opened::Plain(plain) => {
                self.out.write_all(&plain).map_err(CodecError::Write)?;
                self.written += plain.len() as u64;
                self.buffers.give(plain);
            }
            Opened::Written(n) => self.written += n,
        }
        self.next_out = self.next_out.wrapping_add(1);
        Ok(())
    }
}

/// Where a decoder's chunk-sized buffers can be taken from any thread (see
/// [`Decoder::buffers`]). Buffers given to the decoder come back here once
/// their plaintext is written, so a steady get allocates nothing.
#[derive(Clone)]
pub struct ChunkBuffers(Arc<BufferPool>);

impl ChunkBuffers {
    /// A buffer with room for one chunk whose length and content are
    /// unspecified (an earlier chunk's bytes, or empty): `resize` it to the
    /// length wanted and overwrite it; what is already there is not zeroed.
    pub fn take_reused(&self) -> Vec<u8> {
        self.0.take_any()
    }
}
