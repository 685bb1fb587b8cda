#!/bin/bash
# keylog_stacks.sh - keyed TLS failures across TLS stacks: clients {curl, python ssl, gnutls-cli,
# openssl s_client, headless Chromium, Node.js} x servers {nginx, gnutls-serv, python ssl,
# openssl s_server, Node.js}, each client writing its own NSS key log (SSLKEYLOGFILE for
# curl/GnuTLS/python, -keylogfile for s_client, --ssl-key-log-file for Chromium, the 'keylog'
# event for Node.js: samples/scripts/tls_node.js).
#
# Go (crypto/tls client and server, samples/scripts/tls_go.go): samples/scripts/keylog_stacks_go.sh (sourced).
# NSS (tstclnt, selfserv): samples/scripts/keylog_stacks_nss.sh (sourced), whose key logs come from
# the peer (Debian's NSS writes none).
#
# Usage (as root):  samples/scripts/keylog_stacks.sh [--out DIR] [--list | --matrix | --matrix-new | --matrix-nss | --matrix-go] [case ...]
#   no case = the committed cases (--list);  --matrix = every combination of the matrix (to check
#   the verdicts across stacks; with --out DIR they land in DIR instead of samples/cases);
#   --matrix-new = only its Chromium and Node.js combinations; --matrix-nss = only the NSS ones;
#   --matrix-go = only the Go (crypto/tls, samples/scripts/tls_go.go) ones.
#
# A case name is keylog-<client>-<server>-<scenario>-<tls12|tls13>, e.g. keylog-curl-nginx-expired-tls13.
#   clients: curl py gnutls ossl chrome node nss go    servers: nginx gnutls py ossl node nss go
#   scenarios: ok h2 resume expired hostname selfsigned unknownca notyet ccok appdenied ccmissing ccmissingh2 ccrejected
#              nocipher nogroup version sha1 cnonly ipok iphostname ipunknownca alpn
# Runs in the network namespace "km-stacks" (or $TLSD_NS; created here, only lo, deleted at the
# end), servers on 127.0.0.1:443, tcpdump on lo. Uses the helpers of tls_cases.sh (sourced).
# Each case writes <out>/<case>/{<case>.pcap,keys.txt,expected.json,README.md};
# logs in samples/work/keylog-stacks/<case>/ (git-ignored).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
NS=${TLSD_NS:-km-stacks}
source "$HERE/in_netns.sh"
run_in_netns "$0" "$@"
TLSD_HELPERS_ONLY=1 source "$HERE/tls_cases.sh"
source "$HERE/keylog_stacks_nss.sh"
source "$HERE/keylog_stacks_go.sh"
WORK="$SAMPLES/work/keylog-stacks"
if [ "${1:-}" = --out ]; then CASES=$(mkdir -p "$2" && cd "$2" && pwd); shift 2; fi

KEYS_C() { echo "$CW/client-keys.log"; }
V_GNUTLS=$(gnutls-cli --version | head -1 | awk '{print $2}')
V_OSSL=$(openssl version | cut -d' ' -f2)
V_CURL=$(curl --version | head -1 | awk '{print $2}')
V_PY=$(python3 -c 'import sys; print(sys.version.split()[0])')
V_NGINX=$(nginx -v 2>&1 | sed 's/.*nginx\///')
V_CHROME=$(chromium --version 2>/dev/null | awk '/Chromium/ {print $2}')
V_NODE=$(node --version 2>/dev/null)
V_NODE_OSSL=$(node -p process.versions.openssl 2>/dev/null)

