#!/usr/bin/env bash
# Stop, kill or start the lab's meao processes one by one, as the chaos tests and an operator do:
#   deploy/lab/proc.sh kill serve1                         # SIGKILL (its process group): a crash
#   deploy/lab/proc.sh stop worker-pop1-1 worker-pop1-2    # TERM, then KILL after 10 s
#   deploy/lab/proc.sh start serve1 worker-pop1-1          # with the same command up.sh uses
#   deploy/lab/proc.sh alive serve1                        # exit 0 when it runs
# Names: serve1, serve2, worker-catalogue, worker-popN-I (deploy/lab/status.sh lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
usage="usage: proc.sh kill|stop|start|alive NAME..."
action=${1:-}; shift || true
[ $# -gt 0 ] || die "$usage"
case "$action" in
    kill)
        for name in "$@"; do
            pid_alive "$name" || die "$name does not run"
            kill -KILL -- "-$(cat "$PIDS/$name.pid")"
            for _ in $(seq 100); do running "$(cat "$PIDS/$name.pid")" || break; sleep 0.05; done
            rm -f "$PIDS/$name.pid"
            say "$name killed (SIGKILL)"
        done ;;
    stop) stop_daemons "$@"; say "stopped: $*" ;;
    start)
        for name in "$@"; do start_meao "$name"; done
        say "started: $*" ;;
    alive) for name in "$@"; do pid_alive "$name" || exit 1; done ;;
    *) die "$usage" ;;
esac
