//! [`NodeConfig`]: everything a node needs to start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ifs_core::keys::NodeKey;
use ifs_net::Multiaddr;
use ifs_store::{Cap, StoreConfig};

/// Configuration of one node service.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's identity.
    pub key: NodeKey,
    /// Where the node keeps its state (`node.addr`, the local table).
    pub data_dir: PathBuf,
    /// Volumes, caps and owner reserve.
    pub store: StoreConfig,
    /// Addresses to listen on (TCP and QUIC).
    pub listen: Vec<Multiaddr>,
    /// Peers to join through.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// Ask the home router for port mappings with UPnP.
    pub upnp: bool,
    /// Addresses to announce instead of the bound ones (e.g. behind NAT).
    pub announce: Vec<Multiaddr>,
    /// Time between two capacity reports.
    pub capacity_interval: Duration,
    /// Missed intervals before a node is suspect.
    pub suspect_after: u32,
    /// Missed intervals before a node is dead.
    pub dead_after: u32,
    /// Longest reservation the node grants.
    pub max_reservation_ttl: Duration,
    /// Per-user limits on reservations (share, open grants, lapse).
    pub quota: ifs_core::quota::QuotaPolicy,
    /// Time between two hop-count probes of each peer.
    pub hop_probe_interval: Duration,
    /// Time between two republications of the DHT records the node holds.
    pub republish_interval: Duration,
    /// Scrub, audit, repair and offload settings.
    pub durability: crate::DurabilityConfig,
    /// Start as a leaving node (the operator ran `ifsnode leave` before a
    /// restart): donate nothing and hand every chunk over.
    pub leaving: bool,
    /// Where operator donation changes are saved so they outlive a restart;
    /// `None` keeps them in memory only.
    pub donation_store: Option<Arc<dyn DonationStore>>,
    /// Upload cap on chunk traffic, bits per second (`None`: unlimited).
    pub bandwidth_up_bps: Option<u64>,
    /// Download cap on chunk traffic, bits per second (`None`: unlimited).
    pub bandwidth_down_bps: Option<u64>,
}

/// An operator's donation change, as saved across restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DonationChange {
    /// `ifsnode donate`: each volume's new cap; the node is not leaving.
    Caps(Vec<(PathBuf, Cap)>),
    /// `ifsnode leave`: the node is leaving; the volume caps are kept.
    Leave,
    /// `ifsnode bandwidth`: the new upload and download caps, bits per
    /// second (`None`: unlimited).
    Bandwidth {
        /// Upload cap.
        up_bps: Option<u64>,
        /// Download cap.
        down_bps: Option<u64>,
    },
}

/// Keeps operator donation changes across restarts (the `ifsnode` binary
/// writes them to `config.toml`).
pub trait DonationStore: Send + Sync {
    /// Save `change` durably. An error refuses the operator's command, so
    /// the running node never drifts from what a restart would apply.
    fn save(&self, change: &DonationChange) -> std::io::Result<()>;
}

impl NodeConfig {
    /// Defaults for everything but identity, data dir and volumes.
    pub fn new(key: NodeKey, data_dir: PathBuf, store: StoreConfig) -> Self {
        NodeConfig {
            key,
            data_dir,
            store,
            // QUIC on TCP port + 1: the UDP hop responder takes the TCP port number.
            listen: ["/ip4/0.0.0.0/tcp/4100", "/ip4/0.0.0.0/udp/4101/quic-v1"]
                .iter()
                .map(|a| a.parse().expect("valid multiaddr"))
                .collect(),
            bootstrap: Vec::new(),
            mdns: false,
            upnp: false,
            announce: Vec::new(),
            capacity_interval: Duration::from_secs(10),
            suspect_after: 3,
            dead_after: 10,
            max_reservation_ttl: Duration::from_secs(600),
            quota: ifs_core::quota::QuotaPolicy::default(),
            hop_probe_interval: Duration::from_secs(30),
            republish_interval: Duration::from_secs(600),
            durability: crate::DurabilityConfig::default(),
            leaving: false,
            donation_store: None,
            bandwidth_up_bps: None,
            bandwidth_down_bps: None,
        }
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("node", &self.key.node_id())
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("capacity_interval", &self.capacity_interval)
            .field("leaving", &self.leaving)
            .finish_non_exhaustive()
    }
}
