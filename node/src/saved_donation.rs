//! Operator donation changes written back to `DIR/config.toml`, so a
//! restart keeps what `ifsnode donate` and `ifsnode leave` set.
//!
//! The running node calls [`ConfigFile::save`] before a change takes effect.
//! Only the `volumes` caps and the `leaving` flag are touched: every other
//! line, comment and layout of the file stays as the operator wrote it. The
//! new text must load as a valid config before it atomically replaces the
//! old file (temp file, fsync, rename).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use ifs_node::{DonationChange, DonationStore};
use toml_edit::{DocumentMut, value};

use crate::atomic_file::write_atomic;
use crate::config::Config;
use crate::volume::{VolumeSpec, spec_text};

/// Comment written above `leaving = true`.
const LEAVING_NOTE: &str = "# Set by `ifsnode leave`: donate nothing and hand every chunk to other\n\
                            # nodes. `ifsnode donate SIZE|PCT` clears it.\n";

/// A node's `config.toml`, as the place its donation changes are kept.
pub struct ConfigFile {
    path: PathBuf,
    /// One rewrite at a time (the temp file name is per process).
    lock: Mutex<()>,
}

impl ConfigFile {
    /// The config at `path`.
    pub fn new(path: PathBuf) -> Self {
        ConfigFile {
            path,
            lock: Mutex::new(()),
        }
    }
}

impl DonationStore for ConfigFile {
    fn save(&self, change: &DonationChange) -> std::io::Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        rewrite(&self.path, change).map_err(|e| std::io::Error::other(format!("{e:#}")))
    }
}

/// Apply `change` to the config file at `path`, keeping its permissions.
pub fn rewrite(path: &Path, change: &DonationChange) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let new = edit(&text, change).with_context(|| format!("config {}", path.display()))?;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("config {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    write_atomic(path, new.as_bytes(), mode)
}

/// `text` with `change` applied; the result is checked to load as a config.
pub fn edit(text: &str, change: &DonationChange) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse().context("not valid TOML")?;
    match change {
        DonationChange::Leave => {
            if doc.get("leaving").is_none() {
                doc.insert("leaving", value(true));
                if let Some(mut key) = doc.key_mut("leaving") {
                    key.leaf_decor_mut().set_prefix(format!("\n{LEAVING_NOTE}"));
                }
            } else {
                doc["leaving"] = value(true);
            }
        }
        DonationChange::Bandwidth { up_bps, down_bps } => {
            let table = doc
                .entry("bandwidth")
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
                .as_table_mut()
                .context("field `bandwidth` is not a table")?;
            for (key, cap) in [("up", up_bps), ("down", down_bps)] {
                match cap {
                    Some(bps) => {
                        table.insert(key, value(rate_text(*bps)));
                    }
                    None => {
                        table.remove(key);
                    }
                }
            }
        }
        DonationChange::Caps(caps) => {
            doc.remove("leaving");
            let vols = doc
                .get_mut("volumes")
                .and_then(|v| v.as_array_mut())
                .context("field `volumes` is not an array")?;
            let mut set = vec![false; caps.len()];
            for i in 0..vols.len() {
                let text = vols
                    .get(i)
                    .and_then(|v| v.as_str())
                    .with_context(|| format!("field `volumes[{i}]` is not a string"))?;
                let spec =
                    VolumeSpec::parse(text).with_context(|| format!("field `volumes[{i}]`"))?;
                if let Some(j) = caps.iter().position(|(p, _)| *p == spec.path) {
                    set[j] = true;
                    vols.replace(
                        i,
                        spec_text(&VolumeSpec {
                            path: spec.path,
                            cap: caps[j].1,
                        }),
                    );
                }
            }
            if let Some(j) = set.iter().position(|s| !s) {
                bail!(
                    "volume {} is not in field `volumes` (was the file edited since the node started?)",
                    caps[j].0.display()
                );
            }
        }
    }
    let out = doc.to_string();
    let config: Config = toml::from_str(&out).context("the rewritten config does not load")?;
    config
        .validate()
        .context("the rewritten config is invalid")?;
    Ok(out)
}

