//! [`IfsFs`]: `dav-server`'s `GuardedFileSystem` over a [`Drive`]. Paths
//! from requests are checked with the name rule before they reach the
//! drive.
//!
//! A file opened for reading streams from the network as it is read
//! ([`Drive::read_range`]): nothing is fetched until the first read, a
//! seek starts a new range, and the request's `Range` header (handed in
//! as the [`ReadHint`]) says where each range ends, so a Range GET fetches
//! only the chunks holding its bytes and a whole GET holds a few chunks
//! in memory, never the file. A file opened for writing collects the body
//! in the spool and is put when the handler flushes it.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavMetaData, DavProp, FsError, FsFuture, FsResult, FsStream,
    GuardedFileSystem, OpenOptions, ReadDirMeta,
};
use futures::{FutureExt, StreamExt};
use http::StatusCode;
use ifs_client::DeadProp;
use tracing::warn;

use crate::drive::{Drive, DriveError, Entry, RangeRead};

/// The WebDAV view of a drive.
#[derive(Clone)]
pub struct IfsFs {
    drive: Drive,
    /// The properties of the children of the folder listed last, so a
    /// PROPFIND of a folder that asks for properties the drive does not
    /// compute (as clients do) reads no record per child.
    listed: Arc<Mutex<Option<Listed>>>,
}

/// Properties of the children of one folder, by full name, as listed at
/// `at`.
struct Listed {
    at: Instant,
    props: HashMap<String, Vec<DeadProp>>,
}

/// How long a listing's properties stand in for reading them again. Every
/// change made through this filesystem forgets them at once; this bounds
/// how long a change made through another gateway goes unseen.
const LISTED_FRESH: Duration = Duration::from_secs(2);

impl IfsFs {
    /// A filesystem over `drive`.
    pub fn new(drive: Drive) -> Box<IfsFs> {
        Box::new(IfsFs {
            drive,
            listed: Arc::default(),
        })
    }

    /// Forget the listed properties (after any change).
    fn forget(&self) {
        if let Ok(mut l) = self.listed.lock() {
            *l = None;
        }
    }

    /// The properties of `path`, from the last listing when it is fresh.
    async fn props_of(&self, path: &DavPath) -> FsResult<Vec<DeadProp>> {
        let name = name_of(path)?;
        if name.is_empty() {
            // The top folder has no entry to hold properties.
            return Ok(Vec::new());
        }
        let cached = self.listed.lock().ok().and_then(|l| {
            l.as_ref()
                .filter(|l| l.at.elapsed() < LISTED_FRESH)
                .and_then(|l| l.props.get(&name).cloned())
        });
        match cached {
            Some(p) => Ok(p),
            None => self.drive.props(&name).await.map_err(fs_error),
        }
    }

