"""Benchmark: the latency of POST /oauth2/token, the client credentials grant (issue 16 item 5: p50 must not
regress by more than 10 %).

Run by hand (never a test) from the root of the checkout to measure:

    .venv/bin/python bench/token_endpoint.py [--requests 300] [--warmup 20] [--db sqlite|postgresql] [--repeat 3]

It starts ``meao serve`` (MEAO_AUTH=local, embedded worker, response validation off as in production) of
*this checkout* (PYTHONPATH is set to it, so one virtualenv can measure two checkouts), on a fresh
database, and sends ``--requests`` sequential token requests of the bootstrap admin client over one
keep-alive connection after ``--warmup`` unmeasured ones; ``--repeat`` runs. The throttle (where the
checkout has one) is set so high that it never refuses: what is measured is the endpoint with its
bookkeeping. Each request costs a scrypt (16 MiB, tens of ms), so expect p50 in that range.

To compare two commits, run it from both checkouts in turn, several times, interleaved (the machine's
load moves). It prints p50/p95/p99 per run and the median (min–max) of the runs' p50; it asserts nothing.
The script only needs ``bench/common.py`` and meao's CLI, so it runs on older commits too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Processes, database, free_port, spread

TOKEN_PATH = "/oauth2/token"


def percentile(samples_ms: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of ``samples_ms``."""
    ordered = sorted(samples_ms)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run_once(http: httpx.Client, base: str, creds: tuple[str, str], requests: int, warmup: int) -> list[float]:
    """Latencies in ms of ``requests`` sequential token requests, after ``warmup`` unmeasured ones."""
    samples = []
    for i in range(warmup + requests):
        started = time.perf_counter()
        resp = http.post(f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=creds)
        elapsed = (time.perf_counter() - started) * 1e3
        if resp.status_code != 200:
            raise SystemExit(f"bench: the token endpoint answered {resp.status_code}: {resp.text[:300]}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def revision() -> str:
    """The commit of this checkout (and '+dirty' with uncommitted changes), for the printout."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per run")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before each run")
    parser.add_argument("--repeat", type=int, default=3, help="runs")
    args = parser.parse_args()
    print(f"checkout {ROOT} at {revision()}; load average at start: {os.getloadavg()[0]:.2f}; "
          f"{os.cpu_count()} cores; {args.db}; {args.repeat} run(s) of {args.requests} sequential requests")
    with tempfile.TemporaryDirectory(prefix="meao-bench-token-") as tmp, database(args.db, Path(tmp)) as db_url:
        work = Path(tmp)
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEAO_")},
               "PYTHONPATH": str(ROOT), "MEAO_AUTH": "local", "MEAO_DATABASE_URL": db_url,
               "MEAO_DATA_DIR": str(work), "MEAO_VALIDATE_RESPONSES": "false", "MEAO_LOG_LEVEL": "WARNING",
               # never throttled: the bench measures the endpoint, not the refusal (older commits ignore it)
               "MEAO_AUTH_TOKEN_BURST": "100000000", "MEAO_AUTH_TOKEN_RATE": "100000"}
        procs = Processes(work, env)
        try:
            procs.start("serve", "serve", "--port", str(port))
            base = f"http://127.0.0.1:{port}"
            procs.up("serve", f"{base}/app_pkgm/v1/app_packages", (401,))
            doc = json.loads((work / "admin-credentials.json").read_text())
            creds = (doc["client_id"], doc["client_secret"])
            p50s = []
            with httpx.Client(timeout=60) as http:
                for run in range(1, args.repeat + 1):
                    ms = run_once(http, base, creds, args.requests, args.warmup)
                    p50s.append(statistics.median(ms))
                    print(f"  run {run}: n={len(ms)}  p50 {p50s[-1]:7.2f} ms  p95 {percentile(ms, 0.95):7.2f} ms  "
                          f"p99 {percentile(ms, 0.99):7.2f} ms  max {max(ms):7.2f} ms")
            print(f"POST {TOKEN_PATH} p50 over {args.repeat} run(s): {spread(p50s, '{:.2f}')} ms  ({revision()})")
        finally:
            procs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
