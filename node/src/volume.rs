//! Volume specs (`PATH[:SIZE|PCT]`) and the checks a volume directory must pass.
//!
//! Parsed here until `ifs-store` exports its own `VolumeSpec`; the text syntax
//! is the same on the command line and in `config.toml`.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Cap of a volume given without one: this share of its filesystem.
/// Conservative on purpose; an owner donates more by saying so.
pub const DEFAULT_CAP_PCT: u8 = 10;

/// How many bytes a volume may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Cap {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage (1–100) of the size of the volume's filesystem.
    Percent(u8),
}

impl Default for Cap {
    fn default() -> Self {
        Cap::Percent(DEFAULT_CAP_PCT)
    }
}

/// Binary units first: `10G` means 10 GiB, as in most disk tools.
const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tib", 1 << 40),
    ("p", 1 << 50),
    ("pib", 1 << 50),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
];

impl FromStr for Cap {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let t = s.trim();
        if let Some(pct) = t.strip_suffix('%') {
            let n: u8 = pct
                .trim()
                .parse()
                .with_context(|| format!("bad cap {s:?}: percent must be a whole number 1-100"))?;
            if !(1..=100).contains(&n) {
                bail!("bad cap {s:?}: percent must be between 1 and 100");
            }
            return Ok(Cap::Percent(n));
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        if digits.is_empty() {
            bail!("bad cap {s:?}: expected a size like 500GiB or 250GB, or a percent like 20%");
        }
        let n: u64 = digits
            .parse()
            .with_context(|| format!("bad cap {s:?}: number too large"))?;
        let unit_lc = unit.trim().to_ascii_lowercase();
        let Some(&(_, mult)) = UNITS.iter().find(|(u, _)| *u == unit_lc) else {
            bail!(
                "bad cap {s:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB, PB or %)"
            );
        };
        let bytes = n
            .checked_mul(mult)
            .with_context(|| format!("bad cap {s:?}: more than 2^64 bytes"))?;
        if bytes == 0 {
            bail!("bad cap {s:?}: a volume must hold more than 0 bytes");
        }
        Ok(Cap::Bytes(bytes))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cap::Percent(p) => write!(f, "{p}%"),
            Cap::Bytes(b) => {
                for (name, mult) in [
                    ("PiB", 1u64 << 50),
                    ("TiB", 1 << 40),
                    ("GiB", 1 << 30),
                    ("MiB", 1 << 20),
                    ("KiB", 1 << 10),
                ] {
                    if b % mult == 0 {
                        return write!(f, "{}{name}", b / mult);
                    }
                }
                write!(f, "{b}B")
            }
        }
    }
}

impl TryFrom<String> for Cap {
    type Error = anyhow::Error;
    fn try_from(s: String) -> anyhow::Result<Self> {
        s.parse()
    }
}

impl From<Cap> for String {
    fn from(c: Cap) -> String {
        c.to_string()
    }
}

/// One volume: a directory and how much of it IFS may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// The directory pieces are written to.
    pub path: PathBuf,
    /// The most bytes IFS keeps there.
    #[serde(default)]
    pub cap: Cap,
}

impl VolumeSpec {
    /// Parse `PATH[:SIZE|PCT]`, e.g. `/mnt/disk1:500GiB` or `/srv/ifs:25%`.
    ///
    /// The cap is whatever follows the last `:`; a path that itself contains
    /// `:` therefore needs an explicit cap.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let (path, cap) = match spec.rsplit_once(':') {
            // One flat message: clap prints only the top error of a value parser.
            Some((path, cap)) => (
                path,
                cap.parse()
                    .map_err(|e| anyhow::anyhow!("bad volume spec {spec:?}: {e:#}"))?,
            ),
            None => (spec, Cap::default()),
        };
        if path.is_empty() {
            bail!("bad volume spec {spec:?}: empty path (expected PATH[:SIZE|PCT])");
        }
        Ok(VolumeSpec {
            path: PathBuf::from(path),
            cap,
        })
    }
}

impl fmt::Display for VolumeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.cap)
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
        assert_eq!(
            VolumeSpec::parse("/a").unwrap().cap,
            Cap::Percent(DEFAULT_CAP_PCT)
        );
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
            "/a:0",
            "/a:0%",
            "/a:101%",
            "/a:12XB",
            "/a:",
            "/a:-5",
            ":10G",
            "/a:99999999999P",
            "/a:1.5G",
        ] {
            let err = format!("{:#}", VolumeSpec::parse(bad).unwrap_err());
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn cap_text_round_trips() {
        for cap in [
            Cap::Percent(10),
            Cap::Bytes(500 << 30),
            Cap::Bytes(1_000_000_000),
            Cap::Bytes(7),
        ] {
            assert_eq!(cap.to_string().parse::<Cap>().unwrap(), cap);
        }
        assert_eq!(Cap::Bytes(3 << 40).to_string(), "3TiB");
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
