//! Audits between holders (the seed's Fig. 23: servers validate each other's
//! stored data).
//!
//! A challenger that holds a chunk picks a random 32-byte nonce and a byte
//! range and asks another holder for `blake3::keyed_hash(nonce, chunk[range])`.
//! The challenger computes the same value from its own copy, so it needs no
//! stored answers, and a fresh nonce per audit means a holder cannot answer
//! from a precomputed table: it must still have the bytes.

use serde::{Deserialize, Serialize};

use crate::ids::ChunkId;

/// Longest byte range one audit asks for: enough to touch a real part of
/// the chunk, small enough that answering costs little disk and CPU.
pub const MAX_AUDIT_RANGE: u64 = 1 << 20;

/// One audit question about one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditChallenge {
    /// The chunk audited.
    pub chunk: ChunkId,
    /// The hash key; fresh per audit.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
    /// First byte of the range.
    pub offset: u64,
    /// Bytes in the range (1..=[`MAX_AUDIT_RANGE`], or 0 for an empty chunk).
    pub len: u64,
}

/// Why an audit challenge cannot be answered from a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The range asks for more than [`MAX_AUDIT_RANGE`] bytes.
    #[error("audit range of {len} bytes exceeds the cap")]
    RangeTooLong {
        /// Bytes asked.
        len: u64,
    },
    /// The range runs past the end of the chunk.
    #[error("audit range {offset}+{len} runs past the chunk's {chunk_len} bytes")]
    OutOfBounds {
        /// First byte asked.
        offset: u64,
        /// Bytes asked.
        len: u64,
        /// The chunk's length.
        chunk_len: u64,
    },
}

impl AuditChallenge {
    /// A challenge for a chunk of `chunk_len` bytes. `random` supplies the
    /// nonce and the range: the caller passes fresh randomness, so tests can
    /// pass fixed bytes. The range is up to [`MAX_AUDIT_RANGE`] long and lies
    /// inside the chunk.
    pub fn new(chunk: ChunkId, chunk_len: u64, random: [u8; 48]) -> Self {
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&random[..32]);
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&random[32..40]);
        b.copy_from_slice(&random[40..48]);
        let (offset, len) = if chunk_len == 0 {
            (0, 0)
        } else {
            let max_len = chunk_len.min(MAX_AUDIT_RANGE);
            let len = 1 + u64::from_le_bytes(a) % max_len;
            let offset = u64::from_le_bytes(b) % (chunk_len - len + 1);
            (offset, len)
        };
        AuditChallenge {
            chunk,
            nonce,
            offset,
            len,
        }
    }

    /// Check the range against a chunk of `chunk_len` bytes.
    pub fn check(&self, chunk_len: u64) -> Result<(), AuditError> {
        if self.len > MAX_AUDIT_RANGE {
            return Err(AuditError::RangeTooLong { len: self.len });
        }
        match self.offset.checked_add(self.len) {
            Some(end) if end <= chunk_len => Ok(()),
            _ => Err(AuditError::OutOfBounds {
                offset: self.offset,
                len: self.len,
                chunk_len,
            }),
        }
    }

    /// The proof from a full copy of the chunk.
    pub fn answer(&self, chunk: &[u8]) -> Result<[u8; 32], AuditError> {
        self.check(chunk.len() as u64)?;
        // `check` bounds the range by the slice length, so these fit in usize.
        let start = self.offset as usize;
        let end = start + self.len as usize;
        Ok(*blake3::keyed_hash(&self.nonce, &chunk[start..end]).as_bytes())
    }

    /// Whether `proof` is the right answer, given the challenger's own copy.
    pub fn verify(&self, own_copy: &[u8], proof: &[u8; 32]) -> bool {
        match self.answer(own_copy) {
            // blake3::Hash compares in constant time.
            Ok(expected) => blake3::Hash::from(expected) == blake3::Hash::from(*proof),
            Err(_) => false,
        }
    }
}

/// The result of one audit, as the challenger records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// The proof matched.
    Pass,
    /// Wrong proof, a refusal or "not held" for a chunk it has a receipt for.
    Fail,
    /// No answer (unreachable, timeout): says nothing about the data.
    NoAnswer,
}

/// Who may audit which chunk, remembered for a while: checking costs a
/// record decode (and a DHT lookup when the local copy does not name the
/// challenger), which must not be paid again for every audit of a chunk.
/// Bounded; a refusal is remembered for less time than an admission, so a
/// new co-holder whose receipt is still on its way gets in soon.
#[derive(Clone, Debug, Default)]
pub struct CoHolderCache {
    verdicts: std::collections::HashMap<(ChunkId, crate::ids::NodeId), (bool, u64)>,
}

impl CoHolderCache {
    /// Most (chunk, node) pairs remembered.
    pub const MAX: usize = 8192;
    /// How long an admission is remembered.
    pub const ADMIT_MS: u64 = 10 * 60 * 1000;
    /// How long a refusal is remembered.
    pub const REFUSE_MS: u64 = 60 * 1000;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The remembered verdict on `node` auditing `chunk` at `now_ms`.
    pub fn get(&self, chunk: &ChunkId, node: &crate::ids::NodeId, now_ms: u64) -> Option<bool> {
        match self.verdicts.get(&(*chunk, *node)) {
            Some(&(admit, until)) if until > now_ms => Some(admit),
            _ => None,
        }
    }

