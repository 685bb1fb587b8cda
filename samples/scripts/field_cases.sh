#!/bin/bash
# field_cases.sh - regenerate the "field" sample cases of tlsdiag: captures made the messy way
# real sensors see traffic (many connections in one file, keep-alive, HTTP/2, resumption,
# renegotiation, long chains in small segments, offload, snaplen, duplicates, TLS on any port).
#   samples/cases/field-*
# Run as root on Linux (Debian used). Network traffic stays inside namespaces made here
# (fx-cli, fx-srv, fx-rly) and is removed on exit. Usage:
#   samples/scripts/field_cases.sh                      # all cases
#   samples/scripts/field_cases.sh field-web-mixed      # only these
#   OUT=/tmp/x samples/scripts/field_cases.sh           # write the cases elsewhere
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/samples/cases}
. "$HERE/lib.sh"
NS_C=fx-cli
NS_S=fx-srv
NS_R=fx-rly

script_setup field ip ethtool tcpdump tshark capinfos openssl curl gnutls-cli gnutls-serv nginx timeout "$PY"
V_NGINX=$(nginx -v 2>&1 | sed 's|.*nginx/||')
V_GNUTLS=$(gnutls-cli --version 2>/dev/null | awk 'NR==1{print $NF}')
CURL_VERIFY=(--cacert "$WORK/pki/ca.crt")
make_certs "$WORK/pki"

# a long chain: root -> two intermediates -> RSA-4096 leaf (Certificate message ~6 KB)
make_long_chain() {
    local d=$1 i prev=ca
    for i in 1 2; do
        openssl req -newkey rsa:4096 -nodes -subj "/CN=tlsdiag intermediate $i" -keyout "$d/int$i.key" \
            -out "$d/int$i.csr" 2>/dev/null
        printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$d/int.cnf"
        openssl x509 -req -in "$d/int$i.csr" -CA "$d/$prev.crt" -CAkey "$d/$prev.key" -CAcreateserial \
            -days 3650 -sha256 -extfile "$d/int.cnf" -out "$d/int$i.crt" 2>/dev/null
        prev=int$i
    done
    openssl req -newkey rsa:4096 -nodes -subj "/CN=$SNI" -keyout "$d/long.key" -out "$d/long.csr" 2>/dev/null
    openssl x509 -req -in "$d/long.csr" -CA "$d/int2.crt" -CAkey "$d/int2.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$d/ext.cnf" -out "$d/long.crt" 2>/dev/null
    cat "$d/long.crt" "$d/int2.crt" "$d/int1.crt" >"$d/longchain.crt"
}
make_long_chain "$WORK/pki"
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
echo "hello from nginx" >"$WORK/www/index.html"
head -c 12000 /dev/urandom | base64 >"$WORK/www/big.txt"

