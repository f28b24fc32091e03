//! [`Drive`]: the user's namespace as files and folders, over one session.
//! Every operation is an `ifs-client` call; the gateway's protocols map
//! their requests onto these.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use ifs_client::{
    ChildKind, DeadProp, FileInfo, GetError, GetOptions, LsOptions, NodeRtts, PutError, PutOptions,
    RangeReader, Segments, Session, Upload,
};
use ifs_core::ChunkId;
use ifs_core::keys::UserKey;
use ifs_core::name::validate_name;

/// Why a drive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// No such file or folder.
    #[error("not found: {0}")]
    NotFound(String),
    /// The target exists and may not be replaced.
    #[error("exists: {0}")]
    Exists(String),
    /// A name that breaks the name rule.
    #[error("bad name {name:?}: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Reading records or fetching failed.
    #[error(transparent)]
    Get(#[from] GetError),
    /// Storing failed.
    #[error(transparent)]
    Put(#[from] PutError),
    /// The local spool failed.
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    /// The drive's worker is gone.
    #[error("the gateway is stopping")]
    Stopped,
    /// No upload in progress under this id.
    #[error("no upload {0} in progress")]
    NoUpload(u64),
    /// A small file sent in a pack with others was not stored.
    #[error("storing failed: {0}")]
    Packed(String),
}

/// What one name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A folder (the top folder included).
    Folder,
    /// A file of this size and version.
    File {
        /// Plaintext size.
        size: u64,
        /// Manifest version.
        version: u64,
        /// When this version was written, ms since the Unix epoch (`None`
        /// for files only the old directory record lists).
        modified_ms: Option<u64>,
    },
}

impl Entry {
    /// What a listing row describes.
    pub fn of(f: &FileInfo) -> Entry {
        match f.kind {
            ChildKind::Folder => Entry::Folder,
            ChildKind::File => Entry::File {
                size: f.size,
                version: f.version,
                modified_ms: f.modified_ms,
            },
        }
    }
}

/// The user's files through one warm session, served by a worker thread
/// of its own: the client's futures are driven there, on a single-thread
/// runtime, and each call here sends it a job and awaits the answer. Jobs
/// run concurrently on that thread; the codec has threads of its own.
#[derive(Clone)]
pub struct Drive {
    jobs: mpsc::Sender<Job>,
    spool: Arc<tempfile::TempDir>,
    /// Changes made through this drive (any frontend), counted when each
    /// ends, failed or not: see [`Drive::writes`].
    writes: Arc<AtomicU64>,
}

type Job = Box<dyn FnOnce(Rc<Inner>) -> LocalBoxFuture<'static, ()> + Send>;

/// Jobs waiting for the worker.
const JOBS_QUEUED: usize = 256;

/// Pieces (up to a segment each) a range read hands over ahead of its
/// reader: with the chunks in flight in the client, all it buffers.
const PIECES_QUEUED: usize = 1;

/// How long round trips measured for reads are reused before the nodes
/// are probed again.
const RTTS_FRESH: Duration = Duration::from_secs(60);

/// What the worker holds.
struct Inner {
    session: Session,
    key: UserKey,
    replicas: usize,
    spool: PathBuf,
    /// Uploads in progress (S3 multipart), by id.
    uploads: RefCell<HashMap<u64, Arc<Upload>>>,
    /// The id the next upload gets.
    next_upload: Cell<u64>,
    /// Round trips to the nodes, shared by every read, and when measured.
    rtts: RefCell<Option<(Instant, Arc<NodeRtts>)>>,
    /// The worker's own handle, for the task that sends small files.
    me: std::rc::Weak<Inner>,
    /// Small files waiting to go out together as one pack.
    small: RefCell<Vec<SmallPut>>,
    /// Whether a task is sending small files now.
    small_busy: Cell<bool>,
    /// Sends them, through a table kept warm between batches.
    small_files: ifs_client::SmallFiles,
}

