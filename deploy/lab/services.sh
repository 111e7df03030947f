#!/usr/bin/env bash
# The control plane's own PostgreSQL and Redis for the lab: TLS only, passwords, least privilege per PoP.
#
#   deploy/lab/services.sh start  [--listen ADDR]   # idempotent; ADDR default 10.213.0.10
#   deploy/lab/services.sh stop                     # stops both; keeps data, secrets and env files
#   deploy/lab/services.sh status
#
# Run as root. Wrapped in `ip netns exec mlab-ctl` the services live in that namespace; the tests run it
# in the root namespace with --listen 127.0.0.1 and ports of their own (MEAO_LAB_PG_PORT, _REDIS_PORT).
#
# What start does:
#   1. secrets.sh: the lab CA, ctl's server certificate (ctl.mlab, 10.213.0.10, 127.0.0.1), passwords;
#   2. PostgreSQL (Debian's binaries, run as user postgres): ssl=on, scram-sha-256, hostssl only; the
#      database `meao` owned by `meao_owner` (migrations and the control plane), a role `mepm_<pop>`
#      per PoP with only the DML its worker needs (pop-grants.sql);
#   3. Redis (run as user redis): TLS port only (`port 0`), the ACL file from redis-acl.sh, no default user;
#   4. `meao db upgrade` as the owner, the grants, an OAuth2 client per PoP with granting:write only,
#      each PoP's clouds.yaml, and the env files state/env/{ctl,<pop>}.env.
#
# The env files name the services by MEAO_LAB_CTL_HOST (ctl.mlab): start() itself connects through ctl.env,
# so inside mlab-ctl /etc/netns/mlab-ctl/hosts must already map ctl.mlab to the listen address.
# A PoP's worker runs with its env file as `meao worker -Q mecpm.<pop> -n <pop>-<anything>@<host>`: its
# Redis user may only touch the remote-control mailbox of nodes named <pop>-…@… or <pop>@… (redis-acl.sh).
# Rotating a credential: delete its file under state/secrets (or state/tls), run start again, restart the
# processes that use it (start re-sets every password and reloads the ACL file; a new certificate: stop,
# then start).
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LAB_DIR/../.." && pwd)"
export MEAO_LAB_STATE="${MEAO_LAB_STATE:-$LAB_DIR/state}"
STATE="$MEAO_LAB_STATE"
POPS="${MEAO_LAB_POPS:-pop1 pop2}"
PG_PORT="${MEAO_LAB_PG_PORT:-5432}"
REDIS_PORT="${MEAO_LAB_REDIS_PORT:-6379}"
# how clients name the control plane in URLs: ctl.mlab in the lab; the tests use 127.0.0.1
CTL_HOST="${MEAO_LAB_CTL_HOST:-ctl.mlab}"
PUBLIC_URL="${MEAO_LAB_PUBLIC_URL:-http://ctl.mlab:8080}"
MEAO="${MEAO_LAB_MEAO:-$REPO/.venv/bin/meao}"
TESTBED_CLOUDS="${MEAO_LAB_TESTBED_CLOUDS:-${XDG_STATE_HOME:-$HOME/.local/state}/meao-testbed/clouds.yaml}"
PG_BIN="${MEAO_LAB_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
LISTEN=10.213.0.10

PG="$STATE/pg"          # data/, run/ (socket), log; owned by postgres
REDIS="$STATE/redis"    # redis.conf, users.acl, TLS copies, log, pid; owned by redis
ENV_DIR="$STATE/env"
CA="$STATE/tls/ca.crt"

say() { echo "lab services: $*" >&2; }
die() { echo "lab services: $*" >&2; exit 1; }
secret() { cat "$STATE/secrets/$1.pw"; }

as_postgres() { runuser -u postgres -- "$@"; }
psql_admin() {  # psql as the superuser over the cluster's own Unix socket (peer authentication)
    as_postgres "$PG_BIN/psql" -X -q -h "$PG/run" -p "$PG_PORT" -v ON_ERROR_STOP=1 "$@"
}

