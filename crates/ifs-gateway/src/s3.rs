//! The S3 frontend: `s3s`'s protocol layer (routing, XML, SigV4) over a
//! [`Drive`]. A bucket is one of the user's top folders; object key `K`
//! in bucket `B` is the file `B/K` (a key ending in `/` is a folder).
//! Every request must be signed with an access key from the user's key
//! file ([`crate::s3keys`]); anonymous requests are refused.
//!
//! ETags name a version of an object (40 hex digits of a hash of its name
//! and version): IFS encrypts each version under its own key and keeps no
//! MD5 of the plaintext, and an ETag of another length tells clients not
//! to read it as one. Multipart uploads: see [`crate::s3multipart`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::StreamExt;
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use tokio::io::AsyncWriteExt;
use tracing::warn;

use crate::drive::{Drive, DriveError, Entry};
use crate::pipe::{PipeWriter, pipe};
use crate::s3check::BodyCheck;
use crate::s3keys;
use crate::s3list::{self, Item};
use crate::s3multipart::{
    Completed, Done, MAX_PART_NUMBER, Multipart, PartDone, Uploads, WAIT_FOR_FIRST, check_complete,
    segment_for,
};
use ifs_client::PutError;
use ifs_core::ChunkId;

/// Largest PutObject or UploadPart body (S3's own limit).
const MAX_BODY: u64 = 5 << 30;

/// Keys in one listing page unless the client asks for fewer.
const MAX_KEYS: usize = 1_000;

/// Bytes of multipart parts the gateway streams to the network at once,
/// across all uploads (each streamed part holds about its own size in
/// encoder buffers). A part that does not fit (or is larger than
/// [`MEM_PART_MAX`], or has no declared length) goes to the disk spool
/// first.
const MEM_PARTS_BUDGET: u64 = 256 << 20;

/// Largest part streamed instead of spooled to disk.
const MEM_PART_MAX: u64 = 64 << 20;

/// Frames of a streamed part queued between the request and the encoder.
const PIPE_FRAMES: usize = 16;

/// The S3 view of a drive.
#[derive(Clone)]
pub struct IfsS3 {
    drive: Drive,
    uploads: Uploads,
    completed: Completed,
    /// KiB of [`MEM_PARTS_BUDGET`] free for streamed parts.
    mem_parts: Arc<tokio::sync::Semaphore>,
    /// Listings kept for the next pages of a paginated listing.
    listings: Arc<s3list::Listings<Obj>>,
}

impl IfsS3 {
    /// An S3 frontend over `drive`.
    pub fn new(drive: Drive) -> IfsS3 {
        IfsS3 {
            drive,
            uploads: Uploads::default(),
            completed: Completed::default(),
            mem_parts: Arc::new(tokio::sync::Semaphore::new(
                (MEM_PARTS_BUDGET >> 10) as usize,
            )),
            listings: Arc::default(),
        }
    }
}

/// Where a part's bytes come from on their way to the network: the
/// request itself, streamed while the budget allows, else a spool file.
enum PartSource {
    Stream(Box<RequestBody>, tokio::sync::OwnedSemaphorePermit),
    Disk(tempfile::NamedTempFile),
}

/// Access keys read from the key file on every request, so keys created
/// or deleted while the gateway runs take effect at once.
struct KeyFileAuth {
    path: PathBuf,
}

#[async_trait::async_trait]
impl S3Auth for KeyFileAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let keys = s3keys::load(&self.path).map_err(|e| {
            warn!("s3: {e}");
            s3_error!(InternalError, "the gateway's key file is unusable")
        })?;
        keys.into_iter()
            .find(|k| k.id == access_key)
            .map(|k| SecretKey::from(k.secret))
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))
    }
}

/// The S3 service over `drive`, checking signatures against the keys in
/// the file at `keys`.
pub fn service(drive: Drive, keys: PathBuf) -> S3Service {
    let mut b = S3ServiceBuilder::new(IfsS3::new(drive));
    b.set_auth(KeyFileAuth { path: keys });
    b.build()
}

