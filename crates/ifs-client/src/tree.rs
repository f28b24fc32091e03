//! Many files in one session: `put_tree` puts a list of local files under
//! their names, `get_tree` writes every file below a folder into a local
//! directory.
//!
//! What a single put pays per file is paid once per tree here: one node
//! table read, one probe pass, one set of reservations drawn down by every
//! file's chunks (so a user's grant count on a node does not grow with the
//! number of files), and one folder record write per folder and batch
//! rather than per file ([`crate::folder_batch`]). Files travel
//! concurrently, a bounded number and a bounded number of bytes at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use ifs_core::codec::{CHUNK_OVERHEAD, CodecParams};
use ifs_core::folder_record::{ChildKind, PackSlice};
use ifs_core::keys::UserKey;
use ifs_core::name::validate_name;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::catalog::{LsOptions, ls};
use crate::error::{GetError, PutError};
use crate::folder_batch::{FolderBatch, ensure_folders};
use crate::get::{GetOptions, get_to_file, probe_nodes};
use crate::pack::{
    PACK_SEGMENT, PACK_SMALL, PACK_TARGET, PackBuilder, SentPack, retire_superseded, send_pack,
};
use crate::place::{Placer, WarmSlot};
use crate::plan::cipher_estimate;
use crate::put::{PutOptions, Replaced, TableAsk, open_table, upload};
use crate::range::RangeReader;
use crate::reserve::settle_all;
use crate::session::Session;

/// Folder entries written together once this many wait.
const FLUSH_EVERY: usize = 512;
/// Plaintext MiB of files being put or fetched at once (a large file
/// counts for at most [`MAX_FILE_PERMITS`]), so memory stays bounded
/// whatever mix of sizes a tree holds.
const MIB_IN_FLIGHT: u32 = 96;
/// The most a single file takes of [`MIB_IN_FLIGHT`]: a large file holds
/// a few segments in the codec and a few chunks on the wire.
const MAX_FILE_PERMITS: u32 = 48;

/// One local file to put.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Where it is on this machine.
    pub path: PathBuf,
    /// Its name in the owner's namespace (checked with `validate_name`).
    pub name: String,
    /// Its size when listed (for reservations and progress).
    pub size: u64,
}

/// Files and plaintext bytes done so far, for a progress display.
#[derive(Clone, Debug, Default)]
pub struct TreeProgress {
    /// Files finished (stored or failed).
    pub files: Arc<AtomicU64>,
    /// Plaintext bytes placed or written.
    pub bytes: Arc<AtomicU64>,
}

/// How a tree is put or fetched.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// Replicas per chunk (R), for puts.
    pub replicas: usize,
    /// Extra reservation, percent, for puts.
    pub overprovision_pct: u32,
    /// Files travelling at once.
    pub files_in_flight: usize,
    /// Replace local files that exist (gets).
    pub overwrite: bool,
    /// Progress counters to bump.
    pub progress: TreeProgress,
}

impl Default for TreeOptions {
    /// R=3, +20%, 16 files at once, no overwriting.
    fn default() -> Self {
        TreeOptions {
            replicas: 3,
            overprovision_pct: 20,
            files_in_flight: 16,
            overwrite: false,
            progress: TreeProgress::default(),
        }
    }
}

