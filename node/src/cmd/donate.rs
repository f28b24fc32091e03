//! `ifsnode donate SIZE|PCT`: change how much disk the running node donates.
//! A donation below what it holds makes the node move chunks elsewhere
//! first; `ifsnode donate` without a size shows the donation and what is
//! left to move. Commands are signed with the node's own key, so only its
//! operator (who can read DIR/node.key) may give them.
//!
//! The node writes the new caps into the `volumes` of its `config.toml`
//! (and drops a `leaving` flag) before the change takes effect, so a restart
//! keeps it; if the file cannot be written the command is refused.

use anyhow::{Context, bail};
use clap::Args;
use ifs_core::admin::{AdminOp, AdminRequest, DonationCap, DonationStatus};
use ifs_core::proto::{CtlRequest, CtlResponse};
use ifs_store::{Cap, VolumeSpec};

use crate::cmd::GlobalArgs;
use crate::cmd::peers::{PeerArgs, ask};
use crate::human;
use crate::node_key;
use crate::stdout::outln;

/// Arguments of `ifsnode donate`.
#[derive(Debug, Args)]
pub struct DonateArgs {
    /// New donation: a size (`500G`, `1.5T`, `0`) or a percent of each
    /// volume's disk (`40%`); omit to show the current one
    #[arg(value_name = "SIZE|PCT")]
    pub size: Option<String>,
    /// Which node to ask.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Parse `SIZE` or `PCT%` as a donation.
pub fn parse_donation(text: &str) -> anyhow::Result<DonationCap> {
    let spec = VolumeSpec::parse(&format!("v:{text}")).map_err(|_| {
        anyhow::anyhow!("bad donation {text:?}: want a size like 500G or a percent like 40%")
    })?;
    Ok(match spec.cap {
        Cap::Bytes(b) => DonationCap::Bytes(b),
        Cap::Percent(p) => DonationCap::Percent(p),
    })
}

/// Sign `op` with the node key in the data dir and send it to the node.
pub fn command(
    global: &GlobalArgs,
    peer: &PeerArgs,
    name: &str,
    op: AdminOp,
) -> anyhow::Result<DonationStatus> {
    let dir = global.data_dir()?;
    let key = node_key::load(&node_key::path_in(&dir)).context(
        "operator commands are signed with the node's key: run this where its data dir is",
    )?;
    let req = AdminRequest::new(&key, op, ifs_node::now_ms(), rand::random());
    match ask(global, peer, name, CtlRequest::Admin(req))? {
        CtlResponse::Donation(d) => Ok(d),
        other => bail!("unexpected answer: {other:?}"),
    }
}

/// Print a donation status for people or scripts.
pub fn print(d: &DonationStatus, json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{{\"donated_bytes\":{},\"used_bytes\":{},\"excess_bytes\":{},\"leaving\":{}}}",
            d.donated_bytes,
            d.used_bytes,
            d.excess_bytes,
            d.leaving
        )?;
    } else {
        outln!(
            "donated {}, holding {}, {} to move elsewhere{}",
            human::bytes(d.donated_bytes),
            human::bytes(d.used_bytes),
            human::bytes(d.excess_bytes),
            if d.leaving { " (leaving)" } else { "" }
        )?;
    }
    Ok(())
}

/// Run `ifsnode donate`.
pub fn run(global: &GlobalArgs, args: DonateArgs) -> anyhow::Result<()> {
    let op = match &args.size {
        Some(s) => AdminOp::Donate(parse_donation(s)?),
        None => AdminOp::Donation,
    };
    print(&command(global, &args.peer, "donate", op)?, args.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn donations_parse_as_sizes_or_percents() {
        assert_eq!(parse_donation("1G").unwrap(), DonationCap::Bytes(1 << 30));
        assert_eq!(parse_donation("0").unwrap(), DonationCap::Bytes(0));
        assert_eq!(parse_donation("40%").unwrap(), DonationCap::Percent(40));
        assert!(parse_donation("lots").is_err());
        assert!(parse_donation("140%").is_err());
    }
}
