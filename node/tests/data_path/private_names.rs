//! Names are private: after puts into nested folders, a share, a read by
//! the reader, a revoke, an rm and a rename, no file of any node's data dir (its
//! record store, piece files, log) holds any file or folder name that was
//! put, while the file records' opaque handles are there (so the scan does
//! read what nodes store). A reader names the owner by public key; a bare
//! user id cannot find another user's private names.

use std::path::Path;

use ifs_core::keys::UserKey;

use crate::sharing::{User, ok, run, user};
use crate::support::{Cluster, random_bytes, stderr};

/// Distinct enough that random bytes never hold them by chance.
const TOP: &str = "quokka-archive-zq8w";
const INNER: &str = "wombat-letters-zq8w";
/// Where the rename below moves `FILES[2]`.
const RENAMED: &str = "delta-folder-zq8w/renamed-delta-zq8w.doc";
const FILES: [&str; 3] = [
    "quokka-archive-zq8w/alpha-secret-zq8w.txt",
    "quokka-archive-zq8w/wombat-letters-zq8w/beta-secret-zq8w.bin",
    "gamma-secret-zq8w.doc",
];

/// Every file under `dir` holding `needle`, with the offset of its first
/// occurrence.
fn holders_of(dir: &Path, needle: &[u8], out: &mut Vec<(String, usize)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            holders_of(&path, needle, out);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            out.push((path.display().to_string(), at));
        }
    }
}

fn user_key(u: &User) -> UserKey {
    UserKey::from_bytes(&std::fs::read(u.home.join("user.key")).unwrap()).unwrap()
}

#[test]
fn no_node_stores_a_file_or_folder_name() {
    let c = Cluster::start(3);
    let owner = user(c.dir.path().join("owner"));
    let reader = user(c.dir.path().join("reader"));
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut contents = Vec::new();
    for (i, name) in FILES.iter().enumerate() {
        let data = random_bytes(1000 + 200_000 * i);
        let src = work.join(format!("src{i}"));
        std::fs::write(&src, &data).unwrap();
        ok(
            &c,
            &owner,
            i % 3,
            &["put", src.to_str().unwrap(), "--name", name],
        );
        contents.push(data);
    }

    // Shares: the reader reads both through another node, by the owner's
    // public key; a bare user id is refused with what to use instead.
    for name in [FILES[0], FILES[2]] {
        ok(&c, &owner, 0, &["share", name, "--to", &reader.public]);
    }
    for (i, name) in [(0, FILES[0]), (2, FILES[2])] {
        let out = ok(
            &c,
            &reader,
            2,
            &["get", &format!("{}/{name}", owner.public), "-"],
        );
        assert!(
            out.stdout == contents[i],
            "{name} as the reader read it differs"
        );
    }
    let by_id = run(
        &c,
        &reader,
        1,
        &["get", &format!("{}/{}", owner.id, FILES[2]), "-"],
    );
    assert!(!by_id.status.success());
    assert!(stderr(&by_id).contains("public key"), "{}", stderr(&by_id));
    // A file the owner never shared stays out of reach, name and all.
    let out = run(
        &c,
        &reader,
        1,
        &["get", &format!("{}/{}", owner.public, FILES[1]), "-"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not shared"), "{}", stderr(&out));

    // Revoke one reader's access, delete another file.
    ok(
        &c,
        &owner,
        1,
        &["revoke", FILES[0], "--from", &reader.public],
    );
    let out = run(
        &c,
        &reader,
        2,
        &["get", &format!("{}/{}", owner.public, FILES[0]), "-"],
    );
    assert!(!out.status.success(), "the revoked reader still reads");
    ok(&c, &owner, 2, &["rm", FILES[1]]);
    let out = ok(&c, &owner, 0, &["get", FILES[0], "-"]);
    assert!(
        out.stdout == contents[0],
        "the owner reads the revoked file"
    );

    // A rename, as the WebDAV gateway's MOVE does it: the file read back,
    // put under its new name, the old name removed.
    let moved = work.join("moved");
    ok(&c, &owner, 2, &["get", FILES[2], moved.to_str().unwrap()]);
    ok(
        &c,
        &owner,
        0,
        &["put", moved.to_str().unwrap(), "--name", RENAMED],
    );
    ok(&c, &owner, 1, &["rm", FILES[2]]);
    let out = ok(&c, &owner, 2, &["get", RENAMED, "-"]);
    assert!(out.stdout == contents[2], "the renamed file differs");

    let mut needles: Vec<&str> = vec![
        TOP,
        INNER,
        RENAMED,
        "delta-folder-zq8w",
        "renamed-delta-zq8w.doc",
    ];
    for f in FILES {
        needles.push(f);
        needles.push(f.rsplit('/').next().unwrap());
    }
    let mut found = Vec::new();
    for i in 0..3 {
        for n in &needles {
            let mut at = Vec::new();
            holders_of(&c.data_dir(i), n.as_bytes(), &mut at);
            found.extend(at.into_iter().map(|(f, o)| format!("{n:?} in {f} at {o}")));
        }
    }
    assert!(found.is_empty(), "names stored on nodes: {found:#?}");

    // The scan reads what nodes store: each live file's handle is there.
    let key = user_key(&owner);
    for f in [FILES[0], RENAMED] {
        let handle = key.file_handle(f);
        let mut at = Vec::new();
        for i in 0..3 {
            holders_of(&c.data_dir(i), handle.as_bytes(), &mut at);
        }
        assert!(
            !at.is_empty(),
            "the handle of {f} is on no node: scan broken?"
        );
    }
}
