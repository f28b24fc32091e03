//! What a newcomer meets in the first hour (issue 13): a deadline for the
//! whole command, errors that blame the right party in one line, output
//! that explains itself, and defaults that do not lose data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{Run, assert_fails_with, ifsnode, init};
use crate::cluster::{Cluster, bin, stderr};

/// A peer id that parses (no node has its key).
const SOME_ID: &str = "12D3KooWGzRb1sxd3jN8h6Y1w6gZ9q9m6QJn1T3tEwqXyqRkQZsp";

/// A TCP port on 127.0.0.1 nothing listens on right now.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Assert exactly one line on stderr, the error line, holding every needle
/// (besides the note a first use of the user key prints).
#[track_caller]
fn one_error_line(run: &Run, needles: &[&str]) {
    assert_fails_with(run, needles);
    let lines = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("created your user key"))
        .count();
    assert_eq!(lines, 1, "one line: {}", run.stderr);
}

/// Assert no phrase of the error line appears twice (a source quoted by
/// its wrapper).
#[track_caller]
fn no_repeats(line: &str) {
    let parts: Vec<&str> = line.split(": ").filter(|p| p.len() > 12).collect();
    for (i, p) in parts.iter().enumerate() {
        for q in &parts[i + 1..] {
            assert!(
                !q.contains(p) && !p.contains(q),
                "{p:?} repeated in {line:?}"
            );
        }
    }
}

