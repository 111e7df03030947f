#!/usr/bin/env bash
# PowerDNS Authoritative for the MEP's DNS rules (mecpm/mep/dns.py), on loopback only.
#
#   bash deploy/pdns.sh         install when missing, start when not answering, report
#   bash deploy/pdns.sh stop    stop the server this script started
#   bash deploy/pdns.sh env     print the path of mep-dns.env (the settings file; nothing else is done)
#
# Idempotent: when the API already answers with our key, nothing is touched. Installs pdns-server and
# pdns-backend-sqlite3 with apt when missing (sudo only when not root). As root the server runs as user
# pdns (setpriv); otherwise as the calling user.
#
# Knobs (environment):
#   MEAO_PDNS_DIR       state dir: pdns.conf, pdns.sqlite3, api-key, server.pid, pdns.log, mep-dns.env
#                       [${XDG_STATE_HOME:-~/.local/state}/meao-pdns; as root /var/lib/meao-pdns, since
#                       user pdns cannot enter root's 0700 home]
#   MEAO_PDNS_DNS_PORT  DNS port on 127.0.0.1, UDP and TCP [5354]
#   MEAO_PDNS_API_PORT  HTTP API port on 127.0.0.1 [8089]
#
# mep-dns.env holds the settings the MEP reads (MEAO_MEP_DNS_API_URL, MEAO_MEP_DNS_API_KEY_FILE) and
# MEAO_MEP_DNS_ADDRESS (where the DNS answers); `mecpm.mep.dns.PowerDns.from_state_dir` reads it.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then DEFAULT_DIR=/var/lib/meao-pdns
else DEFAULT_DIR="${XDG_STATE_HOME:-$HOME/.local/state}/meao-pdns"; fi
DIR="${MEAO_PDNS_DIR:-$DEFAULT_DIR}"
DNS_PORT="${MEAO_PDNS_DNS_PORT:-5354}"
API_PORT="${MEAO_PDNS_API_PORT:-8089}"
HOST=127.0.0.1
API_URL="http://$HOST:$API_PORT"
CONF="$DIR/pdns.conf" DB="$DIR/pdns.sqlite3" KEY_FILE="$DIR/api-key"
PID_FILE="$DIR/server.pid" LOG_FILE="$DIR/pdns.log" ENV_FILE="$DIR/mep-dns.env"
SCHEMA=/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql

if [ -t 2 ]; then B=$'\033[1m' N=$'\033[0m'; else B="" N=""; fi
say() { printf '%s[pdns.sh]%s %s\n' "$B" "$N" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

server_pid() {  # the running pdns_server of this state dir: the pid file's, else found by its --config-dir
    local pid
    if [ -s "$PID_FILE" ]; then
        pid=$(cat "$PID_FILE")
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pdns_server ] && { echo "$pid"; return 0; }
    fi
    pid=$(pgrep -xf "pdns_server --config-dir=$DIR .*" | head -1) || return 1
    echo "$pid" >"$PID_FILE"
    echo "$pid"
}

