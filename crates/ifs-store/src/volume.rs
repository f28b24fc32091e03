//! One volume directory on disk: checks before use, statvfs, where piece and
//! temp files go, and the piece-file I/O that runs off the actor thread.
//!
//! Layout under a volume `V`: `V/.ifs-volume` names the volume (see
//! [`crate::identity`]), `V/ifs/pieces/<2 hex>/<chunk>.<index>.<nonce>` holds
//! committed pieces, `V/ifs/tmp/` files being written, and
//! `V/ifs/quarantine/` piece files no committed row names, moved there on
//! open instead of being deleted. The nonce keeps two concurrent writes of
//! one chunk from touching the same file.

use crate::VolumeSpec;
use crate::capacity::FsStat;
use crate::direct;
use crate::error::{StoreError, StoreResult, io_err};
use crate::identity::VolumeId;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A configured, checked volume.
#[derive(Clone, Debug)]
pub(crate) struct Volume {
    /// Stable id used in piece rows.
    pub id: u16,
    /// What the configuration said.
    pub spec: VolumeSpec,
    /// `spec.path` with symlinks, `..` and trailing slashes resolved.
    pub dir: PathBuf,
    /// The id in the volume's marker.
    pub uuid: VolumeId,
    /// Files in the quarantine directory.
    pub quarantined_files: u64,
    /// Bytes in the quarantine directory.
    pub quarantined_bytes: u64,
    /// `dir/ifs`.
    root: PathBuf,
}

impl Volume {
    /// Checks that `spec.path` is an existing, writable directory, without
    /// writing anything (so a bad volume leaves every other one untouched),
    /// and returns its canonical path.
    pub fn check(spec: &VolumeSpec) -> StoreResult<PathBuf> {
        let path = &spec.path;
        let meta = match fs::metadata(path) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => return Err(StoreError::VolumeMissing { path: path.clone() }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::VolumeMissing { path: path.clone() });
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        // A directory with no write bit is the owner saying "do not write
        // here"; honour it even when running as root, which access() would not.
        let no_write_bits = meta.permissions().mode() & 0o222 == 0;
        if no_write_bits || statvfs(path)?.read_only || !access_writable(path) {
            return Err(StoreError::VolumeReadOnly { path: path.clone() });
        }
        fs::canonicalize(path).map_err(io_err(path))
    }

    /// Creates the volume's own directories.
    pub fn prepare(id: u16, uuid: VolumeId, spec: VolumeSpec, dir: PathBuf) -> StoreResult<Volume> {
        let root = dir.join("ifs");
        for dir in [
            root.join("pieces"),
            root.join("tmp"),
            root.join("quarantine"),
        ] {
            fs::create_dir_all(&dir).map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                    StoreError::VolumeReadOnly {
                        path: spec.path.clone(),
                    }
                }
                _ => io_err(&dir)(e),
            })?;
        }
        let mut vol = Volume {
            id,
            spec,
            dir,
            uuid,
            quarantined_files: 0,
            quarantined_bytes: 0,
            root,
        };
        (vol.quarantined_files, vol.quarantined_bytes) = vol.scan_quarantine()?;
        Ok(vol)
    }

    /// The filesystem holding this volume.
    pub fn fs_stat(&self) -> StoreResult<FsStat> {
        let s = statvfs(&self.spec.path)?;
        Ok(s.stat)
    }

    /// Where a committed piece named `name` lives.
    pub fn piece_path(&self, name: &str) -> PathBuf {
        let shard = name.get(..2).unwrap_or("__");
        self.root.join("pieces").join(shard).join(name)
    }

    /// A fresh temp file path for a piece being written.
    pub fn tmp_path(&self, name: &str) -> PathBuf {
        self.root.join("tmp").join(format!("{name}.tmp"))
    }

    /// Deletes everything in the temp directory (left by a crash).
    pub fn clear_tmp(&self) -> StoreResult<usize> {
        let dir = self.root.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            remove_file(&entry.path())?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Every file in this volume's piece directory.
    pub fn list_pieces(&self) -> StoreResult<Vec<FoundPiece>> {
        list_pieces_in(&self.root.join("pieces"))
    }

    /// Moves a piece file no row names into the quarantine directory, under
    /// its own name (with a numeric suffix if that is taken).
    pub fn quarantine(&mut self, piece: &FoundPiece) -> StoreResult<()> {
        let (from, name) = (&piece.path, &piece.name);
        let dir = self.root.join("quarantine");
        let mut to = dir.join(name);
        let mut n = 1u32;
        while fs::symlink_metadata(&to).is_ok() {
            to = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(from, &to).map_err(io_err(from))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        self.quarantined_files += 1;
        self.quarantined_bytes += piece.len;
        Ok(())
    }

    /// Files and bytes in the quarantine directory.
    fn scan_quarantine(&self) -> StoreResult<(u64, u64)> {
        let dir = self.root.join("quarantine");
        let (mut files, mut bytes) = (0, 0);
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let meta = entry.metadata().map_err(io_err(entry.path()))?;
            if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
        Ok((files, bytes))
    }
}

/// How many piece files the volume directory `dir` holds (0 when it has no
/// piece directory at all).
pub(crate) fn count_piece_files(dir: &Path) -> StoreResult<u64> {
    let pieces = dir.join("ifs").join("pieces");
    if !pieces.is_dir() {
        return Ok(0);
    }
    Ok(list_pieces_in(&pieces)?.len() as u64)
}

/// A file found in a volume's piece directory.
pub(crate) struct FoundPiece {
    /// Its file name (lossy if it is not UTF-8, then no row can name it).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its length.
    pub len: u64,
}

fn list_pieces_in(dir: &Path) -> StoreResult<Vec<FoundPiece>> {
    let mut out = Vec::new();
    for shard in fs::read_dir(dir).map_err(io_err(dir))? {
        let shard = shard.map_err(io_err(dir))?.path();
        if !shard.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&shard).map_err(io_err(&shard))? {
            let entry = entry.map_err(io_err(&shard))?;
            let path = entry.path();
            let len = entry.metadata().map_err(io_err(&path))?.len();
            out.push(FoundPiece {
                name: entry.file_name().to_string_lossy().into_owned(),
                path,
                len,
            });
        }
    }
    Ok(out)
}

