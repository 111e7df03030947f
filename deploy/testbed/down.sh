#!/usr/bin/env bash
# Stop the test bed: every process it recorded, by PID (and its process group), newest first.
#   down.sh           stop; keep state and databases so the next up.sh restarts quickly
#   down.sh --purge   also drop the test bed's databases and delete its state directory
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PURGE=0
[[ ${1:-} == --purge ]] && PURGE=1

stop() {  # stop NAME... : TERM each recorded process group at once, KILL what is left after 20 s
    local name pid i alive
    local -a pids=()
    for name in "$@"; do
        [[ -s $PIDS/$name.pid ]] || continue
        pid=$(cat "$PIDS/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
            pids+=("$pid")
            say "stopping $name (pid $pid)"
        fi
        rm -f "$PIDS/$name.pid"
    done
    for ((i = 0; i < 40; i++)); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.5
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
    done
    return 0
}

# OpenStack services, plus anything else recorded (e.g. compute hosts of an earlier, larger
# bring-up); the infrastructure goes last.
others=()
for f in "$PIDS"/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    [[ $name == mariadb || $name == rabbitmq || $name == epmd ]] || others+=("$name")
done
stop "${others[@]}"

if ((PURGE)) && [[ ! -s $PIDS/mariadb.pid ]] && port_open "${MEAO_TESTBED_DB_PORT:-3306}"; then
    admin=(mariadb --no-defaults -h "$HOST_IP" -P "${MEAO_TESTBED_DB_PORT:-3306}" -u "$DB_ADMIN_USER")
    [[ -n $DB_ADMIN_PASSWORD ]] && admin+=("-p$DB_ADMIN_PASSWORD")
    sql=""
    for db in keystone glance placement nova_api nova nova_cell0 neutron; do
        sql+="DROP DATABASE IF EXISTS \`${DB_PREFIX}$db\`;"
    done
    "${admin[@]}" -e "$sql" && say "dropped databases ${DB_PREFIX}*"
fi

# Our own RabbitMQ and MariaDB (none when the machine's were reused).
if [[ -s $PIDS/rabbitmq.pid ]]; then
    rabbitmqctl -n "$(cat "$STATE/rabbitmq.node")" stop >/dev/null 2>&1
    stop rabbitmq
    stop epmd
fi
stop mariadb

if ((PURGE)); then
    rm -f "$STATE/.initialized"
    rm -rf "${STATE:?}"
    say "state purged"
fi
say "test bed down"