# ---------------------------------------------------------------- servers
# s_<server> CERT VER MODE: MODE = plain | ccreq (require a client certificate from the Test CA)
#   | nocipher | nogroup | only12 | only13 (the server's side of a cipher/group/version mismatch)
s_nginx() { # nginx (nginx_start of tls_cases.sh) with HTTP/2 on its TLS listener
    local cert=$1 mode=$3 x='' protos='TLSv1.2 TLSv1.3' answer='200 "hello from nginx\n"'
    case $mode in
        ccreq) x="ssl_verify_client on; ssl_client_certificate $CA;" ;;
        # A client certificate asked for but optional, and the application refusing the request.
        ccopt403) x="ssl_verify_client optional; ssl_client_certificate $CA;"; answer='403 "forbidden by the application\n"' ;;
        nocipher) x='ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384; ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;' ;;
        nogroup) x='ssl_ecdh_curve secp384r1;' ;;
        only12) protos='TLSv1.2' ;;
        only13) protos='TLSv1.3' ;;
    esac
    NGINX_PROTOS=$protos NGINX_LISTEN=http2 NGINX_ANSWER=$answer nginx_start ssl "$cert" "$x"
}
s_gnutls() {
    local cert=$1 mode=$3 p='NORMAL'
    local a=(--http)
    case $mode in
        ccreq) a+=(--require-client-cert --verify-client-cert --x509cafile "$CA") ;;
        nocipher) p='NORMAL:-CIPHER-ALL:+AES-256-GCM' ;;
        nogroup) p='NORMAL:-GROUP-ALL:+GROUP-SECP384R1' ;;
        only12) p='NORMAL:-VERS-ALL:+VERS-TLS1.2' ;;
        only13) p='NORMAL:-VERS-ALL:+VERS-TLS1.3' ;;
    esac
    gsrv "$cert" "${a[@]}" --priority "$p"
}
s_py() {
    local cert=$1 mode=$3
    local a=(--cert "$CERTS/$cert.pem" --key "$CERTS/$cert.key" --count "${COUNT:-1}")
    case $mode in
        ccreq) a+=(--require-cert --cafile "$CA") ;;
        nocipher) a+=(--max 1.2 --ciphers ECDHE-RSA-AES256-GCM-SHA384) ;;
        only12) a+=(--max 1.2) ;;
        only13) a+=(--min 1.3) ;;
    esac
    pysrv "${a[@]}"
}
s_ossl() {
    local cert=$1 mode=$3 a=()
    case $mode in
        ccreq) a=(-Verify 1 -verify_return_error -CAfile "$CA") ;;
        nocipher) a=(-cipher ECDHE-RSA-AES256-GCM-SHA384 -ciphersuites TLS_AES_256_GCM_SHA384) ;;
        nogroup) a=(-groups P-384) ;;
        only12) a=(-tls1_2) ;;
        only13) a=(-tls1_3) ;;
    esac
    osrv "$cert" "${a[@]}"
}
s_node() {
    local cert=$1 mode=$3
    local a=(--cert "$CERTS/$cert.pem" --key "$CERTS/$cert.key" --count "${COUNT:-1}")
    case $mode in
        ccreq) a+=(--require-cert --cafile "$CA") ;;
        only12) a+=(--max 1.2) ;;
        only13) a+=(--min 1.3) ;;
    esac
    srv env SSLKEYLOGFILE="$CW/keys.log" node "$HERE/tls_node.js" server "${a[@]}"
}

# ---------------------------------------------------------------- clients
# c_<client> VER MODE: MODE = plain | badcert (the Other CA's client certificate) | nocipher | nogroup
#   | resume (a second connection resuming the first one's session) | h2
c_curl() {
    local v=$1 mode=$2 a=(--cacert "$CA")
    if [ "$v" = 13 ]; then a+=(--tlsv1.3); else a+=(--tlsv1.2 --tls-max 1.2); fi
    case $mode in
        badcert) a+=(--cert "$CERTS/badclient.pem" --key "$CERTS/badclient.key") ;;
        goodcert) a+=(--cert "$CERTS/client.pem" --key "$CERTS/client.key" --http1.1) ;;
        nocipher) a+=(--ciphers ECDHE-RSA-CHACHA20-POLY1305 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256) ;;
        nogroup) a+=(--curves X25519) ;;
        h2) a+=(--http2) ;;
        resume) a+=(--http1.1 -H 'Connection: close' https://good.test/) ;;
        *) a+=(--http1.1) ;;
    esac
    cli env SSLKEYLOGFILE="$(KEYS_C)" curl -sS -o /dev/null -w 'HTTP %{http_code} %{http_version}\n' \
        --resolve good.test:443:127.0.0.1 "${a[@]}" https://good.test/
}
c_py() {
    local v=$1 mode=$2 a=(--cafile "$CA")
    if [ "$v" = 13 ]; then a+=(--min 1.3); else a+=(--max 1.2); fi
    case $mode in
        badcert) a+=(--cert "$CERTS/badclient.pem" --key "$CERTS/badclient.key") ;;
        goodcert) a+=(--cert "$CERTS/client.pem" --key "$CERTS/client.key") ;;
        nocipher) a+=(--ciphers ECDHE-RSA-CHACHA20-POLY1305) ;;
    esac
    cli env SSLKEYLOGFILE="$(KEYS_C)" python3 "$HERE/tls_py.py" client "${a[@]}"
}
c_gnutls() {
    local v=$1 mode=$2 p='NORMAL' a=(--x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test)
    if [ "$v" = 13 ]; then p+=':-VERS-ALL:+VERS-TLS1.3'; else p+=':-VERS-ALL:+VERS-TLS1.2'; fi
    case $mode in
        badcert) a+=(--x509certfile "$CERTS/badclient.pem" --x509keyfile "$CERTS/badclient.key") ;;
        goodcert) a+=(--x509certfile "$CERTS/client.pem" --x509keyfile "$CERTS/client.key") ;;
        nocipher) p+=':-CIPHER-ALL:+CHACHA20-POLY1305' ;;
        nogroup) p+=':-GROUP-ALL:+GROUP-X25519' ;;
        resume) a+=(--resume) ;;
    esac
    HOLD=1 cli_get env SSLKEYLOGFILE="$(KEYS_C)" gnutls-cli -p 443 "${a[@]}" --priority "$p" 127.0.0.1
}
c_ossl() {
    local v=$1 mode=$2 a=(-servername good.test -verify_hostname good.test -CAfile "$CA" -verify_return_error)
    if [ "$v" = 13 ]; then a+=(-tls1_3); else a+=(-tls1_2); fi
    case $mode in
        badcert) a+=(-cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key") ;;
        goodcert) a+=(-cert "$CERTS/client.pem" -key "$CERTS/client.key") ;;
        nocipher) a+=(-cipher ECDHE-RSA-CHACHA20-POLY1305 -ciphersuites TLS_CHACHA20_POLY1305_SHA256) ;;
        nogroup) a+=(-groups X25519) ;;
        alpnx) a+=(-alpn spdy/3.1) ;;
    esac
    if [ "$mode" = resume ]; then
        HOLD=1 cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof -keylogfile "$(KEYS_C)" "${a[@]}" -sess_out "$CW/sess.pem"
        a+=(-sess_in "$CW/sess.pem")
    fi
    HOLD=${HOLD:-1} cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof -keylogfile "$(KEYS_C)" "${a[@]}"
}

