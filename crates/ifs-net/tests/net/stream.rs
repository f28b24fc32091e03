//! Bulk `/ifs/chunk/1` streams: 64 MiB arrive intact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use ifs_net::NetEvent;

use crate::helpers::{connect, start_loopback};

const TOTAL: usize = 64 * 1024 * 1024;
const BLOCK: usize = 1024 * 1024;

/// Pseudo-random bytes, generated once: blocks are windows into it.
fn pattern() -> Arc<Vec<u8>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes = (0..BLOCK + 65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Arc::new(bytes)
}

/// Block `index`: a window of the pattern that differs per index, stamped
/// with the index so a reordered or repeated block is caught.
fn block(pattern: &[u8], index: usize) -> Vec<u8> {
    let offset = (index * 4099) % 65_536;
    let mut out = pattern[offset..offset + BLOCK].to_vec();
    out[..8].copy_from_slice(&(index as u64).to_be_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_stream_transfers_64_mib_intact() {
    let a = start_loopback().await;
    let mut b = start_loopback().await;
    connect(&a, &b).await;
    let a_id = a.peer_id();
    let b_id = b.peer_id();

    let pattern = pattern();
    let expected = Arc::clone(&pattern);
    let receiver = tokio::spawn(async move {
        let (peer, mut stream) = b
            .wait_for(|e| match e {
                NetEvent::InboundStream { peer, stream } => Ok((peer, stream)),
                other => Err(other),
            })
            .await;
        let mut got = 0usize;
        let mut buf = vec![0u8; BLOCK];
        let mut index = 0;
        let mut intact = true;
        loop {
            // Read one block (or the tail) with a timeout, never past the cap.
            let mut filled = 0;
            while filled < BLOCK {
                let read =
                    tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf[filled..]));
                let n = read.await.expect("read in time").expect("read");
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            intact &= buf[..filled] == block(&expected, index)[..filled];
            got += filled;
            index += 1;
            assert!(got <= TOTAL, "sender sent more than agreed");
        }
        stream
            .write_all(&(got as u64).to_be_bytes())
            .await
            .expect("ack");
        stream.close().await.expect("close");
        // Hand the node back: dropping its last client would stop its swarm
        // and could cut the connection before the ack is on the wire.
        (peer, got, intact, b)
    });

    let started = Instant::now();
    let mut stream = a.client.open_stream(b_id).await.expect("open stream");
    for i in 0..TOTAL / BLOCK {
        stream.write_all(&block(&pattern, i)).await.expect("write");
    }
    stream.flush().await.expect("flush");
    // Half-close so the receiver sees EOF, then wait for its byte count.
    stream.close().await.expect("close");
    let mut ack = [0u8; 8];
    stream.read_exact(&mut ack).await.expect("ack");
    let elapsed = started.elapsed();

    let (peer, got, intact, _b) = receiver.await.expect("receiver");
    assert_eq!(peer, a_id);
    assert_eq!(got, TOTAL);
    assert_eq!(u64::from_be_bytes(ack), TOTAL as u64);
    assert!(intact, "every byte matches");
    let mb_s = TOTAL as f64 / 1e6 / elapsed.as_secs_f64();
    println!(
        "bulk stream: 64 MiB in {elapsed:.2?} = {mb_s:.0} MB/s (test profile, loopback TCP + Noise + Yamux)"
    );
}
