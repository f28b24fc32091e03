//! The network in one process: nodes find each other, agree on the node
//! table, merge DHT records across a healed partition, and shrug off bad
//! input. Waits have generous deadlines; nothing asserts on timing.

mod bad_input;
mod convergence;
mod partition;

use std::time::Duration;

/// Upper bound on any wait: a failure bound, never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(120);
