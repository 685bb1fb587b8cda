#!/bin/bash
# keylog_cases.sh - TLS failures captured with the key logs of the real stacks that made them
# (openssl s_client/s_server -keylogfile, gnutls-cli and curl with SSLKEYLOGFILE, python
# keylog_filename), for `tlsdiag analyze --keylog` and pcapng Decryption Secrets Blocks.
#
# Usage (as root):  samples/scripts/keylog_cases.sh [--list] [case ...]   (no case = all)
#
# Runs in the network namespace "h16-keylog" (or $TLSD_NS; created here, only lo, deleted at the
# end), servers on 127.0.0.1:443, tcpdump on lo. Uses the helpers of tls_cases.sh (sourced).
# Each case writes samples/cases/<case>/{<case>.pcap[ng],keys.txt,expected.json,README.md};
# logs in samples/work/keylog/<case>/ (git-ignored).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
NS=${TLSD_NS:-h16-keylog}
source "$HERE/in_netns.sh"
run_in_netns "$0" "$@"
TLSD_HELPERS_ONLY=1 source "$HERE/tls_cases.sh"
WORK="$SAMPLES/work/keylog"

# A client's key log: SSLKEYLOGFILE for GnuTLS and curl.
KEYS_C() { echo "$CW/client-keys.log"; }
gcli_k() { HOLD=${HOLD:-1} cli_get env SSLKEYLOGFILE="$(KEYS_C)" gnutls-cli -p 443 "$@" 127.0.0.1; }
ocli_k() { cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof -keylogfile "$(KEYS_C)" "$@"; }
curl_k() { cli env SSLKEYLOGFILE="$(KEYS_C)" curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --resolve good.test:443:127.0.0.1 "$@"; }
VERIFY=(-CAfile "$CA" -verify_return_error)
GVERIFY=(--x509cafile "$CA" --sni-hostname good.test --verify-hostname good.test)
# osrv (tls_cases.sh) logs the server's key log to $CW/keys.log; KEYLOG picks which one ships.
KEYLOG=client

