#!/usr/bin/env bash
# IFS testnet: six ifsnode containers in three routed subnets (docker-compose).
#
#   scripts/testnet.sh up                  build the images, start the net, wait until
#                                          every node is healthy and sees the others,
#                                          print the peers table of n1
#   scripts/testnet.sh down                remove containers, networks and volumes
#   scripts/testnet.sh status              containers and each node's `ifsnode status`
#   scripts/testnet.sh peers [NODE] [--json]   `ifsnode peers` of NODE (default n1)
#   scripts/testnet.sh put FILE [NODE]     put FILE through NODE (default n1), print holders
#   scripts/testnet.sh get NAME OUT [NODE] get NAME through NODE (default n5) into OUT
#   scripts/testnet.sh netem SUBNET DELAY LOSS   e.g. `netem c 80ms 1%`; `netem c off`
#   scripts/testnet.sh chaos [SCENARIO...] kill pause partition restart fill (default: all)
#   scripts/testnet.sh smoke               up, put/get across subnets, kill a holder,
#                                          get again, down (CI)
#   scripts/testnet.sh routes              re-install the routes (after a manual restart)
#   scripts/testnet.sh build               build the static ifsnode and both images
#
# Topology and the reasons for it: testnet/docker-compose.yml. CLI commands run
# on the host with the same static ifsnode as the containers, with --peer set
# to a node's container address (the host sits on all three bridges). Nothing
# is pulled: the node image is the static binary alone, the router image a
# static busybox from Debian's busybox-static.
#
# Environment:
#   IFS_STATIC_TARGET_DIR  cargo target dir of the static build
#                          (default ~/.cache/ifs/target-static)
#   IFS_TESTNET_WORK       scratch dir for files put and read back
#                          (default /var/tmp/ifs-testnet)
#   IFS_TESTNET_LOG        RUST_LOG inside the nodes (default warn)
#   IFS_TESTNET_NO_BUILD=1 reuse the existing images
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TN="$ROOT/testnet"
PROJECT=ifs-testnet
TRIPLE=x86_64-unknown-linux-gnu
STATIC_TARGET="${IFS_STATIC_TARGET_DIR:-$HOME/.cache/ifs/target-static}"
BIN="$STATIC_TARGET/$TRIPLE/release/ifsnode"
WORK="${IFS_TESTNET_WORK:-/var/tmp/ifs-testnet}"
SMALL_DISK="$WORK/n6-disk"
SMALL_DISK_SIZE=384m
export IFS_TESTNET_SMALL_DISK="$SMALL_DISK"
[[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"

NODES=(n1 n2 n3 n4 n5 n6)
ROUTERS=(r1 r2)
declare -A IP=(
    [n1]=10.61.1.11 [n2]=10.61.1.12 [n3]=10.61.2.13
    [n4]=10.61.2.14 [n5]=10.61.3.15 [n6]=10.61.3.16
)
declare -A SUBNET_OF=([n1]=a [n2]=a [n3]=b [n4]=b [n5]=c [n6]=c)
declare -A CIDR=([a]=10.61.1.0/24 [b]=10.61.2.0/24 [c]=10.61.3.0/24)
# Static routes per container: "destination via gateway" pairs.
declare -A ROUTES=(
    [a]="10.61.2.0/24 10.61.1.254 10.61.3.0/24 10.61.1.254"
    [b]="10.61.1.0/24 10.61.2.254 10.61.3.0/24 10.61.2.253"
    [c]="10.61.1.0/24 10.61.3.254 10.61.2.0/24 10.61.3.254"
    [r1]="10.61.3.0/24 10.61.2.253"
    [r2]="10.61.1.0/24 10.61.2.254"
)

say() { printf '[testnet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
compose() { docker-compose -p "$PROJECT" -f "$TN/docker-compose.yml" "$@"; }
cname() { echo "ifs-$1"; }

# ---- build ---------------------------------------------------------------

build_binary() {
    say "building the static ifsnode (target dir $STATIC_TARGET)"
    (cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR="$STATIC_TARGET" \
        cargo build --release --locked --target "$TRIPLE" -p ifsnode)
    if ! ldd "$BIN" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
        ldd "$BIN" >&2 || true
        die "$BIN is not statically linked"
    fi
}

busybox_static() {
    local bb
    for bb in /bin/busybox /usr/bin/busybox; do
        if [[ -x $bb ]] && ldd "$bb" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
            echo "$bb"
            return
        fi
    done
    say "installing Debian's busybox-static for the router image"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static </dev/null >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static </dev/null >&2; }
    echo /bin/busybox
}

build_images() {
    local ctx="$TN/.build"
    mkdir -p "$ctx/node" "$ctx/router"
    cp "$BIN" "$ctx/node/ifsnode"
    cp "$(busybox_static)" "$ctx/router/busybox"
    say "building images ifs-testnet-node and ifs-testnet-router (FROM scratch)"
    DOCKER_BUILDKIT=0 docker build -q -t ifs-testnet-node:latest -f "$TN/Dockerfile" "$ctx/node" >/dev/null
    DOCKER_BUILDKIT=0 docker build -q -t ifs-testnet-router:latest -f "$TN/router.Dockerfile" "$ctx/router" >/dev/null
}

cmd_build() {
    build_binary
    build_images
}

host_tools() {
    local missing=()
    command -v nsenter >/dev/null || missing+=(util-linux)
    command -v tc >/dev/null || missing+=(iproute2)
    command -v jq >/dev/null || missing+=(jq)
    command -v docker-compose >/dev/null || die "docker-compose is missing"
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    fi
}

# ---- routes --------------------------------------------------------------

pid_of() { docker inspect -f '{{.State.Pid}}' "$(cname "$1")" 2>/dev/null || echo 0; }
running() { [[ "$(docker inspect -f '{{.State.Running}}' "$(cname "$1")" 2>/dev/null)" == true ]]; }

# Install the static routes of one container and remove its default route
# (the route to the host's bridge address), so its traffic stays inside the
# three testnet subnets and crosses subnets only through the routers.
routes_of() {
    local c=$1 key pid
    key=${SUBNET_OF[$c]:-$c}
    pid=$(pid_of "$c")
    [[ $pid != 0 ]] || return 1
    nsenter -t "$pid" -n ip route del default 2>/dev/null || true
    set -- ${ROUTES[$key]}
    while (($#)); do
        nsenter -t "$pid" -n ip route replace "$1" via "$2" || return 1
        shift 2
    done
}

cmd_routes() {
    local c
    for c in "${ROUTERS[@]}" "${NODES[@]}"; do
        if running "$c"; then routes_of "$c" || say "cannot set the routes of $c"; fi
    done
}

# ---- talking to nodes ----------------------------------------------------

# The node's dialable TCP address with /p2p/, from the node.addr it wrote.
addr_of() {
    local n=$1 mp line
    mp=$(docker volume inspect -f '{{.Mountpoint}}' "${PROJECT}_$n" 2>/dev/null) || return 1
    [[ -f $mp/node.addr ]] || return 1
    line=$(grep -m1 "/ip4/${IP[$n]}/tcp/" "$mp/node.addr" || true)
    [[ -n $line ]] || line=$(grep -m1 '/tcp/' "$mp/node.addr" | sed "s#/ip4/[^/]*/#/ip4/${IP[$n]}/#")
    [[ -n $line ]] || return 1
    echo "$line"
}

# Run the host's ifsnode against NODE: ifs NODE SUBCOMMAND ARGS...
ifs() {
    local n=$1 sub=$2 addr
    shift 2
    addr=$(addr_of "$n") || { say "no address for $n yet"; return 1; }
    IFS_DATA_DIR="$WORK/cli" "$BIN" "$sub" --peer "$addr" "$@"
}

# Node name for an IP address or a multiaddr list.
name_of_ip() {
    local n
    for n in "${NODES[@]}"; do
        if [[ $1 == *"/ip4/${IP[$n]}/"* || $1 == "${IP[$n]}" ]]; then
            echo "$n"
            return
        fi
    done
    echo "?"
}

# Peer ids of all nodes, as "name id" lines (from node.addr).
declare -A PEER_ID=()
load_peer_ids() {
    local n a
    for n in "${NODES[@]}"; do
        a=$(addr_of "$n" 2>/dev/null) || continue
        PEER_ID[$n]=${a##*/p2p/}
    done
}
name_of_peer() {
    local n
    for n in "${NODES[@]}"; do
        [[ ${PEER_ID[$n]:-} == "$1" ]] && { echo "$n"; return; }
    done
    echo "?"
}

# The peers table of NODE with node names, subnets, RTT and hops.
peers_table() {
    local n=${1:-n1} json
    load_peer_ids
    json=$(ifs "$n" peers --json) || return 1
    printf '%-4s %-6s %-8s %-9s %-5s %-10s %s\n' NODE SUBNET STATE RTT HOPS FREE PEER
    local row
    while IFS=$'\t' read -r id state rtt hops free self; do
        local name
        name=$(name_of_peer "$id")
        printf '%-4s %-6s %-8s %-9s %-5s %-10s %s\n' "$name${self}" "${SUBNET_OF[$name]:-?}" "$state" "$rtt" "$hops" "$free" "$id"
    done < <(jq -r '.[] | [.peer_id, .state, (if .rtt_ms == null then "-" else ((.rtt_ms*10|round)/10|tostring)+"ms" end), (.hops // "-" | tostring), ((.free_bytes/1048576|floor|tostring)+"MiB"), (if .is_self then "*" else "" end)] | @tsv' <<<"$json")
}

# ---- up / down -----------------------------------------------------------

mount_small_disk() {
    mkdir -p "$SMALL_DISK"
    if ! mountpoint -q "$SMALL_DISK"; then
        mount -t tmpfs -o "size=$SMALL_DISK_SIZE,mode=0755" ifs-testnet-n6 "$SMALL_DISK" ||
            die "cannot mount a $SMALL_DISK_SIZE tmpfs on $SMALL_DISK (run as root)"
    fi
}

# Wait until every node container runs, has its routes, is healthy and sees
# all other nodes alive. $1: timeout in seconds.
wait_ready() {
    local timeout=${1:-300} start=$SECONDS n done_routes=() ok
    declare -A routed=()
    while :; do
        ok=0
        for c in "${ROUTERS[@]}" "${NODES[@]}"; do
            if running "$c"; then
                local pid
                pid=$(pid_of "$c")
                if [[ ${routed[$c]:-} != "$pid" ]] && routes_of "$c"; then routed[$c]=$pid; fi
            fi
        done
        for n in "${NODES[@]}"; do
            local h alive
            h=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(cname "$n")" 2>/dev/null || true)
            [[ $h == healthy ]] || continue
            alive=$(ifs "$n" status --json --timeout 5 2>/dev/null | jq -r '.alive_peers' 2>/dev/null || echo 0)
            [[ ${alive:-0} -ge $((${#NODES[@]} - 1)) ]] && ok=$((ok + 1))
        done
        if ((ok == ${#NODES[@]})); then
            say "all ${#NODES[@]} nodes healthy, each sees the other $((${#NODES[@]} - 1)) alive ($((SECONDS - start)) s)"
            return 0
        fi
        if ((SECONDS - start > timeout)); then
            say "not ready after ${timeout}s: $ok of ${#NODES[@]} nodes healthy and seeing all others"
            compose ps >&2 || true
            for n in "${NODES[@]}"; do
                say "--- last log lines of $n"
                docker logs --tail 15 "$(cname "$n")" >&2 2>&1 || true
            done
            return 1
        fi
        sleep 2
    done
}

cmd_up() {
    local t0=$SECONDS
    host_tools
    if [[ ${IFS_TESTNET_NO_BUILD:-} != 1 ]]; then cmd_build; fi
    [[ -x $BIN ]] || die "no static ifsnode at $BIN (run without IFS_TESTNET_NO_BUILD)"
    mkdir -p "$WORK/cli" "$WORK/files"
    mount_small_disk
    say "starting the testnet (project $PROJECT)"
    compose up -d --remove-orphans >&2
    wait_ready 300
    say "up in $((SECONDS - t0)) s; peers as seen from n1 (subnet a):"
    ifs n1 peers || true
    echo
    peers_table n1 || true
}

cmd_down() {
    say "removing containers, networks and volumes"
    local c
    for c in "${NODES[@]}" "${ROUTERS[@]}"; do
        docker unpause "$(cname "$c")" >/dev/null 2>&1 || true
    done
    compose down -v --remove-orphans -t 5 >&2 || true
    if mountpoint -q "$SMALL_DISK" 2>/dev/null; then umount "$SMALL_DISK" || true; fi
    rm -rf "$WORK"
}

cmd_status() {
    compose ps
    local n
    for n in "${NODES[@]}"; do
        echo "--- $n (${SUBNET_OF[$n]}, ${IP[$n]})"
        ifs "$n" status --timeout 5 || true
    done
}

cmd_peers() {
    local n=n1 json=0 a
    for a in "$@"; do
        case $a in
        --json) json=1 ;;
        *) n=$a ;;
        esac
    done
    if ((json)); then ifs "$n" peers --json; else
        ifs "$n" peers
        echo
        peers_table "$n"
    fi
}

# ---- netem ---------------------------------------------------------------

cmd_netem() {
    local subnet=${1:-} delay=${2:-} loss=${3:-0%} n pid
    [[ -n ${CIDR[$subnet]:-} && -n $delay ]] || die "usage: netem a|b|c DELAY [LOSS] (e.g. 80ms 1%) or netem SUBNET off"
    for n in "${NODES[@]}"; do
        [[ ${SUBNET_OF[$n]} == "$subnet" ]] || continue
        pid=$(pid_of "$n")
        [[ $pid != 0 ]] || { say "$n is not running"; continue; }
        if [[ $delay == off ]]; then
            nsenter -t "$pid" -n tc qdisc del dev eth0 root 2>/dev/null || true
            say "$n: netem removed"
        else
            nsenter -t "$pid" -n tc qdisc replace dev eth0 root netem delay "$delay" loss "$loss"
            say "$n: egress delay $delay loss $loss"
        fi
    done
}

# ---- main ----------------------------------------------------------------

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    peers) cmd_peers "$@" ;;
    routes) cmd_routes ;;
    netem) cmd_netem "$@" ;;
    put) cmd_put "$@" ;;
    get) cmd_get "$@" ;;
    chaos) cmd_chaos "$@" ;;
    smoke) cmd_smoke ;;
    -h | --help | help | "") usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
