//! `ifsnode status`: the entry node's own state. Exits 0 only when the node
//! answers and sees at least one other node alive, so it works as a
//! container health check (`--timeout` keeps it quick).

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_session;
use crate::cmd::peers::PeerArgs;
use crate::human;
use crate::stdout::{out, outln};
use anyhow::bail;
use clap::Args;
use ifs_core::bandwidth::RateText;
use ifs_core::proto::{CtlRequest, CtlResponse, NodeStatus};
use ifs_core::reachability::ReachabilityReport;

/// Arguments of `ifsnode status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print the status as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Exit 0 only when at least N other nodes are alive in its table
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_alive: u32,
}

/// Run `ifsnode status`.
pub fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let (status, known) = with_session(global, &args.peer, "status", async |session| {
        let status = match session.request(&CtlRequest::Status).await? {
            CtlResponse::Status(s) => s,
            other => bail!("unexpected answer to a status request: {other:?}"),
        };
        // The other nodes in its table: its open connections also count
        // clients (this command's own among them), so they say little.
        let known = match session.request(&CtlRequest::Peers).await? {
            CtlResponse::Peers(rows) => rows.iter().filter(|r| !r.is_self).count(),
            other => bail!("unexpected answer to a peers request: {other:?}"),
        };
        Ok((status, known as u64))
    })?;
    let shown = if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?)
    } else {
        out!("{}", describe(&status, known))
    };
    // A health check's verdict matters more than whether it could be shown.
    let node = human::short_peer(&status.node.peer_id);
    if status.alive_peers == 0 && args.min_alive > 0 {
        bail!("node {node} is up but sees no other node alive");
    }
    if status.alive_peers < args.min_alive {
        bail!(
            "node {node} is up but sees only {} alive, fewer than --min-alive {}",
            crate::cmd::count(u64::from(status.alive_peers), "other node"),
            args.min_alive
        );
    }
    shown
}

/// The reachability lines of `status`: the verdict, then what it rests on.
pub fn reach_lines(r: &ReachabilityReport) -> String {
    let mut out = format!("  reach     {}\n", r.reachability.describe());
    for a in &r.confirmed {
        out += &format!("  external  {a} (dialled back by a peer)\n");
    }
    for a in &r.upnp_addrs {
        out += &format!("  external  {a} (mapped by UPnP)\n");
    }
    for a in &r.relays {
        out += &format!("  relay     {a}\n");
    }
    if r.hole_punches_ok + r.hole_punches_failed > 0 || r.direct_nat_peers > 0 {
        out += &format!(
            "  punches   {} worked, {} failed; direct with {} behind NAT\n",
            r.hole_punches_ok,
            r.hole_punches_failed,
            crate::cmd::count(r.direct_nat_peers as u64, "peer")
        );
    }
    out
}

/// The status in a few lines for people; `known` is how many other nodes
/// its table holds.
pub fn describe(s: &NodeStatus, known: u64) -> String {
    let n = &s.node;
    let mut out = format!(
        "IFS node {} ({}), version {}\n",
        n.peer_id, n.state, s.version
    );
    out += &format!(
        "  uptime    {} s; {} of {} alive; {} held\n",
        s.uptime_s,
        s.alive_peers,
        crate::cmd::count(known, "other node"),
        crate::cmd::count(s.chunks, "chunk")
    );
    out += &format!(
        "  capacity  {} donated, {} used, {} reserved, {} free; owner needs {}%\n",
        human::bytes(n.donated_bytes),
        human::bytes(n.used_bytes),
        human::bytes(n.reserved_bytes),
        human::bytes(n.free_bytes),
        n.owner_need_pct
    );
    out += &format!(
        "  bandwidth up {}, down {} (chunk traffic)\n",
        RateText(s.bandwidth.up_bps),
        RateText(s.bandwidth.down_bps)
    );
    if let Some(r) = &s.reachability {
        out += &reach_lines(r);
    }
    if s.awaiting_collection_bytes > 0 || s.quarantined_bytes > 0 {
        out += &format!(
            "  unclaimed {} awaiting collection (no committed file names it), {} quarantined\n",
            human::bytes(s.awaiting_collection_bytes),
            human::bytes(s.quarantined_bytes)
        );
    }
    out += &format!(
        "  report    last capacity report {} s ago\n",
        n.report_age_s
    );
    for a in &n.addrs {
        out += &format!("  listen    {a}\n");
    }
    out
}
