//! Node and user keys, signatures.
