//! Kademlia with `FilterBoth`: puts surface as `InboundRecord` events, the
//! node decides what to store, and `get_records` collects every copy.

use ifs_net::{NetConfig, NetError, NetEvent, PeerId};

use crate::helpers::{TestNode, connect, eventually, loopback_config, start, start_loopback};

/// Wait until `node` holds `want` peers in its Kademlia routing table, by
/// watching identify events (their listen addresses go into Kademlia).
async fn identified(node: &mut TestNode, want: usize) {
    let mut seen = std::collections::HashSet::new();
    while seen.len() < want {
        let peer = node
            .wait_for(|e| match e {
                NetEvent::Identified {
                    peer, listen_addrs, ..
                } if !listen_addrs.is_empty() => Ok(peer),
                other => Err(other),
            })
            .await;
        seen.insert(peer);
    }
}

async fn inbound_record(node: &mut TestNode, key: &[u8]) -> (Option<PeerId>, Vec<u8>) {
    node.wait_for(|e| match e {
        NetEvent::InboundRecord {
            peer,
            key: k,
            value,
        } if k == key => Ok((peer, value)),
        other => Err(other),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_between_three_nodes_with_filtering() {
    let mut a = start_loopback().await;
    let mut b = start_loopback().await;
    let mut c = start_loopback().await;
    connect(&b, &a).await;
    connect(&c, &a).await;
    connect(&c, &b).await;
    identified(&mut a, 2).await;

    let key = b"file-record/alice/photos".to_vec();
    let v1 = b"manifest v1".to_vec();
    a.client
        .put_record(key.clone(), v1.clone())
        .await
        .expect("put");
    // The publisher keeps its own copy.
    assert_eq!(
        a.client.get_local(key.clone()).await.expect("local"),
        Some(v1.clone())
    );

    // Peers are handed the record, and do not store it by themselves.
    for node in [&mut b, &mut c] {
        let (peer, value) = inbound_record(node, &key).await;
        assert_eq!(peer, Some(a.peer_id()));
        assert_eq!(value, v1);
        assert_eq!(
            node.client.get_local(key.clone()).await.expect("local"),
            None
        );
    }

    // B merges and stores its own version; C now finds both copies.
    let v2 = b"manifest v1+v2 merged".to_vec();
    b.client
        .store_local(key.clone(), v2.clone())
        .await
        .expect("store");
    let found = eventually(|| {
        let client = c.client.clone();
        let key = key.clone();
        let (v1, v2) = (v1.clone(), v2.clone());
        async move {
            let found = client.get_records(key).await.ok()?;
            let has = |v: &Vec<u8>| found.iter().any(|(_, x)| x == v);
            (has(&v1) && has(&v2)).then_some(found)
        }
    })
    .await;
    let b_id = b.peer_id();
    assert!(
        found.iter().any(|(p, v)| *p == Some(b_id) && *v == v2),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(p, _)| p.is_some()),
        "C stores nothing itself"
    );

    // A sees its own local copy first, reported with no peer.
    let from_a = a.client.get_records(key.clone()).await.expect("get");
    assert!(
        from_a.iter().any(|(p, v)| p.is_none() && *v == v1),
        "{from_a:?}"
    );

    // An unknown key is simply absent.
    let none = c
        .client
        .get_records(b"no such key".to_vec())
        .await
        .expect("get");
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_node_put_succeeds_locally_and_caps_apply() {
    let a = start(NetConfig {
        max_record_bytes: 1000,
        ..loopback_config()
    })
    .await;
    let replicated = a
        .client
        .put_record_replicated(b"k".to_vec(), b"v".to_vec())
        .await
        .expect("local put succeeds without peers");
    assert!(!replicated, "no peer could take it");
    let found = a.client.get_records(b"k".to_vec()).await.expect("get");
    assert_eq!(found, vec![(None, b"v".to_vec())]);

    let err = a
        .client
        .put_record(b"k".to_vec(), vec![0; 1001])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::RecordTooLarge {
                size: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    let err = a
        .client
        .store_local(b"k".to_vec(), vec![0; 1001])
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::RecordTooLarge { .. }), "{err}");
    a.client
        .store_local(b"k".to_vec(), vec![0; 1000])
        .await
        .expect("at cap");

    a.client.remove_local(b"k".to_vec()).await.expect("remove");
    assert_eq!(a.client.get_local(b"k".to_vec()).await.expect("get"), None);
}
