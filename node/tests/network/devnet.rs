//! `ifsnode devnet` starts a cluster of child processes that find each
//! other, and stops them all on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::*;

#[test]
fn devnet_starts_nodes_that_find_each_other_and_stops_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let mut devnet = ifsnode()
        .args(["devnet", "--nodes", "3", "--dir", dir, "--base-port", "0"])
        .args(["--capacity-interval-ms", INTERVAL_MS])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(devnet.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix(&format!("node{} ", addrs.len() + 1)) {
            addrs.push(rest.to_string());
        }
        if line.starts_with("devnet:") {
            break;
        }
    }
    assert_eq!(addrs.len(), 3, "devnet prints each node's address");
    let ids: Vec<&str> = addrs
        .iter()
        .map(|a| a.rsplit("/p2p/").next().unwrap())
        .collect();
    wait_for("node 3 to see all three alive", || {
        let out = output(&["peers", "--json", "--peer", &addrs[2]]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        ids.iter()
            .all(|id| row(&rows, id).is_some_and(|r| r["state"] == "alive"))
    });

    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(devnet.id() as i32, libc::SIGTERM) };
    assert!(devnet.wait().unwrap().success());
    for i in 1..=3 {
        let log = std::fs::read_to_string(tmp.path().join(format!("node{i}/node.log"))).unwrap();
        assert!(log.contains("stopped"), "node{i} stopped cleanly: {log}");
    }
}
