# Shared settings and helpers for up.sh, down.sh and status.sh (sourced, not run).
# The knobs are documented at the top of up.sh.

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK_FILE="$TESTBED_DIR/openstack-services-lock.txt"

# one test bed per machine: a fresh checkout (as CI uses) finds and reuses the running one
STATE="${MEAO_TESTBED_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/meao-testbed}"
CACHE="${MEAO_TESTBED_CACHE:-$HOME/.cache/meao-testbed}"
PYTHON="${MEAO_TESTBED_PYTHON:-python3.11}"
HOST_IP=127.0.0.1
COMPUTE_HOSTS="${MEAO_TESTBED_COMPUTE_HOSTS:-2}"
COMPUTE_DRIVER="${MEAO_TESTBED_COMPUTE_DRIVER:-sized}"
DB_PREFIX="${MEAO_TESTBED_DB_PREFIX:-meaotb_}"
DB_ADMIN_USER="${MEAO_TESTBED_DB_ADMIN_USER:-root}"
DB_ADMIN_PASSWORD="${MEAO_TESTBED_DB_ADMIN_PASSWORD:-}"
SERVICE_PASSWORD="${MEAO_TESTBED_PASSWORD:-meao-testbed}"
READY_TIMEOUT="${MEAO_TESTBED_READY_TIMEOUT:-300}"

PORT_KEYSTONE=5000
PORT_GLANCE=9292
PORT_PLACEMENT=8778
PORT_NOVA=8774
PORT_NEUTRON=9696

LOG="$STATE/log"
PIDS="$STATE/pid"
ETC="$STATE/etc"

lock_hash() { sha256sum "$LOCK_FILE" | cut -c1-16; }
VENV="$CACHE/venv-$(lock_hash)"

say() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

port_open() {  # port_open PORT -> 0 if something listens on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/$HOST_IP/$1") 2>/dev/null
}

pid_alive() {  # pid_alive NAME -> 0 if the recorded PID of NAME runs
    local f="$PIDS/$1.pid"
    [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# The services every bring-up starts (besides MariaDB/RabbitMQ when the test bed owns them).
service_names() {
    echo keystone placement glance neutron nova-api nova-conductor nova-scheduler
    local i
    for ((i = 1; i <= COMPUTE_HOSTS; i++)); do echo "nova-compute$i"; done
}

# The service venv, built once per lock file hash and reused by every later bring-up.
ensure_venv() {
    if [[ -x $VENV/bin/keystone-manage && -f $VENV/.complete ]]; then
        say "service venv cached: $VENV"
        return
    fi
    say "building service venv $VENV from $(basename "$LOCK_FILE") (first run: ~1.5 min)"
    mkdir -p "$CACHE" "$STATE"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "cannot create venv with $PYTHON"
    # uWSGI is compiled by pip: needs gcc and the Python headers.
    "$VENV/bin/pip" install -q --no-cache-dir -r "$LOCK_FILE" >"$STATE/venv-install.log" 2>&1 \
        || die "pip install failed, see $STATE/venv-install.log"
    touch "$VENV/.complete"
}
