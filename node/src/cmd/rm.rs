//! `ifsnode rm NAME`: delete a file. The owner-signed tombstone goes into
//! its record, the directory entry is marked deleted, and every holder is
//! told to free the chunks (`ifsnode peers` shows the space back).

use anyhow::Context;
use clap::Args;
use ifs_core::name::printable;
use serde::Serialize;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::stdout::outln;

/// Arguments of `ifsnode rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The file's name
    pub name: String,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print what was removed as JSON: `name`, `chunks`, `holders`,
    /// `confirmed` (holders that freed them).
    #[arg(long)]
    pub json: bool,
}

/// What `rm` prints.
#[derive(Debug, Serialize)]
struct Removed {
    name: String,
    chunks: u64,
    holders: u64,
    confirmed: u64,
}

/// Run `ifsnode rm`.
pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<()> {
    let name = args.name.clone();
    let r = with_client(global, &args.peer, "rm", async |session, key| {
        ifs_client::rm(session, key, &name)
            .await
            .with_context(|| format!("rm {} failed", printable(&name)))
    })?;
    let removed = Removed {
        name: args.name,
        chunks: r.chunks as u64,
        holders: r.holders as u64,
        confirmed: r.confirmed as u64,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&removed)?)?;
        return Ok(());
    }
    outln!(
        "removed {}: {}; {} of {} holders freed them",
        printable(&removed.name),
        crate::cmd::count(removed.chunks, "chunk"),
        removed.confirmed,
        removed.holders
    )?;
    Ok(())
}
