#!/bin/bash
# redact_cases.sh - make the sample case for `--redact`: samples/cases/redact-prefix-addresses.
#   Client 10.0.0.1 / fd0f::1 and server 10.0.0.10 / fd0f::10: each client address is a prefix
#   of the server's, the trap of a text substitution. One capture on the client veth holds a
#   refused connection, a failed TLS session (version mismatch), and two established sessions
#   (IPv4, IPv6).
# Run as root on Linux. Uses lib.sh's helpers with namespaces of its own (redact-cli,
# redact-srv), removed on exit; every process started is stopped by its PID.
# Usage: samples/scripts/redact_cases.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/samples/cases
. "$HERE/lib.sh"
# lib.sh's topology, with names and addresses of our own.
NS_C=redact-cli
NS_S=redact-srv
NS_R=redact-rly
C4=10.0.0.1
S4=10.0.0.10
C6=fd0f::1
S6=fd0f::10

script_setup redact ip ethtool tcpdump tshark capinfos openssl curl ss timeout "$PY"
make_certs "$WORK/pki"
chmod -R a+rX "$WORK"

# curl_run <rc-wanted: ok|fail> <ip> [curl args]
curl_run() {
    local want=$1 ip=$2 rc=0 host; shift 2
    host=$ip; case $ip in *:*) host="[$ip]";; esac
    nsx $NS_C timeout 20 curl -sS -o /dev/null --cacert "$WORK/pki/ca.crt" \
        --resolve "$SNI:443:$host" "$@" "https://$SNI/" 2>"$WORK/curl.err" || rc=$?
    echo "   curl $ip $*: rc $rc $(head -1 "$WORK/curl.err")" >&2
    if [ "$want" = ok ]; then [ $rc = 0 ] || die "curl failed"; else [ $rc != 0 ] || die "curl succeeded"; fi
}

CASE=redact-prefix-addresses
CDIR=$OUT/$CASE
CAPF=$CDIR/$CASE.pcap
rm -rf "$CDIR"; mkdir -p "$CDIR"
say "$CASE"
ns_setup_direct
cap_start $NS_C veth-c "$CAPF" "tcp port 443"
curl_run fail $S4 --connect-timeout 4                       # nothing listens yet: RST,ACK
for a in "$S4:443" "[$S6]:443"; do      # OpenSSL's [::] listener is IPv6-only
    bg $NS_S "$WORK/server-${#BG_PIDS[@]}.log" openssl s_server -cert "$WORK/pki/server.crt" -key "$WORK/pki/server.key" \
        -cert_chain "$WORK/pki/ca.crt" -accept "$a" -tls1_3 -www
done
for i in $(seq 1 50); do [ "$(nsx $NS_S ss -Hltn 'sport = :443' | grep -c LISTEN)" = 2 ] && break; sleep 0.1; done
curl_run fail $S4 --tls-max 1.2                              # TLS 1.3-only server: protocol_version
curl_run ok $S4
curl_run ok $S6
cap_stop
chmod 644 "$CAPF"
n() { tshark -r "$CAPF" -Y "$1" 2>/dev/null | wc -l; }
[ "$(n "tcp.stream==0 && ip.src==$S4 && tcp.flags.reset==1")" -eq 1 ] || die "no refusal"
[ "$(n "tls.alert_message.desc==70")" -eq 1 ] || die "no protocol_version alert"
[ "$(n "ipv6 && tls.handshake.type==2")" -eq 1 ] || die "no IPv6 ServerHello"
[ "$(tshark -r "$CAPF" -T fields -e tcp.stream 2>/dev/null | sort -u | grep -c .)" = 4 ] || die "want 4 connections"
cat >"$CDIR/expected.json" <<EOF
{
  "what": "client addresses that are prefixes of the server's (10.0.0.1 / 10.0.0.10, fd0f::1 / fd0f::10): refused, version mismatch, two established",
  "sessions": [
    {"outcome": "failed", "cause": "timeout", "reason": "connection_refused", "side": "server", "ip_version": 4, "server_port": 443},
    {"outcome": "failed", "cause": "protocol", "reason": "version_mismatch", "side": "server", "ip_version": 4, "server_port": 443},
    {"outcome": "established", "tls_version": "1.3", "ip_version": 4, "server_port": 443},
    {"outcome": "established", "tls_version": "1.3", "ip_version": 6, "server_port": 443}
  ]
}
EOF
"$PY" -m json.tool "$CDIR/expected.json" >/dev/null || die "bad json"
cat >"$CDIR/README.md" <<EOF
# $CASE
Made by samples/scripts/redact_cases.sh: client $C4 / $C6, server $S4 / $S6 (each client address a prefix of the server's).
curl $V_CURL to $S4:443 with nothing listening; then OpenSSL $V_OPENSSL \`s_server -tls1_3 -www\`: curl --tls-max 1.2 (refused
with a protocol_version alert), curl to $S4 and to [$S6] (TLS 1.3). Linux $V_KERNEL, tcpdump $V_TCPDUMP on the client veth (Ethernet).
Look for: under --redact, every client address becomes a pseudonym and the server stays exactly $S4 / $S6 (tests/redact.rs).
EOF
echo "   $(basename "$CAPF"): $(capinfos -c -M "$CAPF" | awk -F': *' '/Number of packets/{print $2}') packets" >&2
