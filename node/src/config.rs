//! `DIR/config.toml`: what a node donates, where it listens, whom it joins.
//!
//! Loading checks syntax (unknown fields are errors, so a typo never passes
//! silently) and then the rules between fields; every error names the file
//! and the field.

use crate::volume::VolumeSpec;
use anyhow::{Context, bail};
use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File name of the config inside the data dir.
pub const CONFIG_FILE: &str = "config.toml";

/// Default TCP and QUIC listen addresses: every interface, TCP port 4100 and
/// QUIC on UDP port 4101, because the UDP hop-count responder answers on the
/// TCP port number (UDP 4100).
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4100", "/ip4/0.0.0.0/udp/4101/quic-v1"];

/// A node's configuration, as stored in `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the node keeps its key, local table and state files.
    pub data_dir: PathBuf,
    /// Percent of each volume's filesystem that is always left free for the
    /// owner: the owner's need wins over any cap.
    #[serde(default = "default_owner_reserve_pct")]
    pub owner_reserve_pct: u8,
    /// Addresses to listen on.
    #[serde(default = "default_listen", with = "addr_list")]
    pub listen: Vec<Multiaddr>,
    /// Peers to dial on start to join the network.
    #[serde(default, with = "addr_list")]
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    #[serde(default)]
    pub mdns: bool,
    /// Ask the home router to forward the listen ports with UPnP. Off by
    /// default (it multicasts on the LAN); relays and hole punching reach a
    /// node behind NAT without it, UPnP makes it directly dialable.
    #[serde(default)]
    pub upnp: bool,
    /// Where the admin endpoint (dashboard, `/api`, `/metrics`) listens:
    /// `IP:PORT`, or `off`. Beyond loopback it asks for the token in
    /// `DIR/admin.token`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Set by `ifsnode leave` (cleared by `ifsnode donate`): the node
    /// donates nothing and hands every chunk to other nodes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaving: bool,
    /// The directories the node stores pieces in, each with its cap, as
    /// `PATH[:SIZE|PCT]` strings.
    #[serde(with = "crate::volume::spec_list")]
    pub volumes: Vec<VolumeSpec>,
    /// Longest reservation the node grants, in seconds: space a put reserved
    /// and never used (the client died, the put failed) is free again after it.
    #[serde(default = "default_reservation_ttl_secs")]
    pub reservation_ttl_secs: u64,
    /// Capacity gossip timing.
    #[serde(default)]
    pub capacity: CapacityConfig,
    /// Seconds a stored chunk that no committed file names (a failed or
    /// abandoned put) is kept before it is freed; above the reservation TTL.
    #[serde(default = "default_collect_after_secs")]
    pub collect_after_secs: u64,
    /// How much of this node one user may hold in reservations.
    #[serde(default)]
    pub quota: QuotaConfig,
    /// Upload and download caps on chunk traffic (`ifsnode bandwidth`
    /// changes them live).
    #[serde(default, skip_serializing_if = "BandwidthConfig::is_unlimited")]
    pub bandwidth: BandwidthConfig,
}

/// `[bandwidth]`: caps like `10Mbit`, `8Mbit/s` or `2MB/s`; `0` or absent
/// is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthConfig {
    /// What the node may send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
    /// What the node may receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
}

impl BandwidthConfig {
    fn is_unlimited(&self) -> bool {
        self.up.is_none() && self.down.is_none()
    }

    /// The caps in bits per second (`None`: unlimited); the error names the
    /// field.
    pub fn caps(&self) -> anyhow::Result<(Option<u64>, Option<u64>)> {
        let one = |field: &str, v: &Option<String>| match v {
            None => Ok(None),
            Some(t) => ifs_core::bandwidth::parse_rate(t)
                .map_err(|e| anyhow::anyhow!("field `bandwidth.{field}`: {e}")),
        };
        Ok((one("up", &self.up)?, one("down", &self.down)?))
    }
}

/// Per-user reservation limits (see docs/security.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Largest share of this node's grantable space one user may hold, percent.
    pub user_share_pct: u8,
    /// Most open reservations one user may hold here.
    pub max_grants_per_user: usize,
    /// Seconds after which a reservation that stored nothing may be taken
    /// back for another user's request.
    pub preempt_after_secs: u64,
    /// Seconds after which a reservation that stored nothing lapses.
    pub idle_lapse_secs: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let p = ifs_core::quota::QuotaPolicy::default();
        QuotaConfig {
            user_share_pct: p.user_share_pct,
            max_grants_per_user: p.max_grants_per_user,
            preempt_after_secs: p.preempt_after_ms / 1000,
            idle_lapse_secs: p.idle_lapse_ms / 1000,
        }
    }
}

impl QuotaConfig {
    /// The node's policy.
    pub fn policy(&self) -> ifs_core::quota::QuotaPolicy {
        ifs_core::quota::QuotaPolicy {
            user_share_pct: self.user_share_pct,
            max_grants_per_user: self.max_grants_per_user,
            preempt_after_ms: self.preempt_after_secs.saturating_mul(1000),
            idle_lapse_ms: self.idle_lapse_secs.saturating_mul(1000),
        }
    }
}

