#!/bin/bash
# tunnel_cases.sh - real TLS traffic seen through tunnels, mirrors and IP fragments
# (issue 18): samples/cases/tunnel-*, mirror-*, ip-fragments-*.
#
# Tunnels: curl -> relay.py (AF_PACKET bridge) -> openssl s_server; relay.py sends every
# forwarded frame to a mirror veth wrapped by encap.py (--encap KIND), as a VXLAN / Geneve /
# GRE / ERSPAN / GTP-U / MPLS / IP-in-IP / Cisco MetaData encapsulator would (this kernel may
# lack the tunnel modules); tcpdump captures the mirror. Fragments: a router namespace with a
# 400-byte MTU toward the server and a client that does not set DF (ip_no_pmtu_disc=1), so
# the router's kernel fragments the ClientHello; tcpdump captures the server's interface.
# Every capture is checked with tshark. Namespaces: h18a-cli, h18a-rly, h18a-srv (removed on
# exit). Usage (root):
#   samples/scripts/tunnel_cases.sh                 # all cases
#   samples/scripts/tunnel_cases.sh tunnel-vxlan    # only these
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/samples/cases
. "$HERE/lib.sh"
NS_C=h18a-cli
NS_S=h18a-srv
NS_R=h18a-rly
script_setup tunnels ip ethtool tcpdump tshark capinfos openssl curl "$PY"
make_certs "$WORK/pki"

case_begin() { CASE=$1; CDIR=$OUT/$1; CAPF=$CDIR/$1.pcap; rm -rf "$CDIR"; mkdir -p "$CDIR"; say "$CASE"; }
case_end() {
    lib_cleanup
    chmod 644 "$CAPF"
    echo "   $(basename "$CAPF"): $(capinfos -c -M "$CAPF" | awk -F': *' '/Number of packets/{print $2}') packets" >&2
}
TS_DECODE=()   # extra tshark "decode as" for a case
n() { tshark -r "$1" "${TS_DECODE[@]}" -Y "$2" 2>/dev/null | wc -l; }
want() {
    local c; c=$(n "$1" "$2")
    [ "$c" "$3" "$4" ] || { tshark -r "$1" 2>/dev/null | head -40 >&2; die "$CASE: '$2' matched $c packets, want $3 $4"; }
}
readme() { cat >"$CDIR/README.md"; }
expected() { cat >"$CDIR/expected.json"; "$PY" -m json.tool "$CDIR/expected.json" >/dev/null || die "$CASE: bad json"; }
# the inner TLS: one handshake, TLS 1.3, between the inner addresses only
want_inner_tls13() {
    local v
    want "$1" "tls.handshake.type==2" -eq "${2:-1}"
    v=$(tshark -r "$1" "${TS_DECODE[@]}" -Y "tls.handshake.type==2" -T fields -e tls.handshake.extensions.supported_version 2>/dev/null | sort -u)
    [ "$v" = "0x0304" ] || die "$CASE: ServerHello versions '$v', want 0x0304"
}

S_SERVER=(openssl s_server -cert "$WORK/pki/server.crt" -key "$WORK/pki/server.key" -cert_chain "$WORK/pki/ca.crt")
curl_get() {            # curl_get <ip> [curl args]: one HTTPS GET of $SNI at <ip>:443, status in $CURL_RC
    local ip=$1; shift
    case $ip in *:*) ip="[$ip]";; esac
    CURL_RC=0
    nsx $NS_C timeout 20 curl -sS -o /dev/null --resolve "$SNI:443:$ip" "$@" "https://$SNI/" \
        2>"$WORK/curl.err" || CURL_RC=$?
}

# _tunnel <case> <encap kinds> <ip> [curl args]: one curl through the relay, mirror wrapped
_tunnel() {
    local name=$1 kinds=$2 ip=$3; shift 3
    case_begin "$name"
    ns_setup_relay
    bg $NS_S "$WORK/server.log" "${S_SERVER[@]}" -accept "${ACCEPT:-443}" -www
    wait_listen $NS_S 443
    relay_start 20 --mirror r-m --encap "$kinds"
    cap_start $NS_R r-mcap "$CAPF" ""
    curl_get "$ip" "$@"
    cap_stop
    stop "$RELAY_PID"
    want "$CAPF" "ip.addr==10.77.1.1 || ipv6.addr==fd77:1::1" -ge 8
}
established_readme() {   # established_readme <what the mirror does>
    readme <<EOF
# $CASE
Made by samples/scripts/tunnel_cases.sh: curl $V_CURL -> samples/scripts/relay.py (AF_PACKET bridge in a namespace) -> openssl s_server -www (OpenSSL $V_OPENSSL), Linux $V_KERNEL.
$1 tcpdump $V_TCPDUMP on the mirror veth.
Look for: the session between the inner addresses (10.77.1.1 / fd77:1::1 -> 10.77.1.2 / fd77:1::2:443), never 192.0.2.x; a normal TLS 1.3 handshake.
EOF
}
established_expected() {  # established_expected <what> <ip version> [extra JSON members]
    expected <<EOF
{
  "what": "$1",
  ${3:-}
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "ip_version": $2, "server_port": 443}
  ]
}
EOF
}
CAFILE=(--cacert "$WORK/pki/ca.crt")

