//! A network of real `ifsnode run` processes on loopback, and the CLI
//! commands the data-path tests run against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Upper bound on any wait: a failure bound, never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(180);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ifsnode")
}

/// Running nodes, each in its own data dir under one temp dir; killed on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Option<Child>>,
    pub addrs: Vec<String>,
}

impl Cluster {
    /// Init and start `n` nodes bootstrapped from the first; wait until
    /// every node is alive in the first node's table.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, &[])
    }

    /// Like [`Cluster::start`], passing `run_args` to every `ifsnode run`.
    pub fn start_with(n: usize, run_args: &[&str]) -> Cluster {
        Self::start_configured(n, run_args, |c| c)
    }

    /// Like [`Cluster::start_with`], rewriting every node's `config.toml`
    /// with `edit` after `init` (e.g. a smaller volume cap).
    pub fn start_configured(
        n: usize,
        run_args: &[&str],
        edit: impl Fn(String) -> String,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster {
            dir,
            nodes: Vec::new(),
            addrs: Vec::new(),
        };
        for i in 0..n {
            let data = c.data_dir(i);
            let out = Command::new(bin())
                .args(["init", "--data-dir"])
                .arg(&data)
                .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
                .args(["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])
                .output()
                .unwrap();
            assert!(out.status.success(), "init: {}", stderr(&out));
            no_owner_reserve(&data);
            let config = data.join("config.toml");
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(&config, edit(text)).unwrap();
            let log = std::fs::File::create(data.join("node.log")).unwrap();
            let mut cmd = Command::new(bin());
            cmd.args(["run", "--data-dir"])
                .arg(&data)
                .args(["--capacity-interval-ms", "300", "-v"])
                .args(run_args)
                .env_remove("IFS_DATA_DIR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            if let Some(seed) = c.addrs.first() {
                cmd.args(["--bootstrap", seed]);
            }
            c.nodes.push(Some(cmd.spawn().unwrap()));
            c.addrs.push(wait_addr(&data));
        }
        c.wait_alive(0, n);
        c.wait_alive(n - 1, n);
        c
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    /// The user's key dir, shared by every command of the test.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Run `ifsnode ARGS --peer <node i>` with this cluster's user key.
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        self.cli_with_stdin(i, args, None)
    }

    /// Like [`Cluster::cli`], feeding `input` on stdin.
    pub fn cli_with_stdin(&self, i: usize, args: &[&str], input: Option<&[u8]>) -> Output {
        self.cli_as(&self.home(), i, args, input)
    }

    /// Like [`Cluster::cli_with_stdin`], as the user whose key dir is `home`.
    pub fn cli_as(&self, home: &Path, i: usize, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut cmd = self.command(i, args);
        cmd.env("IFS_HOME", home)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(data) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        child.wait_with_output().unwrap()
    }

    /// The command `ifsnode ARGS --peer <node i>` with this cluster's user
    /// key, for tests that wire its stdin and stdout themselves.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .args(["--peer", &self.addrs[i]])
            .env("IFS_HOME", self.home())
            .env_remove("IFS_PEER")
            .env_remove("IFS_DATA_DIR");
        cmd
    }

    /// Like [`Cluster::cli`], failing the test unless it succeeds.
    pub fn ok(&self, i: usize, args: &[&str]) -> Output {
        let out = self.cli(i, args);
        assert!(
            out.status.success(),
            "ifsnode {args:?} failed: {}",
            stderr(&out)
        );
        out
    }

    /// Poll node `i`'s table until `n` nodes are alive in it.
    pub fn wait_alive(&self, i: usize, n: usize) {
        let start = Instant::now();
        loop {
            let out = self.cli(i, &["peers", "--json"]);
            if out.status.success() {
                let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let alive = rows
                    .as_array()
                    .map_or(0, |r| r.iter().filter(|x| x["state"] == "alive").count());
                if alive >= n {
                    return;
                }
            }
            assert!(start.elapsed() < PATIENCE, "nodes did not all come alive");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The libp2p peer id of node `i` (from its address).
    pub fn peer_id(&self, i: usize) -> String {
        self.addrs[i].rsplit("/p2p/").next().unwrap().to_string()
    }

    /// Kill node `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Every node of a test shares the build machine's disk, which parallel
/// builds fill and empty while the test runs; with the default 10% owner
/// reserve a disk over 90% full would shrink every donation to 0 mid-test.
/// Donations here are bounded by the volume caps alone.
pub fn no_owner_reserve(data: &Path) {
    let path = data.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let new = text.replace("owner_reserve_pct = 10\n", "owner_reserve_pct = 0\n");
    assert_ne!(new, text, "config.toml has the default owner reserve");
    std::fs::write(&path, new).unwrap();
}

fn wait_addr(data: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("node.addr"))
            && t.contains("/p2p/")
        {
            return t.trim().to_string();
        }
        assert!(start.elapsed() < PATIENCE, "node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

/// Text-like bytes: words from a small vocabulary, so zstd shrinks them
/// about as much as prose or logs.
pub fn text_bytes(n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "node",
        "stores",
        "chunk",
        "receipt",
        "replica",
        "network",
        "of",
        "and",
        "peer",
        "file",
        "disk",
        "space",
        "header",
        "chain",
        "client",
        "put",
        "get",
        "a",
        "record",
        "signed",
        "owner",
        "2026-11-24",
        "INFO",
        "WARN",
        "bytes",
        "1024",
        "ok",
    ];
    let mut out = Vec::with_capacity(n + 16);
    let mut words = 0u32;
    while out.len() < n {
        let w = WORDS[rand::random_range(0..WORDS.len())];
        out.extend_from_slice(w.as_bytes());
        words += 1;
        out.push(if words.is_multiple_of(12) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(n);
    out
}
