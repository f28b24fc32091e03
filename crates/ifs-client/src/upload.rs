//! Resumable uploads: the one code path every put runs on.
//!
//! An [`Upload`] fixes what a file's chunks are bound to before any is
//! sent (name, version, file key, nonce prefix, segment size), then takes
//! the file's segments in any number of calls, in any order and
//! concurrently ([`Upload::put_segments`]), keeping every placed chunk and
//! its verified receipts. [`Upload::commit`] writes the manifest once every
//! chunk is there. The state can be saved (atomically, mode 0600: it holds
//! the file key) after each chunk and loaded again by a later process, so a
//! cut upload sends again only what it had not placed.
//!
//! Nodes keep a placed chunk that no committed record names for their
//! collection grace (`collect_after`, an hour by default) from when it was
//! stored. A chunk placed longer ago than [`RESUME_WINDOW`] is not trusted
//! to be there: a resumed put sends it again, a commit refuses it
//! ([`PutError::Stale`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use ifs_core::codec::{
    CHUNK_OVERHEAD, EncodedChunk, Encoder, FileKey, MAX_SEGMENT_SIZE, NoncePrefix, decode_segment,
    seal_segment,
};
use ifs_core::keys::UserKey;
use ifs_core::wire::{FetchRequest, FileDelete, Manifest, Tombstone, page_name};
use ifs_core::{ChunkId, UserId};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::{ClientError, PutError};
use crate::folders::{self, FileState};
use crate::pages;
use crate::place::{Placer, WarmSlot};
use crate::plan::cipher_estimate;
use crate::put::{
    PlacedChunk, PutOptions, PutReport, TableAsk, commit_records, now_ms, open_table,
};
use crate::records;
use crate::reserve::settle_all;
use crate::session::Session;

mod resume;
mod saved;

pub use resume::{Resumed, put_file};

/// How long after it was placed a chunk no record names yet is relied on
/// to be still stored: half the nodes' default collection grace (an hour),
/// leaving room for clocks and for a commit that takes a while.
pub const RESUME_WINDOW: Duration = Duration::from_secs(30 * 60);

/// A run of a file's segments for [`Upload::put_segments`].
pub struct Segments<R> {
    /// Index of the first segment in `data`.
    pub first_index: u32,
    /// The plaintext. Unless `last`, whole segments only.
    pub data: R,
    /// Bytes in `data` when known, to size reservations.
    pub size_hint: Option<u64>,
    /// `size_hint` is `data`'s exact length: the part starts without
    /// reading ahead to learn its size, and `data` holding more or fewer
    /// bytes fails it.
    pub exact_size: bool,
    /// Whether `data` ends the file (its final segment is sealed as last).
    pub last: bool,
    /// Leave chunks already placed (within [`RESUME_WINDOW`]) as they are
    /// instead of sending them again: for a resumed put of the same bytes.
    /// Otherwise a segment placed before is replaced (a part sent again).
    pub keep_placed: bool,
}

/// What [`Upload::abort`] could do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortReport {
    /// Chunks the upload had placed.
    pub chunks: usize,
    /// Holders told to free them now; 0 when the name holds a live file
    /// (a delete would take it down), and nodes collect the chunks after
    /// their grace instead.
    pub holders_told: usize,
}

/// A file being uploaded: fixed bindings and every chunk placed so far.
pub struct Upload {
    head: Head,
    opts: PutOptions,
    chunks: Mutex<BTreeMap<u32, PlacedChunk>>,
    state_path: Option<PathBuf>,
    /// Held while the state is written; one save at a time.
    saving: tokio::sync::Mutex<()>,
    /// Bumped after every change to `chunks`.
    changes: AtomicU64,
    /// The `changes` value the last completed save covered.
    saved: AtomicU64,
    /// The table parts are placed through, shared by every part in flight
    /// and by the next ones. Settled by the commit or abort.
    warm: WarmSlot,
}