/// Answer S3 on `listener` until `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: S3Service,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().fallback(move |req: Request| {
        let service = service.clone();
        async move {
            let req = req.map(s3s::Body::http_body_unsync);
            match service.call(req).await {
                Ok(resp) => resp.map(axum::body::Body::new).into_response(),
                Err(e) => {
                    warn!("s3: {e:?}");
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            }
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

/// Whether `addr` may serve S3: every request is signed, so any address
/// may; beyond loopback the traffic is plain HTTP, which [`serve`]'s
/// caller is told about.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn drive_error(e: DriveError) -> S3Error {
    match e {
        DriveError::NotFound(n) => s3_error!(NoSuchKey, "no such key: {n}"),
        DriveError::Get(ifs_client::GetError::NotFound(n)) => {
            s3_error!(NoSuchKey, "no such key: {n}")
        }
        DriveError::BadName { name, reason } => {
            s3_error!(
                InvalidArgument,
                "IFS cannot store the name {name:?}: {reason}"
            )
        }
        DriveError::Exists(n) => s3_error!(InvalidRequest, "{n} exists"),
        DriveError::NoUpload(_) => s3_error!(NoSuchUpload),
        DriveError::Get(ifs_client::GetError::RangeNotSatisfiable { .. }) => {
            s3_error!(InvalidRange)
        }
        // What the request asked for cannot be done: retrying it is
        // pointless, so a 4xx, not a 500.
        DriveError::Put(
            e @ (PutError::Stale { .. }
            | PutError::Incomplete { .. }
            | PutError::SizeMismatch { .. }
            | PutError::NotWholeSegments { .. }),
        ) => s3_error!(InvalidPart, "{e}"),
        DriveError::Put(e @ PutError::TooManyChunks { .. }) => s3_error!(EntityTooLarge, "{e}"),
        DriveError::Put(e @ PutError::Superseded { .. }) => s3_error!(
            OperationAborted,
            "{e}: another write of this key committed during the upload"
        ),
        other => {
            warn!("s3: {other}");
            s3_error!(InternalError, "{other}")
        }
    }
}

/// The file name of `key` in `bucket`, checked against the name rule.
fn object_name(bucket: &str, key: &str) -> S3Result<String> {
    let name = format!("{bucket}/{key}");
    ifs_core::name::validate_name(name.strip_suffix('/').unwrap_or(&name))
        .map_err(|e| s3_error!(InvalidArgument, "IFS cannot store the key {key:?}: {e}"))?;
    Ok(name)
}

/// A version's ETag (see the module doc).
fn etag(name: &str, version: u64) -> ETag {
    let h = blake3::hash(format!("{name}\0{version}").as_bytes());
    ETag::Strong(h.to_hex()[..40].to_string())
}

/// The content type of every object (IFS keeps no per-object type).
fn octet_stream() -> S3Result<ContentType> {
    "application/octet-stream"
        .parse()
        .map_err(|_| s3_error!(InternalError))
}

fn timestamp(ms: Option<u64>) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms.unwrap_or(0)))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a listing keeps of one object.
#[derive(Clone, Debug)]
struct Obj {
    size: u64,
    version: u64,
    modified_ms: Option<u64>,
    name: String,
}

impl IfsS3 {
    /// Fail with NoSuchBucket unless `bucket` is a top folder.
    async fn bucket(&self, bucket: &str) -> S3Result<()> {
        match self.drive.stat(bucket).await {
            Ok(Entry::Folder) => Ok(()),
            Ok(Entry::File { .. }) | Err(DriveError::NotFound(_)) => Err(s3_error!(NoSuchBucket)),
            Err(DriveError::Get(ifs_client::GetError::NotFound(_))) => Err(s3_error!(NoSuchBucket)),
            Err(e) => Err(drive_error(e)),
        }
    }

    /// The file `name` of `bucket`: size, version, time.
    async fn object(&self, name: &str) -> S3Result<Obj> {
        match self.drive.stat(name).await.map_err(drive_error)? {
            Entry::File {
                size,
                version,
                modified_ms,
            } => Ok(Obj {
                size,
                version,
                modified_ms,
                name: name.to_string(),
            }),
            Entry::Folder => Err(s3_error!(NoSuchKey)),
        }
    }

