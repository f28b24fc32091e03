#!/usr/bin/env bash
# What the admin endpoint costs a node: CPU per scrape of /metrics plus the
# dashboard's four /api calls, read from /proc/PID/stat (utime + stime) of
# node 1 of a 3-node loopback devnet holding a few files, then extrapolated
# to one scrape every 15 s (Prometheus' usual interval; the dashboard
# refreshes every 5 s only while someone looks at it). The target is under
# 1% of one core.
#
#   scripts/bench-admin.sh
#
# Compressed: BENCH_SCRAPES scrapes back to back (default 300), minus the
# node's own idle CPU over the same time (measured first, BENCH_IDLE_SECS,
# default 30). With BENCH_LIVE_SECS=N it then also scrapes every 15 s for N
# seconds and prints the node's whole CPU share with and without scrapes.
#
# Env: IFSNODE=path skips the build; BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
scrapes="${BENCH_SCRAPES:-300}"
idle_secs="${BENCH_IDLE_SECS:-30}"
live_secs="${BENCH_LIVE_SECS:-0}"
if [[ -z "${IFSNODE:-}" ]]; then
    echo "==> cargo build --release -p ifsnode"
    cargo build --release -p ifsnode 2>&1 | tail -1
    IFSNODE="$CARGO_TARGET_DIR/release/ifsnode"
fi
command -v curl >/dev/null || { echo "bench-admin.sh needs curl" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_work bench-admin

"$IFSNODE" devnet --nodes 3 --dir "$work/net" --base-port 0 >"$work/devnet.log" 2>&1 &
devnet_pid=$!
alive() { "$IFSNODE" peers --data-dir "$work/net/node1" --json 2>/dev/null | grep -c '"state": "alive"' || true; }
for _ in $(seq 1 300); do
    [[ -f "$work/net/node3/node.addr" && -f "$work/net/node1/admin.addr" && "$(alive)" -ge 3 ]] && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
admin="http://$(cat "$work/net/node1/admin.addr")"
for i in 1 2 3 4 5; do
    head -c $((1 << 20)) /dev/urandom >"$work/f$i"
    "$IFSNODE" put "$work/f$i" --data-dir "$work/net/node1" >/dev/null
done

# node 1: the devnet's first child `ifsnode run` process.
node_pid=""
for c in $(cat /proc/"$devnet_pid"/task/*/children); do
    if tr '\0' ' ' <"/proc/$c/cmdline" | grep -q "$work/net/node1"; then node_pid=$c; fi
done
[[ -n "$node_pid" ]] || { echo "node 1 not found among the devnet's children" >&2; exit 1; }
hz=$(getconf CLK_TCK)
# CPU seconds node 1 has used so far (utime + stime, fields 14 and 15).
cpu() { awk -v hz="$hz" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$node_pid/stat"; }
now() { date +%s.%N; }
scrape() {
    curl -fsS "$admin/metrics" >/dev/null
    for p in overview peers events bandwidth; do curl -fsS "$admin/api/$p" >/dev/null; done
}
scrape # the first scrape creates every label set

echo "==> node 1 (pid $node_pid): idle for ${idle_secs}s"
c0=$(cpu); t0=$(now); sleep "$idle_secs"; c1=$(cpu); t1=$(now)
idle_rate=$(echo "($c1 - $c0) / ($t1 - $t0)" | bc -l)
echo "==> $scrapes scrapes back to back (/metrics and the four /api calls each)"
c0=$(cpu); t0=$(now)
for _ in $(seq 1 "$scrapes"); do scrape; done
c1=$(cpu); t1=$(now)
busy=$(echo "($c1 - $c0) - $idle_rate * ($t1 - $t0)" | bc -l)
per_scrape_ms=$(echo "1000 * $busy / $scrapes" | bc -l)
share=$(echo "100 * $busy / $scrapes / 15" | bc -l)
metrics_bytes=$(curl -fsS "$admin/metrics" | wc -c)
printf 'idle node:                %.3f%% of a core\n' "$(echo "100 * $idle_rate" | bc -l)"
printf 'CPU per scrape:           %.2f ms (/metrics of %d bytes + 4 /api calls)\n' "$per_scrape_ms" "$metrics_bytes"
printf 'one scrape per 15 s:      %.4f%% of a core (target < 1%%)\n' "$share"
printf 'dashboard open (every 5 s): %.4f%% of a core\n' "$(echo "3 * $share" | bc -l)"

if ((live_secs > 0)); then
    echo "==> live: a scrape every 15 s for ${live_secs}s"
    c0=$(cpu); t0=$(now)
    end=$((SECONDS + live_secs))
    while ((SECONDS < end)); do scrape; sleep 15; done
    c1=$(cpu); t1=$(now)
    live=$(echo "100 * ($c1 - $c0) / ($t1 - $t0)" | bc -l)
    printf 'live, node total:         %.3f%% of a core (idle %.3f%%; difference %.3f%%)\n' \
        "$live" "$(echo "100 * $idle_rate" | bc -l)" "$(echo "$live - 100 * $idle_rate" | bc -l)"
fi
