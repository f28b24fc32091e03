//! Bad input: one clear message naming the path, a non-zero exit, and
//! nothing half-written on disk.

use super::support::{assert_fails_with, entries, ifsnode, init, permission_bits_bind_us};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Init a node in `tmp/node`, then replace its config with `text`.
fn node_with_config(tmp: &Path, text: &str) -> std::path::PathBuf {
    let dir = tmp.join("node");
    assert_eq!(init(&dir, &[]).code, 0);
    std::fs::write(dir.join("config.toml"), text).unwrap();
    dir
}

fn check(dir: &Path) -> super::support::Run {
    ifsnode(&["check", "--data-dir", dir.to_str().unwrap()])
}

#[test]
fn missing_volume_dir_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("not-mounted");
    let dir = tmp.path().join("node");
    let r = init(&dir, &["--volume", vol.to_str().unwrap()]);
    assert_fails_with(&r, &[vol.to_str().unwrap(), "does not exist"]);
    assert!(
        !dir.exists(),
        "data dir must not be created: {:?}",
        entries(&dir)
    );
    assert!(!vol.exists(), "a missing volume is never created");
}

#[test]
fn volume_that_is_a_file_or_under_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let dir = tmp.path().join("node");

    let r = init(&dir, &["--volume", &format!("{}:1GiB", file.display())]);
    assert_fails_with(&r, &[file.to_str().unwrap(), "not a directory"]);

    let under = file.join("sub");
    let r = init(&dir, &["--volume", under.to_str().unwrap()]);
    assert_fails_with(&r, &[under.to_str().unwrap()]);
    assert!(!dir.exists());
}

#[test]
fn read_only_volume_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("ro");
    std::fs::create_dir(&vol).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permission bits; /proc/1 refuses new files even to root.
    let vol = if permission_bits_bind_us() {
        vol
    } else {
        "/proc/1".into()
    };
    let dir = tmp.path().join("node");
    let r = init(&dir, &["--volume", vol.to_str().unwrap()]);
    assert_fails_with(&r, &[vol.to_str().unwrap(), "not writable"]);
    assert!(!dir.exists());
    assert_eq!(
        entries(&vol)
            .iter()
            .filter(|e| e.starts_with(".ifs"))
            .count(),
        0
    );
}

#[test]
fn data_dir_under_a_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let r = init(&file, &[]);
    assert_fails_with(&r, &[file.to_str().unwrap(), "not a directory"]);
    let r = init(&file.join("node"), &[]);
    assert_fails_with(&r, &[file.join("node").to_str().unwrap()]);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn bad_volume_spec_and_multiaddr_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    for (flag, value) in [
        ("--volume", "/srv/disk:12XB"),
        ("--volume", "/srv/disk:150%"),
        ("--listen", "/ip4/300.1.1.1/tcp/1"),
        ("--bootstrap", "not-an-addr"),
    ] {
        let r = init(&dir, &[flag, value]);
        assert_eq!(r.code, 2, "{flag} {value}: {}", r.stderr);
        assert!(
            r.stderr.contains(value) && r.stderr.contains(flag),
            "{}",
            r.stderr
        );
        assert!(!dir.exists());
    }
}

#[test]
fn invalid_existing_node_key_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    std::fs::create_dir(&dir).unwrap();
    let key = dir.join("node.key");
    std::fs::write(&key, b"short").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = init(&dir, &[]);
    assert_fails_with(&r, &[key.to_str().unwrap(), "invalid node key"]);
    assert_eq!(std::fs::read(&key).unwrap(), b"short");
    assert_eq!(
        entries(&dir),
        ["node.key"],
        "no config or volume left behind"
    );
}

#[test]
fn malformed_toml_names_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = node_with_config(tmp.path(), "data_dir = \"/x\"\nvolumes = [[\n");
    let cfg = dir.join("config.toml");
    assert_fails_with(
        &check(&dir),
        &["invalid config", cfg.to_str().unwrap(), "line 2"],
    );
}

#[test]
fn unknown_field_is_an_error_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "data_dir = \"/x\"\nowner_reserve_pc = 5\nvolumes = [\"/x/v\"]\n";
    let dir = node_with_config(tmp.path(), text);
    let cfg = dir.join("config.toml");
    assert_fails_with(
        &check(&dir),
        &[cfg.to_str().unwrap(), "unknown field", "owner_reserve_pc"],
    );
}

#[test]
fn bad_cap_and_bad_multiaddr_in_config_are_quoted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = node_with_config(tmp.path(), "data_dir = \"/x\"\nvolumes = [\"/x/v:lots\"]\n");
    let cfg = dir.join("config.toml");
    assert_fails_with(
        &check(&dir),
        &[
            cfg.to_str().unwrap(),
            "volume spec \"/x/v:lots\": bad size \"lots\"",
        ],
    );

    let text = "data_dir = \"/x\"\nbootstrap = [\"/ip4/1.2.3.4/tcpp/1\"]\nvolumes = [\"/x/v\"]\n";
    std::fs::write(&cfg, text).unwrap();
    assert_fails_with(
        &check(&dir),
        &[
            cfg.to_str().unwrap(),
            "invalid multiaddr \"/ip4/1.2.3.4/tcpp/1\"",
        ],
    );
}

#[test]
fn rule_violation_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "data_dir = \"/x\"\nvolumes = [\"/x/v\"]\n[capacity]\ninterval_secs = 10\n\
                suspect_after_intervals = 5\ndead_after_intervals = 2\n";
    let dir = node_with_config(tmp.path(), text);
    let cfg = dir.join("config.toml");
    assert_fails_with(
        &check(&dir),
        &[cfg.to_str().unwrap(), "capacity.dead_after_intervals"],
    );
}

#[test]
fn check_finds_missing_config_key_and_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    assert_fails_with(
        &check(&empty),
        &[empty.join("config.toml").to_str().unwrap(), "ifsnode init"],
    );

    let dir = tmp.path().join("node");
    assert_eq!(init(&dir, &[]).code, 0);
    assert_eq!(check(&dir).code, 0);

    let key = dir.join("node.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fails_with(&check(&dir), &[key.to_str().unwrap(), "chmod 600"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let vol = dir.join("volumes/0");
    std::fs::remove_dir(&vol).unwrap();
    assert_fails_with(&check(&dir), &[vol.to_str().unwrap(), "does not exist"]);
}
