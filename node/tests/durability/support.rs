//! Nodes, keys and disk inspection shared by the durability tests.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ifs_client::{LsOptions, PutOptions, PutReport, Session, ls, put};
use ifs_core::ChunkId;
use ifs_core::codec::CodecParams;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_net::Multiaddr;
use ifs_node::{Node, NodeConfig, NodeHandle};
use ifs_store::{Cap, StoreConfig, VolumeSpec};

/// Upper bound on any wait: a failure bound, never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// Fresh random 32 bytes (no rand dependency in this crate).
pub fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Pseudo-random bytes (incompressible enough for the codec).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 32);
    let mut seed = random32();
    while v.len() < n {
        seed = ChunkId::of(&seed).0;
        v.extend_from_slice(&seed);
    }
    v.truncate(n);
    v
}

/// A fresh user key.
pub fn user_key() -> UserKey {
    let (ed, x) = (random32(), random32());
    let mut b = b"IFSU".to_vec();
    b.push(1);
    b.extend_from_slice(&ed);
    b.extend_from_slice(&x);
    let sum = ChunkId::of(&b);
    b.extend_from_slice(&sum.0[..4]);
    UserKey::from_bytes(&b).expect("well-formed user key")
}

/// A running test network.
pub struct Net {
    pub nodes: Vec<Option<NodeHandle>>,
    pub keys: Vec<NodeKey>,
    pub vols: Vec<PathBuf>,
    cfgs: Vec<NodeConfig>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Start `n` nodes; `tweak(i, cfg)` adjusts each node's config.
pub async fn start(n: usize, tweak: impl Fn(usize, &mut NodeConfig)) -> Net {
    // RUST_LOG=ifs_node=debug shows what the nodes did when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut nodes: Vec<Option<NodeHandle>> = Vec::new();
    let (mut dirs, mut keys, mut vols, mut cfgs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let store = StoreConfig::new(
            dir.path(),
            vec![VolumeSpec {
                path: vol.clone(),
                cap: Cap::Bytes(256 << 20),
            }],
        );
        let key = NodeKey::from_bytes(&random32()).unwrap();
        let mut cfg = NodeConfig::new(key.clone(), dir.path().to_path_buf(), store);
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        cfg.capacity_interval = Duration::from_millis(300);
        cfg.durability.repair_interval = Duration::from_secs(1);
        cfg.durability.scrub_interval = Duration::from_secs(3600);
        cfg.durability.scrub_bytes_per_sec = None;
        cfg.durability.repair_bytes_per_sec = None;
        if let Some(Some(first)) = nodes.first() {
            cfg.bootstrap = first.addrs();
        }
        tweak(i, &mut cfg);
        cfgs.push(cfg.clone());
        nodes.push(Some(Node::spawn(cfg).await.unwrap()));
        dirs.push(dir);
        keys.push(key);
        vols.push(vol);
    }
    let net = Net {
        nodes,
        keys,
        vols,
        cfgs,
        _dirs: dirs,
    };
    net.wait_until(|| async {
        let mut all = true;
        for h in net.live() {
            all &= h.peers().iter().filter(|r| r.state == "alive").count() == n;
        }
        all
    })
    .await;
    net
}

impl Net {
    pub fn live(&self) -> impl Iterator<Item = &NodeHandle> {
        self.nodes.iter().flatten()
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().expect("node running")
    }

    pub async fn session(&self, i: usize) -> Session {
        let addr: Multiaddr = self
            .node(i)
            .addrs()
            .into_iter()
            .find(|a| a.to_string().contains("/tcp/"))
            .unwrap();
        Session::connect(addr).await.unwrap()
    }

    /// Poll `cond` until it holds; panics after [`PATIENCE`].
    pub async fn wait_until<F, Fut>(&self, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !cond().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached in time"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stop node `i` for good.
    pub async fn kill(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].take() {
            h.shutdown().await;
        }
    }

    /// Start node `i` again on its old data dir and key (it listens on a
    /// new port), joining through node `via`.
    pub async fn restart(&mut self, i: usize, via: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let mut cfg = self.cfgs[i].clone();
        cfg.bootstrap = self.node(via).addrs();
        self.nodes[i] = Some(Node::spawn(cfg).await.unwrap());
    }

    /// How many running nodes hold `chunk`.
    pub async fn copies_of(&self, chunk: ifs_core::ChunkId) -> usize {
        let mut n = 0;
        for h in self.live() {
            n += usize::from(h.store().contains(chunk).await.unwrap());
        }
        n
    }

    pub async fn shutdown(mut self) {
        for h in self.nodes.iter_mut().filter_map(Option::take) {
            h.shutdown().await;
        }
    }

    /// Lowest live-replica count of `user`'s `name`, as node `i` sees it.
    /// Waits until node `i`'s table has `gone` as dead.
    pub async fn wait_dead(&self, i: usize, gone: &ifs_core::NodeId) {
        let peer = ifs_net::node_id_to_peer_id(gone).unwrap().to_string();
        self.wait_until(|| async {
            self.node(i)
                .peers()
                .iter()
                .any(|r| r.state == "dead" && r.peer_id == peer)
        })
        .await;
    }

    pub async fn min_live(&self, i: usize, user: &UserKey, name: &str) -> usize {
        let s = self.session(i).await;
        let opts = LsOptions {
            recursive: true,
            replicas: true,
            ..LsOptions::default()
        };
        let n = match ls(&s, user, &opts).await {
            Ok(files) => files
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.min_live_replicas)
                .unwrap_or(0),
            Err(_) => 0,
        };
        s.close().await;
        n
    }

    /// Whether node `i`'s used bytes match the piece bytes on its disk.
    pub async fn accounting_exact(&self, i: usize) -> bool {
        let used = self.node(i).store().stats().await.unwrap().used;
        used == disk_bytes(&self.vols[i])
    }
}

/// Put `data` as `name` through node `entry` with `replicas` copies and
/// 256 KiB segments.
pub async fn put_file(
    net: &Net,
    entry: usize,
    user: &UserKey,
    name: &str,
    data: &[u8],
    r: usize,
) -> PutReport {
    let s = net.session(entry).await;
    let mut o = PutOptions::new(name);
    o.codec = CodecParams::with_segment_size(256 << 10);
    o.size_hint = Some(data.len() as u64);
    o.replicas = r;
    let report = put(&s, user, Cursor::new(data.to_vec()), o).await.unwrap();
    s.close().await;
    report
}

/// Read `name` back through node `entry`.
pub async fn get_file(net: &Net, entry: usize, user: &UserKey, name: &str) -> Vec<u8> {
    let s = net.session(entry).await;
    let (_, out) = ifs_client::get(&s, user, name, Vec::new(), Default::default())
        .await
        .unwrap();
    s.close().await;
    out
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Committed piece files of a volume.
pub fn pieces(vol: &Path) -> Vec<PathBuf> {
    files_under(&vol.join("ifs").join("pieces"))
}

/// Bytes of the committed pieces on a volume.
pub fn disk_bytes(vol: &Path) -> u64 {
    pieces(vol)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
