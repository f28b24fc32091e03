//! Bad disk state gives one clear error naming the path, never a panic, and
//! leaves nothing half-written.

use ifs_store::{Cap, StoreConfig, StoreError, StoreHandle, VolumeSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn spec(path: &Path) -> VolumeSpec {
    VolumeSpec {
        path: path.to_path_buf(),
        cap: Cap::Bytes(1 << 20),
    }
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn a_missing_volume_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::create_dir(&good).unwrap();
    let missing = dir.path().join("no-such-disk");
    let data = dir.path().join("data");
    let cfg = StoreConfig::new(&data, vec![spec(&good), spec(&missing)]);
    let err = StoreHandle::open(cfg).await.unwrap_err();
    assert!(matches!(&err, StoreError::VolumeMissing { path } if *path == missing));
    assert!(err.to_string().contains("no-such-disk"), "{err}");
    assert!(is_empty(&good), "the good volume was not touched");
    assert!(!data.exists(), "no database was created");

    // A plain file where a directory should be is just as missing.
    std::fs::write(&missing, b"not a dir").unwrap();
    let cfg = StoreConfig::new(&data, vec![spec(&missing)]);
    assert!(matches!(
        StoreHandle::open(cfg).await,
        Err(StoreError::VolumeMissing { .. })
    ));
}

#[tokio::test]
async fn a_read_only_volume_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&good).unwrap();
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let data = dir.path().join("data");
    let cfg = StoreConfig::new(&data, vec![spec(&good), spec(&locked)]);
    let err = StoreHandle::open(cfg).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::VolumeReadOnly { path } if *path == locked),
        "{err}"
    );
    assert!(err.to_string().contains("locked"));
    assert!(is_empty(&good) && is_empty(&locked) && !data.exists());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn a_garbage_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("store.redb");
    std::fs::write(&db, vec![0x5a; 64 * 1024]).unwrap();
    let err = StoreHandle::open(StoreConfig::new(&data, vec![spec(&vol)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Db { path, .. } if *path == db),
        "{err}"
    );
    assert!(err.to_string().contains("store.redb"));
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path(), vec![]);
    cfg.owner_reserve_pct = 100;
    assert!(matches!(
        StoreHandle::open(cfg).await,
        Err(StoreError::BadSpec(_))
    ));
    let err = VolumeSpec::parse("/data/a:12parsecs").unwrap_err();
    assert!(err.to_string().contains("/data/a:12parsecs"));
}
