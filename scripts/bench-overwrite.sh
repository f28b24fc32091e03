#!/usr/bin/env bash
# What putting one name over and over costs, round by round, on a 3-node
# loopback devnet (R=3): each round puts a fresh random file of
# BENCH_MIB MiB under the same name (a new version, new chunks), then
# waits for the nodes to free the old version's chunks. A file record
# that kept something of every old version would make each round cost
# the nodes more than the one before; this prints put MB/s and the
# nodes' CPU seconds per round, and the last three rounds against the
# first three (medians).
#
#   scripts/bench-overwrite.sh
#
# Env: BENCH_MIB (256), BENCH_ROUNDS (10), BENCH_SETTLE (31: seconds
# between rounds, for the old chunks to be freed and their inodes to age
# past ext4's 30 s reuse window); IFS_BIN=PATH uses that binary,
# BENCH_PROFILE=dev builds the dev profile (default --release);
# BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
export BENCH_PROFILE="${BENCH_PROFILE:-release}"
mib="${BENCH_MIB:-256}"
rounds="${BENCH_ROUNDS:-10}"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_ifsnode
bench_work bench-overwrite
bench_devnet 3
node_pids() { pgrep -f "run --data-dir $work/net/"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
node_ticks() {
    local t=0 p
    for p in $(node_pids); do t=$((t + $(ticks "$p"))); done
    echo "$t"
}
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
mb=$(echo "$mib * 1048576 / 1000000" | bc -l)

printf '%-8s %10s %14s %14s\n' round "put MB/s" "nodes CPU s" "stored MiB"
declare -a rates cpus
for ((round = 1; round <= rounds; round++)); do
    head -c $((mib << 20)) /dev/urandom >"$work/file.bin"
    n0=$(node_ticks)
    t=$(now)
    "$ifsnode" put "$work/file.bin" --name same.bin --peer "$peer" >/dev/null 2>"$work/err" ||
        { cat "$work/err"; exit 1; }
    rates+=("$(printf '%.1f' "$(echo "$mb / ($(now) - $t)" | bc -l)")")
    cpus+=("$(printf '%.2f' "$(echo "($(node_ticks) - $n0) / $hz" | bc -l)")")
    sync
    sleep "${BENCH_SETTLE:-31}"
    stored=$(du -sm "$work/net" | awk '{print $1}')
    printf '%-8s %10s %14s %14s\n' "$round" "${rates[-1]}" "${cpus[-1]}" "$stored"
done
# The old version's chunks are freed by the nodes' next durability pass
# (every 60 s), which sometimes overlaps a put: compare medians of three.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
k=$((rounds < 3 ? rounds : 3))
ratio() { printf '%.2f' "$(echo "$(median "${@:k+1}") / $(median "${@:1:k}")" | bc -l)"; }
printf '\nlast %d rounds / first %d (medians): put MB/s %sx, nodes CPU %sx\n' "$k" "$k" \
    "$(ratio "${rates[@]:0:k}" "${rates[@]: -k}")" "$(ratio "${cpus[@]:0:k}" "${cpus[@]: -k}")"
