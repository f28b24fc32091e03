//! A node dies for good: the lowest live holder of each of its chunks
//! copies it to a new node until every chunk has R live holders again.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_holder_is_replaced_and_every_file_reads_back() {
    let mut net = start(6, |_, _| {}).await;
    let user = user_key();
    let a = random_bytes(2 << 20);
    let b = random_bytes(700 << 10);
    put_file(&net, 0, &user, "a.bin", &a, 3).await;
    put_file(&net, 0, &user, "b.bin", &b, 3).await;
    assert_eq!(net.min_live(0, &user, "a.bin").await, 3);

    // Kill the node (other than the entry) that holds the most chunks.
    let mut victim = (1, 0);
    for i in 1..6 {
        let held = net.node(i).status().await.chunks;
        if held > victim.1 {
            victim = (i, held);
        }
    }
    assert!(victim.1 > 0, "some node besides the entry holds chunks");
    let gone = net.node(victim.0).node_id();
    net.kill(victim.0).await;

    // First the others notice, then repair brings every chunk back to 3.
    net.wait_dead(0, &gone).await;
    for name in ["a.bin", "b.bin"] {
        net.wait_until(|| async { net.min_live(0, &user, name).await == 3 })
            .await;
    }
    assert!(get_file(&net, (victim.0 + 1) % 6, &user, "a.bin").await == a);
    assert!(get_file(&net, 0, &user, "b.bin").await == b);
    for i in (0..6).filter(|i| *i != victim.0) {
        assert!(
            net.accounting_exact(i).await,
            "node {i}: used bytes match the disk"
        );
    }
    net.shutdown().await;
}

/// Repair keeps each file at the R its owner asked for (signed into the
/// manifest), not at the nodes' default of 3: a one-copy file is left at
/// one copy, and a five-copy file that lost a holder is brought back to five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_the_replicas_each_file_asked_for() {
    let mut net = start(7, |_, _| {}).await;
    let user = user_key();
    let one = random_bytes(3 << 20);
    let five = random_bytes(1 << 20);
    put_file(&net, 0, &user, "one.bin", &one, 1).await;
    let report = put_file(&net, 0, &user, "five.bin", &five, 5).await;
    assert_eq!(net.min_live(0, &user, "five.bin").await, 5);
    let stored = || async {
        let mut n = 0;
        for h in net.live() {
            n += h.status().await.chunks;
        }
        n
    };
    let before = stored().await;

    // Several repair rounds (one a second) pass: nothing is copied.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(net.min_live(0, &user, "one.bin").await, 1);
    assert_eq!(stored().await, before, "no chunk was copied");

    // A holder of the five-copy file (not the entry) dies for good.
    let holds = |i: usize| {
        let id = net.node(i).node_id();
        report.chunks[0].receipts.iter().any(|r| r.node == id)
    };
    let victim = (1..7)
        .find(|&i| holds(i))
        .expect("a holder besides the entry");
    let gone = net.node(victim).node_id();
    net.kill(victim).await;
    net.wait_dead(0, &gone).await;
    net.wait_until(|| async { net.min_live(0, &user, "five.bin").await == 5 })
        .await;
    assert!(get_file(&net, 0, &user, "five.bin").await == five);
    net.shutdown().await;
}

/// A holder comes back after its chunks were repaired elsewhere: each chunk
/// is briefly at four copies, then the surplus copy is released and freed,
/// so the file settles at the three copies it asked for and still reads
/// back; every node's books match its disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_comes_back_after_a_repair_leaves_no_extra_copies() {
    let mut net = start(5, |_, cfg| {
        cfg.durability.trim_after = std::time::Duration::from_secs(2);
    })
    .await;
    let user = user_key();
    let data = random_bytes(700 << 10);
    let report = put_file(&net, 0, &user, "f.bin", &data, 3).await;
    let chunks: Vec<_> = report.chunks.iter().map(|c| c.id).collect();
    let holds = |i: usize| {
        let id = net.node(i).node_id();
        report
            .chunks
            .iter()
            .any(|c| c.receipts.iter().any(|r| r.node == id))
    };
    let victim = (1..5)
        .find(|&i| holds(i))
        .expect("a holder besides the entry");
    let gone = net.node(victim).node_id();
    net.kill(victim).await;
    net.wait_dead(0, &gone).await;
    net.wait_until(|| async {
        let mut all = true;
        for c in &chunks {
            all &= net.copies_of(*c).await == 3;
        }
        all
    })
    .await;

    // Back, with its old copies: more than three of some chunk.
    net.restart(victim, 0).await;
    let mut most = 0;
    for c in &chunks {
        most = most.max(net.copies_of(*c).await);
    }
    assert_eq!(most, 4, "the returning holder brings its copies back");

    // The surplus goes, and stays gone; nothing drops below three.
    net.wait_until(|| async {
        let mut all = true;
        for c in &chunks {
            all &= net.copies_of(*c).await == 3;
        }
        all && net.min_live(0, &user, "f.bin").await == 3
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for c in &chunks {
        assert_eq!(net.copies_of(*c).await, 3, "chunk {c} stays at three");
    }
    assert!(get_file(&net, victim, &user, "f.bin").await == data);
    for i in 0..5 {
        assert!(
            net.accounting_exact(i).await,
            "node {i}: used bytes match the disk"
        );
    }
    net.shutdown().await;
}