case_tunnel_vxlan() {
    _tunnel tunnel-vxlan vxlan $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "vxlan.vni==100 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session seen through VXLAN (UDP 4789, VNI 100): the AWS VPC Traffic Mirroring / Azure vTAP view" 4
    established_readme "relay.py wraps every forwarded frame in Ethernet/IPv4 192.0.2.1->192.0.2.2/UDP 4789/VXLAN VNI 100 (samples/scripts/encap.py) and sends it to a mirror veth;"
    case_end
}
case_tunnel_vxlan_port() {
    TS_DECODE=(-d udp.port==8472,vxlan)
    _tunnel tunnel-vxlan-port vxlan8472 $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "udp.dstport==8472 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    TS_DECODE=()
    established_expected "successful TLS 1.3 session through VXLAN on UDP 8472 (Linux's default port), found with --vxlan-port 8472" 4 '"args": ["--vxlan-port", "8472"],'
    established_readme "relay.py wraps every forwarded frame in Ethernet/IPv4/UDP 8472/VXLAN VNI 100 (the port the Linux vxlan driver uses by default): tlsdiag needs --vxlan-port 8472;"
    case_end
}
case_tunnel_geneve() {
    _tunnel tunnel-geneve geneve $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "geneve.option.class==0x0104 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session seen through Geneve (UDP 6081) with one 8-byte option, protocol 0x6558: the AWS Gateway Load Balancer view" 4
    established_readme "relay.py wraps every forwarded frame in Ethernet/IPv4/UDP 6081/Geneve (one TLV option of class 0x0104, 4 data bytes; protocol 0x6558) and mirrors it;"
    case_end
}
case_tunnel_gre() {
    _tunnel tunnel-gre gre $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "gre.proto==0x0800 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session seen through plain GRE (IP protocol 47, no key, no sequence number) carrying the IPv4 packets" 4
    established_readme "relay.py wraps every forwarded IP packet (its Ethernet header dropped) in Ethernet/IPv4/GRE protocol 0x0800 and mirrors it;"
    case_end
}
case_tunnel_gre_teb() {
    _tunnel tunnel-gre-teb gre-teb $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "gre.proto==0x6558 && gre.key==0xabcd && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session seen through GRE with key and sequence number carrying whole Ethernet frames (transparent Ethernet bridging, 0x6558)" 4
    established_readme "relay.py wraps every forwarded frame in Ethernet/IPv4/GRE (K and S bits: key 0xabcd, sequence numbers) protocol 0x6558 and mirrors it;"
    case_end
}
case_tunnel_erspan2() {
    _tunnel tunnel-erspan2 erspan2 $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "erspan.version==1 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session on an ERSPAN type II session (GRE 0x88be with sequence numbers, session 7)" 4
    established_readme "relay.py wraps every forwarded frame in Ethernet/IPv4/GRE (sequence) 0x88be/ERSPAN II (session 7), as a switch's remote SPAN does;"
    case_end
}
case_tunnel_erspan3() {
    # The client does not trust the server's CA: it rejects the certificate (unknown_ca).
    _tunnel tunnel-erspan3 erspan3 $S4
    [ $CURL_RC = 60 ] || die "$CASE: curl exit $CURL_RC, want 60 (certificate not trusted)"
    want "$CAPF" "erspan.version==2 && tcp" -eq "$(n "$CAPF" tcp)"
    want "$CAPF" "tls.alert_message.desc==48" -eq 1
    expected <<EOF
{
  "what": "TLS 1.3 client rejects the server certificate (unknown CA, alert 48) on an ERSPAN type III session (GRE 0x22eb, with the platform-specific subheader)",
  "sessions": [
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client", "tls_version": "1.3", "ip_version": 4, "server_port": 443}
  ]
}
EOF
    readme <<EOF
# $CASE
Made by samples/scripts/tunnel_cases.sh: curl $V_CURL without the private CA -> relay.py -> openssl s_server -www (OpenSSL $V_OPENSSL), Linux $V_KERNEL.
relay.py wraps every forwarded frame in Ethernet/IPv4/GRE (sequence) 0x22eb/ERSPAN III (session 7, SGT 16, frame type 0, O flag: 8-byte platform subheader) and mirrors it; tcpdump $V_TCPDUMP on the mirror veth.
Look for: curl sends a fatal unknown_ca alert (48) after the server's certificate; the session is 10.77.1.1 -> 10.77.1.2:443, never 192.0.2.x.
EOF
    case_end
}
case_tunnel_gtpu() {
    _tunnel tunnel-gtpu gtpu $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "gtp.message==0xff && gtp.ext_hdr.next==0x85 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session carried in GTP-U G-PDUs (UDP 2152, sequence number and a PDU session container extension header): a mobile core's view" 4
    established_readme "relay.py wraps every forwarded IP packet in Ethernet/IPv4/UDP 2152/GTPv1-U G-PDU (TEID 0x1234, S and E flags, extension 0x85) and mirrors it;"
    case_end
}
case_tunnel_mpls() {
    _tunnel tunnel-mpls mpls $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "mpls.label==200 && mpls.bottom==1 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session under a two-label MPLS stack (100, 200) carrying IPv4 directly" 4
    established_readme "relay.py replaces the ether type by 0x8847 and pushes two MPLS labels (100, then 200 with bottom of stack) before the IPv4 packet, and mirrors the frame;"
    case_end
}
case_tunnel_ipip() {
    _tunnel tunnel-ipip ipip $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "ip.proto==4 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session seen through IP-in-IP (IPv4 protocol 4)" 4
    established_readme "relay.py wraps every forwarded IPv4 packet in an outer IPv4 header (protocol 4, 192.0.2.1->192.0.2.2) and mirrors it;"
    case_end
}
case_tunnel_6in4() {
    ACCEPT="[::]:443" _tunnel tunnel-6in4 ip6ip $S6 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "ip.proto==41 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session over IPv6 seen through IPv6-in-IPv4 (6in4, IPv4 protocol 41)" 6
    established_readme "curl -6 to fd77:1::2; relay.py wraps every forwarded IPv6 packet in an outer IPv4 header (protocol 41) and mirrors it;"
    case_end
}
case_tunnel_cmd() {
    _tunnel tunnel-cmd cmd $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    want "$CAPF" "cmd.sgt==16 && tcp" -eq "$(n "$CAPF" tcp)"
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session where every frame carries a Cisco MetaData header (ether type 0x8909, SGT 16), as Cisco TrustSec inserts" 4
    established_readme "relay.py inserts a Cisco MetaData header (ether type 0x8909: version 1, length 1, SGT option, SGT 16) after the MAC addresses of every forwarded frame and mirrors it;"
    case_end
}
# mirror-*: every packet twice on the capture; counted once
_copies() {
    local name=$1 kinds=$2
    _tunnel "$name" "$kinds" $S4 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    # tshark takes the second copy for a retransmission and does not read its TLS again
    want "$CAPF" "tls.handshake.type==2" -ge 1
    COPIES=$(( $(n "$CAPF" tcp) / 2 ))
    [ $((COPIES * 2)) = "$(n "$CAPF" tcp)" ] || die "$CASE: odd number of TCP frames"
}
case_mirror_both_copies() {
    _copies mirror-both-copies plain,plain
    want "$CAPF" "tcp.analysis.duplicate_ack || tcp.analysis.retransmission" -ge 1
    established_expected "successful TLS 1.3 session mirrored twice (a SPAN of both switch ports): every frame twice, microseconds apart; analyzed once, the $COPIES copies counted" 4 "\"anomalies\": {\"duplicate_copies_ignored\": $COPIES},"
    established_readme "relay.py sends every forwarded frame twice, unchanged, to the mirror veth (as a SPAN session on both the client's and the server's port does): tshark sees each packet and a retransmission of it;"
    case_end
}
case_mirror_inner_outer() {
    _copies mirror-inner-outer plain,vxlan
    want "$CAPF" "vxlan && tcp" -eq "$COPIES"
    established_expected "successful TLS 1.3 session seen twice: plain and inside VXLAN (the inner and the outer copy of a tunnel endpoint); analyzed once, the $COPIES copies counted" 4 "\"anomalies\": {\"duplicate_copies_ignored\": $COPIES},"
    established_readme "relay.py sends every forwarded frame to the mirror twice: unchanged, then wrapped in Ethernet/IPv4/UDP 4789/VXLAN;"
    case_end
}

