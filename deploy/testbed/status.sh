#!/usr/bin/env bash
# Report the test bed's state: each recorded process and each API. Exit 0 when all is up, 1 if not.
#   status.sh      table on stdout
#   status.sh -q   exit code only
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
QUIET=0
[[ ${1:-} == -q ]] && QUIET=1
report() { ((QUIET)) || printf '%-16s %s\n' "$1" "$2"; }

ok=1
[[ -f $STATE/.initialized && -f $STATE/clouds.yaml ]] || { report state "not initialized ($STATE)"; ok=0; }
for name in mariadb rabbitmq; do
    [[ -s $PIDS/$name.pid ]] || continue  # reused from the machine, not ours
    if pid_alive "$name"; then report "$name" "up (pid $(cat "$PIDS/$name.pid"))"
    else report "$name" down; ok=0; fi
done
for name in $(service_names); do
    if pid_alive "$name"; then report "$name" "up (pid $(cat "$PIDS/$name.pid"))"
    else report "$name" down; ok=0; fi
done
for api in keystone:$PORT_KEYSTONE/v3 glance:$PORT_GLANCE/versions placement:$PORT_PLACEMENT/ \
           nova-api:$PORT_NOVA/ neutron:$PORT_NEUTRON/; do
    url="http://$HOST_IP:${api#*:}"
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null)
    if [[ $code =~ ^[23] ]]; then report "${api%%:*} api" "answers $url ($code)"
    else report "${api%%:*} api" "no answer at $url (${code:-none})"; ok=0; fi
done
((ok)) && report testbed "UP  clouds.yaml: $STATE/clouds.yaml" || report testbed DOWN
((ok))