    async fn patch(
        &self,
        path: &DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsResult<Vec<(StatusCode, DavProp)>> {
        let name = name_of(path)?;
        let all = |code: StatusCode, patch: Vec<(bool, DavProp)>| {
            patch
                .into_iter()
                .map(|(_, p)| (code, without_value(p)))
                .collect()
        };
        if name.is_empty() {
            return Ok(all(StatusCode::FORBIDDEN, patch));
        }
        let wanted = patch
            .iter()
            .map(|(set, p)| (dead_prop(p, *set), *set))
            .collect();
        self.forget();
        match self.drive.patch_props(&name, wanted).await {
            Ok(()) => Ok(all(StatusCode::OK, patch)),
            Err(DriveError::Get(ifs_client::GetError::TooManyProps(_))) => {
                Ok(all(StatusCode::INSUFFICIENT_STORAGE, patch))
            }
            Err(e) => Err(fs_error(e)),
        }
    }
}

/// A property as stored: the value only when it is set.
fn dead_prop(p: &DavProp, set: bool) -> DeadProp {
    DeadProp {
        namespace: p.namespace.clone(),
        prefix: p.prefix.clone(),
        name: p.name.clone(),
        xml: if set {
            p.xml.clone().map(serde_bytes::ByteBuf::from)
        } else {
            None
        },
    }
}

/// A stored property for `dav-server`, with its value when `content`.
fn dav_prop(p: DeadProp, content: bool) -> DavProp {
    DavProp {
        name: p.name,
        prefix: p.prefix,
        namespace: p.namespace,
        xml: if content {
            p.xml.map(serde_bytes::ByteBuf::into_vec)
        } else {
            None
        },
    }
}

fn without_value(p: DavProp) -> DavProp {
    DavProp { xml: None, ..p }
}

fn fs_error(e: DriveError) -> FsError {
    match e {
        DriveError::NotFound(_) => FsError::NotFound,
        DriveError::Get(ifs_client::GetError::RangeNotSatisfiable { .. }) => {
            FsError::GeneralFailure
        }
        DriveError::Exists(_) => FsError::Exists,
        DriveError::BadName { .. } => FsError::Forbidden,
        DriveError::Get(ifs_client::GetError::NotFound(_)) => FsError::NotFound,
        other => {
            warn!("webdav: {other}");
            FsError::GeneralFailure
        }
    }
}

/// The drive name of a request path ("" for the top folder).
fn name_of(path: &DavPath) -> FsResult<String> {
    let rel = path.as_rel_ospath();
    let s = rel.to_str().ok_or(FsError::Forbidden)?;
    Drive::checked(s).map_err(fs_error)
}

/// Metadata of a file or folder.
#[derive(Clone, Debug)]
struct Meta {
    len: u64,
    dir: bool,
    /// Files: their manifest version (the etag changes with it).
    version: u64,
    /// When the version was written (the Unix epoch when unknown).
    modified: SystemTime,
}

impl Meta {
    fn of(e: Entry) -> Meta {
        match e {
            Entry::Folder => Meta {
                len: 0,
                dir: true,
                version: 0,
                modified: UNIX_EPOCH,
            },
            Entry::File {
                size,
                version,
                modified_ms,
            } => Meta {
                len: size,
                dir: false,
                version,
                modified: UNIX_EPOCH + Duration::from_millis(modified_ms.unwrap_or(0)),
            },
        }
    }
}

impl DavMetaData for Meta {
    fn len(&self) -> u64 {
        self.len
    }
    fn modified(&self) -> FsResult<SystemTime> {
        Ok(self.modified)
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn etag(&self) -> Option<String> {
        (!self.dir).then(|| format!("{:x}-{:x}", self.version, self.len))
    }
}

/// One child in a listing.
struct Child {
    name: Vec<u8>,
    meta: Meta,
}

impl DavDirEntry for Child {
    fn name(&self) -> Vec<u8> {
        self.name.clone()
    }
    fn metadata(&'_ self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures::future::ready(Ok(m)).boxed()
    }
}

/// An open file: a spooled copy, and for writes the name to put it as.
#[derive(Debug)]
struct SpoolFile {
    drive: Drive,
    tmp: tempfile::NamedTempFile,
    /// Set for writes: the name the spool is put as on flush.
    write_as: Option<String>,
    dirty: bool,
    meta: Meta,
}

impl std::fmt::Debug for Drive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Drive")
    }
}

fn io(e: std::io::Error) -> FsError {
    warn!("webdav spool: {e}");
    FsError::GeneralFailure
}

impl DavFile for SpoolFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let mut m = self.meta.clone();
        if let Ok(md) = self.tmp.as_file().metadata() {
            m.len = md.len();
        }
        let m: Box<dyn DavMetaData> = Box::new(m);
        futures::future::ready(Ok(m)).boxed()
    }

    fn write_buf(&'_ mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        async move {
            while buf.has_remaining() {
                let chunk = buf.chunk();
                let n = chunk.len();
                self.tmp.as_file_mut().write_all(chunk).map_err(io)?;
                buf.advance(n);
            }
            self.dirty = true;
            Ok(())
        }
        .boxed()
    }

    fn write_bytes(&'_ mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move {
            self.tmp.as_file_mut().write_all(&buf).map_err(io)?;
            self.dirty = true;
            Ok(())
        }
        .boxed()
    }

    fn read_bytes(&'_ mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            let mut buf = vec![0u8; count.min(1 << 20)];
            let n = self.tmp.as_file_mut().read(&mut buf).map_err(io)?;
            buf.truncate(n);
            Ok(Bytes::from(buf))
        }
        .boxed()
    }

    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        async move { self.tmp.as_file_mut().seek(pos).map_err(io) }.boxed()
    }

    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        async move {
            let Some(name) = self.write_as.clone() else {
                return Ok(());
            };
            if !self.dirty && self.meta.version != 0 {
                return Ok(());
            }
            self.tmp.as_file_mut().flush().map_err(io)?;
            self.drive
                .store(&name, self.tmp.path())
                .await
                .map_err(fs_error)?;
            self.dirty = false;
            self.meta.version = self.meta.version.max(1);
            Ok(())
        }
        .boxed()
    }
}

