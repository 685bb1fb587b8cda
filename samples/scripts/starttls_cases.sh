#!/bin/bash
# starttls_cases.sh - regenerate the sample cases of TLS found by content (issue 18):
#   samples/cases/tls-any-port          TLS on 8443, 4433 and 993 beside plaintext HTTP, no -p
#   samples/cases/starttls-<proto>      openssl s_client -starttls <proto> against preamble_server.py
#   samples/cases/starttls-smtp-refused a plain SMTP session and a refused STARTTLS (python smtplib)
#   samples/cases/proxy-connect         curl through an HTTP CONNECT proxy, and a refused CONNECT
#   samples/cases/proxy-socks5          curl through a SOCKS5 proxy (remote name resolution)
#   samples/cases/tcp-server-banner     a server banner to a client that never speaks (443 and 2525)
# Run as root on Linux. Namespaces h18b-cli / h18b-srv (removed on exit). Usage:
#   samples/scripts/starttls_cases.sh                     # all cases
#   samples/scripts/starttls_cases.sh starttls-smtp proxy-socks5
# Every capture is checked with tshark; the script stops if it does not show what the case claims.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/samples/cases
. "$HERE/lib.sh"
# This script's own namespaces (lib.sh's helpers use these names).
NS_C=h18b-cli
NS_S=h18b-srv
NS_R=h18b-rly

script_setup starttls ip ethtool tcpdump tshark capinfos openssl curl ss timeout "$PY"
V_PY=$("$PY" -c 'import sys,ssl;print(sys.version.split()[0]+" (ssl: "+ssl.OPENSSL_VERSION+")")')
make_certs "$WORK/pki"
chmod -R a+rX "$WORK"
PRE=("$PY" "$HERE/preamble_server.py")
S_SERVER=(openssl s_server -cert "$WORK/pki/server.crt" -key "$WORK/pki/server.key" -cert_chain "$WORK/pki/ca.crt")

case_begin() {          # case_begin <name> <capture-file-name>
    CASE=$1; CDIR=$OUT/$1; CAPF=$CDIR/$2
    rm -rf "$CDIR"; mkdir -p "$CDIR"
    say "$CASE"
    ns_setup_direct
}
case_end() {
    lib_cleanup
    chmod 644 "$CAPF"
    echo "   $(basename "$CAPF"): $(capinfos -c -M "$CAPF" | awk -F': *' '/Number of packets/{print $2}') packets" >&2
}
n() { tshark -r "$1" -Y "$2" 2>/dev/null | wc -l; }
want() {
    local c; c=$(n "$1" "$2")
    [ "$c" "$3" "$4" ] || { tshark -r "$1" 2>/dev/null | head -60 >&2; die "$CASE: '$2' matched $c packets, want $3 $4"; }
}
readme() { cat >"$CDIR/README.md"; }
expected() { cat >"$CDIR/expected.json"; "$PY" -m json.tool "$CDIR/expected.json" >/dev/null || die "$CASE: bad json"; }
# pre <port> <mode> [args]: preamble_server.py in the server namespace (PID in SRV_PID)
pre() {
    local port=$1 mode=$2; shift 2
    bg $NS_S "$WORK/pre-$port.log" "${PRE[@]}" "$mode" "$port" "$WORK/pki/chain.crt" "$WORK/pki/server.key" "$@"
    SRV_PID=$BGPID
    wait_listen $NS_S "$port"
}

