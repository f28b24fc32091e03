//! Offload: when the owner lowers the donation (`ifsnode donate`), the disk
//! fills (the store's donation shrinks to keep the owner's reserve) or the
//! node leaves (`ifsnode leave`), the node moves chunks elsewhere first and
//! releases each only once the new copy's receipt is in the file record, so
//! shrinking never loses data.

use std::collections::HashMap;
use std::path::PathBuf;
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
use crate::{DonationChange, now_ms};

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
        let _queued = self.telemetry.offload_queued();
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
        let r = self.replicas_of(&rec);
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
                self.telemetry.offloaded(&chunk, n);
                info!(%chunk, bytes = n, "offloaded");
            }
            Err(e) => warn!(%chunk, "cannot release an offloaded chunk: {e}"),
        }
        let s = self.clone();
        tokio::spawn(async move { s.maybe_publish_report(now_ms()).await });
    }

    /// Answer an operator command signed with this node's key. A change is
    /// saved (see [`crate::DonationStore`]) before it takes effect; a save
    /// that fails refuses the command.
    pub async fn answer_admin(self: &Arc<Self>, req: AdminRequest) -> CtlResponse {
        if let Err(e) = req.verify_for(&self.node_id, now_ms(), MAX_ADMIN_SKEW_MS) {
            warn!("refused an operator command: {e}");
            return CtlResponse::Error(CtlError::Denied(e.to_string()));
        }
        match req.op {
            AdminOp::SetBandwidth(caps) => return self.set_bandwidth(caps).await,
            AdminOp::Bandwidth => return CtlResponse::Bandwidth(self.bandwidth_caps()),
            _ => {}
        }
        let change = match req.op {
            AdminOp::Donate(cap) => match self.donation_caps(cap).await {
                Ok(caps) => Some((DonationChange::Caps(caps.clone()), caps, false)),
                Err(e) => return CtlResponse::Error(e),
            },
            AdminOp::Leave => match self.donation_caps(DonationCap::Bytes(0)).await {
                Ok(caps) => Some((DonationChange::Leave, caps, true)),
                Err(e) => return CtlResponse::Error(e),
            },
            AdminOp::Donation | AdminOp::SetBandwidth(_) | AdminOp::Bandwidth => None,
        };
        if let Some((saved, caps, leaving)) = change {
            if let Err(e) = self.save_donation(saved).await {
                warn!("cannot save the donation change: {e}");
                return CtlResponse::Error(CtlError::Internal(format!(
                    "cannot save the donation change: {e}"
                )));
            }
            self.durability.leaving.store(leaving, Ordering::Relaxed);
            if let Err(e) = self.apply_caps(caps).await {
                return CtlResponse::Error(e);
            }
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

    /// At start: a node that was leaving before it stopped goes on leaving.
    pub(crate) async fn resume_leaving(&self) {
        if !self.cfg.leaving {
            return;
        }
        self.durability.leaving.store(true, Ordering::Relaxed);
        match self.donation_caps(DonationCap::Bytes(0)).await {
            Ok(caps) => match self.apply_caps(caps).await {
                Ok(()) => info!("still leaving: donating nothing"),
                Err(e) => warn!("cannot drop the donation of a leaving node: {e}"),
            },
            Err(e) => warn!("cannot drop the donation of a leaving node: {e}"),
        }
    }

    pub(super) async fn save_donation(&self, change: DonationChange) -> std::io::Result<()> {
        let Some(store) = self.cfg.donation_store.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || store.save(&change))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Every volume's cap for `cap`: bytes split in proportion to the
    /// volumes' filesystem sizes, or the same percent on each.
    async fn donation_caps(&self, cap: DonationCap) -> Result<Vec<(PathBuf, Cap)>, CtlError> {
        let vols = self.store.stats().await.map_err(store_error)?.volumes;
        let sizes: Vec<u64> = vols.iter().map(|v| v.fs_size).collect();
        Ok(vols
            .into_iter()
            .map(|v| v.path)
            .zip(split_donation(cap, &sizes))
            .collect())
    }

    async fn apply_caps(&self, caps: Vec<(PathBuf, Cap)>) -> Result<(), CtlError> {
        for (path, cap) in caps {
            self.store
                .set_volume_cap(path, cap)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}

/// One cap per volume of filesystem size `sizes[i]`: a byte donation split
/// in proportion to the sizes (the last volume takes the rounding), or the
/// same percent on each.
fn split_donation(cap: DonationCap, sizes: &[u64]) -> Vec<Cap> {
    let total: u128 = sizes.iter().map(|&s| u128::from(s)).sum::<u128>().max(1);
    let mut left = match cap {
        DonationCap::Bytes(b) => b,
        DonationCap::Percent(_) => 0,
    };
    let n = sizes.len();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| match cap {
            DonationCap::Percent(p) => Cap::Percent(p.min(100)),
            DonationCap::Bytes(_) if i + 1 == n => Cap::Bytes(left),
            DonationCap::Bytes(b) => {
                let share = (u128::from(b) * u128::from(size) / total) as u64;
                left = left.saturating_sub(share);
                Cap::Bytes(share)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_donation_is_split_by_disk_size_and_sums_exactly() {
        let caps = split_donation(DonationCap::Bytes(1000), &[100, 300, 600]);
        assert_eq!(caps, [Cap::Bytes(100), Cap::Bytes(300), Cap::Bytes(600)]);
        let caps = split_donation(DonationCap::Bytes(10), &[1, 1, 1]);
        assert_eq!(caps, [Cap::Bytes(3), Cap::Bytes(3), Cap::Bytes(4)]);
        let caps = split_donation(DonationCap::Bytes(7), &[0, 0]);
        assert_eq!(caps, [Cap::Bytes(0), Cap::Bytes(7)]);
        assert_eq!(
            split_donation(DonationCap::Percent(40), &[5, 9]),
            [Cap::Percent(40), Cap::Percent(40)]
        );
    }
}
