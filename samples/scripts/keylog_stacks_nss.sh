#!/bin/bash
# keylog_stacks_nss.sh - NSS (the TLS stack of Firefox) in keylog_stacks.sh: the client 'nss'
# (tstclnt) and the server 'nss' (selfserv), each with an NSS database of its own made here
# (certutil/pk12util) holding the Test CA of samples/scripts/certs.sh and its own certificate.
# Sourced by keylog_stacks.sh; the NSS parts of that script call the functions below.
#
# Debian's NSS (libnss3 3.87) is built without SSLKEYLOGFILE support (libssl3.so has no
# key log code): tstclnt and selfserv write no key log. keys.txt is then the PEER's key log
# (the same NSS key log lines, matched by client random): s_server -keylogfile, SSLKEYLOGFILE
# for gnutls-serv, the Python and Node.js servers, or the client's own for selfserv cases.
# nginx writes none, so an NSS client against nginx is a case without keys.

V_NSS=$(dpkg-query -W -f '${Version}' libnss3 2>/dev/null | sed 's/^[0-9]*://; s/-.*//')

# nss_db DIR [CERT NICK]: a fresh NSS database in DIR trusting the Test CA for TLS servers and
# clients (trust CT,,), with CERT (samples/certs/CERT.{pem,key}) and its key as NICK if given.
nss_db() {
    local d=$1 cert=${2:-} nick=${3:-}
    rm -rf "$d"; mkdir -p "$d"
    certutil -N -d "sql:$d" --empty-password || return 1
    certutil -A -d "sql:$d" -t CT,, -n "tlsdiag Test CA" -i "$CA" || return 1
    log_cmd "certutil -N -d sql:\$DB --empty-password; certutil -A -d sql:\$DB -t CT,, -n 'tlsdiag Test CA' -i samples/certs/ca.pem"
    if [ -n "$cert" ]; then
        openssl pkcs12 -export -in "$CERTS/$cert.pem" -inkey "$CERTS/$cert.key" -name "$nick" \
            -passout pass: -out "$d/$nick.p12" || return 1
        pk12util -i "$d/$nick.p12" -d "sql:$d" -W '' > /dev/null || return 1
        log_cmd "openssl pkcs12 -export -in samples/certs/$cert.pem -inkey samples/certs/$cert.key -name $nick -passout pass: | pk12util -i - -d sql:\$DB -W ''"
    fi
}

# s_nss CERT VER MODE: selfserv (NSS) on 443 (modes as for the other s_<server>).
s_nss() {
    local cert=$1 mode=$3 db="$CW/nss-server" a=(-V tls1.2:tls1.3 -u)
    nss_db "$db" "$cert" server || return 1
    case $mode in
        ccreq) a+=(-r -r) ;;                       # request and require a client certificate
        nocipher) a+=(-c :C030:1302) ;;            # ECDHE-RSA-AES256-GCM-SHA384, TLS_AES_256_GCM_SHA384
        nogroup) a+=(-I P384) ;;
        only12) a=(-V tls1.2:tls1.2) ;;
        only13) a=(-V tls1.3:tls1.3 -u) ;;
    esac
    srv selfserv -d "sql:$db" -n server -p 443 "${a[@]}"
}

# c_nss VER MODE: tstclnt (NSS) to 127.0.0.1:443 with SNI good.test, verifying the server's
# certificate against its database (no -o: a bad certificate fails the handshake).
c_nss() {
    local v=$1 mode=$2 db="$CW/nss-client" a=(-h 127.0.0.1 -a good.test -p 443)
    if [ "$v" = 13 ]; then a+=(-V tls1.3:tls1.3); else a+=(-V tls1.2:tls1.2); fi
    case $mode in
        badcert) nss_db "$db" badclient client || return 1; a+=(-n client) ;;
        goodcert) nss_db "$db" client client || return 1; a+=(-n client) ;;
        *) nss_db "$db" || return 1 ;;
    esac
    case $mode in
        nocipher) a+=(-c :CCA8:1303) ;;            # ECDHE-RSA-CHACHA20-POLY1305, TLS_CHACHA20_POLY1305_SHA256
        nogroup) a+=(-I x25519) ;;
    esac
    if [ "$mode" = resume ]; then # connect twice (-L 2 needs -A), the second resuming the first
        printf "$REQ" > "$CW/request.txt"
        CLI_TIMEOUT=8 cli tstclnt -d "sql:$db" "${a[@]}" -L 2 -A "$CW/request.txt"
    else
        HOLD=1 CLI_TIMEOUT=6 cli_get tstclnt -d "sql:$db" "${a[@]}"
    fi
    # No key log from NSS here: the server's (see the top of this file).
    [ -s "$(KEYS_C)" ] || cp "$CW/keys.log" "$(KEYS_C)" 2> /dev/null || :
}

