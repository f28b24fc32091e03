//! Two partitions write to the same file record; after the partition heals,
//! every node reads the same merged record.

use ifs_core::crdt::Crdt;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_testkit::samples::{file_record, manifest, record_key};
use ifs_testkit::{Cluster, ClusterOptions, wait_until, wait_until_async};

use crate::PATIENCE;

const NAME: &str = "shared/notes.txt";

async fn read(net: &Cluster, i: usize, key: &[u8]) -> Option<FileRecord> {
    let bytes = net.node(i).ok()?.get_record(key.to_vec()).await.ok()??;
    FileRecord::decode(&bytes).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_write_the_same_record_and_agree_after_healing() {
    let net = Cluster::start_groups(&[3, 3], ClusterOptions::default())
        .await
        .unwrap();
    let (left, right) = (net.group(0), net.group(1));
    for g in [&left, &right] {
        wait_until("each partition to agree internally", PATIENCE, || {
            net.tables_agree(g)
        })
        .await
        .unwrap();
    }
    assert_eq!(
        net.table(0).len(),
        3,
        "the partitions do not know each other"
    );

    let owner = UserKey::generate(&mut rand::rng());
    let holder_a = NodeKey::generate(&mut rand::rng());
    let holder_b = NodeKey::generate(&mut rand::rng());
    let key = record_key(&owner, NAME);
    // Left: version 1 with a receipt from holder A. Right: version 2 of the
    // manifest with a receipt from holder B.
    let a = file_record(manifest(&owner, NAME, 1, &[0]), &owner, &[&holder_a]);
    let b = file_record(manifest(&owner, NAME, 2, &[0]), &owner, &[&holder_b]);
    net.node(left[0])
        .unwrap()
        .put_record(key.clone(), a.encode())
        .await
        .unwrap();
    net.node(right[0])
        .unwrap()
        .put_record(key.clone(), b.encode())
        .await
        .unwrap();
    let mut want = a.clone();
    want.merge(&b);
    assert_eq!(want.manifest().map(|m| m.version), Some(2));
    assert_eq!(want.receipts().count(), 2);

    // While partitioned, each side reads its own write only.
    assert_eq!(read(&net, left[1], &key).await, Some(a));
    assert_eq!(read(&net, right[1], &key).await, Some(b));

    net.connect(left[0], right[0]).await.unwrap();
    let all = net.running();
    wait_until("the healed tables to agree", PATIENCE, || {
        net.tables_agree(&all)
    })
    .await
    .unwrap();
    for &i in &all {
        wait_until_async(
            &format!("node {i} to read the merged record"),
            PATIENCE,
            || {
                let (net, key, want) = (&net, &key, &want);
                async move { read(net, i, key).await.as_ref() == Some(want) }
            },
        )
        .await
        .unwrap();
    }
    net.shutdown().await;
}
