//! `get`: read and verify the file record, unwrap the key, fetch every chunk
//! from its best live holder (falling back to the next), decode on the
//! codec's threads and stream the plaintext out; then tell the nodes how
//! they served.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ifs_core::codec::{CodecParams, Decoder, FileKey, WriteAt};
use ifs_core::keys::{UserKey, UserPublic};
use ifs_core::proto::{CtlRequest, FetchOutcome};
use ifs_core::wire::ChunkRef;
use ifs_core::wire::FetchRequest;
use ifs_core::{CheckedChunk, ChunkId, NodeId};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::error::{FetchError, GetError};
use crate::pages::{self, FileView};
use crate::plan::node_name;
use crate::put::now_ms;
use crate::records;
use crate::session::Session;
use crate::table;
use crate::transfer::fetch_chunk;

/// How a get runs.
#[derive(Clone, Debug)]
pub struct GetOptions {
    /// Chunks fetched at once.
    pub in_flight: usize,
    /// Plaintext bytes written so far (for progress bars).
    pub progress: Option<Arc<AtomicU64>>,
    /// Round trips measured once for many gets ([`probe_nodes`]); without
    /// it each get asks the entry node's table and probes the holders.
    pub rtts: Option<Arc<NodeRtts>>,
}

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions {
            in_flight: 4,
            progress: None,
            rtts: None,
        }
    }
}

/// Round trips to the nodes the entry node sees alive, ms (a node that did
/// not answer the probe is absent).
#[derive(Clone, Debug, Default)]
pub struct NodeRtts(pub HashMap<NodeId, f64>);

/// Learn every node from the entry node's table (so it can be dialled) and
/// probe the ones alive: what many gets in a row can share.
pub async fn probe_nodes(session: &Session) -> Result<NodeRtts, GetError> {
    let known = table::known_nodes(session).await?;
    let rtt = table::probe_all(session, known, 1)
        .await
        .into_iter()
        .filter_map(|p| p.rtt_ms.map(|r| (p.known.node, r)))
        .collect();
    Ok(NodeRtts(rtt))
}

/// The outcome of a get.
#[derive(Clone, Debug)]
pub struct GetReport {
    /// Plaintext bytes written.
    pub size: u64,
    /// Chunks fetched.
    pub chunks: usize,
    /// How each node served.
    pub results: Vec<(NodeId, FetchOutcome)>,
}

/// Per-node tallies while fetching.
#[derive(Default)]
struct Tally {
    ok: u32,
    failed: u32,
    millis: f64,
}

/// Fetch `key`'s own file `name` through `session` and write it to `out`.
pub async fn get<W: Write + Send + 'static>(
    session: &Session,
    key: &UserKey,
    name: &str,
    out: W,
    opts: GetOptions,
) -> Result<(GetReport, W), GetError> {
    fetch_into(session, key, None, name, out, None, opts).await
}

/// Fetch `owner`'s file `name` as `key` (the owner or a reader the owner
/// granted) through `session` and write it to `out`.
pub async fn get_from<W: Write + Send + 'static>(
    session: &Session,
    key: &UserKey,
    owner: &UserPublic,
    name: &str,
    out: W,
    opts: GetOptions,
) -> Result<(GetReport, W), GetError> {
    fetch_into(session, key, Some(owner), name, out, None, opts).await
}

/// Fetch `owner`'s file `name` (`key`'s own with `None`) as `key` into
/// `file`, which must be empty:
/// each segment is written at its offset by the codec thread that opened
/// it, so writing the file is spread over the cores instead of queueing on
/// one thread. On success the file holds exactly the file's bytes (not yet
/// synced); on an error it may hold some of them.
pub async fn get_to_file(
    session: &Session,
    key: &UserKey,
    owner: Option<&UserPublic>,
    name: &str,
    file: Arc<std::fs::File>,
    opts: GetOptions,
) -> Result<GetReport, GetError> {
    let at: Arc<dyn WriteAt> = Arc::new(FileAt(file));
    let (report, _) =
        fetch_into(session, key, owner, name, std::io::sink(), Some(at), opts).await?;
    Ok(report)
}

/// A file written at offsets.
struct FileAt(Arc<std::fs::File>);

