//! Volume identity with the real `ifsnode` binary: a node stopped, its
//! volume path rewritten in `config.toml` (a trailing slash, then a
//! symlink) and started again keeps every piece and serves the file back
//! bit-identical; a node given another node's volume refuses to start.

#[allow(dead_code)]
#[path = "data_path/support.rs"]
mod cluster;
#[allow(dead_code)]
#[path = "durability_e2e/support.rs"]
mod support;

use cluster::{PATIENCE, bin, random_bytes, stderr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Every file under `dir`, recursively, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path))
        } else {
            out.push(path)
        }
    }
    out.sort();
    out
}

/// Replaces the volume path `from` by `to` in node `i`'s `config.toml`.
fn rewrite_volume(c: &cluster::Cluster, i: usize, from: &Path, to: &str) {
    let path = c.data_dir(i).join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old = format!("\"{}:", from.display());
    assert!(text.contains(&old), "{text}");
    std::fs::write(&path, text.replace(&old, &format!("\"{to}:"))).unwrap();
}

#[test]
fn a_rewritten_volume_path_keeps_every_piece_and_a_foreign_volume_is_refused() {
    // Node 1 is the one restarted; node 0 is its bootstrap peer (a node
    // alone reports no status).
    const N: usize = 1;
    let mut c = start(2);
    let volume = c.data_dir(N).join("volumes/0");
    let work = c.dir.path().join("files");
    std::fs::create_dir(&work).unwrap();
    let data = random_bytes(9 << 20);
    let input = work.join("data.bin");
    std::fs::write(&input, &data).unwrap();
    c.ok(N, &["put", input.to_str().unwrap(), "--replicas", "2"]);
    let used_now = |c: &cluster::Cluster| status(c, N)["node"]["used_bytes"].as_u64().unwrap();
    wait_for("the node's status to count the file", || {
        used_now(&c) > 9 << 20
    });
    let used = used_now(&c);
    let pieces = files(&volume.join("ifs/pieces"));
    assert!(!pieces.is_empty());
    let contents: Vec<Vec<u8>> = pieces.iter().map(|p| std::fs::read(p).unwrap()).collect();

    let check = |c: &cluster::Cluster, round: &str| {
        assert_eq!(files(&volume.join("ifs/pieces")), pieces, "{round}: pieces");
        for (p, bytes) in pieces.iter().zip(&contents) {
            assert!(
                std::fs::read(p).unwrap() == *bytes,
                "{round}: {p:?} changed"
            );
        }
        assert!(
            files(&volume.join("ifs/quarantine")).is_empty(),
            "{round}: nothing quarantined"
        );
        wait_for(
            &format!("{round}: the node's status to count the file"),
            || used_now(c) == used,
        );
        let out = work.join(format!("data.{round}.got"));
        c.ok(N, &["get", "data.bin", out.to_str().unwrap()]);
        assert!(
            std::fs::read(&out).unwrap() == data,
            "{round}: read back differs"
        );
    };

    // The same directory with a trailing slash.
    c.kill(N);
    let slashed = format!("{}/", volume.display());
    rewrite_volume(&c, N, &volume, &slashed);
    run(&mut c, N);
    c.wait_alive(N, 2);
    check(&c, "slash");

    // The same directory through a symlink.
    c.kill(N);
    let link = c.dir.path().join("disk-link");
    std::os::unix::fs::symlink(&volume, &link).unwrap();
    rewrite_volume(&c, N, Path::new(&slashed), link.to_str().unwrap());
    run(&mut c, N);
    c.wait_alive(N, 2);
    check(&c, "symlink");

    // Another node given this node's volume refuses to start, naming it.
    let other = c.dir.path().join("other");
    let out = Command::new(bin())
        .args(["init", "--data-dir"])
        .arg(&other)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {}", stderr(&out));
    let config = other.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let own = format!("\"{}:", other.join("volumes/0").display());
    assert!(text.contains(&own), "{text}");
    std::fs::write(
        &config,
        text.replace(&own, &format!("\"{}:", volume.display())),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--data-dir"])
        .arg(&other)
        .env_remove("IFS_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("a node with another node's volume kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("ifsnode: error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&volume.display().to_string()) && line.contains("another node"),
        "{line}"
    );
    assert!(!other.join("node.addr").exists(), "it never listened");

    // The first node's volume is untouched and still serves the file.
    check(&c, "after-refusal");
}
