#!/usr/bin/env bash
# make_realcap.sh — record an independent, real HTTPS capture (nginx + curl + openssl over a veth pair
# between two network namespaces, offloads off, MTU 1500) with ground truth from the clients' exit
# statuses. See README.md next to this script. Needs root, iproute2, ethtool, iptables, nginx, curl,
# openssl, tcpdump, python3. Writes only under $OUT (default /work/realcap), never into the repository.
#
#   bench/realcap/make_realcap.sh                      # ~1.7 GB, at most 600 s of traffic
#   TARGET_BYTES=300000000 MAX_SECONDS=120 bench/realcap/make_realcap.sh   # a quick small one
set -euo pipefail

OUT=${OUT:-/work/realcap}
TARGET_BYTES=${TARGET_BYTES:-1700000000}   # stop the traffic when the pcap reaches this size
MAX_SECONDS=${MAX_SECONDS:-600}            # ... or after this many seconds of traffic
BULK_RATE=${BULK_RATE:-1000k}              # per rate-limited bulk download
SHORT_MAX=${SHORT_MAX:-8000}               # iterations per short-request loop (upper bound)

SRV=rc_srv; CLI=rc_cli; VS=rc-veth-s; VC=rc-veth-c
SIP=10.77.0.1; CIP=10.77.0.2; NAME=realcap.test
PORTS="443 8443 8444 8445 8446 8447 8448"
FILTER='tcp port 443 or tcp portrange 8443-8448'
W=$OUT/work; PCAP=$OUT/realcap.pcap; STOP=$W/STOP; TL=$W/truth   # per-worker ground-truth logs

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
for c in ip ethtool iptables nginx curl openssl tcpdump python3; do
  command -v $c >/dev/null || { echo "missing: $c (apt-get install iproute2 ethtool iptables nginx curl openssl tcpdump python3)" >&2; exit 2; }
done
if ip netns list | grep -qw -e $SRV -e $CLI; then echo "namespaces $SRV/$CLI exist: an earlier run is still up or was not cleaned" >&2; exit 2; fi

mkdir -p "$OUT"; rm -rf "$W"; mkdir -p "$W"/{pki,www/small,www/big,logs,run,sess} "$TL"
rm -f "$PCAP" "$OUT/truth.txt" "$OUT/truth_conns.tsv"

PIDS_TO_STOP=()   # every long-running process this script starts (stopped by PID)
cleanup() {
  set +e
  touch "$STOP"
  for f in "$W"/run/bulk*.pid "$W"/run/burst.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  for p in "${PIDS_TO_STOP[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  [ -n "${NGINX_PID:-}" ] && kill -QUIT "$NGINX_PID" 2>/dev/null
  [ -n "${TCPDUMP_PID:-}" ] && kill -INT "$TCPDUMP_PID" 2>/dev/null
  sleep 2
  ip netns del $CLI 2>/dev/null; ip netns del $SRV 2>/dev/null
  rm -rf "$W/www/big"
}
trap cleanup EXIT

# ---------------------------------------------------------------- PKI: CA, good, expired certificates
cd "$W/pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -sha256 \
  -subj "/O=realcap/CN=realcap Test CA" 2>/dev/null
