//! IFS test kit (dev-only): many nodes in one process on loopback, each in
//! its own temp dir, with fault injection, for integration tests and
//! examples. Nothing outside tests and examples depends on it.