# nss_server_keys SERVER: the servers that log keys only when asked by SSLKEYLOGFILE, asked to
# for an NSS client (which logs none).
nss_server_keys() {
    case $1 in gnutls|py) export SSLKEYLOGFILE="$CW/keys.log"; log_cmd "(the server runs with SSLKEYLOGFILE=\$WORK/keys.log)" ;; esac
}

# nss_notes CLIENT SERVER SCENARIO VER: the NSS-specific parts of a case's description and
# expected verdicts (after run_combo has set WHAT and SESS for the scenario).
# nss_unkeyed: a TLS 1.3 failure without keys is read from record sizes only (medium).
nss_unkeyed() {
    local i
    for i in "${!SESS[@]}"; do
        case ${SESS[$i]} in *'"failed"'*) SESS[i]=${SESS[$i]/'"high"'/'"medium"'} ;; esac
    done
}

nss_unkeyed12() {
    SESS[0]=${SESS[0]/'"high"'/'"medium"'}
}

nss_notes() {
    local c=$1 s=$2 sc=$3 v=$4
    if [ "$c" = nss ] && { [ "$s" = nss ] || [ "$s" = nginx ]; }; then
        WHAT=${WHAT/"with the client's key log"/without a key log}
    elif [ "$c" = nss ]; then
        WHAT=${WHAT/"with the client's key log"/"with the server's key log"}
    fi
    if [ "$c" = nss ] && [ "$s" = nss ]; then
        WHAT+=" (no key log: neither NSS tool writes one)"
        # No keys: the TLS 1.3 failures are read from record sizes only.
        [ "$v" = 13 ] && nss_unkeyed
    elif [ "$c" = nss ] && [ "$s" = nginx ]; then
        WHAT+=" (no key log: NSS and nginx write none)"
        # TLS 1.3: the certificate is encrypted, only the refusal after the server's flight shows.
        case $v-$sc in
            13-expired|13-hostname|13-notyet|13-selfsigned|13-unknownca)
                SESS=(); fail certificate rejected_by_client client confidence='"medium"' ;;
            # nginx completes the handshake and answers HTTP 400: encrypted, an established session.
            *-ccmissing) SESS=(); ok "1.${v#1}" confidence='"high"' ;;
        esac
        # TLS 1.2: NSS judges the certificate while it goes on with its handshake, and refuses it
        # with an alert encrypted after its Finished: the chain in the clear gives the reason.
        if [ "$v" = 12 ]; then
            case $sc in
                expired|hostname|notyet|selfsigned) nss_unkeyed12 ;;
                unknownca) SESS=(); fail certificate rejected_by_client client confidence='"medium"' ;;
            esac
        fi
    elif [ "$c" = nss ]; then
        WHAT+=" (this NSS build writes no key log)"
    fi
    return 0
}

# nss_after_capture PCAP (called by k_run once the capture is made): the cases without any key
# log lose --keylog and keys.txt; an NSS client's TLS 1.2 refusal without keys is read from
# the capture.
# NSS sends its alert once its certificate check ends, while its handshake goes on: before the
# server's ChangeCipherSpec (the alert can only answer the server's first flight: the chain's
# fault, medium) or after it, which cannot be told from a close_notify without keys (the session
# stays established, the chain's fault as a warning). Which one happened is a race.
nss_after_capture() {
    local pcap=$1 sc alert ccs
    # No key log at all (NSS against nginx or NSS): judged without --keylog and without keys.txt.
    case $NAME in keylog-nss-nginx-*|keylog-nss-nss-*) ARGS=''; rm -f "$D/keys.txt" ;; esac
    [[ $NAME == keylog-nss-*-tls12 ]] || return 0
    sc=$(echo "$NAME" | cut -d- -f4)
    case $sc in expired|hostname|notyet|selfsigned|unknownca) ;; *) return 0 ;; esac
    alert=$(tshark -r "$pcap" -Y 'tls.record.content_type == 21 && tcp.dstport == 443' -T fields -e frame.number 2>/dev/null | head -1)
    ccs=$(tshark -r "$pcap" -Y 'tls.record.content_type == 20 && tcp.srcport == 443' -T fields -e frame.number 2>/dev/null | head -1)
    [ -n "$alert" ] && [ -n "$ccs" ] || return 0
    if [[ $NAME != keylog-nss-nginx-* ]]; then
        if [ "$alert" -gt "$ccs" ]; then
            WHAT+=" (NSS's alert, after its Finished, came after the server's Finished: read with the keys)"
        else
            WHAT+=" (NSS's alert, after its Finished, came before the server's ChangeCipherSpec)"
        fi
        return 0
    fi
    if [ "$alert" -gt "$ccs" ]; then
        local -A warn=([expired]=cert_expired [hostname]=sni_not_in_certificate [notyet]=cert_not_yet_valid [selfsigned]=self_signed_certificate [unknownca]=)
        SESS=(); ok 1.2 ${warn[$sc]} confidence='"high"'
        WHAT+=" (its encrypted alert came after the server's Finished: without keys, it reads as a close_notify)"
    else
        WHAT+=" (its encrypted alert came before the server's ChangeCipherSpec)"
    fi
}

