//! Folders from the command line: `put -r DIR PREFIX` through one node,
//! `get -r PREFIX DIR` through another, byte for byte; `ls -r` lists the
//! tree; a second `put -r` of the same tree replaces every file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cluster::{Cluster, random_bytes, text_bytes};
use crate::support::{assert_fails_with, ifsnode};

/// Small files, spread over nested folders.
const SMALL: usize = 300;

/// Write the tree: SMALL files of 0–4 KiB in folders two and three deep,
/// plus three larger ones (one across two 8 MiB segments). Returns every
/// file's path relative to `root` and its bytes.
fn make_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for i in 0..SMALL {
        let rel = match i % 3 {
            0 => format!("docs/d{}/note-{i:03}.txt", i % 5),
            1 => format!("src/mod{}/deep/f{i:03}.rs", i % 4),
            _ => format!("top-{i:03}.bin"),
        };
        let len = (i * 37) % 4097;
        let bytes = if i % 2 == 0 {
            text_bytes(len)
        } else {
            random_bytes(len)
        };
        files.insert(rel, bytes);
    }
    files.insert("media/clip.bin".into(), random_bytes(9 << 20));
    files.insert("media/log.txt".into(), text_bytes(3 << 20));
    files.insert("docs/d0/big.bin".into(), random_bytes(600 << 10));
    for (rel, bytes) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files
}

/// Every file below `root` relative to it, with its bytes.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_tree_put_through_one_node_comes_back_whole_through_another() {
    let c = Cluster::start(3);
    let src = c.dir.path().join("src-tree");
    let files = make_tree(&src);
    let src_arg = src.to_str().unwrap();

    let out = c.ok(0, &["put", "-r", src_arg, "backup/2026", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_ok"], files.len(), "{v}");
    assert_eq!(v["files_failed"], 0);
    let total: usize = files.values().map(Vec::len).sum();
    assert_eq!(v["bytes"], total);
    let rows = v["files"].as_array().unwrap();
    let mut names: Vec<&str> = rows.iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let want: Vec<String> = files.keys().map(|r| format!("backup/2026/{r}")).collect();
    assert_eq!(names, want.iter().map(String::as_str).collect::<Vec<_>>());
    for f in rows {
        assert!(f["done_ms"].is_u64(), "{f}");
        assert_eq!(f["version"], 1, "{f}");
        assert!(f["error"].is_null(), "{f}");
    }

    // `ls -r` lists every file and folder of the tree.
    let ls: Value =
        serde_json::from_slice(&c.ok(1, &["ls", "-r", "backup", "--json"]).stdout).unwrap();
    let listed: BTreeMap<String, u64> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "file")
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let want_sizes: BTreeMap<String, u64> = files
        .iter()
        .map(|(r, b)| (format!("backup/2026/{r}"), b.len() as u64))
        .collect();
    assert_eq!(listed, want_sizes);
    let folders: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "folder")
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for f in [
        "backup/2026",
        "backup/2026/docs/d3",
        "backup/2026/src/mod2/deep",
    ] {
        assert!(folders.contains(&f), "{f} not in {folders:?}");
    }

    // Back through another node into a fresh directory.
    let dst = c.dir.path().join("dst-tree");
    let out = c.ok(
        2,
        &["get", "-r", "backup/2026", dst.to_str().unwrap(), "--json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_ok"], files.len(), "{v}");
    let got = read_tree(&dst);
    assert_eq!(got.len(), files.len());
    for (rel, bytes) in &files {
        assert!(got.get(rel) == Some(bytes), "{rel} differs after get -r");
    }

    // A second get into the same directory refuses to overwrite.
    let again = c.cli(2, &["get", "-r", "backup/2026", dst.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--force"), "{err}");

    // Putting the same tree again replaces every file with version 2.
    let out = c.ok(1, &["put", "-r", src_arg, "backup/2026", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["version"] == 2 && f["replaced"]["version"] == 1),
        "{v}"
    );
}

#[test]
fn put_r_refuses_a_file_and_a_bad_folder_before_connecting() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("one.txt");
    std::fs::write(&file, b"x").unwrap();
    // Nothing listens there: the refusals come before any connection.
    let peer = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let out = ifsnode(&["put", "-r", file.to_str().unwrap(), "--peer", peer]);
    assert_fails_with(&out, &["is not a directory"]);
    let dir = d.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a"), b"a").unwrap();
    let out = ifsnode(&["put", "-r", dir.to_str().unwrap(), "x/../y", "--peer", peer]);
    assert_fails_with(&out, &["bad folder"]);
}