/// What became of one file of a tree.
#[derive(Clone, Debug)]
pub struct FileOutcome {
    /// Its name in the owner's namespace.
    pub name: String,
    /// Its local path.
    pub path: PathBuf,
    /// Plaintext size.
    pub size: u64,
    /// Milliseconds from the start of the tree until the file was done
    /// (put: its file record written; get: written and renamed in place).
    pub done_ms: u64,
    /// The version written or read.
    pub version: u64,
    /// Chunks.
    pub chunks: usize,
    /// The live version a put replaced.
    pub replaced: Option<Replaced>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl FileOutcome {
    fn failed(name: &str, path: &Path, size: u64, start: Instant, why: String) -> Self {
        FileOutcome {
            name: name.to_string(),
            path: path.to_path_buf(),
            size,
            done_ms: start.elapsed().as_millis() as u64,
            version: 0,
            chunks: 0,
            replaced: None,
            error: Some(why),
        }
    }
}

/// What a tree operation did, file by file in the order they finished.
#[derive(Clone, Debug, Default)]
pub struct TreeReport {
    /// Every file.
    pub files: Vec<FileOutcome>,
}

impl TreeReport {
    /// Files that failed.
    pub fn failures(&self) -> impl Iterator<Item = &FileOutcome> {
        self.files.iter().filter(|f| f.error.is_some())
    }
}

/// Permits of [`MIB_IN_FLIGHT`] a file of `size` bytes takes.
fn permits(size: u64) -> u32 {
    let mib = size.div_ceil(1 << 20).max(1);
    u32::try_from(mib).unwrap_or(u32::MAX).min(MAX_FILE_PERMITS)
}

/// Put every file of `files` under its name through one preliminary table,
/// then settle its reservations. A file that fails is reported and the
/// others go on; the call fails only when nothing can be put at all (no
/// table, folders that cannot be written).
pub async fn put_tree(
    session: &Session,
    key: &UserKey,
    files: Vec<TreeFile>,
    opts: &TreeOptions,
) -> Result<TreeReport, PutError> {
    let start = Instant::now();
    if files.is_empty() {
        return Ok(TreeReport::default());
    }
    let codec = CodecParams::default();
    let seg = codec.segment_size as u64;
    let max_chunk = seg + CHUNK_OVERHEAD as u64;
    let total: u64 = files.iter().map(|f| cipher_estimate(f.size, seg)).sum();
    let largest = files
        .iter()
        .map(|f| max_chunk.min(cipher_estimate(f.size, seg)))
        .max()
        .unwrap_or(max_chunk);
    let ask = TableAsk {
        replicas: opts.replicas.max(1),
        total: Some(total),
        overprovision_pct: opts.overprovision_pct,
        max_chunk: largest,
    };
    let mut batch = FolderBatch::default();
    for f in &files {
        batch.add_deleted(&f.name, 0); // only to learn the folders
    }
    ensure_folders(session, key, &batch.folders())
        .await
        .map_err(PutError::Folders)?;
    let mut batch = FolderBatch::default();
    let placer = open_table(session, key, &ask, max_chunk).await?;
    let budget = Semaphore::new(MIB_IN_FLIGHT as usize);
    let progress = &opts.progress;
    let (small, large): (Vec<TreeFile>, Vec<TreeFile>) =
        files.into_iter().partition(|f| f.size <= PACK_SMALL);
    let pack_template = {
        let mut t = PutOptions::new(String::new());
        t.replicas = opts.replicas.max(1);
        t.overprovision_pct = opts.overprovision_pct;
        t.progress = Some(opts.progress.bytes.clone());
        t
    };
    let singles = futures::stream::iter(large)
        .map(|f| {
            let (placer, budget, codec) = (&placer, &budget, &codec);
            async move {
                let _permit = budget.acquire_many(permits(f.size)).await;
                let result = put_file(session, key, &f, opts, codec, placer).await;
                progress.files.fetch_add(1, Ordering::Relaxed);
                Done::File(f, result, start.elapsed().as_millis() as u64)
            }
        })
        .buffer_unordered(opts.files_in_flight.max(1));
    let packs = futures::stream::iter(pack_groups(small))
        .map(|group| {
            let (placer, budget, template) = (&placer, &budget, &pack_template);
            async move {
                let size: u64 = group.iter().map(|f| f.size).sum();
                let _permit = budget.acquire_many(permits(size)).await;
                let n = group.len() as u64;
                let (pack, read, unread) = read_pack(group).await;
                let result = if pack.is_empty() {
                    None
                } else {
                    Some(send_pack(session, key, pack, template, placer).await)
                };
                progress.files.fetch_add(n, Ordering::Relaxed);
                let done_ms = start.elapsed().as_millis() as u64;
                Done::Pack {
                    result,
                    read,
                    unread,
                    done_ms,
                }
            }
        })
        .buffer_unordered(PACKS_IN_FLIGHT);
    let mut done = futures::stream::select(singles, packs);
    // Files and packs finish on one side; their folder entries are written
    // on the other, so a flush never holds up the uploads behind it.
    let (tx, mut rx) = futures::channel::mpsc::unbounded();
    let produce = async move {
        while let Some(d) = done.next().await {
            if tx.unbounded_send(d).is_err() {
                break;
            }
        }
    };
    let mut report = TreeReport::default();
    let mut unlisted = Vec::new();
    let mut superseded = Vec::new();
    let mut packed = Vec::new();
    let consume = async {
        while let Some(d) = rx.next().await {
            match d {
                Done::File(f, Ok((r, manifest)), done_ms) => {
                    batch.add_live(&f.name, &manifest);
                    report.files.push(FileOutcome {
                        name: f.name,
                        path: f.path,
                        size: r.size,
                        done_ms,
                        version: r.version,
                        chunks: r.chunks.len(),
                        replaced: r.replaced,
                        error: None,
                    });
                }
                Done::File(f, Err(e), done_ms) => {
                    warn!(name = %f.name, "put failed: {e}");
                    let o = FileOutcome::failed(&f.name, &f.path, f.size, start, e.to_string());
                    report.files.push(FileOutcome { done_ms, ..o });
                }
                Done::Pack {
                    result,
                    read,
                    unread,
                    done_ms,
                } => {
                    for (f, why) in unread {
                        warn!(name = %f.name, "put failed: {why}");
                        let o = FileOutcome::failed(&f.name, &f.path, f.size, start, why);
                        report.files.push(FileOutcome { done_ms, ..o });
                    }
                    match result {
                        None => {}
                        Some(Ok(sent)) => {
                            batch.add_live(&sent.name, &sent.manifest);
                            for (f, (name, slice)) in read.into_iter().zip(sent.slices) {
                                report.files.push(FileOutcome {
                                    name: name.clone(),
                                    path: f.path,
                                    size: slice.len,
                                    done_ms,
                                    version: 0,
                                    chunks: 0,
                                    replaced: None,
                                    error: None,
                                });
                                batch.add_packed(&name, slice);
                            }
                        }
                        Some(Err(e)) => {
                            for f in read {
                                warn!(name = %f.name, "put failed: {e}");
                                let o = FileOutcome::failed(
                                    &f.name,
                                    &f.path,
                                    f.size,
                                    start,
                                    e.to_string(),
                                );
                                report.files.push(FileOutcome { done_ms, ..o });
                            }
                        }
                    }
                }
            }
            if batch.len() >= FLUSH_EVERY {
                let flushed = batch.flush(session, key).await;
                unlisted.extend(flushed.failed);
                superseded.extend(flushed.superseded);
                packed.extend(flushed.packed);
            }
        }
    };
    futures::join!(produce, consume);
    let flushed = batch.flush(session, key).await;
    unlisted.extend(flushed.failed);
    superseded.extend(flushed.superseded);
    packed.extend(flushed.packed);
    let index: HashMap<String, usize> = report
        .files
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.clone(), i))
        .collect();
    for (name, e) in unlisted {
        if let Some(&i) = index.get(&name) {
            report.files[i].error = Some(e.to_string());
        }
    }
    for w in packed {
        if let Some(&i) = index.get(&w.name) {
            report.files[i].version = w.version;
            report.files[i].replaced = w.replaced;
        }
    }
    for (name, e) in retire_superseded(session, key, &superseded).await {
        if let Some(&i) = index.get(&name) {
            report.files[i].error = Some(format!(
                "stored, but the version it replaces could not be deleted: {e}"
            ));
        }
    }
    settle_all(session, key, &placer.into_book()).await;
    Ok(report)
}

