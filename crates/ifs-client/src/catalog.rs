//! `ls` and `rm`: listing the owner's folders, and deleting a file so its
//! holders free the space.

use std::collections::HashSet;

use futures::future::join_all;
use ifs_core::file_record::FileRecord;
use ifs_core::folder_record::{ChildKind, PackSlice, split_path};
use ifs_core::keys::UserKey;
use ifs_core::proto::CtlRequest;
use ifs_core::wire::{FileDelete, Tombstone};
use ifs_core::{ChunkId, NodeId, UserId};
use tracing::{info, warn};

use crate::error::{ClientError, GetError};
use crate::folders::{self, FileState};
use crate::pages;
use crate::plan::node_name;
use crate::put::now_ms;
use crate::records;
use crate::session::Session;
use crate::table;

/// One file or folder as `ls` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its full path (a folder's without the trailing `/`).
    pub name: String,
    /// File or folder.
    pub kind: ChildKind,
    /// Plaintext size.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Lowest count of live holders over its chunks (alive in the entry
    /// node's table and not released); `None` unless asked for (it costs a
    /// record lookup per file) and for folders.
    pub min_live_replicas: Option<usize>,
    /// Manifest version.
    pub version: u64,
    /// Users besides the owner the file is shared with.
    pub readers: Vec<UserId>,
    /// When its folder entry was last written (the put or delete of this
    /// version), ms since the Unix epoch; `None` for files listed only in
    /// the old directory record.
    pub modified_ms: Option<u64>,
    /// Where a packed file's bytes are in its pack; `None` for a file
    /// with a record of its own, and for folders.
    pub pack: Option<PackSlice>,
    /// Properties a client set on it (WebDAV's dead properties).
    pub props: Vec<ifs_core::folder_record::DeadProp>,
}

/// What `ls` lists.
#[derive(Clone, Debug, Default)]
pub struct LsOptions {
    /// The folder to list (`photos/2024`); empty for the root.
    pub prefix: String,
    /// Also every folder below it.
    pub recursive: bool,
    /// Look up each file's record to count its live replicas.
    pub replicas: bool,
}

/// Lowest number of holders alive in `alive` over the live manifest's
/// chunks; 0 for a deleted or empty record.
pub fn min_live_replicas(record: &FileRecord, alive: &HashSet<NodeId>) -> usize {
    let Some(m) = record.live_manifest() else {
        return 0;
    };
    m.chunks
        .iter()
        .map(|c| {
            record
                .live_holders(&c.id)
                .iter()
                .filter(|n| alive.contains(n))
                .count()
        })
        .min()
        .unwrap_or(0)
}

