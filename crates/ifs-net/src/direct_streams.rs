//! Bulk streams on direct connections only, over TCP when there is one.
//!
//! A relay (circuit relay v2) gives each circuit 128 KiB and two minutes:
//! enough to set up a hole punch, never enough for a chunk. This wraps
//! libp2p-stream so that it never sees a relayed connection: a stream to a
//! peer reached through a relay waits until hole punching (DCUtR) brings up
//! a direct connection, or times out like any stream open that finds no
//! connection.
//!
//! Two peers often hold two direct connections, one over TCP and one over
//! QUIC (each dialled the other, or a dial raced both transports), and
//! libp2p-stream opens each stream on a connection picked at random. A
//! chunk costs both ends less CPU over TCP (the kernel cuts the bytes into
//! 64 KiB segments, Noise seals 64 KiB frames) than over QUIC (every
//! packet of at most 1,452 bytes is sealed and sent from user space): 8 to
//! 10% of a 3-node devnet's CPU for a 1 GiB upload. So while a peer has a
//! direct TCP connection, its other direct connections are hidden from the
//! stream picker ([`Preferred`]); they still accept the streams the peer
//! opens on them, and come back to the picker when the last TCP connection
//! closes.

use std::collections::{HashMap, HashSet};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use either::Either;
use libp2p::PeerId;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint, Multiaddr};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

use crate::reachability::is_relayed;

/// Which of each peer's direct connections the stream picker may use:
/// its TCP ones while it has any, else all of them. Pure: it is told of
/// connections opening and closing and answers which to show or hide.
#[derive(Debug, Default)]
pub(crate) struct Preferred {
    /// Every direct connection: its peer and whether it runs over TCP.
    conns: HashMap<ConnectionId, (PeerId, bool)>,
    /// Those the picker sees.
    shown: HashSet<ConnectionId>,
}

/// A change to what the stream picker sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The connection may carry new streams.
    Show(ConnectionId),
    /// It may not (it stays open and still accepts the peer's streams).
    Hide(ConnectionId),
}

impl Preferred {
    /// A direct connection to `peer` is up.
    pub(crate) fn opened(&mut self, id: ConnectionId, peer: PeerId, tcp: bool) -> Vec<Change> {
        self.conns.insert(id, (peer, tcp));
        self.settle(peer)
    }

    /// Connection `id` closed; the changes for the connections left (a
    /// connection that was shown is closed in the picker by the caller).
    pub(crate) fn closed(&mut self, id: ConnectionId) -> Vec<Change> {
        self.shown.remove(&id);
        match self.conns.remove(&id) {
            Some((peer, _)) => self.settle(peer),
            None => Vec::new(),
        }
    }

    /// Whether the picker sees `id`.
    pub(crate) fn is_shown(&self, id: ConnectionId) -> bool {
        self.shown.contains(&id)
    }

    /// Whether `peer` has a direct TCP connection.
    pub(crate) fn has_tcp(&self, peer: &PeerId) -> bool {
        self.conns.values().any(|(p, tcp)| p == peer && *tcp)
    }

    fn settle(&mut self, peer: PeerId) -> Vec<Change> {
        let mine: Vec<(ConnectionId, bool)> = self
            .conns
            .iter()
            .filter(|(_, (p, _))| *p == peer)
            .map(|(id, (_, tcp))| (*id, *tcp))
            .collect();
        let any_tcp = mine.iter().any(|(_, tcp)| *tcp);
        let mut changes = Vec::new();
        for (id, tcp) in mine {
            let want = tcp || !any_tcp;
            if want && self.shown.insert(id) {
                changes.push(Change::Show(id));
            } else if !want && self.shown.remove(&id) {
                changes.push(Change::Hide(id));
            }
        }
        // Hide before show: the picker never holds fewer connections than
        // it must, and the order of a peer's connections is not kept.
        changes.sort_by_key(|c| matches!(c, Change::Show(_)));
        changes
    }
}

/// Whether `endpoint` runs over TCP (its local address when it listened,
/// the address dialled when it dialled).
fn over_tcp(endpoint: &ConnectedPoint) -> bool {
    let addr = match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { local_addr, .. } => local_addr,
    };
    is_tcp(addr)
}

/// Whether `addr` is a TCP address.
pub(crate) fn is_tcp(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::Tcp(_)))
}

/// Of `candidates` (where a peer says it listens), the direct TCP
/// addresses on the host of `reached` (an address of that peer just
/// dialled over another transport): where a TCP connection to it should
/// come up as well. Another host's address is not tried: one reached over
/// UDP from here may well not be over TCP, and a failing dial costs the
/// peer its address in the DHT's routing table. At most
/// [`MAX_TCP_ALTERNATIVES`]: a peer listing many ports gets no more dials.
pub(crate) fn tcp_alternatives(reached: &Multiaddr, candidates: &[Multiaddr]) -> Vec<Multiaddr> {
    let Some(host) = reached.iter().next() else {
        return Vec::new();
    };
    let mut out: Vec<Multiaddr> = candidates
        .iter()
        .filter(|a| is_tcp(a) && !is_relayed(a) && a.iter().next().as_ref() == Some(&host))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_TCP_ALTERNATIVES);
    out
}