/// One range of a `Range: bytes=…` header, as asked (before the file's
/// size is known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    /// `first-last` (inclusive) or `first-` (`None`: to the end).
    From(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Where the ranges a GET asks for end, from its `Range` header: a file
/// opened for reading stops each stream there instead of reading ahead to
/// the end of the file. Only a hint: reads past it are served all the same.
#[derive(Clone, Debug, Default)]
pub struct ReadHint(Arc<[Wanted]>);

impl ReadHint {
    /// The hint of a request with this `Range` header value (none for a
    /// header that is absent or not `bytes=` ranges).
    pub fn from_range(header: Option<&str>) -> ReadHint {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return ReadHint::default();
        };
        let mut out = Vec::new();
        for part in spec.split(',') {
            let Some((a, b)) = part.trim().split_once('-') else {
                return ReadHint::default();
            };
            let (a, b) = (a.trim(), b.trim());
            let w = match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => Wanted::From(a, Some(b)),
                (Ok(a), Err(_)) if b.is_empty() => Wanted::From(a, None),
                (Err(_), Ok(n)) if a.is_empty() => Wanted::Suffix(n),
                _ => return ReadHint::default(),
            };
            out.push(w);
        }
        ReadHint(out.into())
    }

    /// Where a read starting at `pos` of a file of `size` bytes can stop:
    /// the end of the asked range that starts there, else the file's end.
    fn end_from(&self, pos: u64, size: u64) -> u64 {
        self.0
            .iter()
            .find_map(|w| {
                let (first, end) = match *w {
                    Wanted::From(a, b) => (a, b.map_or(size, |b| b.saturating_add(1))),
                    Wanted::Suffix(n) => (size.saturating_sub(n), size),
                };
                (first == pos && end > pos).then_some(end.min(size))
            })
            .unwrap_or(size)
    }
}

/// A file open for reading: a stream of the range being read, opened at
/// the first read and again after a seek elsewhere.
#[derive(Debug)]
struct ReadFile {
    drive: Drive,
    name: String,
    meta: Meta,
    hint: ReadHint,
    pos: u64,
    stream: Option<Streaming>,
    /// The version the first range read, which later ones must match.
    version: Option<u64>,
}

/// The range being streamed: bytes up to `at` have been taken from it;
/// `pending` are the next ones.
#[derive(Debug)]
struct Streaming {
    read: RangeRead,
    at: u64,
    pending: Bytes,
}

impl ReadFile {
    /// The next bytes from `pos`, at most `count`; empty at the end.
    async fn next_bytes(&mut self, count: usize) -> FsResult<Bytes> {
        let size = self.meta.len;
        loop {
            if self.pos >= size || count == 0 {
                return Ok(Bytes::new());
            }
            let at_pos = self.stream.as_ref().is_some_and(|s| s.at == self.pos);
            if !at_pos {
                let end = self.hint.end_from(self.pos, size);
                let read = self
                    .drive
                    .read_range(&self.name, self.pos, end - self.pos)
                    .await
                    .map_err(fs_error)?;
                if *self.version.get_or_insert(read.version) != read.version {
                    // Replaced between two ranges: no mixing of versions.
                    warn!(name = %self.name, "webdav: the file changed while it was read");
                    return Err(FsError::GeneralFailure);
                }
                self.stream = Some(Streaming {
                    read,
                    at: self.pos,
                    pending: Bytes::new(),
                });
            }
            let Some(s) = self.stream.as_mut() else {
                continue;
            };
            if s.pending.is_empty() {
                match s.read.next().await {
                    Some(Ok(b)) => s.pending = b,
                    Some(Err(e)) => {
                        self.stream = None;
                        return Err(fs_error(e));
                    }
                    None => {
                        // This range is done; a read beyond it opens the next.
                        self.stream = None;
                        if self.pos >= size {
                            return Ok(Bytes::new());
                        }
                    }
                }
                continue;
            }
            let n = count.min(s.pending.len());
            let out = s.pending.split_to(n);
            s.at += n as u64;
            self.pos += n as u64;
            return Ok(out);
        }
    }
}

