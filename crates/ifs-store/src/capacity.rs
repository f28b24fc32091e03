//! Capacity accounting: how much each volume may still take, given its cap,
//! what IFS already keeps there and how full the owner has made the disk.
//! Pure functions over numbers read from statvfs, so the rules are testable.

use crate::Cap;
use std::path::PathBuf;

/// A filesystem as statvfs saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStat {
    /// Identifies the filesystem, so volumes sharing one share its headroom.
    pub id: u64,
    /// Total bytes.
    pub size: u64,
    /// Bytes an unprivileged writer may still use.
    pub avail: u64,
}

/// The inputs for one volume.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VolumeInput {
    pub cap: Cap,
    pub used: u64,
    pub fs: FsStat,
}

/// The capacity of one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeCapacity {
    /// The volume directory, as configured.
    pub path: PathBuf,
    /// The id in the volume's marker file.
    pub volume_id: crate::VolumeId,
    /// The cap resolved to bytes.
    pub cap: u64,
    /// Bytes of committed pieces on this volume.
    pub used: u64,
    /// Bytes of files here that belong to no chunk any more but could not
    /// be removed (held back from `free` until they are).
    pub unremoved: u64,
    /// What IFS may hold here now: `used + free`, or less than `used` when
    /// the owner has eaten into the reserve.
    pub donated: u64,
    /// Bytes a new piece may still take here.
    pub free: u64,
    /// Size of the volume's filesystem.
    pub fs_size: u64,
    /// Free bytes on the volume's filesystem.
    pub fs_avail: u64,
    /// Percent of the filesystem used by anything other than IFS.
    pub owner_need_pct: u8,
    /// Files in the volume's quarantine (piece files no row named on open).
    pub quarantined_files: u64,
    /// Bytes in the volume's quarantine; not part of `used`.
    pub quarantined_bytes: u64,
}

/// The node's capacity: what it reports to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Sum of the volumes' donated bytes.
    pub donated: u64,
    /// Bytes of committed chunks.
    pub used: u64,
    /// Bytes held by live reservations and not yet written.
    pub reserved: u64,
    /// Bytes of piece files whose chunk was deleted (or never committed)
    /// but which could not be removed; retried on later deletes and sweeps
    /// and on the next open. Never part of `used`, always held back from `free`.
    pub unremoved: u64,
    /// How many such files there are.
    pub unremoved_files: u64,
    /// `donated − used − unremoved − reserved`, or 0 when that is negative.
    pub free: u64,
    /// How far `used + unremoved + reserved` exceeds `donated`: what the node
    /// should offload because its owner shrank the donation or filled the disk.
    pub excess: u64,
    /// Percent of the volumes' filesystems used by the owner (weighted by size).
    pub owner_need_pct: u8,
    /// Files in the volumes' quarantines: kept, reported, never counted as used.
    pub quarantined_files: u64,
    /// Bytes in the volumes' quarantines.
    pub quarantined_bytes: u64,
    /// Per-volume detail, in configuration order.
    pub volumes: Vec<VolumeCapacity>,
}

/// Resolves a cap to bytes on a filesystem of `fs_size` bytes.
pub(crate) fn cap_bytes(cap: Cap, fs_size: u64) -> u64 {
    match cap {
        Cap::Bytes(b) => b,
        Cap::Percent(p) => (fs_size as u128 * p.min(100) as u128 / 100) as u64,
    }
}

/// Donated and free bytes per volume, in input order.
///
/// Per filesystem the headroom is `avail − reserve·size`; volumes on the same
/// filesystem draw on it in order, so two directories on one disk never count
/// its free space twice. A negative headroom (the owner filled the disk)
/// lowers `donated` below `used` once per filesystem.
pub(crate) fn donated_and_free(inputs: &[VolumeInput], reserve_pct: u8) -> Vec<(u64, u64)> {
    let mut headroom: Vec<(u64, i128)> = Vec::new();
    let mut out = Vec::with_capacity(inputs.len());
    for v in inputs {
        let idx = match headroom.iter().position(|(id, _)| *id == v.fs.id) {
            Some(i) => i,
            None => {
                let reserve = v.fs.size as i128 * reserve_pct as i128 / 100;
                headroom.push((v.fs.id, v.fs.avail as i128 - reserve));
                headroom.len() - 1
            }
        };
        let room = &mut headroom[idx].1;
        let cap_room = cap_bytes(v.cap, v.fs.size) as i128 - v.used as i128;
        let grow = cap_room.min(*room);
        let donated = (v.used as i128 + grow).max(0);
        let free = grow.max(0);
        // Consume what this volume took (or the shortfall it absorbed) so the
        // next volume on the same filesystem sees only what is left.
        *room -= grow.max(0);
        if *room < 0 {
            *room += v.used as i128 - donated.min(v.used as i128);
            *room = (*room).min(0);
        }
        out.push((donated as u64, free as u64));
    }
    out
}

