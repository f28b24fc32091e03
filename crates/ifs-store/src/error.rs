//! The store's error type: one enum for every operation, each variant naming
//! what a caller can act on (which chunk, which path, how many bytes).

use ifs_core::ChunkId;
use std::path::PathBuf;

use crate::ReservationId;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not enough donated space left for the request.
    #[error("not enough space: needed {needed} bytes, {free} free")]
    Full {
        /// Bytes asked for.
        needed: u64,
        /// Bytes that were free at the time.
        free: u64,
    },
    /// A write would use more than what is left of its reservation.
    #[error("reservation {id} has {left} bytes left, write needs {needed}")]
    ReservationExceeded {
        /// The reservation charged.
        id: ReservationId,
        /// Bytes the write needs.
        needed: u64,
        /// Bytes left in the reservation.
        left: u64,
    },
    /// No live reservation has this id (never made, committed, released or swept).
    #[error("unknown reservation {0}")]
    UnknownReservation(ReservationId),
    /// The reservation's time ran out before it was used.
    #[error("reservation {0} has expired")]
    Expired(ReservationId),
    /// The bytes offered for a chunk do not hash to its id.
    #[error("data does not match chunk id {chunk}")]
    WrongId {
        /// The id the caller claimed.
        chunk: ChunkId,
    },
    /// A stored chunk's bytes no longer hash to its id (bit rot, truncation).
    #[error("chunk {chunk} is corrupt on disk")]
    Corrupt {
        /// The damaged chunk.
        chunk: ChunkId,
    },
    /// The chunk is not stored here, or one of its pieces is gone.
    #[error("chunk {chunk} is missing")]
    Missing {
        /// The absent chunk.
        chunk: ChunkId,
    },
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configured volume directory does not exist or is not a directory.
    #[error("volume directory {path} does not exist or is not a directory")]
    VolumeMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// A configured volume directory cannot be written.
    #[error("volume directory {path} is read-only")]
    VolumeReadOnly {
        /// The configured path.
        path: PathBuf,
    },
    /// A volume's marker file cannot be read as one.
    #[error(
        "volume marker {path} is unreadable ({reason}): restore it from a backup, or move it and the volume's ifs/ directory aside to start the volume empty"
    )]
    VolumeMarkerBad {
        /// The marker file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A volume directory holds piece files but no marker, and the local
    /// table knows no volume there: they may be another store's pieces.
    #[error(
        "volume {path} holds {pieces} piece files but has no .ifs-volume marker and this node's table knows no volume there: restore its .ifs-volume file, point config.toml at the volume's current path, or move {path}/ifs aside to start it empty"
    )]
    VolumeUnmarked {
        /// The configured volume directory.
        path: PathBuf,
        /// Piece files found under it.
        pieces: u64,
    },
    /// The local table expects a volume with pieces at this path, but the
    /// directory has no marker (a disk not mounted, a marker deleted).
    #[error(
        "volume {path} has no .ifs-volume marker, but this node's table expects volume {volume} with {pieces} pieces there: mount the right disk at {path}, or point config.toml at where the volume is now"
    )]
    VolumeExpected {
        /// The configured volume directory.
        path: PathBuf,
        /// The volume the table expects.
        volume: crate::VolumeId,
        /// Pieces the table holds on it.
        pieces: u64,
    },
    /// The volume's marker names another local table: another node's
    /// volume, or this node's from before its `store.redb` was lost.
    #[error(
        "volume {path} belongs to another node's store ({owner}, this node's is {store}): remove it from config.toml; if this node's store.redb was lost, move {path}/.ifs-volume and {path}/ifs aside to reuse the directory empty"
    )]
    VolumeForeign {
        /// The configured volume directory.
        path: PathBuf,
        /// The store its marker names.
        owner: crate::StoreId,
        /// This store's id.
        store: crate::StoreId,
    },
    /// Two configured paths are the same volume (one directory, or one
    /// marker reached twice).
    #[error("volumes {path} and {other} are the same volume: list it once in config.toml")]
    VolumeDuplicate {
        /// The later configured path.
        path: PathBuf,
        /// The earlier one.
        other: PathBuf,
    },
    /// The local table (redb) failed or its file is not a valid database.
    #[error("local table {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The underlying redb error.
        source: Box<redb::Error>,
    },
    /// A row in the local table could not be decoded, or is corrupt.
    #[error("local table {path}: undecodable or corrupt {what} row")]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// Which kind of row.
        what: &'static str,
    },
    /// A volume spec or other configuration value is malformed.
    #[error(transparent)]
    BadSpec(#[from] crate::SpecError),
    /// The store's actor has stopped (it was shut down or hit a fatal fault).
    #[error("the store has stopped")]
    Closed,
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Wraps an `std::io::Error` with the path it concerns.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// Wraps any redb error with the database path.
pub(crate) fn db_err<E: Into<redb::Error>>(
    path: &std::path::Path,
) -> impl FnOnce(E) -> StoreError + use<E> {
    let path = path.to_path_buf();
    move |e| StoreError::Db {
        path,
        source: Box::new(e.into()),
    }
}