/// A cap as config text that parses back to exactly `bps`.
fn rate_text(bps: u64) -> String {
    if bps.is_multiple_of(1_000_000) {
        format!("{}Mbit", bps / 1_000_000)
    } else if bps.is_multiple_of(1_000) {
        format!("{}kbit", bps / 1_000)
    } else {
        format!("{bps}bit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Cap;

    const TEXT: &str = "\
# my node, tuned by hand
data_dir = \"/srv/ifs\"
owner_reserve_pct = 15  # the laptop needs room
volumes = [
    \"/mnt/a:500GiB\",  # big disk
    \"/mnt/b:25%\",
]

[capacity]
interval_secs = 10
suspect_after_intervals = 3
dead_after_intervals = 10
";

    fn load(text: &str) -> Config {
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn donate_rewrites_only_the_caps_and_keeps_comments() {
        let change = DonationChange::Caps(vec![
            ("/mnt/a".into(), Cap::Bytes(100 << 30)),
            ("/mnt/b".into(), Cap::Bytes(12345)),
        ]);
        let out = edit(TEXT, &change).unwrap();
        assert_eq!(
            out,
            TEXT.replace("/mnt/a:500GiB", "/mnt/a:100GiB")
                .replace("/mnt/b:25%", "/mnt/b:12345B")
        );
        let c = load(&out);
        assert_eq!(c.volumes[0].cap, Cap::Bytes(100 << 30));
        assert_eq!(c.volumes[1].cap, Cap::Bytes(12345));
        assert_eq!(c.owner_reserve_pct, 15);
        assert!(!c.leaving);
    }

    #[test]
    fn leave_is_kept_until_the_next_donate() {
        let left = edit(TEXT, &DonationChange::Leave).unwrap();
        assert_eq!(
            left,
            TEXT.replace(
                "]\n\n[capacity]",
                &format!("]\n\n{LEAVING_NOTE}leaving = true\n\n[capacity]")
            )
        );
        let c = load(&left);
        assert!(c.leaving);
        assert_eq!(c.volumes[0].cap, Cap::Bytes(500 << 30), "caps kept");
        // Leaving twice changes nothing.
        assert_eq!(edit(&left, &DonationChange::Leave).unwrap(), left);

        let change = DonationChange::Caps(vec![
            ("/mnt/a".into(), Cap::Percent(5)),
            ("/mnt/b".into(), Cap::Percent(5)),
        ]);
        let back = edit(&left, &change).unwrap();
        let c = load(&back);
        assert!(!c.leaving);
        assert_eq!(c.volumes[1].cap, Cap::Percent(5));
        assert!(back.contains("# big disk"));
    }

    #[test]
    fn bandwidth_caps_are_written_and_cleared_and_load_back() {
        let set = DonationChange::Bandwidth {
            up_bps: Some(8_000_000),
            down_bps: Some(2_500_000),
        };
        let out = edit(TEXT, &set).unwrap();
        assert!(out.starts_with(TEXT), "the rest of the file is kept: {out}");
        let c = load(&out);
        assert_eq!(
            c.bandwidth.caps().unwrap(),
            (Some(8_000_000), Some(2_500_000))
        );
        let clear = DonationChange::Bandwidth {
            up_bps: None,
            down_bps: Some(12_345),
        };
        let c = load(&edit(&out, &clear).unwrap());
        assert_eq!(c.bandwidth.caps().unwrap(), (None, Some(12_345)));
    }

    #[test]
    fn a_donation_of_nothing_loads_back() {
        let change = DonationChange::Caps(vec![
            ("/mnt/a".into(), Cap::Bytes(0)),
            ("/mnt/b".into(), Cap::Bytes(0)),
        ]);
        let c = load(&edit(TEXT, &change).unwrap());
        assert_eq!(c.volumes[1].cap, Cap::Bytes(0));
    }

    #[test]
    fn an_unknown_volume_or_broken_file_is_refused() {
        let change = DonationChange::Caps(vec![("/mnt/c".into(), Cap::Bytes(1))]);
        let err = format!("{:#}", edit(TEXT, &change).unwrap_err());
        assert!(err.contains("/mnt/c"), "{err}");
        assert!(edit("volumes = [", &DonationChange::Leave).is_err());
        assert!(edit("data_dir = \"/d\"\nvolumes = 3\n", &change).is_err());
    }

    #[test]
    fn rewrite_replaces_the_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, TEXT).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        ConfigFile::new(p.clone())
            .save(&DonationChange::Leave)
            .unwrap();
        assert!(load(&std::fs::read_to_string(&p).unwrap()).leaving);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
        let missing = ConfigFile::new(dir.path().join("nope.toml"));
        assert!(missing.save(&DonationChange::Leave).is_err());
    }
}