# ---- TLS 1.3 certificate reasons: GnuTLS sends its alert encrypted, so without keys only
# "rejected_by_client" can be said; the decrypted certificate names the reason.
case_keylog_tls13_expired() {
    WHAT="TLS 1.3 with the client's key log: gnutls-cli rejects an expired server certificate (2024-06-30) with an encrypted alert"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv expired -tls1_3
    gcli_k "${GVERIFY[@]}"
    fail certificate expired client confidence='"high"'
}
case_keylog_tls13_not_yet_valid() {
    WHAT="TLS 1.3 with the client's key log: gnutls-cli rejects a server certificate valid only from 2030 (encrypted alert)"
    STACK="GnuTLS gnutls-cli -> OpenSSL s_server"
    osrv notyet -tls1_3
    gcli_k "${GVERIFY[@]}"
    fail certificate not_yet_valid client confidence='"high"'
}
case_keylog_tls13_hostname_mismatch() {
    WHAT="TLS 1.3 with the client's key log: gnutls-cli asks for good.test, the certificate is for other.test (encrypted alert)"
    STACK="GnuTLS gnutls-cli -> OpenSSL s_server"
    osrv other -tls1_3
    gcli_k "${GVERIFY[@]}"
    fail certificate hostname_mismatch client confidence='"high"'
}
case_keylog_tls13_self_signed() {
    WHAT="TLS 1.3 with the client's key log: gnutls-cli rejects a self-signed server certificate (encrypted alert)"
    STACK="GnuTLS gnutls-cli -> OpenSSL s_server"
    osrv selfsigned -tls1_3
    gcli_k "${GVERIFY[@]}"
    fail certificate self_signed client confidence='"high"'
}
case_keylog_tls13_unknown_ca() {
    WHAT="TLS 1.3 with the client's key log: curl (OpenSSL) rejects a certificate from an untrusted CA"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> OpenSSL s_server"
    osrv untrusted -tls1_3
    curl_k --tlsv1.3 --cacert "$CA" https://good.test/
    fail certificate unknown_ca client confidence='"high"'
}
case_keylog_tls13_client_cert_missing() {
    WHAT="TLS 1.3 with the client's key log: the server requires a client certificate, s_client sends an empty Certificate, the server's certificate_required alert is encrypted"
    STACK="OpenSSL s_client -keylogfile -> s_server -Verify 1"
    osrv good -tls1_3 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli_k -tls1_3 -servername good.test "${VERIFY[@]}"
    fail certificate client_certificate_missing server confidence='"high"'
}
case_keylog_tls13_client_cert_rejected() {
    WHAT="TLS 1.3 with the client's key log: the client's certificate is from an untrusted CA, the server's unknown_ca alert is encrypted"
    STACK="OpenSSL s_client -cert -keylogfile -> s_server -Verify 1"
    osrv good -tls1_3 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli_k -tls1_3 -servername good.test -cert "$CERTS/badclient.pem" -key "$CERTS/badclient.key" "${VERIFY[@]}"
    fail certificate client_certificate_rejected server confidence='"high"'
}
# ---- an alert-only failure: the client meets a damaged record and says so, encrypted
case_keylog_tls13_bad_record_mac() {
    WHAT="TLS 1.3 with the client's key log: a proxy damages one byte of the server's encrypted flight, gnutls-cli answers with an encrypted bad_record_mac"
    STACK="GnuTLS gnutls-cli -> samples/scripts/mangle_proxy.py flip-after-ccs -> OpenSSL s_server (port 4433)"
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www -tls1_3
    python3 "$HERE/mangle_proxy.py" flip-after-ccs --listen 443 --to 4433 --timeout 8 >> "$CW/proxy.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 443
    gcli_k "${GVERIFY[@]}"
    fail protocol bad_record_mac client confidence='"high"'
}
# ---- every TLS 1.3 suite, and a HelloRetryRequest (server's alert under its application key)
case_keylog_tls13_suites() {
    WHAT="TLS 1.3 with the client's key log, one session per cipher suite (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, AES-128-CCM, AES-128-CCM-8): the server's encrypted certificate_required alert each time"
    STACK="OpenSSL s_client -keylogfile -> s_server -Verify 1 -ciphersuites X"
    local s
    for s in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256 TLS_AES_128_CCM_SHA256 TLS_AES_128_CCM_8_SHA256; do
        osrv good -tls1_3 -ciphersuites "$s" -Verify 1 -verify_return_error -CAfile "$CA"
        ocli_k -tls1_3 -ciphersuites "$s" -servername good.test "${VERIFY[@]}"
        stop_srv
        fail certificate client_certificate_missing server confidence='"high"'
    done
}
case_keylog_tls13_hrr() {
    WHAT="TLS 1.3 with the client's key log after a HelloRetryRequest (client's key share X25519, server wants P-256): the server's encrypted certificate_required alert"
    STACK="OpenSSL s_client -groups X25519:P-256 -> s_server -groups P-256 -Verify 1"
    osrv good -tls1_3 -groups P-256 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli_k -tls1_3 -groups X25519:P-256 -servername good.test "${VERIFY[@]}"
    fail certificate client_certificate_missing server confidence='"high"'
}
# ---- TLS 1.2: a post-ChangeCipherSpec alert (the client meets a damaged server Finished)
tls12_flip() {
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www -tls1_2 "$@"
    python3 "$HERE/mangle_proxy.py" flip-after-ccs --listen 443 --to 4433 --timeout 8 >> "$CW/proxy.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 443
}
case_keylog_tls12_gcm_alert() {
    WHAT="TLS 1.2 AES-GCM with the client's key log: a proxy damages the server's encrypted Finished, s_client answers with an encrypted alert after its ChangeCipherSpec"
    STACK="OpenSSL s_client -keylogfile -> samples/scripts/mangle_proxy.py flip-after-ccs -> OpenSSL s_server"
    tls12_flip -cipher 'ECDHE+AESGCM'
    ocli_k -tls1_2 -cipher 'ECDHE+AESGCM' -servername good.test "${VERIFY[@]}"
    fail protocol bad_record_mac client confidence='"high"'
}
case_keylog_tls12_cbc_alert() {
    WHAT="TLS 1.2 AES-CBC-SHA (encrypt-then-MAC) with the client's key log: a proxy damages the server's encrypted Finished, s_client answers with an encrypted alert"
    STACK="OpenSSL s_client -keylogfile -> samples/scripts/mangle_proxy.py flip-after-ccs -> OpenSSL s_server"
    tls12_flip -cipher 'ECDHE+AES128+SHA1'
    ocli_k -tls1_2 -cipher 'ECDHE+AES128+SHA1' -servername good.test "${VERIFY[@]}"
    fail protocol bad_record_mac client confidence='"high"'
}
case_keylog_tls12_cbc_mte_alert() {
    WHAT="TLS 1.2 AES-CBC-SHA256 without encrypt-then-MAC (gnutls-cli %NO_ETM) with the client's key log: a damaged server Finished and the client's encrypted alert"
    STACK="GnuTLS gnutls-cli -> samples/scripts/mangle_proxy.py flip-after-ccs -> OpenSSL s_server"
    tls12_flip -cipher 'ECDHE+AES128+SHA256'
    gcli_k "${GVERIFY[@]}" --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA256:%NO_ETM'
    fail protocol bad_record_mac client confidence='"high"'
}
case_keylog_tls10_cbc_alert() {
    WHAT="TLS 1.0 AES-CBC-SHA (MD5/SHA-1 PRF, chained IVs) with the client's key log: a proxy damages the server's encrypted Finished, s_client answers with an encrypted alert"
    STACK="OpenSSL s_client -tls1 -keylogfile -> samples/scripts/mangle_proxy.py flip-after-ccs -> OpenSSL s_server -tls1 (@SECLEVEL=0)"
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www -tls1 -cipher 'AES128-SHA:@SECLEVEL=0'
    python3 "$HERE/mangle_proxy.py" flip-after-ccs --listen 443 --to 4433 --timeout 8 >> "$CW/proxy.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 443
    ocli_k -tls1 -cipher 'AES128-SHA:@SECLEVEL=0' -servername good.test "${VERIFY[@]}"
    fail protocol bad_record_mac client confidence='"high"'
}
case_keylog_tls13_resumption_early_data() {
    WHAT="TLS 1.3 with the client's key log: a full handshake, then a PSK resumption sending 0-RTT early data (CLIENT_EARLY_TRAFFIC_SECRET logged): both established, the early data left closed"
    STACK="OpenSSL s_client -sess_out, then -sess_in -early_data -> s_server -early_data (echo mode, stdin held open)"
    log_cmd "server: sleep 8 | openssl s_server -accept 443 -cert good.pem -key good.key -tls1_3 -early_data"
    { sleep 8; } | openssl s_server -accept 443 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -tls1_3 -early_data >> "$CW/server.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 443
    local c=(openssl s_client -connect 127.0.0.1:443 -tls1_3 -servername good.test -keylogfile "$(KEYS_C)" "${VERIFY[@]}")
    HOLD=1 cli_get "${c[@]}" -sess_out "$CW/sess.pem"
    printf 'GET /early HTTP/1.0\r\n\r\n' > "$CW/early.txt"
    HOLD=1 cli_get "${c[@]}" -sess_in "$CW/sess.pem" -early_data "$CW/early.txt"
    ok 1.3 confidence='"high"'
    ok 1.3 confidence='"high"'
}
# ---- keys for only some sessions; python's keylog_filename
case_keylog_partial_keys() {
    WHAT="Two TLS 1.3 sessions (server requires a client certificate, none sent), keys logged for the first only: the second is inferred and says its keys are missing"
    STACK="OpenSSL s_client -> s_server -Verify 1"
    osrv good -tls1_3 -Verify 1 -verify_return_error -CAfile "$CA"
    ocli_k -tls1_3 -servername good.test "${VERIFY[@]}"
    cp "$(KEYS_C)" "$CW/first-keys.log"
    ocli_k -tls1_3 -servername good.test "${VERIFY[@]}"
    cp "$CW/first-keys.log" "$(KEYS_C)"
    fail certificate client_certificate_missing server confidence='"high"'
    fail certificate client_certificate_missing server confidence='"medium"'
}
case_keylog_python_ok() {
    WHAT="TLS 1.3 established, Python ssl client with keylog_filename: both Finished read from the decrypted handshake"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL s_server"
    osrv good -tls1_3
    cli python3 -c "
import socket, ssl
ctx = ssl.create_default_context(cafile='$CA'); ctx.keylog_filename = '$(KEYS_C)'
with socket.create_connection(('127.0.0.1', 443), timeout=5) as r, ctx.wrap_socket(r, server_hostname='good.test') as s:
    s.sendall(b'GET / HTTP/1.0\r\n\r\n'); s.recv(100)
"
    ok 1.3 confidence='"high"'
}