mk_csr() { openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/O=realcap/CN=$2" 2>/dev/null
           printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"; }
mk_csr good $NAME
openssl x509 -req -in good.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 -extfile good.ext -out good.crt 2>/dev/null
mk_csr expired expired.$NAME      # backdated with `openssl ca` (x509 -req cannot set notBefore in 3.0)
mkdir -p cadb; : > cadb/index.txt; echo 1000 > cadb/serial
cat > ca.cnf <<EOF
[ca]
default_ca = c
[c]
dir = $W/pki/cadb
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $W/pki/ca.crt
private_key = $W/pki/ca.key
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
commonName = supplied
organizationName = optional
EOF
openssl ca -batch -config ca.cnf -startdate 20230101000000Z -enddate 20240630235959Z \
  -extfile expired.ext -in expired.csr -out expired.crt 2>/dev/null
openssl x509 -in expired.crt -noout -enddate | sed 's/^/expired cert /'

# ---------------------------------------------------------------- content: small pages + big random files
python3 - "$W/www" <<'EOF'
import os, random, sys
root = sys.argv[1]; r = random.Random(7)
for i in range(100):
    n = r.choice([300, 1200, 4000, 9000, 20000, 60000])
    with open(f"{root}/small/p{i}.html", "w") as f:
        f.write("<html><body>" + "".join(r.choice("abcdefghij \n") for _ in range(n)) + "</body></html>\n")
EOF
echo ok > "$W/www/index.html"
for s in 50 100 200; do head -c ${s}M /dev/urandom > "$W/www/big/r$s.bin"; done

# ---------------------------------------------------------------- namespaces + veth, offloads off
ip netns add $SRV; ip netns add $CLI
ip link add $VS type veth peer name $VC
ip link set $VS netns $SRV; ip link set $VC netns $CLI
for ns in $SRV $CLI; do ip -n $ns link set lo up; done
ip -n $SRV addr add $SIP/24 dev $VS; ip -n $CLI addr add $CIP/24 dev $VC
ip -n $SRV link set $VS mtu 1500 up; ip -n $CLI link set $VC mtu 1500 up
for pair in "$SRV $VS" "$CLI $VC"; do
  set -- $pair
  for feat in tso gso gro lro ufo tx rx sg tx-checksum-ip-generic; do
    ip netns exec $1 ethtool -K $2 $feat off 2>/dev/null || true
  done
  ip netns exec $1 ethtool -k $2 | grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-checksumming|rx-checksumming|scatter-gather):' \
    | sed "s/^/$2 /" | tee -a "$W/logs/offloads.txt"
done
ip netns exec $SRV iptables -A INPUT -p tcp --dport 8447 -j DROP     # SYNs black-holed -> timeouts

# ---------------------------------------------------------------- server side: nginx + a silent listener
cat > "$W/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $W/run/nginx.pid;
error_log $W/logs/nginx_error.log warn;
events { worker_connections 8192; }
http {
  access_log $W/logs/access.log;
  sendfile on;
  keepalive_timeout 5;
  ssl_session_cache shared:RC:20m;
  ssl_session_timeout 1h;
  root $W/www;
  # 443: the good server, TLS 1.2 + 1.3, HTTP/1.1 + HTTP/2
  server { listen $SIP:443 ssl http2; server_name $NAME;
           ssl_certificate $W/pki/good.crt; ssl_certificate_key $W/pki/good.key;
           ssl_protocols TLSv1.2 TLSv1.3; }
  # 8443: expired certificate
  server { listen $SIP:8443 ssl; server_name expired.$NAME;
           ssl_certificate $W/pki/expired.crt; ssl_certificate_key $W/pki/expired.key;
           ssl_protocols TLSv1.2 TLSv1.3; }
  # 8444: only TLS 1.0/1.1 (clients with OpenSSL 3 defaults refuse -> protocol_version)
  server { listen $SIP:8444 ssl; server_name $NAME;
           ssl_certificate $W/pki/good.crt; ssl_certificate_key $W/pki/good.key;
           ssl_protocols TLSv1 TLSv1.1; ssl_ciphers 'DEFAULT:@SECLEVEL=0'; }
  # 8445: TLS 1.2 only, one static-RSA suite (clients offering only ECDHE suites -> handshake_failure)
  server { listen $SIP:8445 ssl; server_name $NAME;
           ssl_certificate $W/pki/good.crt; ssl_certificate_key $W/pki/good.key;
           ssl_protocols TLSv1.2; ssl_ciphers 'AES256-SHA256'; }
}
EOF
ip netns exec $SRV nginx -t -c "$W/nginx.conf" -p "$W" 2>&1 | tail -1
ip netns exec $SRV nginx -c "$W/nginx.conf" -p "$W" & NGINX_PID=$!
# 8448: accepts TCP, reads, never answers, closes after 12 s (a server that hangs in the handshake)
cat > "$W/silent.py" <<'EOF'
import socket, threading, time, sys
end = time.time() + float(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8448)); s.listen(128); s.settimeout(1)
def hold(c):
    c.settimeout(1); t = time.time() + 12
    while time.time() < t:
        try:
            if not c.recv(65536): break
        except socket.timeout: pass
        except OSError: break
    c.close()
