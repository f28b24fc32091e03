//! The periodic durability pass: learn which file record each held chunk
//! belongs to, free chunks of deleted files, audit co-holders, start repairs
//! of under-replicated chunks and offload what exceeds the donation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ifs_core::file_record::FileRecord;
use ifs_core::node_table::Liveness;
use ifs_core::placement::Policy;
use ifs_core::proto::RecordKey;
use ifs_core::reputation::ReputationRecord;
use ifs_core::{ChunkId, NodeId};
use ifs_store::MetaTable;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::Shared;
use super::shared::lock;
use crate::durability::DurabilityConfig;

/// What the durability tasks of a node share.
pub(crate) struct DurabilityState {
    /// Per-node observations, loaded from the local table at start.
    pub reputation: Mutex<HashMap<NodeId, ReputationRecord>>,
    /// Set by `ifsnode leave`: offload everything.
    pub leaving: AtomicBool,
    /// Bounds copies in flight (repair, offload, refetch).
    pub copy_slots: Arc<Semaphore>,
    /// Chunks being copied or replaced right now, so a slow copy is not
    /// started twice by the next pass.
    pub busy: Mutex<HashSet<ChunkId>>,
    /// Earliest start of the next paced send (aggregate bandwidth cap).
    pub next_send: Mutex<tokio::time::Instant>,
    pass_running: AtomicBool,
    pub(super) scrub_running: AtomicBool,
    /// Held chunks no committed record names, and when each was first seen so.
    pub unreferenced: Mutex<HashMap<ChunkId, u64>>,
    /// Bytes of those chunks (what `status` shows as awaiting collection).
    pub awaiting_bytes: std::sync::atomic::AtomicU64,
    /// Nodes that failed a pushed copy, left out of targets for a while.
    pub failed_targets: Mutex<ifs_core::repair::FailedTargets>,
    /// Recent verdicts on who may audit which chunk.
    pub co_holders: Mutex<ifs_core::audit::CoHolderCache>,
    /// Chunks held beyond their target, and since when (see `trim`).
    pub surplus_since: Mutex<HashMap<ChunkId, u64>>,
}

impl DurabilityState {
    pub fn new(cfg: &DurabilityConfig) -> Self {
        DurabilityState {
            reputation: Mutex::new(HashMap::new()),
            leaving: AtomicBool::new(false),
            copy_slots: Arc::new(Semaphore::new(cfg.repair_concurrency.max(1))),
            busy: Mutex::new(HashSet::new()),
            next_send: Mutex::new(tokio::time::Instant::now()),
            pass_running: AtomicBool::new(false),
            scrub_running: AtomicBool::new(false),
            unreferenced: Mutex::new(HashMap::new()),
            awaiting_bytes: std::sync::atomic::AtomicU64::new(0),
            failed_targets: Mutex::new(ifs_core::repair::FailedTargets::new()),
            co_holders: Mutex::new(ifs_core::audit::CoHolderCache::new()),
            surplus_since: Mutex::new(HashMap::new()),
        }
    }
}

/// Marks a chunk busy until dropped.
pub(crate) struct BusyGuard<'a>(&'a Shared, ChunkId);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.durability.busy).remove(&self.1);
    }
}

