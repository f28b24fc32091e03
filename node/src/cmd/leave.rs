//! `ifsnode leave`: the node donates nothing from now on and hands every
//! chunk to other nodes (each released only once the new copy's receipt is
//! in the file record). Run it again to see progress; stop the node once
//! it holds nothing. The node writes `leaving = true` to its `config.toml`
//! first, so a restart goes on leaving; `ifsnode donate SIZE|PCT` ends it.

use clap::Args;
use ifs_core::admin::AdminOp;

use crate::cmd::GlobalArgs;
use crate::cmd::donate::{command, print};
use crate::cmd::peers::PeerArgs;
use crate::stdout::errln;

/// Arguments of `ifsnode leave`.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Run `ifsnode leave`.
pub fn run(global: &GlobalArgs, args: LeaveArgs) -> anyhow::Result<()> {
    let d = command(global, &args.peer, "leave", AdminOp::Leave)?;
    print(&d, args.json)?;
    if d.used_bytes > 0 {
        errln!("moving chunks elsewhere; stop the node once it holds nothing");
    }
    Ok(())
}
