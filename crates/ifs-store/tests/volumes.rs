//! Volume identity: a volume is found by the id in its marker, whatever path
//! the configuration reaches it by; a volume that is not the one expected is
//! refused; piece files nothing accounts for are quarantined, never deleted.

use ifs_core::{ChunkId, UserId};
use ifs_store::{Cap, MARKER_FILE, StoreConfig, StoreError, StoreHandle, VolumeSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KIB: u64 = 1024;
const OWNER: UserId = UserId([7; 32]);
const TTL: Duration = Duration::from_secs(600);

fn config(data: &Path, volumes: &[PathBuf]) -> StoreConfig {
    let specs = volumes
        .iter()
        .map(|path| VolumeSpec {
            path: path.clone(),
            cap: Cap::Bytes(4096 * KIB),
        })
        .collect();
    let mut cfg = StoreConfig::new(data, specs);
    cfg.piece_size = 64 * KIB;
    cfg
}

fn chunk(seed: u8, len: usize) -> (ChunkId, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect();
    (ChunkId::of(&data), data)
}

/// Every file under `dir`, recursively (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path))
        } else {
            out.push(path)
        }
    }
    out.sort();
    out
}

fn pieces(volume: &Path) -> Vec<PathBuf> {
    files(&volume.join("ifs/pieces"))
}

fn quarantine(volume: &Path) -> Vec<PathBuf> {
    files(&volume.join("ifs/quarantine"))
}

/// A data dir and one volume `root/vol` holding two chunks (seven pieces),
/// the store shut down.
struct Fixture {
    root: tempfile::TempDir,
    data: PathBuf,
    vol: PathBuf,
    chunks: Vec<(ChunkId, Vec<u8>)>,
    pieces: Vec<PathBuf>,
}

async fn stored() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let vol = root.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let store = StoreHandle::open(config(&data, std::slice::from_ref(&vol)))
        .await
        .unwrap();
    let res = store.reserve(512 * KIB, TTL, 0).await.unwrap();
    let chunks = vec![chunk(1, 300 * KIB as usize), chunk(2, 100 * KIB as usize)];
    for (id, bytes) in &chunks {
        store
            .put_chunk(res.id, *id, OWNER, bytes.clone(), 1)
            .await
            .unwrap();
    }
    store.commit_reservation(res.id).await.unwrap();
    store.shutdown().await;
    let pieces = pieces(&vol);
    assert_eq!(pieces.len(), 7, "5 + 2 pieces of 64 KiB");
    assert!(vol.join(MARKER_FILE).is_file(), "the first open marks it");
    Fixture {
        root,
        data,
        vol,
        chunks,
        pieces,
    }
}

/// Opens the store on `volume` and checks every chunk, piece and byte is there.
async fn reopens_intact(f: &Fixture, volume: &Path, on_disk: &Path) {
    let store = StoreHandle::open(config(&f.data, &[volume.to_path_buf()]))
        .await
        .unwrap();
    for (id, bytes) in &f.chunks {
        assert_eq!(&store.get_chunk(*id).await.unwrap(), bytes);
    }
    let s = store.stats().await.unwrap();
    assert_eq!(s.used, 400 * KIB);
    assert_eq!((s.quarantined_files, s.quarantined_bytes), (0, 0));
    assert_eq!(s.volumes[0].path, volume, "reported as configured");
    assert!(store.scrub().await.unwrap().is_clean());
    assert_eq!(pieces(on_disk).len(), 7);
    store.shutdown().await;
}

#[tokio::test]
async fn a_trailing_slash_in_the_path_keeps_every_piece() {
    let f = stored().await;
    let slashed = PathBuf::from(format!("{}/", f.vol.display()));
    reopens_intact(&f, &slashed, &f.vol).await;
    let dotted = f.root.path().join("data/../vol/.");
    reopens_intact(&f, &dotted, &f.vol).await;
    reopens_intact(&f, &f.vol, &f.vol).await;
    assert_eq!(pieces(&f.vol), f.pieces);
}

