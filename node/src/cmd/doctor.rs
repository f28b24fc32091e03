//! `ifsnode doctor`: can peers reach this node, and if not, what to do.
//!
//! Asks the node what AutoNAT, its relays, hole punching and UPnP found
//! (see `ifs_net::reachability`), dials each of its addresses afresh from
//! here, and says in plain words what the volunteer can change: forward a
//! port, turn UPnP on, or nothing at all.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use ifs_core::proto::{CtlRequest, CtlResponse, NodeStatus};
use ifs_core::reachability::{Reachability, ReachabilityReport, Upnp};
use ifs_net::Multiaddr;
use ifs_net::reachability::{AddrScope, addr_scope, is_relayed};
use multiaddr::Protocol;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_session;
use crate::cmd::peers::PeerArgs;
use crate::stdout::outln;

/// Arguments of `ifsnode doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Which node to examine.
    #[command(flatten)]
    pub peer: PeerArgs,
}

/// Time allowed for each fresh dial of one of the node's addresses.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// One finding: a verdict word and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `ok`, `warn` or `fail`.
    pub level: &'static str,
    /// What was found.
    pub text: String,
}

fn ok(text: String) -> Finding {
    Finding { level: "ok", text }
}
fn warn(text: String) -> Finding {
    Finding {
        level: "warn",
        text,
    }
}
fn fail(text: String) -> Finding {
    Finding {
        level: "fail",
        text,
    }
}

/// Run `ifsnode doctor`.
pub fn run(global: &GlobalArgs, args: DoctorArgs) -> anyhow::Result<()> {
    let (status, dials) = with_session(global, &args.peer, "doctor", async |session| {
        let status = match session.request(&CtlRequest::Status).await? {
            CtlResponse::Status(s) => s,
            other => bail!("unexpected answer to a status request: {other:?}"),
        };
        let mut dials = Vec::new();
        for addr in status.node.addrs.iter().take(8) {
            let Ok(ma) = addr.parse::<Multiaddr>() else {
                continue;
            };
            let ma = with_peer(ma, &status.node.peer_id);
            let answered = matches!(
                tokio::time::timeout(DIAL_TIMEOUT, session.net().dial_fresh(ma)).await,
                Ok(Ok(_))
            );
            dials.push((addr.clone(), answered));
        }
        Ok((status, dials))
    })?;
    outln!(
        "ifsnode doctor: node {} (version {}, up {} s)",
        status.node.peer_id,
        status.version,
        status.uptime_s
    )?;
    let (findings, todo) = examine(&status, &dials);
    for f in &findings {
        outln!("  {:<5} {}", f.level, f.text)?;
    }
    if todo.is_empty() {
        outln!("Nothing to do.")?;
    } else {
        outln!("What to do:")?;
        for t in &todo {
            outln!("  - {t}")?;
        }
    }
    Ok(())
}

/// "1 hole punch", "3 hole punches".
fn punches(n: u64) -> String {
    if n == 1 {
        "1 hole punch".into()
    } else {
        format!("{n} hole punches")
    }
}

/// `addr` ending in `/p2p/<peer>` (added when missing).
fn with_peer(addr: Multiaddr, peer: &str) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        return addr;
    }
    match peer.parse() {
        Ok(p) => addr.with(Protocol::P2p(p)),
        Err(_) => addr,
    }
}

/// The TCP port of the first address that has one.
fn tcp_port(addrs: &[String]) -> Option<u16> {
    addrs.iter().find_map(|a| {
        a.parse::<Multiaddr>().ok()?.iter().find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
    })
}

