"""An app instantiated by meao is a MEC app: the whole MEP path on the OpenStack test bed, real processes.

`meao serve` (no embedded worker), a `meao worker` for the PoP's queue and the PoP's own `meao mep serve`
(the host's mep_url points at it), on PostgreSQL and Redis, with PowerDNS realising DNS rules and
Neutron the traffic rules. Two apps (a producer and a consumer of one service) read their Mp1
credentials from their servers' user_data through Nova, and use Mp1 as MEC 011 says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import httpx
import pytest
import yaml

from tests.api.helpers import onboard
from tests.conftest import (
    POSTGRES,
    REDIS,
    Stack,
    SubscriberServer,
    _pg_database,
    free_port,
    launch_stack,
    require_service,
    wait_for,
)
from tests.lcm.helpers import accepted_op, wait_op
from tests.mep.conftest import pdns_env_file
from tests.mep.mp1_app import Mp1App, boot_credentials

pytestmark = pytest.mark.openstack

HOST = "mep-pop"
CLOUD = "demo"
MEP_REDIS_DB = 6
TAG = uuid.uuid4().hex[:6]
CACHE_NAME = f"cache-{TAG}.mep.example.net"
TRAFFIC = {"trafficRuleId": "cache-in", "filterType": "FLOW", "priority": 3, "action": "PASSTHROUGH",
           "trafficFilter": [{"protocol": ["tcp"], "dstPort": ["8080"], "srcAddress": ["203.0.113.0/24"]}]}


def _connect(clouds_yaml: Path, cloud: str) -> Any:
    import openstack

    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


@pytest.fixture(scope="module")
def os_conn(clouds_yaml: Path) -> Iterator[Any]:
    conn = _connect(clouds_yaml, CLOUD)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def metadata_conn(clouds_yaml: Path) -> Iterator[Any]:
    """What serves a VM its user_data (the metadata service) reads it as the cloud's admin."""
    conn = _connect(clouds_yaml, "admin")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def network(os_conn: Any) -> Iterator[str]:
    net = os_conn.network.create_network(name=f"meao-mep-{TAG}")
    os_conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.79.0.0/24", name=f"meao-mep-{TAG}")
    yield net.name
    for port in os_conn.network.ports(network_id=net.id):
        if not (port.device_owner or "").startswith("network:"):  # Neutron's own go with the network
            os_conn.network.delete_port(port)
    os_conn.network.delete_network(net, ignore_missing=True)


def _mep_up(url: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"meao mep serve exited; log:\n{log.read_text()[-3000:]}")
    try:
        return httpx.get(f"{url}/mec_app_support/v1/timing/current_time", timeout=2).status_code == 401
    except httpx.HTTPError:
        return False


def start_mep(stack: Stack, port: int) -> subprocess.Popen:
    log = stack.data_dir.parent / "mep.log"
    proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "mep", "serve", "--host-id", HOST, "--port", str(port)],
                            env=stack.env, stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_for(lambda: _mep_up(f"http://127.0.0.1:{port}", proc, log), 60, 0.2, "the MEP to answer")
    return proc


@pytest.fixture(scope="module")
def mep_stack(tmp_path_factory: pytest.TempPathFactory, clouds_yaml: Path, network: str,
              powerdns: Any) -> Iterator[tuple[Stack, int]]:
    require_service("Redis", REDIS)
    require_service("PostgreSQL", POSTGRES)
    base = tmp_path_factory.mktemp("mep")
    mep_port = free_port()
    hosts_file = base / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump({"mec_hosts": [{
        "id": HOST, "name": "PoP with its own MEP", "cloud": CLOUD, "availability_zone": "az1",
        "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5}, "services": [], "networks": {"default": network},
        "mep_url": f"http://127.0.0.1:{mep_port}"}]}))
    dns_env = {k: v for k, v in (line.split("=", 1) for line in pdns_env_file().read_text().splitlines()
                                 if "=" in line and not line.startswith("#"))}
    db = _pg_database()
    stack = launch_stack(base, next(db), MEP_REDIS_DB, {
        "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "MEAO_MEC_HOSTS_FILE": str(hosts_file),
        "MEAO_MEP_DNS_API_URL": dns_env["MEAO_MEP_DNS_API_URL"],
        "MEAO_MEP_DNS_API_KEY_FILE": dns_env["MEAO_MEP_DNS_API_KEY_FILE"], "MEAO_BOOT_TIMEOUT_S": "120"})
    stack.procs["mep"] = start_mep(stack, mep_port)
    try:
        yield stack, mep_port
    finally:
        _terminate_all(stack)
        stack.stop()
        next(db, None)