c_node() {
    local v=$1 mode=$2 a=(--cafile "$CA")
    if [ "$v" = 13 ]; then a+=(--min 1.3); else a+=(--max 1.2); fi
    case $mode in
        badcert) a+=(--cert "$CERTS/badclient.pem" --key "$CERTS/badclient.key") ;;
        goodcert) a+=(--cert "$CERTS/client.pem" --key "$CERTS/client.key") ;;
    esac
    cli env SSLKEYLOGFILE="$(KEYS_C)" node "$HERE/tls_node.js" client "${a[@]}"
}
# Headless Chromium loading https://good.test/ (mapped to 127.0.0.1), trusting the Test CA
# through the NSS database of a fresh HOME; a fresh profile per run, both deleted after it.
# Chromium has no client certificate to give; it opens more than one connection per load.
c_chrome() {
    local v=$1 a=() h="$CW/chrome-home" u="$CW/chrome-profile"
    if [ "$v" = 13 ]; then a+=(--ssl-version-min=tls1.3); else a+=(--ssl-version-max=tls1.2); fi
    rm -rf "$h" "$u"; mkdir -p "$h/.pki/nssdb" "$u"
    certutil -d "sql:$h/.pki/nssdb" -N --empty-password || return 1
    certutil -d "sql:$h/.pki/nssdb" -A -t C,, -n "tlsdiag Test CA" -i "$CA" || return 1
    log_cmd "client: certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n 'tlsdiag Test CA' -i samples/certs/ca.pem"
    CLI_TIMEOUT=30 cli env HOME="$h" chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$u" \
        --host-resolver-rules="MAP good.test 127.0.0.1, MAP * ~NOTFOUND" --ssl-key-log-file="$(KEYS_C)" \
        "${a[@]}" --dump-dom https://good.test/
    rm -rf "$h" "$u"
}

stack_name() {
    [ "$1" = go ] && { echo "Go $V_GO crypto/tls (samples/scripts/tls_go.go)"; return; }
    case $1 in
        curl) echo "curl $V_CURL (OpenSSL $V_OSSL)" ;;
        py) echo "Python $V_PY ssl (OpenSSL)" ;;
        gnutls) echo "GnuTLS $V_GNUTLS gnutls-" ;;
        ossl) echo "OpenSSL $V_OSSL s_" ;;
        nginx) echo "nginx $V_NGINX (OpenSSL $V_OSSL)" ;;
        chrome) echo "Chromium $V_CHROME headless (BoringSSL)" ;;
        node) echo "Node.js $V_NODE tls (OpenSSL $V_NODE_OSSL)" ;;
        nss) echo "NSS $V_NSS" ;;
        wget) echo "wget $V_WGET (GnuTLS $V_GNUTLS)" ;;
    esac
}

