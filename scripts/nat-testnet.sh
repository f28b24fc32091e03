#!/usr/bin/env bash
# IFS NAT testnet: volunteers behind home routers, in network namespaces.
#
#   scripts/nat-testnet.sh up        create the namespaces and routers, start 7 nodes,
#                                    wait for every reachability verdict
#   scripts/nat-testnet.sh status    each node's reachability (`ifsnode status`)
#   scripts/nat-testnet.sh doctor    `ifsnode doctor` of each node
#   scripts/nat-testnet.sh scenario  put from home net A, get from home net B and from
#                                    the symmetric-NAT net, check bytes, count hole
#                                    punches and relayed vs direct chunk bytes
#   scripts/nat-testnet.sh down      stop the nodes, delete the namespaces
#   scripts/nat-testnet.sh all       up, status, doctor, scenario, down (exit 1 on failure)
# (`scripts/testnet.sh nat [CMD]` runs this script; CMD defaults to `all`.)
#
# Topology (all addresses live only inside namespaces this script creates;
# nothing has a route to any other network):
#
#   "internet" 198.51.100.0/24 (a bridge in namespace ifsn-inet)
#     s1 .11  s2 .12            public seeds, relays, AutoNAT servers
#     ra .101 ─ home net A 10.62.1.0/24: a1 .11, a2 .12  (MASQUERADE: keeps
#                                          the source port, endpoint-independent
#                                          mapping; hole punching works)
#     rb .102 ─ home net B 10.62.2.0/24: b1 .11, b2 .12  (same kind)
#     rc .103 ─ home net C 10.62.3.0/24: c1 .11          (MASQUERADE
#                                          --random-fully: a new port for every
#                                          connection, i.e. symmetric NAT)
#
# The routers filter like Linux conntrack does: nothing comes in that does
# not answer a connection from inside. The "internet" uses 198.51.100.0/24
# (TEST-NET-2): IFS treats it as public, as it does any address outside the
# loopback, RFC 1918, link-local and CGNAT ranges.
#
# Environment: IFS_BIN (default: the release ifsnode in the cargo target
# dir), NAT_WORK (default /var/tmp/ifs-nat), NAT_LOG (RUST_LOG, default
# info), NAT_FILE_MIB (size of the scenario's file, default 24).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/ifs/target}"
BIN="${IFS_BIN:-$TARGET/release/ifsnode}"
WORK="${NAT_WORK:-/var/tmp/ifs-nat}"
LOG="${NAT_LOG:-info,libp2p_swarm=warn,libp2p_kad=warn,libp2p_gossipsub=warn}"
FILE_MIB="${NAT_FILE_MIB:-24}"

NODES=(s1 s2 a1 a2 b1 b2 c1)
declare -A IP=(
    [s1]=198.51.100.11 [s2]=198.51.100.12
    [a1]=10.62.1.11 [a2]=10.62.1.12
    [b1]=10.62.2.11 [b2]=10.62.2.12
    [c1]=10.62.3.11
)
declare -A ROUTER_OF=([a1]=ra [a2]=ra [b1]=rb [b2]=rb [c1]=rc)
declare -A NET_OF=([s1]=inet [s2]=inet [a1]=A [a2]=A [b1]=B [b2]=B [c1]=C)
# What each node may report (a regex). Behind a cone NAT a node says
# "hole punching works" once it holds a direct connection with a peer behind
# another NAT, and "relayed only" until then: punches happen on demand (a
# reach check, a chunk). Behind the symmetric NAT it can never say the first.
declare -A EXPECT=(
    [s1]=public [s2]=public
    [a1]='nat_hole_punching|nat_relayed' [a2]='nat_hole_punching|nat_relayed'
    [b1]='nat_hole_punching|nat_relayed' [b2]='nat_hole_punching|nat_relayed'
    [c1]=nat_relayed
)
ROUTERS=(ra rb rc)
declare -A R_PUB=([ra]=198.51.100.101 [rb]=198.51.100.102 [rc]=198.51.100.103)
declare -A R_HOME=([ra]=10.62.1.1 [rb]=10.62.2.1 [rc]=10.62.3.1)
declare -A R_MODE=([ra]=cone [rb]=cone [rc]=symmetric)
# Each node its own ports: two nodes behind one router on the same port
# get one of them remapped by the router for some destinations, and a
# hole punch to the remapped one then aims at the wrong port (`doctor`
# cannot see that; give each machine behind one router its own port).
declare -A TCP_PORT=([s1]=4100 [s2]=4110 [a1]=4120 [a2]=4130 [b1]=4140 [b2]=4150 [c1]=4160)

