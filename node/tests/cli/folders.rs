//! Folders: `ls FOLDER` lists one folder from its own record, `ls -r`
//! walks every folder, `rm` hides a file, and no node stores a folder's
//! name.

use std::path::Path;

use serde_json::Value;

use crate::cluster::{Cluster, random_bytes};

const FOLDERS: [&str; 3] = [
    "quarterly-reports-qx7",
    "holiday-snaps-qx7",
    "tax-returns-qx7",
];
const PER_FOLDER: usize = 70;

fn ls(c: &Cluster, i: usize, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["ls", "--json"];
    all.extend_from_slice(args);
    let v: Value = serde_json::from_slice(&c.ok(i, &all).stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn file_names(folder: &str) -> Vec<String> {
    (0..PER_FOLDER)
        .map(|i| format!("{folder}/f{i:03}"))
        .collect()
}

/// Every byte offset in the files under `dir` where `needle` occurs, as
/// `(file, offset)`.
fn occurrences(dir: &Path, needle: &[u8], out: &mut Vec<(String, usize)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            occurrences(&path, needle, out);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for (at, w) in bytes.windows(needle.len()).enumerate() {
            if w == needle {
                out.push((path.display().to_string(), at));
            }
        }
    }
}

#[test]
fn folders_list_apart_and_no_node_stores_a_folder_name() {
    let c = Cluster::start(3);
    let file = c.dir.path().join("small.bin");
    std::fs::write(&file, random_bytes(512)).unwrap();
    let f = file.to_str().unwrap();

    // Each folder through its own node: their entries in the top folder's
    // record merge.
    for (i, folder) in FOLDERS.iter().enumerate() {
        for (j, name) in file_names(folder).into_iter().enumerate() {
            // The name as --name gives it, or as the second argument.
            if j % 2 == 0 {
                c.ok(i, &["put", f, "--name", &name]);
            } else {
                c.ok(i, &["put", f, &name]);
            }
        }
    }

    let top = ls(&c, 1, &[]);
    let mut want: Vec<(String, String)> = FOLDERS
        .iter()
        .map(|d| (d.to_string(), "folder".to_string()))
        .collect();
    want.sort();
    assert_eq!(top, want, "the top folder holds the three folders only");

    for (i, folder) in FOLDERS.iter().enumerate() {
        let got = ls(&c, (i + 1) % 3, &[folder]);
        let want: Vec<(String, String)> = file_names(folder)
            .into_iter()
            .map(|n| (n, "file".to_string()))
            .collect();
        assert_eq!(got, want, "ls {folder} lists exactly its own files");
    }

    let all = ls(&c, 2, &["-r"]);
    assert_eq!(all.len(), FOLDERS.len() * (PER_FOLDER + 1));
    assert_eq!(
        all.iter().filter(|(_, k)| k == "file").count(),
        FOLDERS.len() * PER_FOLDER
    );

    let gone = format!("{}/f007", FOLDERS[1]);
    c.ok(0, &["rm", &gone]);
    let after = ls(&c, 2, &[FOLDERS[1]]);
    assert_eq!(after.len(), PER_FOLDER - 1);
    assert!(after.iter().all(|(n, _)| *n != gone), "{gone} still listed");
    assert!(!ls(&c, 1, &["-r"]).iter().any(|(n, _)| *n == gone));

    // `-l` looks up each file's record and counts its live replicas.
    let v: Value =
        serde_json::from_slice(&c.ok(0, &["ls", "-l", "--json", FOLDERS[0]]).stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|f| f["min_live_replicas"] == 3),
        "{v}"
    );

    // Neither folder records nor file records (keyed and named by opaque
    // handles) hold a folder name; `data_path::private_names` checks that
    // the same scan does find what nodes store.
    let mut found = Vec::new();
    for i in 0..3 {
        for folder in FOLDERS {
            occurrences(&c.data_dir(i), folder.as_bytes(), &mut found);
        }
    }
    assert!(
        found.is_empty(),
        "a folder name stored on a node: {found:?}"
    );
}
