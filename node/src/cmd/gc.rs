//! `ifsnode gc`: free the packs no live file uses any more. Small files
//! put with `put -r` travel packed together (see `ifs_client::pack`); a
//! deleted or replaced packed file leaves its bytes in its pack until every
//! file of that pack is gone, when `gc` deletes the pack and its holders
//! free the chunks.

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::cmd::GlobalArgs;
use crate::cmd::key::with_client;
use crate::cmd::peers::PeerArgs;
use crate::human;
use crate::stdout::outln;

/// Arguments of `ifsnode gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only say what would be freed.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unused packs younger than this many seconds: a `put -r`
    /// running elsewhere may have sent a pack and not yet listed its files.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub min_age: u64,
    /// Which node to enter through.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `gc` prints with `--json`.
#[derive(Debug, Serialize)]
struct Gc {
    dry_run: bool,
    packs: usize,
    used: usize,
    live_bytes: u64,
    dead_bytes: u64,
    deleted: usize,
    freed_bytes: u64,
    young: usize,
}

/// Run `ifsnode gc`.
pub fn run(global: &GlobalArgs, args: GcArgs) -> anyhow::Result<()> {
    let (dry, min_age_ms) = (args.dry_run, args.min_age.saturating_mul(1000));
    let r = with_client(global, &args.peer, "gc", async |session, key| {
        ifs_client::gc(session, key, min_age_ms, dry)
            .await
            .context("gc failed")
    })?;
    let out = Gc {
        dry_run: dry,
        packs: r.packs,
        used: r.used,
        live_bytes: r.live_bytes,
        dead_bytes: r.dead_bytes,
        deleted: r.deleted,
        freed_bytes: r.freed_bytes,
        young: r.young,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    outln!(
        "{} packs: {} in use ({} live, {} of deleted files waiting for the rest of their pack)",
        out.packs,
        out.used,
        human::bytes(out.live_bytes),
        human::bytes(out.dead_bytes)
    )?;
    let verb = if dry { "would delete" } else { "deleted" };
    outln!(
        "{verb} {} unused packs ({}); kept {} unused packs younger than {} s",
        out.deleted,
        human::bytes(out.freed_bytes),
        out.young,
        args.min_age
    )?;
    Ok(())
}
