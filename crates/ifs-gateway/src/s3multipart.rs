//! S3 multipart uploads on IFS's resumable uploads: every part is placed
//! on the network as the file's own chunks as soon as it arrives (its
//! receipts kept by the drive), so a client cut off mid-way resumes from
//! the parts already uploaded (ListParts tells which), and completing
//! writes only the manifest: no byte is sent twice.
//!
//! A file's segments all have one size, so parts map onto segments by
//! their size: part 1 fixes the part size P (every part but the last has
//! P bytes, as every common client sends them), the segment size S is P
//! (or P split evenly when P is over the codec's 64 MiB limit), and part
//! n holds segments `(n-1)·P/S ..`. Parts after the first wait for part
//! 1's size. A part shorter than P is sealed as the file's last; when the
//! last part has exactly P bytes the commit seals its final chunk again
//! as the last (one chunk sent again).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ifs_core::codec::MAX_SEGMENT_SIZE;
use tokio::sync::watch;

/// Part numbers S3 allows.
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Uploads in progress at once per gateway.
pub const MAX_UPLOADS: usize = 1_000;
/// An upload with no part placed for this long is dropped (its chunks
/// older than the resume window cannot be committed).
pub const IDLE_UPLOAD: Duration = ifs_client::RESUME_WINDOW;
/// How long a part waits for part 1 to arrive.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(300);
/// Smallest segment (the CLI's floor too).
const MIN_SEGMENT: u64 = 1024;

/// The segment size for parts of `part_size` bytes: the part size itself
/// when the codec allows it, else the largest even split of it that does;
/// `None` when no split of at least 1 KiB fits (a part size with no such
/// divisor).
pub fn segment_for(part_size: u64) -> Option<u64> {
    let max = MAX_SEGMENT_SIZE as u64;
    if part_size <= max {
        return Some(part_size.max(MIN_SEGMENT));
    }
    (2..=part_size / MIN_SEGMENT)
        .find(|k| part_size.is_multiple_of(*k) && part_size / k <= max)
        .map(|k| part_size / k)
}

/// One part the gateway placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartDone {
    /// Its bytes.
    pub size: u64,
    /// Its ETag (BLAKE3 of its bytes, 40 hex digits).
    pub etag: String,
    /// When it was placed, ms since the Unix epoch.
    pub at_ms: u64,
}

/// Why the parts named in a CompleteMultipartUpload do not make a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    /// No parts named.
    #[error("no parts named")]
    Empty,
    /// Parts must be 1, 2, … N in order.
    #[error("parts must be numbered 1, 2, 3… in order; part {0} is out of place")]
    Order(i32),
    /// A part that was never uploaded (or another upload of it).
    #[error("part {0} was not uploaded, or its ETag differs")]
    Missing(i32),
    /// A part other than the last is not of part 1's size.
    #[error("part {part} has {size} bytes; every part but the last must have {expected}")]
    Size {
        /// The part.
        part: i32,
        /// Its size.
        size: u64,
        /// Part 1's size.
        expected: u64,
    },
}

/// The file size the named parts make, after checking them against those
/// uploaded (see [`CompleteError`]).
pub fn check_complete(
    named: &[(i32, String)],
    uploaded: &BTreeMap<i32, PartDone>,
    part_size: u64,
) -> Result<u64, CompleteError> {
    if named.is_empty() {
        return Err(CompleteError::Empty);
    }
    let mut size = 0u64;
    for (i, (n, etag)) in named.iter().enumerate() {
        if *n != i as i32 + 1 {
            return Err(CompleteError::Order(*n));
        }
        let p = uploaded
            .get(n)
            .filter(|p| p.etag == etag.trim_matches('"'))
            .ok_or(CompleteError::Missing(*n))?;
        let last = i + 1 == named.len();
        if (!last && p.size != part_size) || p.size > part_size {
            return Err(CompleteError::Size {
                part: *n,
                size: p.size,
                expected: part_size,
            });
        }
        size += p.size;
    }
    Ok(size)
}

/// One multipart upload in progress.
pub struct Multipart {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The file name.
    pub name: String,
    /// When it was created, ms since the Unix epoch.
    pub initiated_ms: u64,
    /// Part 1's size and the drive upload's id, once part 1 arrived.
    pub first: watch::Sender<Option<(u64, u64)>>,
    /// Serializes the arrival of part 1 (which begins the drive upload).
    pub begin: tokio::sync::Mutex<()>,
    /// Parts placed, by number.
    pub parts: Mutex<BTreeMap<i32, PartDone>>,
}

impl Multipart {
    /// A new upload of `key` in `bucket` (file `name`).
    pub fn new(bucket: String, key: String, name: String, now_ms: u64) -> Multipart {
        Multipart {
            bucket,
            key,
            name,
            initiated_ms: now_ms,
            first: watch::channel(None).0,
            begin: tokio::sync::Mutex::new(()),
            parts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The parts placed so far (a copy).
    pub fn parts(&self) -> BTreeMap<i32, PartDone> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record part `n`.
    pub fn record(&self, n: i32, done: PartDone) {
        self.parts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n, done);
    }

    /// Part 1's size and the drive upload, waiting up to `wait` for them.
    pub async fn first(&self, wait: Duration) -> Option<(u64, u64)> {
        let mut rx = self.first.subscribe();
        let got = tokio::time::timeout(wait, rx.wait_for(|f| f.is_some())).await;
        match got {
            Ok(Ok(v)) => *v,
            _ => None,
        }
    }
}

/// The uploads in progress, by upload id.
#[derive(Clone, Default)]
pub struct Uploads(Arc<Mutex<HashMap<String, Arc<Multipart>>>>);

/// Uploads completed lately, by id: a Complete that is retried after it
/// succeeded (its answer lost on the way) gets the same answer, not
/// NoSuchUpload.
#[derive(Clone, Default)]
pub struct Completed(Arc<Mutex<std::collections::VecDeque<Done>>>);

/// One completed upload.
#[derive(Clone, Debug)]
pub struct Done {
    /// The upload id.
    pub id: String,
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// The ETag the Complete answered with.
    pub etag: String,
}

/// Completed uploads remembered.
const COMPLETED_KEPT: usize = 1024;

impl Completed {
    /// Remember `done`, forgetting the oldest past [`COMPLETED_KEPT`].
    pub fn add(&self, done: Done) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= COMPLETED_KEPT {
            q.pop_front();
        }
        q.push_back(done);
    }

