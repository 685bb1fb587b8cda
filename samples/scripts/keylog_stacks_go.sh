#!/bin/bash
# keylog_stacks_go.sh - Go crypto/tls in keylog_stacks.sh: the client 'go' and the server 'go'
# (samples/scripts/tls_go.go, built once per run; both write their NSS key log through
# tls.Config.KeyLogWriter), the Go matrix (--matrix-go), the Go cases kept under samples/cases
# and the Go server's ALPN refusal judged without keys. Sourced by keylog_stacks.sh; the Go
# parts of that script call the functions below.

# ---------------------------------------------------------------- Go crypto/tls (client and server)
# samples/scripts/tls_go.go, built once per run into $WORK (GOCACHE/GOPATH outside the repo);
# both sides write their NSS key log through tls.Config.KeyLogWriter (-keylog).
# Go applies cipher restrictions to TLS 1.2 only (its TLS 1.3 suites are fixed): no nocipher-tls13.
GO_BIN=""
go_build() {
    [ -n "$GO_BIN" ] && return 0
    command -v go > /dev/null || { echo "  !! go not installed (apt-get install golang-go)" >&2; return 1; }
    mkdir -p "$WORK"
    GOCACHE=${GOCACHE:-/tmp/go-cache/build} GOPATH=${GOPATH:-/tmp/go-cache/path} GOFLAGS=-mod=mod \
        go build -o "$WORK/tls_go" "$HERE/tls_go.go" || return 1
    GO_BIN="$WORK/tls_go"
}
V_GO=$(go version 2>/dev/null | awk '{print $3}')
# The case's commands name the binary tls_go, after the line that builds it.
go_cmds() {
    grep -q '^build: ' "$CW/cmds" || sed -i "1i build: go build -o tls_go samples/scripts/tls_go.go ($V_GO)" "$CW/cmds"
    sed -i "s|$GO_BIN|tls_go|g" "$CW/cmds"
}
s_go() {
    local cert=$1 mode=$3
    local a=(-mode server -cert "$CERTS/$cert.pem" -key "$CERTS/$cert.key" -count "${COUNT:-1}" -keylog "$CW/keys.log")
    case $mode in
        ccreq) a+=(-clientauth require -ca "$CA") ;;
        nocipher) a+=(-max 1.2 -ciphers TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) ;;
        nogroup) a+=(-curves P384) ;;
        only12) a+=(-max 1.2) ;;
        only13) a+=(-min 1.3) ;;
        alpnh2) a+=(-alpn h2) ;;
    esac
    go_build || return 1
    srv "$GO_BIN" "${a[@]}"
    local rc=$?
    go_cmds
    return $rc
}
c_go() {
    local v=$1 mode=$2 a=(-mode client -sni good.test -ca "$CA" -keylog "$(KEYS_C)")
    if [ "$v" = 13 ]; then a+=(-min 1.3); else a+=(-max 1.2); fi
    case $mode in
        badcert) a+=(-cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key") ;;
        goodcert) a+=(-cert "$CERTS/client.pem" -key "$CERTS/client.key") ;;
        nocipher) a+=(-ciphers TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256) ;;
        nogroup) a+=(-curves X25519) ;;
        resume) a+=(-resume) ;;
        byip) a=("${a[@]/good.test/127.0.0.1}") ;;
        alpnx) a+=(-alpn spdy/3.1) ;;
    esac
    go_build || return 1
    cli "$GO_BIN" "${a[@]}"
    go_cmds
}
# The Go stack's notes in a case's "what" and its expected verdicts where Go differs (go_notes
# after the scenario's defaults, from run_combo).
go_notes() {
    local c=$1 s=$2 sc=$3 v=$4
    if [ "$c" = go ]; then
        # Go's client answers every certificate it cannot verify with bad_certificate (Go 1.19);
        # the issuer of a clean chain is read off the chain (medium), as for GnuTLS.
        case $sc in expired|hostname|selfsigned|unknownca|notyet|sha1|cnonly)
            WHAT+=" (Go sends bad_certificate)" ;; esac
        [ "$sc" = unknownca ] && SESS=("${SESS[0]/"high"/"medium"}")
        case $sc in iphostname|ipunknownca) WHAT+=" (Go sends no SNI for an address and sends bad_certificate)" ;; esac
        # Without a server name, a bad_certificate for a certificate that covers the address
        # names no fault (GnuTLS says it for an address as for an issuer): the client's word.
        [ "$sc" = ipunknownca ] && { SESS=(); fail certificate bad_certificate client confidence='"high"'; }
        # Asked for a certificate by a server that names the CAs it accepts (nginx, gnutls-serv,
        # Go), Go sends an empty Certificate when its own is from none of them: missing.
        if [ "$sc" = ccrejected ]; then
            case $s in nginx|gnutls|go)
                WHAT+=" (the server names the CAs it accepts; Go's certificate is from none of them, so Go sends an empty Certificate)"
                SESS=(); fail certificate client_certificate_missing server confidence='"high"' ;;
            esac
        fi
        # gnutls-serv answers Go's TLS 1.2-only hello with protocol_version (high); limited to
        # TLS 1.2 it picks TLS 1.2 from the legacy version of Go's TLS 1.3-only hello, and Go
        # refuses it with protocol_version.
        if [ "$s-$sc" = gnutls-version ]; then
            SESS=()
            if [ "$v" = 13 ]; then
                WHAT+=" (gnutls-serv picks TLS 1.2, Go refuses it with protocol_version)"
                fail protocol version_mismatch client confidence='"high"'
            else
                WHAT+=" (gnutls-serv sends protocol_version)"
                fail protocol version_mismatch server confidence='"high"'
            fi
        fi
    fi
    if [ "$s" = go ]; then
        # Go's server (1.19) refuses a missing or untrusted client certificate with bad_certificate,
        # in TLS 1.3 too (not certificate_required), and a cipher or group mismatch with handshake_failure.
        case $sc in ccmissing|ccrejected) WHAT+=" (Go sends bad_certificate)" ;; esac
        [ "$sc" = alpn ] && WHAT+=" (Go sends no_application_protocol)"
    fi
    return 0
}