while time.time() < end:
    try: c, _ = s.accept()
    except socket.timeout: continue
    threading.Thread(target=hold, args=(c,), daemon=True).start()
EOF
ip netns exec $SRV python3 "$W/silent.py" $SIP $((MAX_SECONDS + 60)) & PIDS_TO_STOP+=($!)
sleep 1

# ---------------------------------------------------------------- capture
ip netns exec $SRV tcpdump -i $VS -s 0 -B 262144 -Z root -w "$PCAP" "$FILTER" 2> "$W/logs/tcpdump.txt" & TCPDUMP_PID=$!
sleep 2

# ---------------------------------------------------------------- clients
CA=$W/pki/ca.crt
RES=(--resolve $NAME:443:$SIP --resolve expired.$NAME:8443:$SIP --resolve $NAME:8444:$SIP
     --resolve $NAME:8445:$SIP --resolve $NAME:8446:$SIP --resolve $NAME:8447:$SIP
     --resolve $NAME:8448:$SIP --resolve other.test:443:$SIP)
WFMT='%{local_port}\t%{exitcode}\t%{http_code}\t%{http_version}\t%{ssl_verify_result}\t%{remote_port}\n'
T0=$SECONDS
alive() { [ ! -e "$STOP" ] && [ $((SECONDS - T0)) -lt "$MAX_SECONDS" ]; }
# one curl, one line per transfer in $TL/<worker>.tsv: start  kind  local_port exit http ver verify rport
ccurl() { local wk=$1 kind=$2; shift 2; local t=$EPOCHREALTIME
  ip netns exec $CLI curl -sS -o /dev/null -w "$t\t$kind\t$WFMT" "${RES[@]}" "$@" >> "$TL/$wk.tsv" 2>> "$W/logs/$wk.err" || true; }
U=https://$NAME; SM() { echo "$U/small/p$((RANDOM % 100)).html"; }
H1C=(--http1.1 -H 'Connection: close' --cacert $CA --max-time 20)

short12() { local i=0; while alive && [ $i -lt $SHORT_MAX ]; do i=$((i+1))
  ccurl short12 ok_h1_tls12 "${H1C[@]}" --tlsv1.2 --tls-max 1.2 "$(SM)"; done; }
short13() { local i=0; while alive && [ $i -lt $SHORT_MAX ]; do i=$((i+1))
  ccurl short13 ok_h1_tls13 "${H1C[@]}" --tlsv1.3 "$(SM)"; done; }
shorth2() { local i=0; while alive && [ $i -lt $SHORT_MAX ]; do i=$((i+1))
  if [ $((i % 4)) = 0 ]; then ccurl shorth2 ok_h2_tls12 --http2 --cacert $CA --max-time 20 --tls-max 1.2 "$(SM)"
  else ccurl shorth2 ok_h2_tls13 --http2 --cacert $CA --max-time 20 "$(SM)"; fi; done; }
# 5 URLs per curl with Connection: close -> 5 connections, the last 4 resume the first one's session
resume() { local i=0; while alive && [ $i -lt $((SHORT_MAX / 5)) ]; do i=$((i+1))
  local urls=("$(SM)" -o /dev/null "$(SM)" -o /dev/null "$(SM)" -o /dev/null "$(SM)" -o /dev/null "$(SM)")
  if [ $((i % 2)) = 0 ]; then ccurl resume resume_curl_tls12 "${H1C[@]}" --tls-max 1.2 "${urls[@]}"
  else ccurl resume resume_curl_tls13 "${H1C[@]}" --tlsv1.3 "${urls[@]}"; fi; done; }
