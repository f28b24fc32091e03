//! What the swarm task reports to the node: [`NetEvent`].

use std::time::Duration;

use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId, Stream};

pub use libp2p::gossipsub::MessageId;

/// A request/response frame: opaque bytes, CBOR byte string on the wire.
pub(crate) type Frame = serde_bytes::ByteBuf;

/// Something that happened on the network.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message arrived. It is held back from the mesh until the node
    /// calls [`crate::Client::report_validation`] with `id` and
    /// `propagated_by`: the node MUST do so for every message.
    Gossip {
        /// The topic name.
        topic: String,
        /// The peer that signed (authored) the message.
        source: PeerId,
        /// The peer that forwarded it to us.
        propagated_by: PeerId,
        /// The message id, for the validation report.
        id: MessageId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer sent a `/ifs/ctl/1` request; answer it with
    /// [`crate::Client::respond`] (dropping the token makes the peer see an error).
    Request {
        /// The requesting peer.
        peer: PeerId,
        /// The request payload (at most `max_request_bytes`).
        data: Vec<u8>,
        /// Where the response goes.
        token: ResponseToken,
    },
    /// A peer asked us to store a Kademlia record. It is NOT stored: the node
    /// validates and merges it, then calls [`crate::Client::store_local`].
    InboundRecord {
        /// The peer that sent it (the record's publisher, when known).
        peer: Option<PeerId>,
        /// The record key.
        key: Vec<u8>,
        /// The record value (at most `max_record_bytes`).
        value: Vec<u8>,
    },
    /// A first connection to a peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// The remote address of that connection.
        addr: Multiaddr,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A ping round trip to a peer.
    PingRtt {
        /// The peer.
        peer: PeerId,
        /// The measured round-trip time.
        rtt: Duration,
    },
    /// A peer told us who it is (libp2p identify).
    Identified {
        /// The peer.
        peer: PeerId,
        /// The addresses it listens on (all added to Kademlia).
        listen_addrs: Vec<Multiaddr>,
        /// Its agent version string.
        agent_version: String,
    },
    /// A peer opened a bulk `/ifs/chunk/1` stream to us. Read it with a size
    /// cap and a timeout; dropping it resets the stream.
    InboundStream {
        /// The peer.
        peer: PeerId,
        /// The stream (`futures::AsyncRead + AsyncWrite`).
        stream: Stream,
    },
}

/// The verdict on a gossip message, reported with
/// [`crate::Client::report_validation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: deliver and forward to the mesh.
    Accept,
    /// Invalid: drop and penalise the sender.
    Reject,
    /// Not forwarded, not penalised (e.g. stale but honest).
    Ignore,
}

impl From<Acceptance> for libp2p::gossipsub::MessageAcceptance {
    fn from(a: Acceptance) -> Self {
        match a {
            Acceptance::Accept => Self::Accept,
            Acceptance::Reject => Self::Reject,
            Acceptance::Ignore => Self::Ignore,
        }
    }
}

/// The handle for answering one inbound request, given in
/// [`NetEvent::Request`] and consumed by [`crate::Client::respond`].
pub struct ResponseToken {
    pub(crate) channel: ResponseChannel<Frame>,
    pub(crate) peer: PeerId,
}

impl ResponseToken {
    /// The peer waiting for this response.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Whether the requester can still receive a response.
    pub fn is_open(&self) -> bool {
        self.channel.is_open()
    }
}

impl std::fmt::Debug for ResponseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseToken")
            .field("peer", &self.peer)
            .field("open", &self.channel.is_open())
            .finish()
    }
}