/// A small file waiting for the next pack, and who waits for its version.
struct SmallPut {
    name: String,
    data: Vec<u8>,
    done: oneshot::Sender<Result<u64, DriveError>>,
}

/// Small files one pack of the gateway's takes at most.
const SMALL_PER_PACK: usize = 512;

/// The bytes of one range of a file, in order, as they arrive from the
/// network (see [`Drive::read_range`]). Dropping it stops the read.
pub struct RangeRead {
    /// The file's size.
    pub size: u64,
    /// The manifest version being read.
    pub version: u64,
    /// The first byte served.
    pub offset: u64,
    /// Bytes the stream yields: the range asked for, cut at the end of
    /// the file.
    pub len: u64,
    pieces: mpsc::Receiver<Result<Bytes, DriveError>>,
}

impl std::fmt::Debug for RangeRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeRead")
            .field("size", &self.size)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl Stream for RangeRead {
    type Item = Result<Bytes, DriveError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.pieces.poll_recv(cx)
    }
}

/// What a range read reports once its file is open: size, version, and
/// the length it will serve.
type Opened = Result<(u64, u64, u64), DriveError>;

impl Drive {
    /// A drive over `session` as `key`, putting `replicas` copies, with
    /// its spool (whole files between HTTP and the network) in a fresh
    /// temp dir.
    pub fn new(session: Session, key: UserKey, replicas: usize) -> Result<Drive, DriveError> {
        let spool = Arc::new(tempfile::Builder::new().prefix("ifs-gateway-").tempdir()?);
        let (jobs, mut rx) = mpsc::channel::<Job>(JOBS_QUEUED);
        let spool_path = spool.path().to_path_buf();
        let make = move |me: &std::rc::Weak<Inner>| Inner {
            session,
            key,
            replicas: replicas.max(1),
            spool: spool_path,
            uploads: RefCell::new(HashMap::new()),
            next_upload: Cell::new(1),
            rtts: RefCell::new(None),
            me: me.clone(),
            small: RefCell::new(Vec::new()),
            small_busy: Cell::new(false),
            small_files: ifs_client::SmallFiles::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("ifs-drive".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                let inner = Rc::new_cyclic(make);
                local.block_on(&rt, async move {
                    while let Some(job) = rx.recv().await {
                        tokio::task::spawn_local(job(inner.clone()));
                    }
                    // The drive is dropped: give back what the warm table holds.
                    inner.small_files.close(&inner.session, &inner.key).await;
                });
            })?;
        Ok(Drive {
            jobs,
            spool,
            writes: Arc::default(),
        })
    }

