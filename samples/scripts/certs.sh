#!/bin/bash
# certs.sh - build the test PKI used by tls_cases.sh (run as any user; needs openssl >= 3.0).
#
# Output: samples/certs/ (small test keys and certificates, safe to commit - TEST ONLY).
#   ca.pem/ca.key                 "tlsdiag Test CA" (RSA 2048, SHA-256)
#   otherca.pem/otherca.key       "tlsdiag Other CA" (never trusted by any client/server here)
#   good.pem/.key                 good.test + IP 127.0.0.1, ::1; valid 2026-01-01..2028-12-31
#   expired.pem/.key              good.test; valid 2023-01-01..2024-06-30 (expired)
#   notyet.pem/.key               good.test; valid 2030-01-01..2031-12-31 (not yet valid)
#   other.pem/.key                other.test only (hostname mismatch for good.test)
#   selfsigned.pem/.key           good.test, self-signed
#   untrusted.pem/.key            good.test issued by the Other CA (unknown CA)
#   revoked.pem/.key + crl.pem    good.test, revoked in crl.pem (CRL valid from now for 365 days)
#   expiring.pem/.key             good.test; notAfter = now + 10 days (cert_expiring_soon)
#   weak.pem/.key                 good.test, RSA 1024 key AND SHA-1 signature
#   rsa1024.pem/.key              good.test, RSA 1024 key, SHA-256 signature
#   sha1.pem/.key                 good.test, RSA 2048 key, SHA-1 signature
#   cnonly.pem/.key               good.test in the subject CN only, no subjectAltName (Go, browsers: no name)
#   client.pem/.key               client cert (CN=client.test, clientAuth) from the Test CA
#   badclient.pem/.key            client cert from the Other CA (rejected by servers)
#   dh1024.pem                    1024-bit finite-field DH parameters (weak DHE)
#
# Usage: certs.sh [outdir]     (default: <repo>/samples/certs)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$HERE/../certs}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/tlsdiag-certs.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
export SAN=DNS:unused.test   # the ca.cnf [server] section references $ENV::SAN

# ---------- openssl ca configuration (one per CA) ----------
mkconf() { # $1 = ca name (ca | otherca)
    local d="$WORK/$1"
    mkdir -p "$d/new"
    : > "$d/index.txt"
    echo 1000 > "$d/serial"
    echo 1000 > "$d/crlnumber"
    cat > "$d/ca.cnf" <<EOF
[ ca ]
default_ca = the_ca
[ the_ca ]
dir              = $d
database         = \$dir/index.txt
new_certs_dir    = \$dir/new
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
certificate      = $OUT/$1.pem
private_key      = $OUT/$1.key
default_md       = sha256
default_crl_days = 365
policy           = pol
unique_subject   = no
copy_extensions  = none
[ pol ]
commonName       = supplied
organizationName = optional
[ server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = \$ENV::SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_cn ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

mkca() { # $1 = name, $2 = CN
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -keyout "$OUT/$1.key" -out "$OUT/$1.pem" \
        -subj "/O=tlsdiag tests/CN=$2" -days 3650 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    mkconf "$1"
}

# issue NAME CA EXT SAN START END MD KEYBITS
issue() {
    local name=$1 ca=$2 ext=$3 san=$4 start=$5 end=$6 md=$7 bits=$8 cn
    cn="${san#DNS:}"; cn="${cn%%,*}"
    [ "$ext" = client ] && cn="client.test"
    openssl req -new -newkey "rsa:$bits" -nodes -keyout "$OUT/$name.key" -out "$WORK/$name.csr" \
        -subj "/O=tlsdiag tests/CN=$cn" 2>/dev/null
    SAN="${san:-DNS:unused.test}" openssl ca -batch -config "$WORK/$ca/ca.cnf" -extensions "$ext" \
        -md "$md" -startdate "$start" -enddate "$end" \
        -in "$WORK/$name.csr" -out "$WORK/$name.full" -notext 2>"$WORK/$name.log" \
        || { cat "$WORK/$name.log" >&2; exit 1; }
    openssl x509 -in "$WORK/$name.full" -out "$OUT/$name.pem"
}

GOODSAN="DNS:good.test,IP:127.0.0.1,IP:::1"
V_FROM=20260101000000Z
V_TO=20281231235959Z

mkca ca "tlsdiag Test CA"
mkca otherca "tlsdiag Other CA"

issue good      ca      server "$GOODSAN"        $V_FROM          $V_TO           sha256 2048
issue expired   ca      server "$GOODSAN"        20230101000000Z  20240630235959Z sha256 2048
issue notyet    ca      server "$GOODSAN"        20300101000000Z  20311231235959Z sha256 2048
issue other     ca      server "DNS:other.test"  $V_FROM          $V_TO           sha256 2048
issue untrusted otherca server "$GOODSAN"        $V_FROM          $V_TO           sha256 2048
issue revoked   ca      server "$GOODSAN"        $V_FROM          $V_TO           sha256 2048
issue expiring  ca      server "$GOODSAN" "$(date -u -d '-355 days' +%Y%m%d%H%M%SZ)" \
                                                 "$(date -u -d '+10 days' +%Y%m%d%H%M%SZ)" sha256 2048
issue weak      ca      server "$GOODSAN"        $V_FROM          $V_TO           sha1   1024
issue rsa1024   ca      server "$GOODSAN"        $V_FROM          $V_TO           sha256 1024
issue sha1      ca      server "$GOODSAN"        $V_FROM          $V_TO           sha1   2048
issue cnonly    ca      server_cn "DNS:good.test" $V_FROM          $V_TO           sha256 2048
issue client    ca      client ""                $V_FROM          $V_TO           sha256 2048
issue badclient otherca client ""                $V_FROM          $V_TO           sha256 2048

# self-signed leaf for good.test
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -keyout "$OUT/selfsigned.key" -out "$OUT/selfsigned.pem" \
    -subj "/O=tlsdiag tests/CN=good.test" -days 1095 \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "subjectAltName=$GOODSAN" -addext "extendedKeyUsage=serverAuth" 2>/dev/null

# revoke "revoked" and publish the CRL (lastUpdate = now, nextUpdate = now + 365 days)
openssl ca -batch -config "$WORK/ca/ca.cnf" -revoke "$OUT/revoked.pem" -crl_reason keyCompromise 2>/dev/null
openssl ca -batch -config "$WORK/ca/ca.cnf" -gencrl -out "$OUT/crl.pem" 2>/dev/null

# weak finite-field DH parameters for DHE (1024 bit)
if [ ! -s "$OUT/dh1024.pem" ]; then
    openssl genpkey -genparam -algorithm DH -pkeyopt dh_paramgen_prime_len:1024 -out "$OUT/dh1024.pem" 2>/dev/null
fi

echo "certs.sh: wrote $(ls "$OUT" | wc -l) files to $OUT"
for c in good expired notyet other untrusted revoked expiring weak rsa1024 sha1 client badclient selfsigned; do
    printf '  %-11s %s\n' "$c" "$(openssl x509 -in "$OUT/$c.pem" -noout -enddate -ext subjectAltName 2>/dev/null | tr '\n' ' ')"
done
