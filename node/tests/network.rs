//! End-to-end tests of the network with the real `ifsnode` binary: nodes on
//! loopback as separate processes, inspected through `peers` and `status`
//! exactly as a user would. Capacity reports every 500 ms keep them quick.

#[path = "network/cluster.rs"]
mod cluster;
#[path = "network/devnet.rs"]
mod devnet;
#[path = "network/support.rs"]
mod support;
