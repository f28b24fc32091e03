#!/usr/bin/env bash
# Bandwidth caps benchmark: a 3-node loopback devnet where node1 is capped
# (`ifsnode bandwidth`, default 8 Mbit/s up and down).
#
# Phase 1, priorities: node2 and node3 hold a file that node1 does not
# (node1's cap makes placement put it last); node3 then donates nothing, so
# every chunk it moves goes to node1 as offload copies. While they flow, a
# client puts a file through node1. Node1's own counters, sampled every
# second, show the copies backing off while the put runs and resuming
# after: the rates of both classes are printed per phase.
#
# Phase 2, the cap: BENCH_SECONDS (default 60) of puts (R=3, so node1
# receives every chunk) and gets through node1, two clients at once so the
# link never idles. The achieved rate is measured from node1's own byte
# counters (ifs_bandwidth_bytes_total, direction in) and from outside (the
# bytes the clients put / wall time), as Mbit/s and as a ratio to the cap
# (target: within ±10%).
#
#   scripts/bench-bandwidth.sh
#
# Environment:
#   BENCH_CAP        the cap (default 8Mbit)
#   BENCH_SECONDS    length of phase 2 (default 60)
#   BENCH_PROFILE    release (default) or debug build of ifsnode
#   IFSNODE          use this ifsnode binary instead of building one
#   BENCH_KEEP=1     keep the temp dir (node logs) afterwards
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
cap_text="${BENCH_CAP:-8Mbit}"
seconds="${BENCH_SECONDS:-60}"
profile="${BENCH_PROFILE:-release}"

if [[ -n "${IFSNODE:-}" ]]; then
    ifsnode="$IFSNODE"
else
    echo "==> cargo build --$profile -p ifsnode"
    if [[ "$profile" == release ]]; then
        cargo build --release -p ifsnode 2>&1 | tail -1
    else
        cargo build -p ifsnode 2>&1 | tail -1
    fi
    ifsnode="$CARGO_TARGET_DIR/$profile/ifsnode"
fi

source scripts/bench-lib.sh # the cwd is the repository root (see cd above)
bench_work bench-bandwidth

"$ifsnode" devnet --nodes 3 --dir "$work/net" --base-port 0 --capacity-interval-ms 500 \
    >"$work/devnet.log" 2>&1 &
devnet_pid=$!
for _ in $(seq 1 100); do
    grep -q "nodes running" "$work/devnet.log" 2>/dev/null && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
n1="$work/net/node1" n2="$work/net/node2" n3="$work/net/node3"
for _ in $(seq 1 100); do
    alive=$("$ifsnode" peers --data-dir "$n1" --json | grep -c '"state": "alive"' || true)
    [[ "$alive" -ge 3 ]] && break
    sleep 0.3
done

now() { date +%s.%N; }
admin1="$(cat "$n1/admin.addr")"
# counter DIRECTION CLASS [NAME]: node1's counter now (0 if not yet there).
counter() {
    curl -s "http://$admin1/metrics" | awk -v d="$1" -v c="$2" -v n="${3:-ifs_bandwidth_bytes_total}" '
        index($0, n "{direction=\"" d "\",class=\"" c "\"}") == 1 { v = $2 }
        END { printf "%d\n", v + 0 }'
}
mbit() { python3 -c "print(f'{$1 * 8 / 1e6 / $2:.2f}')"; }

echo "==> capping node1 at $cap_text up and down"
"$ifsnode" bandwidth --up "$cap_text" --down "$cap_text" --data-dir "$n1"
cap_bps=$("$ifsnode" bandwidth --data-dir "$n1" --json | grep -o '"down_bps":[0-9]*' | grep -o '[0-9]*$')
# Wait until node2 and node3 see the cap in node1's report.
id1=$("$ifsnode" status --data-dir "$n1" --json | grep -o '"peer_id": *"[^"]*"' | head -1 | cut -d'"' -f4)
for _ in $(seq 1 50); do
    "$ifsnode" peers --data-dir "$n2" --json | python3 -c "
import json, sys
rows = json.load(sys.stdin)
sys.exit(0 if any(r['peer_id'] == '$id1' and r.get('up_bps') == $cap_bps for r in rows) else 1)" && break
    sleep 0.3
done