def _terminate_all(stack: Stack) -> None:
    """Whatever a failed test left instantiated goes (FORCEFUL), so no server outlives the module."""
    with httpx.Client(base_url=f"{stack.base}/app_lcm/v1", timeout=60) as lcm:
        for inst in lcm.get("/app_instances").json():
            if inst["instantiationState"] == "INSTANTIATED":
                resp = lcm.post(f"/app_instances/{inst['id']}/terminate", json={"terminationType": "FORCEFUL"})
                if resp.status_code == 202:
                    wait_op(lcm, resp.headers["Location"].rsplit("/", 1)[-1], ("COMPLETED", "FAILED_TEMP"), 120)


def _package(tmp: Path, name: str, **appd: Any) -> Path:
    from descriptors.examples.build import build_package

    def mutate(tree: Path) -> None:
        path = tree / "Definitions" / "appd.json"
        doc = json.loads(path.read_text())
        doc.update({"appDId": f"{name}-{TAG}", "appServiceRequired": [], "appTrafficRule": [],
                    "appDNSRule": [], "appFeatureOptional": []}, **appd)
        doc["virtualComputeDescriptor"].update({"virtualCpu": {"numVirtualCpu": 1}, "virtualMemory": {"virtualMemSize": 512},
                                                "virtualDisk": [{"sizeOfStorage": 1}]})
        path.write_text(json.dumps(doc))

    return build_package("mec-json-appd", tmp / name, mutate=mutate, appd_id=f"{name}-{TAG}")


def _instantiate(lcm: httpx.Client, appd_id: str) -> str:
    iid = lcm.post("/app_instances", json={"appDId": appd_id}).json()["id"]
    op = wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={
        "selectedMECHostInfo": [{"hostId": {"id": HOST}}]})), timeout=180)
    assert op["operationState"] == "COMPLETED", op
    return iid


def _resolve(address: tuple[str, int], name: str) -> tuple[int, list[str]]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), address[0], port=address[1], timeout=2)
    return answer.rcode(), sorted(r.address for rrset in answer.answer for r in rrset)