nss_keys_note() {
    case $1 in
        keylog-nss-nss-*|keylog-nss-nginx-*) echo "No key log: Debian's NSS is built without SSLKEYLOGFILE and nginx writes none; the case is judged without keys (no keys.txt, no --keylog)." ;;
        keylog-nss-*) echo "keys.txt is the SERVER's key log (s_server -keylogfile, or SSLKEYLOGFILE for gnutls-serv and the Python and Node.js servers): Debian's NSS is built without SSLKEYLOGFILE; the lines are the same NSS key log lines the client would write. The test passes it with \`--keylog keys.txt\`." ;;
        keylog-*-nss-*) echo "keys.txt is the client's own key log (SSLKEYLOGFILE, or -keylogfile for s_client); selfserv (NSS) writes none. The test passes it with \`--keylog keys.txt\`." ;;
    esac
}

# The NSS combinations (--matrix-nss).
# (nogroup in TLS 1.3 only, as in the main matrix: in TLS 1.2 a server without the client's
# group falls back to another key exchange or fails otherwise.)
MATRIX_NSS=(keylog-nss-ossl-nogroup-tls13 keylog-nss-gnutls-nogroup-tls13 keylog-curl-nss-nogroup-tls13
    keylog-ossl-nss-nogroup-tls13 keylog-gnutls-nss-nogroup-tls13)
for v in tls13 tls12; do
    for sc in ok resume expired hostname selfsigned unknownca notyet ccok ccmissing ccrejected nocipher version; do
        MATRIX_NSS+=(keylog-nss-ossl-$sc-$v keylog-nss-gnutls-$sc-$v)
    done
    for sc in ok expired hostname selfsigned unknownca notyet ccmissing ccrejected; do
        MATRIX_NSS+=(keylog-nss-py-$sc-$v keylog-nss-node-$sc-$v)
    done
    for sc in ok resume ccok ccmissing ccrejected nocipher version; do
        MATRIX_NSS+=(keylog-curl-nss-$sc-$v keylog-ossl-nss-$sc-$v keylog-gnutls-nss-$sc-$v)
    done
    for sc in ok ccmissing ccrejected; do
        MATRIX_NSS+=(keylog-py-nss-$sc-$v keylog-node-nss-$sc-$v)
    done
    MATRIX_NSS+=(keylog-nss-nss-ok-$v keylog-nss-nss-ccmissing-$v keylog-nss-nss-ccrejected-$v)
    # Without keys (nginx writes none): what the client's refusal shows on its own.
    for sc in expired hostname selfsigned unknownca notyet ccmissing; do MATRIX_NSS+=(keylog-nss-nginx-$sc-$v); done
done

# c_wget VER MODE: Debian's wget (linked with GnuTLS) fetching https://good.test/ (--matrix-wget);
# good.test resolves to 127.0.0.1 through a hosts file bind-mounted over /etc/hosts in a mount
# namespace of wget's own (unshare -m). GnuTLS writes its key log from SSLKEYLOGFILE.
V_WGET=$(wget --version 2>/dev/null | head -1 | awk '{print $3}')
c_wget() {
    local v=$1 a=(--ca-certificate="$CA" -O /dev/null -t 1 -T 5)
    # (--secure-protocol=TLSv1_2 still offers TLS 1.3 with GnuTLS: a priority string instead.)
    if [ "$v" = 13 ]; then a+=(--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3); else a+=(--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.2); fi
    printf '127.0.0.1 good.test\n' > "$CW/hosts"
    cli env SSLKEYLOGFILE="$(KEYS_C)" unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$CW/hosts" \
        wget "${a[@]}" https://good.test/
}
MATRIX_WGET=()
for v in tls13 tls12; do
    for sc in ok expired hostname unknownca; do MATRIX_WGET+=(keylog-wget-nginx-$sc-$v); done
done

# The NSS cases committed under samples/cases (keylog_stacks.sh adds them to its list).
NSS_KEPT=(
    keylog-nss-ossl-notyet-tls13 keylog-nss-py-selfsigned-tls12 keylog-nss-node-hostname-tls13
    keylog-nss-nginx-expired-tls12 keylog-nss-nginx-unknownca-tls12
    keylog-curl-nss-ccrejected-tls13 keylog-gnutls-nss-ccmissing-tls12 keylog-nss-ossl-ok-tls13
)
