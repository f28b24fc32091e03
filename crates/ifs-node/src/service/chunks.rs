//! The bulk chunk protocol on a node: store-and-forward along the header
//! chain (cut-through: bytes go on to the next hop while they arrive), and
//! serving fetches to the chunk's owner and the readers it granted.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use ifs_core::ChunkId;
use ifs_core::file_record::FileRecord;
use ifs_core::proto::{
    CtlError, FetchOutcome, FetchReply, MAX_CHUNK_BYTES, MAX_STREAM_FRAME, StoreReply, StreamOpen,
    decode, encode,
};
use ifs_core::wire::{FetchRequest, HeaderChain, Receipt, Tombstone};
use ifs_core::{NodeId, UserId};
use ifs_net::frame::{read_frame, write_frame};
use ifs_net::{PeerId, Stream};
use ifs_store::ReservationId;
use tracing::{debug, info, warn};

use super::control::store_error;
use super::{Shared, lock};
use crate::now_ms;
use crate::shaper::Direction;
use crate::telemetry::TrafficClass;
use ifs_core::bandwidth::{PIECE, Priority};

/// Time allowed for a header frame or a reply.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed between two blocks of chunk bytes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How far a signed request's clock (fetch, reserve) may be from ours.
pub(crate) const MAX_FETCH_SKEW_MS: u64 = 10 * 60 * 1000;
/// Cut-through block size.
const BLOCK: usize = 1 << 20;
/// Attempts at a forward stream that the next node dropped unread.
const OPEN_TRIES: u32 = 3;
/// Times a hop opens its forward stream again when it breaks mid-chunk.
const FORWARD_REOPENS: u32 = 2;

/// Why forwarding bytes to the next hop failed.
enum Forward {
    /// The stream returned an error: it is dead, a new one may work.
    Broken(String),
    /// The next hop took nothing for [`IDLE_TIMEOUT`], or could not be
    /// reached again: give up on it.
    Stalled(String),
}

/// Writes `bytes` to the next hop's stream, bounded in time.
async fn forward(s: &mut Stream, bytes: &[u8]) -> Result<(), Forward> {
    match tokio::time::timeout(IDLE_TIMEOUT, s.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Forward::Broken(format!("forwarding failed: {e}"))),
        Err(_) => Err(Forward::Stalled(format!(
            "forwarding stalled for {IDLE_TIMEOUT:?}"
        ))),
    }
}

/// A reply write bounded in time (a frame plus a second per MiB of `len`):
/// a peer that stops reading cannot hold a task or its buffer for good.
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    len: u64,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let budget = FRAME_TIMEOUT + Duration::from_secs(len >> 20);
    match tokio::time::timeout(budget, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the peer stopped reading for {budget:?}")),
    }
}

/// Read and discard up to `len` bytes, giving up after an idle spell.
async fn drain(s: &mut Stream, len: u64) {
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut buf[..want])).await {
            Ok(Ok(n)) if n > 0 => left -= n as u64,
            _ => return,
        }
    }
}

impl Shared {
    /// Serve one inbound `/ifs/chunk/1` stream.
    pub async fn on_stream(self: Arc<Self>, peer: PeerId, mut stream: Stream) {
        let _load = self.load_guard();
        let open = match read_frame(&mut stream, MAX_STREAM_FRAME, FRAME_TIMEOUT).await {
            Ok(f) => f,
            Err(e) => {
                debug!(%peer, "chunk stream closed before its header: {e}");
                return;
            }
        };
        match decode::<StreamOpen>(&open, MAX_STREAM_FRAME) {
            Ok(StreamOpen::Store { chain }) => self.serve_store(peer, stream, chain).await,
            Ok(StreamOpen::Fetch(req)) => self.serve_fetch(peer, stream, req).await,
            Ok(StreamOpen::Replica { record, chunk, len }) => {
                self.serve_replica(peer, stream, record, chunk, len).await
            }
            Ok(StreamOpen::PeerFetch { record, chunk }) => {
                self.serve_peer_fetch(peer, stream, record, chunk).await
            }
            Err(e) => warn!(%peer, "rejected malformed chunk stream header: {e}"),
        }
    }