impl WriteAt for FileAt {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&*self.0, buf, offset)
    }
}

/// The get itself: into `out` in order, or with `at`, at each segment's
/// offset (see [`Decoder::new_at`]).
async fn fetch_into<W: Write + Send + 'static>(
    session: &Session,
    key: &UserKey,
    owner: Option<&UserPublic>,
    name: &str,
    out: W,
    at: Option<Arc<dyn WriteAt>>,
    opts: GetOptions,
) -> Result<(GetReport, W), GetError> {
    let own = owner.is_none_or(|o| o.user == key.user_id());
    let record = match records::find_file(session, key, owner, name).await {
        Ok(r) if r.live_manifest().is_some() || !own => r,
        // No record of its own: a packed file, or none at all.
        Ok(_) | Err(GetError::NotFound(_)) if own => {
            return fetch_packed(session, key, name, out, at, opts).await;
        }
        other => other?,
    };
    let owner = *record.owner();
    let view = pages::load(session, record, name).await?;
    let manifest = view.root().manifest.clone();
    let wrap = manifest
        .wrap_for(&key.x25519_public())
        .ok_or_else(|| GetError::NotShared {
            name: name.to_string(),
            owner: owner.to_hex(),
        })?;
    let file_key = FileKey(key.unwrap_key(wrap)?);

    let (order, rtt) = holder_order(session, &view, opts.rtts.as_deref()).await?;
    let sources = Sources::new(session, key, rtt);

    // The decoder runs on its own threads; the channel bounds what waits for
    // it. Chunks are received into its buffers, which come back once their
    // plaintext is written, and are hashed once, on arrival.
    let (tx, mut rx) = mpsc::channel::<(u32, CheckedChunk)>(2);
    let params = CodecParams::with_segment_size(manifest.segment_size as usize);
    let ids: Vec<ChunkId> = view.chunks().map(|(c, _)| c.id).collect();
    let ids_len = ids.len();
    let (progress, prefix) = (opts.progress.clone(), manifest.nonce_prefix);
    let mut dec = match at {
        Some(at) => Decoder::new_at(&file_key, prefix, ids, out, at, manifest.size, &params)?,
        None => Decoder::new(&file_key, prefix, ids, out, &params)?,
    };
    let buffers = dec.buffers();
    let decoder = std::thread::spawn(move || -> Result<W, GetError> {
        while let Some((index, chunk)) = rx.blocking_recv() {
            dec.push_checked(index, chunk)?;
            if let Some(p) = &progress {
                p.store(dec.written(), Ordering::Relaxed);
            }
        }
        Ok(dec.finish()?)
    });

    let fetches = futures::stream::iter(view.chunks().enumerate())
        .map(|(i, (c, rec))| {
            let holders = order.get(&c.id).cloned().unwrap_or_default();
            let (sources, buffers) = (&sources, &buffers);
            async move {
                let data = sources
                    .fetch(
                        i as u32,
                        c,
                        rec.record_key(),
                        holders,
                        buffers.take_reused(),
                    )
                    .await?;
                Ok((i as u32, data))
            }
        })
        .buffered(opts.in_flight.max(1));
    futures::pin_mut!(fetches);
    let mut failure = None;
    while let Some(r) = fetches.next().await {
        match r {
            Ok(item) => {
                if tx.send(item).await.is_err() {
                    break; // the decoder failed: its error tells why
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let decoded = tokio::task::spawn_blocking(move || decoder.join())
        .await
        .map_err(|_| GetError::DecoderGone)?
        .map_err(|_| GetError::DecoderGone)?;
    let results = sources.report().await;
    if let Some(e) = failure {
        return Err(e);
    }
    let out = decoded?;
    Ok((
        GetReport {
            size: manifest.size,
            chunks: ids_len,
            results,
        },
        out,
    ))
}

/// A get of a packed file: its slice of its pack, through a range read
/// (which fetches only the chunks of the pack that hold the file).
async fn fetch_packed<W: Write + Send + 'static>(
    session: &Session,
    key: &UserKey,
    name: &str,
    mut out: W,
    at: Option<Arc<dyn WriteAt>>,
    opts: GetOptions,
) -> Result<(GetReport, W), GetError> {
    let reader = crate::range::RangeReader::open(session, key, None, name, &opts).await?;
    let size = reader.size();
    let want = reader.packed_hash();
    let mut hasher = blake3::Hasher::new();
    {
        let (_, stream) = reader.read(0, size)?;
        futures::pin_mut!(stream);
        let mut pos = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            hasher.update(&piece);
            let wrote = match &at {
                Some(at) => at.write_all_at(&piece, pos),
                None => out.write_all(&piece),
            };
            wrote.map_err(|e| GetError::Codec(ifs_core::CodecError::Write(e)))?;
            pos += piece.len() as u64;
            if let Some(p) = &opts.progress {
                p.store(pos, Ordering::Relaxed);
            }
        }
    }
    let report = reader.finish().await;
    if want.is_some_and(|h| h != *hasher.finalize().as_bytes()) {
        return Err(GetError::BadPack {
            name: name.to_string(),
            why: "the bytes read do not match the file's hash".into(),
        });
    }
    out.flush()
        .map_err(|e| GetError::Codec(ifs_core::CodecError::Write(e)))?;
    Ok((
        GetReport {
            size,
            chunks: report.chunks_fetched as usize,
            results: report.results,
        },
        out,
    ))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a read fetches its chunks: each chunk from its holders in turn,
/// the least busy of the near-fastest first, with every node's successes,
/// failures and times tallied for the report the nodes get afterwards.
pub(crate) struct Sources<'a> {
    session: &'a Session,
    key: &'a UserKey,
    rtt: HashMap<NodeId, f64>,
    load: std::sync::Mutex<HashMap<NodeId, usize>>,
    tallies: std::sync::Mutex<HashMap<NodeId, Tally>>,
}

impl<'a> Sources<'a> {
    /// Sources through `session`, fetching as `key`, with measured round
    /// trips `rtt`.
    pub(crate) fn new(session: &'a Session, key: &'a UserKey, rtt: HashMap<NodeId, f64>) -> Self {
        Sources {
            session,
            key,
            rtt,
            load: Default::default(),
            tallies: Default::default(),
        }
    }

    /// Round trips measured to the nodes.
    pub(crate) fn rtt(&self) -> &HashMap<NodeId, f64> {
        &self.rtt
    }

    /// Chunk `index` (`c`, whose receipts are in the record keyed
    /// `record_key`), from `holders` (fastest first) in turn until one
    /// serves it, received into `buf`.
    pub(crate) async fn fetch(
        &self,
        index: u32,
        c: &ChunkRef,
        record_key: [u8; 32],
        holders: Vec<NodeId>,
        mut buf: Vec<u8>,
    ) -> Result<CheckedChunk, GetError> {
        let mut tried = Vec::new();
        let holders = spread(holders, &self.rtt, &lock(&self.load));
        for node in holders {
            let _busy = Busy::start(&self.load, node);
            let Ok(peer) = ifs_net::node_id_to_peer_id(&node) else {
                continue;
            };
            let req = FetchRequest::new(self.key, c.id, record_key, node, now_ms(), rand::random());
            let start = Instant::now();
            // On a task of its own, so the chunks in flight are received and
            // hashed on every core, not in turn on the one task that polls
            // them all.
            let (net, id, len) = (self.session.net().clone(), c.id, c.len);
            let taken = std::mem::take(&mut buf);
            let got =
                tokio::spawn(async move { fetch_chunk(&net, peer, &req, &id, len, taken).await })
                    .await
                    .unwrap_or_else(|e| Err(FetchError::Transport(format!("fetch task: {e}"))));
            let mut t = lock(&self.tallies);
            let tally = t.entry(node).or_default();
            match got {
                Ok(data) => {
                    tally.ok += 1;
                    tally.millis += start.elapsed().as_secs_f64() * 1000.0;
                    return Ok(data);
                }
                Err(e) => {
                    tally.failed += 1;
                    warn!(index, node = %peer, "fetch failed, trying the next holder: {e}");
                    tried.push(format!("{peer}: {e}"));
                }
            }
        }
        Err(GetError::ChunkUnavailable {
            index,
            chunk: c.id.to_hex(),
            tried: if tried.is_empty() {
                "no live holder".into()
            } else {
                tried.join("; ")
            },
        })
    }

    /// How each node served, sent to the nodes involved (best effort).
    pub(crate) async fn report(&self) -> Vec<(NodeId, FetchOutcome)> {
        let results = verdicts(&lock(&self.tallies));
        report_results(self.session, &results).await;
        results
    }
}

/// Per chunk, its live holders, fastest first (probed RTT; holders that did
/// not answer the probe go last but are still tried).
async fn holder_order(
    session: &Session,
    view: &FileView,
    warm: Option<&NodeRtts>,
) -> Result<(HashMap<ChunkId, Vec<NodeId>>, HashMap<NodeId, f64>), GetError> {
    if let Some(warm) = warm {
        let order = view
            .chunks()
            .map(|(c, record)| (c.id, by_rtt(record.live_holders(&c.id), &warm.0)))
            .collect();
        return Ok((order, warm.0.clone()));
    }
    let known = table::known_nodes(session).await?;
    let mut all: Vec<NodeId> = view
        .chunks()
        .flat_map(|(c, record)| record.live_holders(&c.id))
        .collect();
    all.sort();
    all.dedup();
    let probe = known
        .into_iter()
        .filter(|k| all.contains(&k.node))
        .collect();
    // Holders that miss the probe grace are still tried, last.
    let rtt: HashMap<NodeId, f64> = table::probe_all(session, probe, 1)
        .await
        .into_iter()
        .filter_map(|p| p.rtt_ms.map(|r| (p.known.node, r)))
        .collect();
    let order = view
        .chunks()
        .map(|(c, record)| (c.id, by_rtt(record.live_holders(&c.id), &rtt)))
        .collect();
    Ok((order, rtt))
}

/// A holder whose round trip is within this factor of the fastest one's
/// (plus [`NEAR_SLACK_MS`]) is as good a source: chunks are spread over
/// such holders instead of all queueing on the single fastest, so a get
/// draws on several uplinks (and, on one machine, several processes).
const NEAR_FACTOR: f64 = 2.0;
/// Absolute slack for [`NEAR_FACTOR`]: on a LAN every round trip is a
/// fraction of a millisecond and their ratios mean nothing.
const NEAR_SLACK_MS: f64 = 2.0;

/// The order to try `holders` (fastest first, as [`by_rtt`] gives them) for
/// one chunk, given how many fetches each node is serving now: the least
/// busy of the near-fastest holders first, then the rest as they were.
pub fn spread(
    holders: Vec<NodeId>,
    rtt: &HashMap<NodeId, f64>,
    load: &HashMap<NodeId, usize>,
) -> Vec<NodeId> {
    let Some(best) = holders.first().and_then(|n| rtt.get(n)).copied() else {
        return holders;
    };
    let near = |n: &NodeId| {
        rtt.get(n)
            .is_some_and(|r| *r <= best * NEAR_FACTOR + NEAR_SLACK_MS)
    };
    let busy = |n: &NodeId| load.get(n).copied().unwrap_or(0);
    // `min_by_key` keeps the first of equals: the faster one.
    let pick = holders
        .iter()
        .filter(|n| near(n))
        .min_by_key(|n| busy(n))
        .copied();
    let mut out = holders;
    if let Some(p) = pick
        && let Some(i) = out.iter().position(|n| *n == p)
    {
        let first = out.remove(i);
        out.insert(0, first);
    }
    out
}

/// Counts a fetch against its node while it runs.
struct Busy<'a> {
    load: &'a std::sync::Mutex<HashMap<NodeId, usize>>,
    node: NodeId,
}

impl<'a> Busy<'a> {
    fn start(load: &'a std::sync::Mutex<HashMap<NodeId, usize>>, node: NodeId) -> Self {
        *lock(load).entry(node).or_default() += 1;
        Busy { load, node }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(n) = lock(self.load).get_mut(&self.node) {
            *n = n.saturating_sub(1);
        }
    }
}

/// `holders` ordered by round trip, unmeasured ones last.
pub fn by_rtt(mut holders: Vec<NodeId>, rtt: &HashMap<NodeId, f64>) -> Vec<NodeId> {
    holders.sort_by(|a, b| {
        let ra = rtt.get(a).copied().unwrap_or(f64::INFINITY);
        let rb = rtt.get(b).copied().unwrap_or(f64::INFINITY);
        ra.total_cmp(&rb).then(a.cmp(b))
    });
    holders
}

/// A node that failed any fetch failed; one whose mean fetch took over
/// three times the median of the others' is slow; the rest are ok.
fn verdicts(tallies: &HashMap<NodeId, Tally>) -> Vec<(NodeId, FetchOutcome)> {
    let mut means: Vec<f64> = tallies
        .values()
        .filter(|t| t.ok > 0)
        .map(|t| t.millis / f64::from(t.ok))
        .collect();
    means.sort_by(f64::total_cmp);
    let median = means.get(means.len() / 2).copied().unwrap_or(0.0);
    let mut out: Vec<(NodeId, FetchOutcome)> = tallies
        .iter()
        .map(|(n, t)| {
            let outcome = if t.failed > 0 {
                FetchOutcome::Failed
            } else if means.len() > 1 && t.millis / f64::from(t.ok.max(1)) > 3.0 * median {
                FetchOutcome::Slow
            } else {
                FetchOutcome::Ok
            };
            (*n, outcome)
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

/// Send the per-node results to every node involved (best effort).
async fn report_results(session: &Session, results: &[(NodeId, FetchOutcome)]) {
    let req = CtlRequest::ReportResults {
        results: results.to_vec(),
    };
    let sends = results.iter().filter_map(|(n, _)| {
        let peer = ifs_net::node_id_to_peer_id(n).ok()?;
        let req = &req;
        Some(async move {
            let r =
                tokio::time::timeout(Duration::from_secs(5), session.request_to(peer, req)).await;
            if !matches!(r, Ok(Ok(_))) {
                debug!(node = %node_name(n), "results not delivered");
            }
        })
    });
    futures::future::join_all(sends).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_tried_fastest_first_and_unmeasured_last() {
        let (a, b, c) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        let rtt = HashMap::from([(a, 9.0), (c, 1.0)]);
        assert_eq!(by_rtt(vec![a, b, c], &rtt), vec![c, a, b]);
    }

    #[test]
    fn chunks_spread_over_near_holders_but_not_onto_far_ones() {
        let (a, b, c, d) = (
            NodeId([1; 32]),
            NodeId([2; 32]),
            NodeId([3; 32]),
            NodeId([4; 32]),
        );
        let rtt = HashMap::from([(a, 1.0), (b, 1.5), (c, 40.0)]);
        let idle = HashMap::new();
        // Nobody busy: the fastest.
        assert_eq!(spread(vec![a, b, c], &rtt, &idle), vec![a, b, c]);
        // The fastest busy: its near neighbour goes first, the rest keep order.
        let load = HashMap::from([(a, 2), (b, 1)]);
        assert_eq!(spread(vec![a, b, c], &rtt, &load), vec![b, a, c]);
        // A far holder is never preferred for being idle.
        let load = HashMap::from([(a, 5), (b, 5)]);
        assert_eq!(spread(vec![a, b, c], &rtt, &load), vec![a, b, c]);
        // Unmeasured holders stay last; with no measurement at all, as given.
        assert_eq!(spread(vec![a, d], &rtt, &load), vec![a, d]);
        assert_eq!(spread(vec![d, c], &HashMap::new(), &load), vec![d, c]);
    }

    #[test]
    fn failures_and_slow_nodes_are_reported_as_such() {
        let mut t = HashMap::new();
        let tally = |ok, failed, millis| Tally { ok, failed, millis };
        t.insert(NodeId([1; 32]), tally(2, 0, 20.0));
        t.insert(NodeId([2; 32]), tally(2, 0, 22.0));
        t.insert(NodeId([3; 32]), tally(1, 0, 500.0));
        t.insert(NodeId([4; 32]), tally(1, 1, 10.0));
        let v = verdicts(&t);
        assert_eq!(
            v.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
            vec![
                FetchOutcome::Ok,
                FetchOutcome::Ok,
                FetchOutcome::Slow,
                FetchOutcome::Failed
            ]
        );
    }
}