# ---------------------------------------------------------------- TLS on unlisted ports
case_tls_any_port() {
    case_begin tls-any-port tls-any-port.pcap
    local p
    for p in 8443 4433 993; do
        bg $NS_S "$WORK/s_server-$p.log" "${S_SERVER[@]}" -accept "$p" -www
        wait_listen $NS_S "$p"
    done
    mkdir -p "$WORK/www"; echo "plain http" >"$WORK/www/index.html"
    bg $NS_S "$WORK/http.log" "$PY" -m http.server 8080 --bind 0.0.0.0 --directory "$WORK/www"
    wait_listen $NS_S 8080
    cap_start $NS_C veth-c "$CAPF" "tcp"
    nsx $NS_C curl -s -o /dev/null --max-time 5 "http://$S4:8080/" || die "http"
    for p in 8443 4433 993; do
        nsx $NS_C curl -s -o /dev/null --max-time 5 --cacert "$WORK/pki/ca.crt" \
            --resolve "$SNI:$p:$S4" "https://$SNI:$p/" || die "curl $p"
    done
    nsx $NS_C curl -s -o /dev/null --max-time 3 "http://$S4:9999/" && die "9999 answered"
    cap_stop
    want "$CAPF" "tls.handshake.type==1" -ge 2      # tshark maps 4433 and 993 to TLS, not 8443
    want "$CAPF" "tcp.port==8080 && http.request" -eq 1
    want "$CAPF" "tcp.port==9999 && tcp.flags.reset==1" -ge 1
    for p in 8443 4433 993; do want "$CAPF" "tcp.port==$p && tcp.flags.syn==1" -ge 2; done
    readme <<EOF
# tls-any-port
Made by samples/scripts/starttls_cases.sh: openssl s_server -www on 8443, 4433 and 993 (OpenSSL $V_OPENSSL), curl $V_CURL https://$SNI:PORT/ to each; curl http://…:8080/ to python http.server; a connection refused on 9999. tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: without -p, the three TLS sessions on unlisted ports are found by their ClientHello and reported established; the plaintext HTTP connection and the refused one are not TLS sessions; the report lists the ports TLS was found on (8443, 4433, 993). With --ports-only: no session.
EOF
    expected <<'EOF'
{
  "what": "TLS 1.3 on 8443, 4433 and 993 found without -p; plaintext HTTP on 8080 and a refused connection on 9999 are no sessions",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443},
    {"outcome": "established", "tls_version": "1.3", "server_port": 4433},
    {"outcome": "established", "tls_version": "1.3", "server_port": 993}
  ]
}
EOF
    case_end
}

# ---------------------------------------------------------------- STARTTLS with openssl s_client
# starttls_case <proto> <port>
starttls_case() {
    local proto=$1 port=$2 mode=$1
    [ "$proto" = postgres ] && mode=postgres
    case_begin "starttls-$proto" "starttls-$proto.pcap"
    pre "$port" "$mode"
    cap_start $NS_C veth-c "$CAPF" "tcp port $port"
    local extra=()
    [ "$proto" = xmpp ] && extra=(-xmpphost "$SNI")
    nsx $NS_C timeout 10 openssl s_client -connect "$S4:$port" -starttls "$proto" -servername "$SNI" \
        -CAfile "$WORK/pki/ca.crt" "${extra[@]}" < <(sleep 0.3; echo "hello over TLS") >"$WORK/client.log" 2>&1 || true
    grep -q "Verify return code: 0" "$WORK/client.log" || { cat "$WORK/client.log" >&2; die "$CASE: handshake failed"; }
    stop "$SRV_PID"
    cap_stop
    want "$CAPF" "tcp.flags.syn==1" -eq 2
    want "$CAPF" "tcp.len>0" -ge 4
    readme <<EOF
# starttls-$proto
Made by samples/scripts/starttls_cases.sh: openssl s_client -starttls $proto (OpenSSL $V_OPENSSL; one line of application data, then end of input) against samples/scripts/preamble_server.py $mode on port $port (Python $V_PY: the plaintext preamble, then ssl.wrap_socket). tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: without -p, the plaintext preamble is recognised ($proto), the handshake is picked up at the first record after the server's go-ahead, and the session is established (TLS 1.3) on port $port; the request and the go-ahead are in the evidence.
EOF
    expected <<EOF
{
  "what": "$proto STARTTLS-style upgrade on port $port (openssl s_client -starttls $proto), found without -p",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "server_port": $port, "preamble": "$mode"}
  ]
}
EOF
    case_end
}