    /// One page of `bucket`'s keys.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<&str>,
        max_keys: Option<i32>,
    ) -> S3Result<s3list::Page<Obj>> {
        self.bucket(bucket).await?;
        let key = s3list::ListingKey {
            bucket: bucket.to_string(),
            base: s3list::base_folder(bucket, prefix),
            // One level is enough when `/` rolls everything deeper up.
            one_level: delimiter == Some("/"),
        };
        let max = max_keys.map_or(MAX_KEYS, |m| usize::try_from(m).unwrap_or(0).min(MAX_KEYS));
        // Read before listing: a change that ends while the listing is
        // taken makes it serve no later page.
        let (writes, at) = (self.drive.writes(), Instant::now());
        // A page after the first reads the listing the first one took.
        if marker.is_some()
            && let Some(items) = self.listings.get(&key, writes, at)
        {
            return Ok(s3list::page(&items, prefix, delimiter, marker, max));
        }
        let base = &key.base;
        let listed = if key.one_level {
            self.drive.list(base).await
        } else {
            self.drive.list_all(base).await
        };
        let listed = match listed {
            Ok(l) => l,
            Err(DriveError::NotFound(_)) => Vec::new(),
            Err(DriveError::Get(ifs_client::GetError::NotFound(_))) => Vec::new(),
            Err(e) => return Err(drive_error(e)),
        };
        let items: Vec<Item<Obj>> = listed
            .into_iter()
            .filter_map(|f| {
                let rel = f.name.strip_prefix(bucket)?.strip_prefix('/')?.to_string();
                Some(match Entry::of(&f) {
                    Entry::Folder => Item {
                        key: format!("{rel}/"),
                        object: None,
                    },
                    Entry::File {
                        size,
                        version,
                        modified_ms,
                    } => Item {
                        key: rel,
                        object: Some(Obj {
                            size,
                            version,
                            modified_ms,
                            name: f.name,
                        }),
                    },
                })
            })
            .collect();
        let page = s3list::page(&items, prefix, delimiter, marker, max);
        if page.next_marker.is_some() {
            self.listings.keep(key, writes, at, Arc::new(items));
        }
        Ok(page)
    }

    /// The request body in a spool file: the file and its size.
    async fn spool_body(&self, body: RequestBody) -> S3Result<(tempfile::NamedTempFile, u64)> {
        self.spool_capped(body, MAX_BODY).await
    }

    /// [`IfsS3::spool_body`], refusing a body of more than `max` bytes as
    /// soon as it passes them.
    async fn spool_capped(
        &self,
        body: RequestBody,
        max: u64,
    ) -> S3Result<(tempfile::NamedTempFile, u64)> {
        let spool = self.drive.spool_file().map_err(drive_error)?;
        spool_into(spool, body, max).await
    }

    /// A part's body, capped at `max` bytes, and its size: streamed when
    /// its declared `length` fits what is left of [`MEM_PARTS_BUDGET`]
    /// (its size is that length, checked as it streams), spooled to disk
    /// first otherwise.
    async fn part_source(
        &self,
        body: RequestBody,
        length: Option<i64>,
        max: u64,
    ) -> S3Result<(PartSource, u64)> {
        match mem_permit(&self.mem_parts, length, max) {
            Some((length, permit)) => Ok((PartSource::Stream(Box::new(body), permit), length)),
            None => {
                let (spool, size) = self.spool_capped(body, max).await?;
                Ok((PartSource::Disk(spool), size))
            }
        }
    }

    /// Store the request body as file `name`; its size and version.
    async fn store_body(&self, name: &str, body: RequestBody) -> S3Result<(u64, u64)> {
        let (spool, size) = self.spool_body(body).await?;
        let version = self
            .drive
            .store(name, spool.path())
            .await
            .map_err(drive_error)?;
        Ok((size, version))
    }
}

/// A request's body and the checksums its headers declared for it.
pub(crate) struct RequestBody {
    blob: Option<StreamingBlob>,
    check: BodyCheck,
}

impl RequestBody {
    /// The body `take` takes out of `req`'s input, to be checked against
    /// what `req`'s headers (or trailers) declare.
    fn of<T>(
        req: &mut S3Request<T>,
        take: impl FnOnce(&mut T) -> Option<StreamingBlob>,
    ) -> S3Result<Self> {
        Ok(RequestBody {
            check: BodyCheck::new(&req.headers, req.trailing_headers.clone())?,
            blob: take(&mut req.input),
        })
    }
}

/// A request body read frame by frame, refused with `over` as soon as it
/// passes `max` bytes, and checked against the checksums it was sent with.
struct CappedBody {
    body: Option<StreamingBlob>,
    check: BodyCheck,
    max: u64,
    over: fn(u64) -> S3Error,
    size: u64,
}

impl CappedBody {
    fn new(body: RequestBody, max: u64, over: fn(u64) -> S3Error) -> Self {
        CappedBody {
            body: body.blob,
            check: body.check,
            max,
            over,
            size: 0,
        }
    }

    /// The next frame, `None` at the end.
    async fn next(&mut self) -> S3Result<Option<bytes::Bytes>> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        let Some(frame) = body.next().await else {
            return Ok(None);
        };
        let frame = frame.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
        self.size += frame.len() as u64;
        if self.size > self.max {
            return Err((self.over)(self.max));
        }
        self.check.update(&frame);
        Ok(Some(frame))
    }

    /// The body's size, once its checksums matched.
    fn finish(self) -> S3Result<u64> {
        self.check.finish()?;
        Ok(self.size)
    }
}

