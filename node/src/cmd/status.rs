//! `ifsnode status`: the entry node's own state. Exits 0 only when the node
//! answers and sees at least one other node alive, so it works as a
//! container health check (`--timeout` keeps it quick).

use crate::cmd::GlobalArgs;
use crate::cmd::peers::{PeerArgs, ask, human_bytes};
use crate::stdout::{out, outln};
use anyhow::bail;
use clap::Args;
use ifs_core::proto::{CtlRequest, CtlResponse, NodeStatus};

/// Arguments of `ifsnode status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print the status as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// Run `ifsnode status`.
pub fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let status = match ask(global, &args.peer, CtlRequest::Status)? {
        CtlResponse::Status(s) => s,
        other => bail!("unexpected answer to a status request: {other:?}"),
    };
    let shown = if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?)
    } else {
        out!("{}", describe(&status))
    };
    // A health check's verdict matters more than whether it could be shown.
    if status.alive_peers == 0 {
        bail!(
            "node {} is up but sees no other node alive",
            status.node.peer_id
        );
    }
    shown
}

/// The status in a few lines for people.
pub fn describe(s: &NodeStatus) -> String {
    let n = &s.node;
    let mut out = format!(
        "IFS node {} ({}), version {}\n",
        n.peer_id, n.state, s.version
    );
    out += &format!(
        "  uptime    {} s; {} alive, {} connected; {} held\n",
        s.uptime_s,
        crate::cmd::count(u64::from(s.alive_peers), "peer"),
        s.connected_peers,
        crate::cmd::count(s.chunks, "chunk")
    );
    out += &format!(
        "  capacity  {} donated, {} used, {} reserved, {} free; owner needs {}%\n",
        human_bytes(n.donated_bytes),
        human_bytes(n.used_bytes),
        human_bytes(n.reserved_bytes),
        human_bytes(n.free_bytes),
        n.owner_need_pct
    );
    if s.awaiting_collection_bytes > 0 || s.quarantined_bytes > 0 {
        out += &format!(
            "  unclaimed {} awaiting collection (no committed file names it), {} quarantined\n",
            human_bytes(s.awaiting_collection_bytes),
            human_bytes(s.quarantined_bytes)
        );
    }
    out += &format!("  report    seq {}\n", n.seq);
    for a in &n.addrs {
        out += &format!("  listen    {a}\n");
    }
    out
}
