//! Gossip reaches every subscriber, and each must validate it.

use ifs_net::{Acceptance, NetError, NetEvent, PublishFailure};

use crate::helpers::{connect, eventually, start_loopback};

const TOPIC: &str = "ifs/test/1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_all_subscribers_after_validation() {
    let a = start_loopback().await;
    let mut b = start_loopback().await;
    let mut c = start_loopback().await;
    connect(&b, &a).await;
    connect(&c, &a).await;
    connect(&c, &b).await;
    for n in [&a, &b, &c] {
        assert!(n.client.subscribe(TOPIC).await.expect("subscribe"));
    }
    assert!(
        !a.client.subscribe(TOPIC).await.expect("subscribe again"),
        "already subscribed"
    );

    // Publishing fails with a typed error until a peer's subscription is known.
    let prefix = b"capacity report".to_vec();
    eventually(|| {
        let client = a.client.clone();
        let payload = prefix.clone();
        async move {
            match client.publish(TOPIC, payload).await {
                Ok(id) => Some(id),
                Err(NetError::Publish(PublishFailure::NoPeers)) => None,
                Err(e) => panic!("unexpected publish error: {e}"),
            }
        }
    })
    .await;
    // The first publish may go out while `a` knows only one subscriber:
    // keep publishing fresh reports until both have one.
    let publisher = {
        let client = a.client.clone();
        let prefix = prefix.clone();
        tokio::spawn(async move {
            for i in 0u32.. {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let mut payload = prefix.clone();
                payload.extend_from_slice(&i.to_be_bytes());
                let _ = client.publish(TOPIC, payload).await;
            }
        })
    };

    for node in [&mut b, &mut c] {
        let (source, propagated_by, id, data) = node
            .wait_for(|e| match e {
                NetEvent::Gossip {
                    topic,
                    source,
                    propagated_by,
                    id,
                    data,
                } if topic == TOPIC => Ok((source, propagated_by, id, data)),
                other => Err(other),
            })
            .await;
        assert_eq!(source, a.peer_id(), "the author is the signed source");
        assert!(data.starts_with(&prefix), "the payload arrives intact");
        let known = node
            .client
            .report_validation(id, propagated_by, Acceptance::Accept)
            .await
            .expect("report");
        assert!(known, "the message waits in the cache for its verdict");
    }
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_client_is_not_a_gossip_peer() {
    let node = start_loopback().await;
    let cli = crate::helpers::start(ifs_net::NetConfig::ephemeral()).await;
    // It listens on one TCP port only so that its dials leave from it (hole
    // punching behind NAT); it serves nothing there.
    // (0.0.0.0: one address per interface, all on that port.)
    let addrs = cli.client.listen_addrs().await.expect("addrs");
    let ports: std::collections::BTreeSet<String> = addrs
        .iter()
        .map(|a| {
            let s = a.to_string();
            let tcp = s.split("/tcp/").nth(1).expect("a TCP address");
            tcp.split('/').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(ports.len(), 1, "{addrs:?}");
    connect(&cli, &node).await;
    node.client.subscribe(TOPIC).await.expect("subscribe");
    let err = node.client.publish(TOPIC, b"x".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, NetError::Publish(PublishFailure::NoPeers)),
        "{err}"
    );
    // The listener may see the connection a moment after the dialer.
    let cli_id = cli.peer_id();
    eventually(|| {
        let client = node.client.clone();
        async move { (client.connected_peers().await.ok()? == vec![cli_id]).then_some(()) }
    })
    .await;
}
