//! `ifsnode check`: load and validate a node's config, key and volumes
//! without starting anything; the same checks a node runs before it starts.

use crate::cmd::GlobalArgs;
use crate::config::Config;
use crate::node_key;
use crate::stdout::outln;
use crate::volume::{check_volume_dir, describe_cap};
use clap::Args;
use serde::Serialize;

/// Arguments of `ifsnode check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the settings as JSON (the fields of the human output).
    #[arg(long)]
    pub json: bool,
}

/// What `check` prints: the node's settings once every check passed.
#[derive(Debug, Serialize)]
struct Settings {
    node_id: String,
    config: String,
    node_key: String,
    owner_reserve_pct: u8,
    volumes: Vec<VolumeSetting>,
    leaving: bool,
    listen: Vec<String>,
    bootstrap: Vec<String>,
    capacity_interval_secs: u64,
    suspect_after_intervals: u32,
    dead_after_intervals: u32,
    mdns: bool,
    upnp: bool,
    admin_listen: String,
}

/// A volume and its cap, as `check` describes it.
#[derive(Debug, Serialize)]
struct VolumeSetting {
    path: String,
    cap: String,
}

impl Settings {
    fn print(&self) -> anyhow::Result<()> {
        outln!("ok: IFS node {}", self.node_id)?;
        outln!("  config    {}", self.config)?;
        outln!("  node key  {}", self.node_key)?;
        outln!(
            "  owner reserve {}% of each filesystem stays free",
            self.owner_reserve_pct
        )?;
        for v in &self.volumes {
            outln!("  volume    {}  cap {}", v.path, v.cap)?;
        }
        if self.leaving {
            outln!("  leaving   donating nothing (`ifsnode leave`; `ifsnode donate` ends it)")?;
        }
        for a in &self.listen {
            outln!("  listen    {a}")?;
        }
        for a in &self.bootstrap {
            outln!("  bootstrap {a}")?;
        }
        outln!(
            "  capacity reports every {} s; suspect after {} missed, dead after {}",
            self.capacity_interval_secs,
            self.suspect_after_intervals,
            self.dead_after_intervals
        )?;
        outln!("  mdns      {}", if self.mdns { "on" } else { "off" })?;
        outln!("  upnp      {}", if self.upnp { "on" } else { "off" })?;
        outln!("  admin     {}", self.admin_listen)?;
        Ok(())
    }
}

/// Run `ifsnode check`.
pub fn run(global: &GlobalArgs, args: CheckArgs) -> anyhow::Result<()> {
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
    let settings = Settings {
        node_id: key.node_id().to_string(),
        config: config_path.display().to_string(),
        node_key: key_path.display().to_string(),
        owner_reserve_pct: config.owner_reserve_pct,
        volumes: config
            .volumes
            .iter()
            .map(|v| VolumeSetting {
                path: v.path.display().to_string(),
                cap: describe_cap(v.cap),
            })
            .collect(),
        leaving: config.leaving,
        listen: config.listen.iter().map(|a| a.to_string()).collect(),
        bootstrap: config.bootstrap.iter().map(|a| a.to_string()).collect(),
        capacity_interval_secs: config.capacity.interval_secs,
        suspect_after_intervals: config.capacity.suspect_after_intervals,
        dead_after_intervals: config.capacity.dead_after_intervals,
        mdns: config.mdns,
        upnp: config.upnp,
        admin_listen: config.admin_listen.clone(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&settings)?)?;
    } else {
        settings.print()?;
    }
    Ok(())
}
