//! The store as an actor: one thread owns the redb database and the
//! counters; callers hold a cloneable [`StoreHandle`] whose async methods send
//! a command over a bounded channel and await a oneshot reply. Bulk file I/O
//! (piece writes, reads, scrub) runs on tokio's blocking pool, so several
//! chunks are written in parallel while the actor only does bookkeeping.

use crate::engine::Engine;
use crate::put::{self, FaultPoint, PutStart, StoredChunk};
use crate::scrub::{self, ChunkHealth, ScrubReport};
use crate::{
    Cap, Capacity, ChunkInfo, MetaTable, Reservation, ReservationEnd, ReservationId, StoreConfig,
    StoreError, StoreResult,
};
use ifs_core::{ChunkId, UserId};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

enum Command {
    Run(Job),
    /// Stop at once, as a crash or a shutdown would.
    Stop,
}

/// A cheap, cloneable handle to a node's store.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Run(_) => "Run",
            Command::Stop => "Stop",
        })
    }
}

impl StoreHandle {
    /// Checks the volumes, opens (or creates) the local table, removes what
    /// an interrupted write left behind, and starts the actor thread.
    pub async fn open(cfg: StoreConfig) -> StoreResult<StoreHandle> {
        let (tx, mut rx) = mpsc::channel::<Command>(cfg.queue_depth.max(1));
        let (stopped_tx, stopped) = watch::channel(false);
        let (opened_tx, opened) = oneshot::channel();
        let data_dir = cfg.data_dir.clone();
        std::thread::Builder::new()
            .name("ifs-store".into())
            .spawn(move || {
                let mut engine = match Engine::open(&cfg) {
                    Ok(engine) => {
                        let _ = opened_tx.send(Ok(()));
                        engine
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        let _ = stopped_tx.send(true);
                        return;
                    }
                };
                while let Some(cmd) = rx.blocking_recv() {
                    match cmd {
                        Command::Run(job) => job(&mut engine),
                        Command::Stop => break,
                    }
                }
                // Close the database before telling anyone, so a reopen succeeds.
                drop(engine);
                let _ = stopped_tx.send(true);
            })
            .map_err(crate::error::io_err(data_dir))?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(StoreHandle { tx, stopped })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |e| {
            let _ = reply.send(f(e));
        });
        self.tx
            .send(Command::Run(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Holds `bytes` for `ttl` from `now_ms`; `Full` when not that much is free.
    pub async fn reserve(
        &self,
        bytes: u64,
        ttl: Duration,
        now_ms: u64,
    ) -> StoreResult<Reservation> {
        self.call(move |e| e.reserve(bytes, ttl, now_ms)).await
    }

    /// Holds `bytes` counting the space `chunk` takes and deletes `chunk`
    /// in the same step; `Full` (and `chunk` left in place) when even that
    /// is not enough. For swapping a copy for a fresh one.
    pub async fn reserve_replacing(
        &self,
        chunk: ChunkId,
        bytes: u64,
        ttl: Duration,
        now_ms: u64,
    ) -> StoreResult<Reservation> {
        self.call(move |e| e.reserve_replacing(&chunk, bytes, ttl, now_ms))
            .await
    }

    /// Stores a chunk under a reservation, charging it `data.len()` bytes.
    ///
    /// Checks `data` against `chunk` (`WrongId`), writes the pieces durably,
    /// then commits. A chunk already stored is not written or charged again.
    pub async fn put_chunk(
        &self,
        reservation: ReservationId,
        chunk: ChunkId,
        owner: UserId,
        data: Vec<u8>,
        now_ms: u64,
    ) -> StoreResult<StoredChunk> {
        let len = data.len() as u64;
        let plan = match self
            .call(move |e| e.begin_put(reservation, chunk, owner, len, now_ms))
            .await?
        {
            PutStart::AlreadyStored(done) => return Ok(done),
            PutStart::Planned(plan) => plan,
        };
        let tx = self.tx.clone();
        // The rest runs to completion on a blocking thread even if the caller
        // stops waiting, so the reservation's held bytes are always settled.
        let finish = tokio::task::spawn_blocking(move || {
            let written =
                put::write_pieces(&plan, &data, plan.fault == Some(FaultPoint::AfterTempWrite));
            if written.is_ok() && plan.fault.is_some() {
                let _ = tx.blocking_send(Command::Stop);
                return Err(StoreError::Closed);
            }
            match written {
                Ok(()) => call_blocking(&tx, move |e| e.finish_put(plan, now_ms)),
                Err(err) => {
                    call_blocking(&tx, move |e| e.abort_put(plan))?;
                    Err(err)
                }
            }
        });
        finish.await.map_err(|_| StoreError::Closed)?
    }

    /// The client is done: keeps what was written, returns the rest at once.
    pub async fn commit_reservation(&self, id: ReservationId) -> StoreResult<ReservationEnd> {
        self.call(move |e| e.end_reservation(id)).await
    }

    /// The client gives up: returns the unwritten rest at once. Chunks already
    /// committed under it stay stored (they may hold data the network needs).
    pub async fn release(&self, id: ReservationId) -> StoreResult<ReservationEnd> {
        self.call(move |e| e.end_reservation(id)).await
    }

    /// Ends reservations expired at `now_ms`; returns the bytes handed back.
    pub async fn sweep_expired(&self, now_ms: u64) -> StoreResult<u64> {
        self.call(move |e| e.sweep_expired(now_ms)).await
    }

    /// Reads a chunk, reassembled from its pieces and verified against its id.
    pub async fn get_chunk(&self, chunk: ChunkId) -> StoreResult<Vec<u8>> {
        let loc = self.call(move |e| e.locate(&chunk)).await?;
        blocking(move || scrub::read_chunk(chunk, &loc)).await
    }

    /// Whether a chunk is stored (its row exists; see `verify` for its bytes).
    pub async fn contains(&self, chunk: ChunkId) -> StoreResult<bool> {
        self.call(move |e| Ok(e.chunk_row(&chunk)?.is_some())).await
    }

    /// Re-hashes one chunk. `Missing` error when it is not stored at all.
    pub async fn verify(&self, chunk: ChunkId) -> StoreResult<ChunkHealth> {
        let loc = self.call(move |e| e.locate(&chunk)).await?;
        blocking(move || Ok(scrub::verify_chunk(chunk, &loc))).await
    }

    /// Re-hashes every chunk as fast as the disk allows.
    pub async fn scrub(&self) -> StoreResult<ScrubReport> {
        self.scrub_paced(None).await
    }

    /// Re-hashes every chunk, reading at most `bytes_per_sec` on average when
    /// given, so a scheduled scrub leaves the disk to the owner and to puts.
    pub async fn scrub_paced(&self, bytes_per_sec: Option<u64>) -> StoreResult<ScrubReport> {
        let start = tokio::time::Instant::now();
        let mut report = ScrubReport::default();
        for info in self.list_chunks().await? {
            let health = match self.verify(info.id).await {
                Ok(h) => h,
                // Deleted since the listing: nothing to check.
                Err(StoreError::Missing { .. }) => continue,
                Err(e) => return Err(e),
            };
            report.record(info.id, info.len, health);
            if let Some(rate) = bytes_per_sec.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(report.bytes as f64 / rate as f64);
                tokio::time::sleep_until(start + due).await;
            }
        }
        Ok(report)
    }

    /// Deletes a chunk and frees its space; returns its size. Piece files
    /// that cannot be removed do not fail the delete: they show in
    /// [`Capacity::unremoved`] until a later delete, sweep or open removes them.
    pub async fn delete(&self, chunk: ChunkId) -> StoreResult<u64> {
        self.call(move |e| e.delete(&chunk)).await
    }

    /// One stored chunk's size, owner and commit time; `None` if not held.
    pub async fn chunk_info(&self, chunk: ChunkId) -> StoreResult<Option<ChunkInfo>> {
        self.call(move |e| e.chunk_info(&chunk)).await
    }

    /// Every stored chunk, in id order.
    pub async fn list_chunks(&self) -> StoreResult<Vec<ChunkInfo>> {
        self.call(|e| e.list_chunks()).await
    }

    /// How many chunks are stored (cheaper than [`Self::list_chunks`]).
    pub async fn chunk_count(&self) -> StoreResult<u64> {
        self.call(|e| e.chunk_count()).await
    }

    /// Donated, used, reserved and free bytes, owner need, per-volume detail.
    pub async fn stats(&self) -> StoreResult<Capacity> {
        self.call(|e| e.capacity()).await
    }

    /// Changes a configured volume's cap at run time (a `donate` command or a
    /// config reload); returns the new capacity, whose `excess` is what to offload.
    pub async fn set_volume_cap(&self, path: PathBuf, cap: Cap) -> StoreResult<Capacity> {
        self.call(move |e| e.set_volume_cap(&path, cap)).await
    }

    /// Stores this node's receipt (opaque bytes) for a stored chunk.
    pub async fn set_receipt(&self, chunk: ChunkId, receipt: Vec<u8>) -> StoreResult<()> {
        self.call(move |e| e.set_receipt(&chunk, &receipt)).await
    }

    /// The receipt stored for a chunk, if any.
    pub async fn receipt(&self, chunk: ChunkId) -> StoreResult<Option<Vec<u8>>> {
        self.call(move |e| e.receipt(&chunk)).await
    }

    /// Sets `key` to `value` in one of the node's own tables.
    pub async fn meta_put(
        &self,
        table: MetaTable,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> StoreResult<()> {
        self.call(move |e| e.meta_put(table, &key, &value)).await
    }

    /// Reads `key` from one of the node's own tables.
    pub async fn meta_get(&self, table: MetaTable, key: Vec<u8>) -> StoreResult<Option<Vec<u8>>> {
        self.call(move |e| e.meta_get(table, &key)).await
    }

    /// Removes `key`; true when it was there.
    pub async fn meta_delete(&self, table: MetaTable, key: Vec<u8>) -> StoreResult<bool> {
        self.call(move |e| e.meta_delete(table, &key)).await
    }

    /// Every (key, value) whose key starts with `prefix`, in key order.
    pub async fn meta_list(
        &self,
        table: MetaTable,
        prefix: Vec<u8>,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.call(move |e| e.meta_list(table, &prefix)).await
    }

    /// Stops the actor after the commands already queued and waits until the
    /// database is closed, so the same directories can be opened again.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Stop).await;
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }
}

fn call_blocking<T: Send + 'static>(
    tx: &mpsc::Sender<Command>,
    f: impl FnOnce(&mut Engine) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    let (reply, rx) = oneshot::channel();
    let job: Job = Box::new(move |e| {
        let _ = reply.send(f(e));
    });
    tx.blocking_send(Command::Run(job))
        .map_err(|_| StoreError::Closed)?;
    rx.blocking_recv().map_err(|_| StoreError::Closed)?
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Closed)?
}
