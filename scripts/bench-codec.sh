#!/usr/bin/env bash
# Benchmarks the chunk codec (zstd → AES-256-GCM → BLAKE3) on a text-like and
# a random corpus: encode and decode MB/s, the primitives alone on one core,
# the ceiling they imply, and peak RSS while encoding a long stream.
#
# Environment (all optional):
#   IFS_BENCH_MB       size of each corpus in MiB (default 1024)
#   IFS_BENCH_RSS_MB   length of the stream for the RSS measurement (default 4096)
#   IFS_BENCH_PRIM_MB  text sample for the primitives (default 256)
#   IFS_BENCH_DIR      where corpora are cached (default $CARGO_TARGET_DIR/bench-codec)
#   RUSTFLAGS          passed to the release build, e.g. "-C target-cpu=native"
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
export IFS_BENCH_DIR="${IFS_BENCH_DIR:-$CARGO_TARGET_DIR/bench-codec}"

echo "building (release, RUSTFLAGS='${RUSTFLAGS:-}')"
cargo build --quiet --release -p ifs-core --example bench_codec
exec "$CARGO_TARGET_DIR/release/examples/bench_codec"
