#!/usr/bin/env bash
# Capacity gossip at scale: 25, 50 and 100 nodes in one process on loopback.
# Prints, per size, the time until every node's table lists every node alive
# and the bytes on the wire per node per minute, and how both grow.
#
#   scripts/bench-gossip.sh                       # 25 50 100, 10 s reports, 60 s window
#   scripts/bench-gossip.sh --window-s 30 25 50   # any sizes and window
#   PROFILE=release scripts/bench-gossip.sh       # optimized build (slower to build)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ss >/dev/null || { echo "bench-gossip: needs ss (iproute2) for byte counts" >&2; exit 1; }
# Every node keeps sockets and a store open; 100 nodes need more than 1024 fds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
profile=()
[[ "${PROFILE:-dev}" == release ]] && profile=(--release)
exec cargo run -q "${profile[@]}" -p ifs-testkit --example bench_gossip -- "$@"
