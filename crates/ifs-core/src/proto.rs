//! The messages nodes and clients exchange: the control protocol spoken over
//! `/ifs/ctl/1` and the frames of the bulk chunk protocol `/ifs/chunk/1`.
//!
//! Everything is CBOR. [`decode`] refuses input above a cap before parsing,
//! so a peer cannot make a node allocate freely; signed payloads inside the
//! messages (reports, grants, chains, receipts, records) are still checked by
//! their own `verify`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{ChunkId, NodeId, UserId};
use crate::wire::{HeaderChain, Receipt, ReservationGrant, WireError, from_cbor, to_cbor};

/// Largest control request a node accepts.
pub const MAX_CTL_REQUEST: usize = 8 << 20;
/// Largest control response a node sends or a client accepts.
pub const MAX_CTL_RESPONSE: usize = 16 << 20;
/// Largest header frame on a chunk stream.
pub const MAX_STREAM_FRAME: usize = 256 << 10;
/// Largest chunk a node accepts on a stream: the largest segment plus the
/// codec's overhead.
pub const MAX_CHUNK_BYTES: u64 =
    (crate::codec::MAX_SEGMENT_SIZE + crate::codec::CHUNK_OVERHEAD) as u64;

/// The CBOR encoding of a protocol message.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    to_cbor(msg)
}

/// Decode a protocol message, refusing more than `cap` bytes before parsing.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], cap: usize) -> Result<T, WireError> {
    from_cbor(bytes, cap, "protocol message")
}

/// A request on `/ifs/ctl/1`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CtlRequest {
    /// Node ↔ node on connect: here is my whole node table, send me yours.
    TableExchange {
        /// An encoded [`crate::node_table::NodeTable`].
        #[serde(with = "serde_bytes")]
        table: Vec<u8>,
    },
    /// Application-level RTT probe; the answer carries the node's load.
    Probe {
        /// Echoed back.
        nonce: u64,
    },
    /// The node's view of every known node (for `ifsnode peers`).
    Peers,
    /// The node itself (for `ifsnode status`).
    Status,
    /// A user-signed ask for space (counted against the user's quota).
    Reserve(crate::wire::ReserveRequest),
    /// The grant's client is done with a reservation: keep what was stored,
    /// release the rest at once.
    Settle(crate::wire::SettleRequest),
    /// Fetch and merge every copy of a DHT record (file or directory record).
    GetRecord {
        /// The DHT key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Validate, merge and publish a DHT record.
    PutRecord {
        /// The DHT key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The encoded record.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Owner-signed deletion. The node frees a listed chunk only if it holds
    /// it bound (by the owner-signed header chain) to the tombstone's record
    /// at the deleted version or older; other chunks are left alone.
    Forget {
        /// An encoded [`crate::wire::Tombstone`].
        #[serde(with = "serde_bytes")]
        tombstone: Vec<u8>,
        /// The chunks of the deleted file (a hint: the binding decides).
        chunks: Vec<ChunkId>,
    },
    /// A client's verdict on how each node served a get.
    ReportResults {
        /// Per node: the outcome.
        results: Vec<(NodeId, FetchOutcome)>,
    },
    /// Holder ↔ holder audit: prove you still hold the chunk.
    Audit(crate::audit::AuditChallenge),
    /// An operator command signed with the node's own key.
    Admin(crate::admin::AdminRequest),
}

/// How a node served a client's fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchOutcome {
    /// Served, in time.
    Ok,
    /// Served, but much slower than its peers.
    Slow,
    /// Failed or served bad bytes.
    Failed,
}