/// The findings and the advice for a node's status and the fresh dials of
/// its addresses (`(address, answered)`). Pure, for tests.
pub fn examine(s: &NodeStatus, dials: &[(String, bool)]) -> (Vec<Finding>, Vec<String>) {
    let mut found = Vec::new();
    let mut todo = Vec::new();
    found.push(ok("the node answers its owner's commands".into()));
    if s.alive_peers == 0 {
        found.push(fail("it sees no other node alive".into()));
        todo.push(
            "give it a bootstrap peer that is up (`bootstrap` in config.toml) and check that \
             this machine can reach it"
                .into(),
        );
    } else {
        found.push(ok(format!(
            "{} alive, connected to {}",
            crate::cmd::count(u64::from(s.alive_peers), "other node"),
            s.connected_peers
        )));
    }
    for (addr, answered) in dials {
        let parsed = addr.parse::<Multiaddr>().ok();
        let scope = match parsed.as_ref() {
            Some(a) if is_relayed(a) => " (through a relay)",
            Some(a) => addr_scope(a).map_or("", |sc| match sc {
                AddrScope::Loopback => " (loopback: this machine only)",
                AddrScope::Private => " (private: this network only)",
                AddrScope::Public => " (public)",
            }),
            None => "",
        };
        // The node's own id ends every address: shown once, in the title.
        let addr = addr
            .strip_suffix(&format!("/p2p/{}", s.node.peer_id))
            .unwrap_or(addr);
        if *answered {
            found.push(ok(format!("{addr}{scope} answers a fresh dial from here")));
        } else {
            found.push(warn(format!(
                "{addr}{scope} does not answer a fresh dial from here"
            )));
        }
    }
    let port = tcp_port(&s.node.addrs);
    let forward = match port {
        Some(p) => format!(
            "forward TCP port {p} (and the QUIC UDP port) on your router to this machine, \
             or set `upnp = true` in config.toml if the router speaks UPnP"
        ),
        None => "forward the node's listen port on your router to this machine, or set \
                 `upnp = true` in config.toml if the router speaks UPnP"
            .into(),
    };
    let Some(r) = &s.reachability else {
        found.push(warn(
            "the node does not report its reachability (an older version?)".into(),
        ));
        return (found, todo);
    };
    reach_findings(r, &forward, &mut found, &mut todo);
    (found, todo)
}