    async fn serve_store(&self, peer: PeerId, mut up: Stream, chain: HeaderChain) {
        let (cursor, hops, len) = (chain.cursor, chain.hops.len(), chain.len);
        let reply = self.store_and_forward(peer, &mut up, chain).await;
        let stored = reply.receipts.iter().any(|r| r.node == self.node_id);
        self.telemetry.chain_hop(cursor, hops, len, stored);
        let bytes = encode(&reply);
        let sent = async {
            write_frame(&mut up, &bytes).await?;
            up.flush().await?;
            up.close().await.map_err(ifs_net::frame::FrameError::Io)
        };
        if let Err(e) = bounded(0, sent).await {
            debug!(%peer, "store reply not delivered: {e}");
        }
    }

    async fn store_and_forward(
        &self,
        peer: PeerId,
        up: &mut Stream,
        chain: HeaderChain,
    ) -> StoreReply {
        let fail = |node: NodeId, why: String| StoreReply {
            receipts: Vec::new(),
            failure: Some((node, why)),
        };
        let hop = match chain.accept(&self.node_id) {
            Ok(h) => h,
            Err(e) => {
                warn!(%peer, "rejected header chain: {e}");
                return fail(self.node_id, format!("header chain rejected: {e}"));
            }
        };
        if chain.len > MAX_CHUNK_BYTES {
            return fail(
                self.node_id,
                format!("chunk of {} bytes exceeds the cap", chain.len),
            );
        }
        // The authority to spend this node's space and bandwidth is checked
        // before a byte is read, allocated or forwarded.
        if let Err(why) = self.may_store(&hop.reservation_id, &chain).await {
            warn!(%peer, chunk = %chain.chunk, "refused a chunk: {why}");
            // Read and drop what the sender is already writing, through a
            // small buffer, so it gets the refusal instead of a stall; none
            // of it is kept or forwarded.
            drain(up, chain.len).await;
            return fail(self.node_id, why);
        }
        // Open the next hop first so bytes can flow on as they arrive.
        let mut down: Option<(NodeId, Stream)> = None;
        let mut down_failure: Option<(NodeId, String)> = None;
        let next = chain.forwarded();
        if let Some(next) = &next {
            let next_node = next.current().map(|h| h.node).unwrap_or(self.node_id);
            match self.open_next(next_node, next).await {
                Ok(s) => down = Some((next_node, s)),
                Err(why) => down_failure = Some((next_node, why)),
            }
        }

        // Bytes are read straight into the chunk's buffer and forwarded from
        // there: no intermediate block, one copy less per hop. Under a cap
        // they move in pieces, each metered in and out (a client's put, at
        // any hop, has the first class).
        let mut data = vec![0u8; chain.len as usize];
        let mut filled = 0usize;
        let mut reopened = 0;
        let block = if self.shaper.capped() { PIECE } else { BLOCK };
        while filled < data.len() {
            let want = (data.len() - filled).min(block);
            let slot = &mut data[filled..filled + want];
            let got = match tokio::time::timeout(IDLE_TIMEOUT, up.read(slot)).await {
                Ok(Ok(0)) | Err(_) => {
                    return fail(
                        self.node_id,
                        "upstream stopped before the end of the chunk".into(),
                    );
                }
                Ok(Err(e)) => return fail(self.node_id, format!("upstream: {e}")),
                Ok(Ok(n)) => n,
            };
            self.meter(Direction::Down, Priority::Client, got as u64)
                .await;
            // A next hop that stops taking bytes (a cut link: nothing is
            // acknowledged any more) must not hold this hop's own copy and
            // reply hostage; after IDLE_TIMEOUT it is given up on.
            if let (Some((node, s)), Some(next)) = (down.as_mut(), &next) {
                self.meter(Direction::Up, Priority::Client, got as u64)
                    .await;
                let mut sent = forward(s, &data[filled..filled + got]).await;
                // A stream that died under us (its connection closed, or the
                // next node dropped it unread while busy) is opened again
                // and given every byte so far: this hop holds them all.
                while let Err(Forward::Broken(why)) = &sent
                    && reopened < FORWARD_REOPENS
                {
                    reopened += 1;
                    debug!(next = %node, reopened, "forward stream broke, opening it again: {why}");
                    sent = match self.open_next(*node, next).await {
                        Ok(fresh) => {
                            *s = fresh;
                            forward(s, &data[..filled + got]).await
                        }
                        Err(e) => Err(Forward::Stalled(e)),
                    };
                }
                if let Err(Forward::Broken(why) | Forward::Stalled(why)) = sent {
                    down_failure = Some((*node, why));
                    down = None;
                }
            }
            filled += got;
        }

        let mut receipts = Vec::new();
        let mut failure = None;
        let now = now_ms();
        match self
            .store
            .put_chunk(
                ReservationId(hop.reservation_id),
                chain.chunk,
                chain.owner,
                data,
                now,
            )
            .await
        {
            Ok(stored) => {
                if !stored.already_present {
                    lock(&self.grants).charge(&hop.reservation_id, chain.len);
                } else if let Some(since) =
                    lock(&self.durability.unreferenced).get_mut(&chain.chunk)
                {
                    // Sent again by its owner (a resumed upload): the
                    // collection grace starts over, as for a new copy.
                    *since = now;
                }
                self.index_chunk(chain.chunk, chain.record, chain.version)
                    .await;
                let receipt = Receipt::new(
                    &self.key,
                    chain.chunk,
                    chain.len,
                    (chain.owner, chain.record),
                    now,
                );
                if let Err(e) = self.store.set_receipt(chain.chunk, receipt.encode()).await {
                    warn!("receipt not kept: {e}");
                }
                receipts.push(receipt);
            }
            Err(e) => {
                warn!(chunk = %chain.chunk, "chunk not stored: {e}");
                failure = Some((self.node_id, store_error(e).to_string()));
            }
        }

        if let Some((node, mut s)) = down {
            match self.downstream_reply(&mut s).await {
                Ok(r) => {
                    receipts.extend(r.receipts);
                    failure = failure.or(r.failure);
                }
                Err(why) => failure = failure.or(Some((node, why))),
            }
        }
        StoreReply {
            receipts,
            failure: failure.or(down_failure),
        }
    }

