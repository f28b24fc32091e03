//! Repair: when live holders of a chunk drop below R (dead in the node
//! table, or failing audits), the lowest-id live holder copies it to new
//! nodes chosen by the placement score and merges their receipts into the
//! file record. Copies run on background tasks, a bounded number at once,
//! under the node's repair bandwidth cap.

use std::net::IpAddr;
use std::sync::Arc;

use ifs_core::file_record::FileRecord;
use ifs_core::placement::{AddrRange, Candidate};
use ifs_core::repair::{RepairTask, pick_targets, repair_plan};
use ifs_core::{ChunkId, NodeId};
use tracing::{info, warn};

use super::Shared;
use super::shared::lock;
use crate::now_ms;
use crate::telemetry::TrafficClass;

/// How long a node that failed a pushed copy is left out of targets.
const FAILED_TARGET_PAUSE_MS: u64 = 10 * 60 * 1000;

/// RTT assumed for an alive node not measured yet: usable, but ranked below
/// measured nearby nodes.
const UNMEASURED_RTT_MS: f64 = 250.0;

fn range_of(addrs: &[String]) -> Option<AddrRange> {
    addrs.iter().find_map(|a| {
        let ma: ifs_net::Multiaddr = a.parse().ok()?;
        ma.iter().find_map(|p| match p {
            multiaddr::Protocol::Ip4(ip) => Some(AddrRange::of(IpAddr::V4(ip))),
            multiaddr::Protocol::Ip6(ip) => Some(AddrRange::of(IpAddr::V6(ip))),
            _ => None,
        })
    })
}

impl Shared {
    /// Every other alive node as a placement candidate, as this node sees it.
    pub(crate) fn placement_candidates(&self, now_ms: u64) -> Vec<(NodeId, Candidate)> {
        let reports: Vec<_> = lock(&self.table)
            .iter()
            .map(|(_, e)| e.report.clone())
            .filter(|r| r.node != self.node_id)
            .collect();
        let measured: Vec<_> = {
            let metrics = lock(&self.metrics);
            reports
                .into_iter()
                .map(|r| {
                    let m = metrics.get(&r.node);
                    (r, m)
                })
                .collect()
        };
        measured
            .into_iter()
            .filter(|(r, _)| self.node_alive(&r.node, now_ms))
            .map(|(r, m)| {
                let c = Candidate {
                    rtt_ms: Some(m.rtt_ms.unwrap_or(UNMEASURED_RTT_MS)),
                    hops: m.hops.map(u32::from),
                    free_bytes: r.free_bytes,
                    owner_need_pct: r.owner_need_pct,
                    reputation: self.reputation_of(&r.node),
                    range: range_of(&r.addrs),
                    alive: true,
                    up_bps: r.bandwidth_bps,
                    down_bps: r.bandwidth_down_bps.unwrap_or(0),
                };
                (r.node, c)
            })
            .collect()
    }

    /// Copies of each chunk `rec` should have: what its owner asked for in
    /// the live manifest, else (no live manifest) the node's default.
    pub(crate) fn replicas_of(&self, rec: &FileRecord) -> usize {
        rec.live_manifest()
            .map_or(self.cfg.durability.replicas, |m| usize::from(m.replicas))
    }

    /// Start copies for every chunk this node must repair. The local view
    /// proposes; the DHT's merged record confirms before anything is sent.
    pub(crate) fn start_repairs(self: Arc<Self>, records: &[([u8; 32], FileRecord)], now: u64) {
        for (key, rec) in records {
            let r = self.replicas_of(rec);
            if repair_plan(rec, |n| self.holder_counts(n, now), r, &self.node_id).is_empty() {
                continue;
            }
            let (s, key) = (self.clone(), *key);
            tokio::spawn(async move {
                let Some(rec) = s.file_record(key, true).await else {
                    return;
                };
                let now = now_ms();
                let r = s.replicas_of(&rec);
                let tasks = repair_plan(&rec, |n| s.holder_counts(n, now), r, &s.node_id);
                for task in tasks {
                    let (s2, rec2) = (s.clone(), rec.clone());
                    tokio::spawn(async move { s2.repair_chunk(key, rec2, task).await });
                }
            });
        }
    }

    async fn repair_chunk(self: Arc<Self>, key: [u8; 32], rec: FileRecord, task: RepairTask) {
        let _queued = self.telemetry.repair_queued();
        let Ok(_slot) = self.durability.copy_slots.clone().acquire_owned().await else {
            return;
        };
        let Some(_busy) = self.claim(task.chunk) else {
            return;
        };
        let data = match self.store.get_chunk(task.chunk).await {
            Ok(d) => d,
            Err(e) => {
                warn!(chunk = %task.chunk, "cannot read a chunk to repair: {e}");
                return;
            }
        };
        let mut exclude = task.holders.clone();
        exclude.push(self.node_id);
        let made = self
            .copy_to_new_nodes(key, rec, task.chunk, &data, task.missing, &exclude)
            .await;
        self.telemetry.repair(&task.chunk, made, task.missing);
        if made > 0 {
            info!(chunk = %task.chunk, copies = made, live_before = task.live.len(), "repaired");
        }
        if made < task.missing {
            warn!(chunk = %task.chunk, made, needed = task.missing, "repair incomplete: not enough targets");
        }
    }

    /// Push `data` to up to `want` new nodes ranked by placement, trying the
    /// next candidate on failure; merge the receipts into the record and
    /// publish it. Returns the copies made.
    pub(crate) async fn copy_to_new_nodes(
        &self,
        key: [u8; 32],
        mut rec: FileRecord,
        chunk: ChunkId,
        data: &[u8],
        want: usize,
        exclude: &[NodeId],
    ) -> usize {
        let now = now_ms();
        let cands: Vec<_> = {
            let failed = lock(&self.durability.failed_targets);
            self.placement_candidates(now)
                .into_iter()
                .filter(|(n, _)| !failed.skips(n, now))
                .collect()
        };
        let targets = pick_targets(&cands, exclude, data.len() as u64, cands.len());
        let mut made = 0;
        for target in targets {
            if made >= want {
                break;
            }
            let pushed = self.push_replica(target, key, chunk, data).await;
            let failed = |why: &str| {
                warn!(%chunk, %target, "replica not stored: {why}");
                lock(&self.durability.failed_targets).failed(
                    target,
                    now_ms(),
                    FAILED_TARGET_PAUSE_MS,
                );
            };
            match pushed {
                Ok(receipt) => match rec.add_receipt(receipt) {
                    Ok(()) => {
                        made += 1;
                        self.telemetry
                            .bytes_out(TrafficClass::Replica, data.len() as u64);
                        lock(&self.durability.failed_targets).succeeded(&target);
                    }
                    Err(e) => failed(&format!("receipt refused by the record: {e}")),
                },
                Err(e) => failed(&e),
            }
        }
        if made > 0 && !self.publish_file_record(&rec).await {
            return 0;
        }
        made
    }
}
