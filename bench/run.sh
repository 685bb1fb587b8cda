#!/usr/bin/env bash
# The benchmark of issue 6: tlsdiag against the bare pass over the pcap records (the floor) and
# tshark, on the same generated capture, in the same run. See bench/README.md.
#
#   bench/run.sh [--size-mb 1200] [--runs 5] [--threads N[,M...]] [--seed 1]
#                [--tshark-runs 1] [--no-tshark] [--file CAPTURE] [--no-check] [--no-flood]
#                [--ports 443[,8443...]] [--baseline BIN] [--no-busy] [--keyed]
#                [--live [--live-args "ARGS"]]
#
# --baseline BIN measures another tlsdiag binary (say, a build of an older commit) in the same
# rounds, as rows "before --threads N": before and after on the same file in the same run.
# Rows "busy ..." run while another process keeps one core busy (a shell loop this script starts
# and ends); --no-busy leaves them out.
# --keyed measures decryption instead: the same mix made from bench/keyed-samples (the sessions
# captured again with their key logs), run without keys, with --keylog, and with the keys embedded
# in pcapng (editcap --inject-secrets); no JSON row, no tshark, no flood (bench/README.md).
# Needs bash, coreutils, python3, /usr/bin/time (Debian package `time`) and, optionally, tshark.
# --live adds the live capture's lossless rate next to tcpdump's (bench/live.sh ARGS: root, tcpreplay).
set -euo pipefail

SIZE_MB=1200
RUNS=5
THREADS=""
SEED=1
TSHARK_RUNS=1
NO_TSHARK=0
FILE=""
CHECK=1
FLOOD=1
PORTS=443
BASELINE=""
BUSY=1
KEYED=0
LIVE=0
LIVE_ARGS=""

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size-mb) SIZE_MB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --tshark-runs) TSHARK_RUNS="$2"; shift 2 ;;
        --no-tshark) NO_TSHARK=1; shift ;;
        --file) FILE="$2"; shift 2 ;;
        --no-check) CHECK=0; shift ;;
        --no-flood) FLOOD=0; shift ;;
        --ports) PORTS="$2"; shift 2 ;;
        --baseline) BASELINE="$2"; shift 2 ;;
        --no-busy) BUSY=0; shift ;;
        --keyed) KEYED=1; shift ;;
        --live) LIVE=1; shift ;;
        --live-args) LIVE_ARGS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench/run.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*) echo "--runs must be a number" >&2; exit 2 ;; esac
case "$TSHARK_RUNS" in ''|*[!0-9]*) echo "--tshark-runs must be a number" >&2; exit 2 ;; esac
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || { echo "--runs must be 1..50" >&2; exit 2; }
[ "$TSHARK_RUNS" -le 5 ] || { echo "--tshark-runs must be 0..5" >&2; exit 2; }
if [ "$KEYED" = 1 ]; then
    [ -z "$FILE" ] || { echo "bench/run.sh: --keyed makes its own capture; no --file" >&2; exit 2; }
    NO_TSHARK=1
    FLOOD=0
fi

if [ -n "$BASELINE" ]; then
    [ -x "$BASELINE" ] || { echo "bench/run.sh: --baseline $BASELINE: not an executable" >&2; exit 2; }
    BASELINE=$(readlink -f "$BASELINE")
fi
cd "$(dirname "$0")/.."
ROOT=$(pwd)
command -v python3 >/dev/null || { echo "bench/run.sh: python3 is needed" >&2; exit 2; }
if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y time >/dev/null
    else
        echo "bench/run.sh: /usr/bin/time is needed (apt-get install time)" >&2
        exit 2
    fi
fi

echo "== build (release)"
cargo build --release --quiet --bin tlsdiag --example gen_bench --example read_floor --example gen_synflood
BIN="$ROOT/target/release/tlsdiag"
FLOOR="$ROOT/target/release/examples/read_floor"
GEN="$ROOT/target/release/examples/gen_bench"
GEN_FLOOD="$ROOT/target/release/examples/gen_synflood"

