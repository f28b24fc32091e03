//! Range reads: the bytes `[offset, offset + len)` of a file, fetching only
//! the chunks that hold them and reading only the manifest pages that list
//! those chunks, delivered in order as a stream with bounded memory.
//!
//! A file's geometry is fixed by its manifest: every segment but the last
//! holds exactly `segment_size` plaintext bytes, so byte `b` is in chunk
//! `b / segment_size`. A [`RangeReader`] checks that the manifest agrees
//! (chunk count against size) when it opens, and every decoded chunk
//! against the length its position gives, so a hostile or broken record
//! yields a typed error, never bytes from the wrong place.
//!
//! Memory: at most `in_flight` chunks are being fetched or decoded, or
//! wait to be taken, and at most [`PAGES_AHEAD`] page records are read
//! ahead; a whole-file read of any size holds no more than a short one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, StreamExt, TryStreamExt};
use ifs_core::codec::{FileKey, MAX_SEGMENT_SIZE, NoncePrefix, decode_segment};
use ifs_core::file_record::FileRecord;
use ifs_core::folder_record::PackSlice;
use ifs_core::keys::{UserKey, UserPublic};
use ifs_core::proto::FetchOutcome;
use ifs_core::wire::{PageRef, page_name};
use ifs_core::{NodeId, UserId};

use crate::error::GetError;
use crate::get::{GetOptions, Sources, by_rtt};
use crate::pages::{Page, load_page};
use crate::records;
use crate::session::Session;
use crate::table;

/// Page records read ahead of the chunk being fetched.
pub const PAGES_AHEAD: usize = 2;

/// An open file, ready to serve byte ranges of the version that was live
/// when it was opened.
pub struct RangeReader<'a> {
    session: &'a Session,
    /// The name as the caller gave it, for errors.
    shown: String,
    owner: UserId,
    root: Arc<Page>,
    /// Index of the first chunk of the root and of each page, then the
    /// file's chunk count.
    starts: Vec<u64>,
    file_key: FileKey,
    prefix: NoncePrefix,
    /// The whole file's plaintext size (the pack's, for a packed file).
    whole_size: u64,
    /// What is served: the whole file, or a packed file's slice of its
    /// pack, as `[base, base + shown_size)`.
    base: u64,
    shown_size: u64,
    /// The version shown: the file's manifest's, or a packed file's entry's.
    shown_version: u64,
    /// A packed file's BLAKE3, from its folder entry; `None` for a file
    /// with a record of its own.
    packed_hash: Option<[u8; 32]>,
    segment: u64,
    sources: Sources<'a>,
    in_flight: usize,
    chunks_fetched: AtomicU64,
    pages_loaded: AtomicU64,
}

/// What a reader fetched, for its caller and for tests that count it.
#[derive(Clone, Debug)]
pub struct RangeReport {
    /// Chunks fetched from nodes (each once, whichever holder served it).
    pub chunks_fetched: u64,
    /// Page records read besides the root.
    pub pages_loaded: u64,
    /// How each node served.
    pub results: Vec<(NodeId, FetchOutcome)>,
}

