//! Errors of the test kit.

use std::time::Duration;

/// What can go wrong driving a test cluster.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A node failed to start.
    #[error("node {index}: {source}")]
    Node {
        /// Which node.
        index: usize,
        /// Why.
        source: ifs_node::NodeError,
    },
    /// The intruder's swarm failed.
    #[error("intruder: {0}")]
    Net(#[from] ifs_net::NetError),
    /// A temp dir or volume could not be created.
    #[error("test dir: {0}")]
    Io(#[from] std::io::Error),
    /// The node is stopped.
    #[error("node {0} is stopped")]
    Stopped(usize),
    /// No node at that index.
    #[error("no node {0}")]
    NoSuchNode(usize),
    /// A waited-for state did not come.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The state waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}
