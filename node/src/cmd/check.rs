//! `ifsnode check`: load and validate a node's config, key and volumes
//! without starting anything; the same checks a node runs before it starts.

use crate::cmd::GlobalArgs;
use crate::config::Config;
use crate::node_key;
use crate::stdout::outln;
use crate::volume::{check_volume_dir, describe_cap};
use clap::Args;

/// Arguments of `ifsnode check`.
#[derive(Debug, Args)]
pub struct CheckArgs {}

/// Run `ifsnode check`.
pub fn run(global: &GlobalArgs, _args: CheckArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir()?;
    let config_path = Config::path_in(&data_dir);
    let config = Config::load(&config_path)?;
    let key_path = node_key::path_in(&data_dir);
    let key = node_key::load(&key_path)?;
    for v in &config.volumes {
        check_volume_dir(&v.path)?;
    }
    if config.data_dir != data_dir {
        tracing::warn!(
            config = %config_path.display(),
            data_dir = %config.data_dir.display(),
            "config's data_dir differs from the directory it was loaded from"
        );
    }

    for w in crate::disk_space::cap_warnings(&config) {
        crate::stdout::errln!("ifsnode: warning: {w}");
    }
    outln!("ok: IFS node {}", key.node_id())?;
    outln!("  config    {}", config_path.display())?;
    outln!("  node key  {}", key_path.display())?;
    outln!(
        "  owner reserve {}% of each filesystem stays free",
        config.owner_reserve_pct
    )?;
    for v in &config.volumes {
        outln!(
            "  volume    {}  cap {}",
            v.path.display(),
            describe_cap(v.cap)
        )?;
    }
    if config.leaving {
        outln!("  leaving   donating nothing (`ifsnode leave`; `ifsnode donate` ends it)")?;
    }
    for a in &config.listen {
        outln!("  listen    {a}")?;
    }
    for a in &config.bootstrap {
        outln!("  bootstrap {a}")?;
    }
    let c = &config.capacity;
    outln!(
        "  capacity reports every {} s; suspect after {} missed, dead after {}",
        c.interval_secs,
        c.suspect_after_intervals,
        c.dead_after_intervals
    )?;
    outln!("  mdns      {}", if config.mdns { "on" } else { "off" })?;
    Ok(())
}
