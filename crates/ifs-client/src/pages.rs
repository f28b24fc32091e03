//! Paged manifests (see `ifs_core::wire::PAGE_CHUNKS`). A file's root
//! record lists its first `PAGE_CHUNKS` chunks and, when it has more, a
//! [`PageRef`] per further page; page `p` is a file record of its own,
//! named [`page_name`]`(root, p)`, with an owner-signed manifest of its
//! chunks and their holders' receipts. No record grows with the file, and
//! every node-side rule (receipts bound to their record, repair, audits,
//! deletes, collection) applies to a page as to any file record. A reader
//! checks each page against the hash its root names.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use ifs_core::file_record::FileRecord;
use ifs_core::keys::UserKey;
use ifs_core::wire::{
    ChunkRef, FileDelete, MAX_PAGES, Manifest, ManifestFields, PAGE_CHUNKS, PageRef, page_hash,
    page_name,
};
use ifs_core::{NodeId, UserId};
use tracing::warn;

use crate::error::{GetError, PutError};
use crate::records;
use crate::session::Session;

/// Page records read or written at once.
const PAGES_IN_FLIGHT: usize = 8;

/// Most chunks a file may have: the root's and every page's.
pub const MAX_FILE_CHUNKS: u64 = (PAGE_CHUNKS as u64) * (MAX_PAGES as u64 + 1);

/// The record key chunk `index` of `owner`'s file (root record `root`)
/// binds to: the root's for the first page, else its page's.
pub fn record_of_chunk(owner: &UserId, root: &str, index: u32) -> [u8; 32] {
    match index as usize / PAGE_CHUNKS {
        0 => FileRecord::key(owner, root),
        p => FileRecord::key(owner, &page_name(root, p)),
    }
}

/// Refuse, before anything is uploaded, a file of `size` bytes whose
/// chunks at `segment` bytes each no manifest could list.
pub fn check_size(size: u64, segment: u64) -> Result<(), PutError> {
    let chunks = size.div_ceil(segment.max(1)).max(1);
    if chunks > MAX_FILE_CHUNKS {
        return Err(PutError::TooManyChunks {
            chunks,
            max: MAX_FILE_CHUNKS,
            segment,
        });
    }
    Ok(())
}

/// One record of a file: the root or a page, with its live manifest.
pub(crate) struct Page {
    /// The verified record.
    pub record: FileRecord,
    /// Its live manifest.
    pub manifest: Manifest,
}

/// A file's records, root first, each checked against the root.
pub(crate) struct FileView {
    /// Root, then pages 1, 2, …
    pub pages: Vec<Page>,
}

impl FileView {
    /// The root record and manifest.
    pub fn root(&self) -> &Page {
        &self.pages[0]
    }

    /// Every chunk of the file in order, with the record that holds its
    /// receipts.
    pub fn chunks(&self) -> impl Iterator<Item = (&ChunkRef, &FileRecord)> {
        self.pages
            .iter()
            .flat_map(|p| p.manifest.chunks.iter().map(move |c| (c, &p.record)))
    }

    /// Fewest holders alive in `alive` over every chunk; 0 for none.
    pub fn min_live_replicas(&self, alive: &HashSet<NodeId>) -> usize {
        self.chunks()
            .map(|(c, rec)| {
                rec.live_holders(&c.id)
                    .iter()
                    .filter(|n| alive.contains(n))
                    .count()
            })
            .min()
            .unwrap_or(0)
    }
}

/// The file whose live root record is `root`, with every page, each
/// checked against the root's reference (count and hash of its chunk
/// list). Errors name the file as `shown`.
pub(crate) async fn load(
    session: &Session,
    root: FileRecord,
    shown: &str,
) -> Result<FileView, GetError> {
    let manifest = root
        .live_manifest()
        .ok_or_else(|| GetError::NotFound(shown.to_string()))?
        .clone();
    let owner = *root.owner();
    let name = root.name().to_string();
    let refs = manifest.pages.clone();
    let mut pages = vec![Page {
        record: root,
        manifest,
    }];
    let rest: Vec<Page> = futures::stream::iter(refs.iter().enumerate())
        .map(|(i, r)| {
            let page_name = page_name(&name, i + 1);
            async move { load_page(session, &owner, &page_name, i + 1, r, shown).await }
        })
        .buffered(PAGES_IN_FLIGHT)
        .try_collect()
        .await?;
    pages.extend(rest);
    Ok(FileView { pages })
}

