//! What a node knows of its own reachability: a pure state machine the
//! swarm task feeds with AutoNAT v2 verdicts, relay reservations, hole
//! punches and UPnP outcomes, and asks what to do (Kademlia mode, whether to
//! reserve a relay slot).
//!
//! AutoNAT v2 confirms an address after one dial-back that carried the
//! right nonce, and tests each address once. That is proof that the server
//! reached the address, but a server on the same LAN reaches private
//! addresses too, so only *public* addresses (not loopback, RFC 1918,
//! link-local, CGNAT or IPv6 unique-local) decide between "public" and
//! "behind NAT". A node that only ever sees private addresses (a loopback
//! devnet, one LAN, the docker testnet) is "local network": it keeps serving
//! the DHT, as every node did before reachability was measured.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use ifs_core::reachability::{Reachability, ReachabilityReport, Upnp};
pub use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// How many relay reservations a node behind NAT keeps.
pub const WANTED_RELAYS: usize = 2;

/// The kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrScope {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, link-local, CGNAT (100.64.0.0/10), IPv6 unique-local and
    /// link-local: reachable on one site at most.
    Private,
    /// Anything else with an IP (or a DNS name): maybe reachable from anywhere.
    Public,
}

/// The scope of `addr`'s first IP or DNS component; `None` when it has
/// neither (e.g. a bare `/p2p/...`).
pub fn addr_scope(addr: &Multiaddr) -> Option<AddrScope> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ipv4_scope(ip)),
        Protocol::Ip6(ip) => Some(ipv6_scope(ip)),
        Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => Some(AddrScope::Public),
        _ => None,
    })
}

fn ipv4_scope(ip: Ipv4Addr) -> AddrScope {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        AddrScope::Loopback
    } else if ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || (a == 100 && (64..128).contains(&b))
    {
        AddrScope::Private
    } else {
        AddrScope::Public
    }
}

fn ipv6_scope(ip: Ipv6Addr) -> AddrScope {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_scope(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        AddrScope::Loopback
    } else if ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
        AddrScope::Private
    } else {
        AddrScope::Public
    }
}

/// Whether `addr` goes through a relay (`/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The state machine. Pure: no I/O, no clock.
#[derive(Debug, Default, Clone)]
pub struct ReachabilityState {
    confirmed: BTreeSet<Multiaddr>,
    failed: BTreeSet<Multiaddr>,
    local_confirmed: BTreeSet<Multiaddr>,
    servers: BTreeSet<PeerId>,
    relays: BTreeMap<PeerId, Multiaddr>,
    pending_relays: BTreeSet<PeerId>,
    punches_ok: u64,
    punches_failed: u64,
    /// Peers behind NAT reached over a direct connection at a public
    /// address: NAT traversal worked with them, whoever started it.
    direct_nat_peers: BTreeSet<PeerId>,
    upnp: Upnp,
    upnp_addrs: BTreeSet<Multiaddr>,
}

impl ReachabilityState {
    /// A fresh state; `upnp` says whether UPnP runs.
    pub fn new(upnp: bool) -> Self {
        Self {
            upnp: if upnp { Upnp::Searching } else { Upnp::Off },
            ..Self::default()
        }
    }

    /// An AutoNAT test of `addr` by `server` ended: `reached` when the
    /// server's dial-back arrived.
    pub fn on_autonat(&mut self, addr: Multiaddr, server: PeerId, reached: bool) {
        self.servers.insert(server);
        match addr_scope(&addr) {
            Some(AddrScope::Public) if !is_relayed(&addr) => {
                if reached {
                    self.failed.remove(&addr);
                    self.confirmed.insert(addr);
                } else if !self.confirmed.contains(&addr) {
                    self.failed.insert(addr);
                }
            }
            Some(_) if reached => {
                self.local_confirmed.insert(addr);
            }
            _ => {}
        }
    }

    /// A relay reservation was asked of `relay`.
    pub fn on_relay_asked(&mut self, relay: PeerId) {
        self.pending_relays.insert(relay);
    }

    /// `relay` holds a slot for this node, reachable at `circuit`.
    pub fn on_relay_accepted(&mut self, relay: PeerId, circuit: Multiaddr) {
        self.pending_relays.remove(&relay);
        self.relays.insert(relay, circuit);
    }

