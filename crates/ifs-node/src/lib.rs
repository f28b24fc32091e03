//! IFS node service: the part of `ifsnode run` that wires a node's disk
//! (`ifs-store`) to its network (`ifs-net`).
//!
//! It owns the node's decisions: publishing capacity reports, granting and
//! expiring reservations, storing and forwarding chunks along header chains,
//! validating and merging DHT records, audits, repair and offload. It parses
//! no command lines or config files; `ifsnode` hands it a ready config.
