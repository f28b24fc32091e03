//! Copies between nodes outside the put path: a holder pushes a replica to a
//! new node (repair, offload), and a holder fetches a peer's copy to replace
//! a corrupt one of its own (scrub, audit).
//!
//! Both sides are nodes authenticated by the transport (the stream's peer id
//! is the remote's node key), and both checks go through the owner-signed
//! file record: a node only accepts a replica the record's live manifest
//! lists, pushed by a node holding a receipt for it, and only serves a copy
//! to a node with a receipt of its own.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use ifs_core::file_record::FileRecord;
use ifs_core::proto::{
    CtlError, FetchReply, MAX_CHUNK_BYTES, MAX_STREAM_FRAME, StoreReply, StreamOpen, decode, encode,
};
use ifs_core::wire::Receipt;
use ifs_core::{ChunkId, NodeId};
use ifs_net::frame::{read_frame, write_frame};
use ifs_net::{PeerId, Stream};
use tracing::{debug, info, warn};

use super::Shared;
use super::control::store_error;
use crate::now_ms;
use crate::shaper::Direction;
use crate::telemetry::TrafficClass;
use ifs_core::bandwidth::{PIECE, Priority};

/// Time allowed for a header or reply frame, and between blocks of bytes.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replica's own reservation lives while its bytes arrive.
const REPLICA_TTL: Duration = Duration::from_secs(300);
/// Most receipts a record may hold for one chunk before a node refuses yet
/// another replica of it (a bound on pushes of the same data).
const MAX_HOLDERS: usize = 12;

impl Shared {
    /// Read `len` chunk bytes, metered as received bytes of `class`.
    async fn read_exact_timed(
        &self,
        s: &mut Stream,
        len: u64,
        class: Priority,
    ) -> Result<Vec<u8>, String> {
        let mut data = vec![0u8; len as usize];
        let mut at = 0;
        while at < data.len() {
            let end = (at + PIECE).min(data.len());
            match tokio::time::timeout(IO_TIMEOUT, s.read(&mut data[at..end])).await {
                Ok(Ok(0)) | Err(_) => return Err("stream ended before the chunk did".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(n)) => {
                    self.meter(Direction::Down, class, n as u64).await;
                    at += n
                }
            }
        }
        Ok(data)
    }

    async fn open_to(&self, node: &NodeId, open: &StreamOpen) -> Result<Stream, String> {
        let peer = ifs_net::node_id_to_peer_id(node).map_err(|e| e.to_string())?;
        self.dial_known(peer, node).await;
        let mut s = self
            .net
            .open_stream(peer)
            .await
            .map_err(|e| e.to_string())?;
        super::chunks::bounded(0, write_frame(&mut s, &encode(open))).await?;
        Ok(s)
    }

    /// Push a copy of `chunk` to `target`; returns its verified receipt.
    pub(crate) async fn push_replica(
        &self,
        target: NodeId,
        record: [u8; 32],
        chunk: ChunkId,
        data: &[u8],
    ) -> Result<Receipt, String> {
        let len = data.len() as u64;
        self.pace(len).await;
        let open = StreamOpen::Replica { record, chunk, len };
        let mut s = self.open_to(&target, &open).await?;
        // Each piece bounded: a target that stops reading must not stall
        // repair. Repair and offload yield the link to clients.
        for part in data.chunks(PIECE) {
            self.meter(Direction::Up, Priority::Repair, part.len() as u64)
                .await;
            super::chunks::bounded(part.len() as u64, s.write_all(part)).await?;
        }
        super::chunks::bounded(0, s.flush()).await?;
        // The target stores and signs before it answers (it publishes the
        // record after): a target that took the bytes and never answers
        // costs this much once, then sits out (see `FailedTargets`).
        let bytes = read_frame(
            &mut s,
            MAX_STREAM_FRAME,
            IO_TIMEOUT + Duration::from_secs(len >> 20),
        )
        .await
        .map_err(|e| e.to_string())?;
        let reply: StoreReply = decode(&bytes, MAX_STREAM_FRAME).map_err(|e| e.to_string())?;
        if let Some((_, why)) = reply.failure {
            return Err(why);
        }
        let r = reply
            .receipts
            .into_iter()
            .find(|r| r.node == target && r.chunk == chunk && r.len == len)
            .ok_or("no receipt for the replica")?;
        r.verify().map_err(|e| e.to_string())?;
        Ok(r)
    }

