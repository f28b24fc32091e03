//! `/ifs/ctl/1` request/response: round trips and size caps.

use std::time::Duration;

use ifs_net::{NetConfig, NetError, NetEvent};

use crate::helpers::{TestNode, connect, loopback_config, start, start_loopback};

/// Answer every request with its bytes reversed, until the channel closes.
fn serve_reversed(mut node: TestNode) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = node.events.recv().await {
            if let NetEvent::Request { data, token, .. } = event {
                let reply = data.iter().rev().copied().collect();
                let _ = node.client.respond(token, reply).await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_round_trip() {
    let a = start_loopback().await;
    let b = start_loopback().await;
    let b_id = b.peer_id();
    connect(&a, &b).await;
    let server = serve_reversed(b);

    for size in [0usize, 1, 1000, 300_000] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let got = a
            .client
            .request(b_id, data.clone())
            .await
            .expect("response");
        let want: Vec<u8> = data.into_iter().rev().collect();
        assert_eq!(got, want, "size {size}");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_rejected_and_server_keeps_serving() {
    let a = start(NetConfig {
        max_request_bytes: 1024 * 1024,
        request_timeout: Duration::from_secs(10),
        ..loopback_config()
    })
    .await;
    let b = start(NetConfig {
        max_request_bytes: 4096,
        ..loopback_config()
    })
    .await;
    let b_id = b.peer_id();
    connect(&a, &b).await;
    let server = serve_reversed(b);

    // Over the receiver's cap (but within ours): the receiver refuses it.
    for size in [4097usize, 64 * 1024] {
        let err = a.client.request(b_id, vec![7u8; size]).await.unwrap_err();
        assert!(
            matches!(err, NetError::Request { peer, .. } if peer == b_id),
            "{err}"
        );
    }
    // Over our own cap: refused before anything is sent.
    let err = a
        .client
        .request(b_id, vec![0u8; 1024 * 1024 + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::RequestTooLarge {
                size: 1_048_577,
                max: 1_048_576
            }
        ),
        "{err}"
    );
    // Exactly at the receiver's cap still works, and so does the next request.
    let got = a
        .client
        .request(b_id, vec![1u8; 4096])
        .await
        .expect("at cap");
    assert_eq!(got.len(), 4096);
    let got = a
        .client
        .request(b_id, b"abc".to_vec())
        .await
        .expect("still serving");
    assert_eq!(got, b"cba");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_response_is_refused_locally() {
    let a = start_loopback().await;
    let mut b = start(NetConfig {
        max_response_bytes: 100,
        ..loopback_config()
    })
    .await;
    let b_id = b.peer_id();
    connect(&a, &b).await;
    let asker = a.client.clone();
    let pending = tokio::spawn(async move { asker.request(b_id, b"q".to_vec()).await });
    let token = b
        .wait_for(|e| match e {
            NetEvent::Request { token, .. } => Ok(token),
            other => Err(other),
        })
        .await;
    assert_eq!(token.peer(), a.peer_id());
    let err = b.client.respond(token, vec![0u8; 101]).await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::ResponseTooLarge {
                size: 101,
                max: 100
            }
        ),
        "{err}"
    );
    // The token was consumed, so the requester sees a failure, not a hang.
    let res = pending.await.expect("join");
    assert!(matches!(res, Err(NetError::Request { .. })), "{res:?}");
}
