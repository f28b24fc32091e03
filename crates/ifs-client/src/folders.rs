//! The owner's private folder records (see `ifs_core::folder_record`):
//! writing one file's entry after a put, rm or share, and walking folders
//! for `ls`. A write touches the file's own folder record, plus, when that
//! folder is new, a folder entry in each ancestor that lacks one: O(depth)
//! records, whatever the number of files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use futures::StreamExt;
use ifs_core::UserId;
use ifs_core::folder_record::{
    Child, ChildKind, DeadProp, EntryFields, FolderEntry, FolderKey, FolderRecord, PackSlice,
    props_fit, split_path,
};
use ifs_core::keys::{UserKey, UserPublic};
use ifs_core::proto::RecordKey;
use ifs_core::wire::Manifest;
use tracing::warn;

use crate::error::GetError;
use crate::put::now_ms;
use crate::records::{get_raw, put_raw};
use crate::session::Session;

/// The DHT key of the folder whose key is `folder`.
pub fn folder_key(folder: &FolderKey) -> Vec<u8> {
    RecordKey::Folder(folder.locator()).to_bytes()
}

/// The folder record of `folder`, verified; `None` when there is none.
pub async fn get_folder(
    session: &Session,
    owner: &UserId,
    folder: &FolderKey,
) -> Result<Option<FolderRecord>, GetError> {
    let Some(bytes) = get_raw(session, folder_key(folder)).await? else {
        return Ok(None);
    };
    let rec = session
        .decode_folder(&bytes, &folder.locator())
        .map_err(|source| GetError::BadRecord {
            name: "(folder)".into(),
            source,
        })?;
    if rec.owner() != owner || *rec.locator() != folder.locator() {
        return Err(GetError::ForeignRecord("(folder)".into()));
    }
    Ok(Some(rec))
}

/// Drop old deletion markers and hand the record to the entry node.
pub(crate) async fn put_folder(session: &Session, rec: &mut FolderRecord) -> Result<(), GetError> {
    rec.compact(now_ms());
    let key = RecordKey::Folder(*rec.locator()).to_bytes();
    put_raw(session, key, rec.encode()).await?;
    session.wrote_folder(rec);
    Ok(())
}

/// A file's state to record in its folder.
pub(crate) struct FileState<'a> {
    /// The full path.
    pub name: &'a str,
    /// Manifest version.
    pub version: u64,
    /// Plaintext size.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Readers besides the owner.
    pub readers: Vec<UserId>,
    /// Whether this records a delete.
    pub deleted: bool,
    /// The file's handle, sealed into the entry: set in the folders an
    /// owner shares with a reader (who cannot derive it).
    pub handle: Option<String>,
    /// Where a packed file's bytes are.
    pub pack: Option<PackSlice>,
}

impl<'a> FileState<'a> {
    /// The state a committed manifest gives its file at `path`.
    pub fn live(path: &'a str, m: &Manifest) -> Self {
        FileState {
            name: path,
            version: m.version,
            size: m.size,
            chunks: m.total_chunks(),
            readers: m.readers.clone(),
            deleted: false,
            handle: None,
            pack: None,
        }
    }
}

fn bad(name: &str) -> impl FnOnce(ifs_core::crdt::RecordError) -> GetError + '_ {
    move |source| GetError::BadRecord {
        name: name.to_string(),
        source,
    }
}

/// Write `file`'s entry into its folder's record; when that folder has no
/// record yet (and this is not a delete), first give each ancestor that
/// lacks it a folder entry, top down, so a crash leaves at worst an empty
/// folder, never a file no listing reaches.
pub(crate) async fn record_file(
    session: &Session,
    key: &UserKey,
    file: FileState<'_>,
) -> Result<(), GetError> {
    record_file_in(session, key, FolderKey::root(key), file).await
}

/// Leave `file.handle` (or, with `file.deleted`, take it back) for `key`'s
/// file `file.name` in the folders `key` shares with `reader`, where the
/// reader's `get OWNER/NAME` finds it (see [`shared_handle`]).
pub(crate) async fn record_shared(
    session: &Session,
    key: &UserKey,
    reader: &UserPublic,
    mut file: FileState<'_>,
) -> Result<(), GetError> {
    if file.deleted {
        file.handle = None;
    }
    // Only the path and handle matter to the reader's lookup; who else
    // reads the file is none of its business.
    file.readers = Vec::new();
    let root = FolderKey::from_bytes(key.shared_root_to(reader));
    record_file_in(session, key, root, file).await
}

/// The handle `owner` left for `key` under `path` by sharing that file;
/// `None` when the owner shares no such file with `key` (or took it back).
pub(crate) async fn shared_handle(
    session: &Session,
    key: &UserKey,
    owner: &UserPublic,
    path: &str,
) -> Result<Option<String>, GetError> {
    let root = FolderKey::from_bytes(key.shared_root_from(owner));
    let folder = FolderKey::of_parent(&root, path);
    let Some(rec) = get_folder(session, &owner.user, &folder).await? else {
        return Ok(None);
    };
    let slot = folder.slot(split_path(path).1, ChildKind::File);
    match rec.get(&slot) {
        Some(e) if !e.deleted => match e.open(&folder) {
            Ok(child) => Ok(child.handle),
            Err(err) => {
                warn!("a shared folder entry does not open: {err}");
                Ok(None)
            }
        },
        _ => Ok(None),
    }
}

