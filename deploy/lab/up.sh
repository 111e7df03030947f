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
#   clouds.yaml], MEAO_LAB_NETWORK [meao-lab], MEAO_LAB_ONLY=net (network and WAN proxies only, no services or processes).
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
    if (wait_tcp mlab-ctl 127.0.0.1 5000 10 "the test bed's Keystone (forwarded)"); then
        ensure_network
    else
        say "the OpenStack test bed does not answer: the lab runs, its instantiations will fail until" \
            "deploy/testbed/up.sh has started it"
    fi
}

write_clouds() {  # the control plane's clouds.yaml (capacity, flavors); each PoP's own is services.sh's
    mkdir -p "$STATE/clouds"
    install -m 0600 "$TESTBED_CLOUDS" "$STATE/clouds/ctl.yaml"
}

ensure_network() {  # the tenant network the MEC hosts attach apps to (in the test bed's demo project)
    ip netns exec mlab-ctl "$PY" - "$STATE/clouds/ctl.yaml" "$LAB_NETWORK" >>"$LOG/network.log" 2>&1 <<'EOF' \
        || say "could not make the network $LAB_NETWORK in the test bed (is it up?); see $LOG/network.log"
import sys
import openstack
region = openstack.config.OpenStackConfig(config_files=[sys.argv[1]]).get_one(cloud="demo")
conn = openstack.connection.Connection(config=region)
if conn.network.find_network(sys.argv[2]) is None:
    net = conn.network.create_network(name=sys.argv[2])
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.67.0.0/24", name=sys.argv[2])
    print(f"made network {sys.argv[2]}")
EOF
}

# ---------------------------------------------------------------- PostgreSQL and Redis of the lab's own
services_up() {  # TLS, passwords, least-privilege users, the PoPs' OAuth2 clients and env files
    [ -x "$LAB_DIR/services.sh" ] || die "deploy/lab/services.sh is missing"
    ip netns exec mlab-ctl env MEAO_LAB_STATE="$STATE" MEAO_LAB_TESTBED_CLOUDS="$TESTBED_CLOUDS" \
        "$LAB_DIR/services.sh" start --listen "$CTL_ADDR" >>"$LOG/services.log" 2>&1 9>&- \
        || die "deploy/lab/services.sh start failed; see $LOG/services.log"
}

lab_env() {  # lab_env SITE: the lab's topology settings the services' env file does not carry
    local site=$1 out=$ENVD/$1.lab.env clouds
    clouds=$STATE/clouds/ctl.yaml
    : >"$out"
    add() { grep -q "^$1=" "$ENVD/$site.env" 2>/dev/null || echo "$1=$2" >>"$out"; }
    add MEAO_PUBLIC_URL "http://$CTL_NAME:8080"  # the API and the grants: through the PoP's proxy
    add OS_CLIENT_CONFIG_FILE "$clouds"
    # ctl: the token signing key both API processes share, and the packages' files, which a PoP's worker
    # reads too (one machine here: the same directory stands for the PoP's copy)
    add MEAO_DATA_DIR "$STATE/data/ctl"
    if [ "$site" = ctl ]; then
        add MEAO_MEC_HOSTS_FILE "$STATE/hosts.yaml"  # loaded by the control plane; a PoP may not write it
        add MEAO_PKG_FILE_ROOT "$STATE/data/packages"
    fi
    mkdir -p "$STATE/data/ctl" "$STATE/data/packages"
}

hosts_inventory() {  # the MEC hosts: pop1 in zone az1, pop2 in az2 of the test bed, each on its own queue
    local common="cloud: demo, networks: {default: $LAB_NETWORK},
     services: [{serName: RNIS, version: 2.2.1}, {serName: LS, version: 2.2.1}],
     features: [{featureName: UserApps, version: '1.0'}]"
    cat >"$STATE/hosts.yaml" <<EOF
# written by deploy/lab/up.sh
mec_hosts:
  - {id: pop1, name: Lab PoP 1, availability_zone: az1, queue: mecpm.pop1, served_areas: [cell-1],
     latency_ms: {cell-1: 5}, $common}
  - {id: pop2, name: Lab PoP 2, availability_zone: az2, queue: mecpm.pop2, served_areas: [cell-2],
     latency_ms: {cell-2: 8}, $common}
EOF
}

# ---------------------------------------------------------------- processes
in_ctl() {  # in_ctl CMD...: a command of the control plane (its env files, in mlab-ctl)
    ip netns exec mlab-ctl bash -c 'set -a; . "$1"; . "$2"; set +a; shift 2; exec "$@"' _ \
        "$ENVD/ctl.env" "$ENVD/ctl.lab.env" "$@"
}

ctl_prepare() {  # once, before the API processes: the inventory, and the oss namespace's operator client
    # (services.sh migrated the schema; loading the hosts here keeps the two API processes from racing)
    in_ctl "$PY" -c 'from meao.lcm.hosts import load_configured_hosts; load_configured_hosts()' \
        >>"$LOG/ctl-prepare.log" 2>&1 || die "loading $STATE/hosts.yaml failed; see $LOG/ctl-prepare.log"
    local creds=$STATE/secrets/oauth-oss.json
    if [ ! -s "$creds" ]; then  # the operator's client, every scope, for the CLI and the benches in mlab-oss
        in_ctl "$MEAO" auth client delete oss >>"$LOG/ctl-prepare.log" 2>&1 || true
        in_ctl "$MEAO" auth client create oss --all-scopes --operator --credentials-file "$creds" \
            >>"$LOG/ctl-prepare.log" 2>&1 || die "could not create the OAuth2 client oss; see $LOG/ctl-prepare.log"
    fi
    cat >"$ENVD/oss.env" <<EOF
MEAO_ENDPOINT=http://$CTL_NAME:8080
MEAO_CLIENT_CREDENTIALS_FILE=$creds
EOF
}

haproxy_up() {
    cat >"$STATE/haproxy.cfg" <<EOF
# written by deploy/lab/up.sh: the control plane's load balancer
global
    log stdout format raw local0 info  # one line a request (state/log/haproxy.log), with its termination state
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
    # a request that reached a server is sent again only when it is safe (RFC 9110 clause 9.2.1): a POST that
    # met a dying server may have been done, so it is retried only when it never got a connection
    http-request disable-l7-retry unless { method GET HEAD OPTIONS }
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
    ctl_prepare
    start_meao serve1
    start_meao serve2
    start_meao worker-catalogue
    haproxy_up
    local pop i
    for pop in "${POPS[@]}"; do
        for i in $(seq "$POP_WORKERS"); do start_meao "worker-$pop-$i"; done
    done
    wait_tcp mlab-ctl "$CTL_ADDR" 8081 60 "meao serve (serve1)"
    wait_tcp mlab-ctl "$CTL_ADDR" 8082 60 "meao serve (serve2)"
    wait_tcp mlab-pop1 "$CTL_NAME" 8080 10 "HAProxy through pop1's WAN proxy"
}

PHASES=""
phase() {  # phase NAME: run NAME, note its seconds for up-times.log
    local t
    t=$(date +%s.%N)
    "$1"
    PHASES="$PHASES $1=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t }")"
}
phase net_up
phase wan_up
if [ "${MEAO_LAB_ONLY:-}" != net ]; then
    phase testbed_up
    phase services_up
    phase processes_up
fi
T=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
echo "$(date -Is) up in ${T}s only=${MEAO_LAB_ONLY:-all}$PHASES" >>"$STATE/up-times.log"
say "lab up in ${T}s; status: deploy/lab/status.sh; env files: $ENVD"
