//! [`NetConfig`]: everything the swarm task needs to start.

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;

/// Configuration of one libp2p swarm.
///
/// Start from [`NetConfig::default`] (a fresh random key, listening on all
/// IPv4 interfaces over TCP and QUIC on ephemeral ports) and override fields.
///
/// The UDP hop responder ([`crate::hops::HopResponder`]) answers on the node's
/// *TCP* listen port number, so give QUIC a different UDP port than that
/// number (or port 0) or the two will collide.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The node's identity; its `PeerId` is derived from it.
    pub keypair: Keypair,
    /// Addresses to listen on. An ephemeral client listens too (on one
    /// TCP port), only so that its dials leave from that port: behind NAT,
    /// hole punching needs a source port that stays the same.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start; a `/p2p/<peer id>` suffix lets them join the
    /// Kademlia routing table at once.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// A short-lived CLI client: one TCP listener (see `listen`), Kademlia client mode, serves no
    /// requests and no bulk streams, and is subscribed to no gossip topic.
    pub ephemeral: bool,
    /// How long a connection with no open stream is kept before closing.
    pub idle_timeout: Duration,
    /// Cap on one `/ifs/ctl/1` request, both the ones we send and accept.
    pub max_request_bytes: usize,
    /// Cap on one `/ifs/ctl/1` response, both the ones we send and accept.
    pub max_response_bytes: usize,
    /// Cap on one Kademlia record value (the Kademlia packet cap follows it).
    pub max_record_bytes: usize,
    /// Cap on the number of records in the local Kademlia store.
    pub max_records: usize,
    /// Cap on one gossip message.
    pub max_gossip_bytes: usize,
    /// Time allowed for one request/response round trip.
    pub request_timeout: Duration,
    /// Time allowed for one Kademlia query.
    pub query_timeout: Duration,
    /// Longest time allowed to open a bulk stream (dial + protocol
    /// negotiation): the limit for a peer with no measured round trip, which
    /// may need a dial first.
    pub stream_open_timeout: Duration,
    /// Shortest time allowed to open a bulk stream on a connection with a
    /// measured round trip; see [`crate::stream_open_deadline`].
    pub stream_open_min: Duration,
    /// Interval between pings on each connection (RTT samples).
    pub ping_interval: Duration,
    /// Gossipsub heartbeat interval.
    pub gossip_heartbeat: Duration,
    /// Capacity of the [`crate::NetEvent`] channel. When it is full, new events
    /// are dropped with a warning rather than stalling the swarm.
    pub event_buffer: usize,
    /// Capacity of the command channel from [`crate::Client`]s to the swarm task.
    pub command_buffer: usize,
    /// The agent version sent in identify.
    pub agent_version: String,
    /// Ask the home router for a port mapping with UPnP (full nodes only).
    /// Off by default here: UPnP multicasts on the local network.
    pub upnp: bool,
}

impl NetConfig {
    /// A default config that listens on `listen` only, e.g. loopback in tests.
    pub fn listening_on(listen: Vec<Multiaddr>) -> Self {
        Self {
            listen,
            ..Self::default()
        }
    }

    /// A default config for a short-lived CLI client.
    pub fn ephemeral() -> Self {
        Self {
            listen: ["/ip4/0.0.0.0/tcp/0"]
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            ephemeral: true,
            idle_timeout: Duration::from_secs(10),
            ..Self::default()
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        let listen = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        Self {
            keypair: Keypair::generate_ed25519(),
            listen,
            bootstrap: Vec::new(),
            mdns: false,
            ephemeral: false,
            idle_timeout: Duration::from_secs(60),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            max_record_bytes: 2 * 1024 * 1024,
            max_records: 65_536,
            max_gossip_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(30),
            stream_open_timeout: Duration::from_secs(20),
            stream_open_min: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            gossip_heartbeat: Duration::from_secs(1),
            event_buffer: 1024,
            command_buffer: 256,
            agent_version: format!("ifs/{}", env!("CARGO_PKG_VERSION")),
            upnp: false,
        }
    }
}