/// [`record_file`] below the folder tree rooted at `root`.
async fn record_file_in(
    session: &Session,
    key: &UserKey,
    root: FolderKey,
    file: FileState<'_>,
) -> Result<(), GetError> {
    let owner = key.user_id();
    let (dirs, leaf) = split_path(file.name);
    let mut chain = vec![root];
    for d in &dirs {
        let next = chain[chain.len() - 1].child(d);
        chain.push(next);
    }
    let here = &chain[dirs.len()];
    let found = get_folder(session, &owner, here).await?;
    let existed = found.is_some();
    let mut rec = found.unwrap_or_else(|| FolderRecord::new(owner, here.locator()));
    let now = now_ms();
    if !existed && !file.deleted {
        let mut lacking = Vec::new();
        for i in (0..dirs.len()).rev() {
            let parent = get_folder(session, &owner, &chain[i]).await?;
            let parent_existed = parent.is_some();
            let parent = parent.unwrap_or_else(|| FolderRecord::new(owner, chain[i].locator()));
            let has = parent
                .get(&chain[i].slot(dirs[i], ChildKind::Folder))
                .is_some_and(|e| !e.deleted);
            if has {
                break;
            }
            lacking.push((i, parent));
            if parent_existed {
                break;
            }
        }
        for (i, mut parent) in lacking.into_iter().rev() {
            let child = Child::folder(dirs[i].to_string());
            let fields = EntryFields {
                version: 1,
                deleted: false,
                at_ms: now,
                rev: 0,
            };
            let e = FolderEntry::seal(key, &chain[i], &child, fields, &mut rand::rng());
            parent.insert_sealed(e).map_err(bad(file.name))?;
            put_folder(session, &mut parent).await?;
        }
    }
    // A file written over keeps the properties a client set on it.
    let props = match rec.get(&here.slot(leaf, ChildKind::File)) {
        Some(e) if !e.deleted && !file.deleted => e.open(here).map(|c| c.props).unwrap_or_default(),
        _ => Vec::new(),
    };
    let child = Child {
        name: leaf.to_string(),
        kind: ChildKind::File,
        size: file.size,
        chunks: file.chunks,
        readers: file.readers,
        handle: file.handle,
        pack: file.pack,
        props,
    };
    let fields = EntryFields {
        version: file.version,
        deleted: file.deleted,
        at_ms: now,
        rev: 0,
    };
    let e = FolderEntry::seal(key, here, &child, fields, &mut rand::rng());
    rec.insert_sealed(e).map_err(bad(file.name))?;
    put_folder(session, &mut rec).await
}

/// One child as a listing shows it.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    /// The full path.
    pub name: String,
    /// The entry's version.
    pub version: u64,
    /// When the owner wrote the entry, ms since the Unix epoch.
    pub at_ms: u64,
    /// What the owner sealed.
    pub child: Child,
}

/// Folder records read during one listing, by locator.
pub(crate) type Seen = HashMap<[u8; 32], Option<FolderRecord>>;

/// The live children of the folder at `prefix` (segments joined by `/`,
/// empty for the root), and with `recursive` of every folder below it.
pub(crate) async fn list(
    session: &Session,
    key: &UserKey,
    prefix: &str,
    recursive: bool,
    seen: &mut Seen,
) -> Result<Vec<Listed>, GetError> {
    let owner = key.user_id();
    let root = FolderKey::root(key);
    let start = FolderKey::of_dirs(&root, segments(prefix));
    let mut level = vec![(prefix.to_string(), start)];
    let mut out = Vec::new();
    // Level by level, the folders of one level read at once: a folder
    // record read is a DHT lookup, and a tree of many folders would wait
    // for each in turn.
    while !level.is_empty() {
        let owner = &owner;
        let fetched: Vec<_> = futures::stream::iter(std::mem::take(&mut level))
            .map(|(path, folder)| async move {
                let rec = get_folder(session, owner, &folder).await;
                (path, folder, rec)
            })
            .buffered(FOLDERS_IN_FLIGHT)
            .collect()
            .await;
        for (path, folder, rec) in fetched {
            let rec = rec?;
            if let Some(rec) = &rec {
                for e in rec.entries().filter(|e| !e.deleted) {
                    let child = match e.open(&folder) {
                        Ok(c) => c,
                        Err(err) => {
                            warn!(folder = %path, "skipped a folder entry: {err}");
                            continue;
                        }
                    };
                    let name = join(&path, &child.name);
                    if recursive && child.kind == ChildKind::Folder {
                        level.push((name.clone(), folder.child(&child.name)));
                    }
                    out.push(Listed {
                        name,
                        version: e.version,
                        at_ms: e.updated_at_ms,
                        child,
                    });
                }
            }
            seen.insert(folder.locator(), rec);
        }
    }
    Ok(out)
}

