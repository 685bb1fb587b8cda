#!/usr/bin/env bash
# Live capture's limit (issue 21): the highest packet rate at which `tlsdiag live` loses no packet
# in the kernel, next to `tcpdump -w /dev/null` on the same interface with the same buffer size.
#
#   bench/live.sh [--size-mb 200] [--file CAPTURE] [--buffer-kib 2048] [--trials 3]
#                 [--seconds 3] [--rates PPS,PPS...[,top]] [--max-minutes 20] [--bin TLSDIAG]
#                 [--tlsdiag-args "ARGS"] [--out FILE] [--summary FILE] [--no-build]
#
# Two network namespaces joined by a veth pair; tcpreplay sends the capture from one at rising
# packet rates, the reader on the other end counts what the kernel dropped. Needs root, ip,
# tcpreplay (apt-get install tcpreplay) and tcpdump. Not part of CI. See bench/README.md.
set -euo pipefail

SIZE_MB=200
FILE=""
BUFFER_KIB=2048
TRIALS=3
SECONDS_PER_TRIAL=3
RATES=""
MAX_MINUTES=20
BIN=""
TLSDIAG_ARGS=""
OUT=""
SUMMARY=""
BUILD=1

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size-mb) SIZE_MB="$2"; shift 2 ;;
        --file) FILE="$2"; shift 2 ;;
        --buffer-kib) BUFFER_KIB="$2"; shift 2 ;;
        --trials) TRIALS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_TRIAL="$2"; shift 2 ;;
        --rates) RATES="$2"; shift 2 ;;
        --max-minutes) MAX_MINUTES="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        --tlsdiag-args) TLSDIAG_ARGS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --summary) SUMMARY="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "bench/live.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
num() { case "$2" in ''|*[!0-9]*) echo "bench/live.sh: $1 must be a number" >&2; exit 2 ;; esac; }
num --size-mb "$SIZE_MB"; num --buffer-kib "$BUFFER_KIB"; num --trials "$TRIALS"
num --seconds "$SECONDS_PER_TRIAL"; num --max-minutes "$MAX_MINUTES"
[ "$TRIALS" -ge 1 ] && [ "$TRIALS" -le 9 ] || { echo "--trials must be 1..9" >&2; exit 2; }
[ "$SECONDS_PER_TRIAL" -ge 1 ] && [ "$SECONDS_PER_TRIAL" -le 60 ] || { echo "--seconds must be 1..60" >&2; exit 2; }
[ "$BUFFER_KIB" -ge 256 ] || { echo "--buffer-kib must be at least 256" >&2; exit 2; }
if [ -n "$RATES" ]; then
    IFS=',' read -r -a _rates <<<"$RATES"
    for r in "${_rates[@]}"; do
        case "$r" in top) ;; ''|*[!0-9]*) echo "--rates: packets per second (or top), comma-separated" >&2; exit 2 ;; esac
    done
fi

[ "$(id -u)" = 0 ] || { echo "bench/live.sh: needs root (network namespaces, packet capture)" >&2; exit 2; }
for c in ip tcpreplay tcpdump python3 timeout; do
    command -v "$c" >/dev/null || { echo "bench/live.sh: $c is needed (Debian: apt-get install -y $c)" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "$BIN" ]; then
    BIN="$ROOT/target/release/tlsdiag"
    if [ "$BUILD" = 1 ]; then
        echo "== build (release, --features live)"
        cargo build --release --quiet --features live --bin tlsdiag --example gen_bench
    fi
fi
BIN=$(readlink -f "$BIN")
[ -x "$BIN" ] || { echo "bench/live.sh: $BIN: not an executable" >&2; exit 2; }
"$BIN" live --help 2>/dev/null | grep -q -- '--buffer-size' || {
    echo "bench/live.sh: $BIN has no live capture with --buffer-size (build with --features live)" >&2
    exit 2
}

