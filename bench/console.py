"""Benchmark: the CPU the browser console adds to `meao serve` (target: < 5 % with 5 consoles, 50 ops).

Run by hand from the repository root (never as a test); it needs PostgreSQL on 127.0.0.1:5432, a Redis
of its own, Debian's Chromium and its driver (/usr/bin/chromium, /usr/bin/chromedriver) and Selenium:

    .venv/bin/python bench/console.py --redis-url redis://127.0.0.1:6394/0 [--ops 50] [--consoles 5]
        [--window 30] [--rounds 5] [--breakdown] [--profile N]

It starts `meao serve` (local auth, so every poll pays its token check) and one `meao worker` on a fresh
PostgreSQL database and the given Redis, onboards the example VM app and keeps ``--ops`` instantiations
running: the worker holds each one at the fault-injection point ``step:server`` (``meao.faults``, the
chaos suite's hold files), after its image, flavor and ports, so they stay PROCESSING, heartbeating and
listed by the console, with no load on any cloud. The PoPs use the fake VIM driver (MEAO_VIM_DRIVER=fake,
seven PoPs of their own clouds so that each PoP's quota holds its share): no OpenStack is touched, which
also means the console's capacity reading of a PoP is an in-memory one here (a real cloud's is cached for
MEAO_CAPACITY_CACHE_S, one read per cloud per 5 s however many consoles are open).

Then it measures the CPU seconds of serve (psutil, the process and its children) over ``--window``-second
windows with no console open and with ``--consoles`` real headless Chromium windows on /console/, signed
in through the login form, interleaved ``--rounds`` times (the order alternates each round). Between the
windows the tabs go to about:blank, so the browser keeps running in both cases and only the console's
polling differs; the tabs run with background throttling off, so each polls as a visible page does. It
prints each window, the medians and spreads, the console requests serve answered per second (from its
/ops/v1/metrics, read outside the windows), and the added CPU as % of one core and as % of serve's own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Processes, cpu_of, database, free_port, spread, wait

TINY = {"virtualCpu": {"numVirtualCpu": 1}, "virtualMemory": {"virtualMemSize": 64}}
POPS = 7
HOLD = "hold-step-server"  # meao.faults: "step:server" → the file name's ":" becomes "-"


def _hosts() -> dict:
    return {"mec_hosts": [{
        "id": f"pop{i}", "name": f"Bench PoP {i}", "cloud": f"bench-cloud-{i}", "availability_zone": "az1",
        "served_areas": ["cell-1"], "latency_ms": {"cell-1": 1 + i},
        "services": [{"serName": "RNIS", "version": "2.2.1"}],
        "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}}
        for i in range(1, POPS + 1)]}


def _browser(windows: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download a browser
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000",
                # every console polls as a visible one would: no throttling of hidden or background pages
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    handles = [driver.current_window_handle]
    for _ in range(windows - 1):
        driver.switch_to.new_window("window")
        handles.append(driver.current_window_handle)
    return driver, handles


def _signed_in(driver) -> bool:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, '[data-testid="viewer"]')
    return bool(found) and found[0].is_displayed() and bool(found[0].text.strip())


def _open_consoles(driver, handles: list[str], base: str, client_id: str, secret: str) -> None:
    """Each window on /console/, signed in (through the form the first time; then its sessionStorage)."""
    from selenium.webdriver.common.by import By

    for handle in handles:
        driver.switch_to.window(handle)
        driver.get(f"{base}/console/")

        def ready() -> bool:
            from selenium.common.exceptions import StaleElementReferenceException

            try:
                if _signed_in(driver):
                    return True
                form = driver.find_elements(By.CSS_SELECTOR, '[data-testid="login-client-id"]')
                if form and form[0].is_displayed() and not form[0].get_attribute("value"):
                    form[0].send_keys(client_id)
                    driver.find_element(By.CSS_SELECTOR, '[data-testid="login-client-secret"]').send_keys(secret)
                    driver.find_element(By.CSS_SELECTOR, '[data-testid="login-submit"]').click()
            except StaleElementReferenceException:  # the page re-rendered the form meanwhile: look again
                pass
            return False

        wait(ready, 60, "the console to sign in", 0.25)


def _close_consoles(driver, handles: list[str]) -> None:
    for handle in handles:
        driver.switch_to.window(handle)
        driver.get("about:blank")


def _console_requests(base: str, token: str) -> float:
    """Requests serve answered under /console and /ops/v1/console so far (its Prometheus counter)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/ops/v1/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "meao_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and "console" in json.dumps(sample.labels):
                total += sample.value
    return total


