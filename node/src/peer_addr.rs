//! Which node a CLI command talks to: `--peer MULTIADDR`, else the
//! `IFS_PEER` environment variable, else the address the local node wrote to
//! `<data dir>/node.addr` when it started.
//!
//! The choice is a pure function of those three sources so it is tested
//! without a network; the error names all three when none gives an address.

use anyhow::{Context, anyhow, bail};
use ifs_client::ClientError;
use multiaddr::{Multiaddr, Protocol};
use std::path::{Path, PathBuf};

/// Environment variable naming the entry node.
pub const PEER_ENV: &str = "IFS_PEER";

/// File in a node's data dir holding its dialable address (written by the
/// node at start; the same name as `ifs_node::ADDR_FILE`).
pub const ADDR_FILE: &str = "node.addr";

/// Where the entry node's address came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `--peer` flag.
    Flag,
    /// The `IFS_PEER` variable.
    Env,
    /// A `node.addr` file.
    AddrFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "--peer"),
            Source::Env => write!(f, "{PEER_ENV}"),
            Source::AddrFile(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Resolve the entry node from the process's flag, environment and data dir.
pub fn resolve(flag: Option<&Multiaddr>, data_dir: &Path) -> anyhow::Result<(Multiaddr, Source)> {
    let env = std::env::var(PEER_ENV).ok();
    resolve_from(flag, env.as_deref(), &data_dir.join(ADDR_FILE))
}

/// Resolve the entry node from explicit sources: the flag wins, then a
/// non-empty `env`, then the first address line of `addr_file`.
pub fn resolve_from(
    flag: Option<&Multiaddr>,
    env: Option<&str>,
    addr_file: &Path,
) -> anyhow::Result<(Multiaddr, Source)> {
    if let Some(a) = flag {
        return Ok((a.clone(), Source::Flag));
    }
    if let Some(text) = env.map(str::trim).filter(|t| !t.is_empty()) {
        let addr = text
            .parse()
            .with_context(|| format!("{PEER_ENV}={text:?} is not a valid multiaddr"))?;
        return Ok((addr, Source::Env));
    }
    match std::fs::read_to_string(addr_file) {
        Ok(text) => {
            let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
                bail!("{} is empty", addr_file.display());
            };
            let addr = line.parse().with_context(|| {
                format!(
                    "{} holds {line:?}, not a valid multiaddr",
                    addr_file.display()
                )
            })?;
            Ok((addr, Source::AddrFile(addr_file.to_path_buf())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no node to talk to: pass --peer MULTIADDR, set {PEER_ENV}, or start a node \
             whose data dir holds {} (not found)",
            addr_file.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", addr_file.display())),
    }
}

/// The one-line error for an entry node that could not be reached: "not
/// running" when nothing listens on its TCP port (a stale `node.addr` of a
/// stopped node), else why the dial failed.
pub fn unreachable(
    addr: &Multiaddr,
    source: &Source,
    data_dir: &Path,
    e: &ClientError,
) -> anyhow::Error {
    let reason = match e {
        ClientError::Unreachable { reason, .. } => reason.clone(),
        ClientError::Net(e) => return anyhow!("cannot start the network client: {e}"),
        other => other.to_string(),
    };
    if tcp_refused(addr) {
        let hint = match source {
            Source::AddrFile(_) => format!(
                "; start it with `ifsnode run --data-dir {}`",
                data_dir.display()
            ),
            Source::Flag | Source::Env => String::new(),
        };
        anyhow!("the node at {addr} (from {source}) is not running{hint}")
    } else {
        anyhow!("cannot reach the node at {addr} (from {source}): {reason}")
    }
}

/// Whether `addr` names an IP and TCP port where the connection is refused:
/// no process listens there.
fn tcp_refused(addr: &Multiaddr) -> bool {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return false;
    };
    let sock = std::net::SocketAddr::new(ip, port);
    matches!(
        std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(2)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "/ip4/127.0.0.1/tcp/4100/p2p/12D3KooWGzRb1sxd3jN8h6Y1w6gZ9q9m6QJn1T3tEwqXyqRkQZsp";
    const B: &str = "/ip4/10.0.0.2/tcp/4100";

    #[test]
    fn flag_then_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(ADDR_FILE);
        std::fs::write(&file, format!("\n{A}\n")).unwrap();
        let a: Multiaddr = A.parse().unwrap();
        let b: Multiaddr = B.parse().unwrap();
        assert_eq!(
            resolve_from(Some(&b), Some(A), &file).unwrap(),
            (b.clone(), Source::Flag)
        );
        assert_eq!(
            resolve_from(None, Some(B), &file).unwrap(),
            (b, Source::Env)
        );
        assert_eq!(
            resolve_from(None, Some("  "), &file).unwrap(),
            (a, Source::AddrFile(file.clone()))
        );
    }

    #[test]
    fn missing_everywhere_names_all_three_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(ADDR_FILE);
        let err = format!("{:#}", resolve_from(None, None, &file).unwrap_err());
        for needle in ["--peer", PEER_ENV, ADDR_FILE] {
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn bad_text_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(ADDR_FILE);
        let err = format!("{:#}", resolve_from(None, Some("nope"), &file).unwrap_err());
        assert!(err.contains("\"nope\""), "{err}");
        std::fs::write(&file, "garbage\n").unwrap();
        let err = format!("{:#}", resolve_from(None, None, &file).unwrap_err());
        assert!(err.contains("garbage"), "{err}");
    }
}
