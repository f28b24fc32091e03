//! A node's disk: volumes, pieces, the local table, reservations and scrub.
//!
//! # Design
//!
//! * **Volumes** are directories, each with a cap in bytes or as a percent of
//!   its filesystem. The owner's need wins: a volume never lets its
//!   filesystem's free space drop below the owner reserve (default 10%), so
//!   `donated = min(cap, used + fs_free − reserve)` shrinks when the owner
//!   fills the disk, and `Capacity::excess` tells the node what to offload.
//! * **Chunks** are cut into pieces of at most `piece_size` (4 MiB), placed
//!   on the volume with the most free space and spilling to the next.
//!   Piece bytes live in files; only metadata goes into redb, so a put costs
//!   one file write + fsync + rename and one small commit.
//! * **The local table** (redb, `data_dir/store.redb`) maps chunk → pieces,
//!   size, owner, receipt; it holds reservations and the node's own tables
//!   ([`MetaTable`]). Byte counters are rebuilt from the rows on open.
//! * **Reservations** make `free = donated − used − reserved` exact: a put
//!   must name one and is charged against it, so concurrent writers can never
//!   exceed the cap. Commit or release returns the unused part at once; an
//!   expiry sweep returns the rest. Time is passed in as `now_ms`.
//! * **Atomicity**: temp file, fsync, rename, fsync dir, then the redb
//!   commit. A delete commits first and removes the files after; a file
//!   that cannot be removed is counted in `Capacity::unremoved` (held back
//!   from `free`) and retried. On open, temp files are deleted; piece files that no committed
//!   row names are moved to the volume's quarantine (`V/ifs/quarantine/`),
//!   reported in [`Capacity`] and never counted as used nor deleted.
//! * **Volume identity**: each volume carries a marker file (`.ifs-volume`,
//!   see [`VolumeId`]) and is found by it, not by its configured path, so a
//!   path spelled differently or a volume mounted elsewhere keeps its pieces;
//!   a volume that is not the one the table expects is refused on open.
//! * **Page cache**: piece files are written and read with `O_DIRECT` where
//!   the filesystem allows it (ordinary I/O where it does not), so donated
//!   space does not also take the owner's page cache, and a scrub reads the
//!   disk, not a cached copy.
//! * **Reads** reassemble the pieces and check BLAKE3 against the id;
//!   [`StoreHandle::scrub`] and [`StoreHandle::verify`] report corrupt or
//!   missing chunks.
//! * **The actor**: one thread owns the database and counters; the
//!   [`StoreHandle`] sends commands over a bounded channel. Piece files are
//!   written and read on tokio's blocking pool, in parallel, with only the
//!   accounting serialised on the actor.
#![deny(missing_docs)]

mod actor;
mod capacity;
mod config;
mod direct;
mod engine;
mod error;
mod identity;
mod meta;
mod put;
mod reservations;
mod scrub;
mod tables;
mod volume;

pub use actor::StoreHandle;
pub use capacity::{Capacity, FsStat, VolumeCapacity};
pub use config::{
    Cap, DEFAULT_OWNER_RESERVE_PCT, DEFAULT_PIECE_SIZE, SpecError, StoreConfig, VolumeSpec,
};
pub use error::{StoreError, StoreResult};
pub use identity::{MARKER_FILE, MARKER_FORMAT, StoreId, VolumeId};
pub use put::{FaultPoint, StoredChunk};
pub use reservations::ReservationEnd;
pub use scrub::{ChunkHealth, ScrubReport};
pub use tables::{ChunkInfo, MetaTable, Reservation, ReservationId};
#[doc(hidden)]
pub use tables::{RowKind, fuzz_row};
