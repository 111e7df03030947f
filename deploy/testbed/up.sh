#!/usr/bin/env bash
# Bring up a real OpenStack (Keystone, Glance, Placement, Nova with the fake virt driver, Neutron) on
# 127.0.0.1 for meao's integration tests. Idempotent: a running test bed is left alone; a stopped one
# restarts on its kept state; `down.sh --purge` forgets it.
#
# Knobs (environment variables, defaults in brackets):
#   MEAO_TESTBED_STATE            state, configs, logs, PIDs, clouds.yaml [~/.local/state/meao-testbed]
#   MEAO_TESTBED_CACHE            where the service venv is cached, keyed by the lock hash
#                                 [~/.cache/meao-testbed -> venv-<sha256 of the lock, 16 chars>]
#   MEAO_TESTBED_PYTHON           interpreter for the service venv [python3.11]
#   MEAO_TESTBED_COMPUTE_HOSTS    nova-compute services, named compute1..N, compute<i> alone in
#                                 aggregate and availability zone az<i> [2]
#   MEAO_TESTBED_COMPUTE_DRIVER   nova compute_driver [sized]: "sized" is the test bed's fake driver
#                                 (plugins/meao_testbed/sized_fake.py, copied into nova.virt: size from the next knobs, and a
#                                 server named testbed-fail-spawn* goes to ERROR); or any Nova driver,
#                                 e.g. fake.SmallFakeDriver (2 vCPU/8 GB), fake.FakeDriver (huge)
#   MEAO_TESTBED_HOST_VCPUS / _HOST_RAM_MB / _HOST_DISK_GB   size of each "sized" host [2/8192/1028]
#   MEAO_TESTBED_CPU_RATIO / _RAM_RATIO   allocation ratios [4.0 / 1.0]
#   MEAO_TESTBED_QUOTA_INSTANCES / _QUOTA_CORES / _QUOTA_RAM_MB / _QUOTA_PORTS
#                                 quotas of the member project "demo" [10 / 20 / 51200 / 100]
#   MEAO_TESTBED_DB_PORT          MariaDB port; reused when listening, else installed and started [3306]
#   MEAO_TESTBED_DB_ADMIN_USER / _DB_ADMIN_PASSWORD  account to create DBs in a reused MariaDB [root/""]
#   MEAO_TESTBED_RABBIT_PORT      RabbitMQ port; reused (guest/guest) when listening, else started [5672]
#   MEAO_TESTBED_DB_PREFIX        prefix of the test bed's database names [meaotb_]
#   MEAO_TESTBED_PASSWORD         password of every test bed user (admin, demo, services) [meao-testbed]
#   MEAO_TESTBED_READY_TIMEOUT    seconds to wait for the services [300]
# APIs: Keystone 5000, Glance 9292, Placement 8778, Nova 8774, Neutron 9696 (all 127.0.0.1 only).
# Output: $MEAO_TESTBED_STATE/clouds.yaml with clouds "admin" and "demo" (member of project demo).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }

mkdir -p "$STATE"
exec 9>"$STATE/.up.lock"
flock -w "$READY_TIMEOUT" 9 || die "another up.sh is still running"
if "$TESTBED_DIR/status.sh" -q; then
    say "test bed already up; clouds.yaml: $STATE/clouds.yaml"
    exit 0
fi
if compgen -G "$PIDS/*.pid" >/dev/null; then
    say "test bed partly up: stopping what is left before starting again"
    "$TESTBED_DIR/down.sh"
fi
mkdir -p "$LOG" "$PIDS" "$ETC"

# ---------------------------------------------------------------- packages, MariaDB, RabbitMQ
apt_install() {
    say "apt-get install $*"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") \
        >>"$LOG/apt.log" 2>&1 || die "apt-get install $* failed, see $LOG/apt.log"
}

start_daemon() {  # start_daemon NAME CMD... : detached, own session, all three streams redirected
    local name=$1; shift
    setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 9>&- &
    echo $! >"$PIDS/$name.pid"
}

wait_port() {  # wait_port NAME PORT
    local deadline=$(($(date +%s) + READY_TIMEOUT))
    until port_open "$2"; do
        [[ $(date +%s) -lt $deadline ]] || die "$1 did not listen on $2 in time, see $LOG/$1.log"
        if [[ -s $PIDS/$1.pid ]] && ! pid_alive "$1"; then die "$1 exited, see $LOG/$1.log"; fi
        sleep 0.5
    done
}

DB_PORT="${MEAO_TESTBED_DB_PORT:-3306}"
RABBIT_PORT="${MEAO_TESTBED_RABBIT_PORT:-5672}"