/// Page `page` (named `name`) of `owner`'s file, checked against the
/// root's reference `r`. Errors name the file as `shown`.
pub(crate) async fn load_page(
    session: &Session,
    owner: &UserId,
    name: &str,
    page: usize,
    r: &PageRef,
    shown: &str,
) -> Result<Page, GetError> {
    let bad = || GetError::BadPage {
        name: shown.to_string(),
        page,
    };
    let record = records::get_file_record(session, owner, name)
        .await
        .map_err(|e| {
            warn!(page, "page record unreadable: {e}");
            bad()
        })?
        .ok_or_else(bad)?;
    let manifest = record.live_manifest().ok_or_else(bad)?.clone();
    if manifest.chunks.len() != r.chunks as usize || page_hash(&manifest.chunks) != r.hash {
        return Err(bad());
    }
    Ok(Page { record, manifest })
}

/// Split a file's manifest fields (`fields.chunks` holding every chunk)
/// into the signed root and page manifests: the root lists the first
/// [`PAGE_CHUNKS`] and a [`PageRef`] per further page; each page carries
/// the root's version, readers, replicas and codec parameters, no key
/// wraps, and size 0 (the root has the file's size).
pub(crate) fn split(
    key: &UserKey,
    mut fields: ManifestFields,
) -> Result<(Manifest, Vec<Manifest>), ifs_core::wire::WireError> {
    let all = std::mem::take(&mut fields.chunks);
    let mut groups = all.chunks(PAGE_CHUNKS);
    fields.chunks = groups.next().unwrap_or(&[]).to_vec();
    let mut pages = Vec::new();
    for (i, g) in groups.enumerate() {
        pages.push(Manifest::new(
            key,
            ManifestFields {
                name: page_name(&fields.name, i + 1),
                version: fields.version,
                size: 0,
                created_at_ms: fields.created_at_ms,
                segment_size: fields.segment_size,
                nonce_prefix: fields.nonce_prefix,
                chunks: g.to_vec(),
                key_wraps: vec![],
                readers: fields.readers.clone(),
                replicas: fields.replicas,
                pages: vec![],
            },
        )?);
    }
    fields.pages = pages
        .iter()
        .map(|p| PageRef {
            chunks: p.chunks.len() as u32,
            hash: page_hash(&p.chunks),
        })
        .collect();
    Ok((Manifest::new(key, fields)?, pages))
}

/// A new version of every page of `view` (same chunks) with `readers` and
/// `version`, for a share: nodes serve a page's chunks to the readers its
/// own manifest lists.
pub(crate) fn reissue(
    key: &UserKey,
    view: &FileView,
    version: u64,
    readers: &[UserId],
) -> Result<Vec<Manifest>, ifs_core::wire::WireError> {
    view.pages[1..]
        .iter()
        .map(|p| {
            let mut f = p.manifest.fields();
            f.version = version;
            f.readers = readers.to_vec();
            Manifest::new(key, f)
        })
        .collect()
}

