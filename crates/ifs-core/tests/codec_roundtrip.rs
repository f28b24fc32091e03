//! Round trips through the chunk codec: whatever goes in comes out, cut
//! into the chunks the format promises.

use ifs_core::ChunkId;
use ifs_core::codec::{
    CHUNK_OVERHEAD, CodecError, CodecParams, Decoder, EncodedChunk, Encoder, FileKey, NoncePrefix,
    WriteAt, decode_segment,
};
use proptest::prelude::*;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// Small segments keep multi-segment cases cheap.
const SEG: usize = 4096;

fn params(threads: usize) -> CodecParams {
    CodecParams {
        segment_size: SEG,
        zstd_level: 1,
        threads,
        in_flight: threads + 1,
    }
}

fn key() -> (FileKey, NoncePrefix) {
    (FileKey([0x42; 32]), NoncePrefix([9, 8, 7, 6, 5, 4, 3]))
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Uniform random bytes: never compresses.
    Random,
    /// Words from a small vocabulary: compresses well.
    Text,
    /// Text and random halves within one input.
    Mixed,
}

/// Deterministic input of `len` bytes (splitmix64, so no large proptest
/// vectors to generate and shrink).
fn input(kind: Kind, len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    const WORDS: [&str; 8] = [
        "the ", "chunk ", "node ", "store ", "of ", "replica ", "a ", "disk\n",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let text = match kind {
            Kind::Random => false,
            Kind::Text => true,
            Kind::Mixed => out.len() < len / 2,
        };
        if text {
            out.extend_from_slice(WORDS[(next() % 8) as usize].as_bytes());
        } else {
            out.extend_from_slice(&next().to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

fn encode(data: &[u8], threads: usize) -> Vec<EncodedChunk> {
    let (k, p) = key();
    Encoder::new(data, &k, p, &params(threads))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn decode(chunks: &[EncodedChunk], threads: usize) -> Result<Vec<u8>, CodecError> {
    let (k, p) = key();
    let ids = chunks.iter().map(|c| c.id).collect();
    let mut d = Decoder::new(&k, p, ids, Vec::new(), &params(threads))?;
    for c in chunks {
        d.push(c.index, c.data.clone())?;
    }
    d.finish()
}

/// A file in memory that takes writes at offsets from any thread.
#[derive(Default)]
struct MemFile(Mutex<Vec<u8>>);

impl WriteAt for MemFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut f = self.0.lock().unwrap();
        let end = offset as usize + buf.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }
}

/// Positional decoding (each worker writes its segment at its offset) of a
/// file said to be `size` bytes; checked chunks skip the second hash.
fn decode_at(chunks: &[EncodedChunk], size: u64, threads: usize) -> Result<Vec<u8>, CodecError> {
    let (k, p) = key();
    let ids = chunks.iter().map(|c| c.id).collect();
    let file = Arc::new(MemFile::default());
    let at: Arc<dyn WriteAt> = file.clone();
    let mut d = Decoder::new_at(&k, p, ids, Vec::new(), at, size, &params(threads))?;
    for c in chunks {
        let checked = ifs_core::CheckedChunk::check(&c.id, c.data.clone()).unwrap();
        d.push_checked(c.index, checked)?;
    }
    let spare = d.finish()?;
    assert!(spare.is_empty(), "nothing goes through the stream output");
    Ok(std::mem::take(&mut *file.0.lock().unwrap()))
}

/// Sizes around segment boundaries are where off-by-ones live.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1usize),
        (0usize..5, -1isize..=1).prop_map(|(k, d)| (k * SEG).saturating_add_signed(d)),
        0usize..5 * SEG,
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Random), Just(Kind::Text), Just(Kind::Mixed)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(len in size(), kind in kind(), seed: u64, threads in 1usize..4) {
        let data = input(kind, len, seed);
        let chunks = encode(&data, threads);

        prop_assert_eq!(chunks.len(), data.len().div_ceil(SEG).max(1));
        for (i, c) in chunks.iter().enumerate() {
            let is_last = i + 1 == chunks.len();
            prop_assert_eq!(c.index as usize, i);
            prop_assert_eq!(c.last, is_last);
            prop_assert_eq!(c.id, ChunkId::of(&c.data));
            prop_assert!(c.data.len() <= SEG + CHUNK_OVERHEAD);
            let want = if is_last { data.len() - i * SEG } else { SEG };
            prop_assert_eq!(c.plain_len as usize, want);
        }
        prop_assert_eq!(decode(&chunks, threads)?, data.clone());
        prop_assert_eq!(decode_at(&chunks, data.len() as u64, threads)?, data.clone());

        // The per-chunk path the network get uses agrees with the stream.
        let (k, p) = key();
        let mut joined = Vec::new();
        for c in &chunks {
            let plain = decode_segment(&k, &p, c.index, c.last, &c.id, c.data.clone(), SEG)?;
            prop_assert_eq!(plain.len() as u64, c.plain_len);
            joined.extend_from_slice(&plain);
        }
        prop_assert_eq!(joined, data);
    }

    #[test]
    fn thread_count_does_not_change_output(len in size(), kind in kind(), seed: u64) {
        let data = input(kind, len, seed);
        prop_assert_eq!(encode(&data, 1), encode(&data, 3));
    }

    #[test]
    fn small_and_interrupted_reads_change_nothing(len in size(), seed: u64) {
        let data = input(Kind::Mixed, len, seed);
        let (k, p) = key();
        let reader = Trickle { data: &data, pos: 0, calls: 0 };
        let chunks: Vec<_> = Encoder::new(reader, &k, p, &params(2))
            .unwrap()
            .collect::<Result<_, _>>()?;
        prop_assert_eq!(&chunks, &encode(&data, 2));
    }
}

/// Hands out at most 7 bytes per read and fails every third call with
/// `Interrupted`, which readers may do and the encoder must retry.
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
    calls: u32,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(7).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn positional_decoding_refuses_a_size_that_does_not_fit_the_chunks() {
    let data = input(Kind::Random, 3 * SEG + 10, 7);
    let chunks = encode(&data, 2);
    let n = data.len() as u64;
    // Too big for 4 segments, or so small the last segment would be empty.
    for size in [4 * SEG as u64 + 1, 3 * SEG as u64, 0] {
        assert!(
            matches!(
                decode_at(&chunks, size, 2),
                Err(CodecError::SizeMismatch { .. })
            ),
            "size {size}"
        );
    }
    // Fits the geometry but not the chunks: the last one opens to 10 bytes.
    assert!(matches!(
        decode_at(&chunks, n - 1, 2),
        Err(CodecError::SegmentTooLarge { index: 3, .. })
    ));
    assert!(matches!(
        decode_at(&chunks, n + 1, 2),
        Err(CodecError::Truncated { index: 3 })
    ));
    // A checked chunk pushed at another's position is refused.
    let (k, p) = key();
    let ids = chunks.iter().map(|c| c.id).collect();
    let at: Arc<dyn WriteAt> = Arc::new(MemFile::default());
    let mut d = Decoder::new_at(&k, p, ids, Vec::new(), at, n, &params(2)).unwrap();
    let wrong = ifs_core::CheckedChunk::check(&chunks[1].id, chunks[1].data.clone()).unwrap();
    assert!(matches!(
        d.push_checked(0, wrong),
        Err(CodecError::IdMismatch { index: 0 })
    ));
}

#[test]
fn empty_input_is_one_empty_last_chunk() {
    let chunks = encode(&[], 2);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].last);
    assert_eq!(chunks[0].plain_len, 0);
    assert_eq!(chunks[0].data.len(), CHUNK_OVERHEAD);
    assert_eq!(decode(&chunks, 2).unwrap(), Vec::<u8>::new());
}

