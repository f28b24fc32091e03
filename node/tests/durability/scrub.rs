//! A byte flipped in a piece on disk is found (by the scheduled scrub, or by
//! an audit) and the copy is replaced from another holder.

use std::time::Duration;

use crate::support::*;

fn flip_a_byte(net: &Net, i: usize) {
    let piece = pieces(&net.vols[i])
        .into_iter()
        .next()
        .expect("node holds a piece");
    let mut bytes = std::fs::read(&piece).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&piece, bytes).unwrap();
}

async fn holder_other_than_entry(net: &Net) -> usize {
    for i in 1..net.nodes.len() {
        if net.node(i).status().await.chunks > 0 {
            return i;
        }
    }
    panic!("no holder besides the entry");
}

async fn damaged_copy_is_repaired(scrub: bool) {
    let net = start(4, |_, cfg| {
        if scrub {
            cfg.durability.scrub_interval = Duration::from_secs(1);
            cfg.durability.audits_per_pass = 0;
        } else {
            cfg.durability.audits_per_pass = 64;
        }
    })
    .await;
    let user = user_key();
    let data = random_bytes(1 << 20);
    put_file(&net, 0, &user, "f.bin", &data, 3).await;
    let i = holder_other_than_entry(&net).await;
    flip_a_byte(&net, i);
    assert!(!net.node(i).store().scrub().await.unwrap().is_clean());

    net.wait_until(|| async { net.node(i).store().scrub().await.unwrap().is_clean() })
        .await;
    assert!(net.accounting_exact(i).await);
    assert!(get_file(&net, 3, &user, "f.bin").await == data);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_finds_a_flipped_byte_and_refetches_the_chunk() {
    damaged_copy_is_repaired(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_finds_a_flipped_byte_and_the_copy_is_replaced() {
    damaged_copy_is_repaired(false).await;
}
