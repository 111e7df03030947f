"""Benchmark: what one Mm1 request costs at scale — GET one instance, GET a list page, POST create instance.

Run by hand (never a test) from the repository root; it needs ``wrk`` (Debian: ``apt-get install wrk``):

    .venv/bin/python bench/api.py [--workers 2] [--instances 10000] [--db postgresql|sqlite] ...

The production shape, on a fresh database it creates and drops: ``meao serve --no-embedded-worker
--workers N`` (response validation off, as in production; ``--validate-responses`` turns it on) beside
one ``meao worker`` on Redis database 5, the fake VIM (nothing reaches OpenStack), local OAuth 2.0 tokens
of the bootstrap admin client. It onboards the mec-json-appd example package through Mm1, then:

1. ``POST /app_lcm/v1/app_instances`` (CreateAppInstanceRequest) as fast as ``--connections`` keep-alive
   connections go, ``--repeat`` runs of ``--seconds`` after ``--warmup`` s;
2. tops the instances up to ``--instances`` with direct INSERTs (the same columns a create writes);
3. ``GET /app_lcm/v1/app_instances/{id}`` over 1,000 random ids;
4. ``GET /app_lcm/v1/app_instances``: the first page, and pages deep in the list (the ``rel="next"``
   links of a walk through every page, which the bench also times as one client would).

It prints req/s, latency percentiles (wrk's, in ms), errors and CPU per request of the serve processes
and PostgreSQL, each as the median (min–max) of the runs, next to the issue's targets: GET one >= 1,000
req/s with p99 < 10 ms, a list page >= 500 req/s with p99 < 25 ms, POST >= 300 req/s (2 cores, 8
connections, 10,000 instances in PostgreSQL, a page of 100). It measures and prints; it asserts
nothing. wrk runs on the same cores as the server: the machine's load average at the start is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Processes, cpu_of, database, free_port, pg_backends_cpu, spread, wait

REDIS_DB = 5
LCM = "/app_lcm/v1"
PKGM = "/app_pkgm/v1"
TARGETS = {"POST create instance": ">= 300 req/s", "GET one instance": ">= 1,000 req/s, p99 < 10 ms",
           "GET the first list page": ">= 500 req/s, p99 < 25 ms",
           "GET list pages deep in the list": ">= 500 req/s, p99 < 25 ms"}

# wrk's Lua: rotate through the request paths, then print one JSON line of what it measured
WRK_SCRIPT = """
local paths = {%(paths)s}
local i = math.random(#paths)
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Authorization"] = %(auth)s
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #paths + 1
  return wrk.format(nil, paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %%d, "duration_us": %%d, "errors": %%d, "non2xx": %%d, ' ..
    '"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for these ASCII texts


def wrk(port: int, paths: list[str], token: str, *, method: str = "GET", body: str = "", connections: int,
        seconds: float, work: Path) -> dict[str, Any]:
    """One wrk run over ``paths`` (rotated); its counts and latency percentiles (µs)."""
    script = work / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(lua_string(p) for p in paths), "method": lua_string(method),
                                    "body": lua_string(body) if body else "nil", "auth": lua_string(f"Bearer {token}")})
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                          "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"bench: wrk printed no result:\n{out.stdout}\n{out.stderr}")
    return json.loads(line[6:])


def measure(label: str, args: argparse.Namespace, port: int, serve_pid: int, dbname: str | None, token: str,
            paths: list[str], work: Path, method: str = "GET", body: str = "") -> dict[str, float]:
    """``--repeat`` wrk runs (each after a warm-up); prints every run and the median (min–max)."""
    rates, p50s, p99s = [], [], []
    for run in range(args.repeat):
        wrk(port, paths, token, method=method, body=body, connections=args.connections, seconds=args.warmup,
            work=work)
        cpu0, pg0 = cpu_of(serve_pid), pg_backends_cpu(dbname) if dbname else {}
        got = wrk(port, paths, token, method=method, body=body, connections=args.connections,
                  seconds=args.seconds, work=work)
        server = cpu_of(serve_pid) - cpu0
        pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg_backends_cpu(dbname).items()) if dbname else 0.0
        rate = got["requests"] / (got["duration_us"] / 1e6)
        per = 1e3 / max(1, got["requests"])
        rates.append(rate)
        p50s.append(got["p50"] / 1e3)
        p99s.append(got["p99"] / 1e3)
        print(f"  {label} run {run + 1}: {rate:7.1f} req/s  p50 {got['p50'] / 1e3:6.2f} ms  p90 "
              f"{got['p90'] / 1e3:6.2f} ms  p99 {got['p99'] / 1e3:6.2f} ms  max {got['max'] / 1e3:6.1f} ms  "
              f"errors {got['errors']}, non-2xx {got['non2xx']}; CPU ms/request: serve {server * per:.2f}, "
              f"PostgreSQL {pg * per:.2f}")
    print(f"  {label}: median (min–max) of {args.repeat}: {spread(rates)} req/s, p50 {spread(p50s, '{:.2f}')} "
          f"ms, p99 {spread(p99s, '{:.2f}')} ms (target {TARGETS.get(label, '-')})")
    return {"rate": statistics.median(rates), "p50": statistics.median(p50s), "p99": statistics.median(p99s)}