echo "== phase 1: offload copies into node1 while a client puts through it"
old_mib=24
head -c $((old_mib << 20)) /dev/urandom >"$work/old"
"$ifsnode" put "$work/old" --name old --replicas 2 --data-dir "$n2" >/dev/null
holders=$("$ifsnode" status --data-dir "$n1" --json | grep -o '"chunks": *[0-9]*' | grep -o '[0-9]*$')
[[ "$holders" == 0 ]] || echo "   (node1 took $holders chunks of the old file; fewer copies will flow)"
"$ifsnode" donate 0 --data-dir "$n3" >/dev/null
samples="$work/samples"
(
    while :; do
        echo "$(now) $(counter in repair) $(counter in client)"
        sleep 1
    done
) >"$samples" &
sampler=$!
sleep 8
put_mib=8
head -c $((put_mib << 20)) /dev/urandom >"$work/new"
t_put0=$(now)
"$ifsnode" put "$work/new" --name new --replicas 2 --data-dir "$n1" >/dev/null
t_put1=$(now)
sleep 8
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
python3 - "$samples" "$t_put0" "$t_put1" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
def rate(lo, hi, col):
    pts = [r for r in rows if lo <= r[0] <= hi]
    if len(pts) < 2:
        return float("nan")
    return (pts[-1][col] - pts[0][col]) * 8 / 1e6 / (pts[-1][0] - pts[0][0])
for name, lo, hi in (("before the put", rows[0][0], t0),
                     ("during the put", t0 + 1, t1),
                     ("after the put ", t1, rows[-1][0])):
    print(f"   {name}: repair {rate(lo, hi, 1):6.2f} Mbit/s, client {rate(lo, hi, 2):6.2f} Mbit/s")
PY
yields=$(counter in repair ifs_bandwidth_yields_total)
echo "   repair pieces that waited for the client: $yields"
# The copies finish before phase 2, so it measures client traffic alone.
for _ in $(seq 1 400); do
    used=$("$ifsnode" status --data-dir "$n3" --json | grep -o '"used_bytes": *[0-9]*' | head -1 | grep -o '[0-9]*$')
    [[ "$used" == 0 ]] && break
    sleep 0.5
done
echo "   node3 holds $used bytes after the offload (0: every copy made)"
"$ifsnode" donate 100% --data-dir "$n3" >/dev/null
"$ifsnode" get new "$work/new.got" --force --data-dir "$n2" >/dev/null
cmp -s "$work/new" "$work/new.got" || { echo "get of new differs" >&2; exit 1; }

echo "== phase 2: $seconds s of puts (R=3) and gets through node1, two clients"
head -c $((4 << 20)) /dev/urandom >"$work/f"
in0=$(counter in client) out0=$(counter out client)
t0=$(now)
client() {
    local k=0
    while python3 -c "import sys; sys.exit(0 if $(now) - $t0 < $seconds else 1)"; do
        k=$((k + 1))
        "$ifsnode" put "$work/f" --name "c$1-$k" --replicas 3 --data-dir "$n1" >/dev/null
        echo put >>"$work/moved.$1"
        "$ifsnode" get "c$1-$k" "$work/got.$1" --force --data-dir "$n1" >/dev/null
        cmp -s "$work/f" "$work/got.$1" || { echo "get of c$1-$k differs" >&2; exit 1; }
    done
}
client a &
ca=$!
client b &
cb=$!
wait "$ca" "$cb"
t1=$(now)
in1=$(counter in client) out1=$(counter out client)
puts=$(cat "$work/moved.a" "$work/moved.b" | wc -l)
wall=$(python3 -c "print($t1 - $t0)")
in_bytes=$((in1 - in0)) out_bytes=$((out1 - out0))
outside=$((puts * (4 << 20)))
cap_mbit=$(python3 -c "print(f'{$cap_bps / 1e6:.2f}')")
ratio() { python3 -c "print(f'{$1 * 8 / $wall / $cap_bps:.3f}')"; }
echo
echo "== node1 capped at $cap_mbit Mbit/s, $puts puts of 4 MiB (R=3) and gets in $(printf '%.1f' "$wall") s, $(nproc) cores"
echo "   node1 counters, in:  $(mbit "$in_bytes" "$wall") Mbit/s = $(ratio "$in_bytes") of the cap"
echo "   outside (put bytes / wall): $(mbit "$outside" "$wall") Mbit/s = $(ratio "$outside") of the cap"
echo "   node1 counters, out: $(mbit "$out_bytes" "$wall") Mbit/s = $(ratio "$out_bytes") of the cap (gets served by node1)"
echo "   (target: in within 0.90-1.10 of the cap)"
