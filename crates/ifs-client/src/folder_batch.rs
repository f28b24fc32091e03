//! Folder entries of many files written together: one read and one write
//! of each folder record per batch, however many of its files the batch
//! holds (a tree of F files in D folders costs O(D) record writes, not F).
//!
//! Folders are made first, top down ([`ensure_folders`]), so a crash
//! leaves at worst an empty folder, never a file no listing reaches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use ifs_core::UserId;
use ifs_core::folder_record::{
    Child, ChildKind, EntryFields, FolderEntry, FolderKey, FolderRecord, PackSlice,
};
use ifs_core::keys::UserKey;
use ifs_core::wire::Manifest;

use crate::error::GetError;
use crate::folders::{get_folder, put_folder};
use crate::put::{Replaced, now_ms};
use crate::session::Session;

/// Folder records written at once by a flush.
const FOLDERS_IN_FLIGHT: usize = 4;

/// A folder as the path of its folders from the top (`["a", "b"]` is
/// `a/b`; empty for the top folder).
pub(crate) type FolderPath = Vec<String>;

/// The folder of `name` and its last segment.
fn split(name: &str) -> (FolderPath, String) {
    let mut parts: Vec<String> = name
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let leaf = parts.pop().unwrap_or_default();
    (parts, leaf)
}

/// Give every folder in `folders`, and every folder above them, an entry
/// in its parent, parents before children. Reads each parent record once
/// and writes it only when it lacked one of its subfolders. A folder whose
/// entry was deleted is made again at a higher version.
pub(crate) async fn ensure_folders(
    session: &Session,
    key: &UserKey,
    folders: &BTreeSet<FolderPath>,
) -> Result<(), GetError> {
    // (depth of the parent, parent) → names of subfolders needed there.
    let mut by_parent: BTreeMap<(usize, FolderPath), BTreeSet<String>> = BTreeMap::new();
    for f in folders {
        for depth in 1..=f.len() {
            let parent = f[..depth - 1].to_vec();
            by_parent
                .entry((depth - 1, parent))
                .or_default()
                .insert(f[depth - 1].clone());
        }
    }
    let owner = key.user_id();
    let root = FolderKey::root(key);
    let now = now_ms();
    for ((_, parent), children) in by_parent {
        let here = FolderKey::of_dirs(&root, parent.iter().map(String::as_str));
        let mut rec = get_folder(session, &owner, &here)
            .await?
            .unwrap_or_else(|| FolderRecord::new(owner, here.locator()));
        let mut changed = false;
        for name in children {
            let version = match rec.get(&here.slot(&name, ChildKind::Folder)) {
                Some(e) if !e.deleted => continue,
                Some(e) => e.version + 1,
                None => 1,
            };
            let child = Child::folder(name.clone());
            let fields = EntryFields {
                version,
                deleted: false,
                at_ms: now,
                rev: 0,
            };
            let e = FolderEntry::seal(key, &here, &child, fields, &mut rand::rng());
            rec.insert_sealed(e).map_err(|source| GetError::BadRecord {
                name: format!("{}/{name}", parent.join("/")),
                source,
            })?;
            changed = true;
        }
        if changed {
            put_folder(session, &mut rec).await?;
        }
    }
    Ok(())
}

/// Mark the folder `path` (segments joined by `/`) deleted in its
/// parent's record; `false` when it had no live entry there. What the
/// folder held is not touched: delete its files first.
pub async fn remove_folder(session: &Session, key: &UserKey, path: &str) -> Result<bool, GetError> {
    let (parent, name) = split(path);
    if name.is_empty() {
        return Ok(false);
    }
    let owner = key.user_id();
    let here = FolderKey::of_dirs(&FolderKey::root(key), parent.iter().map(String::as_str));
    let Some(mut rec) = get_folder(session, &owner, &here).await? else {
        return Ok(false);
    };
    let version = match rec.get(&here.slot(&name, ChildKind::Folder)) {
        Some(e) if !e.deleted => e.version,
        _ => return Ok(false),
    };
    let child = Child::folder(name.clone());
    let fields = EntryFields {
        version,
        deleted: true,
        at_ms: now_ms(),
        rev: 0,
    };
    let e = FolderEntry::seal(key, &here, &child, fields, &mut rand::rng());
    rec.insert_sealed(e).map_err(|source| GetError::BadRecord {
        name: path.to_string(),
        source,
    })?;
    put_folder(session, &mut rec).await?;
    Ok(true)
}

