//! One-way sync, local → IFS: put the files of a local tree that are new or
//! changed, skip the ones IFS already holds byte for byte, and optionally
//! remove remote files the tree no longer has.
//!
//! "Unchanged" is exact, and costs local CPU only: a file is skipped when
//! its size equals the stored size *and* encoding it under the stored
//! manifest's file key, nonce prefix and segment size gives the stored
//! chunk ids, in order. A chunk id is the BLAKE3 of its ciphertext, and
//! under one key and nonce a ciphertext decrypts to one plaintext, so equal
//! ids mean equal bytes; any difference in content gives a different id.
//! No timestamp is trusted (a tool that keeps the mtime while changing the
//! content cannot fool it), and nothing is uploaded or fetched but the
//! records. A file stored with other codec settings (a zstd level this
//! client does not use) re-encodes differently and is put again: wasted
//! upload, never a missed change.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use ifs_core::codec::{CodecParams, Encoder, FileKey};
use ifs_core::folder_record::{ChildKind, PackSlice};
use ifs_core::keys::UserKey;
use ifs_core::wire::ChunkRef;
use tracing::warn;

use crate::catalog::{LsOptions, ls, rm};
use crate::error::{GetError, PutError};
use crate::pages;
use crate::records;
use crate::session::Session;
use crate::tree::{TreeFile, TreeOptions, TreeReport, put_tree};

/// Files compared with their stored version at once (each reads its file
/// and encodes it on the codec's threads).
const CHECKS_IN_FLIGHT: usize = 4;

/// How a tree is synced.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// How changed files are put (replicas, files at once, progress: a
    /// skipped file counts as done, its bytes as done).
    pub tree: TreeOptions,
    /// Remove files below the prefix that the local tree does not have.
    pub delete: bool,
}