/// How often capacity reports go out and when a silent node is given up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Seconds between two capacity reports.
    pub interval_secs: u64,
    /// A node that missed this many intervals is *suspect*.
    pub suspect_after_intervals: u32,
    /// A node that missed this many intervals is *dead*.
    pub dead_after_intervals: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            interval_secs: 10,
            suspect_after_intervals: 3,
            dead_after_intervals: 10,
        }
    }
}

fn default_owner_reserve_pct() -> u8 {
    10
}

/// The admin endpoint's default address: loopback only, so no token.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:4180";

fn default_admin_listen() -> String {
    DEFAULT_ADMIN_LISTEN.to_string()
}

/// `admin_listen` read: `None` for `off`.
pub fn parse_admin_listen(s: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if s == "off" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        anyhow::anyhow!("{s:?} is neither IP:PORT (like {DEFAULT_ADMIN_LISTEN}) nor `off`")
    })
}

fn default_reservation_ttl_secs() -> u64 {
    600
}

fn default_collect_after_secs() -> u64 {
    3600
}

fn default_listen() -> Vec<Multiaddr> {
    DEFAULT_LISTEN
        .iter()
        .map(|a| a.parse().expect("default listen address is valid"))
        .collect()
}

impl Config {
    /// A config with the defaults for everything but the given parts.
    pub fn new(
        data_dir: PathBuf,
        volumes: Vec<VolumeSpec>,
        listen: Vec<Multiaddr>,
        bootstrap: Vec<Multiaddr>,
    ) -> Self {
        Config {
            data_dir,
            owner_reserve_pct: default_owner_reserve_pct(),
            listen: if listen.is_empty() {
                default_listen()
            } else {
                listen
            },
            bootstrap,
            mdns: false,
            upnp: false,
            admin_listen: default_admin_listen(),
            leaving: false,
            volumes,
            reservation_ttl_secs: default_reservation_ttl_secs(),
            capacity: CapacityConfig::default(),
            collect_after_secs: default_collect_after_secs(),
            quota: QuotaConfig::default(),
            bandwidth: BandwidthConfig::default(),
        }
    }

    /// Path of the config file in `data_dir`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }

    /// Read, parse and validate the config at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no config at {} (run `ifsnode init` first)", path.display())
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read config {}", path.display()));
            }
        };
        Self::parse(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Parse and validate config text; the error names the line or the
    /// field ([`Self::load`] adds the file).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", one_line(text, &e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Check the rules that span fields; the error names the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.data_dir.is_absolute() {
            bail!(
                "field `data_dir`: {} is not an absolute path",
                self.data_dir.display()
            );
        }
        if self.owner_reserve_pct > 90 {
            bail!(
                "field `owner_reserve_pct`: {} is above 90",
                self.owner_reserve_pct
            );
        }
        if self.volumes.is_empty() {
            bail!("field `volumes`: at least one volume is needed");
        }
        parse_admin_listen(&self.admin_listen).context("field `admin_listen`")?;
        let mut seen = HashSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            if !v.path.is_absolute() {
                bail!(
                    "field `volumes[{i}].path`: {} is not an absolute path",
                    v.path.display()
                );
            }
            if !seen.insert(&v.path) {
                bail!(
                    "field `volumes[{i}].path`: {} is listed twice",
                    v.path.display()
                );
            }
        }
        if self.listen.is_empty() {
            bail!("field `listen`: at least one address is needed");
        }
        if self.reservation_ttl_secs == 0 {
            bail!("field `reservation_ttl_secs`: must be at least 1");
        }
        if self.collect_after_secs <= self.reservation_ttl_secs {
            bail!(
                "field `collect_after_secs`: {} must be greater than `reservation_ttl_secs` ({}), or puts in progress would be collected",
                self.collect_after_secs,
                self.reservation_ttl_secs
            );
        }
        let q = &self.quota;
        if !(1..=100).contains(&q.user_share_pct) {
            bail!(
                "field `quota.user_share_pct`: {} is not in 1..=100",
                q.user_share_pct
            );
        }
        if q.max_grants_per_user == 0 {
            bail!("field `quota.max_grants_per_user`: must be at least 1");
        }
        if q.idle_lapse_secs == 0 || q.idle_lapse_secs < q.preempt_after_secs {
            bail!(
                "field `quota.idle_lapse_secs`: {} must be at least 1 and at least `preempt_after_secs` ({})",
                q.idle_lapse_secs,
                q.preempt_after_secs
            );
        }
        self.bandwidth.caps()?;
        let c = &self.capacity;
        if c.interval_secs == 0 {
            bail!("field `capacity.interval_secs`: must be at least 1");
        }
        if c.suspect_after_intervals == 0 {
            bail!("field `capacity.suspect_after_intervals`: must be at least 1");
        }
        if c.dead_after_intervals <= c.suspect_after_intervals {
            bail!(
                "field `capacity.dead_after_intervals`: {} must be greater than `suspect_after_intervals` ({})",
                c.dead_after_intervals,
                c.suspect_after_intervals
            );
        }
        Ok(())
    }

    /// The config as TOML text, with a header saying where it is documented.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let body = toml::to_string(self).context("cannot serialize config")?;
        Ok(format!(
            "# IFS node configuration, written by `ifsnode init`.\n\
             # Every field is described in the README (\"Configuration\").\n\n{body}"
        ))
    }
}