/// Put small files held in memory (each at most [`PACK_SMALL`] bytes) as
/// one pack, through one fresh table, their folder entries written
/// together. Each file's outcome in the order given: the version of its
/// entry, or why it failed. [`SmallFiles`] keeps the table for the next.
pub async fn put_small_files(
    session: &Session,
    key: &UserKey,
    files: Vec<(String, Vec<u8>)>,
    opts: &TreeOptions,
) -> Result<Vec<Result<u64, String>>, PutError> {
    let sender = SmallFiles::default();
    let sent = sender.put(session, key, files, opts).await;
    sender.close(session, key).await;
    sent
}

/// Batches of small files sent one after another as packs (what a gateway
/// does with the small objects that arrive while it is busy), through one
/// table kept warm between batches: while it is fresh a batch pays no
/// probe and no reservations of its own, only its pack, its records and
/// its folder entries. Batches go one at a time (a second waits).
#[derive(Default)]
pub struct SmallFiles {
    warm: WarmSlot,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl SmallFiles {
    /// Put `files` (each at most [`PACK_SMALL`] bytes) as one pack, their
    /// folder entries written together: see [`put_small_files`].
    pub async fn put(
        &self,
        session: &Session,
        key: &UserKey,
        files: Vec<(String, Vec<u8>)>,
        opts: &TreeOptions,
    ) -> Result<Vec<Result<u64, String>>, PutError> {
        let _turn = self.one_at_a_time.lock().await;
        let sent = self.put_batch(session, key, files, opts).await;
        // Batches do not overlap: a table retired by this one is unused.
        self.warm.settle(session, key, false).await;
        sent
    }

    /// Release the reservations the warm table still holds.
    pub async fn close(&self, session: &Session, key: &UserKey) {
        self.warm.settle(session, key, true).await;
    }

    async fn put_batch(
        &self,
        session: &Session,
        key: &UserKey,
        files: Vec<(String, Vec<u8>)>,
        opts: &TreeOptions,
    ) -> Result<Vec<Result<u64, String>>, PutError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut pack = PackBuilder::default();
        let mut batch = FolderBatch::default();
        for (name, data) in &files {
            if data.len() as u64 > PACK_SMALL {
                return Err(PutError::Folders(GetError::Folder(format!(
                    "{name}: {} bytes is too large to pack",
                    data.len()
                ))));
            }
            pack.add(name, data);
            batch.add_deleted(name, 0); // only to learn the folders
        }
        ensure_folders(session, key, &batch.folders())
            .await
            .map_err(PutError::Folders)?;
        let seg = PACK_SEGMENT as u64;
        let ask = TableAsk {
            replicas: opts.replicas.max(1),
            total: Some(cipher_estimate(pack.len(), seg)),
            overprovision_pct: opts.overprovision_pct,
            max_chunk: seg + CHUNK_OVERHEAD as u64,
        };
        let table = self.warm.table(session, key, &ask, ask.max_chunk).await?;
        let placer = Placer::warm(session, key, &table);
        let mut template = PutOptions::new(String::new());
        template.replicas = opts.replicas.max(1);
        template.overprovision_pct = opts.overprovision_pct;
        let sent = send_pack(session, key, pack, &template, &placer).await?;
        let mut batch = FolderBatch::default();
        batch.add_live(&sent.name, &sent.manifest);
        for (name, slice) in sent.slices {
            batch.add_packed(&name, slice);
        }
        let flushed = batch.flush(session, key).await;
        for (name, e) in retire_superseded(session, key, &flushed.superseded).await {
            warn!(name = %name, "replaced, but its old record not deleted: {e}");
        }
        let failed: HashMap<String, String> = flushed
            .failed
            .into_iter()
            .map(|(n, e)| (n, e.to_string()))
            .collect();
        let versions: HashMap<String, u64> = flushed
            .packed
            .into_iter()
            .map(|w| (w.name, w.version))
            .collect();
        Ok(files
            .iter()
            .map(|(name, _)| match (versions.get(name), failed.get(name)) {
                (Some(v), _) => Ok(*v),
                (None, Some(why)) => Err(why.clone()),
                (None, None) => Err("its folder entry was not written".to_string()),
            })
            .collect())
    }
}

