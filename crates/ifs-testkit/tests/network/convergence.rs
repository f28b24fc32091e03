//! Nodes agree on the node table; a stopped node turns suspect, then dead;
//! restarted, it is alive again with a higher report sequence.

use ifs_testkit::{Cluster, ClusterOptions, wait_until};

use crate::PATIENCE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_converge_to_the_same_node_table() {
    let net = Cluster::start(10, ClusterOptions::default()).await.unwrap();
    let all = net.running();
    wait_until("all 10 node tables to agree", PATIENCE, || {
        net.tables_agree(&all)
    })
    .await
    .unwrap();
    for &i in &all {
        assert_eq!(net.table(i).len(), 10, "node {i} knows every node");
    }
    wait_until("every node to see every node alive", PATIENCE, || {
        all.iter().all(|&i| net.sees_alive(i, &all))
    })
    .await
    .unwrap();
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_goes_suspect_then_dead_and_returns_with_a_higher_seq() {
    let opts = ClusterOptions {
        dead_after: 6,
        ..ClusterOptions::default()
    };
    let mut net = Cluster::start(3, opts).await.unwrap();
    let all = net.running();
    wait_until("all alive", PATIENCE, || {
        all.iter().all(|&i| net.sees_alive(i, &all))
    })
    .await
    .unwrap();
    let id = net.node_id(2).unwrap();
    net.stop(2).await.unwrap();
    let seq_before = net.table(0)[&id];

    wait_until("node 2 suspect on node 0", PATIENCE, || {
        net.state_of(0, 2).as_deref() == Some("suspect")
    })
    .await
    .unwrap();
    wait_until("node 2 dead on nodes 0 and 1", PATIENCE, || {
        (0..2).all(|v| net.state_of(v, 2).as_deref() == Some("dead"))
    })
    .await
    .unwrap();

    net.restart(2, 0).await.unwrap();
    // The persisted table came back with the node.
    assert!(
        net.table(2).len() >= 2,
        "restored table: {:?}",
        net.table(2)
    );
    wait_until("node 2 alive again everywhere", PATIENCE, || {
        all.iter().all(|&i| net.sees_alive(i, &all))
    })
    .await
    .unwrap();
    for v in 0..2 {
        assert!(
            net.table(v)[&id] > seq_before,
            "node {v} has a newer report"
        );
    }
    net.shutdown().await;
}
