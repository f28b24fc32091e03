//! The state every task of a node shares: identity, swarm client, store,
//! node table and peer measurements. Locks are std mutexes held for
//! in-memory work only, never across an await.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ifs_core::NodeId;
use ifs_core::keys::NodeKey;
use ifs_core::node_table::{InsertOutcome, Liveness, NodeTable};
use ifs_core::proto::{NodeStatus, PeerRow};
use ifs_core::reach::Reach;
use ifs_core::wire::{CapacityReport, CapacityStats};
use ifs_net::{Acceptance, Client, MessageId, Multiaddr, NetError, PeerId};
use ifs_store::{MetaTable, StoreHandle};
use tracing::{debug, info, warn};

use crate::NodeConfig;
use crate::capacity::{next_seq, report_due};
use crate::metrics::MetricsTable;

use super::CAPACITY_TOPIC;

const SEQ_KEY: &[u8] = b"self/seq";
const TABLE_KEY: &[u8] = b"table";
/// Silence after which a node is dropped from the table.
const FORGET_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;

/// What a node's tasks share.
pub(crate) struct Shared {
    pub cfg: NodeConfig,
    pub key: NodeKey,
    pub node_id: NodeId,
    pub net: Client,
    pub store: StoreHandle,
    pub announce: Vec<Multiaddr>,
    pub started_ms: u64,
    pub table: Mutex<NodeTable>,
    pub metrics: Mutex<MetricsTable>,
    /// The figures of the last report sent and when.
    last_report: Mutex<Option<(CapacityStats, u64)>>,
    seq: Mutex<u64>,
    /// Streams being served right now (reported by the app probe).
    pub load: AtomicU32,
    /// Scrub, audit, repair and offload state.
    pub durability: super::durability::DurabilityState,
    /// Metrics, events and traffic history for the operator.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Serializes record read-merge-write cycles, so two copies of a record
    /// arriving at once cannot both merge into the same old local copy.
    /// Holds, by record key, the BLAKE3 of the local copy this node last
    /// validated or wrote: bytes on disk that still hash to it are not
    /// verified again signature by signature (bytes that changed are).
    pub record_merge: tokio::sync::Mutex<std::collections::HashMap<Vec<u8>, [u8; 32]>>,
    /// Open reservation grants, by user (quotas; see `ifs_core::quota`).
    pub grants: Mutex<ifs_core::quota::GrantLedger>,
    /// Serializes reservation admission with the store's grant.
    pub admitting: tokio::sync::Mutex<()>,
    /// Control requests per peer (token buckets).
    pub rate: Mutex<ifs_core::rate::RateLimiter<PeerId>>,
    /// The owner's bandwidth caps on chunk bytes.
    pub shaper: crate::shaper::Shaper,
    /// Nodes taken out of the DHT's routing table (dead, or not answering
    /// after their connection closed), and when.
    unrouted: Mutex<std::collections::HashMap<NodeId, u64>>,
    /// Nodes this node dialled itself at an address from their report (a
    /// listed node is alive only once reached; see `ifs_core::reach`).
    reach: Mutex<Reach>,
}

/// Most nodes dialled to check that they exist, per sweep round.
const REACH_DIALS_PER_ROUND: usize = 16;

/// How long a node whose connection closed gets to answer a redial.
const REDIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a node taken out of the routing table at `since` has issued no
/// report since (a late copy of its last report does not bring it back).
fn silent_since(report: &CapacityReport, since: u64) -> bool {
    report.issued_at_ms <= since
}