/// Most TCP addresses dialled besides one QUIC connection.
pub(crate) const MAX_TCP_ALTERNATIVES: usize = 2;

/// How long after a TCP dial the link may dial TCP again, once the
/// connection it brought has closed.
pub(crate) const REASK_AFTER: Duration = Duration::from_secs(30);

/// When a link reached over QUIC dials its peer's TCP address: once when
/// it comes up, and again only after a TCP connection it had closed (it
/// idled out while the QUIC one, kept up by gossip, stayed) and
/// [`REASK_AFTER`] since the last dial. A dial that never connected is not
/// tried again for the link's lifetime: a failing dial costs the peer its
/// address in the DHT's routing table, and a peer that accepts TCP only to
/// close it gets one dial per [`REASK_AFTER`].
#[derive(Debug, Default)]
pub(crate) struct TcpAsks {
    asked: HashMap<PeerId, Ask>,
}

#[derive(Debug)]
struct Ask {
    at: Instant,
    lost: bool,
}

impl TcpAsks {
    /// Whether a TCP dial to `peer` may go out at `now`; if so, it is
    /// noted as made.
    pub(crate) fn may_ask(&mut self, peer: PeerId, now: Instant) -> bool {
        let again = match self.asked.get(&peer) {
            None => true,
            Some(a) => a.lost && now.saturating_duration_since(a.at) >= REASK_AFTER,
        };
        if again {
            self.asked.insert(
                peer,
                Ask {
                    at: now,
                    lost: false,
                },
            );
        }
        again
    }

    /// A TCP connection to `peer` closed while another connection stays.
    pub(crate) fn tcp_closed(&mut self, peer: &PeerId) {
        if let Some(a) = self.asked.get_mut(peer) {
            a.lost = true;
        }
    }

    /// The last connection to `peer` closed: the next link starts afresh.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.asked.remove(peer);
    }
}

/// [`libp2p_stream::Behaviour`] minus relayed connections, preferring TCP.
pub(crate) struct DirectStreams {
    inner: libp2p_stream::Behaviour,
    relayed: HashSet<ConnectionId>,
    preferred: Preferred,
    /// The endpoint of every direct connection, to tell the picker of it.
    endpoints: HashMap<ConnectionId, ConnectedPoint>,
}

impl DirectStreams {
    pub(crate) fn new() -> Self {
        Self {
            inner: libp2p_stream::Behaviour::new(),
            relayed: HashSet::new(),
            preferred: Preferred::default(),
            endpoints: HashMap::new(),
        }
    }

    /// Tell the picker of `changes` to `peer`'s connections.
    fn apply(&mut self, peer: PeerId, changes: Vec<Change>) {
        for change in changes {
            let (Change::Show(id) | Change::Hide(id)) = change;
            let Some(endpoint) = self.endpoints.get(&id) else {
                continue;
            };
            let event = match change {
                Change::Show(_) => FromSwarm::ConnectionEstablished(ConnectionEstablished {
                    peer_id: peer,
                    connection_id: id,
                    endpoint,
                    failed_addresses: &[],
                    other_established: 0,
                }),
                Change::Hide(_) => FromSwarm::ConnectionClosed(ConnectionClosed {
                    peer_id: peer,
                    connection_id: id,
                    endpoint,
                    cause: None,
                    remaining_established: 0,
                }),
            };
            self.inner.on_swarm_event(event);
        }
    }

    /// Whether `connection` goes through a relay.
    pub(crate) fn is_relayed(&self, connection: ConnectionId) -> bool {
        self.relayed.contains(&connection)
    }

