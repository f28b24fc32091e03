//! The swarm task: one task owns the [`Swarm`] and `select!`s over swarm
//! events, client commands and inbound bulk streams. Handling of swarm events
//! lives in `swarm_events.rs`.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use libp2p::kad::{self, QueryId, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::{ConnectionId, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::behaviour::{Behaviour, CHUNK_PROTOCOL, build_swarm};
use crate::client::{Client, Command, FoundRecord, Limits, Rtts};
use crate::config::NetConfig;
use crate::error::{NetError, PublishFailure};
use crate::event::{Frame, NetEvent};

/// Start a swarm on the current tokio runtime: listen, dial the bootstrap
/// peers and spawn the task that owns it. Returns the client handle and the
/// bounded event stream. Inbound `/ifs/chunk/1` streams arrive as
/// [`NetEvent::InboundStream`].
pub async fn spawn(cfg: NetConfig) -> Result<(Client, mpsc::Receiver<NetEvent>), NetError> {
    spawn_with_metrics(cfg, &mut libp2p::metrics::Registry::default()).await
}

/// [`spawn`], registering libp2p's own metrics (transport bytes, connections,
/// identify, ping, Kademlia, gossipsub) in `registry`.
pub async fn spawn_with_metrics(
    cfg: NetConfig,
    registry: &mut libp2p::metrics::Registry,
) -> Result<(Client, mpsc::Receiver<NetEvent>), NetError> {
    let mut swarm = build_swarm(&cfg, registry)?;
    let metrics = libp2p::metrics::Metrics::new(registry);
    let peer_id = *swarm.local_peer_id();
    let mut streams = swarm.behaviour().stream.new_control();
    let incoming = if cfg.ephemeral {
        None
    } else {
        let accepted = streams
            .accept(CHUNK_PROTOCOL)
            .map_err(|e| NetError::Build(e.to_string()))?;
        Some(take_streams(accepted))
    };

    let mut listeners = 0;
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        listeners += 1;
    }
    for addr in &cfg.bootstrap {
        add_p2p_address(&mut swarm, addr, cfg.ephemeral);
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }

    let rtts = Rtts::default();
    let (cmd_tx, cmd_rx) = mpsc::channel(cfg.command_buffer.max(1));
    let (event_tx, event_rx) = mpsc::channel(cfg.event_buffer.max(1));
    let client = Client {
        tx: cmd_tx,
        peer_id,
        streams,
        limits: Limits {
            max_request_bytes: cfg.max_request_bytes,
            max_response_bytes: cfg.max_response_bytes,
            max_record_bytes: cfg.max_record_bytes,
            stream_open_timeout: cfg.stream_open_timeout,
            stream_open_min: cfg.stream_open_min,
        },
        rtts: rtts.clone(),
    };
    let event_loop = EventLoop {
        swarm,
        commands: cmd_rx,
        events: event_tx,
        incoming,
        ephemeral: cfg.ephemeral,
        max_request_bytes: cfg.max_request_bytes,
        listeners_pending: listeners,
        listen_addrs: Vec::new(),
        listen_waiters: Vec::new(),
        dials: HashMap::new(),
        requests: HashMap::new(),
        puts: HashMap::new(),
        gets: HashMap::new(),
        rtts,
        metrics,
        reachability: crate::reachability::ReachabilityState::new(cfg.upnp && !cfg.ephemeral),
        last_reachability: crate::reachability::Reachability::Unknown,
        kad_server: !cfg.ephemeral,
        hop_peers: HashSet::new(),
        nat_peers: HashSet::new(),
        public_links: HashSet::new(),
        direct_public: HashMap::new(),
        quic_dialed: HashMap::new(),
        tcp_asked: crate::direct_streams::TcpAsks::default(),
        relay_listeners: HashMap::new(),
    };
    tokio::spawn(event_loop.run());
    Ok((client, event_rx))
}

/// Inbound streams not yet handed to the node.
const INBOUND_QUEUE: usize = 1024;

