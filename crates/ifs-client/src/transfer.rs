//! The client's side of the bulk chunk protocol: send a chunk to the first
//! node of its header chain, and fetch a chunk from one holder.

use std::time::Duration;

use futures::AsyncWriteExt;
use ifs_core::proto::{
    FetchReply, MAX_CHUNK_BYTES, MAX_STREAM_FRAME, StoreReply, StreamOpen, decode, encode,
};
use ifs_core::wire::{FetchRequest, HeaderChain};
use ifs_core::{CheckedChunk, ChunkId};
use ifs_net::frame::{read_exact_timeout, read_frame, write_frame};
use ifs_net::{Client, PeerId, Stream};

use tracing::debug;

use crate::error::FetchError;

/// Time allowed for a header frame or to send a chunk's bytes.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the chain's reply: every hop stores and forwards first.
const REPLY_TIMEOUT: Duration = Duration::from_secs(180);
/// Time allowed to receive one chunk's bytes.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Open a chunk stream to `peer`, bounded in time.
async fn open(net: &Client, peer: PeerId) -> Result<Stream, String> {
    match tokio::time::timeout(FRAME_TIMEOUT, net.open_stream(peer)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no stream within {FRAME_TIMEOUT:?}")),
    }
}

/// Attempts at a stream the node reset before reading it. A node resets an
/// inbound stream it could not take in time (libp2p-stream drops it); it
/// read nothing then, so sending the same request again is safe.
const TRIES: u32 = 3;

/// Whether `e` is the mark of a stream reset before the node read it.
fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        WriteZero | UnexpectedEof | ConnectionReset | BrokenPipe
    )
}

/// Pause before attempt `n` (from 2) at a reset stream.
async fn backoff(n: u32) {
    tokio::time::sleep(Duration::from_millis(20 * u64::from(n))).await;
}

/// Send `data` along `chain` (to its first hop, `peer`) and return the
/// chain's reply. Receipts in it are not yet checked.
pub async fn send_chunk(
    net: &Client,
    peer: PeerId,
    chain: &HeaderChain,
    data: &[u8],
) -> Result<StoreReply, String> {
    let head = encode(&StreamOpen::Store {
        chain: chain.clone(),
    });
    // Big chunks over slow links get time in proportion to their size.
    let budget = FRAME_TIMEOUT + Duration::from_secs(data.len() as u64 >> 20);
    let mut attempt = 1;
    loop {
        let mut s = open(net, peer).await?;
        let send = async {
            write_frame(&mut s, &head).await.map_err(|e| match e {
                ifs_net::frame::FrameError::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })?;
            s.write_all(data).await?;
            s.flush().await
        };
        match tokio::time::timeout(budget, send).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if is_reset(&e) && attempt < TRIES => {
                debug!(%peer, attempt, "chunk stream reset before it was read, sending again: {e}");
                attempt += 1;
                backoff(attempt).await;
                continue;
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("sending timed out after {budget:?}")),
        }
        // A small chunk fits in the stream's buffers, so a stream the node
        // dropped unread shows only here: it ends before any reply. Sending
        // again is safe even if the node did store it (a node answers a
        // chunk it holds for the same file with a receipt again).
        let reply = match read_frame(&mut s, MAX_STREAM_FRAME, REPLY_TIMEOUT).await {
            Ok(r) => r,
            Err(ifs_net::frame::FrameError::Io(e)) if is_reset(&e) && attempt < TRIES => {
                debug!(%peer, attempt, "chunk stream ended without a reply, sending again: {e}");
                attempt += 1;
                backoff(attempt).await;
                continue;
            }
            Err(e) => return Err(format!("no reply: {e}")),
        };
        let _ = s.close().await;
        return decode::<StoreReply>(&reply, MAX_STREAM_FRAME)
            .map_err(|e| format!("bad reply: {e}"));
    }
}

/// Open a fetch stream to `peer`, send `req` and read the reply's head,
/// sending again when the node reset the stream unread.
async fn ask_fetch(
    net: &Client,
    peer: PeerId,
    req: &FetchRequest,
) -> Result<(Stream, FetchReply), FetchError> {
    let open_frame = encode(&StreamOpen::Fetch(req.clone()));
    let mut attempt = 1;
    loop {
        let mut s = open(net, peer).await.map_err(FetchError::Transport)?;
        let asked = async {
            write_frame(&mut s, &open_frame).await?;
            s.flush().await?;
            read_frame(&mut s, MAX_STREAM_FRAME, FRAME_TIMEOUT).await
        };
        match asked.await {
            Ok(head) => {
                let reply = decode::<FetchReply>(&head, MAX_STREAM_FRAME)
                    .map_err(|e| FetchError::Transport(format!("bad reply: {e}")))?;
                return Ok((s, reply));
            }
            Err(ifs_net::frame::FrameError::Io(e)) if is_reset(&e) && attempt < TRIES => {
                debug!(%peer, attempt, "fetch stream reset before it was read, asking again: {e}");
                attempt += 1;
                backoff(attempt).await;
            }
            Err(e) => return Err(FetchError::Transport(e.to_string())),
        }
    }
}

/// Fetch chunk `id` of `len` bytes from `peer` with the signed `req`, into
/// `buf` (a reused buffer of any length and content, or `Vec::new()`), and
/// check the bytes against the id.
pub async fn fetch_chunk(
    net: &Client,
    peer: PeerId,
    req: &FetchRequest,
    id: &ChunkId,
    len: u64,
    mut buf: Vec<u8>,
) -> Result<CheckedChunk, FetchError> {
    let (mut s, reply) = ask_fetch(net, peer, req).await?;
    match reply {
        FetchReply::Ok { len: got } if got != len || got > MAX_CHUNK_BYTES => {
            Err(FetchError::WrongLength { got, want: len })
        }
        FetchReply::Ok { .. } => {
            // Every byte is overwritten by the read: a reused buffer is
            // only cut or grown to size, not zeroed first.
            buf.resize(len as usize, 0);
            read_exact_timeout(&mut s, &mut buf, BODY_TIMEOUT)
                .await
                .map_err(|e| FetchError::Transport(e.to_string()))?;
            let _ = s.close().await;
            verify_chunk(id, buf)
        }
        FetchReply::Error(e) => Err(FetchError::Refused(e)),
    }
}

/// The bytes, if they hash to `id`.
pub fn verify_chunk(id: &ChunkId, data: Vec<u8>) -> Result<CheckedChunk, FetchError> {
    CheckedChunk::check(id, data).map_err(|_| FetchError::IdMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_bytes_that_do_not_match_the_id_are_refused() {
        let id = ChunkId::of(b"the real chunk");
        assert_eq!(
            verify_chunk(&id, b"the real chunk".to_vec())
                .unwrap()
                .into_bytes(),
            b"the real chunk"
        );
        assert_eq!(
            verify_chunk(&id, b"the fake chunk".to_vec()).unwrap_err(),
            FetchError::IdMismatch
        );
    }
}