/// A response on `/ifs/ctl/1`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CtlResponse {
    /// Answer to [`CtlRequest::TableExchange`].
    Table {
        /// An encoded node table.
        #[serde(with = "serde_bytes")]
        table: Vec<u8>,
    },
    /// Answer to [`CtlRequest::Probe`].
    Pong {
        /// The probe's nonce.
        nonce: u64,
        /// Streams the node is serving right now.
        load: u32,
    },
    /// Answer to [`CtlRequest::Peers`].
    Peers(Vec<PeerRow>),
    /// Answer to [`CtlRequest::Status`].
    Status(NodeStatus),
    /// Answer to [`CtlRequest::Reserve`].
    Granted(ReservationGrant),
    /// A DHT record (`None` when absent), already validated and merged.
    Record(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// The request was carried out.
    Done,
    /// The request failed.
    Error(CtlError),
    /// Answer to [`CtlRequest::Audit`]: `keyed_hash(nonce, range)`.
    AuditProof(#[serde(with = "serde_bytes")] [u8; 32]),
    /// Answer to [`CtlRequest::Admin`]: the donation after the command.
    Donation(crate::admin::DonationStatus),
    /// Answer to a bandwidth [`CtlRequest::Admin`] command: the caps after it.
    Bandwidth(BandwidthCaps),
}

/// Why a control request failed, as told to the requester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CtlError {
    /// Not enough free space.
    #[error("not enough space: {needed} bytes asked, {free} free")]
    Full {
        /// Bytes asked.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// Unknown or expired reservation.
    #[error("unknown or expired reservation")]
    UnknownReservation,
    /// The request or something it carried did not validate.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The requester may not do this.
    #[error("denied: {0}")]
    Denied(String),
    /// The node failed internally.
    #[error("node error: {0}")]
    Internal(String),
}

/// One known node as `ifsnode peers --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerRow {
    /// The libp2p peer id (text).
    pub peer_id: String,
    /// `alive`, `unreachable` (alive by its reports, but its connection closed
    /// and a redial failed), `suspect` or `dead`.
    pub state: String,
    /// Dialable multiaddrs from its latest report.
    pub addrs: Vec<String>,
    /// Donated bytes.
    pub donated_bytes: u64,
    /// Bytes in committed chunks.
    pub used_bytes: u64,
    /// Bytes held for reservations.
    pub reserved_bytes: u64,
    /// Bytes it can still grant.
    pub free_bytes: u64,
    /// How much of its disk its owner needs, percent.
    pub owner_need_pct: u8,
    /// Round-trip time from the answering node, ms (`None` until measured).
    pub rtt_ms: Option<f64>,
    /// IP hop count from the answering node (`None` until measured).
    pub hops: Option<u8>,
    /// Seconds since its latest report was heard.
    pub report_age_s: u64,
    /// Sequence number of its latest report.
    pub seq: u64,
    /// Reputation in 0..=1 as seen by the answering node.
    pub reputation: f64,
    /// Whether this row is the answering node itself.
    pub is_self: bool,
    /// Upload cap from its report, bits per second; 0 when none.
    #[serde(default)]
    pub up_bps: u64,
    /// Download cap from its report, bits per second; 0 when none.
    #[serde(default)]
    pub down_bps: u64,
}

/// A node's bandwidth caps on chunk traffic, bits per second (`None`:
/// unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthCaps {
    /// Upload cap.
    pub up_bps: Option<u64>,
    /// Download cap.
    pub down_bps: Option<u64>,
}

/// The answering node itself, for `ifsnode status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its row (as in the peers table).
    pub node: PeerRow,
    /// Software version.
    pub version: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Nodes currently alive in its table, itself excluded.
    pub alive_peers: u32,
    /// Nodes of its table it has an open connection to (clients, the
    /// asking command included, are not counted).
    pub connected_peers: u32,
    /// Chunks held.
    pub chunks: u64,
    /// Bytes of held chunks no committed file names yet (a failed or
    /// abandoned put); freed when the grace period ends.
    #[serde(default)]
    pub awaiting_collection_bytes: u64,
    /// Piece files found on a volume that no chunk names, moved to the
    /// volume's quarantine (never deleted by the node).
    #[serde(default)]
    pub quarantined_bytes: u64,
    /// The bandwidth caps in force.
    #[serde(default)]
    pub bandwidth: BandwidthCaps,
    /// What AutoNAT, relays, hole punching and UPnP say of its
    /// reachability (`None` from a node that does not report it).
    #[serde(default)]
    pub reachability: Option<Box<crate::reachability::ReachabilityReport>>,
}

