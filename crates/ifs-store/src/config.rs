//! Store configuration: the data directory, the volumes with their caps, the
//! owner reserve and the piece size. `VolumeSpec::parse` reads the
//! `PATH[:SIZE|PCT]` form used on the command line and in config files.

use std::path::PathBuf;

/// Default share of each filesystem kept free for the machine's owner.
pub const DEFAULT_OWNER_RESERVE_PCT: u8 = 10;
/// Default largest piece a chunk is cut into (4 MiB).
pub const DEFAULT_PIECE_SIZE: u64 = 4 << 20;

/// How much of a volume IFS may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage (1–100) of the volume's filesystem size.
    Percent(u8),
}

/// One volume: a directory and its cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The directory pieces are written under (it must already exist).
    pub path: PathBuf,
    /// How much of it IFS may use.
    pub cap: Cap,
}

/// A malformed volume spec or size; the message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// The spec has an empty path.
    #[error("volume spec {0:?}: empty path")]
    EmptyPath(String),
    /// The size part is not a number with an optional unit (B, K, KiB, KB, M, ... T).
    #[error("volume spec {input:?}: bad size {size:?} (expected e.g. 500MiB, 50G or 30%)")]
    BadSize {
        /// The whole spec.
        input: String,
        /// The part after the colon.
        size: String,
    },
    /// A percentage outside 1–100.
    #[error("volume spec {input:?}: percent must be 1-100")]
    BadPercent {
        /// The whole spec.
        input: String,
    },
    /// The owner reserve is not below 100%.
    #[error("owner reserve {0}% must be below 100%")]
    BadReserve(u8),
    /// The piece size is zero.
    #[error("piece size must be at least 1 byte")]
    BadPieceSize,
}

impl VolumeSpec {
    /// Parses `PATH`, `PATH:SIZE` or `PATH:PCT%`.
    ///
    /// Sizes take an optional unit: `K`/`M`/`G`/`T` and `KiB`.. `TiB` are
    /// powers of 1024, `KB`.. `TB` powers of 1000; a fraction is allowed
    /// (`1.5G`). Without a size the volume may fill its filesystem up to the
    /// owner reserve (`Cap::Percent(100)`).
    pub fn parse(input: &str) -> Result<Self, SpecError> {
        let (path, cap) = match input.rsplit_once(':') {
            Some((path, size)) => (path, parse_cap(input, size)?),
            None => (input, Cap::Percent(100)),
        };
        if path.is_empty() {
            return Err(SpecError::EmptyPath(input.to_string()));
        }
        Ok(VolumeSpec {
            path: PathBuf::from(path),
            cap,
        })
    }
}

impl std::str::FromStr for VolumeSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_cap(input: &str, size: &str) -> Result<Cap, SpecError> {
    let bad = || SpecError::BadSize {
        input: input.to_string(),
        size: size.to_string(),
    };
    let size = size.trim();
    if let Some(pct) = size.strip_suffix('%') {
        let pct: u8 = pct.trim().parse().map_err(|_| bad())?;
        if pct == 0 || pct > 100 {
            return Err(SpecError::BadPercent {
                input: input.to_string(),
            });
        }
        return Ok(Cap::Percent(pct));
    }
    let split = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| bad())?;
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(bad());
        }
        bytes as u64
    } else {
        let value: u64 = number.parse().map_err(|_| bad())?;
        value.checked_mul(multiplier).ok_or_else(bad)?
    };
    Ok(Cap::Bytes(bytes))
}

/// Everything the store needs to open.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory holding the local table (`store.redb`); created if absent.
    pub data_dir: PathBuf,
    /// The volumes pieces are spread over; the order is the tie-break when
    /// two volumes have the same free space.
    pub volumes: Vec<VolumeSpec>,
    /// Share of every filesystem (percent) that stays free for the owner.
    pub owner_reserve_pct: u8,
    /// Largest piece a chunk is cut into.
    pub piece_size: u64,
    /// Capacity of the channel feeding the store's actor.
    pub queue_depth: usize,
    /// Test-only crash injection; `None` in production.
    pub fault: Option<crate::FaultPoint>,
}

impl StoreConfig {
    /// A config with the defaults: 10% owner reserve, 4 MiB pieces.
    pub fn new(data_dir: impl Into<PathBuf>, volumes: Vec<VolumeSpec>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            volumes,
            owner_reserve_pct: DEFAULT_OWNER_RESERVE_PCT,
            piece_size: DEFAULT_PIECE_SIZE,
            queue_depth: 256,
            fault: None,
        }
    }

    /// Checks the values that do not need the disk.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.owner_reserve_pct >= 100 {
            return Err(SpecError::BadReserve(self.owner_reserve_pct));
        }
        if self.piece_size == 0 {
            return Err(SpecError::BadPieceSize);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(s: &str) -> Cap {
        VolumeSpec::parse(s).unwrap().cap
    }

    #[test]
    fn parses_sizes_and_percentages() {
        assert_eq!(cap("/data/a"), Cap::Percent(100));
        assert_eq!(cap("/data/a:50G"), Cap::Bytes(50 << 30));
        assert_eq!(cap("/data/a:500MiB"), Cap::Bytes(500 << 20));
        assert_eq!(cap("/data/a:2GB"), Cap::Bytes(2_000_000_000));
        assert_eq!(cap("/data/a:1.5K"), Cap::Bytes(1536));
        assert_eq!(cap("/data/a:4096"), Cap::Bytes(4096));
        assert_eq!(cap("/data/a:30%"), Cap::Percent(30));
        assert_eq!(
            VolumeSpec::parse("/data/a:30%").unwrap().path,
            PathBuf::from("/data/a")
        );
    }

    #[test]
    fn errors_name_the_input() {
        let err = VolumeSpec::parse("/data/a:lots").unwrap_err();
        assert!(err.to_string().contains("/data/a:lots"), "{err}");
        assert!(matches!(
            VolumeSpec::parse("/x:0%"),
            Err(SpecError::BadPercent { .. })
        ));
        assert!(matches!(
            VolumeSpec::parse("/x:101%"),
            Err(SpecError::BadPercent { .. })
        ));
        assert!(matches!(
            VolumeSpec::parse(":5G"),
            Err(SpecError::EmptyPath(_))
        ));
        assert!(matches!(
            VolumeSpec::parse("/x:99999999999T"),
            Err(SpecError::BadSize { .. })
        ));
        assert!(matches!(
            VolumeSpec::parse("/x:5Q"),
            Err(SpecError::BadSize { .. })
        ));
    }
}
