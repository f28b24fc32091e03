//! The local table's layout in redb and the rows it holds.
//!
//! Rows are CBOR so fields can be added later; keys are fixed-size byte
//! arrays. Counters (bytes used per volume, bytes reserved) are not stored:
//! they are recomputed from the rows when the store opens, so they can never
//! disagree with them.

use ifs_core::{ChunkId, UserId};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// chunk id → [`ChunkRecord`].
pub(crate) const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks");
/// chunk id → the node's receipt for it, opaque bytes.
pub(crate) const RECEIPTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("receipts");
/// reservation id → [`ReservationRecord`].
pub(crate) const RESERVATIONS: TableDefinition<&[u8; 16], &[u8]> =
    TableDefinition::new("reservations");
/// stable volume id → the volume's path when last opened (canonical), so a
/// configured path with no marker can be told apart from a volume the table
/// expects there. Pieces name volumes by this stable id.
pub(crate) const VOLUMES: TableDefinition<u16, &str> = TableDefinition::new("volumes");
/// stable volume id → the [`crate::VolumeId`] in that volume's marker. A
/// [`VOLUMES`] row without one is a volume from before markers, migrated on
/// the next open.
pub(crate) const VOLUME_IDS: TableDefinition<u16, &[u8; 16]> = TableDefinition::new("volume_ids");
/// Facts about the store itself; [`STORE_ID_KEY`] → its [`crate::StoreId`].
pub(crate) const STORE_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("store_info");
/// Key of the store's own id in [`STORE_INFO`].
pub(crate) const STORE_ID_KEY: &str = "store_id";
const META_RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta_records");
const META_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta_node_table");
const META_REPUTATION: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta_reputation");
const META_HOLDINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta_holdings");

/// The node's own key-value tables kept in the store's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaTable {
    /// DHT records (file records, directory records) held by this node.
    Records,
    /// The node table: other nodes' capacity reports.
    NodeTable,
    /// Per-node reputation.
    Reputation,
    /// Which file record each held chunk belongs to (chunk id → record key).
    Holdings,
}

impl MetaTable {
    pub(crate) fn definition(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            MetaTable::Records => META_RECORDS,
            MetaTable::NodeTable => META_NODES,
            MetaTable::Reputation => META_REPUTATION,
            MetaTable::Holdings => META_HOLDINGS,
        }
    }
}

/// Names a reservation; random, so clients cannot guess each other's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReservationId(pub [u8; 16]);

impl ReservationId {
    /// A fresh random id.
    pub fn random() -> Self {
        ReservationId(rand::random())
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReservationId({})", hex::encode(&self.0[..6]))
    }
}

/// Where one piece of a chunk lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PieceRef {
    /// Stable volume id (see [`VOLUMES`]).
    pub volume: u16,
    /// File name under the volume's piece directory.
    pub name: String,
    /// Bytes in the piece.
    pub len: u64,
}

/// One stored chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRecord {
    /// Total bytes.
    pub len: u64,
    /// Who stored it.
    pub owner: UserId,
    /// Its pieces, in order.
    pub pieces: Vec<PieceRef>,
    /// When it was committed (ms since the epoch, as passed in by the caller).
    pub stored_ms: u64,
}

impl ChunkRecord {
    /// Adds this row's pieces to the byte counters (per volume and in all),
    /// as the store does for every row when it opens. Saturates: sound rows
    /// never come near `u64::MAX` in all.
    pub(crate) fn charge(&self, used_by_volume: &mut HashMap<u16, u64>, used: &mut u64) {
        for p in &self.pieces {
            let on_volume = used_by_volume.entry(p.volume).or_default();
            *on_volume = on_volume.saturating_add(p.len);
            *used = used.saturating_add(p.len);
        }
    }

    /// Whether the store could have written this row: its pieces add up to
    /// its length and each names a plain file in its volume's piece
    /// directory (as `put` names them: hex, digits and dots). Any other row
    /// is corrupt: its lengths could overflow the counters and its names
    /// could point outside the volume, where `delete` would remove files.
    fn is_sound(&self) -> bool {
        let total = self
            .pieces
            .iter()
            .try_fold(0u64, |sum, p| sum.checked_add(p.len));
        total == Some(self.len) && self.pieces.iter().all(|p| is_piece_name(&p.name))
    }
}

/// A piece file name: ASCII letters, digits and dots, not starting with a
/// dot (so never `.` or `..`, and never a path).
fn is_piece_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Decodes a [`CHUNKS`] row; `None` if it does not decode or is not sound.
pub(crate) fn decode_chunk_row(bytes: &[u8]) -> Option<ChunkRecord> {
    decode::<ChunkRecord>(bytes).filter(ChunkRecord::is_sound)
}

/// One reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReservationRecord {
    /// Bytes granted.
    pub bytes: u64,
    /// Bytes already charged by committed writes.
    pub used: u64,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// Released while writes were in flight: it takes no new writes and is
    /// removed when the last one finishes (or when the store reopens).
    pub closed: bool,
}