/// What the chunks are bound to, fixed before the first is sent.
#[derive(Clone)]
struct Head {
    owner: UserId,
    name: String,
    /// What nodes see instead of the name (`UserKey::file_handle`).
    handle: String,
    version: u64,
    file_key: FileKey,
    prefix: NoncePrefix,
    segment_size: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one insert: a panic elsewhere cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Upload {
    /// Start uploading `opts.name` for `key`: the next version of the name
    /// (every chunk is bound to it), a fresh file key and nonce prefix,
    /// and `opts.codec.segment_size`. Nothing is sent yet.
    pub async fn begin(
        session: &Session,
        key: &UserKey,
        opts: PutOptions,
    ) -> Result<Upload, PutError> {
        let version = crate::put::next_version(session, key, &opts.name).await;
        Ok(Self::fresh(key, opts, version))
    }

    fn fresh(key: &UserKey, opts: PutOptions, version: u64) -> Upload {
        let head = Head {
            owner: key.user_id(),
            name: opts.name.clone(),
            handle: key.file_handle(&opts.name),
            version,
            file_key: FileKey::generate(&mut rand::rng()),
            prefix: NoncePrefix::generate(&mut rand::rng()),
            segment_size: opts.codec.segment_size as u64,
        };
        Upload {
            head,
            opts,
            chunks: Mutex::new(BTreeMap::new()),
            state_path: None,
            saving: tokio::sync::Mutex::new(()),
            changes: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            warm: WarmSlot::default(),
        }
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.head.name
    }

    /// The version every chunk is bound to (the manifest's, unless a
    /// concurrent put of the name committed a higher one meanwhile).
    pub fn version(&self) -> u64 {
        self.head.version
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u64 {
        self.head.segment_size
    }

    /// Chunks placed so far, by index (a copy).
    pub fn placed(&self) -> Vec<PlacedChunk> {
        lock(&self.chunks).values().cloned().collect()
    }

    /// Chunks placed within [`RESUME_WINDOW`] of `now_ms`: those a resume
    /// does not send again.
    pub fn fresh_chunks(&self, now_ms: u64) -> usize {
        lock(&self.chunks)
            .values()
            .filter(|c| self.is_fresh(c, now_ms))
            .count()
    }

    /// The first index from which a resumed put must read its input: every
    /// chunk below it is placed and fresh.
    pub fn resume_from(&self, now_ms: u64) -> u32 {
        let chunks = lock(&self.chunks);
        let mut next = 0u32;
        while chunks.get(&next).is_some_and(|c| self.is_fresh(c, now_ms)) {
            next += 1;
        }
        next
    }

    fn is_fresh(&self, c: &PlacedChunk, now_ms: u64) -> bool {
        let window = self.opts.resume_window.as_millis() as u64;
        now_ms.saturating_sub(c.placed_ms) < window
    }

    /// Save the state to `path` after every chunk placed from now on (and
    /// at the end of each [`Upload::put_segments`]).
    pub fn persist_to(&mut self, path: impl Into<PathBuf>) {
        self.state_path = Some(path.into());
    }

    /// Replace the run-time options (progress counter, chunks in flight,
    /// codec threads); the bindings (name, segment size, replicas,
    /// readers) stay those the upload began with.
    pub fn set_options(&mut self, opts: PutOptions) {
        let keep = (
            self.opts.name.clone(),
            self.opts.codec.segment_size,
            self.opts.replicas,
            self.opts.readers.clone(),
            self.opts.reader_keys.clone(),
        );
        self.opts = opts;
        (
            self.opts.name,
            self.opts.codec.segment_size,
            self.opts.replicas,
            self.opts.readers,
            self.opts.reader_keys,
        ) = keep;
    }

    /// Encode `part.data` as the segments from `part.first_index` on and
    /// place each on R nodes through a preliminary table of its own,
    /// sized to the data; settle its reservations at the end. Calls for
    /// disjoint index ranges may run at once, in any order. Returns the
    /// chunks this call placed.
    pub async fn put_segments<R: Read + Send + 'static>(
        &self,
        session: &Session,
        key: &UserKey,
        part: Segments<R>,
    ) -> Result<Vec<PlacedChunk>, PutError> {
        self.check_key(key)?;
        let seg = self.head.segment_size as usize;
        let (head, rest, size_hint) = match (part.exact_size, part.size_hint) {
            (true, Some(size)) => (
                Vec::new(),
                Tail::Exact(Exact::new(part.data, size)),
                Some(size),
            ),
            _ => {
                let (head, rest) = read_head(part.data, seg).await?;
                let hint = if head.len() <= seg {
                    Some(head.len() as u64)
                } else {
                    part.size_hint
                };
                (head, Tail::Any(rest), hint)
            }
        };
        if size_hint == Some(0) && part.first_index > 0 {
            // An empty final part: the commit seals the chunk before it as last.
            return Ok(Vec::new());
        }
        if let Some(size) = size_hint {
            let before = u64::from(part.first_index) * self.head.segment_size;
            pages::check_size(before + size, self.head.segment_size)?;
        }
        let max_chunk = self.head.segment_size + CHUNK_OVERHEAD as u64;
        let chunk_cap = size_hint.map_or(max_chunk, |s| {
            max_chunk.min(cipher_estimate(s, self.head.segment_size))
        });
        let ask = TableAsk {
            replicas: self.opts.replicas.max(1),
            total: size_hint.map(|s| cipher_estimate(s, self.head.segment_size)),
            overprovision_pct: self.opts.overprovision_pct,
            max_chunk: chunk_cap,
        };
        let table = self.warm.table(session, key, &ask, max_chunk).await?;
        let placer = Placer::warm(session, key, &table);
        let part = Segments {
            data: std::io::Cursor::new(head).chain(rest),
            first_index: part.first_index,
            size_hint,
            exact_size: false,
            last: part.last,
            keep_placed: part.keep_placed,
        };
        let placed = self.place_segments(part, &placer).await;
        let saved = self.save_now().await;
        let placed = placed?;
        saved?;
        Ok(placed)
    }

    /// [`Upload::put_segments`] through a placer the caller holds (one
    /// table for many files).
    pub(crate) async fn place_segments<R: Read + Send + 'static>(
        &self,
        part: Segments<R>,
        placer: &Placer<'_>,
    ) -> Result<Vec<PlacedChunk>, PutError> {
        let (tx, mut rx) = mpsc::channel::<Result<EncodedChunk, ifs_core::CodecError>>(2);
        let (enc_key, prefix, params) = (
            self.head.file_key.clone(),
            self.head.prefix,
            self.opts.codec.clone(),
        );
        let (data, first, ends) = (part.data, part.first_index, part.last);
        // The encoder thread stops as soon as the channel closes (failed).
        let encoder = std::thread::spawn(move || {
            let enc = match Encoder::part(data, &enc_key, prefix, &params, first, ends) {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            for item in enc {
                if tx.blocking_send(item).is_err() {
                    return;
                }
            }
        });
        let rules = PartRules {
            ends_file: ends,
            keep_placed: part.keep_placed,
        };
        let placed = {
            let rules = &rules;
            let chunks = futures::stream::poll_fn(|cx| rx.poll_recv(cx))
                .map(|item| async move { self.place_one(item?, rules, placer).await })
                .buffer_unordered(self.opts.in_flight.max(1));
            futures::pin_mut!(chunks);
            let mut placed = Vec::new();
            while let Some(r) = chunks.next().await {
                if let Some(c) = r? {
                    placed.push(c);
                }
            }
            Ok::<_, PutError>(placed)
        };
        drop(rx);
        let mut placed = placed?;
        let _ = encoder.join();
        placed.sort_by_key(|c| c.index);
        Ok(placed)
    }

    /// Place one chunk (or keep the copy placed before), record it, save.
    async fn place_one(
        &self,
        chunk: EncodedChunk,
        rules: &PartRules,
        placer: &Placer<'_>,
    ) -> Result<Option<PlacedChunk>, PutError> {
        let seg = self.head.segment_size;
        if u64::from(chunk.index) >= pages::MAX_FILE_CHUNKS {
            return Err(PutError::TooManyChunks {
                chunks: u64::from(chunk.index) + 1,
                max: pages::MAX_FILE_CHUNKS,
                segment: seg,
            });
        }
        if !rules.ends_file && chunk.plain_len != seg {
            return Err(PutError::NotWholeSegments {
                index: chunk.index,
                len: chunk.plain_len,
                segment: seg,
            });
        }
        let progress = self.opts.progress.clone();
        let kept = rules.keep_placed
            && lock(&self.chunks)
                .get(&chunk.index)
                .is_some_and(|c| c.id == chunk.id && self.is_fresh(c, now_ms()));
        if kept {
            if let Some(p) = progress {
                p.fetch_add(chunk.plain_len, Ordering::Relaxed);
            }
            return Ok(None);
        }
        let record = pages::record_of_chunk(&self.head.owner, &self.head.handle, chunk.index);
        let placed = placer.place(chunk, (record, self.head.version)).await?;
        if let Some(p) = progress {
            p.fetch_add(placed.plain_len, Ordering::Relaxed);
        }
        self.record(&placed);
        self.autosave().await?;
        Ok(Some(placed))
    }

    fn check_key(&self, key: &UserKey) -> Result<(), PutError> {
        if key.user_id() != self.head.owner {
            return Err(PutError::StateMismatch {
                what: "the upload belongs to another user key",
            });
        }
        Ok(())
    }

    /// The chunks of a file of `size` plaintext bytes, in order, checked:
    /// every index present, each full but the last, the last the rest; and
    /// whether the last needs resealing as last.
    fn complete(&self, size: u64) -> Result<(Vec<PlacedChunk>, bool), PutError> {
        let seg = self.head.segment_size;
        let count = size.div_ceil(seg).max(1);
        pages::check_size(size, seg)?;
        let chunks = lock(&self.chunks);
        let missing: Vec<u32> = (0..count as u32)
            .filter(|i| !chunks.contains_key(i))
            .collect();
        if !missing.is_empty() {
            return Err(PutError::Incomplete { missing });
        }
        let extra = chunks.range(count as u32..).count();
        if extra > 0 {
            info!(extra, "chunks beyond the file's end are left out of it");
        }
        let list: Vec<PlacedChunk> = chunks
            .range(..count as u32)
            .map(|(_, c)| c.clone())
            .collect();
        drop(chunks);
        let placed: u64 = list.iter().map(|c| c.plain_len).sum();
        let (top, body) = list
            .split_last()
            .ok_or(PutError::Incomplete { missing: vec![0] })?;
        // Only the top chunk may be short or sealed as last.
        let bad = body.iter().any(|c| c.plain_len != seg || c.last);
        if placed != size || bad {
            return Err(PutError::SizeMismatch { size, placed });
        }
        let reseal = !top.last;
        Ok((list, reseal))
    }

    /// Check that every chunk of a file of `size` bytes is placed and
    /// fresh, seal the highest chunk again as the file's last if it was
    /// sealed otherwise (one chunk fetched and sent again), write the
    /// manifest (and pages), then the folder entry.
    pub async fn commit(
        &self,
        session: &Session,
        key: &UserKey,
        size: u64,
    ) -> Result<PutReport, PutError> {
        self.check_key(key)?;
        let (mut chunks, reseal) = self.complete(size)?;
        self.check_fresh(&chunks)?;
        if reseal {
            let top = chunks.len() - 1;
            chunks[top] = self.reseal(session, key, &chunks[top]).await?;
            self.save_now().await?;
        }
        self.warm.settle(session, key, true).await;
        let (report, manifest) = self.write_records(session, key, chunks).await?;
        folders::record_file(session, key, FileState::live(&self.head.name, &manifest))
            .await
            .map_err(|e| lookup_failed(session, e))?;
        Ok(report)
    }

    /// The manifest (and pages) and file record of `chunks`.
    async fn write_records(
        &self,
        session: &Session,
        key: &UserKey,
        chunks: Vec<PlacedChunk>,
    ) -> Result<(PutReport, Manifest), PutError> {
        commit_records(
            session,
            key,
            &self.opts,
            (&self.head.file_key, self.head.prefix),
            self.head.version,
            chunks,
        )
        .await
    }

    /// Write the records of a complete upload (no folder entry: the caller
    /// writes it, alone or with other files of its folder).
    pub(crate) async fn commit_unlisted(
        &self,
        session: &Session,
        key: &UserKey,
        size: u64,
    ) -> Result<(PutReport, Manifest), PutError> {
        let (chunks, reseal) = self.complete(size)?;
        if reseal {
            return Err(PutError::EncoderGone);
        }
        self.write_records(session, key, chunks).await
    }

    /// Fail with [`PutError::Superseded`] when a version at or above this
    /// upload's was signed for the name since it began (another put
    /// committed, or the file was deleted): holders may free chunks bound
    /// below the newest version, so a resume must start over.
    pub async fn check_current(&self, session: &Session, key: &UserKey) -> Result<(), PutError> {
        self.check_key(key)?;
        let rec = records::get_file_record(session, &self.head.owner, &self.head.handle)
            .await
            .map_err(|e| lookup_failed(session, e))?;
        match rec.map(|r| r.newest_version()) {
            Some(newest) if newest >= self.head.version => Err(PutError::Superseded {
                version: self.head.version,
                newest,
            }),
            _ => Ok(()),
        }
    }

    /// Plaintext bytes placed so far.
    pub fn placed_bytes(&self) -> u64 {
        lock(&self.chunks).values().map(|c| c.plain_len).sum()
    }

    fn check_fresh(&self, chunks: &[PlacedChunk]) -> Result<(), PutError> {
        let now = now_ms();
        let stale: Vec<u32> = chunks
            .iter()
            .filter(|c| !self.is_fresh(c, now))
            .map(|c| c.index)
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(PutError::Stale { indices: stale })
        }
    }