    /// Remember a verdict reached at `now_ms`.
    pub fn put(&mut self, chunk: ChunkId, node: crate::ids::NodeId, admit: bool, now_ms: u64) {
        if self.verdicts.len() >= Self::MAX {
            self.verdicts.retain(|_, &mut (_, until)| until > now_ms);
        }
        if self.verdicts.len() >= Self::MAX {
            // Still full of live verdicts: start over rather than grow.
            self.verdicts.clear();
        }
        let ttl = if admit {
            Self::ADMIT_MS
        } else {
            Self::REFUSE_MS
        };
        self.verdicts
            .insert((chunk, node), (admit, now_ms.saturating_add(ttl)));
    }

    /// Forget every verdict about `chunk` (its record changed).
    pub fn forget_chunk(&mut self, chunk: &ChunkId) {
        self.verdicts.retain(|(c, _), _| c != chunk);
    }

    /// Pairs remembered (some may have expired).
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: usize) -> (ChunkId, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        (ChunkId::of(&data), data)
    }

    #[test]
    fn honest_holder_passes_and_a_flipped_byte_fails() {
        let (id, data) = chunk(3 << 20);
        for seed in 0..50u8 {
            let c = AuditChallenge::new(id, data.len() as u64, [seed; 48]);
            c.check(data.len() as u64).unwrap();
            let proof = c.answer(&data).unwrap();
            assert!(c.verify(&data, &proof));
            let mut bad = data.clone();
            bad[c.offset as usize] ^= 1;
            assert!(!c.verify(&data, &c.answer(&bad).unwrap()));
        }
    }

    #[test]
    fn different_nonces_give_different_proofs() {
        let (id, data) = chunk(4096);
        let mut r1 = [0u8; 48];
        let mut r2 = [0u8; 48];
        r2[0] = 1;
        // Same range, other key.
        let a = AuditChallenge::new(id, 4096, r1);
        r1[..32].copy_from_slice(&r2[..32]);
        let b = AuditChallenge::new(id, 4096, r1);
        assert_eq!((a.offset, a.len), (b.offset, b.len));
        assert_ne!(a.answer(&data).unwrap(), b.answer(&data).unwrap());
    }

    #[test]
    fn ranges_stay_inside_the_chunk_and_under_the_cap() {
        for len in [1u64, 2, 100, MAX_AUDIT_RANGE, MAX_AUDIT_RANGE + 7, 64 << 20] {
            for seed in 0..=255u8 {
                let mut r = [seed; 48];
                r[40] = seed.wrapping_mul(7);
                let c = AuditChallenge::new(ChunkId([0; 32]), len, r);
                assert!(c.len >= 1 && c.len <= MAX_AUDIT_RANGE.min(len));
                assert!(c.offset + c.len <= len);
            }
        }
        let empty = AuditChallenge::new(ChunkId([0; 32]), 0, [9; 48]);
        assert_eq!((empty.offset, empty.len), (0, 0));
        assert!(empty.answer(&[]).is_ok());
    }

    #[test]
    fn hostile_ranges_are_refused_not_panicking() {
        let (id, data) = chunk(1000);
        let mut c = AuditChallenge::new(id, 1000, [1; 48]);
        c.offset = u64::MAX;
        c.len = 10;
        assert!(matches!(
            c.answer(&data),
            Err(AuditError::OutOfBounds { .. })
        ));
        c.offset = 0;
        c.len = MAX_AUDIT_RANGE + 1;
        assert!(matches!(
            c.answer(&data),
            Err(AuditError::RangeTooLong { .. })
        ));
        c.len = 1001;
        assert!(c.answer(&data).is_err());
        assert!(!c.verify(&data, &[0; 32]));
    }

    #[test]
    fn a_short_copy_cannot_verify() {
        let (id, data) = chunk(1000);
        let c = AuditChallenge::new(id, 1000, [3; 48]);
        let proof = c.answer(&data).unwrap();
        assert!(!c.verify(&data[..c.offset as usize], &proof));
    }

    #[test]
    fn co_holder_verdicts_expire_and_stay_bounded() {
        use crate::ids::NodeId;
        let mut c = CoHolderCache::new();
        let (chunk, node) = (ChunkId([1; 32]), NodeId([2; 32]));
        assert_eq!(c.get(&chunk, &node, 0), None);
        c.put(chunk, node, true, 0);
        assert_eq!(
            c.get(&chunk, &node, CoHolderCache::ADMIT_MS - 1),
            Some(true)
        );
        assert_eq!(c.get(&chunk, &node, CoHolderCache::ADMIT_MS), None);
        c.put(chunk, node, false, 0);
        assert_eq!(
            c.get(&chunk, &node, CoHolderCache::REFUSE_MS - 1),
            Some(false)
        );
        assert_eq!(c.get(&chunk, &node, CoHolderCache::REFUSE_MS), None);
        for i in 0..(CoHolderCache::MAX as u32 + 10) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            c.put(ChunkId(id), node, true, 1);
        }
        assert!(c.len() <= CoHolderCache::MAX);
        c.forget_chunk(&ChunkId([0; 32]));
        assert!(c.len() <= CoHolderCache::MAX);
    }
}
