//! A node's reachability as `ifsnode status` and `ifsnode doctor` show it.
//! The state machine that decides it lives in `ifs-net` (it reads libp2p
//! addresses); these are the plain types on the wire.

use serde::{Deserialize, Serialize};

/// A node's reachability, as `ifsnode status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// No AutoNAT verdict on a public address yet.
    Unknown,
    /// Only loopback or private addresses were ever seen or tested: reachable
    /// on this network (a LAN, a devnet), nothing is known beyond it.
    LocalNetwork,
    /// A peer dialled a public address of this node back.
    Public,
    /// Behind NAT, and a direct connection at a public address with at
    /// least one peer that is itself behind NAT came up (a hole punch).
    NatHolePunching,
    /// Behind NAT, reachable through a relay only: no hole punch worked yet.
    NatRelayed,
    /// Behind NAT and no relay holds a slot for this node: peers cannot
    /// reach it, it can only dial out.
    Unreachable,
}

impl Reachability {
    /// Whether the node is known to sit behind NAT.
    pub fn behind_nat(self) -> bool {
        matches!(
            self,
            Self::NatHolePunching | Self::NatRelayed | Self::Unreachable
        )
    }

    /// The Kademlia mode this reachability calls for: a node behind NAT is a
    /// DHT client (peers could not dial it to ask), every other node serves.
    pub fn kad_server(self) -> bool {
        !self.behind_nat()
    }

    /// Plain words for `ifsnode status`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unknown => "unknown (no AutoNAT verdict yet)",
            Self::LocalNetwork => "local network only (no public address seen)",
            Self::Public => "public (peers dial it directly)",
            Self::NatHolePunching => "behind NAT, hole punching works",
            Self::NatRelayed => "behind NAT, relayed only (no hole punch has worked)",
            Self::Unreachable => "behind NAT, unreachable (no relay slot)",
        }
    }
}

/// What UPnP found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upnp {
    /// UPnP is turned off (`net.upnp = false`).
    #[default]
    Off,
    /// Looking for a gateway.
    Searching,
    /// The gateway mapped a port.
    Mapped,
    /// No gateway answered (UPnP off on the router, or no router).
    NoGateway,
    /// The gateway answered but is itself behind another NAT.
    NonRoutableGateway,
}

/// The report `ifsnode status` and `ifsnode doctor` read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachabilityReport {
    /// The verdict.
    pub reachability: Reachability,
    /// Public addresses a peer dialled back.
    pub confirmed: Vec<String>,
    /// Public addresses a peer failed to dial back.
    pub unreachable: Vec<String>,
    /// Private or loopback addresses a peer dialled back.
    pub local_confirmed: Vec<String>,
    /// Relays holding a slot for this node (their circuit addresses).
    pub relays: Vec<String>,
    /// Hole punches that worked / failed.
    pub hole_punches_ok: u64,
    /// Hole punches that failed.
    pub hole_punches_failed: u64,
    /// Peers behind NAT this node holds a direct connection with (made by
    /// a hole punch, whichever side's dial won).
    #[serde(default)]
    pub direct_nat_peers: usize,
    /// Distinct peers that answered an AutoNAT test.
    pub autonat_servers: usize,
    /// UPnP state.
    pub upnp: Upnp,
    /// External addresses mapped by UPnP.
    pub upnp_addrs: Vec<String>,
}
