//! `ifsnode rm NAME`: delete a file. The owner-signed tombstone goes into
//! its record, the directory entry is marked deleted, and every holder is
//! told to free the chunks (`ifsnode peers` shows the space back).

use anyhow::Context;
use clap::Args;
use ifs_core::name::printable;

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
}

/// Run `ifsnode rm`.
pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<()> {
    let name = args.name.clone();
    let r = with_client(global, &args.peer, "rm", async |session, key| {
        ifs_client::rm(session, key, &name)
            .await
            .with_context(|| format!("rm {} failed", printable(&name)))
    })?;
    outln!(
        "removed {}: {}; {} of {} holders freed them",
        printable(&args.name),
        crate::cmd::count(r.chunks as u64, "chunk"),
        r.confirmed,
        r.holders
    )?;
    Ok(())
}