impl DavFile for ReadFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures::future::ready(Ok(m)).boxed()
    }

    fn write_buf(&'_ mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn write_bytes(&'_ mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn read_bytes(&'_ mut self, count: usize) -> FsFuture<'_, Bytes> {
        self.next_bytes(count).boxed()
    }

    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let len = self.meta.len;
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let r = match to {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(FsError::GeneralFailure),
        };
        futures::future::ready(r).boxed()
    }

    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }
}

impl IfsFs {
    async fn open_file(
        &self,
        path: &DavPath,
        options: OpenOptions,
        hint: &ReadHint,
    ) -> FsResult<Box<dyn DavFile>> {
        let name = name_of(path)?;
        if name.is_empty() {
            return Err(FsError::Forbidden);
        }
        let existing = match self.drive.stat(&name).await {
            Ok(e) => Some(e),
            Err(DriveError::NotFound(_)) => None,
            Err(e) => return Err(fs_error(e)),
        };
        if existing == Some(Entry::Folder) {
            return Err(FsError::Forbidden);
        }
        if !options.write {
            let Some(e) = existing else {
                return Err(FsError::NotFound);
            };
            return Ok(Box::new(ReadFile {
                drive: self.drive.clone(),
                name,
                meta: Meta::of(e),
                hint: hint.clone(),
                pos: 0,
                stream: None,
                version: None,
            }));
        }
        if options.create_new && existing.is_some() {
            return Err(FsError::Exists);
        }
        if existing.is_none() && !options.create && !options.create_new {
            return Err(FsError::NotFound);
        }
        // The parent must be a folder.
        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
        if !matches!(self.drive.stat(parent).await, Ok(Entry::Folder)) {
            return Err(FsError::NotFound);
        }
        let keep_old = !options.truncate && existing.is_some();
        let tmp = if keep_old {
            let mut t = self.drive.fetch(&name).await.map_err(fs_error)?;
            if options.append {
                t.as_file_mut().seek(SeekFrom::End(0)).map_err(io)?;
            }
            t
        } else {
            self.drive.spool_file().map_err(fs_error)?
        };
        Ok(Box::new(SpoolFile {
            drive: self.drive.clone(),
            tmp,
            write_as: Some(name),
            dirty: false,
            meta: Meta {
                len: 0,
                dir: false,
                version: 0,
                modified: SystemTime::now(),
            },
        }))
    }

    async fn list(&self, path: &DavPath) -> FsResult<FsStream<Box<dyn DavDirEntry>>> {
        let name = name_of(path)?;
        match self.drive.stat(&name).await.map_err(fs_error)? {
            Entry::Folder => {}
            Entry::File { .. } => return Err(FsError::Forbidden),
        }
        let children = self.drive.list(&name).await.map_err(fs_error)?;
        if let Ok(mut l) = self.listed.lock() {
            *l = Some(Listed {
                at: Instant::now(),
                props: children
                    .iter()
                    .map(|f| (f.name.clone(), f.props.clone()))
                    .collect(),
            });
        }
        let entries: Vec<FsResult<Box<dyn DavDirEntry>>> = children
            .into_iter()
            .map(|f| {
                let leaf = f.name.rsplit('/').next().unwrap_or(&f.name).to_string();
                let meta = Meta::of(Entry::of(&f));
                let c: Box<dyn DavDirEntry> = Box::new(Child {
                    name: leaf.into_bytes(),
                    meta,
                });
                Ok(c)
            })
            .collect();
        Ok(Box::pin(futures::stream::iter(entries)))
    }

    async fn make_dir(&self, path: &DavPath) -> FsResult<()> {
        let name = name_of(path)?;
        if name.is_empty() {
            return Err(FsError::Exists);
        }
        match self.drive.stat(&name).await {
            Ok(_) => return Err(FsError::Exists),
            Err(DriveError::NotFound(_)) => {}
            Err(e) => return Err(fs_error(e)),
        }
        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
        match self.drive.stat(parent).await {
            Ok(Entry::Folder) => {}
            Ok(Entry::File { .. }) => return Err(FsError::Forbidden),
            Err(e) => return Err(fs_error(e)),
        }
        self.drive.make_folder(&name).await.map_err(fs_error)
    }

