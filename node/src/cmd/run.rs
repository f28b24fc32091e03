//! `ifsnode run`: start the node service from `DIR/config.toml` (flags
//! override it) and keep it running until Ctrl-C or SIGTERM, then stop
//! cleanly: the node table and report sequence are persisted, the swarm and
//! the local table closed.

use crate::cmd::GlobalArgs;
use crate::config::Config;
use crate::node_key;
use crate::saved_donation::ConfigFile;
use crate::stdout::announceln;
use crate::volume::check_volume_dir;
use anyhow::Context;
use clap::Args;
use ifs_node::{Node, NodeConfig};
use ifs_store::StoreConfig;
use multiaddr::Multiaddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a clean stop may take before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Arguments of `ifsnode run`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// An address to listen on, replacing the config's `listen`. Repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// A peer to join through, added to the config's `bootstrap`. Repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    #[arg(long)]
    pub mdns: bool,
    /// Milliseconds between capacity reports, overriding
    /// `capacity.interval_secs` (short values suit tests and dev clusters).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..))]
    pub capacity_interval_ms: Option<u64>,
    /// Milliseconds between durability passes (repair, audits, offload);
    /// default 60 s. Short values suit tests and benchmarks.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..))]
    pub repair_interval_ms: Option<u64>,
    /// Seconds a reservation lasts at most, overriding
    /// `reservation_ttl_secs` (short values suit tests).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub reservation_ttl_secs: Option<u64>,
    /// Where the admin endpoint listens (`IP:PORT`, port 0 for any free
    /// one, or `off`), overriding `admin_listen`.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
}

/// The node service's configuration from `config.toml`, the node key and the
/// flags of `run`.
pub fn node_config(
    config: &Config,
    data_dir: &Path,
    key: ifs_core::keys::NodeKey,
    args: &RunArgs,
) -> anyhow::Result<NodeConfig> {
    let mut store = StoreConfig::new(data_dir, config.volumes.clone());
    store.owner_reserve_pct = config.owner_reserve_pct;
    store
        .validate()
        .context("invalid volume settings in config.toml")?;
    let mut cfg = NodeConfig::new(key, data_dir.to_path_buf(), store);
    cfg.listen = if args.listen.is_empty() {
        config.listen.clone()
    } else {
        args.listen.clone()
    };
    cfg.bootstrap = config.bootstrap.clone();
    for b in &args.bootstrap {
        if !cfg.bootstrap.contains(b) {
            cfg.bootstrap.push(b.clone());
        }
    }
    cfg.mdns = config.mdns || args.mdns;
    cfg.upnp = config.upnp;
    let c = &config.capacity;
    cfg.capacity_interval = match args.capacity_interval_ms {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(c.interval_secs),
    };
    cfg.suspect_after = c.suspect_after_intervals;
    cfg.dead_after = c.dead_after_intervals;
    // Hop counts change rarely; with short test intervals, re-probe sooner.
    cfg.hop_probe_interval = (cfg.capacity_interval * 3).min(Duration::from_secs(30));
    if let Some(ms) = args.repair_interval_ms {
        cfg.durability.repair_interval = Duration::from_millis(ms);
    }
    // `donate` and `leave` are written back to config.toml, so a restart
    // keeps them.
    cfg.leaving = config.leaving;
    cfg.donation_store = Some(Arc::new(ConfigFile::new(Config::path_in(data_dir))));
    cfg.max_reservation_ttl = Duration::from_secs(
        args.reservation_ttl_secs
            .unwrap_or(config.reservation_ttl_secs),
    );
    cfg.quota = config.quota.policy();
    (cfg.bandwidth_up_bps, cfg.bandwidth_down_bps) = config.bandwidth.caps()?;
    // Collection stays behind the longest reservation even when a test
    // shortens the TTL on the command line.
    cfg.durability.collect_after = Duration::from_secs(config.collect_after_secs)
        .max(cfg.max_reservation_ttl + Duration::from_secs(1));
    Ok(cfg)
}

/// Run `ifsnode run`.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir()?;
    let config = Config::load(&Config::path_in(&data_dir))?;
    let key = node_key::load(&node_key::path_in(&data_dir))?;
    for v in &config.volumes {
        check_volume_dir(&v.path)?;
    }
    for w in crate::disk_space::cap_warnings(&config) {
        tracing::warn!("{w}");
        crate::stdout::errln!("ifsnode: warning: {w}");
    }
    let cfg = node_config(&config, &data_dir, key, &args)?;
    let admin = args.admin_listen.as_deref().unwrap_or(&config.admin_listen);
    let admin = crate::config::parse_admin_listen(admin).context("--admin-listen")?;
    crate::listen_port::ensure_free(&cfg.listen)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg, admin))
}

async fn serve(cfg: NodeConfig, admin: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let dir = cfg.data_dir.clone();
    let handle = Node::spawn(cfg)
        .await
        .with_context(|| format!("cannot start the node in {}", dir.display()))?;
    announceln!("IFS node {} running", handle.peer_id());
    for a in handle.addrs() {
        announceln!("  listen    {a}");
    }
    announceln!(
        "  address   {}",
        dir.join(ifs_node::ADDR_FILE).to_string_lossy()
    );
    let admin = crate::admin::start_for_run(handle.observer(), admin, &dir).await;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut handle = handle;
    let reason = tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("cannot wait for Ctrl-C")?; "interrupt" }
        _ = term.recv() => "SIGTERM",
        _ = handle.wait() => "the network task ended",
    };
    tracing::info!(reason, "stopping");
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    if tokio::time::timeout(STOP_GRACE, handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("clean stop took longer than {STOP_GRACE:?}; exiting anyway");
    }
    announceln!("stopped ({reason})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Cap, VolumeSpec};

    #[test]
    fn flags_override_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let vols = vec![VolumeSpec {
            path: dir.path().join("v"),
            cap: Cap::Bytes(1 << 30),
        }];
        let boot: Multiaddr = "/ip4/10.0.0.1/tcp/4100".parse().unwrap();
        let config = Config::new(dir.path().into(), vols, vec![], vec![boot.clone()]);
        let key = ifs_core::keys::NodeKey::generate(&mut rand::rng());
        let args = RunArgs {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![boot, "/ip4/10.0.0.2/tcp/4100".parse().unwrap()],
            mdns: true,
            capacity_interval_ms: Some(500),
            repair_interval_ms: Some(1000),
            reservation_ttl_secs: Some(3),
            admin_listen: None,
        };
        let cfg = node_config(&config, dir.path(), key, &args).unwrap();
        assert_eq!(cfg.listen, args.listen);
        assert_eq!(cfg.bootstrap.len(), 2, "duplicates are dropped");
        assert!(cfg.mdns);
        assert_eq!(cfg.capacity_interval, Duration::from_millis(500));
        assert_eq!(cfg.store.owner_reserve_pct, config.owner_reserve_pct);
        assert_eq!(cfg.suspect_after, 3);
        assert_eq!(cfg.durability.repair_interval, Duration::from_secs(1));
        assert_eq!(cfg.max_reservation_ttl, Duration::from_secs(3));
        let key = ifs_core::keys::NodeKey::generate(&mut rand::rng());
        let cfg = node_config(&config, dir.path(), key, &RunArgs::default()).unwrap();
        assert_eq!(cfg.max_reservation_ttl, Duration::from_secs(600), "default");
    }
}