# one case from its name: keylog-<client>-<server>-<scenario>-tls1[23]
run_combo() {
    local c s sc v V
    parse_case "$1" keylog || return 1
    local cs="$(stack_name "$c")" ss="$(stack_name "$s")"
    [ "$c" = gnutls ] && cs+=cli; [ "$c" = ossl ] && cs+=client
    [ "$s" = gnutls ] && ss+=serv; [ "$s" = ossl ] && ss+=server; [ "$s" = py ] && ss="Python $V_PY ssl server"
    [ "$s" = node ] && ss+=" server"
    [ "$c" = nss ] && cs+=" tstclnt"; [ "$s" = nss ] && ss+=" selfserv"
    [ "$s" = go ] && ss+=" server"
    STACK="$cs -> $ss"
    local -A nm=([curl]=curl [py]="Python ssl" [gnutls]=gnutls-cli [ossl]="openssl s_client" [chrome]="headless Chromium" [node]="Node.js tls" [nss]="NSS tstclnt" [wget]=wget)
    local -A sn=([nginx]=nginx [py]="a Python ssl server" [gnutls]=gnutls-serv [ossl]="openssl s_server" [node]="a Node.js tls server" [nss]="NSS selfserv")
    nm[go]="Go crypto/tls"; sn[go]="a Go crypto/tls server"
    local cert=good smode=plain cmode=plain who="TLS $V with the client's key log: ${nm[$c]} -> ${sn[$s]}"
    case $sc in
        ok) WHAT="$who, handshake completes, HTTP GET answered"; ok "$V" confidence='"high"' ;;
        h2) WHAT="$who, ALPN h2, HTTP/2 request answered"; cmode=h2; ok "$V" confidence='"high"' ;;
        resume) WHAT="$who, a full handshake then a second connection resuming its session"; cmode=resume; COUNT=2
                ok "$V" confidence='"high"'; ok "$V" confidence='"high"' ;;
        expired) WHAT="$who, the server's certificate expired on 2024-06-30, the client rejects it"; cert=expired
                 fail certificate expired client confidence='"high"' ;;
        hostname) WHAT="$who, the client asks for good.test, the certificate is for other.test"; cert=other
                  fail certificate hostname_mismatch client confidence='"high"' ;;
        selfsigned) WHAT="$who, a self-signed server certificate, rejected by the client"; cert=selfsigned
                    fail certificate self_signed client confidence='"high"' ;;
        unknownca) WHAT="$who, a server certificate from a CA the client does not trust"; cert=untrusted
                   fail certificate unknown_ca client confidence='"high"' ;;
        notyet) WHAT="$who, the server's certificate is valid only from 2030, the client rejects it"; cert=notyet
                fail certificate not_yet_valid client confidence='"high"' ;;
        sha1) WHAT="$who, the server's certificate is signed with SHA-1 (sha1WithRSAEncryption), the client refuses it"; cert=sha1
              fail certificate bad_certificate client confidence='"high"' ;;
        cnonly) WHAT="$who, the server's certificate names good.test only in its subject CN (no subjectAltName), the client finds no name in it"; cert=cnonly
                fail certificate hostname_mismatch client confidence='"medium"' ;;
        ipok) WHAT="$who, the client connects to 127.0.0.1 by address (no SNI), the certificate covers it"; cmode=byip; ok "$V" confidence='"high"' ;;
        iphostname) WHAT="$who, the client connects to 127.0.0.1 by address (no SNI), the certificate is for other.test only"
                    cert=other; cmode=byip; fail certificate hostname_mismatch client confidence='"medium"' ;;
        ipunknownca) WHAT="$who, the client connects to 127.0.0.1 by address (no SNI), the certificate covers it but is from a CA the client does not trust"
                     cert=untrusted; cmode=byip; fail certificate unknown_ca client confidence='"medium"' ;;
        alpn) WHAT="$who, the server speaks only h2 (ALPN), the client offers only spdy/3.1"; smode=alpnh2; cmode=alpnx
              fail protocol alpn_mismatch server confidence='"high"' ;;
        ccmissing) WHAT="$who, the server requires a client certificate, the client has none"; smode=ccreq
                   fail certificate client_certificate_missing server confidence='"high"' ;;
        ccmissingh2) WHAT="$who, ALPN h2, the server requires a client certificate, the client has none"
                     smode=ccreq; cmode=h2
                     fail certificate client_certificate_missing server confidence='"high"' ;;
        appdenied) WHAT="$who, the server asks for an optional client certificate, the client has none, the application answers HTTP 403"
                   smode=ccopt403; ok "$V" confidence='"high"' ;;
        ccok) WHAT="$who, the server requires a client certificate, the client presents a trusted one"
              smode=ccreq; cmode=goodcert; ok "$V" confidence='"high"' ;;
        ccrejected) WHAT="$who, the server requires a client certificate, the client's is from an untrusted CA"
                    smode=ccreq; cmode=badcert
                    fail certificate client_certificate_rejected server confidence='"high"' ;;
        nocipher) WHAT="$who, the client offers only ChaCha20-Poly1305, the server only AES-256-GCM"
                  smode=nocipher; cmode=nocipher; fail cipher no_shared_cipher server confidence='"high"' ;;
        nogroup) WHAT="$who, the client offers only X25519, the server only P-384"
                 smode=nogroup; cmode=nogroup; fail cipher no_shared_group server confidence='"high"' ;;
        version) WHAT="$who, the client speaks only TLS $V, the server only the other version"
                 if [ "$v" = 13 ]; then smode=only12; else smode=only13; fi
                 fail protocol version_mismatch server confidence='"high"' ;;
        *) echo "unknown scenario $sc" >&2; return 1 ;;
    esac
    # nginx asks for the client's certificate but lets the handshake complete whatever it gets,
    # and answers the request with HTTP 400 and a page that names the problem, read with the
    # keys from its first response ("No required SSL certificate was sent", "The SSL
    # certificate error").
    if [ "$s" = nginx ] && [ "$smode" = ccreq ] && [ "$sc" != ccok ]; then
        WHAT+=" (nginx completes the handshake and answers HTTP 400)"
    fi
    # curl (OpenSSL) checks the name only after the handshake, then sends close_notify.
    if [ "$c" = curl ] && [ "$sc" = hostname ]; then
        WHAT+=" (curl checks the name after the handshake and closes with close_notify, no request)"
    fi
    # Node.js checks the server's certificate after its handshake and destroys the socket: no alert.
    if [ "$c" = node ]; then
        case $sc in expired|hostname|selfsigned|unknownca|notyet)
            WHAT+=" (Node.js checks the certificate after its handshake and closes without an alert)" ;; esac
    fi
    [ "$s" = node ] && [ "$sc" = ccrejected ] && WHAT+=" (the Node.js server closes without an alert)"
    if [ "$c" = chrome ]; then
        case $sc in
            ok) WHAT+=" (Chromium opens a spare connection too)" ;;
            ccmissing) WHAT+=" (Chromium first closes each connection at the CertificateRequest to ask its user for a certificate, then connects again and sends none)" ;;
            *) WHAT+=" (Chromium sends certificate_unknown and tries more than once)" ;;
        esac
    fi
    # GnuTLS says bad_certificate for an untrusted issuer: unknown_ca is read off a clean chain.
    if [ "$c" = gnutls ] && [ "$sc" = unknownca ]; then SESS=(); fail certificate unknown_ca client confidence='"medium"'; fi
    # Refusals in the clear (no key is ever logged): the server's handshake_failure names no cause.
    # (OpenSSL servers answer a version they do not speak with protocol_version: high.)
    case $sc-$s in nocipher-*|nogroup-*|version-gnutls) SESS=("${SESS[0]/"high"/"medium"}") ;; esac
    # A clean chain refused with certificate_unknown (BoringSSL) or a bare close (Node.js): the
    # issuer is read off the chain (medium), as for GnuTLS's bad_certificate. So is a lone
    # self-signed certificate refused by a bare close (some clients trust one on purpose).
    case $c-$sc in
        chrome-unknownca|node-unknownca|node-selfsigned) SESS=("${SESS[0]/"high"/"medium"}") ;;
    esac
    # Node.js TLS 1.2 checks the certificate after a completed handshake and closes without a
    # byte: a health check or a spare connection leaves the same way, so the session stays
    # established (its warnings name what is wrong with the certificate).
    case $c-$v-$sc in
        node-12-unknownca) SESS=(); ok "$V" confidence='"high"' ;;
        node-12-expired) SESS=(); ok "$V" cert_expired confidence='"high"' ;;
        node-12-notyet) SESS=(); ok "$V" cert_not_yet_valid confidence='"high"' ;;
        node-12-hostname) SESS=(); ok "$V" sni_not_in_certificate confidence='"high"' ;;
    esac
    # A Node.js server refuses a client certificate by closing, without an alert: medium.
    [ "$s-$sc" = node-ccrejected ] && SESS=("${SESS[0]/"high"/"medium"}")
    if [ "$c" = chrome ]; then
        SESS_EACH=1; COUNT=4
        # Asked for a client certificate, Chromium closes to ask its user for one, then
        # connects again and sends an empty Certificate.
        [ "$sc" = ccmissing ] && SESS_NOCERT='{"outcome": "failed", "cause": "protocol", "reason": "closed_during_handshake", "side": "client", "confidence": "high"}'
    fi
    nss_notes "$c" "$s" "$sc" "$v"
    go_notes "$c" "$s" "$sc" "$v"
    [ "$c" = nss ] && nss_server_keys "$s"
    "s_$s" "$cert" "$v" "$smode" || { unset SSLKEYLOGFILE; return 1; }
    unset SSLKEYLOGFILE
    "c_$c" "$v" "$cmode"
}