# ----------------------------------------------------------------------------------------- PostgreSQL
pg_running() { [ -f "$PG/data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" status >/dev/null 2>&1; }

pg_start() {
    [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; apt-get install postgresql"
    mkdir -p "$PG/run"
    chown postgres:postgres "$PG" "$PG/run"
    chmod 0700 "$PG"
    if [ ! -s "$PG/data/PG_VERSION" ]; then
        as_postgres "$PG_BIN/initdb" -D "$PG/data" -U postgres --auth-local=peer --auth-host=reject \
            -E UTF8 --locale=C.UTF-8 >"$PG/initdb.log" 2>&1 || die "initdb failed, see $PG/initdb.log"
        echo "include_if_exists = 'lab.conf'" >>"$PG/data/postgresql.conf"
        say "made the PostgreSQL cluster $PG/data"
    fi
    install -o postgres -g postgres -m 0600 "$STATE/tls/server.crt" "$PG/data/server.crt"
    install -o postgres -g postgres -m 0600 "$STATE/tls/server.key" "$PG/data/server.key"
    cat >"$PG/data/lab.conf" <<EOF
# written by deploy/lab/services.sh at every start
listen_addresses = '$LISTEN'
port = $PG_PORT
unix_socket_directories = '$PG/run'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 200
EOF
    # TLS with a password, or nothing: hostnossl rejects plain TCP; the superuser only over the socket
    cat >"$PG/data/pg_hba.conf" <<EOF
# written by deploy/lab/services.sh at every start
local     all   postgres               peer
hostssl   meao  all       0.0.0.0/0    scram-sha-256
hostnossl all   all       0.0.0.0/0    reject
host      all   all       0.0.0.0/0    reject
EOF
    chown postgres:postgres "$PG/data/lab.conf" "$PG/data/pg_hba.conf"
    if pg_running; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" reload >/dev/null
    else
        as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w -t 60 start >/dev/null \
            || die "PostgreSQL did not start, see $PG/log"
        say "PostgreSQL listens on $LISTEN:$PG_PORT (TLS only)"
    fi
}

pg_accounts() {  # roles and database; passwords (re)set from state/secrets at every start
    local roles="" pop
    for pop in $POPS; do roles="$roles mepm_$pop"; done
    psql_admin -d postgres -v owner_pw="$(secret pg-owner)" <<'EOF'
SELECT format('CREATE ROLE meao_owner LOGIN') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'meao_owner')
\gexec
ALTER ROLE meao_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_pw';
SELECT 'CREATE DATABASE meao OWNER meao_owner' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'meao')
\gexec
REVOKE ALL ON DATABASE meao FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE meao TO meao_owner;
EOF
    psql_admin -d meao <<'EOF'
-- only the owner creates in public (PostgreSQL 15 already revokes CREATE from PUBLIC; say it anyway)
ALTER SCHEMA public OWNER TO meao_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EOF
    for pop in $POPS; do
        psql_admin -d postgres -v role="mepm_$pop" -v pw="$(secret "pg-$pop")" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'pw';
GRANT CONNECT ON DATABASE meao TO :"role";
EOF
    done
}

pg_grants() {  # after the migrations: each PoP role's table rights (pop-grants.sql says which and why)
    local pop
    for pop in $POPS; do
        psql_admin -d meao -v role="mepm_$pop" -f "$LAB_DIR/pop-grants.sql" >/dev/null
    done
}

pg_stop() {
    if pg_running; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null
        say "PostgreSQL stopped"
    fi
}

# ---------------------------------------------------------------------------------------------- Redis
redis_pid() { local p; p="$(cat "$REDIS/redis.pid" 2>/dev/null)" && kill -0 "$p" 2>/dev/null && echo "$p"; }