/// A TOML error as `line L, column C: message` on one line (the crate's own
/// Display spans several lines with a source excerpt).
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

/// Multiaddrs as strings, with the offending text in the error.
mod addr_list {
    use multiaddr::Multiaddr;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(addrs: &[Multiaddr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(addrs.iter().map(|a| a.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Multiaddr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| D::Error::custom(format!("invalid multiaddr {s:?}: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Cap;

    fn sample() -> Config {
        let vols = vec![
            VolumeSpec {
                path: "/srv/ifs/0".into(),
                cap: Cap::Percent(10),
            },
            VolumeSpec {
                path: "/mnt/disk1".into(),
                cap: Cap::Bytes(500 << 30),
            },
        ];
        let boot = vec!["/dns4/seed.example/tcp/4100".parse().unwrap()];
        Config::new("/srv/ifs".into(), vols, vec![], boot)
    }

    #[test]
    fn toml_round_trip_keeps_every_field() {
        let c = sample();
        let text = c.to_toml().unwrap();
        assert!(text.contains("owner_reserve_pct = 10"), "{text}");
        assert!(text.contains("/ip4/0.0.0.0/udp/4101/quic-v1"), "{text}");
        assert!(
            text.contains("volumes = [\"/srv/ifs/0:10%\", \"/mnt/disk1:500GiB\"]"),
            "{text}"
        );
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        back.validate().unwrap();
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c: Config = toml::from_str("data_dir = \"/d\"\nvolumes = [\"/d/v\"]\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.capacity, CapacityConfig::default());
        assert_eq!(c.reservation_ttl_secs, 600);
        assert_eq!(c.collect_after_secs, 3600);
        assert_eq!(c.quota.policy(), ifs_core::quota::QuotaPolicy::default());
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.volumes[0].cap, Cap::Percent(100));
        assert!(!c.mdns);
    }

    #[test]
    fn bandwidth_caps_parse_strictly_and_name_the_field() {
        let base = "data_dir = \"/d\"\nvolumes = [\"/d/v\"]\n";
        let c = Config::parse(base).unwrap();
        assert_eq!(
            c.bandwidth.caps().unwrap(),
            (None, None),
            "absent: unlimited"
        );
        assert!(!c.to_toml().unwrap().contains("bandwidth"));
        let c = Config::parse(&format!(
            "{base}[bandwidth]\nup = \"8Mbit/s\"\ndown = \"2MB/s\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.bandwidth.caps().unwrap(),
            (Some(8_000_000), Some(16_000_000))
        );
        assert_eq!(Config::parse(&c.to_toml().unwrap()).unwrap(), c);
        let c = Config::parse(&format!("{base}[bandwidth]\nup = \"0\"\n")).unwrap();
        assert_eq!(c.bandwidth.caps().unwrap(), (None, None), "0: unlimited");
        for (bad, field) in [
            ("up = \"10 parsecs\"", "bandwidth.up"),
            ("down = \"fast\"", "bandwidth.down"),
            ("up = 10", "line 4"),
            ("sideways = \"1Mbit\"", "sideways"),
        ] {
            let e = format!(
                "{:#}",
                Config::parse(&format!("{base}[bandwidth]\n{bad}\n")).unwrap_err()
            );
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn quota_and_collection_rules_name_the_field() {
        let mut c = sample();
        c.collect_after_secs = c.reservation_ttl_secs;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("collect_after_secs")
        );
        let mut c = sample();
        c.quota.user_share_pct = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("quota.user_share_pct")
        );
        let mut c = sample();
        c.quota.idle_lapse_secs = 1;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("quota.idle_lapse_secs")
        );
        let parsed: Config = toml::from_str(
            "data_dir = \"/d\"\nvolumes = [\"/d/v\"]\n[quota]\nuser_share_pct = 20\n",
        )
        .unwrap();
        assert_eq!(parsed.quota.user_share_pct, 20);
        assert_eq!(
            parsed.quota.max_grants_per_user, 64,
            "the rest keep their defaults"
        );
    }

    #[test]
    fn rule_violations_name_the_field() {
        let mut c = sample();
        c.capacity.dead_after_intervals = 3;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("capacity.dead_after_intervals")
        );
        let mut c = sample();
        c.volumes[1].path = "/srv/ifs/0".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("volumes[1].path")
        );
        let mut c = sample();
        c.volumes[0].path = "rel".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("volumes[0].path")
        );
        let mut c = sample();
        c.owner_reserve_pct = 95;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("owner_reserve_pct")
        );
        let mut c = sample();
        c.reservation_ttl_secs = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("reservation_ttl_secs")
        );
    }

    #[test]
    fn bad_multiaddr_is_quoted() {
        let err = toml::from_str::<Config>(
            "data_dir = \"/d\"\nlisten = [\"/ip4/nope\"]\nvolumes = [\"/v\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid multiaddr \"/ip4/nope\""), "{err}");
    }
}
