//! A node refuses to start on a TCP or QUIC port another node listens on,
//! and its hop responder answers only where the node listens.

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{Run, init};
use crate::cluster::{PATIENCE, bin};

/// A TCP and a UDP port number free right now on 127.0.0.1.
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    )
}

fn run_cmd(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--data-dir"])
        .arg(dir)
        .env_remove("IFS_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// A running node, killed when the test ends however it ends.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the node in `dir` and wait for its address.
fn start(dir: &std::path::Path) -> (Node, String) {
    let node = Node(
        run_cmd(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        if let Ok(a) = std::fs::read_to_string(dir.join("node.addr"))
            && a.contains("/p2p/")
        {
            return (node, a.trim().to_string());
        }
        assert!(start.elapsed() < PATIENCE, "node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run the node in `dir` expecting it to stop by itself; what it said.
fn run_to_exit(dir: &std::path::Path, name: &str) -> Run {
    let mut node = Node(
        run_cmd(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while node.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name}: the second node started beside the first"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut node.0.stderr.take().unwrap(), &mut stderr).unwrap();
    Run {
        code: node.0.wait().unwrap().code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    }
}

/// The peer id of the node answering at `addr`.
fn answering(addr: &str) -> String {
    let out = Command::new(bin())
        .args(["peers", "--json", "--peer", addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["is_self"] == true)
        .unwrap()["peer_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Local addresses (hex `IP:PORT`, as the kernel lists them) of UDP
/// sockets on `port`, from `/proc/net/udp` and `/proc/net/udp6`.
fn udp_sockets_on(port: u16) -> Vec<String> {
    let suffix = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|a| a.ends_with(&suffix))
        .collect()
}

#[test]
fn a_second_node_on_a_taken_port_refuses_to_start_and_the_first_serves_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (tcp, quic) = free_ports();
    let tcp_addr = format!("/ip4/127.0.0.1/tcp/{tcp}");
    let quic_addr = format!("/ip4/127.0.0.1/udp/{quic}/quic-v1");
    let first = tmp.path().join("first");
    assert_eq!(
        init(&first, &["--listen", &tcp_addr, "--listen", &quic_addr]).code,
        0
    );
    let (_first, addr) = start(&first);
    let id = answering(&addr);

    // The hop responder shares the TCP port number, on loopback only.
    assert_eq!(
        udp_sockets_on(tcp),
        ["0100007F".to_string() + &format!(":{tcp:04X}")],
        "the hop responder binds 127.0.0.1 only"
    );

    let (other_tcp, other_quic) = free_ports();
    for (name, listen, taken) in [
        (
            "same-tcp",
            [
                tcp_addr.clone(),
                format!("/ip4/127.0.0.1/udp/{other_quic}/quic-v1"),
            ],
            &tcp_addr,
        ),
        (
            "same-quic",
            [format!("/ip4/127.0.0.1/tcp/{other_tcp}"), quic_addr.clone()],
            &quic_addr,
        ),
    ] {
        let dir = tmp.path().join(name);
        assert_eq!(
            init(&dir, &["--listen", &listen[0], "--listen", &listen[1]]).code,
            0
        );
        let r = run_to_exit(&dir, name);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        let line = r.stderr.trim_end();
        assert!(
            line.starts_with("ifsnode: error: cannot listen on ")
                && line.contains(taken.as_str())
                && line.contains("already in use")
                && line.contains("choose another port")
                && !line.contains('\n'),
            "{name}: {line}"
        );
        assert!(!dir.join("node.addr").exists(), "{name} never listened");
    }
    for _ in 0..5 {
        assert_eq!(answering(&addr), id, "the first node still answers");
    }
}