fn reach_findings(
    r: &ReachabilityReport,
    forward: &str,
    found: &mut Vec<Finding>,
    todo: &mut Vec<String>,
) {
    match r.reachability {
        Reachability::Public => found.push(ok(format!(
            "public: peers dialled it back at {}",
            r.confirmed.join(", ")
        ))),
        Reachability::LocalNetwork => found.push(ok(
            "local network only: every address peers tested is private, so nothing is known \
             beyond this network (a LAN or a test network); peers outside it cannot dial a \
             private address"
                .into(),
        )),
        Reachability::Unknown => {
            found.push(warn(format!(
                "no verdict yet: {} asked so far; it takes a connected peer \
                 that runs AutoNAT and about a minute",
                crate::cmd::count(r.autonat_servers as u64, "peer")
            )));
            todo.push("wait a minute and run `ifsnode doctor` again".into());
        }
        Reachability::NatHolePunching => {
            found.push(ok(format!(
                "behind NAT: {} tested and not reachable from outside; \
                 reachable through {}; hole punching works: direct connections with {} \
                 behind NAT ({} of {} punches reported done)",
                r.unreachable.join(", "),
                crate::cmd::count(r.relays.len() as u64, "relay"),
                crate::cmd::count(r.direct_nat_peers as u64, "peer"),
                r.hole_punches_ok,
                r.hole_punches_ok + r.hole_punches_failed
            )));
            todo.push(format!(
                "nothing is required: chunks move over hole-punched direct connections. To be \
                 dialled directly (faster first contact, no relay needed): {forward}"
            ));
        }
        Reachability::NatRelayed => {
            found.push(warn(format!(
                "behind NAT and relayed only: {} failed, none worked. Your router \
                 probably maps each connection to a new port (symmetric NAT) or a firewall \
                 drops unsolicited packets",
                punches(r.hole_punches_failed)
            )));
            todo.push(format!(
                "the node still stores chunks, over the connections it opens itself to \
                 public nodes, but nodes behind other NATs cannot send it any: {forward}"
            ));
        }
        Reachability::Unreachable => {
            found.push(fail(
                "behind NAT with no relay slot: no peer can reach it; it can only dial out".into(),
            ));
            todo.push(format!(
                "make sure a bootstrap peer has a public address (it offers relay slots), \
                 or {forward}"
            ));
        }
    }
    match r.upnp {
        Upnp::Off => {}
        Upnp::Searching => found.push(warn("UPnP: still looking for a gateway".into())),
        Upnp::Mapped => found.push(ok(format!(
            "UPnP: the router forwards {}",
            r.upnp_addrs.join(", ")
        ))),
        Upnp::NoGateway => found.push(warn(
            "UPnP: no gateway answered (UPnP may be off on the router; routers often \
             answer late, so take this as a hint)"
                .into(),
        )),
        Upnp::NonRoutableGateway => found.push(warn(
            "UPnP: the router is itself behind another NAT (carrier-grade NAT?): a port \
             mapping there does not make this node public"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Option<ReachabilityReport>) -> NodeStatus {
        let mut s: NodeStatus = serde_json::from_value(serde_json::json!({
            "node": {
                "peer_id": "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                "state": "alive",
                "addrs": ["/ip4/10.0.0.5/tcp/4001"],
                "donated_bytes": 0, "used_bytes": 0, "reserved_bytes": 0,
                "free_bytes": 0, "owner_need_pct": 0, "report_age_s": 0, "seq": 1,
                "reputation": 0.5, "is_self": true, "rtt_ms": null, "hops": null,
                "up_bps": 0, "down_bps": 0
            },
            "version": "0.1.0", "uptime_s": 10, "alive_peers": 2,
            "connected_peers": 2, "chunks": 0
        }))
        .expect("status fixture");
        s.reachability = r.map(Box::new);
        s
    }

    fn report(reachability: Reachability) -> ReachabilityReport {
        ReachabilityReport {
            reachability,
            confirmed: vec![],
            unreachable: vec!["/ip4/198.51.100.101/tcp/4001".into()],
            local_confirmed: vec![],
            relays: vec!["/ip4/198.51.100.11/tcp/4001/p2p/x/p2p-circuit".into()],
            hole_punches_ok: 0,
            hole_punches_failed: 3,
            direct_nat_peers: 0,
            autonat_servers: 2,
            upnp: Upnp::NoGateway,
            upnp_addrs: vec![],
        }
    }

    #[test]
    fn a_relayed_only_node_is_told_to_forward_its_port() {
        let s = status(Some(report(Reachability::NatRelayed)));
        let (found, todo) = examine(&s, &[("/ip4/10.0.0.5/tcp/4001".into(), true)]);
        let text: Vec<_> = found.iter().map(|f| f.text.as_str()).collect();
        assert!(text.iter().any(|t| t.contains("symmetric NAT")), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("3 hole punches failed")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("(private: this network only) answers"))
        );
        assert!(text.iter().any(|t| t.starts_with("UPnP: no gateway")));
        assert_eq!(todo.len(), 1);
        assert!(todo[0].contains("forward TCP port 4001"), "{todo:?}");
    }

    #[test]
    fn a_public_node_needs_nothing_and_an_alone_node_needs_a_seed() {
        let mut r = report(Reachability::Public);
        r.confirmed = vec!["/ip4/198.51.100.11/tcp/4001".into()];
        r.upnp = Upnp::Off;
        let (found, todo) = examine(&status(Some(r.clone())), &[]);
        assert!(todo.is_empty(), "{todo:?}");
        assert!(found.iter().all(|f| f.level == "ok"), "{found:?}");

        let mut s = status(Some(r));
        s.alive_peers = 0;
        let (found, todo) = examine(&s, &[("/ip4/10.0.0.5/tcp/4001".into(), false)]);
        assert!(found.iter().any(|f| f.level == "fail"));
        assert!(todo[0].contains("bootstrap"));
    }

    #[test]
    fn an_unreachable_node_fails_and_an_old_node_is_named() {
        let (found, todo) = examine(&status(Some(report(Reachability::Unreachable))), &[]);
        assert!(
            found
                .iter()
                .any(|f| f.level == "fail" && f.text.contains("no relay"))
        );
        assert!(todo[0].contains("public address"));
        let (found, _) = examine(&status(None), &[]);
        assert!(found.iter().any(|f| f.text.contains("older version")));
    }
}
