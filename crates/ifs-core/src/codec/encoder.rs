//! The streaming encoder: reads segments on the caller's thread, seals them
//! on worker threads, yields chunks in order.

use super::pool::{BufferPool, OrderedPool};
use super::segment::Sealer;
use super::{CHUNK_OVERHEAD, CodecError, CodecParams, EncodedChunk, FileKey, NoncePrefix};
use std::io::Read;
use std::sync::Arc;

/// A segment read from the input, and whether the input ended inside it.
type Segment = (Vec<u8>, bool);

/// Turns a byte stream into its chunks, in order, as an iterator.
///
/// At most `params.in_flight` segments are being read, sealed or waiting to
/// be taken at once (plus one read ahead to learn whether a segment is the
/// last), so memory stays near `2 × (in_flight + 1) × segment_size`
/// whatever the input's length. A 0-byte input yields one empty last chunk.
///
/// After an error the iterator ends. Dropping it early stops and joins the
/// workers.
///
/// ```
/// use ifs_core::codec::{CodecParams, Encoder, FileKey, NoncePrefix};
/// let params = CodecParams::with_segment_size(4);
/// let key = FileKey([7; 32]);
/// let prefix = NoncePrefix([1; 7]);
/// let chunks: Vec<_> = Encoder::new(&b"hello world"[..], &key, prefix, &params)
///     .unwrap()
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(chunks.len(), 3);
/// assert!(chunks[2].last);
/// ```
pub struct Encoder<R: Read> {
    reader: R,
    segment_size: usize,
    in_flight: usize,
    pool: OrderedPool<Segment, EncodedChunk>,
    buffers: Arc<BufferPool>,
    /// The segment after the newest submitted one, read to learn that the
    /// submitted one was not the last.
    ahead: Option<Segment>,
    next_read: u64,
    next_out: u32,
    input_done: bool,
    ended: bool,
    /// Whether the input's final segment is the file's last (sealed so).
    ends_file: bool,
}

impl<R: Read> Encoder<R> {
    /// Starts encoding `reader` under `key` and `prefix`. Nothing is read
    /// until the first chunk is asked for.
    pub fn new(
        reader: R,
        key: &FileKey,
        prefix: NoncePrefix,
        params: &CodecParams,
    ) -> Result<Self, CodecError> {
        Self::part(reader, key, prefix, params, 0, true)
    }

    /// Encodes `reader` as the segments of a file from index `first` on,
    /// for a file uploaded in parts. The input's final segment is sealed
    /// as the file's last only when `ends_file`; every other segment as
    /// not last. A part that does not end the file must hold whole
    /// segments for the file to decode (the caller checks `plain_len`).
    pub fn part(
        reader: R,
        key: &FileKey,
        prefix: NoncePrefix,
        params: &CodecParams,
        first: u32,
        ends_file: bool,
    ) -> Result<Self, CodecError> {
        let params = params.validated()?;
        // Input buffers, compression outputs and one read ahead, all of
        // one size so any can serve as any.
        let buffers = Arc::new(BufferPool::new(
            params.segment_size + CHUNK_OVERHEAD,
            params.in_flight + 2,
        ));
        let (key, level, pool_buffers) = (key.clone(), params.zstd_level, Arc::clone(&buffers));
        let pool = OrderedPool::new(
            params.threads,
            params.in_flight,
            move || Sealer::new(&key, prefix, level),
            move |sealer: &mut Sealer, index, (plain, last): Segment| {
                sealer.seal(index, last, plain, &pool_buffers)
            },
        )?;
        Ok(Encoder {
            reader,
            segment_size: params.segment_size,
            in_flight: params.in_flight,
            pool,
            buffers,
            ahead: None,
            next_read: u64::from(first),
            next_out: first,
            input_done: false,
            ended: false,
            ends_file,
        })
    }

    /// Hands back the `data` of a chunk the caller is done with, so the next
    /// segment can reuse its memory instead of faulting in a fresh buffer.
    /// Optional; buffers too small to reuse are dropped.
    pub fn recycle(&mut self, data: Vec<u8>) {
        self.buffers.give(data);
    }

    fn step(&mut self) -> Result<Option<EncodedChunk>, CodecError> {
        // Keep the workers fed before waiting on them.
        while !self.input_done && self.pool.outstanding() < self.in_flight {
            let index = u32::try_from(self.next_read).map_err(|_| CodecError::TooManySegments)?;
            let (plain, last) = self.next_segment()?;
            self.pool.submit(index, (plain, last && self.ends_file))?;
            self.next_read += 1;
            self.input_done = last;
        }
        if self.pool.outstanding() == 0 {
            return Ok(None);
        }
        let chunk = self.pool.take(self.next_out)?;
        self.next_out = self.next_out.wrapping_add(1);
        Ok(Some(chunk))
    }

    /// The next segment and whether it is the last one.
    fn next_segment(&mut self) -> Result<Segment, CodecError> {
        let (plain, eof) = match self.ahead.take() {
            Some(seg) => seg,
            None => self.read_segment()?,
        };
        if eof {
            return Ok((plain, true));
        }
        // A full segment may end exactly at the end of the input: only the
        // next read can tell, and the last flag must be known now.
        let (next, next_eof) = self.read_segment()?;
        if next.is_empty() {
            self.buffers.give(next);
            return Ok((plain, true));
        }
        self.ahead = Some((next, next_eof));
        Ok((plain, false))
    }

    /// Reads up to one segment; `true` when the input ended before it filled.
    fn read_segment(&mut self) -> Result<Segment, CodecError> {
        let mut buf = self.buffers.take();
        let want = self.segment_size as u64;
        // read_to_end retries on `Interrupted` and, for readers that support
        // it, reads into the spare capacity without zeroing it first.
        let n = (&mut self.reader)
            .take(want)
            .read_to_end(&mut buf)
            .map_err(CodecError::Read)?;
        Ok((buf, (n as u64) < want))
    }
}

impl<R: Read> Iterator for Encoder<R> {
    type Item = Result<EncodedChunk, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match self.step() {
            Ok(Some(chunk)) => Some(Ok(chunk)),
            Ok(None) => {
                self.ended = true;
                None
            }
            Err(e) => {
                self.ended = true;
                Some(Err(e))
            }
        }
    }
}

impl<R: Read> std::iter::FusedIterator for Encoder<R> {}
