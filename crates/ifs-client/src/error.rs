//! Errors of client operations.

use ifs_core::proto::CtlError;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The swarm could not start.
    #[error("network: {0}")]
    Net(ifs_net::NetError),
    /// The entry node could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request failed in transport or returned garbage.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{peer} refused: {error}")]
    Node {
        /// The peer that refused.
        peer: String,
        /// Its answer.
        error: CtlError,
    },
    /// The node answered with a message that does not fit the request.
    #[error("unexpected answer from {peer}: {what}")]
    Unexpected {
        /// The peer.
        peer: String,
        /// What arrived.
        what: String,
    },
}