/// Make the folder `path` (segments joined by `/`) and every folder above
/// it that is missing.
pub async fn make_folder(session: &Session, key: &UserKey, path: &str) -> Result<(), GetError> {
    let (mut dirs, leaf) = split(path);
    if leaf.is_empty() {
        return Ok(());
    }
    dirs.push(leaf);
    ensure_folders(session, key, &BTreeSet::from([dirs])).await
}

/// One file's entry waiting in a batch.
#[derive(Clone, Debug)]
struct Pending {
    name: String,
    leaf: String,
    version: u64,
    size: u64,
    chunks: u64,
    readers: Vec<UserId>,
    deleted: bool,
    /// A packed file: its version is the entry's it replaces plus one,
    /// chosen when its folder record is read.
    pack: Option<PackSlice>,
}

impl Pending {
    fn new(name: &str) -> Self {
        Pending {
            name: name.to_string(),
            leaf: split(name).1,
            version: 0,
            size: 0,
            chunks: 0,
            readers: vec![],
            deleted: false,
            pack: None,
        }
    }
}

/// A file whose packed entry replaced a file with a record of its own:
/// that record must be deleted so its chunks are freed and `get` stops
/// finding the older bytes under the name.
#[derive(Clone, Debug)]
pub(crate) struct Superseded {
    /// The file's path.
    pub name: String,
}

/// File entries waiting to be written, by folder.
#[derive(Debug, Default)]
pub(crate) struct FolderBatch {
    by_folder: BTreeMap<FolderPath, Vec<Pending>>,
    len: usize,
}

impl FolderBatch {
    /// Add the entry of a committed file at `path` (the manifest names
    /// only its handle).
    pub fn add_live(&mut self, path: &str, m: &Manifest) {
        self.push(Pending {
            version: m.version,
            size: m.size,
            chunks: m.total_chunks(),
            readers: m.readers.clone(),
            ..Pending::new(path)
        });
    }

    /// Add a deletion marker for `name` at `version`.
    pub fn add_deleted(&mut self, name: &str, version: u64) {
        self.push(Pending {
            version,
            deleted: true,
            ..Pending::new(name)
        });
    }

    /// Add the entry of a file at `path` whose bytes are `slice` of a
    /// committed pack.
    pub fn add_packed(&mut self, path: &str, slice: PackSlice) {
        self.push(Pending {
            size: slice.len,
            pack: Some(slice),
            ..Pending::new(path)
        });
    }

    fn push(&mut self, p: Pending) {
        let (folder, _) = split(&p.name);
        self.by_folder.entry(folder).or_default().push(p);
        self.len += 1;
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The folders entries wait in (for [`ensure_folders`]).
    pub fn folders(&self) -> BTreeSet<FolderPath> {
        self.by_folder.keys().cloned().collect()
    }

    /// Write every waiting entry: per folder, one read, every entry
    /// inserted, one write. Returns the files whose entry could not be
    /// written, with why, and the files whose packed entry replaced a file
    /// with a record of its own ([`Superseded`]); the batch is empty
    /// afterwards either way.
    pub async fn flush(&mut self, session: &Session, key: &UserKey) -> Flushed {
        let batch = std::mem::take(&mut self.by_folder);
        self.len = 0;
        let writes = futures::stream::iter(batch)
            .map(|(folder, files)| write_folder(session, key, folder, files))
            .buffer_unordered(FOLDERS_IN_FLIGHT);
        futures::pin_mut!(writes);
        let mut out = Flushed::default();
        while let Some(f) = writes.next().await {
            out.failed.extend(f.failed);
            out.superseded.extend(f.superseded);
            out.packed.extend(f.packed);
        }
        out
    }
}

/// What a flush did besides writing.
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    /// Files whose entry was not written, with why.
    pub failed: Vec<(String, GetError)>,
    /// Files whose packed entry replaced a file with a record of its own.
    pub superseded: Vec<Superseded>,
    /// Each packed file's entry as written: its version, and the live
    /// file it replaced.
    pub packed: Vec<PackedWritten>,
}

