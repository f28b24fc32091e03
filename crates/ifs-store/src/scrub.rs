//! Reading chunks back and checking them: reassemble the pieces, re-hash,
//! compare with the id. Runs on blocking threads, never on the actor, so a
//! long scrub does not hold up writes.

use crate::engine::ChunkLocation;
use crate::error::{StoreError, StoreResult};
use crate::volume::{self, PieceRead};
use ifs_core::ChunkId;

/// The state of one stored chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkHealth {
    /// Every piece is present and the bytes hash to the id.
    Healthy,
    /// A piece has the wrong length or the bytes do not hash to the id.
    Corrupt,
    /// A piece file is gone (or its volume is no longer configured).
    Missing,
}

/// What a scrub found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Chunks checked.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Chunks whose bytes no longer match their id.
    pub corrupt: Vec<ChunkId>,
    /// Chunks with a piece missing.
    pub missing: Vec<ChunkId>,
}

impl ScrubReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }

    pub(crate) fn record(&mut self, chunk: ChunkId, len: u64, health: ChunkHealth) {
        self.checked += 1;
        self.bytes += len;
        match health {
            ChunkHealth::Healthy => {}
            ChunkHealth::Corrupt => self.corrupt.push(chunk),
            ChunkHealth::Missing => self.missing.push(chunk),
        }
    }
}

/// Reads a chunk and verifies it.
pub(crate) fn read_chunk(chunk: ChunkId, loc: &ChunkLocation) -> StoreResult<Vec<u8>> {
    // The row's length is only a hint: never let a damaged row make us
    // allocate more than a few pieces' worth up front.
    let hint = loc.len.min(64 << 20);
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    for (path, len) in &loc.pieces {
        let Some(path) = path else {
            return Err(StoreError::Missing { chunk });
        };
        match volume::read_piece(path, *len, &mut out)? {
            PieceRead::Ok => {}
            PieceRead::Missing => return Err(StoreError::Missing { chunk }),
            PieceRead::WrongLength => return Err(StoreError::Corrupt { chunk }),
        }
    }
    if out.len() as u64 != loc.len || ChunkId::of(&out) != chunk {
        return Err(StoreError::Corrupt { chunk });
    }
    Ok(out)
}

/// Checks a chunk. A piece that cannot be read (bad sector, permissions)
/// counts as corrupt: either way the node must refetch it from a peer.
pub(crate) fn verify_chunk(chunk: ChunkId, loc: &ChunkLocation) -> ChunkHealth {
    match read_chunk(chunk, loc) {
        Ok(_) => ChunkHealth::Healthy,
        Err(StoreError::Missing { .. }) => ChunkHealth::Missing,
        Err(StoreError::Corrupt { .. }) => ChunkHealth::Corrupt,
        Err(e) => {
            tracing::warn!(%chunk, error = %e, "unreadable piece");
            ChunkHealth::Corrupt
        }
    }
}