CASE= ; CDIR= ; CAPF=
case_begin() { CASE=$1; CDIR=$OUT/$1; CAPF=$CDIR/$2; rm -rf "$CDIR"; mkdir -p "$CDIR"; say "$CASE"; }
case_end() {
    lib_cleanup
    chmod 644 "$CAPF"
    echo "   $(basename "$CAPF"): $(capinfos -c -M "$CAPF" | awk -F': *' '/Number of packets/{print $2}') packets, $(stat -c %s "$CAPF") bytes" >&2
}
readme() { cat >"$CDIR/README.md"; }
expected() { cat >"$CDIR/expected.json"; "$PY" -m json.tool "$CDIR/expected.json" >/dev/null || die "$CASE: bad json"; }
S_SERVER=(openssl s_server -cert "$WORK/pki/server.crt" -key "$WORK/pki/server.key" -cert_chain "$WORK/pki/ca.crt")
SELECTED=("$@")
run() { if [ ${#SELECTED[@]} -eq 0 ] || printf '%s\n' "${SELECTED[@]}" | grep -qx "$1"; then "case_${1//-/_}"; fi; }

# nginx_start <server blocks...>: nginx in $NS_S, each argument one "listen ...; extra" server block body
nginx_start() {
    local blocks="" b
    for b in "$@"; do
        blocks+="    server { $b server_name $SNI; root $WORK/www; keepalive_timeout 30s; }
"
    done
    cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp;
    ssl_certificate $WORK/pki/chain.crt;
    ssl_certificate_key $WORK/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:fx:1m;
$blocks}
EOF
    bg $NS_S "$WORK/server.log" nginx -c "$WORK/nginx.conf"
    SRV_PID=$BGPID
}
curl_ok() {             # curl_ok <ns> <ip> <port> <url paths...> -- [curl args]
    local ns=$1 ip=$2 port=$3 urls=() out; shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do urls+=(-o /dev/null "https://$SNI:$port$1"); shift; done
    [ $# -gt 0 ] && shift
    out=$(nsx "$ns" timeout 20 curl -sS -w '%{http_code} ' \
        "${CURL_VERIFY[@]}" --resolve "$SNI:$port:$ip" "$@" "${urls[@]}") || die "$CASE: curl failed"
    case $out in *200*) ;; *) die "$CASE: HTTP $out";; esac
}
# s_client_req <ns> <port> [s_client args]: one GET over openssl s_client, stdin closed after the reply
s_client_req() {
    local ns=$1 port=$2; shift 2
    { printf 'GET / HTTP/1.1\r\nHost: %s\r\n\r\n' "$SNI"; sleep 0.5; } |
        nsx "$ns" timeout 10 openssl s_client -connect "$S4:$port" -servername "$SNI" -CAfile "$WORK/pki/ca.crt" \
        -verify_return_error -ign_eof "$@" >>"$WORK/client.log" 2>&1 || true
}

# many connections to nginx in one capture, offload ON (the capture holds 64 KB "segments"
# and partial checksums, as on the sending host): HTTP/1.1 keep-alive, HTTP/2, session-ID and
# ticket resumption, a big download, gnutls-cli on 8443, and one real unknown_ca failure.
case_field_web_mixed() {
    case_begin field-web-mixed field-web-mixed.pcap
    ns_setup_direct
    local ns d
    for ns in $NS_C $NS_S; do
        d=veth-${ns#fx-}; d=${d/cli/c}; d=${d/srv/s}
        nsx $ns ethtool -K $d tso on gso on gro on tx on rx on >/dev/null 2>&1 || true
    done
    nginx_start "listen 443 ssl http2;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    cap_start $NS_C veth-c "$CAPF" "tcp"
    curl_ok $NS_C $S4 443 / /index.html / -- --http1.1
    curl_ok $NS_C $S4 443 / /big.txt -- --http2
    curl_ok $NS_C $S4 443 /big.txt -- --http1.1 --tls-max 1.2
    s_client_req $NS_C 443 -tls1_2 -sess_out "$WORK/s12.pem"
    s_client_req $NS_C 443 -tls1_2 -sess_in "$WORK/s12.pem"
    s_client_req $NS_C 443 -tls1_3 -sess_out "$WORK/s13.pem"
    s_client_req $NS_C 443 -tls1_3 -sess_in "$WORK/s13.pem"
    printf 'GET / HTTP/1.0\r\n\r\n' | nsx $NS_C timeout 10 gnutls-cli -p 8443 --x509cafile "$WORK/pki/ca.crt" \
        --sni-hostname "$SNI" --verify-hostname "$SNI" $S4 >>"$WORK/client.log" 2>&1 || die "gnutls-cli failed"
    nsx $NS_C timeout 10 curl -sS -o /dev/null --resolve "$SNI:443:$S4" "https://$SNI/" 2>>"$WORK/client.log" && die "curl without the CA worked"
    cap_stop
    expected <<EOF
{
  "what": "9 connections to nginx in one capture, offload on (64 KB segments, partial checksums): HTTP/1.1 keep-alive, HTTP/2, TLS 1.2 session-ID and TLS 1.3 ticket resumption, gnutls-cli on 8443, one real unknown_ca",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client", "tls_version": "1.3"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-web-mixed
Made by samples/scripts/field_cases.sh: nginx $V_NGINX (443 with http2, 8443), curl $V_CURL, openssl s_client (OpenSSL $V_OPENSSL), gnutls-cli $V_GNUTLS; Linux $V_KERNEL, tcpdump $V_TCPDUMP on the client's veth with TSO/GSO/GRO and checksum offload ON.
In order: curl HTTP/1.1 keep-alive (3 requests), curl --http2 (2 streams), curl TLS 1.2 download, s_client TLS 1.2 -sess_out then -sess_in (session-ID resumption), s_client TLS 1.3 -sess_out then -sess_in (ticket, psk), gnutls-cli on 8443, curl without the CA (client alert unknown_ca).
Look for: segments far above the MTU (offload) and no false failure among the 8 good sessions; tshark agrees session by session.
EOF
    case_end
}

# every handshake message split: MTU 576 and advmss 536 on both sides, a 3-certificate RSA-4096
# chain, TLS 1.2 renegotiation (s_client 'R'), TLS 1.3 with gnutls-serv, key update ('k')
case_field_small_mss() {
    case_begin field-small-mss field-small-mss.pcap
    ns_setup_direct
    nsx $NS_C ip link set veth-c mtu 576; nsx $NS_S ip link set veth-s mtu 576
    nsx $NS_C ip route change 10.77.1.0/24 dev veth-c advmss 536 2>/dev/null || true
    nsx $NS_S ip route change 10.77.1.0/24 dev veth-s advmss 536 2>/dev/null || true
    bg $NS_S "$WORK/server.log" openssl s_server -accept 443 -cert "$WORK/pki/long.crt" -key "$WORK/pki/long.key" \
        -cert_chain "$WORK/pki/longchain.crt" -rev
    wait_listen $NS_S 443
    bg $NS_S "$WORK/server2.log" gnutls-serv -p 4433 --x509certfile "$WORK/pki/longchain.crt" \
        --x509keyfile "$WORK/pki/long.key" --http
    wait_listen $NS_S 4433
    cap_start $NS_S veth-s "$CAPF" "tcp"
    { printf 'hello\n'; sleep 0.5; printf 'R\n'; sleep 1; printf 'again\n'; sleep 0.5; printf 'Q\n'; } |
        nsx $NS_C timeout 10 openssl s_client -connect $S4:443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" \
        -tls1_2 -verify_return_error >>"$WORK/client.log" 2>&1 || true
    grep -q RENEGOTIATING "$WORK/client.log" || { tail -5 "$WORK/client.log"; cat "$WORK/server.log"; die "no renegotiation"; }
    { printf 'hello\n'; sleep 0.5; printf 'k\n'; sleep 0.5; printf 'Q\n'; } |
        nsx $NS_C timeout 10 openssl s_client -connect $S4:443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" \
        -tls1_3 -verify_return_error >>"$WORK/client.log" 2>&1 || true
    printf 'GET / HTTP/1.0\r\n\r\n' | nsx $NS_C timeout 10 gnutls-cli -p 4433 --x509cafile "$WORK/pki/ca.crt" \
        --sni-hostname "$SNI" --verify-hostname "$SNI" $S4 >>"$WORK/client.log" 2>&1 || die "gnutls-cli failed"
    cap_stop
    expected <<EOF
{
  "what": "MTU 576 / MSS 536: every handshake message split over many segments, a 3-certificate RSA-4096 chain, TLS 1.2 renegotiation, a TLS 1.3 key update, gnutls-serv on 4433",
  "sessions": [
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 4433, "confidence": "high"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-small-mss
Made by samples/scripts/field_cases.sh: openssl s_server -rev (OpenSSL $V_OPENSSL) with an RSA-4096 leaf and two RSA-4096 intermediates (Certificate message ~5 KB), gnutls-serv $V_GNUTLS on 4433; veth MTU 576 and advmss 536 on both sides; Linux $V_KERNEL, tcpdump $V_TCPDUMP on the server's veth.
Sessions: s_client -tls1_2 sends a line, renegotiates ('R': a second, encrypted handshake), sends again, quits; s_client -tls1_3 with a key update ('k'); gnutls-cli to 4433 (HTTP GET).
Look for: the Certificate spread over ~10 segments of 524 bytes; three established sessions, none failed.
EOF
    case_end
}

# TLS on four unlisted ports (nginx 8443, s_server 4433, gnutls-serv 993, python ssl 10443),
# one real failure on 10443, and plain HTTP on 443 and 8080 (python http.server, curl http://):
# run with no -p, only the TLS connections are sessions.
case_field_any_port() {
    case_begin field-any-port field-any-port.pcap
    ns_setup_direct
    nginx_start "listen 8443 ssl;"
    bg $NS_S "$WORK/s1.log" "${S_SERVER[@]}" -accept 4433 -www
    bg $NS_S "$WORK/s2.log" gnutls-serv -p 993 --x509certfile "$WORK/pki/chain.crt" --x509keyfile "$WORK/pki/server.key" --http
    bg $NS_S "$WORK/s3.log" "$PY" "$HERE/tls_py.py" server --bind $S4 --port 10443 --cert "$WORK/pki/chain.crt" --key "$WORK/pki/server.key"
    bg $NS_S "$WORK/s4.log" "$PY" -m http.server --bind $S4 --directory "$WORK/www" 443
    bg $NS_S "$WORK/s5.log" "$PY" -m http.server --bind $S4 --directory "$WORK/www" 8080
    local p
    for p in 8443 4433 993 10443 443 8080; do wait_listen $NS_S $p; done
    cap_start $NS_C veth-c "$CAPF" "tcp"
    nsx $NS_C timeout 10 curl -sS -o /dev/null "http://$S4:443/" || die "plain http on 443"
    curl_ok $NS_C $S4 8443 / / -- --http1.1
    curl_ok $NS_C $S4 4433 / -- --tls-max 1.2
    printf 'GET / HTTP/1.0\r\n\r\n' | nsx $NS_C timeout 10 gnutls-cli -p 993 --x509cafile "$WORK/pki/ca.crt" \
        --sni-hostname "$SNI" --verify-hostname "$SNI" $S4 >>"$WORK/client.log" 2>&1 || die "gnutls-cli failed"
    nsx $NS_C timeout 10 "$PY" "$HERE/tls_py.py" client --host $S4 --port 10443 --cafile "$WORK/pki/ca.crt" --sni "$SNI" >>"$WORK/client.log" 2>&1 || die "python client failed"
    nsx $NS_C timeout 10 curl -sS -o /dev/null "http://$S4:8080/index.html" || die "plain http on 8080"
    nsx $NS_C timeout 10 "$PY" "$HERE/tls_py.py" client --host $S4 --port 4433 --sni "$SNI" >>"$WORK/client.log" 2>&1 && die "python client without the CA worked"
    nsx $NS_C timeout 10 curl -sS -o /dev/null "http://$S4:443/index.html" || die "plain http on 443"
    cap_stop
    expected <<EOF
{
  "what": "run without -p: TLS on 8443 (nginx), 4433 (s_server), 993 (gnutls-serv), 10443 (python ssl) and a real unknown_ca on 4433; plain HTTP on 443 and 8080 is no session and no failure",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443},
    {"outcome": "established", "tls_version": "1.2", "server_port": 4433},
    {"outcome": "established", "tls_version": "1.3", "server_port": 993},
    {"outcome": "established", "tls_version": "1.3", "server_port": 10443},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client", "server_port": 4433}
  ],
  "plaintext_connections": 2,
  "anomalies": {}
}
EOF
    readme <<EOF
# field-any-port
Made by samples/scripts/field_cases.sh: nginx $V_NGINX on 8443, openssl s_server -www (OpenSSL $V_OPENSSL) on 4433, gnutls-serv $V_GNUTLS --http on 993, samples/scripts/tls_py.py server on 10443, python3 -m http.server on 443 and 8080; clients curl $V_CURL, gnutls-cli, tls_py.py; Linux $V_KERNEL, tcpdump $V_TCPDUMP.
First and last connection: curl http:// to port 443, answered "HTTP/1.0 200 OK" in plaintext. The python client without the CA rejects s_server's certificate (alert unknown_ca).
Look for: analysed with no -p, the four unlisted ports are found by content; the two plain-HTTP connections on 443 are counted as plaintext connections, not sessions and not plaintext_client failures.
EOF
    case_end
}

# the ends of a capture: a connection already open when tcpdump starts (mid-stream), TCP
# keep-alive probes on an idle TLS connection, a long idle then FIN, a client that stops
# reading (zero window), a client that resets after close_notify (as browsers do), and
# connections still open when the capture stops.
case_field_open_ends() {
    case_begin field-open-ends field-open-ends.pcap
    ns_setup_direct
    nsx $NS_S sysctl -qw net.ipv4.tcp_keepalive_time=1 net.ipv4.tcp_keepalive_intvl=1
    nsx $NS_C sysctl -qw net.ipv4.tcp_keepalive_time=1 net.ipv4.tcp_keepalive_intvl=1
    nginx_start "listen 443 ssl so_keepalive=1:1:3;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    # (1) mid-stream: opened before the capture, data flows after it starts
    { sleep 1.5; printf 'GET / HTTP/1.1\r\nHost: %s\r\n\r\n' "$SNI"; sleep 1; } |
        nsx $NS_C timeout 10 openssl s_client -connect $S4:443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" -ign_eof >>"$WORK/client.log" 2>&1 &
    BG_PIDS+=($!)
    sleep 0.7
    cap_start $NS_C veth-c "$CAPF" "tcp"
    # (2) idle TLS connection with keep-alive probes from curl, then FIN after 4 s
    nsx $NS_C timeout 20 "$PY" - "$S4" "$SNI" "$WORK/pki/ca.crt" >>"$WORK/client.log" 2>&1 <<'PYEOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = socket.create_connection((sys.argv[1], 443))
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
t = ctx.wrap_socket(s, server_hostname=sys.argv[2])
t.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % sys.argv[2].encode())
t.recv(4096)
time.sleep(4)
t.close()
PYEOF
    BG_PIDS+=($!)
    sleep 0.3
    # (3) zero window: a client that asks for the big file and does not read for 3 s
    nsx $NS_C timeout 20 "$PY" - "$S4" "$SNI" "$WORK/pki/ca.crt" >>"$WORK/client.log" 2>&1 <<'PYEOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], 443))
t = ctx.wrap_socket(s, server_hostname=sys.argv[2])
t.sendall(b"GET /big.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % sys.argv[2].encode())
time.sleep(3)
n = 0
while True:
    d = t.recv(65536)
    if not d:
        break
    n += len(d)
print("read", n)
PYEOF
    BG_PIDS+=($!)
    sleep 0.3
    # (4) close_notify then RST (SO_LINGER 0), as browsers close
    nsx $NS_C timeout 20 "$PY" - "$S4" "$SNI" "$WORK/pki/ca.crt" >>"$WORK/client.log" 2>&1 <<'PYEOF'
import socket, ssl, struct, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = socket.create_connection((sys.argv[1], 8443))
t = ctx.wrap_socket(s, server_hostname=sys.argv[2])
t.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % sys.argv[2].encode())
t.recv(4096)
s2 = t.unwrap() if False else None
t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
t.close()
PYEOF
    # (5) still open at the end: a TLS 1.2 and a TLS 1.3 connection, idle, never closed in the capture
    { printf 'GET / HTTP/1.1\r\nHost: %s\r\n\r\n' "$SNI"; sleep 12; } |
        nsx $NS_C timeout 15 openssl s_client -connect $S4:8443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" -tls1_2 -ign_eof >>"$WORK/client.log" 2>&1 &
    BG_PIDS+=($!)
    sleep 0.3
    { sleep 12; } | nsx $NS_C timeout 15 openssl s_client -connect $S4:8443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" -ign_eof >>"$WORK/client.log" 2>&1 &
    BG_PIDS+=($!)
    sleep 4
    cap_stop
    expected <<EOF
{
  "what": "the ends of a capture: a connection older than the capture, TCP keep-alive probes on an idle TLS connection, a zero-window reader, close_notify then RST, two connections still open when the capture stops",
  "sessions": [
    {"outcome": "incomplete", "incomplete_reason": "midstream"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443, "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "server_port": 8443, "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443, "confidence": "high"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-open-ends
Made by samples/scripts/field_cases.sh: nginx $V_NGINX (443 with so_keepalive, 8443), clients openssl s_client (OpenSSL $V_OPENSSL) and python3 ssl; Linux $V_KERNEL, tcpdump $V_TCPDUMP started after the first connection opened.
In order: (1) s_client to 443 opened 0.7 s before the capture, its GET after; (2) python client idle 4 s with keep-alive probes every second, then close; (3) python client with a 4 KB receive buffer that stops reading for 3 s (zero window) while nginx sends 16 KB; (4) python client on 8443 closing with SO_LINGER 0 (RST, as browsers do); (5) s_client TLS 1.2 and TLS 1.3 on 8443 left open when the capture stops.
Look for: only (1) is incomplete (midstream); keep-alives, zero-window probes, RST after close and open connections are no failures.
EOF
    case_end
}

# loss and reordering on a path (relay.py drops and holds server data segments across several
# connections), captured twice: on the client's side of the relay (after the loss) and with
# "tcpdump -i any" inside the relay's namespace (every frame twice: in on one port, out on the other)
case_field_lossy_any() {
    case_begin field-lossy-any field-lossy-any.pcap
    ns_setup_relay
    nginx_start "listen 443 ssl;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    relay_start 40 --drop-s2c-data 2,9,15,23 --reorder-s2c-data 5,12,19
    cap_start $NS_R any "$CAPF" "tcp"
    curl_ok $NS_C $S4 443 / / -- --http1.1
    curl_ok $NS_C $S4 443 / -- --http2 --tls-max 1.2
    curl_ok $NS_C $S4 443 / -- --tls-max 1.2
    s_client_req $NS_C 443 -tls1_3
    nsx $NS_C timeout 10 curl -sS -o /dev/null --resolve "$SNI:443:$S4" "https://$SNI/" 2>>"$WORK/client.log" && die "curl without the CA worked"
    curl_ok $NS_C $S4 8443 / -- --http1.1
    cap_stop
    stop "$RELAY_PID"
    sed 's/^/   /' "$WORK/relay.log" >&2
    expected <<EOF
{
  "what": "loss and reordering on the path (relay.py drops 4 and delays 3 server segments), captured with tcpdump -i any in the relay's namespace: every frame twice (Linux cooked v2)",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client", "tls_version": "1.3"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-lossy-any
Made by samples/scripts/field_cases.sh: curl $V_CURL and openssl s_client (OpenSSL $V_OPENSSL) -> relay.py bridge (--drop-s2c-data 2,9,15,23 --reorder-s2c-data 5,12,19) -> nginx $V_NGINX (443, 8443); Linux $V_KERNEL, tcpdump $V_TCPDUMP -i any inside the relay's namespace (each frame seen on the way in and on the way out).
Look for: every frame twice (duplicate_copies_ignored), retransmissions after the drops and out-of-order segments; still one session per connection and no false failure.
EOF
    case_end
}

# edges of real captures: the capture starts in the middle of a handshake (after the
# ClientHello, before the slow server's ServerHello), the same client port used for three
# connections in a row (the server closes first, so the port is free at once), and a
# handshake still waiting for the server when the capture stops.
case_field_edges() {
    case_begin field-edges field-edges.pcap
    ns_setup_direct
    nginx_start "listen 443 ssl;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    # (0) a long-lived connection on 8443 whose handshake is over before the capture starts:
    # only application data (and its close) is captured
    { sleep 2.5; printf 'GET / HTTP/1.1\r\nHost: %s\r\n\r\n' "$SNI"; sleep 0.5; } |
        nsx $NS_C timeout 10 openssl s_client -connect $S4:8443 -servername "$SNI" -CAfile "$WORK/pki/ca.crt" \
        -quiet >>"$WORK/client.log" 2>&1 &
    BG_PIDS+=($!)
    # a TLS server that waits DELAY seconds after accepting before it reads the ClientHello
    cat >"$WORK/slow.py" <<'PYEOF'
import socket, ssl, sys, time
port, delay, cert, key = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port)); ls.listen(4); ls.settimeout(30)
c, _ = ls.accept()
time.sleep(delay)
t = ctx.wrap_socket(c, server_side=True)
t.recv(100); t.sendall(b"HTTP/1.0 200 OK\r\n\r\nslow\n"); t.close()
PYEOF
    bg $NS_S "$WORK/slow1.log" "$PY" "$WORK/slow.py" 4443 3.5 "$WORK/pki/chain.crt" "$WORK/pki/server.key"
    bg $NS_S "$WORK/slow2.log" "$PY" "$WORK/slow.py" 5443 30 "$WORK/pki/chain.crt" "$WORK/pki/server.key"
    wait_listen $NS_S 4443; wait_listen $NS_S 5443
    # (1) ClientHello before the capture, ServerHello after it
    nsx $NS_C timeout 10 curl -sS -o /dev/null "${CURL_VERIFY[@]}" --resolve "$SNI:4443:$S4" "https://$SNI:4443/" \
        2>>"$WORK/client.log" &
    local slow=$!
    BG_PIDS+=($slow)
    sleep 1
    cap_start $NS_C veth-c "$CAPF" "tcp"
    wait $slow || die "slow curl failed"
    # (2) one client port, three connections (two fine, one rejecting the certificate)
    local i
    for i in ok ok noca; do
        nsx $NS_C timeout 10 "$PY" - "$S4" "$SNI" "$WORK/pki/ca.crt" $i >>"$WORK/client.log" 2>&1 <<'PYEOF' || true
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3] if sys.argv[4] == "ok" else None)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40404)); s.connect((sys.argv[1], 443))
t = ctx.wrap_socket(s, server_hostname=sys.argv[2])
t.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
while t.recv(4096):
    pass
print("done")
PYEOF
        sleep 0.3
    done
    # (3) the last handshake: the server has not answered when the capture stops
    nsx $NS_C timeout 10 curl -sS -o /dev/null "${CURL_VERIFY[@]}" --resolve "$SNI:5443:$S4" "https://$SNI:5443/" \
        2>>"$WORK/client.log" &
    BG_PIDS+=($!)
    sleep 0.5
    cap_stop
    expected <<EOF
{
  "what": "run without -p: a long-lived TLS connection on 8443 seen only from its application data, a handshake on 4443 seen from its ServerHello, one client port used three times in a row, a ClientHello still unanswered when the capture stops",
  "sessions": [
    {"outcome": "incomplete", "incomplete_reason": "midstream", "server_port": 8443},
    {"outcome": "established", "tls_version": "1.3", "server_port": 4443},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client"},
    {"outcome": "incomplete", "incomplete_reason": "capture_ended", "server_port": 5443}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-edges
Made by samples/scripts/field_cases.sh: nginx $V_NGINX (443, 8443), a python3 ssl server that waits before its handshake (4443: 3.5 s, 5443: 30 s), clients openssl s_client (OpenSSL $V_OPENSSL), curl $V_CURL, python3 ssl bound to port 40404; Linux $V_KERNEL, tcpdump $V_TCPDUMP.
(0) s_client on 8443 finished its handshake before the capture; only its GET and the answer are captured. (1) curl's ClientHello to 4443 precedes the capture, the ServerHello follows: the rest of the handshake is judged (established). (2) three connections from 10.77.1.1:40404 (two fine, one without the CA). (3) curl to 5443: SYN, ClientHello, and the capture stops.
Look for: without -p, (0) is found from its TLS records alone, (1) from its ServerHello; the reused port gives three sessions; (3) is incomplete, not server_silent.
EOF
    case_end
}

# a capture cut by its snap length (tcpdump -s 200): every handshake flight is cut short, so no
# hello is whole. Nothing may be called a failure but what the small whole frames prove.
case_field_snaplen() {
    case_begin field-snaplen field-snaplen.pcap
    ns_setup_direct
    nginx_start "listen 443 ssl;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    cap_start $NS_C veth-c "$CAPF" "tcp" -s 200
    curl_ok $NS_C $S4 443 / / -- --http1.1
    curl_ok $NS_C $S4 443 / -- --tls-max 1.2
    curl_ok $NS_C $S4 8443 / -- --http1.1
    nsx $NS_C timeout 10 curl -sS -o /dev/null --resolve "$SNI:443:$S4" "https://$SNI/" 2>>"$WORK/client.log" && die "curl without the CA worked"
    cap_stop
    expected <<EOF
{
  "what": "tcpdump -s 200: every hello and certificate cut short; what the whole small frames show is still read, at low confidence, and nothing else fails",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence_not": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence_not": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443, "confidence_not": "high"},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client", "confidence_not": "high"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-snaplen
Made by samples/scripts/field_cases.sh: curl $V_CURL -> nginx $V_NGINX (443, 8443); Linux $V_KERNEL, tcpdump $V_TCPDUMP -s 200 on the client's veth.
Sessions: curl HTTP/1.1 keep-alive (TLS 1.3), curl --tls-max 1.2, curl to 8443, curl without the CA (alert unknown_ca, a whole small frame).
Look for: frames cut by the snap length; records whose tail was cut keep the deframer in step (tls_record_damaged_by_gap), so the hellos' headers, CCS, Finished sizes and the alert are read; verdicts are low confidence.
EOF
    case_end
}

# plaintext in front of or instead of TLS on 443: curl --haproxy-protocol to nginx with
# proxy_protocol (a PROXY v1 line before the ClientHello, as load balancers send to backends),
# then an SSH server on 443 (its banner first on accept): a real ssh client, and a client that
# waits for the banner before it answers (so the server surely speaks first).
case_field_not_tls_443() {
    case_begin field-not-tls-443 field-not-tls-443.pcap
    ns_setup_direct
    nginx_start "listen 443 ssl proxy_protocol;"
    wait_listen $NS_S 443
    cap_start $NS_C veth-c "$CAPF" "tcp"
    curl_ok $NS_C $S4 443 / -- --haproxy-protocol
    curl_ok $NS_C $S4 443 / -- --haproxy-protocol --tls-max 1.2
    stop "$SRV_PID"
    cat >"$WORK/sshd.py" <<'PYEOF'
import socket, sys
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", 443)); ls.listen(2); ls.settimeout(20)
for _ in range(2):
    c, _ = ls.accept()
    c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    c.settimeout(3)
    got = b""
    try:
        while len(got) < 200:
            d = c.recv(4096)
            if not d:
                break
            got += d
    except socket.timeout:
        pass
    c.close()
PYEOF
    bg $NS_S "$WORK/sshd.log" "$PY" "$WORK/sshd.py"
    wait_listen $NS_S 443
    nsx $NS_C timeout 10 ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
        -p 443 root@$S4 true >>"$WORK/client.log" 2>&1 || true
    nsx $NS_C timeout 10 "$PY" - "$S4" >>"$WORK/client.log" 2>&1 <<'PYEOF'
import socket, sys
s = socket.create_connection((sys.argv[1], 443))
print(s.recv(100))
s.sendall(b"SSH-2.0-PuTTY_Release_0.78\r\n")
s.sendall(bytes([0, 0, 1, 0x2c, 10, 20]) + bytes(300))
s.recv(100)
s.close()
PYEOF
    cap_stop
    expected <<EOF
{
  "what": "on 443 without -p: two TLS sessions behind a PROXY protocol v1 line (curl --haproxy-protocol to nginx proxy_protocol), then SSH on 443 (server banner first): no session, no failure",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"}
  ],
  "plaintext_connections": 2,
  "anomalies": {"proxy_protocol_header": 2}
}
EOF
    readme <<EOF
# field-not-tls-443
Made by samples/scripts/field_cases.sh: curl $V_CURL --haproxy-protocol -> nginx $V_NGINX (listen 443 ssl proxy_protocol), then a python3 SSH-banner server on 443 (banner on accept) with a real ssh client and a python client that waits for the banner; Linux $V_KERNEL, tcpdump $V_TCPDUMP.
Look for: "PROXY TCP4 10.77.1.1 10.77.1.2 <port> 443" in its own segment before each ClientHello (counted as proxy_protocol_header, the TLS after it read as usual), and two SSH exchanges on 443 counted as plaintext connections, neither plaintext_client nor not_tls.
EOF
    case_end
}

# a busy minute compressed: 24 connections at once through a lossy relay (drops and reorders
# server segments across them), TLS 1.2 and 1.3, a quarter of them rejecting the certificate.
case_field_busy() {
    case_begin field-busy field-busy.pcap
    ns_setup_relay
    nginx_start "listen 443 ssl;"
    wait_listen $NS_S 443
    relay_start 40 --drop-s2c-data 3,11,17,26,34,41,55,63 --reorder-s2c-data 7,21,30,48
    cap_start $NS_R r-c "$CAPF" "tcp"
    local i pids=() args
    for i in $(seq 1 24); do
        args=(--http1.1)
        [ $((i % 2)) = 0 ] && args+=(--tls-max 1.2)
        if [ $((i % 4)) = 3 ]; then
            nsx $NS_C timeout 20 curl -sS -o /dev/null --resolve "$SNI:443:$S4" "${args[@]}" "https://$SNI/" 2>/dev/null &
        else
            nsx $NS_C timeout 20 curl -sS -o /dev/null "${CURL_VERIFY[@]}" --resolve "$SNI:443:$S4" "${args[@]}" "https://$SNI/" &
        fi
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    cap_stop
    stop "$RELAY_PID"
    sed 's/^/   /' "$WORK/relay.log" | grep -c drop >&2 || true
    # The connections started together: their order in the capture is tshark's to tell.
    "$PY" "$HERE/tls_summary.py" "$CAPF" | "$PY" -c '
import json, re, sys
sessions = []
for line in sys.stdin:
    if "unknown_ca" in line:
        sessions.append({"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client"})
    else:
        v = re.search(r"ServerHello\((1\.[23]) ", line)
        if not v or "appdata" not in line:
            sys.exit("unexpected connection: " + line[:200])
        sessions.append({"outcome": "established", "tls_version": v.group(1), "confidence": "high"})
print(json.dumps({"what": "24 connections at once through a lossy relay (8 server segments dropped, 4 delayed): 18 established (TLS 1.2 and 1.3), 6 rejecting the certificate; order from tshark",
                  "sessions": sessions, "anomalies": {}}, indent=2))' | expected
    readme <<EOF
# field-busy
Made by samples/scripts/field_cases.sh: 24 curl $V_CURL started at once (every second one --tls-max 1.2, every fourth without the CA) -> relay.py bridge (--drop-s2c-data 3,11,17,26,34,41,55,63 --reorder-s2c-data 7,21,30,48: the indexes count server data segments across all connections) -> nginx $V_NGINX; Linux $V_KERNEL, tcpdump $V_TCPDUMP on the relay's client-side port.
expected.json is written from tshark's reading (tls_summary.py): a connection with an unknown_ca alert failed, any other established with its ServerHello's version.
Look for: interleaved handshakes, retransmissions after the drops; one session per connection, no false failure.
EOF
    case_end
}

# TCP Fast Open: the second and third connections carry the ClientHello in the SYN itself
# (curl --tcp-fastopen, nginx fastopen=16, net.ipv4.tcp_fastopen=3 on both sides).
case_field_fastopen() {
    case_begin field-fastopen field-fastopen.pcap
    ns_setup_direct
    nsx $NS_C sysctl -qw net.ipv4.tcp_fastopen=3
    nsx $NS_S sysctl -qw net.ipv4.tcp_fastopen=3
    nginx_start "listen 443 ssl fastopen=16;" "listen 8443 ssl fastopen=16;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    cap_start $NS_C veth-c "$CAPF" "tcp"
    curl_ok $NS_C $S4 443 / -- --tcp-fastopen
    curl_ok $NS_C $S4 443 / -- --tcp-fastopen --tls-max 1.2
    nsx $NS_C timeout 10 curl -sS -o /dev/null --tcp-fastopen --resolve "$SNI:443:$S4" "https://$SNI/" 2>>"$WORK/client.log" && die "curl without the CA worked"
    curl_ok $NS_C $S4 8443 / -- --tcp-fastopen
    curl_ok $NS_C $S4 8443 / -- --tcp-fastopen
    cap_stop
    expected <<EOF
{
  "what": "TCP Fast Open: after the first connection the ClientHello rides in the SYN (443, and 8443 found without -p); TLS 1.3, 1.2, an unknown_ca, two on 8443",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3", "confidence": "high"},
    {"outcome": "established", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "failed", "cause": "certificate", "reason": "unknown_ca", "side": "client"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443, "confidence": "high"},
    {"outcome": "established", "tls_version": "1.3", "server_port": 8443, "confidence": "high"}
  ],
  "anomalies": {}
}
EOF
    readme <<EOF
# field-fastopen
Made by samples/scripts/field_cases.sh: curl $V_CURL --tcp-fastopen -> nginx $V_NGINX (listen 443/8443 ssl fastopen=16), net.ipv4.tcp_fastopen=3 in both namespaces; Linux $V_KERNEL, tcpdump $V_TCPDUMP.
The first connection gets the TFO cookie (SYN-ACK option TFO=C); every later SYN carries the cookie and the whole ClientHello, the SYN-ACK acknowledges it.
Look for: the ClientHello in frame "SYN" (tshark: "TLSv1 Client Hello" on a SYN); without -p the 8443 connections are followed from that SYN (they were "midstream" or missing before).
EOF
    case_end
}

