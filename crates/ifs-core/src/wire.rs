//! Signed wire types with size-capped decoding.
