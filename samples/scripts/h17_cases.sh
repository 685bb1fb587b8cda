#!/bin/bash
# h17_cases.sh - real captures for issue 17 (right without keys: stalls, cipher choices, client
# certificates, retried SYNs, idle gaps, borrowed certificates). Run as root on Linux (Debian 12).
# Namespaces h17-cli / h17-srv / h17-rly (lib.sh topologies, renamed), removed on exit.
#   samples/scripts/h17_cases.sh                 # every case
#   samples/scripts/h17_cases.sh tls12-stall-after-serverhello-curl   # only these
#   samples/scripts/h17_cases.sh --measure       # how long real clients wait for a stalled server
# Captures are taken on the client's interface (what the client saw). Each case's README says
# what made it; its expected.json is written here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/samples/cases
CERTS=$ROOT/samples/certs
. "$HERE/lib.sh"
NS_C=h17-cli
NS_S=h17-srv
NS_R=h17-rly
NAME=good.test
CA=$CERTS/ca.pem

script_setup h17 ip ethtool tcpdump tshark openssl curl gnutls-cli gnutls-serv iptables
V_GNUTLS=$(gnutls-cli --version | awk 'NR==1{print $2}')
V_PY=$("$PY" -c 'import sys,ssl;print(sys.version.split()[0]+" (ssl: "+ssl.OPENSSL_VERSION+")")')

ONLY=("$@")
want() {
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local c
    for c in "${ONLY[@]}"; do [ "$c" = "$1" ] && return 0; done
    return 1
}

# a python TLS client: pyclient HOST PORT SNI TIMEOUT tls12|tls13 CAFILE [IDLE_SECS]
cat >"$WORK/pyclient.py" <<'EOF'
import socket, ssl, sys, time
host, port, sni, timeout, ver, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
idle = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
ctx = ssl.create_default_context(cafile=ca)
if ver == "tls12":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
t0 = time.monotonic()
try:
    s = socket.create_connection((host, port), timeout=timeout)
    t = ctx.wrap_socket(s, server_hostname=sni)
    t.sendall(b"GET / HTTP/1.0\r\n\r\n" if not idle else b"ping one\n")
    print("got", len(t.recv(4096)), flush=True)
    if idle:
        time.sleep(idle)
        t.sendall(b"ping two\n")
        print("got", len(t.recv(4096)), flush=True)
    t.close()
except Exception as e:
    print("gave up after %.1f s: %r" % (time.monotonic() - t0, e), flush=True)
EOF

# an echo TLS server (answers each line, keeps the connection); a 5th argument = handshake timeout
cat >"$WORK/echoserver.py" <<'EOF'
import socket, ssl, sys
host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port)); ls.listen(4); ls.settimeout(30)
c, _ = ls.accept()
if len(sys.argv) > 5:          # handshake timeout: give up on a client that stalls
    c.settimeout(float(sys.argv[5]))
try:
    t = ctx.wrap_socket(c, server_side=True)
except (socket.timeout, OSError) as e:
    print("handshake gave up: %r" % e, flush=True)
    c.close()
    sys.exit(0)
# TLS 1.3: the handshake may return before the client's Finished arrived; the same timeout
# then applies to the first read.
t.settimeout(float(sys.argv[5]) if len(sys.argv) > 5 else 30)
try:
    while True:
        d = t.recv(4096)
        if not d:
            break
        t.sendall(b"pong " + d)
        t.settimeout(30)
except (socket.timeout, OSError) as e:
    print("gave up: %r" % e, flush=True)
c.close()
EOF

CW=
PCAP=
# new_case NAME: fresh work dir and capture path
new_case() {
    CW=$WORK/$1
    rm -rf "$CW"; mkdir -p "$CW"
    PCAP=$CW/$1.pcap
    : >"$CW/cmds"
}
log_cmd() { echo "$*" >>"$CW/cmds"; }

# save_case NAME README-TEXT EXPECTED-JSON
save_case() {
    local name=$1 text=$2 json=$3 d=$OUT/$1
    rm -rf "$d"; mkdir -p "$d"
    cp "$PCAP" "$d/"
    printf '%s\n' "$json" >"$d/expected.json"
    {
        echo "# $name"
        echo "Made by samples/scripts/h17_cases.sh (OpenSSL $V_OPENSSL, GnuTLS $V_GNUTLS, curl $V_CURL, Python $V_PY, Linux $V_KERNEL)."
        echo "$text"
        echo
        echo "Commands:"
        sed 's/^/    /' "$CW/cmds"
    } >"$d/README.md"
    say "$name: $(capinfos -c "$PCAP" | awk '/Number of packets/{print $4}') packets"
}