# ip-fragments: client (no DF) -> router (MTU 400 toward the server) -> server
case_ip_fragments() {
    case_begin ip-fragments
    lib_teardown_ns
    local ns
    for ns in $NS_C $NS_R $NS_S; do
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
    done
    ip link add veth-c netns $NS_C type veth peer name r-c netns $NS_R
    ip link add veth-s netns $NS_S type veth peer name r-s netns $NS_R
    nsx $NS_C ethtool -K veth-c tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    nsx $NS_S ethtool -K veth-s tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    nsx $NS_R ethtool -K r-c tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    nsx $NS_R ethtool -K r-s tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    nsx $NS_C ip addr add 10.78.1.1/24 dev veth-c
    nsx $NS_R ip addr add 10.78.1.254/24 dev r-c
    nsx $NS_R ip addr add 10.78.2.254/24 dev r-s
    nsx $NS_S ip addr add 10.78.2.2/24 dev veth-s
    for d in "$NS_C veth-c" "$NS_R r-c" "$NS_R r-s" "$NS_S veth-s"; do nsx ${d% *} ip link set ${d#* } up; done
    # A 400-byte path MTU on the route toward the server (a veth's own MTU would also bound
    # what it receives, and drop the server's full-size replies).
    nsx $NS_R ip route replace 10.78.2.0/24 dev r-s mtu lock 400
    nsx $NS_C ip route add default via 10.78.1.254
    nsx $NS_S ip route add default via 10.78.2.254
    nsx $NS_R sysctl -qw net.ipv4.ip_forward=1
    # no DF on the client's packets, so the router fragments instead of sending ICMP
    nsx $NS_C sysctl -qw net.ipv4.ip_no_pmtu_disc=1
    bg $NS_S "$WORK/server.log" "${S_SERVER[@]}" -accept 443 -www
    wait_listen $NS_S 443
    cap_start $NS_S veth-s "$CAPF" "host 10.78.1.1"
    curl_get 10.78.2.2 "${CAFILE[@]}"
    cap_stop
    [ $CURL_RC = 0 ] || die "$CASE: curl failed: $(cat "$WORK/curl.err")"
    local first
    first=$(n "$CAPF" "ip.flags.mf==1 && ip.frag_offset==0")
    [ "$first" -ge 1 ] || die "$CASE: no fragmented datagram"
    want "$CAPF" "tls.handshake.type==1" -eq 1
    want_inner_tls13 "$CAPF"
    expected <<EOF
{
  "what": "successful TLS 1.3 session whose ClientHello the router fragmented (400-byte route MTU toward the server, client without DF): $first datagram(s) reassembled",
  "anomalies": {"ip_datagrams_reassembled": $first},
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "ip_version": 4, "server_port": 443}
  ]
}
EOF
    readme <<EOF
