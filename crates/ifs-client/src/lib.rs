//! IFS client: put, get, ls, rm, share and revoke against any one peer.
//!
//! The client encodes with the `ifs-core` codec on its own machine (keys
//! never leave it), reserves space on candidate nodes, probes them, sends
//! each chunk once along a header chain, checks every receipt and resends
//! when one is missing; on get it fetches each chunk from the best replica
//! and falls back to the next. It never touches a node's disk.
#![deny(missing_docs)]

mod error;
mod session;

pub use error::ClientError;
pub use session::{Session, client_agent};
