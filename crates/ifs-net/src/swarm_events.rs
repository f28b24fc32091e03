//! How the swarm task reacts to each swarm and behaviour event.

use std::time::Duration;

use libp2p::kad::{self, GetRecordOk, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, gossipsub, identify, mdns, ping, relay, upnp};
use tracing::{debug, info, warn};

use crate::behaviour::{BehaviourEvent, KAD_PROTOCOL};
use crate::direct_streams::{is_tcp, tcp_alternatives};
use crate::error::{NetError, RequestFailure};
use crate::event::{Frame, NetEvent};
use crate::event_loop::EventLoop;
use crate::reachability::{AddrScope, Upnp, addr_scope, is_relayed};

impl EventLoop {
    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.record_metrics(&event);
        match event {
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } if self.relay_listeners.contains_key(&listener_id) => {
                let relay = self.relay_listeners[&listener_id];
                info!(%relay, addr = %address, "reachable through a relay");
                self.reachability.on_relay_accepted(relay, address);
                self.apply_reachability();
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let local = *self.swarm.local_peer_id();
                let full = address.with(Protocol::P2p(local));
                info!(addr = %full, "listening");
                self.listen_addrs.push(full);
                self.listeners_pending = self.listeners_pending.saturating_sub(1);
                self.answer_listen_waiters();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs
                    .retain(|a| !a.iter().zip(address.iter()).all(|(x, y)| x == y));
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if self.relay_listeners.contains_key(&listener_id) => {
                if let Some(relay) = self.relay_listeners.remove(&listener_id) {
                    info!(%relay, ?reason, "relay slot lost");
                    self.reachability.on_relay_lost(relay);
                    self.apply_reachability();
                }
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                if addresses.is_empty() {
                    // Closed before it ever bound an address: count it as failed.
                    self.listeners_pending = self.listeners_pending.saturating_sub(1);
                }
                warn!(?reason, "listener closed");
                self.answer_listen_waiters();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint
                    && !is_relayed(address)
                    && addr_scope(address) == Some(AddrScope::Public)
                {
                    let mut transport = address.clone();
                    if let Some(Protocol::P2p(_)) = transport.iter().last() {
                        transport.pop();
                    }
                    self.direct_public.insert(peer_id, transport);
                    self.reserve_relays();
                }
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint
                    && !is_relayed(address)
                    && !is_tcp(address)
                {
                    self.quic_dialed.insert(peer_id, address.clone());
                    let known = self.swarm.behaviour().addresses.get(&peer_id).to_vec();
                    self.ask_for_tcp(peer_id, &known);
                }
                let remote = endpoint.get_remote_address();
                if !is_relayed(remote) && addr_scope(remote) == Some(AddrScope::Public) {
                    self.public_links.insert(peer_id);
                    if self.nat_peers.contains(&peer_id) {
                        self.reachability.on_direct_nat_link(peer_id);
                        self.apply_reachability();
                    }
                }
                if num_established.get() == 1 {
                    let addr = endpoint.get_remote_address().clone();
                    self.emit(NetEvent::PeerConnected {
                        peer: peer_id,
                        addr,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, "connection closed");
                if num_established > 0 && is_tcp(endpoint.get_remote_address()) {
                    // The TCP link idled out (or broke) while another
                    // connection, often a QUIC one kept up by gossip,
                    // stays: the next chunk stream asks for TCP again
                    // (`Command::PreferTcp`).
                    self.tcp_asked.tcp_closed(&peer_id);
                }
                if num_established == 0 {
                    self.direct_public.remove(&peer_id);
                    self.quic_dialed.remove(&peer_id);
                    self.tcp_asked.forget(&peer_id);
                    self.hop_peers.remove(&peer_id);
                    self.nat_peers.remove(&peer_id);
                    self.public_links.remove(&peer_id);
                    self.set_rtt(peer_id, None);
                    self.emit(NetEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(?peer_id, %error, "outgoing connection failed");
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial(error.to_string())));
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection failed");
            }
            _ => {}
        }
    }

    fn record_metrics(&self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        self.metrics.record(event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => self.metrics.record(e),
            _ => {}
        }
    }

    /// When this side reached `peer` directly over QUIC only, dial the
    /// TCP addresses among `candidates` on the same host too (at most
    /// [`crate::direct_streams::MAX_TCP_ALTERNATIVES`]), once per link and
    /// again after the TCP connection closed ([`crate::direct_streams::TcpAsks`]):
    /// chunk streams take a TCP connection when there is one (see
    /// [`crate::direct_streams`]).
    pub(crate) fn ask_for_tcp(&mut self, peer: PeerId, candidates: &[Multiaddr]) {
        if self.swarm.behaviour().stream.has_tcp(&peer) {
            return;
        }
        let Some(reached) = self.quic_dialed.get(&peer) else {
            return;
        };
        let tcp = tcp_alternatives(reached, candidates);
        if tcp.is_empty() || !self.tcp_asked.may_ask(peer, std::time::Instant::now()) {
            return;
        }
        debug!(%peer, addrs = ?tcp, "dialling TCP besides QUIC");
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::Always)
            .addresses(tcp)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(%peer, error = %e, "cannot dial TCP besides QUIC");
        }
    }

    /// Remember (or, with `None`, forget) the round trip to `peer`.
    fn set_rtt(&self, peer: PeerId, rtt: Option<Duration>) {
        let mut rtts = self.rtts.lock().unwrap_or_else(|e| e.into_inner());
        match rtt {
            Some(rtt) => rtts.insert(peer, rtt),
            None => rtts.remove(&peer),
        };
    }

    fn answer_listen_waiters(&mut self) {
        if self.listeners_pending == 0 || !self.listen_addrs.is_empty() {
            for reply in self.listen_waiters.drain(..) {
                let _ = reply.send(self.listen_addrs.clone());
            }
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossip(e) => self.on_gossip(e),
            BehaviourEvent::Ctl(e) => self.on_ctl(e),
            BehaviourEvent::Kad(e) => self.on_kad(e),
            // A round trip through a relay says nothing of the direct path a
            // chunk stream needs: without it, opening one gets the full
            // deadline, time for hole punching to bring the direct path up.
            BehaviourEvent::Ping(ping::Event {
                connection, result, ..
            }) if self.swarm.behaviour().stream.is_relayed(connection) => {
                if let Err(e) = result {
                    debug!(error = %e, "ping through a relay failed");
                }
            }
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) => match result {
                Ok(rtt) => {
                    self.set_rtt(peer, Some(rtt));
                    self.emit(NetEvent::PingRtt { peer, rtt });
                }
                Err(e) => debug!(%peer, error = %e, "ping failed"),
            },
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                // A peer that listens through a relay is behind NAT: only a
                // hole punch with such a peer says whether NATs can be crossed.
                if info.listen_addrs.iter().any(is_relayed) {
                    self.nat_peers.insert(peer_id);
                    if self.public_links.contains(&peer_id) {
                        self.reachability.on_direct_nat_link(peer_id);
                        self.apply_reachability();
                    }
                } else {
                    self.nat_peers.remove(&peer_id);
                }
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    self.hop_peers.insert(peer_id);
                    self.reserve_relays();
                }
                self.ask_for_tcp(peer_id, &info.listen_addrs);
                // Only peers serving our DHT belong in its routing table.
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for addr in &info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.emit(NetEvent::Identified {
                    peer: peer_id,
                    listen_addrs: info.listen_addrs,
                    agent_version: info.agent_version,
                });
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer)
                        && let Err(e) = self.swarm.dial(addr.with(Protocol::P2p(peer)))
                    {
                        debug!(%peer, error = %e, "cannot dial mDNS peer");
                    }
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(_)) => {}
            BehaviourEvent::Stream(()) => {}
            BehaviourEvent::Addresses(never) => match never {},
            BehaviourEvent::AutonatClient(e) => {
                let reached = e.result.is_ok();
                debug!(addr = %e.tested_addr, server = %e.server, reached, "AutoNAT test");
                self.reachability
                    .on_autonat(e.tested_addr, e.server, reached);
                self.apply_reachability();
            }
            BehaviourEvent::AutonatServer(e) => {
                debug!(client = %e.client, addr = ?e.tested_addr, ok = e.result.is_ok(), "AutoNAT dial-back");
            }
            BehaviourEvent::RelayClient(e) => match e {
                relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } => {
                    debug!(relay = %relay_peer_id, "relay slot granted");
                }
                other => debug!(?other, "relay client"),
            },
            BehaviourEvent::Relay(e) => debug!(?e, "relay server"),
            BehaviourEvent::Dcutr(e) => {
                let behind_nat = self.nat_peers.contains(&e.remote_peer_id);
                match &e.result {
                    Ok(_) => {
                        info!(peer = %e.remote_peer_id, behind_nat, "hole punch: direct connection up")
                    }
                    Err(err) => {
                        info!(peer = %e.remote_peer_id, behind_nat, %err, "hole punch failed")
                    }
                }
                // A punch with a public peer proves nothing about crossing
                // NATs (we could always dial it): count those with peers
                // behind NAT only.
                if behind_nat {
                    self.reachability.on_hole_punch(e.result.is_ok());
                    self.apply_reachability();
                }
            }
            BehaviourEvent::Upnp(e) => {
                let (state, addr) = match e {
                    upnp::Event::NewExternalAddr { external_addr, .. } => {
                        info!(addr = %external_addr, "UPnP mapped a port");
                        (Upnp::Mapped, Some((external_addr, true)))
                    }
                    upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
                        (Upnp::Mapped, Some((external_addr, false)))
                    }
                    upnp::Event::GatewayNotFound => (Upnp::NoGateway, None),
                    upnp::Event::NonRoutableGateway => (Upnp::NonRoutableGateway, None),
                };
                self.reachability.on_upnp(state, addr);
            }
        }
    }

    /// Act on the reachability verdict: the Kademlia mode, relay slots, a log
    /// line when it changes.
    fn apply_reachability(&mut self) {
        let now = self.reachability.reachability();
        if now != self.last_reachability {
            info!(reachability = now.describe(), "reachability changed");
            self.last_reachability = now;
        }
        let server = now.kad_server();
        if !self.ephemeral && server != self.kad_server {
            let mode = if server {
                kad::Mode::Server
            } else {
                kad::Mode::Client
            };
            info!(?mode, "Kademlia mode follows reachability");
            self.swarm.behaviour_mut().kad.set_mode(Some(mode));
            self.kad_server = server;
        }
        self.reserve_relays();
    }

    /// Behind NAT: ask relays we dialled directly at a public address for a
    /// slot, up to [`crate::reachability::WANTED_RELAYS`].
    fn reserve_relays(&mut self) {
        if self.ephemeral {
            return;
        }
        let mut candidates: Vec<(PeerId, Multiaddr)> = self
            .hop_peers
            .iter()
            .filter_map(|p| self.direct_public.get(p).map(|a| (*p, a.clone())))
            .collect();
        candidates.sort();
        for (relay, addr) in candidates {
            if !self.reachability.wants_relay(&relay) {
                continue;
            }
            let circuit = addr.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    info!(%relay, "asking a relay for a slot");
                    self.relay_listeners.insert(id, relay);
                    self.reachability.on_relay_asked(relay);
                }
                Err(e) => debug!(%relay, error = %e, "cannot listen through relay"),
            }
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        // Strict validation guarantees a signed source; reject anything else.
        let Some(source) = message.source else {
            self.swarm
                .behaviour_mut()
                .gossip
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Reject,
                );
            return;
        };
        self.emit(NetEvent::Gossip {
            topic: message.topic.into_string(),
            source,
            propagated_by: propagation_source,
            id: message_id,
            data: message.data,
        });
    }

    fn on_ctl(&mut self, event: request_response::Event<Frame, Frame>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let data = request.into_vec();
                    if data.len() > self.max_request_bytes {
                        // Dropping the channel makes the requester see a failure.
                        warn!(%peer, size = data.len(), "rejecting oversized request");
                        return;
                    }
                    let token = crate::event::ResponseToken { channel, peer };
                    self.emit(NetEvent::Request { peer, data, token });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response.into_vec()));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let reason = match error {
                    OutboundFailure::DialFailure => RequestFailure::DialFailure,
                    OutboundFailure::Timeout => RequestFailure::Timeout,
                    OutboundFailure::ConnectionClosed => RequestFailure::ConnectionClosed,
                    OutboundFailure::UnsupportedProtocols => RequestFailure::UnsupportedProtocols,
                    OutboundFailure::Io(e) => RequestFailure::Io(e.to_string()),
                };
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request { peer, reason }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Oversized or malformed requests end up here; the node goes on.
                warn!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => {
                self.emit(NetEvent::InboundRecord {
                    peer: Some(source),
                    key: record.key.to_vec(),
                    value: record.value,
                });
            }
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                QueryResult::GetRecord(res) => self.on_get_record(id, res, step.last),
                QueryResult::PutRecord(res) => {
                    if let Some(reply) = self.puts.remove(&id) {
                        if let Err(e) = &res {
                            debug!(error = %e, "record stored locally only");
                        }
                        let _ = reply.send(Ok(res.is_ok()));
                    }
                }
                QueryResult::Bootstrap(Err(e)) => debug!(error = %e, "bootstrap failed"),
                _ => {}
            },
            _ => {}
        }
    }

    fn on_get_record(&mut self, id: kad::QueryId, res: kad::GetRecordResult, last: bool) {
        let Some(pending) = self.gets.get_mut(&id) else {
            return;
        };
        let timed_out = match res {
            Ok(GetRecordOk::FoundRecord(peer_record)) => {
                pending
                    .found
                    .push((peer_record.peer, peer_record.record.value));
                false
            }
            Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => false,
            Err(kad::GetRecordError::NotFound { .. }) => false,
            Err(kad::GetRecordError::Timeout { .. }) => true,
        };
        if last && let Some(pending) = self.gets.remove(&id) {
            let result = if timed_out && pending.found.is_empty() {
                Err(NetError::QueryTimeout)
            } else {
                Ok(pending.found)
            };
            let _ = pending.reply.send(result);
        }
    }
}
