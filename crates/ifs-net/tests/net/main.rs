//! Integration tests of ifs-net on loopback: swarms, gossip, requests, the
//! DHT, bulk streams and the UDP hop probe.

mod gossip;
mod helpers;
mod hops;
mod kad;
mod request;
mod stream;
