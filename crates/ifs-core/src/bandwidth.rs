//! Bandwidth the owner chooses: upload and download caps on chunk traffic,
//! shared by traffic classes in strict priority order.
//!
//! A [`Link`] is one direction of a node's connection (up or down): a token
//! bucket filled at the cap, and the time each [`Priority`] class last asked
//! for bytes. A class may take tokens only while no higher class has asked
//! within [`DEMAND_WINDOW_MS`], so repair yields to a client put as long as
//! the put moves bytes, and scrub yields to both; a lower class waits only
//! while a higher one has demand, so none starves on an idle link. Pure:
//! time is passed in as `now_ms`, the caller sleeps.

use std::fmt;

/// Bytes metered at a time: transfers take tokens per piece of this size,
/// so a cap holds smoothly and a higher class gets the link within a piece.
pub const PIECE: usize = 64 << 10;

/// A class counts as having demand for this long after it last asked (a
/// transfer asks again for each piece as its bytes arrive or drain).
pub const DEMAND_WINDOW_MS: u64 = 250;

/// Longest a waiter sleeps before asking again, so its demand stays fresh
/// and it sees a higher class go idle.
pub const MAX_WAIT_MS: u64 = DEMAND_WINDOW_MS / 2;

/// Who chunk bytes are moved for, highest priority first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A client's put (every hop of its chain) or get.
    Client = 0,
    /// Repair and offload copies.
    Repair = 1,
    /// Scrub and audit refetches between holders.
    Background = 2,
}

impl Priority {
    /// Every class, highest priority first.
    pub const ALL: [Priority; 3] = [Priority::Client, Priority::Repair, Priority::Background];

    /// The class's name in metrics and status output.
    pub fn label(self) -> &'static str {
        match self {
            Priority::Client => "client",
            Priority::Repair => "repair",
            Priority::Background => "background",
        }
    }
}

/// What a [`Link`] answers to a request for bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Move the bytes now.
    Go,
    /// Ask again after this many ms: the bucket is empty.
    Empty(u64),
    /// Ask again after this many ms: a higher class has demand.
    Yield(u64),
}

/// One direction of a node's connection under a cap (see the module doc).
#[derive(Clone, Debug)]
pub struct Link {
    /// Bytes per second; `None` is unlimited.
    rate: Option<u64>,
    /// Tokens (bytes) now; negative after a piece larger than what was left.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at_ms: u64,
    /// When each class last asked, if ever.
    asked_ms: [Option<u64>; 3],
}

impl Link {
    /// A link capped at `bits_per_sec` (`None` or 0: unlimited), starting
    /// with a full bucket at `now_ms`.
    pub fn new(bits_per_sec: Option<u64>, now_ms: u64) -> Self {
        let mut l = Link {
            rate: None,
            tokens: 0.0,
            at_ms: now_ms,
            asked_ms: [None; 3],
        };
        l.set_cap(bits_per_sec, now_ms);
        l.tokens = l.burst();
        l
    }

    /// Change the cap at `now_ms`; tokens above the new burst are dropped.
    pub fn set_cap(&mut self, bits_per_sec: Option<u64>, now_ms: u64) {
        self.refill(now_ms);
        self.rate = bits_per_sec.filter(|b| *b > 0).map(|b| (b / 8).max(1));
        self.tokens = self.tokens.min(self.burst());
        if self.rate.is_none() {
            self.tokens = 0.0;
        }
    }

    /// The cap in bits per second; `None` when unlimited.
    pub fn cap(&self) -> Option<u64> {
        self.rate.map(|r| r.saturating_mul(8))
    }

    /// Most tokens the bucket holds: a tenth of a second at the cap, and at
    /// least two pieces, so short idle spells are not lost but a long one
    /// cannot turn into a burst far above the cap.
    fn burst(&self) -> f64 {
        self.rate
            .map_or(0.0, |r| (r as f64 / 10.0).max(2.0 * PIECE as f64))
    }

