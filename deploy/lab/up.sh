#!/usr/bin/env bash
# Bring up the distributed lab of issue 18 on this machine, as root, idempotently:
#   network   namespaces mlab-ctl, mlab-oss (on bridge mlab0), mlab-pop1, mlab-pop2 (routed veth links),
#             `unreachable 10.213.0.0/16` in the root namespace, no default route anywhere;
#   WAN       one wanproxy.py per PoP (root ns, on 10.213.N.1) in front of ctl's 8080/5432/6379;
#   test bed  the OpenStack test bed's 127.0.0.1 ports shown inside mlab-ctl and the PoPs (setns forwarder);
#   services  the lab's PostgreSQL and Redis in mlab-ctl (deploy/lab/services.sh when present);
#   processes HAProxy :8080 -> two `meao serve` (:8081, :8082), a catalogue worker (mlab-ctl), and
#             MEAO_LAB_POP_WORKERS `meao worker -Q mecpm.popN` per PoP.
# Knobs: MEAO_LAB_DELAY_MS [20], MEAO_LAB_JITTER_MS [0], MEAO_LAB_LOSS [0], MEAO_LAB_POP_WORKERS [2],
#   MEAO_LAB_POP_CONCURRENCY [2], MEAO_LAB_STATE [deploy/lab/state], MEAO_LAB_TESTBED_CLOUDS [the test bed's
#   clouds.yaml], MEAO_LAB_ONLY=net (network and WAN proxies only, no services or processes).
# Undo with down.sh; look with status.sh. Setup time goes to state/up-times.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
T0=$(date +%s.%N)
mkdir -p "$STATE" "$LOG" "$PIDS" "$ENVD"
chmod 711 "$STATE"  # traversable (postgres runs its cluster under it), not listable
exec 9>"$STATE/.up.lock"
flock -w 120 9 || die "another up.sh or down.sh is running"

# ---------------------------------------------------------------- network
ns_up() {  # ns_up NS: the namespace with its loopback up and no way out but the routes added later
    local ns=$1
    ns_exists "$ns" || ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" route replace unreachable default  # nothing leaves: a wrong address fails here, at once
}

hosts_file() {  # hosts_file NS CTL_IP: /etc/netns/NS/hosts (ip netns exec bind-mounts it on /etc/hosts)
    mkdir -p "/etc/netns/$1"
    cat >"/etc/netns/$1/hosts" <<EOF
# written by meao deploy/lab/up.sh; removed by down.sh
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
$2 $CTL_NAME
$(pop_addr pop1) pop1.mlab
$(pop_addr pop2) pop2.mlab
EOF
}

net_up() {
    ip route replace unreachable "$LAB_NET"  # a cut link or a wrong address answers "unreachable" here
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr replace "$BRIDGE_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    sysctl -qw "net.ipv4.conf.$BRIDGE.forwarding=1"
    local ns addr
    for ns in mlab-ctl mlab-oss; do  # the data centre LAN
        ns_up "$ns"
        [ "$ns" = mlab-ctl ] && addr=$CTL_ADDR || addr=$OSS_ADDR
        ip link show "$ns" >/dev/null 2>&1 || ip link add "$ns" type veth peer name lan0 netns "$ns"
        ip link set "$ns" master "$BRIDGE" up
        ip -n "$ns" addr replace "$addr/24" dev lan0
        ip -n "$ns" link set lan0 up
        ip -n "$ns" route replace "$LAB_NET" via "$BRIDGE_ADDR"  # the PoPs' addresses, through the root
        hosts_file "$ns" "$CTL_ADDR"
    done
    local pop link
    for pop in "${POPS[@]}"; do  # routed WAN links; a PoP's only route is its own link (to its proxy)
        ns="mlab-$pop" link=$(pop_link "$pop")
        ns_up "$ns"
        ip link show "$link" >/dev/null 2>&1 || ip link add "$link" type veth peer name wan0 netns "$ns"
        ip addr replace "$(pop_root_addr "$pop")/24" dev "$link"
        ip link set "$link" up
        sysctl -qw "net.ipv4.conf.$link.forwarding=1"
        # a cut link (carrier lost) drops the PoP's route at once: "unreachable" there too, not ARP timeouts
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.wan0.ignore_routes_with_linkdown=1
        ip -n "$ns" addr replace "$(pop_addr "$pop")/24" dev wan0
        ip -n "$ns" link set wan0 up
        hosts_file "$ns" "$(pop_root_addr "$pop")"
    done
}

# ---------------------------------------------------------------- WAN proxies and the test bed forwarder
wan_up() {
    local pop pairs port
    for pop in "${POPS[@]}"; do
        pairs=()
        for port in "${WAN_PORTS[@]}"; do pairs+=("$(pop_root_addr "$pop"):$port=$CTL_ADDR:$port"); done
        start_daemon "wan-$pop" - "$PY" "$LAB_DIR/wanproxy.py" --delay-ms "$WAN_DELAY_MS" \
            --jitter-ms "$WAN_JITTER_MS" --loss "$WAN_LOSS" --state-file "$STATE/wan-$pop.state" "${pairs[@]}"
    done
}

