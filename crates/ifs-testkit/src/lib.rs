//! IFS test kit (dev-only): many nodes in one process on loopback, each in
//! its own temp dir, with fault injection, for integration tests and
//! examples. Nothing outside tests and examples depends on it.
//!
//! - [`Cluster`]: start N nodes (or separate groups that do not know each
//!   other: a partition), stop and restart nodes, connect groups (heal),
//!   compare node tables.
//! - [`wait_until`]: poll a condition with a generous deadline; tests wait
//!   for a state, never assert on timing.
//! - [`Intruder`]: a raw libp2p peer that speaks the wire protocols without
//!   the node's rules, to send forged, replayed, oversized or malformed input.
//! - [`samples`]: signed file records for DHT tests.
//! - [`LogCapture`]: collect log lines to check that bad input was logged.
#![deny(missing_docs)]

mod cluster;
mod error;
mod intruder;
mod logs;
pub mod samples;
mod wait;

pub use cluster::{Cluster, ClusterOptions};
pub use error::TestkitError;
pub use intruder::Intruder;
pub use logs::LogCapture;
pub use wait::{wait_until, wait_until_async};