# ---- A client connecting to an IP address sends no server name (RFC 6066) and checks the
# address against the certificate: good.pem covers good.test, 127.0.0.1 and ::1, the server
# answers on 127.0.0.2.
py_by_address() { # py_by_address MAX_VERSION
    cli env SSLKEYLOGFILE="$(KEYS_C)" python3 "$HERE/tls_py.py" client --host 127.0.0.2 --sni 127.0.0.2 --cafile "$CA" --max "$1"
}
case_keylog_py_ip_mismatch_tls13() {
    WHAT="TLS 1.3 with the client's key log: Python ssl connects to 127.0.0.2 (no server name), the certificate covers good.test, 127.0.0.1 and ::1, and the client refuses it with an encrypted bad_certificate alert"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv good -tls1_3
    py_by_address 1.3
    fail certificate hostname_mismatch client confidence='"medium"'
}
case_keylog_py_ip_mismatch_tls12() {
    WHAT="TLS 1.2 (key log given, not needed): Python ssl connects to 127.0.0.2 (no server name), the certificate covers good.test, 127.0.0.1 and ::1, and the client refuses it with a bad_certificate alert"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv good -tls1_2
    py_by_address 1.2
    fail certificate hostname_mismatch client confidence='"medium"'
}
case_keylog_gnutls_ip_pinned_tls13() {
    WHAT="TLS 1.3 with the client's key log: gnutls-cli trusts the server's self-signed certificate (pinned as its CA file) but connects to 127.0.0.2 (no server name), which the certificate does not cover; it refuses with an encrypted bad_certificate"
    STACK="GnuTLS $(gnutls-cli --version | head -1 | awk '{print $2}') gnutls-cli -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv selfsigned -tls1_3
    HOLD=1 cli_get env SSLKEYLOGFILE="$(KEYS_C)" gnutls-cli -p 443 --x509cafile "$CERTS/selfsigned.pem" 127.0.0.2
    fail certificate hostname_mismatch client confidence='"medium"'
}
case_keylog_curl_ip_closed_tls13() {
    WHAT="TLS 1.3 with the client's key log: curl (OpenSSL) connects to https://127.0.0.2/ (no server name), completes the handshake and closes with a close_notify, refusing the address only then: established, with a closed_without_data warning that names the address the certificate does not cover"
    STACK="curl $(curl --version | head -1 | awk '{print $2}') (OpenSSL) -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv good -tls1_3
    cli env SSLKEYLOGFILE="$(KEYS_C)" curl -sS -o /dev/null --max-time 5 --cacert "$CA" https://127.0.0.2/
    ok 1.3 closed_without_data
}

