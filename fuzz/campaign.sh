#!/usr/bin/env bash
# A fuzzing campaign: runs the given targets one after another (sanitizer-free release build,
# see README.md), each for SECONDS, at the lowest CPU priority, and appends one line per run to
# campaign.tsv: date, git commit, target, seconds, executions, exec/s, coverage (cov/ft), corpus
# size, and the crash/timeout/oom files libFuzzer wrote (in artifacts/<target>/).
#
#   fuzz/campaign.sh SECONDS TARGET...        e.g. fuzz/campaign.sh 3600 threads pipeline
#
# Several campaigns may run side by side (one per core). Stop one with kill on its PID; the
# running target then stops and the line for it is still written.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: campaign.sh SECONDS TARGET...}
shift
case "$secs" in ''|*[!0-9]*) echo "SECONDS must be a number" >&2; exit 2 ;; esac
bin=target-nosan/x86_64-unknown-linux-gnu/release
if [ ! -x "$bin/${1:-pipeline}" ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build -s none --target-dir target-nosan >/dev/null 2>&1 || {
        echo "campaign.sh: cannot build the targets (cargo fuzz build)" >&2
        exit 2
    }
fi
[ -s campaign.tsv ] || printf 'date\tcommit\ttarget\tseconds\texecs\texec_per_s\tcov\tft\tcorpus\tfindings\n' >campaign.tsv
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
for t in "$@"; do
    mkdir -p "corpus-run/$t" "artifacts/$t" logs
    log="logs/$t-$(date -u +%Y%m%dT%H%M%SZ).log"
    start=$(date +%s)
    # -malloc_limit_mb: any single allocation past the caps of src/limits.rs is a finding;
    # -timeout: a hang is one; -rss_limit_mb: so is unbounded growth.
    nice -n 19 "$bin/$t" "corpus-run/$t" "corpus/$t" \
        -max_total_time="$secs" -malloc_limit_mb=128 -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    took=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    last=$(grep -E '#[0-9]+.*(cov|ft):' "$log" | tail -1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
    corpus=$(find "corpus-run/$t" -type f | wc -l)
    findings=$(find "artifacts/$t" -type f -newermt "@$start" 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$t" "$took" \
        "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${findings:-none}" >>campaign.tsv
done