    /// The completed upload `id` of `bucket`/`key`, if remembered.
    pub fn get(&self, id: &str, bucket: &str, key: &str) -> Option<Done> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .rev()
            .find(|d| d.id == id && d.bucket == bucket && d.key == key)
            .cloned()
    }
}

impl Uploads {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Multipart>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add one under a fresh random id; `None` when [`MAX_UPLOADS`] are
    /// in progress.
    pub fn add(&self, m: Multipart) -> Option<String> {
        let mut map = self.map();
        if map.len() >= MAX_UPLOADS {
            return None;
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        map.insert(id.clone(), Arc::new(m));
        Some(id)
    }

    /// The upload `id` of `key` in `bucket`.
    pub fn get(&self, id: &str, bucket: &str, key: &str) -> Option<Arc<Multipart>> {
        self.map()
            .get(id)
            .filter(|m| m.bucket == bucket && m.key == key)
            .cloned()
    }

    /// Take out every upload idle for [`IDLE_UPLOAD`] (no part placed in
    /// that time, or none at all since it was created): its chunks would
    /// be too old to commit anyway.
    pub fn take_idle(&self, now_ms: u64) -> Vec<(String, Arc<Multipart>)> {
        let idle = IDLE_UPLOAD.as_millis() as u64;
        let mut map = self.map();
        let old: Vec<String> = map
            .iter()
            .filter(|(_, m)| {
                let last = m.parts().values().map(|p| p.at_ms).max();
                now_ms.saturating_sub(last.unwrap_or(m.initiated_ms)) > idle
            })
            .map(|(id, _)| id.clone())
            .collect();
        old.into_iter()
            .filter_map(|id| map.remove(&id).map(|m| (id, m)))
            .collect()
    }

    /// Take upload `id` out.
    pub fn remove(&self, id: &str) -> Option<Arc<Multipart>> {
        self.map().remove(id)
    }

    /// Every upload in `bucket`, by key then id.
    pub fn in_bucket(&self, bucket: &str) -> Vec<(String, Arc<Multipart>)> {
        let mut v: Vec<_> = self
            .map()
            .iter()
            .filter(|(_, m)| m.bucket == bucket)
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segment_is_the_part_or_an_even_split_of_it() {
        assert_eq!(segment_for(8 << 20), Some(8 << 20));
        assert_eq!(segment_for(5 << 20), Some(5 << 20));
        assert_eq!(segment_for(3), Some(1024), "a one-part upload of 3 bytes");
        assert_eq!(segment_for(64 << 20), Some(64 << 20));
        // Every segment's chunk fits what a node accepts on a stream.
        assert_eq!(segment_for(128 << 20), Some(64 << 20));
        assert_eq!(segment_for(96 << 20), Some(48 << 20));
        assert_eq!(segment_for(600 << 20), Some(60 << 20));
        let odd = (64 << 20) + 1; // a prime-ish size: no even split
        let s = segment_for(odd);
        assert!(s.is_none_or(|s| odd.is_multiple_of(s) && s <= MAX_SEGMENT_SIZE as u64));
    }

    fn done(size: u64, etag: &str) -> PartDone {
        PartDone {
            size,
            etag: etag.into(),
            at_ms: 0,
        }
    }

    #[test]
    fn complete_checks_order_etags_and_sizes() {
        let up: BTreeMap<i32, PartDone> =
            [(1, done(10, "a")), (2, done(10, "b")), (3, done(4, "c"))]
                .into_iter()
                .collect();
        let named = |v: &[(i32, &str)]| -> Vec<(i32, String)> {
            v.iter().map(|(n, e)| (*n, format!("\"{e}\""))).collect()
        };
        assert_eq!(
            check_complete(&named(&[(1, "a"), (2, "b"), (3, "c")]), &up, 10),
            Ok(24)
        );
        assert_eq!(
            check_complete(&named(&[(1, "a"), (2, "b")]), &up, 10),
            Ok(20)
        );
        assert_eq!(
            check_complete(&named(&[]), &up, 10),
            Err(CompleteError::Empty)
        );
        assert_eq!(
            check_complete(&named(&[(1, "a"), (3, "c")]), &up, 10),
            Err(CompleteError::Order(3))
        );
        assert_eq!(
            check_complete(&named(&[(1, "a"), (2, "x")]), &up, 10),
            Err(CompleteError::Missing(2))
        );
        let short_middle: BTreeMap<i32, PartDone> =
            [(1, done(10, "a")), (2, done(4, "b")), (3, done(4, "c"))]
                .into_iter()
                .collect();
        assert!(matches!(
            check_complete(&named(&[(1, "a"), (2, "b"), (3, "c")]), &short_middle, 10),
            Err(CompleteError::Size { part: 2, .. })
        ));
    }
}
