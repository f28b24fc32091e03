//! The store's synchronous core, owned by the actor thread: opening and
//! recovering the disk state, the in-memory counters, and the small
//! operations (delete, receipts, listings, meta tables). Reservations and
//! writes live in `reservations.rs` and `put.rs` as further `impl` blocks.

use crate::capacity::{self, Capacity, VolumeCapacity, VolumeInput};
use crate::error::{StoreError, StoreResult, db_err, io_err};
use crate::tables::{
    self, CHUNKS, ChunkInfo, ChunkRecord, MetaTable, RECEIPTS, RESERVATIONS, ReservationId,
    ReservationRecord, VOLUMES,
};
use crate::volume::{self, Volume};
use crate::{FaultPoint, StoreConfig};
use ifs_core::ChunkId;
use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// A reservation with the bytes of writes planned against it but not yet committed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LiveReservation {
    pub rec: ReservationRecord,
    pub inflight: u64,
}

/// Where a chunk's pieces are, for reading off the actor thread.
#[derive(Clone, Debug)]
pub(crate) struct ChunkLocation {
    pub len: u64,
    /// Path and length of each piece; `None` when its volume is not attached.
    pub pieces: Vec<(Option<PathBuf>, u64)>,
}

pub(crate) struct Engine {
    pub db: Database,
    pub db_path: PathBuf,
    pub volumes: Vec<Volume>,
    pub reserve_pct: u8,
    pub piece_size: u64,
    pub fault: Option<FaultPoint>,
    /// Committed bytes per stable volume id, detached volumes included.
    pub used_by_volume: HashMap<u16, u64>,
    pub used: u64,
    pub reservations: HashMap<ReservationId, LiveReservation>,
    /// Bytes of planned, uncommitted pieces per volume.
    pub inflight_by_volume: HashMap<u16, u64>,
}

