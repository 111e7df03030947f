#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine or a developer's: installs and starts what
# the tests need (Python venv, Redis, PostgreSQL, PowerDNS), then runs pytest.
# Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[tests/run.sh]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_ready=""
apt_install() {
  [ -n "$apt_ready" ] || { say "apt-get update"; $SUDO apt-get update -qq; apt_ready=1; }
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done; return 1; }

# Python 3.11+ and the project venv
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
"$PY" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
if [ ! -x .venv/bin/python ]; then say "creating .venv"; "$PY" -m venv .venv; fi
if ! .venv/bin/python -c 'import meao, pytest, connexion' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing meao and test dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

# Redis on 127.0.0.1:6379
if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/meao-redis.log
  wait_port 6379 || { say "Redis did not start: see /tmp/meao-redis.log"; exit 1; }
fi

# PostgreSQL on 127.0.0.1:5432, trust auth for local tests
if ! port_open 5432; then
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install postgresql
  if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    conf=/etc/postgresql/$ver/main/pg_hba.conf
    if ! grep -q "meao-tests" "$conf"; then
      say "allowing trust auth on 127.0.0.1 for the tests ($conf)"
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust # meao-tests' "$conf"
    fi
    say "starting PostgreSQL $ver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  wait_port 5432 || { say "PostgreSQL did not start on 127.0.0.1:5432"; exit 1; }
fi

# tests/security/test_tls_transport.py starts its own TLS-only redis-server and PostgreSQL cluster (initdb,
# run as the postgres user when we are root): the binaries must be here even when the ports above were open
command -v redis-server >/dev/null || apt_install redis-server
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
# the distributed lab (tests/lab, deploy/lab): HAProxy in front of the API processes, iproute2 for the namespaces
command -v haproxy >/dev/null || apt_install haproxy
command -v ip >/dev/null || apt_install iproute2

# systemd-analyze checks the units of deploy/systemd (tests/deploy); hadolint and Docker Compose come
# with the test extra above (wheels)
command -v systemd-analyze >/dev/null || apt_install systemd

# Debian's Chromium and its driver for the console's browser tests (tests/console, Selenium): no browser
# download; SE_OFFLINE keeps Selenium Manager from fetching one
[ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ] || apt_install chromium chromium-driver
export SE_OFFLINE=true

# PowerDNS Authoritative for the MEP's DNS rules (tests/mep): DNS 127.0.0.1:5354, API 127.0.0.1:8089;
# installs pdns-server when missing and reuses a running one
bash deploy/pdns.sh

# The real OpenStack test bed (Keystone, Glance, Placement, Nova, Neutron on 127.0.0.1) for the
# openstack-marked tests; up.sh installs MariaDB/RabbitMQ and its own cached venv when absent.
# under CI (tests/ci.py says what counts: CI=true, 1 or yes) the OpenStack tests always run
if [ "${MEAO_SKIP_OPENSTACK:-0}" != "1" ] || .venv/bin/python -m tests.ci; then
  say "bringing up the OpenStack test bed (deploy/testbed/up.sh; logs in ~/.local/state/meao-testbed/log)"
  t0=$(date +%s)
  bash deploy/testbed/up.sh
  say "test bed ready after $(( $(date +%s) - t0 )) s"
else
  say "MEAO_SKIP_OPENSTACK=1: skipping the OpenStack test bed and its tests"
  set -- -m "not openstack" "$@"
fi

say "running pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { say "pytest collected no tests"; exit 1; }
exit "$rc"