/// Packs sent at once by a tree put.
const PACKS_IN_FLIGHT: usize = 2;

/// What finished: one file put alone, or one pack of small files.
enum Done {
    File(
        TreeFile,
        Result<(crate::PutReport, ifs_core::wire::Manifest), PutError>,
        u64,
    ),
    Pack {
        /// `None` when no file of the pack could be read.
        result: Option<Result<SentPack, PutError>>,
        /// The files in the pack, in order.
        read: Vec<TreeFile>,
        /// The files that could not be read, with why.
        unread: Vec<(TreeFile, String)>,
        done_ms: u64,
    },
}

/// The small files cut into packs of about [`PACK_TARGET`] bytes, in the
/// order given (files of one folder stay together).
fn pack_groups(small: Vec<TreeFile>) -> Vec<Vec<TreeFile>> {
    let mut groups = Vec::new();
    let (mut group, mut bytes) = (Vec::new(), 0u64);
    for f in small {
        bytes += f.size;
        group.push(f);
        if bytes >= PACK_TARGET {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// Read a group of small files into a pack (off the async threads): the
/// pack, the files in it, and those that could not be read.
async fn read_pack(group: Vec<TreeFile>) -> (PackBuilder, Vec<TreeFile>, Vec<(TreeFile, String)>) {
    let read = tokio::task::spawn_blocking(move || {
        let mut pack = PackBuilder::default();
        let (mut read, mut unread) = (Vec::new(), Vec::new());
        for f in group {
            let added = std::fs::File::open(&f.path)
                .and_then(|file| pack.add_from(&f.name, file, PACK_SMALL));
            match added {
                Ok(()) => read.push(f),
                Err(e) => {
                    let why = format!("cannot read {}: {e}", f.path.display());
                    unread.push((f, why));
                }
            }
        }
        (pack, read, unread)
    })
    .await;
    read.unwrap_or_else(|_| (PackBuilder::default(), Vec::new(), Vec::new()))
}

/// Open and upload one file of a tree through the shared placer.
async fn put_file(
    session: &Session,
    key: &UserKey,
    f: &TreeFile,
    opts: &TreeOptions,
    codec: &CodecParams,
    placer: &crate::place::Placer<'_>,
) -> Result<(crate::PutReport, ifs_core::wire::Manifest), PutError> {
    let file =
        std::fs::File::open(&f.path).map_err(|e| PutError::Codec(ifs_core::CodecError::Read(e)))?;
    let mut put = PutOptions::new(f.name.clone());
    put.replicas = opts.replicas.max(1);
    put.overprovision_pct = opts.overprovision_pct;
    put.size_hint = Some(f.size);
    put.progress = Some(opts.progress.bytes.clone());
    // A file within one segment needs one codec worker, not one per core:
    // many of them run at once already.
    if f.size <= codec.segment_size as u64 {
        put.codec = CodecParams {
            threads: 1,
            in_flight: 1,
            ..codec.clone()
        };
        put.in_flight = 1;
    }
    upload(session, key, file, &put, placer).await
}

/// The part of `name` below the folder `prefix` ("" for the top).
fn relative<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(name);
    }
    name.strip_prefix(prefix)?.strip_prefix('/')
}

/// Where `rel` (a checked name) goes under `dest`.
fn local_path(dest: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(dest.to_path_buf(), |p, s| p.join(s))
}

/// Write every file below the folder `prefix` ("" for the top) into
/// `dest`, folders as directories, each file through a temp file renamed
/// into place once complete. Existing files are refused before anything
/// is fetched unless `opts.overwrite`. Names are checked again before use
/// (no `..`, no empty segment), whatever the folder records say.
pub async fn get_tree(
    session: &Session,
    key: &UserKey,
    prefix: &str,
    dest: &Path,
    opts: &TreeOptions,
) -> Result<TreeReport, GetError> {
    let start = Instant::now();
    let prefix = prefix.trim_matches('/');
    let listed = ls(
        session,
        key,
        &LsOptions {
            prefix: prefix.to_string(),
            recursive: true,
            replicas: false,
        },
    )
    .await?;
    let mut dirs = BTreeSet::new();
    let mut files = Vec::new();
    for f in listed {
        let Some(rel) = relative(&f.name, prefix) else {
            continue;
        };
        if validate_name(rel).is_err() {
            warn!(name = %ifs_core::name::printable(&f.name), "skipped a name that is no safe local path");
            continue;
        }
        let path = local_path(dest, rel);
        match f.kind {
            ChildKind::Folder => {
                dirs.insert(path);
            }
            ChildKind::File => {
                if let Some(parent) = path.parent() {
                    dirs.insert(parent.to_path_buf());
                }
                files.push((f.name, path, f.size, f.version, f.pack));
            }
        }
    }
    if !opts.overwrite
        && let Some((_, path, _, _, _)) = files
            .iter()
            .find(|(_, p, _, _, _)| std::fs::symlink_metadata(p).is_ok())
    {
        return Err(GetError::Local {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists"),
        });
    }
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|source| GetError::Local {
            path: d.display().to_string(),
            source,
        })?;
    }
    let rtts = Arc::new(probe_nodes(session).await?);
    let budget = Semaphore::new(MIB_IN_FLIGHT as usize);
    let progress = &opts.progress;
    // Packed files are read pack by pack: one pass over each pack's
    // chunks serves all of its files.
    let mut by_pack: BTreeMap<(String, u64), Vec<PackedGet>> = BTreeMap::new();
    let mut singles = Vec::new();
    for (name, path, size, version, pack) in files {
        match pack {
            Some(slice) => by_pack
                .entry((slice.handle.clone(), slice.version))
                .or_default()
                .push(PackedGet {
                    name,
                    path,
                    version,
                    slice,
                }),
            None => singles.push((name, path, size, version)),
        }
    }
    let fetches = futures::stream::iter(singles)
        .map(|(name, path, size, version)| {
            let (budget, rtts) = (&budget, rtts.clone());
            async move {
                let _permit = budget.acquire_many(permits(size)).await;
                let got = get_file(session, key, &name, &path, rtts, progress).await;
                progress.files.fetch_add(1, Ordering::Relaxed);
                let done_ms = start.elapsed().as_millis() as u64;
                vec![match got {
                    Ok((size, chunks)) => FileOutcome {
                        name,
                        path,
                        size,
                        done_ms,
                        version,
                        chunks,
                        replaced: None,
                        error: None,
                    },
                    Err(e) => {
                        warn!(name = %name, "get failed: {e}");
                        let o = FileOutcome::failed(&name, &path, size, start, e.to_string());
                        FileOutcome { done_ms, ..o }
                    }
                }]
            }
        })
        .buffer_unordered(opts.files_in_flight.max(1));
    let packs = futures::stream::iter(by_pack.into_values())
        .map(|members| {
            let (budget, rtts) = (&budget, rtts.clone());
            async move {
                let _permit = budget.acquire_many(MAX_FILE_PERMITS / 4).await;
                get_packed(session, key, members, rtts, progress, start).await
            }
        })
        .buffer_unordered(PACKS_IN_FLIGHT);
    let files = futures::stream::select(fetches, packs)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    Ok(TreeReport { files })
}