server_start() { # server_start CMD... (in the server namespace, port 443)
    log_cmd "server: $*"
    bg $NS_S "$CW/server.log" "$@"
    SRV_PID=$BGPID
    wait_listen $NS_S 443
}

client() { # client LIMIT CMD... : run a client in the client namespace, bounded by LIMIT seconds
    local lim=$1; shift
    log_cmd "client: $*"
    nsx $NS_C timeout -s TERM "$lim" "$@" </dev/null >>"$CW/client.log" 2>&1 || true
}

curl_args() { echo -s -o /dev/null --cacert "$CA" --resolve "$NAME:443:$S4" "https://$NAME/"; }

# ------------------------------------------------------------------ stalls (issue 17 item 1)
# stall_case NAME VERSION(1.2|1.3) RECORDS CLIENT(curl|openssl|gnutls|python)
stall_case() {
    local name=$1 ver=$2 recs=$3 kind=$4 sflag cflag
    want "$name" || return 0
    new_case "$name"
    ns_setup_relay
    if [ "$ver" = 1.2 ]; then sflag=-tls1_2; else sflag=-tls1_3; fi
    server_start openssl s_server -accept 443 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www $sflag
    log_cmd "relay: relay.py bridge --stall-s2c-records $recs"
    relay_start 30 --stall-s2c-records "$recs"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    case $kind in
    curl)
        if [ "$ver" = 1.2 ]; then cflag="--tlsv1.2 --tls-max 1.2"; else cflag=--tlsv1.3; fi
        # shellcheck disable=SC2046
        client 20 curl --max-time 4 $cflag $(curl_args) ;;
    openssl)
        if [ "$ver" = 1.2 ]; then cflag=-tls1_2; else cflag=-tls1_3; fi
        client 4 openssl s_client -connect "$S4:443" -servername "$NAME" -CAfile "$CA" $cflag ;;
    gnutls)
        if [ "$ver" = 1.2 ]; then cflag=NORMAL:-VERS-ALL:+VERS-TLS1.2; else cflag=NORMAL:-VERS-ALL:+VERS-TLS1.3; fi
        client 4 gnutls-cli --sni-hostname "$NAME" --x509cafile "$CA" --priority "$cflag" -p 443 "$S4" ;;
    python)
        if [ "$ver" = 1.2 ]; then cflag=tls12; else cflag=tls13; fi
        client 20 "$PY" "$WORK/pyclient.py" "$S4" 443 "$NAME" 4 $cflag "$CA" ;;
    esac
    sleep 1
    cap_stop
    stop "$RELAY_PID"; stop "$SRV_PID"
    local what
    if [ "$recs" = 1 ]; then what="its ServerHello"; else what="its first $recs records (the Certificate in TLS 1.2: ServerHello, Certificate)"; fi
    save_case "$name" "openssl s_server -www (TLS $ver, RSA good.pem) behind relay.py bridge --stall-s2c-records $recs: the client gets $what and then nothing; $kind gives up after 4 s (curl --max-time, python socket timeout; openssl s_client and gnutls-cli have none and are stopped by timeout(1) after 4 s, their exit closes the connection).
Look for: the server's last byte, about 4 s of silence, then the client's FIN. The server owed the next message: a timeout (handshake_stalled, side server), not a close by the client." \
        "{
  \"what\": \"TLS $ver server stalls after $what; the $kind client gives up after 4 s\",
  \"sessions\": [
    {\"outcome\": \"failed\", \"cause\": \"timeout\", \"reason\": \"handshake_stalled\", \"side\": \"server\", \"tls_version\": \"$ver\", \"confidence\": \"high\"}
  ]
}"
    lib_cleanup
}

