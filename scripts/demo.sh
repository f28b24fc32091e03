#!/usr/bin/env bash
# The IFS demo. Until the network exists it is a local round trip: build the
# workspace in release, then send one file through the chunk codec and a
# local store on this machine and back, printing every step.
#
#   scripts/demo.sh [FILE]
#
# Without FILE a deterministic text-like sample of $DEMO_SIZE (default
# 256MiB) is generated. Everything is written to a temp dir that is removed
# at the end (set DEMO_KEEP=1 to keep it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"

echo "==> cargo build --release --workspace"
cargo build --release --workspace
ifsnode="$CARGO_TARGET_DIR/release/ifsnode"
"$ifsnode" --version

work="$(mktemp -d "${TMPDIR:-/tmp}/ifs-demo.XXXXXX")"
if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
    echo "==> work dir $work (kept)"
else
    trap 'rm -rf "$work"' EXIT
    echo "==> work dir $work (removed at the end)"
fi

args=(local-roundtrip --dir "$work" --volumes "${DEMO_VOLUMES:-2}")
if [[ $# -ge 1 ]]; then
    args+=(--input "$1")
else
    args+=(--size "${DEMO_SIZE:-256MiB}")
fi
echo "==> ifsnode ${args[*]}"
echo
"$ifsnode" "${args[@]}"