# ---- Alerts that name a protocol fault, in TLS 1.2 and 1.3: samples/scripts/mangle_proxy.py
# changes one plaintext handshake record (a ClientHello, a ServerHello, a TLS 1.2 server
# flight) between the real s_client and s_server, which answer with their own alerts.
mangled() { # mangled MODE VERSION [proxy args] -- [client args]
    local mode=$1 v=$2 px=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do px+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    # SRV_ANY=1: the server speaks every version (a TLS 1.3 server choosing TLS 1.2 puts the
    # downgrade sentinel in its random).
    local sv=("-$v")
    [ "${SRV_ANY:-}" = 1 ] && sv=()
    SRV_PORT=4433 srv openssl s_server -accept 4433 -cert "$CERTS/good.pem" -key "$CERTS/good.key" -www "${sv[@]}"
    python3 "$HERE/mangle_proxy.py" "$mode" --listen 443 --to 4433 --timeout 8 "${px[@]}" >> "$CW/proxy.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 443
    log_cmd "proxy: samples/scripts/mangle_proxy.py $mode --listen 443 --to 4433 ${px[*]}"
    ocli_k "-$v" -servername good.test "${VERIFY[@]}" "$@"
}
MANGLE_STACK="OpenSSL s_client -keylogfile -> samples/scripts/mangle_proxy.py -> OpenSSL s_server (port 4433)"
case_keylog_tls12_decode_error() {
    WHAT="TLS 1.2: a proxy makes the ClientHello's extensions length one byte longer than its extensions; the server cannot parse it and answers with decode_error"
    STACK=$MANGLE_STACK
    mangled ch-ext-len tls1_2
    fail protocol decode_error server confidence='"high"'
}
case_keylog_tls13_decode_error() {
    WHAT="TLS 1.3: a proxy makes the ClientHello's extensions length one byte longer than its extensions; the server cannot parse it and answers with decode_error"
    STACK=$MANGLE_STACK
    mangled ch-ext-len tls1_3
    fail protocol decode_error server confidence='"high"'
}
case_keylog_tls12_illegal_parameter() {
    WHAT="TLS 1.2 (the client offers TLS 1.2 only, the server speaks TLS 1.3 too, so its random carries the downgrade sentinel, which such a client does not check): a proxy puts a cipher suite the client did not offer in the ServerHello; the client answers with illegal_parameter"
    STACK=$MANGLE_STACK
    SRV_ANY=1 mangled sh-suite tls1_2 --suite 0xc030 -- -cipher ECDHE-RSA-AES128-GCM-SHA256
    fail protocol illegal_parameter client confidence='"high"'
}
case_keylog_tls13_illegal_parameter() {
    WHAT="TLS 1.3: a proxy puts a cipher suite the client did not offer (TLS_AES_256_GCM_SHA384) in the ServerHello; the client answers with illegal_parameter (it never derived keys: the key log has none for it)"
    STACK=$MANGLE_STACK
    mangled sh-suite tls1_3 --suite 0x1302 -- -ciphersuites TLS_AES_128_GCM_SHA256
    fail protocol illegal_parameter client confidence='"high"'
}
case_keylog_tls12_unexpected_message() {
    WHAT="TLS 1.2 ECDHE: a proxy leaves the ServerKeyExchange out of the server's flight; the client meets a ServerHelloDone where it waits for the key exchange and answers with unexpected_message"
    STACK=$MANGLE_STACK
    mangled drop-ske tls1_2
    fail protocol unexpected_message client confidence='"high"'
}
case_keylog_tls13_unexpected_message() {
    WHAT="TLS 1.3: a proxy sends the ServerHello record twice; the client meets a plaintext handshake record where it waits for encrypted ones and answers with unexpected_message"
    STACK=$MANGLE_STACK
    mangled dup-sh tls1_3
    fail protocol unexpected_message client confidence='"high"'
}
case_keylog_tls12_decrypt_error() {
    WHAT="TLS 1.2 ECDHE: a proxy flips the last byte of the ServerKeyExchange signature; the client's check fails and it answers with decrypt_error"
    STACK=$MANGLE_STACK
    mangled ske-sig tls1_2
    fail protocol decrypt_error client confidence='"high"'
}
case_keylog_tls12_record_overflow() {
    WHAT="TLS 1.2: a proxy puts an 18,000-byte record after the ServerHello (over the 2^14 + 2048 limit); the client answers with record_overflow (fatal_alert)"
    STACK=$MANGLE_STACK
    mangled big-record tls1_2
    fail protocol fatal_alert client confidence='"high"'
}
case_keylog_tls13_record_overflow() {
    WHAT="TLS 1.3: a proxy puts an 18,000-byte application-data record after the ServerHello (over the 2^14 + 256 limit); the client answers with record_overflow (fatal_alert); the oversized record is not taken for a sign of wrong keys"
    STACK=$MANGLE_STACK
    mangled big-record tls1_3
    fail protocol fatal_alert client confidence='"high"'
}
case_keylog_tls12_downgrade_seen_at_server() {
    WHAT="TLS 1.2 seen on the server's side of a middlebox that takes TLS 1.3 out of the ClientHello (renames supported_versions): the server chooses TLS 1.2 with the downgrade sentinel, the TLS 1.3 client refuses it with illegal_parameter; the capture shows only a TLS 1.2 offer"
    STACK="OpenSSL s_client -keylogfile (port 4433) -> samples/scripts/mangle_proxy.py ch-strip-versions -> OpenSSL s_server (port 443, captured)"
    osrv good
    python3 "$HERE/mangle_proxy.py" ch-strip-versions --listen 4433 --to 443 --timeout 8 >> "$CW/proxy.log" 2>&1 &
    ALL_PIDS+=("$!"); wait_port 4433
    log_cmd "proxy: samples/scripts/mangle_proxy.py ch-strip-versions --listen 4433 --to 443"
    cli_get openssl s_client -connect 127.0.0.1:4433 -ign_eof -keylogfile "$(KEYS_C)" -servername good.test "${VERIFY[@]}"
    fail protocol downgrade_rejected client confidence='"medium"'
}
case_keylog_chrome_ip_untrusted_tls12() {
    WHAT="TLS 1.2 with the client's key log: headless Chromium opens https://127.0.0.1/ (no server name), the certificate is for other.test from a CA it does not trust (ERR_CERT_AUTHORITY_INVALID); its certificate_unknown names neither fault, so the verdict stays rejected_by_client with the uncovered address as a fact"
    STACK="Chromium $(chromium --version 2>/dev/null | awk '/Chromium/ {print $2}') -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    osrv other -tls1_2
    local h="$CW/chrome-home" u="$CW/chrome-profile"
    rm -rf "$h" "$u"; mkdir -p "$h" "$u"
    CLI_TIMEOUT=30 cli env HOME="$h" chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$u" \
        --ssl-key-log-file="$(KEYS_C)" --ssl-version-max=tls1.2 --dump-dom https://127.0.0.1/
    rm -rf "$h" "$u"
    # Chromium connects a second time after the first refusal.
    fail certificate rejected_by_client client confidence='"high"'
    fail certificate rejected_by_client client confidence='"high"'
}
case_keylog_tls12_server_closes_idle() {
    WHAT="TLS 1.2 with the client's key log: the handshake completes, the server (Python ssl) closes 0.2 s later without close_notify, and s_client, still waiting, answers the end of the stream with a decode_error: established (the alert answers the server's close, it refuses nothing)"
    STACK="OpenSSL $(openssl version | cut -d' ' -f2) s_client -> Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl server"
    srv python3 -c "
import socket, ssl, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('$CERTS/good.pem', '$CERTS/good.key')
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_server(('127.0.0.1', 443)) as ls:
    ls.settimeout(8)
    c, _ = ls.accept()
    t = ctx.wrap_socket(c, server_side=True)
    time.sleep(0.2)
    t.close()   # no close_notify: the socket is closed, not unwrapped
"
    REQ='' HOLD=2 ocli_k -tls1_2 -servername good.test "${VERIFY[@]}"
    ok 1.2 confidence='"high"'
}
case_keylog_tls13_psk_mismatch() {
    WHAT="TLS 1.3 with an external PSK: client and server hold different keys; the server's binder check fails and it answers with illegal_parameter"
    STACK="OpenSSL s_client -psk -> OpenSSL s_server -psk -nocert"
    srv openssl s_server -accept 443 -psk 1a2b3c4d -nocert -www -tls1_3
    ocli_k -tls1_3 -psk 1a2b3c4e
    fail protocol illegal_parameter server confidence='"high"'
}