impl<'a> RangeReader<'a> {
    /// Open `owner`'s file `name` (`key`'s own with `None`) as `key`: read
    /// its root record, open its file key and learn which holders answer
    /// fastest (from `opts.rtts` when given, else by probing the holders
    /// the root lists). No chunk and no page is fetched yet.
    pub async fn open(
        session: &'a Session,
        key: &'a UserKey,
        owner: Option<&UserPublic>,
        name: &str,
        opts: &GetOptions,
    ) -> Result<RangeReader<'a>, GetError> {
        let own = owner.is_none_or(|o| o.user == key.user_id());
        let found = records::find_file(session, key, owner, name).await;
        let (record, window) = match found {
            Ok(r) if r.live_manifest().is_some() || !own => (r, None),
            Ok(_) | Err(GetError::NotFound(_)) if own => {
                let (slice, version) = crate::pack::packed_slice(session, key, name)
                    .await?
                    .ok_or_else(|| GetError::NotFound(name.to_string()))?;
                let pack = crate::pack::pack_record(session, key, &slice, name).await?;
                (pack, Some((slice, version)))
            }
            other => (other?, None),
        };
        Self::open_record(session, key, record, name, window, opts).await
    }

    /// Open `key`'s whole pack `slice` names (checked to be at the
    /// slice's version), to read several of its files in one pass.
    pub async fn open_pack(
        session: &'a Session,
        key: &'a UserKey,
        slice: &PackSlice,
        opts: &GetOptions,
    ) -> Result<RangeReader<'a>, GetError> {
        let shown = format!("pack {}", slice.handle);
        let record = crate::pack::pack_record(session, key, slice, &shown).await?;
        Self::open_record(session, key, record, &shown, None, opts).await
    }

    /// Open `record` (live), whole or as the window `window`.
    async fn open_record(
        session: &'a Session,
        key: &'a UserKey,
        record: FileRecord,
        name: &str,
        window: Option<(PackSlice, u64)>,
        opts: &GetOptions,
    ) -> Result<RangeReader<'a>, GetError> {
        let manifest = record
            .live_manifest()
            .ok_or_else(|| GetError::NotFound(name.to_string()))?
            .clone();
        let wrap = manifest
            .wrap_for(&key.x25519_public())
            .ok_or_else(|| GetError::NotShared {
                name: name.to_string(),
                owner: record.owner().to_hex(),
            })?;
        let file_key = FileKey(key.unwrap_key(wrap)?);
        let starts = chunk_starts(manifest.chunks.len(), &manifest.pages);
        let total = starts.last().copied().unwrap_or(0);
        check_geometry(manifest.size, manifest.segment_size, total).map_err(|()| {
            GetError::BadGeometry {
                name: name.to_string(),
                size: manifest.size,
                chunks: total,
                segment: manifest.segment_size,
            }
        })?;
        let rtt = match &opts.rtts {
            Some(warm) => warm.0.clone(),
            None => {
                let mut holders: Vec<NodeId> = manifest
                    .chunks
                    .iter()
                    .flat_map(|c| record.live_holders(&c.id))
                    .collect();
                holders.sort();
                holders.dedup();
                measure(session, &holders).await?
            }
        };
        let (base, shown_size, shown_version) = match &window {
            Some((slice, version)) => {
                if slice.end().is_none_or(|end| end > manifest.size) {
                    return Err(GetError::BadPack {
                        name: name.to_string(),
                        why: format!(
                            "slice {}+{} past the pack's {} bytes",
                            slice.offset, slice.len, manifest.size
                        ),
                    });
                }
                (slice.offset, slice.len, *version)
            }
            None => (0, manifest.size, manifest.version),
        };
        Ok(RangeReader {
            session,
            shown: name.to_string(),
            owner: *record.owner(),
            prefix: manifest.nonce_prefix,
            whole_size: manifest.size,
            base,
            shown_size,
            shown_version,
            packed_hash: window.as_ref().map(|(s, _)| s.hash),
            segment: manifest.segment_size,
            root: Arc::new(Page { record, manifest }),
            starts,
            file_key,
            sources: Sources::new(session, key, rtt),
            in_flight: opts.in_flight.max(1),
            chunks_fetched: AtomicU64::new(0),
            pages_loaded: AtomicU64::new(0),
        })
    }

    /// The file's plaintext size.
    pub fn size(&self) -> u64 {
        self.shown_size
    }

    /// The version being read (a packed file's: its folder entry's).
    pub fn version(&self) -> u64 {
        self.shown_version
    }

    /// A packed file's BLAKE3, which a read of the whole file should match.
    pub fn packed_hash(&self) -> Option<[u8; 32]> {
        self.packed_hash
    }

    /// Whether the file's bytes are a slice of a pack.
    pub fn is_packed(&self) -> bool {
        self.packed_hash.is_some()
    }

    /// Plaintext bytes per chunk.
    pub fn segment_size(&self) -> u64 {
        self.segment
    }

    /// The bytes `[offset, offset + len)`, in order, as pieces of at most
    /// one segment each: the length actually served (see [`clamp`]) and
    /// the stream. A range from at or past the end is
    /// [`GetError::RangeNotSatisfiable`] (unless it is empty and starts at
    /// the end); one that runs past the end is cut there. The stream ends
    /// after its first error.
    pub fn read(
        &self,
        offset: u64,
        len: u64,
    ) -> Result<(u64, impl Stream<Item = Result<Vec<u8>, GetError>> + '_), GetError> {
        let len =
            clamp(offset, len, self.shown_size).ok_or_else(|| GetError::RangeNotSatisfiable {
                name: self.shown.clone(),
                offset,
                size: self.shown_size,
            })?;
        let offset = self.base + offset;
        let chunks = chunk_span(offset, len, self.segment);
        let end = offset + len;
        // Pages (0 is the root) whose chunks meet the range.
        let pages = if chunks.is_empty() {
            0..0
        } else {
            self.page_of(chunks.start)..self.page_of(chunks.end - 1) + 1
        };
        let stream = futures::stream::iter(pages)
            .map(move |p| async move { Ok::<_, GetError>((p, self.page(p).await?)) })
            .buffered(PAGES_AHEAD)
            .map_ok(move |(p, page)| {
                let lo = chunks.start.max(self.starts[p]);
                let hi = chunks.end.min(self.starts[p + 1]);
                futures::stream::iter(
                    (lo..hi).map(move |i| Ok::<_, GetError>((i, page.clone(), p))),
                )
            })
            .try_flatten()
            .map(move |item| async move {
                let (i, page, p) = item?;
                self.chunk(i, &page, p, offset, end).await
            })
            .buffered(self.in_flight)
            .scan(false, |failed, r| {
                let out = (!*failed).then_some(r);
                *failed = out.as_ref().is_some_and(Result::is_err);
                futures::future::ready(out)
            });
        Ok((len, stream))
    }

    /// Tell the nodes how they served and say what was fetched.
    pub async fn finish(self) -> RangeReport {
        let results = self.sources.report().await;
        RangeReport {
            chunks_fetched: self.chunks_fetched.load(Ordering::Relaxed),
            pages_loaded: self.pages_loaded.load(Ordering::Relaxed),
            results,
        }
    }

    /// The record (0: the root) listing chunk `index`.
    fn page_of(&self, index: u64) -> usize {
        // starts[0] = 0 ≤ index, so at least one start is ≤ index.
        self.starts
            .partition_point(|s| *s <= index)
            .saturating_sub(1)
    }

    /// Record `p`: the root, or page `p` read and checked against the root.
    async fn page(&self, p: usize) -> Result<Arc<Page>, GetError> {
        if p == 0 {
            return Ok(self.root.clone());
        }
        let bad = || GetError::BadPage {
            name: self.shown.clone(),
            page: p,
        };
        let r = self.root.manifest.pages.get(p - 1).ok_or_else(bad)?;
        let name = page_name(self.root.record.name(), p);
        let page = load_page(self.session, &self.owner, &name, p, r, &self.shown).await?;
        self.pages_loaded.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(page))
    }

    /// Chunk `i` (listed by `page`, record `p`), fetched, opened and cut to
    /// the part inside `[offset, end)`.
    async fn chunk(
        &self,
        i: u64,
        page: &Page,
        p: usize,
        offset: u64,
        end: u64,
    ) -> Result<Vec<u8>, GetError> {
        let bad = || GetError::BadPage {
            name: self.shown.clone(),
            page: p,
        };
        let at = usize::try_from(i - self.starts[p]).map_err(|_| bad())?;
        let c = page.manifest.chunks.get(at).ok_or_else(bad)?;
        let index = u32::try_from(i).map_err(|_| bad())?;
        let holders = by_rtt(page.record.live_holders(&c.id), self.sources.rtt());
        let data = self
            .sources
            .fetch(index, c, page.record.record_key(), holders, Vec::new())
            .await?;
        self.chunks_fetched.fetch_add(1, Ordering::Relaxed);
        let total = self.starts.last().copied().unwrap_or(0);
        let (key, prefix, id, seg) = (self.file_key.clone(), self.prefix, c.id, self.segment);
        let last = i + 1 == total;
        let plain = tokio::task::spawn_blocking(move || {
            decode_segment(
                &key,
                &prefix,
                index,
                last,
                &id,
                data.into_bytes(),
                seg as usize,
            )
        })
        .await
        .map_err(|_| GetError::DecoderGone)??;
        let (start, want) = span_of(i, total, self.whole_size, seg);
        if plain.len() as u64 != want {
            return Err(GetError::Codec(if plain.len() as u64 > want {
                ifs_core::CodecError::SegmentTooLarge {
                    index,
                    len: plain.len() as u64,
                    max: want as usize,
                }
            } else {
                ifs_core::CodecError::Truncated { index }
            }));
        }
        let from = (offset.max(start) - start) as usize;
        let to = (end.min(start + want) - start) as usize;
        let mut plain = plain;
        plain.truncate(to);
        plain.drain(..from);
        Ok(plain)
    }
}

