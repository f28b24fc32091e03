//! `ifsnode init` and `ifsnode check` on good input.

use super::support::{entries, ifsnode, init, mode};

#[test]
fn version_prints_name_and_version() {
    let r = ifsnode(&["--version"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout.trim(),
        format!("ifsnode {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn init_writes_config_key_and_default_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let r = init(&dir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("initialized IFS node "),
        "{}",
        r.stdout
    );
    assert_eq!(entries(&dir), ["config.toml", "node.key", "volumes"]);

    let key = dir.join("node.key");
    assert_eq!(mode(&key), 0o600, "node key must be private");
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    assert!(dir.join("volumes/0").is_dir());

    let cfg = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    for want in [
        &format!("data_dir = \"{}\"", dir.display()),
        "owner_reserve_pct = 10",
        "\"/ip4/0.0.0.0/tcp/4100\"",
        "\"/ip4/0.0.0.0/udp/4101/quic-v1\"",
        "bootstrap = []",
        "mdns = false",
        "interval_secs = 10",
        "suspect_after_intervals = 3",
        "dead_after_intervals = 10",
        &format!("volumes = [\"{}:10%\"]", dir.join("volumes/0").display()),
    ] {
        assert!(cfg.contains(want), "config lacks {want:?}:\n{cfg}");
    }
}

#[test]
fn init_takes_volumes_listen_and_bootstrap() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("diskA"), tmp.path().join("diskB"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let dir = tmp.path().join("node");
    let va = format!("{}:500GiB", a.display());
    let vb = format!("{}:25%", b.display());
    let boot = "/ip4/10.0.0.5/tcp/4100";
    let r = init(
        &dir,
        &[
            "--volume",
            &va,
            "--volume",
            &vb,
            "--listen",
            "/ip4/127.0.0.1/tcp/4200",
            "--bootstrap",
            boot,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cfg = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let want = format!(
        "volumes = [\"{}:500GiB\", \"{}:25%\"]",
        a.display(),
        b.display()
    );
    assert!(cfg.contains(&want), "{cfg}");
    assert!(
        cfg.contains("listen = [\"/ip4/127.0.0.1/tcp/4200\"]"),
        "{cfg}"
    );
    assert!(cfg.contains(boot), "{cfg}");
    assert!(
        !dir.join("volumes").exists(),
        "no default volume when volumes are given"
    );

    let r = ifsnode(&["check", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("{}  cap 500GiB", a.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("{}  cap 25% of its filesystem", b.display())),
        "{}",
        r.stdout
    );
}

#[test]
fn init_twice_needs_force_and_keeps_the_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    assert_eq!(init(&dir, &[]).code, 0);
    let cfg = dir.join("config.toml");
    let first_cfg = std::fs::read(&cfg).unwrap();
    let first_key = std::fs::read(dir.join("node.key")).unwrap();

    let r = init(&dir, &["--listen", "/ip4/127.0.0.1/tcp/5000"]);
    super::support::assert_fails_with(&r, &[cfg.to_str().unwrap(), "already exists", "--force"]);
    assert_eq!(
        std::fs::read(&cfg).unwrap(),
        first_cfg,
        "config must be untouched"
    );

    let r = init(&dir, &["--listen", "/ip4/127.0.0.1/tcp/5000", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("kept"), "{}", r.stdout);
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains("/ip4/127.0.0.1/tcp/5000")
    );
    assert_eq!(
        std::fs::read(dir.join("node.key")).unwrap(),
        first_key,
        "--force keeps the node key"
    );
    assert_eq!(
        entries(&dir),
        ["config.toml", "node.key", "volumes"],
        "no temp files left"
    );
}

#[test]
fn data_dir_comes_from_env_then_home() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_ifsnode");
    let by_env = tmp.path().join("env-dir");
    let st = std::process::Command::new(exe)
        .args(["init"])
        .env("IFS_DATA_DIR", &by_env)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(by_env.join("config.toml").is_file());

    let st = std::process::Command::new(exe)
        .args(["init"])
        .env_remove("IFS_DATA_DIR")
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        tmp.path()
            .join(".local/share/ifs/node/config.toml")
            .is_file()
    );
}

#[test]
fn verbose_logs_go_to_stderr_only() {
    let tmp = tempfile::tempdir().unwrap();
    let r = init(&tmp.path().join("n"), &["-v"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("node initialized"), "{}", r.stderr);
    assert!(!r.stdout.contains("INFO"), "{}", r.stdout);
}