/// The short form of `scripts/bench-many-files.sh`: 3,000 files of 1 KiB
/// in three folders of 1,000, one `put -r`; every file is committed and
/// listed where it belongs, `ls -r` finds all of them, and the per-file
/// completion times cover every thousand (what the benchmark prints).
#[test]
fn three_thousand_small_files_in_folders_are_put_and_listed() {
    let c = Cluster::start(3);
    let root = c.dir.path().join("many");
    let one = random_bytes(1024);
    for i in 0..3000 {
        let p = root.join(format!("d{:04}/f{i:05}", i / 1000));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &one).unwrap();
    }
    let root_s = root.to_str().unwrap();
    let v: Value =
        serde_json::from_slice(&c.ok(0, &["put", "-r", root_s, "/", "--json"]).stdout).unwrap();
    assert_eq!(v["files_ok"], 3000, "{}", v["files_failed"]);
    let mut done: Vec<u64> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["done_ms"].as_u64().unwrap())
        .collect();
    done.sort_unstable();
    assert_eq!(done.len(), 3000);

    let ls = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        let v: Value = serde_json::from_slice(&c.ok(1, &all).stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let d1 = ls(&["d0001"]);
    assert_eq!(d1.len(), 1000);
    assert!(
        d1.iter().all(|n| n.starts_with("d0001/f0")),
        "{:?}",
        &d1[..3]
    );
    assert_eq!(ls(&["-r"]).len(), 3003, "three folders and their files");
    assert_eq!(ls(&[]), ["d0000", "d0001", "d0002"]);
}

/// `gc --json` as a value.
fn gc(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&c.ok(0, &all).stdout).unwrap()
}

