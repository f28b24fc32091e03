//! Capacity gossip at scale, in one process: for each cluster size, start
//! the nodes (each bootstraps from node 0), time until every node's table
//! lists every node (and until every node sees every node alive), then
//! count the bytes on the wire for a window and the share of alive pairs.
//!
//! Usage: `bench_gossip [--interval-ms MS] [--window-s S] N...` (default
//! 25 50 100, 10 s reports, 60 s window). Bytes come from the kernel's
//! per-socket TCP counters (`ss -tinp`, bytes_received of this process's
//! sockets): every node lives in this process, so each byte on loopback is
//! received here exactly once. They include every protocol (gossip, ping,
//! identify, Kademlia) and the Noise/Yamux framing; with no DHT traffic,
//! gossip dominates.

use std::time::{Duration, Instant};

use ifs_testkit::{Cluster, ClusterOptions};

struct Args {
    sizes: Vec<usize>,
    interval: Duration,
    window: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: Vec::new(),
        interval: Duration::from_secs(10),
        window: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--interval-ms" => args.interval = Duration::from_millis(value("--interval-ms")?),
            "--window-s" => args.window = Duration::from_secs(value("--window-s")?),
            n => args
                .sizes
                .push(n.parse().map_err(|_| format!("not a cluster size: {n}"))?),
        }
    }
    if args.sizes.is_empty() {
        args.sizes = vec![25, 50, 100];
    }
    Ok(args)
}

/// Sum of bytes_received and the number of TCP sockets of this process.
fn tcp_bytes_received() -> (u64, usize) {
    let pid = format!("pid={},", std::process::id());
    let Ok(out) = std::process::Command::new("ss").args(["-tinpH"]).output() else {
        return (0, 0);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut bytes, mut sockets, mut ours) = (0u64, 0usize, false);
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            ours = line.contains(&pid);
            continue;
        }
        if !ours {
            continue;
        }
        sockets += 1;
        bytes += line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("bytes_received:"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (bytes, sockets)
}

struct Figures {
    nodes: usize,
    spawn: Duration,
    /// Until every table lists every node.
    known: Option<Duration>,
    /// Until every node also sees every node alive at once.
    alive: Option<Duration>,
    /// Share of (viewer, subject) pairs alive at the end of the window.
    alive_share: f64,
    bytes_per_node_min: f64,
    conns_per_node: f64,
}

fn alive_share(net: &Cluster, all: &[usize]) -> f64 {
    let pairs = all.len() * all.len();
    let alive: usize = all
        .iter()
        .map(|&v| {
            net.node(v)
                .map(|h| h.peers().iter().filter(|r| r.state == "alive").count())
                .unwrap_or(0)
        })
        .sum();
    alive as f64 / pairs.max(1) as f64
}

async fn measure(n: usize, args: &Args) -> Result<Figures, String> {
    let opts = ClusterOptions {
        capacity_interval: args.interval,
        republish_interval: Duration::from_secs(3600),
        volume_bytes: 16 << 20,
        ..ClusterOptions::default()
    };
    let t0 = Instant::now();
    let net = Cluster::start(n, opts).await.map_err(|e| e.to_string())?;
    let spawn = t0.elapsed();
    let all = net.running();
    // Give up on full convergence after a while and measure traffic anyway:
    // on a loaded machine the last few liveness flags may keep flapping.
    let deadline = args.interval * 12 + Duration::from_secs(60);
    let (mut known, mut alive) = (None, None);
    while alive.is_none() && t0.elapsed() < deadline {
        if known.is_none() && all.iter().all(|&i| net.table(i).len() == n) {
            known = Some(t0.elapsed());
        }
        if known.is_some() && alive_share(&net, &all) >= 1.0 {
            alive = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (b0, _) = tcp_bytes_received();
    let w0 = Instant::now();
    tokio::time::sleep(args.window).await;
    let (b1, sockets) = tcp_bytes_received();
    let minutes = w0.elapsed().as_secs_f64() / 60.0;
    let share = alive_share(&net, &all);
    net.shutdown().await;
    Ok(Figures {
        nodes: n,
        spawn,
        known,
        alive,
        alive_share: share,
        bytes_per_node_min: b1.saturating_sub(b0) as f64 / n as f64 / minutes,
        conns_per_node: sockets as f64 / n as f64,
    })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_gossip: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "capacity gossip: reports every {:?}, traffic window {:?}, {} cores",
        args.interval,
        args.window,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>6} {:>8} {:>8} {:>8} {:>7} {:>13} {:>9}  growth vs previous size",
        "nodes", "spawn_s", "known_s", "alive_s", "alive%", "KiB/node/min", "conn/node"
    );
    let mut prev: Option<Figures> = None;
    for &n in &args.sizes {
        match measure(n, &args).await {
            Ok(f) => {
                let growth = prev.as_ref().map_or("-".to_string(), |p| {
                    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
                        (Some(a), Some(b)) => format!("x{:.2}", a.as_secs_f64() / b.as_secs_f64()),
                        _ => "n/a".into(),
                    };
                    format!(
                        "nodes x{:.1}: full table {}, bytes/node x{:.2}",
                        f.nodes as f64 / p.nodes as f64,
                        ratio(f.known, p.known),
                        f.bytes_per_node_min / p.bytes_per_node_min,
                    )
                });
                // Both ends of a loopback connection are ours: halve the count.
                println!(
                    "{:>6} {:>8.1} {:>8} {:>8} {:>7.1} {:>13.1} {:>9.1}  {growth}",
                    f.nodes,
                    f.spawn.as_secs_f64(),
                    secs(f.known),
                    secs(f.alive),
                    f.alive_share * 100.0,
                    f.bytes_per_node_min / 1024.0,
                    f.conns_per_node / 2.0,
                );
                prev = Some(f);
            }
            Err(e) => println!("{n:>6} failed: {e}"),
        }
    }
}
