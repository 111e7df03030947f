"""Benchmark: the distributed lab (deploy/lab, issue 18): instantiate through the WAN, many at once, and the
API's throughput through HAProxy.

Run by hand, as root, from the repository root, with the OpenStack test bed and the lab up
(``deploy/lab/up.sh``); the bench runs itself inside ``mlab-oss``, where an OSS sits:

    .venv/bin/python bench/lab.py [--rounds 7] [--delays 0,20] [--count 100] [--wrk-seconds 10]

1. For each one-way PoP delay of ``--delays`` (the WAN proxies are restarted with it): ``--rounds``
   interleaved rounds of one instantiate on pop1 through the lab (mlab-oss -> HAProxy -> pop1's worker
   behind its WAN proxy; POST instantiate -> GET the occurrence every 0.05 s until COMPLETED) and one
   direct openstacksdk boot run FROM mlab-pop1 (two ports on the lab's network, the image and flavor meao
   chose, zone az1, Nova polled every 0.05 s: bench/lcm.py's direct side). Median, spread, ratio
   (target <= 1.3x at 20 ms). Each instance is terminated and each direct server deleted between rounds.
2. ``--count`` instantiations spread over pop1 and pop2 (2 workers each, as up.sh starts them) at the
   last delay, against ``--count`` direct boots from the two PoP namespaces with as many in flight as the
   PoPs' workers run jobs (workers x concurrency). Needs room in the demo project: the bench raises its
   quotas as admin for the run and puts them back (``--count 0`` skips this part).
3. GET list pages (``/app_lcm/v1/app_instances``) through HAProxy with wrk from mlab-oss, two API
   processes vs one (serve2 stopped with deploy/lab/proc.sh, then started again).
If the workers count their round trips (MEAO_COUNT_ROUND_TRIPS, meao/db/roundtrips.py, from lab-rtt), the
count per instantiate is printed too. The machine may be shared: say so with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx

LAB = ROOT / "deploy" / "lab"
STATE = Path(os.environ.get("MEAO_LAB_STATE", LAB / "state"))
API = "http://ctl.mlab:8080"
POLL_S = 0.05
ZONES = {"pop1": "az1", "pop2": "az2"}


def in_root(*cmd: str) -> str:
    """A lab script run in the root namespace (the WAN proxies and the lab's processes live there)."""
    fd = os.environ["MEAO_BENCH_ROOT_NETNS_FD"]  # the namespace the bench was started in, kept open by exec
    proc = subprocess.run(["nsenter", f"--net=/proc/self/fd/{fd}", *cmd], capture_output=True, text=True,
                          check=False, pass_fds=(int(fd),))
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def set_delay(ms: int) -> None:
    """Restart both WAN proxies with a one-way delay of ``ms`` (up.sh starts the missing ones)."""
    in_root("bash", "-c", f'source {LAB}/lib.sh; stop_daemons wan-pop1 wan-pop2')
    in_root("env", f"MEAO_LAB_DELAY_MS={ms}", "MEAO_LAB_ONLY=net", "bash", str(LAB / "up.sh"))


# ------------------------------------------------------------------ the direct side, inside a PoP namespace
DIRECT = r'''
import json, sys, time, uuid, warnings
warnings.simplefilter("ignore")
import openstack
region = openstack.config.OpenStackConfig(config_files=[sys.argv[1]]).get_one(cloud="demo")
conn = openstack.connection.Connection(config=region)
conn.authorize()
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["do"] == "boot":
        t0 = time.perf_counter()
        ports = [conn.network.create_port(network_id=cmd["network"], name=f"bench-lab-{uuid.uuid4().hex[:6]}")
                 for _ in range(cmd["ports"])]
        srv = conn.compute.create_server(name=f"bench-lab-{uuid.uuid4().hex[:6]}", flavor_id=cmd["flavor"],
                                         image_id=cmd["image"], availability_zone=cmd["zone"],
                                         networks=[{"port": p.id} for p in ports])
        conn.compute.wait_for_server(srv, status="ACTIVE", wait=600, interval=cmd["poll"])
        out = {"s": time.perf_counter() - t0, "server": srv.id, "ports": [p.id for p in ports]}
    elif cmd["do"] == "probe":  # what meao booted for an instance: its image, flavor, network and ports
        srv = next(s for s in conn.compute.servers(details=True) if cmd["instance"] in (s.name or ""))
        ports = list(conn.network.ports(device_id=srv.id))
        # Nova (2.47+) names the server's flavor, not its id
        flavor = conn.compute.find_flavor(srv.flavor.original_name or srv.flavor.name, ignore_missing=False).id
        out = {"image": srv.image.id, "flavor": flavor, "network": ports[0].network_id, "ports": len(ports)}
    else:
        conn.compute.delete_server(cmd["server"])
        conn.compute.wait_for_delete(conn.compute.get_server(cmd["server"]), interval=0.25, wait=600)
        for port in cmd["ports"]:
            conn.network.delete_port(port, ignore_missing=True)
        out = {"deleted": cmd["server"]}
    print(json.dumps(out), flush=True)
'''


class Direct:
    """A child process in a PoP's namespace, authenticated once, that boots and deletes on request."""

    def __init__(self, pop: str) -> None:
        clouds = STATE / pop / "clouds.yaml"
        self.proc = subprocess.Popen(["ip", "netns", "exec", f"mlab-{pop}", sys.executable, "-c", DIRECT, str(clouds)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        assert json.loads(self._read())["ready"]

    def _read(self) -> str:
        assert self.proc.stdout
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the direct side's process ended; see its stderr above")
        return line

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin
        with self.lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            return json.loads(self._read())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


# ------------------------------------------------------------------ the lab's side, through HAProxy
class Lab:
    def __init__(self) -> None:
        creds = json.loads((STATE / "secrets" / "oauth-oss.json").read_text())
        self.http = httpx.Client(base_url=API, timeout=60, limits=httpx.Limits(max_connections=200))
        resp = self.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(creds["client_id"], creds["client_secret"]))
        resp.raise_for_status()
        self.token = resp.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def onboard(self) -> dict[str, Any]:
        import hashlib

        from descriptors.examples.build import build_package

        zipped = build_package("mec-vm-app", Path("/tmp"), appd_id=f"bench-lab-{uuid.uuid4().hex[:8]}")
        target = STATE / "data" / "packages" / zipped.name
        shutil.copy(zipped, target)
        body = {"appPkgName": "bench-lab", "appPkgVersion": "1", "appPkgPath": target.as_uri(),
                "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(target.read_bytes()).hexdigest()}}
        resp = self.http.post("/app_pkgm/v1/app_packages", json=body)
        resp.raise_for_status()
        pkg_id = resp.json()["id"]
        while (info := self.http.get(f"/app_pkgm/v1/app_packages/{pkg_id}").json())["onboardingState"] not in (
                "ONBOARDED", "ERROR"):
            time.sleep(0.5)
        if info["onboardingState"] != "ONBOARDED":
            raise SystemExit(f"bench: onboarding failed: {info}")
        return info

    def create(self, appd_id: str, name: str) -> str:
        resp = self.http.post("/app_lcm/v1/app_instances", json={"appDId": appd_id, "appInstanceName": name})
        resp.raise_for_status()
        return resp.json()["id"]

    def run(self, path: str, body: dict[str, Any], poll: float = POLL_S) -> tuple[float, str]:
        """Seconds from POST to COMPLETED, and the occurrence's id."""
        t0 = time.perf_counter()
        resp = self.http.post(f"/app_lcm/v1{path}", json=body)
        if resp.status_code != 202:
            raise SystemExit(f"bench: POST {path}: {resp.status_code} {resp.text}")
        op = resp.headers["Location"].rsplit("/", 1)[-1]
        while True:
            occ = self.http.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()
            if occ["operationState"] in ("COMPLETED", "FAILED", "FAILED_TEMP"):
                break
            time.sleep(poll)
        if occ["operationState"] != "COMPLETED":
            raise SystemExit(f"bench: {path} ended {occ['operationState']}: {occ.get('error')}")
        return time.perf_counter() - t0, op

    def instantiate(self, iid: str, pop: str, poll: float = POLL_S) -> tuple[float, str]:
        return self.run(f"/app_instances/{iid}/instantiate", {"selectedMECHostInfo": [{"hostId": {"id": pop}}]}, poll)

    def terminate_and_delete(self, iid: str) -> None:
        self.run(f"/app_instances/{iid}/terminate", {"terminationType": "FORCEFUL"}, 0.25)
        self.http.delete(f"/app_lcm/v1/app_instances/{iid}").raise_for_status()


def round_trips(op_ids: list[str]) -> str:
    """Round trips per instantiate from the PoP workers' MEAO_COUNT_ROUND_TRIPS files, when they count."""
    files = [Path(m.group(1)) for env in STATE.glob("env/pop*.env")
             if (m := re.search(r'^MEAO_COUNT_ROUND_TRIPS="?([^"\n]+)', env.read_text(), re.MULTILINE))]
    if not files:
        return "not counted (the PoP workers run without MEAO_COUNT_ROUND_TRIPS; meao/db/roundtrips.py is lab-rtt's)"
    counts = {op: 0 for op in op_ids}
    for f in files:
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("op") in counts and not rec.get("idle"):
                counts[rec["op"]] += 1
    return f"{statistics.median(counts.values()):.0f} per instantiate (median of {len(counts)})"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (spread {min(values):.2f}-{max(values):.2f})"


def singles(lab: Lab, direct: Direct, appd_id: str, delay: int, rounds: int, boot: dict[str, Any]) -> float:
    set_delay(delay)
    warm = lab.create(appd_id, "bench-lab-warm")
    lab.instantiate(warm, "pop1")  # new connections over the new WAN proxies, not timed
    lab.terminate_and_delete(warm)
    meao_s, direct_s, ops = [], [], []
    for _ in range(rounds):
        iid = lab.create(appd_id, "bench-lab")
        took, op = lab.instantiate(iid, "pop1")
        meao_s.append(took)
        ops.append(op)
        lab.terminate_and_delete(iid)
        got = direct.ask({"do": "boot", **boot})
        direct_s.append(got["s"])
        direct.ask({"do": "delete", "server": got["server"], "ports": got["ports"]})
    ratio = statistics.median(meao_s) / statistics.median(direct_s)
    print(f"instantiate on pop1 at {delay} ms one way: lab {spread(meao_s)} vs direct from mlab-pop1 "
          f"{spread(direct_s)}, median of {rounds} interleaved -> {ratio:.2f}x"
          f"{' (target <= 1.3x)' if delay == 20 else ''}")
    print(f"  lab {[round(x, 2) for x in meao_s]}\n  direct {[round(x, 2) for x in direct_s]}")
    print(f"  round trips to the control plane: {round_trips(ops)}")
    return ratio


def boot_params(appd_id: str, lab: Lab, direct: Direct) -> tuple[dict[str, Any], str]:
    """The image, flavor and port count meao uses for this AppD, read from a probe instance on pop1 (kept
    instantiated meanwhile: its flavor stays in use)."""
    iid = lab.create(appd_id, "bench-lab-probe")
    lab.instantiate(iid, "pop1", 0.25)
    return {**direct.ask({"do": "probe", "instance": iid}), "zone": "az1", "poll": POLL_S}, iid


QUOTAS = r'''
import json, sys, warnings
warnings.simplefilter("ignore")
import openstack
cfg = openstack.config.OpenStackConfig(config_files=[sys.argv[1]])
admin = openstack.connection.Connection(config=cfg.get_one(cloud="admin"))
project = openstack.connection.Connection(config=cfg.get_one(cloud="demo")).current_project_id
c, n = admin.compute.get_quota_set(project), admin.network.get_quota(project)
old = {"instances": c.instances, "cores": c.cores, "ram": c.ram, "port": n.ports}
want = json.loads(sys.argv[2])
admin.set_compute_quotas(project, instances=want["instances"], cores=want["cores"], ram=want["ram"])
admin.set_network_quotas(project, port=want["port"])
print(json.dumps(old))
'''


def set_quotas(want: dict[str, int]) -> dict[str, int]:
    """The demo project's quotas set (as admin, from mlab-ctl, where the test bed is forwarded); the old ones."""
    out = subprocess.run(["ip", "netns", "exec", "mlab-ctl", sys.executable, "-c", QUOTAS,
                          str(STATE / "clouds" / "ctl.yaml"), json.dumps(want)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def many(lab: Lab, appd_id: str, count: int, boot: dict[str, Any]) -> None:
    """``count`` instantiations over both PoPs at once vs ``count`` direct boots from the PoPs."""
    old = set_quotas({"instances": count + 10, "cores": count * 2 + 20, "ram": count * 1024 + 51200,
                      "port": count * 2 + 40})
    # as many boots in flight per PoP as its workers run jobs (up.sh's defaults: 2 workers x 2)
    workers = int(os.environ.get("MEAO_LAB_POP_WORKERS", "2")) * int(os.environ.get("MEAO_LAB_POP_CONCURRENCY", "2"))
    try:
        pops = [list(ZONES)[i % 2] for i in range(count)]
        iids = [lab.create(appd_id, f"bench-lab-many-{i}") for i in range(count)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda a: lab.instantiate(a[0], a[1], 0.25), zip(iids, pops, strict=True)))
        meao_total = time.perf_counter() - t0
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lab.terminate_and_delete, iids))
        directs = {pop: [Direct(pop) for _ in range(workers)] for pop in ZONES}
        made: list[tuple[Direct, dict[str, Any]]] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            pop = pops[i]
            d = directs[pop][(i // 2) % workers]
            got = d.ask({"do": "boot", **boot, "zone": ZONES[pop]})
            with lock:
                made.append((d, got))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers * 2) as pool:
            list(pool.map(one, range(count)))
        direct_total = time.perf_counter() - t0
        for d, got in made:
            d.ask({"do": "delete", "server": got["server"], "ports": got["ports"]})
        for ds in directs.values():
            for d in ds:
                d.close()
        print(f"{count} instantiations over pop1 and pop2 ({workers} jobs at a time per PoP): lab {meao_total:.1f} s "
              f"vs {count} direct boots from the PoPs ({workers} at a time per PoP) {direct_total:.1f} s -> "
              f"{meao_total / direct_total:.2f}x")
    finally:
        set_quotas(old)


def throughput(lab: Lab, seconds: int) -> None:
    """GET list pages through HAProxy: two API processes, then one."""
    path = "/app_lcm/v1/app_instances"
    if not shutil.which("wrk"):
        print("API throughput: wrk is not installed (apt-get install -y wrk); skipped")
        return

    def wrk() -> float:
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {lab.token}",
                              f"{API}{path}"], capture_output=True, text=True, check=True).stdout
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non2xx:
            raise SystemExit(f"bench: wrk met {non2xx.group(1)} non-2xx answers:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    two = wrk()
    in_root("bash", str(LAB / "proc.sh"), "stop", "serve2")
    time.sleep(3)  # HAProxy's checks (inter 1s fall 2) mark serve2 down; until then it redispatches
    try:
        one = wrk()
    finally:
        in_root("bash", str(LAB / "proc.sh"), "start", "serve2")
    print(f"API GET {path} through HAProxy (wrk -t2 -c16 -d{seconds}s from mlab-oss): two API processes "
          f"{two:.0f} req/s, one {one:.0f} req/s -> {two / one:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--delays", default="0,20", help="one-way PoP delays in ms, comma-separated")
    parser.add_argument("--count", type=int, default=100, help="instantiations of part 2 (0: skip it)")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="wrk's duration per run (0: skip part 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: the lab's namespaces need root")
    here = subprocess.run(["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True,
                          check=False).stdout.strip()
    if here != "mlab-oss":  # an OSS sits in mlab-oss: run there, holding the root namespace for in_root
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        os.set_inheritable(fd, True)
        os.environ["MEAO_BENCH_ROOT_NETNS_FD"] = str(fd)
        os.execvp("ip", ["ip", "netns", "exec", "mlab-oss", sys.executable, *sys.argv])
    lab = Lab()
    pkg = lab.onboard()
    delays = [int(d) for d in args.delays.split(",")]
    set_delay(delays[0])
    direct = Direct("pop1")
    boot, probe = boot_params(pkg["appDId"], lab, direct)
    print(f"direct boots: image {boot['image']}, flavor {boot['flavor']}, {boot['ports']} ports, zone az1, "
          f"Nova polled every {POLL_S} s")
    try:
        for delay in delays:
            singles(lab, direct, pkg["appDId"], delay, args.rounds, boot)
        if args.count:
            many(lab, pkg["appDId"], args.count, boot)
        if args.wrk_seconds:
            throughput(lab, args.wrk_seconds)
    finally:
        direct.close()
        lab.terminate_and_delete(probe)
        set_delay(20)  # the lab's default
    return 0


if __name__ == "__main__":
    sys.exit(main())