# openssl s_client: one full handshake (-sess_out) then 3 resumptions (-sess_in); "Reused" is checked
sclient() { local i=0 v sf out r; printf 'GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n' $NAME > "$W/req.txt"
  while alive && [ $i -lt $((SHORT_MAX / 4)) ]; do i=$((i+1))
    if [ $((i % 2)) = 0 ]; then v=-tls1_2; else v=-tls1_3; fi; sf=$W/sess/s.pem; rm -f "$sf"
    for k in 0 1 2 3; do
      local t=$EPOCHREALTIME
      local so=-sess_out; [ $k = 0 ] || so=-sess_in
      r=0; out=$(timeout 20 ip netns exec $CLI openssl s_client -connect $SIP:443 -servername $NAME -CAfile $CA \
            -verify_return_error $v -ign_eof $so "$sf" < "$W/req.txt" 2>&1) || r=$?
      local how=$(grep -oE '^(New|Reused), TLSv1\.[0-9]' <<< "$out" | head -1 | tr ', ' '__')
      printf '%s\tsclient%s_%s\t-\t%s\t-\t-\t-\t443\n' "$t" "$v" "${how:-none}" "$r" >> "$TL/sclient.tsv"
    done; done; }
# fast failures, round robin
failfast() { local i=0; while alive && [ $i -lt $((SHORT_MAX / 5)) ]; do i=$((i+1))
  case $((i % 9)) in
    0) ccurl failfast expired_tls12   --cacert $CA --max-time 10 --tls-max 1.2 https://expired.$NAME:8443/ ;;
    1) ccurl failfast expired_tls13   --cacert $CA --max-time 10 --tlsv1.3 https://expired.$NAME:8443/ ;;
    2) ccurl failfast unknownca_tls12 --cacert /etc/ssl/certs/ca-certificates.crt --max-time 10 --tls-max 1.2 "$U/" ;;
    3) ccurl failfast unknownca_tls13 --cacert /etc/ssl/certs/ca-certificates.crt --max-time 10 --tlsv1.3 "$U/" ;;
    4) ccurl failfast hostname_mismatch --cacert $CA --max-time 10 https://other.test/ ;;
    5) ccurl failfast version_srv_tls10_11_only --cacert $CA --max-time 10 https://$NAME:8444/ ;;
    6) ccurl failfast cipher_no_shared --cacert $CA --max-time 10 --tls-max 1.2 \
          --ciphers 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305' https://$NAME:8445/ ;;
    7) ccurl failfast version_client_tls13_only_vs_tls12_srv --cacert $CA --max-time 10 --tlsv1.3 https://$NAME:8445/ ;;
    8) ccurl failfast refused_closed_port --cacert $CA --max-time 10 https://$NAME:8446/ ;;
  esac; sleep 0.1; done; }
