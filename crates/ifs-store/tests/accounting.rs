//! Space accounting: spill across volumes, caps under concurrency, expiry,
//! and exact counters after delete and reopen.

use ifs_core::{ChunkId, UserId};
use ifs_store::{Cap, Capacity, StoreConfig, StoreError, StoreHandle, VolumeSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KIB: u64 = 1024;
const OWNER: UserId = UserId([7; 32]);
const TTL: Duration = Duration::from_secs(600);

struct Fixture {
    _dir: tempfile::TempDir,
    cfg: StoreConfig,
}

fn fixture(caps: &[u64], piece_size: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let volumes = caps
        .iter()
        .enumerate()
        .map(|(i, cap)| {
            let path = dir.path().join(format!("vol{i}"));
            std::fs::create_dir(&path).unwrap();
            VolumeSpec {
                path,
                cap: Cap::Bytes(*cap),
            }
        })
        .collect();
    let mut cfg = StoreConfig::new(dir.path().join("data"), volumes);
    cfg.piece_size = piece_size;
    Fixture { _dir: dir, cfg }
}

/// Deterministic, distinct bytes for chunk number `seed`.
fn chunk(seed: u64, len: u64) -> (ChunkId, Vec<u8>) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    (ChunkId::of(&data), data)
}

/// Bytes of piece files under a volume (its marker and quarantine aside).
fn disk_bytes(volume: &Path) -> u64 {
    tree_bytes(&volume.join("ifs/pieces"))
}

fn tree_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            tree_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// (used, donated, free) of one volume.
type VolumeLedger = (u64, u64, u64);

/// The accounting part of a capacity report (the filesystem's own free
/// space moves with every write, the ledger must not).
fn ledger(c: &Capacity) -> (u64, u64, u64, u64, Vec<VolumeLedger>) {
    let vols = c
        .volumes
        .iter()
        .map(|v| (v.used, v.donated, v.free))
        .collect();
    (c.donated, c.used, c.reserved, c.free, vols)
}

fn volume_paths(f: &Fixture) -> Vec<PathBuf> {
    f.cfg.volumes.iter().map(|v| v.path.clone()).collect()
}

