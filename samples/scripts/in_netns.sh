#!/bin/bash
# in_netns.sh - sourced first by the sample scripts that run in a network namespace of their own
# (keylog_cases.sh, keylog_stacks.sh, bench_keyed_cases.sh, java_cases.sh):
#   run_in_netns "$0" "$@"
# Outside the namespace ($TLSD_IN_NS unset): checks for root and the test PKI, creates $NS (only
# lo, up), runs the script again inside it, deletes $NS and exits with the script's status.
# Inside, it returns at once. Needs $HERE (the scripts directory) and $NS.
run_in_netns() {
    local script=$1
    shift
    [ "${TLSD_IN_NS:-}" = 1 ] && return 0
    [ "$(id -u)" = 0 ] || { echo "$(basename "$script"): run as root (netns + tcpdump)" >&2; exit 1; }
    [ -s "$HERE/../certs/good.pem" ] || "$HERE/certs.sh" "$HERE/../certs" || exit 1
    ip netns list | grep -qw "^$NS" || ip netns add "$NS" || exit 1
    ip netns exec "$NS" ip link set lo up || exit 1
    ip netns exec "$NS" env TLSD_IN_NS=1 TLSD_NS="$NS" bash "$script" "$@"
    local rc=$?
    ip netns del "$NS"
    exit $rc
}