/// `body` written to `spool`, refused as soon as it passes `max` bytes
/// and when it does not match its checksums: the file and its size.
async fn spool_into(
    spool: tempfile::NamedTempFile,
    body: RequestBody,
    max: u64,
) -> S3Result<(tempfile::NamedTempFile, u64)> {
    let mut file = tokio::fs::File::from_std(spool.reopen().map_err(internal)?);
    let mut body = CappedBody::new(body, max, |max| {
        s3_error!(EntityTooLarge, "a body may hold at most {max} bytes here")
    });
    while let Some(frame) = body.next().await? {
        file.write_all(&frame).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    let size = body.finish()?;
    Ok((spool, size))
}

/// Room in `budget` (KiB) for a part whose declared length is `length`,
/// when it has one of at most [`MEM_PART_MAX`] and `max`, and the budget
/// has room now: the length and the permit.
fn mem_permit(
    budget: &Arc<tokio::sync::Semaphore>,
    length: Option<i64>,
    max: u64,
) -> Option<(u64, tokio::sync::OwnedSemaphorePermit)> {
    let length = u64::try_from(length?).ok()?;
    if length > MEM_PART_MAX.min(max) {
        return None;
    }
    let kib = u32::try_from(length.div_ceil(1024).max(1)).ok()?;
    Some((length, budget.clone().try_acquire_many_owned(kib).ok()?))
}

/// `body`, which declared `length` bytes, written into `pipe` as it
/// arrives. It is refused as soon as it passes that length, and when it
/// ends short of it or unlike its checksums; the pipe's reader then sees
/// an error, never an end. `Ok` too when the reader went away first: its
/// upload failed and says why.
async fn feed_pipe(body: RequestBody, length: u64, pipe: PipeWriter) -> S3Result<()> {
    let mut body = CappedBody::new(body, length, |length| {
        s3_error!(
            IncompleteBody,
            "the body is longer than its Content-Length of {length}"
        )
    });
    while let Some(frame) = body.next().await? {
        if pipe.send(frame).await.is_err() {
            return Ok(());
        }
    }
    let size = body.finish()?;
    if size != length {
        return Err(s3_error!(
            IncompleteBody,
            "the body ended after {size} of its {length} bytes"
        ));
    }
    pipe.end().await;
    Ok(())
}

/// A part's ETag: 40 hex digits of the BLAKE3 of the ids of the chunks
/// that hold it, which name its bytes as stored.
fn part_etag(chunks: &[ChunkId]) -> String {
    let mut h = blake3::Hasher::new();
    for c in chunks {
        h.update(&c.0);
    }
    h.finalize().to_hex()[..40].to_string()
}

fn internal(e: std::io::Error) -> S3Error {
    warn!("s3: spool: {e}");
    s3_error!(InternalError, "the gateway's spool failed: {e}")
}

#[async_trait::async_trait]
impl S3 for IfsS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let top = self.drive.list("").await.map_err(drive_error)?;
        let buckets = top
            .into_iter()
            .filter(|f| matches!(Entry::of(f), Entry::Folder))
            .filter(|f| s3s::path::check_bucket_name(&f.name))
            .map(|f| Bucket {
                creation_date: Some(timestamp(f.modified_ms)),
                name: Some(f.name),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        match self.drive.stat(&bucket).await {
            Ok(Entry::Folder) => return Err(s3_error!(BucketAlreadyOwnedByYou)),
            Ok(Entry::File { .. }) => {
                return Err(s3_error!(
                    BucketAlreadyExists,
                    "a file named {bucket} is at the top of your folders"
                ));
            }
            Err(_) => {}
        }
        self.drive.make_folder(&bucket).await.map_err(drive_error)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.bucket(&bucket).await?;
        if !self
            .drive
            .list(&bucket)
            .await
            .map_err(drive_error)?
            .is_empty()
        {
            return Err(s3_error!(BucketNotEmpty));
        }
        self.drive
            .remove_folder(&bucket)
            .await
            .map_err(drive_error)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let token = match &input.continuation_token {
            Some(t) => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "bad continuation token"))?,
            ),
            None => None,
        };
        let marker = token.as_deref().or(input.start_after.as_deref());
        let page = self
            .list_page(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                marker,
                input.max_keys,
            )
            .await?;
        let (contents, prefixes) = render(&page);
        let key_count = (page.objects.len() + page.prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS as i32)),
            key_count: Some(key_count),
            continuation_token: input.continuation_token,
            is_truncated: Some(page.next_marker.is_some()),
            next_continuation_token: page.next_marker.map(|m| hex::encode(m.as_bytes())),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            // Keys go out as they are: echoing `url` would make clients
            // decode keys that were never encoded (`a+b` → `a b`).
            encoding_type: None,
            start_after: input.start_after,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let page = self
            .list_page(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                input.marker.as_deref(),
                input.max_keys,
            )
            .await?;
        let (contents, prefixes) = render(&page);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            marker: input.marker,
            max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS as i32)),
            is_truncated: Some(page.next_marker.is_some()),
            next_marker: page.next_marker,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            // Keys go out as they are: echoing `url` would make clients
            // decode keys that were never encoded (`a+b` → `a b`).
            encoding_type: None,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let name = object_name(&input.bucket, &input.key)?;
        if let Some(folder) = name.strip_suffix('/') {
            // A key ending in `/` is a folder (PutObject of `a/` makes
            // one): it exists, empty, while the folder does.
            return match self.drive.stat(folder).await.map_err(drive_error)? {
                Entry::Folder => Ok(S3Response::new(HeadObjectOutput {
                    content_length: Some(0),
                    content_type: Some(octet_stream()?),
                    e_tag: Some(etag(&name, 0)),
                    ..Default::default()
                })),
                Entry::File { .. } => Err(s3_error!(NoSuchKey)),
            };
        }
        let o = self.object(&name).await?;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(o.size as i64),
            content_type: Some(octet_stream()?),
            e_tag: Some(etag(&o.name, o.version)),
            last_modified: Some(timestamp(o.modified_ms)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let name = object_name(&input.bucket, &input.key)?;
        let o = self.object(&name).await?;
        let (range, ranged) = match input.range {
            Some(r) => (r.check(o.size)?, true),
            None => (0..o.size, false),
        };
        let len = range.end - range.start;
        let (body, o) = if len == 0 {
            let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
            (StreamingBlob::wrap(empty), o)
        } else {
            let read = self
                .drive
                .read_range(&name, range.start, len)
                .await
                .map_err(drive_error)?;
            // The headers describe the version the body comes from, even
            // when a write landed between the stat and the read.
            if read.version != o.version || read.size != o.size || read.len != len {
                return Err(s3_error!(
                    PreconditionFailed,
                    "the object changed while it was being read: retry"
                ));
            }
            (StreamingBlob::wrap(read), o)
        };
        let content_range =
            ranged.then(|| format!("bytes {}-{}/{}", range.start, range.end - 1, o.size));
        Ok(S3Response::new(GetObjectOutput {
            accept_ranges: Some("bytes".into()),
            body: Some(body),
            content_length: Some(len as i64),
            content_range,
            content_type: Some(octet_stream()?),
            e_tag: Some(etag(&o.name, o.version)),
            last_modified: Some(timestamp(o.modified_ms)),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let body = RequestBody::of(&mut req, |i| i.body.take())?;
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let name = object_name(&input.bucket, &input.key)?;
        if input.key.ends_with('/') {
            if input.content_length.unwrap_or(0) > 0 {
                return Err(s3_error!(
                    UnexpectedContent,
                    "a key ending in / is a folder and holds no bytes"
                ));
            }
            self.drive
                .make_folder(name.strip_suffix('/').unwrap_or(&name))
                .await
                .map_err(drive_error)?;
            return Ok(S3Response::new(PutObjectOutput::default()));
        }
        let (size, version) = self.store_body(&name, body).await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&name, version)),
            size: Some(size as i64),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "access point copy sources"));
        };
        self.bucket(&input.bucket).await?;
        let from = object_name(src_bucket, src_key)?;
        let to = object_name(&input.bucket, &input.key)?;
        self.object(&from).await?;
        self.drive
            .copy_file(&from, &to)
            .await
            .map_err(drive_error)?;
        let o = self.object(&to).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&o.name, o.version)),
                last_modified: Some(timestamp(o.modified_ms.or(Some(now_ms())))),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let name = object_name(&input.bucket, &input.key)?;
        self.delete(&name, input.key.ends_with('/')).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let name = object_name(&input.bucket, &input.key)?;
        if input.key.ends_with('/') {
            return Err(s3_error!(InvalidArgument, "a key ending in / is a folder"));
        }
        for (_, old) in self.uploads.take_idle(now_ms()) {
            let first = *old.first.borrow();
            if let Some((_, upload)) = first {
                let _ = self.drive.upload_abort(upload).await;
            }
        }
        let m = Multipart::new(input.bucket.clone(), input.key.clone(), name, now_ms());
        let id = self.uploads.add(m).ok_or_else(|| {
            s3_error!(
                SlowDown,
                "too many multipart uploads in progress: complete or abort some"
            )
        })?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let body = RequestBody::of(&mut req, |i| i.body.take())?;
        let input = req.input;
        let m = self
            .uploads
            .get(&input.upload_id, &input.bucket, &input.key)
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        let n = input.part_number;
        if !(1..=MAX_PART_NUMBER).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "part numbers run from 1 to {MAX_PART_NUMBER}"
            ));
        }
        if input
            .content_length
            .is_some_and(|l| l < 0 || l as u64 > MAX_BODY)
        {
            return Err(s3_error!(
                EntityTooLarge,
                "a part may hold at most {MAX_BODY} bytes"
            ));
        }
        let known = *m.first.borrow();
        let cap = match known {
            Some((p, _)) => p,
            None => MAX_BODY,
        };
        let (source, size) = self.part_source(body, input.content_length, cap).await?;
        let (part_size, upload) = if n == 1 {
            let _one = m.begin.lock().await;
            let known = *m.first.borrow();
            match known {
                Some((p, _)) if p != size => {
                    return Err(s3_error!(
                        InvalidPart,
                        "part 1 was sent before with {p} bytes; it fixes the part size"
                    ));
                }
                Some(first) => first,
                None => {
                    let seg = segment_for(size)
                        .ok_or_else(|| {
                            s3_error!(
                                InvalidArgument,
                                "a part of {size} bytes splits into no whole number of segments of 1 KiB to 64 MiB; use a part size that is a multiple of 1 MiB"
                            )
                        })?;
                    let id = self
                        .drive
                        .upload_begin(&m.name, seg)
                        .await
                        .map_err(drive_error)?;
                    m.first.send_replace(Some((size, id)));
                    (size, id)
                }
            }
        } else {
            m.first(WAIT_FOR_FIRST)
                .await
                .ok_or_else(|| s3_error!(InvalidRequest, "part 1 never arrived"))?
        };
        let seg = segment_for(part_size).ok_or_else(|| s3_error!(InternalError))?;
        if size > part_size || (n > 1 && part_size < seg) {
            return Err(s3_error!(
                InvalidPart,
                "part {n} has {size} bytes; every part but the last must have part 1's {part_size}, none more"
            ));
        }
        let per_part = part_size.div_ceil(seg);
        let first_index = u32::try_from((n as u64 - 1) * per_part)
            .map_err(|_| s3_error!(InvalidArgument, "part {n} is past the largest file"))?;
        let last = size < part_size || part_size < seg;
        let chunks = match source {
            PartSource::Stream(body, _permit) => {
                let (writer, reader) = pipe(PIPE_FRAMES);
                let (placed, fed) = tokio::join!(
                    self.drive
                        .upload_part(upload, first_index, reader, size, last),
                    feed_pipe(*body, size, writer)
                );
                // A body refused half-way is why its upload stopped.
                fed?;
                placed
            }
            PartSource::Disk(spool) => {
                let file = std::fs::File::open(spool.path()).map_err(internal)?;
                self.drive
                    .upload_part(upload, first_index, file, size, last)
                    .await
            }
        }
        .map_err(drive_error)?;
        let etag = part_etag(&chunks);
        m.record(
            n,
            PartDone {
                size,
                etag: etag.clone(),
                at_ms: now_ms(),
            },
        );
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let Some(m) = self
            .uploads
            .get(&input.upload_id, &input.bucket, &input.key)
        else {
            // A retry of a Complete that succeeded gets the same answer.
            let done = self
                .completed
                .get(&input.upload_id, &input.bucket, &input.key)
                .ok_or_else(|| s3_error!(NoSuchUpload))?;
            return Ok(S3Response::new(CompleteMultipartUploadOutput {
                bucket: Some(input.bucket.clone()),
                key: Some(input.key.clone()),
                e_tag: Some(ETag::Strong(done.etag)),
                location: Some(format!("/{}/{}", input.bucket, input.key)),
                ..Default::default()
            }));
        };
        let named: Vec<(i32, String)> = input
            .multipart_upload
            .and_then(|u| u.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0),
                    p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let first = *m.first.borrow();
        let (part_size, upload) =
            first.ok_or_else(|| s3_error!(InvalidPart, "part 1 was never uploaded"))?;
        let size = check_complete(&named, &m.parts(), part_size)
            .map_err(|e| s3_error!(InvalidPart, "{e}"))?;
        self.drive
            .upload_commit(upload, size)
            .await
            .map_err(drive_error)?;
        self.uploads.remove(&input.upload_id);
        let o = self.object(&m.name).await?;
        let tag = etag(&o.name, o.version);
        self.completed.add(Done {
            id: input.upload_id.clone(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            etag: tag.value().to_string(),
        });
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(tag),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.uploads
            .get(&input.upload_id, &input.bucket, &input.key)
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        if let Some(m) = self.uploads.remove(&input.upload_id) {
            // After a part 1 being placed has begun the drive upload.
            let _one = m.begin.lock().await;
            let first = *m.first.borrow();
            if let Some((_, upload)) = first {
                self.drive.upload_abort(upload).await.map_err(drive_error)?;
            }
        }
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let m = self
            .uploads
            .get(&input.upload_id, &input.bucket, &input.key)
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        let max = input.max_parts.unwrap_or(1_000).clamp(1, 1_000) as usize;
        let after = input
            .part_number_marker
            .unwrap_or(0)
            .clamp(0, MAX_PART_NUMBER);
        let all = m.parts();
        let mut rest = all.range(after + 1..).peekable();
        let mut parts = Vec::new();
        while parts.len() < max {
            let Some((n, p)) = rest.next() else { break };
            parts.push(Part {
                e_tag: Some(ETag::Strong(p.etag.clone())),
                last_modified: Some(timestamp(Some(p.at_ms))),
                part_number: Some(*n),
                size: Some(p.size as i64),
                ..Default::default()
            });
        }
        let truncated = rest.peek().is_some();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads = self
            .uploads
            .in_bucket(&input.bucket)
            .into_iter()
            .filter(|(_, m)| m.key.starts_with(&prefix))
            .map(|(id, m)| MultipartUpload {
                initiated: Some(timestamp(Some(m.initiated_ms))),
                key: Some(m.key.clone()),
                upload_id: Some(id),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        self.bucket(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in input.delete.objects {
            let done = match object_name(&input.bucket, &o.key) {
                Ok(name) => self.delete(&name, o.key.ends_with('/')).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..Default::default()
                }),
                Err(e) => errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }
}

impl IfsS3 {
    /// Delete file `name`, or the empty folder `name` when `folder`; a
    /// name that is not there is deleted already (S3's answer).
    async fn delete(&self, name: &str, folder: bool) -> S3Result<()> {
        let done = if folder {
            let name = name.strip_suffix('/').unwrap_or(name);
            match self.drive.list(name).await {
                Ok(children) if !children.is_empty() => return Ok(()),
                Ok(_) => self.drive.remove_folder(name).await,
                Err(e) => Err(e),
            }
        } else {
            self.drive.remove_file(name).await
        };
        match done {
            Ok(()) => Ok(()),
            Err(DriveError::NotFound(_)) => Ok(()),
            Err(DriveError::Get(ifs_client::GetError::NotFound(_))) => Ok(()),
            Err(e) => Err(drive_error(e)),
        }
    }
}

/// A page's objects and prefixes as S3 lists them.
fn render(page: &s3list::Page<Obj>) -> (Vec<Object>, Vec<CommonPrefix>) {
    let contents = page
        .objects
        .iter()
        .map(|(key, o)| Object {
            key: Some(key.clone()),
            size: Some(o.size as i64),
            e_tag: Some(etag(&o.name, o.version)),
            last_modified: Some(timestamp(o.modified_ms)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(p.clone()),
        })
        .collect();
    (contents, prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use s3s::S3ErrorCode;

    fn blob(frames: &[&[u8]]) -> RequestBody {
        checked(frames, &[])
    }

    /// A body sent in `frames` with the headers `declared`.
    fn checked(frames: &[&[u8]], declared: &[(&'static str, &str)]) -> RequestBody {
        let frames: Vec<Result<Bytes, std::io::Error>> = frames
            .iter()
            .map(|f| Ok(Bytes::copy_from_slice(f)))
            .collect();
        let mut headers = http::HeaderMap::new();
        for (name, value) in declared {
            headers.insert(*name, value.parse().unwrap());
        }
        RequestBody {
            blob: Some(StreamingBlob::wrap(futures::stream::iter(frames))),
            check: BodyCheck::new(&headers, None).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_part_streams_only_within_its_declared_length_and_the_budget() {
        let budget = Arc::new(tokio::sync::Semaphore::new(8)); // 8 KiB
        let (len, permit) = mem_permit(&budget, Some(6000), MAX_BODY).unwrap();
        assert_eq!(budget.available_permits(), 2, "6000 bytes hold 6 KiB");
        // While that part streams, another that does not fit goes to disk.
        assert!(mem_permit(&budget, Some(4096), MAX_BODY).is_none());
        drop(permit);
        assert_eq!(budget.available_permits(), 8, "the budget comes back");
        // No declared length, one over the cap, or one over MEM_PART_MAX:
        // disk.
        assert!(mem_permit(&budget, None, MAX_BODY).is_none());
        assert!(mem_permit(&budget, Some(-1), MAX_BODY).is_none());
        assert!(mem_permit(&budget, Some(5000), 4000).is_none());
        let big = Arc::new(tokio::sync::Semaphore::new(1 << 20));
        assert!(mem_permit(&big, Some(MEM_PART_MAX as i64 + 1), MAX_BODY).is_none());

        // The reader gets the body, then its end.
        let read = |r: crate::pipe::PipeReader| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                std::io::Read::read_to_end(&mut { r }, &mut got).map(|_| got)
            })
        };
        let (w, r) = pipe(2);
        let reader = read(r);
        feed_pipe(blob(&[&[1; 4000], &[2; 2000]]), len, w)
            .await
            .unwrap();
        let mut want = vec![1u8; 4000];
        want.extend_from_slice(&[2; 2000]);
        assert_eq!(reader.join().unwrap().unwrap(), want);
        // A body longer than it declared, shorter, or unlike its checksum
        // is refused, and its reader sees an error, never an end.
        for (frames, declared) in [
            (&[&[0u8; 60][..], &[0; 60]][..], &[][..]),
            (&[&[0u8; 60][..]][..], &[][..]),
            (
                &[&[0u8; 100][..]][..],
                &[("x-amz-checksum-crc32", "AAAAAA==")][..],
            ),
        ] {
            let (w, r) = pipe(2);
            let reader = read(r);
            let err = feed_pipe(checked(frames, declared), 100, w)
                .await
                .expect_err("refused");
            assert!(
                [S3ErrorCode::IncompleteBody, S3ErrorCode::BadDigest].contains(err.code()),
                "{err:?}"
            );
            assert!(reader.join().unwrap().is_err());
        }
    }

    #[test]
    fn a_part_etag_names_its_chunks_in_order() {
        let (a, b) = (ChunkId([1; 32]), ChunkId([2; 32]));
        assert_eq!(part_etag(&[a, b]).len(), 40);
        assert_eq!(part_etag(&[a, b]), part_etag(&[a, b]));
        assert_ne!(part_etag(&[a, b]), part_etag(&[b, a]));
        assert_ne!(part_etag(&[a]), part_etag(&[a, b]));
    }

    #[tokio::test]
    async fn a_body_that_does_not_match_its_declared_checksums_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = || tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        const CRC32: (&str, &str) = ("x-amz-checksum-crc32", "S4457w==");
        const MD5: (&str, &str) = ("content-md5", "6AtQFwmJUPxYqtg8jBSXjg==");
        const SHA256: (&str, &str) = (
            "x-amz-checksum-sha256",
            "vvV+x/U6bUC+tkCngKY5yDvCmsipgW8fxsXG3Nk8RyE=",
        );
        let frames: &[&[u8]] = &[b"abc", b"def"];
        // Each right value, alone or together, is accepted.
        for declared in [&[CRC32][..], &[MD5], &[SHA256], &[CRC32, MD5, SHA256]] {
            let (_, size) = spool_into(spool(), checked(frames, declared), 6)
                .await
                .unwrap();
            assert_eq!(size, 6);
        }
        // A body that differs from what was declared, by one byte, is
        // refused, whichever checksum declared it.
        let corrupt: &[&[u8]] = &[b"abc", b"deg"];
        for declared in [&[CRC32][..], &[MD5], &[SHA256], &[CRC32, MD5, SHA256]] {
            let err = spool_into(spool(), checked(corrupt, declared), 6)
                .await
                .expect_err("a corrupt body");
            assert_eq!(err.code(), &S3ErrorCode::BadDigest, "{declared:?}");
        }
        // A trailer announced but never sent is refused too.
        let err = spool_into(
            spool(),
            checked(frames, &[("x-amz-trailer", "x-amz-checksum-crc32")]),
            6,
        )
        .await
        .expect_err("no trailer");
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
        // A checksum header that is not text is refused before the body.
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-amz-checksum-crc32",
            http::HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap(),
        );
        assert!(BodyCheck::new(&headers, None).is_err());
    }

    #[tokio::test]
    async fn a_spooled_body_over_its_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let (file, size) = spool_into(spool, blob(&[b"abc", b"def"]), 6).await.unwrap();
        assert_eq!(size, 6);
        assert_eq!(std::fs::read(file.path()).unwrap(), b"abcdef");
        let spool = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let err = spool_into(spool, blob(&[b"abc", b"defg"]), 6)
            .await
            .expect_err("over the cap");
        assert_eq!(err.code(), &S3ErrorCode::EntityTooLarge);
    }
}