impl Shared {
    /// Claim `chunk` for one copy job; `None` if another job holds it.
    pub(crate) fn claim(&self, chunk: ChunkId) -> Option<BusyGuard<'_>> {
        // Build the guard only when claimed: its drop takes the same lock.
        let claimed = lock(&self.durability.busy).insert(chunk);
        claimed.then(|| BusyGuard(self, chunk))
    }

    /// Whether `node` counts as a live holder: not dead in the node table
    /// (a suspect node may be back soon; copying at once would churn) and not
    /// failing audits. This node counts for itself unless it is leaving.
    pub(crate) fn holder_counts(&self, node: &NodeId, now_ms: u64) -> bool {
        if *node == self.node_id {
            return !self.durability.leaving.load(Ordering::Relaxed);
        }
        self.node_state(node, now_ms) != Liveness::Dead
            && self.reputation_of(node) >= Policy::default().min_reputation
    }

    /// Whether the node table has `node` alive.
    pub(crate) fn node_alive(&self, node: &NodeId, now_ms: u64) -> bool {
        self.node_state(node, now_ms) == Liveness::Alive
    }

    fn node_state(&self, node: &NodeId, now_ms: u64) -> Liveness {
        self.liveness_in(&lock(&self.table), node, now_ms)
    }

    /// Remember that `chunk` is held bound to version `version` of the file
    /// record `record` (the owner signed both in the header chain, or the
    /// record's live manifest listed the chunk when a replica came in). A
    /// binding is written once: later stores of the same chunk keep it.
    pub(crate) async fn index_chunk(&self, chunk: ChunkId, record: [u8; 32], version: u64) {
        if self.binding_of(chunk).await.is_some() {
            return;
        }
        let key = chunk.as_bytes().to_vec();
        let mut value = record.to_vec();
        value.extend_from_slice(&version.to_be_bytes());
        if let Err(e) = self.store.meta_put(MetaTable::Holdings, key, value).await {
            warn!(%chunk, "cannot index a held chunk: {e}");
        }
    }

    /// The (record key, version) a held chunk is bound to, if known.
    pub(crate) async fn binding_of(&self, chunk: ChunkId) -> Option<([u8; 32], u64)> {
        let v = self
            .store
            .meta_get(MetaTable::Holdings, chunk.as_bytes().to_vec())
            .await
            .ok()??;
        let record: [u8; 32] = v.get(..32)?.try_into().ok()?;
        // An index entry without a version predates bindings: it is never
        // freed by a version rule (u64::MAX), only kept.
        let version = v
            .get(32..40)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(u64::MAX, u64::from_be_bytes);
        Some((record, version))
    }

    /// The file record a held chunk belongs to, if known.
    pub(crate) async fn record_of(&self, chunk: ChunkId) -> Option<[u8; 32]> {
        self.binding_of(chunk).await.map(|(r, _)| r)
    }

    /// The file record under `key`: the local copy, else from the DHT.
    pub(crate) async fn file_record(&self, key: [u8; 32], from_dht: bool) -> Option<FileRecord> {
        let k = RecordKey::File(key).to_bytes();
        let bytes = if from_dht {
            self.get_record(k).await.ok()?
        } else {
            match self.store.meta_get(MetaTable::Records, k.clone()).await {
                Ok(Some(b)) => Some(b),
                _ => self.get_record(k).await.ok()?,
            }
        }?;
        FileRecord::decode(&bytes).ok()
    }

    /// Merge `record` into the DHT (validate, merge, persist, publish).
    pub(crate) async fn publish_file_record(&self, record: &FileRecord) -> bool {
        let key = RecordKey::File(record.record_key()).to_bytes();
        match self.put_record(key, record.encode()).await {
            Ok(()) => true,
            Err(e) => {
                warn!(name = record.name(), "cannot publish a file record: {e}");
                false
            }
        }
    }

    /// Index the chunks of every file record held locally that name this
    /// node as a holder (records reach every node close to their key).
    async fn index_local_records(&self, held: &HashSet<ChunkId>) {
        let Ok(records) = self.store.meta_list(MetaTable::Records, Vec::new()).await else {
            return;
        };
        for (key, value) in records {
            let Some(RecordKey::File(k)) = RecordKey::from_bytes(&key) else {
                continue;
            };
            let Ok(rec) = FileRecord::decode(&value) else {
                continue;
            };
            // Only chunks the live manifest lists are bound from a record:
            // a receipt alone is the holder's word, not the owner's.
            let Some(m) = rec.live_manifest() else {
                continue;
            };
            for r in rec.receipts() {
                if r.node == self.node_id
                    && held.contains(&r.chunk)
                    && m.chunk_len(&r.chunk).is_some()
                    && self.record_of(r.chunk).await.is_none()
                {
                    self.index_chunk(r.chunk, k, m.version).await;
                }
            }
        }
    }

    /// One durability pass (see the module doc). Passes never overlap.
    pub async fn durability_pass(self: Arc<Self>, now_ms: u64) {
        if self.durability.pass_running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.observe_liveness(now_ms).await;
        let held_info = match self.store.list_chunks().await {
            Ok(c) => c,
            Err(e) => {
                warn!("cannot list chunks: {e}");
                self.durability.pass_running.store(false, Ordering::Release);
                return;
            }
        };
        let held: Vec<(ChunkId, u64)> = held_info.iter().map(|i| (i.id, i.len)).collect();
        let held_set: HashSet<ChunkId> = held.iter().map(|(c, _)| *c).collect();
        self.index_local_records(&held_set).await;
        let mut by_record: BTreeMap<[u8; 32], Vec<(ChunkId, u64)>> = BTreeMap::new();
        for (c, _) in &held {
            if let Some((k, v)) = self.binding_of(*c).await {
                by_record.entry(k).or_default().push((*c, v));
            }
        }
        let mut records = Vec::new();
        let info: HashMap<ChunkId, (u64, u64)> = held_info
            .iter()
            .map(|i| (i.id, (i.len, i.stored_ms)))
            .collect();
        let mut awaiting = 0u64;
        for (key, chunks) in by_record {
            let rec = self.file_record(key, false).await;
            awaiting += self
                .collect_unnamed(rec.as_ref(), &chunks, &info, now_ms)
                .await;
            let Some(rec) = rec else {
                debug!("record of {} held chunks not found yet", chunks.len());
                continue;
            };
            let rec = self.free_unreferenced(rec, &chunks).await;
            records.push((key, rec));
        }
        self.durability
            .awaiting_bytes
            .store(awaiting, Ordering::Relaxed);
        self.clone().start_repairs(&records, now_ms);
        self.clone().trim_surplus(&records, now_ms);
        self.clone().audit_some(&records, now_ms).await;
        self.clone().offload_if_needed(&held, &records).await;
        self.durability.pass_running.store(false, Ordering::Release);
    }

    /// Free chunks bound to `rec` that no committed version names and that
    /// stayed so for the whole grace period (`ifs_core::collect`); returns
    /// the bytes still awaiting collection.
    async fn collect_unnamed(
        &self,
        rec: Option<&FileRecord>,
        chunks: &[(ChunkId, u64)],
        info: &HashMap<ChunkId, (u64, u64)>,
        now_ms: u64,
    ) -> u64 {
        let grace = self.cfg.durability.collect_after.as_millis() as u64;
        let mut awaiting = 0;
        for (c, v) in chunks {
            let Some(&(len, stored_ms)) = info.get(c) else {
                continue;
            };
            let first_seen = lock(&self.durability.unreferenced)
                .get(c)
                .copied()
                .unwrap_or(now_ms);
            match ifs_core::collect::collect(rec, *v, (stored_ms, first_seen), now_ms, grace) {
                ifs_core::collect::Collect::Referenced => {
                    lock(&self.durability.unreferenced).remove(c);
                }
                ifs_core::collect::Collect::Awaiting => {
                    lock(&self.durability.unreferenced)
                        .entry(*c)
                        .or_insert(first_seen);
                    awaiting += len;
                }
                ifs_core::collect::Collect::Free => {
                    let Some(_busy) = self.claim(*c) else {
                        continue;
                    };
                    match self.store.delete(*c).await {
                        Ok(n) => {
                            let _ = self
                                .store
                                .meta_delete(MetaTable::Holdings, c.as_bytes().to_vec())
                                .await;
                            lock(&self.durability.unreferenced).remove(c);
                            info!(chunk = %c, bytes = n, "collected a chunk no committed file names");
                        }
                        Err(e) => warn!(chunk = %c, "cannot collect: {e}"),
                    }
                }
            }
        }
        awaiting
    }

    /// Free held chunks the record's live manifest no longer lists (the file
    /// was deleted or replaced), releasing them in the record.
    async fn free_unreferenced(
        &self,
        mut rec: FileRecord,
        chunks: &[(ChunkId, u64)],
    ) -> FileRecord {
        let mut freed = 0u64;
        // Only the binding decides: a chunk bound to this record at a
        // version the owner has since replaced or deleted.
        let freeable: Vec<ChunkId> = chunks
            .iter()
            .filter(|(c, v)| rec.may_free(c, *v))
            .map(|(c, _)| *c)
            .collect();
        for c in &freeable {
            let Some(_busy) = self.claim(*c) else {
                continue;
            };
            match self.release_and_delete(&mut rec, *c).await {
                Ok(n) => freed += n,
                Err(e) => warn!(chunk = %c, "cannot free: {e}"),
            }
        }
        if freed > 0 {
            self.publish_file_record(&rec).await;
            info!(
                bytes = freed,
                name = rec.name(),
                "freed chunks no longer referenced"
            );
        }
        rec
    }

    /// Add this node's signed release of `chunk` to `rec`, then delete the
    /// local copy and its index entry. Returns the bytes freed.
    pub(crate) async fn release_and_delete(
        &self,
        rec: &mut FileRecord,
        chunk: ChunkId,
    ) -> Result<u64, String> {
        if let Some(r) = rec.live_receipt(&chunk, &self.node_id).cloned() {
            let release = ifs_core::wire::ChunkRelease::new(
                &self.key,
                chunk,
                r.owner,
                r.stored_at_ms,
                crate::now_ms(),
            );
            rec.add_release(release).map_err(|e| e.to_string())?;
        }
        let n = self.store.delete(chunk).await.map_err(|e| e.to_string())?;
        let _ = self
            .store
            .meta_delete(MetaTable::Holdings, chunk.as_bytes().to_vec())
            .await;
        Ok(n)
    }

    /// Wait for a turn to send `bytes` under the repair bandwidth cap.
    pub(crate) async fn pace(&self, bytes: u64) {
        let Some(rate) = self.cfg.durability.repair_bytes_per_sec.filter(|r| *r > 0) else {
            return;
        };
        let start = {
            let mut next = lock(&self.durability.next_send);
            let now = tokio::time::Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}