#[tokio::test]
async fn a_path_through_a_symlink_keeps_every_piece() {
    let f = stored().await;
    let link = f.root.path().join("link");
    std::os::unix::fs::symlink(&f.vol, &link).unwrap();
    reopens_intact(&f, &link, &f.vol).await;
    reopens_intact(&f, &f.vol, &f.vol).await;
}

#[tokio::test]
async fn a_volume_moved_to_another_path_is_found_by_its_marker() {
    let f = stored().await;
    let moved = f.root.path().join("elsewhere");
    std::fs::rename(&f.vol, &moved).unwrap();
    reopens_intact(&f, &moved, &moved).await;
    // An empty directory left at the old path is a new volume, not the old one.
    std::fs::create_dir(&f.vol).unwrap();
    let store = StoreHandle::open(config(&f.data, &[f.vol.clone(), moved.clone()]))
        .await
        .unwrap();
    for (id, bytes) in &f.chunks {
        assert_eq!(&store.get_chunk(*id).await.unwrap(), bytes);
    }
    let s = store.stats().await.unwrap();
    assert_ne!(s.volumes[0].volume_id, s.volumes[1].volume_id);
    assert_eq!((s.volumes[0].used, s.volumes[1].used), (0, 400 * KIB));
}

#[tokio::test]
async fn another_stores_volume_is_refused_and_left_untouched() {
    let f = stored().await;
    // A second store with its own volume, then pointed at the first one's.
    let other_data = f.root.path().join("other-data");
    let other_vol = f.root.path().join("other-vol");
    std::fs::create_dir(&other_vol).unwrap();
    let other = StoreHandle::open(config(&other_data, std::slice::from_ref(&other_vol)))
        .await
        .unwrap();
    other.shutdown().await;
    let err = StoreHandle::open(config(&other_data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::VolumeForeign { path, .. } if *path == f.vol),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        !msg.contains('\n') && msg.contains(&f.vol.display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("another node") && msg.contains("config.toml"),
        "{msg}"
    );
    // A lost store.redb is the same case: refused, nothing moved or deleted.
    std::fs::remove_file(f.data.join("store.redb")).unwrap();
    let err = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VolumeForeign { .. }), "{err}");
    assert_eq!(pieces(&f.vol), f.pieces);
    assert!(quarantine(&f.vol).is_empty());
}

#[tokio::test]
async fn a_missing_marker_where_the_table_expects_pieces_is_refused() {
    let f = stored().await;
    std::fs::remove_file(f.vol.join(MARKER_FILE)).unwrap();
    let err = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::VolumeExpected { path, pieces: 7, .. } if *path == f.vol),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'));
    assert_eq!(pieces(&f.vol), f.pieces, "nothing touched");

    // An empty directory where the volume should be (a disk not mounted).
    let mounted = f.root.path().join("disk");
    std::fs::rename(&f.vol, &mounted).unwrap();
    std::fs::create_dir(&f.vol).unwrap();
    let err = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VolumeExpected { .. }), "{err}");
}

#[tokio::test]
async fn pieces_without_a_marker_that_the_table_does_not_know_are_refused() {
    let f = stored().await;
    std::fs::remove_file(f.vol.join(MARKER_FILE)).unwrap();
    let fresh = f.root.path().join("fresh-data");
    let err = StoreHandle::open(config(&fresh, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::VolumeUnmarked { path, pieces: 7 } if *path == f.vol),
        "{err}"
    );
    assert_eq!(pieces(&f.vol), f.pieces);
}

#[tokio::test]
async fn one_volume_listed_twice_is_refused() {
    let f = stored().await;
    let link = f.root.path().join("link");
    std::os::unix::fs::symlink(&f.vol, &link).unwrap();
    let err = StoreHandle::open(config(&f.data, &[f.vol.clone(), link.clone()]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::VolumeDuplicate { path, other } if *path == link && *other == f.vol),
        "{err}"
    );
    // A copy of a volume (same marker) next to the original.
    let copy = f.root.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(f.vol.join(MARKER_FILE), copy.join(MARKER_FILE)).unwrap();
    let err = StoreHandle::open(config(&f.data, &[f.vol.clone(), copy]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VolumeDuplicate { .. }), "{err}");
}

