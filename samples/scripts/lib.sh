# lib.sh - helpers for the tlsdiag sample scripts (source it; run as root).
#
# Topologies (all inside namespaces created here; nothing touches the host's network):
#   direct:  [tlsd-cli] veth-c 10.77.1.1/24 fd77:1::1/64 <==> veth-s 10.77.1.2/24 fd77:1::2/64 [tlsd-srv]
#   relay:   [tlsd-cli] veth-c <==> r-c [tlsd-rly: relay.py bridge] r-s <==> veth-s [tlsd-srv]
#            plus a mirror pair r-m <==> r-mcap inside tlsd-rly (capture on r-mcap = SPAN port)
# On every veth: TSO/GSO/GRO and tx checksum offload are off, so captures hold
# real MTU-sized frames with valid checksums (and relay.py can forward them).
#
# Every background process started through these helpers is recorded in BG_PIDS
# and killed (by PID) in lib_cleanup, which also deletes the namespaces.

NS_C=tlsd-cli
NS_S=tlsd-srv
NS_R=tlsd-rly
C4=10.77.1.1
S4=10.77.1.2
C6=fd77:1::1
S6=fd77:1::2
SNI=server.tlsdiag.test
PY=/usr/bin/python3
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BG_PIDS=()
CAP_PID=
WORK=${WORK:-}

