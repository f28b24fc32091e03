//! `ifsnode devnet` starts a cluster of child processes that find each
//! other, and stops them all on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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

/// SIGTERMs a devnet when a test ends early, so a failed assertion leaves
/// no nodes behind; disarmed (pid 0) once the test has reaped it.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: kill(2) on the devnet this test started and has not reaped.
            unsafe { libc::kill(self.0, libc::SIGTERM) };
        }
    }
}

#[test]
fn devnet_splits_the_disk_and_reports_a_dead_node_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let mut devnet = ifsnode()
        .args(["devnet", "--nodes", "2", "--dir", dir, "--base-port", "0"])
        .args(["--capacity-interval-ms", INTERVAL_MS])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stop = StopOnDrop(devnet.id() as i32);
    let mut lines = BufReader::new(devnet.stdout.take().unwrap()).lines();
    let mut share_line = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("each new node donates up to") {
            share_line = Some(line.clone());
        }
        if line.starts_with("devnet: 2 nodes running") {
            break;
        }
    }
    assert!(share_line.is_some(), "devnet says what each node donates");
    // Each node's volume has a byte cap of at most half the free space.
    let free = {
        let out = Command::new("df")
            .args(["-B1", "--output=avail", dir])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    for i in 1..=2 {
        let cfg = std::fs::read_to_string(tmp.path().join(format!("node{i}/config.toml"))).unwrap();
        let mib: u64 = cfg
            .split("volumes/0:")
            .nth(1)
            .and_then(|r| r.split("MiB").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a MiB cap: {cfg}"));
        assert!(
            mib << 20 <= free / 2 + (64 << 20),
            "node{i} caps {mib} MiB of {free} free"
        );
    }

    // Kill node 2 behind devnet's back: devnet says so once, not every second.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", devnet.id())).unwrap();
    let pids: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{children}");
    // SAFETY: kill(2) on a grandchild this test started through devnet.
    unsafe { libc::kill(pids[1], libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(4500));
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(devnet.id() as i32, libc::SIGTERM) };
    let out = devnet.wait_with_output().unwrap();
    stop.0 = 0;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("exited").count(), 1, "{err}");
}
