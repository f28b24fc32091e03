//! `ifsnode init`: create a node's data dir, config and identity key.
//!
//! Everything that can be checked is checked before the first write, and
//! anything this run created is removed again if a later step fails, so a
//! failed `init` leaves the disk as it found it.

use crate::atomic_file::write_atomic;
use crate::cmd::GlobalArgs;
use crate::config::{Config, DEFAULT_LISTEN};
use crate::node_key;
use crate::stdout::outln;
use crate::volume::{Cap, DEFAULT_VOLUME_CAP, VolumeSpec, check_volume_dir, describe_cap};
use anyhow::{Context, bail};
use clap::Args;
use multiaddr::Multiaddr;
use serde::Serialize;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Sub-directory of the data dir used as the volume when none is given.
pub const DEFAULT_VOLUME: &str = "volumes/0";

/// Arguments of `ifsnode init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A directory to store pieces in, with an optional cap: bytes (500GiB, 250GB)
    /// or a percent of its filesystem (25%); without a cap, up to the owner
    /// reserve. Repeatable. The directory must exist. [default: DIR/volumes/0:10%, created]
    #[arg(long = "volume", value_name = "PATH[:SIZE|PCT]", value_parser = VolumeSpec::parse)]
    pub volumes: Vec<VolumeSpec>,
    /// An address to listen on. Repeatable.
    #[arg(long, value_name = "MULTIADDR", default_values = DEFAULT_LISTEN)]
    pub listen: Vec<Multiaddr>,
    /// A peer to join through, e.g. /ip4/10.0.0.5/tcp/4100/p2p/12D3Koo... Repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// Overwrite an existing config.toml. An existing node key is always kept,
    /// so the node keeps its identity.
    #[arg(long)]
    pub force: bool,
    /// Print what was created as JSON (the fields of the human output).
    #[arg(long)]
    pub json: bool,
}

/// What `init` prints.
#[derive(Debug, Serialize)]
struct Initialized {
    node_id: String,
    data_dir: String,
    config: String,
    node_key: String,
    /// False when an existing key was kept.
    node_key_new: bool,
    volumes: Vec<InitVolume>,
    listen: Vec<String>,
    bootstrap: Vec<String>,
}

/// A volume and its cap, as `init` describes it.
#[derive(Debug, Serialize)]
struct InitVolume {
    path: String,
    cap: String,
}

/// Paths this run created, removed in reverse order unless the run succeeds.
struct Undo(Vec<PathBuf>);

impl Undo {
    fn created_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        // Record each missing ancestor so a failure removes exactly what we made.
        let mut missing = Vec::new();
        let mut p = Some(dir);
        while let Some(d) = p {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            p = d.parent();
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        self.0.extend(missing.into_iter().rev());
        Ok(())
    }

    fn commit(mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = if p.is_dir() {
                std::fs::remove_dir(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
}

/// Whether a node process holds the store of `data_dir` open: its redb
/// file is locked while the node runs and free once it stops or dies.
pub fn node_running(data_dir: &Path) -> bool {
    let db = data_dir.join(STORE_FILE);
    db.exists()
        && matches!(
            redb::Database::open(&db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
        )
}

/// The store's redb file in the data dir (`ifs_store` names it).
const STORE_FILE: &str = "store.redb";

/// Run `ifsnode init`.
pub fn run(global: &GlobalArgs, args: InitArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir()?;
    let config_path = Config::path_in(&data_dir);
    let key_path = node_key::path_in(&data_dir);

    match std::fs::metadata(&data_dir) {
        Ok(m) if !m.is_dir() => bail!("data dir {} is not a directory", data_dir.display()),
        _ => {}
    }
    if config_path.exists() && !args.force {
        bail!(
            "config {} already exists; pass --force to overwrite it (the node key is kept)",
            config_path.display()
        );
    }
    if node_running(&data_dir) {
        bail!(
            "the node in {} is running; stop it before `init --force` rewrites its config",
            data_dir.display()
        );
    }

    // Check every given volume before writing anything.
    let mut volumes = Vec::new();
    for spec in &args.volumes {
        if spec.cap == Cap::Bytes(0) {
            bail!(
                "volume {}: a volume must hold more than 0 bytes",
                spec.path.display()
            );
        }
        let path = check_volume_dir(&spec.path)?;
        if volumes.iter().any(|v: &VolumeSpec| v.path == path) {
            bail!("volume directory {} is given twice", path.display());
        }
        volumes.push(VolumeSpec {
            path,
            cap: spec.cap,
        });
    }
    let default_volume = volumes.is_empty().then(|| data_dir.join(DEFAULT_VOLUME));
    if let Some(path) = &default_volume {
        volumes.push(VolumeSpec {
            path: path.clone(),
            cap: DEFAULT_VOLUME_CAP,
        });
    }
    let config = Config::new(data_dir.clone(), volumes, args.listen, args.bootstrap);
    config.validate().context("invalid settings")?;
    let text = config.to_toml()?;

    let mut undo = Undo(Vec::new());
    undo.created_dir(&data_dir)?;
    if let Some(path) = &default_volume {
        undo.created_dir(path)?;
        check_volume_dir(path)?;
    }
    let (key, key_note) = if key_path.exists() {
        (node_key::load(&key_path)?, "kept")
    } else {
        let key = node_key::create(&key_path)?;
        undo.0.push(key_path.clone());
        (key, "new")
    };
    write_atomic(&config_path, text.as_bytes(), 0o644)?;
    undo.commit();

    tracing::info!(node_id = %key.node_id(), dir = %data_dir.display(), "node initialized");
    let done = Initialized {
        node_id: key.node_id().to_string(),
        data_dir: data_dir.display().to_string(),
        config: config_path.display().to_string(),
        node_key: key_path.display().to_string(),
        node_key_new: key_note == "new",
        volumes: config
            .volumes
            .iter()
            .map(|v| InitVolume {
                path: v.path.display().to_string(),
                cap: describe_cap(v.cap),
            })
            .collect(),
        listen: config.listen.iter().map(|a| a.to_string()).collect(),
        bootstrap: config.bootstrap.iter().map(|a| a.to_string()).collect(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&done)?)?;
        return Ok(());
    }
    outln!("initialized IFS node {}", done.node_id)?;
    outln!("  data dir  {}", done.data_dir)?;
    outln!("  config    {}", done.config)?;
    outln!("  node key  {} (mode 0600, {key_note})", done.node_key)?;
    for v in &done.volumes {
        outln!("  volume    {}  cap {}", v.path, v.cap)?;
    }
    for a in &done.listen {
        outln!("  listen    {a}")?;
    }
    for a in &done.bootstrap {
        outln!("  bootstrap {a}")?;
    }
    Ok(())
}