/// Small files travel packed: `ls` says so, a packed file reads back
/// alone and in a tree through other nodes, a put of one name over a
/// packed file (and a packed put over a file put alone) wins, `rm` of a
/// packed file leaves its neighbours readable, `sync` skips unchanged
/// packed files by their hash, and `gc` deletes a pack only once no live
/// file uses it, after which every live file still reads back.
#[test]
fn small_files_travel_packed_and_rm_sync_and_gc_account_for_them() {
    let c = Cluster::start(3);
    let src = c.dir.path().join("small");
    let mut files = BTreeMap::new();
    for i in 0..40 {
        files.insert(format!("a/f{i:02}"), random_bytes(100 + i * 97));
    }
    files.insert("a/empty".to_string(), Vec::new());
    files.insert("b/large.bin".to_string(), random_bytes(700 << 10));
    for (rel, bytes) in &files {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let src_s = src.to_str().unwrap();
    let v: Value =
        serde_json::from_slice(&c.ok(0, &["put", "-r", src_s, "s", "--json"]).stdout).unwrap();
    assert_eq!(v["files_ok"], files.len(), "{v}");
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["version"] == 1),
        "{v}"
    );

    // Small files are packed, the large one has a record of its own.
    let ls: Value = serde_json::from_slice(&c.ok(1, &["ls", "-r", "s", "--json"]).stdout).unwrap();
    let packed: BTreeMap<String, bool> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "file")
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["packed"] == true))
        .collect();
    assert_eq!(packed.len(), files.len());
    assert!(!packed["s/b/large.bin"]);
    assert!(
        packed
            .iter()
            .filter(|(n, _)| n.starts_with("s/a/"))
            .all(|(_, p)| *p)
    );
    assert_eq!(gc(&c, &["--dry-run", "--min-age", "0"])["packs"], 1);

    // One packed file alone, through another node; the empty one too.
    let one = c.dir.path().join("one");
    c.ok(2, &["get", "s/a/f07", one.to_str().unwrap()]);
    assert_eq!(std::fs::read(&one).unwrap(), files["a/f07"]);
    let empty = c.dir.path().join("empty");
    c.ok(1, &["get", "s/a/empty", empty.to_str().unwrap()]);
    assert_eq!(std::fs::read(&empty).unwrap(), b"");

    // A file put alone over a packed one wins, and `get` finds it.
    let alone = c.dir.path().join("alone.txt");
    std::fs::write(&alone, b"put alone").unwrap();
    c.ok(0, &["put", alone.to_str().unwrap(), "--name", "s/a/f03"]);
    let got = c.dir.path().join("got03");
    c.ok(1, &["get", "s/a/f03", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), b"put alone");

    // `rm` of a packed file: gone; its neighbours read back.
    c.ok(0, &["rm", "s/a/f05"]);
    let gone = c.cli(
        1,
        &["get", "s/a/f05", c.dir.path().join("x").to_str().unwrap()],
    );
    assert_fails_with_output(&gone, "no file named");

    // Sharing a packed file puts it alone first; the reader gets it
    // through another node, and the owner still reads it.
    let public_key = |home: &Path| -> String {
        let out = std::process::Command::new(crate::cluster::bin())
            .args(["key", "show", "--json"])
            .env("IFS_HOME", home)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["public_key"].as_str().unwrap().to_string()
    };
    let reader_home = c.dir.path().join("reader");
    let reader_pub = public_key(&reader_home);
    let reader_pub = reader_pub.as_str();
    c.ok(0, &["share", "s/a/f10", "--to", reader_pub]);
    let owner = public_key(&c.home());
    let shared = c.dir.path().join("shared10");
    let got_shared = c.cli_as(
        &reader_home,
        2,
        &["get", &format!("{owner}/s/a/f10"), shared.to_str().unwrap()],
        None,
    );
    assert!(
        got_shared.status.success(),
        "{}",
        String::from_utf8_lossy(&got_shared.stderr)
    );
    assert_eq!(std::fs::read(&shared).unwrap(), files["a/f10"]);
    let mine = c.dir.path().join("mine10");
    c.ok(1, &["get", "s/a/f10", mine.to_str().unwrap()]);
    assert_eq!(std::fs::read(&mine).unwrap(), files["a/f10"]);

    // sync: unchanged packed files are skipped; f03 (changed remotely)
    // and f05 (removed) are sent again, packed, over the file put alone.
    let out = c.ok(0, &["sync", src_s, "s", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_skipped"], files.len() - 2, "{v}");
    c.ok(2, &["get", "s/a/f03", got.to_str().unwrap(), "--force"]);
    assert_eq!(std::fs::read(&got).unwrap(), files["a/f03"]);

    // A second pack holds f03 and f05; the first still holds the rest.
    let g = gc(&c, &["--min-age", "0"]);
    assert_eq!(
        (g["packs"].as_u64(), g["used"].as_u64()),
        (Some(2), Some(2)),
        "{g}"
    );
    assert_eq!(g["deleted"], 0, "{g}");
    assert!(g["dead_bytes"].as_u64().unwrap() > 0, "{g}");

    // Put the whole tree again: every small file moves to a third pack,
    // the first two are unused, and gc deletes them (not before their age).
    c.ok(1, &["put", "-r", src_s, "s"]);
    let young = gc(&c, &["--dry-run"]);
    assert_eq!(
        (young["deleted"].as_u64(), young["young"].as_u64()),
        (Some(0), Some(2)),
        "{young}"
    );
    let g = gc(&c, &["--min-age", "0"]);
    assert_eq!(
        (g["packs"].as_u64(), g["deleted"].as_u64()),
        (Some(3), Some(2)),
        "{g}"
    );
    assert_eq!(gc(&c, &["--dry-run", "--min-age", "0"])["packs"], 1);
    let dst = c.dir.path().join("back");
    c.ok(2, &["get", "-r", "s", dst.to_str().unwrap()]);
    assert_eq!(read_tree(&dst), files);
}

fn assert_fails_with_output(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{err}");
}