# joined midway: a plain-HTTP keep-alive connection on 443 (nginx without ssl) and a TLS
# keep-alive connection on 8443, both opened before the capture and busy after it starts.
case_field_midstream_http() {
    case_begin field-midstream-http field-midstream-http.pcap
    ns_setup_direct
    nginx_start "listen 443;" "listen 8443 ssl;"
    wait_listen $NS_S 443; wait_listen $NS_S 8443
    nsx $NS_C timeout 20 "$PY" - "$S4" "$SNI" "$WORK/pki/ca.crt" >>"$WORK/client.log" 2>&1 <<'PYEOF' &
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
plain = http.client.HTTPConnection(sys.argv[1], 443)
tls = http.client.HTTPSConnection(sys.argv[1], 8443, context=ctx)
tls._create_connection = lambda *a, **k: __import__("socket").create_connection((sys.argv[1], 8443))
ctx.check_hostname = False
for i in range(5):
    for c in (plain, tls):
        c.request("GET", "/index.html", headers={"Host": sys.argv[2]})
        c.getresponse().read()
    time.sleep(0.8)
plain.close(); tls.close()
PYEOF
    BG_PIDS+=($!)
    sleep 1.2
    cap_start $NS_C veth-c "$CAPF" "tcp"
    sleep 3.5
    cap_stop
    expected <<EOF
{
  "what": "joined midway: a plain-HTTP keep-alive connection on 443 is no session (no TLS record in it); a TLS keep-alive connection on 8443 is an incomplete (midstream) session",
  "sessions": [
    {"outcome": "incomplete", "incomplete_reason": "midstream", "server_port": 8443}
  ],
  "plaintext_connections": 1,
  "anomalies": {}
}
EOF
    readme <<EOF
# field-midstream-http
Made by samples/scripts/field_cases.sh: one python3 client (http.client) keeps a plain-HTTP connection to nginx $V_NGINX on 443 (listen 443, no ssl) and a TLS one to 8443, a GET on each every 0.8 s; tcpdump $V_TCPDUMP starts 1.2 s later (Linux $V_KERNEL).
Look for: no SYN for either connection; the 443 one holds "GET /index.html" / "HTTP/1.1 200 OK" and no TLS record (a plaintext connection, not a session); the 8443 one holds only application-data records (incomplete, midstream).
EOF
    case_end
}

run field-web-mixed
run field-small-mss
run field-any-port
run field-open-ends
run field-lossy-any
run field-edges
run field-snaplen
run field-not-tls-443
run field-busy
run field-fastopen
run field-midstream-http