impl ReservationRecord {
    /// Bytes still held back from `free`.
    pub fn outstanding(&self) -> u64 {
        self.bytes.saturating_sub(self.used)
    }
}

/// A reservation as the caller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Its id, to pass to `put_chunk`, `commit_reservation` and `release`.
    pub id: ReservationId,
    /// Bytes granted.
    pub bytes: u64,
    /// When it lapses (ms since the epoch).
    pub expires_ms: u64,
}

/// A stored chunk as listed by `list_chunks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// The chunk's id.
    pub id: ChunkId,
    /// Its size in bytes.
    pub len: u64,
    /// The user who stored it.
    pub owner: UserId,
    /// When it was committed (ms since the epoch).
    pub stored_ms: u64,
}

pub(crate) fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for these plain structs.
    cbor4ii::serde::to_vec(Vec::new(), row).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    cbor4ii::serde::from_slice(bytes).ok()
}

/// Which table a raw row comes from, for [`fuzz_row`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum RowKind {
    /// A [`CHUNKS`] row.
    Chunk,
    /// A [`RESERVATIONS`] row.
    Reservation,
}

/// What the store does with one raw row of the local table when it opens:
/// decode it and count it. Panics if a decoded row does not re-encode to a
/// row that decodes equal. Returns whether the row decoded. Exposed for the
/// fuzz targets (`fuzz/`), which cannot reach the row types.
#[doc(hidden)]
pub fn fuzz_row(kind: RowKind, bytes: &[u8]) -> bool {
    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(row: &T) {
        let again = decode::<T>(&encode(row));
        assert_eq!(again.as_ref(), Some(row), "a row must re-encode to itself");
    }
    match kind {
        RowKind::Chunk => {
            let Some(row) = decode_chunk_row(bytes) else {
                return false;
            };
            let (mut by_volume, mut used) = (HashMap::new(), 0);
            row.charge(&mut by_volume, &mut used);
            round_trip(&row);
        }
        RowKind::Reservation => {
            let Some(row) = decode::<ReservationRecord>(bytes) else {
                return false;
            };
            row.outstanding();
            round_trip(&row);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_garbage_is_rejected() {
        let row = ChunkRecord {
            len: 9,
            owner: UserId([3; 32]),
            pieces: vec![PieceRef {
                volume: 1,
                name: "ab.0.1".into(),
                len: 9,
            }],
            stored_ms: 5,
        };
        assert_eq!(decode::<ChunkRecord>(&encode(&row)), Some(row));
        assert_eq!(decode::<ChunkRecord>(b"\xff\x00garbage"), None);
    }

    fn chunk_row(len: u64, pieces: &[(u16, &str, u64)]) -> ChunkRecord {
        ChunkRecord {
            len,
            owner: UserId([3; 32]),
            pieces: pieces
                .iter()
                .map(|&(volume, name, len)| PieceRef {
                    volume,
                    name: name.into(),
                    len,
                })
                .collect(),
            stored_ms: 5,
        }
    }

    #[test]
    fn rows_whose_piece_lengths_overflow_are_bad_rows_not_panics() {
        // Found by the store_row fuzz target: counting this row on open
        // overflowed (a panic in debug builds, a wrapped counter in release).
        let row = chunk_row(1, &[(0, "x", u64::MAX), (0, "y", u64::MAX)]);
        let bytes = encode(&row);
        assert_eq!(decode_chunk_row(&bytes), None);
        assert!(!fuzz_row(RowKind::Chunk, &bytes));
        let (mut by_volume, mut used) = (HashMap::new(), 0);
        row.charge(&mut by_volume, &mut used);
        assert_eq!((used, by_volume[&0]), (u64::MAX, u64::MAX));
    }

    #[test]
    fn rows_must_add_up_and_name_plain_piece_files() {
        let ok = chunk_row(9, &[(0, "ab12.0.00000000000000ff", 4), (1, "ab12.1.7", 5)]);
        assert_eq!(decode_chunk_row(&encode(&ok)), Some(ok.clone()));
        assert!(fuzz_row(RowKind::Chunk, &encode(&ok)));
        assert_eq!(
            decode_chunk_row(&encode(&chunk_row(0, &[]))),
            Some(chunk_row(0, &[]))
        );
        for bad in [
            chunk_row(10, &[(0, "ab.0.1", 4), (1, "ab.1.1", 5)]),
            chunk_row(4, &[(0, "../../etc/passwd", 4)]),
            chunk_row(4, &[(0, "/etc/passwd", 4)]),
            chunk_row(4, &[(0, "..", 4)]),
            chunk_row(4, &[(0, "", 4)]),
            chunk_row(4, &[(0, "ab/cd", 4)]),
        ] {
            assert_eq!(decode_chunk_row(&encode(&bad)), None, "{bad:?}");
        }
    }
}
