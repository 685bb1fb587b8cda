#!/bin/bash
# tls_cases.sh - make the TLS sample captures samples/cases/tls*-* with real TLS stacks
# (OpenSSL s_client/s_server, GnuTLS gnutls-cli/gnutls-serv, curl, nginx, Python ssl).
#
# Usage (as root):  samples/scripts/tls_cases.sh [--new-certs] [--list | --index] [case ...]
#   no case names = every case.  --new-certs = re-run certs.sh first (also done when
#   samples/certs/ is missing).  --list = case names, --index = one markdown line per case
#   (from its expected.json) for samples/README.md.
#
# Everything runs inside the network namespace "tlsd-tls" (or $TLSD_NS; created here, only lo, up),
# servers listen on 127.0.0.1:443 (or [::1]:443), tcpdump captures 'tcp port 443' on lo.
# Each case writes samples/cases/<case>/{<case>.pcap,expected.json,README.md};
# the logs of every server/client run are kept in samples/work/tls/<case>/ (git-ignored).
# Every client runs under `timeout`; every server is stopped by its PID.
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
SAMPLES="$(cd "$HERE/.." && pwd)"
CASES="$SAMPLES/cases"
CERTS="$SAMPLES/certs"
WORK="$SAMPLES/work/tls"
NS=${TLSD_NS:-tlsd-tls}   # TLSD_NS=<name> when several people make samples at once

