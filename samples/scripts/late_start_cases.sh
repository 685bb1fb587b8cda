#!/bin/bash
# late_start_cases.sh - captures that start between the ClientHello and the ServerHello (a ring
# buffer or a capture started while the failure was already being reproduced): each is a real
# committed capture with every frame up to and including its ClientHello cut off by editcap.
# No traffic is made. Usage (from anywhere; needs editcap and tshark):
#   samples/scripts/late_start_cases.sh            # all cases
#   samples/scripts/late_start_cases.sh late-start-tls12-expired
# Writes samples/cases/<case>/{<case>.pcap,expected.json,README.md}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CASES=$(cd "$HERE/../cases" && pwd)

# case | source case | "what" | expected session (JSON) | frames of the cut capture also dropped
LIST=(
    "late-start-tls12-expired|tls12-expired|TLS 1.2, the capture starts after the ClientHello: the server's expired certificate and the client's certificate_expired alert are still in it (medium: without the ClientHello nothing is checked against its name or offer)|{\"outcome\": \"failed\", \"cause\": \"certificate\", \"reason\": \"expired\", \"side\": \"client\", \"confidence\": \"medium\"}|"
    "late-start-tls13-ok|tls13-ok-curl-nginx|TLS 1.3, the capture starts after the ClientHello: the ServerHello and both sides' encrypted records show a completed handshake|{\"outcome\": \"established\", \"tls_version\": \"1.3\"}|"
    "late-start-tls13-client-lost|tls13-ok-curl-nginx|TLS 1.3, the capture starts after the ClientHello and also lost the client's Finished flight and request: the client's first bytes are not where the server's acknowledgment says its stream stood, so this is no clean late start|{\"outcome\": \"incomplete\", \"incomplete_reason\": \"midstream\"}|4 7"
)

make_case() {
    local name=$1 src=$2 what=$3 session=$4 drop=$5
    local in D=$CASES/$name
    in=$(ls "$CASES/$src"/*.pcap | head -1)
    # The first frame after the (first) ClientHello.
    local ch
    ch=$(tshark -r "$in" -Y 'tls.handshake.type == 1' -T fields -e frame.number | head -1)
    [ -n "$ch" ] || { echo "$src: no ClientHello" >&2; return 1; }
    rm -rf "$D"; mkdir -p "$D"
    editcap -r "$in" "$D/$name.pcap" "$((ch + 1))-1000000"
    if [ -n "$drop" ]; then
        # shellcheck disable=SC2086  # frame numbers, split on purpose
        editcap "$D/$name.pcap" "$D/cut.pcap" $drop && mv "$D/cut.pcap" "$D/$name.pcap"
    fi
    printf '{\n  "what": "%s",\n  "sessions": [\n    %s\n  ]\n}\n' "$what" "$session" > "$D/expected.json"
    {
        echo "# $name"
        echo
        echo "$what."
        echo
        echo "Made by \`samples/scripts/late_start_cases.sh $name\` from samples/cases/$src (a real capture):"
        echo
        echo "    editcap -r $src.pcap $name.pcap $((ch + 1))-1000000    # frames 1-$ch (SYN .. ClientHello) cut off"
        [ -z "$drop" ] || echo "    editcap $name.pcap cut.pcap $drop    # and then these frames of it"
        echo
        if [ -z "$drop" ]; then
            echo "No SYN and no ClientHello: tlsdiag judges what the rest of the handshake shows instead of calling it midstream."
        else
            echo "Frames lost after the late start: still midstream."
        fi
    } > "$D/README.md"
    echo "== $name"
}

for entry in "${LIST[@]}"; do
    IFS='|' read -r name src what session drop <<< "$entry"
    if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"; then
        make_case "$name" "$src" "$what" "$session" "$drop"
    fi
done
