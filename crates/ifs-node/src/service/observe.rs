//! The node as its operator sees it: the overview of the admin API, the
//! gauges a scrape reads, and a watcher that turns node table and volume
//! changes into events. Reads only; never changes what the node does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ifs_core::proto::PeerRow;
use tokio::sync::watch;

use super::Shared;
use super::shared::lock;
use crate::telemetry::events::{EventKind, Level};
use crate::telemetry::view::{
    AuditView, CapacityView, NodeCounts, OffloadView, Overview, Reachability, RepairView,
    TrafficView, VolumeView,
};
use crate::telemetry::{DiskLabels, FILLING_PCT, StateLabels};

/// How often the watcher looks at the node table and the volumes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Node table states as `peers` names them, each a gauge label.
const STATES: [&str; 5] = ["alive", "unreachable", "unverified", "suspect", "dead"];

/// The node table by state.
fn count_states(rows: &[PeerRow]) -> NodeCounts {
    let mut c = NodeCounts {
        total: rows.len() as u64,
        ..NodeCounts::default()
    };
    for r in rows {
        match r.state.as_str() {
            "alive" => c.alive += 1,
            "unreachable" => c.unreachable += 1,
            "unverified" => c.unverified += 1,
            "suspect" => c.suspect += 1,
            "dead" => c.dead += 1,
            _ => c.other += 1,
        }
    }
    c
}

/// Nodes that turned dead since `before`, and dead nodes that came back.
/// A node seen for the first time is no change.
pub(crate) fn transitions<'a>(
    before: &HashMap<String, String>,
    rows: &'a [PeerRow],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut dead, mut back) = (Vec::new(), Vec::new());
    for r in rows.iter().filter(|r| !r.is_self) {
        match before.get(&r.peer_id).map(String::as_str) {
            Some(old) if old != "dead" && r.state == "dead" => dead.push(r.peer_id.as_str()),
            Some("dead") if r.state != "dead" => back.push(r.peer_id.as_str()),
            _ => {}
        }
    }
    (dead, back)
}

/// Whether a volume holding `used` of `donated` bytes counts as filling.
pub(crate) fn filling(used: u64, donated: u64) -> bool {
    donated > 0 && used.saturating_mul(100) >= donated.saturating_mul(FILLING_PCT)
}

impl Shared {
    /// This node at a glance (`/api/overview`).
    pub async fn overview(&self, now_ms: u64) -> Overview {
        let rows = self.peer_rows(now_ms);
        let nodes = count_states(&rows);
        let cap = self.store.stats().await.ok();
        let chunks = self.store.chunk_count().await.unwrap_or(0);
        let connected = self.connected_nodes().await;
        let alive_peers = rows
            .iter()
            .filter(|r| !r.is_self && r.state == "alive")
            .count() as u32;
        let t = &self.telemetry;
        let (passed, failed, no_answer) = t.audit_counts();
        let (answered, answer_errors) = t.answered_audits();
        let reps: Vec<f64> = rows
            .iter()
            .filter(|r| !r.is_self)
            .map(|r| r.reputation)
            .collect();
        let (completed, incomplete) = t.repair_counts();
        let bw = t.bandwidth(now_ms);
        let excess = cap.as_ref().map_or(0, |c| c.excess);
        // The figures this node reports to others (soft grants count as free).
        let stats = self.capacity_stats(now_ms).await.unwrap_or_default();
        let capacity = CapacityView {
            donated_bytes: stats.donated_bytes,
            used_bytes: stats.used_bytes,
            reserved_bytes: stats.reserved_bytes,
            free_bytes: stats.free_bytes,
            awaiting_collection_bytes: self.durability.awaiting_bytes.load(Ordering::Relaxed),
            quarantined_bytes: cap.as_ref().map_or(0, |c| c.quarantined_bytes),
            excess_bytes: excess,
            owner_reserve_pct: self.cfg.store.owner_reserve_pct,
            owner_need_pct: stats.owner_need_pct,
        };
        let volumes = cap.as_ref().map_or_else(Vec::new, |c| {
            c.volumes
                .iter()
                .map(|v| VolumeView {
                    path: v.path.display().to_string(),
                    donated_bytes: v.donated,
                    used_bytes: v.used,
                    free_bytes: v.free,
                    unremoved_bytes: v.unremoved,
                    fs_size_bytes: v.fs_size,
                    fs_avail_bytes: v.fs_avail,
                })
                .collect()
        });
        Overview {
            peer_id: self.net.local_peer_id().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: now_ms.saturating_sub(self.started_ms) / 1000,
            addrs: self.announce.iter().map(|a| a.to_string()).collect(),
            reachability: Reachability {
                state: if alive_peers > 0 {
                    "connected"
                } else {
                    "alone"
                }
                .into(),
                connected_peers: connected,
                alive_peers,
            },
            capacity,
            volumes,
            chunks,
            nodes,
            audits: AuditView {
                passed,
                failed,
                no_answer,
                answered,
                answer_errors,
                min_peer_reputation: reps.iter().copied().fold(1.0, f64::min),
                mean_peer_reputation: if reps.is_empty() {
                    1.0
                } else {
                    reps.iter().sum::<f64>() / reps.len() as f64
                },
            },
            repair: RepairView {
                queued: t.repair_queue.len(),
                copying: lock(&self.durability.busy).len() as u64,
                completed,
                incomplete,
            },
            offload: OffloadView {
                leaving: self.durability.leaving.load(Ordering::Relaxed),
                excess_bytes: excess,
                queued: t.offload_queue.len(),
                offloaded: t.offload_count(),
            },
            traffic: TrafficView {
                hour_in_bytes: bw.hour_in_bytes,
                hour_out_bytes: bw.hour_out_bytes,
                day_in_bytes: bw.day_in_bytes,
                day_out_bytes: bw.day_out_bytes,
            },
            warnings: t
                .events_since(0, usize::MAX)
                .iter()
                .filter(|e| e.level == Level::Warning)
                .count() as u64,
        }
    }