if [ "${TLSD_IN_NS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "tls_cases.sh: run as root (netns + tcpdump)" >&2; exit 1; }
    newcerts=0
    args=()
    for a in "$@"; do
        if [ "$a" = --new-certs ]; then newcerts=1; else args+=("$a"); fi
    done
    if [ $newcerts = 1 ] || [ ! -s "$CERTS/good.pem" ]; then
        "$HERE/certs.sh" "$CERTS" || exit 1
    fi
    ip netns list | grep -qw "^$NS" || ip netns add "$NS" || exit 1
    ip netns exec "$NS" ip link set lo up || exit 1
    exec ip netns exec "$NS" env TLSD_IN_NS=1 bash "$0" "${args[@]}"
fi

CA="$CERTS/ca.pem"
REQ='GET / HTTP/1.0\r\nHost: good.test\r\n\r\n'
ALL_PIDS=()

# ---------------------------------------------------------------- helpers
q() { # printable command line, paths shortened
    local s
    s="$(printf '%q ' "$@")"; s="${s% }"
    s="${s//$CERTS/samples/certs}"; s="${s//$CW/\$WORK}"; s="${s//$HERE/samples/scripts}"
    printf '%s' "$s"
}
log_cmd() { echo "$*" >> "$CW/cmds"; }

wait_port() { # wait_port PORT -> 0 when something listens on PORT (max 5 s)
    local i
    for i in $(seq 50); do
        ss -Hltn "( sport = :$1 )" | grep -q . && return 0
        sleep 0.1
    done
    echo "  !! nothing listens on port $1" >&2
    return 1
}

cap_start() { # cap_start FILE [FILTER]
    : > "$CW/tcpdump.log"
    tcpdump -i lo -U -s 0 -Z root -w "$1" "${2:-tcp port 443}" 2>"$CW/tcpdump.log" &
    CAP_PID=$!
    local i
    for i in $(seq 50); do grep -q "listening on" "$CW/tcpdump.log" && break; sleep 0.1; done
    sleep 0.3
}
cap_stop() {
    sleep 1
    kill -INT "$CAP_PID" 2>/dev/null
    wait "$CAP_PID" 2>/dev/null
}

srv() { # srv CMD... : start a server in the background, wait until it listens on $SRV_PORT
    log_cmd "server: $(q "$@")"
    echo "=== server: $*" >> "$CW/server.log"
    "$@" >> "$CW/server.log" 2>&1 < /dev/null &
    SRV_PID=$!
    ALL_PIDS+=("$SRV_PID")
    wait_port "${SRV_PORT:-443}"
    sleep 0.2
}
stop_srv() {
    [ -n "${SRV_PID:-}" ] || return 0
    if kill -0 "$SRV_PID" 2>/dev/null; then
        sleep 0.3
        kill "$SRV_PID" 2>/dev/null
    fi
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
}

cli() { # cli CMD... : run a client (stdin /dev/null), bounded by timeout
    log_cmd "client: $(q "$@")"
    echo "=== client: $*" >> "$CW/client.log"
    timeout -k 2 "${CLI_TIMEOUT:-10}" "$@" < /dev/null >> "$CW/client.log" 2>&1
    echo "=== exit $?" >> "$CW/client.log"
    sleep 0.3
}
cli_get() { # cli_get CMD... : like cli, but feeds an HTTP GET on stdin (kept open $HOLD s)
    log_cmd "client: printf '$REQ' | $(q "$@")"
    echo "=== client: $*" >> "$CW/client.log"
    { printf "$REQ"; sleep "${HOLD:-0}"; } | timeout -k 2 "${CLI_TIMEOUT:-10}" "$@" >> "$CW/client.log" 2>&1
    echo "=== exit $?" >> "$CW/client.log"
    sleep 0.3
}

# stack shortcuts
osrv() { local c=$1; shift; srv openssl s_server -accept 443 -cert "$CERTS/$c.pem" -key "$CERTS/$c.key" -www -keylogfile "$CW/keys.log" "$@"; }
ocli() { cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof "$@"; }
VERIFY=(-CAfile "$CA" -verify_return_error)
gsrv() { local c=$1; shift; srv gnutls-serv -p 443 --x509certfile "$CERTS/$c.pem" --x509keyfile "$CERTS/$c.key" "$@"; }
gcli() { HOLD=${HOLD:-1} cli_get gnutls-cli -p 443 "$@" 127.0.0.1; }
pysrv() { srv python3 "$HERE/tls_py.py" server "$@"; }
pycli() { cli python3 "$HERE/tls_py.py" client "$@"; }
curlc() { cli curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --resolve good.test:443:127.0.0.1 --resolve other.test:443:127.0.0.1 "$@"; }

nginx_start() { # nginx_start ssl|plain [CERT] [extra server directives]
    # For one call (java_cases.sh and keylog_stacks.sh use them): NGINX_PROTOS, the ssl_protocols
    # (default TLSv1.2 TLSv1.3); NGINX_LISTEN, listen options after ssl (http2); NGINX_ANSWER, what
    # location / returns (default 200 "hello from nginx\n").
    local mode=$1 cert=${2:-good} extra=${3:-} listen opts="ssl${NGINX_LISTEN:+ $NGINX_LISTEN}"
    local answer=${NGINX_ANSWER:-'200 "hello from nginx\n"'}
    mkdir -p "$CW/nginx/logs"
    if [ "$mode" = ssl ]; then
        listen="listen 127.0.0.1:443 $opts; listen [::1]:443 $opts;
        ssl_certificate $CERTS/$cert.pem; ssl_certificate_key $CERTS/$cert.key;
        ssl_protocols ${NGINX_PROTOS:-TLSv1.2 TLSv1.3};"
    else
        listen="listen 127.0.0.1:443; listen [::1]:443;"
    fi
    cat > "$CW/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $CW/nginx/nginx.pid;
error_log $CW/nginx/logs/error.log info;
events { worker_connections 64; }
http {
    access_log $CW/nginx/logs/access.log;
    client_body_temp_path $CW/nginx/body; proxy_temp_path $CW/nginx/proxy;
    fastcgi_temp_path $CW/nginx/fcgi; uwsgi_temp_path $CW/nginx/uwsgi; scgi_temp_path $CW/nginx/scgi;
    server {
        $listen
        server_name good.test;
        $extra
        location / { default_type text/plain; return $answer; }
    }
}
EOF
    srv nginx -p "$CW/nginx" -e "$CW/nginx/logs/error.log" -c "$CW/nginx/nginx.conf" -g "daemon off;"
}

# end_case: stops the case's server, its capture and the helpers it started in the background.
end_case() {
    stop_srv
    cap_stop
    local p
    for p in "${ALL_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && { kill "$p"; wait "$p" 2>/dev/null; }; done
    ALL_PIDS=()
}

# parse_case NAME PREFIX: PREFIX-<client>-<server>-<scenario>-tls1[23] into the caller's c, s,
# sc, v (12 or 13) and V (1.2 or 1.3), which it declares local; fails on another name.
parse_case() {
    local IFS=- parts
    read -r -a parts <<< "$1"
    [ ${#parts[@]} = 5 ] && [ "${parts[0]}" = "$2" ] || { echo "bad case name $1" >&2; return 1; }
    c=${parts[1]} s=${parts[2]} sc=${parts[3]} v=${parts[4]#tls}
    V="1.${v#1}"
}

# expected.json builders
SESS=()
ok() { # ok VERSION [warning ...] [key=jsonvalue ...]
    local v=$1 w=() ex="" a
    shift
    for a in "$@"; do
        case $a in *=*) ex+=", \"${a%%=*}\": ${a#*=}" ;; *) w+=("\"$a\"") ;; esac
    done
    local ws=""
    [ ${#w[@]} -gt 0 ] && ws=", \"warnings\": [$(IFS=,; echo "${w[*]}" | sed 's/,/, /g')]"
    SESS+=("{\"outcome\": \"established\", \"tls_version\": \"$v\"$ws$ex}")
}
fail() { # fail CAUSE REASON SIDE [key=jsonvalue ...]
    local c=$1 r=$2 s=$3 ex="" a
    shift 3
    for a in "$@"; do ex+=", \"${a%%=*}\": ${a#*=}"; done
    SESS+=("{\"outcome\": \"failed\", \"cause\": \"$c\", \"reason\": \"$r\", \"side\": \"$s\"$ex}")
}

# The end of a case's README: the tools' own error lines (client.log matching CLIENT_PAT,
# server.log matching SERVER_PAT, in $CW; OpenSSL's error-code prefixes cut, at most 6) and $NOTE.
tools_said() { # tools_said CLIENT_PAT SERVER_PAT
    local msgs
    msgs="$( { grep -hE "$1" "$CW/client.log" | sed 's/^/client: /'
               grep -hE "$2" "$CW/server.log" | sed 's/^/server: /'; } 2>/dev/null |
             sed -E 's/[0-9A-F]{12,16}:error:[0-9A-F]+:/error:/' | awk '!seen[$0]++' | head -6)"
    if [ -n "$msgs" ]; then
        echo
        echo "What the tools said (logs in \$WORK):"
        echo
        printf '%s\n' "$msgs" | sed 's/^/    /'
    fi
    if [ -n "${NOTE:-}" ]; then
        echo
        echo "$NOTE"
    fi
}

write_expected() {
    local f="$D/expected.json" i n=${#SESS[@]}
    {
        echo "{"
        echo "  \"what\": \"$WHAT\","
        [ -n "${ARGS:-}" ] && echo "  \"args\": $ARGS,"
        echo "  \"sessions\": ["
        for i in "${!SESS[@]}"; do
            if [ "$i" -lt $((n - 1)) ]; then echo "    ${SESS[$i]},"; else echo "    ${SESS[$i]}"; fi
        done
        if [ -n "${SETUP_REASON:-}" ]; then
            echo "  ],"
            echo "  \"setup_reason\": \"$SETUP_REASON\""
        else
            echo "  ]"
        fi
        echo "}"
    } > "$f"
    python3 -m json.tool "$f" > /dev/null || echo "  !! $f is not valid JSON" >&2
}

write_readme() {
    local pcap=$1
    {
        echo "# $NAME"
        echo
        echo "$WHAT."
        echo
        echo "Made by \`samples/scripts/tls_cases.sh $NAME\` on $(date -u +%Y-%m-%d) in netns $NS (loopback),"
        echo "certificates from samples/scripts/certs.sh (samples/certs/). Stack: $STACK."
        echo
        echo "Commands (\$WORK = samples/work/tls/$NAME):"
        echo
        sed 's/^/    /' "$CW/cmds"
        echo
        echo "On the wire (samples/scripts/tls_summary.py; f<N> = frame number, C>S = client to server):"
        echo
        python3 "$HERE/tls_summary.py" "$pcap" | sed 's/^/    /'
        if [ "${DECRYPT:-0}" = 1 ] && [ -s "$CW/keys.log" ]; then
            echo
            echo "Decrypted with the server's key log (s_server -keylogfile; not in the capture, tlsdiag cannot do this):"
            echo
            python3 "$HERE/tls_summary.py" --keylog "$CW/keys.log" "$pcap" | sed 's/^/    /'
        fi
        local pat='verify error:|Fatal error|PKI verification|^curl: \(|:error:|Error in handshake|failed:'
        tools_said "$pat" "$pat"
    } > "$D/README.md"
}

run_case() {
    NAME=$1
    local fn="case_${NAME//-/_}"
    if ! declare -F "$fn" > /dev/null; then echo "unknown case $NAME" >&2; return 1; fi
    CW="$WORK/$NAME"; D="$CASES/$NAME"
    rm -rf "$CW" "$D"; mkdir -p "$CW" "$D"
    : > "$CW/cmds"
    WHAT=""; STACK=""; NOTE=""; ARGS=""; SETUP_REASON=""; DECRYPT=0; SESS=(); SRV_PID=""; SRV_PORT=443
    local pcap="$D/$NAME.pcap"
    echo "== $NAME"
    case $NAME in *port8443) cap_start "$pcap" "tcp port 8443" ;; *) cap_start "$pcap" ;; esac
    "$fn"
    end_case
    write_expected
    write_readme "$pcap"
    python3 "$HERE/tls_summary.py" "$pcap" | sed 's/^/   /'
}

# ====================================================================== cases
# ---- established
case_tls12_ok_openssl() {
    WHAT="TLS 1.2 handshake OpenSSL s_client -> s_server, client verifies good.test, HTTP GET, both close_notify"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_2
    ocli -tls1_2 -servername good.test -verify_hostname good.test "${VERIFY[@]}"
    ok 1.2
}
case_tls13_ok_openssl() {
    WHAT="TLS 1.3 handshake OpenSSL s_client -> s_server, client verifies good.test, HTTP GET, session tickets"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_3
    ocli -tls1_3 -servername good.test -verify_hostname good.test "${VERIFY[@]}"
    ok 1.3
}
case_tls13_ok_gnutls() {
    WHAT="TLS 1.3 handshake gnutls-cli -> gnutls-serv (server requests an optional client cert, client sends none), HTTP GET"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> gnutls-serv"
    gsrv good --http
    gcli --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    ok 1.3
    NOTE="gnutls-serv asks for a client certificate by default (CertificateRequest inside the encrypted flight); gnutls-cli answers with an empty Certificate and the handshake succeeds."
}
case_tls13_ok_curl_nginx() {
    WHAT="TLS 1.3 handshake curl -> nginx (https://good.test/, ALPN http/1.1), HTTP 200"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> nginx $(nginx -v 2>&1 | sed 's|.*/||') (OpenSSL)"
    nginx_start ssl good
    curlc --cacert "$CA" https://good.test/
    ok 1.3
}
case_tls13_ok_ipv6() {
    WHAT="TLS 1.3 handshake over IPv6 ([::1]:443): curl -> nginx, HTTP 200"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> nginx $(nginx -v 2>&1 | sed 's|.*/||') (OpenSSL)"
    nginx_start ssl good
    cli curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --resolve 'good.test:443:[::1]' --cacert "$CA" https://good.test/
    ok 1.3 ip_version=6
}
case_tls13_ok_port8443() {
    WHAT="TLS 1.3 handshake on port 8443 (tlsdiag needs --port 8443): OpenSSL s_client -> s_server"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    SRV_PORT=8443
    srv openssl s_server -accept 8443 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www -tls1_3
    cli_get openssl s_client -connect 127.0.0.1:8443 -ign_eof -tls1_3 -servername good.test "${VERIFY[@]}"
    ARGS='["--port", "8443"]'
    ok 1.3 server_port=8443
}
case_tls12_ok_python() {
    WHAT="TLS 1.2 handshake Python ssl client -> Python ssl server (both max TLS 1.2), HTTP GET"
    STACK="Python $(python3 -c 'import sys;print(sys.version.split()[0])') ssl module ($(python3 -c 'import ssl;print(ssl.OPENSSL_VERSION)')) client and server"
    pysrv --cert "$CERTS/good.pem" --key "$CERTS/good.key" --max 1.2
    pycli --cafile "$CA" --sni good.test --max 1.2
    ok 1.2
    NOTE="Both ends are CPython's ssl module (OpenSSL underneath) limited with maximum_version = TLSv1_2."
}
case_tls13_hrr() {
    WHAT="TLS 1.3 with HelloRetryRequest: client sends an x25519 key_share, server only accepts P-384 -> HRR, second ClientHello, success"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_3 -groups P-384
    ocli -tls1_3 -groups X25519:P-384 -servername good.test "${VERIFY[@]}"
    ok 1.3
    NOTE="The server's HelloRetryRequest (ServerHello with the special random) selects group 24 (secp384r1); the second ClientHello carries a P-384 key_share."
}
case_tls13_resumption() {
    WHAT="Two TLS 1.3 connections: the second resumes with the session ticket of the first (PSK, no Certificate)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_3
    ocli -tls1_3 -servername good.test "${VERIFY[@]}" -sess_out "$CW/sess.pem"
    ocli -tls1_3 -servername good.test "${VERIFY[@]}" -sess_in "$CW/sess.pem"
    ok 1.3
    ok 1.3
    NOTE="The second ClientHello carries a pre_shared_key extension and the server accepts it (ServerHello with pre_shared_key; the encrypted flight is small because there is no Certificate). client.log says \"Reused, TLSv1.3\"."
}
case_tls12_resumption() {
    WHAT="Two TLS 1.2 connections: the second resumes the first by session ID (server without tickets): abbreviated handshake"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server -no_ticket"
    osrv good -tls1_2 -no_ticket
    ocli -tls1_2 -servername good.test "${VERIFY[@]}" -sess_out "$CW/sess.pem"
    ocli -tls1_2 -servername good.test "${VERIFY[@]}" -sess_in "$CW/sess.pem"
    ok 1.2
    ok 1.2
    NOTE="Second connection: ServerHello echoes the client's session ID and goes straight to ChangeCipherSpec + Finished (no Certificate, no key exchange)."
}

case_tls13_idle_server_close() {
    WHAT="TLS 1.3 handshake OpenSSL s_client -> nginx (no session tickets); the client sends no request and after 2 s of idleness nginx (client_header_timeout 2s) closes the connection with a close_notify: established, no warning"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> nginx $(nginx -v 2>&1 | sed 's|.*/||') (OpenSSL)"
    nginx_start ssl good 'ssl_session_tickets off; ssl_session_cache off; ssl_conf_command NumTickets 0; client_header_timeout 2s;'
    CLI_TIMEOUT=8 cli openssl s_client -connect 127.0.0.1:443 -tls1_3 -servername good.test -verify_hostname good.test -ign_eof -keylogfile "$CW/keys.log" "${VERIFY[@]}"
    ok 1.3
    NOTE="nginx gets 'ssl_session_tickets off; ssl_session_cache off; ssl_conf_command NumTickets 0; client_header_timeout 2s;' (without NumTickets 0 nginx 1.22 still sends two stateful TLS 1.3 tickets, appdata[74]); s_client gets stdin /dev/null with -ign_eof, so it completes the handshake and sends nothing. After the client's Finished nothing moves for 2 s; then nginx logs 'client timed out ... while waiting for request', sends its close_notify (the server's appdata[19]) and closes its socket; s_client answers with its own close_notify (appdata[19]) and FIN. The client's close_notify reached nginx before its close(), so the kernel sent RST instead of the server's FIN (unread data; a FIN is equally possible on another run). Decrypted with the client's key log (s_client -keylogfile, not in the capture) both 19-byte records are close_notify alerts. A server ending an idle kept-open connection is no failure: the handshake completed, hence established without warning (not closed_without_data: the client did not close it)."
}
# ---- established with warnings
case_tls12_warn_expiring() {
    WHAT="TLS 1.2 established; the server certificate expires 10 days after the capture (cert_expiring_soon)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv expiring -tls1_2
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    ok 1.2 cert_expiring_soon
    NOTE="samples/certs/expiring.pem notAfter = $(openssl x509 -in "$CERTS/expiring.pem" -noout -enddate | cut -d= -f2) (certs.sh sets it to now + 10 days)."
}
case_tls10_legacy() {
    WHAT="TLS 1.0 established (both ends forced to TLSv1 with @SECLEVEL=0): legacy_version"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1 -cipher DEFAULT@SECLEVEL=0
    ocli -tls1 -cipher DEFAULT@SECLEVEL=0 -servername good.test "${VERIFY[@]}"
    ok 1.0 legacy_version
    NOTE="Negotiated cipher ECDHE-RSA-AES256-SHA (0xc014, CBC + HMAC-SHA1); only legacy_version is expected."
}
case_tls12_no_pfs() {
    WHAT="TLS 1.2 established with static RSA key exchange AES128-GCM-SHA256 (no_forward_secrecy)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_2
    ocli -tls1_2 -cipher AES128-GCM-SHA256 -servername good.test "${VERIFY[@]}"
    ok 1.2 no_forward_secrecy
    NOTE="ServerHello selects 0x009c TLS_RSA_WITH_AES_128_GCM_SHA256; no ServerKeyExchange."
}
case_tls12_sha1_weakkey() {
    WHAT="TLS 1.2 established; server cert has an RSA 1024-bit key and a SHA-1 signature (sha1_signature, weak_rsa_key)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server, both @SECLEVEL=0"
    osrv weak -tls1_2 -cipher DEFAULT@SECLEVEL=0
    ocli -tls1_2 -cipher DEFAULT@SECLEVEL=0 -servername good.test "${VERIFY[@]}"
    ok 1.2 sha1_signature weak_rsa_key
    NOTE="Without @SECLEVEL=0 OpenSSL 3.0 refuses both the 1024-bit key and the SHA-1 signature; certs.sh signs samples/certs/weak.pem with -md sha1 and a 1024-bit RSA key."
}
case_tls12_warn_rsa1024() {
    WHAT="TLS 1.2 established; server cert has an RSA 1024-bit key (SHA-256 signature): weak_rsa_key only"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server, both @SECLEVEL=0"
    osrv rsa1024 -tls1_2 -cipher DEFAULT@SECLEVEL=0
    ocli -tls1_2 -cipher DEFAULT@SECLEVEL=0 -servername good.test "${VERIFY[@]}"
    ok 1.2 weak_rsa_key
}
case_tls12_warn_sha1() {
    WHAT="TLS 1.2 established; server cert (RSA 2048) is signed with SHA-1: sha1_signature only"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server, both @SECLEVEL=0"
    osrv sha1 -tls1_2 -cipher DEFAULT@SECLEVEL=0
    ocli -tls1_2 -cipher DEFAULT@SECLEVEL=0 -servername good.test "${VERIFY[@]}"
    ok 1.2 sha1_signature
}
case_tls12_warn_3des() {
    WHAT="TLS 1.2 established with TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (3DES): weak_cipher"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> gnutls-serv (this OpenSSL build has no 3DES)"
    gsrv good --http --priority 'NORMAL:+3DES-CBC:-VERS-TLS1.3'
    gcli --priority 'NORMAL:-CIPHER-ALL:+3DES-CBC:-VERS-TLS1.3' --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    ok 1.2 weak_cipher
    NOTE="ServerHello selects 0xc012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (ECDHE, so no_forward_secrecy does not apply)."
}
case_tls12_warn_self_signed() {
    WHAT="TLS 1.2 established with a self-signed server cert, client does not verify: self_signed_certificate"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client (no verification) -> s_server"
    osrv selfsigned -tls1_2
    ocli -tls1_2 -servername good.test
    ok 1.2 self_signed_certificate
    NOTE="s_client reports 'verify error:num=18:self-signed certificate' but continues (no -verify_return_error)."
}
case_tls12_sni_mismatch_ok() {
    WHAT="TLS 1.2 established; client asks SNI good.test, cert only covers other.test, client does not check the name: sni_not_in_certificate"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client (no hostname check) -> s_server"
    osrv other -tls1_2
    ocli -tls1_2 -servername good.test -CAfile "$CA"
    ok 1.2 sni_not_in_certificate
    NOTE="The cert (samples/certs/other.pem) is from the trusted Test CA but only names other.test; s_client does not check host names without -verify_hostname."
}

# ---- protocol failures
case_tls13_version_mismatch() {
    WHAT="Server TLS 1.3 only, client max TLS 1.2: server sends fatal protocol_version (70)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -tls1_2 -> s_server -tls1_3"
    osrv good -tls1_3
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch server
    NOTE="s_client -tls1_2 sends a ClientHello without supported_versions; OpenSSL's TLS 1.3-only server answers with a plaintext fatal protocol_version (70) and closes."
}
case_tls12_version_mismatch() {
    WHAT="Server max TLS 1.2, client TLS 1.3 only: server rejects the ClientHello with fatal protocol_version (70)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -tls1_3 -> s_server -tls1_2"
    osrv good -tls1_2
    ocli -tls1_3 -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch server
    NOTE="The ClientHello's supported_versions lists only 1.3; the TLS <= 1.2 OpenSSL server answers with fatal protocol_version (70)."
}
case_tls11_server_legacy_only() {
    WHAT="Server speaks only TLS 1.0/1.1 (s_server -tls1_1 @SECLEVEL=0); a current OpenSSL client offers TLS 1.0-1.3, the server picks TLS 1.1 and the client refuses it: version_mismatch"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client (defaults) -> s_server -tls1_1 -cipher DEFAULT@SECLEVEL=0"
    osrv good -tls1_1 -cipher DEFAULT@SECLEVEL=0
    ocli -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch client
    NOTE="The ServerHello negotiates TLS 1.1. OpenSSL 3 at its default security level cannot sign with TLS 1.1's MD5/SHA-1 handshake hash and answers with a fatal alert that names no version (internal_error here; other stacks send handshake_failure or protocol_version). The cause is the version the server chose: current browsers refuse TLS 1.0/1.1 (RFC 8996)."
}
case_tls11_server_legacy_only_dhe() {
    WHAT="Server speaks only TLS 1.1 with DHE suites (s_server -tls1_1 -cipher DHE-RSA-AES128-SHA @SECLEVEL=0); a current OpenSSL client offers TLS 1.0-1.3, the server picks TLS 1.1 + DHE and the client refuses it: version_mismatch"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client (defaults) -> s_server -tls1_1 -cipher DHE-RSA-AES128-SHA:@SECLEVEL=0"
    osrv good -tls1_1 -cipher 'DHE-RSA-AES128-SHA:@SECLEVEL=0'
    ocli -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch client
    NOTE="Same as tls11-server-legacy-only, but the ServerHello selects 0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA and the ServerKeyExchange carries finite-field DH parameters: s_server's automatic 2048-bit group (RFC 3526 MODP 2048, g=2; no -dhparam needed), so the DH size itself is acceptable. OpenSSL 3 at its default security level refuses the TLS 1.1 ServerKeyExchange signature (MD5+SHA-1: 'legacy sigalg disallowed or unsupported') and sends a plaintext fatal internal_error (80), which names no version. The cause is the version the server chose (RFC 8996), not the DHE suite."
}
case_tls12_version_mismatch_gnutls() {
    WHAT="Server max TLS 1.2 (GnuTLS), client TLS 1.3 only: GnuTLS answers with fatal handshake_failure (40), not protocol_version"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -tls1_3 -> GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-serv (TLS <= 1.2)"
    gsrv good --http --priority 'NORMAL:-VERS-TLS1.3'
    ocli -tls1_3 -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch server
    NOTE="s_client -tls1_3 offers only TLS 1.3 (supported_versions = 1.3) and only TLS 1.3 cipher suites. The TLS <= 1.2 GnuTLS server treats the hello as TLS 1.2 (legacy_version 0x0303), finds none of its 1.2 suites and logs 'No supported cipher suites have been found', sending handshake_failure (40). The cause is still the version: the expected reason is version_mismatch (the client offers no version <= 1.2)."
}
case_tls_not_tls() {
    WHAT="TLS client (curl https://) talks to a plain-HTTP nginx on port 443: server answers 'HTTP/1.1 400 Bad Request' in clear text"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> nginx $(nginx -v 2>&1 | sed 's|.*/||') without ssl"
    nginx_start plain
    curlc --cacert "$CA" https://good.test/
    fail protocol not_tls server
    NOTE="nginx reads the ClientHello as a broken HTTP request and answers 'HTTP/1.1 400 Bad Request' (HTML body) in clear text, then FIN; curl reports 'wrong version number' and resets (no TLS alert is sent)."
}
case_tls_plaintext_client() {
    WHAT="Plain-HTTP client (curl http://good.test:443/) talks to a TLS nginx: nginx answers HTTP 400 'plain HTTP request was sent to HTTPS port'"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') -> nginx $(nginx -v 2>&1 | sed 's|.*/||') with ssl"
    nginx_start ssl good
    curlc http://good.test:443/
    fail protocol plaintext_client client
    NOTE="The client's first bytes are 'GET / HTTP/1.1' (no TLS record at all); nginx answers in clear text 'HTTP/1.1 400 Bad Request ... The plain HTTP request was sent to HTTPS port'. side = client: the client is the one speaking the wrong protocol."
}
case_tls12_sni_rejected() {
    WHAT="Client asks SNI other.test, server only serves good.test and is told to fail: fatal unrecognized_name (112) from the server"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server -servername good.test -servername_fatal"
    osrv good -tls1_2 -servername good.test -servername_fatal -cert2 "$CERTS/good.pem" -key2 "$CERTS/good.key"
    ocli -tls1_2 -servername other.test "${VERIFY[@]}"
    fail protocol sni_rejected server
    NOTE="s_server only installs the servername callback when a second context (-cert2/-key2) exists; with -servername_fatal it answers the unknown name with a plaintext fatal unrecognized_name (112) instead of a ServerHello."
}
case_tls13_sni_rejected() {
    WHAT="TLS 1.3 ClientHello with SNI other.test to a server that only accepts good.test: fatal unrecognized_name (112) from the server"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-serv --sni-hostname good.test --sni-hostname-fatal"
    gsrv good --http --sni-hostname good.test --sni-hostname-fatal
    ocli -tls1_3 -servername other.test "${VERIFY[@]}"
    fail protocol sni_rejected server
    NOTE="GnuTLS answers the TLS 1.3 ClientHello with a plaintext fatal unrecognized_name (112) (no ServerHello yet, so nothing is encrypted)."
}
case_tls12_alpn_mismatch() {
    WHAT="TLS 1.2: client offers ALPN http/1.1 only, server only h2 with --alpn-fatal: fatal no_application_protocol (120) from the server"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-serv --alpn h2 --alpn-fatal"
    gsrv good --http --alpn h2 --alpn-fatal
    ocli -tls1_2 -alpn http/1.1 -servername good.test "${VERIFY[@]}"
    fail protocol alpn_mismatch server
    NOTE="GnuTLS sends a plaintext fatal no_application_protocol (120) in reply to the ClientHello."
}
case_tls13_alpn_mismatch() {
    WHAT="TLS 1.3: client offers ALPN http/1.1 only, server only h2 with --alpn-fatal: fatal no_application_protocol (120) from the server"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> gnutls-serv --alpn h2 --alpn-fatal"
    gsrv good --http --alpn h2 --alpn-fatal
    gcli --alpn http/1.1 --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    fail protocol alpn_mismatch server
    NOTE="GnuTLS sends a plaintext fatal no_application_protocol (120) in reply to the ClientHello (before any key is set up)."
}
case_tls12_downgrade_rejected() {
    WHAT="Client retries at TLS 1.1 with TLS_FALLBACK_SCSV, server supports TLS 1.2: fatal inappropriate_fallback (86) from the server"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -tls1_1 -fallback_scsv -> s_server (TLS 1.0-1.2 at @SECLEVEL=0)"
    osrv good -no_tls1_3 -cipher DEFAULT@SECLEVEL=0
    ocli -tls1_1 -fallback_scsv -cipher DEFAULT@SECLEVEL=0 -servername good.test "${VERIFY[@]}"
    fail protocol downgrade_rejected server
    NOTE="The ClientHello is TLS 1.1 (legacy version 0x0302) and carries TLS_FALLBACK_SCSV (0x5600); the server (TLS 1.0-1.2 allowed so the version itself is acceptable) answers with a plaintext fatal inappropriate_fallback (86)."
}

# ---- certificate failures
case_tls12_expired() {
    WHAT="TLS 1.2: server cert expired 2024-06-30, client verifies: client sends fatal certificate_expired (45)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv expired -tls1_2
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate expired client
    NOTE="samples/certs/expired.pem: notAfter 2024-06-30. OpenSSL sends the alert in plaintext before its own ChangeCipherSpec."
}
case_tls13_expired() {
    WHAT="TLS 1.3: server cert expired 2024-06-30, curl verifies: client sends a plaintext fatal certificate_expired (45)"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv expired -tls1_3
    curlc --tlsv1.3 --cacert "$CA" https://good.test/
    fail certificate expired client
    NOTE="curl (OpenSSL) sends its TLS 1.3 certificate alert in PLAINTEXT (record type 21, it has not switched to handshake keys for writing yet), then resets the connection. The certificate itself is encrypted in TLS 1.3; the alert says certificate_expired."
}
case_tls12_not_yet_valid() {
    WHAT="TLS 1.2: server cert valid only from 2030-01-01, client verifies and rejects it"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv notyet -tls1_2
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate not_yet_valid client
    NOTE="OpenSSL maps 'certificate is not yet valid' (X509 error 9) to alert bad_certificate (42), not certificate_expired. The certificate (notBefore 2030-01-01) is visible in the TLS 1.2 capture, so the expected reason is not_yet_valid."
}
case_tls13_not_yet_valid() {
    WHAT="TLS 1.3: server cert valid only from 2030-01-01, client verifies and rejects it"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv notyet -tls1_3
    ocli -tls1_3 -servername good.test "${VERIFY[@]}"
    fail certificate not_yet_valid client
    NOTE="OpenSSL maps 'certificate is not yet valid' to a plaintext bad_certificate (42). In TLS 1.3 the certificate is encrypted, so a passive observer sees only bad_certificate from the client; the expected reason is what the setup is (not_yet_valid). A tool that only sees the wire can at best say bad_certificate."
}
case_tls12_hostname_mismatch() {
    WHAT="TLS 1.2: client wants good.test, cert is for other.test (trusted CA), client checks the name and aborts"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -verify_hostname -> s_server"
    osrv other -tls1_2
    ocli -tls1_2 -servername good.test -verify_hostname good.test "${VERIFY[@]}"
    fail certificate hostname_mismatch client
    NOTE="OpenSSL maps 'hostname mismatch' (X509 error 62) to alert bad_certificate (42). SNI good.test is not in the visible certificate (SAN other.test), so the expected reason is hostname_mismatch."
}
case_tls13_hostname_mismatch() {
    WHAT="TLS 1.3: client wants good.test, cert is for other.test (trusted CA), client checks the name and aborts"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -verify_hostname -> s_server"
    osrv other -tls1_3
    ocli -tls1_3 -servername good.test -verify_hostname good.test "${VERIFY[@]}"
    fail certificate hostname_mismatch client
    NOTE="OpenSSL sends a plaintext bad_certificate (42). The certificate is encrypted in TLS 1.3, so only SNI good.test + bad_certificate are visible; the expected reason is the setup's (hostname_mismatch). A wire-only tool can at best say bad_certificate."
}
case_tls13_hostname_mismatch_curl() {
    WHAT="TLS 1.3: curl asks for good.test, nginx serves a certificate for other.test (trusted CA); curl checks the name after the handshake and closes with only a close_notify (no request, no error alert): established, with the warning closed_without_data"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> nginx $(nginx -v 2>&1 | sed 's|.*/||') (OpenSSL)"
    nginx_start ssl other
    curlc --cacert "$CA" https://good.test/
    ok 1.3 closed_without_data
    NOTE="curl (OpenSSL backend) completes the handshake, then finds that the certificate does not name good.test ('no alternative certificate subject name matches'), sends no error alert, only a close_notify, and closes. The certificate is encrypted in TLS 1.3, so the wire shows a complete handshake followed by the client's FIN with no request: reported as established with a warning, since a handshake-only health check looks the same."
}
case_tls12_unknown_ca() {
    WHAT="TLS 1.2: server cert issued by 'tlsdiag Other CA' which the client does not trust: client sends fatal unknown_ca (48)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv untrusted -tls1_2
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate unknown_ca client
    NOTE="samples/certs/untrusted.pem is issued by 'tlsdiag Other CA'; s_client trusts only ca.pem ('unable to get local issuer certificate' -> unknown_ca 48)."
}
case_tls13_unknown_ca() {
    WHAT="TLS 1.3: server cert issued by 'tlsdiag Other CA', Python client trusts only the Test CA: client sends fatal unknown_ca (48)"
    STACK="Python $(python3 -c 'import sys;print(sys.version.split()[0])') ssl client -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv untrusted -tls1_3
    pycli --cafile "$CA" --sni good.test
    fail certificate unknown_ca client
    NOTE="Python's ssl (OpenSSL) sends its TLS 1.3 alert in plaintext, then resets the connection (unread data)."
}
case_tls12_self_signed() {
    WHAT="TLS 1.2: self-signed server cert for good.test, GnuTLS client verifies with the Test CA and rejects it"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv selfsigned -tls1_2
    gcli --priority 'NORMAL:-VERS-TLS1.3' --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    fail certificate self_signed client
    NOTE="GnuTLS sends a plaintext bad_certificate (42) (not unknown_ca), then FIN and RST. The visible certificate has issuer == subject (self-signed), so the expected reason is self_signed."
}
case_tls13_self_signed() {
    WHAT="TLS 1.3: self-signed server cert for good.test, OpenSSL client verifies with the Test CA and rejects it"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv selfsigned -tls1_3
    ocli -tls1_3 -servername good.test "${VERIFY[@]}"
    fail certificate self_signed client
    NOTE="OpenSSL reports 'self-signed certificate' and sends a plaintext unknown_ca (48). The certificate is encrypted in TLS 1.3; the expected reason is the setup's (self_signed). A wire-only tool can at best say unknown_ca."
}
case_tls12_revoked() {
    WHAT="TLS 1.2: server cert is listed in the CA's CRL, client checks the CRL: client sends fatal certificate_revoked (44)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -crl_check -> s_server"
    osrv revoked -tls1_2
    ocli -tls1_2 -servername good.test -crl_check -CRL "$CERTS/crl.pem" "${VERIFY[@]}"
    fail certificate revoked client
    NOTE="samples/certs/revoked.pem is listed in samples/certs/crl.pem (keyCompromise); the client checks the CRL (-crl_check -CRL) and sends a plaintext certificate_revoked (44)."
}
case_tls13_revoked() {
    WHAT="TLS 1.3: server cert is listed in the CA's CRL, client checks the CRL: client sends fatal certificate_revoked (44)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -crl_check -> s_server"
    osrv revoked -tls1_3
    ocli -tls1_3 -servername good.test -crl_check -CRL "$CERTS/crl.pem" "${VERIFY[@]}"
    fail certificate revoked client
    NOTE="Same as tls12-revoked in TLS 1.3: OpenSSL sends certificate_revoked (44) in plaintext, so the reason is visible although the certificate is encrypted."
}
case_tls12_client_cert_missing() {
    WHAT="TLS 1.2: server requires a client certificate (-Verify 1), client sends an empty Certificate: server aborts"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server -Verify 1"
    osrv good -tls1_2 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate client_certificate_missing server
    NOTE="The client answers the CertificateRequest with an empty Certificate message (visible in TLS 1.2); the OpenSSL server sends a plaintext fatal handshake_failure (40) ('peer did not return a certificate') after the client's Finished."
}
case_tls13_client_cert_missing() {
    WHAT="TLS 1.3: server requires a client certificate (-Verify 1), client sends an empty Certificate: server aborts with an encrypted alert"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server -Verify 1"
    osrv good -tls1_3 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli -tls1_3 -servername good.test "${VERIFY[@]}"
    fail certificate client_certificate_missing server
    DECRYPT=1
    NOTE="The server (OpenSSL) sends its alert encrypted with its application traffic key: one 19-byte application_data record (2 alert bytes + inner type + 16-byte tag) right after the client's Finished (and after the client's first application_data record, the HTTP request s_client sends at once), then FIN. Decrypted it is fatal certificate_required (116). From the client's side the TLS 1.3 handshake had completed."
}
case_tls12_client_cert_rejected() {
    WHAT="TLS 1.2: server requires a client certificate, client presents one from the untrusted Other CA: server rejects it"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -cert -> s_server -Verify 1"
    osrv good -tls1_2 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli -tls1_2 -servername good.test -cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key" "${VERIFY[@]}"
    fail certificate client_certificate_rejected server
    NOTE="Needs -verify_return_error on s_server (without it s_server logs the verify error and continues). The client's Certificate (issuer 'tlsdiag Other CA') is visible; the server sends a plaintext fatal unknown_ca (48) after the client's Finished."
}
case_tls13_client_cert_rejected() {
    WHAT="TLS 1.3: server requires a client certificate, client presents one from the untrusted Other CA: server rejects it (encrypted alert)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -cert -> s_server -Verify 1"
    osrv good -tls1_3 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli -tls1_3 -servername good.test -cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key" "${VERIFY[@]}"
    fail certificate client_certificate_rejected server
    DECRYPT=1
    NOTE="Encrypted alert from the server (19-byte application_data record) right after the client's Certificate/CertificateVerify/Finished, then FIN; decrypted it is fatal unknown_ca (48)."
}
case_tls13_rejected_by_client_gnutls() {
    WHAT="TLS 1.3: gnutls-cli rejects the server cert (issued by the untrusted Other CA); GnuTLS sends its alert ENCRYPTED, so only an encrypted record + close is visible"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv untrusted -tls1_3
    gcli --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    fail certificate rejected_by_client client
    DECRYPT=1
    NOTE="The problem is an untrusted issuer (server cert samples/certs/untrusted.pem, issued by 'tlsdiag Other CA'; gnutls-cli trusts only ca.pem). GnuTLS encrypts its TLS 1.3 alert with the client handshake traffic key: after its ChangeCipherSpec the client sends ONE 19-byte application_data record, then FIN (and RST for unread data). Decrypted (server key log) it is fatal bad_certificate (42). The certificate itself is encrypted in TLS 1.3, so a passive observer can only say rejected_by_client."
}

# ---- cipher failures
case_tls12_no_shared_cipher() {
    WHAT="TLS 1.2: client offers only ECDHE-RSA-CHACHA20-POLY1305, server only ECDHE-RSA-AES256-GCM-SHA384: server sends fatal handshake_failure (40)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
    ocli -tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305 -servername good.test "${VERIFY[@]}"
    fail cipher no_shared_cipher server
    NOTE="The OpenSSL server answers the ClientHello with a plaintext fatal handshake_failure (40) ('no shared cipher')."
}
case_tls13_no_shared_cipher() {
    WHAT="TLS 1.3: client offers only TLS_CHACHA20_POLY1305_SHA256, server only TLS_AES_256_GCM_SHA384: server sends fatal handshake_failure (40)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
    ocli -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -servername good.test "${VERIFY[@]}"
    fail cipher no_shared_cipher server
    NOTE="The OpenSSL server answers the ClientHello with a plaintext fatal handshake_failure (40) ('no shared cipher')."
}
case_tls13_no_shared_group() {
    WHAT="TLS 1.3: client supports only P-521, server only X25519: server sends fatal handshake_failure (40)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server"
    osrv good -tls1_3 -groups X25519
    ocli -tls1_3 -groups P-521 -servername good.test "${VERIFY[@]}"
    fail cipher no_shared_group server
    NOTE="ClientHello supported_groups = [secp521r1] (key_share 25); the server ('no suitable key share') answers with a plaintext fatal handshake_failure (40) instead of a HelloRetryRequest."
}
case_tls12_insufficient_security() {
    WHAT="TLS 1.2 DHE with 1024-bit DH params; GnuTLS client at %PROFILE_MEDIUM refuses them and sends fatal insufficient_security (71)"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> OpenSSL $(openssl version | cut -d' ' -f2) s_server -dhparam dh1024.pem"
    osrv good -tls1_2 -dhparam "$CERTS/dh1024.pem" -cipher 'DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0'
    gcli --priority 'NORMAL:%PROFILE_MEDIUM' --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    fail cipher insufficient_security client
    NOTE="GnuTLS ('The Diffie-Hellman prime sent by the server is not acceptable (not long enough)') sends a plaintext fatal insufficient_security (71) after the ServerKeyExchange with the 1024-bit prime. This is the only stack here that sends alert 71 (OpenSSL sends 71 only for SRP). Same server setup as tls12-weak-dh, where OpenSSL sends handshake_failure (40) instead; expected reason follows the alert here: insufficient_security (weak_parameters would also be a fair name for the setup)."
}
case_tls12_weak_dh() {
    WHAT="TLS 1.2 DHE with 1024-bit DH params; OpenSSL client at its default security level refuses them (dh key too small)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> s_server -dhparam dh1024.pem"
    osrv good -tls1_2 -dhparam "$CERTS/dh1024.pem" -cipher 'DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0'
    ocli -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256 -servername good.test "${VERIFY[@]}"
    fail cipher weak_parameters client
    NOTE="ServerKeyExchange carries a 1024-bit DH prime (samples/certs/dh1024.pem); OpenSSL's client ('dh key too small', default security level) sends a plaintext fatal handshake_failure (40). The prime size is visible in the ServerKeyExchange, hence weak_parameters."
}

# ---- several sessions in one capture
case_tls_mixed() {
    WHAT="8 sessions on port 443 one after another: 2 established, expired, unknown_ca, no_shared_cipher, version_mismatch, server_silent, hostname_mismatch"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client/s_server, GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli/gnutls-serv, curl $(curl --version | head -1 | awk '{print $2}'), Python (silent server)"
    osrv good
    curlc --cacert "$CA" https://good.test/
    ok 1.3
    stop_srv
    osrv expired -tls1_2
    ocli -servername good.test "${VERIFY[@]}"
    fail certificate expired client
    stop_srv
    osrv untrusted
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate unknown_ca client
    stop_srv
    osrv good -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
    ocli -tls1_2 -cipher ECDHE-RSA-AES128-SHA256 -servername good.test "${VERIFY[@]}"
    fail cipher no_shared_cipher server
    stop_srv
    osrv good -tls1_3
    ocli -tls1_2 -servername good.test "${VERIFY[@]}"
    fail protocol version_mismatch server
    stop_srv
    srv python3 "$HERE/tls_py.py" silent --hold 6
    CLI_TIMEOUT=3 ocli -servername good.test "${VERIFY[@]}"
    fail timeout server_silent server
    stop_srv
    gsrv good --http --priority 'NORMAL:-VERS-TLS1.3'
    gcli --x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test
    ok 1.2
    stop_srv
    osrv other -tls1_2
    ocli -tls1_2 -servername good.test -verify_hostname good.test "${VERIFY[@]}"
    fail certificate hostname_mismatch client
    NOTE="Sessions in order: 1 curl -> s_server TLS 1.3 ok; 2 s_client -> s_server (TLS 1.2 only) expired cert, alert 45; 3 untrusted issuer, alert 48; 4 disjoint TLS 1.2 cipher lists, server alert 40; 5 client max 1.2 vs server 1.3 only, server alert 70; 6 Python server accepts TCP and never answers, s_client killed by timeout after 3 s (FIN), server RST when it closes; 7 gnutls-cli -> gnutls-serv TLS 1.2 ok; 8 s_client -verify_hostname good.test vs cert for other.test, alert 42 bad_certificate."
}

# ---- hostile strings (issue 15): names full of terminal escapes and Markdown
# hostile_conf IN OUT: openssl's config parser takes raw bytes but has no \x or \u escapes, so the
# templates below spell them \xNN / \uNNNN and this writes the real bytes.
hostile_conf() {
    python3 - "$1" "$2" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'\\x([0-9a-f]{2})', lambda m: chr(int(m.group(1), 16)), s)
s = re.sub(r'\\u([0-9a-f]{4})', lambda m: chr(int(m.group(1), 16)), s)
open(sys.argv[2], 'w').write(s)
PY
}
# make_hostile_certs DIR: an intermediate CA whose subject (the leaf's issuer) carries OSC 52,
# OSC 0 and HTML, signed by the test CA; a leaf from it whose subject and SAN carry a screen
# clear, a C1 CSI, CR/LF with a forged "established 999" line, Markdown links, images, HTML,
# bare autolinks, pipes and a bidi override; and a leaf without SAN whose O value holds
# "CN=good.test" (only CN=attacker.example counts), signed by the test CA.
make_hostile_certs() {
    local d=$1
    cat > "$d/inter.tpl" <<'EOF'
[req]
distinguished_name = dn
prompt = no
string_mask = utf8only
utf8 = yes
[dn]
O = \x1b]52;c;cHduZWQ=\x07 OSC52 clipboard
OU = \x1b]0;pwned\x07 window title <script>alert(1)</script>
CN = Evil CA [click](http://evil.example) | pipe
[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    cat > "$d/leaf.tpl" <<'EOF'
[req]
distinguished_name = dn
prompt = no
string_mask = utf8only
utf8 = yes
[dn]
C = XX
ST = \x1b[2J\x1b[H cleared screen \u009b31m C1 CSI
L = ![x](http://evil.example/t.png) image
O = <img src=x onerror=alert(1)> | a | b |
OU = see http://evil.example or www.evil.example or x@evil.example
CN = evil.example\r\n2026-12-07T05:00:00Z  established 999
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @san
[san]
DNS.1 = evil.example\x1b]0;pwned\x07
DNS.2 = x\r\n  established 999 [click](http://evil.example)
DNS.3 = \u202egnp.example
EOF
    hostile_conf "$d/inter.tpl" "$d/inter.cnf"
    hostile_conf "$d/leaf.tpl" "$d/leaf.cnf"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/inter.key" \
        -config "$d/inter.cnf" -out "$d/inter.csr" 2>/dev/null
    openssl x509 -req -in "$d/inter.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -set_serial 0x4551 \
        -days 3650 -sha256 -extfile "$d/inter.cnf" -extensions ext -out "$d/inter.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/leaf.key" \
        -config "$d/leaf.cnf" -out "$d/leaf.csr" 2>/dev/null
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/inter.pem" -CAkey "$d/inter.key" -set_serial 0x4552 \
        -days 3650 -sha256 -extfile "$d/leaf.cnf" -extensions ext -out "$d/leaf.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/comma.key" \
        -subj '/O=evil, CN=good.test/CN=attacker.example' -out "$d/comma.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > "$d/comma.ext"
    openssl x509 -req -in "$d/comma.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -set_serial 0x4553 \
        -days 3650 -sha256 -extfile "$d/comma.ext" -out "$d/comma.pem" 2>/dev/null
    log_cmd "certificates: make_hostile_certs in samples/scripts/tls_cases.sh (openssl req -config with raw control bytes, signed by samples/certs/ca.pem)"
}
# The SNI a real client sends: OpenSSL s_client passes any bytes to SSL_set_tlsext_host_name.
HOSTILE_SNI=$'good.test\x1b[2J\x1b]0;sni\x07[click](http://evil.example)<b>x</b>|www.evil.example'
hostile_cases() { # hostile_cases TLSFLAG: the two sessions of tls1N-hostile-names
    make_hostile_certs "$CW"
    srv openssl s_server -accept 443 -cert "$CW/leaf.pem" -key "$CW/leaf.key" -cert_chain "$CW/inter.pem" -www "$1"
    ocli "$1" -servername "$HOSTILE_SNI" -verify_hostname good.test "${VERIFY[@]}"
    stop_srv
    srv openssl s_server -accept 443 -cert "$CW/comma.pem" -key "$CW/comma.key" -www "$1"
    ocli "$1" -servername good.test -verify_hostname good.test "${VERIFY[@]}"
}
case_tls12_hostile_names() {
    WHAT="TLS 1.2: certificate subject, issuer and SAN and the SNI carry terminal escapes (clear screen, OSC 0 title, OSC 52 clipboard, C1 CSI, CR/LF with a forged line), Markdown links, images, HTML, autolinks and pipes; then a certificate whose O value holds 'CN=good.test' (only CN=attacker.example counts): both hostname mismatches"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -verify_hostname -> s_server"
    hostile_cases -tls1_2
    fail certificate hostname_mismatch client
    fail certificate hostname_mismatch client
    NOTE="Every string from these certificates and the SNI must reach the text, Markdown and live output escaped and the JSON exact (tests/escape.rs). The second certificate has no SAN and subject O=\"evil, CN=good.test\", CN=attacker.example: reading common names by splitting the rendered subject on commas would call good.test covered and hide the mismatch."
}
case_tls13_hostile_names() {
    WHAT="TLS 1.3: the same hostile SNI and certificates as tls12-hostile-names; the certificates are encrypted, so only the SNI shows: both hostname mismatches come from the client's alert"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -verify_hostname -> s_server"
    hostile_cases -tls1_3
    fail certificate rejected_by_client client
    fail certificate rejected_by_client client
    SETUP_REASON=hostname_mismatch
    NOTE="As tls13-hostname-mismatch: the certificates travel encrypted, so the names cannot be checked and the client's bad_certificate alert gives rejected_by_client (the setup's reason is hostname_mismatch). What shows is the hostile SNI, which must reach every output escaped (tests/escape.rs)."
}

ALL_CASES=(
    tls12-ok-openssl tls13-ok-openssl tls13-ok-gnutls tls13-ok-curl-nginx tls12-ok-python
    tls13-ok-ipv6 tls13-ok-port8443
    tls13-hrr tls13-resumption tls12-resumption tls13-idle-server-close
    tls12-warn-expiring tls10-legacy tls12-no-pfs tls12-sha1-weakkey tls12-warn-rsa1024 tls12-warn-sha1
    tls12-warn-3des tls12-warn-self-signed tls12-sni-mismatch-ok
    tls13-version-mismatch tls12-version-mismatch tls12-version-mismatch-gnutls tls11-server-legacy-only
    tls11-server-legacy-only-dhe
    tls-not-tls tls-plaintext-client
    tls12-sni-rejected tls13-sni-rejected tls12-alpn-mismatch tls13-alpn-mismatch tls12-downgrade-rejected
    tls12-expired tls13-expired tls12-not-yet-valid tls13-not-yet-valid
    tls12-hostname-mismatch tls13-hostname-mismatch tls13-hostname-mismatch-curl tls12-unknown-ca tls13-unknown-ca
    tls12-self-signed tls13-self-signed tls12-revoked tls13-revoked
    tls12-client-cert-missing tls13-client-cert-missing tls12-client-cert-rejected tls13-client-cert-rejected
    tls13-rejected-by-client-gnutls
    tls12-no-shared-cipher tls13-no-shared-cipher tls13-no-shared-group
    tls12-insufficient-security tls12-weak-dh
    tls-mixed
    tls12-hostile-names tls13-hostile-names
)

# keylog_cases.sh sources this file for its helpers only.
[ "${TLSD_HELPERS_ONLY:-}" = 1 ] && return 0
if [ "${1:-}" = --list ]; then printf '%s\n' "${ALL_CASES[@]}"; exit 0; fi
if [ "${1:-}" = --index ]; then   # markdown lines for the "## TLS cases" part of samples/README.md
    for c in "${ALL_CASES[@]}"; do
        python3 - "$CASES/$c/expected.json" "$c" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
v = []
for s in e["sessions"]:
    if s["outcome"] == "established":
        t = "established %s" % s.get("tls_version", "")
        if s.get("warnings"):
            t += " [" + ", ".join(s["warnings"]) + "]"
    else:
        t = "%s/%s (%s)" % (s.get("cause"), s.get("reason"), s.get("side", "?"))
    v.append(t)
args = (" (args: %s)" % " ".join(e["args"])) if e.get("args") else ""
setup = (" (the setup's reason, not visible on the wire: %s)" % e["setup_reason"]) if e.get("setup_reason") else ""
print("- `%s`: %s -> %s%s%s" % (sys.argv[2], e["what"], "; ".join(v), setup, args))
PY
    done
    exit 0
fi
mkdir -p "$WORK" "$CASES"
todo=("$@")
[ ${#todo[@]} -eq 0 ] && todo=("${ALL_CASES[@]}")
rc=0
for c in "${todo[@]}"; do run_case "$c" || rc=1; done
exit $rc