    /// Fetch `top` from one of its holders, open it, seal it as the last
    /// segment and place that.
    async fn reseal(
        &self,
        session: &Session,
        key: &UserKey,
        top: &PlacedChunk,
    ) -> Result<PlacedChunk, PutError> {
        let seg = self.head.segment_size;
        let ask = TableAsk {
            replicas: self.opts.replicas.max(1),
            total: Some(top.len),
            overprovision_pct: self.opts.overprovision_pct,
            max_chunk: top.len,
        };
        // The table registers every node's address, the holders' included.
        let placer = open_table(session, key, &ask, top.len).await?;
        let record = pages::record_of_chunk(&self.head.owner, &self.head.handle, top.index);
        let mut why = Vec::new();
        let mut plain = None;
        for r in &top.receipts {
            let Ok(peer) = ifs_net::node_id_to_peer_id(&r.node) else {
                continue;
            };
            let req = FetchRequest::new(key, top.id, record, r.node, now_ms(), rand::random());
            match crate::transfer::fetch_chunk(
                session.net(),
                peer,
                &req,
                &top.id,
                top.len,
                Vec::new(),
            )
            .await
            {
                Ok(data) => {
                    match decode_segment(
                        &self.head.file_key,
                        &self.head.prefix,
                        top.index,
                        false,
                        &top.id,
                        data.into_bytes(),
                        (seg as usize).min(MAX_SEGMENT_SIZE),
                    ) {
                        Ok(p) => {
                            plain = Some(p);
                            break;
                        }
                        Err(e) => why.push(format!("{peer}: {e}")),
                    }
                }
                Err(e) => why.push(format!("{peer}: {e}")),
            }
        }
        let Some(plain) = plain else {
            settle_all(session, key, &placer.into_book()).await;
            return Err(PutError::Reseal {
                index: top.index,
                reason: why.join("; "),
            });
        };
        let sealed = seal_segment(
            &self.head.file_key,
            self.head.prefix,
            top.index,
            true,
            plain,
            self.opts.codec.zstd_level,
        )?;
        info!(index = top.index, "sealing the file's final chunk as last");
        let placed = placer.place(sealed, (record, self.head.version)).await;
        settle_all(session, key, &placer.into_book()).await;
        let placed = placed?;
        self.record(&placed);
        Ok(placed)
    }

