#!/bin/bash
# java_cases.sh - TLS failures with Java 17 JSSE (samples/scripts/JTls.java) on one side and
# OpenSSL s_server/s_client, nginx or curl on the other, captured without any key log (Java 17
# cannot write one): what an analyst sees on the wire alone.
#
# Usage (as root):  samples/scripts/java_cases.sh [--out DIR] [--list | --index | --matrix] [case ...]
#   no case = the committed cases (--list);  --matrix = every scenario x version (to check the
#   verdicts; with --out DIR they land in DIR instead of samples/cases);  --index = one markdown
#   line per committed case (from its expected.json) for samples/README.md.
#
# A case name is java-<client>-<server>-<scenario>-<tls12|tls13>:
#   java client -> ossl (openssl s_server) | nginx:  ok expired hostname selfsigned unknownca notyet
#                                                     nocipher version
#                   -> ossl:                          ccmissing ccwrongca (s_server -Verify 1)
#                   -> silent (a TCP server that never answers): silent
#                   -> stall (s_server behind stall_proxy.py, its flight cut short): stall
#   curl | ossl (openssl s_client) -> java server:    ok ccmissing ccrejected version
# (version: the client speaks only the case's version, the server only the other one.)
# The Java client checks the name only when asked: it always runs with endpoint identification
# "HTTPS" (SSLParameters.setEndpointIdentificationAlgorithm), as real HTTPS clients do.
# Runs in the network namespace "jv-java" (or $TLSD_NS; created here, only lo, deleted at the end),
# servers on 127.0.0.1:443, tcpdump on lo, every client under `timeout`, servers stopped by PID.
# JTls.java is compiled into samples/work/java/classes; PKCS12 keystores/truststores (password
# changeit) are made there from samples/certs/ with openssl and keytool.
# Each case writes <out>/<case>/{<case>.pcap,expected.json,README.md}; logs in samples/work/java/<case>/.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
NS=${TLSD_NS:-jv-java}
if [ "${TLSD_IN_NS:-}" != 1 ]; then
    for t in java javac keytool openssl nginx curl tcpdump tshark timeout; do
        command -v "$t" > /dev/null || { echo "java_cases.sh: missing tool $t (Debian: openjdk-17-jdk-headless)" >&2; exit 1; }
    done
fi
source "$HERE/in_netns.sh"
run_in_netns "$0" "$@"
TLSD_HELPERS_ONLY=1 source "$HERE/tls_cases.sh"
WORK="$SAMPLES/work/java"
if [ "${1:-}" = --out ]; then CASES=$(mkdir -p "$2" && cd "$2" && pwd); shift 2; fi
CLASSES="$WORK/classes"
STORES="$WORK/stores"
V_JAVA=$(java -version 2>&1 | awk -F'"' 'NR==1{print $2}')
V_OSSL=$(openssl version | cut -d' ' -f2)
V_CURL=$(curl --version | head -1 | awk '{print $2}')
V_NGINX=$(nginx -v 2>&1 | sed 's/.*nginx\///')

# ---------------------------------------------------------------- Java build and stores
java_setup() {
    mkdir -p "$CLASSES" "$STORES"
    javac -d "$CLASSES" "$HERE/JTls.java" || return 1
    local c
    for c in good expired notyet other selfsigned untrusted client badclient; do
        openssl pkcs12 -export -in "$CERTS/$c.pem" -inkey "$CERTS/$c.key" -name "$c" \
            -out "$STORES/$c.p12" -passout pass:changeit || return 1
    done
    rm -f "$STORES/trust-ca.p12"
    keytool -importcert -noprompt -storetype PKCS12 -keystore "$STORES/trust-ca.p12" -storepass changeit \
        -alias testca -file "$CERTS/ca.pem" > /dev/null 2>&1 || return 1
}
JAVA=(java -cp "$CLASSES" JTls)
jsrv() { SRV_PORT=443 srv timeout -k 2 60 "${JAVA[@]}" server "$@"; }
jcli() { cli "${JAVA[@]}" client "$@"; }

# ---------------------------------------------------------------- servers and clients
# s_<server> CERT VER MODE: MODE = plain | nocipher | other (only the other TLS version) | ccreq
s_ossl() {
    local cert=$1 v=$2 mode=$3 a=()
    case $mode in
        nocipher) a=(-cipher ECDHE-RSA-AES256-GCM-SHA384 -ciphersuites TLS_AES_256_GCM_SHA384) ;;
        other) if [ "$v" = 13 ]; then a=(-tls1_2); else a=(-tls1_3); fi ;;
        ccreq) a=(-Verify 1 -verify_return_error -CAfile "$CA") ;;
    esac
    osrv "$cert" "${a[@]}"
}
s_nginx() {
    local cert=$1 v=$2 mode=$3 x='' protos='TLSv1.2 TLSv1.3'
    case $mode in
        nocipher) x='ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384; ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;' ;;
        other) if [ "$v" = 13 ]; then protos=TLSv1.2; else protos=TLSv1.3; fi ;;
    esac
    NGINX_PROTOS=$protos nginx_start ssl "$cert" "$x"
}
s_silent() { # accepts, reads, never answers; closes after 8 s (the Java client gives up after 5 s)
    srv python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("127.0.0.1",443)); s.listen(1)