k_readme() {
    {
        echo "# $NAME"
        echo
        echo "$WHAT."
        echo
        echo "Made by \`samples/scripts/keylog_stacks.sh $NAME\` on $(date -u +%Y-%m-%d) in netns $NS (loopback). Stack: $STACK."
        case $NAME in
            keylog-nss-*|keylog-*-nss-*) nss_keys_note "$NAME" ;;
            keylog-chrome-*) echo "keys.txt is the client's own key log (Chromium's --ssl-key-log-file); the test passes it with \`--keylog keys.txt\`." ;;
            keylog-go-*) echo "keys.txt is the client's own key log (tls.Config.KeyLogWriter of Go, samples/scripts/tls_go.go); the test passes it with \`--keylog keys.txt\`." ;;
            keylog-node-*) echo "keys.txt is the client's own key log (the 'keylog' event of Node.js, samples/scripts/tls_node.js); the test passes it with \`--keylog keys.txt\`." ;;
            *) echo "keys.txt is the client's own key log (SSLKEYLOGFILE, or -keylogfile for s_client); the test passes it with \`--keylog keys.txt\`." ;;
        esac
        echo
        echo "Commands (\$WORK = samples/work/keylog-stacks/$NAME):"
        echo
        sed 's/^/    /' "$CW/cmds"
        echo
        local kl=() with=", decrypted with keys.txt"
        [ -f "$D/keys.txt" ] && kl=(--keylog "$D/keys.txt") || with=""
        echo "On the wire$with (samples/scripts/tls_summary.py):"
        echo
        python3 "$HERE/tls_summary.py" "${kl[@]}" "$1" | sed 's/^/    /'
    } > "$D/README.md"
}