/// Writes one piece durably: temp file, fsync, rename, fsync of the directory.
/// The data goes through `O_DIRECT` where the filesystem allows it
/// (see [`crate::direct`]).
pub(crate) fn write_piece(tmp: &Path, dest: &Path, data: &[u8]) -> StoreResult<()> {
    direct::write_file(tmp, data).map_err(io_err(tmp))?;
    let dir = dest.parent().unwrap_or(dest);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::rename(tmp, dest).map_err(io_err(dest))?;
    // The rename is only durable once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Outcome of reading one piece.
pub(crate) enum PieceRead {
    /// The bytes were appended to the buffer.
    Ok,
    /// The file is absent.
    Missing,
    /// The file has the wrong length.
    WrongLength,
}

/// Appends a piece to `out`, checking its length.
/// Reads with `O_DIRECT` where the filesystem allows it, so a scrub checks
/// the disk rather than a cached copy.
pub(crate) fn read_piece(path: &Path, len: u64, out: &mut Vec<u8>) -> StoreResult<PieceRead> {
    let file = match direct::open(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(PieceRead::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    let (direct::Opened::Direct(f) | direct::Opened::Buffered(f)) = &file;
    let on_disk = f.metadata().map_err(io_err(path))?.len();
    if on_disk != len {
        return Ok(PieceRead::WrongLength);
    }
    let Ok(len) = usize::try_from(len) else {
        return Ok(PieceRead::WrongLength);
    };
    let got = direct::read_into(path, file, len, out).map_err(io_err(path))?;
    if got != len {
        return Ok(PieceRead::WrongLength);
    }
    Ok(PieceRead::Ok)
}

/// Removes a file; absent is fine.
pub(crate) fn remove_file(path: &Path) -> StoreResult<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

struct Statvfs {
    stat: FsStat,
    read_only: bool,
}

fn c_path(path: &Path) -> StoreResult<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

fn statvfs(path: &Path) -> StoreResult<Statvfs> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated string and `buf` a properly sized
    // out-parameter that statvfs fills in full on success.
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(io_err(path)(std::io::Error::last_os_error()));
    }
    let dev = fs::metadata(path).map_err(io_err(path))?.dev();
    let frsize = buf.f_frsize as u64;
    Ok(Statvfs {
        stat: FsStat {
            id: dev,
            size: (buf.f_blocks as u64).saturating_mul(frsize),
            avail: (buf.f_bavail as u64).saturating_mul(frsize),
        },
        read_only: buf.f_flag & libc::ST_RDONLY != 0,
    })
}

fn access_writable(path: &Path) -> bool {
    let Ok(c) = c_path(path) else { return false };
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}
