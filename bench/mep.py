"""Benchmark: what the MEP costs — Mp1 service discovery, DNS answers, and its share of instantiate.

Run by hand (never a test) from the repository root:

    .venv/bin/python bench/mep.py [--discovery] [--dns] [--instantiate] [--db postgresql|sqlite] ...

With no mode flag it runs ``--discovery`` and ``--dns``; ``--instantiate`` runs only when asked. The
targets it reports against (the issue): the MEP adds < 10% to instantiate time, DNS p99 < 5 ms on
loopback, >= 500 service discoveries/s on 2 cores. It measures and prints; it asserts nothing.

1. ``--discovery``: a real ``meao mep serve`` (MEAO_AUTH=none for Mm5, MEAO_VIM_DRIVER=fake, on a fresh
   PostgreSQL database it creates and drops, or ``--db sqlite``). Over Mm5 it registers a producer of
   ``--services`` services and a consumer allowed to discover them (appServiceRequired and
   appServiceOptional), gets the consumer's Mp1 token from /mep/oauth2/token, then ``--connections``
   keep-alive clients ask ``GET /mec_service_mgmt/v1/services?ser_name=<one>`` (and then the unfiltered
   list) as fast as they can for ``--seconds``, ``--repeat`` times. The load generator is a bare
   asyncio HTTP/1.1 client (cheaper than httpx, so it leaves the server more of the CPU) and runs on
   the same cores as the server: the output gives the CPU seconds of the MEP process, of its
   PostgreSQL backends and of the load generator. Mp1 token issue latency is measured too.
2. ``--dns``: the same MEP with the PowerDNS of ``bash deploy/pdns.sh`` (started when its API does not
   answer, and stopped again then). An app registered over Mm5 with one DNS rule; ``--queries``
   sequential dnspython UDP queries for its name; then ``--flips`` Mp1 PUTs of the rule's state
   (INACTIVE, ACTIVE, ...): the PUT's latency and the time from the PUT returning to the first query
   that sees the change. bench/mep_dns.py measures PowerDNS through its driver alone.
3. ``--instantiate``: ``meao serve --no-embedded-worker``, ``meao worker`` and ``meao mep serve`` (the
   host's mep_url), on PostgreSQL (or SQLite) and Redis database 5; a tiny mec-json-appd package with a
   DNS rule and a traffic rule; one warm-up then ``--runs`` instantiate + terminate cycles, one at a time.
   Per run: instantiate time (POST → COMPLETED, the occurrence's startTime → stateEnteredTime), the
   ``server`` and ``app_rules`` steps (the worker's "op <id> step <name> done in <s> s" log lines), and
   the MEP's part: app_rules plus the Mm5 ``PUT …/credentials`` call inside ``server``, timed directly
   against the running MEP ``--credential-calls`` times (median). ``--vim openstack`` (the default) needs
   the test bed (``deploy/testbed/up.sh``); ``--vim fake`` runs anywhere, as a smoke run.

Everything it creates (processes, databases, Redis database 5, DNS names, the test bed network) is
removed at the end. Numbers from a shared machine are noisy: it prints the load average it started with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (
    Processes,
    cpu_of,
    database,
    free_port,
    own_cpu,
    pg_backends_cpu,
    print_latency,
    spread,
    stats_ms,
    wait,
)

REDIS_DB = 5
HOST_ID = "bench-mep"
SERVICES = "/mec_service_mgmt/v1"
SUPPORT = "/mec_app_support/v1"
PDNS_SH = ROOT / "deploy" / "pdns.sh"


def hosts_file(work: Path, mep_url: str, cloud: str, network: str, zone: str | None) -> Path:
    host: dict[str, Any] = {"id": HOST_ID, "name": "bench PoP with its own MEP", "cloud": cloud,
                            "services": [], "networks": {"default": network}, "mep_url": mep_url,
                            "served_areas": ["cell-1"], "latency_ms": {"cell-1": 1}}
    if zone:
        host["availability_zone"] = zone
    path = work / "hosts.yaml"
    path.write_text(yaml.safe_dump({"mec_hosts": [host]}))
    return path


def base_env(work: Path, db_url: str, hosts: Path) -> dict[str, str]:
    return {**os.environ, "MEAO_DATABASE_URL": db_url, "MEAO_DATA_DIR": str(work / "data"),
            "MEAO_PKG_FILE_ROOT": str(work), "MEAO_AUTH": "none", "MEAO_MEC_HOSTS_FILE": str(hosts),
            "MEAO_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            # production shape: answers are not checked against the OpenAPI files (the tests do that)
            "MEAO_VALIDATE_RESPONSES": os.environ.get("MEAO_VALIDATE_RESPONSES", "false")}


# ------------------------------------------------------------------------------------- PowerDNS
@contextlib.contextmanager
def powerdns() -> Iterator[dict[str, str]]:
    """The settings of the PowerDNS of deploy/pdns.sh (MEAO_MEP_DNS_*); started, and stopped after, when
    its API does not answer."""
    from mecpm.mep.dns import DnsError, PowerDns, read_env_file

    env_file = Path(subprocess.run(["bash", str(PDNS_SH), "env"], capture_output=True, text=True,
                                   check=True).stdout.strip())

    def answers() -> bool:
        try:
            with PowerDns.from_state_dir(env_file.parent) as pdns:
                pdns.ping()
            return True
        except (DnsError, OSError, KeyError):
            return False

    started = False
    if not answers():
        print("bench: PowerDNS does not answer; starting it (bash deploy/pdns.sh)")
        subprocess.run(["bash", str(PDNS_SH)], check=True, timeout=900)
        started = True
    try:
        yield read_env_file(env_file)
    finally:
        if started:
            subprocess.run(["bash", str(PDNS_SH), "stop"], check=False)


def forget_dns_name(dns_settings: dict[str, str], name: str) -> None:
    """Delete ``name``'s zone from PowerDNS (a safety net: Mm5 deregistration removes it already)."""
    from mecpm.mep.dns import PowerDns

    with PowerDns.from_state_dir(Path(dns_settings["MEAO_MEP_DNS_API_KEY_FILE"]).parent) as pdns:
        pdns.publish(name, [])