mkdir -p bench/out bench/results
if [ -z "$FILE" ]; then
    # The same file bench/run.sh makes for this size (its name carries the generator's hash).
    GEN_ID=$(sha256sum examples/gen_bench.rs | cut -c1-8)
    FILE="bench/out/edge-${SIZE_MB}mb-seed1-${GEN_ID}.pcap"
    if [ ! -s "$FILE" ]; then
        echo "== generate $FILE"
        rm -f "bench/out/edge-${SIZE_MB}mb-seed1-"*.pcap "bench/out/edge-${SIZE_MB}mb-seed1-"*.pcap.truth.*
        "$ROOT/target/release/examples/gen_bench" --out "$FILE" --size-mb "$SIZE_MB" --seed 1 >/dev/null
    fi
fi
[ -s "$FILE" ] || { echo "bench/live.sh: $FILE: no such capture" >&2; exit 2; }
FILE=$(readlink -f "$FILE")

WORK=$(mktemp -d)
NS_TX="tdl-ltx-$$"
NS_RX="tdl-lrx-$$"
IF_TX="tdlt$$"
IF_RX="tdlr$$"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip link add "$IF_TX" netns "$NS_TX" type veth peer name "$IF_RX" netns "$NS_RX"
for pair in "$NS_TX $IF_TX" "$NS_RX $IF_RX"; do
    set -- $pair
    ip -n "$1" link set lo up
    ip -n "$1" link set "$2" up
done
sleep 0.5

# send RATE LIMIT: replays the file (looped as needed, preloaded in memory) at RATE packets/s
# ("top" = as fast as it can) until LIMIT packets; prints "packets pps".
send() {
    local rate="$1" limit="$2" loops out
    loops=$(( (limit + FILE_PACKETS - 1) / FILE_PACKETS ))
    local -a speed=(--topspeed)
    if [ "$rate" != top ]; then speed=(--pps "$rate" --pps-multi 8); fi
    out=$(timeout $((SECONDS_PER_TRIAL * 20 + 60)) ip netns exec "$NS_TX" tcpreplay -q -i "$IF_TX" -K \
        "${speed[@]}" --loop "$loops" --limit "$limit" "$FILE" 2>&1) || {
        echo "bench/live.sh: tcpreplay failed: $out" >&2
        return 1
    }
    python3 -c '
import re, sys
t = sys.stdin.read()
a = re.search(r"Actual: (\d+) packets", t)
r = re.search(r"Rated: .*?([\d.]+) pps", t)
print(a.group(1) if a else 0, round(float(r.group(1))) if r else 0)' <<<"$out"
}

# The packets in the file, and what the sender reaches with nobody capturing.
FILE_PACKETS=$(python3 - "$FILE" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb")
magic = f.read(24)[:4]
end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
n = 0
while True:
    h = f.read(16)
    if len(h) < 16:
        break
    f.seek(struct.unpack(end + "IIII", h)[2], 1)
    n += 1
print(n)
PY
)
[ "$FILE_PACKETS" -gt 0 ] || { echo "bench/live.sh: $FILE: no packets (classic pcap needed)" >&2; exit 2; }
echo "== sender ceiling: tcpreplay --topspeed, nobody capturing ($FILE_PACKETS packets in the file)"
TOPS=()
for i in 1 2 3; do
    read -r _ pps < <(send top $((FILE_PACKETS < 600000 ? FILE_PACKETS * 2 : FILE_PACKETS)))
    TOPS+=("$pps")
    echo "  run $i: $pps pps"
done
TOP=$(printf '%s\n' "${TOPS[@]}" | sort -n | tail -n 1)

