//! Writing a chunk in three steps, so only the cheap ones hold the actor:
//! 1. `begin_put` (actor): check the reservation, pick volumes, hold the bytes;
//! 2. `write_pieces` (any blocking thread, in parallel with other puts):
//!    verify the id, write each piece to a temp file, fsync, rename;
//! 3. `finish_put` (actor): one small redb commit of the chunk row and the
//!    reservation's charge. `abort_put` undoes step 1 and removes the files.

use crate::engine::Engine;
use crate::error::{StoreError, StoreResult};
use crate::tables::{self, CHUNKS, ChunkRecord, PieceRef, RESERVATIONS, ReservationId};
use crate::volume;
use ifs_core::{ChunkId, UserId};
use std::path::PathBuf;

/// Where a test wants the store to stop as if the machine had crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// After a put's temp files are written, before any rename.
    AfterTempWrite,
    /// After a put's piece files are renamed into place, before the redb commit.
    BeforeCommit,
}

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk's id.
    pub chunk: ChunkId,
    /// Its size in bytes.
    pub len: u64,
    /// How many pieces it was cut into.
    pub pieces: usize,
    /// It was already stored; nothing was written or charged.
    pub already_present: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct PlannedPiece {
    pub volume: u16,
    pub name: String,
    pub tmp: PathBuf,
    pub dest: PathBuf,
    pub len: u64,
}

/// A write that holds bytes of a reservation until finished or aborted.
#[derive(Debug)]
pub(crate) struct PutPlan {
    pub reservation: ReservationId,
    pub chunk: ChunkId,
    pub owner: UserId,
    pub len: u64,
    pub pieces: Vec<PlannedPiece>,
    pub fault: Option<FaultPoint>,
}

pub(crate) enum PutStart {
    Planned(PutPlan),
    AlreadyStored(StoredChunk),
}

/// Cuts `len` bytes into pieces of at most `piece_size`, each on the volume
/// with the most free space left (ties: configuration order), spilling to the
/// next volume when one fills. `free` is (volume index, free bytes).
pub(crate) fn place_pieces(
    len: u64,
    piece_size: u64,
    free: &mut [(usize, u64)],
) -> Option<Vec<(usize, u64)>> {
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let best = free.iter_mut().rev().max_by_key(|(_, f)| *f)?;
        if best.1 == 0 {
            return None;
        }
        let take = left.min(piece_size).min(best.1);
        best.1 -= take;
        out.push((best.0, take));
        left -= take;
    }
    Some(out)
}

impl Engine {
    pub fn begin_put(
        &mut self,
        reservation: ReservationId,
        chunk: ChunkId,
        owner: UserId,
        len: u64,
        now_ms: u64,
    ) -> StoreResult<PutStart> {
        if let Some(rec) = self.chunk_row(&chunk)? {
            let pieces = rec.pieces.len();
            return Ok(PutStart::AlreadyStored(StoredChunk {
                chunk,
                len: rec.len,
                pieces,
                already_present: true,
            }));
        }
        self.charge_inflight(reservation, len, now_ms)?;
        match self.plan(reservation, chunk, owner, len) {
            Ok(plan) => Ok(PutStart::Planned(plan)),
            Err(e) => {
                self.uncharge_inflight(reservation, len)?;
                Err(e)
            }
        }
    }