c,_=s.accept(); c.settimeout(8); t=time.time()
while time.time()-t<8:
    try:
        if not c.recv(4096): break
    except OSError: break
c.close()'
}
s_stall() { # openssl s_server on 4433 behind stall_proxy.py on 443, which passes on only the
    # first records of its answer (TLS 1.3: ServerHello, ChangeCipherSpec, EncryptedExtensions;
    # TLS 1.2: ServerHello, Certificate) and then holds the connection: the server stalls mid-flight
    local cert=$1 v=$2 keep=2
    [ "$v" = 13 ] && keep=3
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/$cert.pem" -key "$CERTS/$cert.key" -www
    SRV_PORT=443 srv timeout -k 2 30 python3 "$HERE/stall_proxy.py" 443 4433 "$keep" --hold 15
}
s_stallfin() { # TLS 1.2: the proxy passes on the server's first flight (ServerHello, Certificate,
    # ServerKeyExchange, ServerHelloDone) and holds its ChangeCipherSpec and Finished
    local cert=$1
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/$cert.pem" -key "$CERTS/$cert.key" -www -tls1_2
    SRV_PORT=443 srv timeout -k 2 30 python3 "$HERE/stall_proxy.py" 443 4433 4 --hold 15
}
s_java() {
    local cert=$1 v=$2 mode=$3 a=(--keystore "$STORES/$cert.p12")
    case $mode in
        ccreq) a+=(--need-client-auth --trust "$STORES/trust-ca.p12") ;;
        other) if [ "$v" = 13 ]; then a+=(--proto TLSv1.2); else a+=(--proto TLSv1.3); fi ;;
    esac
    jsrv "${a[@]}"
}
# c_<client> VER MODE: MODE = plain | nocipher | badcert (the Other CA's client certificate)
c_java() {
    local v=$1 mode=$2 a=(--host good.test --https --trust "$STORES/trust-ca.p12")
    if [ "$v" = 13 ]; then a+=(--proto TLSv1.3); else a+=(--proto TLSv1.2); fi
    [ "$mode" = badcert ] && a+=(--keystore "$STORES/badclient.p12")
    if [ "$mode" = nocipher ]; then
        if [ "$v" = 13 ]; then a+=(--ciphers TLS_CHACHA20_POLY1305_SHA256); else a+=(--ciphers TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256); fi
    fi
    jcli "${a[@]}"
}
c_curl() {
    local v=$1 mode=$2 a=(--cacert "$CA" --http1.1)
    if [ "$v" = 13 ]; then a+=(--tlsv1.3); else a+=(--tlsv1.2 --tls-max 1.2); fi
    [ "$mode" = badcert ] && a+=(--cert "$CERTS/badclient.pem" --key "$CERTS/badclient.key")
    cli curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --resolve good.test:443:127.0.0.1 "${a[@]}" https://good.test/
}
c_ossl() {
    local v=$1 mode=$2 a=(-servername good.test -verify_hostname good.test -CAfile "$CA" -verify_return_error)
    if [ "$v" = 13 ]; then a+=(-tls1_3); else a+=(-tls1_2); fi
    [ "$mode" = badcert ] && a+=(-cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key")
    HOLD=1 cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof "${a[@]}"
}

stack_name() {
    case $1 in
        java) echo "OpenJDK $V_JAVA JSSE (samples/scripts/JTls.java)" ;;
        curl) echo "curl $V_CURL (OpenSSL $V_OSSL)" ;;
        ossl) echo "OpenSSL $V_OSSL" ;;
        nginx) echo "nginx $V_NGINX (OpenSSL $V_OSSL)" ;;
        silent) echo "a Python TCP listener that reads and never answers" ;;
        stall|stallfin) echo "OpenSSL $V_OSSL s_server behind samples/scripts/stall_proxy.py" ;;
    esac
}

