//! Bad input from a peer is rejected with a log line and the node keeps
//! serving: forged and replayed capacity reports, oversized and malformed
//! requests, garbage on the UDP probe port, DHT records with a bad signature.

use std::time::Duration;

use ifs_client::Session;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{NodeKey, Sig, UserKey};
use ifs_core::node_table::NodeTable;
use ifs_core::proto::{CtlError, CtlRequest, CtlResponse, MAX_CTL_RESPONSE, decode, encode};
use ifs_core::wire::{CapacityReport, CapacityStats};
use ifs_node::CAPACITY_TOPIC;
use ifs_testkit::samples::{file_record, manifest, record_key};
use ifs_testkit::{Cluster, ClusterOptions, Intruder, LogCapture, wait_until};

use crate::PATIENCE;

async fn cluster(n: usize) -> Cluster {
    let net = Cluster::start(n, ClusterOptions::default()).await.unwrap();
    let all = net.running();
    wait_until("the cluster to converge", PATIENCE, || {
        all.iter().all(|&i| net.sees_alive(i, &all))
    })
    .await
    .unwrap();
    net
}

/// The node still answers a client and still sees its peers alive.
async fn still_serving(net: &Cluster, i: usize) {
    let node = net.node(i).unwrap();
    let session = Session::connect(node.addrs()[0].clone()).await.unwrap();
    match session.request(&CtlRequest::Status).await.unwrap() {
        CtlResponse::Status(s) => assert_eq!(s.alive_peers as usize, net.len() - 1),
        other => panic!("unexpected answer {other:?}"),
    }
    session.close().await;
}