say() { printf '[nat %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
ns() { echo "ifsn-$1"; }
inns() {
    local n=$1
    shift
    ip netns exec "$(ns "$n")" "$@"
}

# ---- namespaces ------------------------------------------------------------

link_to_bridge() { # NS_A IF_A NS_BRIDGE BRIDGE
    local a=$1 ifa=$2 b=$3 br=$4 peer="v$RANDOM$RANDOM"
    ip link add "$ifa" netns "$(ns "$a")" type veth peer name "$peer" netns "$(ns "$b")"
    ip -n "$(ns "$b")" link set "$peer" master "$br" up
    ip -n "$(ns "$a")" link set "$ifa" up
}

net_up() {
    command -v iptables >/dev/null || die "iptables is missing (apt-get install iptables)"
    net_down 2>/dev/null || true
    ip netns add "$(ns inet)"
    ip -n "$(ns inet)" link add br0 type bridge
    ip -n "$(ns inet)" link set br0 up
    ip -n "$(ns inet)" link set lo up
    local n r
    for n in "${NODES[@]}" "${ROUTERS[@]}"; do
        ip netns add "$(ns "$n")"
        ip -n "$(ns "$n")" link set lo up
    done
    for n in s1 s2; do
        link_to_bridge "$n" eth0 inet br0
        ip -n "$(ns "$n")" addr add "${IP[$n]}/24" dev eth0
    done
    for r in "${ROUTERS[@]}"; do
        link_to_bridge "$r" wan inet br0
        ip -n "$(ns "$r")" addr add "${R_PUB[$r]}/24" dev wan
        ip -n "$(ns "$r")" link add lan type bridge
        ip -n "$(ns "$r")" addr add "${R_HOME[$r]}/24" dev lan
        ip -n "$(ns "$r")" link set lan up
        inns "$r" sysctl -qw net.ipv4.ip_forward=1
        if [[ ${R_MODE[$r]} == symmetric ]]; then
            inns "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
        else
            inns "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
        fi
        # Counting rules (no target): bytes each home net sends to the
        # public nodes and to each other home router (hole-punched traffic).
        local dst
        for dst in "${IP[s1]}" "${IP[s2]}" "${R_PUB[@]}"; do
            [[ $dst == "${R_PUB[$r]}" ]] && continue
            inns "$r" iptables -A FORWARD -o wan -d "$dst" -j ACCEPT
        done
        # Only answers come in from the wan side. Unsolicited packets to the
        # router itself get what Linux gives them (a TCP reset, an ICMP
        # port unreachable): with a silent drop instead, a TCP dial-back to a
        # symmetric NAT hangs until the kernel gives up (about 2 minutes) and
        # AutoNAT v2 retries it rather than report a failure.
        inns "$r" iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
        inns "$r" iptables -A FORWARD -i wan -j DROP
    done
    for n in a1 a2 b1 b2 c1; do
        r=${ROUTER_OF[$n]}
        link_to_bridge "$n" eth0 "$r" lan
        ip -n "$(ns "$n")" addr add "${IP[$n]}/24" dev eth0
        ip -n "$(ns "$n")" route add default via "${R_HOME[$r]}"
    done
    say "namespaces up: internet 198.51.100.0/24, home nets A and B (cone NAT), C (symmetric NAT)"
}

net_down() {
    local n
    for n in "${NODES[@]}" "${ROUTERS[@]}" inet; do
        ip netns del "$(ns "$n")" 2>/dev/null || true
    done
}

# ---- nodes -----------------------------------------------------------------

dir_of() { echo "$WORK/$1"; }
addr_of() { # the node's TCP address with /p2p/
    local f
    f="$(dir_of "$1")/node.addr"
    [[ -f $f ]] || return 1
    grep -m1 "/ip4/${IP[$1]}/tcp/" "$f"
}

ifs() { # NODE SUBCOMMAND ARGS...: the CLI in the node's namespace, against it
    local n=$1 sub=$2 addr
    shift 2
    addr=$(addr_of "$n") || return 1
    # One user (one user key) at every client: a file put beside a1 is
    # read back beside b1 by its owner.
    IFS_DATA_DIR="$WORK/cli" IFS_HOME="$WORK/cli" inns "$n" "$BIN" "$sub" --peer "$addr" "$@"
}

start_node() {
    local n=$1 d
    d=$(dir_of "$n")
    mkdir -p "$d/vol" "$WORK/cli"
    "$BIN" init --force --data-dir "$d" --volume "$d/vol:2GiB" \
        --listen "/ip4/${IP[$n]}/tcp/${TCP_PORT[$n]}" \
        --listen "/ip4/${IP[$n]}/udp/$((TCP_PORT[$n] + 1))/quic-v1" >/dev/null
    # Seven nodes share this host's disk, which is not an owner's laptop:
    # no owner reserve, or a disk more than 90% full (a CI machine after
    # its builds) leaves every node "no space: 0 bytes free".
    sed -i 's/^owner_reserve_pct = .*/owner_reserve_pct = 0/' "$d/config.toml"
    grep -q '^owner_reserve_pct = 0$' "$d/config.toml" || die "cannot set owner_reserve_pct in $d/config.toml"
    local boot=()
    [[ $n != s1 ]] && boot+=(--bootstrap "/ip4/${IP[s1]}/tcp/${TCP_PORT[s1]}")
    [[ $n != s2 ]] && boot+=(--bootstrap "/ip4/${IP[s2]}/tcp/${TCP_PORT[s2]}")
    RUST_LOG="$LOG" setsid ip netns exec "$(ns "$n")" "$BIN" run --data-dir "$d" \
        --capacity-interval-ms 2000 "${boot[@]}" >"$d/log" 2>&1 &
    echo $! >"$d/pid"
}

nodes_up() {
    [[ -x $BIN ]] || die "no ifsnode at $BIN (cargo build --release -p ifsnode, or set IFS_BIN)"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    # Every replica of the scenario's files lands on this one disk.
    local need=$(((FILE_MIB * 4 * 3 + 256) << 20)) avail
    avail=$(($(df --output=avail -B1 "$WORK" | tail -1)))
    ((avail >= need)) || die "$WORK has $((avail >> 20)) MiB free; the scenario needs $((need >> 20)) MiB"
    start_node s1
    start_node s2
    sleep 2
    local n
    for n in a1 a2 b1 b2 c1; do start_node "$n"; done
}

nodes_down() {
    local n pid
    for n in "${NODES[@]}"; do
        pid=$(cat "$(dir_of "$n")/pid" 2>/dev/null || true)
        [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    done
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pgrep -f "run --data-dir $WORK/" >/dev/null || break
        sleep 0.5
    done
    for n in "${NODES[@]}"; do
        pid=$(cat "$(dir_of "$n")/pid" 2>/dev/null || true)
        [[ -n $pid ]] && { kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; } || true
    done
}

reach_of() { ifs "$1" status --json --min-alive 0 --timeout 8 2>/dev/null | jq -r '.reachability.reachability // "none"'; }
alive_of() { ifs "$1" status --json --min-alive 0 --timeout 8 2>/dev/null | jq -r '.alive_peers // 0'; }

wait_verdicts() {
    local timeout=$1 start=$SECONDS n got done_ all
    while :; do
        all=1
        for n in "${NODES[@]}"; do
            got=$(reach_of "$n" || echo none)
            [[ $got =~ ^(${EXPECT[$n]})$ ]] || all=0
        done
        if ((all)); then
            say "every node reports the reachability it has ($((SECONDS - start)) s)"
            return 0
        fi
        if ((SECONDS - start > timeout)); then
            say "after ${timeout} s not every node reports what it should (see status below)"
            return 1
        fi
        sleep 3
    done
}

wait_alive() {
    local timeout=$1 start=$SECONDS n ok
    while :; do
        ok=0
        for n in "${NODES[@]}"; do
            (($(alive_of "$n" || echo 0) >= ${#NODES[@]} - 1)) && ok=$((ok + 1))
        done
        if ((ok == ${#NODES[@]})); then
            say "every node sees the other $((${#NODES[@]} - 1)) alive ($((SECONDS - start)) s)"
            return 0
        fi
        if ((SECONDS - start > timeout)); then
            say "after ${timeout} s, $ok of ${#NODES[@]} nodes see all others alive (a node not yet"
            say "dialled back through a relay stays unverified and is not offered for placement):"
            for n in "${NODES[@]}"; do
                say "  $n sees $(alive_of "$n" || echo '?') alive"
            done
            return 1
        fi
        sleep 3
    done
}

# ---- commands --------------------------------------------------------------

cmd_up() {
    command -v jq >/dev/null || die "jq is missing"
    net_up
    nodes_up
    say "nodes started; waiting for AutoNAT, relay slots and hole punches"
    local rc=0
    wait_verdicts 180 || rc=1
    # Informational: placement works with the nodes already verified.
    wait_alive 180 || true
    return $rc
}

cmd_status() {
    local n got
    printf '%-3s %-5s %-16s %-30s %-18s %s\n' NODE NET ADDRESS EXPECTED REPORTED "RELAYS / PUNCHES ok-failed / DIRECT TO NAT PEERS"
    for n in "${NODES[@]}"; do
        local j
        j=$(ifs "$n" status --json --min-alive 0 --timeout 8 2>/dev/null || echo '{}')
        got=$(jq -r '.reachability.reachability // "none"' <<<"$j")
        printf '%-3s %-5s %-16s %-30s %-18s %s\n' "$n" "${NET_OF[$n]}" "${IP[$n]}" "${EXPECT[$n]}" "$got" \
            "$(jq -r '"\(.reachability.relays // [] | length) / \(.reachability.hole_punches_ok // 0)-\(.reachability.hole_punches_failed // 0) / \(.reachability.direct_nat_peers // 0)"' <<<"$j")"
    done
}

cmd_doctor() {
    local n
    for n in "${NODES[@]}"; do
        echo "### $n (net ${NET_OF[$n]})"
        ifs "$n" doctor --timeout 60 || true
        echo
    done
}

# Chunk bytes a node moved, as "direction class bytes" lines, from its /metrics.
chunk_bytes() { # NODE
    local listen
    listen=$(grep -m1 '^admin_listen' "$(dir_of "$1")/config.toml" | cut -d'"' -f2)
    inns "$1" curl -fsS "http://$listen/metrics" 2>/dev/null |
        sed -n 's/^ifs_transfer_bytes_total{direction="\([a-z]*\)",class="\([a-z]*\)"} \([0-9]*\)$/\1 \2 \3/p'
}

node_table() {
    local n
    say "per node: chunks held, chunk MB received (in) and sent (out) by class:"
    for n in "${NODES[@]}"; do
        local chunks
        chunks=$(ifs "$n" status --json --min-alive 0 --timeout 8 2>/dev/null | jq -r '.chunks')
        printf '  %-3s [%-4s] %2s chunks  %s\n' "$n" "${NET_OF[$n]}" "$chunks" \
            "$(chunk_bytes "$n" | awk '{printf "%s %s %.1f MB; ", $1, $2, $3/1e6}')" >&2
    done
}

# Bytes each home router sent out, by destination, as "DEST BYTES" lines.
sent_by() { # ROUTER
    inns "$1" iptables -nvxL FORWARD | awk '$7 == "wan" && $9 != "0.0.0.0/0" {print $9, $2}'
}

traffic_table() {
    local r dst bytes
    say "bytes each home router sent, by destination (direct = to another home router):"
    for r in "${ROUTERS[@]}"; do
        while read -r dst bytes; do
            local what=relay/seed
            [[ $dst == 198.51.100.1?? ]] && what=direct
            printf '  %s -> %-15s %-10s %12s bytes\n' "$r" "$dst" "$what" "$bytes" >&2
        done < <(sent_by "$r")
    done
}

# put_from NODE NAME FILE: put FILE as NAME through NODE; print its holders by name.
put_from() {
    local n=$1 name=$2 f=$3
    say "put a $FILE_MIB MiB file from home net ${NET_OF[$n]} (client beside $n), ${NAT_REPLICAS:-4} replicas"
    ifs "$n" put "$f" --name "$name" --replicas "${NAT_REPLICAS:-4}" >"$WORK/put-$name.out" 2>&1 || {
        cat "$WORK/put-$name.out" >&2
        say "  the put from home net ${NET_OF[$n]} FAILED"
        return 1
    }
    # Holders by name: each peer id's last 8 characters, as `put` prints them.
    local names="" id m
    for m in "${NODES[@]}"; do
        id=$(addr_of "$m") && names+="s/${id: -8}/$m(${NET_OF[$m]})/g;"
    done
    grep '^  chunk' "$WORK/put-$name.out" | sed "$names" >&2
}

# get_at NODE NAME FILE: get NAME through NODE and compare it with FILE.
get_at() {
    local n=$1 name=$2 f=$3 out="$WORK/get-$2-$1.bin"
    say "get $name back from home net ${NET_OF[$n]} (client beside $n)"
    if ifs "$n" get "$name" "$out" >"$WORK/get-$name-$n.out" 2>&1 && cmp -s "$f" "$out"; then
        say "  bit-identical through $n"
    else
        tail -n 5 "$WORK/get-$name-$n.out" >&2
        say "  FAILED through $n"
        return 1
    fi
}

cmd_scenario() {
    local f="$WORK/file.bin" g="$WORK/file2.bin" rc=0
    head -c "$((FILE_MIB * 1024 * 1024))" /dev/urandom >"$f"
    head -c "$((FILE_MIB * 1024 * 1024))" /dev/urandom >"$g"
    # From one cone-NAT home net to the others.
    put_from a1 nat.bin "$f" || rc=1
    get_at b1 nat.bin "$f" || rc=1
    get_at c1 nat.bin "$f" || rc=1
    # From behind the symmetric NAT (c1 usually holds copies: it is the
    # client's nearest node), read back from a cone-NAT home net and beside
    # c1 again.
    put_from c1 sym.bin "$g" || rc=1
    get_at a2 sym.bin "$g" || rc=1
    get_at c1 sym.bin "$g" || rc=1
    node_table
    traffic_table
    cmd_status
    return $rc
}

cmd_down() {
    nodes_down
    net_down
    say "nodes stopped, namespaces deleted (logs in $WORK)"
}

cmd_all() {
    local rc=0
    trap cmd_down EXIT
    cmd_up || rc=1
    cmd_status || rc=1
    cmd_doctor || true
    cmd_scenario || rc=1
    return $rc
}

[[ $(id -u) == 0 ]] || die "run as root (network namespaces and iptables)"
case "${1:-all}" in
up) cmd_up ;;
status) cmd_status ;;
doctor) cmd_doctor ;;
scenario) cmd_scenario ;;
down) cmd_down ;;
all) cmd_all ;;
*) die "unknown command ${1:-}; see the top of this script" ;;
esac
