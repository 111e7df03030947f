#!/usr/bin/env bash
# Take the lab down, idempotently: its processes (by recorded PID), the WAN proxies and forwarder, the
# namespaces (their veths and addresses go with them), the bridge, the root's unreachable route and the
# /etc/netns files. The per-interface forwarding sysctls live on the lab's interfaces and vanish with
# them; no global sysctl is touched by up.sh. `--purge` also deletes deploy/lab/state/ (data, env files,
# certificates made by services.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
purge=0
[ "${1:-}" = --purge ] && purge=1
mkdir -p "$STATE"
exec 9>"$STATE/.up.lock"
flock -w 120 9 || die "another up.sh or down.sh is running"

names() { local f; for f in "$@"; do [ -e "$f" ] && basename "$f" .pid; done; return 0; }
if [ -d "$PIDS" ]; then
    # the workers first: a worker's warm shutdown finishes the job it runs, and that job still calls the
    # control plane (grants, the MEP) through HAProxy; stopped together, HAProxy went first and the job
    # met "connection refused" behind the WAN proxy ("Server disconnected without sending a response")
    mapfile -t workers < <(names "$PIDS"/worker-*.pid)
    stop_daemons "${workers[@]}"
    # then the control plane's front and API processes, then the WAN proxies and the forwarder they used
    mapfile -t meao < <(names "$PIDS"/haproxy.pid "$PIDS"/serve*.pid)
    stop_daemons "${meao[@]}"
    mapfile -t wan < <(names "$PIDS"/wan-*.pid "$PIDS"/testbed-fwd.pid)
    stop_daemons "${wan[@]}"
fi
if [ -x "$LAB_DIR/services.sh" ] && ns_exists mlab-ctl; then
    ip netns exec mlab-ctl env MEAO_LAB_STATE="$STATE" "$LAB_DIR/services.sh" stop >>"$LOG/services.log" 2>&1 9>&- \
        || say "services.sh stop failed; see $LOG/services.log"
fi
for ns in "${NAMESPACES[@]}"; do
    if ns_exists "$ns"; then
        # anything still running in it (a process up.sh did not record) is reported, not killed blindly
        left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -n "$left" ] && say "processes still in $ns: $left (not started by up.sh? stop them by PID)"
        ip netns delete "$ns"
    fi
    rm -rf "/etc/netns/$ns"
done
for link in mlab-ctl mlab-oss mlab-p1 mlab-p2 "$BRIDGE"; do
    ip link show "$link" >/dev/null 2>&1 && { ip link delete "$link" 2>/dev/null || true; }
done
ip route del unreachable "$LAB_NET" 2>/dev/null || true
rm -f "$STATE"/wan-*.state
if [ "$purge" = 1 ]; then
    rm -rf "$STATE"
    say "lab down; state purged"
else
    say "lab down; state kept in $STATE (down.sh --purge deletes it)"
fi