# ---- A certificate refused for what it is (bad_certificate): an RSA 1024-bit key, which
# OpenSSL's default security level refuses ("EE certificate key too weak").
case_keylog_tls12_weak_key() {
    WHAT="TLS 1.2 with the client's key log: the server's certificate has an RSA 1024-bit key; s_client (security level 2) refuses it with bad_certificate"
    STACK="OpenSSL s_client -keylogfile -> OpenSSL s_server -cipher DEFAULT@SECLEVEL=0"
    osrv rsa1024 -tls1_2 -cipher DEFAULT@SECLEVEL=0
    ocli_k -tls1_2 -servername good.test "${VERIFY[@]}"
    fail certificate bad_certificate client confidence='"high"'
}
case_keylog_tls13_weak_key() {
    WHAT="TLS 1.3 with the client's key log: the server's certificate has an RSA 1024-bit key; s_client (security level 2) refuses it with bad_certificate"
    STACK="OpenSSL s_client -keylogfile -> OpenSSL s_server -cipher DEFAULT@SECLEVEL=0"
    osrv rsa1024 -tls1_3 -cipher DEFAULT@SECLEVEL=0
    ocli_k -tls1_3 -servername good.test "${VERIFY[@]}"
    fail certificate bad_certificate client confidence='"high"'
}
# ---- internal_error: a Python ssl server whose server-name callback fails answers the
# ClientHello with the alert the callback returns (ssl.ALERT_DESCRIPTION_INTERNAL_ERROR).
sni_fails_server() { # sni_fails_server MAX_VERSION
    srv python3 -c "
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('$CERTS/good.pem', '$CERTS/good.key')
ctx.maximum_version = ssl.TLSVersion.TLSv1_$1
ctx.sni_callback = lambda sock, name, c: ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
with socket.create_server(('127.0.0.1', 443)) as ls:
    ls.settimeout(8)
    c, _ = ls.accept()
    try:
        ctx.wrap_socket(c, server_side=True)
    except ssl.SSLError as e:
        print('server:', e, flush=True)
"
}
case_keylog_tls12_internal_error() {
    WHAT="TLS 1.2: the server's name callback fails (a Python ssl server returning ALERT_DESCRIPTION_INTERNAL_ERROR), so it answers the ClientHello with internal_error"
    STACK="OpenSSL s_client -keylogfile -> Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl server"
    sni_fails_server 2
    ocli_k -tls1_2 -servername good.test "${VERIFY[@]}"
    fail protocol internal_error server confidence='"high"'
}
case_keylog_tls13_internal_error() {
    WHAT="TLS 1.3: the server's name callback fails (a Python ssl server returning ALERT_DESCRIPTION_INTERNAL_ERROR), so it answers the ClientHello with internal_error"
    STACK="OpenSSL s_client -keylogfile -> Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl server"
    sni_fails_server 3
    ocli_k -tls1_3 -servername good.test "${VERIFY[@]}"
    fail protocol internal_error server confidence='"high"'
}

