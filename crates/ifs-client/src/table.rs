//! The preliminary table: candidates from the entry node's node table,
//! probed for RTT and IP hops, checked and ranked by
//! [`ifs_core::placement`].

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use ifs_core::NodeId;
use ifs_core::placement::{self, AddrRange, Candidate, Discard, Policy};
use ifs_core::proto::{CtlRequest, CtlResponse, PeerRow};
use ifs_net::{Client, Multiaddr, PeerId};
use tracing::{debug, info};

use crate::error::ClientError;
use crate::session::Session;

/// Time allowed for one RTT or hop probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Least time the slowest probes get once enough nodes have answered.
const PROBE_GRACE: Duration = Duration::from_millis(500);

/// One known node and how to reach it.
#[derive(Clone, Debug)]
pub struct Known {
    /// Its id.
    pub node: NodeId,
    /// Its libp2p peer id.
    pub peer: PeerId,
    /// The entry node's row for it.
    pub row: PeerRow,
}

impl Known {
    /// Whether its report lists a relay circuit: it sits behind NAT.
    pub fn behind_nat(&self) -> bool {
        self.row.addrs.iter().any(|a| a.contains("/p2p-circuit"))
    }
}

/// A probed node: what placement needs to know about it.
#[derive(Clone, Debug)]
pub struct Probed {
    /// The node.
    pub known: Known,
    /// Measured application round trip, ms (`None`: unreachable).
    pub rtt_ms: Option<f64>,
    /// Measured IP hops (`None`: no answer).
    pub hops: Option<u32>,
}

/// The IP and TCP port of the first `/ip4|ip6/…/tcp/…` address: where the
/// node's UDP hop responder listens.
pub fn hop_target(addrs: &[String]) -> Option<SocketAddr> {
    addrs.iter().find_map(|a| {
        let parts: Vec<&str> = a.split('/').collect();
        let ip = parts.windows(2).find_map(|w| match w[0] {
            "ip4" | "ip6" => IpAddr::from_str(w[1]).ok(),
            _ => None,
        })?;
        let port = parts.windows(2).find_map(|w| match w[0] {
            "tcp" => w[1].parse::<u16>().ok(),
            _ => None,
        })?;
        Some(SocketAddr::new(ip, port))
    })
}

/// The placement view of a probed node.
pub fn candidate_of(p: &Probed) -> Candidate {
    Candidate {
        rtt_ms: p.rtt_ms,
        hops: p.hops,
        free_bytes: p.known.row.free_bytes,
        owner_need_pct: p.known.row.owner_need_pct,
        reputation: p.known.row.reputation,
        range: hop_target(&p.known.row.addrs).map(|s| AddrRange::of(s.ip())),
        alive: p.known.row.state == "alive",
        up_bps: p.known.row.up_bps,
        down_bps: p.known.row.down_bps,
    }
}

/// Rank probed nodes: indexes into `probed`, best first, and every discarded
/// node with the reason (logged at info, shown with `-v`).
pub fn rank(probed: &[Probed], policy: &Policy) -> (Vec<usize>, Vec<(usize, Discard)>) {
    let cands: Vec<Candidate> = probed.iter().map(candidate_of).collect();
    let discards = placement::discards(&cands, policy);
    for (i, why) in &discards {
        info!(node = %probed[*i].known.peer, "discarded candidate: {why}");
    }
    (placement::rank(&cands, policy, cands.len()), discards)
}

