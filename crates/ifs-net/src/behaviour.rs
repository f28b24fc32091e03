//! The composed libp2p behaviour and the swarm builder: transports, protocol
//! names and every size cap in one place.

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, behaviour::toggle::Toggle};
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, autonat, dcutr, gossipsub, identify, kad, mdns, noise,
    ping, relay, tcp, upnp, yamux,
};

use crate::config::NetConfig;
use crate::error::NetError;
use crate::event::Frame;

/// Kademlia protocol name: IFS runs its own DHT, apart from the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ifs/kad/1.0.0");
/// Request/response protocol for control messages (opaque CBOR byte strings).
pub const CTL_PROTOCOL: StreamProtocol = StreamProtocol::new("/ifs/ctl/1");
/// Bulk stream protocol for chunk transfer.
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/ifs/chunk/1");
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/ifs/1.0.0";

/// Bytes a CBOR byte-string header adds to a frame (at most 9), rounded up.
pub(crate) const FRAME_OVERHEAD: usize = 16;
/// Room for the Kademlia message around a record value (key, publisher, peers).
const KAD_PACKET_OVERHEAD: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) gossip: gossipsub::Behaviour,
    pub(crate) ctl: cbor::Behaviour<Frame, Frame>,
    pub(crate) stream: crate::direct_streams::DirectStreams,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) addresses: crate::address_book::AddressBook,
    /// Reservations and circuits through relays, for a node behind NAT.
    pub(crate) relay_client: relay::client::Behaviour,
    /// Upgrades a relayed connection to a direct one (hole punching).
    pub(crate) dcutr: dcutr::Behaviour,
    /// Serves relay slots to nodes behind NAT (full nodes only).
    pub(crate) relay: Toggle<relay::Behaviour>,
    /// Asks peers to dial our address candidates back (full nodes only).
    pub(crate) autonat_client: Toggle<autonat::v2::client::Behaviour>,
    /// Dials peers' candidates back when they ask (full nodes only).
    pub(crate) autonat_server: Toggle<autonat::v2::server::Behaviour>,
    /// Asks the home router for a port mapping (`net.upnp`).
    pub(crate) upnp: Toggle<upnp::tokio::Behaviour>,
}

/// Build the swarm (TCP + Noise + Yamux, QUIC, DNS) with all behaviours;
/// transport byte counters go into `registry`.
pub(crate) fn build_swarm(
    cfg: &NetConfig,
    registry: &mut libp2p::metrics::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let build = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| build(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay_client| make_behaviour(key, relay_client, cfg))
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_timeout))
        .build();
    Ok(swarm)
}

fn make_behaviour(
    key: &libp2p::identity::Keypair,
    relay_client: relay::client::Behaviour,
    cfg: &NetConfig,
) -> Result<Behaviour, BoxError> {
    let peer_id = key.public().to_peer_id();

    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(cfg.agent_version.clone()),
    );

    let ping = ping::Behaviour::new(ping::Config::new().with_interval(cfg.ping_interval));

    let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
    // Inbound records go to the node, which validates and merges them (CRDTs).
    kad_cfg.set_record_filtering(kad::StoreInserts::FilterBoth);
    kad_cfg.set_max_packet_size(cfg.max_record_bytes + KAD_PACKET_OVERHEAD);
    kad_cfg.set_query_timeout(cfg.query_timeout);
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: cfg.max_records,
            // MemoryStore refuses values with `len >= max_value_bytes`.
            max_value_bytes: cfg.max_record_bytes + 1,
            ..MemoryStoreConfig::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_cfg);
    // Loopback and LAN nodes never get a confirmed public address, so the
    // automatic mode would leave every node a client: pin the mode instead,
    // and let the swarm task switch it when reachability says the node sits
    // behind NAT (see `crate::reachability`).
    kad.set_mode(Some(if cfg.ephemeral {
        kad::Mode::Client
    } else {
        kad::Mode::Server
    }));

    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(cfg.gossip_heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(cfg.max_gossip_bytes)
        .build()?;
    let gossip = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_cfg,
    )
    .map_err(BoxError::from)?;

    let codec = cbor::codec::Codec::<Frame, Frame>::default()
        .set_request_size_maximum((cfg.max_request_bytes + FRAME_OVERHEAD) as u64)
        .set_response_size_maximum((cfg.max_response_bytes + FRAME_OVERHEAD) as u64);
    let support = if cfg.ephemeral {
        ProtocolSupport::Outbound
    } else {
        ProtocolSupport::Full
    };
    let ctl = request_response::Behaviour::with_codec(
        codec,
        [(CTL_PROTOCOL, support)],
        request_response::Config::default().with_request_timeout(cfg.request_timeout),
    );

    let mdns = if cfg.mdns && !cfg.ephemeral {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?)
    } else {
        None
    };

    let full = !cfg.ephemeral;
    let upnp = (full && cfg.upnp).then(upnp::tokio::Behaviour::default);

    Ok(Behaviour {
        identify,
        ping,
        kad,
        gossip,
        ctl,
        stream: crate::direct_streams::DirectStreams::new(),
        mdns: mdns.into(),
        addresses: Default::default(),
        relay_client,
        dcutr: dcutr::Behaviour::new(peer_id),
        relay: full
            .then(|| relay::Behaviour::new(peer_id, relay::Config::default()))
            .into(),
        autonat_client: full
            .then(|| {
                autonat::v2::client::Behaviour::new(
                    rand::make_rng::<rand::rngs::StdRng>(),
                    autonat::v2::client::Config::default(),
                )
            })
            .into(),
        autonat_server: full.then(autonat::v2::server::Behaviour::default).into(),
        upnp: upnp.into(),
    })
}
