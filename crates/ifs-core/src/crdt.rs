//! The merge contract shared by the FAT's replicated records.

use crate::ids::{ChunkId, NodeId};
use crate::wire::WireError;

/// A state-based CRDT: a value that replicas exchange whole and merge.
///
/// `merge` must be a join of a semilattice. For all valid states `a`, `b`, `c`
/// (where `merged(x, y)` clones `x` and merges `y` into it):
///
/// - commutative: `merged(a, b) == merged(b, a)`
/// - associative: `merged(merged(a, b), c) == merged(a, merged(b, c))`
/// - idempotent: `merged(a, a) == a`
///
/// So replicas that have seen the same set of states hold equal values,
/// whatever the order, grouping or repetition of delivery. Every type here
/// holds only entries whose signatures were checked on the way in (insert
/// or decode), so merging two values never admits a forged entry.
pub trait Crdt {
    /// Fold `other` into `self`.
    fn merge(&mut self, other: &Self);
}

/// `a` merged with `b`, leaving both untouched.
pub fn merged<T: Crdt + Clone>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// Errors admitting an entry into a record, or decoding a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The record or one of its entries failed to decode or verify.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// An entry names a different owner than the record.
    #[error("{what} belongs to another owner")]
    ForeignOwner {
        /// Which kind of entry.
        what: &'static str,
    },
    /// An entry names a different file than the record.
    #[error("{what} belongs to another file name")]
    ForeignName {
        /// Which kind of entry.
        what: &'static str,
    },
    /// A receipt or release names another file record.
    #[error("{what} belongs to another file record")]
    ForeignRecord {
        /// Which kind of entry.
        what: &'static str,
    },
    /// The record carries nothing its owner signed (no manifest, no delete).
    #[error("record has no owner-signed manifest or delete")]
    Unsigned,
    /// The record was written in a format this version does not read.
    #[error("record format {found} is not supported (this node reads format {supported})")]
    Format {
        /// The record's format.
        found: u32,
        /// The format read here.
        supported: u32,
    },
    /// A cap on the record's contents is exceeded.
    #[error("record over its limits: {0}")]
    OverLimit(&'static str),
    /// A receipt names a chunk the record's manifest does not (an older
    /// version's, or one the owner never wrote).
    #[error("receipt from {node} is for chunk {chunk}, which the file's manifest does not name")]
    NotNamed {
        /// The chunk.
        chunk: ChunkId,
        /// The node that signed the receipt.
        node: NodeId,
    },
    /// A receipt's length disagrees with the manifest's for that chunk.
    #[error("receipt from {node} gives chunk {chunk} a length the manifest does not")]
    LengthMismatch {
        /// The chunk.
        chunk: ChunkId,
        /// The node that signed the receipt.
        node: NodeId,
    },
}

/// Replace `mine` with `theirs` when `theirs` ranks higher by `rank`.
/// Ranks must be total (ties broken by content hash) for merges to commute.
/// Equal values are left as they are without ranking either: merging a
/// copy of a record with its own copy is the common case, and a rank
/// hashes its value's encoding.
pub(crate) fn lww<T: Clone + PartialEq, K: Ord>(
    mine: &mut Option<T>,
    theirs: Option<&T>,
    rank: impl Fn(&T) -> K,
) {
    if let Some(t) = theirs
        && mine.as_ref().is_none_or(|m| m != t && rank(t) > rank(m))
    {
        *mine = Some(t.clone());
    }
}
