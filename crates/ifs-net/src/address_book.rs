//! Where peers listen, as told by the node table, kept apart from
//! Kademlia's routing table.
//!
//! Kademlia keeps at most 20 peers per distance bucket. Had the addresses a
//! client or node learns from a node table gone only there, a table listing
//! many made-up nodes would fill the buckets and push real nodes' addresses
//! out, and requests to those real nodes would fail to dial. This behaviour
//! answers every outbound dial of a peer with the addresses registered for
//! it, whatever Kademlia holds. Bounded: when full, the oldest peer goes.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Most peers remembered.
const MAX_PEERS: usize = 16_384;
/// Most addresses remembered per peer.
const MAX_ADDRS: usize = 8;

/// Registered addresses per peer (see the module doc).
#[derive(Default)]
pub(crate) struct AddressBook {
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
    order: VecDeque<PeerId>,
}

impl AddressBook {
    /// Remember that `peer` listens on `addr` (without `/p2p/`).
    pub(crate) fn add(&mut self, peer: PeerId, addr: Multiaddr) {
        if !self.addrs.contains_key(&peer) {
            while self.addrs.len() >= MAX_PEERS {
                match self.order.pop_front() {
                    Some(old) => {
                        self.addrs.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(peer);
        }
        let list = self.addrs.entry(peer).or_default();
        if !list.contains(&addr) {
            if list.len() >= MAX_ADDRS {
                list.remove(0);
            }
            list.push(addr);
        }
    }

    /// Forget `peer`'s addresses.
    pub(crate) fn remove(&mut self, peer: &PeerId) {
        if self.addrs.remove(peer).is_some() {
            self.order.retain(|p| p != peer);
        }
    }

    /// Where `peer` listens, as registered.
    pub(crate) fn get(&self, peer: &PeerId) -> &[Multiaddr] {
        self.addrs.get(peer).map_or(&[], |v| v.as_slice())
    }
}

impl NetworkBehaviour for AddressBook {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        maybe_peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(maybe_peer
            .and_then(|p| self.addrs.get(&p).cloned())
            .unwrap_or_default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_kept_per_peer_and_bounded() {
        let mut book = AddressBook::default();
        let peer = PeerId::random();
        for port in 0..20u16 {
            let a: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
            book.add(peer, a.clone());
            book.add(peer, a);
        }
        assert_eq!(book.get(&peer).len(), MAX_ADDRS);
        assert!(book.get(&peer)[MAX_ADDRS - 1].to_string().ends_with("/19"));
        for _ in 0..MAX_PEERS {
            book.add(PeerId::random(), "/ip4/10.0.0.1/tcp/1".parse().unwrap());
        }
        assert!(book.get(&peer).is_empty(), "the oldest peer made room");
        assert_eq!(book.addrs.len(), MAX_PEERS);
        assert_eq!(book.order.len(), MAX_PEERS);
        book.remove(&book.order[0].clone());
        assert_eq!(book.addrs.len(), MAX_PEERS - 1);
    }
}