/// The first frame on a `/ifs/chunk/1` stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum StreamOpen {
    /// Store the chunk that follows (`chain.len` raw bytes) and forward it
    /// along the chain.
    Store {
        /// The owner-signed header chain, cursor at the receiver.
        chain: HeaderChain,
    },
    /// Send back a chunk.
    Fetch(crate::wire::FetchRequest),
    /// Holder → new node: store a copy of the chunk that follows (`len` raw
    /// bytes) under your own reservation; the file record `record` must list
    /// it and hold the sender's receipt. Used by repair and offload.
    Replica {
        /// The file record's key.
        #[serde(with = "serde_bytes")]
        record: [u8; 32],
        /// The chunk.
        chunk: ChunkId,
        /// Its length.
        len: u64,
    },
    /// Holder → holder: send back your copy (to replace a corrupt one). The
    /// requester must have a receipt for it in the file record `record`.
    PeerFetch {
        /// The file record's key.
        #[serde(with = "serde_bytes")]
        record: [u8; 32],
        /// The chunk.
        chunk: ChunkId,
    },
}

/// The reply frame after a stored (and forwarded) chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreReply {
    /// Receipts from this node and every node after it that stored the chunk.
    pub receipts: Vec<Receipt>,
    /// The first failure down the chain, if any: which node and why.
    pub failure: Option<(NodeId, String)>,
}

/// The reply frame to a fetch, followed by `len` raw bytes when `Ok`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FetchReply {
    /// The chunk follows.
    Ok {
        /// Its length.
        len: u64,
    },
    /// Refused or not held.
    Error(CtlError),
}

/// What a DHT key names: the first byte tells the record kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKey {
    /// A file record, keyed by BLAKE3(owner ‖ name).
    File([u8; 32]),
    /// An owner's directory record, keyed by the owner.
    Dir(UserId),
    /// A folder record, keyed by its locator (a keyed hash of the folder key).
    Folder([u8; 32]),
}

impl RecordKey {
    const FILE: u8 = b'F';
    const DIR: u8 = b'D';
    const FOLDER: u8 = b'P';

    /// The DHT key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, body) = match self {
            RecordKey::File(k) => (Self::FILE, k),
            RecordKey::Dir(owner) => (Self::DIR, owner.as_bytes()),
            RecordKey::Folder(l) => (Self::FOLDER, l),
        };
        let mut out = Vec::with_capacity(33);
        out.push(tag);
        out.extend_from_slice(body);
        out
    }

    /// Parse DHT key bytes; `None` for keys IFS does not use.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&tag, body) = bytes.split_first()?;
        let body: [u8; 32] = body.try_into().ok()?;
        match tag {
            Self::FILE => Some(RecordKey::File(body)),
            Self::DIR => Some(RecordKey::Dir(UserId(body))),
            Self::FOLDER => Some(RecordKey::Folder(body)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip_and_reject_foreign_keys() {
        let f = RecordKey::File([7; 32]);
        let d = RecordKey::Dir(UserId([9; 32]));
        assert_eq!(RecordKey::from_bytes(&f.to_bytes()), Some(f));
        assert_eq!(RecordKey::from_bytes(&d.to_bytes()), Some(d));
        let p = RecordKey::Folder([3; 32]);
        assert_eq!(RecordKey::from_bytes(&p.to_bytes()), Some(p));
        assert_eq!(RecordKey::from_bytes(b"X0123"), None);
        assert_eq!(RecordKey::from_bytes(&[]), None);
    }

    #[test]
    fn oversized_and_garbage_requests_are_typed_errors() {
        let big = vec![0u8; MAX_CTL_REQUEST + 1];
        assert!(matches!(
            decode::<CtlRequest>(&big, MAX_CTL_REQUEST),
            Err(WireError::TooLarge { .. })
        ));
        assert!(decode::<CtlRequest>(&[0xff, 0x00, 0x13], MAX_CTL_REQUEST).is_err());
        let ok = encode(&CtlRequest::Probe { nonce: 5 });
        assert!(matches!(
            decode::<CtlRequest>(&ok, MAX_CTL_REQUEST),
            Ok(CtlRequest::Probe { nonce: 5 })
        ));
    }
}
