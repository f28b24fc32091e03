//! `ifsnode local-roundtrip`: a file through the codec and a local store
//! and back, as `scripts/demo.sh` runs it.

use super::support::{assert_fails_with, ifsnode};

fn roundtrip(dir: &std::path::Path, extra: &[&str]) -> super::support::Run {
    let mut args = vec!["local-roundtrip", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    ifsnode(&args)
}

#[test]
fn generated_sample_round_trips_across_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let r = roundtrip(tmp.path(), &["--size", "20MiB", "--volumes", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("identical: 20971520 bytes match"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.trim_end().ends_with("round trip ok"),
        "{}",
        r.stdout
    );
    // 20 MiB in 8 MiB segments: chunks 0, 1 and 2, spread over both volumes.
    assert!(r.stdout.contains("\n      2  "), "{}", r.stdout);
    assert!(!r.stdout.contains("\n      3  "), "{}", r.stdout);
    assert!(
        r.stdout.contains("volume0") && r.stdout.contains("volume1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("MB/s"), "{}", r.stdout);
}

#[test]
fn empty_and_incompressible_inputs_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let r = roundtrip(tmp.path(), &["--input", empty.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("identical: 0 bytes match"),
        "{}",
        r.stdout
    );

    // xorshift bytes: zstd cannot shrink them, so chunks are stored raw.
    let mut x: u64 = 88172645463325252;
    let noise: Vec<u8> = (0..(9 << 20) + 7)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let random = tmp.path().join("random.bin");
    std::fs::write(&random, &noise).unwrap();
    let dir = tmp.path().join("w");
    std::fs::create_dir(&dir).unwrap();
    let r = roundtrip(
        &dir,
        &["--input", random.to_str().unwrap(), "--volumes", "3"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("identical: {} bytes match", noise.len())),
        "{}",
        r.stdout
    );
}

#[test]
fn unreadable_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-file");
    let r = roundtrip(tmp.path(), &["--input", missing.to_str().unwrap()]);
    assert_fails_with(&r, &[missing.to_str().unwrap()]);
    let r = roundtrip(&tmp.path().join("no-dir"), &[]);
    assert_fails_with(&r, &["no-dir"]);
}
