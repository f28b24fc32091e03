//! A node that answers audits with garbage loses reputation (shown by
//! `peers`) and placement stops giving it chunks.

use ifs_core::placement::Policy;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_cost_reputation_and_new_chunks() {
    const BAD: usize = 4;
    let net = start(5, |i, cfg| {
        cfg.durability.audits_per_pass = 64;
        cfg.durability.fault_garbage_audits = i == BAD;
    })
    .await;
    let bad = net.node(BAD).peer_id().to_string();
    let user = user_key();
    let first = put_file(&net, 0, &user, "one.bin", &random_bytes(3 << 20), 3).await;
    let bad_id = net.node(BAD).node_id();
    let held = first
        .chunks
        .iter()
        .filter(|c| c.receipts.iter().any(|r| r.node == bad_id))
        .count();
    assert!(
        held > 0,
        "the faulty node received chunks before it was caught"
    );

    // Some honest node sees it below placement's minimum.
    let min = Policy::default().min_reputation;
    let mut judge = None;
    net.wait_until(|| {
        let found = (0..BAD).find(|&i| {
            net.node(i)
                .peers()
                .iter()
                .any(|r| r.peer_id == bad && r.reputation < min)
        });
        judge = found;
        async move { found.is_some() }
    })
    .await;
    let judge = judge.unwrap();

    // A put through that node places nothing on the faulty one.
    let data = random_bytes(2 << 20);
    let second = put_file(&net, judge, &user, "two.bin", &data, 3).await;
    for c in &second.chunks {
        assert!(
            c.receipts.iter().all(|r| r.node != bad_id),
            "faulty node got a chunk"
        );
        assert_eq!(c.receipts.len(), 3);
    }
    assert!(get_file(&net, judge, &user, "two.bin").await == data);
    net.shutdown().await;
}
