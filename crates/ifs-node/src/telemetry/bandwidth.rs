//! Bytes in and out over the last hour (per minute) and the last day (per
//! quarter hour): two fixed rings of buckets, fed with `now` passed in, so
//! the history is pure and costs nothing between samples.

use serde::Serialize;

/// Width of a bucket of the hour series.
pub const MINUTE_MS: u64 = 60_000;
/// Width of a bucket of the day series.
pub const QUARTER_MS: u64 = 15 * MINUTE_MS;

/// Bytes moved in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Start of the interval, ms since the Unix epoch.
    pub start_ms: u64,
    /// Bytes received.
    pub in_bytes: u64,
    /// Bytes sent.
    pub out_bytes: u64,
}

/// `n` buckets of `width_ms` each; a slot holds the bucket whose start maps
/// to it, and a stale slot is reset when time comes round to it again.
#[derive(Clone, Debug)]
struct Ring {
    width_ms: u64,
    slots: Vec<Bucket>,
}

impl Ring {
    fn new(width_ms: u64, n: usize) -> Self {
        Ring {
            width_ms,
            // `u64::MAX` marks a slot no interval has used yet.
            slots: vec![
                Bucket {
                    start_ms: u64::MAX,
                    ..Bucket::default()
                };
                n
            ],
        }
    }

    fn slot_of(&self, start_ms: u64) -> usize {
        ((start_ms / self.width_ms) % self.slots.len() as u64) as usize
    }

    fn add(&mut self, now_ms: u64, in_bytes: u64, out_bytes: u64) {
        let start = now_ms - now_ms % self.width_ms;
        let i = self.slot_of(start);
        let b = &mut self.slots[i];
        if b.start_ms != start {
            *b = Bucket {
                start_ms: start,
                ..Bucket::default()
            };
        }
        b.in_bytes = b.in_bytes.saturating_add(in_bytes);
        b.out_bytes = b.out_bytes.saturating_add(out_bytes);
    }

    /// Every bucket of the window that ends with the current one, oldest
    /// first; intervals with no traffic come out as zeros.
    fn series(&self, now_ms: u64) -> Vec<Bucket> {
        let n = self.slots.len() as u64;
        let current = now_ms - now_ms % self.width_ms;
        (0..n)
            .filter_map(|k| current.checked_sub((n - 1 - k) * self.width_ms))
            .map(|start| {
                let b = self.slots[self.slot_of(start)];
                if b.start_ms == start {
                    b
                } else {
                    Bucket {
                        start_ms: start,
                        ..Bucket::default()
                    }
                }
            })
            .collect()
    }
}

/// Traffic history of one node.
#[derive(Clone, Debug)]
pub struct BandwidthHistory {
    hour: Ring,
    day: Ring,
}

impl Default for BandwidthHistory {
    fn default() -> Self {
        BandwidthHistory {
            hour: Ring::new(MINUTE_MS, 60),
            day: Ring::new(QUARTER_MS, 96),
        }
    }
}

impl BandwidthHistory {
    /// Count bytes moved at `now_ms`.
    pub fn add(&mut self, now_ms: u64, in_bytes: u64, out_bytes: u64) {
        self.hour.add(now_ms, in_bytes, out_bytes);
        self.day.add(now_ms, in_bytes, out_bytes);
    }

    /// The last hour, one bucket per minute (60), oldest first.
    pub fn last_hour(&self, now_ms: u64) -> Vec<Bucket> {
        self.hour.series(now_ms)
    }

    /// The last day, one bucket per quarter hour (96), oldest first.
    pub fn last_day(&self, now_ms: u64) -> Vec<Bucket> {
        self.day.series(now_ms)
    }
}

/// Sum of a series: (in, out).
pub fn totals(series: &[Bucket]) -> (u64, u64) {
    series.iter().fold((0, 0), |(i, o), b| {
        (i.saturating_add(b.in_bytes), o.saturating_add(b.out_bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000 - 1_700_000_000_000 % QUARTER_MS;

    #[test]
    fn bytes_land_in_the_minute_and_quarter_they_moved_in() {
        let mut h = BandwidthHistory::default();
        h.add(T0 + 5_000, 100, 10);
        h.add(T0 + 59_999, 1, 0);
        h.add(T0 + 60_000, 0, 7);
        let hour = h.last_hour(T0 + 61_000);
        assert_eq!(hour.len(), 60);
        let last = hour[59];
        let prev = hour[58];
        assert_eq!(
            (prev.start_ms, prev.in_bytes, prev.out_bytes),
            (T0, 101, 10)
        );
        assert_eq!(
            (last.start_ms, last.in_bytes, last.out_bytes),
            (T0 + 60_000, 0, 7)
        );
        assert_eq!(totals(&hour), (101, 17));
        let day = h.last_day(T0 + 61_000);
        assert_eq!(day.len(), 96);
        assert_eq!(day[95].start_ms, T0);
        assert_eq!(totals(&day), (101, 17));
    }

    #[test]
    fn old_traffic_leaves_the_window_and_slots_are_reused() {
        let mut h = BandwidthHistory::default();
        h.add(T0, 500, 500);
        // 61 minutes later the minute slot of T0 is outside the hour...
        let later = T0 + 61 * MINUTE_MS;
        assert_eq!(totals(&h.last_hour(later)), (0, 0));
        // ...but still inside the day.
        assert_eq!(totals(&h.last_day(later)), (500, 500));
        // The hour ring comes round to T0's slot again: it starts afresh.
        h.add(T0 + 60 * MINUTE_MS, 3, 0);
        assert_eq!(totals(&h.last_hour(T0 + 60 * MINUTE_MS)), (3, 0));
        // A day and a quarter later nothing of T0 is left.
        assert_eq!(totals(&h.last_day(T0 + 25 * 3600 * 1000)), (0, 0));
    }

    #[test]
    fn series_are_contiguous_and_end_now() {
        let h = BandwidthHistory::default();
        let now = T0 + 123_456;
        let hour = h.last_hour(now);
        assert!(
            hour.windows(2)
                .all(|w| w[1].start_ms == w[0].start_ms + MINUTE_MS)
        );
        assert_eq!(hour[59].start_ms, now - now % MINUTE_MS);
        let day = h.last_day(now);
        assert!(
            day.windows(2)
                .all(|w| w[1].start_ms == w[0].start_ms + QUARTER_MS)
        );
    }
}
