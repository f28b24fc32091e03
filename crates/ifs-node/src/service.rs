//! The node's event loop: one task that reads network events and timers and
//! hands each piece of work to a short-lived task, so a slow request never
//! stalls gossip or the swarm.

use std::sync::Arc;
use std::time::Duration;

use ifs_net::hops::HopResponder;
use ifs_net::{Multiaddr, NetEvent};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::now_ms;

mod audit;
mod caps;
mod chunks;
mod control;
mod durability;
mod grants;
mod observe;
mod offload;
mod records;
mod repair;
mod replica;
mod reputation;
mod scrub;
mod shared;
mod trim;

pub(crate) use observe::watch;
pub(crate) use shared::{Shared, lock};

/// The gossip topic of capacity reports.
pub const CAPACITY_TOPIC: &str = "ifs/capacity/1";

/// The TCP port of a multiaddr, if it has one.
pub(crate) fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Run the node until `stop` turns true.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<NetEvent>,
    mut stop: watch::Receiver<bool>,
    responder: Option<HopResponder>,
) {
    if let Err(e) = shared.net.subscribe(CAPACITY_TOPIC).await {
        warn!("cannot subscribe to {CAPACITY_TOPIC}: {e}");
    }
    // The responder answers on its own tasks for as long as it is held.
    let _responder = responder;
    let interval = shared.cfg.capacity_interval;
    // Check often whether a report is due: changes over 1% go out at once.
    let mut report_tick = tokio::time::interval(Duration::from_millis(
        (interval.as_millis() as u64 / 10).clamp(100, 1000),
    ));
    let mut persist_tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    let mut probe_tick = tokio::time::interval(Duration::from_secs(2));
    // Expired reservations go back within half a TTL (every 5 s at most).
    let mut sweep_tick = tokio::time::interval(
        (shared.cfg.max_reservation_ttl / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(5)),
    );
    let mut republish_tick = tokio::time::interval(shared.cfg.republish_interval);
    republish_tick.tick().await;
    let mut scrub_tick = tokio::time::interval(shared.cfg.durability.scrub_interval);
    scrub_tick.tick().await;
    let mut repair_tick = tokio::time::interval(shared.cfg.durability.repair_interval);
    repair_tick.tick().await;
    info!(peer = %shared.net.local_peer_id(), addrs = ?shared.announce, "node running");
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            ev = events.recv() => match ev {
                Some(ev) => handle_event(&shared, ev),
                None => { warn!("network task ended"); break; }
            },
            _ = report_tick.tick() => {
                let s = shared.clone();
                tokio::spawn(async move {
                    s.check_reach(now_ms()).await;
                    s.maybe_publish_report(now_ms()).await;
                });
            }
            _ = persist_tick.tick() => {
                let s = shared.clone();
                tokio::spawn(async move { s.persist_table().await });
            }
            _ = probe_tick.tick() => shared.clone().probe_due_peers(now_ms()),
            _ = sweep_tick.tick() => {
                let s = shared.clone();
                tokio::spawn(async move {
                    s.sweep(now_ms()).await;
                    s.route_around_dead(now_ms()).await;
                    s.rejoin_if_alone().await;
                });
            }
            _ = republish_tick.tick() => {
                let s = shared.clone();
                tokio::spawn(async move { s.republish_records().await });
            }
            _ = scrub_tick.tick() => { tokio::spawn(shared.clone().scrub_pass()); }
            _ = repair_tick.tick() => { tokio::spawn(shared.clone().durability_pass(now_ms())); }
        }
    }
    debug!("node event loop stopped");
}

fn handle_event(shared: &Arc<Shared>, ev: NetEvent) {
    let s = shared.clone();
    match ev {
        NetEvent::Gossip {
            topic,
            source,
            propagated_by,
            id,
            data,
        } => {
            tokio::spawn(async move {
                s.on_gossip(&topic, source, propagated_by, id, data, now_ms())
                    .await
            });
        }
        NetEvent::Request { peer, data, token } => {
            tokio::spawn(async move { s.on_request(peer, data, token).await });
        }
        NetEvent::InboundRecord { peer, key, value } => {
            tokio::spawn(async move { s.on_inbound_record(peer, key, value).await });
        }
        NetEvent::Identified {
            peer,
            agent_version,
            ..
        } => {
            if agent_version.starts_with("ifsnode/") {
                tokio::spawn(async move { s.exchange_tables(peer, now_ms()).await });
            }
        }
        NetEvent::PingRtt { peer, rtt } => s.on_rtt(peer, rtt),
        NetEvent::InboundStream { peer, stream } => {
            tokio::spawn(async move { s.on_stream(peer, stream).await });
        }
        NetEvent::PeerConnected { peer, addr } => {
            debug!(%peer, %addr, "connected");
            s.on_connected(peer);
        }
        NetEvent::PeerDisconnected { peer } => {
            debug!(%peer, "disconnected");
            tokio::spawn(async move { s.check_disconnected(peer).await });
        }
    }
}