#[tokio::test]
async fn unknown_and_lost_pieces_are_quarantined_not_deleted() {
    let f = stored().await;
    // A piece file no row names, and one in the wrong shard directory.
    let stray = f.vol.join("ifs/pieces/ab/abcdef.0.1");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, vec![5u8; 1000]).unwrap();
    let misplaced_from = &f.pieces[0];
    let name = misplaced_from.file_name().unwrap();
    let misplaced = f.vol.join("ifs/pieces/zz").join(name);
    std::fs::create_dir_all(misplaced.parent().unwrap()).unwrap();
    std::fs::copy(misplaced_from, &misplaced).unwrap();
    let copy_len = std::fs::metadata(&misplaced).unwrap().len();

    let store = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap();
    let q = quarantine(&f.vol);
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(
        q.iter()
            .any(|p| std::fs::read(p).unwrap() == vec![5u8; 1000])
    );
    assert_eq!(pieces(&f.vol), f.pieces, "the named pieces stay");
    let s = store.stats().await.unwrap();
    assert_eq!(s.used, 400 * KIB, "quarantined bytes are not used");
    assert_eq!(
        (s.quarantined_files, s.quarantined_bytes),
        (2, 1000 + copy_len)
    );
    assert_eq!(s.volumes[0].quarantined_files, 2);
    store.shutdown().await;

    // The quarantine is kept and still reported after another reopen; a
    // second stray file with a name already there gets a new name.
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"again").unwrap();
    let store = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!(
        (s.quarantined_files, s.quarantined_bytes),
        (3, 1005 + copy_len)
    );
    assert_eq!(quarantine(&f.vol).len(), 3);

    // Deleting a chunk removes its pieces and leaves the quarantine alone.
    let (id, _) = &f.chunks[1];
    assert_eq!(store.delete(*id).await.unwrap(), 100 * KIB);
    assert_eq!(pieces(&f.vol).len(), 5);
    assert_eq!(quarantine(&f.vol).len(), 3);
}

#[tokio::test]
async fn a_store_from_before_markers_is_migrated_without_loss() {
    let f = stored().await;
    // Undo what markers added: the marker file and the table's volume ids,
    // and record the path the way an older config spelled it.
    std::fs::remove_file(f.vol.join(MARKER_FILE)).unwrap();
    {
        let db = redb::Database::create(f.data.join("store.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let ids: redb::TableDefinition<u16, &[u8; 16]> = redb::TableDefinition::new("volume_ids");
        txn.delete_table(ids).unwrap();
        let paths: redb::TableDefinition<u16, &str> = redb::TableDefinition::new("volumes");
        let slashed = format!("{}/", f.vol.display());
        txn.open_table(paths)
            .unwrap()
            .insert(0, slashed.as_str())
            .unwrap();
        txn.commit().unwrap();
    }
    reopens_intact(&f, &f.vol, &f.vol).await;
    assert!(
        f.vol.join(MARKER_FILE).is_file(),
        "migration wrote a marker"
    );
    // From now on the volume is found by its marker, even after a move.
    let moved = f.root.path().join("moved");
    std::fs::rename(&f.vol, &moved).unwrap();
    reopens_intact(&f, &moved, &moved).await;
}

#[tokio::test]
async fn an_unreadable_marker_is_refused() {
    let f = stored().await;
    std::fs::write(f.vol.join(MARKER_FILE), b"hello").unwrap();
    let err = StoreHandle::open(config(&f.data, std::slice::from_ref(&f.vol)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VolumeMarkerBad { .. }), "{err}");
    assert_eq!(pieces(&f.vol), f.pieces);
}