# ---------------------------------------------------------------- refused STARTTLS
case_starttls_smtp_refused() {
    case_begin starttls-smtp-refused starttls-smtp-refused.pcap
    pre 25 smtp --refuse --count 2
    cap_start $NS_C veth-c "$CAPF" "tcp port 25"
    nsx $NS_C "$PY" - "$S4" <<'PYEOF'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="client.tlsdiag.test", timeout=5)
s.ehlo(); s.noop(); s.quit()                       # plain SMTP, never asks for TLS
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="client.tlsdiag.test", timeout=5)
s.ehlo()
try:
    s.starttls()
    sys.exit("STARTTLS was accepted")
except smtplib.SMTPResponseException as e:
    print("refused:", e.smtp_code, e.smtp_error)
s.quit()
PYEOF
    stop "$SRV_PID"
    cap_stop
    want "$CAPF" "tcp.dstport==25 && frame contains \"STARTTLS\"" -eq 1
    want "$CAPF" "smtp.response.code == 454" -eq 1
    readme <<EOF
# starttls-smtp-refused
Made by samples/scripts/starttls_cases.sh: Python $V_PY smtplib against samples/scripts/preamble_server.py smtp --refuse on port 25: one plain SMTP session (EHLO, NOOP, QUIT) and one STARTTLS answered "454 4.7.0 TLS not available due to local problem". tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: without -p, the plain SMTP connection is no TLS session (it never asked for TLS); the refused STARTTLS is failed/protocol/starttls_refused with the server's answer in the evidence.
EOF
    expected <<'EOF'
{
  "what": "SMTP on port 25 without -p: a plain session (no TLS session) and a STARTTLS refused with 454",
  "sessions": [
    {"outcome": "failed", "cause": "protocol", "reason": "starttls_refused", "side": "server", "server_port": 25, "confidence": "high", "preamble": "smtp"}
  ]
}
EOF
    case_end
}

# ---------------------------------------------------------------- proxies
case_proxy_connect() {
    case_begin proxy-connect proxy-connect.pcap
    bg $NS_S "$WORK/s_server.log" "${S_SERVER[@]}" -accept 127.0.0.1:4433 -www
    SRV_PID=$BGPID
    wait_listen $NS_S 4433
    pre 3128 connect
    local ok_pid=$SRV_PID
    pre 3129 connect --refuse
    cap_start $NS_C veth-c "$CAPF" "tcp port 3128 or tcp port 3129"
    nsx $NS_C curl -s -o /dev/null --max-time 5 --cacert "$WORK/pki/ca.crt" -x "http://$S4:3128" "https://$SNI:4433/" \
        || die "curl through the proxy"
    nsx $NS_C curl -s -o /dev/null --max-time 5 --cacert "$WORK/pki/ca.crt" -x "http://$S4:3129" "https://$SNI:4433/" \
        && die "the refusing proxy let curl through"
    stop "$ok_pid"
    cap_stop
    want "$CAPF" "http.request.method == \"CONNECT\"" -eq 2
    want "$CAPF" "http.response.code == 403" -eq 1
    readme <<EOF
# proxy-connect
Made by samples/scripts/starttls_cases.sh: curl $V_CURL -x http://proxy:3128 https://$SNI:4433/ through samples/scripts/preamble_server.py connect (Python $V_PY, relaying to openssl s_server -www $V_OPENSSL), then the same through a proxy on 3129 that answers "403 Forbidden". tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: without -p, the CONNECT preamble is recognised, the handshake after "200 Connection established" is established (TLS 1.3, server = the proxy on 3128); the refused tunnel is failed/protocol/proxy_refused with the status line in the evidence.
EOF
    expected <<'EOF'
{
  "what": "HTTP CONNECT proxy: a tunnel carrying TLS 1.3 (established) and a CONNECT refused with 403 (proxy_refused), without -p",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "server_port": 3128, "preamble": "http_connect"},
    {"outcome": "failed", "cause": "protocol", "reason": "proxy_refused", "side": "server", "server_port": 3129, "preamble": "http_connect"}
  ]
}
EOF
    case_end
}