    /// Run `f` on the worker and wait for its answer.
    async fn run<T, F>(&self, f: F) -> Result<T, DriveError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Inner) -> LocalBoxFuture<'a, Result<T, DriveError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |inner: Rc<Inner>| {
            async move {
                let out = f(&inner).await;
                let _ = tx.send(out);
            }
            .boxed_local()
        });
        self.jobs.send(job).await.map_err(|_| DriveError::Stopped)?;
        rx.await.map_err(|_| DriveError::Stopped)?
    }

    /// [`Drive::run`] for a call that may change files or folders: the
    /// change count goes up when it ends on the worker, whether it worked
    /// or not (a failed change may have made part of its change) and
    /// whether its caller still waits or not (a request whose client went
    /// away still finishes its change).
    async fn run_write<T, F>(&self, f: F) -> Result<T, DriveError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Inner) -> LocalBoxFuture<'a, Result<T, DriveError>> + Send + 'static,
    {
        let writes = Arc::clone(&self.writes);
        self.run(move |d: &Inner| {
            let change = f(d);
            async move {
                let out = change.await;
                writes.fetch_add(1, Ordering::SeqCst);
                out
            }
            .boxed_local()
        })
        .await
    }

    /// How many changes made through this drive have ended. A listing
    /// taken when this read `n` still holds while it reads `n`, but for
    /// changes made elsewhere (another client of the same user).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// A fresh spool file.
    pub fn spool_file(&self) -> Result<tempfile::NamedTempFile, DriveError> {
        Ok(tempfile::NamedTempFile::new_in(self.spool.path())?)
    }

    /// Check a path from a request: "" (the top) or a valid name.
    pub fn checked(name: &str) -> Result<String, DriveError> {
        Inner::checked(name)
    }

    /// The live children of folder `name` ("" for the top).
    pub async fn list(&self, name: &str) -> Result<Vec<FileInfo>, DriveError> {
        let name = name.to_string();
        self.run(move |d| async move { d.list(&name).await }.boxed_local())
            .await
    }

    /// Every live file and folder below folder `name`, at any depth.
    pub async fn list_all(&self, name: &str) -> Result<Vec<FileInfo>, DriveError> {
        let name = name.to_string();
        self.run(move |d| async move { d.list_all(&name).await }.boxed_local())
            .await
    }

    /// What `name` is.
    pub async fn stat(&self, name: &str) -> Result<Entry, DriveError> {
        let name = name.to_string();
        self.run(move |d| async move { d.stat(&name).await }.boxed_local())
            .await
    }

    /// Fetch file `name` into a spool file.
    pub async fn fetch(&self, name: &str) -> Result<tempfile::NamedTempFile, DriveError> {
        let name = name.to_string();
        self.run(move |d| async move { d.fetch(&name).await }.boxed_local())
            .await
    }

    /// Read bytes `[offset, offset + len)` of file `name` as a stream,
    /// fetching only the chunks that hold them (`len` may run past the
    /// end, even `u64::MAX` for "to the end": the range is cut there).
    /// Returns once the file is open, so a missing file or a range that
    /// starts past the end fails here, before any byte: the latter as
    /// `DriveError::Get(GetError::RangeNotSatisfiable { .. })`. Memory
    /// stays at a few chunks whatever the length.
    pub async fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<RangeRead, DriveError> {
        let name = name.to_string();
        let (opened_tx, opened) = oneshot::channel::<Opened>();
        let (tx, pieces) = mpsc::channel(PIECES_QUEUED);
        let job: Job = Box::new(move |inner: Rc<Inner>| {
            async move { inner.read_range(&name, offset, len, opened_tx, tx).await }.boxed_local()
        });
        self.jobs.send(job).await.map_err(|_| DriveError::Stopped)?;
        let (size, version, len) = opened.await.map_err(|_| DriveError::Stopped)??;
        Ok(RangeRead {
            size,
            version,
            offset,
            len,
            pieces,
        })
    }

    /// Store the local file at `path` as `name`; the version written.
    pub async fn store(&self, name: &str, path: &Path) -> Result<u64, DriveError> {
        let (name, path) = (name.to_string(), path.to_path_buf());
        self.run_write(move |d| async move { d.store(&name, &path).await }.boxed_local())
            .await
    }

    /// Delete file `name`.
    pub async fn remove_file(&self, name: &str) -> Result<(), DriveError> {
        let name = name.to_string();
        self.run_write(move |d| async move { d.remove_file(&name).await }.boxed_local())
            .await
    }

    /// Make folder `name`.
    pub async fn make_folder(&self, name: &str) -> Result<(), DriveError> {
        let name = name.to_string();
        self.run_write(move |d| async move { d.make_folder(&name).await }.boxed_local())
            .await
    }

    /// Remove folder `name`'s entry.
    pub async fn remove_folder(&self, name: &str) -> Result<(), DriveError> {
        let name = name.to_string();
        self.run_write(move |d| async move { d.remove_folder(&name).await }.boxed_local())
            .await
    }

    /// Copy file `from` to `to`.
    pub async fn copy_file(&self, from: &str, to: &str) -> Result<(), DriveError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.run_write(move |d| async move { d.copy_file(&from, &to).await }.boxed_local())
            .await
    }

    /// Move file or folder `from` to `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DriveError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.run_write(move |d| async move { d.rename(&from, &to).await }.boxed_local())
            .await
    }

    /// The properties a client set on file or folder `name` (WebDAV's
    /// dead properties); `NotFound` when there is no such file or folder.
    pub async fn props(&self, name: &str) -> Result<Vec<DeadProp>, DriveError> {
        let name = name.to_string();
        self.run(move |d| {
            async move { d.props(&name).await?.ok_or(DriveError::NotFound(name)) }.boxed_local()
        })
        .await
    }

    /// Set (`true`) or remove (`false`) properties of file or folder
    /// `name`, in order; all or nothing.
    pub async fn patch_props(
        &self,
        name: &str,
        patch: Vec<(DeadProp, bool)>,
    ) -> Result<(), DriveError> {
        let name = name.to_string();
        self.run_write(move |d| {
            async move { Ok(ifs_client::patch_props(&d.session, &d.key, &name, patch).await?) }
                .boxed_local()
        })
        .await
    }
}