# One case from its name. The expected verdict is what the wire shows without keys.
run_combo() {
    local c s sc v V
    parse_case "$1" java || return 1
    local cs="$(stack_name "$c")" ss="$(stack_name "$s")"
    [ "$c" = ossl ] && cs+=" s_client"; [ "$s" = ossl ] && ss+=" s_server"
    STACK="$cs -> $ss"
    local -A nm=([java]="the Java client" [curl]=curl [ossl]="openssl s_client")
    local -A sn=([nginx]=nginx [ossl]="openssl s_server" [java]="the Java server" [silent]="a TCP server that never answers"
        [stall]="openssl s_server behind a proxy that stalls its flight"
        [stallfin]="openssl s_server behind a proxy that holds its ChangeCipherSpec and Finished")
    local cert=good smode=plain cmode=plain who="TLS $V, no key log: ${nm[$c]} -> ${sn[$s]}"
    # What the wire shows decides the confidence: high when a plaintext alert names the cause
    # (TLS 1.2) and the chain agrees; medium when it is read from an encrypted alert's size
    # (TLS 1.3), when the alert names no cause (handshake_failure for no shared cipher), or when
    # the cause is inferred from a clean chain (Java's certificate_unknown for an untrusted CA).
    # TLS 1.3 hides the certificate and the alert: the client's refusal is an encrypted
    # alert-sized record right after the server's flight, whatever its reason (rejected_by_client).
    local conf='"high"' tls13cert=0
    [ "$v" = 13 ] && conf='"medium"'
    case $sc in
        ok) WHAT="$who, handshake completes, HTTP GET answered"; ok "$V" confidence='"high"' ;;
        expired) WHAT="$who, the server's certificate expired on 2024-06-30"; cert=expired; tls13cert=1
                 fail certificate expired client confidence="$conf" ;;
        hostname) WHAT="$who with endpoint identification HTTPS: it asks for good.test, the certificate is for other.test"
                  cert=other; tls13cert=1; fail certificate hostname_mismatch client confidence="$conf" ;;
        selfsigned) WHAT="$who, a self-signed server certificate"; cert=selfsigned; tls13cert=1
                    fail certificate self_signed client confidence="$conf" ;;
        unknownca) WHAT="$who, a server certificate from a CA the client does not trust"; cert=untrusted; tls13cert=1
                   fail certificate unknown_ca client confidence='"medium"' ;;
        notyet) WHAT="$who, the server's certificate is valid only from 2030"; cert=notyet; tls13cert=1
                fail certificate not_yet_valid client confidence="$conf" ;;
        ccmissing) WHAT="$who, the server requires a client certificate (needClientAuth), the client has none"; smode=ccreq
                   fail certificate client_certificate_missing server confidence="$conf" ;;
        ccrejected) WHAT="$who, the server requires a client certificate, the client's is from an untrusted CA"
                    smode=ccreq; cmode=badcert; fail certificate client_certificate_rejected server confidence="$conf" ;;
        ccwrongca) WHAT="$who, the server requires a client certificate from the Test CA (named in its CertificateRequest), the client holds only one from the Other CA: JSSE sends an empty Certificate"
                   smode=ccreq; cmode=badcert; fail certificate client_certificate_missing server confidence="$conf" ;;
        nocipher) WHAT="$who, the client offers only ChaCha20-Poly1305, the server only AES-256-GCM"
                  smode=nocipher; cmode=nocipher; fail cipher no_shared_cipher server confidence='"medium"' ;;
        stall) WHAT="$who, the server's flight stops after its first records (a proxy holds the rest); the client gives up after 5 s"
               fail timeout handshake_stalled server confidence="$conf" ;;
        stallfin) WHAT="$who, the client's key exchange, ChangeCipherSpec and Finished are never answered (a proxy holds the server's ChangeCipherSpec and Finished); the client gives up after 5 s with two sealed alerts (user_canceled, close_notify)"
               fail timeout handshake_stalled server confidence='"medium"' ;;
        silent) WHAT="$who, the server accepts the connection and reads the ClientHello but never answers; the client gives up after 5 s"
                fail timeout server_silent server confidence='"high"' ;;
        version) WHAT="$who, the client speaks only TLS $V, the server only the other version"
                 smode=other; fail protocol version_mismatch server confidence='"high"' ;;
        *) echo "unknown scenario $sc" >&2; return 1 ;;
    esac
    if [ "$v" = 13 ] && [ $tls13cert = 1 ]; then
        SESS=(); fail certificate rejected_by_client client confidence='"medium"'
    fi
    if [ "$v" = 13 ] && { [ "$c" = java ] || [ "$s" = java ]; }; then
        NOTE="JSSE adds 16 bytes of padding (RFC 8446 §5.4) to every TLS 1.3 record it sends: its Finished is 85 bytes where OpenSSL's is 69 (TLS_AES_256_GCM_SHA384), its alerts and close_notify 35 where OpenSSL's are 19. tlsdiag reads a side's padding off its Finished; a client's lone record too short for a Finished, after which it sends nothing, is its alert."
    fi
    [ "$sc" = stall ] && [ "$v" = 13 ] && NOTE+=" Here the client's two 35-byte records 5 s after the server's last one are its sealed user_canceled and close_notify: it gave up waiting."
    [ "$sc" = silent ] && NOTE="JSSE gives up on its read timeout with a user_canceled then a close_notify alert (warnings, in the clear) before its FIN: the wait the client gave up on runs to the first of them."
    [ "$sc" = ccwrongca ] && NOTE+="${NOTE:+ }JSSE's key manager offers only a certificate whose issuer the CertificateRequest names, so the client sends an empty Certificate (41 bytes in TLS 1.3, on its own), the server refuses it before the client's Finished arrives."
    "s_$s" "$cert" "$v" "$smode" || return 1
    "c_$c" "$v" "$cmode"
}