testbed_ports() {  # the host ports of the test bed's catalogue and notification transport, from clouds.yaml
    "$PY" - "$TESTBED_CLOUDS" <<'EOF'
import sys, urllib.parse, yaml
doc = yaml.safe_load(open(sys.argv[1]))
ports = {5000, 8774, 9696, 9292, 8778}  # keystone, nova, neutron, glance, placement: the test bed's catalogue
for cloud in doc["clouds"].values():
    for url in (cloud["auth"]["auth_url"], cloud.get("meao_notification_url")):
        if url:
            parts = urllib.parse.urlsplit(url)
            ports.add(parts.port or {"http": 80, "https": 443, "rabbit": 5672}[parts.scheme])
print(" ".join(str(p) for p in sorted(ports)))
EOF
}

testbed_up() {
    if [ ! -s "$TESTBED_CLOUDS" ]; then
        say "no OpenStack test bed clouds.yaml at $TESTBED_CLOUDS: its ports are not forwarded into the lab" \
            "(start it with deploy/testbed/up.sh, then run up.sh again)"
        return 0
    fi
    local pairs=() ns port
    for ns in mlab-ctl mlab-pop1 mlab-pop2; do
        for port in $(testbed_ports); do pairs+=("$ns@127.0.0.1:$port=127.0.0.1:$port"); done
    done
    start_daemon testbed-fwd - "$PY" "$LAB_DIR/wanproxy.py" --delay-ms 0 "${pairs[@]}"
    write_clouds
}

write_clouds() {  # per-PoP clouds.yaml: pop1 -> cloud pop1 (test bed zone az1), pop2 -> pop2 (az2); ctl: both
    mkdir -p "$STATE/clouds"
    "$PY" - "$TESTBED_CLOUDS" "$STATE/clouds" <<'EOF'
import os, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))["clouds"]
def entry(pop):
    member = dict(doc["demo"], meao_admin_cloud=f"{pop}-admin")
    return {pop: member, f"{pop}-admin": dict(doc["admin"])}
every = {}
for pop in ("pop1", "pop2"):
    clouds = entry(pop)
    every.update(clouds)
    path = os.path.join(sys.argv[2], f"{pop}.yaml")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        yaml.safe_dump({"clouds": clouds}, f, sort_keys=False)