/// Uploads a file in parts ([`Drive::upload_begin`] … [`Drive::upload_commit`]).
impl Drive {
    /// Begin uploading `name` in segments of `segment_size` bytes: chunks
    /// are bound to the name's next version; nothing is listed until the
    /// commit. Returns the upload's id.
    pub async fn upload_begin(&self, name: &str, segment_size: u64) -> Result<u64, DriveError> {
        let name = name.to_string();
        self.run(move |d| {
            async move {
                let mut opts = PutOptions::new(&name);
                opts.replicas = d.replicas;
                opts.codec.segment_size = segment_size as usize;
                let up = Upload::begin(&d.session, &d.key, opts).await?;
                let id = d.next_upload.get();
                d.next_upload.set(id + 1);
                d.uploads.borrow_mut().insert(id, Arc::new(up));
                Ok(id)
            }
            .boxed_local()
        })
        .await
    }

    /// Place the `size` bytes read from `data` (exactly that many, or the
    /// part fails) as the segments from `first_index` on, sealing the
    /// final one as the file's last when `last`; a part placed before at
    /// these indices is replaced. The ids of the chunks placed, in order.
    pub async fn upload_part<R: std::io::Read + Send + 'static>(
        &self,
        id: u64,
        first_index: u32,
        data: R,
        size: u64,
        last: bool,
    ) -> Result<Vec<ChunkId>, DriveError> {
        self.run(move |d| {
            async move {
                let up = d.upload(id)?;
                let part = Segments {
                    first_index,
                    data,
                    size_hint: Some(size),
                    exact_size: true,
                    last,
                    keep_placed: false,
                };
                let placed = up.put_segments(&d.session, &d.key, part).await?;
                Ok(placed.into_iter().map(|c| c.id).collect())
            }
            .boxed_local()
        })
        .await
    }

    /// Commit upload `id` as a file of `size` bytes: its manifest and its
    /// folder entry. The upload ends whether it succeeds or not.
    pub async fn upload_commit(&self, id: u64, size: u64) -> Result<(), DriveError> {
        self.run_write(move |d| {
            async move {
                let up = d.upload(id)?;
                // A write of the name that committed meanwhile would
                // leave these chunks bound below the live version.
                let done = match up.check_current(&d.session, &d.key).await {
                    Ok(()) => up.commit(&d.session, &d.key, size).await,
                    Err(e) => Err(e),
                };
                if done.is_ok() {
                    d.uploads.borrow_mut().remove(&id);
                }
                done?;
                Ok(())
            }
            .boxed_local()
        })
        .await
    }

    /// Give upload `id` up: its placed chunks are freed (or left to the
    /// nodes' collection when the name holds a live file).
    pub async fn upload_abort(&self, id: u64) -> Result<(), DriveError> {
        self.run(move |d| {
            async move {
                let up = d
                    .uploads
                    .borrow_mut()
                    .remove(&id)
                    .ok_or(DriveError::NoUpload(id))?;
                // A part still being placed holds the upload too: then its
                // chunks are left to the nodes' collection.
                if let Ok(up) = Arc::try_unwrap(up) {
                    up.abort(&d.session, &d.key).await?;
                }
                Ok(())
            }
            .boxed_local()
        })
        .await
    }
}