k_run() {
    NAME=$1
    CW="$WORK/$NAME"; D="$CASES/$NAME"
    rm -rf "$CW" "$D"; mkdir -p "$CW" "$D"
    : > "$CW/cmds"
    WHAT=""; STACK=""; NOTE=""; SETUP_REASON=""; SESS=(); SRV_PID=""; SRV_PORT=443; COUNT=1; SESS_EACH=0; SESS_NOCERT=""
    ARGS='["--keylog", "keys.txt"]'
    local pcap="$D/$NAME.pcap" rc=0
    echo "== $NAME"
    cap_start "$pcap"
    run_combo "$NAME" || rc=1
    end_case
    # Chromium opens as many connections as it sees fit (a spare one, a retry after an error):
    # each connection with a ClientHello gets the scenario's one verdict.
    # With SESS_NOCERT set, a connection the client closed without answering the server's
    # CertificateRequest (no client Certificate, read with the keys) gets that verdict instead.
    if [ "${SESS_EACH:-0}" = 1 ]; then
        local st one=${SESS[0]} cc
        cc=" $(tshark -r "$pcap" -o "tls.keylog_file:$(KEYS_C)" -Y 'tls.handshake.type == 11 && tcp.dstport == 443' \
                 -T fields -e tcp.stream 2>/dev/null | sort -u | tr '\n' ' ')"
        SESS=()
        for st in $(tshark -r "$pcap" -Y 'tls.handshake.type == 1' -T fields -e tcp.stream 2>/dev/null | sort -nu); do
            if [ -n "${SESS_NOCERT:-}" ] && [[ "$cc" != *" $st "* ]]; then SESS+=("$SESS_NOCERT"); else SESS+=("$one"); fi
        done
    fi
    # A TLS 1.2 client that gives up before its ClientKeyExchange has no master secret to log:
    # keys.txt is then empty, as the client left it (the verdict must not change).
    cp "$(KEYS_C)" "$D/keys.txt" 2>/dev/null || : > "$D/keys.txt"
    nss_after_capture "$pcap"
    write_expected
    k_readme "$pcap"
    return $rc
}