#[tokio::test]
async fn a_chunk_spills_to_the_next_volume_when_one_is_full() {
    let f = fixture(&[1024 * KIB, 512 * KIB], 256 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let (id, data) = chunk(1, 1536 * KIB);
    let res = store.reserve(1536 * KIB, TTL, 0).await.unwrap();
    let stored = store
        .put_chunk(res.id, id, OWNER, data.clone(), 1)
        .await
        .unwrap();
    assert!(stored.pieces >= 6, "pieces are at most 256 KiB");

    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.volumes[0].used,
        1024 * KIB,
        "first volume filled to its cap"
    );
    assert_eq!(
        stats.volumes[1].used,
        512 * KIB,
        "the rest spilled to the second"
    );
    assert_eq!(stats.free, 0);
    let paths = volume_paths(&f);
    assert_eq!(disk_bytes(&paths[0]), 1024 * KIB);
    assert_eq!(disk_bytes(&paths[1]), 512 * KIB);
    assert_eq!(store.get_chunk(id).await.unwrap(), data);
    assert!(matches!(
        store.reserve(1, TTL, 2).await,
        Err(StoreError::Full { needed: 1, free: 0 })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_exceed_the_cap() {
    let cap = 4096 * KIB;
    let f = fixture(&[cap], 64 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    // 64 clients each reserve and write 256 KiB: only 16 fit.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (id, data) = chunk(i, 256 * KIB);
                let res = store.reserve(256 * KIB, TTL, 0).await?;
                store.put_chunk(res.id, id, OWNER, data, 1).await?;
                store.commit_reservation(res.id).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(end) => {
                assert_eq!((end.used, end.returned), (256 * KIB, 0));
                ok += 1;
            }
            Err(StoreError::Full { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 16);
    // 32 writers race on one shared reservation of 1 MiB: exactly 8 fit.
    let f = fixture(&[cap], 64 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(1024 * KIB, TTL, 0).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (id, data) = chunk(100 + i, 128 * KIB);
                store.put_chunk(res.id, id, OWNER, data, 1).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::ReservationExceeded { needed, .. }) => assert_eq!(needed, 128 * KIB),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 8);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.used, stats.reserved), (1024 * KIB, 0));
    assert_eq!(disk_bytes(&f.cfg.volumes[0].path), stats.used);
}

#[tokio::test]
async fn expiry_and_commit_return_the_unused_bytes() {
    let f = fixture(&[2048 * KIB], 256 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store
        .reserve(1024 * KIB, Duration::from_secs(10), 1_000)
        .await
        .unwrap();
    assert_eq!(res.expires_ms, 11_000);
    let s = store.stats().await.unwrap();
    assert_eq!((s.reserved, s.free), (1024 * KIB, 1024 * KIB));

    let (id, data) = chunk(1, 256 * KIB);
    store
        .put_chunk(res.id, id, OWNER, data, 2_000)
        .await
        .unwrap();
    assert_eq!(
        store.sweep_expired(10_999).await.unwrap(),
        0,
        "not yet expired"
    );
    let (late, late_data) = chunk(2, 1);
    assert!(matches!(
        store
            .put_chunk(res.id, late, OWNER, late_data.clone(), 11_000)
            .await,
        Err(StoreError::Expired(_))
    ));
    assert_eq!(store.sweep_expired(11_000).await.unwrap(), 768 * KIB);
    let s = store.stats().await.unwrap();
    assert_eq!((s.used, s.reserved, s.free), (256 * KIB, 0, 1792 * KIB));
    assert!(matches!(
        store
            .put_chunk(res.id, late, OWNER, late_data, 11_001)
            .await,
        Err(StoreError::UnknownReservation(_))
    ));

    // Committing hands back the unwritten rest at once.
    let res = store.reserve(512 * KIB, TTL, 12_000).await.unwrap();
    let (id, data) = chunk(3, 100 * KIB);
    store
        .put_chunk(res.id, id, OWNER, data, 12_001)
        .await
        .unwrap();
    let end = store.commit_reservation(res.id).await.unwrap();
    assert_eq!((end.used, end.returned), (100 * KIB, 412 * KIB));
    let s = store.stats().await.unwrap();
    assert_eq!((s.used, s.reserved, s.free), (356 * KIB, 0, 1692 * KIB));
    assert!(matches!(
        store.release(res.id).await,
        Err(StoreError::UnknownReservation(_))
    ));
}

#[tokio::test]
async fn accounting_is_exact_after_delete_and_after_reopen() {
    let f = fixture(&[1024 * KIB, 1024 * KIB], 128 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(1500 * KIB, TTL, 0).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let (id, data) = chunk(i, 200 * KIB + i);
        store.put_chunk(res.id, id, OWNER, data, 1).await.unwrap();
        ids.push(id);
    }
    store
        .set_receipt(ids[0], b"signed receipt".to_vec())
        .await
        .unwrap();
    let before = store.stats().await.unwrap();
    let written: u64 = (0..5).map(|i| 200 * KIB + i).sum();
    assert_eq!(before.used, written);
    assert_eq!(before.reserved, 1500 * KIB - written);
    assert_eq!(before.free, before.donated - before.used - before.reserved);
    let on_disk = |f: &Fixture| volume_paths(f).iter().map(|p| disk_bytes(p)).sum::<u64>();
    assert_eq!(on_disk(&f), before.used);

    store.shutdown().await;
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    assert_eq!(
        ledger(&store.stats().await.unwrap()),
        ledger(&before),
        "reopen restores every counter"
    );
    assert_eq!(
        store.receipt(ids[0]).await.unwrap().as_deref(),
        Some(&b"signed receipt"[..])
    );

    let freed = store.delete(ids[2]).await.unwrap();
    assert_eq!(freed, 200 * KIB + 2);
    let after = store.stats().await.unwrap();
    assert_eq!(after.used, before.used - freed);
    assert_eq!(after.free, before.free + freed);
    assert_eq!(on_disk(&f), after.used);
    assert!(matches!(
        store.get_chunk(ids[2]).await,
        Err(StoreError::Missing { .. })
    ));
    assert!(matches!(
        store.delete(ids[2]).await,
        Err(StoreError::Missing { .. })
    ));
    let listed: Vec<_> = store
        .list_chunks()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed.len(), 4);
    assert!(!listed.contains(&ids[2]));

    store.shutdown().await;
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    assert_eq!(ledger(&store.stats().await.unwrap()), ledger(&after));
    let end = store.commit_reservation(res.id).await.unwrap();
    assert_eq!(
        end.returned, before.reserved,
        "the reservation survived both restarts"
    );
}

#[tokio::test]
async fn a_duplicate_put_is_not_charged_twice() {
    let f = fixture(&[1024 * KIB], 128 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(600 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(9, 300 * KIB);
    let first = store
        .put_chunk(res.id, id, OWNER, data.clone(), 1)
        .await
        .unwrap();
    let again = store.put_chunk(res.id, id, OWNER, data, 2).await.unwrap();
    assert!(!first.already_present && again.already_present);
    let s = store.stats().await.unwrap();
    assert_eq!((s.used, s.reserved), (300 * KIB, 300 * KIB));
    assert_eq!(disk_bytes(&f.cfg.volumes[0].path), 300 * KIB);
}

#[tokio::test]
async fn shrinking_the_donation_below_use_shows_excess_to_offload() {
    let f = fixture(&[1024 * KIB], 128 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(600 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(4, 600 * KIB);
    store.put_chunk(res.id, id, OWNER, data, 1).await.unwrap();
    let path = f.cfg.volumes[0].path.clone();
    let s = store
        .set_volume_cap(path.clone(), Cap::Bytes(400 * KIB))
        .await
        .unwrap();
    assert_eq!(
        (s.donated, s.used, s.free, s.excess),
        (400 * KIB, 600 * KIB, 0, 200 * KIB)
    );
    assert!(matches!(
        store.reserve(1, TTL, 2).await,
        Err(StoreError::Full { .. })
    ));
    // Offloading (here: deleting) the chunk clears the excess.
    store.delete(id).await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.used, s.free, s.excess), (0, 400 * KIB, 0));

    // A percent cap resolves against the real filesystem, bounded by the owner reserve.
    let s = store.set_volume_cap(path, Cap::Percent(100)).await.unwrap();
    let v = &s.volumes[0];
    assert_eq!(v.cap, v.fs_size);
    let reserve = v.fs_size / 10;
    assert!(v.free <= v.fs_avail.saturating_sub(reserve));
    assert!(v.owner_need_pct <= 100 && s.owner_need_pct == v.owner_need_pct);
}

/// Every file under a directory tree.
fn files_under(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_piece_that_cannot_be_removed_is_reported_not_lost() {
    let f = fixture(&[1024 * KIB], 64 * KIB);
    let vol = f.cfg.volumes[0].path.clone();
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(200 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(11, 200 * KIB);
    store.put_chunk(res.id, id, OWNER, data, 1).await.unwrap();
    store.commit_reservation(res.id).await.unwrap();

    // Piece 0 (64 KiB) cannot be unlinked: a non-empty directory stands in
    // its place, which not even root can remove with unlink.
    let first = files_under(&vol)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(".0."))
        .unwrap();
    let aside = f._dir.path().join("aside");
    std::fs::rename(&first, &aside).unwrap();
    std::fs::create_dir(&first).unwrap();
    std::fs::rename(&aside, first.join("piece")).unwrap();

    // The row goes, so the chunk is deleted; the stuck bytes are reported
    // and still held back from `free`, never counted as used.
    assert_eq!(store.delete(id).await.unwrap(), 200 * KIB);
    assert!(store.list_chunks().await.unwrap().is_empty());
    let s = store.stats().await.unwrap();
    assert_eq!(s.used, 0);
    assert_eq!((s.unremoved, s.unremoved_files), (64 * KIB, 1));
    assert_eq!(s.volumes[0].unremoved, 64 * KIB);
    assert_eq!(s.free, s.donated - 64 * KIB);
    assert_eq!(disk_bytes(&vol), 64 * KIB, "the other pieces are gone");

    // Once it can be removed, the next sweep does.
    std::fs::rename(first.join("piece"), &aside).unwrap();
    std::fs::remove_dir(&first).unwrap();
    std::fs::rename(&aside, &first).unwrap();
    store.sweep_expired(2).await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.unremoved, s.unremoved_files), (0, 0));
    assert_eq!((s.used, s.free), (0, s.donated));
    assert_eq!(disk_bytes(&vol), 0);
}

#[tokio::test]
async fn a_piece_still_stuck_at_reopen_is_quarantined_not_lost() {
    let f = fixture(&[1024 * KIB], 64 * KIB);
    let vol = f.cfg.volumes[0].path.clone();
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(200 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(12, 200 * KIB);
    store.put_chunk(res.id, id, OWNER, data, 1).await.unwrap();
    store.commit_reservation(res.id).await.unwrap();
    let first = files_under(&vol)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(".0."))
        .unwrap();
    let aside = f._dir.path().join("aside");
    std::fs::rename(&first, &aside).unwrap();
    std::fs::create_dir(&first).unwrap();
    std::fs::rename(&aside, first.join("piece")).unwrap();
    assert_eq!(store.delete(id).await.unwrap(), 200 * KIB);

    // At the next open the store opens; what no row names is accounted
    // for (stuck or quarantined), never counted as used, never lost.
    store.shutdown().await;
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!(s.used, 0);
    assert_eq!(s.unremoved_files + s.quarantined_files, 1, "{s:?}");
    assert!(store.list_chunks().await.unwrap().is_empty());
}

#[tokio::test]
async fn replacing_a_copy_reserves_before_it_deletes() {
    let f = fixture(&[256 * KIB], 64 * KIB);
    let store = StoreHandle::open(f.cfg.clone()).await.unwrap();
    let res = store.reserve(200 * KIB, TTL, 0).await.unwrap();
    let (id, data) = chunk(12, 200 * KIB);
    store
        .put_chunk(res.id, id, OWNER, data.clone(), 1)
        .await
        .unwrap();
    store.commit_reservation(res.id).await.unwrap();
    // Someone else holds 40 KiB: 16 KiB are free.
    store.reserve(40 * KIB, TTL, 2).await.unwrap();

    // Not even the old copy's space is enough: refused, the copy stays.
    assert!(matches!(
        store.reserve_replacing(id, 220 * KIB, TTL, 3).await,
        Err(StoreError::Full { needed, free }) if needed == 220 * KIB && free == 216 * KIB
    ));
    assert_eq!(store.get_chunk(id).await.unwrap(), data);
    assert_eq!(store.stats().await.unwrap().used, 200 * KIB);
    let (absent, _) = chunk(13, 10);
    assert!(matches!(
        store.reserve_replacing(absent, 10, TTL, 3).await,
        Err(StoreError::Missing { .. })
    ));

    // It fits in the old copy's space plus what is free: granted, and the
    // old copy is gone in the same step.
    let r = store
        .reserve_replacing(id, 210 * KIB, TTL, 4)
        .await
        .unwrap();
    assert!(!store.contains(id).await.unwrap());
    let s = store.stats().await.unwrap();
    assert_eq!((s.used, s.reserved, s.free), (0, 250 * KIB, 6 * KIB));
    store
        .put_chunk(r.id, id, OWNER, data.clone(), 5)
        .await
        .unwrap();
    assert_eq!(store.get_chunk(id).await.unwrap(), data);
    assert_eq!(disk_bytes(&f.cfg.volumes[0].path), 200 * KIB);
}