    fn plan(
        &mut self,
        reservation: ReservationId,
        chunk: ChunkId,
        owner: UserId,
        len: u64,
    ) -> StoreResult<PutPlan> {
        let cap = self.capacity()?;
        let mut free: Vec<(usize, u64)> = cap
            .volumes
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let inflight = self
                    .inflight_by_volume
                    .get(&self.volumes[i].id)
                    .copied()
                    .unwrap_or(0);
                (i, v.free.saturating_sub(inflight))
            })
            .collect();
        let total_free = free.iter().map(|(_, f)| f).sum();
        let placed = place_pieces(len, self.piece_size, &mut free).ok_or(StoreError::Full {
            needed: len,
            free: total_free,
        })?;
        // Distinguishes this write's files from any other write of the same chunk.
        let nonce: u64 = rand::random();
        let mut pieces = Vec::with_capacity(placed.len());
        for (index, (vi, plen)) in placed.into_iter().enumerate() {
            let vol = &self.volumes[vi];
            let name = format!("{}.{index}.{nonce:016x}", chunk.to_hex());
            pieces.push(PlannedPiece {
                volume: vol.id,
                tmp: vol.tmp_path(&name),
                dest: vol.piece_path(&name),
                name,
                len: plen,
            });
        }
        for p in &pieces {
            *self.inflight_by_volume.entry(p.volume).or_default() += p.len;
        }
        Ok(PutPlan {
            reservation,
            chunk,
            owner,
            len,
            pieces,
            fault: self.fault,
        })
    }

    /// Commits a written plan: chunk row and reservation charge in one commit.
    pub fn finish_put(&mut self, plan: PutPlan, now_ms: u64) -> StoreResult<StoredChunk> {
        self.release_inflight_volumes(&plan);
        if self.chunk_row(&plan.chunk)?.is_some() {
            // A concurrent write of the same chunk won; ours is surplus.
            self.abort_files(&plan);
            self.uncharge_inflight(plan.reservation, plan.len)?;
            let pieces = plan.pieces.len();
            return Ok(StoredChunk {
                chunk: plan.chunk,
                len: plan.len,
                pieces,
                already_present: true,
            });
        }
        let row = ChunkRecord {
            len: plan.len,
            owner: plan.owner,
            pieces: plan
                .pieces
                .iter()
                .map(|p| PieceRef {
                    volume: p.volume,
                    name: p.name.clone(),
                    len: p.len,
                })
                .collect(),
            stored_ms: now_ms,
        };
        let charged = self.charged_row(plan.reservation, plan.len);
        let committed = self.write(|txn| {
            let mut chunks = txn.open_table(CHUNKS).map_err(self.dbe())?;
            chunks
                .insert(&plan.chunk.0, tables::encode(&row).as_slice())
                .map_err(self.dbe())?;
            let mut res = txn.open_table(RESERVATIONS).map_err(self.dbe())?;
            match &charged {
                Some((_, true)) => {
                    res.remove(&plan.reservation.0).map_err(self.dbe())?;
                }
                Some((next, false)) => {
                    res.insert(&plan.reservation.0, tables::encode(&next.rec).as_slice())
                        .map_err(self.dbe())?;
                }
                None => {}
            }
            Ok(())
        });
        if let Err(e) = committed {
            self.abort_files(&plan);
            self.uncharge_inflight(plan.reservation, plan.len)?;
            return Err(e);
        }
        match charged {
            Some((_, true)) => {
                self.reservations.remove(&plan.reservation);
            }
            Some((next, false)) => {
                self.reservations.insert(plan.reservation, next);
            }
            None => {}
        }
        for p in &plan.pieces {
            *self.used_by_volume.entry(p.volume).or_default() += p.len;
            self.used += p.len;
        }
        Ok(StoredChunk {
            chunk: plan.chunk,
            len: plan.len,
            pieces: plan.pieces.len(),
            already_present: false,
        })
    }

    /// Gives back a plan's bytes and removes whatever it wrote.
    pub fn abort_put(&mut self, plan: PutPlan) -> StoreResult<()> {
        self.release_inflight_volumes(&plan);
        self.abort_files(&plan);
        self.uncharge_inflight(plan.reservation, plan.len)
    }

    fn release_inflight_volumes(&mut self, plan: &PutPlan) {
        for p in &plan.pieces {
            if let Some(v) = self.inflight_by_volume.get_mut(&p.volume) {
                *v = v.saturating_sub(p.len);
            }
        }
    }

    fn abort_files(&mut self, plan: &PutPlan) {
        for p in &plan.pieces {
            for path in [&p.tmp, &p.dest] {
                // A file that stays is counted until a retry or the next
                // open removes it: it has no row.
                self.remove_or_count(path.clone(), p.volume, p.len);
            }
        }
    }
}

/// Step 2: checks `data` against the chunk id and writes the pieces. With
/// `stop_after_temp` it leaves only synced temp files (crash simulation).
pub(crate) fn write_pieces(plan: &PutPlan, data: &[u8], stop_after_temp: bool) -> StoreResult<()> {
    if data.len() as u64 != plan.len || ChunkId::of(data) != plan.chunk {
        return Err(StoreError::WrongId { chunk: plan.chunk });
    }
    let mut offset = 0usize;
    for p in &plan.pieces {
        let end = offset + p.len as usize;
        let bytes = data
            .get(offset..end)
            .ok_or(StoreError::WrongId { chunk: plan.chunk })?;
        if stop_after_temp {
            std::fs::write(&p.tmp, bytes).map_err(crate::error::io_err(&p.tmp))?;
        } else {
            volume::write_piece(&p.tmp, &p.dest, bytes)?;
        }
        offset = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_go_to_the_freest_volume_and_spill() {
        let mut free = vec![(0, 10), (1, 25)];
        let placed = place_pieces(30, 8, &mut free).unwrap();
        assert_eq!(placed.iter().map(|p| p.1).sum::<u64>(), 30);
        assert!(placed.iter().all(|p| p.1 <= 8));
        assert_eq!(placed[0].0, 1, "most free first");
        assert_eq!(free.iter().map(|f| f.1).sum::<u64>(), 5);
        assert_eq!(place_pieces(6, 8, &mut free), None, "only 5 bytes left");
        assert_eq!(place_pieces(0, 8, &mut [(0, 0)]), Some(vec![]));
    }

    #[test]
    fn ties_go_to_the_first_configured_volume() {
        let placed = place_pieces(4, 4, &mut [(0, 9), (1, 9)]).unwrap();
        assert_eq!(placed, vec![(0, 4)]);
    }
}