/// Percent of a filesystem used by things other than IFS's `ifs_used` bytes.
pub(crate) fn owner_need_pct(fs: FsStat, ifs_used: u64) -> u8 {
    if fs.size == 0 {
        return 0;
    }
    let owner = fs.size.saturating_sub(fs.avail).saturating_sub(ifs_used);
    (owner as u128 * 100 / fs.size as u128).min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    fn vol(cap: Cap, used: u64, id: u64, size: u64, avail: u64) -> VolumeInput {
        VolumeInput {
            cap,
            used,
            fs: FsStat { id, size, avail },
        }
    }

    #[test]
    fn cap_binds_when_disk_is_roomy() {
        let out = donated_and_free(
            &[vol(Cap::Bytes(10 * GB), 4 * GB, 1, 100 * GB, 80 * GB)],
            10,
        );
        assert_eq!(out, vec![(10 * GB, 6 * GB)]);
    }

    #[test]
    fn owner_reserve_wins_over_cap() {
        // 100 GB disk, 12 GB free, 10% reserve: only 2 GB more may be used.
        let out = donated_and_free(&[vol(Cap::Percent(50), 5 * GB, 1, 100 * GB, 12 * GB)], 10);
        assert_eq!(out, vec![(7 * GB, 2 * GB)]);
    }

    #[test]
    fn owner_filling_the_disk_shrinks_donation_below_use() {
        let out = donated_and_free(
            &[vol(Cap::Bytes(50 * GB), 20 * GB, 1, 100 * GB, 4 * GB)],
            10,
        );
        assert_eq!(out, vec![(14 * GB, 0)]);
    }

    #[test]
    fn volumes_on_one_filesystem_share_its_headroom() {
        let a = vol(Cap::Bytes(50 * GB), 0, 7, 100 * GB, 30 * GB);
        let b = vol(Cap::Bytes(50 * GB), 0, 7, 100 * GB, 30 * GB);
        let out = donated_and_free(&[a, b], 10);
        assert_eq!(out, vec![(20 * GB, 20 * GB), (0, 0)]);
        let total: u64 = out.iter().map(|(_, f)| f).sum();
        assert_eq!(total, 20 * GB);
    }

    #[test]
    fn owner_need_excludes_ifs_bytes() {
        let fs = FsStat {
            id: 1,
            size: 100 * GB,
            avail: 50 * GB,
        };
        assert_eq!(owner_need_pct(fs, 20 * GB), 30);
        assert_eq!(
            owner_need_pct(
                FsStat {
                    id: 1,
                    size: 0,
                    avail: 0
                },
                0
            ),
            0
        );
    }

    proptest::proptest! {
        #[test]
        fn free_never_breaks_cap_or_reserve(
            vols in proptest::collection::vec((0u64..1000, 0u64..1000, 0u64..3), 1..5),
            size in 1u64..5000,
            avail_frac in 0u64..=100,
            reserve in 0u8..50,
        ) {
            let avail = size * avail_frac / 100;
            let inputs: Vec<_> = vols
                .iter()
                .map(|(cap, used, fs)| vol(Cap::Bytes(*cap), *used, *fs, size, avail))
                .collect();
            let out = donated_and_free(&inputs, reserve);
            let headroom = avail.saturating_sub(size * reserve as u64 / 100);
            for fs in 0..3 {
                let on_fs = inputs.iter().zip(&out).filter(|(i, _)| i.fs.id == fs);
                let free: u64 = on_fs.clone().map(|(_, o)| o.1).sum();
                proptest::prop_assert!(free <= headroom, "owner reserve kept");
                for (i, (donated, f)) in on_fs {
                    let cap = cap_bytes(i.cap, size);
                    proptest::prop_assert!(*f <= cap.saturating_sub(i.used), "cap kept");
                    proptest::prop_assert!(*donated <= cap, "never donates above the cap");
                    proptest::prop_assert_eq!(donated.saturating_sub(i.used), *f);
                }
            }
        }
    }
}