/// Folder records a recursive listing reads at once.
const FOLDERS_IN_FLIGHT: usize = 8;

/// Whether a folder record (read now, or already in `seen`) has an entry
/// for file `name` at `version` or newer, live or deleted.
pub(crate) async fn supersedes(
    session: &Session,
    key: &UserKey,
    name: &str,
    version: u64,
    seen: &mut Seen,
) -> Result<bool, GetError> {
    let folder = FolderKey::of_parent(&FolderKey::root(key), name);
    let locator = folder.locator();
    let rec = match seen.entry(locator) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => v.insert(get_folder(session, &key.user_id(), &folder).await?),
    };
    let slot = folder.slot(split_path(name).1, ChildKind::File);
    Ok(rec
        .as_ref()
        .and_then(|r| r.get(&slot))
        .is_some_and(|e| e.version >= version))
}

/// The entry of `key`'s own file `name` in its folder record, opened:
/// its version, whether it is deleted, and the child (`None` for a
/// deletion marker or an entry that does not open). `None` when the folder
/// has no entry for the name.
pub(crate) async fn own_entry(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<Option<(u64, bool, Option<Child>)>, GetError> {
    let folder = FolderKey::of_parent(&FolderKey::root(key), name);
    let Some(rec) = get_folder(session, &key.user_id(), &folder).await? else {
        return Ok(None);
    };
    let slot = folder.slot(split_path(name).1, ChildKind::File);
    Ok(rec.get(&slot).map(|e| {
        let child = if e.deleted {
            None
        } else {
            e.open(&folder).ok()
        };
        (e.version, e.deleted, child)
    }))
}

/// The live entry of `key`'s file or folder `name` (not the top folder),
/// opened, with the record that holds it and the folder's key.
async fn live_child(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<Option<(FolderRecord, FolderKey, FolderEntry, Child)>, GetError> {
    if name.is_empty() {
        return Ok(None);
    }
    let folder = FolderKey::of_parent(&FolderKey::root(key), name);
    let Some(rec) = get_folder(session, &key.user_id(), &folder).await? else {
        return Ok(None);
    };
    let leaf = split_path(name).1;
    for kind in [ChildKind::File, ChildKind::Folder] {
        if let Some(e) = rec.get(&folder.slot(leaf, kind)).filter(|e| !e.deleted)
            && let Ok(child) = e.open(&folder)
        {
            let e = e.clone();
            return Ok(Some((rec, folder, e, child)));
        }
    }
    Ok(None)
}

/// The properties a client set on `key`'s file or folder `name` (WebDAV's
/// dead properties); `None` when no such file or folder is listed.
pub async fn props(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<Option<Vec<DeadProp>>, GetError> {
    Ok(live_child(session, key, name)
        .await?
        .map(|(_, _, _, child)| child.props))
}

/// Change the properties of `key`'s file or folder `name`: `patch` gives
/// each property to set (`true`, with its value) or remove (`false`),
/// keyed by namespace and name, applied in order. The entry is written again at
/// the same version with the next properties revision, so the content is
/// untouched and the change outranks the entry it replaces. Fails with
/// [`GetError::NotFound`] when no such file or folder is listed, and with
/// [`GetError::TooManyProps`] (changing nothing) when the result would
/// not fit in the entry, or would make the folder's record too big.
pub async fn patch_props(
    session: &Session,
    key: &UserKey,
    name: &str,
    patch: Vec<(DeadProp, bool)>,
) -> Result<(), GetError> {
    let Some((mut rec, folder, old, mut child)) = live_child(session, key, name).await? else {
        return Err(GetError::NotFound(name.to_string()));
    };
    for (p, set) in patch {
        child
            .props
            .retain(|q| (&q.namespace, &q.name) != (&p.namespace, &p.name));
        if set {
            child.props.push(p);
        }
    }
    if !props_fit(&child.props) {
        return Err(GetError::TooManyProps(name.to_string()));
    }
    let fields = EntryFields {
        version: old.version,
        deleted: false,
        at_ms: now_ms(),
        rev: old.rev.saturating_add(1),
    };
    let e = FolderEntry::seal(key, &folder, &child, fields, &mut rand::rng());
    rec.insert_sealed(e).map_err(|source| match source {
        ifs_core::crdt::RecordError::Wire(_) => GetError::TooManyProps(name.to_string()),
        source => GetError::BadRecord {
            name: name.to_string(),
            source,
        },
    })?;
    // Properties must not make the folder's record too big to store.
    if rec.encode().len() > FolderRecord::MAX_BYTES {
        return Err(GetError::TooManyProps(name.to_string()));
    }
    put_folder(session, &mut rec).await
}

/// The non-empty segments of a prefix (`a/b/` → `a`, `b`).
pub(crate) fn segments(prefix: &str) -> impl Iterator<Item = &str> {
    prefix.split('/').filter(|s| !s.is_empty())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}
