//! When to send a capacity report: every interval, and at once when the
//! figures moved by more than 1% of the donation. Pure, so it is tested
//! without a network.

use ifs_core::wire::CapacityStats;

/// Relative change (of the donated bytes) that triggers an early report.
pub const CHANGE_THRESHOLD: f64 = 0.01;

/// Whether a new report is due.
///
/// `last` is what the previous report said (`None` before the first one),
/// `elapsed_ms` the time since it went out.
pub fn report_due(
    last: Option<&CapacityStats>,
    now: &CapacityStats,
    elapsed_ms: u64,
    interval_ms: u64,
) -> bool {
    let Some(last) = last else { return true };
    if elapsed_ms >= interval_ms {
        return true;
    }
    // Changes go out early, but never more often than a tenth of the
    // interval (100 ms to 1 s): a burst of reservations is one report.
    if elapsed_ms < min_gap_ms(interval_ms) {
        return false;
    }
    let base = last.donated_bytes.max(now.donated_bytes).max(1) as f64;
    let moved = |a: u64, b: u64| (a.abs_diff(b) as f64) / base > CHANGE_THRESHOLD;
    moved(last.donated_bytes, now.donated_bytes)
        || moved(last.used_bytes, now.used_bytes)
        || moved(last.reserved_bytes, now.reserved_bytes)
        || moved(last.free_bytes, now.free_bytes)
        || last.owner_need_pct.abs_diff(now.owner_need_pct) >= 1
        || last.bandwidth_bps != now.bandwidth_bps
        || last.bandwidth_down_bps != now.bandwidth_down_bps
}

/// Shortest time between two reports sent early for a change.
pub fn min_gap_ms(interval_ms: u64) -> u64 {
    (interval_ms / 10).clamp(100, 1000)
}

/// The sequence number of the next report: strictly above the last one,
/// and at least the current time so a node that lost its state after a
/// restart still outranks its own older reports.
pub fn next_seq(last_seq: u64, now_ms: u64) -> u64 {
    (last_seq + 1).max(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(used: u64) -> CapacityStats {
        CapacityStats {
            donated_bytes: 1_000_000,
            used_bytes: used,
            free_bytes: 1_000_000 - used,
            ..Default::default()
        }
    }

    #[test]
    fn first_report_is_always_due() {
        assert!(report_due(None, &stats(0), 0, 10_000));
    }

    #[test]
    fn small_changes_wait_for_the_interval() {
        let last = stats(100_000);
        assert!(!report_due(Some(&last), &stats(105_000), 1_000, 10_000));
        assert!(report_due(Some(&last), &stats(105_000), 10_000, 10_000));
    }

    #[test]
    fn a_change_over_one_percent_goes_out_at_once() {
        let last = stats(100_000);
        assert!(report_due(Some(&last), &stats(120_001), 1_000, 10_000));
    }

    #[test]
    fn a_burst_of_changes_is_spaced_out() {
        let last = stats(100_000);
        assert!(!report_due(Some(&last), &stats(900_000), 0, 10_000));
        assert!(!report_due(Some(&last), &stats(900_000), 999, 10_000));
        assert!(report_due(Some(&last), &stats(900_000), 1_000, 10_000));
    }

    #[test]
    fn seq_grows_across_restarts() {
        assert_eq!(next_seq(5, 3), 6);
        assert_eq!(next_seq(5, 1_000), 1_000);
        assert!(next_seq(next_seq(0, 1_000), 1_000) > 1_000);
    }
}
