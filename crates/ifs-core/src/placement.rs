//! Placement: which candidate nodes receive a chunk's copies.
//!
//! A client probes candidates from the preliminary table, drops the ones
//! that cannot serve ([`check`] gives the [`Discard`] reason to log), scores
//! the rest with one documented function ([`score`]) and picks the best in
//! distinct address ranges first ([`rank`]), so one site or provider going
//! dark takes at most one copy with it.

use std::net::IpAddr;

/// A network neighbourhood: an IPv4 /24 or an IPv6 /48. Nodes in one range
/// likely share a site, a provider or a power feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrRange {
    /// The first three octets of an IPv4 address.
    V4([u8; 3]),
    /// The first six bytes of an IPv6 address.
    V6([u8; 6]),
}

impl AddrRange {
    /// The range of `ip` (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::v4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::v4(v4.octets()),
                None => {
                    let o = v6.octets();
                    AddrRange::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
                }
            },
        }
    }

    fn v4(o: [u8; 4]) -> Self {
        AddrRange::V4([o[0], o[1], o[2]])
    }
}

/// What a client knows of one candidate after probing it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Round-trip time; `None` if the probe got no answer.
    pub rtt_ms: Option<f64>,
    /// IP hop count; `None` if unknown.
    pub hops: Option<u32>,
    /// Free bytes from its report or reservation grant.
    pub free_bytes: u64,
    /// Its owner's current need for the disk, 0..=100.
    pub owner_need_pct: u8,
    /// Audit and transfer track record, 0 (bad) to 1 (good).
    pub reputation: f64,
    /// Its address range; `None` counts as a range of its own.
    pub range: Option<AddrRange>,
    /// Alive in the node table (not suspect or dead).
    pub alive: bool,
    /// Upload cap its owner set, bits per second; 0 when none (unlimited).
    pub up_bps: u64,
    /// Download cap its owner set, bits per second; 0 when none.
    pub down_bps: u64,
}

/// Limits a candidate must meet to be considered at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Bytes the chunk (or the whole reservation) needs.
    pub need_bytes: u64,
    /// Slowest acceptable round trip.
    pub max_rtt_ms: f64,
    /// Lowest acceptable reputation.
    pub min_reputation: f64,
    /// Highest acceptable owner need.
    pub max_owner_need_pct: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            need_bytes: 0,
            max_rtt_ms: 2_000.0,
            min_reputation: 0.2,
            max_owner_need_pct: 95,
        }
    }
}

/// Why a candidate was dropped, for the client's log.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum Discard {
    /// The node table marks it suspect or dead.
    #[error("not alive in the node table")]
    NotAlive,
    /// No answer to the probe.
    #[error("unreachable")]
    Unreachable,
    /// Answered, but too slowly.
    #[error("too slow: {rtt_ms:.1} ms round trip")]
    TooSlow {
        /// Measured round trip.
        rtt_ms: f64,
    },
    /// Not enough free space.
    #[error("no space: {free_bytes} bytes free, {need_bytes} needed")]
    NoSpace {
        /// What it has.
        free_bytes: u64,
        /// What the put needs.
        need_bytes: u64,
    },
    /// Fails too many audits or transfers.
    #[error("low reputation {reputation:.2}")]
    LowReputation {
        /// Its reputation.
        reputation: f64,
    },
    /// Its owner needs the disk.
    #[error("owner needs {owner_need_pct}% of the disk")]
    OwnerNeedsDisk {
        /// The owner's need.
        owner_need_pct: u8,
    },
}

/// Whether `c` may receive data under `p`, and if not, why.
pub fn check(c: &Candidate, p: &Policy) -> Result<(), Discard> {
    if !c.alive {
        return Err(Discard::NotAlive);
    }
    let rtt_ms = match c.rtt_ms {
        Some(r) if r.is_finite() && r >= 0.0 => r,
        _ => return Err(Discard::Unreachable),
    };
    if rtt_ms > p.max_rtt_ms {
        return Err(Discard::TooSlow { rtt_ms });
    }
    if c.free_bytes < p.need_bytes {
        return Err(Discard::NoSpace {
            free_bytes: c.free_bytes,
            need_bytes: p.need_bytes,
        });
    }
    // NaN reputation counts as zero: an unknown record earns no trust.
    let reputation = if c.reputation.is_nan() {
        0.0
    } else {
        c.reputation
    };
    if reputation < p.min_reputation {
        return Err(Discard::LowReputation { reputation });
    }
    if c.owner_need_pct > p.max_owner_need_pct {
        return Err(Discard::OwnerNeedsDisk {
            owner_need_pct: c.owner_need_pct,
        });
    }
    Ok(())
}

