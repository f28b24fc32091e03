//! The store's synchronous core, owned by the actor thread: opening and
//! recovering the disk state, the in-memory counters, and the small
//! operations (delete, receipts, listings, meta tables). Reservations and
//! writes live in `reservations.rs` and `put.rs` as further `impl` blocks.

use crate::capacity::{self, Capacity, VolumeCapacity, VolumeInput};
use crate::error::{StoreError, StoreResult, db_err, io_err};
use crate::identity::{Marker, StoreId, VolumeId};
use crate::tables::{
    self, CHUNKS, ChunkInfo, ChunkRecord, MetaTable, RECEIPTS, RESERVATIONS, ReservationId,
    ReservationRecord, STORE_ID_KEY, STORE_INFO, VOLUME_IDS, VOLUMES,
};
use crate::volume::{self, Volume};
use crate::{FaultPoint, StoreConfig};
use ifs_core::ChunkId;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A volume as the local table remembers it.
struct KnownVolume {
    id: u16,
    path: PathBuf,
    uuid: Option<VolumeId>,
}

/// Whether a path recorded in the table names the directory `dir`
/// (canonical): the same components, or the same directory once resolved.
fn same_dir(recorded: &Path, dir: &Path) -> bool {
    recorded == dir || std::fs::canonicalize(recorded).is_ok_and(|r| r == dir)
}

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
    /// Piece and temp files no row names any more but that could not be
    /// removed: path → (volume id, bytes). They count against `free` until a
    /// retry (see [`Engine::retry_removals`]) or the next open removes them.
    pub unremoved: HashMap<PathBuf, (u16, u64)>,
}

