//! An upload's saved state: CBOR in a file written atomically (mode 0600,
//! it holds the file key) after placed chunks, read back as untrusted input.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ifs_core::UserId;
use ifs_core::codec::{CHUNK_OVERHEAD, FileKey, MAX_SEGMENT_SIZE, NoncePrefix};
use ifs_core::keys::UserKey;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{Head, Upload, lock};
use crate::error::PutError;
use crate::put::{PlacedChunk, PutOptions};

/// Format of the saved state.
const STATE_FORMAT: u32 = 1;
/// Largest state file read back (a file of the most chunks a manifest
/// can list, R receipts each, fits many times over).
const MAX_STATE_BYTES: u64 = 256 << 20;

/// The saved form (CBOR).
#[derive(Serialize, Deserialize)]
struct SavedUpload {
    format: u32,
    owner: UserId,
    name: String,
    version: u64,
    file_key: [u8; 32],
    nonce_prefix: NoncePrefix,
    segment_size: u64,
    replicas: u64,
    readers: Vec<UserId>,
    reader_keys: Vec<[u8; 32]>,
    chunks: Vec<PlacedChunk>,
}

impl Upload {
    /// The state as saved: CBOR.
    fn encode(&self) -> Vec<u8> {
        let saved = SavedUpload {
            format: STATE_FORMAT,
            owner: self.head.owner,
            name: self.head.name.clone(),
            version: self.head.version,
            file_key: self.head.file_key.0,
            nonce_prefix: self.head.prefix,
            segment_size: self.head.segment_size,
            replicas: self.opts.replicas as u64,
            readers: self.opts.readers.clone(),
            reader_keys: self.opts.reader_keys.clone(),
            chunks: self.placed(),
        };
        cbor4ii::serde::to_vec(Vec::new(), &saved).unwrap_or_default()
    }

    /// Save the state to `path` now: a temp file beside it (mode 0600),
    /// synced, renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), PutError> {
        write_atomic(path, &self.encode()).map_err(|source| PutError::StateIo {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Load a saved upload for `key`. The state is checked as any input
    /// from disk: a damaged or foreign file is a typed error, never a panic.
    pub fn load(path: &Path, key: &UserKey, opts: PutOptions) -> Result<Upload, PutError> {
        let io = |source| PutError::StateIo {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        f.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let corrupt = |reason: String| PutError::StateCorrupt {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(corrupt("larger than any upload's state".into()));
        }
        let saved: SavedUpload =
            cbor4ii::serde::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut up = Self::from_saved(saved, key, opts).map_err(corrupt)?;
        up.check_key(key)?;
        up.state_path = Some(path.to_path_buf());
        Ok(up)
    }

    fn from_saved(s: SavedUpload, key: &UserKey, mut opts: PutOptions) -> Result<Upload, String> {
        if s.format != STATE_FORMAT {
            return Err(format!(
                "format {} (this build reads {STATE_FORMAT})",
                s.format
            ));
        }
        if s.segment_size == 0 || s.segment_size > MAX_SEGMENT_SIZE as u64 {
            return Err(format!("segment size {}", s.segment_size));
        }
        if !(1..=u64::from(u8::MAX)).contains(&s.replicas) {
            return Err(format!("{} replicas", s.replicas));
        }
        if s.name != opts.name {
            return Err(format!("saved for {:?}, not {:?}", s.name, opts.name));
        }
        let mut chunks = BTreeMap::new();
        for c in s.chunks {
            let max_len = s.segment_size + CHUNK_OVERHEAD as u64;
            if c.plain_len > s.segment_size || c.len > max_len || c.receipts.is_empty() {
                return Err(format!("chunk {} does not fit the upload", c.index));
            }
            if chunks.insert(c.index, c).is_some() {
                return Err("a chunk index twice".into());
            }
        }
        opts.codec.segment_size = s.segment_size as usize;
        opts.replicas = s.replicas as usize;
        opts.readers = s.readers;
        opts.reader_keys = s.reader_keys;
        Ok(Upload {
            head: Head {
                owner: s.owner,
                handle: key.file_handle(&s.name),
                name: s.name,
                version: s.version,
                file_key: FileKey(s.file_key),
                prefix: s.nonce_prefix,
                segment_size: s.segment_size,
            },
            opts,
            chunks: Mutex::new(chunks),
            state_path: None,
            saving: tokio::sync::Mutex::new(()),
            changes: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            warm: Default::default(),
        })
    }

    /// Record a placed chunk.
    pub(super) fn record(&self, placed: &PlacedChunk) {
        lock(&self.chunks).insert(placed.index, placed.clone());
        // After the insert: a save that reads this count sees the chunk.
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// Return once a save covering every change made so far is on disk.
    /// Saves are grouped: one write covers every chunk placed while the
    /// previous one ran, and each caller waits for the write covering its
    /// chunk, so a crash loses at most the chunks still in flight.
    pub(super) async fn autosave(&self) -> Result<(), PutError> {
        if self.state_path.is_none() {
            return Ok(());
        }
        let mine = self.changes.load(Ordering::SeqCst);
        let _saving = self.saving.lock().await;
        if self.saved.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        let covered = self.changes.load(Ordering::SeqCst);
        self.write_state().await?;
        self.saved.store(covered, Ordering::SeqCst);
        Ok(())
    }

    /// Save now (after a save under way).
    pub(super) async fn save_now(&self) -> Result<(), PutError> {
        if self.state_path.is_none() {
            return Ok(());
        }
        let _saving = self.saving.lock().await;
        let covered = self.changes.load(Ordering::SeqCst);
        self.write_state().await?;
        self.saved.store(covered, Ordering::SeqCst);
        Ok(())
    }

    async fn write_state(&self) -> Result<(), PutError> {
        let Some(path) = self.state_path.clone() else {
            return Ok(());
        };
        let bytes = self.encode();
        let p = path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&p, &bytes))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| PutError::StateIo { path, source })
    }
}

/// Delete the state at `path` and the temp files a process killed while
/// saving it left beside it.
pub(super) fn remove_state(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        warn!("upload state {} not removed: {e}", path.display());
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The temp file a save of `path` writes first: hidden, per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replace `path` with `bytes`: a temp file beside it created with mode
/// 0600 (the state holds the file key), synced, renamed, directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    // A temp file left by a crashed process of the same id goes first:
    // the new one must be created with our mode, not inherit its.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}
