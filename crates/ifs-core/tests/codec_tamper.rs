//! Every way a chunk stream can be damaged ends in a typed error naming the
//! chunk, never in wrong plaintext.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use ifs_core::ChunkId;
use ifs_core::codec::{
    CodecError, CodecParams, Decoder, EncodedChunk, Encoder, FileKey, NoncePrefix, decode_segment,
};
use proptest::prelude::*;

const SEG: usize = 4096;

fn params() -> CodecParams {
    CodecParams {
        segment_size: SEG,
        zstd_level: 1,
        threads: 2,
        in_flight: 3,
    }
}

fn key() -> (FileKey, NoncePrefix) {
    (FileKey([0x11; 32]), NoncePrefix([1, 2, 3, 4, 5, 6, 7]))
}

/// Half text, half noise, so both stored and compressed segments occur.
fn input(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % (2 * SEG) < SEG {
                b"abcd efgh\n"[i % 10]
            } else {
                (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .rotate_left(u32::from(seed) % 32) as u8
            }
        })
        .collect()
}

fn encode(len: usize, seed: u8) -> Vec<EncodedChunk> {
    let (k, p) = key();
    Encoder::new(&input(len, seed)[..], &k, p, &params())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Decodes `pushes` (position, data) against the id list `ids`.
fn decode_with(
    key: &FileKey,
    prefix: NoncePrefix,
    ids: Vec<ChunkId>,
    pushes: Vec<(u32, Vec<u8>)>,
) -> Result<Vec<u8>, CodecError> {
    let mut d = Decoder::new(key, prefix, ids, Vec::new(), &params())?;
    for (index, data) in pushes {
        d.push(index, data)?;
    }
    d.finish()
}

fn ids(chunks: &[EncodedChunk]) -> Vec<ChunkId> {
    chunks.iter().map(|c| c.id).collect()
}

fn pushes(chunks: &[EncodedChunk]) -> Vec<(u32, Vec<u8>)> {
    chunks.iter().map(|c| (c.index, c.data.clone())).collect()
}

fn decode(ids: Vec<ChunkId>, pushes: Vec<(u32, Vec<u8>)>) -> Result<Vec<u8>, CodecError> {
    let (k, p) = key();
    decode_with(&k, p, ids, pushes)
}

/// Inputs of 1 to 6 segments (never 0: some tampers need two chunks).
fn segments() -> impl Strategy<Value = usize> {
    (2 * SEG / 3)..(6 * SEG)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn flipped_bit_is_an_id_mismatch(len in segments(), seed: u8, pick: prop::sample::Index, bit in 0u8..8) {
        let chunks = encode(len, seed);
        let mut p = pushes(&chunks);
        let at = pick.index(p.len());
        let pos = pick.index(p[at].1.len());
        p[at].1[pos] ^= 1 << bit;
        let got = decode(ids(&chunks), p);
        prop_assert!(matches!(got, Err(CodecError::IdMismatch { index }) if index as usize == at), "{got:?}");
    }

    #[test]
    fn flipped_bit_under_a_forged_id_fails_authentication(len in segments(), seed: u8, pick: prop::sample::Index, bit in 0u8..8) {
        // The manifest is signed, so this needs a forged manifest; the AEAD
        // still refuses the chunk.
        let chunks = encode(len, seed);
        let (mut list, mut p) = (ids(&chunks), pushes(&chunks));
        let at = pick.index(p.len());
        let pos = pick.index(p[at].1.len());
        p[at].1[pos] ^= 1 << bit;
        list[at] = ChunkId::of(&p[at].1);
        let got = decode(list, p);
        prop_assert!(matches!(got, Err(CodecError::Decrypt { index }) if index as usize == at), "{got:?}");
    }

    #[test]
    fn dropped_chunk_is_refused(len in segments(), seed: u8, pick: prop::sample::Index) {
        let chunks = encode(len, seed);
        let at = pick.index(chunks.len());
        let mut p = pushes(&chunks);
        p.remove(at);
        let want_missing = at + 1 == chunks.len();
        let got = decode(ids(&chunks), p.clone());
        if want_missing {
            prop_assert!(matches!(got, Err(CodecError::Missing { index }) if index as usize == at), "{got:?}");
        } else {
            prop_assert!(matches!(got, Err(CodecError::OutOfOrder { expected, got: g })
                if expected as usize == at && g as usize == at + 1), "{got:?}");
            // Renumbered to hide the gap, the next chunk does not match the id.
            let renumbered = p.into_iter().enumerate().map(|(i, (_, d))| (i as u32, d)).collect();
            let got = decode(ids(&chunks), renumbered);
            prop_assert!(matches!(got, Err(CodecError::IdMismatch { index }) if index as usize == at), "{got:?}");
        }
    }

    #[test]
    fn reordered_chunks_are_refused(len in (2 * SEG)..(6 * SEG), seed: u8, a: prop::sample::Index, b: prop::sample::Index) {
        let chunks = encode(len, seed);
        let (i, j) = (a.index(chunks.len()), b.index(chunks.len()));
        prop_assume!(i != j);
        let (lo, hi) = (i.min(j), i.max(j));

        // Delivered in the wrong order under their own numbers.
        let mut p = pushes(&chunks);
        p.swap(lo, hi);
        let got = decode(ids(&chunks), p.clone());
        prop_assert!(matches!(got, Err(CodecError::OutOfOrder { expected, .. }) if expected as usize == lo), "{got:?}");

        // Swapped data under the expected numbers: caught by the ids.
        let renumbered = p.into_iter().enumerate().map(|(n, (_, d))| (n as u32, d)).collect();
        let got = decode(ids(&chunks), renumbered);
        prop_assert!(matches!(got, Err(CodecError::IdMismatch { index }) if index as usize == lo), "{got:?}");

        // Ids swapped too (a forged manifest): the nonce carries the index.
        let mut list = ids(&chunks);
        list.swap(lo, hi);
        let mut p = pushes(&chunks);
        p.swap(lo, hi);
        let renumbered = p.into_iter().enumerate().map(|(n, (_, d))| (n as u32, d)).collect();
        let got = decode(list, renumbered);
        prop_assert!(matches!(got, Err(CodecError::Decrypt { index }) if index as usize == lo), "{got:?}");
    }

    #[test]
    fn duplicated_chunk_is_refused(len in segments(), seed: u8, pick: prop::sample::Index) {
        let chunks = encode(len, seed);
        let at = pick.index(chunks.len());
        let mut p = pushes(&chunks);
        p.insert(at + 1, p[at].clone());
        let got = decode(ids(&chunks), p);
        prop_assert!(matches!(got, Err(CodecError::Duplicate { index }) if index as usize == at), "{got:?}");
    }

    #[test]
    fn truncated_list_is_refused(len in (SEG + 1)..(6 * SEG), seed: u8) {
        let chunks = encode(len, seed);
        let n = chunks.len();
        // The last chunk removed from list and stream: the new end was not sealed as last.
        let got = decode(ids(&chunks[..n - 1]), pushes(&chunks[..n - 1]));
        prop_assert!(matches!(got, Err(CodecError::Truncated { index }) if index as usize == n - 2), "{got:?}");
        // The last chunk withheld but listed.
        let got = decode(ids(&chunks), pushes(&chunks[..n - 1]));
        prop_assert!(matches!(got, Err(CodecError::Missing { index }) if index as usize == n - 1), "{got:?}");
        // An extra entry after the real last one.
        let mut list = ids(&chunks);
        list.push(chunks[0].id);
        let got = decode(list, pushes(&chunks));
        prop_assert!(matches!(got, Err(CodecError::UnexpectedLast { index }) if index as usize == n - 1), "{got:?}");
    }

    #[test]
    fn wrong_key_or_prefix_fails_authentication(len in segments(), seed: u8, flip in 0usize..39) {
        let chunks = encode(len, seed);
        let (mut k, mut p) = key();
        if flip < 32 { k.0[flip] ^= 1 } else { p.0[flip - 32] ^= 1 }
        let got = decode_with(&k, p, ids(&chunks), pushes(&chunks));
        prop_assert!(matches!(got, Err(CodecError::Decrypt { index: 0 })), "{got:?}");
    }
}

#[test]
fn errors_end_the_stream_but_misplaced_pushes_do_not() {
    let chunks = encode(3 * SEG, 5);
    let (k, p) = key();
    let mut d = Decoder::new(&k, p, ids(&chunks), Vec::new(), &params()).unwrap();
    assert!(matches!(
        d.push(1, chunks[1].data.clone()),
        Err(CodecError::OutOfOrder {
            expected: 0,
            got: 1
        })
    ));
    assert!(matches!(
        d.push(9, vec![]),
        Err(CodecError::UnknownIndex { index: 9, count: 3 })
    ));
    for c in &chunks {
        d.push(c.index, c.data.clone()).unwrap();
    }
    assert_eq!(d.finish().unwrap(), input(3 * SEG, 5));

    let mut d = Decoder::new(&k, p, ids(&chunks), Vec::new(), &params()).unwrap();
    let mut bad = chunks[0].data.clone();
    bad[0] ^= 1;
    d.push(0, bad).unwrap();
    // The error surfaces once the chunk is opened, at the latest in finish.
    let err = (1..3)
        .find_map(|i| d.push(i, chunks[i as usize].data.clone()).err())
        .unwrap_or_else(|| d.finish().unwrap_err());
    assert!(
        matches!(err, CodecError::IdMismatch { index: 0 }),
        "{err:?}"
    );
}

/// Seals a hand-made segment with the documented format, as only a key
/// holder could, to check the decoder's own limits.
fn forge(body: &[u8], plain_len: u32, encoding: u8) -> (ChunkId, Vec<u8>) {
    let mut sealed = body.to_vec();
    sealed.extend_from_slice(&plain_len.to_le_bytes());
    sealed.push(encoding);
    seal_raw(sealed)
}

/// Encrypts `sealed` as segment 0, the last, of the test file.
fn seal_raw(mut sealed: Vec<u8>) -> (ChunkId, Vec<u8>) {
    let (k, p) = key();
    let mut nonce = [0u8; 12];
    nonce[..7].copy_from_slice(&p.0);
    nonce[11] = 1; // segment 0, last
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(k.0));
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::from(nonce),
            b"ifs/chunk/1",
            sealed.as_mut_slice().into(),
        )
        .unwrap();
    sealed.extend_from_slice(&tag);
    (ChunkId::of(&sealed), sealed)
}

