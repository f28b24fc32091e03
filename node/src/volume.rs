//! Volume specs (`PATH[:SIZE|PCT]`) and the checks a volume directory must pass.
//!
//! The text form is the same on the command line and in `config.toml`; the
//! parser is `ifs_store::VolumeSpec::parse`, this file adds the way back to
//! text and the checks `ifsnode` runs on the directories.

use anyhow::{Context, bail};
pub use ifs_store::{Cap, VolumeSpec};
use std::path::{Path, PathBuf};

/// Cap of the volume `init` creates in the data dir when no `--volume` is
/// given: that directory usually sits on the owner's system disk.
pub const DEFAULT_VOLUME_CAP: Cap = Cap::Percent(10);

/// `500GiB`, `4096B` or `25%`: exact text for a cap that parses back to it.
pub fn cap_text(cap: Cap) -> String {
    match cap {
        Cap::Percent(p) => format!("{p}%"),
        Cap::Bytes(b) => {
            for (name, mult) in [
                ("TiB", 1u64 << 40),
                ("GiB", 1 << 30),
                ("MiB", 1 << 20),
                ("KiB", 1 << 10),
            ] {
                if b > 0 && b % mult == 0 {
                    return format!("{}{name}", b / mult);
                }
            }
            format!("{b}B")
        }
    }
}

/// A cap in words for people, e.g. `10% of its filesystem`.
pub fn describe_cap(cap: Cap) -> String {
    match cap {
        Cap::Percent(p) => format!("{p}% of its filesystem"),
        Cap::Bytes(_) => cap_text(cap),
    }
}

/// The `PATH:CAP` text of a volume, as written to `config.toml`.
pub fn spec_text(v: &VolumeSpec) -> String {
    format!("{}:{}", v.path.display(), cap_text(v.cap))
}

/// Volumes as `PATH:CAP` strings in `config.toml`, with the offending text in errors.
pub mod spec_list {
    use super::{VolumeSpec, spec_text};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write each volume as its `PATH:CAP` text.
    pub fn serialize<S: Serializer>(vols: &[VolumeSpec], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(vols.iter().map(spec_text))
    }

    /// Parse each string with [`VolumeSpec::parse`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<VolumeSpec>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| VolumeSpec::parse(s).map_err(D::Error::custom))
            .collect()
    }
}

/// Check that `path` is an existing, writable directory and return its absolute form.
///
/// A missing directory is an error, never created: a volume is usually a
/// mounted disk, and creating the mount point's directory on the root disk
/// would quietly fill the wrong filesystem.
pub fn check_volume_dir(path: &Path) -> anyhow::Result<PathBuf> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "volume directory {} does not exist (create it or mount the disk first)",
                path.display()
            )
        }
        Err(e) => bail!("volume directory {} is not usable: {e}", path.display()),
    };
    if !meta.is_dir() {
        bail!("volume path {} is not a directory", path.display());
    }
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("volume directory {}", path.display()))?;
    // Permission bits do not stop root, so try a real write.
    let probe = abs.join(format!(".ifs-write-probe-{}", std::process::id()));
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|f| f.sync_all());
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = res {
        bail!("volume directory {} is not writable: {e}", path.display());
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_percents() {
        assert_eq!(VolumeSpec::parse("/a").unwrap().cap, Cap::Percent(100));
        assert_eq!(VolumeSpec::parse("/a:25%").unwrap().cap, Cap::Percent(25));
        assert_eq!(
            VolumeSpec::parse("/a:10G").unwrap().cap,
            Cap::Bytes(10 << 30)
        );
        assert_eq!(
            VolumeSpec::parse("/a:10GiB").unwrap().cap,
            Cap::Bytes(10 << 30)
        );
        assert_eq!(
            VolumeSpec::parse("/a:10GB").unwrap().cap,
            Cap::Bytes(10_000_000_000)
        );
        assert_eq!(VolumeSpec::parse("/a:4096").unwrap().cap, Cap::Bytes(4096));
        assert_eq!(
            VolumeSpec::parse("rel/dir:1tib").unwrap().path,
            PathBuf::from("rel/dir")
        );
    }

    #[test]
    fn rejects_bad_specs_with_the_spec_in_the_message() {
        for bad in [
            "/a:0%",
            "/a:101%",
            "/a:12XB",
            "/a:",
            "/a:-5",
            ":10G",
            "/a:99999999999T",
        ] {
            let err = format!("{:#}", VolumeSpec::parse(bad).unwrap_err());
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn spec_text_round_trips() {
        for cap in [
            Cap::Percent(10),
            Cap::Bytes(500 << 30),
            Cap::Bytes(1_000_000_000),
            Cap::Bytes(7),
            Cap::Bytes(0),
        ] {
            let v = VolumeSpec {
                path: "/srv/x".into(),
                cap,
            };
            assert_eq!(VolumeSpec::parse(&spec_text(&v)).unwrap(), v);
        }
        assert_eq!(cap_text(Cap::Bytes(3 << 40)), "3TiB");
    }

    #[test]
    fn volume_dir_checks_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = check_volume_dir(&missing).unwrap_err().to_string();
        assert!(
            err.contains("does not exist") && err.contains(&*missing.to_string_lossy()),
            "{err}"
        );

        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = check_volume_dir(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        assert!(check_volume_dir(&file.join("sub")).is_err());

        let ok = check_volume_dir(tmp.path()).unwrap();
        assert!(ok.is_absolute());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "probe file left behind"
        );
    }
}