if port_open "$DB_PORT"; then
    say "reusing MariaDB on $HOST_IP:$DB_PORT"
    DB_ADMIN=(mariadb --no-defaults -h "$HOST_IP" -P "$DB_PORT" -u "$DB_ADMIN_USER")
    [[ -n $DB_ADMIN_PASSWORD ]] && DB_ADMIN+=("-p$DB_ADMIN_PASSWORD")
else
    command -v mariadbd >/dev/null || apt_install mariadb-server
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" \
            --auth-root-authentication-method=socket >>"$LOG/mariadb.log" 2>&1
    fi
    say "starting MariaDB on $HOST_IP:$DB_PORT"
    start_daemon mariadb mariadbd --no-defaults --user=root --bind-address="$HOST_IP" --port="$DB_PORT" \
        --datadir="$STATE/mysql" --socket="$STATE/mysqld.sock" --pid-file="$STATE/mysqld.pid" \
        --max-connections=1000 --innodb-buffer-pool-size=256M
    wait_port mariadb "$DB_PORT"
    DB_ADMIN=(mariadb --no-defaults --socket="$STATE/mysqld.sock" -u root)
fi

if port_open "$RABBIT_PORT"; then
    say "reusing RabbitMQ on $HOST_IP:$RABBIT_PORT"
    RABBIT_NODE=""
else
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    RABBIT_NODE="meaotb@localhost"
    EPMD_WAS_UP=0
    port_open 4369 && EPMD_WAS_UP=1
    mkdir -p "$STATE/rabbitmq"
    # Our own config, env and plugin files: the machine's /etc/rabbitmq must not move our listener.
    printf 'listeners.tcp.1 = %s:%s\n' "$HOST_IP" "$RABBIT_PORT" >"$STATE/rabbitmq/rabbitmq.conf"
    echo '[].' >"$STATE/rabbitmq/enabled_plugins"
    : >"$STATE/rabbitmq/rabbitmq-env.conf"
    chown -R rabbitmq: "$STATE/rabbitmq"
    say "starting RabbitMQ node $RABBIT_NODE on $HOST_IP:$RABBIT_PORT"
    start_daemon rabbitmq runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq \
        RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_NODE_IP_ADDRESS="$HOST_IP" \
        RABBITMQ_NODE_PORT="$RABBIT_PORT" RABBITMQ_DIST_PORT=$((RABBIT_PORT + 20000)) \
        ERL_EPMD_ADDRESS="$HOST_IP" RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia" \
        RABBITMQ_LOG_BASE="$STATE/rabbitmq/log" RABBITMQ_CONFIG_FILE="$STATE/rabbitmq/rabbitmq.conf" \
        RABBITMQ_CONF_ENV_FILE="$STATE/rabbitmq/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/rabbitmq/enabled_plugins" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    echo "$RABBIT_NODE" >"$STATE/rabbitmq.node"
    wait_port rabbitmq "$RABBIT_PORT"
    if ((!EPMD_WAS_UP)); then  # rabbit started epmd; record it so down.sh ends it after rabbit
        ss -Hltnp "sport = :4369" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 >"$PIDS/epmd.pid"
    fi
fi
# Our own vhost keeps the test bed's queues apart from anybody else's on a shared broker.
RABBIT_VHOST=meaotb
rabbitctl() { if [[ -n $RABBIT_NODE ]]; then rabbitmqctl -n "$RABBIT_NODE" "$@"; else rabbitmqctl "$@"; fi; }
if ! { rabbitctl add_vhost "$RABBIT_VHOST" || rabbitctl list_vhosts | grep -qx "$RABBIT_VHOST"; } \
        >>"$LOG/rabbitmqctl.log" 2>&1 \
   || ! rabbitctl set_permissions -p "$RABBIT_VHOST" guest ".*" ".*" ".*" >>"$LOG/rabbitmqctl.log" 2>&1; then
    say "cannot administer RabbitMQ; using its default vhost"
    RABBIT_VHOST=""
fi
TRANSPORT_URL="rabbit://guest:guest@$HOST_IP:$RABBIT_PORT/$RABBIT_VHOST"
# Nova publishes every notification to the queue versioned_notifications.info whether or not anyone
# reads it: bound it, so an idle test bed does not grow the broker (meao binds queues of its own).
rabbitctl set_policy ${RABBIT_VHOST:+-p "$RABBIT_VHOST"} --apply-to queues meaotb-notifications \
    '^(versioned_)?notifications\.' '{"message-ttl":60000,"max-length":1000}' >>"$LOG/rabbitmqctl.log" 2>&1 \
    || say "cannot bound the notification queues (RabbitMQ policy); carrying on"

