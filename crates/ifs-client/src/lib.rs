//! IFS client: put, get, ranged reads, ls, rm, share, revoke and one-way
//! sync against any one peer.
//!
//! The client encodes with the `ifs-core` codec on its own machine (keys
//! never leave it), reserves space on candidate nodes, probes them, sends
//! each chunk once along a header chain, checks every receipt and resends
//! when one is missing; on get it fetches each chunk from the best replica
//! and falls back to the next. It never touches a node's disk.
//!
//! The pure decisions (reservation sizing, chain assignment, resend
//! targets, receipt checks) live in [`plan`]; the rest is I/O around them.
#![deny(missing_docs)]

mod catalog;
mod error;
mod folder_batch;
pub mod folders;
mod get;
pub mod pack;
pub mod pages;
mod place;
pub mod plan;
mod put;
pub mod range;
pub mod records;
mod reserve;
mod session;
mod share;
mod sync;
pub mod table;
pub mod transfer;
mod tree;
pub mod upload;

pub use catalog::{FileInfo, LsOptions, RmReport, ls, min_live_replicas, rm};
pub use error::{ClientError, FetchError, GetError, PutError, ReceiptError, ShareError};
pub use folder_batch::{make_folder, remove_folder};
pub use folders::{patch_props, props};
pub use get::{GetOptions, GetReport, NodeRtts, by_rtt, get, get_from, get_to_file, probe_nodes};
pub use ifs_core::folder_record::{ChildKind, DeadProp};
pub use pack::{GcReport, gc, link_packed};
pub use put::{EXTRA_CANDIDATES, PlacedChunk, PutOptions, PutReport, Replaced, put};
pub use range::{RangeReader, RangeReport};
pub use reserve::{Book, RESERVATION_TTL};
pub use session::{Session, client_agent};
pub use share::{RevokeOptions, RevokeReport, ShareReport, revoke, share};
pub use sync::{SyncError, SyncOptions, SyncReport, same_content, sync_tree};
pub use tree::{
    FileOutcome, SmallFiles, TreeFile, TreeOptions, TreeProgress, TreeReport, get_tree,
    put_small_files, put_tree,
};
pub use upload::{AbortReport, RESUME_WINDOW, Resumed, Segments, Upload, put_file};
