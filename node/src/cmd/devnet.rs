//! `ifsnode devnet`: a local cluster for development. Initializes N data
//! dirs under DIR (kept across runs, so identities and tables persist),
//! starts one `ifsnode run` child per node on 127.0.0.1, node 1 first as the
//! seed every other node bootstraps from, prints their addresses and stops
//! them all on Ctrl-C or SIGTERM.

use crate::cmd::GlobalArgs;
use crate::stdout::{announceln, errln};
use anyhow::{Context, bail};
use clap::Args;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to write its `node.addr`.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Arguments of `ifsnode devnet`.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Number of nodes
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub nodes: u16,
    /// Directory holding one data dir per node (DIR/node1, DIR/node2, ...)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// TCP port of node 1; node i listens on TCP P+2(i-1) and QUIC P+2(i-1)+1.
    /// 0 picks free ports.
    #[arg(
        long,
        value_name = "P",
        default_value_t = 4200,
        env = "IFS_DEVNET_BASE_PORT"
    )]
    pub base_port: u16,
    /// Milliseconds between capacity reports of every node
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..))]
    pub capacity_interval_ms: Option<u64>,
}

/// The listen addresses of node `i` (0-based) for `base` (0: free ports).
pub fn listen_addrs(base: u16, i: u16) -> anyhow::Result<[String; 2]> {
    let (tcp, quic) = if base == 0 {
        (0, 0)
    } else {
        let tcp = base
            .checked_add(i.checked_mul(2).context("port overflow")?)
            .and_then(|p| p.checked_add(1).map(|q| (p, q)))
            .context("--base-port too high for this many nodes")?;
        (tcp.0, tcp.1)
    };
    Ok([
        format!("/ip4/127.0.0.1/tcp/{tcp}"),
        format!("/ip4/127.0.0.1/udp/{quic}/quic-v1"),
    ])
}

/// Run `ifsnode devnet`.
pub fn run(global: &GlobalArgs, args: DevnetArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the ifsnode executable")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let root = std::path::absolute(&args.dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut nodes: Vec<(PathBuf, Child)> = Vec::new();
    // Signals are caught from the first line on: a Ctrl-C or SIGTERM while
    // the nodes start stops them cleanly too.
    let mut stop = {
        let _rt = rt.enter();
        StopSignals::install()?
    };
    // Every node sits on the same disk: each gets a fair share of it, not
    // all of its free space.
    let share = crate::disk_space::fair_share(&root, args.nodes, DEFAULT_OWNER_RESERVE)
        .with_context(|| format!("cannot read the free space of {}", root.display()))?;
    let fresh = (1..=args.nodes)
        .filter(|i| {
            !root
                .join(format!("node{i}"))
                .join(crate::config::CONFIG_FILE)
                .exists()
        })
        .count();
    if fresh > 0 {
        announceln!(
            "each new node donates up to {} (the free space of {} beyond the owner reserve, split over {})",
            crate::human::bytes(share),
            root.display(),
            crate::cmd::count(u64::from(args.nodes), "node")
        );
    }
    let started = rt.block_on(async {
        let start = async {
            let mut seed: Option<String> = None;
            for i in 0..args.nodes {
                let dir = root.join(format!("node{}", i + 1));
                init_node(&exe, &dir, (args.base_port, i), share, global.verbose)?;
                let child = start_node(&exe, &dir, seed.as_deref(), &args, global.verbose)?;
                nodes.push((dir.clone(), child));
                let addr = wait_addr(&dir, &mut nodes).await?;
                announceln!("node{} {addr}", i + 1);
                seed.get_or_insert(addr);
            }
            anyhow::Ok(true)
        };
        tokio::select! {
            r = start => r,
            r = stop.wait() => r.map(|()| false),
        }
    });
    match started {
        Ok(true) => {}
        Ok(false) => {
            stop_all(&mut nodes);
            announceln!("devnet: stopped");
            return Ok(());
        }
        Err(e) => {
            stop_all(&mut nodes);
            return Err(e);
        }
    }
    announceln!(
        "devnet: {} nodes running; logs in {}/node*/node.log; Ctrl-C stops them",
        nodes.len(),
        root.display()
    );
    if let Ok(admin) = std::fs::read_to_string(root.join("node1").join(crate::admin::ADDR_FILE)) {
        announceln!(
            "devnet: node1's dashboard at http://{}/ (each node's admin address is in nodeN/admin.addr)",
            admin.trim()
        );
    }
    let waited = rt.block_on(wait_for_stop(&mut nodes, &mut stop));
    stop_all(&mut nodes);
    announceln!("devnet: stopped");
    waited
}