def _profile(env: dict[str, str], n: int) -> None:
    """``n`` snapshots computed and rendered as serve computes a fresh one, in a process of their own with
    serve's settings: the CPU each takes (median, min–max) and cProfile's top functions by cumulative time."""
    import subprocess

    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.console import _profile_here; _profile_here({n})"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _profile_here(n: int) -> None:
    import cProfile
    import pstats

    from meao.celery_app import configure_celery
    from meao.config import get_settings
    from meao.console.views import compute
    from meao.wire import ops as wire

    configure_celery(get_settings())  # as serve does at start
    wire.console_snapshot(compute(None))  # warm: imports, connections, the heartbeat monitor
    time.sleep(3)  # the monitor hears every worker: the report broadcast waits for them only
    took: list[float] = []
    profiler = cProfile.Profile()
    for _ in range(n):
        c0 = time.process_time()
        profiler.enable()
        snap = compute(None)
        body = wire.console_snapshot(snap)
        profiler.disable()
        took.append(1e3 * (time.process_time() - c0))
    running = sum(w["running"] for p in body["pops"] for w in p["workers"])
    print(f"  profile: {spread(took, '{:.1f}')} ms of CPU per snapshot (this process; {n} snapshots; "
          f"{len(body['operations'])} operations, {running} running jobs reported)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def _breakdown(base: str, token: str, pid: int, idle_pct: float) -> None:
    """Where a console's CPU goes: 200 revalidations (304, the snapshot shared) back to back, then 15
    requests 2.5 s apart, each after the snapshot's refresh period (computed afresh); serve's idle CPU over
    the same time is taken off."""
    snap = f"{base}/ops/v1/console"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        etag = client.get(snap).headers["etag"]
        cpu0, t0 = cpu_of(pid), time.monotonic()
        n304 = sum(client.get(snap, headers={"If-None-Match": etag}).status_code == 304 for _ in range(200))
        cpu1, t1 = cpu_of(pid), time.monotonic()
        per_304 = ((cpu1 - cpu0) - idle_pct / 100 * (t1 - t0)) / 200
        fresh, spent = 0, 0.0
        for _ in range(15):
            time.sleep(2.5)
            c0, s0 = cpu_of(pid), time.monotonic()
            fresh += client.get(snap).status_code == 200
            spent += (cpu_of(pid) - c0) - idle_pct / 100 * (time.monotonic() - s0)
    print(f"  breakdown: {1e3 * per_304:.1f} ms of serve CPU per revalidation ({n304}/200 answered 304), "
          f"{1e3 * spent / 15:.1f} ms per snapshot computed afresh ({fresh}/15 answered 200)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50, help="instantiations held running")
    parser.add_argument("--consoles", type=int, default=5)
    parser.add_argument("--window", type=float, default=30.0, help="seconds per measured window")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of windows (none, consoles)")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds after a switch before measuring")
    parser.add_argument("--breakdown", action="store_true",
                        help="also: serve's CPU per 304 answer and per freshly computed snapshot")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead of the windows: compute N snapshots in this process under cProfile (with "
                             "serve's settings) and print the CPU per snapshot and the top functions")
    parser.add_argument("--redis-url", default=os.environ.get("MEAO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    work = Path(tempfile.mkdtemp(prefix="meao-bench-console-"))
    faults = work / "faults"
    faults.mkdir()
    (faults / HOLD).write_text("")  # every instantiation stops before its server, and stays PROCESSING
    (work / "hosts.yaml").write_text(yaml.safe_dump(_hosts()))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    driver = None
    with database("postgresql", work) as db_url:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEAO_")},
               "MEAO_DATABASE_URL": db_url, "MEAO_BROKER_URL": args.redis_url, "MEAO_DATA_DIR": str(work / "data"),
               "MEAO_PKG_FILE_ROOT": str(work), "MEAO_PUBLIC_URL": base, "MEAO_AUTH": "local",
               "MEAO_VIM_DRIVER": "fake", "MEAO_MEC_HOSTS_FILE": str(work / "hosts.yaml"),
               "OS_CLIENT_CONFIG_FILE": str(work / "no-clouds.yaml"), "MEAO_TEST_FAULT_DIR": str(faults),
               "MEAO_LOG_LEVEL": "WARNING"}
        procs = Processes(work, env)
        try:
            serve = procs.start("serve", "serve", "--port", str(port), "--no-embedded-worker")
            procs.up("serve", f"{base}/app_pkgm/v1/app_packages", (200, 401))
            procs.start("worker", "worker", "-c", str(args.ops + 4))
            creds = json.loads((work / "data" / "admin-credentials.json").read_text())
            client_id, secret = creds["client_id"], creds["client_secret"]
            token = httpx.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                               auth=(client_id, secret), timeout=30).json()["access_token"]
            api = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})

            from descriptors.examples.build import build_package

            pkg_file = build_package("mec-vm-app", work)
            created = api.post("/app_pkgm/v1/app_packages", json={
                "appPkgName": "bench", "appPkgVersion": "1", "appPkgPath": pkg_file.as_uri(),
                "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(pkg_file.read_bytes()).hexdigest()}})
            created.raise_for_status()
            pkg = wait(lambda: (i := api.get(f"/app_pkgm/v1/app_packages/{created.json()['id']}").json())
                       ["onboardingState"] in ("ONBOARDED", "ERROR") and i, 120, "the package to onboard", 0.5)
            if pkg["onboardingState"] != "ONBOARDED":
                raise SystemExit(f"bench: onboarding failed: {pkg.get('onboardingFailureDetails')}")
            for n in range(args.ops):
                iid = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"],
                                                                  "appInstanceName": f"bench-{n}"}).json()["id"]
                r = api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate", json={
                    "selectedMECHostInfo": [{"hostId": {"id": f"pop{n % POPS + 1}"}}],
                    "virtualComputeDescriptor": TINY})
                if r.status_code != 202:
                    raise SystemExit(f"bench: instantiate {n} answered {r.status_code}: {r.text}")

            def held() -> bool:
                ops = api.get("/app_lcm/v1/app_lcm_op_occs").json()
                bad = [o for o in ops if o["operationState"] not in ("STARTING", "PROCESSING")]
                if bad:
                    raise SystemExit(f"bench: an operation ended {bad[0]['operationState']}: {bad[0].get('error')}")
                return sum(o["operationState"] == "PROCESSING" for o in ops) == args.ops

            wait(held, 300, f"{args.ops} operations PROCESSING", 1.0)
            time.sleep(args.settle)  # they reach the hold point after image, flavor and ports
            print(f"{args.ops} operations PROCESSING, held at step:server on {POPS} PoPs; serve pid {serve.pid}")

            if args.profile:
                _profile(env, args.profile)
                return 0
            driver, handles = _browser(args.consoles)
            _open_consoles(driver, handles, base, client_id, secret)  # the first sign-in, not measured
            _close_consoles(driver, handles)

            samples: dict[int, list[float]] = {0: [], args.consoles: []}  # CPU % of one core per window
            rates: list[float] = []
            for round_no in range(args.rounds):
                order = (0, args.consoles) if round_no % 2 == 0 else (args.consoles, 0)
                for consoles in order:
                    if consoles:
                        _open_consoles(driver, handles, base, client_id, secret)
                    else:
                        _close_consoles(driver, handles)
                    time.sleep(args.settle)
                    requests0 = _console_requests(base, token)
                    cpu0, t0 = cpu_of(serve.pid), time.monotonic()
                    time.sleep(args.window)
                    cpu1, t1 = cpu_of(serve.pid), time.monotonic()
                    requests = (_console_requests(base, token) - requests0) / (t1 - t0)
                    pct = 100 * (cpu1 - cpu0) / (t1 - t0)
                    samples[consoles].append(pct)
                    if consoles:
                        rates.append(requests)
                    print(f"  round {round_no + 1}, {consoles} consoles: serve {pct:5.2f} % of one core, "
                          f"{requests:.2f} console requests/s")
            _close_consoles(driver, handles)
            idle, busy = samples[0], samples[args.consoles]
            added = statistics.median(busy) - statistics.median(idle)
            paired = [b - i for i, b in zip(idle, busy, strict=True)]
            print(f"serve CPU, % of one core over {args.window:g} s windows, median (min–max) of {args.rounds}:")
            print(f"  0 consoles: {spread(idle, '{:.2f}')}")
            print(f"  {args.consoles} consoles: {spread(busy, '{:.2f}')}  "
                  f"({spread(rates, '{:.2f}')} console requests/s)")
            print(f"  added by {args.consoles} consoles: {added:.2f} % of one core (paired by round: "
                  f"{spread(paired, '{:.2f}')}); {100 * added / statistics.median(idle):.0f} % of serve's own "
                  f"CPU with no console; target < 5 % of one core")
            if args.breakdown:
                _breakdown(base, token, serve.pid, statistics.median(idle))
            return 0
        finally:
            if driver is not None:
                driver.quit()
            procs.stop()


if __name__ == "__main__":
    sys.exit(main())
