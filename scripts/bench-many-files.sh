#!/usr/bin/env bash
# What many files cost: N files of 4 KiB put one CLI call each into folders
# of 1,000 (d0000/f00000, d0000/f00001, …, d0001/f01000, …) on a 3-node
# loopback devnet. Prints the mean seconds per put for each thousand and
# the ratio of the last thousand to the first (flat when a put costs the
# same whatever the number of files already stored), then times
# `ls d0000`, `ls -r` of everything and the rm of a few hundred files.
#
#   scripts/bench-many-files.sh
#
# Env: BENCH_FILES (default 20000); BENCH_PROFILE=release builds with
# --release (default: the dev profile, optimized here); IFS_BIN=PATH uses
# that binary and builds nothing; BENCH_KEEP=1 keeps the work dir; TMPDIR
# picks the disk.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
files="${BENCH_FILES:-20000}"
per_folder=1000
if [[ -n "${IFS_BIN:-}" ]]; then
    ifsnode="$IFS_BIN"
elif [[ "${BENCH_PROFILE:-dev}" == release ]]; then
    echo "==> cargo build --release -p ifsnode"
    cargo build --release -p ifsnode 2>&1 | tail -1
    ifsnode="$CARGO_TARGET_DIR/release/ifsnode"
else
    echo "==> cargo build -p ifsnode"
    cargo build -p ifsnode 2>&1 | tail -1
    ifsnode="$CARGO_TARGET_DIR/debug/ifsnode"
fi

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_work bench-files
# A copy, so a rebuild during a long run cannot swap the binary under it.
cp "$ifsnode" "$work/ifsnode"
ifsnode="$work/ifsnode"

"$ifsnode" devnet --nodes 3 --dir "$work/net" --base-port 0 >"$work/devnet.log" 2>&1 &
devnet_pid=$!
alive() { "$ifsnode" peers --data-dir "$work/net/node1" --json | grep -c '"state": "alive"' || true; }
for _ in $(seq 1 150); do
    [[ -f "$work/net/node3/node.addr" && "$(alive)" -ge 3 ]] && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
peer="$(cat "$work/net/node1/node.addr")"
head -c 4096 /dev/urandom >"$work/small"

name_of() { printf 'd%04d/f%05d' $(($1 / per_folder)) "$1"; }
now() { date +%s.%N; }
# seconds since $1, 3 decimals
since() { printf '%.3f' "$(echo "$(now) - $1" | bc)"; }

echo "==> $files puts of 4 KiB, $per_folder per folder, 3 nodes"
printf '%-14s %12s\n' "files" "s/put"
first="" last=""
t_block=$(now)
for i in $(seq 0 $((files - 1))); do
    "$ifsnode" put "$work/small" --name "$(name_of "$i")" --peer "$peer" >/dev/null \
        2>>"$work/errors.log" || { echo "put $(name_of "$i") failed" >&2; tail -5 "$work/errors.log" >&2; exit 1; }
    if (((i + 1) % 1000 == 0 || i + 1 == files)); then
        count=$(((i % 1000) + 1))
        per=$(printf '%.4f' "$(echo "($(now) - $t_block) / $count" | bc -l)")
        printf '%-14s %12s\n' "$((i + 1 - count))..$i" "$per"
        [[ -z "$first" ]] && first=$per
        last=$per
        t_block=$(now)
    fi
done
printf 'last thousand / first thousand: %.2f\n' "$(echo "$last / $first" | bc -l)"

t=$(now)
n=$("$ifsnode" ls d0000 --peer "$peer" --json | grep -c '"name"')
echo "ls d0000:       $(since "$t") s ($n entries)"
t=$(now)
n=$("$ifsnode" ls -r --peer "$peer" --json | grep -c '"name"')
echo "ls -r:          $(since "$t") s ($n entries)"
rms=$((files < 300 ? files : 300))
t=$(now)
for i in $(seq 0 $((rms - 1))); do
    "$ifsnode" rm "$(name_of "$i")" --peer "$peer" >/dev/null 2>>"$work/errors.log" ||
        { echo "rm $(name_of "$i") failed" >&2; tail -5 "$work/errors.log" >&2; exit 1; }
done
echo "rm of $rms:     $(since "$t") s ($(printf '%.4f' "$(echo "($(now) - $t) / $rms" | bc -l)") s each)"
n=$("$ifsnode" ls d0000 --peer "$peer" --json | grep -c '"name"' || true)
echo "ls d0000 after: $n entries"
