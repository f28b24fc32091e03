//! Signed sample records for DHT tests: a file record with a manifest
//! signed by its owner and receipts signed by holders.

use ifs_core::ChunkId;
use ifs_core::codec::NoncePrefix;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_core::proto::RecordKey;
use ifs_core::wire::{ChunkRef, Manifest, ManifestFields, Receipt};

/// Length of every sample chunk.
pub const CHUNK_LEN: u64 = 50;

/// The id of sample chunk `i`.
pub fn chunk(i: u8) -> ChunkId {
    ChunkId::of(&[i])
}

/// A manifest of `name`, version `version`, over sample chunks `chunks`.
pub fn manifest(owner: &UserKey, name: &str, version: u64, chunks: &[u8]) -> Manifest {
    Manifest::new(
        owner,
        ManifestFields {
            name: name.into(),
            version,
            size: CHUNK_LEN * chunks.len() as u64,
            created_at_ms: 1_000 + version,
            segment_size: 1 << 20,
            nonce_prefix: NoncePrefix([0; 7]),
            chunks: chunks
                .iter()
                .map(|&i| ChunkRef {
                    id: chunk(i),
                    len: CHUNK_LEN,
                })
                .collect(),
            key_wraps: vec![],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .expect("a sample manifest is well-formed")
}

/// A receipt by `holder` for sample chunk `i` of `owner`'s file `name`.
pub fn receipt(holder: &NodeKey, owner: &UserKey, name: &str, i: u8) -> Receipt {
    let record = FileRecord::key(&owner.user_id(), name);
    Receipt::new(
        holder,
        chunk(i),
        CHUNK_LEN,
        (owner.user_id(), record),
        2_000,
    )
}

/// A file record: `manifest` plus receipts by `holders` of chunk 0.
pub fn file_record(manifest: Manifest, owner: &UserKey, holders: &[&NodeKey]) -> FileRecord {
    let name = manifest.name.clone();
    let receipts = holders
        .iter()
        .map(|h| receipt(h, owner, &name, 0))
        .collect();
    FileRecord::from_manifest(manifest, receipts).expect("sample entries are validly signed")
}

/// The DHT key of `owner`'s file `name`.
pub fn record_key(owner: &UserKey, name: &str) -> Vec<u8> {
    RecordKey::File(FileRecord::key(&owner.user_id(), name)).to_bytes()
}