fn report(key: &NodeKey, seq: u64, free: u64) -> CapacityReport {
    let stats = CapacityStats {
        donated_bytes: 1 << 40,
        free_bytes: free,
        ..Default::default()
    };
    CapacityReport::new(key, seq, vec![], stats, "0.1.0".into(), seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_capacity_reports_are_rejected() {
    let logs = LogCapture::install("warn").unwrap();
    let net = cluster(3).await;
    let victim = net.key(1).unwrap().clone();
    let (intruder, entry) = Intruder::join(&net.node(0).unwrap().addrs()[0], 1 << 20)
        .await
        .unwrap();
    let me = intruder.net().local_peer_id().to_string();

    // A report claiming to be node 1, signed by the intruder.
    let mut forged = report(intruder.key(), u64::MAX / 2, 1 << 40);
    forged.node = victim.node_id();
    // Node 1's own (validly signed) report, published by someone else.
    let relayed = report(&victim, u64::MAX / 2 + 1, 1 << 40);
    for data in [forged.encode(), relayed.encode(), b"not a report".to_vec()] {
        intruder
            .publish(CAPACITY_TOPIC, data, PATIENCE)
            .await
            .unwrap();
    }
    wait_until("three rejections logged with the sender", PATIENCE, || {
        logs.lines_with(&["rejected capacity report", &me]).len() >= 3
    })
    .await
    .unwrap();

    // Replay: an old report of node 1 (genuinely signed) in a table exchange.
    let mut old = NodeTable::new();
    old.insert(report(&victim, 1, 5), 1).unwrap();
    let seq_now = net.table(0)[&victim.node_id()];
    let req = encode(&CtlRequest::TableExchange {
        table: old.encode(),
    });
    let answer = intruder.net().request(entry, req).await.unwrap();
    assert!(matches!(
        decode::<CtlResponse>(&answer, MAX_CTL_RESPONSE),
        Ok(CtlResponse::Table { .. })
    ));

    for i in net.running() {
        let seq = net.table(i)[&victim.node_id()];
        assert!(seq < u64::MAX / 2, "node {i} took a forged report");
        assert!(seq >= 1_000, "node {i} rolled back to a replayed report");
    }
    assert!(net.table(0)[&victim.node_id()] >= seq_now);
    still_serving(&net, 0).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_are_refused() {
    // libp2p reports a request it could not read (over the cap) only in its
    // own debug log: the failure never reaches the swarm's event stream.
    let logs = LogCapture::install("warn,libp2p_request_response=debug").unwrap();
    let net = cluster(2).await;
    let (intruder, entry) = Intruder::join(&net.node(0).unwrap().addrs()[0], 8 << 20)
        .await
        .unwrap();
    let me = intruder.net().local_peer_id().to_string();

    let huge = vec![0xA5u8; 4 << 20];
    assert!(
        intruder.net().request(entry, huge).await.is_err(),
        "a 4 MiB request gets no answer"
    );
    let answer = intruder
        .net()
        .request(entry, b"\xff\x00garbage".to_vec())
        .await
        .unwrap();
    match decode::<CtlResponse>(&answer, MAX_CTL_RESPONSE).unwrap() {
        CtlResponse::Error(CtlError::Invalid(_)) => {}
        other => panic!("malformed request answered with {other:?}"),
    }
    wait_until("both refusals logged", PATIENCE, || {
        !logs.lines_with(&["Inbound failure", "Eof"]).is_empty()
            && !logs
                .lines_with(&["rejected malformed control request", &me])
                .is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs:\n{}", logs.text()));
    still_serving(&net, 0).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_udp_probe_port_is_ignored() {
    let logs = LogCapture::install("warn,ifs_net::hops=debug").unwrap();
    let net = cluster(2).await;
    let addr = net.node(0).unwrap().addrs()[0].to_string();
    let port: u16 = addr
        .split("/tcp/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for len in [0usize, 1, 7, 64, 1500, 9000, 60_000] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        sock.send_to(&junk, target).await.unwrap();
    }
    wait_until("the junk to be logged", PATIENCE, || {
        !logs.lines_with(&["hop responder", "ignoring"]).is_empty()
    })
    .await
    .unwrap();
    let r = ifs_net::hops::probe_hops(target, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.hops, 0, "loopback is zero hops");
    still_serving(&net, 0).await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_a_bad_signature_never_enter_the_fat() {
    let logs = LogCapture::install("warn").unwrap();
    let net = cluster(3).await;
    let owner = UserKey::generate(&mut rand::rng());
    let holder = NodeKey::generate(&mut rand::rng());
    let name = "a/b.txt";
    let key = record_key(&owner, name);
    let good = file_record(manifest(&owner, name, 1, &[0]), &owner, &[&holder]);
    net.node(0)
        .unwrap()
        .put_record(key.clone(), good.encode())
        .await
        .unwrap();

    // Version 9, then one byte of its manifest signature flipped.
    let newer = manifest(&owner, name, 9, &[0, 1]);
    let Sig(sig) = newer.sig;
    let mut bad = file_record(newer, &owner, &[]).encode();
    let at = bad
        .windows(64)
        .position(|w| w == sig)
        .expect("the signature is in the encoding");
    bad[at + 10] ^= 1;

    // Through the control protocol: refused with a reason.
    let refused = net
        .node(1)
        .unwrap()
        .put_record(key.clone(), bad.clone())
        .await;
    assert!(matches!(refused, Err(CtlError::Invalid(_))), "{refused:?}");
    // Straight into Kademlia from a peer: dropped and logged with the sender.
    let (intruder, _) = Intruder::join(&net.node(2).unwrap().addrs()[0], 1 << 20)
        .await
        .unwrap();
    let me = intruder.net().local_peer_id().to_string();
    let _ = intruder.net().put_record(key.clone(), bad).await;
    wait_until("the bad record to be rejected and logged", PATIENCE, || {
        !logs
            .lines_with(&["rejected inbound record", &me])
            .is_empty()
    })
    .await
    .unwrap();

    for i in net.running() {
        let bytes = net.node(i).unwrap().get_record(key.clone()).await.unwrap();
        let rec = FileRecord::decode(&bytes.expect("the good record")).unwrap();
        assert_eq!(rec, good, "node {i} kept the validly signed record");
    }
    still_serving(&net, 1).await;
    intruder.shutdown().await;
    net.shutdown().await;
}
