//! Scheduled scrub: re-hash every held chunk at a capped disk rate and
//! replace a corrupt or missing one with a copy fetched from another holder.
//! Audits that find this node's own copy bad use the same refetch.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ifs_core::ChunkId;
use tracing::{info, warn};

use super::Shared;
use crate::now_ms;

impl Shared {
    /// Scrub every chunk once (skipped if a scrub is still running).
    pub async fn scrub_pass(self: Arc<Self>) {
        if self.durability.scrub_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let rate = self.cfg.durability.scrub_bytes_per_sec;
        match self.store.scrub_paced(rate).await {
            Ok(report) => {
                if !report.is_clean() {
                    warn!(
                        corrupt = report.corrupt.len(),
                        missing = report.missing.len(),
                        "scrub found damaged chunks"
                    );
                }
                for chunk in report.corrupt.into_iter().chain(report.missing) {
                    self.refetch(chunk).await;
                }
            }
            Err(e) => warn!("scrub failed: {e}"),
        }
        self.durability
            .scrub_running
            .store(false, Ordering::Release);
    }

    /// Replace this node's damaged copy of `chunk` with another holder's.
    /// Returns whether the copy is good again.
    pub(crate) async fn refetch(&self, chunk: ChunkId) -> bool {
        let Some(_busy) = self.claim(chunk) else {
            return false;
        };
        let Some(key) = self.record_of(chunk).await else {
            warn!(%chunk, "damaged chunk of an unknown file: cannot refetch");
            return false;
        };
        let Some(rec) = self.file_record(key, true).await else {
            warn!(%chunk, "damaged chunk: its file record is not found");
            return false;
        };
        let Some(len) = rec.live_manifest().and_then(|m| m.chunk_len(&chunk)) else {
            // No longer part of the file: the next pass frees it.
            return false;
        };
        let now = now_ms();
        let mut holders: Vec<_> = rec
            .live_holders(&chunk)
            .into_iter()
            .filter(|n| *n != self.node_id && self.holder_counts(n, now))
            .collect();
        // Best reputation first.
        holders.sort_by(|a, b| self.reputation_of(b).total_cmp(&self.reputation_of(a)));
        for from in holders {
            match self.fetch_from_holder(from, key, chunk, len).await {
                Ok(data) => match self.replace_local(chunk, data).await {
                    Ok(()) => {
                        info!(%chunk, %from, "repaired a damaged copy from another holder");
                        return true;
                    }
                    Err(e) => {
                        warn!(%chunk, "cannot replace the damaged copy: {e}");
                        return false;
                    }
                },
                Err(e) => warn!(%chunk, %from, "refetch failed: {e}"),
            }
        }
        warn!(%chunk, "no holder could supply a good copy");
        false
    }
}
