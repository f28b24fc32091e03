//! The client's side of the bulk chunk protocol: send a chunk to the first
//! node of its header chain, and fetch a chunk from one holder.

use std::time::Duration;

use futures::AsyncWriteExt;
use ifs_core::ChunkId;
use ifs_core::proto::{
    FetchReply, MAX_CHUNK_BYTES, MAX_STREAM_FRAME, StoreReply, StreamOpen, decode, encode,
};
use ifs_core::wire::{FetchRequest, HeaderChain};
use ifs_net::frame::{read_exact_timeout, read_frame, write_frame};
use ifs_net::{Client, PeerId, Stream};

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

/// Send `data` along `chain` (to its first hop, `peer`) and return the
/// chain's reply. Receipts in it are not yet checked.
pub async fn send_chunk(
    net: &Client,
    peer: PeerId,
    chain: &HeaderChain,
    data: &[u8],
) -> Result<StoreReply, String> {
    let mut s = open(net, peer).await?;
    let head = encode(&StreamOpen::Store {
        chain: chain.clone(),
    });
    let send = async {
        write_frame(&mut s, &head)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(data).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())
    };
    // Big chunks over slow links get time in proportion to their size.
    let budget = FRAME_TIMEOUT + Duration::from_secs(data.len() as u64 >> 20);
    tokio::time::timeout(budget, send)
        .await
        .map_err(|_| format!("sending timed out after {budget:?}"))??;
    let reply = read_frame(&mut s, MAX_STREAM_FRAME, REPLY_TIMEOUT)
        .await
        .map_err(|e| format!("no reply: {e}"))?;
    let _ = s.close().await;
    decode::<StoreReply>(&reply, MAX_STREAM_FRAME).map_err(|e| format!("bad reply: {e}"))
}

/// Fetch chunk `id` of `len` bytes from `peer` with the signed `req`, and
/// check the bytes against the id.
pub async fn fetch_chunk(
    net: &Client,
    peer: PeerId,
    req: &FetchRequest,
    id: &ChunkId,
    len: u64,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, FetchError> {
    let mut s = open(net, peer).await.map_err(FetchError::Transport)?;
    let t = |e: ifs_net::frame::FrameError| FetchError::Transport(e.to_string());
    write_frame(&mut s, &encode(&StreamOpen::Fetch(req.clone())))
        .await
        .map_err(t)?;
    s.flush()
        .await
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    let head = read_frame(&mut s, MAX_STREAM_FRAME, FRAME_TIMEOUT)
        .await
        .map_err(t)?;
    match decode::<FetchReply>(&head, MAX_STREAM_FRAME) {
        Ok(FetchReply::Ok { len: got }) if got != len || got > MAX_CHUNK_BYTES => {
            Err(FetchError::WrongLength { got, want: len })
        }
        Ok(FetchReply::Ok { .. }) => {
            buf.clear();
            buf.resize(len as usize, 0);
            read_exact_timeout(&mut s, &mut buf, BODY_TIMEOUT)
                .await
                .map_err(t)?;
            let _ = s.close().await;
            verify_chunk(id, buf)
        }
        Ok(FetchReply::Error(e)) => Err(FetchError::Refused(e)),
        Err(e) => Err(FetchError::Transport(format!("bad reply: {e}"))),
    }
}

/// The bytes, if they hash to `id`.
pub fn verify_chunk(id: &ChunkId, data: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    if ChunkId::of(&data) == *id {
        Ok(data)
    } else {
        Err(FetchError::IdMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_bytes_that_do_not_match_the_id_are_refused() {
        let id = ChunkId::of(b"the real chunk");
        assert_eq!(
            verify_chunk(&id, b"the real chunk".to_vec()).unwrap(),
            b"the real chunk"
        );
        assert_eq!(
            verify_chunk(&id, b"the fake chunk".to_vec()),
            Err(FetchError::IdMismatch)
        );
    }
}