/// Take inbound chunk streams on a thread of their own. libp2p-stream
/// keeps one undelivered stream per protocol and drops ("Channel is full")
/// any that arrives before the last one was taken, so a burst of streams
/// (many small chunks in flight) must never wait for a taker. A tokio task
/// can wait: when the runtime's workers are all busy (hashing, signature
/// checks, disk writes), it is polled late and streams are reset under the
/// sender's feet. A dedicated thread is woken at once, whatever the
/// runtime does; it only moves each stream into a deep queue.
fn take_streams(
    mut accepted: libp2p_stream::IncomingStreams,
) -> mpsc::Receiver<(PeerId, libp2p::Stream)> {
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("ifs-accept".into())
        .spawn(move || {
            futures::executor::block_on(async move {
                loop {
                    let closed = tx.closed();
                    futures::pin_mut!(closed);
                    match futures::future::select(closed, accepted.next()).await {
                        futures::future::Either::Left(_) => break,
                        futures::future::Either::Right((Some(s), _)) => {
                            if tx.send(s).await.is_err() {
                                break;
                            }
                        }
                        futures::future::Either::Right((None, _)) => break,
                    }
                }
            })
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stream accept thread: {e}");
    }
    rx
}

/// If `addr` ends in `/p2p/<peer>`, add the rest to Kademlia.
pub(crate) fn add_p2p_address(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr, ephemeral: bool) {
    let mut transport = addr.clone();
    if let Some(Protocol::P2p(peer)) = transport.pop() {
        swarm.behaviour_mut().addresses.add(peer, transport.clone());
        swarm.behaviour_mut().kad.add_address(&peer, transport);
        if !ephemeral {
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }
    }
}

/// A running Kademlia `get_record`: values collected so far.
pub(crate) struct PendingGet {
    pub(crate) found: Vec<FoundRecord>,
    pub(crate) reply: oneshot::Sender<Result<Vec<FoundRecord>, NetError>>,
}

/// The state of the swarm task.
pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) incoming: Option<mpsc::Receiver<(PeerId, libp2p::Stream)>>,
    pub(crate) ephemeral: bool,
    pub(crate) max_request_bytes: usize,
    /// Listeners started but neither up nor failed yet.
    pub(crate) listeners_pending: usize,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    pub(crate) dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    pub(crate) requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    pub(crate) puts: HashMap<QueryId, oneshot::Sender<Result<bool, NetError>>>,
    pub(crate) gets: HashMap<QueryId, PendingGet>,
    /// Last ping round trip per connected peer, shared with every [`Client`].
    pub(crate) rtts: Rtts,
    /// libp2p's own metrics, fed every swarm and behaviour event.
    pub(crate) metrics: libp2p::metrics::Metrics,
    /// What AutoNAT, relays, hole punches and UPnP said of this node.
    pub(crate) reachability: crate::reachability::ReachabilityState,
    /// The verdict last logged.
    pub(crate) last_reachability: crate::reachability::Reachability,
    /// Whether Kademlia is in server mode now.
    pub(crate) kad_server: bool,
    /// Connected peers that offer relay slots (identify lists the hop protocol).
    pub(crate) hop_peers: HashSet<PeerId>,
    /// Connected peers that listen through a relay (behind NAT).
    pub(crate) nat_peers: HashSet<PeerId>,
    /// Peers with a direct (not relayed) connection at a public address.
    pub(crate) public_links: HashSet<PeerId>,
    /// Connected peers we dialled directly at a public address, and that address.
    pub(crate) direct_public: HashMap<PeerId, Multiaddr>,
    /// Peers this side dialled directly over another transport than TCP:
    /// the address reached (see [`crate::direct_streams`]).
    pub(crate) quic_dialed: HashMap<PeerId, Multiaddr>,
    /// When TCP was dialled besides QUIC, per peer, and when again.
    pub(crate) tcp_asked: crate::direct_streams::TcpAsks,
    /// Listeners on relay circuits, and the relay of each.
    pub(crate) relay_listeners: HashMap<libp2p::core::transport::ListenerId, PeerId>,
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            let incoming = self.incoming.as_mut();
            let incoming = async move {
                match incoming {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                stream = incoming => match stream {
                    Some((peer, stream)) => self.emit(NetEvent::InboundStream { peer, stream }),
                    None => self.incoming = None,
                },
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        let _ = reply.send(());
                        break;
                    }
                    Some(command) => self.on_command(command),
                    None => break,
                },
            }
        }
        info!(peer = %self.swarm.local_peer_id(), "network task stopped");
    }

    /// Hand an event to the node without ever blocking the swarm: when the
    /// channel is full the event is dropped (a gossip message is then ignored).
    pub(crate) fn emit(&mut self, event: NetEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                warn!("event channel full, dropping {}", event_kind(&event));
                if let NetEvent::Gossip {
                    id, propagated_by, ..
                } = event
                {
                    self.swarm
                        .behaviour_mut()
                        .gossip
                        .report_message_validation_result(
                            &id,
                            &propagated_by,
                            gossipsub::MessageAcceptance::Ignore,
                        );
                }
            }
            Err(mpsc::error::TrySendError::Closed(event)) => {
                debug!("event receiver gone, dropping {}", event_kind(&event));
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let local = *self.swarm.local_peer_id();
        match command {
            Command::ListenAddrs(reply) => {
                if self.listeners_pending == 0 || !self.listen_addrs.is_empty() {
                    let _ = reply.send(self.listen_addrs.clone());
                } else {
                    self.listen_waiters.push(reply);
                }
            }
            Command::Dial(addr, fresh, reply) => {
                let peer = match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => Some(peer),
                    _ => None,
                };
                if let Some(peer) = peer {
                    if peer == local {
                        let _ = reply.send(Err(NetError::Dial("refusing to dial self".into())));
                        return;
                    }
                    if !fresh && self.swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(peer));
                        return;
                    }
                }
                let opts = match (fresh, peer) {
                    (true, Some(peer)) => DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                        .build(),
                    (true, None) => {
                        let _ = reply.send(Err(NetError::Dial(
                            "a fresh dial needs an address ending in /p2p/".into(),
                        )));
                        return;
                    }
                    (false, _) => {
                        add_p2p_address(&mut self.swarm, &addr, self.ephemeral);
                        DialOpts::from(addr)
                    }
                };
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial(e.to_string())));
                    }
                }
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Subscribe(topic, reply) => {
                let topic = gossipsub::IdentTopic::new(topic);
                let res = self.swarm.behaviour_mut().gossip.subscribe(&topic);
                let _ = reply.send(res.map_err(|e| NetError::Subscribe(e.to_string())));
            }
            Command::Unsubscribe(topic, reply) => {
                let topic = gossipsub::IdentTopic::new(topic);
                let _ = reply.send(self.swarm.behaviour_mut().gossip.unsubscribe(&topic));
            }
            Command::Publish(topic, data, reply) => {
                let topic = gossipsub::IdentTopic::new(topic);
                let res = self.swarm.behaviour_mut().gossip.publish(topic, data);
                let _ = reply.send(res.map_err(|e| NetError::Publish(publish_failure(e))));
            }
            Command::ReportValidation(id, peer, acceptance, reply) => {
                let gossip = &mut self.swarm.behaviour_mut().gossip;
                let known = gossip.report_message_validation_result(&id, &peer, acceptance.into());
                let _ = reply.send(known);
            }
            Command::Request(peer, data, reply) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .ctl
                    .send_request(&peer, Frame::from(data));
                self.requests.insert(id, reply);
            }
            Command::Respond(token, data, reply) => {
                let res = self
                    .swarm
                    .behaviour_mut()
                    .ctl
                    .send_response(token.channel, Frame::from(data));
                let _ = reply.send(res.map_err(|_| NetError::ResponseChannelClosed));
            }
            Command::PutRecord(key, value, reply) => {
                let record = kad::Record::new(key, value);
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .put_record(record, kad::Quorum::One)
                {
                    Ok(id) => {
                        self.puts.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Store(format!("{e:?}"))));
                    }
                }
            }
            Command::GetRecords(key, reply) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(RecordKey::new(&key));
                self.gets.insert(
                    id,
                    PendingGet {
                        found: Vec::new(),
                        reply,
                    },
                );
            }
            Command::StoreLocal(key, value, reply) => {
                use libp2p::kad::store::RecordStore;
                let record = kad::Record::new(key, value);
                let res = self.swarm.behaviour_mut().kad.store_mut().put(record);
                let _ = reply.send(res.map_err(|e| NetError::Store(format!("{e:?}"))));
            }
            Command::GetLocal(key, reply) => {
                use libp2p::kad::store::RecordStore;
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let _ = reply.send(store.get(&RecordKey::new(&key)).map(|r| r.value.clone()));
            }
            Command::RemoveLocal(key, reply) => {
                // `Behaviour::remove_record` only removes records we published.
                use libp2p::kad::store::RecordStore;
                let store = self.swarm.behaviour_mut().kad.store_mut();
                store.remove(&RecordKey::new(&key));
                let _ = reply.send(());
            }
            Command::AddAddress(peer, addr, reply) => {
                self.swarm.behaviour_mut().addresses.add(peer, addr.clone());
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                let _ = reply.send(());
            }
            Command::RemovePeer(peer, reply) => {
                self.swarm.behaviour_mut().addresses.remove(&peer);
                self.swarm.behaviour_mut().kad.remove_peer(&peer);
                let _ = reply.send(());
            }
            Command::Reachability(reply) => {
                let _ = reply.send(self.reachability.report());
            }
            Command::PreferTcp(peer) => {
                if self.quic_dialed.contains_key(&peer) {
                    let known = self.swarm.behaviour().addresses.get(&peer).to_vec();
                    self.ask_for_tcp(peer, &known);
                }
            }
            Command::Bootstrap(reply) => {
                let _ = reply.send(self.swarm.behaviour_mut().kad.bootstrap().is_ok());
            }
            Command::Shutdown(reply) => {
                // Handled in `run`; kept for exhaustiveness.
                let _ = reply.send(());
            }
        }
    }
}

fn publish_failure(e: gossipsub::PublishError) -> PublishFailure {
    match e {
        gossipsub::PublishError::NoPeersSubscribedToTopic => PublishFailure::NoPeers,
        gossipsub::PublishError::Duplicate => PublishFailure::Duplicate,
        gossipsub::PublishError::MessageTooLarge => PublishFailure::TooLarge,
        other => PublishFailure::Other(other.to_string()),
    }
}

fn event_kind(event: &NetEvent) -> &'static str {
    match event {
        NetEvent::Gossip { .. } => "gossip",
        NetEvent::Request { .. } => "request",
        NetEvent::InboundRecord { .. } => "inbound record",
        NetEvent::PeerConnected { .. } => "peer connected",
        NetEvent::PeerDisconnected { .. } => "peer disconnected",
        NetEvent::PingRtt { .. } => "ping",
        NetEvent::Identified { .. } => "identify",
        NetEvent::InboundStream { .. } => "inbound stream",
    }
}
