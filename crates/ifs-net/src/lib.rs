//! IFS networking: one libp2p swarm per node and the UDP hop-count probe.
//!
//! Shape: [`spawn`] starts a task that owns the `Swarm` and `select!`s over
//! swarm events and commands; the rest of the program holds a cheap, cloneable
//! [`Client`] whose async methods send a command with a oneshot reply, and
//! reads [`NetEvent`]s from a bounded channel. Payloads are opaque bytes: the
//! node encodes and decodes them with `ifs-core`'s size-capped codecs, and
//! makes every storage decision.
//!
//! Protocols:
//! - TCP + Noise + Yamux, QUIC, DNS; identify, ping;
//! - Kademlia on `/ifs/kad/1.0.0` with `StoreInserts::FilterBoth`: inbound
//!   records surface as [`NetEvent::InboundRecord`] and are stored only when
//!   the node calls [`Client::store_local`];
//! - gossipsub, signed and strictly validated: every [`NetEvent::Gossip`]
//!   needs a [`Client::report_validation`];
//! - `/ifs/ctl/1` request/response carrying CBOR byte strings, capped both ways;
//! - `/ifs/chunk/1` raw bulk streams ([`Client::open_stream`],
//!   [`NetEvent::InboundStream`]);
//! - optional mDNS;
//! - NAT traversal: AutoNAT v2 client and server, circuit relay v2 client
//!   (and server on full nodes), DCUtR hole punching, optional UPnP. The
//!   verdicts feed [`reachability::ReachabilityState`], which sets the
//!   Kademlia mode and asks relays for slots; bulk streams never use a
//!   relayed connection.
//!
//! The [`hops`] module measures IP hop counts with a small UDP probe.
#![deny(missing_docs)]

mod address_book;
mod behaviour;
mod client;
mod config;
mod direct_streams;
mod error;
mod event;
mod event_loop;
pub mod frame;
pub mod hops;
mod identity;
pub mod reachability;
mod swarm_events;

pub use behaviour::{CHUNK_PROTOCOL, CTL_PROTOCOL, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};
pub use client::{Client, FoundRecord, stream_open_deadline};
pub use config::NetConfig;
pub use error::{IdentityError, NetError, PublishFailure, RequestFailure};
pub use event::{Acceptance, MessageId, NetEvent, ResponseToken};
pub use event_loop::{spawn, spawn_with_metrics};
pub use identity::{
    keypair_from_ed25519_secret, keypair_node_id, node_id_to_peer_id, peer_id_to_node_id,
};
pub use libp2p::metrics::Registry;
pub use libp2p::{Multiaddr, PeerId, Stream, identity::Keypair};
