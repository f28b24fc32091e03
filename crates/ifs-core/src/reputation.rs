//! Per-node reputation: a pure score from what one node has observed of
//! another: audit results, clients' get reports, and how often it was seen
//! alive.
//!
//! The score is a product, so one bad signal cannot be bought off by good
//! ones: a node that fails audits scores low however fast it serves gets.
//! Each factor starts from a small prior (a new node is trusted until it
//! proves otherwise, as placement needs somewhere to put data), and counts
//! are halved once they grow large, so old behaviour fades.

use serde::{Deserialize, Serialize};

use crate::audit::AuditOutcome;
use crate::proto::FetchOutcome;
use crate::wire::{from_cbor, to_cbor};

/// Counts above this are halved (all of one kind together), so a node's
/// recent behaviour dominates.
pub const HALVE_ABOVE: u32 = 1000;

/// What one node has observed of another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReputationRecord {
    /// Audits answered correctly.
    pub audits_passed: u32,
    /// Audits answered wrongly or refused for a chunk it has a receipt for.
    pub audits_failed: u32,
    /// Client-reported fetches served in time.
    pub gets_ok: u32,
    /// Client-reported fetches served slowly.
    pub gets_slow: u32,
    /// Client-reported fetches that failed.
    pub gets_failed: u32,
    /// Liveness checks that found it alive.
    pub seen_alive: u32,
    /// Liveness checks that found it suspect or dead.
    pub seen_down: u32,
    /// When this record last changed, ms since the Unix epoch.
    pub updated_ms: u64,
}

/// Weight of failures against passes in the audit factor: data loss is the
/// one thing a storage node must not do.
const AUDIT_FAIL_WEIGHT: f64 = 3.0;

fn halve(pair: &mut [&mut u32]) {
    if pair.iter().any(|c| **c > HALVE_ABOVE) {
        for c in pair.iter_mut() {
            **c /= 2;
        }
    }
}

impl ReputationRecord {
    /// Record an audit's outcome (no answer counts as a down observation,
    /// not as a failure: a node may be offline without having lost data).
    pub fn record_audit(&mut self, outcome: AuditOutcome, now_ms: u64) {
        match outcome {
            AuditOutcome::Pass => self.audits_passed = self.audits_passed.saturating_add(1),
            AuditOutcome::Fail => self.audits_failed = self.audits_failed.saturating_add(1),
            AuditOutcome::NoAnswer => self.seen_down = self.seen_down.saturating_add(1),
        }
        halve(&mut [&mut self.audits_passed, &mut self.audits_failed]);
        self.updated_ms = now_ms;
    }

    /// Record a client's report of one fetch.
    pub fn record_get(&mut self, outcome: FetchOutcome, now_ms: u64) {
        match outcome {
            FetchOutcome::Ok => self.gets_ok = self.gets_ok.saturating_add(1),
            FetchOutcome::Slow => self.gets_slow = self.gets_slow.saturating_add(1),
            FetchOutcome::Failed => self.gets_failed = self.gets_failed.saturating_add(1),
        }
        halve(&mut [
            &mut self.gets_ok,
            &mut self.gets_slow,
            &mut self.gets_failed,
        ]);
        self.updated_ms = now_ms;
    }

    /// Record one liveness observation from the node table.
    pub fn record_liveness(&mut self, alive: bool, now_ms: u64) {
        if alive {
            self.seen_alive = self.seen_alive.saturating_add(1);
        } else {
            self.seen_down = self.seen_down.saturating_add(1);
        }
        halve(&mut [&mut self.seen_alive, &mut self.seen_down]);
        self.updated_ms = now_ms;
    }

    /// `(passed + 1) / (passed + 3·failed + 1)`: 1 for a new node, ¼ after
    /// one failure and no pass, below 0.1 after three.
    pub fn audit_factor(&self) -> f64 {
        let p = f64::from(self.audits_passed);
        let f = f64::from(self.audits_failed);
        (p + 1.0) / (p + AUDIT_FAIL_WEIGHT * f + 1.0)
    }

