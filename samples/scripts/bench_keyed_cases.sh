#!/bin/bash
# bench_keyed_cases.sh - the TLS sessions of the benchmark mix (examples/gen_bench.rs), captured
# again with the key logs of the real stacks that made them, for `bench/run.sh --keyed`.
#
# Usage (as root):  samples/scripts/bench_keyed_cases.sh [--list] [case ...]   (no case = all)
#
# Each case is the tls_cases.sh case of the same name, run the same way (same servers, clients,
# certificates and options), with every stack writing its NSS key log: s_server -keylogfile
# (osrv), s_client -keylogfile, curl, GnuTLS (client and server) and Python ssl (tls_py.py)
# through SSLKEYLOGFILE. keys.txt is the union of those logs (a secret logged by both ends once).
# The sessions whose failure happens before any secret exists (no shared cipher, version
# mismatch) and the TCP-only kinds are the committed samples/cases captures, linked.
#
# Runs in the network namespace "tdk-bench" (or $TLSD_NS; created here, only lo, deleted at the
# end), servers on 127.0.0.1:443, tcpdump on lo. Writes bench/keyed-samples/<case>/
# {<case>.pcap,keys.txt,expected.json,README.md}; logs in samples/work/bench-keyed/<case>/.
# expected.json holds the verdict WITH the keys (where the keys change it, the case says why).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
NS=${TLSD_NS:-tdk-bench}
source "$HERE/in_netns.sh"
run_in_netns "$0" "$@"
TLSD_HELPERS_ONLY=1 source "$HERE/tls_cases.sh"
WORK="$SAMPLES/work/bench-keyed"
CASES="$(cd "$SAMPLES/.." && pwd)/bench/keyed-samples"

# s_client with its key log (tls_cases.sh's ocli has none); everything else logs through
# SSLKEYLOGFILE, set per case in kb_run_case.
ocli() { cli_get openssl s_client -connect 127.0.0.1:443 -ign_eof -keylogfile "$CW/client-keys.log" "$@"; }

# The TLS kinds of gen_bench's mix that carry secrets, made by tls_cases.sh's case functions.
KEYED=(
    tls13-ok-curl-nginx tls13-ok-openssl tls12-ok-openssl tls12-ok-python tls13-ok-gnutls tls13-hrr
    tls13-resumption tls12-resumption tls12-expired tls13-expired tls12-unknown-ca tls13-unknown-ca
    tls13-rejected-by-client-gnutls
)
# No secret is ever derived in these (or no TLS at all): the committed captures, linked.
LINKED=(
    tls12-no-shared-cipher tls13-no-shared-cipher tls13-version-mismatch tls12-version-mismatch
    tcp-server-silent tcp-syn-unanswered-v4 tcp-refused
)

# With the keys the decrypted messages name the cause that the wire alone cannot.
keyed_expectation() {
    case $NAME in
        tls13-rejected-by-client-gnutls)
            # GnuTLS's alert is encrypted: without keys "rejected_by_client"; with them it reads
            # fatal bad_certificate (42), sent by the client, for a certificate whose dates and
            # names are right and that is not self-signed: what is left is the untrusted issuer
            # ("tlsdiag Other CA"), inferred (medium), since only the client's trust store knows.
            SESS=()
            fail certificate unknown_ca client confidence='"medium"'
            SETUP_REASON=unknown_ca
            ;;
    esac
}

kb_run_case() {
    NAME=$1
    local fn="case_${NAME//-/_}"
    declare -F "$fn" > /dev/null || { echo "unknown case $NAME" >&2; return 1; }
    CW="$WORK/$NAME"; D="$CASES/$NAME"
    rm -rf "$CW" "$D"; mkdir -p "$CW" "$D"
    : > "$CW/cmds"
    WHAT=""; STACK=""; NOTE=""; ARGS='["--keylog", "keys.txt"]'; SETUP_REASON=""; DECRYPT=0; SESS=()
    SRV_PID=""; SRV_PORT=443
    local pcap="$D/$NAME.pcap"
    echo "== $NAME"
    export SSLKEYLOGFILE="$CW/env-keys.log"
    cap_start "$pcap"
    "$fn"
    end_case
    unset SSLKEYLOGFILE
    cat "$CW"/keys.log "$CW"/client-keys.log "$CW"/env-keys.log 2>/dev/null | grep -v '^#' | sort -u > "$D/keys.txt"
    # TLS 1.2 clients that reject the certificate abort before the key exchange: no secret.
    [ -s "$D/keys.txt" ] || echo "  $NAME: no secret was derived, keys.txt is empty" >&2
    keyed_expectation
    write_expected
    {
        echo "# $NAME (with key log)"
        echo
        echo "$WHAT."
        echo
        echo "The session(s) of samples/cases/$NAME made again by \`samples/scripts/bench_keyed_cases.sh $NAME\`"
        echo "on $(date -u +%Y-%m-%d) in netns $NS (loopback), with every stack's NSS key log in keys.txt."
        echo "Input of the keyed benchmark (\`bench/run.sh --keyed\`, see bench/README.md). Stack: $STACK."
        echo
        echo "Commands (\$WORK = samples/work/bench-keyed/$NAME; SSLKEYLOGFILE=\$WORK/env-keys.log for all):"
        echo
        sed 's/^/    /' "$CW/cmds"
        echo
        echo "On the wire, decrypted with keys.txt (samples/scripts/tls_summary.py):"
        echo
        python3 "$HERE/tls_summary.py" --keylog "$D/keys.txt" "$pcap" | sed 's/^/    /'
    } > "$D/README.md"
}

kb_link() {
    local name=$1
    rm -rf "${CASES:?}/$name"
    ln -s "../../samples/cases/$name" "$CASES/$name"
}

if [ "${1:-}" = --list ]; then printf '%s\n' "${KEYED[@]}" "${LINKED[@]}"; exit 0; fi
mkdir -p "$WORK" "$CASES"
todo=("$@")
[ ${#todo[@]} -eq 0 ] && todo=("${KEYED[@]}" "${LINKED[@]}")
rc=0
for c in "${todo[@]}"; do
    if printf '%s\n' "${LINKED[@]}" | grep -qx -- "$c"; then kb_link "$c"; else kb_run_case "$c" || rc=1; fi
done
exit $rc
