//! `ifsnode bandwidth`: the owner changes the caps of a running node. Like
//! a donation change, the new caps are saved (to `config.toml`) before they
//! take effect, and the next capacity report carries them.

use std::sync::Arc;

use ifs_core::proto::{BandwidthCaps, CtlError, CtlResponse};
use tracing::{info, warn};

use super::Shared;
use crate::{DonationChange, now_ms};

/// Slowest cap accepted, bits per second (`ifs_core::bandwidth::parse_rate`
/// refuses the same).
const MIN_CAP_BPS: u64 = 8_000;

impl Shared {
    /// The caps in force.
    pub(crate) fn bandwidth_caps(&self) -> BandwidthCaps {
        let (up_bps, down_bps) = self.shaper.caps();
        BandwidthCaps { up_bps, down_bps }
    }

    /// Apply the operator's new caps (already authenticated): save, then
    /// set, then report.
    pub(crate) async fn set_bandwidth(self: &Arc<Self>, caps: BandwidthCaps) -> CtlResponse {
        let norm = |c: Option<u64>| c.filter(|b| *b > 0);
        let (up, down) = (norm(caps.up_bps), norm(caps.down_bps));
        if [up, down].iter().flatten().any(|b| *b < MIN_CAP_BPS) {
            return CtlResponse::Error(CtlError::Invalid(format!(
                "a bandwidth cap below {MIN_CAP_BPS} bit/s cannot move a chunk"
            )));
        }
        let change = DonationChange::Bandwidth {
            up_bps: up,
            down_bps: down,
        };
        if let Err(e) = self.save_donation(change).await {
            warn!("cannot save the bandwidth change: {e}");
            return CtlResponse::Error(CtlError::Internal(format!(
                "cannot save the bandwidth change: {e}"
            )));
        }
        self.shaper.set_caps(up, down);
        self.telemetry.bandwidth_caps(up, down);
        info!(?up, ?down, "operator changed the bandwidth caps");
        let s = self.clone();
        tokio::spawn(async move { s.maybe_publish_report(now_ms()).await });
        CtlResponse::Bandwidth(self.bandwidth_caps())
    }
}