    /// Whether the chain's client may store its chunk here: it holds an open
    /// grant of this node with room for the chunk, and a copy already held
    /// is bound to the same owner and file record.
    async fn may_store(&self, reservation: &[u8; 16], chain: &HeaderChain) -> Result<(), String> {
        if !lock(&self.grants).may_store(reservation, &chain.owner, chain.len) {
            return Err(format!(
                "no open reservation of this user with {} bytes left here",
                chain.len
            ));
        }
        if let Ok(Some(info)) = self.store.chunk_info(chain.chunk).await {
            let bound = self.record_of(chain.chunk).await;
            if info.owner != chain.owner || bound.is_some_and(|r| r != chain.record) {
                return Err("this chunk is already held here for another file".into());
            }
        }
        Ok(())
    }

    /// Open a stream to the next hop and send it the chain. A node drops an
    /// inbound stream it cannot take at once (libp2p-stream hands streams
    /// over through a one-slot queue), which shows as a write error on the
    /// fresh stream: that is tried again, a few times.
    async fn open_next(&self, node: NodeId, chain: &HeaderChain) -> Result<Stream, String> {
        let peer = ifs_net::node_id_to_peer_id(&node).map_err(|e| e.to_string())?;
        self.dial_known(peer, &node).await;
        let open = encode(&StreamOpen::Store {
            chain: chain.clone(),
        });
        let mut attempt = 1;
        loop {
            let mut s = self
                .net
                .open_stream(peer)
                .await
                .map_err(|e| e.to_string())?;
            match write_frame(&mut s, &open).await {
                Ok(()) => return Ok(s),
                Err(e) if attempt < OPEN_TRIES => {
                    debug!(next = %peer, attempt, "forward stream dropped at once, opening another: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Make sure the swarm knows the node's addresses from its capacity report.
    pub async fn dial_known(&self, peer: PeerId, node: &NodeId) {
        let addrs: Vec<String> = super::shared::lock(&self.table)
            .get(node)
            .map(|e| e.report.addrs.clone())
            .unwrap_or_default();
        for a in addrs {
            if let Ok(ma) = a.parse() {
                let _ = self.net.add_address(peer, ma).await;
            }
        }
    }

    async fn downstream_reply(&self, s: &mut Stream) -> Result<StoreReply, String> {
        tokio::time::timeout(IDLE_TIMEOUT, s.flush())
            .await
            .map_err(|_| format!("forwarding stalled for {IDLE_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let bytes = read_frame(s, MAX_STREAM_FRAME, FRAME_TIMEOUT * 4)
            .await
            .map_err(|e| e.to_string())?;
        decode::<StoreReply>(&bytes, MAX_STREAM_FRAME).map_err(|e| e.to_string())
    }

    async fn serve_fetch(&self, peer: PeerId, mut s: Stream, req: FetchRequest) {
        let reply = self.check_fetch(&req).await;
        let (head, body) = match reply {
            Ok(data) => (
                FetchReply::Ok {
                    len: data.len() as u64,
                },
                Some(data),
            ),
            Err(e) => {
                warn!(%peer, chunk = %req.chunk, "refused fetch: {e}");
                (FetchReply::Error(e), None)
            }
        };
        let len = body.as_ref().map_or(0, |d| d.len() as u64);
        self.telemetry.chunk_op("fetch", body.is_some());
        self.telemetry.bytes_out(TrafficClass::Client, len);
        let head = encode(&head);
        if let Err(e) = self
            .send_reply(&mut s, &head, body.as_deref(), Priority::Client)
            .await
        {
            debug!(%peer, "fetch reply not delivered: {e}");
        }
    }

    /// Write a reply frame and then `body` in metered pieces of `class`,
    /// and close. Each write is bounded in time; the wait for the link is
    /// not (a lower class waits while a higher one moves bytes).
    pub(crate) async fn send_reply(
        &self,
        s: &mut Stream,
        head: &[u8],
        body: Option<&[u8]>,
        class: Priority,
    ) -> Result<(), String> {
        bounded(0, write_frame(s, head)).await?;
        if let Some(data) = body {
            let piece = if self.shaper.capped() {
                PIECE
            } else {
                data.len().max(1)
            };
            for part in data.chunks(piece) {
                self.meter(Direction::Up, class, part.len() as u64).await;
                bounded(part.len() as u64, s.write_all(part)).await?;
            }
        }
        bounded(0, async {
            s.flush().await?;
            s.close().await
        })
        .await
    }

    async fn check_fetch(&self, req: &FetchRequest) -> Result<Vec<u8>, CtlError> {
        req.verify().map_err(|e| CtlError::Invalid(e.to_string()))?;
        if req.node != self.node_id {
            return Err(CtlError::Invalid("fetch addressed to another node".into()));
        }
        if !req.is_fresh(now_ms(), MAX_FETCH_SKEW_MS) {
            return Err(CtlError::Invalid("stale fetch request".into()));
        }
        let owner = self.chunk_owner(req.chunk).await?;
        if owner != req.requester {
            self.check_grant(req, owner).await?;
        }
        self.store.get_chunk(req.chunk).await.map_err(store_error)
    }

    /// A requester other than the owner reads only through the file record
    /// it names: that record must be the chunk owner's, and its live
    /// manifest must list the chunk and the requester as a reader. The local
    /// copy is asked first; the DHT only when it grants nothing (a share this
    /// node has not heard of yet).
    async fn check_grant(&self, req: &FetchRequest, owner: UserId) -> Result<(), CtlError> {
        let grants = |rec: &Option<FileRecord>| {
            rec.as_ref().is_some_and(|r| {
                r.owner() == &owner
                    && r.record_key() == req.record
                    && r.grants_fetch(&req.chunk, &req.requester)
            })
        };
        if grants(&self.file_record(req.record, false).await)
            || grants(&self.file_record(req.record, true).await)
        {
            return Ok(());
        }
        Err(CtlError::Denied(format!(
            "user {} may not read chunk {}: it is neither the owner nor a reader of the file that names it",
            req.requester, req.chunk
        )))
    }

    async fn chunk_owner(&self, chunk: ChunkId) -> Result<UserId, CtlError> {
        let info = self.store.chunk_info(chunk).await.map_err(store_error)?;
        info.map(|i| i.owner)
            .ok_or_else(|| CtlError::Invalid(format!("chunk {chunk} is not held here")))
    }

    /// Drop chunks of a file its owner deleted (owner-signed tombstone).
    /// A chunk is freed only if it is held bound to the tombstone's record
    /// at the deleted version or older (the binding came from the owner's
    /// header chain) and this node's copy of the record, with the tombstone
    /// merged in, no longer lists it as live. Anything else is left alone, so
    /// a delete replayed with another file's chunk ids frees nothing.
    pub async fn forget(&self, tombstone: &[u8], chunks: &[ChunkId]) -> Result<(), CtlError> {
        let t = Tombstone::decode(tombstone).map_err(|e| CtlError::Invalid(e.to_string()))?;
        t.verify().map_err(|e| CtlError::Invalid(e.to_string()))?;
        let Tombstone::Delete(del) = t else {
            return Err(CtlError::Invalid("not a file deletion".into()));
        };
        if chunks.len() > ifs_core::wire::MAX_CHUNKS {
            return Err(CtlError::Invalid("too many chunks named".into()));
        }
        let key = FileRecord::key(&del.owner, &del.name);
        // This node's view of the record, with the delete in it.
        let mut rec = self
            .file_record(key, false)
            .await
            .unwrap_or_else(|| FileRecord::new(del.owner, del.name.clone()));
        rec.add_delete(del.clone())
            .map_err(|e| CtlError::Invalid(e.to_string()))?;
        let mut freed = 0u64;
        let mut refused = 0usize;
        for chunk in chunks {
            let Ok(Some(info)) = self.store.chunk_info(*chunk).await else {
                continue; // not held here: nothing to free
            };
            let bound = self.binding_of(*chunk).await;
            let covered = info.owner == del.owner
                && bound.is_some_and(|(r, v)| r == key && v <= del.version)
                && rec.may_free(chunk, bound.map_or(u64::MAX, |(_, v)| v));
            if !covered {
                refused += 1;
                continue;
            }
            let Some(_busy) = self.claim(*chunk) else {
                continue;
            };
            match self.release_and_delete(&mut rec, *chunk).await {
                Ok(n) => freed += n,
                Err(e) => warn!(%chunk, "cannot delete: {e}"),
            }
        }
        if freed > 0 {
            self.publish_file_record(&rec).await;
            info!(bytes = freed, "freed a deleted file's chunks");
        }
        if refused > 0 {
            warn!(
                refused,
                "a delete named chunks it does not cover; they are kept"
            );
            return Err(CtlError::Denied(format!(
                "{refused} of the named chunks are not bound to the deleted file version here"
            )));
        }
        Ok(())
    }

    /// A client's report of how nodes served its get.
    pub fn record_results(&self, peer: PeerId, results: &[(NodeId, FetchOutcome)]) {
        for (node, outcome) in results {
            debug!(%peer, %node, ?outcome, "fetch result reported");
        }
    }
}
