"""Benchmark: Mm1 instantiate through meao vs the same work done directly with openstacksdk.

Run by hand against the running test bed (`deploy/testbed/up.sh`) and a running meao whose inventory
has a host on it (the script starts both meao processes itself, on PostgreSQL and Redis):

    .venv/bin/python bench/lcm.py [--count 50] [--singles 7] [--cloud demo] [--raw-interval 0.05]

It measures, in one run:
1. ``--singles`` rounds, interleaved so a drift of the test bed hits both sides alike, each of: one
   instantiate through Mm1 (POST instantiate → occurrence COMPLETED), one direct create-ports + boot +
   wait-ACTIVE with openstacksdk (same image, flavor, network), one terminate through Mm1 (FORCEFUL →
   COMPLETED) and one direct delete-server + wait-gone + delete-ports. The direct side polls Nova every
   ``--raw-interval`` seconds (openstacksdk's own waiters). It prints the median and spread of each
   (targets: instantiate <= 1.10x raw, terminate <= 1.15x raw);
2. ``--count`` concurrent instantiations vs ``--count`` concurrent direct boots (target <= 1.0x).
``--watch notify`` (the default) learns that an occurrence ended from its AppLcmOpOccNotification, as
an OSS subscribed through Mm1 does; ``--watch poll`` asks GET /app_lcm_op_occs/{id} every 0.25 s
instead, as an OSS without a subscription does.
The concurrent part needs room for ``--count`` small servers: it raises the demo project's quotas for
the run (as admin) and uses a 1 vCPU / 64 MB override, so start the test bed with enough fake
capacity, e.g. ``deploy/testbed/down.sh`` then
``MEAO_TESTBED_HOST_VCPUS=64 MEAO_TESTBED_HOST_RAM_MB=65536 deploy/testbed/up.sh`` (and the same
two commands without the variables afterwards, before running the tests).
Everything it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    parser.add_argument("--singles", type=int, default=7, help="interleaved single rounds per side (median)")
    parser.add_argument("--raw-interval", type=float, default=0.05,
                        help="seconds between the direct side's polls of Nova (openstacksdk waiters)")
    parser.add_argument("--redis-url", default=os.environ.get("MEAO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--watch", choices=("notify", "poll"), default="notify",
                        help="how the meao side learns that an occurrence ended (see above)")
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
    servers = 2 * (n + args.singles) + 1  # both sides, and meao's warm-up instance
    admin.set_compute_quotas(project, instances=servers + 10, cores=servers + 20, ram=servers * 1024 + 51200)
    # two external CPs each, and the security group (with its rules) the MEP makes per app for Mp1
    admin.set_network_quotas(project, port=servers * 2 + 20, security_group=servers + 20,
                             security_group_rule=servers * 10 + 200)
    tag = uuid.uuid4().hex[:6]
    net = conn.network.create_network(name=f"bench-{tag}")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.99.0.0/16", name=f"bench-{tag}")
    work = Path(tempfile.mkdtemp(prefix="meao-bench-lcm-"))
    procs: list[subprocess.Popen] = []
    instances: list[str] = []
    direct_servers: list[tuple[str, str]] = []
    shared_flavors: list[str] = []  # meao's flavor, which the direct side boots too
    api = httpx.Client(timeout=120)
    ended = _EndedOps()
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
        env = {**os.environ, "MEAO_DATABASE_URL": args.database_url, "MEAO_BROKER_URL": args.redis_url,
               "MEAO_DATA_DIR": str(work / "data"), "MEAO_PKG_FILE_ROOT": str(work), "MEAO_LOG_LEVEL": "INFO",
               "MEAO_AUTH": "none",
               "MEAO_MEC_HOSTS_FILE": str(work / "hosts.yaml"), "OS_CLIENT_CONFIG_FILE": str(clouds),
               "MEAO_PUBLIC_URL": f"http://127.0.0.1:{port}", "MEAO_CAPACITY_CACHE_S": "30",
               # --watch notify: the notifications go to this process's listener on the loopback
               "MEAO_OUTBOUND_ALLOW": "127.0.0.1"}
        log = (work / "meao.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port),
                                       "--no-embedded-worker"], env=env, stdout=log, stderr=log))
        base = f"http://127.0.0.1:{port}"
        api = httpx.Client(base_url=base, timeout=120)
        _wait(lambda: _try(api, "/app_pkgm/v1/app_packages"), 60)
        # the worker once the API has loaded the inventory (both would insert the same MEC host at once);
        # as many job threads as the direct side has boot threads (a deployment sizes this per PoP)
        metrics_port = port + 1  # the worker's Prometheus endpoint: time per step, printed at the end
        procs.append(subprocess.Popen([sys.executable, "-m", "meao.cli", "worker", "-c", str(max(n, 4)),
                                       "--metrics-port", str(metrics_port)], env=env, stdout=log, stderr=log))
        from descriptors.examples.build import build_package

        pkg_file = build_package("mec-vm-app", work)
        import hashlib

        created = api.post("/app_pkgm/v1/app_packages", json={
            "appPkgName": "bench", "appPkgVersion": "1", "appPkgPath": pkg_file.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(pkg_file.read_bytes()).hexdigest()}}).json()
        pkg = _wait(lambda: (i := api.get(f"/app_pkgm/v1/app_packages/{created['id']}").json())
                    ["onboardingState"] == "ONBOARDED" and i, 60)
        if args.watch == "notify":
            callback = ended.serve()
            api.post("/app_lcm/v1/subscriptions", json={
                "subscriptionType": "AppLcmOpOccStateChangeSubscription", "callbackUri": callback,
                "appLcmOpOccSubscriptionFilter": {"notificationTypes": "AppLcmOpOccNotification",
                                                  "operationStates": ["COMPLETED", "FAILED_TEMP"]}}
                     ).raise_for_status()

        def op_state(op: str) -> str:
            if args.watch == "notify":
                return ended.wait(op, 600)
            return _wait(lambda: (s := api.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()["operationState"])
                         in ("COMPLETED", "FAILED_TEMP") and s)

        def via_meao() -> float:
            iid = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"]}).json()["id"]
            t0 = time.perf_counter()
            r = api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate",
                         json={"selectedMECHostInfo": [{"hostId": {"id": "bench"}}], "virtualComputeDescriptor": TINY})
            op = r.headers["Location"].rsplit("/", 1)[-1]
            st = op_state(op)
            elapsed = time.perf_counter() - t0
            if st != "COMPLETED":
                raise SystemExit(f"bench: instantiate ended {st}: {api.get(f'/app_lcm/v1/app_lcm_op_occs/{op}').json()}")
            instances.append(iid)
            return elapsed

        via_meao()  # warm-up: uploads the image, creates the flavor once
        cp_count = 2  # mec-vm-app's external CPs: MecVmAppMgmtCp, MecVmAppDataCp
        # the direct path boots the very image and flavor meao chose for the warm-up instance
        warm = api.get(f"/app_lcm/v1/app_instances/{instances[0]}").json()
        server = conn.compute.get_server(warm["vimResources"]["computeResource"]["resourceId"])
        image = conn.image.get_image(server.image["id"])
        flavor = admin.compute.find_flavor(server.flavor.get("id") or server.flavor["original_name"],
                                           ignore_missing=False)
        shared_flavors.append(flavor.id)

        direct_split: list[tuple[float, float, float]] = []  # ports, server, wait_active

        def direct() -> float:
            t0 = time.perf_counter()
            # as many ports as the AppD has external CPs (two), as meao creates
            made = [conn.network.create_port(network_id=net.id, name=f"bench-direct-{uuid.uuid4().hex[:6]}")
                    for _ in range(cp_count)]
            t1 = time.perf_counter()
            srv = conn.compute.create_server(name=f"bench-direct-{uuid.uuid4().hex[:6]}", flavor_id=flavor.id,
                                             image_id=image.id, networks=[{"port": p.id} for p in made])
            t2 = time.perf_counter()
            conn.compute.wait_for_server(srv, status="ACTIVE", wait=600, interval=args.raw_interval)
            t3 = time.perf_counter()
            direct_servers.extend((srv.id, p.id) for p in made)
            direct_split.append((t1 - t0, t2 - t1, t3 - t2))
            return t3 - t0

        def meao_terminate(iid: str) -> float:
            t0 = time.perf_counter()
            r = api.post(f"/app_lcm/v1/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"})
            op = r.headers["Location"].rsplit("/", 1)[-1]
            st = op_state(op)
            elapsed = time.perf_counter() - t0
            if st != "COMPLETED":
                raise SystemExit(f"bench: terminate ended {st}: {api.get(f'/app_lcm/v1/app_lcm_op_occs/{op}').json()}")
            instances.remove(iid)
            return elapsed

        def direct_terminate() -> float:
            srv_id = direct_servers[-1][0]
            ports = [p for s, p in direct_servers if s == srv_id]
            t0 = time.perf_counter()
            conn.compute.delete_server(srv_id)
            # gone = 404, polled as openstacksdk's waiter polls (it also returns on status DELETED)
            while conn.compute.find_server(srv_id, ignore_missing=True) is not None:
                time.sleep(args.raw_interval)
            for port_id in ports:
                conn.network.delete_port(port_id)
            elapsed = time.perf_counter() - t0
            direct_servers[:] = [(s, p) for s, p in direct_servers if s != srv_id]
            return elapsed

        def print_direct_split(label: str) -> None:
            means = [statistics.mean(x[i] for x in direct_split) for i in range(3)]
            print(f"direct mean seconds ({label}): ports {means[0]:.2f}, server {means[1]:.2f}, "
                  f"wait_active {means[2]:.2f}")
            direct_split.clear()

        # interleaved, so a drift in the test bed's load hits both sides alike
        singles = {"instantiate": ([], []), "terminate": ([], [])}  # (meao, direct) seconds
        for _ in range(args.singles):
            singles["instantiate"][0].append(via_meao())
            singles["instantiate"][1].append(direct())
            singles["terminate"][0].append(meao_terminate(instances[-1]))
            singles["terminate"][1].append(direct_terminate())
        print_direct_split("singles")
        _print_steps(metrics_port, {}, "singles, with the warm-up")
        _print_steps(metrics_port, {}, "singles", "TERMINATE")
        targets = {"instantiate": 1.10, "terminate": 1.15}
        for what, (meao_s, direct_s) in singles.items():
            print(f"{what} (s): meao {[round(x, 2) for x in meao_s]} direct {[round(x, 2) for x in direct_s]}")
            m1, d1 = statistics.median(meao_s), statistics.median(direct_s)
            print(f"one {what}: meao {m1:.2f} s (spread {min(meao_s):.2f}-{max(meao_s):.2f}) vs direct openstacksdk "
                  f"{d1:.2f} s (spread {min(direct_s):.2f}-{max(direct_s):.2f}), median of {len(meao_s)} -> "
                  f"{m1 / d1:.2f}x (target <= {targets[what]:.2f}x); raw polls every {args.raw_interval:g} s, "
                  f"meao's OSS learns by {args.watch}")
        if n == 0:
            return 0
        before, cpu0 = _step_totals(metrics_port), _cpu_s(procs)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: via_meao(), range(n)))
        burst_meao = time.perf_counter() - t0
        _print_steps(metrics_port, before, f"{n} concurrent")
        cpu = [b - a for a, b in zip(cpu0, _cpu_s(procs), strict=True)]
        print(f"CPU seconds used by meao during the {n} concurrent: API {cpu[0]:.1f}, worker {cpu[1]:.1f} "
              f"(of {burst_meao * (os.cpu_count() or 1):.0f} available)")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda _: direct(), range(n)))
        burst_direct = time.perf_counter() - t0
        print_direct_split(f"{n} concurrent")
        print(f"{n} concurrent: meao {burst_meao:.2f} s vs direct {burst_direct:.2f} s -> "
              f"{burst_meao / burst_direct:.2f}x (target <= 1.0x); raw polls every {args.raw_interval:g} s, "
              f"meao's OSS learns by {args.watch}")
        return 0
    finally:
        ended.close()
        try:
            _cleanup(conn, admin, net, api, direct_servers, shared_flavors)
        finally:  # never leave the bench's meao processes behind, whatever the cleanup met
            for proc in procs:
                proc.terminate()


def _cleanup(conn, admin, net, api: httpx.Client, direct_servers: list[tuple[str, str]],
             shared_flavors: list[str]) -> None:
    """Delete the direct servers and their ports, meao's instances, then the bench network."""
    try:
        for srv_id, _port in direct_servers:
            conn.compute.delete_server(srv_id, ignore_missing=True)
        _cleanup_meao(api)
        for srv_id, port_id in direct_servers:
            srv = conn.compute.find_server(srv_id, ignore_missing=True)
            if srv is not None:
                conn.compute.wait_for_delete(srv, wait=120)
            conn.network.delete_port(port_id, ignore_missing=True)
        for p in admin.network.ports(network_id=net.id):  # admin: ports still bound need it
            admin.network.delete_port(p, ignore_missing=True)
        admin.network.delete_network(net, ignore_missing=True)
        # meao kept its private flavor at terminate while the direct side's servers used it too
        for flavor_id in shared_flavors:
            if next(iter(admin.compute.servers(all_projects=True, flavor=flavor_id)), None) is None:
                admin.compute.delete_flavor(flavor_id, ignore_missing=True)
    except Exception as exc:  # noqa: BLE001 — report what is left, and let the caller stop the processes
        print(f"bench: cleanup incomplete ({exc}); remove what is left of network {net.name} and "
              "servers named bench-direct-* / meao-* by hand", file=sys.stderr)


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