    /// The reservation with `relay` ended or was refused.
    pub fn on_relay_lost(&mut self, relay: PeerId) {
        self.pending_relays.remove(&relay);
        self.relays.remove(&relay);
    }

    /// A hole punch ended.
    pub fn on_hole_punch(&mut self, ok: bool) {
        if ok {
            self.punches_ok += 1;
        } else {
            self.punches_failed += 1;
        }
    }

    /// A direct (not relayed) connection at a public address came up with
    /// `peer`, a peer behind NAT. DCUtR reports a punch as failed when the
    /// other side's dial won the race and arrived as an inbound connection,
    /// so a direct link is the surer sign that NATs were crossed.
    pub fn on_direct_nat_link(&mut self, peer: PeerId) {
        self.direct_nat_peers.insert(peer);
    }

    /// UPnP changed state; `addr` is the external address it mapped or lost.
    pub fn on_upnp(&mut self, state: Upnp, addr: Option<(Multiaddr, bool)>) {
        if let Some((addr, mapped)) = addr {
            if mapped {
                self.upnp_addrs.insert(addr);
            } else {
                self.upnp_addrs.remove(&addr);
            }
        }
        self.upnp = if self.upnp_addrs.is_empty() && state == Upnp::Mapped {
            Upnp::Searching
        } else {
            state
        };
    }

    /// The verdict.
    pub fn reachability(&self) -> Reachability {
        if !self.confirmed.is_empty() {
            Reachability::Public
        } else if !self.failed.is_empty() {
            if !self.direct_nat_peers.is_empty() {
                Reachability::NatHolePunching
            } else if !self.relays.is_empty() {
                Reachability::NatRelayed
            } else {
                Reachability::Unreachable
            }
        } else if !self.local_confirmed.is_empty() {
            Reachability::LocalNetwork
        } else {
            Reachability::Unknown
        }
    }

    /// Whether to ask `relay` for a slot now: behind NAT, fewer than
    /// [`WANTED_RELAYS`] slots held or asked, and not asked of it already.
    pub fn wants_relay(&self, relay: &PeerId) -> bool {
        self.reachability().behind_nat()
            && self.relays.len() + self.pending_relays.len() < WANTED_RELAYS
            && !self.relays.contains_key(relay)
            && !self.pending_relays.contains(relay)
    }