# ---- A server that sends its leaf without the intermediate CA that issued it (the client trusts
# the root): the PKI is made in the case's work directory (root -> intermediate -> good.test).
no_intermediate_pki() {
    local d=$CW/pki
    mkdir -p "$d"
    printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n[leaf]\nbasicConstraints=CA:FALSE\nsubjectAltName=DNS:good.test\nextendedKeyUsage=serverAuth\n' > "$d/ext.cnf"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/root.key" -out "$d/root.pem" -days 3650 \
        -subj "/O=tlsdiag tests/CN=tlsdiag Chain Root CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/int.key" -out "$d/int.csr" -subj "/O=tlsdiag tests/CN=tlsdiag Intermediate CA" 2>/dev/null
    openssl x509 -req -in "$d/int.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -set_serial 2 -days 3000 \
        -extfile "$d/ext.cnf" -extensions ca -out "$d/int.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/leaf.key" -out "$d/leaf.csr" -subj "/O=tlsdiag tests/CN=good.test" 2>/dev/null
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/int.pem" -CAkey "$d/int.key" -set_serial 3 -days 700 \
        -extfile "$d/ext.cnf" -extensions leaf -out "$d/leaf.pem" 2>/dev/null
    log_cmd "pki: root -> intermediate -> good.test made with openssl in \$WORK/pki (samples/scripts/keylog_cases.sh no_intermediate_pki)"
}
no_intermediate() { # no_intermediate MAX_VERSION: s_server sends the leaf alone, Python trusts the root
    no_intermediate_pki
    srv openssl s_server -accept 443 -cert "$CW/pki/leaf.pem" -key "$CW/pki/leaf.key" -www -keylogfile "$CW/keys.log"
    cli env SSLKEYLOGFILE="$(KEYS_C)" python3 "$HERE/tls_py.py" client --cafile "$CW/pki/root.pem" --max "$1"
}
# A chain that still carries its root cross-signed by an older root, now expired (as Let's
# Encrypt's carried the expired DST Root CA X3 cross-sign in 2021): clients that trust the newer
# root build their path around it.
cross_signed_pki() {
    local d=$CW/pki
    no_intermediate_pki
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/old.key" -out "$d/old.pem" -days 3650 \
        -subj "/O=tlsdiag tests/CN=tlsdiag Old Root CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
    mkdir -p "$d/ca"; : > "$d/ca/index.txt"; echo 10 > "$d/ca/serial"
    printf '[ca]\ndefault_ca=x\n[x]\ndir=%s\ndatabase=$dir/index.txt\nserial=$dir/serial\nnew_certs_dir=$dir\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n' "$d/ca" > "$d/ca.cnf"
    openssl x509 -x509toreq -in "$d/root.pem" -signkey "$d/root.key" -out "$d/root.csr" 2>/dev/null
    openssl ca -batch -config "$d/ca.cnf" -cert "$d/old.pem" -keyfile "$d/old.key" -in "$d/root.csr" \
        -startdate 20200101000000Z -enddate 20240930000000Z -extfile "$d/ext.cnf" -extensions ca -out "$d/cross.pem" 2>/dev/null
    cat "$d/int.pem" "$d/cross.pem" > "$d/chain.pem"
    log_cmd "pki: root -> intermediate -> good.test, and the root cross-signed by an old root until 2024-09-30 (keylog_cases.sh cross_signed_pki)"
}
case_keylog_py_cross_signed_tls13() {
    WHAT="TLS 1.3 with the client's key log: the server sends leaf, intermediate and its root cross-signed by an older root (expired 2024-09-30); Python ssl trusting the newer root connects as good.test (established: its path goes around the expired certificate), then as wrong.test, which the certificate does not cover (hostname_mismatch, not the expired cross-signature)"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    cross_signed_pki
    srv openssl s_server -accept 443 -cert "$CW/pki/leaf.pem" -key "$CW/pki/leaf.key" -cert_chain "$CW/pki/chain.pem" -www -keylogfile "$CW/keys.log"
    cli env SSLKEYLOGFILE="$(KEYS_C)" python3 "$HERE/tls_py.py" client --cafile "$CW/pki/root.pem" --max 1.3
    ok 1.3 confidence='"high"'
    cli env SSLKEYLOGFILE="$(KEYS_C)" python3 "$HERE/tls_py.py" client --cafile "$CW/pki/root.pem" --max 1.3 --sni wrong.test
    fail certificate hostname_mismatch client confidence='"high"'
}
case_keylog_py_no_intermediate_tls13() {
    WHAT="TLS 1.3 with the client's key log: the server sends its leaf without the intermediate CA that issued it; Python ssl, trusting the root, refuses with an encrypted unknown_ca alert"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    no_intermediate 1.3
    fail certificate unknown_ca client confidence='"high"'
}
case_keylog_py_no_intermediate_tls12() {
    WHAT="TLS 1.2 (key log given, not needed): the server sends its leaf without the intermediate CA that issued it; Python ssl, trusting the root, refuses with an unknown_ca alert"
    STACK="Python $(python3 -c 'import sys; print(sys.version.split()[0])') ssl -> OpenSSL $(openssl version | cut -d' ' -f2) s_server"
    no_intermediate 1.2
    fail certificate unknown_ca client confidence='"high"'
}

