#!/usr/bin/env bash
# Repair benchmark: store a file on 6 local nodes with R=3, kill the node
# holding the most chunks for good, and time how long until every chunk has
# 3 live holders again (`ifsnode ls --json` min_live_replicas = 3); print
# the repair rate in MB/s. The file is then read back and compared.
#
#   scripts/bench-repair.sh
#
# Environment:
#   BENCH_SIZE       bytes to store: a number with an optional unit, KiB MiB
#                    GiB (or K M G, powers of 1024) or KB MB GB (powers of
#                    1000); default 1GiB
#   BENCH_NODES      nodes (default 6)
#   BENCH_PROFILE    release (default) or debug build of ifsnode
#   IFSNODE          use this ifsnode binary instead of building one
#   BENCH_KEEP=1     keep the temp dir (node logs, at info level) afterwards
#   BENCH_LIMIT      give up this many seconds after the kill (default 1800)
#
# The nodes' volumes are temp dirs on one disk, so the owner reserve is set
# to 0 (a shared build machine's disk is often more than 90% "owner" data);
# each node is bounded by its volume cap alone.
#
# Capacity reports go out every 500 ms and a node is dead after 10 missed
# reports (5 s); durability passes run every second. "time to full R"
# counts from the kill; "repair MB/s" counts the victim's bytes over the
# time from when the entry node marks it dead to full R.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
# "1GiB" → 1073741824
to_bytes() {
    local t="$1" n u
    n="${t%%[!0-9]*}" u="${t#"$n"}"
    [[ -n "$n" ]] || { echo "bad size: $t" >&2; exit 2; }
    case "$u" in
        "" | B) echo "$n" ;;
        K | KiB) echo $((n << 10)) ;;
        M | MiB) echo $((n << 20)) ;;
        G | GiB) echo $((n << 30)) ;;
        KB) echo $((n * 1000)) ;;
        MB) echo $((n * 1000000)) ;;
        GB) echo $((n * 1000000000)) ;;
        *) echo "bad size: $t (want e.g. 1GiB, 256MiB, 500MB)" >&2; exit 2 ;;
    esac
}
size="$(to_bytes "${BENCH_SIZE:-1GiB}")"
nodes="${BENCH_NODES:-6}"
profile="${BENCH_PROFILE:-release}"
limit="${BENCH_LIMIT:-1800}"

if [[ -n "${IFSNODE:-}" ]]; then
    ifsnode="$IFSNODE"
else
    if [[ "$profile" == release ]]; then
        cargo build --release -p ifsnode >&2
    else
        cargo build -p ifsnode >&2
    fi
    ifsnode="$CARGO_TARGET_DIR/$profile/ifsnode"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ifs-bench-repair.XXXXXX")"
declare -a pids=()
cleanup() {
    for p in "${pids[@]}"; do
        [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export IFS_HOME="$work/home"
unset IFS_PEER IFS_DATA_DIR

now() { date +%s.%N; }
json_num() { grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }

# Each node may hold its share of every copy, with headroom.
cap=$(( size * 3 / (nodes - 1) * 2 + (256 << 20) ))
for i in $(seq 1 "$nodes"); do
    d="$work/n$i"
    mkdir -p "$d/vol"
    boot=()
    [[ $i -gt 1 ]] && boot=(--bootstrap "$(cat "$work/n1/node.addr")")
    "$ifsnode" init --data-dir "$d" --volume "$d/vol:$cap" \
        --listen /ip4/127.0.0.1/tcp/0 "${boot[@]}" >/dev/null
    sed -i 's/^owner_reserve_pct = .*/owner_reserve_pct = 0/' "$d/config.toml"
    "$ifsnode" run --data-dir "$d" --capacity-interval-ms 500 \
        --repair-interval-ms 1000 -v >"$d/log" 2>&1 &
    pids[i]=$!
    for _ in $(seq 1 100); do [[ -s "$d/node.addr" ]] && break; sleep 0.1; done
done
for _ in $(seq 1 200); do
    alive=$("$ifsnode" peers --data-dir "$work/n1" --json | grep -c '"state": "alive"' || true)
    [[ "$alive" -ge "$nodes" ]] && break
    sleep 0.3
done

head -c "$size" /dev/urandom >"$work/data.bin"
t0=$(now)
"$ifsnode" put "$work/data.bin" --name bench.bin --replicas 3 --data-dir "$work/n1" --json \
    >"$work/put.json"
t1=$(now)
echo "put $size bytes, R=3: $(echo "$size / ($t1 - $t0) / 1000000" | bc -l | xargs printf '%.1f') MB/s"

victim=0 most=-1 vbytes=0
for i in $(seq 2 "$nodes"); do
    st=$("$ifsnode" status --data-dir "$work/n$i" --json)
    c=$(echo "$st" | json_num chunks)
    if [[ "$c" -gt "$most" ]]; then
        most=$c victim=$i vbytes=$(echo "$st" | json_num used_bytes)
    fi
done
vpeer=$("$ifsnode" status --data-dir "$work/n$victim" --json | grep -o '"peer_id": *"[^"]*"' | head -1 | cut -d'"' -f4)
echo "killing node $victim ($vpeer): $most chunks, $vbytes bytes"
kill -KILL "${pids[victim]}"
wait "${pids[victim]}" 2>/dev/null || true
pids[victim]=""
tk=$(now)

td=""
while :; do
    if [[ -z "$td" ]] && "$ifsnode" peers --data-dir "$work/n1" --json \
        | tr -d '\n ' | grep -o "\"peer_id\":\"$vpeer\",\"state\":\"dead\"" >/dev/null; then
        td=$(now)
    fi
    if [[ -n "$td" ]]; then
        min=$("$ifsnode" ls -r -l --data-dir "$work/n1" --json | json_num min_live_replicas || echo 0)
        [[ "${min:-0}" -ge 3 ]] && break
    fi
    if (( $(date +%s) - ${tk%.*} > limit )); then
        echo "no full R ${limit} s after the kill; node logs: BENCH_KEEP=1" >&2
        exit 1
    fi
    sleep 0.2
done
tf=$(now)

full=$(echo "$tf - $tk" | bc -l)
rep=$(echo "$tf - $td" | bc -l)
printf 'time to full R after the kill: %.1f s (dead detected after %.1f s)\n' "$full" "$(echo "$td - $tk" | bc -l)"
printf 'repair: %d bytes in %.1f s = %.1f MB/s\n' "$vbytes" "$rep" "$(echo "$vbytes / $rep / 1000000" | bc -l)"

get_node=$(( victim == 2 ? 3 : 2 ))
"$ifsnode" get bench.bin "$work/out.bin" --data-dir "$work/n$get_node" >/dev/null
cmp "$work/data.bin" "$work/out.bin" && echo "read back through node $get_node: identical"