impl Engine {
    /// Checks every volume, then opens the table and recovers from any crash.
    pub fn open(cfg: &StoreConfig) -> StoreResult<Engine> {
        cfg.validate()?;
        // Check all volumes before creating anything, so a bad one leaves no trace.
        for spec in &cfg.volumes {
            Volume::check(spec)?;
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(io_err(&cfg.data_dir))?;
        let db_path = cfg.data_dir.join("store.redb");
        let db = Database::create(&db_path).map_err(db_err(&db_path))?;
        let mut engine = Engine {
            db,
            db_path,
            volumes: Vec::new(),
            reserve_pct: cfg.owner_reserve_pct,
            piece_size: cfg.piece_size,
            fault: cfg.fault,
            used_by_volume: HashMap::new(),
            used: 0,
            reservations: HashMap::new(),
            inflight_by_volume: HashMap::new(),
        };
        let ids = engine.volume_ids(cfg)?;
        for (spec, id) in cfg.volumes.iter().zip(ids) {
            engine.volumes.push(Volume::prepare(id, spec.clone())?);
        }
        engine.recover()?;
        Ok(engine)
    }

    /// Maps each configured path to its stable id, giving new paths new ids.
    fn volume_ids(&self, cfg: &StoreConfig) -> StoreResult<Vec<u16>> {
        self.write(|txn| {
            // Create every table up front so readers never meet a missing one.
            txn.open_table(CHUNKS).map_err(self.dbe())?;
            txn.open_table(RECEIPTS).map_err(self.dbe())?;
            txn.open_table(RESERVATIONS).map_err(self.dbe())?;
            for meta in [
                MetaTable::Records,
                MetaTable::NodeTable,
                MetaTable::Reputation,
                MetaTable::Holdings,
            ] {
                txn.open_table(meta.definition()).map_err(self.dbe())?;
            }
            let mut table = txn.open_table(VOLUMES).map_err(self.dbe())?;
            let mut known: HashMap<String, u16> = HashMap::new();
            for row in table.iter().map_err(self.dbe())? {
                let (id, path) = row.map_err(self.dbe())?;
                known.insert(path.value().to_string(), id.value());
            }
            let mut next = known.values().max().map_or(0, |m| m + 1);
            let mut ids = Vec::new();
            for spec in &cfg.volumes {
                let key = spec.path.to_string_lossy().into_owned();
                let id = match known.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id = next;
                        next += 1;
                        table.insert(id, key.as_str()).map_err(self.dbe())?;
                        known.insert(key, id);
                        id
                    }
                };
                ids.push(id);
            }
            Ok(ids)
        })
    }

    /// Rebuilds the counters from the rows and deletes whatever a crash left
    /// behind: temp files, piece files no committed row names, and
    /// reservations that were closed while writes were in flight.
    fn recover(&mut self) -> StoreResult<()> {
        let mut referenced: HashSet<(u16, String)> = HashSet::new();
        for (_, rec) in self.chunk_rows()? {
            rec.charge(&mut self.used_by_volume, &mut self.used);
            for p in rec.pieces {
                referenced.insert((p.volume, p.name));
            }
        }
        let (mut temps, mut orphans, mut orphan_bytes) = (0, 0, 0);
        for vol in &self.volumes {
            temps += vol.clear_tmp()?;
            for (name, len) in vol.list_pieces()? {
                if !referenced.contains(&(vol.id, name.clone())) {
                    volume::remove_file(&vol.piece_path(&name))?;
                    orphans += 1;
                    orphan_bytes += len;
                }
            }
        }
        if temps + orphans > 0 {
            tracing::warn!(
                temps,
                orphans,
                orphan_bytes,
                "removed files left by an interrupted write"
            );
        }
        let closed = self.write(|txn| {
            let mut table = txn.open_table(RESERVATIONS).map_err(self.dbe())?;
            let mut live = Vec::new();
            let mut closed = Vec::new();
            for row in table.iter().map_err(self.dbe())? {
                let (id, bytes) = row.map_err(self.dbe())?;
                let rec: ReservationRecord =
                    tables::decode(bytes.value()).ok_or_else(|| self.bad_row("reservation"))?;
                let id = ReservationId(*id.value());
                if rec.closed {
                    closed.push(id)
                } else {
                    live.push((id, rec))
                }
            }
            for id in &closed {
                table.remove(&id.0).map_err(self.dbe())?;
            }
            Ok((live, closed.len()))
        })?;
        for (id, rec) in closed.0 {
            self.reservations
                .insert(id, LiveReservation { rec, inflight: 0 });
        }
        if closed.1 > 0 {
            tracing::info!(
                count = closed.1,
                "dropped reservations closed before restart"
            );
        }
        Ok(())
    }

    /// Runs `f` in one write transaction and commits it.
    pub fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> StoreResult<T>) -> StoreResult<T> {
        let txn = self.db.begin_write().map_err(self.dbe())?;
        let out = f(&txn)?;
        txn.commit().map_err(self.dbe())?;
        Ok(out)
    }

    /// Maps a redb error to `StoreError::Db` naming the database file.
    pub fn dbe<E: Into<redb::Error>>(&self) -> impl FnOnce(E) -> StoreError + use<E> {
        db_err(&self.db_path)
    }

    pub fn bad_row(&self, what: &'static str) -> StoreError {
        StoreError::BadRow {
            path: self.db_path.clone(),
            what,
        }
    }

    pub fn volume(&self, id: u16) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.id == id)
    }

    /// Bytes reserved and not yet written, over all live reservations.
    pub fn reserved(&self) -> u64 {
        self.reservations
            .values()
            .map(|r| r.rec.outstanding())
            .sum()
    }

    /// Capacity now: statvfs of every volume combined with the counters.
    pub fn capacity(&self) -> StoreResult<Capacity> {
        let mut inputs = Vec::new();
        for v in &self.volumes {
            inputs.push(VolumeInput {
                cap: v.spec.cap,
                used: self.used_by_volume.get(&v.id).copied().unwrap_or(0),
                fs: v.fs_stat()?,
            });
        }
        let sizes = capacity::donated_and_free(&inputs, self.reserve_pct);
        let mut seen_fs = HashSet::new();
        let (mut owner_bytes, mut fs_bytes) = (0u128, 0u128);
        let mut volumes = Vec::new();
        for ((v, input), (donated, free)) in self.volumes.iter().zip(&inputs).zip(sizes) {
            let ifs_on_fs: u64 = inputs
                .iter()
                .filter(|i| i.fs.id == input.fs.id)
                .map(|i| i.used)
                .sum();
            let need = capacity::owner_need_pct(input.fs, ifs_on_fs);
            if seen_fs.insert(input.fs.id) {
                owner_bytes += input.fs.size as u128 * need as u128;
                fs_bytes += input.fs.size as u128;
            }
            volumes.push(VolumeCapacity {
                path: v.spec.path.clone(),
                cap: capacity::cap_bytes(input.cap, input.fs.size),
                used: input.used,
                donated,
                free,
                fs_size: input.fs.size,
                fs_avail: input.fs.avail,
                owner_need_pct: need,
            });
        }
        let donated: u64 = volumes.iter().map(|v| v.donated).sum();
        let reserved = self.reserved();
        let claimed = self.used + reserved;
        Ok(Capacity {
            donated,
            used: self.used,
            reserved,
            free: donated.saturating_sub(claimed),
            excess: claimed.saturating_sub(donated),
            owner_need_pct: owner_bytes.checked_div(fs_bytes).unwrap_or(0) as u8,
            volumes,
        })
    }

    pub fn chunk_row(&self, chunk: &ChunkId) -> StoreResult<Option<ChunkRecord>> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let table = txn.open_table(CHUNKS).map_err(self.dbe())?;
        let Some(row) = table.get(&chunk.0).map_err(self.dbe())? else {
            return Ok(None);
        };
        tables::decode_chunk_row(row.value())
            .map(Some)
            .ok_or_else(|| self.bad_row("chunk"))
    }

    pub fn chunk_rows(&self) -> StoreResult<Vec<(ChunkId, ChunkRecord)>> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let table = txn.open_table(CHUNKS).map_err(self.dbe())?;
        let mut out = Vec::new();
        for row in table.iter().map_err(self.dbe())? {
            let (id, rec) = row.map_err(self.dbe())?;
            let rec = tables::decode_chunk_row(rec.value()).ok_or_else(|| self.bad_row("chunk"))?;
            out.push((ChunkId(*id.value()), rec));
        }
        Ok(out)
    }

    pub fn chunk_info(&self, chunk: &ChunkId) -> StoreResult<Option<ChunkInfo>> {
        Ok(self.chunk_row(chunk)?.map(|r| ChunkInfo {
            id: *chunk,
            len: r.len,
            owner: r.owner,
            stored_ms: r.stored_ms,
        }))
    }

    pub fn list_chunks(&self) -> StoreResult<Vec<ChunkInfo>> {
        Ok(self
            .chunk_rows()?
            .into_iter()
            .map(|(id, r)| ChunkInfo {
                id,
                len: r.len,
                owner: r.owner,
                stored_ms: r.stored_ms,
            })
            .collect())
    }

    pub fn locate(&self, chunk: &ChunkId) -> StoreResult<ChunkLocation> {
        let rec = self
            .chunk_row(chunk)?
            .ok_or(StoreError::Missing { chunk: *chunk })?;
        let pieces = rec
            .pieces
            .iter()
            .map(|p| (self.volume(p.volume).map(|v| v.piece_path(&p.name)), p.len))
            .collect();
        Ok(ChunkLocation {
            len: rec.len,
            pieces,
        })
    }

    /// Changes a volume's cap while running (the owner changed the donation).
    /// Lowering it below what the volume holds shows up as `Capacity::excess`.
    pub fn set_volume_cap(
        &mut self,
        path: &std::path::Path,
        cap: crate::Cap,
    ) -> StoreResult<Capacity> {
        let vol = self
            .volumes
            .iter_mut()
            .find(|v| v.spec.path == path)
            .ok_or_else(|| StoreError::VolumeMissing {
                path: path.to_path_buf(),
            })?;
        vol.spec.cap = cap;
        self.capacity()
    }

    /// Removes a chunk's row, then its files; returns the bytes freed.
    pub fn delete(&mut self, chunk: &ChunkId) -> StoreResult<u64> {
        let rec = self
            .chunk_row(chunk)?
            .ok_or(StoreError::Missing { chunk: *chunk })?;
        self.write(|txn| {
            txn.open_table(CHUNKS)
                .map_err(self.dbe())?
                .remove(&chunk.0)
                .map_err(self.dbe())?;
            txn.open_table(RECEIPTS)
                .map_err(self.dbe())?
                .remove(&chunk.0)
                .map_err(self.dbe())?;
            Ok(())
        })?;
        // Files go after the commit: a crash in between leaves orphans that
        // the next open deletes, never a row pointing at nothing.
        for p in &rec.pieces {
            let on_volume = self.used_by_volume.entry(p.volume).or_default();
            *on_volume = on_volume.saturating_sub(p.len);
            self.used = self.used.saturating_sub(p.len);
            if let Some(v) = self.volume(p.volume) {
                volume::remove_file(&v.piece_path(&p.name))?;
            }
        }
        Ok(rec.len)
    }
}
