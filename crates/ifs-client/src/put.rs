//! `put`: encode a stream, place every chunk R times along header chains,
//! verify receipts, resend what is missing, commit the records. It runs
//! on [`crate::upload::Upload`]: one upload, its segments in one call.
//!
//! The codec runs on its own threads and hands chunks over a bounded
//! channel, so memory stays bounded whatever the input size.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use ifs_core::codec::{CodecParams, FileKey, NoncePrefix};
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{UserKey, wrap_key};
use ifs_core::placement::Policy;
use ifs_core::wire::{ChunkRef, Manifest, ManifestFields, PAGE_CHUNKS, Receipt};
use ifs_core::{ChunkId, NodeId, UserId};
use ifs_net::PeerId;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ClientError, PutError};
use crate::folders;
use crate::pages;
use crate::place::Placer;
use crate::plan::{node_name, reservation_bytes};
use crate::records;
use crate::reserve::{Book, reserve, settle_all};
use crate::session::Session;
use crate::table::{self, Probed};
use crate::upload::{Segments, Upload};

/// Nodes reserved beyond R, as alternates for resends.
pub const EXTRA_CANDIDATES: usize = 2;

/// What to put and how.
#[derive(Clone, Debug)]
pub struct PutOptions {
    /// The file's name in the owner's namespace.
    pub name: String,
    /// Replicas per chunk (R).
    pub replicas: usize,
    /// Extra reservation, percent.
    pub overprovision_pct: u32,
    /// The input's size when known (a file), to size reservations.
    pub size_hint: Option<u64>,
    /// Codec settings.
    pub codec: CodecParams,
    /// Chunks travelling at once.
    pub in_flight: usize,
    /// Plaintext bytes placed so far (for progress bars).
    pub progress: Option<Arc<AtomicU64>>,
    /// Users besides the owner that may read the file (the fetch ACL).
    pub readers: Vec<UserId>,
    /// x25519 keys besides the owner's the file key is wrapped to.
    pub reader_keys: Vec<[u8; 32]>,
    /// How long a placed, uncommitted chunk is relied on to stay stored
    /// (see [`crate::upload::RESUME_WINDOW`], the default).
    pub resume_window: std::time::Duration,
}

impl PutOptions {
    /// Defaults: R=3, +20%, 8 MiB segments, 4 chunks in flight.
    pub fn new(name: impl Into<String>) -> Self {
        PutOptions {
            name: name.into(),
            replicas: 3,
            overprovision_pct: 20,
            size_hint: None,
            codec: CodecParams::default(),
            in_flight: 4,
            progress: None,
            readers: Vec::new(),
            reader_keys: Vec::new(),
            resume_window: crate::upload::RESUME_WINDOW,
        }
    }
}

/// One placed chunk and its verified receipts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlacedChunk {
    /// Position in the file.
    pub index: u32,
    /// The chunk.
    pub id: ChunkId,
    /// Ciphertext length.
    pub len: u64,
    /// Plaintext bytes it holds.
    pub plain_len: u64,
    /// One verified receipt per holder.
    pub receipts: Vec<Receipt>,
    /// The first header chain it was sent along.
    pub chain: Vec<NodeId>,
    /// Whether it was sealed as the file's last segment.
    pub last: bool,
    /// When it was placed (ms since the Unix epoch, this machine's clock).
    pub placed_ms: u64,
}

/// The outcome of a put.
#[derive(Clone, Debug)]
pub struct PutReport {
    /// The file's name.
    pub name: String,
    /// The manifest version written.
    pub version: u64,
    /// Plaintext size.
    pub size: u64,
    /// Every chunk, in order.
    pub chunks: Vec<PlacedChunk>,
    /// The live version this put replaced, if the name held a file.
    pub replaced: Option<Replaced>,
}

/// A file a put replaced (same owner and name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// Its plaintext size.
    pub size: u64,
    /// Its manifest version.
    pub version: u64,
}

/// Put `input` as `opts.name`, owned by `key`, through `session`'s entry
/// node: an [`Upload`] of the whole input in one call, then its commit.
pub async fn put<R: Read + Send + 'static>(
    session: &Session,
    key: &UserKey,
    input: R,
    opts: PutOptions,
) -> Result<PutReport, PutError> {
    if let Some(size) = opts.size_hint {
        pages::check_size(size, opts.codec.segment_size as u64)?;
    }
    let size_hint = opts.size_hint;
    let upload = Upload::begin(session, key, opts).await?;
    let whole = Segments {
        first_index: 0,
        data: input,
        size_hint,
        exact_size: false,
        last: true,
        keep_placed: false,
    };
    upload.put_segments(session, key, whole).await?;
    upload.commit(session, key, upload.placed_bytes()).await
}

/// What a preliminary table must hold room for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableAsk {
    /// Replicas per chunk (R).
    pub replicas: usize,
    /// Ciphertext bytes to place (one replica), when known.
    pub total: Option<u64>,
    /// Extra reservation, percent.
    pub overprovision_pct: u32,
    /// The largest chunk to place.
    pub max_chunk: u64,
}