# how long real clients wait for a server that stalls after its ServerHello (no capture)
measure() {
    new_case measure
    ns_setup_relay
    server_start openssl s_server -accept 443 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www -tls1_3
    relay_start 60 --stall-s2c-records 1
    local lim=40 t0 t1 k
    for k in curl curl-ct openssl gnutls python; do
        t0=$(date +%s.%N)
        case $k in
        curl) nsx $NS_C timeout $lim curl $(curl_args) >/dev/null 2>&1 || true ;;
        curl-ct) nsx $NS_C timeout $lim curl --connect-timeout 5 $(curl_args) >/dev/null 2>&1 || true ;;
        openssl) nsx $NS_C timeout $lim openssl s_client -connect "$S4:443" -servername "$NAME" </dev/null >/dev/null 2>&1 || true ;;
        gnutls) nsx $NS_C timeout $lim gnutls-cli --sni-hostname "$NAME" --x509cafile "$CA" -p 443 "$S4" </dev/null >/dev/null 2>&1 || true ;;
        python) nsx $NS_C timeout $lim "$PY" -c "import socket,ssl;s=socket.create_connection(('$S4',443));ssl.create_default_context().wrap_socket(s,server_hostname='$NAME')" >/dev/null 2>&1 || true ;;
        esac
        t1=$(date +%s.%N)
        printf '%-8s gave up after %5.1f s (limit %s s)\n' "$k" "$(echo "$t1 - $t0" | bc)" "$lim"
        # the relay stalls only the first connection's stream: restart it for the next client
        stop "$RELAY_PID"; relay_start 60 --stall-s2c-records 1
    done
    lib_cleanup
}

if [ "${1:-}" = --measure ]; then measure; exit 0; fi

stall_case tls12-stall-after-serverhello-curl 1.2 1 curl
stall_case tls12-stall-after-certificate-openssl 1.2 2 openssl
stall_case tls12-stall-after-serverhello-gnutls 1.2 1 gnutls
stall_case tls13-stall-after-serverhello-gnutls 1.3 1 gnutls
stall_case tls13-stall-after-certificate-curl 1.3 4 curl
stall_case tls13-stall-after-serverhello-python 1.3 1 python
stall_case tls13-stall-after-certificate-openssl 1.3 4 openssl

# ------------------------------------------------------------------ direct-topology helpers
direct_begin() { # direct_begin NAME
    new_case "$1"
    ns_setup_direct
}
direct_end() { # direct_end: stop the capture and the server
    cap_stop
    [ -n "${SRV_PID:-}" ] && stop "$SRV_PID"
    SRV_PID=
    lib_cleanup
}
osrv() { server_start openssl s_server -accept 443 -www "$@"; }
ocli() { client 8 openssl s_client -connect "$S4:443" -servername "$NAME" -CAfile "$CA" -verify_return_error "$@"; sleep 0.3; }
ocli_get() { # like ocli, with an HTTP request on stdin kept open for 1 s (the client waits for the answer)
    log_cmd "client: (printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | openssl s_client -connect $S4:443 -servername $NAME -CAfile $CA $*"
    nsx $NS_C timeout 8 sh -c '(printf "GET / HTTP/1.0\r\n\r\n"; sleep 1) | openssl s_client "$@"' sh \
        -connect "$S4:443" -servername "$NAME" -CAfile "$CA" "$@" >>"$CW/client.log" 2>&1 || true
    sleep 0.3
}
ok_curl() { # shellcheck disable=SC2046
    client 8 curl "$@" $(curl_args); sleep 0.3; }

# ------------------------------------------------------------------ cipher reasons (item 2)
if want tls13-only-refusals; then
    direct_begin tls13-only-refusals
    osrv -cert "$CERTS/good.pem" -key "$CERTS/good.key" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 -groups X25519
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ok_curl --tlsv1.3
    ocli -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256
    ocli -tls1_3 -groups P-384
    ocli -tls1_3 -sigalgs ECDSA+SHA256:ECDSA+SHA384:ed25519
    direct_end
    save_case tls13-only-refusals "A TLS 1.3-only openssl s_server (suite TLS_AES_256_GCM_SHA384, group x25519, RSA certificate) accepts curl, then refuses three openssl s_client hellos with handshake_failure right after the ClientHello: one offering only TLS_CHACHA20_POLY1305_SHA256, one offering only the group P-384, one offering only ECDSA/EdDSA signature algorithms.
Look for: the alert carries no reason; the ClientHello compared with curl's accepted session does. All three offered TLS 1.3, which this server negotiated with curl: never version_mismatch." \
'{
  "what": "TLS 1.3-only server: one accepted session, then refusals for suites, groups and signature algorithms",
  "sessions": [
    {"outcome": "established", "tls_version": "1.3"},
    {"outcome": "failed", "cause": "cipher", "reason": "no_shared_cipher", "side": "server"},
    {"outcome": "failed", "cause": "cipher", "reason": "no_shared_group", "side": "server"},
    {"outcome": "failed", "cause": "cipher", "reason": "no_shared_signature_algorithm", "side": "server"}
  ]
}'
fi