if [ -z "$RATES" ]; then
    # Rising ladder up to a little past the sender's best ceiling (a busy machine lowers it
    # between runs), finer where captures start to lose; "top" = no pacing at all. Past a step the sender cannot reach with a capture
    # running (it copies each packet into the capture buffer itself), only "top" is tried.
    RATES=$(python3 -c "
top = $TOP
steps = [0.15, 0.3, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.1]
print(','.join(str(int(round(top * s / 1000)) * 1000) for s in steps) + ',top')")
fi
IFS=',' read -r -a RATE_LIST <<<"$RATES"

RESULTS="$WORK/trials.tsv"
: >"$RESULTS"
DEADLINE=$(( $(date +%s) + MAX_MINUTES * 60 ))

# trial TOOL RATE N: one capture by TOOL while the sender replays at RATE; appends
# "tool rate trial sent achieved_pps captured kernel_drops interface_drops" to $RESULTS.
trial() {
    local tool="$1" rate="$2" n="$3" pid limit sent pps captured kdrop idrop i
    local err="$WORK/$tool.err"
    : >"$err"
    if [ "$tool" = tlsdiag ]; then
        # shellcheck disable=SC2086
        ip netns exec "$NS_RX" "$BIN" live -i "$IF_RX" -B "$BUFFER_KIB" $TLSDIAG_ARGS >/dev/null 2>"$err" &
    else
        ip netns exec "$NS_RX" tcpdump -i "$IF_RX" -B "$BUFFER_KIB" -w /dev/null 'tcp port 443' 2>"$err" &
    fi
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$err" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'listening on' "$err" || { echo "bench/live.sh: $tool did not start:"; cat "$err"; return 1; } >&2
    sleep 0.2
    if [ "$rate" = top ]; then limit=$(( TOP * SECONDS_PER_TRIAL )); else limit=$(( rate * SECONDS_PER_TRIAL )); fi
    read -r sent pps < <(send "$rate" "$limit")
    sleep 0.5
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  $tool did not stop within 30 s of SIGINT; killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    PIDS=()
    if [ "$tool" = tlsdiag ]; then
        read -r captured kdrop idrop < <(python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"(\d+) packets captured on .*?; (\d+) dropped by the kernel, (\d+) by the interface", t)
print(*(m.groups() if m else ("?", "?", "?")))' <"$err")
    else
        read -r captured kdrop idrop < <(python3 -c '
import re, sys
t = sys.stdin.read()
g = lambda p, d="?": (re.search(p, t) or [None, d])[1]
print(g(r"(\d+) packets? captured"), g(r"(\d+) packets? dropped by kernel"), g(r"(\d+) packets? dropped by interface", "0"))' <"$err")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$rate" "$n" "$sent" "$pps" "$captured" "$kdrop" "$idrop" >>"$RESULTS"
    printf '  %-8s %8s pps target  trial %d: sent %8s at %7s pps, captured %8s, kernel drops %s, interface drops %s\n' \
        "$tool" "$rate" "$n" "$sent" "$pps" "$captured" "$kdrop" "$idrop"
}

# lossy TOOL RATE: true when the median of TOOL's kernel drops at RATE is above zero.
lossy() {
    awk -F'\t' -v t="$1" -v r="$2" '$1 == t && $2 == r { print ($7 == "?" ? 1e18 : $7) }' "$RESULTS" |
        sort -g | awk '{ v[NR] = $1 } END { exit !(NR > 0 && v[int((NR + 1) / 2)] > 0) }'
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo "== ladder: buffer $BUFFER_KIB KiB, $TRIALS trial(s) of ${SECONDS_PER_TRIAL} s per tool and rate, tools"
echo "   alternating; rates ${RATES} (load average before: $LOAD_BEFORE)"
# saturated RATE: true when the sender reached less than 85 % of RATE (median over the trials).
saturated() {
    [ "$1" != top ] || return 1
    awk -F'\t' -v r="$1" '$2 == r { print $5 }' "$RESULTS" | sort -n |
        awk -v r="$1" '{ v[NR] = $1 } END { exit !(NR > 0 && v[int((NR + 1) / 2)] < 0.85 * r) }'
}

LOST_STEPS=0
STOPPED=""
SKIP_TO_TOP=0
for rate in "${RATE_LIST[@]}"; do
    if [ "$(date +%s)" -ge "$DEADLINE" ]; then STOPPED="time limit of $MAX_MINUTES min reached"; break; fi
    if [ "$SKIP_TO_TOP" = 1 ] && [ "$rate" != top ]; then continue; fi
    for ((n = 1; n <= TRIALS; n++)); do
        if [ $((n % 2)) = 1 ]; then order=(tlsdiag tcpdump); else order=(tcpdump tlsdiag); fi
        for tool in "${order[@]}"; do trial "$tool" "$rate" "$n"; done
    done
    if lossy tlsdiag "$rate" && lossy tcpdump "$rate"; then
        LOST_STEPS=$((LOST_STEPS + 1))
        if [ "$LOST_STEPS" -ge 2 ]; then STOPPED="both lost packets at two steps"; break; fi
    else
        LOST_STEPS=0
    fi
    if saturated "$rate"; then
        echo "  (the sender reached less than 85 % of $rate pps: only the unpaced step is left)"
        SKIP_TO_TOP=1
    fi
done

COMMIT=unknown
if command -v git >/dev/null && git rev-parse HEAD >/dev/null 2>&1; then COMMIT=$(git rev-parse --short=12 HEAD); fi
[ -n "$OUT" ] || OUT="bench/results/latest-live.txt"
python3 - "$RESULTS" "$FILE" "$FILE_PACKETS" "$BUFFER_KIB" "$TRIALS" "$SECONDS_PER_TRIAL" "$TOP" "$LOAD_BEFORE" \
    "$COMMIT" "$BIN" "$TLSDIAG_ARGS" "$OUT" "$SUMMARY" "$STOPPED" "$(tcpdump --version 2>&1 | head -2 | tr '\n' ' ')" <<'PY'
import collections, datetime, json, os, statistics, sys

(results, path, file_packets, buf, trials, secs, top, load, commit, binary, targs, out, summary,
 stopped, tcpdump_version) = sys.argv[1:]
rows = collections.OrderedDict()
for line in open(results):
    tool, rate, n, sent, pps, cap, kd, idr = line.rstrip("\n").split("\t")
    intv = lambda s: int(s) if s.isdigit() else None
    rows.setdefault(rate, {}).setdefault(tool, []).append(
        {"sent": intv(sent), "pps": intv(pps), "captured": intv(cap), "kernel_drops": intv(kd), "if_drops": intv(idr)})

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def lossless(ts):
    drops = [t["kernel_drops"] if t["kernel_drops"] is not None else 10**18 for t in ts]
    return statistics.median(drops) == 0

table = []
# Per tool: the highest paced step lossless with every paced step below it, and the first lossy
# one. The unpaced step ("top") reaches a different rate for each tool (the reader competes with
# the sender for the CPU), so it only counts as "at least" when no paced step lost anything.
paced = {}
top_row = {}
for rate, tools in rows.items():
    for tool in ("tlsdiag", "tcpdump"):
        ts = tools.get(tool, [])
        if not ts:
            continue
        ok = lossless(ts)
        pps = med(t["pps"] for t in ts)
        table.append((rate, tool, len(ts), pps, med(t["kernel_drops"] for t in ts),
                      max((t["kernel_drops"] or 0) for t in ts), med(t["sent"] for t in ts),
                      med(t["captured"] for t in ts), ok))
        if rate == "top":
            top_row[tool] = (ok, pps)
            continue
        p = paced.setdefault(tool, {"ok": None, "pps": None, "broken": None})
        if p["broken"] is None:
            if ok:
                p["ok"], p["pps"] = rate, pps
            else:
                p["broken"] = rate

def cpu_info():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

def fig(tool):
    """(pps, exact?, note)"""
    p = paced.get(tool, {"ok": None, "pps": None, "broken": None})
    top_ok, top_pps = top_row.get(tool, (None, None))
    if p["broken"] is not None:
        if p["pps"] is None:
            return None, True, f"lost packets from the first step ({p['broken']} pps)"
        return p["pps"], True, f"at the {p['ok']} pps step; loses from the {p['broken']} pps step"
    if top_ok and top_pps and (p["pps"] is None or top_pps > p["pps"]):
        return top_pps, False, "at least: no loss at any step, unpaced included (the sender's limit)"
    if p["pps"] is None:
        return None, True, "lost packets unpaced, no paced step tried"
    return p["pps"], False, ("at least: no loss at any paced step"
                             + ("; lost packets unpaced" if top_ok is False else ""))

date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
t_pps, t_exact, t_note = fig("tlsdiag")
d_pps, d_exact, d_note = fig("tcpdump")
ratio, ratio_note = None, ""
if t_pps and d_pps:
    ratio = round(t_pps / d_pps, 3)
    if not t_exact and not d_exact:
        ratio_note = " (both lossless to the sender's limit: inconclusive, try a smaller --buffer-kib)"
    elif not t_exact:
        ratio_note = " or more (tlsdiag lost nothing)"
    elif not d_exact:
        ratio_note = " or less (tcpdump lost nothing)"
lines = [
    f"live capture benchmark {date}  commit {commit}  cores {os.cpu_count()}  cpu {cpu_info()}  load before {load}",
    f"file {os.path.basename(path)}: {file_packets} packets; veth pair between two network namespaces; "
    f"sender tcpreplay -K (ceiling with nobody capturing: {top} pps)",
    f"buffer {buf} KiB for both (tlsdiag live -B {buf}{' ' + targs if targs else ''}; tcpdump -B {buf} -w /dev/null 'tcp port 443'); "
    f"{trials} trial(s) of about {secs} s per tool and rate, alternating; medians",
    f"tcpdump: {tcpdump_version.strip()}",
    "",
    f"{'target pps':>10} {'tool':<8} {'trials':>6} {'sent pps':>9} {'kernel drops':>12} {'max drops':>9} {'sent':>9} {'captured':>9}  lossless",
]
for rate, tool, n, pps, kd, kmax, sent, cap, ok in table:
    f = lambda v: "?" if v is None else f"{v:.0f}"
    lines.append(f"{rate:>10} {tool:<8} {n:>6} {f(pps):>9} {f(kd):>12} {kmax:>9} {f(sent):>9} {f(cap):>9}  {'yes' if ok else 'no'}")
lines.append("")
for tool, pps, note in (("tlsdiag", t_pps, t_note), ("tcpdump", d_pps, d_note)):
    lines.append(f"lossless rate {tool:<8} {('%.0f pps' % pps) if pps else '-':>12}  {note}")
if ratio is not None:
    lines.append(f"tlsdiag / tcpdump: {ratio:.2f}{ratio_note}")
if stopped:
    lines.append(f"ladder stopped: {stopped}")
text = "\n".join(lines)
print()
print(text)
with open(out, "w") as f:
    f.write(text + "\n")
rec = {"date": date, "commit": commit, "cores": os.cpu_count(), "cpu": cpu_info(), "loadavg_before": load,
       "file": os.path.basename(path), "packets": int(file_packets), "buffer_kib": int(buf),
       "trials": int(trials), "sender_ceiling_pps": int(top),
       "tlsdiag_lossless_pps": t_pps, "tlsdiag_note": t_note,
       "tcpdump_lossless_pps": d_pps, "tcpdump_note": d_note, "ratio": ratio, "ratio_note": ratio_note.strip(),
       "line": f"live lossless rate (buffer {buf} KiB): tlsdiag {'' if t_exact else '>= '}{t_pps or 0:.0f} pps, "
               f"tcpdump {'' if d_exact else '>= '}{d_pps or 0:.0f} pps"
               + (f", tlsdiag / tcpdump {ratio:.2f}{ratio_note}" if ratio is not None else "")}
if summary:
    with open(summary, "w") as f:
        f.write(json.dumps(rec) + "\n")
PY
echo "(written to $OUT)"
