#!/usr/bin/env bash
# Put/get throughput of IFS on a 3-node loopback devnet, against restic
# backup/restore of the same data to a local repository, in one run.
#
#   scripts/bench-put-get.sh
#
# Env: BENCH_SIZE (default 1GiB) per data set; BENCH_RUNS (default 2) runs
# of each measurement, the best reported; BENCH_KEEP=1 keeps the work dir;
# TMPDIR picks the disk. Data sets: text-like (compressible about 2-3x
# by zstd-1, like logs) and random. For each: put R=1, put R=3, get, then
# restic backup and restore. Prints MB/s (10^6 bytes/s) and the ratios the
# issue sets as targets: put R=3 / restic backup, get / restic restore,
# and put R=1 on text-like data in absolute MB/s.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
size="${BENCH_SIZE:-1GiB}"
bytes=$(numfmt --from=iec "${size%iB}")

if ! command -v restic >/dev/null; then
    echo "==> installing restic (Debian package)"
    apt-get install -y restic >/dev/null
fi
echo "==> cargo build --release -p ifsnode"
cargo build --release -p ifsnode 2>&1 | tail -1
ifsnode="$CARGO_TARGET_DIR/release/ifsnode"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_work bench
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$work/restic-cache"

"$ifsnode" devnet --nodes 3 --dir "$work/net" --base-port 0 --capacity-interval-ms 500 \
    >"$work/devnet.log" 2>&1 &
devnet_pid=$!
for _ in $(seq 1 100); do
    grep -q "nodes running" "$work/devnet.log" 2>/dev/null && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
node1="$work/net/node1" node3="$work/net/node3"
for _ in $(seq 1 100); do
    alive=$("$ifsnode" peers --data-dir "$node1" --json | grep -c '"state": "alive"' || true)
    [[ "$alive" -ge 3 ]] && break
    sleep 0.3
done

echo "==> generating $size text-like and $size random data"
python3 - "$bytes" >"$work/text" <<'PY'
import random, sys
n = int(sys.argv[1]); out = sys.stdout.buffer
words = ("the node stores chunk receipt replica network of and peer file disk space header "
         "chain client put get record signed owner INFO WARN bytes ok").split()
rnd = random.Random()
buf = []
while n > 0:
    line = " ".join(rnd.choice(words) for _ in range(10))
    line = ("%d %s %d\n" % (rnd.getrandbits(32), line, rnd.randrange(100000))).encode()
    buf.append(line[:n]); n -= len(line)
    if len(buf) >= 4096:
        out.write(b"".join(buf)); buf.clear()
out.write(b"".join(buf))
PY
head -c "$bytes" /dev/urandom >"$work/random"

now() { date +%s.%N; }
mbs() { python3 -c "print(f'{$bytes / 1e6 / ($2 - $1):.1f}')"; }
best() { python3 -c "import sys; print(max(sys.argv[1:], key=float))" "$@"; }
results=()
row() { results+=("$(printf '%-8s %-22s %8s MB/s   (runs: %s)' "$1" "$2" "$3" "$4")"); echo "   $1 $2: $3 MB/s (runs: $4)"; }

# On a virtual machine whose host takes freed guest memory back (free page
# reporting, ballooning), the first write into memory the guest freed more
# than a few seconds ago costs a host page fault per page: writing the
# output file into the page cache then costs 2-3x the CPU, and whichever
# tool happens to follow a big free gets cheap pages. So before every timed
# operation, of IFS and of restic alike, a scratch file of the data set's
# size is written and deleted, which leaves that much freshly touched
# memory for the operation to use. Every figure is also the best of
# BENCH_RUNS runs (default 2).
warm() {
    dd if=/dev/zero of="$work/scratch" bs=8M count=$(( (bytes >> 23) + 1 )) status=none
    rm -f "$work/scratch"
}
runs="${BENCH_RUNS:-2}"

# timed ARRAY CMD...: run CMD, append its MB/s over $bytes to ARRAY.
timed() {
    local -n into="$1"
    shift
    local t0 t1
    warm
    t0=$(now)
    "$@"
    t1=$(now)
    into+=("$(mbs "$t0" "$t1")")
}
# report SET WHAT VAR ARRAY: print the best of ARRAY, keep it in VAR.
report() {
    local -n runs_of="$4"
    local b
    b=$(best "${runs_of[@]}")
    row "$1" "$2" "$b" "${runs_of[*]}"
    printf -v "$3" '%s' "$b"
}
restic_backup() { (cd "$work" && restic backup --repo "$1" -q "$2"); }

for set in text random; do
    src="$work/$set"
    for r in 1 3; do
        puts=() gets=()
        for run in $(seq 1 "$runs"); do
            name="$set-r$r-$run"
            timed puts "$ifsnode" put "$src" --name "$name" --replicas "$r" --data-dir "$node1" >/dev/null
            timed gets "$ifsnode" get "$name" "$work/got" --force --data-dir "$node3" >/dev/null
            cmp -s "$src" "$work/got" || { echo "get of $name differs" >&2; exit 1; }
            rm -f "$work/got"
            "$ifsnode" rm "$name" --data-dir "$node1" >/dev/null
        done
        report "$set" "ifs put R=$r" "put_${set}_r$r" puts
        report "$set" "ifs get (R=$r)" "get_${set}_r$r" gets
    done
    backups=() restores=()
    for run in $(seq 1 "$runs"); do
        repo="$work/restic-$set"
        restic init --repo "$repo" -q
        timed backups restic_backup "$repo" "$set"
        timed restores restic restore latest --repo "$repo" --target "$work/restore" -q
        cmp -s "$src" "$work/restore/$set" || { echo "restic restore differs" >&2; exit 1; }
        rm -rf "$work/restore" "$repo"
    done
    report "$set" "restic backup" "backup_$set" backups
    report "$set" "restic restore" "restore_$set" restores
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo
echo "== $size per data set, 3-node loopback devnet, $(nproc) cores, best of $runs runs"
printf '%s\n' "${results[@]}"
echo
echo "ratios (targets: put R=3 >= 1.0x backup, get >= 1.5x restore, put R=1 text >= 150 MB/s)"
for set in text random; do
    p3="put_${set}_r3" g3="get_${set}_r3" b="backup_$set" rs="restore_$set"
    echo "  $set: put R=3 / restic backup = $(ratio "${!p3}" "${!b}");" \
        "get / restic restore = $(ratio "${!g3}" "${!rs}")"
done
echo "  text: put R=1 = ${put_text_r1} MB/s"
