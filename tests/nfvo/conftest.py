"""Fixtures for the VIM adapter's integration tests against the real test bed (deploy/testbed).

The test bed is started once per session when ``status.sh`` says it is down, and reused when it is
up. Under CI (``CI=true``) a test bed that cannot start fails the run; elsewhere the tests skip.
The tests work in a project made for the session; every test removes what it created, and at the
end of the session the sweep of that project must find nothing.
"""

from __future__ import annotations

import copy
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml

from meao.catalogue.appd import Checksum
from meao.nfvo.openstack import OpenStackVim, get_vim
from meao.nfvo.vim import ImageSpec

MEMBER_CLOUD, ADMIN_CLOUD, SESSION_CLOUD = "demo", "admin", "meao-tests"


_leaked_ports: list[str] = []


def _connect(config_file: Path, cloud: str) -> openstack.connection.Connection:
    config = openstack.config.loader.OpenStackConfig(config_files=[str(config_file)])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


@pytest.fixture(scope="session")
def admin(clouds_yaml: Path) -> openstack.connection.Connection:
    """A plain admin connection, for arranging what tests need (quotas, public flavors)."""
    return _connect(clouds_yaml, ADMIN_CLOUD)


@pytest.fixture(scope="session")
def session_clouds(clouds_yaml: Path, admin: openstack.connection.Connection,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A clouds.yaml whose ``meao-tests`` entry is a member of a project made for this session.

    Other engineers share the test bed; a project of our own keeps their servers, ports and images
    out of our sweep. At the end the sweep of this project must find nothing, then it is deleted.
    """
    name = f"meao-tests-{uuid.uuid4().hex[:8]}"
    project = admin.identity.create_project(name=name, domain_id="default")
    password = uuid.uuid4().hex
    user = admin.identity.create_user(name=name, password=password, domain_id="default",
                                      default_project_id=project.id)
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    clouds = yaml.safe_load(clouds_yaml.read_text())
    entry = copy.deepcopy(clouds["clouds"][MEMBER_CLOUD])
    entry["auth"].update(username=name, password=password, project_name=name)
    clouds["clouds"][SESSION_CLOUD] = entry  # keeps meao_admin_cloud: admin
    path = tmp_path_factory.mktemp("clouds") / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds))
    try:
        yield path
        leftovers = get_vim(SESSION_CLOUD, str(path)).sweep(known_instance_ids=())
        assert not leftovers and not _leaked_ports, \
            f"resources leaked by the tests: {leftovers}; ports left on the test network: {_leaked_ports}"
    finally:
        admin.identity.delete_user(user)
        admin.identity.delete_project(project)


@pytest.fixture(scope="session")
def vim(session_clouds: Path) -> OpenStackVim:
    """The session project's driver, as meao would use it (member credentials, admin for flavors)."""
    return get_vim(SESSION_CLOUD, str(session_clouds))


@pytest.fixture(scope="session")
def member(session_clouds: Path) -> openstack.connection.Connection:
    """A plain connection as the session project's member, to look at what the driver made."""
    return _connect(session_clouds, SESSION_CLOUD)


@pytest.fixture(scope="session")
def network(member: openstack.connection.Connection) -> Iterator[str]:
    """A tenant network with one subnet (10.77.0.0/24), named like a MEC host's data network."""
    name = f"meao-test-net-{uuid.uuid4().hex[:8]}"
    net = member.network.create_network(name=name)
    member.network.create_subnet(network_id=net.id, cidr="10.77.0.0/24", ip_version=4, name=name)
    yield name
    # Ports still here leaked from a test: remember them for the final check, then clear them so
    # the network can go.
    for port in member.network.ports(network_id=net.id):
        _leaked_ports.append(f"{port.name} ({port.id})")
        member.network.delete_port(port)
    member.network.delete_network(net)


@pytest.fixture
def instance_id(vim: OpenStackVim) -> Iterator[str]:
    """A fresh app instance id; whatever a test left under it is deleted afterwards."""
    iid = str(uuid.uuid4())
    yield iid
    for server in vim.find_servers(iid):
        vim.delete_server(server.id, wait=True)
    for port in vim.find_ports(iid):
        vim.delete_port(port.id)


def make_image_file(path: Path, size: int = 3 << 20) -> tuple[Path, str]:
    """A few MiB of random bytes and their sha-256."""
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture
def image_file(tmp_path: Path) -> tuple[Path, ImageSpec]:
    path, digest = make_image_file(tmp_path / "app.img")
    spec = ImageSpec(name=f"meao-test-{uuid.uuid4().hex[:8]}", version="1.0",
                     checksum=Checksum("sha-256", digest), container_format="bare", disk_format="raw",
                     min_disk_gb=1, min_ram_mb=64, size_bytes=path.stat().st_size)
    return path, spec


@pytest.fixture(scope="session")
def boot_image(vim: OpenStackVim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One image that the server tests boot from, released at the end of the session."""
    path, digest = make_image_file(tmp_path_factory.mktemp("boot") / "boot.img", 1 << 20)
    spec = ImageSpec(name="meao-test-boot", version="1", checksum=Checksum("sha-256", digest),
                     disk_format="raw", container_format="bare")
    image_id = vim.ensure_image(spec, lambda: path.open("rb"), package_id="pkg-test-boot")
    yield image_id
    vim.release_image(image_id, "pkg-test-boot")


@pytest.fixture(scope="session")
def private_flavors(vim: OpenStackVim) -> Iterator[list[str]]:
    """Flavor ids tests obtained; released at the end of the session, when no server uses them."""
    ids: list[str] = []
    yield ids
    for flavor_id in set(ids):
        vim.release_flavor(flavor_id)


@pytest.fixture
def small_flavor(vim: OpenStackVim, private_flavors: list[str]) -> str:
    flavor_id = vim.ensure_flavor(1, 128, 1)
    private_flavors.append(flavor_id)
    return flavor_id

