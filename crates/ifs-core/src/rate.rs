//! Per-peer token buckets: every request costs its sender tokens in
//! proportion to what it costs the node, so a peer that asks faster than
//! the node serves is refused early and cheaply. Pure; time is passed in.

use std::collections::HashMap;
use std::hash::Hash;

/// Token buckets keyed by sender, with a bound on how many are kept.
#[derive(Clone, Debug)]
pub struct RateLimiter<K> {
    per_sec: f64,
    burst: f64,
    max_keys: usize,
    buckets: HashMap<K, (f64, u64)>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Refill `per_sec` tokens a second up to `burst`; keep at most
    /// `max_keys` senders (idle, full buckets are forgotten first).
    pub fn new(per_sec: f64, burst: f64, max_keys: usize) -> Self {
        RateLimiter {
            per_sec: per_sec.max(0.0),
            burst: burst.max(1.0),
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Take `cost` tokens from `key`'s bucket at `now_ms`; `false` (and
    /// nothing taken) when it has fewer.
    pub fn allow(&mut self, key: &K, cost: f64, now_ms: u64) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.forget_idle(now_ms);
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let entry = self.buckets.entry(key.clone()).or_insert((burst, now_ms));
        let elapsed = now_ms.saturating_sub(entry.1) as f64 / 1000.0;
        entry.0 = (entry.0 + elapsed * per_sec).min(burst);
        entry.1 = entry.1.max(now_ms);
        if entry.0 >= cost {
            entry.0 -= cost;
            true
        } else {
            false
        }
    }

    /// Drop buckets that have refilled (their senders are idle); if none
    /// has, drop the fullest half, so the map stays bounded.
    fn forget_idle(&mut self, now_ms: u64) {
        let (per_sec, burst) = (self.per_sec, self.burst);
        let level = |(t, at): &(f64, u64)| {
            (t + now_ms.saturating_sub(*at) as f64 / 1000.0 * per_sec).min(burst)
        };
        self.buckets.retain(|_, b| level(b) < burst);
        if self.buckets.len() >= self.max_keys {
            let mut levels: Vec<f64> = self.buckets.values().map(level).collect();
            levels.sort_by(|a, b| a.total_cmp(b));
            let cut = levels[levels.len() / 2];
            self.buckets.retain(|_, b| level(b) < cut);
        }
    }

    /// Senders tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no sender is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_sender_is_refused_and_refills_over_time() {
        let mut r = RateLimiter::new(10.0, 20.0, 100);
        assert!((0..20).all(|_| r.allow(&1u8, 1.0, 0)));
        assert!(!r.allow(&1, 1.0, 0), "the burst is spent");
        assert!(r.allow(&2, 1.0, 0), "another sender has its own bucket");
        assert!(r.allow(&1, 5.0, 500), "half a second refills five");
        assert!(!r.allow(&1, 1.0, 500));
    }

    #[test]
    fn many_senders_keep_the_map_bounded() {
        let mut r = RateLimiter::new(1.0, 10.0, 100);
        for k in 0..10_000u32 {
            r.allow(&k, 5.0, 0);
        }
        assert!(r.len() <= 100);
    }
}
