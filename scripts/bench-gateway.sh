#!/usr/bin/env bash
# The gateway against the tools people back up with, in one run on one
# 3-node loopback devnet (R=3):
#   large: a 1 GiB random file by `ifsnode put` (the baseline), through the
#          S3 gateway with the aws CLI (multipart, 8 MiB parts) as it
#          comes and with `payload_signing_enabled = false` (CRC32
#          checksums, checked by the gateway, instead of a SHA-256 of
#          every payload: what README advises for a loopback gateway),
#          through the S3 gateway with rclone's s3 backend as it comes, by
#          `restic backup` to a local repository and by `rclone copy` to a
#          local folder: MB/s and the ratios S3 / put (target >= 0.80);
#   small: a tree of N files of 4 KiB (default 10,000, in folders of
#          1,000) by `ifsnode put -r`, through S3 (`aws s3 cp --recursive`),
#          by restic and by rclone: files/s and the ratios against restic
#          (target: put -r >= 1.0x restic).
# restic and rclone only read and write local disk, so they bound what a
# local tool can do; IFS encrypts, places three copies over loopback TCP
# and collects a receipt for every copy.
#
#   scripts/bench-gateway.sh
#
# Env: BENCH_FILES (10000), BENCH_LARGE_MIB (1024), BENCH_S3_FILES (1000:
# the files of the tree sent through S3); BENCH_ROUNDS (3: the large file,
# and then the tree by put -r, restic and rclone, is sent each way this
# many times, in turn, and the medians compared);
# BENCH_SETTLE (31: seconds between a removed copy and the next one); BENCH_PROFILE=dev builds the
# dev profile (default: --release, what users run);
# IFS_BIN=PATH uses that binary; BENCH_KEEP=1 keeps the work dir;
# BENCH_PIN=1 keeps the nodes on CPU 0 and the clients on CPU 1. Needs the
# aws CLI (pip install awscli); restic and rclone are measured when
# installed (apt-get install restic rclone).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
export BENCH_PROFILE="${BENCH_PROFILE:-release}"
files="${BENCH_FILES:-10000}"
large_mib="${BENCH_LARGE_MIB:-1024}"
command -v aws >/dev/null || { echo "the aws CLI is missing: pip install awscli" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
bench_ifsnode
bench_work bench-gateway
cp "$ifsnode" "$work/ifsnode"
ifsnode="$work/ifsnode"
serve_pid=""
stop_serve() { [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true; bench_cleanup; }
trap stop_serve EXIT

bench_devnet 3
node_pids() { pgrep -f "run --data-dir $work/net/"; }
# BENCH_PIN=1: the nodes on CPU 0, everything on the client's side (ifsnode
# put, the gateway, the aws CLI, restic, rclone) on CPU 1, as when the
# nodes are other machines; by default all share every core.
if [[ "${BENCH_PIN:-0}" == 1 ]]; then
    (($(nproc) >= 2)) || { echo "BENCH_PIN=1 needs 2 CPUs" >&2; exit 1; }
    for p in $(node_pids); do taskset -a -p -c 0 "$p" >/dev/null; done
    taskset -p -c 1 $$ >/dev/null
    echo "==> pinned: the nodes on CPU 0, the clients and tools on CPU 1"
fi

bench_s3_gateway
s3() { aws --endpoint-url "$url" "$@"; }
s3 s3 mb s3://bench >/dev/null

now() { date +%s.%N; }
secs() { echo "$(now) - $1" | bc; }
rate() { printf '%.1f' "$(echo "$1 / $2" | bc -l)"; }
have() { command -v "$1" >/dev/null 2>&1; }
export RESTIC_PASSWORD=bench
# rclone is given every remote on its command line: an empty config.
export RCLONE_CONFIG="$work/rclone.conf"
: >"$RCLONE_CONFIG"

echo "==> data: ${large_mib} MiB random file, $files files of 4 KiB"
head -c $((large_mib << 20)) /dev/urandom >"$work/large.bin"
mkdir -p "$work/tree"
for ((i = 0; i < files; i++)); do
    d="$work/tree/d$((i / 1000))"
    [[ -d "$d" ]] || mkdir -p "$d"
    head -c 4096 /dev/urandom >"$d/f$i"
done
mb=$(echo "$large_mib * 1048576 / 1000000" | bc -l)

# CPU seconds each side spent, to tell where the time of a run went (on a
# small machine the nodes, the gateway and the S3 client share the cores).
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
node_ticks() {
    local t=0 p
    for p in $(node_pids); do t=$((t + $(ticks "$p"))); done
    echo "$t"
}
cpu_s() { printf '%.1f' "$(echo "$1 / $hz" | bc -l)"; }
TIMEFORMAT='%U %S'
client_cpu() { awk '{printf "%.1f", $1 + $2}' "$work/time"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# Each copy is removed once measured, so the nodes' donations (the disk's
# free space split three ways) hold one copy at a time. The next copy
# waits until the freed inodes are written back and 30 s old: ext4
# without a journal (this machine's root filesystem, among others) skips
# inodes freed less than 30 s before (5 min while their table block is
# dirty) each time it allocates one, and scanning past a thousand of them
# per file made whatever came next cost the nodes up to half again the CPU.
settle() { sync; sleep "${BENCH_SETTLE:-31}"; }
# The tree first, three times each way, in turn, into fresh names and
# fresh repositories, and the medians: one put of 10,000 small files takes
# about a second, so one measurement is at the mercy of whatever else the
# machine does in that second. It goes before the large file because
# every store of a small file on ext4 scans past the inodes freed in the
# last minutes (see settle), and the large file's rounds free thousands.
rounds="${BENCH_ROUNDS:-3}"
t_put=() t_restic=() t_rclone=()
for ((round = 1; round <= rounds; round++)); do
    printf '\n%-34s %12s\n' "tree ($files x 4 KiB), round $round/$rounds" "files/s"
    t=$(now); "$ifsnode" put -r "$work/tree" "tree$round" --peer "$peer" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    v=$(rate "$files" "$(secs "$t")"); t_put+=("$v"); printf '%-34s %12s\n' "ifsnode put -r (R=3)" "$v"
    if have restic; then
        restic init -q -r "$work/restic-tree$round"
        t=$(now); restic backup -q -r "$work/restic-tree$round" "$work/tree"
        v=$(rate "$files" "$(secs "$t")"); t_restic+=("$v"); printf '%-34s %12s\n' "restic backup (local repo)" "$v"
    fi
    if have rclone; then
        t=$(now); rclone copy "$work/tree" "$work/rclone-tree$round"
        v=$(rate "$files" "$(secs "$t")"); t_rclone+=("$v"); printf '%-34s %12s\n' "rclone copy (local folder)" "$v"
    fi
done
put_fps=$(median "${t_put[@]}")
printf '\n%-34s %12s\n' "tree ($files x 4 KiB), median of $rounds" "files/s"
printf '%-34s %12s\n' "ifsnode put -r (R=3)" "$put_fps"

# One round: each way once, in turn. Several rounds (BENCH_ROUNDS, 3) and
# their medians, because one run on a shared 2-core machine drifts by
# ±10% from one minute to the next.
r_put=() r_signed=() r_crc=() r_rclone=()
for ((round = 1; round <= rounds; round++)); do
    printf '\n%-34s %12s\n' "large file (${large_mib} MiB), round $round/$rounds" "MB/s"
    n0=$(node_ticks)
    t=$(now)
    { time "$ifsnode" put "$work/large.bin" --peer "$peer" >/dev/null 2>"$work/err"; } 2>"$work/time" || { cat "$work/err"; exit 1; }
    v=$(rate "$mb" "$(secs "$t")"); r_put+=("$v"); printf '%-34s %12s\n' "ifsnode put (R=3)" "$v"
    echo "  CPU: nodes $(cpu_s $(($(node_ticks) - n0))) s, client $(client_cpu) s"
    "$ifsnode" rm large.bin --peer "$peer" >/dev/null
    settle
    n0=$(node_ticks) g0=$(ticks "$serve_pid")
    t=$(now)
    { time s3 s3 cp --only-show-errors "$work/large.bin" s3://bench/large-signed.bin; } 2>"$work/time"
    v=$(rate "$mb" "$(secs "$t")"); r_signed+=("$v"); printf '%-34s %12s\n' "aws s3 cp, signed payload" "$v"
    echo "  CPU: nodes $(cpu_s $(($(node_ticks) - n0))) s, gateway $(cpu_s $(($(ticks "$serve_pid") - g0))) s, aws CLI $(client_cpu) s"
    s3 s3 rm --only-show-errors s3://bench/large-signed.bin
    settle
    printf '[default]\ns3 =\n    payload_signing_enabled = false\n' >"$work/aws-unsigned.config"
    n0=$(node_ticks) g0=$(ticks "$serve_pid")
    t=$(now)
    { time AWS_CONFIG_FILE="$work/aws-unsigned.config" s3 s3 cp --only-show-errors "$work/large.bin" s3://bench/large.bin; } 2>"$work/time"
    v=$(rate "$mb" "$(secs "$t")"); r_crc+=("$v"); printf '%-34s %12s\n' "aws s3 cp, CRC32 (README)" "$v"
    echo "  CPU: nodes $(cpu_s $(($(node_ticks) - n0))) s, gateway $(cpu_s $(($(ticks "$serve_pid") - g0))) s, aws CLI $(client_cpu) s"
    s3 s3 rm --only-show-errors s3://bench/large.bin
    settle
    # rclone's s3 backend as it comes (multipart, 4 parts at once, an MD5
    # of each part and of the whole file, signed payloads over plain HTTP).
    if have rclone; then
        n0=$(node_ticks) g0=$(ticks "$serve_pid")
        t=$(now)
        { time rclone copyto "$work/large.bin" \
            ":s3,provider=Other,env_auth=true,region=us-east-1,endpoint='$url':bench/large-rclone.bin" \
            2>"$work/err" || { cat "$work/err"; exit 1; }; } 2>"$work/time"
        v=$(rate "$mb" "$(secs "$t")"); r_rclone+=("$v"); printf '%-34s %12s\n' "rclone copy via S3 gateway" "$v"
        echo "  CPU: nodes $(cpu_s $(($(node_ticks) - n0))) s, gateway $(cpu_s $(($(ticks "$serve_pid") - g0))) s, rclone $(client_cpu) s"
        s3 s3 rm --only-show-errors s3://bench/large-rclone.bin
        ((round == rounds)) || settle
    fi
done
printf '\n%-34s %12s\n' "large file (${large_mib} MiB), median of $rounds" "MB/s"
put_mbs=$(median "${r_put[@]}"); printf '%-34s %12s\n' "ifsnode put (R=3)" "$put_mbs"
signed_mbs=$(median "${r_signed[@]}"); printf '%-34s %12s\n' "aws s3 cp, signed payload" "$signed_mbs"
s3_mbs=$(median "${r_crc[@]}"); printf '%-34s %12s\n' "aws s3 cp, CRC32 (README)" "$s3_mbs"
rclone_s3_mbs=""
if ((${#r_rclone[@]})); then
    rclone_s3_mbs=$(median "${r_rclone[@]}"); printf '%-34s %12s\n' "rclone copy via S3 gateway" "$rclone_s3_mbs"
fi
if have restic; then
    restic init -q -r "$work/restic-large"
    t=$(now); restic backup -q -r "$work/restic-large" "$work/large.bin"
    printf '%-34s %12s\n' "restic backup (local repo)" "$(rate "$mb" "$(secs "$t")")"
fi
if have rclone; then
    t=$(now); rclone copy "$work/large.bin" "$work/rclone-large"
    printf '%-34s %12s\n' "rclone copy (local folder)" "$(rate "$mb" "$(secs "$t")")"
fi
printf '%-34s %12s\n' "ratio S3 signed / ifsnode put" "$(printf '%.2f' "$(echo "$signed_mbs / $put_mbs" | bc -l)")"
printf '%-34s %12s\n' "ratio S3 CRC32 / ifsnode put" "$(printf '%.2f' "$(echo "$s3_mbs / $put_mbs" | bc -l)")"
if [[ -n "$rclone_s3_mbs" ]]; then
    printf '%-34s %12s\n' "ratio rclone S3 / ifsnode put" "$(printf '%.2f' "$(echo "$rclone_s3_mbs / $put_mbs" | bc -l)")"
fi
rm -f "$work/large.bin"
rm -rf "$work/restic-large" "$work/rclone-large"

# Through S3 every object is a whole put (its own probe, reservations and
# folder-record write), so only the first folder of the tree goes that way
# unless BENCH_S3_FILES says otherwise (a multiple of 1,000).
s3_files="${BENCH_S3_FILES:-1000}"
s3_dirs=$(( (s3_files + 999) / 1000 ))
t=$(now)
for ((d = 0; d < s3_dirs; d++)); do
    s3 s3 cp --only-show-errors --recursive "$work/tree/d$d" "s3://bench/tree/d$d"
done
s3_fps=$(rate "$((s3_dirs * 1000 < files ? s3_dirs * 1000 : files))" "$(secs "$t")")
printf '\n%-34s %12s\n' "tree ($files x 4 KiB), medians" "files/s"
printf '%-34s %12s\n' "ifsnode put -r (R=3)" "$put_fps"
printf '%-34s %12s\n' "aws s3 cp --recursive (one run)" "$s3_fps"
restic_fps=""
if ((${#t_restic[@]})); then
    restic_fps=$(median "${t_restic[@]}"); printf '%-34s %12s\n' "restic backup (local repo)" "$restic_fps"
fi
if ((${#t_rclone[@]})); then
    printf '%-34s %12s\n' "rclone copy (local folder)" "$(median "${t_rclone[@]}")"
fi
if [[ -n "$restic_fps" ]]; then
    printf '%-34s %12s\n' "ratio put -r / restic" "$(printf '%.2f' "$(echo "$put_fps / $restic_fps" | bc -l)")"
    printf '%-34s %12s\n' "ratio S3 / restic" "$(printf '%.2f' "$(echo "$s3_fps / $restic_fps" | bc -l)")"
fi