# The cases committed under samples/cases (the most distinct stacks and failures).
CASES_KEPT=(
    keylog-curl-gnutls-hostname-tls13 keylog-curl-gnutls-hostname-tls12
    keylog-gnutls-nginx-unknownca-tls13 keylog-gnutls-nginx-unknownca-tls12
    keylog-curl-nginx-h2-tls13 keylog-curl-nginx-resume-tls13 keylog-curl-nginx-ccmissing-tls13
    keylog-curl-nginx-ccmissing-tls12 keylog-curl-nginx-ccmissingh2-tls13 keylog-curl-nginx-ccrejected-tls12 keylog-curl-nginx-ccok-tls13
    keylog-curl-nginx-appdenied-tls13
    keylog-py-py-ccmissing-tls13 keylog-gnutls-gnutls-ccmissing-tls13 keylog-curl-py-ccrejected-tls12
    keylog-py-nginx-notyet-tls13 keylog-gnutls-py-expired-tls13
    keylog-curl-nginx-nogroup-tls13 keylog-py-gnutls-version-tls12 keylog-py-gnutls-ccrejected-tls13
    keylog-chrome-ossl-unknownca-tls13 keylog-chrome-nginx-ccmissing-tls13 keylog-chrome-ossl-ccmissing-tls12
    keylog-chrome-nginx-ok-tls13 keylog-node-nginx-expired-tls13 keylog-node-nginx-unknownca-tls13
    keylog-node-gnutls-hostname-tls12 keylog-node-gnutls-notyet-tls13 keylog-curl-node-ccrejected-tls13
    keylog-py-node-ccrejected-tls12
)
CASES_KEPT+=("${NSS_KEPT[@]}")
CASES_KEPT+=("${GO_CASES_KEPT[@]}")
# Every combination checked across stacks (--matrix).
MATRIX=()
for v in tls13 tls12; do
    MATRIX+=(
        keylog-curl-nginx-h2-$v keylog-curl-nginx-resume-$v keylog-py-gnutls-ok-$v keylog-ossl-py-ok-$v
        keylog-gnutls-nginx-resume-$v keylog-ossl-gnutls-resume-$v
        keylog-curl-nginx-expired-$v keylog-gnutls-py-expired-$v keylog-py-gnutls-expired-$v
        keylog-py-nginx-hostname-$v keylog-curl-gnutls-hostname-$v
        keylog-ossl-nginx-selfsigned-$v keylog-curl-py-selfsigned-$v
        keylog-gnutls-nginx-unknownca-$v keylog-py-ossl-unknownca-$v
        keylog-curl-gnutls-notyet-$v keylog-py-nginx-notyet-$v
        keylog-curl-nginx-ccok-$v keylog-py-ossl-ccok-$v keylog-gnutls-gnutls-ccok-$v keylog-curl-nginx-appdenied-$v
        keylog-curl-nginx-ccmissing-$v keylog-curl-nginx-ccmissingh2-$v keylog-gnutls-gnutls-ccmissing-$v keylog-py-py-ccmissing-$v keylog-curl-ossl-ccmissing-$v
        keylog-gnutls-ossl-ccrejected-$v keylog-py-gnutls-ccrejected-$v keylog-curl-py-ccrejected-$v keylog-curl-nginx-ccrejected-$v
        keylog-curl-nginx-nocipher-$v keylog-gnutls-ossl-nocipher-$v
        keylog-curl-nginx-version-$v keylog-py-gnutls-version-$v
        keylog-ossl-gnutls-expired-$v keylog-ossl-py-hostname-$v keylog-curl-ossl-hostname-$v
        keylog-gnutls-ossl-hostname-$v keylog-ossl-gnutls-ccmissing-$v keylog-py-ossl-ccrejected-$v
        keylog-ossl-nginx-notyet-$v keylog-ossl-ossl-selfsigned-$v keylog-curl-ossl-resume-$v
    )
done
MATRIX+=(keylog-curl-nginx-nogroup-tls13 keylog-gnutls-ossl-nogroup-tls13)
# Chromium and Node.js (--matrix-new: these only).
MATRIX_NEW=()
for v in tls13 tls12; do
    for sc in ok expired hostname selfsigned unknownca notyet ccmissing; do
        MATRIX_NEW+=(keylog-chrome-nginx-$sc-$v keylog-chrome-ossl-$sc-$v)
    done
    for sc in ok expired hostname selfsigned unknownca notyet ccmissing ccrejected; do
        MATRIX_NEW+=(keylog-node-nginx-$sc-$v keylog-node-gnutls-$sc-$v keylog-curl-node-$sc-$v keylog-py-node-$sc-$v)
    done
