//! [`Node::spawn`] wires the store, the swarm and the service tasks together;
//! [`NodeHandle`] is what the binary and tests hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use ifs_core::proto::{NodeStatus, PeerRow};
use ifs_net::{Multiaddr, NetConfig, PeerId};
use ifs_store::StoreHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::NodeError;
use crate::service::{self, Shared};
use crate::telemetry::Telemetry;
use crate::telemetry::events::Event;
use crate::telemetry::exposition::openmetrics_to_text;
use crate::telemetry::view::{BandwidthView, Overview};
use crate::{NodeConfig, now_ms};

/// File in the data dir holding the node's dialable address.
pub const ADDR_FILE: &str = "node.addr";

/// The agent version nodes announce; clients announce something else, so a
/// node exchanges tables only with nodes.
pub fn node_agent() -> String {
    format!("ifsnode/{}", env!("CARGO_PKG_VERSION"))
}

/// The node service entry point.
pub struct Node;

impl Node {
    /// Open the store, start the swarm and the service; returns once the node
    /// listens and `DIR/node.addr` is written.
    pub async fn spawn(cfg: NodeConfig) -> Result<NodeHandle, NodeError> {
        let store = StoreHandle::open(cfg.store.clone()).await?;
        let mut net_cfg = NetConfig::listening_on(cfg.listen.clone());
        net_cfg.keypair = ifs_net::keypair_from_ed25519_secret(cfg.key.to_bytes());
        net_cfg.bootstrap = cfg.bootstrap.clone();
        net_cfg.mdns = cfg.mdns;
        net_cfg.upnp = cfg.upnp;
        net_cfg.agent_version = node_agent();
        let mut registry = ifs_net::Registry::default();
        let (net, events) = ifs_net::spawn_with_metrics(net_cfg, &mut registry).await?;
        let telemetry = Arc::new(Telemetry::new(registry));
        let listen = all_listen_addrs(&net, &cfg.listen).await?;

        let hop_ports: Vec<u16> = listen.iter().filter_map(service::tcp_port).collect();
        // Without its responder a node still stores and serves; peers just
        // see no hop count for it, so a taken UDP port is not fatal.
        let responder = hop_ports.first().and_then(|port| {
            ifs_net::hops::HopResponder::bind_on(&hop_ips(&cfg.listen), *port)
                .map_err(|e| tracing::warn!("no hop-count responder on UDP {port}: {e}"))
                .ok()
        });

        let announce = if cfg.announce.is_empty() {
            listen.clone()
        } else {
            cfg.announce.clone()
        };
        write_addr_file(&cfg.data_dir, &announce)?;

        let shared = Arc::new(Shared::new(cfg, net, store, announce, now_ms(), telemetry));
        shared.load_persisted().await;
        shared.restore_records().await;
        shared.load_reputation().await;
        shared.resume_leaving().await;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(service::watch(shared.clone(), stop_rx.clone()));
        let task = tokio::spawn(service::run(shared.clone(), events, stop_rx, responder));
        Ok(NodeHandle {
            shared,
            stop: stop_tx,
            task: Some(task),
            started: Instant::now(),
        })
    }
}

/// The bound addresses once every configured listener is up (or after a
/// short wait): `listen_addrs` returns with the first one, and a QUIC
/// address missing here would be missing from every capacity report.
async fn all_listen_addrs(
    net: &ifs_net::Client,
    configured: &[Multiaddr],
) -> Result<Vec<Multiaddr>, NodeError> {
    let is_quic = |a: &Multiaddr| a.iter().any(|p| matches!(p, multiaddr::Protocol::QuicV1));
    let want_quic = configured.iter().any(is_quic);
    let want_tcp = configured.iter().any(|a| service::tcp_port(a).is_some());
    let mut listen = net.listen_addrs().await?;
    for _ in 0..40 {
        let has_quic = listen.iter().any(is_quic);
        let has_tcp = listen.iter().any(|a| service::tcp_port(a).is_some());
        if (has_quic || !want_quic) && (has_tcp || !want_tcp) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        listen = net.listen_addrs().await?;
    }
    Ok(listen)
}

/// The IPs the hop responder answers on: those the node's TCP listeners
/// are configured on (an unspecified IP covers its family, so the specific
/// ones of that family are dropped); every interface when none is an IP.
fn hop_ips(listen: &[Multiaddr]) -> Vec<IpAddr> {
    use multiaddr::Protocol;
    let mut ips: Vec<IpAddr> = listen
        .iter()
        .filter(|a| service::tcp_port(a).is_some())
        .filter_map(|a| {
            a.iter().find_map(|p| match p {
                Protocol::Ip4(ip) => Some(IpAddr::from(ip)),
                Protocol::Ip6(ip) => Some(IpAddr::from(ip)),
                _ => None,
            })
        })
        .collect();
    if ips.is_empty() {
        return vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()];
    }
    let wildcard: Vec<bool> = [false, true]
        .iter()
        .map(|&v6| {
            ips.iter()
                .any(|ip| ip.is_unspecified() && ip.is_ipv6() == v6)
        })
        .collect();
    ips.retain(|ip| ip.is_unspecified() || !wildcard[usize::from(ip.is_ipv6())]);
    ips.sort();
    ips.dedup();
    ips
}

