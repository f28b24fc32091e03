//! A node's signed capacity report, gossiped on `ifs/capacity/1`.

use serde::{Deserialize, Serialize};

use super::{WireError, ensure, sig_err, to_cbor, wire_codec};
use crate::ids::NodeId;
use crate::keys::{NodeKey, Sig, domain, verify};

const WHAT: &str = "capacity report";
/// Most listen addresses a report may carry.
pub const MAX_ADDRS: usize = 16;
/// Longest multiaddr text accepted.
pub const MAX_ADDR_LEN: usize = 256;
/// Longest version string accepted.
pub const MAX_VERSION_LEN: usize = 64;

/// The space and health figures of a report (everything but identity,
/// sequencing and addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityStats {
    /// Bytes the owner lets IFS use, over all volumes.
    pub donated_bytes: u64,
    /// Bytes held in committed chunks.
    pub used_bytes: u64,
    /// Bytes held for open reservations.
    pub reserved_bytes: u64,
    /// Bytes the node can still grant (`donated − used − reserved`, floored at 0).
    pub free_bytes: u64,
    /// How much of its disk the owner currently needs, 0..=100.
    pub owner_need_pct: u8,
    /// Upload cap the owner set for chunk traffic, bits per second; 0 when
    /// none (the node sends as fast as its connection does).
    pub bandwidth_bps: u64,
    /// Download cap the owner set, bits per second; 0 when none.
    pub bandwidth_down_bps: u64,
    /// Seconds since the node started.
    pub uptime_s: u64,
}

/// A node's signed, sequenced statement of its addresses and capacity.
/// Newer `seq` replaces older in the node table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The reporting node; the signer.
    pub node: NodeId,
    /// Strictly increasing per node, across restarts.
    pub seq: u64,
    /// Dialable multiaddrs, as text.
    pub addrs: Vec<String>,
    /// See [`CapacityStats::donated_bytes`].
    pub donated_bytes: u64,
    /// See [`CapacityStats::used_bytes`].
    pub used_bytes: u64,
    /// See [`CapacityStats::reserved_bytes`].
    pub reserved_bytes: u64,
    /// See [`CapacityStats::free_bytes`].
    pub free_bytes: u64,
    /// See [`CapacityStats::owner_need_pct`].
    pub owner_need_pct: u8,
    /// See [`CapacityStats::bandwidth_bps`].
    pub bandwidth_bps: u64,
    /// See [`CapacityStats::uptime_s`].
    pub uptime_s: u64,
    /// See [`CapacityStats::bandwidth_down_bps`]: present only when a
    /// download cap is set, so reports of nodes without one keep the
    /// encoding and signed bytes of reports written before the field (see
    /// [`CapacityReport::signed_bytes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_down_bps: Option<u64>,
    /// The node's software version.
    pub version: String,
    /// When the node issued it, ms since the Unix epoch (node's clock).
    pub issued_at_ms: u64,
    /// The node's signature over all of the above.
    pub sig: Sig,
}

wire_codec!(CapacityReport, WHAT, 8 * 1024);

impl CapacityReport {
    /// Build and sign a report for `key`'s node.
    pub fn new(
        key: &NodeKey,
        seq: u64,
        addrs: Vec<String>,
        stats: CapacityStats,
        version: String,
        issued_at_ms: u64,
    ) -> Self {
        let mut r = CapacityReport {
            node: key.node_id(),
            seq,
            addrs,
            donated_bytes: stats.donated_bytes,
            used_bytes: stats.used_bytes,
            reserved_bytes: stats.reserved_bytes,
            free_bytes: stats.free_bytes,
            owner_need_pct: stats.owner_need_pct,
            bandwidth_bps: stats.bandwidth_bps,
            uptime_s: stats.uptime_s,
            bandwidth_down_bps: (stats.bandwidth_down_bps > 0).then_some(stats.bandwidth_down_bps),
            version,
            issued_at_ms,
            sig: Sig([0; 64]),
        };
        r.sig = key.sign(domain::CAPACITY, &r.signed_bytes());
        r
    }

    /// The figures of this report.
    pub fn stats(&self) -> CapacityStats {
        CapacityStats {
            donated_bytes: self.donated_bytes,
            used_bytes: self.used_bytes,
            reserved_bytes: self.reserved_bytes,
            free_bytes: self.free_bytes,
            owner_need_pct: self.owner_need_pct,
            bandwidth_bps: self.bandwidth_bps,
            bandwidth_down_bps: self.bandwidth_down_bps.unwrap_or(0),
            uptime_s: self.uptime_s,
        }
    }

    /// The bytes the signature covers. The download cap, added after the
    /// first reports were signed, is appended only when present: a report
    /// without it signs exactly what older nodes signed and verify, so old
    /// and new reports without a download cap check everywhere.
    fn signed_bytes(&self) -> Vec<u8> {
        if let Some(down) = self.bandwidth_down_bps {
            return to_cbor(&(serde_bytes::Bytes::new(&self.signed_fields()), down));
        }
        self.signed_fields()
    }

    fn signed_fields(&self) -> Vec<u8> {
        to_cbor(&(
            &self.node,
            self.seq,
            &self.addrs,
            (
                self.donated_bytes,
                self.used_bytes,
                self.reserved_bytes,
                self.free_bytes,
            ),
            self.owner_need_pct,
            self.bandwidth_bps,
            self.uptime_s,
            &self.version,
            self.issued_at_ms,
        ))
    }

    /// Check structure and that `node` signed it.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.node.as_bytes(),
            domain::CAPACITY,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(self.addrs.len() <= MAX_ADDRS, WHAT, "too many addresses")?;
        ensure(
            self.addrs.iter().all(|a| a.len() <= MAX_ADDR_LEN),
            WHAT,
            "address too long",
        )?;
        ensure(
            self.version.len() <= MAX_VERSION_LEN,
            WHAT,
            "version too long",
        )?;
        ensure(self.owner_need_pct <= 100, WHAT, "owner_need_pct above 100")?;
        ensure(
            self.bandwidth_down_bps != Some(0),
            WHAT,
            "a download cap of 0 is written as no cap",
        )?;
        ensure(
            self.free_bytes <= self.donated_bytes,
            WHAT,
            "free exceeds donated",
        )
    }
}