/// Probe, rank and reserve: a placer over a fresh preliminary table, whose
/// top-ups ask for room for a few chunks of up to `segment_chunk` bytes.
pub(crate) async fn open_table<'a>(
    session: &'a Session,
    key: &'a UserKey,
    ask: &TableAsk,
    segment_chunk: u64,
) -> Result<Placer<'a>, PutError> {
    let (ranked, peers, book, behind_nat) = preliminary_table(session, key, ask).await?;
    let topup = reservation_bytes(0, 1, 1, 0, segment_chunk).max(4 * segment_chunk);
    Ok(
        Placer::new(session, key, ranked, peers, book, (ask.replicas, topup))
            .with_behind_nat(behind_nat),
    )
}

/// Encode `input`, place its chunks through `placer` and write the file
/// record (not its folder entry: the caller writes that, alone or with
/// others of the same folder). The report and the committed manifest.
pub(crate) async fn upload<R: Read + Send + 'static>(
    session: &Session,
    key: &UserKey,
    input: R,
    opts: &PutOptions,
    placer: &Placer<'_>,
) -> Result<(PutReport, Manifest), PutError> {
    let upload = Upload::begin(session, key, opts.clone()).await?;
    let whole = Segments {
        first_index: 0,
        data: input,
        size_hint: opts.size_hint,
        exact_size: false,
        last: true,
        keep_placed: false,
    };
    upload.place_segments(whole, placer).await?;
    upload
        .commit_unlisted(session, key, upload.placed_bytes())
        .await
}

/// The version a put of `name` must use to supersede everything seen.
pub(crate) async fn next_version(session: &Session, key: &UserKey, name: &str) -> u64 {
    current(session, key, name).await.0
}

/// The next version of `name`, the live file it would replace, and how
/// many manifest pages beside the root the newest manifest seen has. The
/// folder entry counts too: a packed file has no record of its own, and
/// a put that went below its entry's version would lose to it.
async fn current(session: &Session, key: &UserKey, name: &str) -> (u64, Option<Replaced>, usize) {
    let (owner, handle) = (key.user_id(), key.file_handle(name));
    let record = records::get_file_record(session, &owner, &handle);
    let entry = folders::own_entry(session, key, name);
    let (record, entry) = futures::join!(record, entry);
    let (mut next, mut live, pages) = match record {
        Ok(Some(rec)) => {
            let live = rec.live_manifest().map(|m| Replaced {
                size: m.size,
                version: m.version,
            });
            let pages = rec.manifest().map_or(0, |m| m.pages.len());
            (rec.next_version(), live, pages)
        }
        Ok(None) => (1, None, 0),
        Err(e) => {
            warn!("existing record unreadable, writing version 1 over it: {e}");
            (1, None, 0)
        }
    };
    match entry {
        Ok(Some((version, deleted, child))) if version >= next => {
            next = version + 1;
            live = match (deleted, child) {
                (false, Some(c)) if c.pack.is_some() => Some(Replaced {
                    size: c.size,
                    version,
                }),
                _ => live,
            };
        }
        Ok(_) => {}
        Err(e) => warn!("folder record unreadable, versioning from the file record: {e}"),
    }
    (next, live, pages)
}

/// Probe the entry node's peers, rank them and reserve on the best R+k.
/// The ranked nodes, their peer ids, the reservations held, and the nodes
/// behind NAT (they list a relay circuit).
type PreliminaryTable = (
    Vec<NodeId>,
    HashMap<NodeId, PeerId>,
    Book,
    std::collections::HashSet<NodeId>,
);

async fn preliminary_table(
    session: &Session,
    key: &UserKey,
    ask: &TableAsk,
) -> Result<PreliminaryTable, PutError> {
    let (replicas, max_chunk) = (ask.replicas.max(1), ask.max_chunk);
    let known = table::known_nodes(session).await?;
    let want = replicas + EXTRA_CANDIDATES;
    // One more node than R is enough to start from; the rest get a grace.
    let probed: Vec<Probed> = table::probe_all(session, known, replicas + 1).await;
    // Unknown size: start with a few chunks per node, top up later.
    let total = ask
        .total
        .unwrap_or(4 * max_chunk * want as u64 / replicas as u64);
    let per_node = reservation_bytes(total, replicas, want, ask.overprovision_pct, max_chunk);
    let policy = Policy {
        need_bytes: per_node,
        ..Policy::default()
    };
    let (order, discards) = table::rank(&probed, &policy);
    let mut why: Vec<String> = discards
        .iter()
        .map(|(i, d)| format!("{}: {d}", probed[*i].known.peer))
        .collect();

    let mut book = Book::default();
    let mut ranked = Vec::new();
    let mut peers = HashMap::new();
    let mut behind_nat = std::collections::HashSet::new();
    for batch in order.chunks(want) {
        if ranked.len() >= want {
            break;
        }
        let asks = batch.iter().map(|&i| {
            let k = &probed[i].known;
            async move {
                let g = reserve(session, k.peer, &k.node, key, per_node).await;
                (k, g)
            }
        });
        for (k, grant) in futures::future::join_all(asks).await {
            match grant {
                Ok(g) if ranked.len() < want => {
                    book.add(g);
                    ranked.push(k.node);
                    peers.insert(k.node, k.peer);
                    if k.behind_nat() {
                        behind_nat.insert(k.node);
                    }
                }
                Ok(_) => {} // more than needed: its reservation lapses unused
                Err(e) => {
                    info!(node = %k.peer, "discarded candidate: reservation refused: {e}");
                    why.push(format!("{}: reservation refused: {e}", k.peer));
                }
            }
        }
    }
    if ranked.len() < replicas {
        settle_all(session, key, &book).await;
        return Err(PutError::NotEnoughNodes {
            usable: ranked.len(),
            replicas,
            discarded: discarded_summary(&why),
        });
    }
    info!(nodes = ranked.len(), per_node, "preliminary table ready");
    Ok((ranked, peers, book, behind_nat))
}