    /// Share of fetches served well (slow counts half), with one ok prior.
    pub fn get_factor(&self) -> f64 {
        let ok = f64::from(self.gets_ok) + 0.5 * f64::from(self.gets_slow) + 1.0;
        let all =
            f64::from(self.gets_ok) + f64::from(self.gets_slow) + f64::from(self.gets_failed) + 1.0;
        ok / all
    }

    /// Share of observations that found it alive, with one alive prior.
    pub fn uptime_factor(&self) -> f64 {
        let up = f64::from(self.seen_alive) + 1.0;
        up / (up + f64::from(self.seen_down))
    }

    /// The score in 0..=1: `audit² · (½ + ½·gets) · (½ + ½·uptime)`.
    /// Audits are squared so a node that loses data falls below placement's
    /// minimum (0.2) after two failed audits, while a slow or flaky node
    /// keeps at least a quarter of its audit score.
    pub fn score(&self) -> f64 {
        let a = self.audit_factor();
        a * a * (0.5 + 0.5 * self.get_factor()) * (0.5 + 0.5 * self.uptime_factor())
    }

    /// The encoding kept in the node's local table.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Decode a stored record.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::wire::WireError> {
        from_cbor(bytes, 256, "reputation record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Policy;

    #[test]
    fn a_new_node_is_fully_trusted() {
        assert_eq!(ReputationRecord::default().score(), 1.0);
    }

    #[test]
    fn failed_audits_drop_below_the_placement_minimum() {
        let min = Policy::default().min_reputation;
        let mut r = ReputationRecord::default();
        r.record_audit(AuditOutcome::Fail, 1);
        r.record_audit(AuditOutcome::Fail, 2);
        assert!(r.score() < min, "score {}", r.score());
        // Even with perfect gets and uptime.
        for t in 0..100 {
            r.record_get(FetchOutcome::Ok, t);
            r.record_liveness(true, t);
        }
        assert!(r.score() < min, "score {}", r.score());
    }

    #[test]
    fn an_honest_node_stays_high_and_a_rare_failure_is_forgiven() {
        let mut r = ReputationRecord::default();
        for t in 0..200 {
            r.record_audit(AuditOutcome::Pass, t);
            r.record_get(FetchOutcome::Ok, t);
            r.record_liveness(true, t);
        }
        assert!(r.score() > 0.99);
        r.record_audit(AuditOutcome::Fail, 300);
        assert!(r.score() > 0.95);
    }

    #[test]
    fn slow_or_offline_nodes_lose_some_but_not_all() {
        let mut r = ReputationRecord::default();
        for t in 0..50 {
            r.record_get(FetchOutcome::Failed, t);
            r.record_audit(AuditOutcome::NoAnswer, t);
        }
        let s = r.score();
        assert!((0.25..0.4).contains(&s), "score {s}");
        assert_eq!(r.audits_failed, 0, "no answer is not a failed audit");
    }

    #[test]
    fn old_counts_fade() {
        let mut r = ReputationRecord::default();
        for t in 0..=HALVE_ABOVE {
            r.record_audit(AuditOutcome::Pass, u64::from(t));
        }
        assert!(r.audits_passed <= HALVE_ABOVE);
        let before = r.score();
        for t in 0..20 {
            r.record_audit(AuditOutcome::Fail, t);
        }
        assert!(r.score() < before);
    }

    #[test]
    fn encoding_round_trips_and_garbage_is_an_error() {
        let mut r = ReputationRecord::default();
        r.record_audit(AuditOutcome::Fail, 42);
        assert_eq!(ReputationRecord::decode(&r.encode()).unwrap(), r);
        assert!(ReputationRecord::decode(&[0xff, 1, 2]).is_err());
        assert!(ReputationRecord::decode(&vec![0; 1000]).is_err());
    }
}