# slow failures: black-holed SYNs (8447) and a server that never answers the ClientHello (8448)
failslow() { local i=0; while alive && [ $i -lt 200 ]; do i=$((i+1))
  if [ $((i % 2)) = 0 ]; then ccurl failslow syn_dropped_timeout --cacert $CA --connect-timeout 3 --max-time 5 https://$NAME:8447/
  else ccurl failslow server_silent_timeout --cacert $CA --max-time 5 https://$NAME:8448/; fi; done; }
# bulk: rate-limited downloads of 50/100 MB, plus a 200 MB burst every ~93 s; the curl runs in the
# background so that the monitor can stop it (by PID) when the capture is big enough
bulk1() { local wk=$1 kind=$2 url=$3; shift 3; local t=$EPOCHREALTIME
  ip netns exec $CLI curl -sS -o /dev/null -D "$W/run/$wk.hdr" -w "$t\t$kind\t$WFMT" "${RES[@]}" --cacert $CA "$@" "$url" \
     >> "$TL/$wk.tsv" 2>> "$W/logs/$wk.err" & local p=$!; echo $p > "$W/run/$wk.pid"
  local r=0; wait $p || r=$?; : > "$W/run/$wk.pid"
  if [ $r -ge 128 ]; then   # stopped by the monitor: no -w line; record it, with whether a response had begun
    local hs=$( [ -s "$W/run/$wk.hdr" ] && echo stopped_after_handshake || echo stopped_before_response )
    printf '%s\t%s\t-\t%s\t-\t-\t-\t443\t%s\n' "$t" "$kind" "$r" "$hs" >> "$TL/$wk.tsv"; fi
  rm -f "$W/run/$wk.hdr"; }
bulkloop() { local wk=$1 i=0; shift; while alive && [ $i -lt 50 ]; do i=$((i+1))
  local f=r50.bin; if [ $((i % 2)) = 0 ]; then f=r100.bin; fi
  if [ $((i % 3)) = 0 ]; then bulk1 $wk bulk_ratelimited_tls12 $U/big/$f --limit-rate $BULK_RATE --max-time 300 --tls-max 1.2
  else bulk1 $wk bulk_ratelimited_tls13 $U/big/$f --limit-rate $BULK_RATE --max-time 300 --tlsv1.3; fi; done; }
burst() { local i=0; sleep 20; while alive && [ $i -lt 20 ]; do i=$((i+1))
  bulk1 burst bulk_burst_200MB $U/big/r200.bin --limit-rate 60M --max-time 60 --http2
  local s=0; while alive && [ $s -lt 90 ]; do sleep 1; s=$((s+1)); done; done; }

WORKERS=()
short12 & WORKERS+=($!); short13 & WORKERS+=($!); shorth2 & WORKERS+=($!); resume & WORKERS+=($!)
sclient & WORKERS+=($!); failfast & WORKERS+=($!); failslow & WORKERS+=($!)
for b in 1 2 3; do bulkloop bulk$b & WORKERS+=($!); done
burst & WORKERS+=($!)

# ---------------------------------------------------------------- monitor: stop at the target size or time
while :; do
  sz=$(stat -c %s "$PCAP" 2>/dev/null || echo 0)
  if [ "$sz" -ge "$TARGET_BYTES" ] || [ $((SECONDS - T0)) -ge "$MAX_SECONDS" ]; then break; fi
  sleep 1
done
echo "stopping traffic at $((SECONDS - T0)) s, pcap $sz bytes"
touch "$STOP"
for f in "$W"/run/bulk*.pid "$W"/run/burst.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
for p in "${WORKERS[@]}"; do wait "$p" || true; done
sleep 3                                   # let the last FINs go by
kill -INT $TCPDUMP_PID; wait $TCPDUMP_PID || true; TCPDUMP_PID=
kill -QUIT $NGINX_PID; wait $NGINX_PID || true; NGINX_PID=
cat "$W/logs/tcpdump.txt"

# ---------------------------------------------------------------- ground truth
cat "$TL"/*.tsv | sort -n > "$OUT/truth_conns.tsv"
python3 - "$OUT/truth_conns.tsv" "$W/logs/tcpdump.txt" "$PCAP" > "$OUT/truth.txt" <<'EOF'
import collections, sys, os, struct
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
exitname = {"0": "ok", "7": "connect refused (7)", "28": "timeout (28)", "35": "TLS handshake error (35)",
            "60": "certificate verify failed (60)", "143": "stopped by script (SIGTERM)"}
by = collections.OrderedDict()
for r in rows:
    kind, ex = r[1], r[3]
    by.setdefault(kind, collections.Counter())[exitname.get(ex, "exit " + ex) + (" " + r[8] if len(r) > 8 else "")] += 1
print("# ground truth: one line per client connection attempt (TCP connect) in truth_conns.tsv")
print("# columns there: start_epoch kind client_port exit http_code http_version ssl_verify server_port [note]")
print(f"total connection attempts: {len(rows)}")
tot = collections.Counter()
for kind, c in sorted(by.items()):
    n = sum(c.values()); tot["all"] += n
    print(f"{kind:42s} {n:6d}  " + ", ".join(f"{k}: {v}" for k, v in c.most_common()))
ok = sum(1 for r in rows if r[3] == "0")
print(f"exit 0: {ok}; nonzero: {len(rows) - ok}")
print("expected passive verdicts: ok_*, resume_*, sclient_* and bulk_* -> established (bulk stopped by the")
print("script -> established, ended by client RST/FIN); hostname_mismatch -> handshake completes, curl then")
print("closes (passively established); expired_* -> certificate/expired (client alert, encrypted in TLS 1.3);")
print("unknownca_* -> certificate/unknown CA; version_* -> protocol version; cipher_no_shared -> cipher;")
print("refused_closed_port -> RST to SYN; syn_dropped_timeout -> SYN, no answer; server_silent_timeout ->")
print("ClientHello never answered, client gives up after 5 s.")
print(open(sys.argv[2]).read().strip())
EOF
cat "$OUT/truth.txt"
ls -l "$PCAP"
