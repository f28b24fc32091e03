//! `ifsnode`: the one binary every IFS machine runs.
//!
//! `main` only parses arguments, sets up logging and reports errors; each
//! subcommand lives in its own file under `cmd/`.

mod atomic_file;
mod cmd;
mod config;
mod logging;
mod node_key;
mod peer_addr;
mod progress;
mod saved_donation;
mod volume;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    logging::init(cli.global.verbose);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            // `{:#}` prints the whole context chain on one line: what failed, then why.
            eprintln!("ifsnode: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