/// A file that is not there as [`DriveError::NotFound`].
fn not_found(e: GetError) -> DriveError {
    match e {
        GetError::NotFound(n) => DriveError::NotFound(n),
        e => e.into(),
    }
}

impl Inner {
    fn upload(&self, id: u64) -> Result<Arc<Upload>, DriveError> {
        self.uploads
            .borrow()
            .get(&id)
            .cloned()
            .ok_or(DriveError::NoUpload(id))
    }

    fn spool_file(&self) -> Result<tempfile::NamedTempFile, DriveError> {
        Ok(tempfile::NamedTempFile::new_in(&self.spool)?)
    }

    fn checked(name: &str) -> Result<String, DriveError> {
        let name = name.trim_matches('/');
        if !name.is_empty()
            && let Err(e) = validate_name(name)
        {
            return Err(DriveError::BadName {
                name: name.to_string(),
                reason: e.to_string(),
            });
        }
        Ok(name.to_string())
    }

    /// The live children of folder `name` ("" for the top).
    async fn list(&self, name: &str) -> Result<Vec<FileInfo>, DriveError> {
        let opts = LsOptions {
            prefix: name.to_string(),
            recursive: false,
            replicas: false,
        };
        Ok(ifs_client::ls(&self.session, &self.key, &opts).await?)
    }

    /// Every live file and folder below folder `name`.
    async fn list_all(&self, name: &str) -> Result<Vec<FileInfo>, DriveError> {
        let opts = LsOptions {
            prefix: name.to_string(),
            recursive: true,
            replicas: false,
        };
        Ok(ifs_client::ls(&self.session, &self.key, &opts).await?)
    }