    async fn copy_to(&self, from: &DavPath, to: &DavPath) -> FsResult<()> {
        self.forget();
        let (from, to) = (name_of(from)?, name_of(to)?);
        self.drive.copy_file(&from, &to).await.map_err(fs_error)
    }

    async fn move_to(&self, from: &DavPath, to: &DavPath) -> FsResult<()> {
        self.forget();
        let (from, to) = (name_of(from)?, name_of(to)?);
        if from.is_empty() || to.is_empty() {
            return Err(FsError::Forbidden);
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(FsError::Forbidden);
        }
        self.drive.rename(&from, &to).await.map_err(fs_error)
    }
}

impl GuardedFileSystem<ReadHint> for IfsFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
        hint: &'a ReadHint,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        self.open_file(path, options, hint).boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        self.list(path).boxed()
    }

    fn metadata<'a>(
        &'a self,
        path: &'a DavPath,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let name = name_of(path)?;
            let e = self.drive.stat(&name).await.map_err(fs_error)?;
            let m: Box<dyn DavMetaData> = Box::new(Meta::of(e));
            Ok(m)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath, _hint: &'a ReadHint) -> FsFuture<'a, ()> {
        self.make_dir(path).boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath, _hint: &'a ReadHint) -> FsFuture<'a, ()> {
        async move {
            let name = name_of(path)?;
            if name.is_empty() {
                return Err(FsError::Forbidden);
            }
            self.forget();
            self.drive.remove_folder(&name).await.map_err(fs_error)
        }
        .boxed()
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath, _hint: &'a ReadHint) -> FsFuture<'a, ()> {
        async move {
            let name = name_of(path)?;
            self.forget();
            self.drive.remove_file(&name).await.map_err(fs_error)
        }
        .boxed()
    }

    fn rename<'a>(
        &'a self,
        from: &'a DavPath,
        to: &'a DavPath,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, ()> {
        self.move_to(from, to).boxed()
    }

    fn copy<'a>(
        &'a self,
        from: &'a DavPath,
        to: &'a DavPath,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, ()> {
        self.copy_to(from, to).boxed()
    }

    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
        _hint: &'a ReadHint,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(futures::future::ready(true))
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        self.patch(path, patch).boxed()
    }

    fn get_props<'a>(
        &'a self,
        path: &'a DavPath,
        do_content: bool,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let props = self.props_of(path).await?;
            Ok(props.into_iter().map(|p| dav_prop(p, do_content)).collect())
        }
        .boxed()
    }

    fn get_prop<'a>(
        &'a self,
        path: &'a DavPath,
        prop: DavProp,
        _hint: &'a ReadHint,
    ) -> FsFuture<'a, Vec<u8>> {
        async move {
            self.props_of(path)
                .await?
                .into_iter()
                .find(|p| p.namespace == prop.namespace && p.name == prop.name)
                .and_then(|p| p.xml)
                .map(serde_bytes::ByteBuf::into_vec)
                .ok_or(FsError::NotFound)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_header_says_where_each_read_may_stop() {
        let size = 10_000;
        let one = ReadHint::from_range(Some("bytes=100-199"));
        assert_eq!(one.end_from(100, size), 200);
        assert_eq!(
            one.end_from(150, size),
            size,
            "a read elsewhere: to the end"
        );
        let open = ReadHint::from_range(Some("bytes=9000-"));
        assert_eq!(open.end_from(9000, size), size);
        let suffix = ReadHint::from_range(Some("bytes=-500"));
        assert_eq!(suffix.end_from(9500, size), size);
        let past = ReadHint::from_range(Some("bytes=9990-20000"));
        assert_eq!(past.end_from(9990, size), size, "cut at the end");
        let many = ReadHint::from_range(Some("bytes=0-9, 5000-5099"));
        assert_eq!(many.end_from(0, size), 10);
        assert_eq!(many.end_from(5000, size), 5100);
        for bad in [
            None,
            Some("items=0-9"),
            Some("bytes=9-0"),
            Some("bytes=a-b"),
            Some("bytes=5"),
        ] {
            let h = ReadHint::from_range(bad);
            assert_eq!(h.end_from(0, size), size, "{bad:?}: no hint, to the end");
        }
    }
}
