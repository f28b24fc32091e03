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
#   scripts/testnet.sh netem SUBNET DELAY LOSS   e.g. `netem c 80ms 1%` (needs the kernel's
#                                          netem qdisc); `netem c rate 8mbit` (tbf cap);
#                                          `netem c off`; `netem c show`
#   scripts/testnet.sh chaos [SCENARIO...] kill pause partition restart fill (default: all)
#   scripts/testnet.sh smoke               up, put/get across subnets, kill a holder,
#                                          get again, down (CI)
#   scripts/testnet.sh routes              re-install the routes (after a manual restart)
#   scripts/testnet.sh nat [CMD]           the NAT testnet (scripts/nat-testnet.sh): home nets
#                                          behind cone and symmetric NAT, relays, hole punching
#   scripts/testnet.sh build               build the static ifsnode and both images
#
# Topology and the reasons for it: testnet/docker-compose.yml. CLI commands run
# the host's copy of the static ifsnode inside the network namespace of the
# node they talk to (nsenter), with --peer set to that node's address, so the
# client sits in the node's subnet; IFS_TESTNET_CLIENT=host runs them on the
# host instead (it sits on all three bridges). Nothing
# is pulled: the node image is the static binary alone, the router image a
# static busybox from Debian's busybox-static.
#
# Environment:
#   IFS_STATIC_TARGET_DIR  cargo target dir of the static build
#                          (default ~/.cache/ifs/target-static)
#   IFS_TESTNET_WORK       scratch dir for files put and read back
#                          (default /var/tmp/ifs-testnet)
#   IFS_TESTNET_LOG        RUST_LOG inside the nodes (default warn)
#   IFS_TESTNET_NO_BUILD=1 use the static ifsnode already built (no cargo)
#   IFS_TESTNET_CLIENT     where the CLI runs: node (default, in the network
#                          namespace of the node it talks to) or host
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TN="$ROOT/testnet"
PROJECT=ifs-testnet
TRIPLE=x86_64-unknown-linux-gnu
STATIC_TARGET="${IFS_STATIC_TARGET_DIR:-$HOME/.cache/ifs/target-static}"
BIN="$STATIC_TARGET/$TRIPLE/release/ifsnode"
WORK="${IFS_TESTNET_WORK:-/var/tmp/ifs-testnet}"
# Each node's chunk pieces live on a host tmpfs of its own (see
# testnet/docker-compose.yml): a fixed capacity, whatever the host's disk.
DISKS="$WORK/disks"
DISK_SIZE=2g
SMALL_DISK="$DISKS/n6"
SMALL_DISK_SIZE=384m
export IFS_TESTNET_DISKS="$DISKS"
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
# Each node's address and routes live in its nX-net container (see
# testnet/docker-compose.yml), which sets them itself at start; the routers
# set theirs too. `routes` re-installs all of them from the host with nsenter,
# for repairs after manual changes.

# The container holding NAME's network namespace.
netns_of() { if [[ -n ${SUBNET_OF[$1]:-} ]]; then echo "ifs-$1-net"; else echo "ifs-$1"; fi; }
pid_of() { docker inspect -f '{{.State.Pid}}' "$(netns_of "$1")" 2>/dev/null || echo 0; }
running() { [[ "$(docker inspect -f '{{.State.Running}}' "$(cname "$1")" 2>/dev/null)" == true ]]; }

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
        routes_of "$c" || say "cannot set the routes of $c"
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

# Where the CLI runs. "node" (the default): in the network namespace of the
# node it talks to, so a put through n1 is a client in subnet a that reaches
# the other subnets through the routers, as a user's machine beside n1
# would. "host": on the host, which sits on all three bridges and reaches
# every node directly, even across a cut subnet.
CLIENT_AT="${IFS_TESTNET_CLIENT:-node}"

