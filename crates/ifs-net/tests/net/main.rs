//! Integration tests of ifs-net on loopback: swarms, gossip, requests, the
//! DHT, bulk streams and the UDP hop probe.

// `wait_for` hands unwanted events back in `Err`; their size does not matter here.
#![allow(clippy::result_large_err)]

mod gossip;
mod helpers;
mod hops;
mod kad;
mod request;
mod stream;