    /// Set the scrape-time gauges from the overview and return it.
    pub async fn refresh_gauges(&self, now_ms: u64) -> Overview {
        let o = self.overview(now_ms).await;
        let g = &self.telemetry.gauges;
        let set = |volume: &str, kind: &'static str, v: u64| {
            g.disk_bytes
                .get_or_create(&DiskLabels {
                    volume: volume.to_string(),
                    kind,
                })
                .set(v as i64);
        };
        for v in &o.volumes {
            set(&v.path, "donated", v.donated_bytes);
            set(&v.path, "used", v.used_bytes);
            set(&v.path, "free", v.free_bytes);
            set(&v.path, "unremoved", v.unremoved_bytes);
        }
        let c = &o.capacity;
        set("all", "reserved", c.reserved_bytes);
        set("all", "awaiting_collection", c.awaiting_collection_bytes);
        set("all", "quarantined", c.quarantined_bytes);
        set("all", "excess", c.excess_bytes);
        let n = &o.nodes;
        for (state, v) in
            STATES
                .iter()
                .zip([n.alive, n.unreachable, n.unverified, n.suspect, n.dead])
        {
            g.nodes.get_or_create(&StateLabels { state }).set(v as i64);
        }
        g.chunks.set(o.chunks as i64);
        g.uptime_seconds.set(o.uptime_s as i64);
        g.repair_queue.set(o.repair.queued as i64);
        g.offload_queue.set(o.offload.queued as i64);
        g.connected_peers
            .set(i64::from(o.reachability.connected_peers));
        o
    }
}

/// Watch the node table and the volumes until `stop`, turning a node that
/// went dead (or came back) and a volume that is filling into events.
pub(crate) async fn watch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.telemetry.event(
        Level::Info,
        EventKind::Started,
        format!("node {} started", shared.net.local_peer_id()),
    );
    let mut states: HashMap<String, String> = HashMap::new();
    let mut filling_now: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let rows = shared.peer_rows(crate::now_ms());
        let (dead, back) = transitions(&states, &rows);
        for peer in dead {
            shared.telemetry.event(
                Level::Warning,
                EventKind::NodeDead,
                format!("node {peer} is dead: its chunks will be repaired elsewhere"),
            );
        }
        for peer in back {
            shared.telemetry.event(
                Level::Info,
                EventKind::NodeBack,
                format!("node {peer} reports again"),
            );
        }
        states = rows.into_iter().map(|r| (r.peer_id, r.state)).collect();
        let Ok(cap) = shared.store.stats().await else {
            continue;
        };
        for v in &cap.volumes {
            let path = v.path.display().to_string();
            let used = v.used + v.unremoved;
            if filling(used, v.donated) {
                if filling_now.insert(path.clone()) {
                    shared.telemetry.event(
                        Level::Warning,
                        EventKind::VolumeFilling,
                        format!(
                            "volume {path} holds {used} of {} donated bytes (over {FILLING_PCT}%)",
                            v.donated
                        ),
                    );
                }
            } else {
                filling_now.remove(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: &str) -> PeerRow {
        PeerRow {
            peer_id: id.into(),
            state: state.into(),
            addrs: vec![],
            donated_bytes: 0,
            used_bytes: 0,
            reserved_bytes: 0,
            free_bytes: 0,
            owner_need_pct: 0,
            rtt_ms: None,
            hops: None,
            report_age_s: 0,
            seq: 0,
            reputation: 1.0,
            is_self: false,
            up_bps: 0,
            down_bps: 0,
        }
    }

    #[test]
    fn only_changes_into_and_out_of_dead_are_transitions() {
        let before: HashMap<String, String> = [("a", "alive"), ("b", "suspect"), ("c", "dead")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let rows = vec![
            row("a", "dead"),
            row("b", "dead"),
            row("c", "alive"),
            row("new", "dead"),
        ];
        let (dead, back) = transitions(&before, &rows);
        assert_eq!(dead, ["a", "b"]);
        assert_eq!(back, ["c"]);
        let same = [row("c", "dead")];
        let (dead, back) = transitions(&before, &same);
        assert!(dead.is_empty() && back.is_empty(), "no change, no event");
    }

    #[test]
    fn a_volume_is_filling_from_ninety_percent() {
        assert!(!filling(89, 100));
        assert!(filling(90, 100));
        assert!(filling(120, 100));
        assert!(!filling(0, 0), "an empty donation is not filling");
        assert_eq!(count_states(&[row("a", "alive"), row("b", "dead")]).dead, 1);
    }
}
