//! IFS core: the pure data model and rules of the IFS storage network.
//!
//! Ids, keys and signatures, signed wire messages, the CRDTs of the FAT
//! (node table, file records), placement scoring and the chunk codec
//! (zstd → AES-256-GCM → BLAKE3). No async runtime, no networking and no
//! filesystem access: time and randomness are passed in.
#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod bandwidth;
pub mod codec;
pub mod collect;
pub mod crdt;
pub mod dir_record;
pub mod file_record;
pub mod folder_record;
pub mod ids;
pub mod keys;
pub mod name;
pub mod node_table;
pub mod placement;
pub mod proto;
pub mod quota;
pub mod rate;
pub mod reach;
pub mod reachability;
pub mod repair;
pub mod reputation;
pub mod wire;

pub use codec::{
    CodecError, CodecParams, Decoder, EncodedChunk, Encoder, FileKey, NoncePrefix, decode_segment,
};
pub use ids::{CheckedChunk, ChunkId, NodeId, UserId};