redis_start() {
    mkdir -p "$REDIS"
    chown redis:redis "$REDIS"
    chmod 0700 "$REDIS"
    install -o redis -g redis -m 0600 "$STATE/tls/server.crt" "$REDIS/server.crt"
    install -o redis -g redis -m 0600 "$STATE/tls/server.key" "$REDIS/server.key"
    install -o redis -g redis -m 0600 "$CA" "$REDIS/ca.crt"
    "$LAB_DIR/redis-acl.sh" >"$REDIS/users.acl.new"
    chown redis:redis "$REDIS/users.acl.new"
    chmod 0600 "$REDIS/users.acl.new"
    mv "$REDIS/users.acl.new" "$REDIS/users.acl"
    cat >"$REDIS/redis.conf" <<EOF
# written by deploy/lab/services.sh at every start
bind $LISTEN
port 0
tls-port $REDIS_PORT
tls-cert-file $REDIS/server.crt
tls-key-file $REDIS/server.key
tls-ca-cert-file $REDIS/ca.crt
tls-auth-clients no
tls-protocols "TLSv1.2 TLSv1.3"
aclfile $REDIS/users.acl
dir $REDIS
save ""
appendonly no
daemonize yes
pidfile $REDIS/redis.pid
logfile $REDIS/log
EOF
    chown redis:redis "$REDIS/redis.conf"
    local pid
    if pid="$(redis_pid)"; then  # running: load the (possibly new) users, keep the queues
        [ "$(redis_cli ACL LOAD 2>&1)" = OK ] && return
        say "Redis (pid $pid) did not load the new ACL file as admin; restarting it (its queues are lost, the" \
            "outbox sends the jobs again)"
        redis_stop
    fi
    runuser -u redis -- redis-server "$REDIS/redis.conf" || die "Redis did not start, see $REDIS/log"
    for _ in $(seq 50); do redis_cli PING >/dev/null 2>&1 && break; sleep 0.1; done
    redis_cli PING >/dev/null || die "Redis does not answer on $LISTEN:$REDIS_PORT, see $REDIS/log"
    say "Redis listens on $LISTEN:$REDIS_PORT (TLS only)"
}

redis_cli() {  # redis-cli as the lab's administrator over TLS
    REDISCLI_AUTH="$(secret redis-admin)" redis-cli --tls --cacert "$CA" -h "$LISTEN" -p "$REDIS_PORT" \
        --user admin --no-auth-warning "$@"
}

redis_stop() {
    local pid
    if pid="$(redis_pid)"; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        say "Redis stopped"
    fi
}

# ----------------------------------------------------------------------------- meao: schema, clients
ctl_env() {  # the control plane's settings, to run meao as the owner here
    set -a
    # shellcheck disable=SC1091
    . "$ENV_DIR/ctl.env"
    set +a
}

write_env() {  # write_env FILE: KEY=VALUE lines on stdin, values double-quoted (systemd and sh agree)
    local file="$1" tmp="$1.new"
    (umask 077; cat >"$tmp")
    mv "$tmp" "$file"
}

envs_ctl() {
    mkdir -p "$ENV_DIR" && chmod 0700 "$ENV_DIR"
    local pg_tls="sslmode=verify-full&sslrootcert=$CA"
    write_env "$ENV_DIR/ctl.env" <<EOF
MEAO_DATABASE_URL="postgresql+psycopg://meao_owner:$(secret pg-owner)@$CTL_HOST:$PG_PORT/meao?$pg_tls"
MEAO_BROKER_URL="rediss://ctl:$(secret redis-ctl)@$CTL_HOST:$REDIS_PORT/0"
MEAO_BROKER_CA_FILE="$CA"
MEAO_PUBLIC_URL="$PUBLIC_URL"
EOF
}

