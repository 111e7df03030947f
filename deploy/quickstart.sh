#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine with Python 3.11 to a running meao:
# creates .venv, installs meao, builds the example packages and serves Mm1 on 127.0.0.1:8080 with
# zero configuration (SQLite under ./var, in-process worker). Its default PoP is the local OpenStack test
# bed (deploy/testbed/up.sh, brought up here), unless OS_CLIENT_CONFIG_FILE (or
# ~/.config/openstack/clouds.yaml) names a real cloud: then MEAO_QUICKSTART_CLOUD (default: its first
# entry) is used. MEAO_QUICKSTART_OPENSTACK=0 skips OpenStack (package management only). With a PoP, the
# MEP that meao serve runs for it realises DNS rules in PowerDNS (deploy/pdns.sh, MEAO_QUICKSTART_DNS=0 skips).
# Once it answers, the example packages are onboarded through Mm1 itself. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[quickstart]\033[0m %s\n' "$*" >&2; }
PY=${PYTHON:-python3}
HOST=${MEAO_HOST:-127.0.0.1}; PORT=${MEAO_PORT:-8080}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  say "installing python3-venv"; SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }
if ! .venv/bin/python -c 'import meao, connexion' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing meao into .venv (about a minute the first time)"
  .venv/bin/pip install -q --upgrade pip >/dev/null && .venv/bin/pip install -q -e . && touch .venv/.installed
fi
# the examples are onboarded from file: URIs below this directory, so the quickstart needs no
# MEAO_OUTBOUND_ALLOW (http(s) appPkgPath or callbackUri on loopback or private addresses would)
export MEAO_PKG_FILE_ROOT=${MEAO_PKG_FILE_ROOT:-$PWD/var/examples}
say "building the example packages into $MEAO_PKG_FILE_ROOT"
.venv/bin/python descriptors/examples/build.py --out "$MEAO_PKG_FILE_ROOT" mec-vm-app mec-minimal mec-json-appd >&2
if [ "${MEAO_QUICKSTART_OPENSTACK:-1}" != "0" ]; then
  clouds=${OS_CLIENT_CONFIG_FILE:-}
  [ -z "$clouds" ] && [ -f "$HOME/.config/openstack/clouds.yaml" ] && clouds=$HOME/.config/openstack/clouds.yaml
  if [ -n "$clouds" ]; then
    cloud=${MEAO_QUICKSTART_CLOUD:-$(.venv/bin/python -c 'import sys, yaml; print(next(iter(yaml.safe_load(open(sys.argv[1]))["clouds"])))' "$clouds")}
    say "using cloud '$cloud' from $clouds as the default PoP"
    .venv/bin/python deploy/quickstart_pop.py --clouds "$clouds" --cloud "$cloud" --out var/hosts.yaml
  else
    say "no clouds.yaml: bringing up the local OpenStack test bed (a few minutes the first time)"
    bash deploy/testbed/up.sh
    clouds=${MEAO_TESTBED_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/meao-testbed}/clouds.yaml
    .venv/bin/python deploy/quickstart_pop.py --clouds "$clouds" --cloud demo --out var/hosts.yaml --testbed
  fi
  export OS_CLIENT_CONFIG_FILE=$clouds MEAO_MEC_HOSTS_FILE=$PWD/var/hosts.yaml
  if [ "${MEAO_QUICKSTART_DNS:-1}" != "0" ]; then
    # the PoP's MEP (in process) realises the apps' DNS rules in PowerDNS on 127.0.0.1:5354
    say "starting PowerDNS for the MEP's DNS rules (deploy/pdns.sh; MEAO_QUICKSTART_DNS=0 skips it)"
    bash deploy/pdns.sh
    set -a; . "$(bash deploy/pdns.sh env)"; set +a
  fi
fi
.venv/bin/meao serve --host "$HOST" --port "$PORT" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT
.venv/bin/python - "$HOST" "$PORT" "$MEAO_PKG_FILE_ROOT" <<'PY'
import hashlib, sys, time, pathlib, httpx
from meao.auth.client_credentials import client_auth
host, port, root = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
base = f"http://{host}:{port}/app_pkgm/v1"
for _ in range(120):
    try:
        httpx.get(f"{base}/app_packages", timeout=1); break
    except httpx.HTTPError:
        time.sleep(0.5)
# a token from var/admin-credentials.json (meao serve wrote it), or MEAO_CLIENT_ID/SECRET; none if open
http = httpx.Client(auth=client_auth(f"http://{host}:{port}"), timeout=30)
known = {p["checksum"]["hash"] for p in http.get(f"{base}/app_packages?all_fields").json()
         if p["onboardingState"] == "ONBOARDED"}
for csar in sorted(root.glob("mec-*.zip")):
    digest = hashlib.sha256(csar.read_bytes()).hexdigest()
    if digest in known:
        print(f"[quickstart] {csar.name}: already onboarded", file=sys.stderr)
        continue
    body = {"appPkgName": csar.stem, "appPkgVersion": "1.0", "appPkgPath": csar.resolve().as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": digest}}
    pkg = http.post(f"{base}/app_packages", json=body).json()
    for _ in range(100):
        info = http.get(f"{base}/app_packages/{pkg['id']}").json()
        if info["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in info:
            break
        time.sleep(0.1)
    state = info["onboardingState"]
    why = info.get("onboardingFailureDetails", {}).get("detail", "")
    print(f"[quickstart] {csar.name}: {state} {info.get('appDId', '')} {why}", file=sys.stderr)
vm = next((p for p in http.get(f"{base}/app_packages").json() if p.get("appName") == "mec-vm-app"), None)
print(f"[quickstart] meao is serving Mm1 at {base} (Swagger UI: {base}/ui/). Try:\n"
      f"  .venv/bin/meao package list\n"
      f"  curl -s -H \"Authorization: Bearer $(.venv/bin/meao auth token)\" {base}/app_packages | python3 -m json.tool",
      file=sys.stderr)
if vm and __import__("os").environ.get("MEAO_MEC_HOSTS_FILE"):
    print("[quickstart] instantiate the example VM app on PoP pop1 (from another terminal):\n"
          f"  .venv/bin/meao app instantiate $(.venv/bin/meao app create "
          f"{vm['appDId']} -f value -c id) --host pop1 --wait", file=sys.stderr)
PY
wait $server
