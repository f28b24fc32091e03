//! Typed errors of the network layer, one enum per operation family.

use libp2p::PeerId;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The swarm could not be built (transport, behaviour or config error).
    #[error("cannot build the swarm: {0}")]
    Build(String),
    /// A listen address was refused by every transport.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address that was refused.
        addr: libp2p::Multiaddr,
        /// What the transport said.
        reason: String,
    },
    /// Dialing an address failed at once (bad address, no transport for it).
    #[error("cannot dial: {0}")]
    Dial(String),
    /// The swarm task has stopped; the client can no longer be used.
    #[error("the network task has shut down")]
    Shutdown,
    /// Our own request is over our `max_request_bytes`; nothing was sent.
    #[error("request of {size} bytes exceeds the cap of {max} bytes")]
    RequestTooLarge {
        /// Size of the request.
        size: usize,
        /// The configured cap.
        max: usize,
    },
    /// Our own response is over our `max_response_bytes`; nothing was sent.
    #[error("response of {size} bytes exceeds the cap of {max} bytes")]
    ResponseTooLarge {
        /// Size of the response.
        size: usize,
        /// The configured cap.
        max: usize,
    },
    /// A record value is over `max_record_bytes`.
    #[error("record value of {size} bytes exceeds the cap of {max} bytes")]
    RecordTooLarge {
        /// Size of the value.
        size: usize,
        /// The configured cap.
        max: usize,
    },
    /// A request to a peer failed; see [`RequestFailure`].
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: RequestFailure,
    },
    /// The requester is gone, so the response could not be delivered.
    #[error("the response channel is closed (requester gone or timed out)")]
    ResponseChannelClosed,
    /// A gossip publish failed.
    #[error("publish failed: {0}")]
    Publish(PublishFailure),
    /// Subscribing to a gossip topic was refused.
    #[error("subscribe failed: {0}")]
    Subscribe(String),
    /// The local record store refused a record.
    #[error("record store: {0}")]
    Store(String),
    /// A DHT query timed out without any result.
    #[error("DHT query timed out")]
    QueryTimeout,
    /// Opening a bulk stream failed.
    #[error("cannot open stream to {peer}: {reason}")]
    Stream {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// Opening a bulk stream took longer than allowed (the time allowed is
    /// the second field).
    #[error("opening a stream to {0} timed out after {1:?}")]
    StreamTimeout(PeerId, std::time::Duration),
}

/// Why an outbound request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    /// Could not connect to the peer.
    #[error("dial failure")]
    DialFailure,
    /// No response within the request timeout.
    #[error("timeout")]
    Timeout,
    /// The connection closed before a response arrived; this is also what an
    /// oversized or malformed request looks like from the sender's side.
    #[error("connection closed")]
    ConnectionClosed,
    /// The peer does not speak `/ifs/ctl/1`.
    #[error("unsupported protocol")]
    UnsupportedProtocols,
    /// The stream failed, e.g. the peer reset it after refusing the request,
    /// or its response was over our `max_response_bytes` or malformed.
    #[error("stream error: {0}")]
    Io(String),
}

/// Why a gossip publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailure {
    /// No connected peer is subscribed to the topic yet (normal for a lone node).
    #[error("no peers subscribed to the topic")]
    NoPeers,
    /// The same message was published before.
    #[error("duplicate message")]
    Duplicate,
    /// The message is over `max_gossip_bytes`.
    #[error("message too large")]
    TooLarge,
    /// Any other gossipsub error.
    #[error("{0}")]
    Other(String),
}

/// Why an identity conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The 32 bytes are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key")]
    BadPublicKey,
}
