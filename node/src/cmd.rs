//! Command-line interface: global flags shared by every subcommand, and the
//! dispatch to one file per subcommand.

pub mod bandwidth;
pub mod check;
pub mod devnet;
pub mod doctor;
pub mod donate;
pub mod gc;
pub mod get;
pub mod init;
pub mod key;
pub mod leave;
pub mod local_roundtrip;
pub mod ls;
pub mod peers;
pub mod put;
pub mod rm;
pub mod run;
pub mod s3key;
pub mod serve;
pub mod share;
pub mod status;
pub mod sync;
pub mod tree;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Data dir used when neither `--data-dir` nor `IFS_DATA_DIR` is given,
/// relative to `$HOME`.
pub const DEFAULT_DATA_DIR: &str = ".local/share/ifs/node";

/// IFS node: donate spare disk to an encrypted, replicated peer-to-peer store.
#[derive(Debug, Parser)]
#[command(name = "ifsnode", version, propagate_version = true)]
pub struct Cli {
    /// Flags every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by all subcommands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The node's data dir (config.toml, node.key, local table)
    /// [default: $IFS_DATA_DIR, else ~/.local/share/ifs/node]
    #[arg(long, global = true, env = "IFS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The data dir to use, as an absolute path.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .context("no --data-dir given, IFS_DATA_DIR is not set and neither is HOME")?;
                PathBuf::from(home).join(DEFAULT_DATA_DIR)
            }
        };
        std::path::absolute(&dir).with_context(|| format!("bad data dir {}", dir.display()))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node: write DIR/config.toml and a fresh node key DIR/node.key (mode 0600)
    Init(init::InitArgs),
    /// Check DIR/config.toml, the node key and every volume; print the effective settings
    Check(check::CheckArgs),
    /// Start the node: join the network, gossip capacity, serve peers; stops on Ctrl-C/SIGTERM
    Run(run::RunArgs),
    /// List every node the entry node knows: state, RTT, hops, capacity
    Peers(peers::PeersArgs),
    /// The entry node's own state; exit 0 only when it is up with at least one peer alive
    Status(status::StatusArgs),
    /// Can peers reach the node? Checks it live and says what to change (ports, UPnP)
    Doctor(doctor::DoctorArgs),
    /// Start N local nodes on 127.0.0.1 bootstrapped to each other; Ctrl-C stops them
    Devnet(devnet::DevnetArgs),
    /// Store a file (or stdin) in IFS, R replicas per chunk; print where each chunk went
    Put(put::PutArgs),
    /// Fetch a file from IFS into OUT (or stdout with -)
    Get(get::GetArgs),
    /// List your files: size, chunks, lowest live replica count
    Ls(ls::LsArgs),
    /// Delete a file; its holders free the space
    Rm(rm::RmArgs),
    /// Free the packs of small files that no live file uses any more
    Gc(gc::GcArgs),
    /// Let another user read one of your files (they get it with `get YOUR_KEY/NAME`)
    Share(share::ShareArgs),
    /// Take a user's access away: re-encrypt under a new key, re-put, free the old chunks
    Revoke(share::RevokeArgs),
    /// Serve your folders over WebDAV and/or S3 (loopback) until Ctrl-C
    Serve(serve::ServeArgs),
    /// Access keys for `serve --s3` (create, list, delete)
    #[command(name = "s3-key")]
    S3Key(s3key::S3KeyArgs),
    /// Make folder PREFIX hold directory DIR's files: put new and changed ones, skip unchanged
    Sync(sync::SyncArgs),
    /// Your user key ($IFS_HOME/user.key, created on first use)
    Key(key::KeyArgs),
    /// Change (or show) how much disk the running node donates; it moves chunks off first
    Donate(donate::DonateArgs),
    /// Hand every chunk to other nodes, then hold nothing (stop the node afterwards)
    Leave(leave::LeaveArgs),
    /// Change (or show) the running node's upload and download caps on chunk traffic
    Bandwidth(bandwidth::BandwidthArgs),
    /// Encode a file, store it in a local store, read it back and compare (dev/demo)
    #[command(hide = true)]
    LocalRoundtrip(local_roundtrip::LocalRoundtripArgs),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init::run(&cli.global, args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Peers(args) => peers::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Doctor(args) => doctor::run(&cli.global, args),
        Command::Devnet(args) => devnet::run(&cli.global, args),
        Command::Put(args) => put::run(&cli.global, args),
        Command::Get(args) => get::run(&cli.global, args),
        Command::Ls(args) => ls::run(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Gc(args) => gc::run(&cli.global, args),
        Command::Share(args) => share::run_share(&cli.global, args),
        Command::Revoke(args) => share::run_revoke(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::S3Key(args) => s3key::run(&cli.global, args),
        Command::Sync(args) => sync::run(&cli.global, args),
        Command::Key(args) => key::run(&cli.global, args),
        Command::Donate(args) => donate::run(&cli.global, args),
        Command::Leave(args) => leave::run(&cli.global, args),
        Command::Bandwidth(args) => bandwidth::run(&cli.global, args),
        Command::LocalRoundtrip(args) => local_roundtrip::run(&cli.global, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["ifsnode", "init", "--data-dir", "/tmp/x", "-vv"]).unwrap();
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.data_dir().unwrap(), PathBuf::from("/tmp/x"));
    }
}

/// `n` and `noun`, plural unless `n` is 1: "1 chunk", "3 chunks".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod count_tests {
    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(super::count(1, "chunk"), "1 chunk");
        assert_eq!(super::count(0, "chunk"), "0 chunks");
        assert_eq!(super::count(12, "node"), "12 nodes");
    }
}