class _EndedOps:
    """A subscriber on loopback: the end state of each occurrence, from its AppLcmOpOccNotification."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.cond = threading.Condition()
        self.server: ThreadingHTTPServer | None = None

    def serve(self) -> str:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                self.send_response(204)
                self.end_headers()
                if "appLcmOpOccId" in body:  # an AppLcmOpOccNotification (its notificationType is
                    # "AppLcmOpOccStateChangeSubscription", table 6.2.2.16.2-1)
                    with outer.cond:
                        outer.states[body["appLcmOpOccId"]] = body["operationState"]
                        outer.cond.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def wait(self, op_id: str, timeout: float) -> str:
        with self.cond:
            if not self.cond.wait_for(lambda: op_id in self.states, timeout):
                raise SystemExit(f"bench: no notification that occurrence {op_id} ended after {timeout:g} s")
            return self.states[op_id]

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def _cpu_s(procs: list[subprocess.Popen]) -> list[float]:
    """User + system CPU seconds of each process so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / tick)
    return out


def _step_totals(metrics_port: int, operation: str = "INSTANTIATE") -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) per instantiate step, from the worker's Prometheus histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "meao_job_step_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("operation") != operation:
                continue
            slot = totals.setdefault(sample.labels["step"], [0.0, 0.0])
            if sample.name.endswith("_sum"):
                slot[0] = sample.value
            elif sample.name.endswith("_count"):
                slot[1] = sample.value
    return {step: (s, c) for step, (s, c) in totals.items()}


def _print_steps(metrics_port: int, before: dict[str, tuple[float, float]], label: str,
                 operation: str = "INSTANTIATE") -> None:
    try:
        after = _step_totals(metrics_port, operation)
    except httpx.HTTPError as exc:
        print(f"bench: no step timings from the worker ({exc})", file=sys.stderr)
        return
    parts = []
    for step, (total, count) in after.items():
        total0, count0 = before.get(step, (0.0, 0.0))
        if count > count0:
            parts.append(f"{step} {(total - total0) / (count - count0):.2f}")
    print(f"mean seconds per {operation.lower()} step ({label}): " + ", ".join(parts))


def _try(api: httpx.Client, path: str) -> bool:
    try:
        return api.get(path).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
