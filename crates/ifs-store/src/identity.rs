//! Volume identity: the marker file `V/.ifs-volume` that names a volume
//! directory, so the local table finds a volume by what it is rather than by
//! the path string it was configured with.
//!
//! The marker is a few lines of text:
//!
//! ```text
//! ifs-volume
//! format = 1
//! volume = <32 hex digits: this volume's random id>
//! store = <32 hex digits: the id of the local table that owns it>
//! ```
//!
//! It is written once, when a volume is first taken into use (or when a
//! volume from before markers is migrated), through a temp file, fsync and
//! rename, and read on every open.

use crate::error::{StoreError, StoreResult, io_err};
use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// File name of the marker, at the top of the volume directory.
pub const MARKER_FILE: &str = ".ifs-volume";
/// The marker format this code writes and reads.
pub const MARKER_FORMAT: u32 = 1;
const MAGIC: &str = "ifs-volume";
/// Largest marker accepted; anything bigger is not one.
const MAX_MARKER_LEN: u64 = 4096;

/// A random 128-bit id: of one volume, or of one store's local table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeId(pub [u8; 16]);

/// The id of a local table (`store.redb`); a volume's marker names the table
/// that owns it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreId(pub [u8; 16]);

macro_rules! hex_id {
    ($t:ident) => {
        impl $t {
            /// A fresh random id.
            pub fn random() -> Self {
                $t(rand::random())
            }

            fn parse(text: &str) -> Option<Self> {
                let bytes = hex::decode(text.trim()).ok()?;
                Some($t(bytes.try_into().ok()?))
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($t), "({})"),
                    hex::encode(&self.0[..6])
                )
            }
        }
    };
}

hex_id!(VolumeId);
hex_id!(StoreId);

/// What a volume's marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    pub volume: VolumeId,
    pub store: StoreId,
}

/// Where the marker of the volume directory `dir` lives.
pub(crate) fn marker_path(dir: &Path) -> PathBuf {
    dir.join(MARKER_FILE)
}

fn tmp_path(dir: &Path) -> PathBuf {
    dir.join(format!("{MARKER_FILE}.tmp"))
}

impl Marker {
    fn to_text(self) -> String {
        format!(
            "{MAGIC}\nformat = {MARKER_FORMAT}\nvolume = {}\nstore = {}\n",
            self.volume, self.store
        )
    }

    /// Parses a marker's text; the error says what is wrong with it.
    fn parse(text: &str) -> Result<Marker, &'static str> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(MAGIC) {
            return Err("not an ifs volume marker");
        }
        let (mut format, mut volume, mut store) = (None, None, None);
        for line in lines {
            let Some((key, value)) = line.split_once('=') else {
                return Err("malformed line");
            };
            match key.trim() {
                "format" => format = Some(value.trim().parse::<u32>().map_err(|_| "bad format")?),
                "volume" => volume = Some(VolumeId::parse(value).ok_or("bad volume id")?),
                "store" => store = Some(StoreId::parse(value).ok_or("bad store id")?),
                // Later formats may add fields; the version below decides.
                _ => {}
            }
        }
        match format {
            None => return Err("no format version"),
            Some(MARKER_FORMAT) => {}
            Some(_) => return Err("written by a newer version of ifs"),
        }
        Ok(Marker {
            volume: volume.ok_or("no volume id")?,
            store: store.ok_or("no store id")?,
        })
    }

    /// Reads the marker of volume directory `dir`; `None` when there is none.
    pub fn read(dir: &Path) -> StoreResult<Option<Marker>> {
        let path = marker_path(dir);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let bad = |reason| StoreError::VolumeMarkerBad {
            path: path.clone(),
            reason,
        };
        if !meta.is_file() {
            return Err(bad("not a regular file"));
        }
        if meta.len() > MAX_MARKER_LEN {
            return Err(bad("too large"));
        }
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text"))?;
        Marker::parse(text).map(Some).map_err(bad)
    }

    /// Writes the marker into volume directory `dir` durably: temp file,
    /// fsync, rename, fsync of the directory.
    pub fn write(self, dir: &Path) -> StoreResult<()> {
        let tmp = tmp_path(dir);
        let path = marker_path(dir);
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(self.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    }

    /// Removes a marker temp file left by a crash (the store's own file).
    pub fn clear_tmp(dir: &Path) -> StoreResult<()> {
        crate::volume::remove_file(&tmp_path(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_garbage_is_named() {
        let m = Marker {
            volume: VolumeId::random(),
            store: StoreId::random(),
        };
        assert_eq!(Marker::parse(&m.to_text()), Ok(m));
        assert_eq!(Marker::parse(""), Err("not an ifs volume marker"));
        assert_eq!(
            Marker::parse("ifs-volume\nformat = 1\n"),
            Err("no volume id")
        );
        let newer = m.to_text().replace("format = 1", "format = 7");
        assert_eq!(
            Marker::parse(&newer),
            Err("written by a newer version of ifs")
        );
        let short = m.to_text().replace(&m.volume.to_string(), "abcd");
        assert_eq!(Marker::parse(&short), Err("bad volume id"));
    }

    #[test]
    fn read_and_write() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Marker::read(dir.path()).unwrap(), None);
        let m = Marker {
            volume: VolumeId::random(),
            store: StoreId::random(),
        };
        m.write(dir.path()).unwrap();
        assert_eq!(Marker::read(dir.path()).unwrap(), Some(m));
        fs::write(marker_path(dir.path()), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            Marker::read(dir.path()),
            Err(StoreError::VolumeMarkerBad { .. })
        ));
    }
}