/// The entry node's node table, as dialable peers (addresses registered).
pub async fn known_nodes(session: &Session) -> Result<Vec<Known>, ClientError> {
    let rows = match session.request(&CtlRequest::Peers).await? {
        CtlResponse::Peers(rows) => rows,
        other => {
            return Err(ClientError::Unexpected {
                peer: session.entry().to_string(),
                what: format!("{other:?}"),
            });
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Ok(peer) = PeerId::from_str(&row.peer_id) else {
            debug!(peer = %row.peer_id, "skipping a row with a bad peer id");
            continue;
        };
        let Some(node) = ifs_net::peer_id_to_node_id(&peer) else {
            continue;
        };
        register(session.net(), peer, &row.addrs).await;
        out.push(Known { node, peer, row });
    }
    Ok(out)
}

/// Tell the swarm where `peer` listens, so requests and streams can dial it.
async fn register(net: &Client, peer: PeerId, addrs: &[String]) {
    for a in addrs {
        match transport_addr(a, &peer) {
            Some(ma) => {
                debug!(%peer, addr = %ma, "dialable at");
                let _ = net.add_address(peer, ma).await;
            }
            None => debug!(%peer, addr = %a, "not an address of this node"),
        }
    }
}

/// `addr` without its trailing `/p2p/<peer>`, as the swarm wants it; `None`
/// when it does not parse or names another peer. A relay circuit
/// (`…/p2p/RELAY/p2p-circuit/p2p/PEER`) keeps the relay's id.
fn transport_addr(addr: &str, peer: &PeerId) -> Option<Multiaddr> {
    use ifs_net::reachability::Protocol;
    let mut ma = Multiaddr::from_str(addr).ok()?;
    match ma.iter().last() {
        Some(Protocol::P2p(p)) if p == *peer => {
            ma.pop();
            Some(ma)
        }
        Some(Protocol::P2p(_)) => None,
        _ => Some(ma),
    }
}

/// Probe every node (RTT over the control protocol, IP hops over UDP), all
/// at once. Nodes the entry node does not see alive are not probed (they
/// come back unmeasured at once): a dead node would hold every command up
/// for the probe's timeout.
///
/// Once `enough` nodes have answered, the rest get a grace of four times
/// the time taken so far (at least [`PROBE_GRACE`]) and are then left
/// unmeasured: one killed node, still alive in the entry node's table,
/// must not hold every put up for the whole probe timeout.
///
/// Nodes that list a relay circuit (behind NAT) are probed after the rest:
/// the relay client gives a circuit dial up when a dial of its relay is
/// already under way, as it is while the relays themselves are probed.
pub async fn probe_all(session: &Session, nodes: Vec<Known>, enough: usize) -> Vec<Probed> {
    let (late, early): (Vec<_>, Vec<_>) = nodes
        .into_iter()
        .enumerate()
        .partition(|(_, k)| k.behind_nat());
    let (early_at, early): (Vec<usize>, Vec<Known>) = early.into_iter().unzip();
    let (late_at, late): (Vec<usize>, Vec<Known>) = late.into_iter().unzip();
    let first = probe_wave(session, early, enough).await;
    let answered = first.iter().filter(|p| p.rtt_ms.is_some()).count();
    let second = if late.is_empty() {
        Vec::new()
    } else {
        probe_wave(session, late, enough.saturating_sub(answered).max(1)).await
    };
    let mut out: Vec<(usize, Probed)> = early_at
        .into_iter()
        .zip(first)
        .chain(late_at.into_iter().zip(second))
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, p)| p).collect()
}

/// [`probe_all`] of one wave.
async fn probe_wave(session: &Session, nodes: Vec<Known>, enough: usize) -> Vec<Probed> {
    use futures::StreamExt;
    let start = Instant::now();
    let mut out: Vec<Option<Probed>> = vec![None; nodes.len()];
    let mut pending: futures::stream::FuturesUnordered<_> = nodes
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, k)| async move { (i, probe_one(session, k).await) })
        .collect();
    let (mut answered, mut cutoff) = (0, None::<tokio::time::Instant>);
    loop {
        let next = match cutoff {
            Some(at) => match tokio::time::timeout_at(at, pending.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => pending.next().await,
        };
        let Some((i, p)) = next else { break };
        answered += usize::from(p.rtt_ms.is_some());
        out[i] = Some(p);
        if cutoff.is_none() && answered >= enough.max(1) {
            let grace = (start.elapsed() * 4).max(PROBE_GRACE);
            cutoff = Some(tokio::time::Instant::now() + grace);
        }
    }
    out.into_iter()
        .zip(nodes)
        .map(|(p, known)| {
            p.unwrap_or_else(|| {
                debug!(node = %known.peer, "no answer within the probe grace");
                Probed {
                    known,
                    rtt_ms: None,
                    hops: None,
                }
            })
        })
        .collect()
}