die() { echo "ERROR: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

need_tools() {
    local t
    for t in ip iptables ip6tables ethtool tcpdump tshark dumpcap capinfos openssl curl gnutls-cli nginx ss timeout "$PY"; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool: $t (Debian: apt-get install tcpdump tshark openssl gnutls-bin nginx-light curl iproute2 iptables ethtool python3)"
    done
    [ "$(id -u)" = 0 ] || die "run as root"
}

# script_setup NAME TOOL...: checks the tools and root, makes $WORK (removed at exit, with the
# namespaces) and sets the V_* versions each case's README quotes.
script_setup() {
    local name=$1 t; shift
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool: $t (Debian: apt-get install iproute2 ethtool tcpdump tshark openssl curl python3)"
    done
    [ "$(id -u)" = 0 ] || die "run as root"
    WORK=$(mktemp -d "/tmp/tlsdiag-$name.XXXXXX")
    chmod 755 "$WORK"
    trap 'lib_cleanup; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    V_OPENSSL=$(openssl version | awk '{print $2}')
    V_CURL=$(curl --version | awk 'NR==1{print $2}')
    V_TCPDUMP=$(tcpdump --version 2>&1 | awk 'NR==1{print $3}')
    V_KERNEL=$(uname -r)
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# offloads off so every frame is a real frame (see header)
_veth_plain() {
    local ns=$1 dev=$2
    nsx "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    nsx "$ns" ethtool -K "$dev" rxvlan off txvlan off >/dev/null 2>&1 || true
}

_ns_new() {
    local ns=$1
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    # no router solicitations / DAD chatter from our namespaces
    nsx "$ns" sysctl -qw net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.all.router_solicitations=0
}

_addr_client() {
    nsx $NS_C ip addr add $C4/24 dev veth-c
    nsx $NS_C ip -6 addr add $C6/64 dev veth-c nodad
    nsx $NS_C ip link set veth-c up
}
_addr_server() {
    nsx $NS_S ip addr add $S4/24 dev veth-s
    nsx $NS_S ip -6 addr add $S6/64 dev veth-s nodad
    nsx $NS_S ip link set veth-s up
}

# client ns <-> server ns, one veth pair
ns_setup_direct() {
    lib_teardown_ns
    _ns_new $NS_C; _ns_new $NS_S
    ip link add veth-c netns $NS_C type veth peer name veth-s netns $NS_S
    _veth_plain $NS_C veth-c; _veth_plain $NS_S veth-s
    _addr_client; _addr_server
    # static neighbours: no ARP/ND round trip in the middle of a capture
    local mc ms
    mc=$(nsx $NS_C cat /sys/class/net/veth-c/address); ms=$(nsx $NS_S cat /sys/class/net/veth-s/address)
    nsx $NS_C ip neigh replace $S4 lladdr "$ms" dev veth-c nud permanent
    nsx $NS_C ip -6 neigh replace $S6 lladdr "$ms" dev veth-c nud permanent
    nsx $NS_S ip neigh replace $C4 lladdr "$mc" dev veth-s nud permanent
    nsx $NS_S ip -6 neigh replace $C6 lladdr "$mc" dev veth-s nud permanent
}

# client ns <-> relay ns (relay.py) <-> server ns; mirror pair r-m/r-mcap in relay ns
ns_setup_relay() {
    lib_teardown_ns
    _ns_new $NS_C; _ns_new $NS_R; _ns_new $NS_S
    nsx $NS_R sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add veth-c netns $NS_C type veth peer name r-c netns $NS_R
    ip link add veth-s netns $NS_S type veth peer name r-s netns $NS_R
    nsx $NS_R ip link add r-m mtu 1600 type veth peer name r-mcap mtu 1600   # room for 2 tags
    local d
    for d in r-c r-s r-m r-mcap; do
        _veth_plain $NS_R $d
        nsx $NS_R ip link set $d promisc on
        nsx $NS_R ip link set $d up
    done
    _veth_plain $NS_C veth-c; _veth_plain $NS_S veth-s
    _addr_client; _addr_server
    local mc ms
    mc=$(nsx $NS_C cat /sys/class/net/veth-c/address); ms=$(nsx $NS_S cat /sys/class/net/veth-s/address)
    nsx $NS_C ip neigh replace $S4 lladdr "$ms" dev veth-c nud permanent
    nsx $NS_C ip -6 neigh replace $S6 lladdr "$ms" dev veth-c nud permanent
    nsx $NS_S ip neigh replace $C4 lladdr "$mc" dev veth-s nud permanent
    nsx $NS_S ip -6 neigh replace $C6 lladdr "$mc" dev veth-s nud permanent
}

# relay_start <timeout> [relay.py bridge options...]   (sets RELAY_PID, log in $WORK/relay.log)
relay_start() {
    local t=$1; shift
    ip netns exec $NS_R "$PY" "$LIB_DIR/relay.py" bridge --client-if r-c --server-if r-s --timeout "$t" "$@" \
        2>"$WORK/relay.log" &
    RELAY_PID=$!
    BG_PIDS+=("$RELAY_PID")
    sleep 0.5
}

# bg <ns> <logfile> cmd...   run in background inside ns, remember its PID in BGPID
bg() {
    local ns=$1 logf=$2; shift 2
    ip netns exec "$ns" "$@" </dev/null >"$logf" 2>&1 &
    BGPID=$!
    BG_PIDS+=("$BGPID")
}

# stop <pid>: SIGTERM, then SIGKILL after 3 s, then reap
stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# wait_listen <ns> <port> : until something listens on tcp port (max 5 s)
wait_listen() {
    local ns=$1 port=$2 i
    for i in $(seq 1 50); do
        nsx "$ns" ss -Hltn "sport = :$port" | grep -q LISTEN && return 0
        sleep 0.1
    done
    die "nothing listening on $port in $ns"
}

# cap_start <ns> <iface> <file> <filter> [extra tcpdump args...]   (sets CAP_PID)
cap_start() {
    local ns=$1 ifc=$2 file=$3 filter=$4 i; shift 4
    rm -f "$file"
    ip netns exec "$ns" tcpdump -U -B 8192 -Z root -s 0 -n -i "$ifc" "$@" -w "$file" "$filter" 2>"$WORK/tcpdump.err" &
    CAP_PID=$!
    BG_PIDS+=("$CAP_PID")
    for i in $(seq 1 50); do
        grep -q "listening on" "$WORK/tcpdump.err" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "listening on" "$WORK/tcpdump.err" || die "tcpdump did not start: $(cat "$WORK/tcpdump.err")"
    sleep 0.3
}

# cap_stop: libpcap (TPACKET_V3) hands packets over in blocks with a 1 s timeout,
# so wait > 1 s before SIGINT or the last packets never reach the file.
cap_stop() {
    local err=${1:-$WORK/tcpdump.err}
    sleep 1.5
    [ -n "$CAP_PID" ] || return 0
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    CAP_PID=
    if grep -qE '^[1-9][0-9]* packets? dropped by kernel' "$err"; then
        die "tcpdump dropped packets: $(tr '\n' ' ' <"$err")"
    fi
}

# a private CA and a leaf for $SNI (ECDSA P-256, SHA-256, 10 years): no certificate warnings
make_certs() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
        -subj "/CN=tlsdiag sample CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SNI" \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$SNI" >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
    cat "$d/server.crt" "$d/ca.crt" >"$d/chain.crt"
}

# a larger RSA leaf (Certificate message > 1000 bytes) signed by the same CA
make_rsa_cert() {
    local d=$1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$SNI" -keyout "$d/rsa.key" -out "$d/rsa.csr" 2>/dev/null
    openssl x509 -req -in "$d/rsa.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$d/ext.cnf" -out "$d/rsa.crt" 2>/dev/null
}

lib_teardown_ns() {
    local ns
    for ns in $NS_C $NS_S $NS_R; do ip netns del "$ns" 2>/dev/null || true; done
}

lib_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        kill "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${BG_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    BG_PIDS=()
    lib_teardown_ns
}

# tshark one-liners used to check every capture
show_conv() { tshark -r "$1" -q -z conv,tcp 2>/dev/null | sed -n '6,$p' | grep -v '^=*$'; }