impl Engine {
    /// Checks every volume, then opens the table, finds each volume by its
    /// marker and recovers from any crash.
    pub fn open(cfg: &StoreConfig) -> StoreResult<Engine> {
        cfg.validate()?;
        // Check all volumes before creating anything, so a bad one leaves no trace.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for spec in &cfg.volumes {
            let dir = Volume::check(spec)?;
            if let Some(i) = dirs.iter().position(|d| *d == dir) {
                return Err(StoreError::VolumeDuplicate {
                    path: spec.path.clone(),
                    other: cfg.volumes[i].path.clone(),
                });
            }
            dirs.push(dir);
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
            unremoved: HashMap::new(),
        };
        let store = engine.init_tables()?;
        let rows = engine.chunk_rows()?;
        let mut pieces_on: HashMap<u16, u64> = HashMap::new();
        for (_, rec) in &rows {
            for p in &rec.pieces {
                *pieces_on.entry(p.volume).or_default() += 1;
            }
        }
        let placed = engine.identify_volumes(cfg, &dirs, store, &pieces_on)?;
        for ((spec, dir), (id, uuid)) in cfg.volumes.iter().zip(dirs).zip(placed) {
            engine
                .volumes
                .push(Volume::prepare(id, uuid, spec.clone(), dir)?);
        }
        engine.recover(rows)?;
        Ok(engine)
    }

    /// Creates every table up front (so readers never meet a missing one)
    /// and returns the store's id, making one for a new table.
    fn init_tables(&self) -> StoreResult<StoreId> {
        self.write(|txn| {
            txn.open_table(CHUNKS).map_err(self.dbe())?;
            txn.open_table(RECEIPTS).map_err(self.dbe())?;
            txn.open_table(RESERVATIONS).map_err(self.dbe())?;
            txn.open_table(VOLUMES).map_err(self.dbe())?;
            txn.open_table(VOLUME_IDS).map_err(self.dbe())?;
            for meta in [
                MetaTable::Records,
                MetaTable::NodeTable,
                MetaTable::Reputation,
                MetaTable::Holdings,
            ] {
                txn.open_table(meta.definition()).map_err(self.dbe())?;
            }
            let mut info = txn.open_table(STORE_INFO).map_err(self.dbe())?;
            let existing = info
                .get(STORE_ID_KEY)
                .map_err(self.dbe())?
                .map(|v| v.value().to_vec());
            match existing {
                Some(bytes) => bytes
                    .try_into()
                    .map(StoreId)
                    .map_err(|_| self.bad_row("store id")),
                None => {
                    let id = StoreId::random();
                    info.insert(STORE_ID_KEY, id.0.as_slice())
                        .map_err(self.dbe())?;
                    Ok(id)
                }
            }
        })
    }

    /// The volumes the table knows: stable id, last path, marker id (none
    /// for a volume from before markers).
    fn known_volumes(&self) -> StoreResult<Vec<KnownVolume>> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let paths = txn.open_table(VOLUMES).map_err(self.dbe())?;
        let uuids = txn.open_table(VOLUME_IDS).map_err(self.dbe())?;
        let mut out = Vec::new();
        for row in paths.iter().map_err(self.dbe())? {
            let (id, path) = row.map_err(self.dbe())?;
            let uuid = uuids
                .get(id.value())
                .map_err(self.dbe())?
                .map(|u| VolumeId(*u.value()));
            out.push(KnownVolume {
                id: id.value(),
                path: PathBuf::from(path.value()),
                uuid,
            });
        }
        Ok(out)
    }

    /// Finds each configured volume's stable id through its marker, writing
    /// markers for new volumes and for volumes from before markers, and
    /// refusing a volume that is not the one the table expects.
    ///
    /// Volumes with a marker are matched first, so a marked volume that moved
    /// claims its id before an empty directory at its old path is looked at.
    fn identify_volumes(
        &self,
        cfg: &StoreConfig,
        dirs: &[PathBuf],
        store: StoreId,
        pieces_on: &HashMap<u16, u64>,
    ) -> StoreResult<Vec<(u16, VolumeId)>> {
        let known = self.known_volumes()?;
        let mut next = known
            .iter()
            .map(|k| k.id)
            .max()
            .map_or(0, |m| u32::from(m) + 1);
        let mut fresh_id = || {
            let id = u16::try_from(next).map_err(|_| self.bad_row("volume"));
            next += 1;
            id
        };
        let mut placed: Vec<Option<(u16, VolumeId)>> = vec![None; dirs.len()];
        let mut to_mark: Vec<(usize, Marker)> = Vec::new();
        let mut markers = Vec::new();
        for dir in dirs {
            Marker::clear_tmp(dir)?;
            markers.push(Marker::read(dir)?);
        }
        let claim =
            |placed: &[Option<(u16, VolumeId)>], i: usize, id: u16, uuid: VolumeId| match placed
                .iter()
                .position(|p| p.is_some_and(|(pid, pu)| pid == id || pu == uuid))
            {
                Some(j) => Err(StoreError::VolumeDuplicate {
                    path: cfg.volumes[i].path.clone(),
                    other: cfg.volumes[j].path.clone(),
                }),
                None => Ok(()),
            };
        for (i, marker) in markers.iter().enumerate() {
            let Some(m) = marker else { continue };
            if m.store != store {
                return Err(StoreError::VolumeForeign {
                    path: cfg.volumes[i].path.clone(),
                    owner: m.store,
                    store,
                });
            }
            let id = match known.iter().find(|k| k.uuid == Some(m.volume)) {
                Some(k) => {
                    if k.path != dirs[i] {
                        tracing::info!(
                            volume = %m.volume,
                            from = %k.path.display(),
                            to = %dirs[i].display(),
                            "volume found at a new path"
                        );
                    }
                    k.id
                }
                // Marked by this store, but the table commit that would
                // have recorded it did not happen.
                None => fresh_id()?,
            };
            claim(&placed, i, id, m.volume)?;
            placed[i] = Some((id, m.volume));
        }
        for (i, dir) in dirs.iter().enumerate() {
            if markers[i].is_some() {
                continue;
            }
            let path = &cfg.volumes[i].path;
            let unclaimed = |k: &&KnownVolume| {
                !placed.iter().any(|p| p.is_some_and(|(id, _)| id == k.id))
                    && !k
                        .uuid
                        .is_some_and(|u| placed.iter().any(|p| p.is_some_and(|(_, pu)| pu == u)))
                    && same_dir(&k.path, dir)
            };
            let pieces = |k: &KnownVolume| pieces_on.get(&k.id).copied().unwrap_or(0);
            let legacy = known
                .iter()
                .filter(|k| k.uuid.is_none())
                .filter(unclaimed)
                .max_by_key(|k| pieces(k));
            let expected = known.iter().filter(|k| k.uuid.is_some()).find(unclaimed);
            let (id, uuid) = if let Some(k) = legacy {
                let uuid = VolumeId::random();
                tracing::info!(path = %path.display(), volume = %uuid, pieces = pieces(k),
                    "volume from before markers: writing its marker");
                (k.id, uuid)
            } else if let Some(k) = expected {
                let uuid = k.uuid.unwrap_or_else(VolumeId::random);
                let n = pieces(k);
                if n > 0 {
                    return Err(StoreError::VolumeExpected {
                        path: path.clone(),
                        volume: uuid,
                        pieces: n,
                    });
                }
                // The table knows it holds nothing there: mark it again.
                (k.id, uuid)
            } else {
                let n = volume::count_piece_files(dir)?;
                if n > 0 {
                    return Err(StoreError::VolumeUnmarked {
                        path: path.clone(),
                        pieces: n,
                    });
                }
                (fresh_id()?, VolumeId::random())
            };
            claim(&placed, i, id, uuid)?;
            placed[i] = Some((id, uuid));
            to_mark.push((
                i,
                Marker {
                    volume: uuid,
                    store,
                },
            ));
        }
        // Markers first, then the table: a crash in between leaves a marker
        // of this store that the next open takes in.
        for (i, marker) in &to_mark {
            marker.write(&dirs[*i])?;
        }
        let placed: Vec<(u16, VolumeId)> = placed.into_iter().flatten().collect();
        self.write(|txn| {
            let mut paths = txn.open_table(VOLUMES).map_err(self.dbe())?;
            let mut uuids = txn.open_table(VOLUME_IDS).map_err(self.dbe())?;
            for ((id, uuid), dir) in placed.iter().zip(dirs) {
                paths
                    .insert(*id, dir.to_string_lossy().as_ref())
                    .map_err(self.dbe())?;
                uuids.insert(*id, &uuid.0).map_err(self.dbe())?;
            }
            Ok(())
        })?;
        Ok(placed)
    }

    /// Rebuilds the counters from the rows, deletes the store's own temp
    /// files, moves piece files no committed row names into the volume's
    /// quarantine (never deleting them), and drops reservations that were
    /// closed while writes were in flight.
    fn recover(&mut self, rows: Vec<(ChunkId, ChunkRecord)>) -> StoreResult<()> {
        let mut referenced: HashSet<(u16, String)> = HashSet::new();
        for (_, rec) in rows {
            rec.charge(&mut self.used_by_volume, &mut self.used);
            for p in rec.pieces {
                referenced.insert((p.volume, p.name));
            }
        }
        let mut temps = 0;
        for vol in &mut self.volumes {
            temps += vol.clear_tmp()?;
            let (mut files, mut bytes) = (0u64, 0u64);
            for piece in vol.list_pieces()? {
                let named = referenced.contains(&(vol.id, piece.name.clone()))
                    && vol.piece_path(&piece.name) == piece.path;
                if !named {
                    vol.quarantine(&piece)?;
                    files += 1;
                    bytes += piece.len;
                }
            }
            if files > 0 {
                tracing::warn!(
                    path = %vol.spec.path.display(),
                    files,
                    bytes,
                    quarantine = %vol.dir.join("ifs/quarantine").display(),
                    "moved piece files no committed row names to the quarantine"
                );
            }
        }
        if temps > 0 {
            tracing::warn!(temps, "removed temp files left by an interrupted write");
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
        let unremoved = self.unremoved_by_volume();
        for v in &self.volumes {
            // Files that could not be removed still take the volume's space.
            let stuck = unremoved.get(&v.id).copied().unwrap_or(0);
            inputs.push(VolumeInput {
                cap: v.spec.cap,
                used: self.used_by_volume.get(&v.id).copied().unwrap_or(0) + stuck,
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
            let stuck = unremoved.get(&v.id).copied().unwrap_or(0);
            volumes.push(VolumeCapacity {
                path: v.spec.path.clone(),
                volume_id: v.uuid,
                cap: capacity::cap_bytes(input.cap, input.fs.size),
                used: input.used - stuck,
                unremoved: stuck,
                donated,
                free,
                fs_size: input.fs.size,
                fs_avail: input.fs.avail,
                owner_need_pct: need,
                quarantined_files: v.quarantined_files,
                quarantined_bytes: v.quarantined_bytes,
            });
        }
        let donated: u64 = volumes.iter().map(|v| v.donated).sum();
        let reserved = self.reserved();
        let unremoved: u64 = volumes.iter().map(|v| v.unremoved).sum();
        let claimed = self.used + unremoved + reserved;
        Ok(Capacity {
            donated,
            used: self.used,
            reserved,
            unremoved,
            unremoved_files: self.unremoved.len() as u64,
            free: donated.saturating_sub(claimed),
            excess: claimed.saturating_sub(donated),
            owner_need_pct: owner_bytes.checked_div(fs_bytes).unwrap_or(0) as u8,
            quarantined_files: volumes.iter().map(|v| v.quarantined_files).sum(),
            quarantined_bytes: volumes.iter().map(|v| v.quarantined_bytes).sum(),
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

    /// How many chunks are stored, without decoding a row.
    pub fn chunk_count(&self) -> StoreResult<u64> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let table = txn.open_table(CHUNKS).map_err(self.dbe())?;
        table.len().map_err(self.dbe())
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
        let canonical = std::fs::canonicalize(path).ok();
        let vol = self
            .volumes
            .iter_mut()
            .find(|v| v.spec.path == path || canonical.as_ref() == Some(&v.dir))
            .ok_or_else(|| StoreError::VolumeMissing {
                path: path.to_path_buf(),
            })?;
        vol.spec.cap = cap;
        self.capacity()
    }

    /// Removes a chunk's row, then its files; returns the chunk's size.
    ///
    /// Once the row is gone the chunk is deleted and its bytes leave `used`,
    /// whatever happens to the files: a file that cannot be removed is
    /// counted in [`Capacity::unremoved`] (and so still held back from
    /// `free`) until a later retry or the next open removes it.
    pub fn delete(&mut self, chunk: &ChunkId) -> StoreResult<u64> {
        self.retry_removals();
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
        // Files go after the commit: a crash in between leaves files no row
        // names, which the next open moves to the quarantine, never a row
        // pointing at nothing.
        for p in &rec.pieces {
            let on_volume = self.used_by_volume.entry(p.volume).or_default();
            *on_volume = on_volume.saturating_sub(p.len);
            self.used = self.used.saturating_sub(p.len);
            if let Some(path) = self.volume(p.volume).map(|v| v.piece_path(&p.name)) {
                self.remove_or_count(path, p.volume, p.len);
            }
        }
        Ok(rec.len)
    }

    /// Removes a file no row names; when that fails, counts it as unremoved.
    pub fn remove_or_count(&mut self, path: PathBuf, volume: u16, len: u64) {
        if let Err(e) = volume::remove_file(&path) {
            tracing::warn!(error = %e, "cannot remove a piece file no row names; will retry");
            self.unremoved.insert(path, (volume, len));
        }
    }

    /// Tries again to remove the files that could not be removed before.
    pub fn retry_removals(&mut self) {
        if self.unremoved.is_empty() {
            return;
        }
        self.unremoved
            .retain(|path, _| volume::remove_file(path).is_err());
    }

    fn unremoved_by_volume(&self) -> HashMap<u16, u64> {
        let mut out: HashMap<u16, u64> = HashMap::new();
        for (volume, len) in self.unremoved.values() {
            *out.entry(*volume).or_default() += len;
        }
        out
    }
}
