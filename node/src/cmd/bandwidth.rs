//! `ifsnode bandwidth [--up RATE] [--down RATE]`: change (or show) the
//! running node's caps on chunk traffic. Like `ifsnode donate`, the command
//! is signed with the node's own key, and the node writes the new caps into
//! the `[bandwidth]` table of its `config.toml` before they take effect.

use anyhow::{Context, bail};
use clap::Args;
use ifs_core::admin::{AdminOp, AdminRequest};
use ifs_core::bandwidth::{RateText, parse_rate};
use ifs_core::proto::{BandwidthCaps, CtlRequest, CtlResponse};

use crate::cmd::GlobalArgs;
use crate::cmd::peers::{PeerArgs, ask};
use crate::node_key;
use crate::stdout::outln;

/// Arguments of `ifsnode bandwidth`.
#[derive(Debug, Args)]
pub struct BandwidthArgs {
    /// New upload cap (`10Mbit`, `8Mbit/s`, `2MB/s`; `0` for unlimited);
    /// omit to keep it
    #[arg(long, value_name = "RATE")]
    pub up: Option<String>,
    /// New download cap, the same way
    #[arg(long, value_name = "RATE")]
    pub down: Option<String>,
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

fn send(global: &GlobalArgs, peer: &PeerArgs, op: AdminOp) -> anyhow::Result<BandwidthCaps> {
    let dir = global.data_dir()?;
    let key = node_key::load(&node_key::path_in(&dir)).context(
        "operator commands are signed with the node's key: run this where its data dir is",
    )?;
    let req = AdminRequest::new(&key, op, ifs_node::now_ms(), rand::random());
    match ask(global, peer, "bandwidth", CtlRequest::Admin(req))? {
        CtlResponse::Bandwidth(c) => Ok(c),
        other => bail!("unexpected answer: {other:?}"),
    }
}

/// Run `ifsnode bandwidth`.
pub fn run(global: &GlobalArgs, args: BandwidthArgs) -> anyhow::Result<()> {
    let up = args.up.as_deref().map(parse_rate).transpose()?;
    let down = args.down.as_deref().map(parse_rate).transpose()?;
    let mut caps = send(global, &args.peer, AdminOp::Bandwidth)?;
    if up.is_some() || down.is_some() {
        let new = BandwidthCaps {
            up_bps: up.unwrap_or(caps.up_bps),
            down_bps: down.unwrap_or(caps.down_bps),
        };
        caps = send(global, &args.peer, AdminOp::SetBandwidth(new))?;
    }
    if args.json {
        outln!(
            "{{\"up_bps\":{},\"down_bps\":{}}}",
            caps.up_bps.unwrap_or(0),
            caps.down_bps.unwrap_or(0)
        )
    } else {
        outln!(
            "bandwidth up {}, down {} (chunk traffic)",
            RateText(caps.up_bps),
            RateText(caps.down_bps)
        )
    }
}