if want tls12-no-shared-sigalg; then
    direct_begin tls12-no-shared-sigalg
    osrv -cert "$CERTS/good.pem" -key "$CERTS/good.key" -tls1_2
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ok_curl --tlsv1.2 --tls-max 1.2
    client 8 gnutls-cli --sni-hostname "$NAME" --x509cafile "$CA" -p 443 "$S4" \
        --priority NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-ECDSA-SHA256:+SIGN-ECDSA-SHA384
    direct_end
    save_case tls12-no-shared-sigalg "A TLS 1.2-only openssl s_server with an RSA certificate accepts curl, then refuses a gnutls-cli (priority NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-ECDSA-SHA256:+SIGN-ECDSA-SHA384) offering RSA suites but only ECDSA signature algorithms with handshake_failure right after the ClientHello.
Look for: the accepted session shows the RSA certificate in the clear; the refused client offered no RSA scheme." \
'{
  "what": "TLS 1.2 server with an RSA certificate refuses a client that offers only ECDSA signature algorithms",
  "sessions": [
    {"outcome": "established", "tls_version": "1.2"},
    {"outcome": "failed", "cause": "cipher", "reason": "no_shared_signature_algorithm", "side": "server", "confidence": "high"}
  ]
}'
fi

# ------------------------------------------------------------------ client certificates (item 3)
if want tls-client-cert-missing-gnutls; then
    direct_begin tls-client-cert-missing-gnutls
    server_start gnutls-serv -p 443 --http --require-client-cert --x509certfile "$CERTS/good.pem" --x509keyfile "$CERTS/good.key" --x509cafile "$CA"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ocli_get -tls1_2
    ocli_get -tls1_3
    direct_end
    save_case tls-client-cert-missing-gnutls "gnutls-serv --require-client-cert; openssl s_client without a certificate, TLS 1.2 then TLS 1.3.
Look for: TLS 1.2: CertificateRequest, the client's empty Certificate, then GnuTLS's fatal alert (not certificate_required); TLS 1.3: the same, encrypted, read from record sizes." \
'{
  "what": "GnuTLS server requires a client certificate; the client sends none (TLS 1.2, then TLS 1.3)",
  "sessions": [
    {"outcome": "failed", "cause": "certificate", "reason": "client_certificate_missing", "side": "server", "tls_version": "1.2"},
    {"outcome": "failed", "cause": "certificate", "reason": "client_certificate_missing", "side": "server", "tls_version": "1.3"}
  ]
}'
fi

if want tls-client-cert-missing-openssl; then
    direct_begin tls-client-cert-missing-openssl
    osrv -cert "$CERTS/good.pem" -key "$CERTS/good.key" -Verify 1 -CAfile "$CA"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ok_curl --tlsv1.2 --tls-max 1.2
    ok_curl --tlsv1.3
    direct_end
    save_case tls-client-cert-missing-openssl "openssl s_server -Verify 1 (a client certificate is required); curl without a certificate, TLS 1.2 then TLS 1.3.
Look for: TLS 1.2: CertificateRequest, the client's empty Certificate, the server's fatal alert; TLS 1.3: the server's alert-sized encrypted record after the client's small flight." \
'{
  "what": "OpenSSL server requires a client certificate; curl sends none (TLS 1.2, then TLS 1.3)",
  "sessions": [
    {"outcome": "failed", "cause": "certificate", "reason": "client_certificate_missing", "side": "server", "tls_version": "1.2"},
    {"outcome": "failed", "cause": "certificate", "reason": "client_certificate_missing", "side": "server", "tls_version": "1.3"}
  ]
}'
fi

# ------------------------------------------------------------------ retried SYNs (item 4)
if want tcp-syn-retried-capture-short; then
    direct_begin tcp-syn-retried-capture-short
    nsx $NS_S iptables -A INPUT -p tcp --dport 443 -j DROP
    log_cmd "server: iptables -A INPUT -p tcp --dport 443 -j DROP (in the server namespace)"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    log_cmd "client: curl --connect-timeout 20 https://$NAME/ (capture stopped after 2.5 s)"
    # shellcheck disable=SC2046
    bg $NS_C "$CW/client.log" timeout 20 curl --connect-timeout 20 $(curl_args)
    CLI_PID=$BGPID
    sleep 1.0   # + 1.5 s in cap_stop: the SYN at 0 s and its retransmission at 1 s
    cap_stop
    stop "$CLI_PID"
    lib_cleanup
    save_case tcp-syn-retried-capture-short "An iptables DROP rule in the server namespace eats every SYN; curl --connect-timeout 20 retries; the capture is stopped after about 2.5 s, long before any timeout.