    /// What `name` is: read from its parent's listing.
    async fn stat(&self, name: &str) -> Result<Entry, DriveError> {
        if name.is_empty() {
            return Ok(Entry::Folder);
        }
        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
        let found = self
            .list(parent)
            .await?
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| DriveError::NotFound(name.to_string()))?;
        Ok(Entry::of(&found))
    }

    /// Fetch file `name` into a spool file.
    async fn fetch(&self, name: &str) -> Result<tempfile::NamedTempFile, DriveError> {
        let tmp = self.spool_file()?;
        let file = Arc::new(tmp.reopen()?);
        ifs_client::get_to_file(
            &self.session,
            &self.key,
            None,
            name,
            file,
            GetOptions::default(),
        )
        .await?;
        Ok(tmp)
    }

    /// Round trips to the nodes for reads, measured at most every
    /// [`RTTS_FRESH`]; `None` when the probe failed (each read then
    /// probes the holders it needs).
    async fn rtts(&self) -> Option<Arc<NodeRtts>> {
        if let Some((at, r)) = &*self.rtts.borrow()
            && at.elapsed() < RTTS_FRESH
        {
            return Some(r.clone());
        }
        match ifs_client::probe_nodes(&self.session).await {
            Ok(r) => {
                let r = Arc::new(r);
                *self.rtts.borrow_mut() = Some((Instant::now(), r.clone()));
                Some(r)
            }
            Err(e) => {
                debug!("probing the nodes for reads failed: {e}");
                None
            }
        }
    }

    /// Open `name`, say so on `opened`, then send the bytes of the range
    /// on `pieces` until done, failed, or nobody listens.
    async fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        opened: oneshot::Sender<Opened>,
        pieces: mpsc::Sender<Result<Bytes, DriveError>>,
    ) {
        let opts = GetOptions {
            rtts: self.rtts().await,
            ..GetOptions::default()
        };
        let reader = match RangeReader::open(&self.session, &self.key, None, name, &opts).await {
            Ok(r) => r,
            Err(e) => {
                let _ = opened.send(Err(not_found(e)));
                return;
            }
        };
        {
            let (len, stream) = match reader.read(offset, len) {
                Ok(s) => s,
                Err(e) => {
                    let _ = opened.send(Err(e.into()));
                    return;
                }
            };
            if opened
                .send(Ok((reader.size(), reader.version(), len)))
                .is_err()
            {
                return;
            }
            let mut stream = std::pin::pin!(stream);
            while let Some(piece) = stream.next().await {
                let failed = piece.is_err();
                let piece = piece.map(Bytes::from).map_err(DriveError::from);
                if pieces.send(piece).await.is_err() || failed {
                    break;
                }
            }
        }
        let report = reader.finish().await;
        debug!(
            name,
            offset,
            chunks = report.chunks_fetched,
            pages = report.pages_loaded,
            "range read"
        );
    }

    /// Store the local file at `path` as `name` (a new version if it
    /// exists); the version written. A small file waits for the next pack
    /// (see [`Inner::send_small`]) instead of being put alone.
    async fn store(&self, name: &str, path: &Path) -> Result<u64, DriveError> {
        let file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        if size <= ifs_client::pack::PACK_SMALL {
            let data = std::fs::read(path)?;
            if data.len() as u64 <= ifs_client::pack::PACK_SMALL {
                return self.store_small(name, data).await;
            }
        }
        let mut opts = PutOptions::new(name);
        opts.replicas = self.replicas;
        opts.size_hint = Some(size);
        Ok(ifs_client::put(&self.session, &self.key, file, opts)
            .await?
            .version)
    }

    /// Queue a small file for the next pack and wait until it is listed.
    async fn store_small(&self, name: &str, data: Vec<u8>) -> Result<u64, DriveError> {
        let (done, rx) = oneshot::channel();
        self.small.borrow_mut().push(SmallPut {
            name: name.to_string(),
            data,
            done,
        });
        if !self.small_busy.replace(true)
            && let Some(me) = self.me.upgrade()
        {
            tokio::task::spawn_local(async move { me.send_small().await });
        }
        rx.await.map_err(|_| DriveError::Stopped)?
    }

    /// Send the small files waiting, as packs of up to
    /// [`SMALL_PER_PACK`], until none waits: files that arrive while one
    /// pack is on its way go out together in the next (a group commit,
    /// so a busy gateway sends fewer, larger packs, and an idle one sends
    /// a file as soon as it arrives).
    async fn send_small(&self) {
        loop {
            let batch: Vec<SmallPut> = {
                let mut waiting = self.small.borrow_mut();
                let n = waiting.len().min(SMALL_PER_PACK);
                waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                self.small_busy.set(false);
                return;
            }
            // A name twice in one pack: the later one is the newer.
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            let mut waiters = Vec::new();
            for p in batch {
                if let Some(i) = files.iter().position(|(n, _)| *n == p.name) {
                    files[i].1 = p.data;
                } else {
                    files.push((p.name.clone(), p.data));
                }
                waiters.push((p.name, p.done));
            }
            let opts = ifs_client::TreeOptions {
                replicas: self.replicas,
                ..ifs_client::TreeOptions::default()
            };
            let result = self
                .small_files
                .put(&self.session, &self.key, files.clone(), &opts)
                .await;
            let outcome: HashMap<String, Result<u64, String>> = match result {
                Ok(each) => files.into_iter().map(|(n, _)| n).zip(each).collect(),
                Err(e) => {
                    let why = e.to_string();
                    files
                        .into_iter()
                        .map(|(n, _)| (n, Err(why.clone())))
                        .collect()
                }
            };
            for (name, done) in waiters {
                let r = match outcome.get(&name) {
                    Some(Ok(v)) => Ok(*v),
                    Some(Err(why)) => Err(DriveError::Packed(why.clone())),
                    None => Err(DriveError::Packed("not sent".into())),
                };
                let _ = done.send(r);
            }
        }
    }

    /// Delete file `name`.
    async fn remove_file(&self, name: &str) -> Result<(), DriveError> {
        ifs_client::rm(&self.session, &self.key, name)
            .await
            .map(|_| ())
            .map_err(not_found)
    }

    /// Make folder `name` (its parent must exist).
    async fn make_folder(&self, name: &str) -> Result<(), DriveError> {
        Ok(ifs_client::make_folder(&self.session, &self.key, name).await?)
    }

    /// Remove folder `name`'s entry (its files are removed by the caller).
    async fn remove_folder(&self, name: &str) -> Result<(), DriveError> {
        if ifs_client::remove_folder(&self.session, &self.key, name).await? {
            Ok(())
        } else {
            Err(DriveError::NotFound(name.to_string()))
        }
    }

    /// Copy file `from` to `to` (through the spool: a new file with its
    /// own key and chunks).
    async fn copy_file(&self, from: &str, to: &str) -> Result<(), DriveError> {
        let props = self.props_to_carry(from).await?;
        self.copy_file_with(from, to, props).await
    }

    /// [`Self::copy_file`] of a file whose properties, `props`, the caller
    /// has already read.
    async fn copy_file_with(
        &self,
        from: &str,
        to: &str,
        props: Vec<DeadProp>,
    ) -> Result<(), DriveError> {
        // A packed file is copied by naming its slice again.
        if !ifs_client::link_packed(&self.session, &self.key, from, to, false).await? {
            let tmp = self.fetch(from).await?;
            self.store(to, tmp.path()).await?;
        }
        self.carry_props(to, props).await
    }

    /// The properties of file or folder `name`; `None` when it has no
    /// entry to hold them (as a folder only its files imply).
    async fn props(&self, name: &str) -> Result<Option<Vec<DeadProp>>, DriveError> {
        Ok(ifs_client::props(&self.session, &self.key, name).await?)
    }

    /// The properties to carry from `name` to a copy of it.
    async fn props_to_carry(&self, name: &str) -> Result<Vec<DeadProp>, DriveError> {
        Ok(self.props(name).await?.unwrap_or_default())
    }

    /// Give `to` the properties `props` (those of what it was copied or
    /// moved from).
    async fn carry_props(&self, to: &str, props: Vec<DeadProp>) -> Result<(), DriveError> {
        if props.is_empty() {
            return Ok(());
        }
        let patch = props.into_iter().map(|p| (p, true)).collect();
        Ok(ifs_client::patch_props(&self.session, &self.key, to, patch).await?)
    }

    /// Move `from` to `to`: a file is copied, then deleted; a folder has
    /// every file below it moved, then its folders made and removed.
    async fn rename(&self, from: &str, to: &str) -> Result<(), DriveError> {
        match self.stat(from).await? {
            Entry::File { .. } => {
                let props = self.props_to_carry(from).await?;
                if ifs_client::link_packed(&self.session, &self.key, from, to, true).await? {
                    return self.carry_props(to, props).await;
                }
                self.copy_file_with(from, to, props).await?;
                self.remove_file(from).await
            }
            Entry::Folder => {
                let props = self.props_to_carry(from).await?;
                self.make_folder(to).await?;
                self.carry_props(to, props).await?;
                let below = self.list_all(from).await?;
                let moved = |n: &str| format!("{to}{}", &n[from.len()..]);
                for f in below.iter().filter(|f| f.kind == ChildKind::Folder) {
                    self.make_folder(&moved(&f.name)).await?;
                    self.carry_props(&moved(&f.name), f.props.clone()).await?;
                }
                for f in below.iter().filter(|f| f.kind == ChildKind::File) {
                    let to = moved(&f.name);
                    if ifs_client::link_packed(&self.session, &self.key, &f.name, &to, true).await?
                    {
                        self.carry_props(&to, f.props.clone()).await?;
                    } else {
                        self.copy_file_with(&f.name, &to, f.props.clone()).await?;
                        self.remove_file(&f.name).await?;
                    }
                }
                let mut folders: Vec<&FileInfo> = below
                    .iter()
                    .filter(|f| f.kind == ChildKind::Folder)
                    .collect();
                folders.sort_by_key(|f| std::cmp::Reverse(f.name.matches('/').count()));
                for f in folders {
                    self.remove_folder(&f.name).await?;
                }
                self.remove_folder(from).await
            }
        }
    }
}
