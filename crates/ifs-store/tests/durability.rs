//! Crashes, corruption and the node's own tables: what survives, what is
//! detected, and that nothing leaks.

use ifs_core::{ChunkId, UserId};
use ifs_store::{
    Cap, ChunkHealth, FaultPoint, MetaTable, StoreConfig, StoreError, StoreHandle, VolumeSpec,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KIB: u64 = 1024;
const OWNER: UserId = UserId([1; 32]);
const TTL: Duration = Duration::from_secs(600);

fn config(dir: &Path, volumes: usize) -> StoreConfig {
    let specs = (0..volumes)
        .map(|i| {
            let path = dir.join(format!("vol{i}"));
            std::fs::create_dir_all(&path).unwrap();
            VolumeSpec {
                path,
                cap: Cap::Bytes(4096 * KIB),
            }
        })
        .collect();
    let mut cfg = StoreConfig::new(dir.join("data"), specs);
    cfg.piece_size = 64 * KIB;
    cfg
}

fn chunk(seed: u8, len: usize) -> (ChunkId, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    (ChunkId::of(&data), data)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path))
        } else {
            out.push(path)
        }
    }
    out
}

fn piece_files(cfg: &StoreConfig) -> Vec<PathBuf> {
    cfg.volumes
        .iter()
        .flat_map(|v| files(&v.path.join("ifs/pieces")))
        .collect()
}

fn temp_files(cfg: &StoreConfig) -> Vec<PathBuf> {
    cfg.volumes
        .iter()
        .flat_map(|v| files(&v.path.join("ifs/tmp")))
        .collect()
}

/// Crashes at `fault`, reopens, and returns how many piece files the
/// reopened store moved to the quarantine.
async fn crash_then_reopen(fault: FaultPoint) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 2);
    cfg.fault = Some(fault);
    let store = StoreHandle::open(cfg.clone()).await.unwrap();
    let res = store.reserve(512 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(3, 300 * KIB as usize);
    let err = store
        .put_chunk(res.id, id, OWNER, data.clone(), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Closed),
        "the store stopped mid-write: {err}"
    );
    store.shutdown().await;
    // The crash left bytes on disk that no committed row accounts for.
    let left: usize = piece_files(&cfg).len() + temp_files(&cfg).len();
    assert_eq!(left, 5, "300 KiB in 64 KiB pieces");

    cfg.fault = None;
    let store = StoreHandle::open(cfg.clone()).await.unwrap();
    assert!(
        piece_files(&cfg).is_empty() && temp_files(&cfg).is_empty(),
        "recovery cleared them"
    );
    let s = store.stats().await.unwrap();
    let quarantined: usize = cfg
        .volumes
        .iter()
        .map(|v| files(&v.path.join("ifs/quarantine")).len())
        .sum();
    assert_eq!(s.quarantined_files, quarantined as u64);
    assert_eq!(
        (s.used, s.reserved),
        (0, 512 * KIB),
        "the reservation is intact, nothing used"
    );
    assert!(matches!(
        store.get_chunk(id).await,
        Err(StoreError::Missing { .. })
    ));
    // The client's resend now succeeds under the same reservation.
    store
        .put_chunk(res.id, id, OWNER, data.clone(), 2)
        .await
        .unwrap();
    assert_eq!(store.get_chunk(id).await.unwrap(), data);
    let s = store.stats().await.unwrap();
    assert_eq!(s.used, 300 * KIB, "quarantined files are not used bytes");
    s.quarantined_files
}

/// Pieces renamed into place but never committed are files no row names:
/// they are kept in the quarantine (reported, not charged), not deleted.
#[tokio::test]
async fn a_crash_between_piece_write_and_commit_quarantines_the_pieces() {
    assert_eq!(crash_then_reopen(FaultPoint::BeforeCommit).await, 5);
}

/// Temp files are the store's own and are removed.
#[tokio::test]
async fn a_crash_before_rename_leaks_nothing() {
    assert_eq!(crash_then_reopen(FaultPoint::AfterTempWrite).await, 0);
}