    /// The record under `key` if its live manifest lists `chunk` with `len`
    /// and `node` has a receipt for it (checked locally first, then in the DHT).
    async fn record_vouching(
        &self,
        key: [u8; 32],
        chunk: &ChunkId,
        node: &NodeId,
        len: Option<u64>,
    ) -> Result<FileRecord, String> {
        let ok = |rec: &FileRecord| {
            let listed = rec
                .live_manifest()
                .and_then(|m| m.chunk_len(chunk))
                .is_some_and(|l| len.is_none_or(|len| len == l));
            listed && rec.receipts().any(|r| r.chunk == *chunk && r.node == *node)
        };
        for from_dht in [false, true] {
            if let Some(rec) = self.file_record(key, from_dht).await
                && ok(&rec)
            {
                return Ok(rec);
            }
        }
        Err("the file record does not vouch for this chunk and sender".into())
    }

    /// Serve a pushed replica: check, read, store under our own reservation,
    /// sign, add the receipt to the record.
    pub(crate) async fn serve_replica(
        &self,
        peer: PeerId,
        mut s: Stream,
        record: [u8; 32],
        chunk: ChunkId,
        len: u64,
    ) {
        let mut publish = None;
        let reply = match self.accept_replica(peer, &mut s, record, chunk, len).await {
            Ok((r, rec)) => {
                publish = rec;
                StoreReply {
                    receipts: vec![r],
                    failure: None,
                }
            }
            Err(why) => {
                warn!(%peer, %chunk, "refused a replica: {why}");
                StoreReply {
                    receipts: Vec::new(),
                    failure: Some((self.node_id, why)),
                }
            }
        };
        self.telemetry
            .replica_received(len, reply.failure.is_none());
        let sent = async {
            write_frame(&mut s, &encode(&reply)).await?;
            s.flush().await?;
            s.close().await.map_err(ifs_net::frame::FrameError::Io)
        };
        if let Err(e) = super::chunks::bounded(0, sent).await {
            debug!(%peer, "replica reply not delivered: {e}");
        }
        if let Some(rec) = publish {
            self.publish_file_record(&rec).await;
        }
    }

    async fn accept_replica(
        &self,
        peer: PeerId,
        s: &mut Stream,
        key: [u8; 32],
        chunk: ChunkId,
        len: u64,
    ) -> Result<(Receipt, Option<FileRecord>), String> {
        let sender = ifs_net::peer_id_to_node_id(&peer).ok_or("sender is not a node")?;
        if len > MAX_CHUNK_BYTES {
            return Err(format!("chunk of {len} bytes exceeds the cap"));
        }
        let mut rec = self
            .record_vouching(key, &chunk, &sender, Some(len))
            .await?;
        // Only live holders this node sees alive count: dead, released or
        // made-up holders must not block a repair copy.
        let now = now_ms();
        let live = rec
            .live_holders(&chunk)
            .into_iter()
            .filter(|n| self.node_alive(n, now))
            .count();
        if live >= MAX_HOLDERS {
            return Err("the chunk already has enough holders".into());
        }
        let version = rec
            .live_manifest()
            .map(|m| m.version)
            .ok_or("the file record has no live manifest")?;
        if self.store.contains(chunk).await.unwrap_or(false) {
            // The sender writes the bytes before it reads the answer.
            self.read_exact_timed(s, len, Priority::Repair).await?;
            if let Ok(Some(bytes)) = self.store.receipt(chunk).await
                && let Ok(r) = Receipt::decode(&bytes)
            {
                return Ok((r, None));
            }
            return Err("chunk held without a receipt".into());
        }
        // Space first, then the bytes: a full node reads nothing.
        let res = self
            .store
            .reserve(len, REPLICA_TTL, now)
            .await
            .map_err(|e| store_error(e).to_string())?;
        let data = match self.read_exact_timed(s, len, Priority::Repair).await {
            Ok(d) => d,
            Err(e) => {
                let _ = self.store.release(res.id).await;
                return Err(e);
            }
        };
        let stored = self
            .store
            .put_chunk(res.id, chunk, *rec.owner(), data, now)
            .await;
        let _ = self.store.commit_reservation(res.id).await;
        stored.map_err(|e| store_error(e).to_string())?;
        let receipt = Receipt::new(&self.key, chunk, len, (*rec.owner(), key), now);
        self.store
            .set_receipt(chunk, receipt.encode())
            .await
            .map_err(|e| e.to_string())?;
        self.index_chunk(chunk, key, version).await;
        rec.add_receipt(receipt.clone())
            .map_err(|e| e.to_string())?;
        info!(%chunk, from = %sender, bytes = len, "stored a replica");
        Ok((receipt, Some(rec)))
    }