case_proxy_socks5() {
    case_begin proxy-socks5 proxy-socks5.pcap
    bg $NS_S "$WORK/s_server.log" "${S_SERVER[@]}" -accept 127.0.0.1:4433 -www
    wait_listen $NS_S 4433
    pre 1080 socks5
    cap_start $NS_C veth-c "$CAPF" "tcp port 1080"
    nsx $NS_C curl -s -o /dev/null --max-time 5 --cacert "$WORK/pki/ca.crt" --socks5-hostname "$S4:1080" \
        "https://$SNI:4433/" || die "curl through socks5"
    stop "$SRV_PID"
    cap_stop
    want "$CAPF" "socks.version == 5" -ge 2
    readme <<EOF
# proxy-socks5
Made by samples/scripts/starttls_cases.sh: curl $V_CURL --socks5-hostname proxy:1080 https://$SNI:4433/ through samples/scripts/preamble_server.py socks5 (Python $V_PY, relaying to openssl s_server -www $V_OPENSSL). tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: without -p, the SOCKS5 greeting and CONNECT request ($SNI:4433) are recognised and the TLS 1.3 handshake after the proxy's success reply is established (server = the proxy on 1080).
EOF
    expected <<'EOF'
{
  "what": "SOCKS5 proxy tunnel carrying TLS 1.3, found without -p",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "server_port": 1080, "preamble": "socks5"}
  ]
}
EOF
    case_end
}

# ---------------------------------------------------------------- a banner to a silent client
case_tcp_server_banner() {
    case_begin tcp-server-banner tcp-server-banner.pcap
    pre 443 banner
    pre 2525 banner
    cap_start $NS_C veth-c "$CAPF" "tcp port 443 or tcp port 2525"
    nsx $NS_C "$PY" - "$S4" <<'PYEOF'
import socket, sys, time
for port in (443, 2525):
    s = socket.create_connection((sys.argv[1], port), timeout=5)
    print(port, s.recv(200))          # the banner; the client never sends a byte
    time.sleep(1.0)
    s.close()
PYEOF
    cap_stop
    want "$CAPF" "tcp.dstport==443 && tcp.len>0" -eq 0
    want "$CAPF" "tcp.srcport==443 && tcp.len>0" -eq 1
    readme <<EOF
# tcp-server-banner
Made by samples/scripts/starttls_cases.sh: samples/scripts/preamble_server.py banner on 443 and 2525 (Python $V_PY) sends "220 tlsdiag-sample ESMTP ready"; a Python client connects to each, reads, waits 1 s and closes without sending a byte. tcpdump $V_TCPDUMP, Linux $V_KERNEL.
Look for: on the listed port 443 the session is incomplete (server_banner), not a failed TLS session, with the banner shown escaped in the evidence; on the unlisted port 2525 no TLS was seen, so no session.
EOF
    expected <<'EOF'
{
  "what": "a server banner to a client that never sends a byte: incomplete on 443 (listed), nothing on 2525",
  "sessions": [
    {"outcome": "incomplete", "incomplete_reason": "server_banner", "server_port": 443}
  ]
}
EOF
    case_end
}

ALL=(tls-any-port starttls-smtp starttls-imap starttls-pop3 starttls-ftp starttls-xmpp starttls-ldap
     starttls-postgres starttls-smtp-refused proxy-connect proxy-socks5 tcp-server-banner)
[ $# -gt 0 ] && ALL=("$@")
for c in "${ALL[@]}"; do
    case $c in
        tls-any-port) case_tls_any_port ;;
        starttls-smtp) starttls_case smtp 25 ;;
        starttls-imap) starttls_case imap 143 ;;
        starttls-pop3) starttls_case pop3 110 ;;
        starttls-ftp) starttls_case ftp 21 ;;
        starttls-xmpp) starttls_case xmpp 5222 ;;
        starttls-ldap) starttls_case ldap 389 ;;
        starttls-postgres) starttls_case postgres 5432 ;;
        starttls-smtp-refused) case_starttls_smtp_refused ;;
        proxy-connect) case_proxy_connect ;;
        proxy-socks5) case_proxy_socks5 ;;
        tcp-server-banner) case_tcp_server_banner ;;
        *) die "unknown case $c" ;;
    esac
done