ensure_venv
say "infrastructure ready after $(elapsed)s"

# ---------------------------------------------------------------- configuration
FRESH=0
[[ -f $STATE/.initialized ]] || FRESH=1
# Nova's own fake drivers draw a new node uuid at each start and cannot restart on kept state.
[[ $COMPUTE_DRIVER == sized ]] || FRESH=1
DB_USER=meaotb
db_url() { echo "mysql+pymysql://$DB_USER:$SERVICE_PASSWORD@$HOST_IP:$DB_PORT/${DB_PREFIX}$1?charset=utf8"; }
DATABASES=(keystone glance placement nova_api nova nova_cell0 neutron)

if ((FRESH)); then
    say "fresh state: (re)creating databases ${DB_PREFIX}*"
    rm -rf "$STATE/keystone" "$STATE/glance" "$STATE/nova" "$STATE"/nova-compute* "$STATE/neutron" "$ETC"
    sql="CREATE USER IF NOT EXISTS '$DB_USER'@'$HOST_IP' IDENTIFIED BY '$SERVICE_PASSWORD';
         CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$SERVICE_PASSWORD';"
    for db in "${DATABASES[@]}"; do
        sql+="DROP DATABASE IF EXISTS \`${DB_PREFIX}$db\`; CREATE DATABASE \`${DB_PREFIX}$db\`
              CHARACTER SET utf8mb3;
              GRANT ALL ON \`${DB_PREFIX}$db\`.* TO '$DB_USER'@'$HOST_IP';
              GRANT ALL ON \`${DB_PREFIX}$db\`.* TO '$DB_USER'@'localhost';"
    done
    "${DB_ADMIN[@]}" -e "$sql" >>"$LOG/mariadb-admin.log" 2>&1 || die "cannot create databases, see $LOG/mariadb-admin.log"
fi

mkdir -p "$ETC"/{keystone,glance,placement,nova,neutron/plugins/ml2} "$STATE/lock" \
    "$STATE/keystone"/{fernet-keys,credential-keys} "$STATE/glance"/{images,staging,tasks}

authtoken() {  # authtoken USER : the [keystone_authtoken] section of a service
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$HOST_IP:$PORT_KEYSTONE/v3
auth_url = http://$HOST_IP:$PORT_KEYSTONE/v3
auth_type = password
username = $1
password = $SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
service_token_roles_required = true
EOF
}
service_auth() {  # service_auth SECTION USER : password auth for calls to another service
    cat <<EOF
[$1]
auth_url = http://$HOST_IP:$PORT_KEYSTONE/v3
auth_type = password
username = $2
password = $SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
[database]
connection = $(db_url keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF

cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
enabled_backends = fs:file
[database]
connection = $(db_url glance)
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $STATE/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[paste_deploy]
flavor = keystone
$(authtoken glance)
EOF

cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
[placement_database]
connection = $(db_url placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF

# Size and allocation ratios of the fake hosts.
HOST_VCPUS="${MEAO_TESTBED_HOST_VCPUS:-2}"
HOST_RAM_MB="${MEAO_TESTBED_HOST_RAM_MB:-8192}"
HOST_DISK_GB="${MEAO_TESTBED_HOST_DISK_GB:-1028}"
driver="$COMPUTE_DRIVER"
[[ $driver == sized ]] && driver=meao_testbed_fake.SizedFakeDriver
cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
transport_url = $TRANSPORT_URL
host = meaotb-controller
my_ip = $HOST_IP
state_path = $STATE/nova
compute_driver = $driver
cpu_allocation_ratio = ${MEAO_TESTBED_CPU_RATIO:-4.0}
ram_allocation_ratio = ${MEAO_TESTBED_RAM_RATIO:-1.0}
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
# A graceful stop waits this long for the guest before powering it off.
shutdown_timeout = 10
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[vnc]
enabled = false
[oslo_concurrency]
lock_path = $STATE/lock
# Versioned notifications (instance.create.end, instance.delete.end, ...) on the bus: meao's VIM
# adapter learns from them that a server is ACTIVE or gone (clouds.yaml key meao_notification_url).
[notifications]
notification_format = versioned
[oslo_messaging_notifications]
driver = messagingv2
$(authtoken nova)
$(service_auth placement nova)
$(service_auth neutron nova)
$(service_auth service_user nova)
send_service_user_token = true
EOF
for ((i = 1; i <= COMPUTE_HOSTS; i++)); do
    mkdir -p "$STATE/nova-compute$i"
    cat >"$ETC/nova/compute$i.conf" <<EOF
[DEFAULT]
host = compute$i
state_path = $STATE/nova-compute$i
instances_path = $STATE/nova-compute$i/instances
EOF
done

cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $TRANSPORT_URL
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
dhcp_agent_notification = false
api_paste_config = $ETC/neutron/api-paste.ini
state_path = $STATE/neutron
[database]
connection = $(db_url neutron)
[oslo_concurrency]
lock_path = $STATE/lock
$(authtoken neutron)
$(service_auth nova neutron)
EOF
cat >"$ETC/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = meao_bind_all
# tag_ports_during_bulk_creation: tags in the POST of a port (else Neutron drops them silently)
extension_drivers = port_security,tag_ports_during_bulk_creation
[ml2_type_vxlan]
vni_ranges = 1:1000
[ml2_type_flat]
flat_networks = *
EOF

# The test bed's own plugins (port binding without agents, a fake host of chosen size), copied in
# with a hand-written dist-info: stevedore finds the ML2 driver by its entry point, no build needed.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$SITE/meao_testbed" "$SITE/meao_testbed_plugins-0.dist-info"
cp -r "$TESTBED_DIR/plugins/meao_testbed" "$SITE/"
# Nova loads compute drivers from its own nova.virt package only.
cp "$TESTBED_DIR/plugins/meao_testbed/sized_fake.py" "$SITE/nova/virt/meao_testbed_fake.py"
mkdir -p "$SITE/meao_testbed_plugins-0.dist-info"
printf 'Metadata-Version: 2.1\nName: meao-testbed-plugins\nVersion: 0\n' \
    >"$SITE/meao_testbed_plugins-0.dist-info/METADATA"
printf '[neutron.ml2.mechanism_drivers]\nmeao_bind_all = meao_testbed.ml2_bind_all:BindAllMechanismDriver\n' \
    >"$SITE/meao_testbed_plugins-0.dist-info/entry_points.txt"

# ---------------------------------------------------------------- schemas
run_logged() {  # run_logged NAME CMD... : output appended to $LOG/NAME.log
    local name=$1; shift
    "$@" >>"$LOG/$name.log" 2>&1 || { say "failed: $* (see $LOG/$name.log)"; return 1; }
}
if ((FRESH)); then
    say "syncing schemas"
    KS=(--config-file "$ETC/keystone/keystone.conf")
    NOVA=(--config-file "$ETC/nova/nova.conf")
    NEUTRON=(--config-file "$ETC/neutron/neutron.conf" --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini")
    jobs_pids=()
    (run_logged keystone-manage "$VENV/bin/keystone-manage" "${KS[@]}" db_sync &&
     run_logged keystone-manage "$VENV/bin/keystone-manage" "${KS[@]}" fernet_setup \
        --keystone-user root --keystone-group root &&
     run_logged keystone-manage "$VENV/bin/keystone-manage" "${KS[@]}" credential_setup \
        --keystone-user root --keystone-group root &&
     run_logged keystone-manage "$VENV/bin/keystone-manage" "${KS[@]}" bootstrap \
        --bootstrap-password "$SERVICE_PASSWORD" \
        --bootstrap-admin-url "http://$HOST_IP:$PORT_KEYSTONE/v3" \
        --bootstrap-internal-url "http://$HOST_IP:$PORT_KEYSTONE/v3" \
        --bootstrap-public-url "http://$HOST_IP:$PORT_KEYSTONE/v3" \
        --bootstrap-region-id RegionOne) & jobs_pids+=($!)
    run_logged glance-manage "$VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync \
        & jobs_pids+=($!)
    run_logged placement-manage "$VENV/bin/placement-manage" --config-file "$ETC/placement/placement.conf" \
        db sync & jobs_pids+=($!)
    (run_logged nova-manage "$VENV/bin/nova-manage" "${NOVA[@]}" api_db sync &&
     run_logged nova-manage "$VENV/bin/nova-manage" "${NOVA[@]}" cell_v2 map_cell0 \
        --database_connection "$(db_url nova_cell0)" &&
     run_logged nova-manage "$VENV/bin/nova-manage" "${NOVA[@]}" cell_v2 create_cell --name cell1 &&
     run_logged nova-manage "$VENV/bin/nova-manage" "${NOVA[@]}" db sync) & jobs_pids+=($!)
    run_logged neutron-db-manage "$VENV/bin/neutron-db-manage" "${NEUTRON[@]}" upgrade heads \
        & jobs_pids+=($!)
    for p in "${jobs_pids[@]}"; do wait "$p" || die "schema sync failed"; done
    say "schemas synced after $(elapsed)s"
fi

# ---------------------------------------------------------------- services
uwsgi_app() {  # uwsgi_app NAME PORT MODULE [ENV=VAL...]
    local name=$1 port=$2 module=$3; shift 3
    start_daemon "$name" env "$@" "$VENV/bin/uwsgi" --master --die-on-term --need-app --lazy-apps \
        --processes 2 --threads 1 --http-socket "$HOST_IP:$port" --module "$module" \
        --http-chunked-input --http-raw-body --buffer-size 65535 --add-header "Connection: close"
}
# "Connection: close": the plain http-socket closes after each response, and a client that kept the
# connection for its next POST would get "connection reset".
export PATH="$VENV/bin:$PATH"

uwsgi_app keystone "$PORT_KEYSTONE" keystone.wsgi.api:application OS_KEYSTONE_CONFIG_DIR="$ETC/keystone"
wait_port keystone "$PORT_KEYSTONE"
"$VENV/bin/python" "$TESTBED_DIR/bootstrap.py" identity --state "$STATE" --password "$SERVICE_PASSWORD" \
    --notification-url "$TRANSPORT_URL" \
    >>"$LOG/bootstrap.log" 2>&1 || die "identity bootstrap failed, see $LOG/bootstrap.log"
say "keystone ready after $(elapsed)s"

uwsgi_app placement "$PORT_PLACEMENT" placement.wsgi.api:application OS_PLACEMENT_CONFIG_DIR="$ETC/placement"
uwsgi_app glance "$PORT_GLANCE" glance.wsgi.api:application OS_GLANCE_CONFIG_DIR="$ETC/glance"
uwsgi_app neutron "$PORT_NEUTRON" neutron.wsgi.api:application OS_NEUTRON_CONFIG_DIR="$ETC/neutron" \
    "OS_NEUTRON_CONFIG_FILES=neutron.conf;plugins/ml2/ml2_conf.ini"
uwsgi_app nova-api "$PORT_NOVA" nova.wsgi.osapi_compute:application OS_NOVA_CONFIG_DIR="$ETC/nova"
start_daemon nova-conductor "$VENV/bin/nova-conductor" --config-file "$ETC/nova/nova.conf"
start_daemon nova-scheduler "$VENV/bin/nova-scheduler" --config-file "$ETC/nova/nova.conf"
wait_port placement "$PORT_PLACEMENT"
for ((i = 1; i <= COMPUTE_HOSTS; i++)); do
    start_daemon "nova-compute$i" env MEAO_TESTBED_HOST_VCPUS="$HOST_VCPUS" \
        MEAO_TESTBED_HOST_RAM_MB="$HOST_RAM_MB" MEAO_TESTBED_HOST_DISK_GB="$HOST_DISK_GB" \
        "$VENV/bin/nova-compute" --config-file "$ETC/nova/nova.conf" --config-file "$ETC/nova/compute$i.conf"
done
for svc in glance:$PORT_GLANCE neutron:$PORT_NEUTRON nova-api:$PORT_NOVA; do
    wait_port "${svc%%:*}" "${svc##*:}"
done

"$VENV/bin/python" "$TESTBED_DIR/bootstrap.py" compute --state "$STATE" --password "$SERVICE_PASSWORD" \
    --pids "$PIDS" --hosts "$COMPUTE_HOSTS" --nova-manage "$VENV/bin/nova-manage" --nova-conf "$ETC/nova/nova.conf" \
    --timeout "$READY_TIMEOUT" \
    --quota-instances "${MEAO_TESTBED_QUOTA_INSTANCES:-10}" --quota-cores "${MEAO_TESTBED_QUOTA_CORES:-20}" \
    --quota-ram-mb "${MEAO_TESTBED_QUOTA_RAM_MB:-51200}" --quota-ports "${MEAO_TESTBED_QUOTA_PORTS:-100}" \
    >>"$LOG/bootstrap.log" 2>&1 || die "compute bootstrap failed, see $LOG/bootstrap.log"
touch "$STATE/.initialized"
"$TESTBED_DIR/status.sh" -q || die "services not all up after start, see $TESTBED_DIR/status.sh"
say "test bed up in $(elapsed)s (fresh state: $FRESH); clouds.yaml: $STATE/clouds.yaml"
echo "$(date -Is) up in $(elapsed)s fresh_state=$FRESH" >>"$STATE/up-times.log"
