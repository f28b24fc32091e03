//! `ifsnode sync DIR PREFIX`: the first sync puts every file; a second one
//! with nothing changed uploads not a byte; after one file is changed
//! (same size, same mtime, other bytes) and one added, exactly those two
//! are put, as the summary and the nodes' byte counters show; `--delete`
//! removes what the directory lost; `get -r` brings back the same tree.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cluster::{Cluster, random_bytes};
use crate::http::{admin_addr, transfer_bytes_in};
use crate::tree::read_tree;

/// Bytes the nodes took in from clients' chunk uploads, summed.
fn client_bytes_in(admin: &[String]) -> u64 {
    transfer_bytes_in(admin, &["client"])
}

fn sync(c: &Cluster, node: usize, dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", dir.to_str().unwrap(), "backup", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_slice(&c.ok(node, &args).stdout).unwrap()
}

fn names(v: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().or(f.as_str()).unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// Bytes a chunk adds to its segment (trailer and tag).
const CHUNK_OVERHEAD: u64 = 21;

#[test]
fn sync_puts_exactly_the_new_and_changed_files() {
    let c = Cluster::start_with(3, &["--admin-listen", "127.0.0.1:0"]);
    let admin: Vec<String> = (0..3).map(|i| admin_addr(&c.data_dir(i))).collect();
    let src = c.dir.path().join("photos");
    // Random (incompressible) files of 64-100 KiB in nested folders: each
    // is one chunk whose ciphertext is its size plus the overhead.
    let mut files = BTreeMap::new();
    for i in 0..12usize {
        let rel = format!("{}/img-{i:02}.raw", ["a", "a/b", "c"][i % 3]);
        let bytes = random_bytes((64 << 10) + i * 3000);
        let p = src.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        files.insert(rel, bytes);
    }
    let total: usize = files.values().map(Vec::len).sum();

    let v = sync(&c, 0, &src, &[]);
    assert_eq!(v["files_uploaded"], 12, "{v}");
    assert_eq!(v["files_skipped"], 0, "{v}");
    assert_eq!(v["bytes_uploaded"], total, "{v}");

    // Nothing changed: every file is skipped and no chunk is sent.
    let before = client_bytes_in(&admin);
    let v = sync(&c, 1, &src, &[]);
    assert_eq!(v["files_uploaded"], 0, "{v}");
    assert_eq!(v["files_skipped"], 12, "{v}");
    assert_eq!(v["bytes_skipped"], total, "{v}");
    assert_eq!(
        client_bytes_in(&admin),
        before,
        "an unchanged tree sent bytes"
    );

    // One file changed in place, keeping its size and mtime; one added.
    let changed = "a/img-00.raw";
    let path = src.join(changed);
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let bytes = files.get_mut(changed).unwrap();
    bytes[1000] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    let added = random_bytes(40 << 10);
    std::fs::write(src.join("c/new.raw"), &added).unwrap();
    files.insert("c/new.raw".into(), added.clone());

    let before = client_bytes_in(&admin);
    let v = sync(&c, 2, &src, &[]);
    assert_eq!(
        names(&v, "uploaded"),
        vec!["backup/a/img-00.raw", "backup/c/new.raw"],
        "{v}"
    );
    assert_eq!(v["files_skipped"], 11, "{v}");
    let changed_len = files[changed].len() as u64;
    let put_bytes = changed_len + added.len() as u64;
    assert_eq!(v["bytes_uploaded"], put_bytes, "{v}");
    // The first hops took the two files' bytes once: both are small, so
    // they travel in one pack of one chunk. A resend would add less than
    // any other file of the tree, so a third file put would show.
    let moved = client_bytes_in(&admin) - before;
    let cipher = put_bytes + CHUNK_OVERHEAD;
    assert!(
        moved >= cipher && moved < cipher + (64 << 10),
        "{moved} bytes sent for two files of {cipher} bytes of ciphertext"
    );

    // --delete removes what the directory lost, and only that.
    let gone = "c/img-02.raw";
    std::fs::remove_file(src.join(gone)).unwrap();
    files.remove(gone);
    let kept = sync(&c, 0, &src, &[]);
    assert_eq!(kept["deleted"].as_array().unwrap().len(), 0, "{kept}");
    let v = sync(&c, 0, &src, &["--delete"]);
    assert_eq!(names(&v, "deleted"), vec![format!("backup/{gone}")], "{v}");
    assert_eq!(v["files_uploaded"], 0, "{v}");
    assert_eq!(v["files_skipped"], 12, "{v}");

    // What IFS holds is the directory, byte for byte.
    let dst = c.dir.path().join("restored");
    c.ok(1, &["get", "-r", "backup", dst.to_str().unwrap()]);
    let got = read_tree(&dst);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    for (rel, bytes) in &files {
        assert!(got.get(rel) == Some(bytes), "{rel} differs after sync");
    }
}
