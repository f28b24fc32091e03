//! How big a volume's filesystem is and how much of it is free, for the
//! warnings `check` and `run` give about caps the disk cannot honour and
//! for the share of a disk each `devnet` node gets.

use crate::config::Config;
use crate::volume::Cap;
use std::path::Path;

/// Size and bytes available to unprivileged users of the filesystem
/// holding `path`.
pub fn space(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// Most a filesystem of `size` bytes can donate with `reserve_pct` kept
/// for its owner.
pub fn donatable(size: u64, reserve_pct: u8) -> u64 {
    size / 100 * u64::from(100 - reserve_pct.min(100))
}

/// One line per volume whose byte cap exceeds what its filesystem can ever
/// donate (the node quietly holds it to the disk's size less the owner
/// reserve).
pub fn cap_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for v in &config.volumes {
        let Cap::Bytes(cap) = v.cap else { continue };
        let Ok((size, _)) = space(&v.path) else {
            continue;
        };
        let most = donatable(size, config.owner_reserve_pct);
        if cap > most {
            out.push(format!(
                "volume {}: cap {} is more than its filesystem can give ({} of {}, with {}% kept for the owner); \
                 the node donates at most {}",
                v.path.display(),
                crate::human::bytes(cap),
                crate::human::bytes(most),
                crate::human::bytes(size),
                config.owner_reserve_pct,
                crate::human::bytes(most)
            ));
        }
    }
    out
}

/// The cap each of `nodes` nodes sharing the filesystem of `dir` gets in a
/// devnet: the free space beyond the owner reserve split evenly, at most
/// the 10% a default volume gets, at least 1 MiB, in whole MiB.
pub fn fair_share(dir: &Path, nodes: u16, reserve_pct: u8) -> std::io::Result<u64> {
    let (size, avail) = space(dir)?;
    let headroom = avail.saturating_sub(size / 100 * u64::from(reserve_pct));
    let share = (headroom / u64::from(nodes.max(1))).min(size / 10);
    Ok((share >> 20).max(1) << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_disk_is_split_between_devnet_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let (size, avail) = space(dir.path()).unwrap();
        assert!(size >= avail && size > 0);
        let one = fair_share(dir.path(), 1, 10).unwrap();
        let five = fair_share(dir.path(), 5, 10).unwrap();
        assert!(five <= one && five <= avail / 5 + (1 << 20), "{one} {five}");
        assert!(one <= size / 10 + (1 << 20));
    }
}
