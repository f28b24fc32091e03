#!/usr/bin/env bash
# What many files cost: N files of 4 KiB put into folders of 1,000
# (d0000/f00000, d0000/f00001, …, d0001/f01000, …) on a 3-node loopback
# devnet, by one `put -r` of the whole tree (BENCH_MODE=tree, the default:
# each file's completion time comes from its `done_ms`) or by one CLI call
# per file (BENCH_MODE=each). Prints the mean seconds per put for each
# thousand and the ratio of the last thousand to the first (flat when a put
# costs the same whatever the number of files already stored), then times
# `ls d0000`, `ls -r` of everything and the rm of a few hundred files.
#
#   scripts/bench-many-files.sh
#
# Env: BENCH_FILES (default 20000); BENCH_MODE; BENCH_PROFILE=release builds with
# --release (default: the dev profile, optimized here); IFS_BIN=PATH uses
# that binary and builds nothing; BENCH_KEEP=1 keeps the work dir; TMPDIR
# picks the disk.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
files="${BENCH_FILES:-20000}"
per_folder=1000

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_ifsnode
bench_work bench-files
# A copy, so a rebuild during a long run cannot swap the binary under it.
cp "$ifsnode" "$work/ifsnode"
ifsnode="$work/ifsnode"

bench_devnet 3
head -c 4096 /dev/urandom >"$work/small"

name_of() { printf 'd%04d/f%05d' $(($1 / per_folder)) "$1"; }
now() { date +%s.%N; }
# seconds since $1, 3 decimals
since() { printf '%.3f' "$(echo "$(now) - $1" | bc)"; }

mode="${BENCH_MODE:-tree}"
echo "==> $files puts of 4 KiB, $per_folder per folder, 3 nodes ($mode)"
printf '%-14s %12s\n' "files" "s/put"
first="" last=""
t_block=$(now)
if [[ "$mode" == tree ]]; then
    for i in $(seq 0 $((files - 1))); do
        ((i % per_folder == 0)) && mkdir -p "$work/tree/$(dirname "$(name_of "$i")")"
        cp "$work/small" "$work/tree/$(name_of "$i")"
    done
    t=$(now)
    "$ifsnode" put -r "$work/tree" / --peer "$peer" --json >"$work/put.json" 2>>"$work/errors.log" ||
        { echo "put -r failed" >&2; tail -5 "$work/errors.log" >&2; exit 1; }
    echo "put -r of $files files: $(since "$t") s"
    # Per thousand: the time between its first and its last completion.
    read -r first last < <(python3 - "$work/put.json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
bad = [f["name"] for f in files if f["error"]]
if bad:
    sys.exit(f"{len(bad)} files failed, e.g. {bad[0]}")
done = sorted(f["done_ms"] for f in files)
rows = []
for k in range(0, len(done), 1000):
    block = done[k:k + 1000]
    start = done[k - 1] if k else 0
    per = (block[-1] - start) / 1000 / len(block)
    rows.append(per)
    print(f"{k}..{k + len(block) - 1}".ljust(14), f"{per:12.4f}", file=sys.stderr)
print(f"{rows[0]:.4f} {rows[-1]:.4f}")
PY
    )
    files_done=$files
fi
for i in $(seq 0 $((files - 1))); do
    [[ "$mode" == tree ]] && break
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
