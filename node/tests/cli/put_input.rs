//! `put` checks its input before any network work: a directory is refused
//! in one line and no node holds a reservation for it.

use std::process::Stdio;

use crate::cluster::{Cluster, stderr};

/// `reserved_bytes` of every node's `status --json`.
fn reserved(c: &Cluster) -> Vec<u64> {
    (0..c.nodes.len())
        .map(|i| {
            let s: serde_json::Value =
                serde_json::from_slice(&c.ok(i, &["status", "--json"]).stdout).unwrap();
            s["node"]["reserved_bytes"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn put_of_a_directory_is_refused_before_anything_is_reserved() {
    let c = Cluster::start(3);
    let dir = c.dir.path().join("photos");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.jpg"), vec![1u8; 100_000]).unwrap();
    let d = dir.to_str().unwrap();

    let out = c.cli(0, &["put", d]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        format!("ifsnode: error: put: {d} is a directory; put one file or `-` for stdin")
    );
    assert_eq!(reserved(&c), [0, 0, 0], "a refused put reserves nothing");

    let out = c
        .command(0, &["put", "-", "--name", "photos.tar"])
        .stdin(std::fs::File::open(&dir).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stdin is a directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(reserved(&c), [0, 0, 0]);
}