mkdir -p bench/out bench/results
KEYS=""
PCAPNG=""
DSB=""
if [ "$KEYED" = 1 ]; then
    # The benchmark's mix from the sessions captured again with their key logs
    # (samples/scripts/bench_keyed_cases.sh). The name carries the hash of the generator and of
    # those captures; the key log is theirs, joined: every copy of a session repeats its
    # ClientHello random, so one line serves all its copies.
    KS=bench/keyed-samples
    [ -d "$KS" ] || { echo "bench/run.sh: $KS missing (samples/scripts/bench_keyed_cases.sh makes it)" >&2; exit 2; }
    GEN_ID=$( { sha256sum examples/gen_bench.rs; find -L "$KS" -type f | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-8)
    FILE="bench/out/keyed-${SIZE_MB}mb-seed${SEED}-${GEN_ID}.pcap"
    KEYS="$FILE.keys.txt"
    if [ ! -s "$FILE" ] || [ ! -s "$FILE.truth.json" ] || [ ! -s "$KEYS" ]; then
        echo "== generate $FILE (from $KS)"
        rm -f "bench/out/keyed-${SIZE_MB}mb-seed${SEED}-"*
        "$GEN" --out "$FILE" --size-mb "$SIZE_MB" --seed "$SEED" --samples "$KS"
        cat "$KS"/*/keys.txt 2>/dev/null | LC_ALL=C sort -u >"$KEYS"
    fi
    if command -v editcap >/dev/null; then
        # The same packets as pcapng without keys, and with the key log as a Decryption Secrets
        # Block: the pcapng rows compare like with like.
        PCAPNG="${FILE%.pcap}.pcapng"
        DSB="${FILE%.pcap}.dsb.pcapng"
        [ -s "$PCAPNG" ] || { echo "== editcap -F pcapng"; editcap -F pcapng "$FILE" "$PCAPNG"; }
        [ -s "$DSB" ] || { echo "== editcap --inject-secrets tls,$KEYS"; editcap --inject-secrets "tls,$KEYS" "$FILE" "$DSB"; }
    else
        echo "note: no editcap (Debian package wireshark-common): the pcapng rows are skipped"
    fi
fi
if [ -z "$FILE" ]; then
    # The file name carries the generator's hash: a changed generator makes a new file.
    GEN_ID=$(sha256sum examples/gen_bench.rs | cut -c1-8)
    FILE="bench/out/edge-${SIZE_MB}mb-seed${SEED}-${GEN_ID}.pcap"
    if [ ! -s "$FILE" ] || [ ! -s "$FILE.truth.json" ]; then
        echo "== generate $FILE"
        # Files of older generator versions (same size and seed) are stale: remove them.
        rm -f "bench/out/edge-${SIZE_MB}mb-seed${SEED}-"*.pcap "bench/out/edge-${SIZE_MB}mb-seed${SEED}-"*.pcap.truth.*
        "$GEN" --out "$FILE" --size-mb "$SIZE_MB" --seed "$SEED"
    fi
fi
[ -s "$FILE" ] || { echo "bench/run.sh: $FILE: no such capture" >&2; exit 2; }
FILE_BYTES=$(stat -c %s "$FILE")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/runs.tsv"
: >"$RESULTS"

# Thread counts: 1 and every core by default, only if this tlsdiag has --threads.
HAS_THREADS=0
if "$BIN" analyze --help 2>/dev/null | grep -q -- '--threads'; then HAS_THREADS=1; fi
CORES=$(nproc 2>/dev/null || echo 1)
if [ -z "$THREADS" ]; then
    THREADS=1
    if [ "$CORES" -gt 1 ]; then THREADS="1,$CORES"; fi
fi
THREAD_LIST=("")
if [ "$HAS_THREADS" = 1 ]; then
    IFS=',' read -r -a THREAD_LIST <<<"$THREADS"
else
    echo "note: this tlsdiag has no --threads option; --threads $THREADS ignored"
    THREADS=""
fi
LAST_TH="${THREAD_LIST[${#THREAD_LIST[@]}-1]}"
PORT_ARGS=()
IFS=',' read -r -a PORT_LIST <<<"$PORTS"
for p in "${PORT_LIST[@]}"; do PORT_ARGS+=(-p "$p"); done
TH_ARGS=()
if [ -n "$LAST_TH" ]; then TH_ARGS=(--threads "$LAST_TH"); fi

# measure TOOL RUN: one run of one tool; wall time (ns clock), peak RSS and CPU time
# (/usr/bin/time) go to $RESULTS.
measure() {
    local tool="$1" i="$2" ok="0 1" t0 t1 rc line input="$FILE"
    local -a cmd
    case "$tool" in
        read_floor) cmd=("$FLOOR" "$FILE"); ok="0" ;;
        "tlsdiag keyed --threads "*) cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" --keylog "$KEYS" --threads "${tool##* }" "$FILE") ;;
        "tlsdiag pcapng --threads "*) input="$PCAPNG"; cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$PCAPNG") ;;
        "tlsdiag dsb --threads "*) input="$DSB"; cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$DSB") ;;
        "tlsdiag json --threads "*) cmd=(timeout 3600 "$BIN" analyze -q --format json -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$FILE") ;;
        "tlsdiag json"*) cmd=(timeout 3600 "$BIN" analyze -q --format json -o /dev/null "${PORT_ARGS[@]}" "${TH_ARGS[@]}" "$FILE") ;;
        "tlsdiag ndjson --threads "*) cmd=(timeout 3600 "$BIN" analyze -q --format ndjson -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$FILE") ;;
        "busy tlsdiag --threads "*) cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$FILE") ;;
        "busy tlsdiag default") cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" "$FILE") ;;
        "tlsdiag --threads "*) cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$FILE") ;;
        tlsdiag) cmd=(timeout 3600 "$BIN" analyze -q -o /dev/null "${PORT_ARGS[@]}" "$FILE") ;;
        "before --threads "*) cmd=(timeout 3600 "$BASELINE" analyze -q -o /dev/null "${PORT_ARGS[@]}" --threads "${tool##* }" "$FILE") ;;
        before) cmd=(timeout 3600 "$BASELINE" analyze -q -o /dev/null "${PORT_ARGS[@]}" "$FILE") ;;
        tshark)
            cmd=(timeout 7200 tshark -r "$FILE"
                -Y 'tls.handshake.type or tls.alert_message or tcp.flags.reset==1'
                -T fields -e frame.number -e tcp.stream -e tls.handshake.type -e tls.alert_message.desc
                -e tls.handshake.extensions_server_name)
            ok="0" ;;
    esac
    # Read the file once more, untimed: a machine that pages out idle page-cache memory (this
    # one runs DAMON reclaim) would otherwise time the disk for some runs and not others.
    cat "$input" >/dev/null
    local burner=""
    case "$tool" in
        busy*)
            # Another process keeps one core busy for the length of this run only (bounded by
            # timeout; ended by its PID below).
            timeout 3600 bash -c 'while :; do :; done' &
            burner=$!
            sleep 0.2 ;;
    esac
    t0=$(date +%s%N)
    rc=0
    /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "${cmd[@]}" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
    t1=$(date +%s%N)
    if [ -n "$burner" ]; then
        kill "$burner" 2>/dev/null || true
        wait "$burner" 2>/dev/null || true
    fi
    line=$(tail -n 1 "$WORK/time")
    case " $ok " in
        *" $rc "*) ;;
        *) echo "  $tool run $i: exit status $rc"; tail -n 3 "$WORK/stderr" | sed 's/^/    /' ;;
    esac
    printf '%s\t%d\t%s\t%s\t%s\n' "$tool" "$i" "$((t1 - t0))" "$line" "$rc" >>"$RESULTS"
    printf '  %-28s run %d: %s s\n' "$tool" "$i" "$(awk -v n="$((t1 - t0))" 'BEGIN{printf "%.3f", n/1e9}')"
    if [ "$tool" = read_floor ]; then cp "$WORK/stdout" "$WORK/floor.json"; fi
}

echo "== warm the page cache ($FILE_BYTES bytes)"
cat "$FILE" >/dev/null

TOOLS=(read_floor)
for th in "${THREAD_LIST[@]}"; do
    if [ -n "$th" ]; then TOOLS+=("tlsdiag --threads $th"); else TOOLS+=(tlsdiag); fi
    if [ "$KEYED" = 1 ]; then
        # Without and with keys next to each other in every round (paired).
        TOOLS+=("tlsdiag keyed --threads ${th:-1}")
        if [ -n "$DSB" ]; then TOOLS+=("tlsdiag pcapng --threads ${th:-1}" "tlsdiag dsb --threads ${th:-1}"); fi
    fi
done
if [ -n "$BASELINE" ]; then
    if "$BASELINE" analyze --help 2>/dev/null | grep -q -- '--threads' && [ "$HAS_THREADS" = 1 ]; then
        for th in "${THREAD_LIST[@]}"; do TOOLS+=("before --threads $th"); done
    else
        TOOLS+=(before)
    fi
fi
# The same verdicts written as NDJSON lines and as the JSON document (lean for established
# sessions, every failure in full: writing them is a cost of their own). Not with --keyed.
if [ "$KEYED" = 0 ]; then
    for th in "${THREAD_LIST[@]}"; do
        if [ -n "$th" ]; then
            TOOLS+=("tlsdiag ndjson --threads $th" "tlsdiag json --threads $th")
        else
            TOOLS+=("tlsdiag json")
        fi
    done
fi
if [ "$BUSY" = 1 ] && [ "$HAS_THREADS" = 1 ] && [ "$KEYED" = 0 ]; then
    TOOLS+=("busy tlsdiag default")
    for th in "${THREAD_LIST[@]}"; do TOOLS+=("busy tlsdiag --threads $th"); done
fi
HAVE_TSHARK=0
if [ "$NO_TSHARK" = 0 ] && [ "$TSHARK_RUNS" -gt 0 ] && command -v tshark >/dev/null; then HAVE_TSHARK=1; fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo "== measure ($RUNS rounds, every tool once per round so that a noisy moment hits all of"
echo "   them alike; the median counts; load average before: $LOAD_BEFORE)"
for ((round = 1; round <= RUNS; round++)); do
    # Each round starts one tool further along the list, so no tool is always the one that runs
    # first (after the page-cache warm-up) or first after a burner starts.
    n=${#TOOLS[@]}
    for ((k = 0; k < n; k++)); do
        measure "${TOOLS[$(((k + round - 1) % n))]}" "$round"
    done
    if [ "$HAVE_TSHARK" = 1 ] && [ "$round" -le "$TSHARK_RUNS" ]; then
        measure tshark "$round"
    fi
done
if [ "$HAVE_TSHARK" = 0 ]; then echo "  tshark: skipped"; fi

# A SYN flood: one million half-open connections at once, with the default cap on tracked
# connections and with a small one; peak memory and the counted breaches.
FLOOD_FILE=""
if [ "$FLOOD" = 1 ]; then
    FLOOD_FILE="bench/out/synflood-1000000.pcap"
    if [ ! -s "$FLOOD_FILE" ]; then
        "$GEN_FLOOD" --out "$FLOOD_FILE" --count 1000000 >/dev/null
    fi
    echo "== SYN flood ($FLOOD_FILE)"
    : >"$WORK/flood.tsv"
    for th in "${THREAD_LIST[@]}"; do
        for cap in default 10000; do
            args=(-q -o "$WORK/flood.txt")
            if [ -n "$th" ]; then args+=(--threads "$th"); fi
            if [ "$cap" != default ]; then args+=(--max-flows "$cap"); fi
            rc=0
            /usr/bin/time -f '%e %M' -o "$WORK/time" timeout 600 "$BIN" analyze "${args[@]}" "$FLOOD_FILE" 2>/dev/null || rc=$?
            full=$(grep -o 'flow_table_full [0-9]*' "$WORK/flood.txt" | grep -o '[0-9]*$' || echo "?")
            sessions=$(grep -o '^tlsdiag: [0-9]* TLS session' "$WORK/flood.txt" | grep -o '[0-9][0-9]*' | head -1 || echo "?")
            printf '%s\t%s\t%s\t%s %s\n' "${th:-default}" "$cap" "$(tail -n 1 "$WORK/time")" "${full:-?}" "${sessions:-?}" >>"$WORK/flood.tsv"
            echo "  threads ${th:-default}, max-flows $cap: $(tail -n 1 "$WORK/time") (s, peak KB), exit $rc"
        done
    done
fi

LAST=""
if [ "$CHECK" = 1 ] && [ -s "$FILE.truth.json" ]; then
    LAST="bench/out/last.json"
    if [ "$KEYED" = 1 ]; then LAST="bench/out/last-keyed.json"; fi
    echo "== verdicts: tlsdiag -f json -o $LAST (with the last --threads value)"
    rc=0
    KEY_ARGS=()
    if [ "$KEYED" = 1 ]; then
        KEY_ARGS=(--keylog "$KEYS")
        echo "   (--keyed: with --keylog; then the DSB pcapng into bench/out/last-dsb.json)"
    fi
    timeout 3600 "$BIN" analyze -q -f json -o "$LAST" "${PORT_ARGS[@]}" "${TH_ARGS[@]}" "${KEY_ARGS[@]}" "$FILE" 2>"$WORK/check.err" || rc=$?
    if [ "$rc" -gt 1 ]; then echo "  tlsdiag exit status $rc"; cat "$WORK/check.err"; LAST=""; fi
    # The NDJSON lines once more, kept to count bytes per session.
    if [ "$KEYED" = 0 ]; then
        timeout 3600 "$BIN" analyze -q -f ndjson -o bench/out/last.ndjson "${PORT_ARGS[@]}" "$FILE" 2>/dev/null || true
    fi
    if [ -n "$DSB" ]; then
        rc=0
        timeout 3600 "$BIN" analyze -q -f json -o bench/out/last-dsb.json "${PORT_ARGS[@]}" "${TH_ARGS[@]}" "$DSB" 2>"$WORK/check.err" || rc=$?
        if [ "$rc" -gt 1 ]; then echo "  tlsdiag (DSB) exit status $rc"; cat "$WORK/check.err"; fi
    fi
fi

# The live capture's limit (bench/live.sh: veth pair, tcpreplay, tcpdump; minutes, needs root).
export LIVE_SUMMARY=""
if [ "$LIVE" = 1 ]; then
    echo "== live capture: bench/live.sh $LIVE_ARGS"
    LIVE_SUMMARY="$WORK/live.json"
    # shellcheck disable=SC2086
    bench/live.sh --summary "$LIVE_SUMMARY" $LIVE_ARGS || { echo "  bench/live.sh failed"; LIVE_SUMMARY=""; }
fi

COMMIT=unknown
DIRTY=""
if command -v git >/dev/null && git rev-parse HEAD >/dev/null 2>&1; then
    COMMIT=$(git rev-parse --short=12 HEAD)
    DIRTY=$(git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
fi

python3 - "$RESULTS" "$FILE" "$FILE_BYTES" "$WORK/floor.json" "$LAST" "$COMMIT" "${DIRTY:-0}" "$RUNS" "$THREADS" "$HAS_THREADS" "$LOAD_BEFORE" "$WORK/flood.tsv" "$BASELINE" "$KEYED" "$KEYS" "$DSB" <<'PY'
import collections, datetime, json, os, statistics, sys

results, path, file_bytes, floor_json, last, commit, dirty, runs, threads, has_threads, load, flood_tsv, baseline, keyed, keys_path, dsb = sys.argv[1:]
keyed = keyed == "1"
file_bytes = int(file_bytes)
floor = json.load(open(floor_json)) if os.path.exists(floor_json) else {}
packets = floor.get("packets", 0)
truth_path = path + ".truth.json"
truth = json.load(open(truth_path)) if os.path.exists(truth_path) else None

runs_by_tool = collections.OrderedDict()
for line in open(results):
    tool, i, ns, tline, rc = line.rstrip("\n").split("\t")
    parts = tline.split()
    rss_kb = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    cpu = float(parts[2]) + float(parts[3]) if len(parts) >= 4 else 0.0
    runs_by_tool.setdefault(tool, []).append({"s": int(ns) / 1e9, "rss_kb": rss_kb, "cpu_s": cpu, "rc": int(rc)})

rows = []
floor_median = None
for tool, rs in runs_by_tool.items():
    med = statistics.median(r["s"] for r in rs)
    cpu = statistics.median(r["cpu_s"] for r in rs)
    peak = max(r["rss_kb"] for r in rs) / 1024
    if tool == "read_floor":
        floor_median = med
    rows.append({
        "tool": tool, "runs": len(rs), "median_s": round(med, 4), "_med": med, "all_s": [round(r["s"], 4) for r in rs],
        "cpu_s": round(cpu, 3), "mb_s": round(file_bytes / 1e6 / med, 1),
        "mb_per_cpu_s": round(file_bytes / 1e6 / cpu, 1) if cpu > 0 else None,
        "mpkt_s": round(packets / 1e6 / med, 3) if packets else None,
        "peak_mb": round(peak, 1), "exit": sorted({r["rc"] for r in rs}),
    })
one_thread = {name: next((r["_med"] for r in rows if r["tool"] == f"{name} --threads 1"), None)
              for name in ("tlsdiag", "before", "tlsdiag ndjson", "tlsdiag json", "busy tlsdiag",
                           "tlsdiag keyed", "tlsdiag pcapng", "tlsdiag dsb")}
busy_default = next((r["_med"] for r in rows if r["tool"] == "busy tlsdiag default"), None)
for r in rows:
    med = r.pop("_med")
    r["x_floor"] = round(med / floor_median, 2) if floor_median else None
    name = r["tool"].split(" --threads ")[0]
    if one_thread.get(name) and " --threads " in r["tool"]:
        r["speedup_vs_1_thread"] = round(one_thread[name] / med, 2)
    if r["tool"] == "busy tlsdiag default" and one_thread.get("busy tlsdiag"):
        r["speedup_vs_1_thread"] = round(one_thread["busy tlsdiag"] / med, 2)

# NDJSON bytes per session (the lines of bench/out/last.ndjson, written once untimed).
ndjson = None
ndjson_path = os.path.join(os.path.dirname(last) if last else "bench/out", "last.ndjson")
if last and os.path.basename(last) == "last.json" and os.path.exists(ndjson_path):
    sizes = {"success": [], "other": []}
    for line in open(ndjson_path, "rb"):
        try:
            ev = json.loads(line).get("event", {})
        except ValueError:
            continue
        if ev.get("dataset") != "tlsdiag.session":
            continue
        sizes["success" if ev.get("outcome") == "success" else "other"].append(len(line))
    every = sizes["success"] + sizes["other"]
    if every:
        est = sorted(sizes["success"])
        ndjson = {"bytes": os.path.getsize(ndjson_path), "sessions": len(every),
                  "bytes_per_session": round(sum(every) / len(every)),
                  "established_median": est[len(est) // 2] if est else None,
                  "established_p95": est[min(len(est) - 1, len(est) * 95 // 100)] if est else None}

flood = []
if os.path.exists(flood_tsv):
    for line in open(flood_tsv):
        th, cap, tline, rest = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
        t = tline.split()
        full, sessions = (rest.split() + ["?", "?"])[:2]
        flood.append({"threads": th, "max_flows": cap, "s": float(t[0]) if t else None,
                      "peak_mb": round(int(t[1]) / 1024, 1) if len(t) > 1 and t[1].isdigit() else None,
                      "flow_table_full": int(full) if full.isdigit() else None,
                      "sessions": int(sessions) if sessions.isdigit() else None})

# Verdicts against the generator's truth.
check = None
if truth and last and os.path.exists(last):
    doc = json.load(open(last))
    got = doc["counts"]
    exp = truth["expected"]
    got_resumed = sum(1 for s in doc["sessions"] if (s.get("tls") or {}).get("resumed"))
    diffs = {}
    for k in ("sessions", "established", "failed", "incomplete", "no_data_connections"):
        if got.get(k, 0) != exp.get(k, 0):
            diffs[k] = {"expected": exp.get(k, 0), "got": got.get(k, 0)}
    for group in ("failed_by_cause", "failed_by_reason"):
        for k in sorted(set(exp[group]) | set(got.get(group, {}))):
            e, g = exp[group].get(k, 0), got.get(group, {}).get(k, 0)
            if e != g:
                diffs[f"{group}.{k}"] = {"expected": e, "got": g}
    if got_resumed != exp.get("resumed", 0):
        diffs["resumed"] = {"expected": exp.get("resumed", 0), "got": got_resumed}
    # Per connection, by client address and port.
    mism = collections.Counter()
    examples = collections.defaultdict(list)
    expected = {}
    tsv = path + ".truth.tsv"
    if os.path.exists(tsv):
        with open(tsv) as f:
            next(f)
            for line in f:
                client, server, kind, outcome, cause, reason, resumed = line.rstrip("\n").split("\t")
                expected[client] = (kind, outcome if outcome != "failed" else f"failed/{cause}/{reason}")
        seen = set()
        for s in doc["sessions"]:
            key = f'{s["client"]["ip"]}:{s["client"]["port"]}'
            v = s["outcome"] if s["outcome"] != "failed" else f'failed/{s.get("cause")}/{s.get("reason")}'
            if key not in expected:
                mism[("(not generated)", "-", v)] += 1
                continue
            seen.add(key)
            kind, want = expected[key]
            if v != want:
                mism[(kind, want, v)] += 1
                if len(examples[(kind, want, v)]) < 3:
                    examples[(kind, want, v)].append(f'{key} frames {s.get("first_frame")}-{s.get("last_frame")}')
        for key, (kind, want) in expected.items():
            if key not in seen:
                mism[(kind, want, "(no session)")] += 1
    check = {
        "agree": not diffs and not mism,
        "expected_sessions": exp["sessions"],
        "count_diffs": diffs,
        "misjudged": [{"kind": k[0], "expected": k[1], "got": k[2], "count": n, "examples": examples.get(k, [])}
                      for k, n in mism.most_common()],
    }

# --keyed: with keys / without, per thread count: the ratio of the medians and the median of the
# per-round ratios (each round runs both back to back); what the key log gave; the DSB verdicts.
keys = None
if keyed:
    keys = {"key_log": os.path.basename(keys_path), "ratios": []}
    try:
        keys["key_log_lines"] = sum(1 for _ in open(keys_path))
    except OSError:
        pass
    for with_k, without, what in (("tlsdiag keyed", "tlsdiag", "--keylog / no keys (pcap)"),
                                  ("tlsdiag dsb", "tlsdiag pcapng", "DSB / no keys (pcapng)")):
        for tool, rs in runs_by_tool.items():
            if not tool.startswith(with_k + " --threads "):
                continue
            th = tool.rsplit(" ", 1)[1]
            base = runs_by_tool.get(f"{without} --threads {th}")
            if not base:
                continue
            paired = [a["s"] / b["s"] for a, b in zip(rs, base) if b["s"] > 0]
            keys["ratios"].append({
                "what": what, "threads": int(th),
                "median_with_s": round(statistics.median(r["s"] for r in rs), 4),
                "median_without_s": round(statistics.median(r["s"] for r in base), 4),
                "ratio_of_medians": round(statistics.median(r["s"] for r in rs) / statistics.median(r["s"] for r in base), 3),
                "median_paired_ratio": round(statistics.median(paired), 3) if paired else None,
            })
    def verdicts(doc):
        return sorted((s["client"]["ip"], s["client"]["port"], s.get("first_frame"), s["outcome"], s.get("cause"),
                       s.get("reason"), s.get("side"), s.get("confidence")) for s in doc["sessions"])
    if last and os.path.exists(last):
        doc = json.load(open(last))
        found = opened = failed = 0
        for s in doc["sessions"]:
            d = (s.get("handshake") or {}).get("decryption") or {}
            found += bool(d.get("keys_found"))
            opened += sum(d.get("records_decrypted") or [0, 0])
            failed += sum(d.get("records_not_decrypted") or [0, 0])
        keys.update({"sessions": len(doc["sessions"]), "sessions_with_keys": found,
                     "records_decrypted": opened, "records_not_decrypted": failed})
        dsb_json = "bench/out/last-dsb.json"
        if dsb and os.path.exists(dsb_json):
            a, b = verdicts(doc), verdicts(json.load(open(dsb_json)))
            keys["dsb_verdicts"] = {"sessions": len(b), "identical": a == b,
                                    "differing": sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))}

def cpu_info():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

def mem_gb():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None

date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
baseline_note = f"\n\"before\" rows: {baseline}" if baseline else ""
head = (f"benchmark {date}  commit {commit}{' (+' + dirty + ' uncommitted src files)' if dirty not in ('', '0') else ''}  "
        f"cores {os.cpu_count()}  cpu {cpu_info()}  load before {load}{baseline_note}")
tw = max([24] + [len(r["tool"]) for r in rows])
lines = [head,
         f"file {os.path.basename(path)}: {file_bytes / 1e6:.1f} MB, {packets} packets"
         + (f", {truth['expected']['sessions']} sessions, {truth['duration_s']:.0f} s of traffic" if truth else ""),
         "",
         f"{'tool':<{tw}} {'runs':>4} {'median s':>9} {'MB/s':>7} {'Mpkt/s':>7} {'peak MB':>8} {'x floor':>8} "
         f"{'cpu s':>7} {'MB/cpu-s':>9}"]
for r in rows:
    lines.append(f"{r['tool']:<{tw}} {r['runs']:>4} {r['median_s']:>9.3f} {r['mb_s']:>7.0f} "
                 f"{(r['mpkt_s'] or 0):>7.2f} {r['peak_mb']:>8.1f} {(r['x_floor'] or 0):>8.2f} "
                 f"{r['cpu_s']:>7.2f} {(r['mb_per_cpu_s'] or 0):>9.0f}")
speedups = [f"{r['tool'].replace(' --threads ', ', ')} threads {r['speedup_vs_1_thread']:.2f}x"
            for r in rows if "speedup_vs_1_thread" in r and not r["tool"].endswith(" --threads 1")
            and r["tool"] != "busy tlsdiag default"]
if speedups:
    lines.append("")
    lines.append("scaling (median wall time of 1 thread / N threads): " + ", ".join(speedups))
busy_rows = [r for r in rows if r["tool"].startswith("busy ")]
if busy_rows:
    picked = next((r for r in busy_rows if r["tool"] == "busy tlsdiag default"), None)
    lines.append("busy core (another process spinning during these runs): "
                 + ", ".join(f"{r['tool'][len('busy tlsdiag '):]} {r['median_s']:.3f} s" for r in busy_rows)
                 + (f"; default vs 1 thread {picked['speedup_vs_1_thread']:.2f}x" if picked and "speedup_vs_1_thread" in picked else ""))
if ndjson:
    lines.append(f"NDJSON: {ndjson['bytes'] / 1e6:.1f} MB, {ndjson['bytes_per_session']} bytes per session; established "
                 f"sessions median {ndjson['established_median']} bytes, p95 {ndjson['established_p95']}")
if flood:
    lines.append("")
    lines.append("SYN flood, 1,000,000 half-open connections at once:")
    for f in flood:
        lines.append(f"  threads {f['threads']:<7} max-flows {f['max_flows']:<8} peak {f['peak_mb'] or 0:>6.1f} MB  "
                     f"{f['s'] or 0:>5.2f} s  flow_table_full counted {f['flow_table_full']}")
if keys:
    lines.append("")
    for r in keys["ratios"]:
        lines.append(f"keys, {r['what']}, threads {r['threads']}: {r['median_with_s']:.3f} s / {r['median_without_s']:.3f} s"
                     f" = {r['ratio_of_medians']:.2f}x (median of the paired rounds {r['median_paired_ratio']:.2f}x)")
    if "sessions" in keys:
        lines.append(f"key log {keys['key_log']} ({keys.get('key_log_lines', '?')} lines): {keys['sessions_with_keys']} of "
                     f"{keys['sessions']} sessions have keys; records opened {keys['records_decrypted']}, "
                     f"not opened {keys['records_not_decrypted']}")
    if "dsb_verdicts" in keys:
        v = keys["dsb_verdicts"]
        lines.append(f"DSB pcapng vs --keylog: {v['sessions']} sessions, verdicts "
                     + ("IDENTICAL" if v["identical"] else f"DIFFER ({v['differing']})"))
lines.append("")
if check is None:
    lines.append("verdicts: not checked (no truth file or no JSON report)")
elif check["agree"]:
    lines.append(f"verdicts: AGREE with the truth file ({check['expected_sessions']} sessions, every connection as expected)")
else:
    lines.append("verdicts: DISAGREE with the truth file")
    for k, v in check["count_diffs"].items():
        lines.append(f"  count {k}: expected {v['expected']}, tlsdiag {v['got']}")
    for m in check["misjudged"][:20]:
        lines.append(f"  {m['count']:>6} x {m['kind']}: expected {m['expected']}, tlsdiag {m['got']}"
                     + (f"  e.g. {'; '.join(m['examples'])}" if m["examples"] else ""))
# The live capture's lossless rate (bench/run.sh --live).
live = None
if os.environ.get("LIVE_SUMMARY") and os.path.exists(os.environ["LIVE_SUMMARY"]):
    live = json.load(open(os.environ["LIVE_SUMMARY"]))
    lines.append(live["line"])
text = "\n".join(lines)
print()
print(text)

record = {
    "date": date, "commit": commit, "uncommitted_src_files": int(dirty or 0),
    "machine": {"cores": os.cpu_count(), "cpu": cpu_info(), "mem_gb": mem_gb(), "loadavg_before": load},
    "file": {"name": os.path.basename(path), "bytes": file_bytes, "packets": packets,
             "sessions": truth["expected"]["sessions"] if truth else None,
             "seed": truth.get("seed") if truth else None},
    "runs": int(runs), "threads": threads or None, "tlsdiag_has_threads": has_threads == "1",
    "baseline": baseline or None,
    "mode": "keyed" if keyed else "plain",
    "keys": keys,
    "results": rows,
    "synflood": flood,
    "ndjson": ndjson,
    "live": live,
    "verdicts": None if check is None else {
        "agree": check["agree"], "count_diffs": check["count_diffs"], "misjudged": check["misjudged"][:20]},
}
os.makedirs("bench/results", exist_ok=True)
with open("bench/results/history.jsonl", "a") as f:
    f.write(json.dumps(record, separators=(",", ":")) + "\n")
# The generated benchmark's table in latest.txt; another capture's in latest-<its name>.txt.
latest = "bench/results/latest-keyed.txt" if keyed else "bench/results/latest.txt" if truth else f"bench/results/latest-{os.path.splitext(os.path.basename(path))[0]}.txt"
with open(latest, "w") as f:
    f.write(text + "\n")
print(f"\nappended to bench/results/history.jsonl; table in {latest}")
PY