fn write_addr_file(dir: &std::path::Path, addrs: &[Multiaddr]) -> Result<(), NodeError> {
    // Prefer a routable address over loopback/unspecified for other processes.
    let best = addrs
        .iter()
        .find(|a| !a.to_string().contains("/ip4/0.0.0.0/") && a.to_string().contains("/tcp/"))
        .or_else(|| addrs.first());
    let path = dir.join(ADDR_FILE);
    let text = best.map(|a| format!("{a}\n")).unwrap_or_default();
    let tmp = dir.join(format!(".{ADDR_FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|source| NodeError::Io { path, source })
}

/// A running node.
pub struct NodeHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    started: Instant,
}

impl NodeHandle {
    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.net.local_peer_id()
    }

    /// The node's id.
    pub fn node_id(&self) -> ifs_core::NodeId {
        self.shared.node_id
    }

    /// Dialable addresses (with `/p2p/`).
    pub fn addrs(&self) -> Vec<Multiaddr> {
        self.shared.announce.clone()
    }

    /// The node's view of every known node.
    pub fn peers(&self) -> Vec<PeerRow> {
        self.shared.peer_rows(now_ms())
    }

    /// The node's own status.
    pub async fn status(&self) -> NodeStatus {
        self.shared.status(now_ms()).await
    }

    /// The network client (for tests and in-process tools).
    pub fn net(&self) -> &ifs_net::Client {
        &self.shared.net
    }

    /// Validate `value`, merge it with the local copy of `key` and publish
    /// the merge in the DHT (what `CtlRequest::PutRecord` does).
    pub async fn put_record(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), ifs_core::proto::CtlError> {
        self.shared.put_record(key, value).await
    }

    /// Every copy of `key` in the DHT, validated and merged with the local
    /// one (what `CtlRequest::GetRecord` does).
    pub async fn get_record(
        &self,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, ifs_core::proto::CtlError> {
        self.shared.get_record(key).await
    }

    /// Put every record the node holds back into the DHT now.
    pub async fn republish_records(&self) {
        self.shared.republish_records().await
    }

    /// Publish a capacity report now if one is due.
    pub async fn report_capacity(&self) {
        self.shared.maybe_publish_report(now_ms()).await
    }

    /// The node table as `node → seq of its newest report` (for comparing
    /// two nodes' views; local receive times left out).
    pub fn table_seqs(&self) -> std::collections::BTreeMap<ifs_core::NodeId, u64> {
        service::lock(&self.shared.table)
            .iter()
            .map(|(_, e)| (e.report.node, e.report.seq))
            .collect()
    }

    /// A read-only view of the node for its operator (admin endpoint).
    pub fn observer(&self) -> NodeObserver {
        NodeObserver {
            shared: self.shared.clone(),
        }
    }

    /// The local store.
    pub fn store(&self) -> &StoreHandle {
        &self.shared.store
    }

    /// How long the node has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Stop the service, persist state, close the swarm and the store.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.shared.persist_table().await;
        self.shared.net.shutdown().await;
        self.shared.store.shutdown().await;
    }

    /// Wait until the service stops on its own (it does not, unless the
    /// swarm dies).
    pub async fn wait(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
        }
        self.task = None;
    }
}

/// A cheap, cloneable, read-only view of a running node: what its admin
/// endpoint serves. It outlives nothing: once the node stops, its figures
/// stop moving.
#[derive(Clone)]
pub struct NodeObserver {
    shared: Arc<Shared>,
}

impl NodeObserver {
    /// The node's view of every known node.
    pub fn peers(&self) -> Vec<PeerRow> {
        self.shared.peer_rows(now_ms())
    }

    /// This node at a glance, as the admin API shows it.
    pub async fn overview(&self) -> Overview {
        self.shared.overview(now_ms()).await
    }

    /// Every metric, libp2p's and the node's: OpenMetrics text when
    /// `openmetrics`, else the Prometheus text format.
    pub async fn metrics_text(&self, openmetrics: bool) -> String {
        self.shared.refresh_gauges(now_ms()).await;
        let om = self.shared.telemetry.encode_openmetrics();
        if openmetrics {
            om
        } else {
            openmetrics_to_text(&om)
        }
    }

    /// Events after `seq`, newest first, at most `limit`.
    pub fn events_since(&self, seq: u64, limit: usize) -> Vec<Event> {
        self.shared.telemetry.events_since(seq, limit)
    }

    /// Bytes in and out per minute over the last hour and per quarter hour
    /// over the last day.
    pub fn bandwidth(&self) -> BandwidthView {
        self.shared.telemetry.bandwidth(now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn the_hop_responder_answers_where_the_node_listens() {
        let loopback = addrs(&["/ip4/127.0.0.1/tcp/4100", "/ip4/127.0.0.1/udp/4101/quic-v1"]);
        assert_eq!(hop_ips(&loopback), [IpAddr::from(Ipv4Addr::LOCALHOST)]);
        let everywhere = addrs(&["/ip4/0.0.0.0/tcp/4100", "/ip4/10.0.0.5/tcp/4100"]);
        assert_eq!(hop_ips(&everywhere), [IpAddr::from(Ipv4Addr::UNSPECIFIED)]);
        let both = addrs(&["/ip4/10.0.0.5/tcp/4100", "/ip6/::1/tcp/4100"]);
        assert_eq!(
            hop_ips(&both),
            [
                IpAddr::from([10, 0, 0, 5]),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(hop_ips(&addrs(&["/dns4/example.org/tcp/4100"])).len(), 2);
    }
}