/// One packed file a tree get writes.
struct PackedGet {
    name: String,
    path: PathBuf,
    version: u64,
    slice: PackSlice,
}

/// A packed file being written: its temp file and the bytes still due.
struct Writing {
    tmp: PathBuf,
    file: std::fs::File,
    left: u64,
    hasher: blake3::Hasher,
}

/// Write the files of one pack, each through a temp file renamed into
/// place once complete, reading the pack once from the first file's start
/// to the last file's end.
async fn get_packed(
    session: &Session,
    key: &UserKey,
    mut members: Vec<PackedGet>,
    rtts: Arc<crate::get::NodeRtts>,
    progress: &TreeProgress,
    start: Instant,
) -> Vec<FileOutcome> {
    members.sort_by_key(|m| m.slice.offset);
    let mut outcomes: Vec<Option<String>> = vec![None; members.len()];
    let got = read_pack_into(session, key, &members, &mut outcomes, rtts, progress).await;
    let done_ms = start.elapsed().as_millis() as u64;
    members
        .into_iter()
        .zip(outcomes)
        .map(|(m, why)| {
            let error = why.or_else(|| got.as_ref().err().cloned());
            if let Some(e) = &error {
                warn!(name = %m.name, "get failed: {e}");
            }
            progress.files.fetch_add(1, Ordering::Relaxed);
            FileOutcome {
                name: m.name,
                path: m.path,
                size: m.slice.len,
                done_ms,
                version: m.version,
                chunks: 0,
                replaced: None,
                error,
            }
        })
        .collect()
}