    fn refill(&mut self, now_ms: u64) {
        if let Some(rate) = self.rate {
            let dt = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
            self.tokens = (self.tokens + dt * rate as f64).min(self.burst());
        }
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Ask for `bytes` for `class` at `now_ms`. On [`Grant::Go`] the tokens
    /// are taken; otherwise nothing is, and the caller asks again later.
    pub fn request(&mut self, class: Priority, bytes: u64, now_ms: u64) -> Grant {
        self.asked_ms[class as usize] = Some(now_ms);
        let Some(rate) = self.rate else {
            return Grant::Go;
        };
        let higher_busy = self.asked_ms[..class as usize]
            .iter()
            .flatten()
            .any(|t| now_ms.saturating_sub(*t) < DEMAND_WINDOW_MS);
        if higher_busy {
            return Grant::Yield(MAX_WAIT_MS);
        }
        self.refill(now_ms);
        // A piece larger than the burst goes once the bucket is full and
        // leaves it in debt, paid back before anything else moves.
        let need = (bytes as f64).min(self.burst());
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            return Grant::Go;
        }
        let ms = ((need - self.tokens) * 1000.0 / rate as f64).ceil() as u64;
        Grant::Empty(ms.clamp(1, MAX_WAIT_MS))
    }
}

/// Why a bandwidth text does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad bandwidth {text:?}: {why} (want a rate like 10Mbit, 8Mbit/s, 2MB/s, 500kbit or 0 for unlimited)"
)]
pub struct RateError {
    text: String,
    why: &'static str,
}

/// Parse a bandwidth cap: a number and a unit, `bit`/`kbit`/`Mbit`/`Gbit`
/// (also `bps`, `kbps`, `Mbps`, `Gbps`) or `B`/`kB`/`MB`/`GB` (bytes; `KiB`,
/// `MiB`, `GiB` are powers of two), with an optional `/s`. Decimal prefixes
/// are powers of ten. `0` alone means unlimited. Bits per second, `None`
/// for unlimited.
pub fn parse_rate(text: &str) -> Result<Option<u64>, RateError> {
    let err = |why| RateError {
        text: text.to_string(),
        why,
    };
    let t = text.trim();
    if t == "0" {
        return Ok(None);
    }
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or(err("a unit is needed"))?;
    let (num, unit) = (&t[..split], t[split..].trim());
    if num.is_empty() {
        return Err(err("no number"));
    }
    let value: f64 = num.parse().map_err(|_| err("not a number"))?;
    let per_unit: f64 = match unit {
        "bit" | "bps" => 1.0,
        "kbit" | "Kbit" | "kbps" | "Kbps" => 1e3,
        "Mbit" | "mbit" | "Mbps" | "mbps" => 1e6,
        "Gbit" | "gbit" | "Gbps" | "gbps" => 1e9,
        "B" => 8.0,
        "kB" | "KB" => 8e3,
        "MB" => 8e6,
        "GB" => 8e9,
        "KiB" => 8.0 * 1024.0,
        "MiB" => 8.0 * 1024.0 * 1024.0,
        "GiB" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err("unknown unit")),
    };
    let bits = value * per_unit;
    if !bits.is_finite() || bits > 1e15 {
        return Err(err("too large"));
    }
    if bits == 0.0 {
        return Ok(None);
    }
    if bits < 8_000.0 {
        return Err(err("below 8 kbit/s, too slow to move a chunk"));
    }
    Ok(Some(bits.round() as u64))
}

/// A cap for people: `8 Mbit/s`, `unlimited`.
pub struct RateText(pub Option<u64>);

impl fmt::Display for RateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(b) = self.0 else {
            return f.write_str("unlimited");
        };
        let (v, unit) = if b >= 1_000_000_000 {
            (b as f64 / 1e9, "Gbit/s")
        } else if b >= 1_000_000 {
            (b as f64 / 1e6, "Mbit/s")
        } else {
            (b as f64 / 1e3, "kbit/s")
        };
        let s = format!("{v:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{s} {unit}")
    }
}

#[cfg(test)]
mod tests;
