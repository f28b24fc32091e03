//! Real `ifsnode run` processes with short capacity and repair intervals,
//! which can be stopped and started again on the same data dir.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, PATIENCE, bin, no_owner_reserve, stderr};

/// Capacity reports every 300 ms (a silent node is dead after 10 missed
/// reports, 3 s), a durability pass every 500 ms, the admin endpoint on a
/// free loopback port (`DIR/admin.addr`).
pub const RUN_ARGS: [&str; 6] = [
    "--capacity-interval-ms",
    "300",
    "--repair-interval-ms",
    "500",
    "--admin-listen",
    "127.0.0.1:0",
];

/// Init and start `n` nodes bootstrapped from the first, each with its
/// default volume; wait until every node is alive in the first one's table.
pub fn start(n: usize) -> Cluster {
    let mut c = Cluster {
        dir: tempfile::tempdir().unwrap(),
        nodes: Vec::new(),
        addrs: Vec::new(),
    };
    for _ in 0..n {
        add(&mut c);
    }
    c.wait_alive(0, n);
    c.wait_alive(n - 1, n);
    c
}

/// Init one more node and start it (bootstrapped from the first); its index.
pub fn add(c: &mut Cluster) -> usize {
    let i = c.nodes.len();
    let out = Command::new(bin())
        .args(["init", "--data-dir"])
        .arg(c.data_dir(i))
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {}", stderr(&out));
    no_owner_reserve(&c.data_dir(i));
    c.nodes.push(None);
    c.addrs.push(String::new());
    run(c, i);
    i
}

/// Start node `i` (again): `ifsnode run` on its data dir, log appended to
/// `node.log`; returns once it wrote its new address.
pub fn run(c: &mut Cluster, i: usize) {
    assert!(c.nodes[i].is_none(), "node {i} is running");
    let data = c.data_dir(i);
    let _ = std::fs::remove_file(data.join("node.addr"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("node.log"))
        .unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--data-dir"])
        .arg(&data)
        .args(RUN_ARGS)
        .arg("-v")
        .env_remove("IFS_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if i > 0 {
        cmd.args(["--bootstrap", &c.addrs[0]]);
    }
    c.nodes[i] = Some(cmd.spawn().unwrap());
    c.addrs[i] = wait_addr(&data);
}

/// Kill node `i` (SIGKILL) and start it again on the same data dir.
pub fn restart(c: &mut Cluster, i: usize) {
    c.kill(i);
    run(c, i);
}

fn wait_addr(data: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("node.addr"))
            && t.contains("/p2p/")
        {
            return t.trim().to_string();
        }
        assert!(start.elapsed() < PATIENCE, "node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ifsnode ARGS --data-dir <node i> --peer <node i>`: operator commands,
/// signed with the node's key.
pub fn operator(c: &Cluster, i: usize, args: &[&str]) -> serde_json::Value {
    let dir = c.data_dir(i);
    let mut all = args.to_vec();
    all.extend(["--json", "--data-dir", dir.to_str().unwrap()]);
    json(&c.ok(i, &all))
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Poll `check` every 300 ms until it holds; fail with `what` after
/// [`PATIENCE`].
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Node `i`'s own status (`status --json`).
pub fn status(c: &Cluster, i: usize) -> serde_json::Value {
    json(&c.ok(i, &["status", "--json"]))
}

/// The row of the node with libp2p id `peer` in node `i`'s table.
pub fn peer_row(c: &Cluster, i: usize, peer: &str) -> Option<serde_json::Value> {
    let rows = json(&c.ok(i, &["peers", "--json"]));
    rows.as_array()?
        .iter()
        .find(|r| r["peer_id"] == peer)
        .cloned()
}

/// `(name, min_live_replicas)` of every file, as node `i`'s `ls --json`.
pub fn replicas(c: &Cluster, i: usize) -> Vec<(String, u64)> {
    json(&c.ok(i, &["ls", "-r", "-l", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["min_live_replicas"].as_u64().unwrap(),
            )
        })
        .collect()
}