ALL_CASES=(
    keylog-tls13-expired keylog-tls13-not-yet-valid keylog-tls13-hostname-mismatch keylog-tls13-self-signed
    keylog-tls13-unknown-ca keylog-tls13-client-cert-missing keylog-tls13-client-cert-rejected
    keylog-tls13-bad-record-mac keylog-tls13-suites keylog-tls13-hrr
    keylog-tls12-gcm-alert keylog-tls12-cbc-alert keylog-tls12-cbc-mte-alert keylog-tls10-cbc-alert
    keylog-tls13-resumption-early-data keylog-partial-keys keylog-python-ok
    keylog-py-ip-mismatch-tls13 keylog-py-ip-mismatch-tls12 keylog-curl-ip-closed-tls13
    keylog-py-no-intermediate-tls13 keylog-py-no-intermediate-tls12
    keylog-tls12-decode-error keylog-tls13-decode-error keylog-tls12-illegal-parameter keylog-tls13-illegal-parameter
    keylog-tls12-unexpected-message keylog-tls13-unexpected-message keylog-tls12-decrypt-error
    keylog-tls12-record-overflow keylog-tls13-record-overflow keylog-tls13-psk-mismatch
    keylog-tls12-weak-key keylog-tls13-weak-key keylog-tls12-internal-error keylog-tls13-internal-error
    keylog-tls12-downgrade-seen-at-server keylog-chrome-ip-untrusted-tls12 keylog-gnutls-ip-pinned-tls13
    keylog-py-cross-signed-tls13 keylog-tls12-server-closes-idle
)

k_readme() {
    {
        echo "# $NAME"
        echo
        echo "$WHAT."
        echo
        echo "Made by \`samples/scripts/keylog_cases.sh $NAME\` on $(date -u +%Y-%m-%d) in netns $NS (loopback). Stack: $STACK."
        echo "keys.txt is the key log the test passes with \`--keylog keys.txt\` (the client's unless said)."
        echo
        echo "Commands (\$WORK = samples/work/keylog/$NAME):"
        echo
        sed 's/^/    /' "$CW/cmds"
        echo
        echo "On the wire, decrypted with keys.txt (samples/scripts/tls_summary.py):"
        echo
        python3 "$HERE/tls_summary.py" --keylog "$D/keys.txt" "$1" | sed 's/^/    /'
    } > "$D/README.md"
}

