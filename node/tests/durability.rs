//! Durability in one process: real nodes on loopback with short scrub and
//! repair intervals; files go in and out through the real client.

#[path = "durability/audit.rs"]
mod audit;
#[path = "durability/offload.rs"]
mod offload;
#[path = "durability/repair.rs"]
mod repair;
#[path = "durability/scrub.rs"]
mod scrub;
#[path = "durability/sharing.rs"]
mod sharing;
#[path = "durability/support.rs"]
mod support;
