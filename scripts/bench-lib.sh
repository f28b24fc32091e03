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

# bench_s3_gateway: create an S3 access key (exported as the aws CLI's
# credentials), start `ifsnode serve --s3` against $peer, set $serve_pid
# and $url (the endpoint). The caller stops $serve_pid on exit.
bench_s3_gateway() {
    local key_json
    key_json="$("$ifsnode" s3-key create --json)"
    AWS_ACCESS_KEY_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_key_id"])' "$key_json")"
    AWS_SECRET_ACCESS_KEY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_access_key"])' "$key_json")"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
    unset AWS_CA_BUNDLE
    "$ifsnode" serve --s3 127.0.0.1:0 --peer "$peer" >"$work/serve.out" 2>"$work/serve.log" &
    serve_pid=$!
    local _i
    for _i in $(seq 1 150); do
        grep -q '^s3: ' "$work/serve.out" 2>/dev/null && break
        sleep 0.2
    done
    url="$(sed -n 's/^s3: //p' "$work/serve.out")"
    url="${url%/}"
    [[ -n "$url" ]] || { cat "$work/serve.log"; exit 1; }
}