    /// Whether `peer` has a direct TCP connection.
    pub(crate) fn has_tcp(&self, peer: &PeerId) -> bool {
        self.preferred.has_tcp(peer)
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
            FromSwarm::ConnectionEstablished(e) => {
                self.endpoints.insert(e.connection_id, e.endpoint.clone());
                let changes =
                    self.preferred
                        .opened(e.connection_id, e.peer_id, over_tcp(e.endpoint));
                self.apply(e.peer_id, changes);
            }
            FromSwarm::ConnectionClosed(e) => {
                if self.preferred.is_shown(e.connection_id) {
                    self.inner.on_swarm_event(FromSwarm::ConnectionClosed(e));
                }
                let changes = self.preferred.closed(e.connection_id);
                self.endpoints.remove(&e.connection_id);
                self.apply(e.peer_id, changes);
            }
            FromSwarm::AddressChange(e) => {
                if let Some(endpoint) = self.endpoints.get_mut(&e.connection_id) {
                    *endpoint = e.new.clone();
                }
                self.inner.on_swarm_event(FromSwarm::AddressChange(e));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_is_dialled_again_only_after_a_connection_it_brought_closed() {
        let (p, q) = (peer(), peer());
        let t0 = Instant::now();
        let mut asks = TcpAsks::default();
        assert!(asks.may_ask(p, t0), "the first dial of a link goes out");
        assert!(!asks.may_ask(p, t0 + REASK_AFTER * 10), "once per link");
        assert!(asks.may_ask(q, t0), "each peer has its own");
        // The TCP connection idled out while QUIC stayed up.
        asks.tcp_closed(&p);
        assert!(
            !asks.may_ask(p, t0 + REASK_AFTER / 2),
            "not within the pause"
        );
        assert!(asks.may_ask(p, t0 + REASK_AFTER), "then once more");
        assert!(!asks.may_ask(p, t0 + REASK_AFTER * 3), "and once only");
        // A peer that accepts TCP only to close it: one dial per pause.
        let mut last = t0 + REASK_AFTER;
        let mut dials = 0;
        for step in 1..=600 {
            asks.tcp_closed(&p);
            let now = t0 + REASK_AFTER + Duration::from_secs(step);
            if asks.may_ask(p, now) {
                assert!(now - last >= REASK_AFTER, "no dial sooner than the pause");
                dials += 1;
                last = now;
            }
        }
        assert_eq!(dials, 20, "one dial per 30 s over 600 s");
        // A dial that never connected (no close) is never repeated, and a
        // link that went down entirely starts afresh.
        assert!(!asks.may_ask(q, t0 + REASK_AFTER * 100));
        asks.forget(&q);
        assert!(asks.may_ask(q, t0 + REASK_AFTER * 100));
    }

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn tcp_connections_hide_the_others_of_their_peer_until_the_last_closes() {
        let mut p = Preferred::default();
        let (a, b) = (peer(), peer());
        let (quic, tcp, tcp2, other) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
            ConnectionId::new_unchecked(4),
        );
        // A QUIC connection alone is used.
        assert_eq!(p.opened(quic, a, false), vec![Change::Show(quic)]);
        // Another peer's connections change nothing for `a`.
        assert_eq!(p.opened(other, b, false), vec![Change::Show(other)]);
        // TCP comes up: it is shown, QUIC hidden first.
        assert_eq!(
            p.opened(tcp, a, true),
            vec![Change::Hide(quic), Change::Show(tcp)]
        );
        assert_eq!(p.opened(tcp2, a, true), vec![Change::Show(tcp2)]);
        assert!(!p.is_shown(quic) && p.is_shown(tcp) && p.is_shown(other));
        // One TCP connection of two closes: QUIC stays hidden.
        assert_eq!(p.closed(tcp), vec![]);
        assert!(!p.is_shown(tcp));
        // The last closes: QUIC is back.
        assert_eq!(p.closed(tcp2), vec![Change::Show(quic)]);
        assert!(p.is_shown(quic));
        // A connection it never saw changes nothing.
        assert_eq!(p.closed(ConnectionId::new_unchecked(9)), vec![]);
        assert_eq!(p.closed(quic), vec![]);
        assert!(p.conns.len() == 1 && p.shown.len() == 1);
    }

    #[test]
    fn tcp_is_asked_of_the_host_reached_only() {
        let a = |s: &str| -> Multiaddr { s.parse().unwrap() };
        let reached = a(
            "/ip4/10.0.0.5/udp/4001/quic-v1/p2p/12D3KooWAHqEDDX3Zqdk7Z6aLZ7g2WxkLgYhA6ks5SYnYyJnaMG4",
        );
        let candidates = [
            a("/ip4/10.0.0.5/udp/4001/quic-v1"),
            a("/ip4/10.0.0.5/tcp/4002"),
            a("/ip4/10.0.0.5/tcp/4002"),
            a("/ip4/192.168.1.9/tcp/4002"),
            a(
                "/ip4/10.0.0.5/tcp/4002/p2p/12D3KooWAHqEDDX3Zqdk7Z6aLZ7g2WxkLgYhA6ks5SYnYyJnaMG4/p2p-circuit",
            ),
            a("/ip6/::1/tcp/4002"),
        ];
        assert_eq!(
            tcp_alternatives(&reached, &candidates),
            vec![a("/ip4/10.0.0.5/tcp/4002")]
        );
        assert!(tcp_alternatives(&Multiaddr::empty(), &candidates).is_empty());
        // A peer listing many ports on the host gets two dials, no more.
        let many: Vec<Multiaddr> = (0..50)
            .map(|p| a(&format!("/ip4/10.0.0.5/tcp/{}", 5000 + p)))
            .collect();
        assert_eq!(
            tcp_alternatives(&reached, &many).len(),
            MAX_TCP_ALTERNATIVES
        );
        assert!(tcp_alternatives(&reached, &[]).is_empty());
    }

    #[test]
    fn the_transport_is_read_from_the_local_address_of_a_listener() {
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap();
        let listener = |local: &Multiaddr| ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: "/ip4/127.0.0.1/udp/5000/quic-v1".parse().unwrap(),
        };
        assert!(over_tcp(&listener(&tcp)));
        assert!(!over_tcp(&listener(&quic)));
        let dialer = |address: &Multiaddr| ConnectedPoint::Dialer {
            address: address.clone(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        assert!(over_tcp(&dialer(&tcp)));
        assert!(!over_tcp(&dialer(&quic)));
    }
}
