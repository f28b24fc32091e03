//! Offload: when the owner lowers the donation (`ifsnode donate`), the disk
//! fills (the store's donation shrinks to keep the owner's reserve) or the
//! node leaves (`ifsnode leave`), the node moves chunks elsewhere first and
//! releases each only once the new copy's receipt is in the file record, so
//! shrinking never loses data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ifs_core::ChunkId;
use ifs_core::admin::{AdminOp, AdminRequest, DonationCap, DonationStatus};
use ifs_core::file_record::FileRecord;
use ifs_core::proto::{CtlError, CtlResponse};
use ifs_core::repair::{needs_copy_before_release, offload_plan};
use ifs_store::Cap;
use tracing::{info, warn};

use super::Shared;
use super::control::store_error;
use crate::now_ms;

/// How far an operator command's clock may be from ours.
const MAX_ADMIN_SKEW_MS: u64 = 5 * 60 * 1000;

impl Shared {
    /// Move chunks off this node while it holds more than it donates (or
    /// everything, when leaving).
    pub(crate) async fn offload_if_needed(
        self: Arc<Self>,
        held: &[(ChunkId, u64)],
        records: &[([u8; 32], FileRecord)],
    ) {
        let leaving = self.durability.leaving.load(Ordering::Relaxed);
        let excess = match self.store.stats().await {
            Ok(c) => c.excess,
            Err(e) => {
                warn!("cannot read capacity: {e}");
                return;
            }
        };
        if excess == 0 && !leaving {
            return;
        }
        let mut record_of: HashMap<ChunkId, [u8; 32]> = HashMap::new();
        for (key, rec) in records {
            for r in rec.receipts().filter(|r| r.node == self.node_id) {
                record_of.insert(r.chunk, *key);
            }
        }
        let movable: Vec<(ChunkId, u64)> = held
            .iter()
            .filter(|(c, _)| record_of.contains_key(c))
            .copied()
            .collect();
        let plan = if leaving {
            movable.iter().map(|(c, _)| *c).collect()
        } else {
            offload_plan(&movable, excess)
        };
        if plan.is_empty() {
            warn!(excess, "over the donation, but no chunk can be moved yet");
            return;
        }
        info!(excess, chunks = plan.len(), leaving, "offloading");
        for chunk in plan {
            let (s, key) = (self.clone(), record_of[&chunk]);
            tokio::spawn(async move { s.offload_chunk(key, chunk).await });
        }
    }

    async fn offload_chunk(self: Arc<Self>, key: [u8; 32], chunk: ChunkId) {
        let Ok(_slot) = self.durability.copy_slots.clone().acquire_owned().await else {
            return;
        };
        let Some(_busy) = self.claim(chunk) else {
            return;
        };
        let Some(mut rec) = self.file_record(key, true).await else {
            return;
        };
        let listed = rec
            .live_manifest()
            .is_some_and(|m| m.chunk_len(&chunk).is_some());
        let now = now_ms();
        let r = self.cfg.durability.replicas;
        if listed
            && needs_copy_before_release(
                &rec,
                &chunk,
                |n| self.holder_counts(n, now),
                r,
                &self.node_id,
            )
        {
            let data = match self.store.get_chunk(chunk).await {
                Ok(d) => d,
                Err(e) => {
                    warn!(%chunk, "cannot read a chunk to offload: {e}");
                    return;
                }
            };
            let mut exclude: Vec<_> = rec
                .receipts()
                .filter(|x| x.chunk == chunk)
                .map(|x| x.node)
                .collect();
            exclude.push(self.node_id);
            if self
                .copy_to_new_nodes(key, rec.clone(), chunk, &data, 1, &exclude)
                .await
                == 0
            {
                warn!(%chunk, "no node took the chunk: keeping it for now");
                return;
            }
            // The merged record now holds the new receipt.
            match self.file_record(key, false).await {
                Some(merged) => rec = merged,
                None => return,
            }
            let new_holder = rec
                .live_holders(&chunk)
                .iter()
                .any(|n| !exclude.contains(n));
            if !new_holder {
                warn!(%chunk, "new receipt not in the record: keeping the chunk");
                return;
            }
        }
        match self.release_and_delete(&mut rec, chunk).await {
            Ok(n) => {
                self.publish_file_record(&rec).await;
                info!(%chunk, bytes = n, "offloaded");
            }
            Err(e) => warn!(%chunk, "cannot release an offloaded chunk: {e}"),
        }
        let s = self.clone();
        tokio::spawn(async move { s.maybe_publish_report(now_ms()).await });
    }

    /// Answer an operator command signed with this node's key.
    pub async fn answer_admin(self: &Arc<Self>, req: AdminRequest) -> CtlResponse {
        if let Err(e) = req.verify_for(&self.node_id, now_ms(), MAX_ADMIN_SKEW_MS) {
            warn!("refused an operator command: {e}");
            return CtlResponse::Error(CtlError::Denied(e.to_string()));
        }
        let cap = match req.op {
            AdminOp::Donate(c) => {
                self.durability.leaving.store(false, Ordering::Relaxed);
                Some(c)
            }
            AdminOp::Leave => {
                self.durability.leaving.store(true, Ordering::Relaxed);
                Some(DonationCap::Bytes(0))
            }
            AdminOp::Donation => None,
        };
        if let Some(cap) = cap
            && let Err(e) = self.set_donation(cap).await
        {
            return CtlResponse::Error(e);
        }
        if !matches!(req.op, AdminOp::Donation) {
            info!(op = ?req.op, "operator changed the donation");
            let s = self.clone();
            tokio::spawn(async move {
                s.maybe_publish_report(now_ms()).await;
                // Give the copy just started by a previous pass a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.durability_pass(now_ms()).await;
            });
        }
        match self.store.stats().await {
            Ok(c) => CtlResponse::Donation(DonationStatus {
                donated_bytes: c.donated,
                used_bytes: c.used,
                excess_bytes: c.excess,
                leaving: self.durability.leaving.load(Ordering::Relaxed),
            }),
            Err(e) => CtlResponse::Error(store_error(e)),
        }
    }

    /// Set every volume's cap: bytes split in proportion to the volumes'
    /// filesystem sizes, or the same percent on each.
    async fn set_donation(&self, cap: DonationCap) -> Result<(), CtlError> {
        let vols = self.store.stats().await.map_err(store_error)?.volumes;
        let total: u128 = vols
            .iter()
            .map(|v| u128::from(v.fs_size))
            .sum::<u128>()
            .max(1);
        let n = vols.len();
        let mut left = match cap {
            DonationCap::Bytes(b) => b,
            DonationCap::Percent(_) => 0,
        };
        for (i, v) in vols.iter().enumerate() {
            let c = match cap {
                DonationCap::Percent(p) => Cap::Percent(p.min(100)),
                DonationCap::Bytes(b) if i + 1 == n => Cap::Bytes(left.min(b)),
                DonationCap::Bytes(b) => {
                    let share = (u128::from(b) * u128::from(v.fs_size) / total) as u64;
                    left = left.saturating_sub(share);
                    Cap::Bytes(share)
                }
            };
            self.store
                .set_volume_cap(v.path.clone(), c)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}
