#!/usr/bin/env bash
# Cut or restore a PoP's WAN, the two ways issue 18 names:
#   deploy/lab/wan.sh cut pop2            # the proxy drops everything: accepts nothing, open flows stall
#   deploy/lab/wan.sh cut pop2 --link     # the link itself: ip link set mlab-p2 down (fails fast: unreachable)
#   deploy/lab/wan.sh restore pop2 [--link]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
usage="usage: wan.sh cut|restore POP [--link]   (POP: ${POPS[*]})"
action=${1:-} pop=${2:-} how=${3:-}
[[ " ${POPS[*]} " == *" $pop "* ]] || die "$usage"
case "$action:$how" in
    cut:--link) ip link set "$(pop_link "$pop")" down; say "$pop's link $(pop_link "$pop") is down" ;;
    restore:--link) ip link set "$(pop_link "$pop")" up; say "$pop's link $(pop_link "$pop") is up" ;;
    cut:|restore:)
        pid_alive "wan-$pop" || die "$pop's WAN proxy does not run (deploy/lab/up.sh starts it)"
        [ "$action" = cut ] && sig=USR1 || sig=USR2
        kill -s "$sig" "$(cat "$PIDS/wan-$pop.pid")"
        for _ in $(seq 50); do  # the proxy writes its state file once it has handled the signal
            st=$(cat "$STATE/wan-$pop.state" 2>/dev/null || true)
            { [ "$action" = cut ] && [ "$st" = cut ]; } || { [ "$action" = restore ] && [ "$st" = up ]; } && break
            sleep 0.05
        done
        say "$pop's WAN proxy: $(cat "$STATE/wan-$pop.state")" ;;
    *) die "$usage" ;;
esac
