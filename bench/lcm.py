"""Benchmark: Mm1 instantiate through meao vs the same work done directly with openstacksdk.

Run by hand against the running test bed (`deploy/testbed/up.sh`) and a running meao whose inventory
has a host on it (the script starts both meao processes itself, on PostgreSQL and Redis):

    .venv/bin/python bench/lcm.py [--count 50] [--cloud demo]

It measures, in one run:
1. one instantiate through Mm1 (POST instantiate → occurrence COMPLETED) vs one direct
   create-port + boot + wait-ACTIVE with openstacksdk (same image, flavor, network);
2. ``--count`` concurrent instantiations vs ``--count`` concurrent direct boots.
It prints both ratios (targets <= 1.15x and <= 1.3x). The concurrent part needs room for ``--count``
small servers: it raises the demo project's quotas for the run (as admin) and uses a 1 vCPU / 64 MB
override, so start the test bed with enough fake capacity, e.g.
``MEAO_TESTBED_COMPUTE_DRIVER=fake.FakeDriver deploy/testbed/up.sh`` (see deploy/testbed/up.sh).
Everything it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.openstack_testbed import testbed_state

TINY = {"virtualCpu": {"numVirtualCpu": 1}, "virtualMemory": {"virtualMemSize": 64}}


def _conn(clouds: Path, cloud: str):
    import openstack

    region = openstack.config.OpenStackConfig(config_files=[str(clouds)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def _wait(pred, timeout: float = 600, interval: float = 0.25):
    # 0.25 s, as openstacksdk's waiter on the direct side: fair, and 50 pollers do not swamp the API
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise SystemExit(f"bench: timed out after {timeout:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--cloud", default="demo")
    parser.add_argument("--singles", type=int, default=5, help="single instantiations per side (median)")
    parser.add_argument("--database-url", default=os.environ.get(
        "MEAO_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/meao_bench"))
    args = parser.parse_args()
    clouds = testbed_state() / "clouds.yaml"
    if not clouds.exists():
        print("bench: the test bed is not up; run deploy/testbed/up.sh first", file=sys.stderr)
        return 2
    conn, admin = _conn(clouds, args.cloud), _conn(clouds, "admin")
    project = conn.current_project_id
    n = args.count
    admin.set_compute_quotas(project, instances=n * 2 + 10, cores=n * 2 + 20, ram=n * 2 * 1024 + 51200)
    admin.set_network_quotas(project, port=n * 4 + 20)
    tag = uuid.uuid4().hex[:6]
    net = conn.network.create_network(name=f"bench-{tag}")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.99.0.0/16", name=f"bench-{tag}")
    work = Path(tempfile.mkdtemp(prefix="meao-bench-lcm-"))
    procs: list[subprocess.Popen] = []
    instances: list[str] = []
    direct_servers: list[tuple[str, str]] = []
    api = httpx.Client(timeout=120)
    try:
        import psycopg

        dbname = args.database_url.rsplit("/", 1)[-1]
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{dbname}"')
        hosts = {"mec_hosts": [{"id": "bench", "cloud": args.cloud, "networks": {"default": net.name},
                                "services": [{"serName": "RNIS", "version": "2.2.1"}],
                                "features": [{"featureName": "UserApps", "version": "1.0"}],
                                "served_areas": ["cell-1"], "latency_ms": {"cell-1": 1}}]}
        (work / "hosts.yaml").write_text(yaml.safe_dump(hosts))
        port = 18555
        env = {**os.environ, "MEAO_DATABASE_URL": args.database_url, "MEAO_BROKER_URL": "redis://127.0.0.1:6379/6",
               "MEAO_DATA_DIR": str(work / "data"), "MEAO_PKG_FILE_ROOT": str(work), "MEAO_LOG_LEVEL": "INFO",
               "MEAO_AUTH": "none",
               "MEAO_MEC_HOSTS_FILE": str(work / "hosts.yaml"), "OS_CLIENT_CONFIG_FILE": str(clouds),
               "MEAO_PUBLIC_URL": f"http://127.0.0.1:{port}", "MEAO_CAPACITY_CACHE_S": "30"}
        log = (work / "meao.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port),
                                       "--no-embedded-worker"], env=env, stdout=log, stderr=log))
        # as many job threads as the direct side has boot threads (a deployment sizes this per PoP)
        metrics_port = port + 1  # the worker's Prometheus endpoint: time per step, printed at the end
        procs.append(subprocess.Popen([sys.executable, "-m", "meao.cli", "worker", "-c", str(max(n, 4)),
                                       "--metrics-port", str(metrics_port)], env=env, stdout=log, stderr=log))
        base = f"http://127.0.0.1:{port}"
        api = httpx.Client(base_url=base, timeout=120)
        _wait(lambda: _try(api, "/app_pkgm/v1/app_packages"), 60)
        from descriptors.examples.build import build_package

        pkg_file = build_package("mec-vm-app", work)
        import hashlib

        created = api.post("/app_pkgm/v1/app_packages", json={
            "appPkgName": "bench", "appPkgVersion": "1", "appPkgPath": pkg_file.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(pkg_file.read_bytes()).hexdigest()}}).json()
        pkg = _wait(lambda: (i := api.get(f"/app_pkgm/v1/app_packages/{created['id']}").json())
                    ["onboardingState"] == "ONBOARDED" and i, 60)

        def via_meao() -> float:
            iid = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"]}).json()["id"]
            t0 = time.perf_counter()
            r = api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate",
                         json={"selectedMECHostInfo": [{"hostId": {"id": "bench"}}], "virtualComputeDescriptor": TINY})
            op = r.headers["Location"].rsplit("/", 1)[-1]
            st = _wait(lambda: (s := api.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()["operationState"])
                       in ("COMPLETED", "FAILED_TEMP") and s)
            elapsed = time.perf_counter() - t0
            if st != "COMPLETED":
                raise SystemExit(f"bench: instantiate ended {st}: {api.get(f'/app_lcm/v1/app_lcm_op_occs/{op}').json()}")
            instances.append(iid)
            return elapsed

        via_meao()  # warm-up: uploads the image, creates the flavor once
        cp_count = 2  # mec-vm-app's external CPs: MecVmAppMgmtCp, MecVmAppDataCp
        # the direct path boots the very image and flavor meao chose for the warm-up instance
        server = conn.compute.get_server(api.get(f"/app_lcm/v1/app_instances/{instances[0]}").json()["vnfInstanceId"])
        image = conn.image.get_image(server.image["id"])
        flavor = admin.compute.find_flavor(server.flavor.get("id") or server.flavor["original_name"],
                                           ignore_missing=False)

        def direct() -> float:
            t0 = time.perf_counter()
            # as many ports as the AppD has external CPs (two), as meao creates
            made = [conn.network.create_port(network_id=net.id, name=f"bench-direct-{uuid.uuid4().hex[:6]}")
                    for _ in range(cp_count)]
            srv = conn.compute.create_server(name=f"bench-direct-{uuid.uuid4().hex[:6]}", flavor_id=flavor.id,
                                             image_id=image.id, networks=[{"port": p.id} for p in made])
            conn.compute.wait_for_server(srv, status="ACTIVE", wait=600, interval=0.25)
            elapsed = time.perf_counter() - t0
            direct_servers.extend((srv.id, p.id) for p in made)
            return elapsed

        # interleaved, so a drift in the test bed's load hits both sides alike
        singles_meao, singles_direct = [], []
        for _ in range(args.singles):
            singles_meao.append(via_meao())
            singles_direct.append(direct())
        print(f"singles (s): meao {[round(x, 2) for x in singles_meao]} direct {[round(x, 2) for x in singles_direct]}")
        if n == 0:
            m1, d1 = statistics.median(singles_meao), statistics.median(singles_direct)
            print(f"one instantiate: meao {m1:.2f} s vs direct openstacksdk {d1:.2f} s -> {m1 / d1:.2f}x")
            _print_steps(metrics_port, {})
            return 0
        before = _step_totals(metrics_port)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: via_meao(), range(n)))
        burst_meao = time.perf_counter() - t0
        _print_steps(metrics_port, before, f"{n} concurrent")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: direct(), range(n)))
        burst_direct = time.perf_counter() - t0
        m1, d1 = statistics.median(singles_meao), statistics.median(singles_direct)
        print(f"one instantiate: meao {m1:.2f} s vs direct openstacksdk {d1:.2f} s -> {m1 / d1:.2f}x (target <= 1.15x)")
        print(f"{n} concurrent: meao {burst_meao:.2f} s vs direct {burst_direct:.2f} s -> "
              f"{burst_meao / burst_direct:.2f}x (target <= 1.3x)")
        return 0
    finally:
        for srv_id, _port in direct_servers:
            conn.compute.delete_server(srv_id, ignore_missing=True)
        _cleanup_meao(api)
        for proc in procs:
            proc.terminate()
        for srv_id, port_id in direct_servers:
            srv = conn.compute.find_server(srv_id, ignore_missing=True)
            if srv is not None:
                conn.compute.wait_for_delete(srv, wait=120)
            conn.network.delete_port(port_id, ignore_missing=True)
        import openstack

        try:
            for p in admin.network.ports(network_id=net.id):  # admin: ports still bound need it
                admin.network.delete_port(p, ignore_missing=True)
            admin.network.delete_network(net, ignore_missing=True)
        except openstack.exceptions.SDKException as exc:
            print(f"bench: could not remove network {net.name}: {exc}", file=sys.stderr)


def _cleanup_meao(api: httpx.Client) -> None:
    """Roll back FAILED_TEMP operations and terminate every instantiated instance meao still has."""
    try:
        for op in api.get("/app_lcm/v1/app_lcm_op_occs").json():
            if op["operationState"] == "FAILED_TEMP":
                api.post(f"/app_lcm/v1/app_lcm_op_occs/{op['id']}/fail")
        pending = []
        for inst in api.get("/app_lcm/v1/app_instances").json():
            if inst["instantiationState"] == "INSTANTIATED":
                r = api.post(f"/app_lcm/v1/app_instances/{inst['id']}/terminate", json={"terminationType": "FORCEFUL"})
                if r.status_code == 202:
                    pending.append(r.headers["Location"].rsplit("/", 1)[-1])
        for op_id in pending:
            _wait(lambda op_id=op_id: api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()["operationState"]
                  in ("COMPLETED", "FAILED_TEMP"))
    except (httpx.HTTPError, KeyError, SystemExit) as exc:  # report, and let the network cleanup go on
        print(f"bench: cleanup through meao failed: {exc}", file=sys.stderr)


def _step_totals(metrics_port: int) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) per instantiate step, from the worker's Prometheus histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "meao_job_step_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("operation") != "INSTANTIATE":
                continue
            slot = totals.setdefault(sample.labels["step"], [0.0, 0.0])
            if sample.name.endswith("_sum"):
                slot[0] = sample.value
            elif sample.name.endswith("_count"):
                slot[1] = sample.value
    return {step: (s, c) for step, (s, c) in totals.items()}


def _print_steps(metrics_port: int, before: dict[str, tuple[float, float]], label: str = "singles") -> None:
    try:
        after = _step_totals(metrics_port)
    except httpx.HTTPError as exc:
        print(f"bench: no step timings from the worker ({exc})", file=sys.stderr)
        return
    parts = []
    for step, (total, count) in after.items():
        total0, count0 = before.get(step, (0.0, 0.0))
        if count > count0:
            parts.append(f"{step} {(total - total0) / (count - count0):.2f}")
    print(f"mean seconds per step ({label}): " + ", ".join(parts))


def _try(api: httpx.Client, path: str) -> bool:
    try:
        return api.get(path).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