#[test]
fn a_segment_cannot_inflate_past_the_segment_size() {
    let (k, p) = key();
    let bomb = zstd::bulk::compress(&vec![0u8; 64 * SEG], 19).unwrap();

    // The trailer states the truth: refused before decompressing.
    let (id, data) = forge(&bomb, 64 * SEG as u32, 1);
    let got = decode_segment(&k, &p, 0, true, &id, data, SEG);
    assert!(
        matches!(got, Err(CodecError::SegmentTooLarge { index: 0, .. })),
        "{got:?}"
    );

    // The trailer lies: decompression stops at the cap.
    let (id, data) = forge(&bomb, SEG as u32, 1);
    let got = decode_segment(&k, &p, 0, true, &id, data, SEG);
    assert!(
        matches!(got, Err(CodecError::Decompress { index: 0 })),
        "{got:?}"
    );

    // Unknown encoding byte and too-short plaintext.
    let (id, data) = forge(b"abc", 3, 7);
    let got = decode_segment(&k, &p, 0, true, &id, data, SEG);
    assert!(
        matches!(got, Err(CodecError::BadTrailer { index: 0 })),
        "{got:?}"
    );
    let (id, data) = seal_raw(vec![0, 0]);
    let got = decode_segment(&k, &p, 0, true, &id, data, SEG);
    assert!(
        matches!(got, Err(CodecError::BadTrailer { index: 0 })),
        "{got:?}"
    );
    let (id, data) = forge(b"", 0, 0);
    let mut short = data[..data.len() - 1].to_vec();
    short.truncate(3);
    let got = decode_segment(&k, &p, 0, true, &ChunkId::of(&short), short, SEG);
    assert!(
        matches!(got, Err(CodecError::Decrypt { index: 0 })),
        "{got:?}"
    );
    assert_eq!(
        decode_segment(&k, &p, 0, true, &id, data, SEG).unwrap(),
        b""
    );

    // A chunk longer than any segment could seal to is refused unhashed.
    let long = vec![0u8; 2 * SEG];
    let got = decode_segment(&k, &p, 0, true, &ChunkId::of(&long), long, SEG);
    assert!(
        matches!(got, Err(CodecError::ChunkTooLarge { index: 0, .. })),
        "{got:?}"
    );
}

#[test]
fn a_chunk_at_another_position_fails_authentication() {
    let chunks = encode(3 * SEG, 9);
    let (k, p) = key();
    let c = &chunks[1];
    let got = decode_segment(&k, &p, 2, false, &c.id, c.data.clone(), SEG);
    assert!(
        matches!(got, Err(CodecError::Decrypt { index: 2 })),
        "{got:?}"
    );
    let got = decode_segment(&k, &p, 1, true, &c.id, c.data.clone(), SEG);
    assert!(
        matches!(got, Err(CodecError::Truncated { index: 1 })),
        "{got:?}"
    );
}