/// Weights of [`score`]'s terms; they sum to 1.
pub const WEIGHTS: ScoreWeights = ScoreWeights {
    latency: 0.30,
    hops: 0.10,
    space: 0.20,
    owner_need: 0.10,
    reputation: 0.20,
    upload: 0.07,
    download: 0.03,
};

/// A capped link scores ½ at this rate (bits per second): 25 Mbit/s, a
/// good home uplink.
pub const HALF_SCORE_BPS: f64 = 25e6;

/// Weights of the terms of [`score`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreWeights {
    /// Round trip: `50 / (50 + rtt_ms)`, 1 at 0 ms, ½ at 50 ms.
    pub latency: f64,
    /// IP hops: `4 / (4 + hops)`; unknown counts as ½.
    pub hops: f64,
    /// Headroom: `free / (free + 4·need)`, near 1 when the chunk is a small
    /// part of its free space; with no need given, 1.
    pub space: f64,
    /// Owner's spare: `1 − owner_need_pct / 100`.
    pub owner_need: f64,
    /// Reputation, clamped to 0..=1.
    pub reputation: f64,
    /// Upload cap: `up / (up + 25 Mbit/s)`, 1 when uncapped. Every copy is
    /// read back from its holder and the early hops of a chain forward it,
    /// so a node that sends slowly is chosen less.
    pub upload: f64,
    /// Download cap, the same curve: a slow receiver stalls a put's chain.
    pub download: f64,
}

/// The [`ScoreWeights::upload`] and [`ScoreWeights::download`] curve.
fn link_term(bps: u64) -> f64 {
    if bps == 0 {
        1.0
    } else {
        let b = bps as f64;
        b / (b + HALF_SCORE_BPS)
    }
}

/// Score of a candidate in 0..=1, higher is better: the [`WEIGHTS`]-weighted
/// sum of its latency, hop, headroom, owner-spare, reputation and
/// bandwidth-cap terms.
/// Meaningful for candidates that pass [`check`].
pub fn score(c: &Candidate, p: &Policy) -> f64 {
    let rtt = c
        .rtt_ms
        .filter(|r| r.is_finite())
        .unwrap_or(f64::INFINITY)
        .max(0.0);
    let latency = 50.0 / (50.0 + rtt);
    let hops = c.hops.map_or(0.5, |h| 4.0 / (4.0 + f64::from(h)));
    let space = if p.need_bytes == 0 {
        1.0
    } else {
        let free = c.free_bytes as f64;
        free / (free + 4.0 * p.need_bytes as f64)
    };
    let owner = 1.0 - f64::from(c.owner_need_pct.min(100)) / 100.0;
    let reputation = if c.reputation.is_nan() {
        0.0
    } else {
        c.reputation.clamp(0.0, 1.0)
    };
    let w = WEIGHTS;
    w.latency * latency
        + w.hops * hops
        + w.space * space
        + w.owner_need * owner
        + w.reputation * reputation
        + w.upload * link_term(c.up_bps)
        + w.download * link_term(c.down_bps)
}

/// Every candidate that fails [`check`], with why, in input order.
pub fn discards(candidates: &[Candidate], p: &Policy) -> Vec<(usize, Discard)> {
    candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check(c, p).err().map(|d| (i, d)))
        .collect()
}

/// Indices of up to `n` candidates to use, best first. Only candidates that
/// pass [`check`] appear. The best of each address range comes before any
/// second node of a range already chosen; ties go to the lower index.
pub fn rank(candidates: &[Candidate], p: &Policy, n: usize) -> Vec<usize> {
    let mut ok: Vec<(usize, f64)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| check(c, p).is_ok())
        .map(|(i, c)| (i, score(c, p)))
        .collect();
    ok.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut picked = Vec::with_capacity(n.min(ok.len()));
    let mut ranges_used: Vec<AddrRange> = Vec::new();
    let mut rest = Vec::new();
    for &(i, _) in &ok {
        match candidates[i].range {
            Some(r) if ranges_used.contains(&r) => rest.push(i),
            Some(r) => {
                ranges_used.push(r);
                picked.push(i);
            }
            None => picked.push(i),
        }
    }
    // Second nodes in a range, still by score, only once every range has one.
    picked.extend(rest);
    picked.truncate(n);
    picked
}

#[cfg(test)]
mod tests;
