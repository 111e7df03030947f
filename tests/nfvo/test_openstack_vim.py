"""The openstacksdk VIM driver against the real test bed: images, flavors, ports, servers, errors,
capacity, the sweep and the driver registry."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest

from meao.nfvo.drivers import get_vim
from meao.nfvo.openstack.driver import OpenStackVim
from meao.nfvo.vim import (
    INSTANCE_METADATA_KEY,
    ImageSpec,
    NoValidHost,
    QuotaExceeded,
    ServerFault,
    VimError,
    VimNotFound,
    VimTimeout,
    flavor_name,
)

pytestmark = pytest.mark.openstack

BOOT_TIMEOUT = 120


class _BreaksHalfWay(io.RawIOBase):
    """A package file whose read fails after ``limit`` bytes, like a dropped connection."""

    def __init__(self, path: Path, limit: int) -> None:
        self._file = path.open("rb")
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError("connection to the package store lost")
        data = self._file.read(min(size if size > 0 else self._left, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()
        super().close()


def _images_named(member: openstack.connection.Connection, name_prefix: str) -> list[str]:
    return [i.id for i in member.image.images() if (i.name or "").startswith(name_prefix)]


@contextlib.contextmanager
def _compute_quota(admin: openstack.connection.Connection, project_id: str, **limits: int) -> Iterator[None]:
    before = admin.compute.get_quota_set(project_id)
    admin.compute.update_quota_set(project_id, **limits)
    try:
        yield
    finally:
        admin.compute.update_quota_set(project_id, **{k: getattr(before, k) for k in limits})


# ------------------------------------------------------------------------------------------ images
def test_image_is_uploaded_once_and_found_again_by_checksum(
        vim: OpenStackVim, member: openstack.connection.Connection,
        image_file: tuple[Path, ImageSpec]) -> None:
    path, spec = image_file
    opened: list[int] = []

    def open_stream() -> io.BufferedReader:
        opened.append(1)
        return path.open("rb")

    image_id = vim.ensure_image(spec, open_stream, package_id="pkg-a")
    again = vim.ensure_image(spec, open_stream, package_id="pkg-b")

    assert again == image_id and len(opened) == 1
    assert vim.find_image_by_checksum(spec.checksum) == image_id
    image = member.image.get_image(image_id)
    assert image.status == "active" and image.size == spec.size_bytes
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    assert (image.min_disk, image.min_ram) == (1, 64)
    assert image.properties["meao_owned"] == "true"
    assert image.properties["meao_checksum"] == f"sha-256:{spec.checksum.hash}"
    assert vim.release_image(image_id, "pkg-a") is False  # pkg-b still uses it
    assert vim.find_image_by_checksum(spec.checksum) == image_id
    assert vim.release_image(image_id, "pkg-b") is True
    assert vim.find_image_by_checksum(spec.checksum) is None


def test_an_image_shared_by_packages_takes_the_smallest_minimums_they_declare(
        vim: OpenStackVim, member: openstack.connection.Connection,
        image_file: tuple[Path, ImageSpec]) -> None:
    """Two packages with the same image bytes: the one declaring less RAM and disk must still boot its
    smaller flavor, so the shared Glance image keeps the smallest minimums (never raised again)."""
    path, spec = image_file
    big = dataclasses.replace(spec, min_ram_mb=1024, min_disk_gb=2)
    image_id = vim.ensure_image(big, lambda: path.open("rb"), package_id="pkg-big")
    assert (member.image.get_image(image_id).min_ram, member.image.get_image(image_id).min_disk) == (1024, 2)
    try:
        assert vim.ensure_image(spec, lambda: path.open("rb"), package_id="pkg-small") == image_id
        assert (member.image.get_image(image_id).min_ram, member.image.get_image(image_id).min_disk) == (64, 1)
        assert vim.ensure_image(big, lambda: path.open("rb"), package_id="pkg-big") == image_id
        assert member.image.get_image(image_id).min_ram == 64
    finally:
        vim.release_image(image_id, "pkg-big")
        vim.release_image(image_id, "pkg-small")
    assert vim.find_image_by_checksum(spec.checksum) is None


def test_interrupted_image_upload_leaves_no_image_and_a_retry_uploads_it(
        vim: OpenStackVim, member: openstack.connection.Connection,
        image_file: tuple[Path, ImageSpec]) -> None:
    path, spec = image_file

    with pytest.raises(VimError) as err:
        vim.ensure_image(spec, lambda: _BreaksHalfWay(path, limit=(spec.size_bytes or 0) // 2), "pkg-a")

    assert "uploading image" in err.value.detail and "onboard the package again" in err.value.detail
    assert vim.find_image_by_checksum(spec.checksum) is None
    assert _images_named(member, spec.name) == []
    image_id = vim.ensure_image(spec, lambda: path.open("rb"), "pkg-a")
    assert member.image.get_image(image_id).status == "active"
    assert vim.release_image(image_id, "pkg-a")


def test_image_whose_data_does_not_match_its_checksum_is_rejected_and_removed(
        vim: OpenStackVim, member: openstack.connection.Connection,
        image_file: tuple[Path, ImageSpec]) -> None:
    path, spec = image_file
    path.write_bytes(b"tampered" + path.read_bytes()[8:])

    with pytest.raises(VimError, match="not .* as the AppD declares") as err:
        vim.ensure_image(spec, lambda: path.open("rb"), "pkg-a")

    assert err.value.status == 422
    assert _images_named(member, spec.name) == []


# ----------------------------------------------------------------------------------------- flavors
def test_existing_public_flavor_of_exact_size_is_reused(
        vim: OpenStackVim, admin: openstack.connection.Connection) -> None:
    ram = 96 + uuid.uuid4().int % 1000  # a size no other test uses
    public = admin.compute.create_flavor(name=f"test-public-{ram}", vcpus=1, ram=ram, disk=2, is_public=True)
    try:
        assert vim.ensure_flavor(1, ram, 2) == public.id
    finally:
        admin.compute.delete_flavor(public)


def test_flavor_never_smaller_than_requirement(
        vim: OpenStackVim, admin: openstack.connection.Connection, private_flavors: list[str]) -> None:
    ram = 1100 + uuid.uuid4().int % 1000
    near = [admin.compute.create_flavor(name=f"test-near-{ram}-{i}", vcpus=v, ram=r, disk=d, is_public=True)
            for i, (v, r, d) in enumerate([(2, ram, 1), (1, ram, 2), (2, ram - 1, 2), (3, ram, 3)])]
    try:
        flavor_id = vim.ensure_flavor(2, ram, 2)
        private_flavors.append(flavor_id)
        flavor = admin.compute.get_flavor(flavor_id)
        assert (flavor.vcpus, flavor.ram, flavor.disk) == (2, ram, 2)
        assert flavor.name == flavor_name(2, ram, 2) and not flavor.is_public
        assert vim.ensure_flavor(2, ram, 2) == flavor_id  # created once, then found
    finally:
        for f in near:
            admin.compute.delete_flavor(f)
    assert vim.release_flavor(flavor_id) is True


# ------------------------------------------------------------------------------------------- ports
def test_port_is_named_and_tagged_for_its_instance_with_fixed_ip_and_no_port_security(
        vim: OpenStackVim, member: openstack.connection.Connection, network: str, instance_id: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1", fixed_ips=["10.77.0.50"], port_security=False)

    [info] = vim.find_ports(instance_id)
    port = member.network.get_port(port_id)
    assert info.id == port_id and info.instance_id == instance_id
    assert port.name == f"meao-{instance_id}-cp1"
    assert set(port.tags) == {"meao", f"meao-instance:{instance_id}"}
    assert info.fixed_ips == ("10.77.0.50",) and info.port_security is False
    vim.delete_port(port_id)
    vim.delete_port(port_id)  # already gone: no error
    assert vim.find_ports(instance_id) == []


def test_port_keeps_port_security_by_default(vim: OpenStackVim, network: str, instance_id: str) -> None:
    vim.create_port(network, instance_id, "cp1")
    [info] = vim.find_ports(instance_id)
    assert info.port_security is True and info.fixed_ips[0].startswith("10.77.0.")


def test_port_on_a_network_replaced_under_the_same_name(
        vim: OpenStackVim, member: openstack.connection.Connection, instance_id: str) -> None:
    name = f"meao-test-net-{uuid.uuid4().hex[:8]}"
    nets = []
    try:
        for cidr in ("10.78.0.0/24", "10.79.0.0/24"):
            net = member.network.create_network(name=name)
            nets.append(net)
            member.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4, name=name)
            port_id = vim.create_port(name, instance_id, f"cp{len(nets)}")  # the first one fills the cache
            assert member.network.get_port(port_id).network_id == net.id
            vim.delete_port(port_id)
            if len(nets) == 1:
                member.network.delete_network(net)
        member.network.delete_network(nets[-1])
        with pytest.raises(VimNotFound, match=f"network '{name}' does not exist"):
            vim.create_port(name, instance_id, "cp3")
    finally:
        for net in nets:
            for port in member.network.ports(network_id=net.id):
                member.network.delete_port(port)
            member.network.delete_network(net, ignore_missing=True)


def test_port_on_unknown_network_raises_not_found(vim: OpenStackVim, instance_id: str) -> None:
    with pytest.raises(VimNotFound, match="network 'no-such-net' does not exist"):
        vim.create_port("no-such-net", instance_id, "cp1")


def test_port_quota_exceeded_is_reported_as_quota_error(
        vim: OpenStackVim, admin: openstack.connection.Connection, network: str, instance_id: str) -> None:
    project = vim.project_id
    before = admin.network.get_quota(project, details=True).ports
    admin.network.update_quota(project, port=before["used"])
    try:
        with pytest.raises(QuotaExceeded, match="quota exceeded") as err:
            vim.create_port(network, instance_id, "cp1")
        assert err.value.status == 503
    finally:
        admin.network.update_quota(project, port=before["limit"])
    assert vim.find_ports(instance_id) == []


# ----------------------------------------------------------------------------------------- servers
def test_server_boots_in_requested_zone_stops_starts_and_is_deleted(
        vim: OpenStackVim, member: openstack.connection.Connection, network: str, instance_id: str,
        boot_image: str, small_flavor: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1")
    server_id = vim.create_server(f"meao-{instance_id}", small_flavor, boot_image, [port_id], instance_id,
                                  availability_zone="az2")

    active = vim.wait_server_active(server_id, BOOT_TIMEOUT)
    assert active.status == "ACTIVE" and active.availability_zone == "az2"
    assert active.instance_id == instance_id
    assert member.compute.get_server(server_id).metadata[INSTANCE_METADATA_KEY] == instance_id
    assert [s.id for s in vim.find_servers(instance_id)] == [server_id]
    assert member.network.get_port(port_id).device_id == server_id

    vim.stop_server(server_id, graceful_timeout=30)
    assert vim.get_server(server_id).status == "SHUTOFF"
    vim.stop_server(server_id, graceful_timeout=30)  # already stopped: no error
    vim.start_server(server_id)
    assert vim.get_server(server_id).status == "ACTIVE"

    vim.delete_server(server_id, wait=True)
    with pytest.raises(VimNotFound):
        vim.get_server(server_id)
    vim.delete_server(server_id)  # already gone: no error
    assert [p.id for p in vim.find_ports(instance_id)] == [port_id]  # our port outlives the server


def test_server_too_big_for_any_host_fails_with_no_valid_host(
        vim: OpenStackVim, network: str, instance_id: str, boot_image: str, private_flavors: list[str]) -> None:
    huge = vim.ensure_flavor(1, 16384, 1)  # a test bed host has 8 GB
    private_flavors.append(huge)
    port_id = vim.create_port(network, instance_id, "cp1")
    server_id = vim.create_server(f"meao-{instance_id}", huge, boot_image, [port_id], instance_id)

    with pytest.raises(NoValidHost) as err:
        vim.wait_server_active(server_id, BOOT_TIMEOUT)

    assert "No valid host was found" in err.value.detail and "smaller flavor" in err.value.detail
    assert err.value.status == 503


def test_server_that_goes_to_error_reports_its_fault(
        vim: OpenStackVim, network: str, instance_id: str, boot_image: str, small_flavor: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1")
    # The test bed's virt driver fails the build of servers named so.
    server_id = vim.create_server(f"testbed-fail-spawn-{instance_id}", small_flavor, boot_image, [port_id],
                                  instance_id)

    with pytest.raises(ServerFault, match="went to ERROR: .*asked to fail this boot") as err:
        vim.wait_server_active(server_id, BOOT_TIMEOUT)

    assert vim.get_server(server_id).status == "ERROR"
    assert "delete it and instantiate again" in err.value.detail


def test_instance_quota_exceeded_is_reported_as_quota_error(
        vim: OpenStackVim, admin: openstack.connection.Connection, network: str, instance_id: str,
        boot_image: str, small_flavor: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1")
    in_use = admin.compute.get_quota_set(vim.project_id, usage=True).usage["instances"]
    with (_compute_quota(admin, vim.project_id, instances=in_use),
          pytest.raises(QuotaExceeded, match="(?i)quota exceeded for instances")):
        vim.create_server(f"meao-{instance_id}", small_flavor, boot_image, [port_id], instance_id)
    assert vim.find_servers(instance_id) == []


def test_waiting_past_the_timeout_raises_vim_timeout(
        vim: OpenStackVim, network: str, instance_id: str, boot_image: str, small_flavor: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1")
    server_id = vim.create_server(f"meao-{instance_id}", small_flavor, boot_image, [port_id], instance_id)

    with pytest.raises(VimTimeout, match="after 0 s"):
        vim.wait_server_active(server_id, timeout=0.2)


def test_unknown_server_raises_not_found(vim: OpenStackVim) -> None:
    with pytest.raises(VimNotFound, match="not found"):
        vim.get_server(str(uuid.uuid4()))


# ---------------------------------------------------------------------------------------- capacity
def test_capacity_reports_each_zone_and_shrinks_when_a_server_boots(
        vim: OpenStackVim, network: str, instance_id: str, boot_image: str, private_flavors: list[str]) -> None:
    flavor = vim.ensure_flavor(1, 512, 1)
    private_flavors.append(flavor)
    before = vim.capacity()
    assert {"az1", "az2"} <= set(before.zones)
    assert all(h.max_ram_mb >= 7680 for h in before.hosts)
    assert not before.fits(1, 16384, 1)  # larger than any host
    assert before.fits(1, 512, 1, availability_zone="az1")

    port_id = vim.create_port(network, instance_id, "cp1")
    server_id = vim.create_server(f"meao-{instance_id}", flavor, boot_image, [port_id], instance_id,
                                  availability_zone="az1")
    vim.wait_server_active(server_id, BOOT_TIMEOUT)
    after = vim.capacity()

    # The hosts are shared with other projects: ours shows at least; the quota is ours alone.
    assert after.zones["az1"].ram_mb <= before.zones["az1"].ram_mb - 512
    assert after.zones["az1"].vcpu <= before.zones["az1"].vcpu - 1
    assert after.quota.instances == before.quota.instances - 1  # type: ignore[operator]
    assert after.quota.vcpu == before.quota.vcpu - 1  # type: ignore[operator]
    assert after.quota.ram_mb == before.quota.ram_mb - 512  # type: ignore[operator]
    assert after.quota.ports == before.quota.ports - 1  # type: ignore[operator]


# ------------------------------------------------------------------------------- sweep and registry
def test_sweep_reports_resources_of_unknown_instances_only(
        vim: OpenStackVim, network: str, instance_id: str, boot_image: str, small_flavor: str) -> None:
    port_id = vim.create_port(network, instance_id, "cp1")
    server_id = vim.create_server(f"meao-{instance_id}", small_flavor, boot_image, [port_id], instance_id)
    vim.wait_server_active(server_id, BOOT_TIMEOUT)

    unknown = vim.sweep(known_instance_ids=[], known_package_ids=["pkg-test-boot"])
    assert {(i.kind, i.id) for i in unknown.items} >= {("server", server_id), ("port", port_id)}
    known = vim.sweep(known_instance_ids=[instance_id], known_package_ids=["pkg-test-boot"])
    assert server_id not in {i.id for i in known.items} and port_id not in {i.id for i in known.items}
    assert ("image", boot_image) in {(i.kind, i.id) for i in vim.sweep([instance_id]).items}


def test_get_vim_gives_one_driver_per_cloud_entry_with_reused_connections(clouds_yaml: Path) -> None:
    demo = get_vim("demo", str(clouds_yaml))
    assert get_vim("demo", str(clouds_yaml)) is demo
    assert get_vim("admin", str(clouds_yaml)) is not demo
    conn = demo._conn
    demo.capacity()
    demo.find_ports(str(uuid.uuid4()))
    assert demo._conn is conn


def test_unreachable_cloud_raises_vim_unavailable(tmp_path: Path) -> None:
    config = tmp_path / "clouds.yaml"
    config.write_text("clouds:\n  gone:\n    auth: {auth_url: 'http://127.0.0.1:9/v3', username: u, password: p,"
                      " project_name: p, user_domain_name: Default, project_domain_name: Default}\n")
    vim = OpenStackVim("gone", str(config))
    with pytest.raises(VimError, match="cannot reach the VIM") as err:
        vim.find_ports("x")
    assert err.value.status == 503