# $CASE
Made by samples/scripts/tunnel_cases.sh: curl $V_CURL (net.ipv4.ip_no_pmtu_disc=1: no DF bit) -> a router namespace (Linux $V_KERNEL, ip_forward, route MTU 400 toward the server) -> openssl s_server -www (OpenSSL $V_OPENSSL).
The router's kernel fragments every client packet larger than 400 bytes: the ClientHello arrives in $first+ IPv4 fragments. tcpdump $V_TCPDUMP on the server's interface.
Look for: frames with More Fragments set and their continuation; tshark reassembles the ClientHello, and so must tlsdiag (ip_datagrams_reassembled).
EOF
    case_end
}

# ip-fragments-v6-overlap: the relay's mirror cuts every large IPv6 packet into fragments,
# sending each datagram's first fragment twice
case_ip_fragments_v6_overlap() {
    ACCEPT="[::]:443" _tunnel ip-fragments-v6-overlap frag-overlap $S6 "${CAFILE[@]}"
    [ $CURL_RC = 0 ] || die "$CASE: curl failed"
    local first
    # fragmented datagrams: distinct identifications
    first=$(tshark -r "$CAPF" -Y ipv6.fraghdr -T fields -e ipv6.fraghdr.ident 2>/dev/null | sort -u | grep -c .)
    [ "$first" -ge 2 ] || die "$CASE: $first fragmented datagrams, want the ClientHello and the server flight"
    want "$CAPF" "ipv6.fragment.overlap" -ge 1
    want "$CAPF" "tls.handshake.type==1" -eq 1
    want_inner_tls13 "$CAPF"
    established_expected "successful TLS 1.3 session over IPv6 whose large packets (ClientHello, server flight) the mirror carries as IPv6 fragments of 256 bytes, each datagram's first fragment twice: $first datagrams reassembled, $first overlaps" 6 "\"anomalies\": {\"ip_datagrams_reassembled\": $first, \"ip_fragment_overlap\": $first},"
    established_readme "curl -6 to fd77:1::2; relay.py's mirror copy of every IPv6 packet over 300 bytes is cut into IPv6 fragments (fragment header, 256-byte pieces) by samples/scripts/encap.py, the first fragment of each datagram sent twice (an overlap, RFC 5722);"
    case_end
}

ALL=(tunnel-vxlan tunnel-vxlan-port tunnel-geneve tunnel-gre tunnel-gre-teb tunnel-erspan2 tunnel-erspan3
     tunnel-gtpu tunnel-mpls tunnel-ipip tunnel-6in4 tunnel-cmd mirror-both-copies mirror-inner-outer ip-fragments
     ip-fragments-v6-overlap)
for c in "${@:-${ALL[@]}}"; do
    "case_${c//-/_}"
done
