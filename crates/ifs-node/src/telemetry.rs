//! What a node tells its operator: Prometheus metrics (`ifs_*`, next to
//! libp2p's own), a ring of recent events and the bandwidth history. The
//! service counts into it with one call per operation; gauges (disk bytes,
//! the node table by state) are set from the store and the table when a
//! scrape asks for them, so nothing is computed between scrapes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ifs_core::audit::AuditOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub mod bandwidth;
pub mod events;
pub mod exposition;
pub mod view;

use bandwidth::BandwidthHistory;
use events::{Event, EventKind, EventLog, Level};

/// A volume holding more than this percent of its donation raises a
/// "volume filling" event (once, until it drops below again).
pub const FILLING_PCT: u64 = 90;

/// Events kept for the dashboard and `/api/events`.
const EVENTS_KEPT: usize = 256;

/// Which traffic bytes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficClass {
    /// Chunks a client stores through this node (first hop) or fetches.
    Client,
    /// Chunks forwarded along a header chain between nodes.
    Chain,
    /// Copies made by repair and offload, and fetches between holders.
    Replica,
}

impl TrafficClass {
    fn label(self) -> &'static str {
        match self {
            TrafficClass::Client => "client",
            TrafficClass::Chain => "chain",
            TrafficClass::Replica => "replica",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrafficLabels {
    direction: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShapeLabels {
    direction: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DiskLabels {
    pub volume: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// Gauges set at scrape time from the store and the node table.
pub(crate) struct Gauges {
    pub disk_bytes: Family<DiskLabels, Gauge>,
    pub nodes: Family<StateLabels, Gauge>,
    pub chunks: Gauge,
    pub uptime_seconds: Gauge,
    pub repair_queue: Gauge,
    pub offload_queue: Gauge,
    pub connected_peers: Gauge,
}

/// Work waiting or running, kept by guards so a task that ends any way
/// (done, failed, panicked) leaves the count right.
#[derive(Default)]
pub(crate) struct Queue {
    pending: AtomicU64,
}

/// Counts one queued job until dropped.
pub(crate) struct Queued<'a>(&'a Queue);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Queue {
    fn enter(&self) -> Queued<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Queued(self)
    }

    /// Jobs queued or running now.
    pub fn len(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// A node's metrics, events and traffic history.
pub struct Telemetry {
    registry: Mutex<Registry>,
    chunk_ops: Family<OpLabels, Counter>,
    transfer_bytes: Family<TrafficLabels, Counter>,
    audits: Family<ResultLabels, Counter>,
    repairs: Family<ResultLabels, Counter>,
    offloads: Counter,
    reservations: Family<ResultLabels, Counter>,
    record_merges: Family<ResultLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    shaped_bytes: Family<ShapeLabels, Counter>,
    shaped_yields: Family<ShapeLabels, Counter>,
    bandwidth_cap: Family<DirectionLabels, Gauge>,
    pub(crate) gauges: Gauges,
    pub(crate) repair_queue: Queue,
    pub(crate) offload_queue: Queue,
    events: Mutex<EventLog>,
    bandwidth: Mutex<BandwidthHistory>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Telemetry {
    /// Fresh counters registered in `registry` (which may already hold
    /// libp2p's metrics).
    pub fn new(mut registry: Registry) -> Self {
        let t = Telemetry {
            registry: Mutex::new(Registry::default()),
            chunk_ops: Family::default(),
            transfer_bytes: Family::default(),
            audits: Family::default(),
            repairs: Family::default(),
            offloads: Counter::default(),
            reservations: Family::default(),
            record_merges: Family::default(),
            errors: Family::default(),
            shaped_bytes: Family::default(),
            shaped_yields: Family::default(),
            bandwidth_cap: Family::default(),
            gauges: Gauges {
                disk_bytes: Family::default(),
                nodes: Family::default(),
                chunks: Gauge::default(),
                uptime_seconds: Gauge::default(),
                repair_queue: Gauge::default(),
                offload_queue: Gauge::default(),
                connected_peers: Gauge::default(),
            },
            repair_queue: Queue::default(),
            offload_queue: Queue::default(),
            events: Mutex::new(EventLog::new(EVENTS_KEPT)),
            bandwidth: Mutex::new(BandwidthHistory::default()),
        };
        let r = &mut registry;
        r.register(
            "ifs_chunk_operations",
            "Chunk operations served, by operation (store, fetch, replica_in, peer_fetch, delete, audit_answer) and result",
            t.chunk_ops.clone(),
        );
        r.register(
            "ifs_transfer_bytes",
            "Chunk bytes received (in) and sent (out), by traffic class (client, chain, replica)",
            t.transfer_bytes.clone(),
        );
        r.register(
            "ifs_audits",
            "Audits this node ran against co-holders, by result (pass, fail, no_answer)",
            t.audits.clone(),
        );
        r.register(
            "ifs_repairs",
            "Repair jobs finished, by result (complete, incomplete)",
            t.repairs.clone(),
        );
        r.register(
            "ifs_offloaded_chunks",
            "Chunks handed to another node and released here",
            t.offloads.clone(),
        );
        r.register(
            "ifs_reservations",
            "Reservation requests answered, by result (granted, refused)",
            t.reservations.clone(),
        );
        r.register(
            "ifs_record_merges",
            "DHT records merged into the local copy, by result (changed, unchanged, rejected)",
            t.record_merges.clone(),
        );
        r.register(
            "ifs_errors",
            "Errors by kind (store: a chunk not stored; record: a record rejected)",
            t.errors.clone(),
        );
        r.register(
            "ifs_bandwidth_bytes",
            "Chunk bytes metered by the bandwidth caps as they move, by direction (in, out) and priority class (client, repair, background)",
            t.shaped_bytes.clone(),
        );
        r.register(
            "ifs_bandwidth_yields",
            "Times a piece of chunk bytes waited because a higher priority class was moving bytes, by direction and class",
            t.shaped_yields.clone(),
        );
        r.register(
            "ifs_bandwidth_cap_bytes_per_second",
            "The owner's bandwidth cap on chunk traffic in bytes per second, by direction (0: unlimited)",
            t.bandwidth_cap.clone(),
        );
        let g = &t.gauges;
        r.register(
            "ifs_disk_bytes",
            "Bytes per volume by kind (donated, used, free, unremoved; volume=\"all\": reserved, awaiting_collection, quarantined, excess)",
            g.disk_bytes.clone(),
        );
        r.register(
            "ifs_nodes",
            "Nodes in this node's table by state",
            g.nodes.clone(),
        );
        r.register("ifs_chunks", "Chunks held", g.chunks.clone());
        r.register(
            "ifs_uptime_seconds",
            "Seconds since the node started",
            g.uptime_seconds.clone(),
        );
        r.register(
            "ifs_repair_queue_chunks",
            "Chunks waiting for or being copied by repair",
            g.repair_queue.clone(),
        );
        r.register(
            "ifs_offload_queue_chunks",
            "Chunks waiting for or being moved by offload",
            g.offload_queue.clone(),
        );
        r.register(
            "ifs_connected_peers",
            "Peers with an open connection",
            g.connected_peers.clone(),
        );
        let build: Family<VersionLabels, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("ifs_build_info", "The node's version (value 1)", build);
        *lock(&t.registry) = registry;
        t
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &lock(&self.registry));
        out
    }

    fn count_bytes(&self, direction: &'static str, class: TrafficClass, bytes: u64, now_ms: u64) {
        if bytes == 0 {
            return;
        }
        self.transfer_bytes
            .get_or_create(&TrafficLabels {
                direction,
                class: class.label(),
            })
            .inc_by(bytes);
        let (i, o) = if direction == "in" {
            (bytes, 0)
        } else {
            (0, bytes)
        };
        lock(&self.bandwidth).add(now_ms, i, o);
    }

    /// Bytes received.
    pub(crate) fn bytes_in(&self, class: TrafficClass, bytes: u64) {
        self.count_bytes("in", class, bytes, crate::now_ms());
    }

    /// Bytes sent.
    pub(crate) fn bytes_out(&self, class: TrafficClass, bytes: u64) {
        self.count_bytes("out", class, bytes, crate::now_ms());
    }

    /// A piece of chunk bytes moved under the caps.
    pub(crate) fn shaped(
        &self,
        direction: &'static str,
        class: ifs_core::bandwidth::Priority,
        bytes: u64,
    ) {
        let l = ShapeLabels {
            direction,
            class: class.label(),
        };
        self.shaped_bytes.get_or_create(&l).inc_by(bytes);
    }

    /// A piece waited because a higher class was moving bytes.
    pub(crate) fn yielded(&self, direction: &'static str, class: ifs_core::bandwidth::Priority) {
        let l = ShapeLabels {
            direction,
            class: class.label(),
        };
        self.shaped_yields.get_or_create(&l).inc();
    }

    /// The caps now, given in bits per second (`None`: unlimited) and
    /// shown in bytes per second, Prometheus' base unit.
    pub(crate) fn bandwidth_caps(&self, up: Option<u64>, down: Option<u64>) {
        for (direction, cap) in [("out", up), ("in", down)] {
            let v = i64::try_from(cap.unwrap_or(0) / 8).unwrap_or(i64::MAX);
            self.bandwidth_cap
                .get_or_create(&DirectionLabels { direction })
                .set(v);
        }
    }

    /// One chunk operation and its result.
    pub(crate) fn chunk_op(&self, op: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.chunk_ops.get_or_create(&OpLabels { op, result }).inc();
    }

    /// A hop of a header chain served: `cursor` is this node's place in a
    /// chain of `hops`, `len` the chunk's size, `stored` whether this node
    /// kept a copy.
    pub(crate) fn chain_hop(&self, cursor: u32, hops: usize, len: u64, stored: bool) {
        self.chunk_op("store", stored);
        if !stored {
            self.error("store");
            return;
        }
        let from = if cursor == 0 {
            TrafficClass::Client
        } else {
            TrafficClass::Chain
        };
        self.bytes_in(from, len);
        if (cursor as usize) + 1 < hops {
            self.bytes_out(TrafficClass::Chain, len);
        }
    }

    /// A pushed replica of `len` bytes came in; `stored` if it was kept.
    pub(crate) fn replica_received(&self, len: u64, stored: bool) {
        self.chunk_op("replica_in", stored);
        if stored {
            self.bytes_in(TrafficClass::Replica, len);
        }
    }

    /// Count an answer to a request of kind `op` (an error answer is a
    /// failed operation) and hand it back.
    pub(crate) fn answered(
        &self,
        op: &'static str,
        resp: ifs_core::proto::CtlResponse,
    ) -> ifs_core::proto::CtlResponse {
        let ok = !matches!(resp, ifs_core::proto::CtlResponse::Error(_));
        self.chunk_op(op, ok);
        resp
    }

    /// The outcome of an audit this node ran against `node`.
    pub(crate) fn audit(&self, node: &ifs_core::NodeId, outcome: AuditOutcome) {
        let result = match outcome {
            AuditOutcome::Pass => "pass",
            AuditOutcome::Fail => "fail",
            AuditOutcome::NoAnswer => "no_answer",
        };
        self.audits.get_or_create(&ResultLabels { result }).inc();
        if outcome == AuditOutcome::Fail {
            self.event(
                Level::Warning,
                EventKind::AuditFailed,
                format!("node {} failed an audit", short_node(node)),
            );
        }
    }

    /// A repair job ended having made `made` of the `missing` copies.
    pub(crate) fn repair(&self, chunk: &ifs_core::ChunkId, made: usize, missing: usize) {
        if made >= missing {
            self.repairs
                .get_or_create(&ResultLabels { result: "complete" })
                .inc();
            self.event(
                Level::Info,
                EventKind::RepairFinished,
                format!("chunk {} repaired: {made} new copies", short_chunk(chunk)),
            );
        } else {
            self.repairs
                .get_or_create(&ResultLabels {
                    result: "incomplete",
                })
                .inc();
            self.event(
                Level::Warning,
                EventKind::RepairIncomplete,
                format!(
                    "chunk {} still misses {} of {missing} copies: too few targets",
                    short_chunk(chunk),
                    missing - made
                ),
            );
        }
    }

    /// A chunk of `bytes` was offloaded.
    pub(crate) fn offloaded(&self, chunk: &ifs_core::ChunkId, bytes: u64) {
        self.offloads.inc();
        self.event(
            Level::Info,
            EventKind::Offloaded,
            format!("chunk {} ({bytes} bytes) offloaded", short_chunk(chunk)),
        );
    }

    /// Count a reservation answer and hand it back.
    pub(crate) fn reservation(
        &self,
        resp: ifs_core::proto::CtlResponse,
    ) -> ifs_core::proto::CtlResponse {
        let result = match resp {
            ifs_core::proto::CtlResponse::Granted(_) => "granted",
            _ => "refused",
        };
        self.reservations
            .get_or_create(&ResultLabels { result })
            .inc();
        resp
    }

    /// Count a record merge: `Ok(changed)` or rejected.
    pub(crate) fn record_merge<T, E>(&self, r: &Result<(T, bool), E>) {
        let result = match r {
            Ok((_, true)) => "changed",
            Ok((_, false)) => "unchanged",
            Err(_) => "rejected",
        };
        self.record_merges
            .get_or_create(&ResultLabels { result })
            .inc();
        if r.is_err() {
            self.error("record");
        }
    }

    /// Count an error of `kind`.
    pub(crate) fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// A repair job waits or runs until the guard drops.
    pub(crate) fn repair_queued(&self) -> Queued<'_> {
        self.repair_queue.enter()
    }

    /// An offload job waits or runs until the guard drops.
    pub(crate) fn offload_queued(&self) -> Queued<'_> {
        self.offload_queue.enter()
    }

    /// Record an event now.
    pub fn event(&self, level: Level, kind: EventKind, message: String) {
        lock(&self.events).push(crate::now_ms(), level, kind, message);
    }

    /// Events after `seq`, newest first, at most `limit`.
    pub fn events_since(&self, seq: u64, limit: usize) -> Vec<Event> {
        lock(&self.events).since(seq, limit)
    }

    /// The traffic history at `now_ms`.
    pub fn bandwidth(&self, now_ms: u64) -> view::BandwidthView {
        let h = lock(&self.bandwidth);
        let (hour, day) = (h.last_hour(now_ms), h.last_day(now_ms));
        let (hour_in, hour_out) = bandwidth::totals(&hour);
        let (day_in, day_out) = bandwidth::totals(&day);
        view::BandwidthView {
            hour_in_bytes: hour_in,
            hour_out_bytes: hour_out,
            day_in_bytes: day_in,
            day_out_bytes: day_out,
            minutes: hour,
            quarters: day,
        }
    }

    /// Audits run so far: (passed, failed, no answer).
    pub(crate) fn audit_counts(&self) -> (u64, u64, u64) {
        let get = |result| self.audits.get_or_create(&ResultLabels { result }).get();
        (get("pass"), get("fail"), get("no_answer"))
    }

    /// Audits answered so far: (ok, error).
    pub(crate) fn answered_audits(&self) -> (u64, u64) {
        let get = |result| {
            self.chunk_ops
                .get_or_create(&OpLabels {
                    op: "audit_answer",
                    result,
                })
                .get()
        };
        (get("ok"), get("error"))
    }

    /// Repairs so far: (complete, incomplete).
    pub(crate) fn repair_counts(&self) -> (u64, u64) {
        let get = |result| self.repairs.get_or_create(&ResultLabels { result }).get();
        (get("complete"), get("incomplete"))
    }

    /// Chunks offloaded so far.
    pub(crate) fn offload_count(&self) -> u64 {
        self.offloads.get()
    }
}

/// The first 12 hex digits of a node id, as logs show it.
pub(crate) fn short_node(node: &ifs_core::NodeId) -> String {
    match ifs_net::node_id_to_peer_id(node) {
        Ok(p) => p.to_string(),
        Err(_) => node.to_hex()[..12].to_string(),
    }
}

fn short_chunk(chunk: &ifs_core::ChunkId) -> String {
    let s = chunk.to_string();
    s.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_exposition_with_base_units_and_totals() {
        let t = Telemetry::new(Registry::default());
        t.chain_hop(0, 3, 1000, true);
        t.chain_hop(1, 3, 1000, true);
        t.chain_hop(2, 3, 1000, false);
        let text = t.encode_openmetrics();
        assert!(
            text.contains(r#"ifs_chunk_operations_total{op="store",result="ok"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"ifs_transfer_bytes_total{direction="in",class="client"} 1000"#));
        assert!(text.contains(r#"ifs_transfer_bytes_total{direction="out",class="chain"} 2000"#));
        assert!(text.contains(r#"ifs_errors_total{kind="store"} 1"#));
        let bw = t.bandwidth(crate::now_ms());
        assert_eq!((bw.hour_in_bytes, bw.hour_out_bytes), (2000, 2000));
    }

    #[test]
    fn queue_guards_count_jobs_until_they_end() {
        let t = Telemetry::new(Registry::default());
        let a = t.repair_queued();
        let b = t.repair_queued();
        assert_eq!(t.repair_queue.len(), 2);
        drop(a);
        assert_eq!(t.repair_queue.len(), 1);
        drop(b);
        assert_eq!(t.repair_queue.len(), 0);
    }

    #[test]
    fn a_failed_audit_is_an_event() {
        let t = Telemetry::new(Registry::default());
        t.audit(&ifs_core::NodeId([7; 32]), AuditOutcome::Fail);
        t.audit(&ifs_core::NodeId([7; 32]), AuditOutcome::Pass);
        assert_eq!(t.audit_counts(), (1, 1, 0));
        let ev = t.events_since(0, 10);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::AuditFailed);
    }
}