/// The pass of [`get_packed`]: `outcomes[i]` gets why member `i` failed,
/// if it did on its own; an error for the whole pack is returned.
async fn read_pack_into(
    session: &Session,
    key: &UserKey,
    members: &[PackedGet],
    outcomes: &mut [Option<String>],
    rtts: Arc<crate::get::NodeRtts>,
    progress: &TreeProgress,
) -> Result<(), String> {
    let Some(first) = members.first() else {
        return Ok(());
    };
    let opts = GetOptions {
        rtts: Some(rtts),
        ..GetOptions::default()
    };
    let reader = RangeReader::open_pack(session, key, &first.slice, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let lo = first.slice.offset;
    let hi = members
        .iter()
        .filter_map(|m| m.slice.end())
        .max()
        .unwrap_or(lo);
    if hi > reader.size() {
        return Err(format!(
            "its pack holds {} bytes, the files reach to {hi}",
            reader.size()
        ));
    }
    let mut open: BTreeMap<usize, Writing> = BTreeMap::new();
    // Files are opened when the pass reaches them; empty ones at once.
    let mut next = 0;
    let result = async {
        let (_, stream) = reader.read(lo, hi - lo).map_err(|e| e.to_string())?;
        futures::pin_mut!(stream);
        let mut pos = lo;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| e.to_string())?;
            let end = pos + piece.len() as u64;
            // Every file that starts within this piece is opened first.
            open_until(members, &mut next, &mut open, outcomes, |o| o < end);
            for (&i, w) in open.iter_mut() {
                let m = &members[i].slice;
                let (from, to) = (pos.max(m.offset), end.min(m.offset + m.len));
                if from >= to {
                    continue;
                }
                let bytes = &piece[(from - pos) as usize..(to - pos) as usize];
                if let Err(e) =
                    std::os::unix::fs::FileExt::write_all_at(&w.file, bytes, from - m.offset)
                {
                    outcomes[i] = Some(format!("cannot write {}: {e}", w.tmp.display()));
                    w.left = 0;
                } else {
                    w.left -= to - from;
                    w.hasher.update(bytes);
                }
            }
            finish_done(&mut open, members, outcomes, progress);
            pos = end;
        }
        // Empty files at the very end of the range.
        open_until(members, &mut next, &mut open, outcomes, |o| o <= pos);
        finish_done(&mut open, members, outcomes, progress);
        Ok::<(), String>(())
    }
    .await;
    reader.finish().await;
    // Whatever is still open did not get all its bytes.
    for (i, w) in open {
        let _ = std::fs::remove_file(&w.tmp);
        if outcomes[i].is_none() && result.is_ok() {
            outcomes[i] = Some("its pack ended before the file did".into());
        }
    }
    result
}