k_run_case() {
    NAME=$1
    local fn="case_${NAME//-/_}"
    declare -F "$fn" > /dev/null || { echo "unknown case $NAME" >&2; return 1; }
    CW="$WORK/$NAME"; D="$CASES/$NAME"
    rm -rf "$CW" "$D"; mkdir -p "$CW" "$D"
    : > "$CW/cmds"
    WHAT=""; STACK=""; NOTE=""; SETUP_REASON=""; SESS=(); SRV_PID=""; SRV_PORT=443
    ARGS='["--keylog", "keys.txt"]'
    local pcap="$D/$NAME.pcap"
    echo "== $NAME"
    cap_start "$pcap"
    "$fn"
    end_case
    cp "$(KEYS_C)" "$D/keys.txt" 2>/dev/null || echo "  !! no key log written" >&2
    write_expected
    k_readme "$pcap"
}

# Cases derived from others (no new traffic).
derive_dsb() { # the expired case with its keys embedded: editcap --inject-secrets
    local src="$CASES/keylog-tls13-expired" D="$CASES/keylog-tls13-dsb"
    rm -rf "$D"; mkdir -p "$D"
    editcap --inject-secrets "tls,$src/keys.txt" "$src/keylog-tls13-expired.pcap" "$D/keylog-tls13-dsb.pcapng"
    sed -e 's/"what": "[^"]*"/"what": "The keylog-tls13-expired capture with its key log embedded as a pcapng Decryption Secrets Block (editcap --inject-secrets): same verdict without --keylog"/' \
        -e '/"args"/d' "$src/expected.json" > "$D/expected.json"
    { echo "# keylog-tls13-dsb"; echo
      echo "keylog-tls13-expired.pcap and its keys.txt made into one pcapng by \`samples/scripts/keylog_cases.sh\`:"; echo
      echo "    editcap --inject-secrets tls,keys.txt keylog-tls13-expired.pcap keylog-tls13-dsb.pcapng"; echo
      echo "tlsdiag reads the Decryption Secrets Block (type 0x0A, secrets type TLSK) with no --keylog flag."
    } > "$D/README.md"
}
derive_damaged() { # the client-cert-missing key log with damaged and foreign lines around its real ones
    local src="$CASES/keylog-tls13-client-cert-missing" D="$CASES/keylog-damaged-keylog"
    rm -rf "$D"; mkdir -p "$D"
    cp "$src/keylog-tls13-client-cert-missing.pcap" "$D/keylog-damaged-keylog.pcap"
    { echo "# a damaged key log: comments, foreign labels, broken lines, then the real ones"
      echo "RSA 0011223344556677 00112233"
      echo "CLIENT_RANDOM not-hex-at-all 00"
      echo "CLIENT_HANDSHAKE_TRAFFIC_SECRET 00"
      printf 'SERVER_TRAFFIC_SECRET_0 %064d %s\n' 0 zz
      head -c 2000 /dev/zero | tr '\0' 'A'; echo
      echo "QUIC_SERVER_TRAFFIC_SECRET_0 $(printf '%064d' 0) $(printf '%064d' 0)"
      cat "$src/keys.txt"
      printf 'CLIENT_RANDOM 12'   # cut off, no newline
    } > "$D/keys.txt"
    sed -e 's/"what": "[^"]*"/"what": "The keylog-tls13-client-cert-missing capture with a damaged key log (foreign labels, broken and over-long lines): the good lines still decrypt, the bad ones are counted"/' \
        "$src/expected.json" | python3 -c '
import json, sys
e = json.load(sys.stdin)
e["anomalies"] = {"keylog_unknown_label": 2, "keylog_malformed_line": 5, "keylog_line_too_long": 1}
print(json.dumps(e, indent=2))' > "$D/expected.json"
    { echo "# keylog-damaged-keylog"; echo
      echo "keylog-tls13-client-cert-missing.pcap with a key log damaged by \`samples/scripts/keylog_cases.sh\` (derive_damaged):"
      echo "two foreign labels (RSA, QUIC), four broken lines, one 2000-byte line, a line cut off at the end, then the real lines."
      echo "The verdict is the undamaged case's; the summary counts the bad lines and names them by number."
    } > "$D/README.md"
}

if [ "${1:-}" = --list ]; then printf '%s\n' "${ALL_CASES[@]}" keylog-tls13-dsb keylog-damaged-keylog; exit 0; fi
mkdir -p "$WORK" "$CASES"
todo=("$@")
[ ${#todo[@]} -eq 0 ] && todo=("${ALL_CASES[@]}" keylog-tls13-dsb keylog-damaged-keylog)
rc=0
for c in "${todo[@]}"; do
    case $c in
        keylog-tls13-dsb) derive_dsb || rc=1 ;;
        keylog-damaged-keylog) derive_damaged || rc=1 ;;
        *) k_run_case "$c" || rc=1 ;;
    esac
done
exit $rc
