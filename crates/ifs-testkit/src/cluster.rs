//! [`Cluster`]: N nodes in this process on 127.0.0.1, each with its own temp
//! dir, small volume and short timers. Nodes can form separate groups (a
//! partition: each group bootstraps from its own seed and never hears of the
//! others), be stopped and restarted with the same identity and state, and
//! be connected across groups (healing the partition).

use std::collections::BTreeMap;
use std::time::Duration;

use ifs_core::NodeId;
use ifs_core::keys::NodeKey;
use ifs_net::Multiaddr;
use ifs_node::{Node, NodeConfig, NodeHandle};
use ifs_store::{Cap, StoreConfig, VolumeSpec};
use tempfile::TempDir;

use crate::TestkitError;

/// Timers and sizes of every node in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Time between capacity reports.
    pub capacity_interval: Duration,
    /// Missed intervals before suspect.
    pub suspect_after: u32,
    /// Missed intervals before dead.
    pub dead_after: u32,
    /// Time between DHT record republications.
    pub republish_interval: Duration,
    /// Cap of each node's one volume.
    pub volume_bytes: u64,
    /// Listen on QUIC too (TCP only by default: fewer sockets and tasks).
    pub quic: bool,
    /// Per-user reservation limits of every node.
    pub quota: ifs_core::quota::QuotaPolicy,
    /// Scrub, repair and collection timers of every node.
    pub durability: ifs_node::DurabilityConfig,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            capacity_interval: Duration::from_millis(500),
            suspect_after: 3,
            dead_after: 10,
            republish_interval: Duration::from_secs(2),
            volume_bytes: 64 << 20,
            quic: false,
            quota: ifs_core::quota::QuotaPolicy::default(),
            durability: ifs_node::DurabilityConfig::default(),
        }
    }
}

/// One node slot: its dir and config survive a stop, so a restart keeps the
/// identity, the persisted node table and the records.
struct Slot {
    cfg: NodeConfig,
    handle: Option<NodeHandle>,
    group: usize,
    _dir: TempDir,
}

/// Nodes running in this process.
pub struct Cluster {
    slots: Vec<Slot>,
}

impl Cluster {
    /// Start `n` nodes; node 0 is the seed every other node bootstraps from.
    pub async fn start(n: usize, opts: ClusterOptions) -> Result<Cluster, TestkitError> {
        Self::start_groups(&[n], opts).await
    }

    /// Start groups of nodes that know nothing of each other: the first node
    /// of each group is that group's seed. Node indices run across groups in
    /// order (sizes `[3, 2]` give nodes 0–2 and 3–4).
    pub async fn start_groups(
        sizes: &[usize],
        opts: ClusterOptions,
    ) -> Result<Cluster, TestkitError> {
        let mut cluster = Cluster { slots: Vec::new() };
        for (group, &size) in sizes.iter().enumerate() {
            let mut seed: Option<Multiaddr> = None;
            for _ in 0..size {
                let index = cluster.slots.len();
                let dir = tempfile::Builder::new().prefix("ifs-node-").tempdir()?;
                let cfg = node_config(&dir, &opts, seed.iter().cloned().collect())?;
                let handle = Node::spawn(cfg.clone())
                    .await
                    .map_err(|source| TestkitError::Node { index, source })?;
                if seed.is_none() {
                    seed = handle.addrs().first().cloned();
                }
                cluster.slots.push(Slot {
                    cfg,
                    handle: Some(handle),
                    group,
                    _dir: dir,
                });
            }
        }
        Ok(cluster)
    }

