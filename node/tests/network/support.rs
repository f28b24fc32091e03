//! Helpers: start `ifsnode run` processes, read `peers --json`, wait for a
//! state with a generous deadline (never a timing assertion).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Upper bound on any wait: a failure bound, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Capacity report interval of the test nodes.
pub const INTERVAL_MS: &str = "500";

/// A command with a clean environment for the variables ifsnode reads.
pub fn ifsnode() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ifsnode"));
    c.env_remove("IFS_DATA_DIR")
        .env_remove("IFS_PEER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

/// Run ifsnode to completion.
pub fn output(args: &[&str]) -> Output {
    ifsnode().args(args).output().expect("run ifsnode")
}

/// A node process; killed when dropped so a failing test leaves nothing behind.
pub struct NodeProc {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    /// `ifsnode init` (loopback, free ports) then `ifsnode run`.
    pub fn init_and_start(dir: &Path, bootstrap: Option<&str>) -> NodeProc {
        let d = dir.to_str().unwrap();
        let out = output(&[
            "init",
            "--data-dir",
            d,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
        ]);
        assert!(out.status.success(), "init: {out:?}");
        Self::start(dir, bootstrap)
    }

    /// `ifsnode run` in an initialized dir; returns once `node.addr` exists.
    pub fn start(dir: &Path, bootstrap: Option<&str>) -> NodeProc {
        let addr_file = dir.join("node.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::create(dir.join("node.log")).unwrap();
        let mut cmd = ifsnode();
        cmd.args(["run", "-v", "--data-dir", dir.to_str().unwrap()]);
        cmd.args(["--capacity-interval-ms", INTERVAL_MS]);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ifsnode run");
        let mut p = NodeProc {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        wait_for(&format!("{} to listen", dir.display()), || {
            if let Some(Ok(Some(status))) = p.child.as_mut().map(|c| c.try_wait()) {
                panic!("node exited early ({status}): {}", p.log());
            }
            addr_file.exists()
        });
        p
    }

    /// The address the node wrote to `node.addr`.
    pub fn addr(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.addr"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The node's peer id (the `/p2p/` part of its address).
    pub fn peer_id(&self) -> String {
        self.addr().rsplit("/p2p/").next().unwrap().to_string()
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Crash it: SIGKILL, no clean stop.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop it with SIGTERM and return its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().unwrap()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ifsnode peers --json` against the node in `dir` (via its node.addr).
pub fn peers(dir: &Path) -> Option<Vec<Value>> {
    let out = output(&["peers", "--json", "--data-dir", dir.to_str().unwrap()]);
    if !out.status.success() {
        return None;
    }
    match serde_json::from_slice::<Value>(&out.stdout).ok()? {
        Value::Array(rows) => Some(rows),
        other => panic!("peers --json is not an array: {other}"),
    }
}

/// The row of `peer_id` in `rows`.
pub fn row<'a>(rows: &'a [Value], peer_id: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["peer_id"] == peer_id)
}

/// Poll `cond` until it holds; panic naming `what` after [`PATIENCE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