# Go crypto/tls as client and as server (--matrix-go: these only).
MATRIX_GO=()
for v in tls13 tls12; do
    for sc in ok resume expired hostname selfsigned unknownca notyet ccok ccmissing ccrejected version; do
        MATRIX_GO+=(keylog-go-nginx-$sc-$v keylog-go-go-$sc-$v)
    done
    for sc in ok expired hostname selfsigned unknownca notyet ccmissing ccrejected version; do
        MATRIX_GO+=(keylog-go-gnutls-$sc-$v)
    done
    for sc in ok resume ccok ccmissing ccrejected version; do
        MATRIX_GO+=(keylog-curl-go-$sc-$v keylog-ossl-go-$sc-$v keylog-gnutls-go-$sc-$v)
    done
    for sc in ok ccmissing ccrejected version; do MATRIX_GO+=(keylog-py-go-$sc-$v); done
    # (nginx does not load a SHA-1 signed certificate: OpenSSL's security level 2)
    for sc in sha1 cnonly; do MATRIX_GO+=(keylog-go-go-$sc-$v keylog-go-gnutls-$sc-$v); done
    MATRIX_GO+=(keylog-go-nginx-cnonly-$v)
    for sc in ipok iphostname ipunknownca; do MATRIX_GO+=(keylog-go-nginx-$sc-$v keylog-go-go-$sc-$v); done
    # (a client offering http/1.1 alone is let through without ALPN: Go's fallback for HTTP/1.1)
    MATRIX_GO+=(keylog-go-go-alpn-$v keylog-ossl-go-alpn-$v)
    MATRIX_GO+=(keylog-go-ossl-ccmissing-$v keylog-go-ossl-expired-$v keylog-go-py-ccrejected-$v keylog-go-node-ok-$v)
done
# Without ECDHE both sides still share RSA key exchange in TLS 1.2: a group mismatch is TLS 1.3 only.
MATRIX_GO+=(keylog-go-nginx-nogroup-tls13 keylog-go-go-nogroup-tls13 keylog-curl-go-nogroup-tls13 keylog-ossl-go-nogroup-tls13 keylog-gnutls-go-nogroup-tls13)
MATRIX_GO+=(keylog-go-nginx-nocipher-tls12 keylog-go-go-nocipher-tls12 keylog-curl-go-nocipher-tls12 keylog-gnutls-go-nocipher-tls12)

# ---------------------------------------------------------------- Go: committed cases
# The Go cases kept under samples/cases (failures Go reports its own way), and the Go server's
# ALPN refusal judged without keys (derive_go_nokey).
GO_CASES_KEPT=(
    keylog-go-go-ok-tls13 keylog-go-nginx-expired-tls13 keylog-go-gnutls-sha1-tls12 keylog-go-go-cnonly-tls13
    keylog-go-nginx-iphostname-tls12 keylog-go-go-ipunknownca-tls13 keylog-go-nginx-ccrejected-tls13
    keylog-curl-go-ccrejected-tls13 keylog-ossl-go-ccmissing-tls12 keylog-go-gnutls-version-tls13
    keylog-go-go-alpn-tls13
)
GO_NOKEY_CASE=tls13-server-alert-after-server-hello
derive_go_nokey() {
    local n=keylog-go-go-alpn-tls13 src D
    copy_case "$n" "$GO_NOKEY_CASE"
    cat > "$D/expected.json" <<EOF2
{
  "what": "TLS 1.3 without keys: a Go server answers a client offering only ALPN spdy/3.1 with its ServerHello, then one encrypted alert-sized record (no_application_protocol, sealed with the handshake keys) and closes (the keylog-go-go-alpn-tls13 capture)",
  "sessions": [
    {"outcome": "failed", "cause": "protocol", "reason": "fatal_alert", "side": "server", "confidence": "medium"}
  ]
}
EOF2
    { echo "# $GO_NOKEY_CASE"; echo
      echo "The capture of $n (made by \`samples/scripts/keylog_stacks.sh\`), judged without its key log."
      echo "Go's crypto/tls server checks ALPN while building its encrypted flight: after its ServerHello it sends"
      echo "one 19-byte encrypted record (the no_application_protocol alert) and FIN. Without keys the description"
      echo "cannot be read, but the server's lone alert-sized record says it ended the handshake with an alert."
    } > "$D/README.md"
}
