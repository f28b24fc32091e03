#!/usr/bin/env bash
# What one dead node costs a user: a 4 KiB put, a 64 MiB put and a 64 MiB
# get on a 5-node loopback devnet, timed on the healthy net, right after
# one node is killed (SIGKILL, not yet marked dead), and once the others
# mark it dead. Prints seconds (best of BENCH_RUNS, default 3) and the
# ratio of each phase to the healthy net (the killed phase is one run of
# each, before the node can be marked dead); the targets are 2x while the
# node is only killed and 1.5x once it is dead.
#
#   scripts/bench-dead-node.sh
#
# Env: BENCH_RUNS (default 3); BENCH_KEEP=1 keeps the work dir; TMPDIR
# picks the disk.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
runs="${BENCH_RUNS:-3}"
echo "==> cargo build --release -p ifsnode"
cargo build --release -p ifsnode 2>&1 | tail -1
ifsnode="$CARGO_TARGET_DIR/release/ifsnode"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_work bench-dead

# Reports every 2 s: a silent node is dead after 10 missed reports (20 s),
# long enough to time the killed phase (one run of each) before that.
"$ifsnode" devnet --nodes 5 --dir "$work/net" --base-port 0 --capacity-interval-ms 2000 \
    >"$work/devnet.log" 2>&1 &
devnet_pid=$!
alive() { "$ifsnode" peers --data-dir "$work/net/node1" --json | grep -c '"state": "alive"' || true; }
for _ in $(seq 1 150); do
    [[ -f "$work/net/node5/node.addr" && "$(alive)" -ge 5 ]] && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
peer="$(cat "$work/net/node1/node.addr")"
head -c 4096 /dev/urandom >"$work/small"
head -c $((64 << 20)) /dev/urandom >"$work/big"
"$ifsnode" put "$work/big" --name read.bin --peer "$peer" >/dev/null

n=0
# best SECONDS of `runs` runs of CMD..; every put gets a fresh name.
best() {
    local b="" t0 t
    for _ in $(seq 1 "$runs"); do
        n=$((n + 1))
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>>"$work/errors.log" || { echo "failed: $*" >&2; tail -5 "$work/errors.log" >&2; exit 1; }
        t=$(echo "$(date +%s.%N) - $t0" | bc)
        if [[ -z "$b" ]] || (($(echo "$t < $b" | bc))); then b=$t; fi
    done
    printf '%.3f' "$b"
}
phase() {
    small=$(best put_small)
    big=$(best put_big)
    get=$(best "$ifsnode" get read.bin "$work/out" --force --peer "$peer")
    cmp -s "$work/out" "$work/big" || { echo "get returned other bytes" >&2; exit 1; }
}
put_small() { "$ifsnode" put "$work/small" --name "s$n" --peer "$peer"; }
put_big() { "$ifsnode" put "$work/big" --name "b$n" --peer "$peer"; }

phase
h=("$small" "$big" "$get")
# Kill a node other than the entry node.
victim=$(pgrep -f "run --data-dir $work/net/node3( |$)" | head -1)
kill -9 "$victim"
saved_runs=$runs runs=1
phase
runs=$saved_runs
k=("$small" "$big" "$get")
for _ in $(seq 1 150); do
    "$ifsnode" peers --data-dir "$work/net/node1" --json | grep -q '"state": "dead"' && break
    sleep 0.2
done
phase
d=("$small" "$big" "$get")

ratio() { printf '%.2fx' "$(echo "$1 / $2" | bc -l)"; }
printf '\n%-14s %10s %10s %8s %10s %8s\n' "" healthy killed ratio dead ratio
names=("put 4 KiB" "put 64 MiB" "get 64 MiB")
for i in 0 1 2; do
    printf '%-14s %9ss %9ss %8s %9ss %8s\n' "${names[$i]}" "${h[$i]}" "${k[$i]}" \
        "$(ratio "${k[$i]}" "${h[$i]}")" "${d[$i]}" "$(ratio "${d[$i]}" "${h[$i]}")"
done
echo "targets: killed <= 2x, dead <= 1.5x of healthy"
