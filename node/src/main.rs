//! `ifsnode`: the one binary every IFS machine runs.
//!
//! `main` only parses arguments, sets up logging and reports errors; each
//! subcommand lives in its own file under `cmd/`.

mod admin;
mod atomic_file;
mod cmd;
mod config;
mod disk_space;
mod error_line;
mod human;
mod listen_port;
mod logging;
mod node_key;
mod peer_addr;
mod progress;
mod saved_donation;
mod stdout;
mod volume;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    logging::init(cli.global.verbose);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): nothing to report.
        Err(e) if stdout::is_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            // What failed, then why, on one line. It may quote names from
            // the network: no control codes.
            let message = error_line::one_line(&e);
            stdout::errln!("ifsnode: error: {}", ifs_core::name::printable(&message));
            ExitCode::FAILURE
        }
    }
}
