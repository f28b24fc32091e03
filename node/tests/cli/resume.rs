//! A put cut by killing the client at about half way resumes when run
//! again: it says how much was already stored, sends only the rest (the
//! nodes' byte counters show at most the chunks in flight sent twice), and
//! the file comes back bit-identical through another node.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, PATIENCE, random_bytes, stderr};
use crate::http::{admin_addr, chunk_bytes_received};

/// Chunks `put` has travelling at once (`PutOptions::in_flight`).
const IN_FLIGHT: u64 = 4;
const REPLICAS: u64 = 3;

#[test]
fn a_put_killed_half_way_resumes_and_sends_only_what_was_missing() {
    let c = Cluster::start_with(4, &["--admin-listen", "127.0.0.1:0"]);
    let admin: Vec<String> = (0..4).map(|i| admin_addr(&c.data_dir(i))).collect();
    let seg: u64 = 512 << 10;
    let chunks = 40;
    // Random bytes: no compression, every chunk is its segment and a tag.
    let data = random_bytes((chunks * seg) as usize - 1000);
    let file = c.dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let f = file.to_str().unwrap();
    let put = ["put", f, "--segment-size", "512KiB", "--json"];
    let before = chunk_bytes_received(&admin);

    // Killed once the nodes hold about half the file's copies.
    let mut child = c
        .command(0, &put)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let half = before + data.len() as u64 * REPLICAS / 2;
    let start = Instant::now();
    while chunk_bytes_received(&admin) < half {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the put ended before it could be cut"
        );
        assert!(start.elapsed() < PATIENCE, "the put made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let uploads = c.home().join("uploads");
    // A kill during a save leaves its temp file (`.NAME.tmp-PID`) beside it.
    let saved = || {
        std::fs::read_dir(&uploads)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".put")
            })
            .count()
    };
    assert_eq!(saved(), 1, "one saved upload");

    let out = c.ok(0, &put);
    let said = stderr(&out);
    let line = said
        .lines()
        .find(|l| l.starts_with("resuming: "))
        .unwrap_or_else(|| panic!("no resume line: {said}"));
    let stored: u64 = line["resuming: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        line.ends_with(&format!("of {chunks} chunks already stored")),
        "{line}"
    );
    assert!(stored > 0 && stored < chunks, "{line}");
    assert_eq!(saved(), 0, "state removed");
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        0,
        "temp files of the killed run removed too"
    );

    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lens: Vec<u64> = report["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["len"].as_u64().unwrap())
        .collect();
    assert_eq!(lens.len() as u64, chunks);
    let clean: u64 = lens.iter().sum::<u64>() * REPLICAS;
    let largest = *lens.iter().max().unwrap();
    let got = chunk_bytes_received(&admin) - before;
    eprintln!(
        "resumed after {stored} of {chunks} chunks: nodes received {got} bytes, a clean put {clean}"
    );
    assert!(got >= clean, "{got} < {clean}: some copy was never stored");
    assert!(
        got - clean <= IN_FLIGHT * largest * REPLICAS,
        "sent {} bytes again, more than {IN_FLIGHT} chunks in flight x {REPLICAS} replicas",
        got - clean
    );

    let back = c.dir.path().join("back.bin");
    c.ok(3, &["get", "big.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == data, "bytes differ");
}
