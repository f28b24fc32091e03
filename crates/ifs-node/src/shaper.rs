//! [`Shaper`]: the node's upload and download caps applied to chunk bytes.
//! The rules (token bucket, strict priorities) are `ifs_core::bandwidth`;
//! this holds the two links, reads the clock and sleeps.

use std::sync::Mutex;

use ifs_core::bandwidth::{Grant, Link, Priority};
use tokio::time::Instant;

use crate::service::lock;

/// Which way chunk bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by this node.
    Up,
    /// Received by this node.
    Down,
}

impl Direction {
    /// The direction's name in metrics (`out`, `in`).
    pub fn label(self) -> &'static str {
        match self {
            Direction::Up => "out",
            Direction::Down => "in",
        }
    }
}

/// Upload and download caps of one node, changeable while it runs.
pub struct Shaper {
    epoch: Instant,
    up: Mutex<Link>,
    down: Mutex<Link>,
}

impl Shaper {
    /// Caps in bits per second (`None`: unlimited).
    pub fn new(up_bps: Option<u64>, down_bps: Option<u64>) -> Self {
        Shaper {
            epoch: Instant::now(),
            up: Mutex::new(Link::new(up_bps, 0)),
            down: Mutex::new(Link::new(down_bps, 0)),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn link(&self, dir: Direction) -> &Mutex<Link> {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// Set both caps at once.
    pub fn set_caps(&self, up_bps: Option<u64>, down_bps: Option<u64>) {
        let now = self.now_ms();
        lock(&self.up).set_cap(up_bps, now);
        lock(&self.down).set_cap(down_bps, now);
    }

    /// The caps now: (up, down), bits per second, `None` when unlimited.
    pub fn caps(&self) -> (Option<u64>, Option<u64>) {
        (lock(&self.up).cap(), lock(&self.down).cap())
    }

    /// Whether either direction is capped (transfers then move in pieces).
    pub fn capped(&self) -> bool {
        self.caps() != (None, None)
    }

    /// Ask for `bytes` of `class` in `dir` now (see [`Link::request`]);
    /// the caller sleeps and asks again on anything but `Go`.
    pub fn request(&self, dir: Direction, class: Priority, bytes: u64) -> Grant {
        lock(self.link(dir)).request(class, bytes, self.now_ms())
    }
}