/// Lock a mutex, recovering the data if a task panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(
        cfg: NodeConfig,
        net: Client,
        store: StoreHandle,
        announce: Vec<Multiaddr>,
        now_ms: u64,
        telemetry: Arc<crate::telemetry::Telemetry>,
    ) -> Self {
        let key = cfg.key.clone();
        let durability = super::durability::DurabilityState::new(&cfg.durability);
        let shaper = crate::shaper::Shaper::new(cfg.bandwidth_up_bps, cfg.bandwidth_down_bps);
        let (up, down) = shaper.caps();
        telemetry.bandwidth_caps(up, down);
        Shared {
            shaper,
            node_id: key.node_id(),
            key,
            cfg,
            net,
            store,
            announce,
            started_ms: now_ms,
            table: Mutex::new(NodeTable::default()),
            metrics: Mutex::new(MetricsTable::default()),
            last_report: Mutex::new(None),
            seq: Mutex::new(0),
            load: AtomicU32::new(0),
            durability,
            telemetry,
            record_merge: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            grants: Mutex::new(ifs_core::quota::GrantLedger::new()),
            admitting: tokio::sync::Mutex::new(()),
            unrouted: Mutex::new(std::collections::HashMap::new()),
            reach: Mutex::new(Reach::new()),
            // Generous for a gateway's steady stream, tight for a flood.
            rate: Mutex::new(ifs_core::rate::RateLimiter::new(2000.0, 10_000.0, 16_384)),
        }
    }

    /// Wait for the caps to let `bytes` of chunk traffic of `class` move
    /// in `dir`, and count them.
    pub(crate) async fn meter(
        &self,
        dir: crate::shaper::Direction,
        class: ifs_core::bandwidth::Priority,
        bytes: u64,
    ) {
        if bytes == 0 {
            return;
        }
        loop {
            let ms = match self.shaper.request(dir, class, bytes) {
                ifs_core::bandwidth::Grant::Go => break,
                ifs_core::bandwidth::Grant::Empty(ms) => ms,
                ifs_core::bandwidth::Grant::Yield(ms) => {
                    // Counted as it happens, so a scrape sees a wait in progress.
                    self.telemetry.yielded(dir.label(), class);
                    ms
                }
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.telemetry.shaped(dir.label(), class, bytes);
    }

    fn interval_ms(&self) -> u64 {
        self.cfg.capacity_interval.as_millis() as u64
    }

    /// Restore the node table and the report sequence from the local table.
    pub async fn load_persisted(&self) {
        match self
            .store
            .meta_get(MetaTable::NodeTable, TABLE_KEY.to_vec())
            .await
        {
            Ok(Some(bytes)) => match NodeTable::decode(&bytes) {
                Ok(t) => {
                    info!(nodes = t.len(), "restored node table");
                    *lock(&self.table) = t;
                }
                Err(e) => warn!("ignoring corrupt persisted node table: {e}"),
            },
            Ok(None) => {}
            Err(e) => warn!("cannot read persisted node table: {e}"),
        }
        if let Ok(Some(bytes)) = self
            .store
            .meta_get(MetaTable::NodeTable, SEQ_KEY.to_vec())
            .await
            && let Ok(arr) = <[u8; 8]>::try_from(bytes.as_slice())
        {
            *lock(&self.seq) = u64::from_be_bytes(arr);
        }
    }

    /// Save the node table (called on a timer and at shutdown), first
    /// forgetting nodes silent for a week: they left, and a bounded table
    /// must make room for newcomers.
    pub async fn persist_table(&self) {
        let dropped = lock(&self.table).forget_silent(crate::now_ms(), FORGET_AFTER_MS);
        if dropped > 0 {
            info!(dropped, "forgot nodes silent for a week");
        }
        let bytes = lock(&self.table).encode();
        if let Err(e) = self
            .store
            .meta_put(MetaTable::NodeTable, TABLE_KEY.to_vec(), bytes)
            .await
        {
            warn!("cannot persist node table: {e}");
        }
    }

    /// Current figures of this node, from its store.
    pub async fn capacity_stats(&self, now_ms: u64) -> Option<CapacityStats> {
        let cap = match self.store.stats().await {
            Ok(c) => c,
            Err(e) => {
                warn!("cannot read store capacity: {e}");
                return None;
            }
        };
        // Unstarted grants past their protection are free to any other
        // user's request (see `ifs_core::quota`), so they count as free.
        let soft = lock(&self.grants)
            .soft_bytes(&self.cfg.quota, now_ms)
            .min(cap.reserved);
        Some(CapacityStats {
            donated_bytes: cap.donated,
            used_bytes: cap.used,
            reserved_bytes: cap.reserved - soft,
            free_bytes: cap.free.saturating_add(soft).min(cap.donated),
            owner_need_pct: cap.owner_need_pct.min(100),
            bandwidth_bps: self.shaper.caps().0.unwrap_or(0),
            bandwidth_down_bps: self.shaper.caps().1.unwrap_or(0),
            uptime_s: now_ms.saturating_sub(self.started_ms) / 1000,
        })
    }

    /// The addresses a capacity report gives: the announced ones, then the
    /// relay circuits that hold a slot for this node (a node behind NAT is
    /// dialled through them, and hole punching takes over).
    pub(crate) async fn report_addrs(&self) -> Vec<String> {
        let mut addrs: Vec<String> = self.announce.iter().map(|a| a.to_string()).collect();
        if let Ok(r) = self.net.reachability().await {
            for a in r.relays {
                if addrs.len() < ifs_core::wire::MAX_ADDRS
                    && a.len() <= ifs_core::wire::MAX_ADDR_LEN
                    && !addrs.contains(&a)
                {
                    addrs.push(a);
                }
            }
        }
        addrs
    }

    /// Publish a capacity report when one is due (interval or >1% change).
    pub async fn maybe_publish_report(&self, now_ms: u64) {
        let Some(stats) = self.capacity_stats(now_ms).await else {
            return;
        };
        let addrs = self.report_addrs().await;
        // A relay slot gained or lost changes how peers dial this node.
        let moved = lock(&self.table)
            .get(&self.node_id)
            .is_some_and(|e| e.report.addrs != addrs);
        let due = moved || {
            let last = lock(&self.last_report);
            match last.as_ref() {
                None => true,
                Some((s, at)) => report_due(
                    Some(s),
                    &stats,
                    now_ms.saturating_sub(*at),
                    self.interval_ms(),
                ),
            }
        };
        if !due {
            return;
        }
        let seq = {
            let mut seq = lock(&self.seq);
            *seq = next_seq(*seq, now_ms);
            *seq
        };
        let version = env!("CARGO_PKG_VERSION").to_string();
        let report = CapacityReport::new(&self.key, seq, addrs, stats, version, now_ms);
        if let Err(e) = lock(&self.table).insert(report.clone(), now_ms) {
            warn!("own capacity report rejected: {e}");
        }
        *lock(&self.last_report) = Some((stats, now_ms));
        let seq_bytes = seq.to_be_bytes().to_vec();
        if let Err(e) = self
            .store
            .meta_put(MetaTable::NodeTable, SEQ_KEY.to_vec(), seq_bytes)
            .await
        {
            warn!("cannot persist report sequence: {e}");
        }
        match self.net.publish(CAPACITY_TOPIC, report.encode()).await {
            Ok(_) => debug!(seq, "capacity report published"),
            Err(NetError::Publish(_)) => {
                debug!(seq, "capacity report not sent: no gossip peers yet")
            }
            Err(e) => warn!("cannot publish capacity report: {e}"),
        }
    }

    /// Validate a gossiped capacity report and merge it into the node table.
    pub async fn on_gossip(
        &self,
        topic: &str,
        source: PeerId,
        propagated_by: PeerId,
        id: MessageId,
        data: Vec<u8>,
        now_ms: u64,
    ) {
        let verdict = if topic != CAPACITY_TOPIC {
            warn!(%source, topic, "gossip on an unknown topic");
            Acceptance::Reject
        } else {
            self.accept_report(source, &data, now_ms)
        };
        if let Err(e) = self.net.report_validation(id, propagated_by, verdict).await {
            debug!("validation report not delivered: {e}");
        }
    }

    fn accept_report(&self, source: PeerId, data: &[u8], now_ms: u64) -> Acceptance {
        let report = match CapacityReport::decode(data).and_then(|r| r.verify().map(|_| r)) {
            Ok(r) => r,
            Err(e) => {
                warn!(%source, "rejected capacity report: {e}");
                return Acceptance::Reject;
            }
        };
        // The gossip author signs the envelope; the report must be its own.
        if ifs_net::peer_id_to_node_id(&source) != Some(report.node) {
            warn!(%source, node = %report.node, "rejected capacity report relayed as someone else's");
            return Acceptance::Reject;
        }
        match lock(&self.table).insert(report, now_ms) {
            Ok(InsertOutcome::Adopted) => Acceptance::Accept,
            // Stale or replayed: honest peers re-gossip old reports, so no penalty.
            Ok(InsertOutcome::Stale) => Acceptance::Ignore,
            Ok(InsertOutcome::Full) => {
                debug!(%source, "node table full: a new node's report is not kept");
                Acceptance::Ignore
            }
            Err(e) => {
                warn!(%source, "rejected capacity report: {e}");
                Acceptance::Reject
            }
        }
    }

    /// Full-table exchange with a node that just connected.
    pub async fn exchange_tables(&self, peer: PeerId, now_ms: u64) {
        use ifs_core::proto::{CtlRequest, CtlResponse, MAX_CTL_RESPONSE, decode, encode};
        let table = lock(&self.table).encode();
        let req = encode(&CtlRequest::TableExchange { table });
        let resp = match self.net.request(peer, req).await {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, "table exchange failed: {e}");
                return;
            }
        };
        match decode::<CtlResponse>(&resp, MAX_CTL_RESPONSE) {
            Ok(CtlResponse::Table { table }) => self.merge_table(peer, &table, now_ms),
            Ok(other) => warn!(%peer, "unexpected answer to a table exchange: {other:?}"),
            Err(e) => warn!(%peer, "malformed table exchange answer: {e}"),
        }
    }

    /// Merge a peer's encoded node table; invalid entries are dropped.
    pub fn merge_table(&self, peer: PeerId, bytes: &[u8], now_ms: u64) {
        match NodeTable::decode(bytes) {
            Ok(theirs) => {
                let added = lock(&self.table).absorb(&theirs, now_ms);
                debug!(%peer, added, "merged node table");
            }
            Err(e) => warn!(%peer, "rejected node table: {e}"),
        }
    }

    pub fn on_rtt(&self, peer: PeerId, rtt: Duration) {
        if let Some(node) = ifs_net::peer_id_to_node_id(&peer) {
            lock(&self.metrics).record_rtt(node, rtt);
        }
    }

    /// Start hop probes of alive nodes whose hop count is missing or old.
    pub fn probe_due_peers(self: Arc<Self>, now_ms: u64) {
        let max_age = self.cfg.hop_probe_interval.as_millis() as u64;
        let targets: Vec<(NodeId, SocketAddr)> = {
            let table = lock(&self.table);
            let metrics = lock(&self.metrics);
            table
                .iter()
                .map(|(_, e)| &e.report)
                .filter(|r| r.node != self.node_id)
                .filter(|r| self.liveness_in(&table, &r.node, now_ms) == Liveness::Alive)
                .filter(|r| metrics.hops_stale(&r.node, now_ms, max_age))
                .filter_map(|r| {
                    r.addrs
                        .iter()
                        .find_map(|a| probe_target(a))
                        .map(|t| (r.node, t))
                })
                .collect()
        };
        for (node, target) in targets {
            // Mark as measured now so a slow probe is not started twice.
            let s = self.clone();
            tokio::spawn(async move {
                match ifs_net::hops::probe_hops(target, Duration::from_secs(2)).await {
                    Ok(r) => {
                        let mut m = lock(&s.metrics);
                        m.record_hops(node, r.hops, now_ms);
                        m.record_rtt(node, r.rtt);
                    }
                    Err(e) => debug!(%node, %target, "hop probe failed: {e}"),
                }
            });
        }
    }

    /// Liveness of `node`: from its reports, and `Unverified` while its
    /// reports say alive but this node has not reached it itself.
    pub(crate) fn liveness_in(&self, table: &NodeTable, node: &NodeId, now_ms: u64) -> Liveness {
        if *node == self.node_id {
            return Liveness::Alive;
        }
        match table.state(
            node,
            now_ms,
            self.interval_ms(),
            self.cfg.suspect_after,
            self.cfg.dead_after,
        ) {
            Liveness::Alive if !lock(&self.reach).is_reached(node, now_ms) => Liveness::Unverified,
            state => state,
        }
    }

    /// Dial a few listed nodes that this node has not reached yet (or not
    /// for a while) at the addresses their reports give, on a fresh
    /// connection: a node made up by someone else's table or gossip stays
    /// unverified, and is neither offered for placement nor audited.
    pub async fn check_reach(self: &Arc<Self>, now_ms: u64) {
        let due: Vec<(NodeId, Vec<Multiaddr>)> = {
            let table = lock(&self.table);
            let mut reach = lock(&self.reach);
            reach.retain(|n| table.get(n).is_some());
            // Only nodes whose reports say alive are worth a dial.
            let listed = table
                .iter()
                .filter(|(n, _)| **n != self.node_id)
                .filter(|(n, _)| {
                    table.state(
                        n,
                        now_ms,
                        self.interval_ms(),
                        self.cfg.suspect_after,
                        self.cfg.dead_after,
                    ) == Liveness::Alive
                })
                .map(|(n, _)| *n)
                .collect::<Vec<_>>();
            reach
                .due(listed, now_ms, REACH_DIALS_PER_ROUND)
                .into_iter()
                .map(|n| {
                    let addrs = table
                        .get(&n)
                        .map(|e| dialable_addrs(&e.report, &n))
                        .unwrap_or_default();
                    (n, addrs)
                })
                .collect()
        };
        for (node, addrs) in due {
            let s = self.clone();
            tokio::spawn(async move {
                let mut ok = false;
                for addr in addrs {
                    let dial = s.net.dial_fresh(addr.clone());
                    match tokio::time::timeout(REDIAL_TIMEOUT, dial).await {
                        Ok(Ok(_)) => {
                            ok = true;
                            break;
                        }
                        Ok(Err(e)) => debug!(%node, %addr, "reach check failed: {e}"),
                        Err(_) => debug!(%node, %addr, "reach check timed out"),
                    }
                }
                let now = crate::now_ms();
                let mut reach = lock(&s.reach);
                if ok {
                    reach.reached(node, now);
                } else {
                    reach.failed(node, now);
                }
            });
        }
    }

    /// Dial the bootstrap peers again while this node knows no other node:
    /// a seed that was not up yet when this node started must not leave it
    /// alone for good.
    pub async fn rejoin_if_alone(&self) {
        if self.cfg.bootstrap.is_empty() {
            return;
        }
        let connected = self.net.connected_peers().await.unwrap_or_default();
        let knows_others = lock(&self.table).len() > 1;
        if knows_others && !connected.is_empty() {
            return;
        }
        info!("no other node in sight: dialing the bootstrap peers again");
        for addr in &self.cfg.bootstrap {
            if let Err(e) = self.net.dial(addr.clone()).await {
                debug!(%addr, "bootstrap dial failed: {e}");
            }
        }
        let _ = self.net.bootstrap().await;
    }

    /// Release expired reservations.
    pub async fn sweep(&self, now_ms: u64) {
        self.end_lapsed_grants(now_ms).await;
        match self.store.sweep_expired(now_ms).await {
            Ok(0) => {}
            Ok(n) => info!(bytes = n, "released expired reservations"),
            Err(e) => warn!("reservation sweep failed: {e}"),
        }
    }

    /// Keep dead nodes out of the DHT's routing table, and put them back
    /// once they report again: every DHT query (a client's record get or put
    /// through this node) would otherwise wait for a dial of each dead node
    /// to time out.
    pub async fn route_around_dead(&self, now_ms: u64) {
        let (gone, back) = {
            let table = lock(&self.table);
            let mut unrouted = lock(&self.unrouted);
            unrouted.retain(|n, _| table.get(n).is_some());
            let (mut gone, mut back) = (Vec::new(), Vec::new());
            for (node, e) in table.iter() {
                let dead = self.liveness_in(&table, node, now_ms) == Liveness::Dead;
                match unrouted.get(node) {
                    None if dead => {
                        unrouted.insert(*node, now_ms);
                        gone.push(*node);
                    }
                    Some(&since) if !dead && !silent_since(&e.report, since) => {
                        unrouted.remove(node);
                        back.push(*node);
                    }
                    _ => {}
                }
            }
            (gone, back)
        };
        for node in gone {
            if let Ok(peer) = ifs_net::node_id_to_peer_id(&node) {
                debug!(%peer, "dead: out of the DHT routing table");
                let _ = self.net.remove_peer(peer).await;
            }
        }
        for node in back {
            if let Ok(peer) = ifs_net::node_id_to_peer_id(&node) {
                debug!(%peer, "alive again: back in the DHT routing table");
                self.dial_known(peer, &node).await;
            }
        }
    }

    /// A connection to `peer` is up: whatever it was, it answers now (and
    /// identify puts it back in the routing table).
    pub fn on_connected(&self, peer: PeerId) {
        if let Some(node) = ifs_net::peer_id_to_node_id(&peer) {
            lock(&self.unrouted).remove(&node);
        }
    }

    /// The last connection to `peer` closed. A node that was killed stays
    /// "alive" in the table until it misses enough reports, and meanwhile
    /// every DHT query would wait on a dial of it: redial it now, off any
    /// user's request, and take it out of the routing table if it does not
    /// answer (it comes back when it reports again, see
    /// [`Self::route_around_dead`]).
    pub async fn check_disconnected(&self, peer: PeerId) {
        let Some(node) = ifs_net::peer_id_to_node_id(&peer) else {
            return;
        };
        let addrs: Vec<Multiaddr> = match lock(&self.table).get(&node) {
            Some(e) if node != self.node_id => e
                .report
                .addrs
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            _ => return, // a client, or a node this one does not know
        };
        // TCP answers or refuses at once; a QUIC dial of a dead address
        // only times out. The TCP addresses decide when there are any.
        let is_tcp = |a: &Multiaddr| a.iter().any(|p| matches!(p, multiaddr::Protocol::Tcp(_)));
        let tcp: Vec<Multiaddr> = addrs.iter().filter(|a| is_tcp(a)).cloned().collect();
        let tried = if tcp.is_empty() { addrs } else { tcp };
        let since = crate::now_ms();
        for addr in tried {
            let dial = self.net.dial(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(REDIAL_TIMEOUT, dial).await {
                // Its last connection was closed: this one is fresh.
                lock(&self.reach).reached(node, crate::now_ms());
                return;
            }
        }
        debug!(%peer, "does not answer since its connection closed: out of the DHT routing table");
        lock(&self.unrouted).entry(node).or_insert(since);
        let _ = self.net.remove_peer(peer).await;
    }

    /// Every known node as a row of `ifsnode peers`.
    pub fn peer_rows(&self, now_ms: u64) -> Vec<PeerRow> {
        let table = lock(&self.table);
        let metrics = lock(&self.metrics);
        let unrouted = lock(&self.unrouted);
        let mut rows: Vec<PeerRow> = table
            .iter()
            .map(|(_, e)| {
                let (report, heard_ms) = (&e.report, e.last_heard_ms);
                let m = metrics.get(&report.node);
                let is_self = report.node == self.node_id;
                // Its connection closed and a redial failed; not heard since.
                let unreachable = unrouted
                    .get(&report.node)
                    .is_some_and(|&since| silent_since(report, since));
                let state = match self.liveness_in(&table, &report.node, now_ms) {
                    Liveness::Alive if unreachable => "unreachable",
                    Liveness::Alive => "alive",
                    Liveness::Unverified => "unverified",
                    Liveness::Suspect => "suspect",
                    Liveness::Dead => "dead",
                };
                PeerRow {
                    peer_id: ifs_net::node_id_to_peer_id(&report.node)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|_| report.node.to_hex()),
                    state: state.to_string(),
                    addrs: report.addrs.clone(),
                    donated_bytes: report.donated_bytes,
                    used_bytes: report.used_bytes,
                    reserved_bytes: report.reserved_bytes,
                    free_bytes: report.free_bytes,
                    owner_need_pct: report.owner_need_pct,
                    rtt_ms: if is_self { Some(0.0) } else { m.rtt_ms },
                    hops: if is_self { Some(0) } else { m.hops },
                    report_age_s: now_ms.saturating_sub(heard_ms) / 1000,
                    seq: report.seq,
                    reputation: self.reputation_of(&report.node),
                    is_self,
                    up_bps: report.bandwidth_bps,
                    down_bps: report.bandwidth_down_bps.unwrap_or(0),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.is_self.cmp(&a.is_self).then(a.peer_id.cmp(&b.peer_id)));
        rows
    }

    /// This node's status.
    pub async fn status(&self, now_ms: u64) -> NodeStatus {
        let rows = self.peer_rows(now_ms);
        let alive = rows
            .iter()
            .filter(|r| !r.is_self && r.state == "alive")
            .count() as u32;
        let node = match rows.iter().find(|r| r.is_self) {
            Some(r) => r.clone(),
            None => self.self_row(now_ms).await,
        };
        let connected = self.connected_nodes().await;
        let chunks = self.store.list_chunks().await.map(|c| c.len()).unwrap_or(0) as u64;
        let quarantined_bytes = self
            .store
            .stats()
            .await
            .map(|c| c.quarantined_bytes)
            .unwrap_or(0);
        NodeStatus {
            awaiting_collection_bytes: self
                .durability
                .awaiting_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            quarantined_bytes,
            node,
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: now_ms.saturating_sub(self.started_ms) / 1000,
            alive_peers: alive,
            connected_peers: connected,
            chunks,
            bandwidth: self.bandwidth_caps(),
            reachability: self.net.reachability().await.ok().map(Box::new),
        }
    }

    /// Open connections to nodes of the node table (clients, this
    /// command's own connection among them, are not nodes).
    pub(crate) async fn connected_nodes(&self) -> u32 {
        let peers = self.net.connected_peers().await.unwrap_or_default();
        let table = lock(&self.table);
        peers
            .iter()
            .filter_map(ifs_net::peer_id_to_node_id)
            .filter(|n| table.get(n).is_some())
            .count() as u32
    }

    async fn self_row(&self, now_ms: u64) -> PeerRow {
        let s = self.capacity_stats(now_ms).await.unwrap_or_default();
        PeerRow {
            peer_id: self.net.local_peer_id().to_string(),
            state: "alive".into(),
            addrs: self.announce.iter().map(|a| a.to_string()).collect(),
            donated_bytes: s.donated_bytes,
            used_bytes: s.used_bytes,
            reserved_bytes: s.reserved_bytes,
            free_bytes: s.free_bytes,
            owner_need_pct: s.owner_need_pct,
            rtt_ms: Some(0.0),
            hops: Some(0),
            report_age_s: 0,
            seq: *lock(&self.seq),
            reputation: 1.0,
            is_self: true,
            up_bps: s.bandwidth_bps,
            down_bps: s.bandwidth_down_bps,
        }
    }

    /// Count a stream being served, for the load figure of probes.
    pub fn load_guard(self: &Arc<Self>) -> LoadGuard {
        self.load.fetch_add(1, Ordering::Relaxed);
        LoadGuard(self.clone())
    }
}

/// Decrements the load figure when dropped.
pub(crate) struct LoadGuard(Arc<Shared>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.load.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The addresses of `report` a reach check may dial: parsed, with `/p2p/`
/// naming the report's node (so the handshake must prove its key), TCP
/// first (a dead TCP address refuses at once; QUIC only times out).
fn dialable_addrs(report: &CapacityReport, node: &NodeId) -> Vec<Multiaddr> {
    let Ok(peer) = ifs_net::node_id_to_peer_id(node) else {
        return Vec::new();
    };
    let mut addrs: Vec<Multiaddr> = report
        .addrs
        .iter()
        .take(8)
        .filter_map(|a| a.parse::<Multiaddr>().ok())
        .filter_map(|a| match a.iter().last() {
            Some(multiaddr::Protocol::P2p(p)) if p == peer => Some(a),
            Some(multiaddr::Protocol::P2p(_)) => None,
            _ => Some(a.with(multiaddr::Protocol::P2p(peer))),
        })
        .collect();
    let is_tcp = |a: &Multiaddr| a.iter().any(|p| matches!(p, multiaddr::Protocol::Tcp(_)));
    addrs.sort_by_key(|a| !is_tcp(a));
    addrs
}

/// The UDP hop-probe target of a node address: its IP and TCP port number.
fn probe_target(addr: &str) -> Option<SocketAddr> {
    let ma: Multiaddr = addr.parse().ok()?;
    let mut ip: Option<IpAddr> = None;
    let mut port = None;
    for p in ma.iter() {
        match p {
            multiaddr::Protocol::Ip4(a) => ip = Some(a.into()),
            multiaddr::Protocol::Ip6(a) => ip = Some(a.into()),
            multiaddr::Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let ip = ip?;
    if ip.is_unspecified() {
        return None;
    }
    Some(SocketAddr::new(ip, port?))
}

#[cfg(test)]
mod tests {
    use super::probe_target;

    #[test]
    fn probe_targets_come_from_tcp_addresses() {
        let t = probe_target(
            "/ip4/10.1.0.5/tcp/4100/p2p/12D3KooWGzRb1sxd3jN8h6Y1w6gZ9q9m6QJn1T3tEwqXyqRkQZsp",
        );
        assert_eq!(t, Some("10.1.0.5:4100".parse().unwrap()));
        assert_eq!(probe_target("/ip4/0.0.0.0/tcp/4100"), None);
        assert_eq!(probe_target("/ip4/10.1.0.5/udp/4101/quic-v1"), None);
        assert_eq!(probe_target("garbage"), None);
    }
}
