#!/bin/bash
# forged_cases.sh - regenerate the forged / damaged TCP sample cases of tlsdiag:
#   samples/cases/tcp-forged-*  samples/cases/tcp-bad-checksum-*  samples/cases/tcp-offload-*
# Run as root on Linux (Debian used). Idempotent: every case directory is rebuilt from
# scratch. Network traffic stays inside namespaces made here (tcp-cli, tcp-srv, tcp-rly: names
# of their own, so this can run beside tcp_cases.sh) and is removed on exit. Usage:
#   samples/scripts/forged_cases.sh                       # all cases
#   samples/scripts/forged_cases.sh tcp-forged-sni        # only these
# Every session here completes for real (curl gets its page); the captures hold forged or
# damaged copies that the peers never used, injected by relay.py (see its docstring).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/samples/cases
. "$HERE/lib.sh"
NS_C=tcp-cli
NS_S=tcp-srv
NS_R=tcp-rly

script_setup forged ip ethtool tcpdump tshark capinfos openssl curl timeout "$PY"
CURL_VERIFY=(--cacert "$WORK/pki/ca.crt")
make_certs "$WORK/pki"
FORGED_SNI=attack.example.test      # same length as $SNI: the forged ClientHello keeps its lengths
[ ${#FORGED_SNI} = ${#SNI} ] || die "forged SNI must have the length of $SNI"

CASE= ; CDIR= ; CAPF=
case_begin() { CASE=$1; CDIR=$OUT/$1; CAPF=$CDIR/$2; rm -rf "$CDIR"; mkdir -p "$CDIR"; say "$CASE"; }
case_end() {
    lib_cleanup
    chmod 644 "$CAPF"
    echo "   $(basename "$CAPF"): $(capinfos -c -M "$CAPF" | awk -F': *' '/Number of packets/{print $2}') packets, $(stat -c %s "$CAPF") bytes" >&2
}
n() { tshark -r "$1" -o tcp.check_checksum:TRUE -Y "$2" 2>/dev/null | wc -l; }
want() {
    local c; c=$(n "$1" "$2")
    [ "$c" "$3" "$4" ] || { tshark -r "$1" 2>/dev/null | head -40 >&2; die "$CASE: '$2' matched $c packets, want $3 $4"; }
}
readme() { cat >"$CDIR/README.md"; }
expected() { cat >"$CDIR/expected.json"; "$PY" -m json.tool "$CDIR/expected.json" >/dev/null || die "$CASE: bad json"; }
S_SERVER=(openssl s_server -cert "$WORK/pki/server.crt" -key "$WORK/pki/server.key" -cert_chain "$WORK/pki/ca.crt")
curl_ok() {             # curl_ok <ns> <ip> <port> <path> [curl args]  (fails the case if not 200)
    local ns=$1 ip=$2 port=$3 path=$4 code; shift 4
    code=$(nsx "$ns" timeout 20 curl -sS -o /dev/null -w '%{http_code}' "${CURL_VERIFY[@]}" \
        --resolve "$SNI:$port:$ip" "$@" "https://$SNI:$port$path") || die "$CASE: curl failed"
    [ "$code" = 200 ] || die "$CASE: HTTP $code"
}
SELECTED=("$@")
run() { if [ ${#SELECTED[@]} -eq 0 ] || printf '%s\n' "${SELECTED[@]}" | grep -qx "$1"; then "case_${1//-/_}"; fi; }

# _relay_case <name> <curl args...> -- <relay options...>: curl -> relay.py -> s_server -www,
# captured untagged on the relay's mirror port (which alone gets the forged copies).
_relay_case() {
    local name=$1; shift
    local curl_args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do curl_args+=("$1"); shift; done
    shift
    case_begin "$name" "$name.pcap"
    ns_setup_relay
    bg $NS_S "$WORK/server.log" "${S_SERVER[@]}" -accept 443 -www
    wait_listen $NS_S 443
    relay_start 20 --mirror r-m --vlan 0 "$@"
    cap_start $NS_R r-mcap "$CAPF" "tcp port 443"
    curl_ok $NS_C $S4 443 / "${curl_args[@]}"
    cap_stop
    stop "$RELAY_PID"
    sed 's/^/   /' "$WORK/relay.log" >&2
}

case_tcp_forged_alert_tls13() {
    _relay_case tcp-forged-alert-tls13 -- --forge-s2c-alert 1
    grep -q "forged alert ahead of s2c data segment #1" "$WORK/relay.log" || die "$CASE: nothing forged"
    want "$CAPF" "tls.alert_message.desc==40" -eq 1
    want "$CAPF" "ip.src==$S4 && tcp.seq==1 && tcp.len==7" -eq 1
    want "$CAPF" "ip.src==$S4 && tcp.seq==1 && tcp.len>100" -eq 1
    want "$CAPF" "tcp.checksum.status==0" -eq 0
    expected <<EOF
{
  "what": "TLS 1.3 session that completed (curl got its page); a forged fatal alert with the server's first sequence number, seen on the mirror just before the real ServerHello, never reached the client",
  "sessions": [
    {"outcome": "failed", "confidence_not": "high", "quality_note_contains": "sent twice with different contents"}
  ],
  "anomalies": {"tcp_overlap_conflict": 1}
}
EOF
    readme <<EOF
# tcp-forged-alert-tls13
Made by samples/scripts/forged_cases.sh: curl $V_CURL (TLS 1.3) -> relay.py bridge -> openssl s_server -www (OpenSSL $V_OPENSSL); Linux $V_KERNEL, tcpdump $V_TCPDUMP on the relay's mirror port.
relay.py \`--forge-s2c-alert 1\`: a copy of the server's first data segment with a fatal handshake_failure alert as payload (checksums right) goes to the mirror only, then the real segment to both; the client never sees the forgery and completes.
Look for: two server segments with the same seq and different bytes. tlsdiag analyses the first copy (the alert), counts \`tcp_overlap_conflict\` and never gives the verdict high confidence; its quality note names both frames.
EOF
    case_end
}

case_tcp_forged_alert_tls12() {
    _relay_case tcp-forged-alert-tls12 --tls-max 1.2 -- --forge-s2c-alert 1
    grep -q "forged alert ahead of s2c data segment #1" "$WORK/relay.log" || die "$CASE: nothing forged"
    want "$CAPF" "tls.alert_message.desc==40" -eq 1
    want "$CAPF" "ip.src==$S4 && tcp.seq==1 && tcp.len==7" -eq 1
    want "$CAPF" "ip.src==$S4 && tcp.seq==1 && tcp.len>100" -eq 1
    expected <<EOF
{
  "what": "TLS 1.2 session that completed (curl got its page); a forged fatal alert with the server's first sequence number, seen on the mirror just before the real ServerHello, never reached the client",
  "sessions": [
    {"outcome": "failed", "confidence_not": "high", "quality_note_contains": "sent twice with different contents"}
  ],
  "anomalies": {"tcp_overlap_conflict": 1}
}
EOF
    readme <<EOF
# tcp-forged-alert-tls12
Made by samples/scripts/forged_cases.sh: curl $V_CURL --tls-max 1.2 -> relay.py bridge -> openssl s_server -www (OpenSSL $V_OPENSSL); Linux $V_KERNEL, tcpdump $V_TCPDUMP on the relay's mirror port.
relay.py \`--forge-s2c-alert 1\`: a forged fatal alert at the seq of the server's first data segment, mirror only, just before the real ServerHello flight.
Look for: the forged alert and the real ServerHello at the same seq; \`tcp_overlap_conflict\` 1 and a verdict that is not high confidence.
EOF
    case_end
}

case_tcp_forged_sni() {
    _relay_case tcp-forged-sni -- --forge-c2s-sni "$SNI=$FORGED_SNI"
    grep -q "forged ClientHello" "$WORK/relay.log" || die "$CASE: nothing forged"
    want "$CAPF" "tls.handshake.extensions_server_name==\"$FORGED_SNI\"" -eq 1
    want "$CAPF" "ip.src==$C4 && tcp.seq==1 && frame contains \"$SNI\"" -eq 1
    expected <<EOF
{
  "what": "TLS 1.3 session that completed; a forged ClientHello naming $FORGED_SNI, seen on the mirror just before the real one (SNI $SNI) at the same seq, never reached the server",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence_not": "high", "quality_note_contains": "the SNI and offer reported may be forged"}
  ],
  "anomalies": {"tcp_overlap_conflict": 1}
}
EOF
    readme <<EOF
# tcp-forged-sni
Made by samples/scripts/forged_cases.sh: curl $V_CURL -> relay.py bridge -> openssl s_server -www (OpenSSL $V_OPENSSL); Linux $V_KERNEL, tcpdump $V_TCPDUMP on the relay's mirror port.
relay.py \`--forge-c2s-sni $SNI=$FORGED_SNI\`: a copy of the ClientHello with the other SNI (same length, checksums right) goes to the mirror only, then the real one.
Look for: two ClientHellos at the same seq. tlsdiag reports the first (forged) SNI but says the ClientHello bytes were in conflict, at less than high confidence.
EOF
    case_end
}

case_tcp_bad_checksum_alert() {
    case_begin tcp-bad-checksum-alert tcp-bad-checksum-alert.pcap
    ns_setup_relay
    bg $NS_S "$WORK/server.log" "${S_SERVER[@]}" -accept 443 -www
    wait_listen $NS_S 443
    relay_start 20 --bad-csum-s2c 1
    cap_start $NS_C veth-c "$CAPF" "tcp port 443"
    curl_ok $NS_C $S4 443 /
    cap_stop
    stop "$RELAY_PID"
    sed 's/^/   /' "$WORK/relay.log" >&2
    grep -q "wrong TCP checksum sent" "$WORK/relay.log" || die "$CASE: nothing corrupted"
    want "$CAPF" "tcp.checksum.status==0" -eq 1
    want "$CAPF" "tcp.checksum.status==0 && tls.alert_message.desc==40" -eq 1
    want "$CAPF" "tcp.checksum.status==1" -ge 10
    expected <<EOF
{
  "what": "TLS 1.3 session that completed; captured on the client, which dropped a copy of the server's first data segment carrying a fatal alert with a wrong TCP checksum (the real segment follows it)",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"}
  ],
  "anomalies": {"tcp_bad_checksum": 1}
}
EOF
    readme <<EOF
# tcp-bad-checksum-alert
Made by samples/scripts/forged_cases.sh: curl $V_CURL -> relay.py bridge -> openssl s_server -www (OpenSSL $V_OPENSSL); Linux $V_KERNEL, tcpdump $V_TCPDUMP on the client's veth (offloads off: every other checksum is right).
relay.py \`--bad-csum-s2c 1\`: just before the server's first data segment, a copy carrying a fatal alert with a wrong TCP checksum; the client's kernel drops it, the real segment follows.
Look for: one segment with a bad checksum (tshark: tcp.checksum.status==0). tlsdiag does not use it (\`tcp_bad_checksum\` 1) and the session is established at high confidence.
EOF
    case_end
}

case_tcp_offload_sender() {
    case_begin tcp-offload-sender tcp-offload-sender.pcap
    ns_setup_direct
    # Checksum offload on the client's veth: the kernel leaves the checksum of every segment it
    # sends to the "NIC" (only the pseudo-header sum is written), so a capture on this host holds
    # wrong checksums on every outgoing segment.
    nsx $NS_C ethtool -K veth-c tx on >/dev/null
    bg $NS_S "$WORK/server.log" "${S_SERVER[@]}" -accept 443 -www
    wait_listen $NS_S 443
    cap_start $NS_C veth-c "$CAPF" "tcp port 443"
    curl_ok $NS_C $S4 443 /
    curl_ok $NS_C $S4 443 / --tls-max 1.2
    cap_stop
    # (the kernel may write a control segment itself, e.g. an ACK after the last FIN, with a
    # right checksum: the direction can be mixed, as on a real sending host)
    want "$CAPF" "ip.src==$C4 && tcp.len>0 && tcp.checksum.status==1" -eq 0
    want "$CAPF" "ip.src==$S4 && tcp.checksum.status==1" -eq "$(n "$CAPF" "ip.src==$S4")"
    want "$CAPF" "tls.handshake.type==1" -eq 2
    expected <<EOF
{
  "what": "two sessions (TLS 1.3, then 1.2) captured on the client with tx checksum offload on: every client segment has a wrong (partial) checksum and must still be used",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# tcp-offload-sender
Made by samples/scripts/forged_cases.sh: curl $V_CURL (TLS 1.3, then --tls-max 1.2) -> openssl s_server -www (OpenSSL $V_OPENSSL); Linux $V_KERNEL, tcpdump $V_TCPDUMP on the client's veth with \`ethtool -K veth-c tx on\`.
Look for: every client->server segment with an incorrect (pseudo-header only) checksum, every server->client one correct. tlsdiag uses them all: both sessions established at high confidence, no tcp_bad_checksum.
EOF
    case_end
}

ALL=(tcp-forged-alert-tls13 tcp-forged-alert-tls12 tcp-forged-sni tcp-bad-checksum-alert tcp-offload-sender)
if [ ${#SELECTED[@]} -gt 0 ]; then
    for c in "${SELECTED[@]}"; do
        printf '%s\n' "${ALL[@]}" | grep -qx "$c" || die "unknown case $c"
    done
fi
for c in "${ALL[@]}"; do run "$c"; done
say "done"
