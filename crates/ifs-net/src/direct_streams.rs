//! Bulk streams on direct connections only.
//!
//! A relay (circuit relay v2) gives each circuit 128 KiB and two minutes:
//! enough to set up a hole punch, never enough for a chunk. This wraps
//! libp2p-stream so that it never sees a relayed connection: a stream to a
//! peer reached through a relay waits until hole punching (DCUtR) brings up
//! a direct connection, or times out like any stream open that finds no
//! connection.

use std::collections::HashSet;
use std::task::{Context, Poll};

use either::Either;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};

use crate::reachability::is_relayed;

/// [`libp2p_stream::Behaviour`] minus relayed connections.
pub(crate) struct DirectStreams {
    inner: libp2p_stream::Behaviour,
    relayed: HashSet<ConnectionId>,
}

impl DirectStreams {
    pub(crate) fn new() -> Self {
        Self {
            inner: libp2p_stream::Behaviour::new(),
            relayed: HashSet::new(),
        }
    }

    /// Whether `connection` goes through a relay.
    pub(crate) fn is_relayed(&self, connection: ConnectionId) -> bool {
        self.relayed.contains(&connection)
    }

    /// A control handle for opening and accepting streams.
    pub(crate) fn new_control(&self) -> libp2p_stream::Control {
        self.inner.new_control()
    }
}

type Inner = libp2p_stream::Behaviour;

impl NetworkBehaviour for DirectStreams {
    type ConnectionHandler = Either<THandler<Inner>, dummy::ConnectionHandler>;
    type ToSwarm = ();

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(local_addr) || is_relayed(remote_addr) {
            self.relayed.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
            .map(Either::Left)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(addr) {
            self.relayed.insert(connection_id);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
            .map(Either::Left)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) if self.relayed.contains(&e.connection_id) => {}
            FromSwarm::ConnectionClosed(e) if self.relayed.remove(&e.connection_id) => {}
            FromSwarm::AddressChange(e) if self.relayed.contains(&e.connection_id) => {}
            other => self.inner.on_swarm_event(other),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(e) => self
                .inner
                .on_connection_handler_event(peer_id, connection_id, e),
            Either::Right(never) => match never {},
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<(), THandlerInEvent<Self>>> {
        self.inner.poll(cx).map(|e| e.map_in(Either::Left))
    }
}