Look for: the SYN and its retransmission 1 s later, no SYN-ACK. The retransmission proves the first SYN went unanswered: syn_unanswered, confidence medium (the timeout was not reached)." \
'{
  "what": "SYN dropped by a firewall, retransmitted once, capture stopped after 2.5 s",
  "sessions": [
    {"outcome": "failed", "cause": "timeout", "reason": "syn_unanswered", "side": "server", "confidence": "medium"}
  ]
}'
fi

# ------------------------------------------------------------------ idle gaps (item 5)
if want tls-idle-continues; then
    direct_begin tls-idle-continues
    server_start "$PY" "$WORK/echoserver.py" "$S4" 443 "$CERTS/good.pem" "$CERTS/good.key"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443 or udp port 9"
    # other traffic during the gap (a UDP datagram to the discard port every 0.5 s) moves the
    # capture's clock, as the rest of a real capture does
    log_cmd "client: a UDP datagram to $S4:9 every 0.5 s, 24 times (in the background)"
    bg $NS_C "$CW/udp.log" "$PY" -c "import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for i in range(24):
    s.sendto(b'tick',('$S4',9)); time.sleep(0.5)"
    client 30 "$PY" "$WORK/pyclient.py" "$S4" 443 "$NAME" 20 tls13 "$CA" 9
    sleep 2
    direct_end
    save_case tls-idle-continues "A Python TLS echo server; a Python client completes a TLS 1.3 handshake, sends a line, stays silent for 9 s, sends another line on the same connection and closes; a UDP datagram to the discard port every 0.5 s meanwhile (captured too: it moves the capture's clock). Analyzed with --idle-timeout 2 --handshake-timeout 3: the silence outlasts both timeouts and the 5 s a finished connection lingers.
Look for: one connection (same ports, sequence numbers continuing after the gap), one session: the idle gap must not split it into a second, midstream session; the capture counts it as tcp_idle_resumed." \
'{
  "what": "a TLS 1.3 connection silent for longer than --idle-timeout that then continues: one session",
  "args": ["--idle-timeout", "2", "--handshake-timeout", "3"],
  "sessions": [
    {"outcome": "established", "tls_version": "1.3"}
  ],
  "anomalies": {"tcp_idle_resumed": 1}
}'
fi

# ------------------------------------------------------------------ borrowed certificates (item 6)
if want tls13-expired-borrowed; then
    direct_begin tls13-expired-borrowed
    osrv -cert "$CERTS/expired.pem" -key "$CERTS/expired.key"
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ocli -tls1_2
    client 8 gnutls-cli --sni-hostname "$NAME" --x509cafile "$CA" -p 443 "$S4" --priority NORMAL:-VERS-ALL:+VERS-TLS1.3
    direct_end
    save_case tls13-expired-borrowed "openssl s_server with an expired certificate (valid 2023-01-01..2024-06-30), TLS 1.2 and 1.3: openssl s_client -tls1_2 rejects it (plaintext certificate_expired alert), then gnutls-cli (TLS 1.3 only) rejects it with an encrypted alert.
Look for: the TLS 1.3 session's certificate is encrypted, but the same server (IP, port, SNI) showed it in the TLS 1.2 session: expired, medium confidence, evidence naming that session's frame." \
'{
  "what": "TLS 1.3 certificate failure next to a TLS 1.2 session to the same name that shows the certificate",
  "sessions": [
    {"outcome": "failed", "cause": "certificate", "reason": "expired", "side": "client", "tls_version": "1.2", "confidence": "high"},
    {"outcome": "failed", "cause": "certificate", "reason": "expired", "side": "client", "tls_version": "1.3", "confidence": "medium"}
  ]
}'
fi

if want tls13-name-mismatch-borrowed; then
    direct_begin tls13-name-mismatch-borrowed
    osrv -cert "$CERTS/other.pem" -key "$CERTS/other.key" -num_tickets 0
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ok_curl --tlsv1.2 --tls-max 1.2
    ok_curl --tlsv1.3
    direct_end
    save_case tls13-name-mismatch-borrowed "openssl s_server -num_tickets 0 with a trusted certificate for other.test; curl asks for good.test, TLS 1.2 then TLS 1.3. curl (OpenSSL) checks the name after the handshake and closes with a close_notify and no request, both times.