/// Write the manifest and the file record of `placed` (every chunk of
/// the file, in order).
pub(crate) async fn commit_records(
    session: &Session,
    key: &UserKey,
    opts: &PutOptions,
    (file_key, prefix): (&FileKey, NoncePrefix),
    bound_version: u64,
    placed: Vec<PlacedChunk>,
) -> Result<(PutReport, Manifest), PutError> {
    let (name, codec) = (opts.name.as_str(), &opts.codec);
    // A concurrent put may have committed meanwhile: never go below it (a
    // higher version than the chunks' binding is safe, a lower one is not).
    let (next, replaced, old_pages) = current(session, key, name).await;
    let version = next.max(bound_version);
    let size = placed.iter().map(|c| c.plain_len).sum();
    let mut key_wraps = vec![wrap_key(
        file_key.as_bytes(),
        &key.x25519_public(),
        &mut rand::rng(),
    )?];
    for x in &opts.reader_keys {
        key_wraps.push(wrap_key(file_key.as_bytes(), x, &mut rand::rng())?);
    }
    let handle = key.file_handle(name);
    let (manifest, page_manifests) = pages::split(
        key,
        ManifestFields {
            name: handle.clone(),
            version,
            size,
            created_at_ms: now_ms(),
            segment_size: codec.segment_size as u64,
            nonce_prefix: prefix,
            chunks: placed
                .iter()
                .map(|c| ChunkRef {
                    id: c.id,
                    len: c.len,
                })
                .collect(),
            key_wraps,
            readers: opts.readers.clone(),
            replicas: u8::try_from(opts.replicas.max(1)).unwrap_or(u8::MAX),
            pages: vec![],
        },
    )?;
    // Pages first, the root last: a reader that finds the new root finds
    // every page it names.
    let mut by_page = placed.chunks(PAGE_CHUNKS);
    let root_receipts = by_page
        .next()
        .unwrap_or(&[])
        .iter()
        .flat_map(|c| c.receipts.clone())
        .collect();
    let page_records = page_manifests
        .into_iter()
        .zip(by_page)
        .map(|(m, chunks)| {
            FileRecord::from_manifest(m, chunks.iter().flat_map(|c| c.receipts.clone()).collect())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let new_pages = page_records.len();
    pages::put_records(session, page_records).await?;
    let record = FileRecord::from_manifest(manifest.clone(), root_receipts)?;
    records::put_file_record(session, &record).await?;
    if old_pages > new_pages {
        // The pages the replaced, longer version had beyond this one's
        // would keep their chunks live: delete them.
        pages::delete_pages(
            session,
            key,
            &handle,
            (new_pages + 1, old_pages),
            version,
            now_ms(),
        )
        .await
        .map_err(|e| ClientError::Request {
            peer: session.entry().to_string(),
            reason: e.to_string(),
        })?;
    }

    for c in &placed {
        let holders: Vec<String> = c.receipts.iter().map(|r| node_name(&r.node)).collect();
        info!(index = c.index, chunk = %c.id, ?holders, "chunk committed");
    }
    let report = PutReport {
        name: name.to_string(),
        version,
        size,
        chunks: placed,
        replaced,
    };
    Ok((report, manifest))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why candidates were discarded, for an error line: the first few in
/// full, then how many more (a table of hundreds of nodes, made up or
/// not, must not make a one-line error a page long).
fn discarded_summary(why: &[String]) -> String {
    const SHOWN: usize = 5;
    match why.len() {
        0 => String::new(),
        n if n <= SHOWN => format!("; discarded: {}", why.join("; ")),
        n => format!(
            "; discarded: {}; and {} more (-v lists them)",
            why[..SHOWN].join("; "),
            n - SHOWN
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::discarded_summary;

    #[test]
    fn a_long_discard_list_is_cut_to_a_line() {
        assert_eq!(discarded_summary(&[]), "");
        let two = vec!["a: dead".to_string(), "b: full".to_string()];
        assert_eq!(discarded_summary(&two), "; discarded: a: dead; b: full");
        let many: Vec<String> = (0..64).map(|i| format!("n{i}: not alive")).collect();
        let s = discarded_summary(&many);
        assert!(s.ends_with("; and 59 more (-v lists them)"), "{s}");
        assert!(!s.contains("n5:"));
    }
}