/// Open the temp files of the members from `next` on whose offset passes
/// `starts` (members are sorted by offset).
fn open_until(
    members: &[PackedGet],
    next: &mut usize,
    open: &mut BTreeMap<usize, Writing>,
    outcomes: &mut [Option<String>],
    starts: impl Fn(u64) -> bool,
) {
    while *next < members.len() && starts(members[*next].slice.offset) {
        let m = &members[*next];
        match start_file(&m.path, m.slice.len) {
            Ok(w) => {
                open.insert(*next, w);
            }
            Err(e) => outcomes[*next] = Some(e),
        }
        *next += 1;
    }
}

/// Create `path`'s temp file for `len` bytes.
fn start_file(path: &Path, len: u64) -> Result<Writing, String> {
    let tmp = partial_path(path);
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    Ok(Writing {
        tmp,
        file,
        left: len,
        hasher: blake3::Hasher::new(),
    })
}

/// Sync and rename into place every open file that has all its bytes.
fn finish_done(
    open: &mut BTreeMap<usize, Writing>,
    members: &[PackedGet],
    outcomes: &mut [Option<String>],
    progress: &TreeProgress,
) {
    let done: Vec<usize> = open
        .iter()
        .filter(|(_, w)| w.left == 0)
        .map(|(i, _)| *i)
        .collect();
    for i in done {
        let Some(w) = open.remove(&i) else { continue };
        if outcomes[i].is_none() && *w.hasher.finalize().as_bytes() != members[i].slice.hash {
            outcomes[i] = Some("the bytes read do not match the file's hash".into());
        }
        if outcomes[i].is_some() {
            let _ = std::fs::remove_file(&w.tmp);
            continue;
        }
        let path = &members[i].path;
        let placed = w
            .file
            .sync_all()
            .and_then(|()| std::fs::rename(&w.tmp, path));
        match placed {
            Ok(()) => {
                progress
                    .bytes
                    .fetch_add(members[i].slice.len, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&w.tmp);
                outcomes[i] = Some(format!("cannot write {}: {e}", path.display()));
            }
        }
    }
}