/// The owner's files and folders under `opts.prefix`, by name. Reads one
/// folder record per folder listed (and the legacy directory record, whose
/// live entries no folder record knows are listed where they belong);
/// file records only with `opts.replicas`.
pub async fn ls(
    session: &Session,
    key: &UserKey,
    opts: &LsOptions,
) -> Result<Vec<FileInfo>, GetError> {
    let owner = key.user_id();
    let prefix = folders::segments(&opts.prefix)
        .collect::<Vec<_>>()
        .join("/");
    let mut seen = folders::Seen::new();
    let listed = folders::list(session, key, &prefix, opts.recursive, &mut seen).await?;
    let mut out: Vec<FileInfo> = listed
        .into_iter()
        .map(|l| FileInfo {
            name: l.name,
            kind: l.child.kind,
            size: l.child.size,
            chunks: l.child.chunks,
            min_live_replicas: None,
            version: l.version,
            readers: l.child.readers,
            modified_ms: Some(l.at_ms),
            pack: l.child.pack,
            props: l.child.props,
        })
        .collect();
    let legacy = records::get_dir_record(session, &owner).await?;
    for e in legacy.live() {
        let parent = split_path(&e.name).0.join("/");
        let inside = parent == prefix
            || (opts.recursive && (prefix.is_empty() || parent.starts_with(&format!("{prefix}/"))));
        if !inside || folders::supersedes(session, key, &e.name, e.version, &mut seen).await? {
            continue;
        }
        let readers = match records::get_own_file_record(session, key, &e.name).await {
            Ok(Some(rec)) => rec
                .live_manifest()
                .map(|m| m.readers.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        out.push(FileInfo {
            name: e.name.clone(),
            kind: ChildKind::File,
            size: e.size,
            chunks: e.chunks,
            min_live_replicas: None,
            version: e.version,
            readers,
            modified_ms: None,
            pack: None,
            props: Vec::new(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if opts.replicas {
        let alive: HashSet<NodeId> = table::known_nodes(session)
            .await?
            .into_iter()
            .filter(|k| k.row.state == "alive")
            .map(|k| k.node)
            .collect();
        for f in out.iter_mut().filter(|f| f.kind == ChildKind::File) {
            let record = match &f.pack {
                Some(p) => records::get_file_record(session, &owner, &p.handle).await,
                None => records::get_own_file_record(session, key, &f.name).await,
            };
            f.min_live_replicas = Some(match record {
                Ok(Some(rec)) if !rec.manifest().is_some_and(|m| m.pages.is_empty()) => {
                    match pages::load(session, rec, &f.name).await {
                        Ok(view) => view.min_live_replicas(&alive),
                        Err(err) => {
                            warn!(name = %f.name, "{err}");
                            0
                        }
                    }
                }
                Ok(Some(rec)) => min_live_replicas(&rec, &alive),
                Ok(None) => 0,
                Err(err) => {
                    warn!(name = %f.name, "file record unreadable: {err}");
                    0
                }
            });
        }
    }
    Ok(out)
}

/// What `rm` did.
#[derive(Clone, Debug, Default)]
pub struct RmReport {
    /// Chunks of the deleted version.
    pub chunks: usize,
    /// Holders told to free them.
    pub holders: usize,
    /// Holders that confirmed.
    pub confirmed: usize,
}

/// Delete `name`: an owner-signed tombstone in the file record, a deletion
/// marker in its folder record, and a `Forget` to every holder so it frees the space.
/// A packed file has no record of its own: only its entry is marked
/// deleted (its pack is freed by `gc` once no live file uses it).
pub async fn rm(session: &Session, key: &UserKey, name: &str) -> Result<RmReport, GetError> {
    let record = records::get_own_file_record(session, key, name);
    let entry = folders::own_entry(session, key, name);
    let (record, entry) = futures::join!(record, entry);
    let record = record?.filter(|r| r.live_manifest().is_some());
    // The entry may be newer than the record (a packed version over a
    // file put alone): the marker must beat it.
    let (entry_version, entry_live) = match entry {
        Ok(Some((v, deleted, _))) => (v, !deleted),
        Ok(None) => (0, false),
        Err(e) => {
            warn!(name, "folder record unreadable: {e}");
            (0, false)
        }
    };
    let (report, version) = match record {
        Some(rec) => retire_record(session, key, name, rec).await?,
        None if entry_live => (RmReport::default(), entry_version),
        None => return Err(GetError::NotFound(name.to_string())),
    };
    let gone = FileState {
        name,
        version: version.max(entry_version),
        size: 0,
        chunks: 0,
        readers: vec![],
        deleted: true,
        handle: None,
        pack: None,
    };
    folders::record_file(session, key, gone).await?;
    info!(
        name,
        holders = report.holders,
        confirmed = report.confirmed,
        "file deleted"
    );
    Ok(report)
}

/// Delete the record of `key`'s own file `name` (not its folder entry):
/// `NotFound` when it has no live version.
pub(crate) async fn retire(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<RmReport, GetError> {
    let rec = records::get_own_file_record(session, key, name)
        .await?
        .ok_or_else(|| GetError::NotFound(name.to_string()))?;
    Ok(retire_record(session, key, name, rec).await?.0)
}

/// Tombstone `rec` (the live record of `name`) and its pages, and tell the
/// holders to free the chunks. The report and the version deleted.
async fn retire_record(
    session: &Session,
    key: &UserKey,
    name: &str,
    mut rec: FileRecord,
) -> Result<(RmReport, u64), GetError> {
    let manifest = rec
        .live_manifest()
        .ok_or_else(|| GetError::NotFound(name.to_string()))?
        .clone();
    let now = now_ms();
    let del = FileDelete::new(key, rec.name().to_string(), manifest.version, now);
    let bad = |source| GetError::BadRecord {
        name: name.to_string(),
        source,
    };
    rec.add_delete(del.clone()).map_err(bad)?;
    records::put_file_record(session, &rec).await?;

    // A paged file's pages are records of their own: each gets the delete.
    let mut deleted = vec![(rec, del)];
    if !manifest.pages.is_empty() {
        let pages = (1, manifest.pages.len());
        deleted.extend(
            pages::delete_pages(
                session,
                key,
                deleted[0].0.name(),
                pages,
                manifest.version,
                now,
            )
            .await?,
        );
    }
    let (mut chunks, mut holders, mut confirmed) = (0, 0, 0);
    for (rec, del) in &deleted {
        let ids: Vec<_> = rec
            .manifest()
            .map(|m| m.chunks.iter().map(|c| c.id).collect())
            .unwrap_or_default();
        let (h, c) = forget_on_holders(session, rec, del, &ids).await?;
        (chunks, holders, confirmed) = (chunks + ids.len(), holders + h, confirmed + c);
    }
    let report = RmReport {
        chunks,
        holders,
        confirmed,
    };
    Ok((report, manifest.version))
}

/// Tell every node with a receipt for one of `chunks` in `rec` to free
/// them, showing the owner's delete `del` as authority. Returns how many
/// holders there were and how many confirmed; one that missed it frees the
/// chunks on its next durability pass (they are no longer referenced).
pub(crate) async fn forget_on_holders(
    session: &Session,
    rec: &FileRecord,
    del: &FileDelete,
    chunks: &[ChunkId],
) -> Result<(usize, usize), ClientError> {
    let mut holders: Vec<NodeId> = rec
        .receipts()
        .filter(|r| chunks.contains(&r.chunk))
        .map(|r| r.node)
        .collect();
    holders.sort();
    holders.dedup();
    // Registers the holders' addresses so they can be dialled.
    let _ = table::known_nodes(session).await?;
    let tombstone = Tombstone::Delete(del.clone()).encode();
    let forgets = holders.iter().filter_map(|n| {
        let peer = ifs_net::node_id_to_peer_id(n).ok()?;
        let req = CtlRequest::Forget {
            tombstone: tombstone.clone(),
            chunks: chunks.to_vec(),
        };
        Some(async move {
            match session.request_to(peer, &req).await {
                Ok(_) => true,
                Err(e) => {
                    warn!(node = %node_name(n), "holder not told to free the chunks: {e}");
                    false
                }
            }
        })
    });
    let confirmed = join_all(forgets).await.into_iter().filter(|ok| *ok).count();
    Ok((holders.len(), confirmed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::ChunkId;
    use ifs_core::codec::NoncePrefix;
    use ifs_core::keys::NodeKey;
    use ifs_core::wire::{ChunkRef, Manifest, ManifestFields, Receipt};

    #[test]
    fn min_live_replicas_counts_only_holders_alive_in_the_table() {
        let mut rng = rand::rng();
        let user = UserKey::generate(&mut rng);
        let nodes: Vec<NodeKey> = (0..3).map(|_| NodeKey::generate(&mut rng)).collect();
        let (a, b) = (ChunkId::of(b"a"), ChunkId::of(b"b"));
        let m = Manifest::new(
            &user,
            ManifestFields {
                name: "f".into(),
                version: 1,
                size: 2,
                created_at_ms: 1,
                segment_size: 1,
                nonce_prefix: NoncePrefix([0; 7]),
                chunks: vec![ChunkRef { id: a, len: 1 }, ChunkRef { id: b, len: 1 }],
                key_wraps: vec![],
                readers: vec![],
                replicas: 3,
                pages: vec![],
            },
        )
        .unwrap();
        let bound = (user.user_id(), FileRecord::key(&user.user_id(), "f"));
        let r = |k: &NodeKey, c| Receipt::new(k, c, 1, bound, 1);
        let receipts = vec![
            r(&nodes[0], a),
            r(&nodes[1], a),
            r(&nodes[2], a),
            r(&nodes[0], b),
            r(&nodes[1], b),
        ];
        let rec = FileRecord::from_manifest(m, receipts).unwrap();
        let all: HashSet<_> = nodes.iter().map(|k| k.node_id()).collect();
        assert_eq!(min_live_replicas(&rec, &all), 2);
        let two: HashSet<_> = [nodes[0].node_id(), nodes[2].node_id()].into();
        assert_eq!(min_live_replicas(&rec, &two), 1);
        assert_eq!(min_live_replicas(&rec, &HashSet::new()), 0);
    }
}
