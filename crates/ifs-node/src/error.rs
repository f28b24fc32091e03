//! Errors starting or running a node.

use std::path::PathBuf;

/// Errors of the node service.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] ifs_store::StoreError),
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] ifs_net::NetError),
    /// The hop-count responder could not bind.
    #[error("hop probe responder: {0}")]
    Probe(#[from] ifs_net::hops::ProbeError),
    /// A state file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}