with open(os.open(os.path.join(sys.argv[2], "ctl.yaml"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    yaml.safe_dump({"clouds": every}, f, sort_keys=False)
EOF
}

# ---------------------------------------------------------------- PostgreSQL and Redis of the lab's own
services_up() {
    if [ -x "$LAB_DIR/services.sh" ]; then  # TLS, passwords, least-privilege users, env files (helper H2)
        ip netns exec mlab-ctl "$LAB_DIR/services.sh" start --listen "$CTL_ADDR" >>"$LOG/services.log" 2>&1 \
            || die "deploy/lab/services.sh start failed; see $LOG/services.log"
        return 0
    fi
    plain_services_up
}

plain_services_up() {  # stand-in until services.sh exists: trust auth, no TLS, one env file for all
    local bin=/usr/lib/postgresql/15/bin data=$STATE/pg
    if [ ! -s "$data/PG_VERSION" ]; then
        mkdir -p "$data" && chown postgres: "$data"
        runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >>"$LOG/pg.log" 2>&1 \
            || die "initdb failed; see $LOG/pg.log"
        echo "host all all $LAB_NET trust" >>"$data/pg_hba.conf"
    fi
    if ! pid_alive pg; then
        start_daemon pg mlab-ctl runuser -u postgres -- "$bin/postgres" -D "$data" -c "listen_addresses=$CTL_ADDR" \
            -c port=5432 -c unix_socket_directories="$data" -c fsync=off
    fi
    start_daemon redis mlab-ctl redis-server --bind "$CTL_ADDR" --port 6379 --save '' --appendonly no \
        --protected-mode no
    wait_tcp mlab-ctl "$CTL_ADDR" 5432 30 PostgreSQL
    wait_tcp mlab-ctl "$CTL_ADDR" 6379 10 Redis
    ip netns exec mlab-ctl runuser -u postgres -- psql -h "$data" -tAc \
        "SELECT 1 FROM pg_database WHERE datname='meao'" | grep -q 1 \
        || ip netns exec mlab-ctl runuser -u postgres -- createdb -h "$data" meao
    local f
    for f in ctl pop1 pop2; do
        [ -s "$ENVD/$f.env" ] && continue
        cat >"$ENVD/$f.env" <<EOF
MEAO_DATABASE_URL=postgresql+psycopg://postgres@$CTL_NAME:5432/meao
MEAO_BROKER_URL=redis://$CTL_NAME:6379/0
EOF
    done
}

lab_env() {  # lab_env SITE: the lab's topology settings the services' env file does not carry
    local site=$1 out=$ENVD/$1.lab.env clouds
    [ "$site" = ctl ] && clouds=$STATE/clouds/ctl.yaml || clouds=$STATE/clouds/$site.yaml
    : >"$out"
    add() { grep -q "^$1=" "$ENVD/$site.env" 2>/dev/null || echo "$1=$2" >>"$out"; }
    add MEAO_PUBLIC_URL "http://$CTL_NAME:8080"  # the API and the grants: through the PoP's proxy
    add OS_CLIENT_CONFIG_FILE "$clouds"
    add MEAO_MEC_HOSTS_FILE "$STATE/hosts.yaml"
    add MEAO_DATA_DIR "$STATE/data/$site"
    add MEAO_PKG_FILE_ROOT "$STATE/data/packages"
    add MEAO_GRANT_OVER_HTTP true
    if ! grep -q "^MEAO_CLIENT_ID=" "$ENVD/$site.env" 2>/dev/null; then
        add MEAO_AUTH none  # no OAuth2 clients yet (services.sh provides them): an open API inside the lab
    fi
    mkdir -p "$STATE/data/$site" "$STATE/data/packages"
}

hosts_inventory() {  # the MEC hosts: pop1 in az1, pop2 in az2, each on its own cloud entry and queue
    cat >"$STATE/hosts.yaml" <<EOF
# written by deploy/lab/up.sh
mec_hosts:
  - {id: pop1, name: Lab PoP 1, cloud: pop1, availability_zone: az1, queue: mecpm.pop1,
     networks: {default: ${MEAO_LAB_NETWORK:-meao-lab}}, served_areas: [cell-1], latency_ms: {cell-1: 5}}
  - {id: pop2, name: Lab PoP 2, cloud: pop2, availability_zone: az2, queue: mecpm.pop2,
     networks: {default: ${MEAO_LAB_NETWORK:-meao-lab}}, served_areas: [cell-2], latency_ms: {cell-2: 8}}
EOF
}

# ---------------------------------------------------------------- processes
run_meao() {  # run_meao NAME NETNS SITE ARGS...: meao with the site's env files, in its namespace
    local name=$1 ns=$2 site=$3; shift 3
    start_daemon "$name" "$ns" bash -c 'set -a; . "$1"; . "$2"; set +a; shift 2; exec "$@"' _ \
        "$ENVD/$site.env" "$ENVD/$site.lab.env" "$MEAO" "$@"
}

haproxy_up() {
    cat >"$STATE/haproxy.cfg" <<EOF
# written by deploy/lab/up.sh: the control plane's load balancer
global
    log stdout format raw local0 warning
    maxconn 2000
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 60s
    # a killed backend costs at most one retried connection, never a client's 5xx
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503
frontend api
    bind $CTL_ADDR:8080
    default_backend meao
backend meao
    balance roundrobin
    option httpchk GET /app_pkgm/v1/ui/
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
    server serve1 $CTL_ADDR:8081 check
    server serve2 $CTL_ADDR:8082 check
EOF
    haproxy -c -q -f "$STATE/haproxy.cfg" || die "HAProxy rejects $STATE/haproxy.cfg"
    start_daemon haproxy mlab-ctl haproxy -W -db -f "$STATE/haproxy.cfg"
}

processes_up() {
    local site
    for site in ctl pop1 pop2; do lab_env "$site"; done
    hosts_inventory
    # the schema and the inventory first, once, so the two API processes do not race on the migration
    ip netns exec mlab-ctl bash -c 'set -a; . "$1"; . "$2"; set +a; "$3" db upgrade' _ \
        "$ENVD/ctl.env" "$ENVD/ctl.lab.env" "$MEAO" >>"$LOG/migrate.log" 2>&1 \
        || die "meao db upgrade failed in mlab-ctl; see $LOG/migrate.log"
    local noauth=()
    grep -q '^MEAO_AUTH=none' "$ENVD/ctl.lab.env" && noauth=(--insecure-no-auth)
    run_meao serve1 mlab-ctl ctl serve --host "$CTL_ADDR" --port 8081 --no-embedded-worker "${noauth[@]}"
    run_meao serve2 mlab-ctl ctl serve --host "$CTL_ADDR" --port 8082 --no-embedded-worker "${noauth[@]}"
    run_meao worker-catalogue mlab-ctl ctl worker -Q meao.catalogue -n meao-catalogue@ctl.mlab
    haproxy_up
    local pop i
    for pop in "${POPS[@]}"; do
        for i in $(seq "$POP_WORKERS"); do
            run_meao "worker-$pop-$i" "mlab-$pop" "$pop" worker -Q "mecpm.$pop" -c "$POP_CONCURRENCY" \
                -n "mepm-$pop@$pop-w$i"
        done
    done
    wait_tcp mlab-ctl "$CTL_ADDR" 8081 60 "meao serve (serve1)"
    wait_tcp mlab-ctl "$CTL_ADDR" 8082 60 "meao serve (serve2)"
    wait_tcp mlab-pop1 "$CTL_NAME" 8080 10 "HAProxy through pop1's WAN proxy"
}

net_up
wan_up
if [ "${MEAO_LAB_ONLY:-}" != net ]; then
    testbed_up
    services_up
    processes_up
fi
T=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
echo "$(date -Is) up in ${T}s only=${MEAO_LAB_ONLY:-all}" >>"$STATE/up-times.log"
say "lab up in ${T}s; status: deploy/lab/status.sh; env files: $ENVD"