# Run the host's ifsnode against NODE: ifs NODE SUBCOMMAND ARGS...
ifs() {
    local n=$1 sub=$2 addr pid
    shift 2
    addr=$(addr_of "$n") || { say "no address for $n yet"; return 1; }
    if [[ $CLIENT_AT == host ]]; then
        IFS_DATA_DIR="$WORK/cli" IFS_HOME="$WORK/cli" "$BIN" "$sub" --peer "$addr" "$@"
    else
        pid=$(pid_of "$n")
        [[ $pid != 0 ]] || { say "the network namespace of $n is gone"; return 1; }
        IFS_DATA_DIR="$WORK/cli" IFS_HOME="$WORK/cli" nsenter -t "$pid" -n "$BIN" "$sub" --peer "$addr" "$@"
    fi
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
        [[ $a == */p2p/* ]] && PEER_ID[$n]=${a##*/p2p/}
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

mount_disks() {
    local n dir size
    for n in "${NODES[@]}"; do
        dir="$DISKS/$n"
        size=$DISK_SIZE
        [[ $dir == "$SMALL_DISK" ]] && size=$SMALL_DISK_SIZE
        mkdir -p "$dir"
        if ! mountpoint -q "$dir"; then
            mount -t tmpfs -o "size=$size,mode=0755" "ifs-testnet-$n" "$dir" ||
                die "cannot mount a $size tmpfs on $dir (run as root)"
        fi
    done
}

umount_disks() {
    local dir
    for dir in "$DISKS"/*; do
        if mountpoint -q "$dir" 2>/dev/null; then umount "$dir" || true; fi
    done
}

KICKS="" # nodes wait_ready had to restart
# Wait until every node container is healthy and sees
# all other nodes alive. $1: timeout in seconds.
wait_ready() {
    local timeout=${1:-300} start=$SECONDS n ok
    declare -A lonely=()
    while :; do
        ok=0
        for n in "${NODES[@]}"; do
            local h alive
            alive=$({ ifs "$n" status --json --timeout 5 2>/dev/null || true; } | jq -r '.alive_peers // 0' 2>/dev/null | head -n1)
            [[ $alive =~ ^[0-9]+$ ]] || alive=0
            # A node dials its bootstrap peers once, at start: one that
            # started while its seeds were down stays alone. Restart it.
            if running "$n" && ((alive == 0)) && [[ -n $(addr_of "$n" 2>/dev/null) ]]; then
                lonely[$n]=$((${lonely[$n]:-0} + 1))
                if ((lonely[$n] >= 15)); then
                    say "$n has seen no peer for 30 s (its seeds were down when it started): restarting it"
                    KICKS+=" $n"
                    docker restart -t 5 "$(cname "$n")" >/dev/null || true
                    lonely[$n]=0
                fi
            else
                lonely[$n]=0
            fi
            h=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(cname "$n")" 2>/dev/null || true)
            [[ $h == healthy ]] || continue
            [[ $alive -ge $((${#NODES[@]} - 1)) ]] && ok=$((ok + 1))
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
    if [[ ${IFS_TESTNET_NO_BUILD:-} != 1 ]]; then build_binary; fi
    [[ -x $BIN ]] || die "no static ifsnode at $BIN (run without IFS_TESTNET_NO_BUILD)"
    build_images
    mkdir -p "$WORK/cli" "$WORK/files"
    mount_disks
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
    umount_disks
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
# A subnet's link is shaped on both sides: on each of its nodes' eth0 (what
# leaves the nodes) and on the router interfaces that face it (what enters
# the subnet from the others). tc runs from the host inside the namespaces.

# "router device" for each router interface on SUBNET.
router_ifaces() {
    local prefix=${CIDR[$1]%0/24} r pid dev
    for r in "${ROUTERS[@]}"; do
        pid=$(pid_of "$r")
        [[ $pid != 0 ]] || continue
        dev=$(nsenter -t "$pid" -n ip -o -4 addr show | awk -v p="$prefix" 'index($4, p) == 1 { print $2 }')
        [[ -n $dev ]] && echo "$r $dev"
    done
}

# Does this kernel have the netem qdisc? Tried in a throwaway namespace.
have_netem() {
    unshare -n sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms' 2>"$WORK/tc.err"
}

no_netem() {
    local subnet=$1
    say "this kernel ($(uname -r)) has no netem qdisc: tc says \"$(head -n1 "$WORK/tc.err")\""
    say "  (it needs CONFIG_NET_SCH_NETEM, built in or as module sch_netem; $( [[ -d /lib/modules/$(uname -r) ]] && echo "no such module is loaded" || echo "this machine has no /lib/modules/$(uname -r) to load it from"))"
    say "  a delay or loss cannot be emulated here, and nothing was changed."
    say "  what works: a bandwidth cap with tbf, e.g. '$0 netem $subnet rate 8mbit';"
    say "  it adds delay only under load (packets queue for at most 400 ms, then drop)."
    exit 2
}

cmd_netem() {
    local subnet=${1:-} what=${2:-} loss=${3:-0%} n pid qdisc target dev r
    [[ -n ${CIDR[$subnet]:-} && -n $what ]] ||
        die "usage: netem a|b|c DELAY [LOSS] (e.g. 80ms 1%), netem SUBNET rate RATE (e.g. 8mbit), netem SUBNET off|show"
    mkdir -p "$WORK"
    case $what in
    off | show) qdisc="" ;;
    rate) qdisc="tbf rate ${3:?rate needed, e.g. 8mbit} burst 32kbit latency 400ms" ;;
    *)
        have_netem || no_netem "$subnet"
        qdisc="netem delay $what loss $loss"
        ;;
    esac
    # Targets: "label pid device".
    local targets=()
    for n in "${NODES[@]}"; do
        [[ ${SUBNET_OF[$n]} == "$subnet" ]] || continue
        targets+=("$n $(pid_of "$n") eth0")
    done
    while read -r r dev; do
        [[ -n $r ]] && targets+=("$r($dev) $(pid_of "$r") $dev")
    done < <(router_ifaces "$subnet")
    for target in "${targets[@]}"; do
        read -r n pid dev <<<"$target"
        [[ $pid != 0 ]] || { say "$n is not running"; continue; }
        if [[ $what == show ]]; then
            printf '%-10s %s\n' "$n" "$(nsenter -t "$pid" -n tc qdisc show dev "$dev" | head -n1)"
        elif [[ -z $qdisc ]]; then
            nsenter -t "$pid" -n tc qdisc del dev "$dev" root 2>/dev/null || true
            say "$n: egress shaping removed"
        elif ! nsenter -t "$pid" -n tc qdisc replace dev "$dev" root $qdisc 2>"$WORK/tc.err"; then
            grep -q 'qdisc kind is unknown' "$WORK/tc.err" && [[ $qdisc == netem* ]] && no_netem "$subnet"
            die "tc on $n: $(cat "$WORK/tc.err")"
        else
            say "$n: egress $qdisc"
        fi
    done
}

# ---- put / get ----------------------------------------------------------

# put_file NODE FILE NAME: store FILE as NAME through NODE; prints put's JSON.
put_file() {
    local n=$1 file=$2 name=$3
    ifs "$n" put "$file" --name "$name" --json
}

# get_file NODE NAME OUT: read NAME back through NODE into OUT.
get_file() {
    local n=$1 name=$2 out=$3
    ifs "$n" get "$name" "$out" --force >/dev/null
}

# Holder node names of a put, from its JSON.
holders_of() {
    load_peer_ids
    local id
    for id in $(jq -r '[.chunks[].nodes[]] | unique | .[]' <<<"$1"); do
        name_of_peer "$id"
    done | sort -u | tr '\n' ' '
}

# Chunk replicas per holder of a put, from its JSON: "n1:3 n3:5 ...".
holder_counts() {
    load_peer_ids
    local id c
    jq -r '[.chunks[].nodes[]] | group_by(.) | .[] | "\(.[0]) \(length)"' <<<"$1" |
        while read -r id c; do echo "$(name_of_peer "$id"):$c"; done | sort | tr '\n' ' '
}

cmd_put() {
    local file=${1:-} n=${2:-n1} name out
    [[ -f $file ]] || die "usage: put FILE [NODE]"
    name=$(basename "$file")
    out=$(put_file "$n" "$file" "$name") || return 1
    echo "$out"
    say "put $name through $n (subnet ${SUBNET_OF[$n]}); $(jq '.chunks | length' <<<"$out") chunks; replicas per holder: $(holder_counts "$out")"
}

cmd_get() {
    local name=${1:-} out=${2:-} n=${3:-n5}
    [[ -n $name && -n $out ]] || die "usage: get NAME OUT [NODE]"
    get_file "$n" "$name" "$out"
    say "got $name through $n (subnet ${SUBNET_OF[$n]}) into $out ($(stat -c %s "$out") bytes)"
}

# ---- chaos ---------------------------------------------------------------

FILES="$WORK/files" # every file put successfully, under its IFS name
RESULTS=()          # table rows
SEQ=0

# make_file NAME SIZE_KIB: a file with half random, half compressible bytes.
make_file() {
    local name=$1 kib=$2 f="$WORK/src/$1"
    mkdir -p "$WORK/src"
    {
        head -c $((kib * 512)) /dev/urandom
        seq 1 1000000000 | head -c $((kib * 512))
    } >"$f"
    echo "$f"
}

# register NAME FILE: remember a file that was put successfully.
register() {
    mkdir -p "$FILES"
    cp "$2" "$FILES/$1"
}

# round_trip PUT_NODE GET_NODE LABEL: put a fresh file, read it back, compare.
# Prints "ok" or "FAILED: why"; registers the file when the put succeeded and
# writes its holders to $WORK/holders (callers run it in a subshell: read
# them with last_holders).
LAST_HOLDERS=""
last_holders() { cat "$WORK/holders" 2>/dev/null || true; }
last_times() { cat "$WORK/rt.times" 2>/dev/null || true; }
round_trip() {
    local pn=$1 gn=$2 label=$3 name f out err t
    : >"$WORK/holders"
    : >"$WORK/rt.times"
    SEQ=$((SEQ + 1))
    name="$label-$SEQ"
    f=$(make_file "$name" $((1024 + RANDOM % 4096)))
    err="$WORK/err"
    t=$SECONDS
    if ! out=$(put_file "$pn" "$f" "$name" 2>"$err"); then
        echo "FAILED: put via $pn after $((SECONDS - t)) s: $(tail -n1 "$err")"
        return 1
    fi
    register "$name" "$f"
    holders_of "$out" >"$WORK/holders"
    printf 'put %s s' $((SECONDS - t)) >"$WORK/rt.times"
    t=$SECONDS
    if ! get_file "$gn" "$name" "$WORK/rt.out" 2>"$err"; then
        echo "FAILED: get via $gn after $((SECONDS - t)) s: $(tail -n1 "$err")"
        return 1
    fi
    printf ', get %s s' $((SECONDS - t)) >>"$WORK/rt.times"
    if ! cmp -s "$f" "$WORK/rt.out"; then
        echo "FAILED: $name read back through $gn differs"
        return 1
    fi
    echo "ok"
}

# verify_all NODE: read every registered file back through NODE (three tries,
# 5 s apart) and compare. Sets CHECKED, OK, LOST and LOST_NAMES.
verify_all() {
    local n=$1 f name try good
    CHECKED=0 OK=0 LOST=0 LOST_NAMES=""
    for f in "$FILES"/*; do
        [[ -f $f ]] || continue
        name=$(basename "$f")
        CHECKED=$((CHECKED + 1))
        good=0
        for try in 1 2 3; do
            if get_file "$n" "$name" "$WORK/verify.out" 2>"$WORK/err" && cmp -s "$f" "$WORK/verify.out"; then
                good=1
                break
            fi
            say "  $name: try $try through $n failed: $(tail -n1 "$WORK/err" 2>/dev/null)"
            sleep 5
        done
        if ((good)); then OK=$((OK + 1)); else
            LOST=$((LOST + 1))
            LOST_NAMES+=" $name"
        fi
    done
    rm -f "$WORK/verify.out"
}

# A holder of the last round trip's file, other than the given nodes.
pick_holder() {
    local h x skip
    for h in $LAST_HOLDERS; do
        skip=0
        for x in "$@"; do [[ $h == "$x" ]] && skip=1; done
        ((skip)) || { echo "$h"; return; }
    done
    echo n4
}

SCENARIO_OK=1 # a scenario clears it when a step it requires failed

finish_scenario() {
    local name=$1 t0=$2 notes=$3 rt vn=${4:-n1} ok=$SCENARIO_OK
    SCENARIO_OK=1
    rt=$(round_trip n2 n5 "$name-after")
    verify_all "$vn"
    [[ $rt == ok ]] || notes+="; final round trip $rt"
    [[ -z $LOST_NAMES ]] || notes+="; lost:$LOST_NAMES"
    RESULTS+=("$(printf '%-10s %7s %5s %5s %6ss  %s' "$name" "$CHECKED" "$OK" "$LOST" "$((SECONDS - t0))" "$notes")")
    say "$name: $CHECKED checked, $OK ok, $LOST lost ($notes)"
    [[ $rt == ok && $LOST == 0 && $ok == 1 ]]
}

chaos_kill() {
    local t0=$SECONDS victim big name=kill-midput rc notes out
    say "kill: kill -9 a holder while a 96 MiB put is under way"
    round_trip n1 n3 kill-probe >/dev/null || true
    LAST_HOLDERS=$(last_holders)
    victim=$(pick_holder n1 n5)
    big=$(make_file "$name" $((96 * 1024)))
    put_file n1 "$big" "$name" >"$WORK/kill.out" 2>"$WORK/kill.err" &
    local p=$!
    sleep 1.5
    say "  docker kill -s KILL ifs-$victim (subnet ${SUBNET_OF[$victim]}) mid-put"
    docker kill -s KILL "$(cname "$victim")" >/dev/null
    if wait $p; then
        register "$name" "$big"
        notes="put during kill of $victim: ok, holders $(holders_of "$(cat "$WORK/kill.out")")"
    else
        notes="put during kill of $victim failed cleanly: $(tail -n1 "$WORK/kill.err")"
    fi
    out=$(round_trip n3 n6 kill-down)
    notes+="; round trip while down: $out"
    docker start "$(cname "$victim")" >/dev/null
    wait_ready 180 || notes+="; $victim did not come back"
    finish_scenario kill "$t0" "$notes"
}

chaos_pause() {
    local t0=$SECONDS victim=n3 out notes
    say "pause: docker pause $victim (seed, subnet b) for 60 s"
    docker pause "$(cname "$victim")" >/dev/null
    out=$(round_trip n1 n5 pause-during)
    notes="round trip while paused: $out"
    while ((SECONDS - t0 < 60)); do sleep 1; done
    docker unpause "$(cname "$victim")" >/dev/null
    wait_ready 180 || notes+="; $victim did not recover"
    finish_scenario pause "$t0" "$notes"
}

# A put must go on through a partition: one cut mid-way, one started while
# the subnet is cut off (client in subnet a), and one from a client on the
# host, which still reaches the cut-off nodes directly while the nodes of a
# and b cannot reach them. Each must succeed on the nodes that work.
chaos_partition() {
    local t0=$SECONDS out notes net="${PROJECT}_ifs_c" big name=partition-midput p t
    say "partition: cut subnet c (n5, n6) off (disconnect router r2 from it) during a 64 MiB put through n1"
    big=$(make_file "$name" $((64 * 1024)))
    t=$SECONDS
    put_file n1 "$big" "$name" >"$WORK/part.out" 2>"$WORK/part.err" &
    p=$!
    sleep 1.5
    docker network disconnect "$net" "$(cname r2)"
    if wait $p; then
        register "$name" "$big"
        notes="put cut mid-way: ok in $((SECONDS - t)) s, holders $(holders_of "$(cat "$WORK/part.out")")"
    else
        notes="put cut mid-way FAILED after $((SECONDS - t)) s: $(tail -n1 "$WORK/part.err")"
        SCENARIO_OK=0
    fi
    out=$(round_trip n1 n2 partition-during)
    notes+="; put/get through a while c is cut: $out ($(last_times)), holders $(last_holders)"
    [[ $out == ok ]] || SCENARIO_OK=0
    out=$(CLIENT_AT=host round_trip n3 n4 partition-host)
    notes+="; put/get from the host (reaches both sides) through b: $out ($(last_times)), holders $(last_holders)"
    [[ $out == ok ]] || SCENARIO_OK=0
    while ((SECONDS - t0 < 40)); do sleep 1; done
    say "  reconnecting subnet c"
    docker network connect --ip 10.61.3.254 "$net" "$(cname r2)"
    wait_ready 180 || notes+="; subnet c did not rejoin"
    finish_scenario partition "$t0" "$notes" n6
}

chaos_restart() {
    local t0=$SECONDS n notes="all six restarted (docker restart, SIGTERM)"
    say "restart: restart every node"
    for n in "${NODES[@]}"; do docker restart -t 15 "$(cname "$n")" >/dev/null & done
    wait
    wait_ready 240 || notes+="; not all came back"
    finish_scenario restart "$t0" "$notes"
}

chaos_fill() {
    local t0=$SECONDS avail out notes filler="$SMALL_DISK/filler"
    say "fill: fill n6's disk (a $SMALL_DISK_SIZE tmpfs) to the last byte"
    avail=$(df --output=avail -B1 "$SMALL_DISK" | tail -n1)
    fallocate -l "$avail" "$filler" 2>/dev/null || head -c "$avail" /dev/zero >"$filler" 2>/dev/null || true
    say "  n6 disk: $(df -h --output=used,avail "$SMALL_DISK" | tail -n1)"
    sleep 8
    out=$(round_trip n5 n6 fill-during)
    LAST_HOLDERS=$(last_holders)
    notes="round trip via n5 while n6 is full: $out, holders $LAST_HOLDERS"
    [[ " $LAST_HOLDERS " != *" n6 "* ]] || notes+=" (n6 chosen while full)"
    verify_all n6
    notes+="; reads through the full n6: $OK/$CHECKED"
    rm -f "$filler"
    finish_scenario fill "$t0" "$notes"
}

ALL_SCENARIOS=(kill pause partition restart fill)

cmd_chaos() {
    local scenarios=("$@") s failed=0 t0=$SECONDS
    ((${#scenarios[@]})) || scenarios=("${ALL_SCENARIOS[@]}")
    for s in "${scenarios[@]}"; do
        [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario $s (known: ${ALL_SCENARIOS[*]})"
    done
    if ! running n1; then cmd_up; else IFS_TESTNET_NO_BUILD=1 wait_ready 60; fi
    if [[ -z $(ls -A "$FILES" 2>/dev/null) ]]; then
        say "putting the first files (through n1, n3 and n5)"
        round_trip n1 n5 base >/dev/null || die "the first round trip failed"
        round_trip n3 n1 base >/dev/null || die "the first round trip failed"
        round_trip n5 n2 base >/dev/null || die "the first round trip failed"
    fi
    for s in "${scenarios[@]}"; do
        "chaos_$s" || failed=$((failed + 1))
    done
    echo
    printf '%-10s %7s %5s %5s %7s  %s\n' SCENARIO CHECKED OK LOST TIME NOTES
    printf '%s\n' "${RESULTS[@]}"
    say "chaos done in $((SECONDS - t0)) s; $failed scenario(s) failed"
    ((failed == 0))
}

# ---- smoke ---------------------------------------------------------------

SMOKE_STEPS=()
SMOKE_T=0
SMOKE_T0=0
smoke_step() {
    SMOKE_STEPS+=("$(printf '%-44s %4ss' "$1" "$((SECONDS - SMOKE_T))")")
    SMOKE_T=$SECONDS
}
smoke_end() {
    local rc=$?
    cmd_down
    smoke_step "down"
    printf '%s\n' "${SMOKE_STEPS[@]}"
    if ((rc == 0)); then say "smoke passed in $((SECONDS - SMOKE_T0)) s"; else say "smoke FAILED (exit $rc) after $((SECONDS - SMOKE_T0)) s"; fi
}

cmd_smoke() {
    local f out holders victim
    SMOKE_T0=$SECONDS SMOKE_T=$SECONDS
    trap smoke_end EXIT
    cmd_down
    smoke_step "down (leftovers of an earlier run)"
    cmd_up
    smoke_step "up (build, start, all healthy)"
    f=$(make_file smoke $((8 * 1024)))
    out=$(put_file n1 "$f" smoke) || die "smoke: put through n1 (subnet a) failed"
    holders=$(holders_of "$out")
    say "put 8 MiB through n1 (subnet a); holders: $holders"
    smoke_step "put 8 MiB through n1 (subnet a)"
    get_file n5 smoke "$WORK/smoke.out" || die "smoke: get through n5 (subnet c) failed"
    cmp "$f" "$WORK/smoke.out" || die "smoke: the file read back through n5 differs"
    smoke_step "get through n5 (subnet c), compare"
    LAST_HOLDERS=$holders
    victim=$(pick_holder n5)
    say "kill -9 holder $victim"
    docker kill -s KILL "$(cname "$victim")" >/dev/null
    rm -f "$WORK/smoke.out"
    get_file n5 smoke "$WORK/smoke.out" || die "smoke: get after killing $victim failed"
    cmp "$f" "$WORK/smoke.out" || die "smoke: the file read back after killing $victim differs"
    smoke_step "kill -9 $victim, get again, compare"
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
    nat) exec "$ROOT/scripts/nat-testnet.sh" "${@:-all}" ;;
    -h | --help | help | "") usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