/// Where a file is written before it is complete.
fn partial_path(path: &Path) -> PathBuf {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".ifs-partial");
    path.with_file_name(tmp_name)
}

/// Fetch `name` into `path` through `path.ifs-partial`; its size and chunks.
async fn get_file(
    session: &Session,
    key: &UserKey,
    name: &str,
    path: &Path,
    rtts: Arc<crate::get::NodeRtts>,
    progress: &TreeProgress,
) -> Result<(u64, usize), GetError> {
    let tmp = partial_path(path);
    let local = |source| GetError::Local {
        path: tmp.display().to_string(),
        source,
    };
    let file = Arc::new(std::fs::File::create(&tmp).map_err(local)?);
    let opts = GetOptions {
        rtts: Some(rtts),
        ..GetOptions::default()
    };
    let got = get_to_file(session, key, None, name, file.clone(), opts).await;
    let done = got.and_then(|r| {
        file.sync_all().map_err(local)?;
        std::fs::rename(&tmp, path).map_err(|source| GetError::Local {
            path: path.display().to_string(),
            source,
        })?;
        Ok(r)
    });
    match done {
        Ok(r) => {
            progress.bytes.fetch_add(r.size, Ordering::Relaxed);
            Ok((r.size, r.chunks))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_below_a_prefix_map_to_paths_below_the_destination() {
        assert_eq!(relative("a/b/c", "a"), Some("b/c"));
        assert_eq!(relative("a/b/c", ""), Some("a/b/c"));
        assert_eq!(relative("ab/c", "a"), None, "a sibling with a longer name");
        assert_eq!(
            local_path(Path::new("/tmp/d"), "b/c"),
            PathBuf::from("/tmp/d/b/c")
        );
    }

    #[test]
    fn a_large_file_takes_a_bounded_share_of_the_budget() {
        assert_eq!(permits(0), 1);
        assert_eq!(permits(4096), 1);
        assert_eq!(permits(3 << 20), 3);
        assert_eq!(permits(1 << 40), MAX_FILE_PERMITS);
        const { assert!(MAX_FILE_PERMITS <= MIB_IN_FLIGHT) };
    }
}