/// Round trips to `holders` among the nodes the entry node knows (which
/// also makes them dialable).
async fn measure(session: &Session, holders: &[NodeId]) -> Result<HashMap<NodeId, f64>, GetError> {
    let known = table::known_nodes(session).await?;
    let probe = known
        .into_iter()
        .filter(|k| holders.contains(&k.node))
        .collect();
    Ok(table::probe_all(session, probe, 1)
        .await
        .into_iter()
        .filter_map(|p| p.rtt_ms.map(|r| (p.known.node, r)))
        .collect())
}

/// The length served of `[offset, offset + len)` in a file of `size`
/// bytes: cut at the end; `None` when the range starts at or past the end
/// and is not empty (an empty range at the end is served, empty).
pub fn clamp(offset: u64, len: u64, size: u64) -> Option<u64> {
    if offset > size || (offset == size && len > 0) {
        return None;
    }
    Some(len.min(size - offset))
}

/// Positions of the chunks holding `[offset, offset + len)` at `segment`
/// bytes per chunk (empty for an empty range).
pub fn chunk_span(offset: u64, len: u64, segment: u64) -> std::ops::Range<u64> {
    if len == 0 || segment == 0 {
        return 0..0;
    }
    offset / segment..(offset + len - 1) / segment + 1
}

