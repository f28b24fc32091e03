#!/usr/bin/env bash
# The IFS demo: build, start a 5-node devnet on 127.0.0.1 in a temp dir, put
# a file through node 1, print each chunk's header chain and receipts, get
# it back through node 5, verify it is bit-identical, stop the nodes.
#
#   scripts/demo.sh [FILE]
#
# Without FILE a text-like sample of $DEMO_SIZE bytes (default 64MiB) is
# generated. DEMO_REPLICAS (default 3) sets R. Everything lives in a temp
# dir that is removed at the end (DEMO_KEEP=1 keeps it, with node logs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"

echo "==> cargo build --release -p ifsnode"
cargo build --release -p ifsnode
ifsnode="$CARGO_TARGET_DIR/release/ifsnode"
"$ifsnode" --version

work="$(mktemp -d "${TMPDIR:-/tmp}/ifs-demo.XXXXXX")"
devnet_pid=""
cleanup() {
    if [[ -n "$devnet_pid" ]]; then
        kill -TERM "$devnet_pid" 2>/dev/null || true
        wait "$devnet_pid" 2>/dev/null || true
    fi
    if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
        echo "==> kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
export IFS_HOME="$work/home"   # the demo user's key, created on first use
unset IFS_PEER IFS_DATA_DIR

echo "==> ifsnode devnet --nodes 5 --dir $work/net"
"$ifsnode" devnet --nodes 5 --dir "$work/net" --base-port 0 --capacity-interval-ms 500 \
    >"$work/devnet.log" 2>&1 &
devnet_pid=$!
for _ in $(seq 1 100); do
    grep -q "nodes running" "$work/devnet.log" 2>/dev/null && break
    kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
    sleep 0.2
done
cat "$work/devnet.log"
node1="$work/net/node1" node5="$work/net/node5"
for _ in $(seq 1 100); do
    alive=$("$ifsnode" peers --data-dir "$node1" --json | grep -c '"state": "alive"' || true)
    [[ "$alive" -ge 5 ]] && break
    sleep 0.3
done
echo
echo "==> ifsnode peers (as node 1 sees the network)"
"$ifsnode" peers --data-dir "$node1"

if [[ $# -ge 1 ]]; then
    src="$1"
else
    src="$work/sample.txt"
    size="${DEMO_SIZE:-64MiB}"
    bytes=$(numfmt --from=iec "${size%iB}")
    echo
    echo "==> generating $size of text-like sample data"
    # Log-like lines: compressible like real text, different every run.
    python3 - "$bytes" >"$src" <<'PY'
import random, sys
n = int(sys.argv[1]); out = sys.stdout.buffer; words = "node chunk stored replica receipt ok peer disk space header chain".split()
while n > 0:
    line = ("%d node=%04d %s %08x %s %d bytes\n" % (random.getrandbits(40), random.randrange(5000),
            random.choice(words), random.getrandbits(32), random.choice(words), random.randrange(1 << 20))).encode()
    out.write(line[:n]); n -= len(line)
PY
fi
name="$(basename "$src")"

echo
echo "==> ifsnode key show"
"$ifsnode" key show
echo
echo "==> ifsnode put $src --replicas ${DEMO_REPLICAS:-3}   (through node 1)"
"$ifsnode" put "$src" --replicas "${DEMO_REPLICAS:-3}" --data-dir "$node1" --json >"$work/put.json"
"$ifsnode" ls --data-dir "$node1"
echo
echo "==> header chains and receipts (chain: the order the chunk travelled; receipts: who signed)"
python3 - "$work/put.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
short = lambda p: p[-8:]  # as `peers` and `put` show peer ids
print(f"{r['name']}: {r['size']} bytes, version {r['version']}, {len(r['chunks'])} chunks")
for i, c in enumerate(r["chunks"]):
    chain = " → ".join(short(p) for p in c["chain"])
    print(f"  chunk {i:3} {c['id'][:16]}… {c['len']:>9} B  chain {chain}  receipts {', '.join(short(p) for p in c['nodes'])}")
EOF
echo
echo "==> ifsnode get $name   (through node 5)"
"$ifsnode" get "$name" "$work/got" --data-dir "$node5"
if cmp -s "$src" "$work/got"; then
    echo "==> verified: $(sha256sum <"$work/got" | cut -c1-16)… bit-identical to the input"
else
    echo "==> MISMATCH between $src and the file got back" >&2
    exit 1
fi
echo
echo "==> ifsnode peers (space used on each node)"
"$ifsnode" peers --data-dir "$node1"
echo "==> stopping the devnet"
