//! The IFS node service: wires a node's store and swarm together and runs
//! the protocols: capacity gossip and the node table, RTT and hop-count
//! measurement, DHT record validation and merging, reservations, chain
//! forwarding of chunks with receipts, fetches, deletes.
//!
//! [`Node::spawn`] starts everything and returns a [`NodeHandle`]. Decisions
//! that can be pure (when a report is due, how RTT samples are smoothed)
//! live in small modules with their own tests; the service is the glue.
#![deny(missing_docs)]

mod capacity;
mod config;
mod durability;
mod error;
mod metrics;
mod node;
mod service;
mod shaper;
pub mod telemetry;

pub use capacity::{next_seq, report_due};
pub use config::{DonationChange, DonationStore, NodeConfig};
pub use durability::DurabilityConfig;
pub use error::NodeError;
pub use metrics::{MetricsTable, PeerMetrics};
pub use node::{ADDR_FILE, Node, NodeHandle, NodeObserver, node_agent};
pub use service::CAPACITY_TOPIC;
pub use telemetry::Telemetry;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
