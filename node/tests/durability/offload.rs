//! Lowering a node's donation below its use (or leaving) makes it move
//! chunks elsewhere first; no file is lost and its use drops under the cap.

use ifs_core::admin::{AdminOp, AdminRequest, DonationCap};
use ifs_core::proto::{CtlRequest, CtlResponse};

use crate::support::*;

async fn command(net: &Net, i: usize, op: AdminOp) -> CtlResponse {
    let s = net.session(i).await;
    let nonce: [u8; 16] = random32()[..16].try_into().unwrap();
    let req = AdminRequest::new(&net.keys[i], op, ifs_node::now_ms(), nonce);
    let r = s.request(&CtlRequest::Admin(req)).await.unwrap();
    s.close().await;
    r
}

async fn busiest(net: &Net) -> usize {
    let mut best = (0, 0);
    for i in 0..net.nodes.len() {
        let used = net.node(i).store().stats().await.unwrap().used;
        if used > best.1 {
            best = (i, used);
        }
    }
    best.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_donation_offloads_without_losing_a_file() {
    let net = start(4, |_, _| {}).await;
    let user = user_key();
    let data = random_bytes(3 << 20);
    put_file(&net, 0, &user, "big.bin", &data, 2).await;
    let i = busiest(&net).await;
    let used = net.node(i).store().stats().await.unwrap().used;
    let cap = used / 2;
    match command(&net, i, AdminOp::Donate(DonationCap::Bytes(cap))).await {
        CtlResponse::Donation(d) => assert!(d.excess_bytes > 0),
        other => panic!("unexpected answer {other:?}"),
    }
    net.wait_until(|| async {
        let c = net.node(i).store().stats().await.unwrap();
        c.used <= cap && c.excess == 0
    })
    .await;
    net.wait_until(|| async { net.min_live(0, &user, "big.bin").await >= 2 })
        .await;
    assert!(get_file(&net, (i + 1) % 4, &user, "big.bin").await == data);
    for n in 0..4 {
        assert!(
            net.accounting_exact(n).await,
            "node {n}: used bytes match the disk"
        );
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_node_hands_everything_over() {
    let mut net = start(5, |_, _| {}).await;
    let user = user_key();
    let data = random_bytes(1 << 20);
    put_file(&net, 0, &user, "l.bin", &data, 3).await;
    let i = busiest(&net).await;
    command(&net, i, AdminOp::Leave).await;
    net.wait_until(|| async { net.node(i).status().await.chunks == 0 })
        .await;
    assert!(net.accounting_exact(i).await);
    net.kill(i).await;
    let entry = (i + 1) % 5;
    net.wait_until(|| async { net.min_live(entry, &user, "l.bin").await >= 3 })
        .await;
    assert!(get_file(&net, entry, &user, "l.bin").await == data);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_signed_by_another_key_is_refused() {
    let net = start(2, |_, _| {}).await;
    let s = net.session(0).await;
    let req = AdminRequest::new(&net.keys[1], AdminOp::Leave, ifs_node::now_ms(), [7; 16]);
    let r = s.request(&CtlRequest::Admin(req)).await;
    assert!(r.is_err(), "refused: {r:?}");
    s.close().await;
    net.shutdown().await;
}