/// A packed file's entry, written.
#[derive(Clone, Debug)]
pub(crate) struct PackedWritten {
    /// The file's path.
    pub name: String,
    /// The entry's version.
    pub version: u64,
    /// The live file it replaced.
    pub replaced: Option<Replaced>,
}

/// Insert `files` into `folder`'s record with one read and one write.
async fn write_folder(
    session: &Session,
    key: &UserKey,
    folder: FolderPath,
    files: Vec<Pending>,
) -> Flushed {
    let owner = key.user_id();
    let here = FolderKey::of_dirs(&FolderKey::root(key), folder.iter().map(String::as_str));
    let mut rec = match get_folder(session, &owner, &here).await {
        Ok(r) => r.unwrap_or_else(|| FolderRecord::new(owner, here.locator())),
        Err(e) => {
            return Flushed {
                failed: fail_all(&files, &e),
                ..Flushed::default()
            };
        }
    };
    let now = now_ms();
    let mut failed = Vec::new();
    let mut written = Vec::new();
    let mut superseded = Vec::new();
    let mut replaced: HashMap<String, Replaced> = HashMap::new();
    for mut f in files {
        let slot = here.slot(&f.leaf, ChildKind::File);
        let old = rec.get(&slot).map(|e| {
            let live = if e.deleted { None } else { e.open(&here).ok() };
            (e.version, live)
        });
        // A file written over keeps the properties a client set on it.
        let props = match (&old, f.deleted) {
            (Some((_, Some(c))), false) => c.props.clone(),
            _ => Vec::new(),
        };
        if f.pack.is_some() {
            // A packed file has no record of its own to take a version
            // from: it supersedes whatever entry the name has.
            f.version = match old {
                Some((version, live)) => {
                    if let Some(c) = &live {
                        replaced.insert(
                            f.name.clone(),
                            Replaced {
                                size: c.size,
                                version,
                            },
                        );
                    }
                    let own_record = live.is_some_and(|c| c.pack.is_none() && c.handle.is_none());
                    if own_record {
                        superseded.push(Superseded {
                            name: f.name.clone(),
                        });
                    }
                    version + 1
                }
                None => 1,
            };
        }
        let child = Child {
            name: f.leaf.clone(),
            kind: ChildKind::File,
            size: f.size,
            chunks: f.chunks,
            readers: f.readers.clone(),
            handle: None,
            pack: f.pack.clone(),
            props,
        };
        let fields = EntryFields {
            version: f.version,
            deleted: f.deleted,
            at_ms: now,
            rev: 0,
        };
        let e = FolderEntry::seal(key, &here, &child, fields, &mut rand::rng());
        match rec.insert_sealed(e) {
            Ok(()) => written.push(f),
            Err(source) => failed.push((
                f.name.clone(),
                GetError::BadRecord {
                    name: f.name,
                    source,
                },
            )),
        }
    }
    if !written.is_empty()
        && let Err(e) = put_folder(session, &mut rec).await
    {
        failed.extend(fail_all(&written, &e));
        superseded.clear();
        written.clear();
    }
    let packed = written
        .into_iter()
        .filter(|f| f.pack.is_some())
        .map(|f| PackedWritten {
            replaced: replaced.remove(&f.name),
            name: f.name,
            version: f.version,
        })
        .collect();
    Flushed {
        failed,
        superseded,
        packed,
    }
}

fn fail_all(files: &[Pending], e: &GetError) -> Vec<(String, GetError)> {
    files
        .iter()
        .map(|f| (f.name.clone(), GetError::Folder(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_splits_into_its_folder_and_last_segment() {
        assert_eq!(
            split("a/b/c.txt"),
            (vec!["a".into(), "b".into()], "c.txt".into())
        );
        assert_eq!(split("top"), (vec![], "top".into()));
    }

    #[test]
    fn files_of_one_folder_wait_together() {
        let mut b = FolderBatch::default();
        b.add_deleted("a/x", 1);
        b.add_deleted("a/y", 2);
        b.add_deleted("b/c/z", 1);
        assert_eq!(b.len(), 3);
        let folders: Vec<FolderPath> = b.folders().into_iter().collect();
        assert_eq!(
            folders,
            vec![vec!["a".to_string()], vec!["b".to_string(), "c".into()]]
        );
        assert_eq!(b.by_folder[&vec!["a".to_string()]].len(), 2);
    }
}
