#!/usr/bin/env bash
# Listing a large bucket through the S3 gateway: put a tree of N tiny
# files (default 20,000, in folders of 1,000) with `ifsnode put -r`, then
# time `aws s3 ls --recursive` of it (ListObjectsV2, 1,000 keys a page)
# BENCH_ROUNDS times (default 2): keys/s. Without a kept listing every
# page walks the whole tree again.
#
#   scripts/bench-s3-list.sh
#
# Env: BENCH_FILES (20000), BENCH_ROUNDS (2), BENCH_PROFILE=dev builds the
# dev profile (default: --release), IFS_BIN=PATH uses that binary,
# BENCH_KEEP=1 keeps the work dir. Needs the aws CLI (pip install awscli).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
export BENCH_PROFILE="${BENCH_PROFILE:-release}"
files="${BENCH_FILES:-20000}"
command -v aws >/dev/null || { echo "the aws CLI is missing: pip install awscli" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_ifsnode
bench_work bench-s3-list
serve_pid=""
stop_serve() { [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true; bench_cleanup; }
trap stop_serve EXIT
bench_devnet 3

bench_s3_gateway

echo "==> $files files into bucket 'bench' (put -r)"
mkdir -p "$work/tree"
for ((i = 0; i < files; i++)); do
    d="$work/tree/d$((i / 1000))"
    [[ -d "$d" ]] || mkdir -p "$d"
    printf '%d' "$i" >"$d/f$i"
done
"$ifsnode" put -r "$work/tree" bench --peer "$peer" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }

printf '\n%-34s %10s %10s\n' "aws s3 ls --recursive" "seconds" "keys/s"
for ((round = 1; round <= ${BENCH_ROUNDS:-2}; round++)); do
    t=$(date +%s.%N)
    n=$(aws --endpoint-url "$url" s3 ls --recursive s3://bench | wc -l)
    s=$(echo "$(date +%s.%N) - $t" | bc)
    [[ "$n" == "$files" ]] || { echo "listed $n keys of $files" >&2; exit 1; }
    printf '%-34s %10.2f %10.0f\n' "round $round ($n keys)" "$s" "$(echo "$n / $s" | bc -l)"
done
