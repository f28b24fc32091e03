//! [`IfsFs`]: `dav-server`'s `DavFileSystem` over a [`Drive`]. Paths from
//! requests are checked with the name rule before they reach the drive.
//!
//! A file opened for reading is fetched whole into the spool and served
//! from there (a Range GET reads its part of the spooled file); a file
//! opened for writing collects the body in the spool and is put when the
//! handler flushes it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, FsError, FsFuture, FsResult, FsStream,
    OpenOptions, ReadDirMeta,
};
use futures::FutureExt;
use tracing::warn;

use crate::drive::{Drive, DriveError, Entry};

/// The WebDAV view of a drive.
#[derive(Clone)]
pub struct IfsFs {
    drive: Drive,
}

impl IfsFs {
    /// A filesystem over `drive`.
    pub fn new(drive: Drive) -> Box<IfsFs> {
        Box::new(IfsFs { drive })
    }
}

fn fs_error(e: DriveError) -> FsError {
    match e {
        DriveError::NotFound(_) => FsError::NotFound,
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

impl IfsFs {
    async fn open_file(&self, path: &DavPath, options: OpenOptions) -> FsResult<Box<dyn DavFile>> {
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
            let tmp = self.drive.fetch(&name).await.map_err(fs_error)?;
            return Ok(Box::new(SpoolFile {
                drive: self.drive.clone(),
                tmp,
                write_as: None,
                dirty: false,
                meta: Meta::of(e),
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
        let (from, to) = (name_of(from)?, name_of(to)?);
        self.drive.copy_file(&from, &to).await.map_err(fs_error)
    }

    async fn move_to(&self, from: &DavPath, to: &DavPath) -> FsResult<()> {
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

impl DavFileSystem for IfsFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        self.open_file(path, options).boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        self.list(path).boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let name = name_of(path)?;
            let e = self.drive.stat(&name).await.map_err(fs_error)?;
            let m: Box<dyn DavMetaData> = Box::new(Meta::of(e));
            Ok(m)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.make_dir(path).boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let name = name_of(path)?;
            if name.is_empty() {
                return Err(FsError::Forbidden);
            }
            self.drive.remove_folder(&name).await.map_err(fs_error)
        }
        .boxed()
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let name = name_of(path)?;
            self.drive.remove_file(&name).await.map_err(fs_error)
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.move_to(from, to).boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.copy_to(from, to).boxed()
    }
}