    /// Give the upload up. The reservations of every call are settled when
    /// it returns, so none is left; the chunks placed stay on their
    /// holders until freed. When the name holds no live file, a delete at
    /// the upload's version frees them now (it covers nothing else); when
    /// it does, such a delete would take the live file down too, so the
    /// nodes collect them after their grace instead.
    pub async fn abort(self, session: &Session, key: &UserKey) -> Result<AbortReport, PutError> {
        self.check_key(key)?;
        self.warm.settle(session, key, true).await;
        let chunks = self.placed();
        let mut report = AbortReport {
            chunks: chunks.len(),
            holders_told: 0,
        };
        if let Some(path) = &self.state_path {
            let _ = std::fs::remove_file(path);
        }
        if chunks.is_empty() {
            return Ok(report);
        }
        let handle = self.head.handle.clone();
        let root = records::get_file_record(session, &self.head.owner, &handle)
            .await
            .map_err(|e| lookup_failed(session, e))?;
        if root
            .as_ref()
            .is_some_and(|r| r.live_manifest().is_some() || r.newest_version() >= self.head.version)
        {
            info!(name = %self.head.name, "abort: the name holds a file; chunks left to collection");
            return Ok(report);
        }
        let _ = crate::table::known_nodes(session).await?;
        let mut by_record: BTreeMap<usize, Vec<&PlacedChunk>> = BTreeMap::new();
        for c in &chunks {
            by_record
                .entry(c.index as usize / ifs_core::wire::PAGE_CHUNKS)
                .or_default()
                .push(c);
        }
        let now = now_ms();
        for (page, group) in by_record {
            let name = match page {
                0 => handle.clone(),
                p => page_name(&handle, p),
            };
            let del = FileDelete::new(key, name, self.head.version, now);
            let tombstone = Tombstone::Delete(del).encode();
            let ids: Vec<ChunkId> = group.iter().map(|c| c.id).collect();
            let mut holders: Vec<_> = group
                .iter()
                .flat_map(|c| c.receipts.iter().map(|r| r.node))
                .collect();
            holders.sort();
            holders.dedup();
            for node in holders {
                let Ok(peer) = ifs_net::node_id_to_peer_id(&node) else {
                    continue;
                };
                let req = ifs_core::proto::CtlRequest::Forget {
                    tombstone: tombstone.clone(),
                    chunks: ids.clone(),
                };
                match session.request_to(peer, &req).await {
                    Ok(_) => report.holders_told += 1,
                    Err(e) => warn!(%peer, "abort: holder not told to free the chunks: {e}"),
                }
            }
        }
        Ok(report)
    }
}