    /// Number of node slots (running or stopped).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cluster has no node.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> Result<&NodeHandle, TestkitError> {
        self.slots
            .get(i)
            .ok_or(TestkitError::NoSuchNode(i))?
            .handle
            .as_ref()
            .ok_or(TestkitError::Stopped(i))
    }

    /// Node `i`'s identity key (stays the same across restarts).
    pub fn key(&self, i: usize) -> Result<&NodeKey, TestkitError> {
        Ok(&self
            .slots
            .get(i)
            .ok_or(TestkitError::NoSuchNode(i))?
            .cfg
            .key)
    }

    /// Node `i`'s id.
    pub fn node_id(&self, i: usize) -> Result<NodeId, TestkitError> {
        Ok(self.key(i)?.node_id())
    }

    /// Indices of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].handle.is_some())
            .collect()
    }

    /// Indices of the nodes started in `group`.
    pub fn group(&self, group: usize) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].group == group)
            .collect()
    }

    /// Stop node `i` cleanly (state persisted); a no-op when stopped.
    pub async fn stop(&mut self, i: usize) -> Result<(), TestkitError> {
        let slot = self.slots.get_mut(i).ok_or(TestkitError::NoSuchNode(i))?;
        if let Some(h) = slot.handle.take() {
            h.shutdown().await;
        }
        Ok(())
    }

    /// Start node `i` again with its identity and state, bootstrapping from
    /// the running node `via` (new listen ports).
    pub async fn restart(&mut self, i: usize, via: usize) -> Result<(), TestkitError> {
        let seed = self.node(via)?.addrs();
        let slot = self.slots.get_mut(i).ok_or(TestkitError::NoSuchNode(i))?;
        if slot.handle.is_some() {
            return Ok(());
        }
        slot.cfg.bootstrap = seed.into_iter().take(1).collect();
        let handle = Node::spawn(slot.cfg.clone())
            .await
            .map_err(|source| TestkitError::Node { index: i, source })?;
        slot.handle = Some(handle);
        Ok(())
    }

    /// Connect node `a` to node `b` (e.g. to heal a partition).
    pub async fn connect(&self, a: usize, b: usize) -> Result<(), TestkitError> {
        let addr = self
            .node(b)?
            .addrs()
            .into_iter()
            .next()
            .ok_or(TestkitError::Stopped(b))?;
        self.node(a)?.net().dial(addr).await?;
        Ok(())
    }

    /// Node `i`'s table as `node → seq` (empty when stopped).
    pub fn table(&self, i: usize) -> BTreeMap<NodeId, u64> {
        self.node(i).map(|h| h.table_seqs()).unwrap_or_default()
    }

    /// Whether every node in `nodes` lists exactly `nodes`, with the same
    /// newest report of each (the node tables agree).
    pub fn tables_agree(&self, nodes: &[usize]) -> bool {
        let want: Vec<NodeId> = nodes.iter().filter_map(|&i| self.node_id(i).ok()).collect();
        let mut first: Option<BTreeMap<NodeId, u64>> = None;
        for &i in nodes {
            let t = self.table(i);
            if t.len() != want.len() || !want.iter().all(|n| t.contains_key(n)) {
                return false;
            }
            match &first {
                None => first = Some(t),
                Some(f) if *f != t => return false,
                Some(_) => {}
            }
        }
        true
    }

    /// The state (`alive`, `suspect`, `dead`) node `viewer` gives node
    /// `subject`, if it knows it.
    pub fn state_of(&self, viewer: usize, subject: usize) -> Option<String> {
        let peer = ifs_net::node_id_to_peer_id(&self.node_id(subject).ok()?)
            .ok()?
            .to_string();
        self.node(viewer)
            .ok()?
            .peers()
            .into_iter()
            .find(|r| r.peer_id == peer)
            .map(|r| r.state)
    }

    /// Whether `viewer` sees every node of `subjects` alive.
    pub fn sees_alive(&self, viewer: usize, subjects: &[usize]) -> bool {
        subjects
            .iter()
            .all(|&s| self.state_of(viewer, s).as_deref() == Some("alive"))
    }

    /// Stop every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.slots.len() {
            let _ = self.stop(i).await;
        }
    }
}

fn node_config(
    dir: &TempDir,
    opts: &ClusterOptions,
    bootstrap: Vec<Multiaddr>,
) -> Result<NodeConfig, TestkitError> {
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(&volume)?;
    let mut store = StoreConfig::new(
        dir.path(),
        vec![VolumeSpec {
            path: volume,
            cap: Cap::Bytes(opts.volume_bytes),
        }],
    );
    // Test volumes are tiny; the disk they sit on may be nearly full.
    store.owner_reserve_pct = 0;
    let key = NodeKey::generate(&mut rand::rng());
    let mut cfg = NodeConfig::new(key, dir.path().to_path_buf(), store);
    let mut listen = vec!["/ip4/127.0.0.1/tcp/0"];
    if opts.quic {
        listen.push("/ip4/127.0.0.1/udp/0/quic-v1");
    }
    cfg.listen = listen
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect::<Vec<Multiaddr>>();
    cfg.bootstrap = bootstrap;
    cfg.capacity_interval = opts.capacity_interval;
    cfg.suspect_after = opts.suspect_after;
    cfg.dead_after = opts.dead_after;
    cfg.republish_interval = opts.republish_interval;
    cfg.hop_probe_interval = opts.capacity_interval * 4;
    cfg.quota = opts.quota;
    cfg.durability = opts.durability.clone();
    Ok(cfg)
}