    /// The relays asked or holding a slot.
    pub fn relay_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.relays.keys().chain(self.pending_relays.iter())
    }

    /// The report for `status` and `doctor`.
    pub fn report(&self) -> ReachabilityReport {
        let strings = |s: &BTreeSet<Multiaddr>| s.iter().map(|a| a.to_string()).collect();
        ReachabilityReport {
            reachability: self.reachability(),
            confirmed: strings(&self.confirmed),
            unreachable: strings(&self.failed),
            local_confirmed: strings(&self.local_confirmed),
            relays: self.relays.values().map(|a| a.to_string()).collect(),
            hole_punches_ok: self.punches_ok,
            hole_punches_failed: self.punches_failed,
            direct_nat_peers: self.direct_nat_peers.len(),
            autonat_servers: self.servers.len(),
            upnp: self.upnp,
            upnp_addrs: strings(&self.upnp_addrs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn scopes_follow_the_address_ranges() {
        let cases = [
            ("/ip4/127.0.0.1/tcp/1", AddrScope::Loopback),
            ("/ip4/10.1.2.3/tcp/1", AddrScope::Private),
            ("/ip4/192.168.1.9/udp/1/quic-v1", AddrScope::Private),
            ("/ip4/172.20.0.1/tcp/1", AddrScope::Private),
            ("/ip4/100.72.0.1/tcp/1", AddrScope::Private),
            ("/ip4/169.254.3.3/tcp/1", AddrScope::Private),
            ("/ip4/198.51.100.7/tcp/1", AddrScope::Public),
            ("/ip4/8.8.8.8/tcp/1", AddrScope::Public),
            ("/ip6/::1/tcp/1", AddrScope::Loopback),
            ("/ip6/fd00::1/tcp/1", AddrScope::Private),
            ("/ip6/fe80::1/tcp/1", AddrScope::Private),
            ("/ip6/2001:db8::1/tcp/1", AddrScope::Public),
            ("/dns4/example.org/tcp/1", AddrScope::Public),
        ];
        for (addr, scope) in cases {
            assert_eq!(addr_scope(&a(addr)), Some(scope), "{addr}");
        }
        assert!(is_relayed(&a(
            "/ip4/198.51.100.7/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
        )));
    }

    #[test]
    fn a_node_on_loopback_stays_local_and_keeps_serving_the_dht() {
        let mut s = ReachabilityState::new(false);
        assert_eq!(s.reachability(), Reachability::Unknown);
        assert!(s.reachability().kad_server());
        s.on_autonat(a("/ip4/127.0.0.1/tcp/4001"), PeerId::random(), true);
        // A private address that fails says nothing about NAT.
        s.on_autonat(a("/ip4/10.0.0.2/tcp/4001"), PeerId::random(), false);
        assert_eq!(s.reachability(), Reachability::LocalNetwork);
        assert!(s.reachability().kad_server());
        assert!(!s.wants_relay(&PeerId::random()));
    }

    #[test]
    fn a_failed_public_address_means_nat_then_relay_then_hole_punching() {
        let mut s = ReachabilityState::new(true);
        s.on_autonat(a("/ip4/198.51.100.101/tcp/4001"), PeerId::random(), false);
        assert_eq!(s.reachability(), Reachability::Unreachable);
        assert!(!s.reachability().kad_server());
        let (r1, r2, r3) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert!(s.wants_relay(&r1));
        s.on_relay_asked(r1);
        assert!(!s.wants_relay(&r1), "asked once");
        s.on_relay_asked(r2);
        assert!(!s.wants_relay(&r3), "two relays are enough");
        s.on_relay_accepted(r1, a("/ip4/198.51.100.11/tcp/4001/p2p-circuit"));
        assert_eq!(s.reachability(), Reachability::NatRelayed);
        s.on_relay_lost(r2);
        assert!(s.wants_relay(&r3), "a refused relay is replaced");
        s.on_hole_punch(false);
        assert_eq!(s.reachability(), Reachability::NatRelayed);
        // DCUtR's own verdict is not enough (a punch on a LAN "works"
        // too); a direct link at a public address to a peer behind NAT is.
        s.on_hole_punch(true);
        assert_eq!(s.reachability(), Reachability::NatRelayed);
        s.on_direct_nat_link(PeerId::random());
        assert_eq!(s.reachability(), Reachability::NatHolePunching);
        assert_eq!(s.report().direct_nat_peers, 1);
        let r = s.report();
        assert_eq!((r.hole_punches_ok, r.hole_punches_failed), (1, 1));
        assert_eq!(r.relays.len(), 1);
        assert_eq!(r.upnp, Upnp::Searching);
    }

    #[test]
    fn one_confirmed_public_address_makes_a_node_public() {
        let mut s = ReachabilityState::new(false);
        let server = PeerId::random();
        s.on_autonat(a("/ip4/198.51.100.11/udp/4101/quic-v1"), server, false);
        s.on_autonat(a("/ip4/198.51.100.11/tcp/4001"), server, true);
        assert_eq!(s.reachability(), Reachability::Public);
        assert!(s.reachability().kad_server());
        assert!(!s.wants_relay(&PeerId::random()));
        // A later failure of a confirmed address does not undo it.
        s.on_autonat(a("/ip4/198.51.100.11/tcp/4001"), PeerId::random(), false);
        assert_eq!(s.reachability(), Reachability::Public);
        assert_eq!(s.report().autonat_servers, 2);
    }

    #[test]
    fn upnp_mapping_is_reported_and_its_loss_forgotten() {
        let mut s = ReachabilityState::new(true);
        let ext = a("/ip4/203.0.113.5/tcp/4001");
        s.on_upnp(Upnp::Mapped, Some((ext.clone(), true)));
        assert_eq!(s.report().upnp, Upnp::Mapped);
        s.on_upnp(Upnp::Mapped, Some((ext, false)));
        assert_eq!(s.report().upnp, Upnp::Searching);
        s.on_upnp(Upnp::NoGateway, None);
        assert_eq!(s.report().upnp, Upnp::NoGateway);
    }
}