/// A record lookup that failed, as a put error.
pub(crate) fn lookup_failed(session: &Session, e: crate::error::GetError) -> PutError {
    PutError::Session(ClientError::Request {
        peer: session.entry().to_string(),
        reason: e.to_string(),
    })
}

/// What one call's chunks must look like.
struct PartRules {
    ends_file: bool,
    keep_placed: bool,
}

/// The input of a part after its head: any length, or exactly as long
/// as the caller said.
enum Tail<R> {
    Any(R),
    Exact(Exact<R>),
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Tail::Any(r) => r.read(buf),
            Tail::Exact(r) => r.read(buf),
        }
    }
}

/// `inner`, which must hold exactly `left` more bytes: a read past them,
/// or an end before them, is an error rather than a part of another size.
pub(crate) struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R> Exact<R> {
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Exact { inner, left: len }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(Error::new(
                    ErrorKind::InvalidData,
                    "the part holds more bytes than its declared length",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "the part ended {} bytes short of its declared length",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Up to `segment + 1` bytes from the start of `input` (fewer only when it
/// ends first), and the rest of it; read off the async threads.
async fn read_head<R: Read + Send + 'static>(
    mut input: R,
    segment: usize,
) -> Result<(Vec<u8>, R), PutError> {
    tokio::task::spawn_blocking(move || {
        let mut head = Vec::new();
        (&mut input)
            .take(segment as u64 + 1)
            .read_to_end(&mut head)?;
        Ok((head, input))
    })
    .await
    .map_err(|e| ifs_core::CodecError::Read(std::io::Error::other(e)))?
    .map_err(|e| PutError::Codec(ifs_core::CodecError::Read(e)))
}