# ---------------------------------------------------------------------------------- Mm5 and Mp1
class Mep:
    """A running MEP seen as the MEPM-V (Mm5, open under MEAO_AUTH=none) and as its apps (Mp1)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def credentials(self, app_id: str) -> dict[str, Any]:
        resp = self.http.put(f"/mm5/v1/app_instances/{app_id}/credentials", json={"mecHostId": HOST_ID})
        resp.raise_for_status()
        return resp.json()

    def register(self, app_id: str, **registration: Any) -> dict[str, Any]:
        """Credentials then registration, as the MEPM-V's instantiate does; the app's Mp1 token."""
        creds = self.credentials(app_id)
        resp = self.http.put(f"/mm5/v1/app_instances/{app_id}", json={"mecHostId": HOST_ID, **registration})
        if resp.status_code != 200:
            raise SystemExit(f"bench: Mm5 registration of {app_id} refused: {resp.text}")
        return {"creds": creds, "token": self.token(creds)}

    def token(self, creds: dict[str, Any]) -> str:
        resp = self.http.post("/mep/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(creds["clientId"], creds["clientSecret"]))
        resp.raise_for_status()
        return resp.json()["access_token"]

    def deregister(self, app_id: str) -> None:
        self.http.delete(f"/mm5/v1/app_instances/{app_id}")

    def close(self) -> None:
        self.http.close()


MEP_WORKERS = 2  # --mep-workers: `meao mep serve --workers`


def start_mep(procs: Processes, port: int) -> Mep:
    url = f"http://127.0.0.1:{port}"
    procs.start("mep", "mep", "serve", "--host-id", HOST_ID, "--port", str(port), "--public-url", url,
                "--workers", str(MEP_WORKERS))
    procs.up("mep", f"{url}{SUPPORT}/timing/current_time", (401,))  # Mp1 answers, and wants a token
    return Mep(url)


# ------------------------------------------------------------------------------ load generator
@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.1 response: Content-Length or chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        body = await reader.read()
    return status, body, headers.get("connection", "").lower() != "close"


async def _connection(port: int, requests: list[bytes], start: float, stop: float, load: Load, offset: int) -> None:
    reader = writer = None
    i = offset
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            status, body, keep = await _read_response(reader)
            t1 = time.perf_counter()
            if t0 >= start:  # after the warm-up
                load.latencies.append(t1 - t0)
                load.statuses[status] = load.statuses.get(status, 0) + 1
                load.body_bytes += len(body)
                if status != 200:
                    load.errors += 1
            if not keep:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            if time.perf_counter() >= start:
                load.errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _run_load(port: int, requests: list[bytes], connections: int, warmup_s: float, seconds: float) -> Load:
    load = Load()
    start = time.perf_counter() + warmup_s
    await asyncio.gather(*(_connection(port, requests, start, start + seconds, load, c) for c in range(connections)))
    return load


def get_request(port: int, path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n\r\n").encode()


# ------------------------------------------------------------------------------ 1. discovery
def service_info(name: str) -> dict[str, Any]:
    return {"serName": name, "version": "1", "state": "ACTIVE", "serializer": "JSON",
            "serCategory": {"href": "http://bench.example/cat", "id": "bench", "name": "bench", "version": "1"},
            "transportInfo": {"id": f"{name}-rest", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP",
                              "version": "1.1", "endpoint": {"uris": [f"http://10.40.0.1:8080/{name}"]},
                              "security": {}}}


def discovery(args: argparse.Namespace, mep: Mep, mep_pid: int, port: int, dbname: str | None) -> None:
    names = [f"bench-svc-{i:02d}" for i in range(args.services)]
    producer = mep.register("bench-producer", appName="producer",
                            appServiceProduced=[{"serName": n, "version": "1"} for n in names])
    auth = {"Authorization": f"Bearer {producer['token']}"}
    for name in names:
        made = mep.http.post(f"{SERVICES}/applications/bench-producer/services", json=service_info(name), headers=auth)
        if made.status_code != 201:
            raise SystemExit(f"bench: service registration refused: {made.text}")
    half = len(names) // 2
    consumer = mep.register("bench-consumer", appName="consumer",
                            appServiceRequired=[{"serName": n, "version": "1"} for n in names[:half]],
                            appServiceOptional=[{"serName": n} for n in names[half:]])
    token = consumer["token"]
    auth = {"Authorization": f"Bearer {token}"}
    one = mep.http.get(f"{SERVICES}/services", params={"ser_name": names[-1]}, headers=auth)
    every = mep.http.get(f"{SERVICES}/services", headers=auth)
    assert one.status_code == 200 and [s["serName"] for s in one.json()] == [names[-1]], one.text
    assert every.status_code == 200 and len(every.json()) == len(names), every.text
    print(f"\n== 1. Mp1 service discovery: {len(names)} services of one producer, a consumer allowed all of them; "
          f"{args.connections} keep-alive connections, {args.seconds:g} s each after {args.warmup:g} s warm-up, "
          f"{args.repeat} runs")
    print(f"  the load generator (bare asyncio HTTP/1.1, this process) shares the {os.cpu_count()} cores with the "
          f"MEP ({MEP_WORKERS} uvicorn process(es)) and PostgreSQL; CPU per request = MEP CPU s / requests")

    issue = []
    for _ in range(args.tokens):
        t0 = time.perf_counter()
        mep.token(consumer["creds"])
        issue.append(time.perf_counter() - t0)
    print_latency("POST /mep/oauth2/token (sequential)", issue)

    cases = {"GET /services?ser_name=<one of them>": [get_request(port, f"{SERVICES}/services?ser_name={n}", token)
                                                       for n in names],
             f"GET /services (all {len(names)})": [get_request(port, f"{SERVICES}/services", token)],
             # the floor: the same token check and web stack, no query
             "GET /timing/current_time (no database)": [get_request(port, f"{SUPPORT}/timing/current_time", token)]}
    for label, requests in cases.items():
        rates, p50s, p99s, server_share = [], [], [], []
        for run in range(args.repeat):
            before_server, before_pg, before_me = cpu_of(mep_pid), pg_backends_cpu(dbname) if dbname else {}, own_cpu()
            load = asyncio.run(_run_load(port, requests, args.connections, args.warmup, args.seconds))
            server = cpu_of(mep_pid) - before_server
            pg = sum(v - before_pg.get(pid, 0.0) for pid, v in pg_backends_cpu(dbname).items()) if dbname else 0.0
            me = own_cpu() - before_me
            rate = len(load.latencies) / args.seconds
            lat = stats_ms(load.latencies)
            rates.append(rate)
            p50s.append(lat["p50"])
            p99s.append(lat["p99"])
            server_share.append(server / (args.seconds + args.warmup))
            per_request = 1000 * server / max(1, len(load.latencies) * (args.seconds + args.warmup) / args.seconds)
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(load.statuses.items()))
            print(f"  {label} run {run + 1}: {rate:7.1f} req/s  p50 {lat['p50']:6.2f} ms  p90 {lat['p90']:6.2f} ms  "
                  f"p99 {lat['p99']:6.2f} ms  max {lat['max']:6.1f} ms  errors {load.errors} ({statuses}); CPU s "
                  f"(incl. warm-up): MEP {server:.1f} (~{per_request:.1f} ms/request), PostgreSQL {pg:.1f}, load "
                  f"generator {me:.1f}")
        print(f"  {label}: median (min–max) of {args.repeat}: {spread(rates)} req/s, p50 {spread(p50s, '{:.2f}')} ms, "
              f"p99 {spread(p99s, '{:.2f}')} ms, MEP busy {spread([100 * s for s in server_share], '{:.0f}')}% of "
              "one core (target >= 500 req/s on 2 cores)")
    mep.deregister("bench-consumer")
    mep.deregister("bench-producer")


# ------------------------------------------------------------------------------------- 2. DNS
def dns_latency(args: argparse.Namespace, mep: Mep, dns_settings: dict[str, str]) -> None:
    import dns.message
    import dns.query
    import dns.rcode

    host, _, dport = dns_settings["MEAO_MEP_DNS_ADDRESS"].rpartition(":")
    name = f"bench-{uuid.uuid4().hex[:10]}.mep-bench.example.net"
    address = "10.33.0.7"
    rule = {"dnsRuleId": "bench-dns", "domainName": name, "ipAddressType": "IP_V4", "ipAddress": address, "ttl": 30}

    def answer() -> set[str] | None:
        got = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(dport), timeout=2)
        if got.rcode() == dns.rcode.NXDOMAIN:
            return None
        return {r.to_text() for rrset in got.answer for r in rrset}

    print(f"\n== 2. DNS rules through the MEP: PowerDNS at {dns_settings['MEAO_MEP_DNS_API_URL']}, DNS "
          f"{host}:{dport}, name {name}")
    try:
        t0 = time.perf_counter()
        app = mep.register("bench-dns", appName="dns", appDNSRule=[rule])
        print(f"  Mm5 credentials + registration (publishes the name) + token: {time.perf_counter() - t0:.3f} s")
        assert answer() == {address}, "the registered DNS rule does not answer"
        for _ in range(50):  # warm the packet cache
            answer()
        samples = []
        for _ in range(args.queries):
            t0 = time.perf_counter()
            answer()
            samples.append(time.perf_counter() - t0)
        got = print_latency("DNS A for the rule's name (UDP, sequential)", samples)
        print(f"  -> p99 {got['p99']:.2f} ms (target < 5 ms on loopback)")

        mp1 = httpx.Client(base_url=mep.url, timeout=30, headers={"Authorization": f"Bearer {app['token']}"})
        rule_url = f"{SUPPORT}/applications/bench-dns/dns_rules/bench-dns"
        puts: list[float] = []
        visible: dict[str, list[float]] = {"INACTIVE": [], "ACTIVE": []}
        for i in range(args.flips):
            state, want = ("INACTIVE", None) if i % 2 == 0 else ("ACTIVE", {address})
            current = mp1.get(rule_url)
            current.raise_for_status()
            t0 = time.perf_counter()
            put = mp1.put(rule_url, json=dict(current.json(), state=state), headers={"If-Match": current.headers["ETag"]})
            t1 = time.perf_counter()
            if put.status_code != 200:
                raise SystemExit(f"bench: Mp1 PUT of the DNS rule refused: {put.text}")
            wait(lambda want=want: answer() == want, 10, f"the DNS answer to become {want}", interval=0)
            visible[state].append(time.perf_counter() - t1)
            puts.append(t1 - t0)
        mp1.close()
        print_latency("Mp1 PUT dns_rules/{id} state (realised in PowerDNS)", puts)
        print_latency("PUT INACTIVE returned -> first NXDOMAIN", visible["INACTIVE"])
        print_latency("PUT ACTIVE returned -> first query answers", visible["ACTIVE"])
    finally:
        mep.deregister("bench-dns")
        forget_dns_name(dns_settings, name)


def mep_modes(args: argparse.Namespace) -> None:
    """Modes 1 and 2 on one MEP process."""
    work = Path(tempfile.mkdtemp(prefix="meao-bench-mep-"))
    stack = contextlib.ExitStack()
    procs = None
    try:
        dns_settings = stack.enter_context(powerdns()) if args.dns else {}
        db_url = stack.enter_context(database(args.db, work))
        port = free_port()
        env = base_env(work, db_url, hosts_file(work, f"http://127.0.0.1:{port}", "nowhere", "net1", "az1"))
        env["MEAO_VIM_DRIVER"] = "fake"
        env.update({k: v for k, v in dns_settings.items() if k != "MEAO_MEP_DNS_ADDRESS"})
        procs = Processes(work, env)
        mep = start_mep(procs, port)
        print(f"MEP at {mep.url} on {args.db} ({db_url.rsplit('/', 1)[-1]}); load average at start "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        try:
            if args.discovery:
                dbname = db_url.rsplit("/", 1)[-1] if args.db == "postgresql" else None
                discovery(args, mep, procs.procs["mep"].pid, port, dbname)
            if args.dns:
                dns_latency(args, mep, dns_settings)
        finally:
            mep.close()
    finally:
        if procs is not None:
            procs.stop()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------ 3. instantiate
STEP_LINE = re.compile(r"op (\S+) step (\S+) done in ([0-9.]+) s")
TRAFFIC_RULE = {"trafficRuleId": "bench-in", "filterType": "FLOW", "priority": 3, "action": "PASSTHROUGH",
                "trafficFilter": [{"protocol": ["tcp"], "dstPort": ["8080"], "srcAddress": ["203.0.113.0/24"]}]}


def bench_package(work: Path, tag: str, dns_name: str) -> Path:
    """A tiny mec-json-appd package with one DNS rule and one traffic rule (as tests/mep/test_mep_e2e.py)."""
    from descriptors.examples.build import build_package

    def mutate(tree: Path) -> None:
        path = tree / "Definitions" / "appd.json"
        doc = json.loads(path.read_text())
        doc.update({"appDId": f"bench-mep-{tag}", "appServiceRequired": [],
                    "appFeatureOptional": [], "appTrafficRule": [TRAFFIC_RULE], "appDNSRule": [{
                        "dnsRuleId": "bench-dns", "domainName": dns_name, "ipAddressType": "IP_V4",
                        "ipAddress": "10.79.0.50", "ttl": 15}]})
        doc["virtualComputeDescriptor"].update({"virtualCpu": {"numVirtualCpu": 1},
                                                "virtualMemory": {"virtualMemSize": 512},
                                                "virtualDisk": [{"sizeOfStorage": 1}]})
        path.write_text(json.dumps(doc))

    return build_package("mec-json-appd", work / "pkg", mutate=mutate, appd_id=f"bench-mep-{tag}")


def _seconds(ts: dict[str, int]) -> float:
    return ts["seconds"] + ts["nanoSeconds"] / 1e9


def instantiate(args: argparse.Namespace) -> None:
    import redis

    tag = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="meao-bench-mep-lcm-"))
    stack = contextlib.ExitStack()
    procs: Processes | None = None
    conn = net = None
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    dns_name = f"bench-{tag}.mep-bench.example.net"
    dns_settings: dict[str, str] = {}
    try:
        env_extra: dict[str, str] = {}
        if args.vim == "openstack":
            from tests.openstack_testbed import testbed_state

            clouds = testbed_state() / "clouds.yaml"
            if not clouds.exists():
                raise SystemExit("bench: the test bed is not up; run deploy/testbed/up.sh (or use --vim fake)")
            import openstack

            region = openstack.config.OpenStackConfig(config_files=[str(clouds)]).get_one(cloud=args.cloud)
            conn = openstack.connection.Connection(config=region)
            net = conn.network.create_network(name=f"bench-mep-{tag}")
            conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.79.0.0/24", name=f"bench-mep-{tag}")
            env_extra["OS_CLIENT_CONFIG_FILE"] = str(clouds)
            cloud, network = args.cloud, net.name
        else:
            env_extra.update({"MEAO_VIM_DRIVER": "fake", "OS_CLIENT_CONFIG_FILE": str(work / "no-clouds.yaml")})
            cloud, network = "nowhere", "net1"
        if args.dns_server:
            dns_settings = stack.enter_context(powerdns())
            env_extra.update({k: v for k, v in dns_settings.items() if k != "MEAO_MEP_DNS_ADDRESS"})
        db_url = stack.enter_context(database(args.db, work))
        broker.flushdb()
        port, mep_port, metrics_port = free_port(), free_port(), free_port()
        env = {**base_env(work, db_url, hosts_file(work, f"http://127.0.0.1:{mep_port}", cloud, network, "az1")),
               "MEAO_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}", "MEAO_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "MEAO_BOOT_TIMEOUT_S": "300", **env_extra}
        procs = Processes(work, env)
        procs.start("api", "serve", "--port", str(port), "--no-embedded-worker")
        procs.up("api", f"http://127.0.0.1:{port}/app_pkgm/v1/app_packages", (200,))
        procs.start("worker", "worker", "-c", "2", "--metrics-port", str(metrics_port))
        mep = start_mep(procs, mep_port)
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        print(f"\n== 3. The MEP's share of instantiate ({args.vim} VIM, {args.db}, DNS "
              f"{'PowerDNS' if dns_settings else 'none: the DNS rule stays unrealised'}); load average at start "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        pkg_file = bench_package(work, tag, dns_name)
        created = api.post("/app_pkgm/v1/app_packages", json={
            "appPkgName": "bench-mep", "appPkgVersion": "1", "appPkgPath": pkg_file.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(pkg_file.read_bytes()).hexdigest()}})
        created.raise_for_status()
        pkg = wait(lambda: (i := api.get(f"/app_pkgm/v1/app_packages/{created.json()['id']}").json())
                   ["onboardingState"] == "ONBOARDED" and i or "onboardingFailureDetails" in i and i,
                   60, "the package to be onboarded")
        if pkg["onboardingState"] != "ONBOARDED":
            raise SystemExit(f"bench: onboarding failed: {pkg['onboardingFailureDetails']}")

        def op_of(resp: httpx.Response) -> str:
            if resp.status_code != 202:
                raise SystemExit(f"bench: {resp.request.url} answered {resp.status_code}: {resp.text}")
            return resp.headers["Location"].rsplit("/", 1)[-1]

        def ended(op_id: str) -> dict[str, Any]:
            return wait(lambda: (o := api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json())
                        ["operationState"] in ("COMPLETED", "FAILED_TEMP", "FAILED") and o, 600,
                        f"occurrence {op_id} to end", interval=0.02)

        def cycle() -> dict[str, float]:
            iid = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"]}).json()["id"]
            t0 = time.perf_counter()
            op_id = op_of(api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate",
                                   json={"selectedMECHostInfo": [{"hostId": {"id": HOST_ID}}]}))
            op = ended(op_id)
            seen = time.perf_counter() - t0
            if op["operationState"] != "COMPLETED":
                raise SystemExit(f"bench: instantiate ended {op['operationState']}: {op.get('error')}")
            steps = {m[2]: float(m[3]) for m in STEP_LINE.finditer(procs.log("worker")) if m[1] == op_id}
            gone = ended(op_of(api.post(f"/app_lcm/v1/app_instances/{iid}/terminate",
                                        json={"terminationType": "FORCEFUL"})))
            if gone["operationState"] != "COMPLETED":
                raise SystemExit(f"bench: terminate ended {gone['operationState']}: {gone.get('error')}")
            api.delete(f"/app_lcm/v1/app_instances/{iid}")
            return {"total": _seconds(op["stateEnteredTime"]) - _seconds(op["startTime"]), "seen": seen,
                    "server": steps.get("server", float("nan")), "app_rules": steps.get("app_rules", float("nan")),
                    **{f"step:{k}": v for k, v in steps.items()}}

        warm = cycle()
        print(f"  warm-up (not counted): instantiate {warm['total']:.3f} s")
        runs = [cycle() for _ in range(args.runs)]

        creds = []
        for i in range(args.credential_calls):
            t0 = time.perf_counter()
            mep.credentials(f"bench-cred-{tag}-{i}")
            creds.append(time.perf_counter() - t0)
        for i in range(args.credential_calls):
            mep.deregister(f"bench-cred-{tag}-{i}")
        cred = statistics.median(creds)
        print_latency("Mm5 PUT …/credentials, direct (scrypt hash of the secret)", creds)

        # app_rules runs beside wait_active (the last stage): only what it takes beyond the boot, and the
        # credentials call inside the server step, lengthen the instantiate
        print(f"  {'run':>3}  {'instantiate s':>13}  {'polled s':>8}  {'server s':>8}  {'wait_active s':>13}  "
              f"{'app_rules s':>11}  {'MEP added s':>11}  {'share':>6}   other steps")
        shares, totals = [], []
        for n, run in enumerate(runs, 1):
            added = cred + max(0.0, run["app_rules"] - run.get("step:wait_active", 0.0))
            shares.append(100 * added / run["total"])
            totals.append(100 * (run["app_rules"] + cred) / run["total"])
            others = ", ".join(f"{k[5:]} {v:.3f}" for k, v in run.items()
                               if k.startswith("step:") and k[5:] not in ("server", "app_rules", "wait_active"))
            print(f"  {n:>3}  {run['total']:>13.3f}  {run['seen']:>8.3f}  {run['server']:>8.3f}  "
                  f"{run.get('step:wait_active', 0.0):>13.3f}  {run['app_rules']:>11.3f}  {added:>11.3f}  "
                  f"{shares[-1]:>5.1f}%   {others}")
        print(f"  median (min–max) of {len(runs)}: instantiate {spread([r['total'] for r in runs], '{:.3f}')} s, "
              f"server step {spread([r['server'] for r in runs], '{:.3f}')} s, app_rules "
              f"{spread([r['app_rules'] for r in runs], '{:.3f}')} s, credentials call (median of "
              f"{len(creds)}) {cred:.3f} s")
        print(f"  -> time the MEP adds to instantiate (credentials + app_rules beyond wait_active): {spread(shares)}% "
              f"(target < 10%); all MEP work, most of it while the server boots: {spread(totals)}%"
              + ("; with the fake VIM the cloud costs nothing, so this share is an upper bound, not the target's"
                 if args.vim == "fake" else ""))
        api.close()
        mep.close()
    except BaseException:
        if procs is not None:  # what the processes said, before their logs go with the work dir
            for name in procs.procs:
                print(f"--- last lines of {name}.log\n{procs.log(name)[-2000:]}", file=sys.stderr)
        raise
    finally:
        if procs is not None:
            procs.stop()
        with contextlib.suppress(Exception):
            broker.flushdb()
        if dns_settings:
            with contextlib.suppress(Exception):
                forget_dns_name(dns_settings, dns_name)
        stack.close()
        if conn is not None and net is not None:
            _remove_network(conn, net)
        shutil.rmtree(work, ignore_errors=True)


def _remove_network(conn: Any, net: Any) -> None:
    """The bench network, with the ports terminate left (none, normally)."""
    try:
        for port in conn.network.ports(network_id=net.id):
            conn.network.delete_port(port, ignore_missing=True)
        conn.network.delete_network(net, ignore_missing=True)
    except Exception as exc:  # noqa: BLE001 — report what is left
        print(f"bench: remove network {net.name} and servers named meao-* by hand ({exc})", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_argument_group("modes (default: --discovery --dns)")
    modes.add_argument("--discovery", action="store_true", help="Mp1 service discovery throughput and latency")
    modes.add_argument("--dns", action="store_true", help="DNS answer latency and rule-change visibility")
    modes.add_argument("--instantiate", action="store_true", help="the MEP's share of instantiate")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--mep-workers", type=int, default=MEP_WORKERS, help="meao mep serve --workers")
    parser.add_argument("--services", type=int, default=20, help="services the producer registers")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load not counted, before each run")
    parser.add_argument("--repeat", type=int, default=3, help="load runs per discovery case")
    parser.add_argument("--tokens", type=int, default=20, help="Mp1 tokens to issue, one after another")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--flips", type=int, default=50, help="Mp1 DNS rule state changes")
    parser.add_argument("--runs", type=int, default=7, help="instantiate + terminate cycles")
    parser.add_argument("--credential-calls", type=int, default=20)
    parser.add_argument("--vim", choices=("openstack", "fake"), default="openstack")
    parser.add_argument("--cloud", default="demo")
    parser.add_argument("--no-dns-server", dest="dns_server", action="store_false",
                        help="--instantiate without PowerDNS (the DNS rule stays unrealised)")
    args = parser.parse_args()
    globals()["MEP_WORKERS"] = args.mep_workers
    if not (args.discovery or args.dns or args.instantiate):
        args.discovery = args.dns = True
    if args.discovery or args.dns:
        mep_modes(args)
    if args.instantiate:
        instantiate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