/// Write page records (each page's manifest merged into its record, or a
/// new record with `receipts` of its chunks), several at once.
pub(crate) async fn put_records(
    session: &Session,
    records: Vec<FileRecord>,
) -> Result<(), crate::error::ClientError> {
    futures::stream::iter(records)
        .map(|rec| async move { records::put_file_record(session, &rec).await })
        .buffer_unordered(PAGES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Delete pages `from..=to` of `owner`'s file `root` (an owner-signed
/// delete at `version` in each page record that exists), so their chunks
/// are freed: the pages a shorter new version or an rm leaves behind.
/// Returns the deleted records.
pub(crate) async fn delete_pages(
    session: &Session,
    key: &UserKey,
    root: &str,
    (from, to): (usize, usize),
    version: u64,
    now_ms: u64,
) -> Result<Vec<(FileRecord, FileDelete)>, GetError> {
    let owner = key.user_id();
    futures::stream::iter(from..=to)
        .map(|p| {
            let name = page_name(root, p);
            async move {
                let Some(mut rec) = records::get_file_record(session, &owner, &name).await? else {
                    return Ok(None);
                };
                let del = FileDelete::new(key, name.clone(), version, now_ms);
                rec.add_delete(del.clone())
                    .map_err(|source| GetError::BadRecord { name, source })?;
                records::put_file_record(session, &rec).await?;
                Ok::<_, GetError>(Some((rec, del)))
            }
        })
        .buffer_unordered(PAGES_IN_FLIGHT)
        .try_filter_map(|x| async move { Ok(x) })
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::ChunkId;
    use ifs_core::codec::{CHUNK_OVERHEAD, DEFAULT_SEGMENT_SIZE, NoncePrefix};
    use ifs_core::keys::{NodeKey, wrap_key};
    use ifs_core::proto::{CtlRequest, MAX_CTL_REQUEST, RecordKey};
    use ifs_core::wire::{ChunkRelease, MAX_READERS, MAX_WRAPS, Receipt};

    /// The largest record a DHT node carries, and the largest control
    /// request (a `PutRecord` carries one record).
    fn caps() -> (usize, usize) {
        (
            ifs_net::NetConfig::default().max_record_bytes,
            MAX_CTL_REQUEST,
        )
    }

    /// Each record of a file's `fields` with `per_chunk` receipts on every
    /// chunk of the root and of `sampled` pages, encoded as it is put:
    /// (page number, record bytes, PutRecord request bytes).
    fn encoded(
        key: &UserKey,
        fields: ManifestFields,
        (per_chunk, releases): (usize, bool),
        sampled: &[usize],
    ) -> Vec<(usize, usize, usize)> {
        let holders: Vec<NodeKey> = (0..per_chunk)
            .map(|_| NodeKey::generate(&mut rand::rng()))
            .collect();
        let (root, pages) = split(key, fields).unwrap();
        let mut all = vec![(0, root)];
        all.extend(
            pages
                .into_iter()
                .enumerate()
                .filter(|(i, _)| sampled.contains(&(i + 1)))
                .map(|(i, m)| (i + 1, m)),
        );
        all.into_iter()
            .map(|(p, m)| {
                let record = FileRecord::key(&m.owner, &m.name);
                let receipts = m
                    .chunks
                    .iter()
                    .flat_map(|c| {
                        holders
                            .iter()
                            .map(|h| Receipt::new(h, c.id, c.len, (m.owner, record), 2_000))
                    })
                    .collect();
                let owner = m.owner;
                let chunks = m.chunks.clone();
                let mut rec = FileRecord::from_manifest(m, receipts).unwrap();
                // Each holder also released an earlier copy: a release
                // that the newer receipt outlives is kept beside it.
                for c in chunks.iter().filter(|_| releases) {
                    for h in &holders {
                        rec.add_release(ChunkRelease::new(h, c.id, owner, 1_000, 1_500))
                            .unwrap();
                    }
                }
                let bytes = rec.encode();
                // What a node reads back is what was put.
                assert_eq!(FileRecord::decode(&bytes).unwrap(), rec);
                let req = ifs_core::proto::encode(&CtlRequest::PutRecord {
                    key: RecordKey::File(record).to_bytes(),
                    value: bytes.clone(),
                });
                (p, bytes.len(), req.len())
            })
            .collect()
    }

    /// The fields of a file of `size` bytes at the default segment size,
    /// shared with the most readers a file may have.
    fn file_of(key: &UserKey, size: u64) -> ManifestFields {
        let seg = DEFAULT_SEGMENT_SIZE as u64;
        let n = size.div_ceil(seg);
        let chunks = (0..n)
            .map(|i| ChunkRef {
                id: ChunkId::of(&i.to_le_bytes()),
                len: seg + CHUNK_OVERHEAD as u64,
            })
            .collect();
        let readers: Vec<UserId> = (0..MAX_READERS)
            .map(|_| UserKey::generate(&mut rand::rng()).user_id())
            .collect();
        let key_wraps = (0..MAX_WRAPS)
            .map(|_| wrap_key(&[7; 32], &key.x25519_public(), &mut rand::rng()).unwrap())
            .collect();
        ManifestFields {
            name: key.file_handle("backups/disk-image.raw"),
            version: 1,
            size,
            created_at_ms: 1,
            segment_size: seg,
            nonce_prefix: NoncePrefix([1; 7]),
            chunks,
            key_wraps,
            readers,
            replicas: 3,
            pages: vec![],
        }
    }

    #[test]
    fn a_one_tib_file_commits_within_every_cap() {
        let key = UserKey::generate(&mut rand::rng());
        let size = 1u64 << 40;
        check_size(size, DEFAULT_SEGMENT_SIZE as u64).unwrap();
        let fields = file_of(&key, size);
        assert_eq!(fields.chunks.len(), 131_072);
        let (root, pages) = split(&key, fields.clone()).unwrap();
        assert_eq!(pages.len(), 131_072usize.div_ceil(PAGE_CHUNKS) - 1);
        assert_eq!(root.total_chunks(), 131_072);
        root.verify().unwrap();
        let (record_cap, request_cap) = caps();
        // Three holders per chunk, as a put leaves it: the root, the first,
        // a middle and the last page (all pages but the last are alike).
        let last = pages.len();
        for (p, record, request) in encoded(&key, fields.clone(), (3, false), &[1, last / 2, last])
        {
            assert!(record <= record_cap, "page {p}: {record} B record");
            assert!(request <= request_cap, "page {p}: {request} B request");
        }
        // The most receipts and releases a record keeps per chunk (from
        // repairs and offloads, or made up by anyone with node keys):
        // still within the caps.
        let worst = FileRecord::MAX_RECEIPTS_PER_CHUNK;
        for (p, record, request) in encoded(&key, fields, (worst, true), &[1]) {
            println!(
                "page {p}: {record} B record, {request} B request with {worst} receipts/chunk (cap {record_cap})"
            );
            assert!(
                record <= record_cap,
                "page {p}: {record} B with {worst} receipts/chunk"
            );
            assert!(request <= request_cap, "page {p}: {request} B request");
        }
    }

    #[test]
    fn the_largest_file_commits_within_every_cap() {
        let key = UserKey::generate(&mut rand::rng());
        let seg = DEFAULT_SEGMENT_SIZE as u64;
        let size = MAX_FILE_CHUNKS * seg;
        check_size(size, seg).unwrap();
        assert!(check_size(size + 1, seg).is_err());
        let fields = file_of(&key, size);
        let worst = FileRecord::MAX_RECEIPTS_PER_CHUNK;
        let (record_cap, request_cap) = caps();
        for (p, record, request) in encoded(&key, fields, (worst, true), &[]) {
            println!("root of {MAX_PAGES} pages: {record} B record (cap {record_cap})");
            assert!(record <= record_cap, "page {p}: {record} B record");
            assert!(request <= request_cap, "page {p}: {request} B request");
        }
    }

    #[test]
    fn pages_split_in_order_and_the_root_names_each() {
        let key = UserKey::generate(&mut rand::rng());
        let mut fields = file_of(
            &key,
            3 * PAGE_CHUNKS as u64 * DEFAULT_SEGMENT_SIZE as u64 + 1,
        );
        fields.readers.truncate(2);
        fields.key_wraps.truncate(1);
        let all = fields.chunks.clone();
        let (root, pages) = split(&key, fields).unwrap();
        assert_eq!(pages.len(), 3);
        assert_eq!(root.pages.len(), 3);
        assert_eq!(pages[2].chunks.len(), 1);
        let joined: Vec<ChunkRef> = std::iter::once(&root)
            .chain(&pages)
            .flat_map(|m| m.chunks.clone())
            .collect();
        assert_eq!(joined, all);
        for (i, (p, r)) in pages.iter().zip(&root.pages).enumerate() {
            p.verify().unwrap();
            assert_eq!(p.name, page_name(&root.name, i + 1));
            assert_eq!(page_hash(&p.chunks), r.hash);
            assert_eq!(p.readers, root.readers, "pages serve the same readers");
            assert!(p.key_wraps.is_empty(), "the file key is in the root only");
            // Chunk i binds to the record holding it.
            let first = ((i + 1) * PAGE_CHUNKS) as u32;
            assert_eq!(
                record_of_chunk(&root.owner, &root.name, first),
                FileRecord::key(&root.owner, &p.name)
            );
        }
        assert_eq!(
            record_of_chunk(&root.owner, &root.name, PAGE_CHUNKS as u32 - 1),
            FileRecord::key(&root.owner, &root.name)
        );
        // A small file is one record, as before pages.
        let mut small = file_of(&key, 10);
        small.readers.clear();
        small.key_wraps.truncate(1);
        let (one, none) = split(&key, small).unwrap();
        assert!(none.is_empty() && one.pages.is_empty());
    }

    #[test]
    fn a_file_no_manifest_can_list_is_refused_up_front() {
        let seg = 1024;
        assert!(check_size(MAX_FILE_CHUNKS * seg, seg).is_ok());
        let err = check_size(MAX_FILE_CHUNKS * seg + 1, seg).unwrap_err();
        assert!(err.to_string().contains("larger segment size"), "{err}");
    }
}