#[test]
fn timeout_bounds_a_whole_put_not_just_connecting() {
    let c = Cluster::start(1);
    // A put whose input never ends: connected at once, then it waits.
    let mut cmd = c.command(0, &["put", "-", "--name", "slow", "--timeout", "3"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _held_open = child.stdin.take();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("put --timeout 3 still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let run: Run = child.wait_with_output().unwrap().into();
    one_error_line(&run, &["put did not finish within 3 s"]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_stopped_nodes_address_file_says_it_is_not_running_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    assert_eq!(init(&dir, &[]).code, 0);
    let addr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{SOME_ID}", closed_port());
    std::fs::write(dir.join("node.addr"), format!("{addr}\n")).unwrap();
    let d = dir.to_str().unwrap();
    for cmd in ["peers", "status", "ls"] {
        let run: Run = Command::new(bin())
            .args([cmd, "--data-dir", d])
            .env("IFS_HOME", tmp.path().join("home"))
            .env_remove("IFS_PEER")
            .env_remove("IFS_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into();
        let wanted = format!("the node at {addr} (from {d}/node.addr) is not running");
        let hint = format!("start it with `ifsnode run --data-dir {d}`");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(run.code, 1, "{cmd}: {}", run.stderr);
        let line = lines.last().unwrap();
        assert!(
            line.contains(&wanted) && line.contains(&hint),
            "{cmd}: {line}"
        );
        assert!(!line.contains("Connection refused"), "{cmd}: {line}");
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with(' ') && !l.starts_with('(')),
            "{cmd}: one line per message: {}",
            run.stderr
        );
    }
}

#[test]
fn get_checks_the_output_path_before_it_connects() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let nowhere = format!("/ip4/127.0.0.1/tcp/{}/p2p/{SOME_ID}", closed_port());
    let get = |out: &str, extra: &[&str]| -> Run {
        Command::new(bin())
            .args(["get", "a.txt", out, "--peer", &nowhere])
            .args(extra)
            .env("IFS_HOME", &home)
            .env_remove("IFS_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let dir = tmp.path().to_str().unwrap();
    one_error_line(
        &get(dir, &[]),
        &["is a directory", &format!("e.g. {dir}/a.txt")],
    );
    one_error_line(&get(&format!("{dir}/"), &[]), &["is a directory"]);
    let missing = format!("{dir}/no/such/dir/a.txt");
    one_error_line(&get(&missing, &[]), &["does not exist"]);
    let existing = tmp.path().join("a.txt");
    std::fs::write(&existing, b"mine").unwrap();
    let run = get(existing.to_str().unwrap(), &[]);
    one_error_line(&run, &["exists", "--force"]);
    assert_eq!(std::fs::read(&existing).unwrap(), b"mine", "left alone");
    // With --force the path is accepted and the node is what fails.
    let run = get(existing.to_str().unwrap(), &["--force"]);
    one_error_line(&run, &["is not running"]);
    assert_eq!(std::fs::read(&existing).unwrap(), b"mine");
    assert!(!tmp.path().join("a.txt.ifs-partial").exists());
}

#[test]
fn a_users_mistake_is_not_blamed_on_the_node() {
    let c = Cluster::start(1);
    let file = c.dir.path().join("f.txt");
    std::fs::write(&file, b"hello").unwrap();
    let out = c.cli(0, &["put", file.to_str().unwrap(), "--replicas", "3"]);
    let run: Run = out.into();
    one_error_line(&run, &["1 usable node, 3 replicas asked"]);
    assert!(!run.stderr.contains("node /ip4"), "{}", run.stderr);
}

#[test]
fn a_running_node_refuses_a_second_run_and_init_force_in_one_plain_line() {
    let c = Cluster::start(1);
    let d = c.data_dir(0);
    let d = d.to_str().unwrap();
    let run = ifsnode(&["run", "--data-dir", d, "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert_fails_with(&run, &["Database already open"]);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("ifsnode: error:"))
        .unwrap();
    no_repeats(line);
    let config = std::fs::read_to_string(c.data_dir(0).join("config.toml")).unwrap();
    let run = ifsnode(&["init", "--data-dir", d, "--force"]);
    one_error_line(&run, &["is running", "stop it"]);
    let after = std::fs::read_to_string(c.data_dir(0).join("config.toml")).unwrap();
    assert_eq!(config, after, "config.toml untouched");
}

#[test]
fn peers_status_put_and_donate_explain_what_they_show() {
    let c = Cluster::start(2);
    let peers = String::from_utf8(c.ok(0, &["peers"]).stdout).unwrap();
    let lines: Vec<&str> = peers.lines().collect();
    let header = lines[0];
    for col in [
        "PEER", "FREE", "USED", "RESERVED", "DONATED", "OWNER%", "AGE",
    ] {
        assert!(header.contains(col), "{peers}");
    }
    for gone in ["SEQ", "NEED"] {
        assert!(!header.contains(gone), "{peers}");
    }
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("* the node that answered"),
        "{peers}"
    );
    let help = String::from_utf8(c.ok(0, &["peers", "--help"]).stdout).unwrap();
    assert!(help.contains("OWNER%    how full its disks"), "{help}");

    // put names holders as peers names nodes: the same 8 characters.
    let file = c.dir.path().join("f.bin");
    std::fs::write(&file, vec![5u8; 4096]).unwrap();
    let put = String::from_utf8(
        c.ok(0, &["put", file.to_str().unwrap(), "--replicas", "2"])
            .stdout,
    )
    .unwrap();
    for i in 0..2 {
        let id = c.peer_id(i);
        let short = &id[id.len() - 8..];
        assert!(put.contains(short), "put names {short}: {put}");
        assert!(peers.contains(short), "peers names {short}: {peers}");
    }
    let holders = put
        .lines()
        .nth(1)
        .and_then(|l| l.split(" on ").nth(1))
        .unwrap();
    assert!(!holders.contains('…'), "{put}");

    // status counts nodes, not connections (this command's own among them).
    let status = String::from_utf8(c.ok(0, &["status"]).stdout).unwrap();
    assert!(status.contains("1 of 1 other node alive"), "{status}");
    assert!(!status.contains("connected"), "{status}");
    // Its JSON counts the one other node, not this command's connection.
    let json = String::from_utf8(c.ok(0, &["status", "--json"]).stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["connected_peers"], 1, "{json}");

    // donate speaks the same units as status.
    let donate = Command::new(bin())
        .args(["donate", "--data-dir", c.data_dir(0).to_str().unwrap()])
        .env_remove("IFS_PEER")
        .output()
        .unwrap();
    assert!(donate.status.success(), "{}", stderr(&donate));
    let text = String::from_utf8(donate.stdout).unwrap();
    assert!(text.contains("iB") && !text.contains(" bytes"), "{text}");
}

#[test]
fn a_cap_larger_than_the_disk_is_warned_about_by_check_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let dir = tmp.path().join("node");
    let spec = format!("{}:1000000TiB", vol.display());
    let r = init(
        &dir,
        &["--volume", &spec, "--listen", "/ip4/127.0.0.1/tcp/0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = dir.to_str().unwrap();
    let check = ifsnode(&["check", "--data-dir", d]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stderr.contains("ifsnode: warning: volume")
            && check.stderr.contains("more than its filesystem can give"),
        "{}",
        check.stderr
    );
    let mut run = Command::new(bin())
        .args(["run", "--data-dir", d])
        .env_remove("IFS_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(run.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("more than its filesystem can give"));
    let _ = run.kill();
    let _ = run.wait();
    assert!(first.is_some(), "run warns too");
}

#[test]
fn a_zero_node_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    assert_eq!(init(&dir, &[]).code, 0);
    let key = dir.join("node.key");
    std::fs::write(&key, [0u8; 32]).unwrap();
    let run = ifsnode(&["check", "--data-dir", dir.to_str().unwrap()]);
    one_error_line(&run, &["node.key", "not a random key"]);
}