def onboard(api: httpx.Client, work: Path) -> str:
    """Onboard the mec-json-appd example through Mm1; its appDId."""
    import hashlib

    from descriptors.examples.build import build_package

    csar = build_package("mec-json-appd", work)
    body = {"appPkgName": "bench", "appPkgVersion": "1.0", "appPkgPath": csar.resolve().as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(csar.read_bytes()).hexdigest()}}
    made = api.post(f"{PKGM}/app_packages", json=body)
    made.raise_for_status()

    def settled() -> dict[str, Any] | None:
        pkg = api.get(f"{PKGM}/app_packages/{made.json()['id']}").json()
        return pkg if pkg["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in pkg else None

    pkg = wait(settled, 120, "onboarding")
    if pkg["onboardingState"] != "ONBOARDED":
        raise SystemExit(f"bench: onboarding failed: {pkg.get('onboardingFailureDetails')}")
    return pkg["appDId"]


def top_up(db_url: str, total: int) -> tuple[int, int]:
    """INSERT instances like the last created one until there are ``total``: (how many there are, how many
    were added)."""
    from sqlalchemy import create_engine, func, insert, select
    from sqlalchemy.orm import Session

    from meao.db.models import AppInstance

    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        have = session.scalar(select(func.count()).select_from(AppInstance))
        model = session.scalars(select(AppInstance).order_by(AppInstance.created_at.desc()).limit(1)).one()
        columns = {c.key: getattr(model, c.key) for c in AppInstance.__table__.columns if c.key != "id"}
        rows = [{**columns, "id": str(uuid.uuid4()), "name": f"bench-seeded-{i}"} for i in range(total - have)]
        for chunk in range(0, len(rows), 2000):
            session.execute(insert(AppInstance), rows[chunk:chunk + 2000])
    engine.dispose()
    return have + len(rows), len(rows)


def next_links(api: httpx.Client, first: str, limit: int) -> tuple[list[str], float, int]:
    """Follow ``rel="next"`` from ``first``: the page paths, the seconds the walk took, the items seen."""
    paths, seen, url = [], 0, first
    t0 = time.perf_counter()
    while url:
        got = api.get(url)
        got.raise_for_status()
        seen += len(got.json())
        match = re.search(r'<([^>]+)>;\s*rel="next"', got.headers.get("Link", ""))
        url = match.group(1) if match else ""
        if url and len(paths) < limit:
            paths.append(url.split("://", 1)[-1].split("/", 1)[-1].join(("/", "")))
    return paths, time.perf_counter() - t0, seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="meao serve --workers (processes on one port)")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--validate-responses", action="store_true", help="MEAO_VALIDATE_RESPONSES=true")
    parser.add_argument("--only", default="post,one,list", help="which of post,one,list to measure")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed; `apt-get install wrk` (Debian) and run again")
    only = set(args.only.split(","))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; wrk {args.connections} "
          f"connections; meao serve --workers {args.workers}; {args.db}; response validation "
          f"{'on' if args.validate_responses else 'off'}")
    with tempfile.TemporaryDirectory(prefix="meao-bench-api-") as tmp, database(args.db, Path(tmp)) as db_url:
        work = Path(tmp)
        port = free_port()
        subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], check=True, capture_output=True)
        env = {**os.environ, "MEAO_DATABASE_URL": db_url, "MEAO_DATA_DIR": str(work), "MEAO_VIM_DRIVER": "fake",
               "MEAO_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}", "MEAO_PKG_FILE_ROOT": str(work),
               "MEAO_VALIDATE_RESPONSES": "true" if args.validate_responses else "false", "MEAO_LOG_LEVEL": "WARNING"}
        procs = Processes(work, env)
        try:
            serve = procs.start("serve", "serve", "--no-embedded-worker", "--port", str(port),
                                *(("--workers", str(args.workers)) if args.workers > 1 else ()))
            procs.start("worker", "worker", "-c", "2")
            procs.up("serve", f"http://127.0.0.1:{port}{LCM}/app_instances", (401,))
            from meao.auth.client_credentials import client_auth

            base = f"http://127.0.0.1:{port}"
            auth = client_auth(base, {"MEAO_DATA_DIR": str(work)})
            api = httpx.Client(base_url=base, timeout=60, auth=auth)
            token = auth.token(httpx.Client(timeout=30))  # not ``api``: its own auth would take the token lock
            appd_id = onboard(api, work)
            dbname = db_url.rsplit("/", 1)[-1] if args.db == "postgresql" else None
            if "post" in only:
                print("\n== POST /app_lcm/v1/app_instances")
                body = json.dumps({"appDId": appd_id, "appInstanceName": "bench", "appInstanceDescription": "bench"})
                measure("POST create instance", args, port, serve.pid, dbname, token, [f"{LCM}/app_instances"],
                        work, method="POST", body=body)
            model = api.post(f"{LCM}/app_instances", json={"appDId": appd_id, "appInstanceName": "bench"})
            model.raise_for_status()  # the row top_up copies
            count, added = top_up(db_url, args.instances)
            print(f"\n{count} instances in the database ({added} inserted directly)")
            ids = [i["id"] for i in api.get(f"{LCM}/app_instances", params={"fields": "id"}).json()]
            if "one" in only:
                print("\n== GET /app_lcm/v1/app_instances/{id}")
                sample = random.Random(7).sample(ids, min(1000, len(ids)))
                measure("GET one instance", args, port, serve.pid, dbname, token,
                        [f"{LCM}/app_instances/{i}" for i in sample], work)
            if "list" in only:
                print("\n== GET /app_lcm/v1/app_instances (pages)")
                deep, walk_s, seen = next_links(api, f"{LCM}/app_instances", 200)
                print(f"  one client walking every page: {seen} instances in {walk_s:.2f} s "
                      f"({len(deep) + 1} pages)")
                measure("GET the first list page", args, port, serve.pid, dbname, token,
                        [f"{LCM}/app_instances"], work)
                if deep:
                    measure("GET list pages deep in the list", args, port, serve.pid, dbname, token, deep, work)
        finally:
            procs.stop()
            subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