# api_status -> HTTP status of GET /api/v1/servers/localhost with our key, 000 when nothing answers
api_status() {
    python3 - "$API_URL" "$KEY_FILE" <<'EOF'
import sys, urllib.request, urllib.error
url, key_file = sys.argv[1], sys.argv[2]
try:
    key = open(key_file).read().strip()
except OSError:
    key = ""
req = urllib.request.Request(url + "/api/v1/servers/localhost", headers={"X-API-Key": key})
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

# dns_answers -> 0 when a DNS server answers a UDP query on HOST:DNS_PORT (any rcode)
dns_answers() {
    python3 - "$HOST" "$DNS_PORT" <<'EOF'
import socket, sys
q = bytes.fromhex("beef00000001000000000000") + b"\x00" + bytes.fromhex("00060001")  # ". SOA"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
try:
    s.sendto(q, (sys.argv[1], int(sys.argv[2])))
    sys.exit(0 if s.recv(512)[:2] == q[:2] else 1)
except OSError:
    sys.exit(1)
EOF
}

port_user() {  # port_user PROTO PORT -> what listens there, from ss (empty when free)
    ss -Hln"${1:0:1}"p "sport = :$2" 2>/dev/null | head -1
}

# The root zone "." makes every name without a zone of its own NXDOMAIN (negative TTL 5 s) instead of
# REFUSED: mecpm/mep/dns.py deletes a name's zone when its last rule goes, and a recursor forwarding
# that name would turn REFUSED into SERVFAIL. Only for a PowerDNS that serves the MEP alone.
ensure_root_zone() {
    python3 - "$API_URL" "$KEY_FILE" <<'EOF'
import json, sys, urllib.request, urllib.error
url, key = sys.argv[1] + "/api/v1/servers/localhost/zones", open(sys.argv[2]).read().strip()
def call(method, path="", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
if call("GET", "/=2E") == 404:
    soa = "ns.mep.invalid. hostmaster.mep.invalid. 0 10800 3600 604800 5"
    rrsets = [{"name": ".", "type": "SOA", "ttl": 3600, "records": [{"content": soa, "disabled": False}]},
              {"name": ".", "type": "NS", "ttl": 3600, "records": [{"content": "ns.mep.invalid.", "disabled": False}]}]
    status = call("POST", body={"name": ".", "kind": "Native", "rrsets": rrsets})
    if status not in (201, 409):
        sys.exit(f"creating the root zone failed: HTTP {status}")
    print("[pdns.sh] created the root zone '.': names without a zone answer NXDOMAIN", file=sys.stderr)
EOF
}

report() {
    say "PowerDNS $1: DNS $HOST:$DNS_PORT (udp+tcp), API $API_URL (pid $(server_pid || echo '?'))"
    say "  settings for the MEP: $ENV_FILE; log: $LOG_FILE; stop: bash deploy/pdns.sh stop"
}

stop() {
    local pid
    if ! pid=$(server_pid); then
        say "not running (no live pdns_server in $PID_FILE)"; rm -f "$PID_FILE"; return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; say "stopped pdns_server (pid $pid)"; return 0; }
        sleep 0.1
    done
    die "pdns_server (pid $pid) did not exit 10 s after SIGTERM; see $LOG_FILE, then kill -KILL $pid"
}

install_packages() {
    command -v pdns_server >/dev/null && [ -f "$SCHEMA" ] && return 0
    command -v apt-get >/dev/null \
        || die "pdns_server is missing and there is no apt-get: install PowerDNS Authoritative 4.x with the gsqlite3 backend"
    say "installing pdns-server pdns-backend-sqlite3 (apt)"
    $SUDO apt-get update -qq || die "apt-get update failed (network or apt sources?)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        pdns-server pdns-backend-sqlite3 >/dev/null \
        || die "apt-get install pdns-server pdns-backend-sqlite3 failed; run it by hand to see why"
    # Debian's package may start its own pdns on 0.0.0.0:53 where an init system runs; ours is separate.
}

write_files() {
    mkdir -p "$DIR"
    chmod 0750 "$DIR"
    if [ ! -s "$KEY_FILE" ]; then
        (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$KEY_FILE")
        say "generated a new API key in $KEY_FILE"
    fi
    chmod 0600 "$KEY_FILE"
    if [ ! -s "$DB" ]; then
        python3 - "$DB" "$SCHEMA" <<'EOF' || die "could not create the sqlite schema in $DB"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.executescript(open(sys.argv[2]).read())
con.close()
EOF
        say "created $DB"
    fi
    # pdns.conf carries the key, so only its owner and the server's group read it
    (umask 027; cat >"$CONF.new" <<EOF
# written by deploy/pdns.sh; rewritten at every start
launch=gsqlite3
gsqlite3-database=$DB
local-address=$HOST
local-port=$DNS_PORT
socket-dir=$DIR
api=yes
api-key=$(cat "$KEY_FILE")
webserver-address=$HOST
webserver-port=$API_PORT
webserver-allow-from=127.0.0.1,::1
security-poll-suffix=
EOF
    )
    mv "$CONF.new" "$CONF"
    cat >"$ENV_FILE" <<EOF
# written by deploy/pdns.sh: settings of the MEP's DNS driver (mecpm/mep/dns.py)
MEAO_MEP_DNS_API_URL=$API_URL
MEAO_MEP_DNS_API_KEY_FILE=$KEY_FILE
MEAO_MEP_DNS_ADDRESS=$HOST:$DNS_PORT
EOF
    if [ "$(id -u)" -eq 0 ]; then
        # the server runs as pdns and writes the DB, its WAL files next to it and the control socket
        id pdns >/dev/null 2>&1 || die "user pdns is missing (the pdns-server package creates it)"
        chgrp pdns "$DIR" "$CONF"
        chown pdns:pdns "$DB"
        chmod 0770 "$DIR"
        chown pdns:pdns "$DB"-wal "$DB"-shm 2>/dev/null || true
        setpriv --reuid=pdns --regid=pdns --init-groups test -r "$CONF" -a -w "$DB" -a -w "$DIR" \
            || die "user pdns cannot read $CONF or write $DB and $DIR (a parent directory closed to it?): set MEAO_PDNS_DIR to a directory pdns can reach, e.g. /var/lib/meao-pdns"
    fi
}

start() {
    local status pid who
    status=$(api_status)
    if [ "$status" = 200 ] && dns_answers; then ensure_root_zone; report "already running"; return 0; fi
    if ! server_pid >/dev/null; then
        # something else on our ports: say who, do not guess
        if [ "$status" != 000 ]; then
            die "something else answers on $API_URL (HTTP $status to our API request): $(port_user tcp "$API_PORT"). Stop it or set MEAO_PDNS_API_PORT"
        fi
        for proto in udp tcp; do
            who=$(port_user "$proto" "$DNS_PORT")
            [ -z "$who" ] || die "$proto port $DNS_PORT is taken: $who. Stop it or set MEAO_PDNS_DNS_PORT"
        done
        install_packages
        write_files
        : >"$LOG_FILE"
        if [ "$(id -u)" -eq 0 ]; then
            setsid setpriv --reuid=pdns --regid=pdns --init-groups \
                pdns_server --config-dir="$DIR" --guardian=no --daemon=no --disable-syslog \
                </dev/null >>"$LOG_FILE" 2>&1 &
        else
            setsid pdns_server --config-dir="$DIR" --guardian=no --daemon=no --disable-syslog \
                </dev/null >>"$LOG_FILE" 2>&1 &
        fi
        pid=$!  # setsid and setpriv exec, so this is the server itself
        echo "$pid" >"$PID_FILE"
        say "started pdns_server (pid $pid), waiting for the API and DNS"
    fi
    for _ in $(seq 1 100); do
        if ! server_pid >/dev/null; then
            die "pdns_server exited at start; last lines of $LOG_FILE:
$(tail -n 15 "$LOG_FILE" 2>/dev/null)"
        fi
        status=$(api_status)
        if [ "$status" = 200 ] && dns_answers; then
            ensure_root_zone || die "the API answers but refused to create the root zone; see $LOG_FILE"
            report "running"; return 0
        fi
        if [ "$status" = 401 ]; then
            die "the API on $API_URL refuses the key in $KEY_FILE (401): a server started with another key? bash deploy/pdns.sh stop, then start again"
        fi
        sleep 0.2
    done
    die "pdns_server (pid $(server_pid)) runs but the API ($API_URL: $status) or DNS ($HOST:$DNS_PORT) did not answer within 20 s; see $LOG_FILE"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    env) echo "$ENV_FILE" ;;
    *) die "usage: bash deploy/pdns.sh [start|stop|env]" ;;
esac
