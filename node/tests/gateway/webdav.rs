//! rclone copies a tree in through the WebDAV gateway, `rclone check
//! --download` compares it byte for byte, then a file and a folder are
//! moved and deleted; litmus's basic, copymove and http suites pass.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Cluster, PATIENCE, random_bytes};
use crate::tool;

/// A running `ifsnode serve --webdav`; killed on drop.
struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(c: &Cluster) -> Gateway {
    let out = c.dir.path().join("serve.out");
    let mut child = c
        .command(0, &["serve", "--webdav", "127.0.0.1:0"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("webdav: ")) {
            return Gateway {
                child,
                url: url.trim().to_string(),
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited: {status}");
        }
        assert!(start.elapsed() < PATIENCE, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rclone(conf: &Path, args: &[&str]) -> String {
    let out = Command::new("rclone")
        .args(args)
        .env("RCLONE_CONFIG", conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rclone {args:?}: {text}");
    text
}

#[test]
fn rclone_copies_checks_moves_and_deletes_a_tree() {
    if tool("rclone", "rclone").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve(&c);
    let src = c.dir.path().join("src");
    for i in 0..40 {
        let p = src.join(format!("d{}/sub/f{i:02}", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, random_bytes(i * 97)).unwrap();
    }
    std::fs::write(src.join("big.bin"), random_bytes(9 << 20)).unwrap();
    let conf = c.dir.path().join("rclone.conf");
    std::fs::write(
        &conf,
        format!("[ifs]\ntype = webdav\nurl = {}\nvendor = other\n", gw.url),
    )
    .unwrap();
    let s = src.to_str().unwrap();
    rclone(&conf, &["copy", s, "ifs:tree"]);
    let check = rclone(&conf, &["check", "--download", s, "ifs:tree"]);
    assert!(check.contains("0 differences found"), "{check}");
    assert!(check.contains("41 matching files"), "{check}");

    rclone(
        &conf,
        &["moveto", "ifs:tree/big.bin", "ifs:tree/d0/big-moved.bin"],
    );
    rclone(&conf, &["move", "ifs:tree/d1", "ifs:tree/d9"]);
    rclone(&conf, &["delete", "ifs:tree/d2/sub/f02"]);
    let listed = rclone(&conf, &["lsf", "-R", "--files-only", "ifs:tree"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert!(names.contains(&"d0/big-moved.bin"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("d1/") || *n == "big.bin"),
        "{names:?}"
    );
    assert!(names.contains(&"d9/sub/f01"), "{names:?}");
    assert!(!names.contains(&"d2/sub/f02"), "{names:?}");
    assert_eq!(names.len(), 40);
    // The moved file is the same bytes.
    let back = c.dir.path().join("back.bin");
    rclone(
        &conf,
        &[
            "copyto",
            "ifs:tree/d0/big-moved.bin",
            back.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&back).unwrap() == std::fs::read(src.join("big.bin")).unwrap());

    rclone(&conf, &["purge", "ifs:tree/d9"]);
    let listed = rclone(&conf, &["lsf", "ifs:tree"]);
    assert!(!listed.lines().any(|l| l == "d9/"), "{listed}");
}

#[test]
fn litmus_basic_copymove_and_http_suites_pass() {
    if tool("litmus", "litmus").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve(&c);
    let base = format!("{}litmus/", gw.url);
    let made = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "MKCOL",
            &base,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&made.stdout), "201");
    let out = Command::new("litmus")
        .arg(&base)
        .env("TESTS", "basic copymove http")
        .current_dir(c.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for suite in ["basic", "copymove", "http"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("<- summary for `{suite}'")))
            .unwrap_or_else(|| panic!("no {suite} summary: {text}"));
        assert!(line.contains(" 0 failed"), "{line}\n{text}");
    }
}
