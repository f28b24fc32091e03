//! The data path in one process: five real nodes on loopback, a client that
//! puts through one and gets through another.

use std::io::Cursor;
use std::time::Duration;

use ifs_client::{GetOptions, PutOptions, Session, get, ls, put, rm};
use ifs_core::codec::CodecParams;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_net::Multiaddr;
use ifs_node::{Node, NodeConfig, NodeHandle};
use ifs_store::{Cap, StoreConfig, VolumeSpec};

struct Net {
    nodes: Vec<NodeHandle>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start(n: usize) -> Net {
    let mut nodes: Vec<NodeHandle> = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let store = StoreConfig::new(
            dir.path(),
            vec![VolumeSpec {
                path: vol,
                cap: Cap::Bytes(512 << 20),
            }],
        );
        let key = NodeKey::generate(&mut rand::rng());
        let mut cfg = NodeConfig::new(key, dir.path().to_path_buf(), store);
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        cfg.capacity_interval = Duration::from_millis(300);
        if let Some(first) = nodes.first() {
            cfg.bootstrap = first.addrs();
        }
        nodes.push(Node::spawn(cfg).await.unwrap());
        dirs.push(dir);
    }
    // Wait until every node sees every node alive (no timing assertion:
    // the test only needs the tables to converge).
    for _ in 0..600 {
        let ready = nodes
            .iter()
            .all(|h| h.peers().iter().filter(|r| r.state == "alive").count() == n);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Net { nodes, _dirs: dirs }
}

fn addr(h: &NodeHandle) -> Multiaddr {
    h.addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .unwrap()
}

fn opts(name: &str, size: usize) -> PutOptions {
    let mut o = PutOptions::new(name);
    o.codec = CodecParams::with_segment_size(256 << 10);
    o.size_hint = Some(size as u64);
    o
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_through_one_node_get_through_another_then_rm() {
    let net = start(5).await;
    let user = UserKey::generate(&mut rand::rng());
    let data = random_bytes(3 << 20);

    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let report = put(&s1, &user, Cursor::new(data.clone()), opts("a.bin", data.len()))
        .await
        .unwrap();
    assert_eq!(report.size, data.len() as u64);
    assert!(report.chunks.len() >= 12);
    for c in &report.chunks {
        let mut nodes: Vec<_> = c.receipts.iter().map(|r| r.node).collect();
        nodes.sort();
        nodes.dedup();
        assert_eq!(nodes.len(), 3, "chunk {} has 3 distinct holders", c.index);
    }

    let s5 = Session::connect(addr(&net.nodes[4])).await.unwrap();
    let (got, out) = get(&s5, &user, "a.bin", Vec::new(), GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.size, data.len() as u64);
    assert!(out == data, "bytes differ");

    let files = ls(&s5, &user).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "a.bin");
    assert_eq!(files[0].min_live_replicas, 3);

    rm(&s1, &user, "a.bin").await.unwrap();
    assert!(ls(&s5, &user).await.unwrap().is_empty());
    assert!(matches!(
        get(&s5, &user, "a.bin", Vec::new(), GetOptions::default()).await,
        Err(ifs_client::GetError::NotFound(_))
    ));
    for h in net.nodes {
        assert_eq!(h.status().await.chunks, 0, "rm freed every copy");
        h.shutdown().await;
    }
}
