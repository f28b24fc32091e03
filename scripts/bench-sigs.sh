#!/usr/bin/env bash
# Ed25519 batch verification of one signer's signatures (what a node does
# with the new entries of a folder record): signatures per CPU-second of
# `verify_all` against ed25519-dalek's `verify_batch`, measured in the same
# run, with signing and one-by-one verification beside them.
#
#   scripts/bench-sigs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
cargo build --quiet --release -p ifs-core --example bench_sigs
exec "$CARGO_TARGET_DIR/release/examples/bench_sigs"
