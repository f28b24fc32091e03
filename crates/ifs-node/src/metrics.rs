//! What a node measures about its peers: RTT (ping and app probe, smoothed)
//! and IP hop count. Pure bookkeeping; the service feeds it samples.

use std::collections::HashMap;
use std::time::Duration;

use ifs_core::NodeId;

/// Smoothing weight of a new RTT sample (exponentially weighted mean).
const RTT_ALPHA: f64 = 0.3;

/// Measurements of one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PeerMetrics {
    /// Smoothed round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// IP hop count from the latest probe.
    pub hops: Option<u8>,
    /// When the hop count was last measured, ms since epoch.
    pub hops_at_ms: u64,
}

/// Measurements of every peer, keyed by node id.
#[derive(Clone, Debug, Default)]
pub struct MetricsTable {
    peers: HashMap<NodeId, PeerMetrics>,
}

impl MetricsTable {
    /// Fold an RTT sample into the peer's smoothed RTT.
    pub fn record_rtt(&mut self, node: NodeId, rtt: Duration) {
        let sample = rtt.as_secs_f64() * 1000.0;
        let m = self.peers.entry(node).or_default();
        m.rtt_ms = Some(match m.rtt_ms {
            None => sample,
            Some(old) => old + RTT_ALPHA * (sample - old),
        });
    }

    /// Record a hop-count measurement.
    pub fn record_hops(&mut self, node: NodeId, hops: u8, now_ms: u64) {
        let m = self.peers.entry(node).or_default();
        m.hops = Some(hops);
        m.hops_at_ms = now_ms;
    }

    /// The peer's measurements (all `None` when never measured).
    pub fn get(&self, node: &NodeId) -> PeerMetrics {
        self.peers.get(node).copied().unwrap_or_default()
    }

    /// Whether the peer's hop count is missing or older than `max_age_ms`.
    pub fn hops_stale(&self, node: &NodeId, now_ms: u64, max_age_ms: u64) -> bool {
        match self.peers.get(node) {
            Some(m) if m.hops.is_some() => now_ms.saturating_sub(m.hops_at_ms) >= max_age_ms,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_is_smoothed_towards_new_samples() {
        let n = NodeId([1; 32]);
        let mut t = MetricsTable::default();
        t.record_rtt(n, Duration::from_millis(10));
        assert_eq!(t.get(&n).rtt_ms, Some(10.0));
        t.record_rtt(n, Duration::from_millis(110));
        let v = t.get(&n).rtt_ms.unwrap();
        assert!(
            v > 10.0 && v < 110.0,
            "smoothed value {v} lies between samples"
        );
    }

    #[test]
    fn hops_go_stale() {
        let n = NodeId([2; 32]);
        let mut t = MetricsTable::default();
        assert!(t.hops_stale(&n, 0, 1000));
        t.record_hops(n, 2, 5_000);
        assert!(!t.hops_stale(&n, 5_500, 1000));
        assert!(t.hops_stale(&n, 6_000, 1000));
        assert_eq!(t.get(&n).hops, Some(2));
    }
}