/// Why a sync could not run at all (one file failing is in the report).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote folder could not be listed.
    #[error("cannot list the remote files: {0}")]
    List(#[source] GetError),
    /// Putting the changed files could not start.
    #[error(transparent)]
    Put(#[from] PutError),
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// The files put (new or changed), as a tree put reports them.
    pub uploaded: TreeReport,
    /// Files IFS already held byte for byte: (name, size).
    pub skipped: Vec<(String, u64)>,
    /// Remote files removed because the local tree no longer has them.
    pub deleted: Vec<String>,
    /// Remote files that should have been removed but were not: (name, why).
    pub delete_failed: Vec<(String, String)>,
}

/// Sync `files` (every file of the local tree, named under `prefix`) into
/// IFS: new and changed files are put with [`put_tree`], unchanged ones
/// skipped (see the module doc for what "unchanged" means), and with
/// `opts.delete` every file below `prefix` that `files` does not name is
/// removed. A file whose comparison fails (its record unreadable, the
/// local file gone) is put again rather than skipped.
pub async fn sync_tree(
    session: &Session,
    key: &UserKey,
    files: Vec<TreeFile>,
    prefix: &str,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let prefix = prefix.trim_matches('/');
    let remote = remote_files(session, key, prefix).await?;
    let progress = &opts.tree.progress;
    let checked: Vec<(TreeFile, bool)> = futures::stream::iter(files.iter().cloned())
        .map(|f| {
            let stored = remote.get(&f.name).cloned();
            async move {
                let same = match stored {
                    Some((size, Some(slice))) if size == f.size => {
                        match same_hash(&f.path, &slice).await {
                            Ok(same) => same,
                            Err(e) => {
                                warn!(name = %f.name, "cannot compare with the stored file, putting it again: {e}");
                                false
                            }
                        }
                    }
                    Some((size, None)) if size == f.size => {
                        match same_content(session, key, &f.name, &f.path, f.size).await {
                            Ok(same) => same,
                            Err(e) => {
                                warn!(name = %f.name, "cannot compare with the stored file, putting it again: {e}");
                                false
                            }
                        }
                    }
                    _ => false,
                };
                if same {
                    progress.files.fetch_add(1, Ordering::Relaxed);
                    progress.bytes.fetch_add(f.size, Ordering::Relaxed);
                }
                (f, same)
            }
        })
        .buffer_unordered(CHECKS_IN_FLIGHT)
        .collect()
        .await;
    let mut report = SyncReport::default();
    let mut changed = Vec::new();
    for (f, same) in checked {
        if same {
            report.skipped.push((f.name, f.size));
        } else {
            changed.push(f);
        }
    }
    report.skipped.sort();
    changed.sort_by(|a, b| a.name.cmp(&b.name));
    report.uploaded = put_tree(session, key, changed, &opts.tree).await?;
    if opts.delete {
        let local: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
        for name in remote.keys().filter(|n| !local.contains(n.as_str())) {
            match rm(session, key, name).await {
                Ok(_) => report.deleted.push(name.clone()),
                Err(e) => report.delete_failed.push((name.clone(), e.to_string())),
            }
        }
    }
    Ok(report)
}

/// Every file below the folder `prefix` ("" for the top) with its size;
/// none when the folder does not exist yet.
async fn remote_files(
    session: &Session,
    key: &UserKey,
    prefix: &str,
) -> Result<BTreeMap<String, (u64, Option<PackSlice>)>, SyncError> {
    let opts = LsOptions {
        prefix: prefix.to_string(),
        recursive: true,
        replicas: false,
    };
    match ls(session, key, &opts).await {
        Ok(listed) => Ok(listed
            .into_iter()
            .filter(|f| f.kind == ChildKind::File)
            .map(|f| (f.name, (f.size, f.pack)))
            .collect()),
        Err(GetError::NotFound(_)) => Ok(BTreeMap::new()),
        Err(e) => Err(SyncError::List(e)),
    }
}

/// Whether the local file at `path` holds the bytes a packed file's
/// slice describes (its BLAKE3).
async fn same_hash(path: &Path, slice: &PackSlice) -> Result<bool, GetError> {
    let (path, want) = (path.to_path_buf(), slice.hash);
    tokio::task::spawn_blocking(move || {
        let local = |source| GetError::Local {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(local)?;
        let mut h = blake3::Hasher::new();
        h.update_reader(file).map_err(local)?;
        Ok(*h.finalize().as_bytes() == want)
    })
    .await
    .map_err(|_| GetError::DecoderGone)?
}

/// Whether the local file at `path` (`size` bytes when listed) holds
/// exactly the bytes of `key`'s live file `name`: the stored size matches,
/// and encoding the local bytes with the stored file key, nonce prefix and
/// segment size gives the stored chunk ids in order. Reads records only;
/// no chunk is fetched.
pub async fn same_content(
    session: &Session,
    key: &UserKey,
    name: &str,
    path: &Path,
    size: u64,
) -> Result<bool, GetError> {
    let record = records::get_own_file_record(session, key, name)
        .await?
        .filter(|r| r.live_manifest().is_some());
    let Some(record) = record else {
        // A packed file: compare with the hash its entry carries.
        return match crate::pack::packed_slice(session, key, name).await? {
            Some((slice, _)) if slice.len == size => same_hash(path, &slice).await,
            _ => Ok(false),
        };
    };
    let Some(manifest) = record.live_manifest() else {
        return Ok(false);
    };
    if manifest.size != size {
        return Ok(false);
    }
    let Some(wrap) = manifest.wrap_for(&key.x25519_public()) else {
        return Ok(false);
    };
    let file_key = FileKey(key.unwrap_key(wrap)?);
    let (prefix, segment) = (manifest.nonce_prefix, manifest.segment_size);
    if segment == 0 || segment > ifs_core::codec::MAX_SEGMENT_SIZE as u64 {
        return Ok(false);
    }
    let view = pages::load(session, record, name).await?;
    let stored: Vec<ChunkRef> = view.chunks().map(|(c, _)| *c).collect();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let local = |source| GetError::Local {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(local)?;
        let mut params = CodecParams::with_segment_size(segment as usize);
        if size <= segment {
            // One segment: one worker, as the put of a small file used.
            params.threads = 1;
            params.in_flight = 1;
        }
        let encoder = Encoder::new(file, &file_key, prefix, &params)?;
        let mut n = 0;
        for chunk in encoder {
            let chunk = chunk?;
            match stored.get(n) {
                Some(c) if c.id == chunk.id => n += 1,
                _ => return Ok(false),
            }
        }
        Ok(n == stored.len())
    })
    .await
    .map_err(|_| GetError::DecoderGone)?
}