#[test]
fn text_shrinks_and_random_stays_within_overhead() {
    let text = input(Kind::Text, 8 * SEG, 1);
    let packed: usize = encode(&text, 2).iter().map(|c| c.data.len()).sum();
    assert!(
        packed * 2 < text.len(),
        "text should at least halve: {packed}"
    );

    let random = input(Kind::Random, 8 * SEG, 2);
    let chunks = encode(&random, 2);
    assert!(chunks.iter().all(|c| c.data.len() == SEG + CHUNK_OVERHEAD));
}

#[test]
fn read_error_is_typed_and_ends_the_stream() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk gone"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    let (k, p) = key();
    let mut enc = Encoder::new(Failing(3 * SEG + 10), &k, p, &params(2)).unwrap();
    let results: Vec<_> = enc.by_ref().collect();
    let last = results.last().expect("at least the error");
    assert!(matches!(last, Err(CodecError::Read(e)) if e.to_string() == "disk gone"));
    assert!(enc.next().is_none());
}

#[test]
fn fresh_keys_give_unrelated_chunks() {
    let mut rng = rand::rng();
    let data = input(Kind::Text, 2 * SEG, 3);
    let (k1, p1) = (FileKey::generate(&mut rng), NoncePrefix::generate(&mut rng));
    let (k2, p2) = (FileKey::generate(&mut rng), NoncePrefix::generate(&mut rng));
    let a: Vec<_> = Encoder::new(&data[..], &k1, p1, &params(2))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let b: Vec<_> = Encoder::new(&data[..], &k2, p2, &params(2))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(a.iter().zip(&b).all(|(x, y)| x.id != y.id));
}

