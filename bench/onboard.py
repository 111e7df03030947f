"""Benchmark: onboard a generated ~200 MB package and compare with `sha256sum` + `unzip -t`.

Run by hand: `.venv/bin/python bench/onboard.py [--size-mb 200]`. It builds the mec-minimal example plus
one large artifact, then, in a fresh subprocess (so peak RSS is the onboarding's own), runs the real
onboarding job (fetch from a file: URI with checksum, safe extraction with digests, manifest check,
AppD parse) on an SQLite database, and prints wall time and peak RSS next to the same file read by
`sha256sum` and `unzip -t`, which is the least any integrity-checking onboarding must do.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from meao.config import load_settings, set_settings
s = load_settings(MEAO_DATA_DIR=sys.argv[1], MEAO_PKG_FILE_ROOT=sys.argv[2])
set_settings(s)
from meao.db.migrate import db_upgrade
db_upgrade()
from meao.db.models import AppPackage
from meao.db.session import session_scope
from meao.catalogue.onboarding import run_onboarding
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with session_scope() as db:
    pkg = AppPackage(app_pkg_name="bench", app_pkg_version="1", checksum_algorithm="SHA-256",
                     checksum_hash=sys.argv[4], app_pkg_path=sys.argv[3], onboarding_attempt=1)
    db.add(pkg)
t0 = time.perf_counter()
run_onboarding(pkg.id, 1)
elapsed = time.perf_counter() - t0
with session_scope() as db:
    row = db.get(AppPackage, pkg.id)
    state, failure = row.onboarding_state, row.onboarding_failure
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "state": state, "failure": failure, "base_rss_kb": base, "peak_rss_kb": peak}))
"""


def _big_artifact(size_mb: int):
    def mutate(tree: Path) -> None:
        blob = tree / "Files" / "data" / "blob.bin"
        blob.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(20261122)  # seeded: the same package every run
        with blob.open("wb") as out:  # incompressible, like a real (compressed qcow2) disk image
            for _ in range(size_mb):
                chunk = rng.randbytes(1024 * 1024)
                out.write(chunk)
    return mutate


def _timed(cmd: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    from descriptors.examples.build import build_package

    with tempfile.TemporaryDirectory(prefix="meao-bench-") as tmp:
        work = Path(tmp)
        print(f"building a ~{args.size_mb} MB package ...", file=sys.stderr)
        pkg = build_package("mec-minimal", work / "src", mutate=_big_artifact(args.size_mb))
        size = pkg.stat().st_size
        digest = subprocess.run(["sha256sum", str(pkg)], capture_output=True, text=True, check=True).stdout.split()[0]
        subprocess.run(["sync"], check=False)
        ref_sha, _ = _timed(["sha256sum", str(pkg)])
        ref_unzip, _ = _timed(["unzip", "-tq", str(pkg)])
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", CHILD, str(work / "data"), str(work / "src"), pkg.as_uri(),
                              digest], capture_output=True, text=True, env=env, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if res["state"] != "ONBOARDED":
            print(f"onboarding failed: {res['failure']}", file=sys.stderr)
            return 1
        ref = ref_sha + ref_unzip
        print(f"package: {size / 1e6:.1f} MB")
        print(f"sha256sum + unzip -t: {ref:.2f} s (sha256sum {ref_sha:.2f} s, unzip -t {ref_unzip:.2f} s)")
        print(f"meao onboarding:      {res['seconds']:.2f} s  -> ratio {res['seconds'] / ref:.2f}x (target <= 1.5x)")
        print(f"peak RSS: {res['peak_rss_kb'] / 1024:.0f} MiB (after imports and DB setup: "
              f"{res['base_rss_kb'] / 1024:.0f} MiB; growth {(res['peak_rss_kb'] - res['base_rss_kb']) / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
