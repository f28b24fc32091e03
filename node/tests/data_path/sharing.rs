//! End-to-end sharing with the real `ifsnode` binary: an owner shares a
//! file with two users, each reads it through another node with
//! `get OWNER_PUBKEY/NAME`; a revoke shuts one out while the owner and the
//! other reader still read it. Four `ifsnode run` processes on loopback.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{Cluster, bin, random_bytes, stderr};

/// A user of the test: their key dir and public key.
pub struct User {
    pub home: PathBuf,
    pub public: String,
    pub id: String,
}

pub fn user(home: PathBuf) -> User {
    let out = std::process::Command::new(bin())
        .args(["key", "show", "--json"])
        .env("IFS_HOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success(), "key show: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    User {
        home,
        public: v["public_key"].as_str().unwrap().to_string(),
        id: v["user_id"].as_str().unwrap().to_string(),
    }
}

pub fn run(c: &Cluster, u: &User, node: usize, args: &[&str]) -> Output {
    c.cli_as(&u.home, node, args, None)
}

pub fn ok(c: &Cluster, u: &User, node: usize, args: &[&str]) -> Output {
    let out = run(c, u, node, args);
    assert!(
        out.status.success(),
        "ifsnode {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// `out` is a failure whose message says `needle`.
fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected a failure");
    assert!(stderr(out).contains(needle), "{}", stderr(out));
}

/// `reader` gets `owner`'s `name` through `node` into `out`.
fn get_shared(
    c: &Cluster,
    reader: &User,
    owner: &User,
    node: usize,
    name: &str,
    out: &Path,
) -> Output {
    let path = format!("{}/{name}", owner.public);
    run(c, reader, node, &["get", &path, out.to_str().unwrap()])
}

#[test]
fn shared_file_is_read_by_its_readers_until_revoked() {
    let c = Cluster::start(4);
    let work = c.dir.path().to_path_buf();
    let owner = user(c.home());
    let alice = user(work.join("alice"));
    let bob = user(work.join("bob"));
    let data = random_bytes(3 << 20);
    let file = work.join("plans.bin");
    std::fs::write(&file, &data).unwrap();
    ok(
        &c,
        &owner,
        0,
        &["put", file.to_str().unwrap(), "--replicas", "2"],
    );

    // Before any share, alice gets a clear refusal and no partial output.
    let out_a = work.join("alice.got");
    let denied = get_shared(&c, &alice, &owner, 3, "plans.bin", &out_a);
    fails_with(&denied, "not shared");
    assert!(!out_a.exists());

    // A mistyped key is refused before anything changes.
    let mut typo = alice.public.clone();
    typo.pop();
    let bad = run(&c, &owner, 0, &["share", "plans.bin", "--to", &typo]);
    fails_with(&bad, "ifspub1");

    for u in [&alice, &bob] {
        let out = ok(
            &c,
            &owner,
            1,
            &["share", "plans.bin", "--to", &u.public, "--json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["reader"], u.id.as_str());
        assert_eq!(v["get_as"], format!("{}/plans.bin", owner.public));
    }
    let ls = ok(&c, &owner, 2, &["ls", "--json"]);
    let files: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let readers = files[0]["readers"].as_array().unwrap();
    assert_eq!(readers.len(), 2);
    assert!(readers.contains(&serde_json::Value::from(alice.id.as_str())));

    let got = get_shared(&c, &alice, &owner, 3, "plans.bin", &out_a);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(
        std::fs::read(&out_a).unwrap() == data,
        "alice's copy differs"
    );
    // Names are private: a reader finds the file by the owner's public
    // key; the bare user id is refused with what to give instead.
    let out_b = work.join("bob.got");
    let by_id = run(
        &c,
        &bob,
        2,
        &["get", &format!("{}/plans.bin", owner.id), "-"],
    );
    fails_with(&by_id, "public key");
    let got = get_shared(&c, &bob, &owner, 2, "plans.bin", &out_b);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(std::fs::read(&out_b).unwrap() == data, "bob's copy differs");

    // Revoke alice: she is shut out; bob and the owner still read.
    let out = ok(
        &c,
        &owner,
        0,
        &[
            "revoke",
            "plans.bin",
            "--from",
            &alice.public,
            "-r",
            "2",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["readers"], 1);
    assert_eq!(v["revoked"], alice.id.as_str());
    std::fs::remove_file(&out_a).unwrap();
    let denied = get_shared(&c, &alice, &owner, 3, "plans.bin", &out_a);
    fails_with(&denied, "not shared");
    assert!(!out_a.exists());
    std::fs::remove_file(&out_b).unwrap();
    let got = get_shared(&c, &bob, &owner, 1, "plans.bin", &out_b);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(
        std::fs::read(&out_b).unwrap() == data,
        "bob's copy after the revoke differs"
    );
    let mine = work.join("owner.got");
    ok(&c, &owner, 3, &["get", "plans.bin", mine.to_str().unwrap()]);
    assert!(
        std::fs::read(&mine).unwrap() == data,
        "the owner's copy differs"
    );

    // Revoking someone the file is not shared with says so.
    let again = run(
        &c,
        &owner,
        0,
        &["revoke", "plans.bin", "--from", &alice.public],
    );
    fails_with(&again, "not shared");
}