/// Where chunk `i` of `total` starts in a file of `size` bytes cut at
/// `segment`, and how many plaintext bytes it holds.
fn span_of(i: u64, total: u64, size: u64, segment: u64) -> (u64, u64) {
    let start = i * segment;
    let len = if i + 1 == total {
        size.saturating_sub(start)
    } else {
        segment
    };
    (start, len)
}

/// First chunk index of the root (`root_chunks` chunks) and of each page,
/// then the total.
fn chunk_starts(root_chunks: usize, pages: &[PageRef]) -> Vec<u64> {
    let mut starts = Vec::with_capacity(pages.len() + 2);
    let mut at = 0u64;
    starts.push(at);
    at += root_chunks as u64;
    starts.push(at);
    for r in pages {
        at += u64::from(r.chunks);
        starts.push(at);
    }
    starts
}

/// Whether `chunks` chunks of `segment` bytes are how the encoder cuts
/// `size` bytes: full segments, then a last one of at least one byte (a
/// single empty one for an empty file).
fn check_geometry(size: u64, segment: u64, chunks: u64) -> Result<(), ()> {
    if segment == 0 || segment > MAX_SEGMENT_SIZE as u64 {
        return Err(());
    }
    if chunks == size.div_ceil(segment).max(1) {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_maps_to_the_chunks_that_hold_it() {
        let seg = 1024;
        assert_eq!(chunk_span(0, 1024, seg), 0..1, "exactly the first chunk");
        assert_eq!(chunk_span(1024, 2048, seg), 1..3, "two whole chunks");
        assert_eq!(chunk_span(1023, 2, seg), 0..2, "one byte either side");
        assert_eq!(chunk_span(5000, 10, seg), 4..5, "inside one chunk");
        assert_eq!(chunk_span(7, 0, seg), 0..0, "nothing");
    }

    #[test]
    fn ranges_past_the_end_are_cut_or_refused_as_http_does() {
        assert_eq!(clamp(0, 10, 100), Some(10));
        assert_eq!(clamp(95, 10, 100), Some(5), "cut at the end");
        assert_eq!(clamp(99, u64::MAX, 100), Some(1));
        assert_eq!(clamp(100, 1, 100), None, "starts at the end");
        assert_eq!(clamp(101, 0, 100), None, "starts past the end");
        assert_eq!(clamp(100, 0, 100), Some(0), "empty at the end");
        assert_eq!(clamp(0, 0, 0), Some(0), "an empty file, read empty");
        assert_eq!(clamp(0, 1, 0), None);
    }

    #[test]
    fn only_the_encoders_geometry_is_accepted() {
        assert!(check_geometry(0, 1024, 1).is_ok(), "one empty segment");
        assert!(check_geometry(1024, 1024, 1).is_ok());
        assert!(check_geometry(1025, 1024, 2).is_ok());
        assert!(check_geometry(1025, 1024, 3).is_err(), "a chunk too many");
        assert!(check_geometry(3000, 1024, 2).is_err(), "a chunk short");
        assert!(check_geometry(10, 0, 1).is_err(), "no segment size");
        assert!(check_geometry(10, u64::MAX, 1).is_err(), "oversized");
        assert_eq!(
            span_of(2, 3, 2100, 1000),
            (2000, 100),
            "the last is the rest"
        );
        assert_eq!(span_of(1, 3, 2100, 1000), (1000, 1000));
    }

    #[test]
    fn chunks_are_found_in_their_page() {
        let refs = |n: &[u32]| -> Vec<PageRef> {
            n.iter()
                .map(|&chunks| PageRef {
                    chunks,
                    hash: [0; 32],
                })
                .collect()
        };
        let starts = chunk_starts(112, &refs(&[112, 40]));
        assert_eq!(starts, vec![0, 112, 224, 264]);
        let page_of = |i: u64| starts.partition_point(|s| *s <= i).saturating_sub(1);
        assert_eq!(page_of(0), 0);
        assert_eq!(page_of(111), 0);
        assert_eq!(page_of(112), 1);
        assert_eq!(page_of(223), 1);
        assert_eq!(page_of(263), 2);
        // A record from before pages: one root of many chunks.
        assert_eq!(chunk_starts(5000, &[]), vec![0, 5000]);
    }
}
