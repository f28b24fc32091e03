//! Trimming: a holder that comes back after its chunks were repaired
//! elsewhere leaves them with more live copies than their target. Once a
//! surplus has lasted `trim_after` (a node back from a short restart must
//! not cause churn), the highest-id live holder releases its copy: the
//! release goes into the file record and out to the DHT first, and only
//! then is the copy deleted, so no reader is ever sent to a copy that is
//! gone while the record still names it.

use std::collections::HashSet;
use std::sync::Arc;

use ifs_core::ChunkId;
use ifs_core::file_record::FileRecord;
use ifs_core::repair::trim_plan;
use ifs_store::MetaTable;
use tracing::{info, warn};

use super::Shared;
use super::shared::lock;
use crate::now_ms;

impl Shared {
    /// This node's chunks of `records` that are over their target, in this
    /// node's view at `now`.
    fn surplus_of(&self, rec: &FileRecord, now: u64) -> Vec<ChunkId> {
        trim_plan(
            rec,
            |n| self.holder_counts(n, now),
            |n| self.node_alive(n, now),
            self.replicas_of(rec),
            &self.node_id,
        )
    }

    /// Start trims of chunks whose surplus has lasted long enough.
    pub(crate) fn trim_surplus(self: Arc<Self>, records: &[([u8; 32], FileRecord)], now: u64) {
        let after = self.cfg.durability.trim_after.as_millis() as u64;
        let mut due = Vec::new();
        {
            let mut seen = HashSet::new();
            let mut since = lock(&self.durability.surplus_since);
            for (key, rec) in records {
                for chunk in self.surplus_of(rec, now) {
                    seen.insert(chunk);
                    let first = *since.entry(chunk).or_insert(now);
                    if now.saturating_sub(first) >= after {
                        due.push((*key, chunk));
                    }
                }
            }
            // A surplus that ended (or was never seen this pass) starts over.
            since.retain(|c, _| seen.contains(c));
        }
        for (key, chunk) in due {
            let s = self.clone();
            tokio::spawn(async move { s.trim_chunk(key, chunk).await });
        }
    }

    async fn trim_chunk(self: Arc<Self>, key: [u8; 32], chunk: ChunkId) {
        let Some(_busy) = self.claim(chunk) else {
            return;
        };
        // The DHT's merged record decides, not the local copy alone.
        let Some(mut rec) = self.file_record(key, true).await else {
            return;
        };
        let now = now_ms();
        if !self.surplus_of(&rec, now).contains(&chunk) {
            return;
        }
        let Some(receipt) = rec.live_receipt(&chunk, &self.node_id).cloned() else {
            return;
        };
        let release = ifs_core::wire::ChunkRelease::new(
            &self.key,
            chunk,
            receipt.owner,
            receipt.stored_at_ms,
            now,
        );
        if let Err(e) = rec.add_release(release) {
            warn!(%chunk, "cannot release a surplus copy: {e}");
            return;
        }
        if !self.publish_file_record(&rec).await {
            return;
        }
        lock(&self.durability.surplus_since).remove(&chunk);
        match self.store.delete(chunk).await {
            Ok(bytes) => info!(%chunk, bytes, "trimmed a surplus copy"),
            Err(e) => {
                // Released: the next pass frees it as a chunk no live
                // receipt of this node names.
                warn!(%chunk, "surplus copy released but not deleted yet: {e}");
                return;
            }
        }
        let _ = self
            .store
            .meta_delete(MetaTable::Holdings, chunk.as_bytes().to_vec())
            .await;
        let s = self.clone();
        tokio::spawn(async move { s.maybe_publish_report(now_ms()).await });
    }
}
