//! File names: `put` refuses a name that breaks the rule (README "Names")
//! in one short line before it connects, reserves or uploads anything; a
//! path name round trips.

use std::process::Stdio;

use super::support::{Run, assert_fails_with};
use crate::cluster::{Cluster, bin};

/// `ifsnode put FILE ARGS` as a user with key dir `home`.
fn put(home: &std::path::Path, file: &std::path::Path, args: &[&str]) -> Run {
    std::process::Command::new(bin())
        .arg("put")
        .arg(file)
        .args(args)
        .env("IFS_HOME", home)
        .env_remove("IFS_DATA_DIR")
        .env_remove("IFS_PEER")
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

#[test]
fn put_refuses_a_bad_name_in_one_line_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let file = tmp.path().join("hello.txt");
    std::fs::write(&file, b"hi").unwrap();
    // Nothing listens here: a put that got as far as connecting would say so.
    let nowhere = ["--peer", "/ip4/127.0.0.1/tcp/1"];
    let user_id = "ab".repeat(32);
    let long = "x".repeat(1500);
    for (name, why) in [
        ("", "empty"),
        ("/etc/passwd", "starts with `/`"),
        ("photos/", "ends with `/`"),
        ("a//b", "empty segment"),
        ("../up", "`..` segment"),
        ("a/./b", "`.` segment"),
        ("red\u{1b}[31m", "control character"),
        ("tab\there", "control character"),
        (&format!("{user_id}/notes.txt"), "user id"),
        (&long, "1500 bytes"),
    ] {
        let mut args = vec!["--name", name];
        args.extend_from_slice(&nowhere);
        let r = put(&home, &file, &args);
        assert_fails_with(&r, &["bad name", why]);
        assert!(
            !r.stderr.contains("cannot reach") && !r.stderr.contains("/tcp/1"),
            "{name:?}: refused only after connecting: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains('\u{1b}'),
            "the name is escaped: {:?}",
            r.stderr
        );
        assert!(r.stderr.len() < 300, "one short line: {}", r.stderr);
    }

    // Without --name the file's own name must pass the same rule.
    let evil = tmp.path().join("evil\u{1b}]0;owned\u{7}.txt");
    std::fs::write(&evil, b"x").unwrap();
    let r = put(&home, &evil, &nowhere);
    assert_fails_with(&r, &["bad name", "control character"]);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
}

#[test]
fn a_refused_name_reserves_and_stores_nothing_and_a_path_name_round_trips() {
    let c = Cluster::start(3);
    let file = c.dir.path().join("photo.jpg");
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();
    let f = file.to_str().unwrap();

    let long = "p".repeat(1025);
    let out = c.cli(0, &["put", f, "--name", &long]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1025 bytes"), "{err}");
    for i in 0..3 {
        let s: serde_json::Value =
            serde_json::from_slice(&c.ok(i, &["status", "--json"]).stdout).unwrap();
        assert_eq!(s["node"]["reserved_bytes"], 0, "node {i} reserved: {s}");
        assert_eq!(s["node"]["used_bytes"], 0, "node {i} stores: {s}");
    }

    let name = "photos/2024/a.jpg";
    c.ok(0, &["put", f, "--name", name]);
    let got = c.dir.path().join("got.jpg");
    c.ok(1, &["get", name, got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&file).unwrap());
    let ls: serde_json::Value =
        serde_json::from_slice(&c.ok(2, &["ls", "-r", "--json"]).stdout).unwrap();
    let kinds: Vec<(&str, &str)> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("photos", "folder"),
            ("photos/2024", "folder"),
            (name, "file")
        ]
    );
}
