//! `DIR/node.key`: the node's ed25519 identity, the raw 32-byte secret,
//! mode 0600.
//!
//! Raw bytes rather than a PEM or protobuf wrapper: the file has one reader
//! (this binary), and `ifs-net` derives the libp2p identity from the same
//! 32 bytes, so the PeerId is stable across restarts.

use crate::atomic_file::write_atomic;
use anyhow::{Context, bail};
use ifs_core::keys::NodeKey;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File name of the node key inside the data dir.
pub const KEY_FILE: &str = "node.key";

/// Permission bits of the key file: owner read/write only.
pub const KEY_MODE: u32 = 0o600;

/// Path of the key file in `data_dir`.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Load the key at `path`, refusing a file others can read.
pub fn load(path: &Path) -> anyhow::Result<NodeKey> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read node key {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "node key {} has mode {mode:04o}; it must be readable by its owner only (chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read node key {}", path.display()))?;
    let key = NodeKey::from_bytes(&bytes)
        .with_context(|| format!("invalid node key {}", path.display()))?;
    if !looks_random(&bytes) {
        bail!(
            "node key {} is not a random key (32 bytes of only {} different values, e.g. all zero); \
             anyone could sign as this node: delete it and run `ifsnode init --force` for a new one",
            path.display(),
            distinct_bytes(&bytes)
        );
    }
    Ok(key)
}

/// Fewest different byte values a key of 32 random bytes may hold. A
/// uniform key has about 30; one with at most 8 comes up with probability
/// below 10^-30, while typed or zeroed keys (all zero, a repeated pattern)
/// land there.
const MIN_DISTINCT_BYTES: usize = 9;

fn distinct_bytes(bytes: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|&&s| s).count()
}

/// Whether `bytes` could have come from a random generator.
fn looks_random(bytes: &[u8]) -> bool {
    distinct_bytes(bytes) >= MIN_DISTINCT_BYTES
}

/// Generate a fresh key and write it atomically to `path` with mode 0600.
pub fn create(path: &Path) -> anyhow::Result<NodeKey> {
    let key = NodeKey::generate(&mut rand::rng());
    write_atomic(path, &key.to_bytes(), KEY_MODE)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_gives_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        let k = create(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 32);
        assert_eq!(load(&p).unwrap().node_id(), k.node_id());
    }

    #[test]
    fn rejects_a_zero_or_patterned_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        for bytes in [[0u8; 32], [0xff; 32], *b"abcdabcdabcdabcdabcdabcdabcdabcd"] {
            write_atomic(&p, &bytes, KEY_MODE).unwrap();
            let err = format!("{:#}", load(&p).unwrap_err());
            assert!(err.contains("not a random key"), "{err}");
        }
        for _ in 0..1000 {
            assert!(looks_random(&rand::random::<[u8; 32]>()));
        }
    }

    #[test]
    fn rejects_short_or_world_readable_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        write_atomic(&p, &[7u8; 31], KEY_MODE).unwrap();
        let err = format!("{:#}", load(&p).unwrap_err());
        assert!(
            err.contains("invalid node key") && err.contains("31"),
            "{err}"
        );
        std::fs::write(&p, [7u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", load(&p).unwrap_err());
        assert!(err.contains("0644") && err.contains("chmod 600"), "{err}");
    }
}