/// Stores a chunk of five pieces and returns the store, the chunk and its piece files.
async fn stored(dir: &Path) -> (StoreHandle, ChunkId, Vec<u8>, Vec<PathBuf>) {
    let cfg = config(dir, 2);
    let store = StoreHandle::open(cfg.clone()).await.unwrap();
    let res = store.reserve(300 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(5, 300 * KIB as usize);
    store
        .put_chunk(res.id, id, OWNER, data.clone(), 1)
        .await
        .unwrap();
    let pieces = piece_files(&cfg);
    assert_eq!(pieces.len(), 5);
    (store, id, data, pieces)
}

#[tokio::test]
async fn a_flipped_byte_is_found_by_scrub_and_by_read() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, data, pieces) = stored(dir.path()).await;
    assert!(store.scrub().await.unwrap().is_clean());
    assert_eq!(store.get_chunk(id).await.unwrap(), data);

    let mut bytes = std::fs::read(&pieces[2]).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&pieces[2], bytes).unwrap();

    let report = store.scrub().await.unwrap();
    assert_eq!(report.corrupt, vec![id]);
    assert_eq!((report.checked, report.bytes), (1, 300 * KIB));
    assert!(matches!(store.get_chunk(id).await, Err(StoreError::Corrupt { chunk }) if chunk == id));
    assert_eq!(store.verify(id).await.unwrap(), ChunkHealth::Corrupt);
    let paced = store.scrub_paced(Some(u64::MAX)).await.unwrap();
    assert_eq!(paced, report);
}

#[tokio::test]
async fn truncated_or_missing_pieces_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, _, pieces) = stored(dir.path()).await;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&pieces[0])
        .unwrap();
    file.set_len(10).unwrap();
    assert!(matches!(
        store.get_chunk(id).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.scrub().await.unwrap().corrupt, vec![id]);

    std::fs::remove_file(&pieces[0]).unwrap();
    assert!(matches!(
        store.get_chunk(id).await,
        Err(StoreError::Missing { .. })
    ));
    let report = store.scrub().await.unwrap();
    assert_eq!((report.missing, report.corrupt), (vec![id], vec![]));
    // Deleting the damaged chunk frees its whole size.
    assert_eq!(store.delete(id).await.unwrap(), 300 * KIB);
    assert_eq!(store.stats().await.unwrap().used, 0);
}

#[tokio::test]
async fn bytes_that_do_not_match_the_id_are_refused_and_not_charged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1);
    let store = StoreHandle::open(cfg.clone()).await.unwrap();
    let res = store.reserve(100 * KIB, TTL, 0).await.unwrap();
    let (id, mut data) = chunk(1, 100 * KIB as usize);
    data[0] ^= 0xff;
    let err = store
        .put_chunk(res.id, id, OWNER, data, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongId { chunk } if chunk == id));
    assert!(piece_files(&cfg).is_empty() && temp_files(&cfg).is_empty());
    let end = store.commit_reservation(res.id).await.unwrap();
    assert_eq!((end.used, end.returned), (0, 100 * KIB));
}

#[tokio::test]
async fn meta_tables_and_receipts_persist() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1);
    let store = StoreHandle::open(cfg.clone()).await.unwrap();
    for (k, v) in [("file/a", "1"), ("file/b", "2"), ("dir/x", "3")] {
        store
            .meta_put(MetaTable::Records, k.into(), v.into())
            .await
            .unwrap();
    }
    store
        .meta_put(MetaTable::Reputation, b"peer".to_vec(), b"0.9".to_vec())
        .await
        .unwrap();
    assert!(
        store
            .meta_delete(MetaTable::Records, b"file/b".to_vec())
            .await
            .unwrap()
    );
    assert!(
        !store
            .meta_delete(MetaTable::Records, b"file/b".to_vec())
            .await
            .unwrap()
    );
    let (id, data) = chunk(2, 10);
    assert!(matches!(
        store.set_receipt(id, vec![1]).await,
        Err(StoreError::Missing { .. })
    ));
    let res = store.reserve(10, TTL, 0).await.unwrap();
    store.put_chunk(res.id, id, OWNER, data, 1).await.unwrap();
    store.set_receipt(id, vec![9, 9]).await.unwrap();
    store.shutdown().await;

    let store = StoreHandle::open(cfg).await.unwrap();
    let files = store
        .meta_list(MetaTable::Records, b"file/".to_vec())
        .await
        .unwrap();
    assert_eq!(files, vec![(b"file/a".to_vec(), b"1".to_vec())]);
    assert_eq!(
        store
            .meta_list(MetaTable::Records, vec![])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .meta_get(MetaTable::Reputation, b"peer".to_vec())
            .await
            .unwrap(),
        Some(b"0.9".to_vec())
    );
    assert_eq!(
        store
            .meta_get(MetaTable::NodeTable, b"peer".to_vec())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.receipt(id).await.unwrap(), Some(vec![9, 9]));
    let listed = store.list_chunks().await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].owner, listed[0].len),
        (1, OWNER, 10)
    );
}