oauth_client() {  # oauth_client POP: the PoP's OAuth2 client, granting:write only; secret in state/secrets
    local pop="$1" file="$STATE/secrets/oauth-$pop.json"
    if [ -s "$file" ] && ( ctl_env; "$MEAO" auth client list -f json 2>/dev/null ) | grep -q "\"$pop\""; then
        return
    fi
    ( ctl_env; "$MEAO" auth client delete "$pop" >/dev/null 2>&1 || true
      "$MEAO" auth client create "$pop" --scope granting:write --credentials-file "$file" >/dev/null 2>&1 ) \
        || die "could not create the OAuth2 client $pop (meao auth client create)"
    chmod 0600 "$file"
    say "made the OAuth2 client $pop (granting:write)"
}

pop_clouds() {  # pop_clouds POP: the PoP's own clouds.yaml, a copy of the test bed's
    local pop="$1" dir="$STATE/$pop"
    mkdir -p "$dir" && chmod 0700 "$dir"
    [ -s "$TESTBED_CLOUDS" ] || die "no test bed clouds.yaml at $TESTBED_CLOUDS; start the test bed " \
        "(deploy/testbed/up.sh) or set MEAO_LAB_TESTBED_CLOUDS"
    install -m 0600 "$TESTBED_CLOUDS" "$dir/clouds.yaml"
}

envs_pops() {
    local pop secret_json client_secret pg_tls="sslmode=verify-full&sslrootcert=$CA"
    for pop in $POPS; do
        oauth_client "$pop"
        pop_clouds "$pop"
        client_secret="$("$MEAO_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' \
            "$STATE/secrets/oauth-$pop.json")"
        write_env "$ENV_DIR/$pop.env" <<EOF
MEAO_DATABASE_URL="postgresql+psycopg://mepm_$pop:$(secret "pg-$pop")@$CTL_HOST:$PG_PORT/meao?$pg_tls"
MEAO_BROKER_URL="rediss://$pop:$(secret "redis-$pop")@$CTL_HOST:$REDIS_PORT/0"
MEAO_BROKER_CA_FILE="$CA"
MEAO_BROKER_UNACKED_KEY="unacked.mecpm.$pop"
MEAO_WORKER_BACKGROUND="false"
MEAO_CLIENT_ID="$pop"
MEAO_CLIENT_SECRET="$client_secret"
MEAO_PUBLIC_URL="$PUBLIC_URL"
OS_CLIENT_CONFIG_FILE="$STATE/$pop/clouds.yaml"
EOF
    done
}

# ------------------------------------------------------------------------------------------- commands
start() {
    [ "$(id -u)" = 0 ] || die "run as root (it starts PostgreSQL as user postgres and Redis as user redis)"
    [ -x "$MEAO" ] || die "no meao at $MEAO; install it (python3 -m venv .venv && .venv/bin/pip install -e .) or set MEAO_LAB_MEAO"
    MEAO_PY="$(dirname "$MEAO")/python"
    "$LAB_DIR/secrets.sh"
    pg_start
    pg_accounts
    redis_start
    envs_ctl
    ( ctl_env; "$MEAO" db upgrade >"$STATE/db-upgrade.log" 2>&1 ) || die "meao db upgrade as meao_owner failed, see $STATE/db-upgrade.log"
    pg_grants
    envs_pops
    say "ready: env files in $ENV_DIR ($(cd "$ENV_DIR" && echo *.env))"
}

stop() {
    redis_stop
    pg_stop
}

status() {
    local rc=0
    if pg_running; then echo "postgresql: running ($PG/data)"; else echo "postgresql: stopped"; rc=3; fi
    if redis_pid >/dev/null; then echo "redis: running (pid $(redis_pid))"; else echo "redis: stopped"; rc=3; fi
    return $rc
}

cmd="${1:-}"
shift || true
while [ $# -gt 0 ]; do
    case "$1" in
        --listen) LISTEN="$2"; shift 2 ;;
        --listen=*) LISTEN="${1#--listen=}"; shift ;;
        *) die "unknown option $1 (usage: services.sh start|stop|status [--listen ADDR])" ;;
    esac
done
case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: services.sh start|stop|status [--listen ADDR]" ;;
esac