#[test]
fn invalid_params_are_refused() {
    let (k, p) = key();
    let zero = CodecParams {
        segment_size: 0,
        ..params(1)
    };
    assert!(matches!(
        Encoder::new(&[][..], &k, p, &zero).err(),
        Some(CodecError::InvalidParams { .. })
    ));
    assert!(matches!(
        Decoder::new(&k, p, vec![], Vec::new(), &params(1)).err(),
        Some(CodecError::EmptyManifest)
    ));
}

/// A file encoded in parts (out of order, each at its first index, only
/// the final part ending the file) is the same chunks as one pass, and a
/// chunk sealed not-last then resealed as last decodes as the end.
#[test]
fn parts_encode_to_the_chunks_of_one_pass() {
    use ifs_core::codec::seal_segment;
    let (k, p) = key();
    let data = input(Kind::Mixed, 5 * SEG + 100, 7);
    let whole: Vec<EncodedChunk> = Encoder::new(&data[..], &k, p, &params(2))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut parts = Vec::new();
    for (first, range, last) in [
        (4u32, 4 * SEG..data.len(), true),
        (0, 0..2 * SEG, false),
        (2, 2 * SEG..4 * SEG, false),
    ] {
        let part: Vec<EncodedChunk> = Encoder::part(&data[range], &k, p, &params(2), first, last)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        parts.extend(part);
    }
    parts.sort_by_key(|c| c.index);
    assert_eq!(parts, whole);

    // Exactly 4 segments, the part not knowing it ends the file: the
    // highest chunk is not last until resealed.
    let four = &data[..4 * SEG];
    let mut chunks: Vec<EncodedChunk> = Encoder::part(four, &k, p, &params(1), 0, false)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(chunks.iter().all(|c| !c.last));
    let ids = |cs: &[EncodedChunk]| cs.iter().map(|c| c.id).collect::<Vec<_>>();
    let mut out = Vec::new();
    let mut dec = Decoder::new(&k, p, ids(&chunks), &mut out, &params(1)).unwrap();
    let refused = chunks
        .iter()
        .try_for_each(|c| dec.push(c.index, c.data.clone()));
    assert!(
        refused.is_err() || dec.finish().is_err(),
        "a file without its last chunk decodes"
    );
    let top = chunks.pop().unwrap();
    let plain = decode_segment(&k, &p, 3, false, &top.id, top.data, SEG).unwrap();
    chunks.push(seal_segment(&k, p, 3, true, plain, 1).unwrap());
    let mut out = Vec::new();
    let mut dec = Decoder::new(&k, p, ids(&chunks), &mut out, &params(1)).unwrap();
    for c in &chunks {
        dec.push(c.index, c.data.clone()).unwrap();
    }
    dec.finish().unwrap();
    assert_eq!(out, four);
}

#[test]
fn the_largest_segment_makes_a_chunk_a_node_accepts() {
    // Incompressible input at the largest segment size: its chunk is the
    // largest any client can produce, and a node must take it on a stream
    // (a larger one is refused mid-send, which a client only sees as a
    // timed-out hop).
    let (key, prefix) = key();
    let max = ifs_core::codec::MAX_SEGMENT_SIZE;
    for kind in [Kind::Random, Kind::Text] {
        let plain = input(kind, max, 7);
        let chunk = ifs_core::codec::seal_segment(&key, prefix, 0, true, plain.clone(), 1).unwrap();
        assert!(chunk.data.len() <= max + CHUNK_OVERHEAD, "{kind:?}");
        assert!(chunk.data.len() as u64 <= ifs_core::proto::MAX_CHUNK_BYTES);
        let back = decode_segment(&key, &prefix, 0, true, &chunk.id, chunk.data, max).unwrap();
        assert!(back == plain, "{kind:?}");
    }
    let over = vec![0u8; max + 1];
    assert!(ifs_core::codec::seal_segment(&key, prefix, 0, true, over, 1).is_err());
}