    /// Fetch `chunk` from the holder `from`; verified against its id.
    pub(crate) async fn fetch_from_holder(
        &self,
        from: NodeId,
        record: [u8; 32],
        chunk: ChunkId,
        len: u64,
    ) -> Result<Vec<u8>, String> {
        let mut s = self
            .open_to(&from, &StreamOpen::PeerFetch { record, chunk })
            .await?;
        s.flush().await.map_err(|e| e.to_string())?;
        let head = read_frame(&mut s, MAX_STREAM_FRAME, IO_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        match decode::<FetchReply>(&head, MAX_STREAM_FRAME).map_err(|e| e.to_string())? {
            FetchReply::Ok { len: l } if l == len => {}
            FetchReply::Ok { len: l } => return Err(format!("offered {l} bytes, expected {len}")),
            FetchReply::Error(e) => return Err(e.to_string()),
        }
        // Holders fetch from each other to replace a copy scrub or an audit
        // found corrupt: the lowest class.
        let data = self
            .read_exact_timed(&mut s, len, Priority::Background)
            .await?;
        if ChunkId::of(&data) != chunk {
            return Err("bytes do not match the chunk id".into());
        }
        Ok(data)
    }

    /// Serve a co-holder's fetch of a chunk it has a receipt for.
    pub(crate) async fn serve_peer_fetch(
        &self,
        peer: PeerId,
        mut s: Stream,
        record: [u8; 32],
        chunk: ChunkId,
    ) {
        let body = async {
            let node = ifs_net::peer_id_to_node_id(&peer)
                .ok_or_else(|| CtlError::Denied("not a node".into()))?;
            self.record_vouching(record, &chunk, &node, None)
                .await
                .map_err(CtlError::Denied)?;
            self.store.get_chunk(chunk).await.map_err(store_error)
        };
        let (head, data) = match body.await {
            Ok(d) => (
                FetchReply::Ok {
                    len: d.len() as u64,
                },
                Some(d),
            ),
            Err(e) => {
                warn!(%peer, %chunk, "refused a peer fetch: {e}");
                (FetchReply::Error(e), None)
            }
        };
        let len = data.as_ref().map_or(0, |d| d.len() as u64);
        self.telemetry.chunk_op("peer_fetch", data.is_some());
        self.telemetry.bytes_out(TrafficClass::Replica, len);
        let head = encode(&head);
        if let Err(e) = self
            .send_reply(&mut s, &head, data.as_deref(), Priority::Background)
            .await
        {
            debug!(%peer, "peer fetch reply not delivered: {e}");
        }
    }

    /// Replace this node's copy of `chunk` with `data` (already verified),
    /// keeping its receipt; accounting stays exact (reserve and delete in one
    /// step, then re-store).
    pub(crate) async fn replace_local(&self, chunk: ChunkId, data: Vec<u8>) -> Result<(), String> {
        let info = self
            .store
            .chunk_info(chunk)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("chunk no longer held")?;
        let receipt = self.store.receipt(chunk).await.ok().flatten();
        let len = data.len() as u64;
        let now = now_ms();
        // Reserve counting the old copy's space and delete it in the same
        // store step: when there is no room the old copy stays in place.
        let res = self
            .store
            .reserve_replacing(chunk, len, REPLICA_TTL, now)
            .await
            .map_err(|e| e.to_string())?;
        let stored = self
            .store
            .put_chunk(res.id, chunk, info.owner, data, now)
            .await;
        let _ = self.store.commit_reservation(res.id).await;
        stored.map_err(|e| e.to_string())?;
        if let Some(r) = receipt {
            self.store
                .set_receipt(chunk, r)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
