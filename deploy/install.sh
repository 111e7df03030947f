#!/usr/bin/env bash
# Installs meao into a virtual environment at PREFIX (default /opt/meao): what the systemd units
# (deploy/systemd, ExecStart=/opt/meao/bin/meao) and the image (deploy/Containerfile) run.
# Usage: bash deploy/install.sh [PREFIX]     (MEAO_PIP_ARGS adds pip options, e.g. --no-deps)
#
# Why more than `pip install`: meao finds its OpenAPI files, its Alembic migrations and the TOSCA type
# files beside its package (meao.OPENAPI_DIR, meao/db/migrate.py, meao.config.tosca_types_dir), and the
# wheel does not carry them; this copies them there from the source tree, then checks that they resolve.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${1:-/opt/meao}
PY=${PYTHON:-python3}
say() { printf '[deploy/install.sh] %s\n' "$*" >&2; }

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
[ -x "$PREFIX/bin/python" ] || { say "creating the virtual environment $PREFIX"; "$PY" -m venv "$PREFIX"; }
say "installing meao from $SRC into $PREFIX"
# shellcheck disable=SC2086 # MEAO_PIP_ARGS is a list of options
"$PREFIX/bin/pip" install --quiet --no-cache-dir ${MEAO_PIP_ARGS:-} "$SRC"
site=$("$PREFIX/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$site/openapi" "$site/migrations" "$site/descriptors/types"
cp -R "$SRC/openapi" "$SRC/migrations" "$site/"
mkdir -p "$site/descriptors" && cp -R "$SRC/descriptors/types" "$site/descriptors/"
find "$site/migrations" -name __pycache__ -prune -exec rm -rf {} +
"$PREFIX/bin/python" -I - <<'PY'  # -I: this install's meao, not one in the current directory
from pathlib import Path

import meao

root = Path(meao.__file__).resolve().parents[1]
wanted = ("openapi/mm1-app-pkgm.yaml", "migrations/env.py", "descriptors/types")
missing = [p for p in wanted if not (root / p).exists()]
if missing:
    raise SystemExit(f"deploy/install.sh: {', '.join(missing)} missing under {root}; the install is incomplete")
PY
say "done: $PREFIX/bin/meao"