Look for: TLS 1.2 shows the certificate (warning sni_not_in_certificate); in TLS 1.3 it is encrypted, and the session carries closed_without_data and, borrowed from the TLS 1.2 session to the same server and name, sni_not_in_certificate." \
'{
  "what": "curl closes after the handshake on a name mismatch, TLS 1.2 then TLS 1.3: the TLS 1.3 session borrows the certificate to warn about the name",
  "sessions": [
    {"outcome": "established", "tls_version": "1.2", "warnings": ["sni_not_in_certificate"]},
    {"outcome": "established", "tls_version": "1.3", "warnings": ["closed_without_data", "sni_not_in_certificate"]}
  ]
}'
fi

# ------------------------------------------------------------------ a client that stalls (item 1)
# client_stall_case NAME VERSION(1.2|1.3): the relay forwards only the client's ClientHello; a
# Python server with a 3 s handshake timeout gives up. Captured on the server's side.
client_stall_case() {
    local name=$1 ver=$2 cflag
    want "$name" || return 0
    new_case "$name"
    ns_setup_relay
    server_start "$PY" "$WORK/echoserver.py" "$S4" 443 "$CERTS/good.pem" "$CERTS/good.key" 3
    log_cmd "relay: relay.py bridge --stall-c2s-records 1"
    relay_start 30 --stall-c2s-records 1
    cap_start $NS_S veth-s "$PCAP" "tcp port 443"
    if [ "$ver" = 1.2 ]; then cflag=-tls1_2; else cflag=-tls1_3; fi
    # TLS 1.3: s_client's handshake is over once it sent its Finished; with stdin at its end it
    # closes at once (the relay drops that too): wait for the server's timer either way.
    client 6 openssl s_client -connect "$S4:443" -servername "$NAME" -CAfile "$CA" $cflag
    sleep 4
    cap_stop
    stop "$RELAY_PID"; stop "$SRV_PID"
    say "server: $(tr '\n' ' ' <"$CW/server.log")"
    save_case "$name" "A Python $V_PY TLS server with a 3 s handshake timeout; openssl s_client $cflag behind relay.py bridge --stall-c2s-records 1: only the client's ClientHello gets through (its later bytes are dropped, its ACKs pass). Captured on the server's side.
Look for: the server's whole flight, the client's ACKs, 3 s of silence, then the server's FIN: the client owed the next message and the server gave up waiting (handshake_stalled, side client), not a close by the server." \
        "{
  \"what\": \"TLS $ver: the client's flight never arrives after the server's; the server gives up after 3 s\",
  \"sessions\": [
    {\"outcome\": \"failed\", \"cause\": \"timeout\", \"reason\": \"handshake_stalled\", \"side\": \"client\", \"tls_version\": \"$ver\", \"confidence\": \"high\"}
  ]
}"
    lib_cleanup
}

client_stall_case tls12-client-stalls-server-gives-up 1.2
client_stall_case tls13-client-stalls-server-gives-up 1.3

# ------------------------------------------------------------------ signature algorithms, no profile
if want tls13-sigalgs-pkcs1-only; then
    direct_begin tls13-sigalgs-pkcs1-only
    osrv -cert "$CERTS/good.pem" -key "$CERTS/good.key" -tls1_3
    cap_start $NS_C veth-c "$PCAP" "tcp port 443"
    ocli -tls1_3 -sigalgs RSA+SHA256:RSA+SHA384
    direct_end
    save_case tls13-sigalgs-pkcs1-only "openssl s_server -tls1_3 (RSA certificate); openssl s_client -tls1_3 -sigalgs RSA+SHA256:RSA+SHA384 offers only RSA PKCS#1 v1.5 schemes, which TLS 1.3 forbids for handshake signatures; the server (\"no suitable signature algorithm\") sends handshake_failure right after the ClientHello.
Look for: no other session of this server in the capture: the reason comes from what any TLS 1.3 server can use (medium confidence)." \
'{
  "what": "TLS 1.3 client offering only RSA PKCS#1 signature schemes, refused right after the ClientHello (no other session to compare with)",
  "sessions": [
    {"outcome": "failed", "cause": "cipher", "reason": "no_shared_signature_algorithm", "side": "server", "confidence": "medium"}
  ]
}'
fi
