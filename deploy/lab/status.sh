#!/usr/bin/env bash
# What of the lab runs: namespaces, links, routes, WAN proxies, processes. Exit 0 when all is up.
# `-q`: the exit code only.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
quiet=0
[ "${1:-}" = -q ] && quiet=1
bad=0
row() {  # row NAME STATE DETAIL
    [ "$quiet" = 1 ] || printf '%-22s %-6s %s\n' "$1" "$2" "${3:-}"
    [ "$2" = up ] || [ "$2" = cut ] || bad=1
}
for ns in "${NAMESPACES[@]}"; do
    if ns_exists "$ns"; then row "netns $ns" up; else row "netns $ns" down; fi
done
ip route show type unreachable | grep -q "^unreachable $LAB_NET" \
    && row "route unreachable" up "$LAB_NET (root)" || row "route unreachable" down "missing in root namespace"
for pop in "${POPS[@]}"; do
    link=$(pop_link "$pop")
    if ip link show "$link" 2>/dev/null | grep -q 'state UP'; then row "link $link" up "$(pop_root_addr "$pop")/24"
    else row "link $link" down "(ip link set $link up)"; fi
    if pid_alive "wan-$pop"; then
        st=$(cat "$STATE/wan-$pop.state" 2>/dev/null || echo up)
        row "wanproxy $pop" "$st" "$(grep -o 'delay [^;]*' "$LOG/wan-$pop.log" 2>/dev/null | tail -1)"
    else row "wanproxy $pop" down; fi
done
if [ "${MEAO_LAB_ONLY:-}" != net ]; then
    if ns_exists mlab-ctl && [ -x "$LAB_DIR/services.sh" ]; then
        while read -r name st rest; do
            [ "$st" = running ] && row "${name%:}" up "$rest" || row "${name%:}" down "deploy/lab/services.sh start"
        done < <(MEAO_LAB_STATE=$STATE "$LAB_DIR/services.sh" status 2>/dev/null)
    fi
    for name in testbed-fwd serve1 serve2 haproxy worker-catalogue; do
        pid_alive "$name" && row "$name" up "pid $(cat "$PIDS/$name.pid")" || row "$name" down "log: $LOG/$name.log"
    done
    for f in "$PIDS"/worker-pop*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        pid_alive "$name" && row "$name" up "pid $(cat "$f")" || row "$name" down "log: $LOG/$name.log"
    done
fi
exit $bad
