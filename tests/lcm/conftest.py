"""Fixtures for lifecycle tests: the real OpenStack test bed, networks on it, and a meao with MEC hosts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.api.helpers import onboard, remove
from tests.conftest import POSTGRES, REDIS, Stack, launch_stack, require_service

CLOUD = "demo"


@pytest.fixture(scope="session")
def os_conn(clouds_yaml: Path):
    import openstack

    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=CLOUD)
    conn = openstack.connection.Connection(config=region)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def networks(os_conn) -> Iterator[dict[str, str]]:
    """Two tenant networks (management, user plane) the MEC hosts offer; removed at the end."""
    tag = uuid.uuid4().hex[:6]
    made = {}
    for i, role in enumerate(("mgmt", "data")):
        net = os_conn.network.create_network(name=f"meao-test-{role}-{tag}")
        os_conn.network.create_subnet(network_id=net.id, ip_version=4, cidr=f"10.{77 + i}.0.0/24",
                                      name=f"meao-test-{role}-{tag}")
        made[role] = net
    yield {role: net.name for role, net in made.items()}
    for net in made.values():
        for port in os_conn.network.ports(network_id=net.id):
            os_conn.network.delete_port(port)
        os_conn.network.delete_network(net, ignore_missing=True)


def hosts_doc(networks: dict[str, str]) -> dict:
    """MEC hosts on the test bed's two availability zones.

    pop1 (az1): RNIS + LS, 5 ms to cell-1, 12 ms to cell-2. pop2 (az2): RNIS + LS, 30 ms to cell-1, 4 ms to
    cell-3. pop3 (az2): LS only (no RNIS), 2 ms to cell-1 — the best latency, but not the services.
    """
    nets = {"default": networks["mgmt"], "MecVmAppDataCp": networks["data"]}
    rnis_ls = [{"serName": "RNIS", "version": "2.2.1"}, {"serName": "LS", "version": "2.2.1"}]
    features = [{"featureName": "UserApps", "version": "1.0"}]

    def host(hid: str, zone: str, lat: float, areas: dict[str, float], services: list) -> dict:
        return {"id": hid, "name": f"Edge PoP {hid[-1]}", "cloud": CLOUD, "availability_zone": zone,
                "location": {"countryCode": "FI", "latitude": lat, "longitude": 24.9},
                "served_areas": list(areas), "latency_ms": areas, "services": services, "features": features,
                "networks": nets}

    return {"mec_hosts": [
        host("pop1", "az1", 60.17, {"cell-1": 5, "cell-2": 12}, rnis_ls),
        host("pop2", "az2", 61.5, {"cell-1": 30, "cell-3": 4}, rnis_ls),
        host("pop3", "az2", 61.4, {"cell-1": 2}, [{"serName": "LS", "version": "2.2.1"}]),
    ]}


@pytest.fixture(scope="session")
def lcm_stack(tmp_path_factory: pytest.TempPathFactory, clouds_yaml: Path, networks: dict[str, str],
              pg_url: str) -> Iterator[Stack]:
    """meao on PostgreSQL + Redis with a worker serving the catalogue and both PoP queues."""
    require_service("Redis", REDIS)
    require_service("PostgreSQL", POSTGRES)
    base = tmp_path_factory.mktemp("lcm")
    hosts_file = base / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(hosts_doc(networks)))
    stack = launch_stack(base, pg_url, 13, {
        "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "MEAO_MEC_HOSTS_FILE": str(hosts_file),
        "MEAO_OP_STALE_S": "6", "MEAO_REAP_INTERVAL_S": "1", "MEAO_HEARTBEAT_S": "1",
        "MEAO_BOOT_TIMEOUT_S": "120", "MEAO_TEST_FAULT_DIR": str(base / "faults")})
    stack.hosts_file = hosts_file  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def vm_pkg(lcm_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from descriptors.examples.build import build_package

    info = onboard(lcm_stack, build_package("mec-vm-app", tmp_path_factory.mktemp("vm")))
    yield info
    remove(lcm_stack, info["id"])


@pytest.fixture()
def lcm(lcm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{lcm_stack.base}/app_lcm/v1", timeout=60) as client:
        yield client


@pytest.fixture()
def no_leftovers(lcm_stack: Stack, os_conn) -> Iterator[None]:
    """After each test: nothing meao made at the test bed is left that no live instance accounts for."""
    yield
    from meao.nfvo.openstack.driver import OpenStackVim

    eng = create_engine(lcm_stack.env["MEAO_DATABASE_URL"])
    with eng.connect() as conn:
        live = [r[0] for r in conn.execute(text("select id from app_instance where instantiation_state='INSTANTIATED'"))]
        pkgs = [r[0] for r in conn.execute(text("select id from app_package"))]
    eng.dispose()
    vim = OpenStackVim("demo", lcm_stack.env["OS_CLIENT_CONFIG_FILE"])
    leftovers = vim.sweep(live, pkgs)
    assert not [x for x in leftovers.items if x.kind in ("server", "port", "flavor")], str(leftovers)


