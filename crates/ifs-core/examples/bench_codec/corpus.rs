//! Deterministic benchmark inputs, generated as streams: text-like prose
//! with realistic word entropy, and uniform random bytes.

use std::io::{self, Read};

/// xoshiro256++: fast, deterministic, good enough for test data.
pub struct Xoshiro([u64; 4]);

impl Xoshiro {
    pub fn new(seed: u64) -> Self {
        // splitmix64 spreads a small seed over the whole state.
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Xoshiro([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in `0..n` (the tiny modulo bias does not matter here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// English letter frequencies, per mille: generated words look and
/// compress like real ones rather than like random strings.
const LETTERS: &[(u8, u32)] = &[
    (b'e', 127),
    (b't', 91),
    (b'a', 82),
    (b'o', 75),
    (b'i', 70),
    (b'n', 67),
    (b's', 63),
    (b'h', 61),
    (b'r', 60),
    (b'd', 43),
    (b'l', 40),
    (b'c', 28),
    (b'u', 28),
    (b'm', 24),
    (b'w', 24),
    (b'f', 22),
    (b'g', 20),
    (b'y', 20),
    (b'p', 19),
    (b'b', 15),
    (b'v', 10),
    (b'k', 8),
    (b'j', 2),
    (b'x', 2),
    (b'q', 1),
    (b'z', 1),
];

/// The letter at cumulative frequency `r`.
fn letter(mut r: u32) -> u8 {
    for &(c, f) in LETTERS {
        if r < f {
            return c;
        }
        r -= f;
    }
    b'e'
}

/// Distinct words in the vocabulary.
const VOCABULARY: usize = 8000;
/// Slots of the Zipf lookup table: sampling a word is one table read.
const ZIPF_SLOTS: usize = 1 << 20;

/// Prose: words of a generated vocabulary drawn with Zipf(1) frequencies
/// (frequent words short, as in natural language), with commas, sentence
/// ends and capitals, lines of about 72 columns and paragraphs.
pub struct Text {
    rng: Xoshiro,
    words: Vec<Vec<u8>>,
    zipf: Vec<u16>,
    remaining: u64,
    block: Vec<u8>,
    pos: usize,
    column: usize,
    sentence_start: bool,
}

impl Text {
    pub fn new(seed: u64, len: u64) -> Self {
        let mut rng = Xoshiro::new(seed);
        let total: u32 = LETTERS.iter().map(|l| l.1).sum();
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let rank = words.len() as f64;
            // Mean length grows with rank: "the", "of" … "interpretation".
            let len = 1 + (rank + 1.0).log2() as u64 / 2 + rng.below(4);
            let word: Vec<u8> = (0..len.min(14))
                .map(|_| letter(rng.below(u64::from(total)) as u32))
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let harmonic: f64 = (1..=VOCABULARY).map(|k| 1.0 / k as f64).sum();
        let mut zipf = Vec::with_capacity(ZIPF_SLOTS);
        let mut cumulative = 0.0;
        for k in 0..VOCABULARY {
            cumulative += 1.0 / ((k + 1) as f64 * harmonic);
            let upto = ((cumulative * ZIPF_SLOTS as f64) as usize).min(ZIPF_SLOTS);
            zipf.resize(upto.max(zipf.len()), k as u16);
        }
        zipf.resize(ZIPF_SLOTS, (VOCABULARY - 1) as u16);
        Text {
            rng,
            words,
            zipf,
            remaining: len,
            block: Vec::with_capacity(1 << 16),
            pos: 0,
            column: 0,
            sentence_start: true,
        }
    }

    fn refill(&mut self) {
        self.block.clear();
        self.pos = 0;
        while self.block.len() < (1 << 16) - 64 {
            let r = self.rng.next_u64();
            let word = &self.words[self.zipf[(r as usize) & (ZIPF_SLOTS - 1)] as usize];
            let start = self.block.len();
            if (r >> 20).is_multiple_of(100) {
                // Numbers: years, counts, page references.
                let n = (r >> 32) % 10_000;
                self.block.extend_from_slice(n.to_string().as_bytes());
            } else {
                self.block.extend_from_slice(word);
            }
            if self.sentence_start {
                self.block[start] = self.block[start].to_ascii_uppercase();
            }
            self.sentence_start = false;
            let punct = (r >> 40) % 100;
            if punct < 7 {
                self.block.push(b',');
            } else if punct < 13 {
                self.block.push(b'.');
                self.sentence_start = true;
            }
            self.column += self.block.len() - start;
            if self.sentence_start && (r >> 48).is_multiple_of(10) {
                self.block.extend_from_slice(b"\n\n");
                self.column = 0;
            } else if self.column > 72 {
                self.block.push(b'\n');
                self.column = 0;
            } else {
                self.block.push(b' ');
                self.column += 1;
            }
        }
    }
}

impl Read for Text {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        if self.pos == self.block.len() {
            self.refill();
        }
        let n = buf
            .len()
            .min(self.block.len() - self.pos)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Uniform random bytes: the incompressible case (media, archives).
pub struct Random {
    rng: Xoshiro,
    remaining: u64,
}

impl Random {
    pub fn new(seed: u64, len: u64) -> Self {
        Random {
            rng: Xoshiro::new(seed),
            remaining: len,
        }
    }
}

impl Read for Random {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX))
            & !7;
        let n = if n == 0 {
            buf.len().min(self.remaining as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            let r = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