async fn probe_one(session: &Session, known: Known) -> Probed {
    if known.row.state != "alive" {
        debug!(node = %known.peer, state = %known.row.state, "not probed");
        return Probed {
            known,
            rtt_ms: None,
            hops: None,
        };
    }
    let ping = || async {
        let start = Instant::now();
        let req = CtlRequest::Probe {
            nonce: rand::random(),
        };
        match tokio::time::timeout(PROBE_TIMEOUT, session.request_to(known.peer, &req)).await {
            Ok(Ok(CtlResponse::Pong { .. })) => Some(start.elapsed().as_secs_f64() * 1000.0),
            Ok(Ok(other)) => {
                debug!(node = %known.peer, "probe answered with {other:?}");
                None
            }
            Ok(Err(e)) => {
                debug!(node = %known.peer, "probe failed: {e}");
                None
            }
            Err(_) => None,
        }
    };
    // The first probe usually dials the node (TCP, Noise, Yamux, protocol
    // negotiation, all candidates at once): it times the connection setup
    // and the client's own CPU, hundreds of ms on a busy machine, which
    // drowns the differences between paths. The round trip is the second
    // probe, on the warm connection.
    let rtt = async {
        ping().await?;
        ping().await
    };
    let hops = async {
        let target = hop_target(&known.row.addrs)?;
        ifs_net::hops::probe_hops(target, PROBE_TIMEOUT)
            .await
            .ok()
            .map(|r| u32::from(r.hops))
    };
    let (rtt_ms, hops) = tokio::join!(rtt, hops);
    debug!(node = %known.peer, ?rtt_ms, ?hops, "probed");
    Probed {
        known,
        rtt_ms,
        hops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, addrs: &[&str]) -> PeerRow {
        PeerRow {
            peer_id: String::new(),
            state: state.into(),
            addrs: addrs.iter().map(|s| s.to_string()).collect(),
            donated_bytes: 100,
            used_bytes: 0,
            reserved_bytes: 0,
            free_bytes: 100,
            owner_need_pct: 0,
            rtt_ms: None,
            hops: None,
            report_age_s: 0,
            seq: 1,
            reputation: 1.0,
            is_self: false,
            up_bps: 0,
            down_bps: 0,
        }
    }

    #[test]
    fn the_hop_target_is_the_first_ip_tcp_address() {
        let addrs = vec![
            "/ip4/10.0.0.1/udp/9/quic-v1".to_string(),
            "/ip4/127.0.0.1/tcp/4100/p2p/12D3Koo".to_string(),
        ];
        assert_eq!(hop_target(&addrs), Some("127.0.0.1:4100".parse().unwrap()));
        assert_eq!(hop_target(&["/dns4/x/tcp/1".to_string()]), None);
        assert_eq!(hop_target(&[]), None);
    }

    #[test]
    fn a_relay_circuit_keeps_its_relay_when_the_peer_id_is_cut() {
        let relay: PeerId = "12D3KooWDQ5nzaKMukQVTTgDKHqBxF4oBNRULM7B5vqL5kBqJZBj"
            .parse()
            .unwrap();
        let peer: PeerId = "12D3KooWCUK1fMYWuaGBqN1wCA5A8cYPtyDfSHUCRWM5EYGXTRH2"
            .parse()
            .unwrap();
        let circuit = format!("/ip4/198.51.100.12/tcp/4100/p2p/{relay}/p2p-circuit/p2p/{peer}");
        assert_eq!(
            transport_addr(&circuit, &peer).unwrap().to_string(),
            format!("/ip4/198.51.100.12/tcp/4100/p2p/{relay}/p2p-circuit")
        );
        let direct = format!("/ip4/10.0.0.1/tcp/4100/p2p/{peer}");
        assert_eq!(
            transport_addr(&direct, &peer).unwrap().to_string(),
            "/ip4/10.0.0.1/tcp/4100"
        );
        assert_eq!(
            transport_addr("/ip4/10.0.0.1/tcp/1", &peer)
                .unwrap()
                .to_string(),
            "/ip4/10.0.0.1/tcp/1"
        );
        // An address that names another peer is not that peer's.
        assert!(transport_addr(&format!("/ip4/10.0.0.1/tcp/1/p2p/{relay}"), &peer).is_none());
        assert!(transport_addr("not an address", &peer).is_none());
    }

    #[test]
    fn dead_or_unreachable_nodes_are_discarded_with_a_reason() {
        let mut rng = rand::rng();
        let mut known = |state: &str| {
            let key = ifs_core::keys::NodeKey::generate(&mut rng);
            let node = key.node_id();
            Known {
                node,
                peer: ifs_net::node_id_to_peer_id(&node).unwrap(),
                row: row(state, &["/ip4/127.0.0.1/tcp/1"]),
            }
        };
        let probed = vec![
            Probed {
                known: known("alive"),
                rtt_ms: Some(1.0),
                hops: Some(0),
            },
            Probed {
                known: known("dead"),
                rtt_ms: Some(1.0),
                hops: Some(0),
            },
            Probed {
                known: known("alive"),
                rtt_ms: None,
                hops: None,
            },
        ];
        let (ranked, discards) = rank(&probed, &Policy::default());
        assert_eq!(ranked, vec![0]);
        assert_eq!(
            discards,
            vec![(1, Discard::NotAlive), (2, Discard::Unreachable)]
        );
    }
}