def test_two_mec_apps_use_mp1_and_terminate_gracefully(mep_stack: tuple[Stack, int], os_conn: Any, metadata_conn: Any,
                                                       tmp_path: Path,
                                                       dns_address: tuple[str, int],
                                                       subscriber: SubscriberServer) -> None:
    stack, mep_port = mep_stack
    mep_url = f"http://127.0.0.1:{mep_port}"
    producer_pkg = onboard(stack, _package(tmp_path, "cache-app", appServiceProduced=[
        {"serName": "edge-cache", "version": "1"}], appTrafficRule=[TRAFFIC], appDNSRule=[
        {"dnsRuleId": "cache-dns", "domainName": CACHE_NAME, "ipAddressType": "IP_V4", "ipAddress": "10.79.0.50",
         "ttl": 15}]))
    consumer_pkg = onboard(stack, _package(tmp_path, "video-app", appServiceRequired=[
        {"serName": "edge-cache", "version": "1"}]))

    with httpx.Client(base_url=f"{stack.base}/app_lcm/v1", timeout=60) as lcm:
        # the producer: its server carries its Mp1 credentials, the MEP realised its rules
        producer_id = _instantiate(lcm, producer_pkg["appDId"])
        inst = lcm.get(f"/app_instances/{producer_id}").json()
        creds = boot_credentials(metadata_conn, inst["vimResources"]["computeResource"]["resourceId"])
        assert creds["appInstanceId"] == producer_id and creds["mecAppSupportUri"].startswith(mep_url)
        producer = Mp1App(creds)
        assert inst["mecPlatform"]["realised"]["trafficRules"]["rules"]["cache-in"]["realised"] is True
        group = next(os_conn.network.security_groups(name=f"meao-{producer_id}-mp1"))
        ingress = [(r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix)
                   for r in os_conn.network.security_group_rules(security_group_id=group.id) if r.direction == "ingress"]
        assert ingress == [("tcp", 8080, 8080, "203.0.113.0/24")]
        assert _resolve(dns_address, CACHE_NAME) == (dns.rcode.NOERROR, ["10.79.0.50"])

        # Mp1 as an app uses it: termination subscription, its DNS rule off and on, its service, ready
        notes = f"/mp1/{producer_id}"
        assert producer.subscribe_termination(f"{subscriber.url}{notes}").status_code == 201
        assert producer.set_dns_state("cache-dns", "INACTIVE").status_code == 200
        assert _resolve(dns_address, CACHE_NAME)[0] == dns.rcode.NXDOMAIN
        assert producer.set_dns_state("cache-dns", "ACTIVE").status_code == 200
        assert _resolve(dns_address, CACHE_NAME) == (dns.rcode.NOERROR, ["10.79.0.50"])
        service = {"serName": "edge-cache", "version": "1", "state": "ACTIVE", "serializer": "JSON",
                   "transportInfo": {"id": "cache-rest", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP",
                                     "version": "1.1", "endpoint": {"uris": ["http://10.79.0.50:8080/"]},
                                     "security": {}}}
        assert producer.register_service(service).status_code == 201
        assert producer.register_service(dict(service, serName="not-mine")).status_code == 403
        assert producer.confirm_ready().status_code == 204

        # a MEP restart loses nothing: its state is in the database
        stack.procs["mep"].terminate()
        stack.procs["mep"].wait(timeout=30)
        stack.procs["mep"] = start_mep(stack, mep_port)

        # the consumer requires edge-cache, which the host now offers, and discovers it; nothing else
        consumer_id = _instantiate(lcm, consumer_pkg["appDId"])
        consumer_server = lcm.get(f"/app_instances/{consumer_id}").json()["vimResources"]["computeResource"]["resourceId"]
        consumer = Mp1App(boot_credentials(metadata_conn, consumer_server))
        found = consumer.discover(ser_name="edge-cache")
        assert found.status_code == 200 and [s["serName"] for s in found.json()] == ["edge-cache"]
        assert found.json()[0]["transportInfo"]["endpoint"]["uris"] == ["http://10.79.0.50:8080/"]
        assert consumer.discover(ser_name="not-authorised").status_code == 403
        other = consumer.call("GET", producer.app_url("dns_rules"))
        assert other.status_code == 403 and other.headers["content-type"].startswith("application/problem+json")

        # GRACEFUL terminate of the producer waits for its confirmation
        started = time.monotonic()
        op_href = accepted_op(lcm, lcm.post(f"/app_instances/{producer_id}/terminate", json={
            "terminationType": "GRACEFUL", "gracefulTerminationTimeout": 60}))
        note = wait_for(lambda: subscriber.notifications(notes), 30, what="AppTerminationNotification")[0]
        assert note["operationAction"] == "TERMINATING" and note["maxGracefulTimeout"] == 60
        time.sleep(1.0)
        assert producer.confirm_termination("TERMINATING").status_code == 204
        op = wait_op(lcm, op_href, timeout=120)
        assert op["operationState"] == "COMPLETED", op
        assert op["gracefulTermination"]["state"] == "CONFIRMED"
        assert 1.0 <= op["gracefulTermination"]["waitedS"] < 30 and time.monotonic() - started < 60
        assert _resolve(dns_address, CACHE_NAME)[0] == dns.rcode.NXDOMAIN
        assert list(os_conn.network.security_groups(name=f"meao-{producer_id}-mp1")) == []
        assert producer.call("GET", producer.app_url("dns_rules")).status_code == 401  # credentials revoked
        assert consumer.discover().json() == []  # its service left with it

        # a GRACEFUL stop asks the consumer too (STOPPING); it confirms, and is started again
        notes = f"/mp1/{consumer_id}"
        assert consumer.subscribe_termination(f"{subscriber.url}{notes}").status_code == 201
        op_href = accepted_op(lcm, lcm.post(f"/app_instances/{consumer_id}/operate", json={
            "changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 60}))
        note = wait_for(lambda: subscriber.notifications(notes), 30, what="AppTerminationNotification")[0]
        assert note["operationAction"] == "STOPPING"
        assert consumer.confirm_termination("STOPPING").status_code == 204
        op = wait_op(lcm, op_href, timeout=120)
        assert op["gracefulTermination"]["state"] == "CONFIRMED", op
        assert lcm.get(f"/app_instances/{consumer_id}").json()["instantiatedAppState"]["operationalState"] == "STOPPED"
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{consumer_id}/operate",
                                               json={"changeStateTo": "STARTED"})), timeout=120)

        # then it never confirms: a short timeout goes on without it
        op = wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{consumer_id}/terminate", json={
            "terminationType": "GRACEFUL", "gracefulTerminationTimeout": 2})), timeout=120)
        assert op["operationState"] == "COMPLETED", op
        assert op["gracefulTermination"]["state"] == "TIMED_OUT" and op["gracefulTermination"]["waitedS"] >= 2
