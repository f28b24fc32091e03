# Sourced by scripts/bench*.sh (not run on its own).
# bench_work NAME: a fresh work dir in $work, removed on exit (BENCH_KEEP=1
# keeps it), with its own user key dir; a devnet whose pid the script puts
# in $devnet_pid is stopped on exit too.

bench_cleanup() {
    if [[ -n "${devnet_pid:-}" ]]; then
        kill -TERM "$devnet_pid" 2>/dev/null || true
        wait "$devnet_pid" 2>/dev/null || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}

bench_work() {
    work="$(mktemp -d "${TMPDIR:-/tmp}/ifs-$1.XXXXXX")"
    devnet_pid=""
    trap bench_cleanup EXIT
    export IFS_HOME="$work/home"
    unset IFS_PEER IFS_DATA_DIR
}

# bench_ifsnode: set $ifsnode to $IFS_BIN, or build the dev profile (the
# release one with BENCH_PROFILE=release) and use that.
bench_ifsnode() {
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
}

# bench_devnet N: start `ifsnode devnet` of N nodes in $work/net, wait until
# node1 sees all N alive, and set $peer to node1's address.
bench_devnet() {
    local n="$1"
    "$ifsnode" devnet --nodes "$n" --dir "$work/net" --base-port 0 >"$work/devnet.log" 2>&1 &
    devnet_pid=$!
    local _i alive
    for _i in $(seq 1 150); do
        alive="$("$ifsnode" peers --data-dir "$work/net/node1" --json 2>/dev/null | grep -c '"state": "alive"' || true)"
        [[ -f "$work/net/node$n/node.addr" && "$alive" -ge "$n" ]] && break
        kill -0 "$devnet_pid" 2>/dev/null || { cat "$work/devnet.log"; exit 1; }
        sleep 0.2
    done
    peer="$(cat "$work/net/node1/node.addr")"
}