done
MATRIX+=("${MATRIX_NEW[@]}" "${MATRIX_NSS[@]}")
MATRIX+=("${MATRIX_GO[@]}")

# The curl name check after the handshake, with its keys embedded (editcap --inject-secrets).
DSB_CASE=keylog-curl-hostname-dsb
derive_dsb() {
    local n=keylog-curl-gnutls-hostname-tls13 D="$CASES/$DSB_CASE"
    local src="$CASES/$n"
    rm -rf "$D"; mkdir -p "$D"
    editcap --inject-secrets "tls,$src/keys.txt" "$src/$n.pcap" "$D/$DSB_CASE.pcapng"
    sed -e 's/"what": "[^"]*"/"what": "The keylog-curl-gnutls-hostname-tls13 capture with its key log embedded as a pcapng Decryption Secrets Block: the same verdict without --keylog"/' \
        -e '/"args"/d' "$src/expected.json" > "$D/expected.json"
    { echo "# $DSB_CASE"; echo
      echo "$n.pcap and its keys.txt made into one pcapng by \`samples/scripts/keylog_stacks.sh $DSB_CASE\`:"; echo
      echo "    editcap --inject-secrets tls,keys.txt $n.pcap $DSB_CASE.pcapng"; echo
      echo "tlsdiag reads the Decryption Secrets Block with no --keylog flag and reaches the verdict of the --keylog run."
    } > "$D/README.md"
}

# The same GnuTLS refusal without keys: two alert-sized records (the second answers the
# client's request), no ticket, then FIN: still the server rejecting the client's certificate.
# copy_case SRC NEW: a case made from another case's capture, no new traffic (sets src and D).
copy_case() {
    src="$CASES/$1" D="$CASES/$2"
    rm -rf "$D"; mkdir -p "$D"
    cp "$src/$1.pcap" "$D/$2.pcap"
}
NOKEY_CASE=tls13-client-cert-rejected-two-alerts
derive_nokey() {
    local n=keylog-py-gnutls-ccrejected-tls13 src D
    copy_case "$n" "$NOKEY_CASE"
    sed -e 's/"what": "[^"]*"/"what": "TLS 1.3 without keys: gnutls-serv refuses the Python client'"'"'s certificate with an alert-sized record, and sends another after the client'"'"'s request (the keylog-py-gnutls-ccrejected-tls13 capture)"/' \
        -e '/"args"/d' -e 's/"confidence": "high"/"confidence": "medium"/' "$src/expected.json" > "$D/expected.json"
    { echo "# $NOKEY_CASE"; echo
      echo "The capture of keylog-py-gnutls-ccrejected-tls13 (made by \`samples/scripts/keylog_stacks.sh\`), judged without its key log."
      echo "gnutls-serv answers the client's certificate flight with an encrypted access_denied (19 bytes), the client's"
      echo "request crosses it, the server answers that with an encrypted bad_certificate (19 bytes), FIN, RST:"
      echo "two alert-sized records and no ticket or data still read as the server rejecting the client's certificate."
    } > "$D/README.md"
}

case ${1:-} in
    --list) printf '%s\n' "${CASES_KEPT[@]}" "$DSB_CASE" "$NOKEY_CASE" "$GO_NOKEY_CASE"; exit 0 ;;
    --matrix) shift; todo=("${MATRIX[@]}") ;;
    --matrix-new) shift; todo=("${MATRIX_NEW[@]}") ;;
    --matrix-nss) shift; todo=("${MATRIX_NSS[@]}") ;;
    --matrix-wget) shift; todo=("${MATRIX_WGET[@]}") ;;
    --matrix-go) shift; todo=("${MATRIX_GO[@]}") ;;
    *) todo=("$@"); [ ${#todo[@]} -eq 0 ] && todo=("${CASES_KEPT[@]}" "$DSB_CASE" "$NOKEY_CASE" "$GO_NOKEY_CASE") ;;
esac
mkdir -p "$WORK" "$CASES"
rc=0
for c in "${todo[@]}"; do
    case $c in
        "$DSB_CASE") derive_dsb || rc=1 ;;
        "$NOKEY_CASE") derive_nokey || rc=1 ;;
        "$GO_NOKEY_CASE") derive_go_nokey || rc=1 ;;
        *) k_run "$c" || rc=1 ;;
    esac
done
exit $rc