j_readme() {
    {
        echo "# $NAME"
        echo
        echo "$WHAT."
        echo
        echo "Made by \`samples/scripts/java_cases.sh $NAME\` on $(date -u +%Y-%m-%d) in netns $NS (loopback). Stack: $STACK."
        echo "No key log: Java 17 cannot write one, so this is what the wire alone shows."
        echo
        echo "Commands (\$WORK = samples/work/java/$NAME; stores in samples/work/java/stores, password changeit):"
        echo
        sed -e "s#$STORES#\$STORES#g" -e "s#$CLASSES#\$CLASSES#g" "$CW/cmds" | sed 's/^/    /'
        echo
        echo "On the wire (samples/scripts/tls_summary.py; f<N> = frame number, C>S = client to server):"
        echo
        python3 "$HERE/tls_summary.py" "$1" | sed 's/^/    /'
        tools_said 'client error:|server error:|^curl: \(|:error:|verify error:' \
            'client error:|server error:|:error:|SSL_do_handshake|verify error:'
    } > "$D/README.md"
}

j_run() {
    NAME=$1
    CW="$WORK/$NAME"; D="$CASES/$NAME"
    rm -rf "$CW" "$D"; mkdir -p "$CW" "$D"
    : > "$CW/cmds"
    WHAT=""; STACK=""; NOTE=""; ARGS=""; SETUP_REASON=""; SESS=(); SRV_PID=""; SRV_PORT=443
    local pcap="$D/$NAME.pcap" rc=0
    echo "== $NAME"
    cap_start "$pcap"
    run_combo "$NAME" || rc=1
    end_case
    write_expected
    j_readme "$pcap"
    return $rc
}

# The cases committed under samples/cases (the most distinct behaviours of JSSE on the wire).
CASES_KEPT=(
    java-java-ossl-expired-tls13 java-java-nginx-unknownca-tls13 java-java-nginx-unknownca-tls12
    java-java-stall-stall-tls13 java-curl-java-ccmissing-tls13 java-ossl-java-ccrejected-tls13
    java-java-ossl-ccwrongca-tls13 java-java-nginx-ok-tls13 java-curl-java-ok-tls13 java-java-silent-silent-tls13
    java-java-stallfin-stallfin-tls12
)
MATRIX=()
for v in tls13 tls12; do
    MATRIX+=(
        java-java-nginx-ok-$v java-curl-java-ok-$v
        java-java-ossl-expired-$v java-java-nginx-hostname-$v java-java-ossl-selfsigned-$v
        java-java-nginx-unknownca-$v java-java-ossl-notyet-$v
        java-java-ossl-nocipher-$v java-java-nginx-version-$v
        java-curl-java-ccmissing-$v java-ossl-java-ccrejected-$v java-curl-java-version-$v
        java-java-ossl-ccmissing-$v java-java-ossl-ccwrongca-$v java-java-silent-silent-$v java-java-stall-stall-$v
    )
    [ $v = tls12 ] && MATRIX+=(java-java-stallfin-stallfin-$v)
done

case ${1:-} in
    --list) printf '%s\n' "${CASES_KEPT[@]}"; exit 0 ;;
    --index)   # markdown lines for the "## Java (JSSE) cases" part of samples/README.md
        for c in "${CASES_KEPT[@]}"; do
            python3 - "$CASES/$c/expected.json" "$c" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
v = []
for s in e["sessions"]:
    if s["outcome"] == "established":
        v.append("established %s" % s.get("tls_version", ""))
    else:
        v.append("%s/%s (%s, %s)" % (s.get("cause"), s.get("reason"), s.get("side", "?"), s.get("confidence", "?")))
print("- `%s`: %s -> %s" % (sys.argv[2], e["what"], "; ".join(v)))
PY
        done
        exit 0 ;;
    --matrix) shift; todo=("${MATRIX[@]}") ;;
    *) todo=("$@"); [ ${#todo[@]} -eq 0 ] && todo=("${CASES_KEPT[@]}") ;;
esac
mkdir -p "$WORK" "$CASES"
java_setup || { echo "java_cases.sh: could not build JTls or the stores" >&2; exit 1; }
rc=0
for c in "${todo[@]}"; do j_run "$c" || rc=1; done
exit $rc