/// The owner reserve `init` writes (`owner_reserve_pct`).
const DEFAULT_OWNER_RESERVE: u8 = 10;

fn init_node(
    exe: &Path,
    dir: &Path,
    (base, i): (u16, u16),
    share: u64,
    verbose: u8,
) -> anyhow::Result<()> {
    if dir.join(crate::config::CONFIG_FILE).exists() {
        return Ok(());
    }
    let volume = dir.join(crate::cmd::init::DEFAULT_VOLUME);
    std::fs::create_dir_all(&volume)
        .with_context(|| format!("cannot create {}", volume.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("init").arg("--data-dir").arg(dir);
    cmd.arg("--volume")
        .arg(format!("{}:{}MiB", volume.display(), share >> 20));
    for a in listen_addrs(base, i)? {
        cmd.arg("--listen").arg(a);
    }
    if verbose > 0 {
        cmd.arg("-v");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot run ifsnode init")?;
    if !out.status.success() {
        bail!(
            "ifsnode init --data-dir {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn start_node(
    exe: &Path,
    dir: &Path,
    seed: Option<&str>,
    args: &DevnetArgs,
    verbose: u8,
) -> anyhow::Result<Child> {
    // A stale address from an earlier run must not be mistaken for this one.
    let _ = std::fs::remove_file(dir.join(crate::peer_addr::ADDR_FILE));
    let log = File::create(dir.join("node.log"))
        .with_context(|| format!("cannot create {}/node.log", dir.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg("--data-dir").arg(dir);
    if let Some(s) = seed {
        cmd.arg("--bootstrap").arg(s);
    }
    // Node 1 serves its dashboard where a lone node would (admin_listen's
    // default); the others, and every node with free ports, on any port
    // (DIR/nodeN/admin.addr says which).
    if seed.is_some() || args.base_port == 0 {
        cmd.arg("--admin-listen").arg("127.0.0.1:0");
    }
    if let Some(ms) = args.capacity_interval_ms {
        cmd.arg("--capacity-interval-ms").arg(ms.to_string());
    }
    cmd.arg(format!("-{}", "v".repeat(usize::from(verbose.max(1)))));
    cmd.env_remove("IFS_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
    // SIGTERM to the child if devnet dies, so no node outlives it.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start the node in {}", dir.display()))
}

async fn wait_addr(dir: &Path, nodes: &mut [(PathBuf, Child)]) -> anyhow::Result<String> {
    let path = dir.join(crate::peer_addr::ADDR_FILE);
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(line) = text.lines().find(|l| !l.trim().is_empty())
        {
            return Ok(line.trim().to_string());
        }
        if let Some((_, child)) = nodes.last_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "node in {} exited ({status}) before it listened; see {}/node.log",
                dir.display(),
                dir.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "node in {} wrote no {} in time",
                dir.display(),
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ctrl-C and SIGTERM, caught from the start of `devnet`.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Install both handlers (inside a runtime context).
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install Ctrl-C handler")?,
        })
    }

    /// Until either arrives.
    async fn wait(&mut self) -> anyhow::Result<()> {
        tokio::select! {
            _ = self.term.recv() => Ok(()),
            _ = self.int.recv() => Ok(()),
        }
    }
}

async fn wait_for_stop(
    nodes: &mut [(PathBuf, Child)],
    stop: &mut StopSignals,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Said once per node: an exited child stays exited.
    let mut reported = vec![false; nodes.len()];
    loop {
        tokio::select! {
            r = stop.wait() => return r,
            _ = tick.tick() => {
                for ((dir, child), said) in nodes.iter_mut().zip(reported.iter_mut()) {
                    if !*said && let Ok(Some(status)) = child.try_wait() {
                        *said = true;
                        errln!("devnet: node in {} exited ({status}); the others keep running", dir.display());
                    }
                }
            }
        }
    }
}

/// SIGTERM every node, wait for them to stop cleanly, kill the stragglers.
fn stop_all(nodes: &mut [(PathBuf, Child)]) {
    for (_, child) in nodes.iter_mut() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: plain kill(2) on a child we started and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for (dir, child) in nodes.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    errln!("devnet: killing the node in {}", dir.display());
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::listen_addrs;

    #[test]
    fn quic_takes_the_port_after_tcp() {
        let a = listen_addrs(4200, 2).unwrap();
        assert_eq!(a[0], "/ip4/127.0.0.1/tcp/4204");
        assert_eq!(a[1], "/ip4/127.0.0.1/udp/4205/quic-v1");
        assert!(listen_addrs(0, 7).unwrap()[0].ends_with("/tcp/0"));
        assert!(listen_addrs(65_530, 5).is_err());
    }
}
