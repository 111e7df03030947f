# Shared by up.sh, down.sh and status.sh: the lab's names, addresses and small helpers.
# The address plan is the contract of issue 18 (10.213.0.0/16, used only inside this machine).
# shellcheck shell=bash

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
STATE=${MEAO_LAB_STATE:-$LAB_DIR/state}
LOG=$STATE/log
PIDS=$STATE/pid
ENVD=$STATE/env
PY=${MEAO_LAB_PYTHON:-$REPO/.venv/bin/python}
MEAO=${MEAO_LAB_MEAO:-$REPO/.venv/bin/meao}

LAB_NET=10.213.0.0/16
BRIDGE=mlab0
BRIDGE_ADDR=10.213.0.1
CTL_ADDR=10.213.0.10
OSS_ADDR=10.213.0.20
POPS=(pop1 pop2)
NAMESPACES=(mlab-ctl mlab-oss mlab-pop1 mlab-pop2)
CTL_NAME=ctl.mlab
# what each PoP reaches through its WAN proxy: the API (HAProxy), PostgreSQL, Redis
WAN_PORTS=(8080 5432 6379)

# knobs
WAN_DELAY_MS=${MEAO_LAB_DELAY_MS:-20}
WAN_JITTER_MS=${MEAO_LAB_JITTER_MS:-0}
WAN_LOSS=${MEAO_LAB_LOSS:-0}
LAB_NETWORK=${MEAO_LAB_NETWORK:-meao-lab}  # the test bed network the MEC hosts offer apps (made when missing)
POP_WORKERS=${MEAO_LAB_POP_WORKERS:-2}
POP_CONCURRENCY=${MEAO_LAB_POP_CONCURRENCY:-2}
TESTBED_CLOUDS=${MEAO_LAB_TESTBED_CLOUDS:-${MEAO_TESTBED_STATE:-$HOME/.local/state/meao-testbed}/clouds.yaml}

pop_root_addr() { echo "10.213.${1#pop}.1"; }  # the root side of pop N's link: where its WAN proxy listens
pop_addr() { echo "10.213.${1#pop}.2"; }
pop_link() { echo "mlab-p${1#pop}"; }          # root-side veth of pop N (cut it with `ip link set … down`)

say() { echo "[lab] $*" >&2; }
die() { echo "[lab] error: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "the lab makes network namespaces: run it as root"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

running() {  # running PID: alive and not a zombie (this machine's init reaps orphans late)
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

pid_alive() {  # pid_alive NAME: the process recorded in $PIDS/NAME.pid runs
    local f=$PIDS/$1.pid
    [ -s "$f" ] && running "$(cat "$f")"
}

start_daemon() {  # start_daemon NAME NETNS|- CMD... : detached, own session, all streams redirected
    local name=$1 ns=$2; shift 2
    if pid_alive "$name"; then return 0; fi
    local pre=()
    [ "$ns" != - ] && pre=(ip netns exec "$ns")
    setsid "${pre[@]}" "$@" </dev/null >>"$LOG/$name.log" 2>&1 9>&- &
    echo $! >"$PIDS/$name.pid"
}

stop_daemons() {  # stop_daemons NAME...: TERM each recorded process group at once, KILL what is left after 10 s
    local name f pid pids=()
    for name in "$@"; do
        f=$PIDS/$name.pid
        [ -s "$f" ] && pid=$(cat "$f") && running "$pid" || { rm -f "$f"; continue; }
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    done
    for _ in $(seq 200); do
        local left=()
        for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
        pids=("${left[@]}")
        [ ${#pids[@]} = 0 ] && break
        sleep 0.05
    done
    for pid in "${pids[@]}"; do
        say "process $pid did not stop on TERM within 10 s: killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    for name in "$@"; do rm -f "$PIDS/$name.pid"; done
}

run_meao() {  # run_meao NAME NETNS SITE ARGS...: meao with the site's env files, in its namespace
    local name=$1 ns=$2 site=$3; shift 3
    start_daemon "$name" "$ns" bash -c 'set -a; . "$1"; . "$2"; set +a; shift 2; exec "$@"' _ \
        "$ENVD/$site.env" "$ENVD/$site.lab.env" "$MEAO" "$@"
}

start_meao() {  # start_meao NAME: one of the lab's meao processes (up.sh and proc.sh name them alike)
    local name=$1 pop i
    case "$name" in
        serve[12]) run_meao "$name" mlab-ctl ctl serve --host "$CTL_ADDR" --port "808${name#serve}" \
                       --no-embedded-worker ;;
        worker-catalogue) run_meao "$name" mlab-ctl ctl worker -Q meao.catalogue -n meao-catalogue@ctl.mlab ;;
        worker-pop[0-9]-[0-9]*)
            pop=${name#worker-} i=${pop#*-} pop=${pop%%-*}
            # the PoP's Redis ACL allows its pidbox keys "mepm-popN-*" and "mepm-popN@*" only
            run_meao "$name" "mlab-$pop" "$pop" worker -Q "mecpm.$pop" -c "$POP_CONCURRENCY" -n "mepm-$pop-w$i@%h" ;;
        *) die "no lab process named $name (serve1, serve2, worker-catalogue, worker-popN-I)" ;;
    esac
}

wait_tcp() {  # wait_tcp NETNS HOST PORT SECONDS WHAT
    local ns=$1 host=$2 port=$3 secs=$4 what=$5 i
    for i in $(seq $((secs * 10))); do
        if ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$what did not answer on $host:$port in $ns within ${secs}s; see $LOG/"
}
