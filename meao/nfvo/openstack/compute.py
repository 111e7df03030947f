"""Nova: flavors made and shared per project, servers booted, waited for, stopped, started, deleted."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from openstack import exceptions as os_exc

from meao.nfvo.openstack.base import ALL_FLAVORS, CloudParts
from meao.nfvo.server_watch import GONE, Gone
from meao.nfvo.vim import (
    FLAVOR_PREFIX,
    INSTANCE_METADATA_KEY,
    NoValidHost,
    ServerFault,
    ServerInfo,
    VimNotFound,
    VimTimeout,
    flavor_name,
)


class Compute(CloudParts):
    """Flavor and server methods of the driver."""

    def ensure_flavor(self, vcpu: int, ram_mb: int, disk_gb: int) -> str:
        name = flavor_name(vcpu, ram_mb, disk_gb)
        with self._do(f"finding a flavor of {vcpu} vCPU, {ram_mb} MB, {disk_gb} GB"):
            for flavor in self._admin.compute.flavors(details=True, is_public=ALL_FLAVORS):
                exact = (flavor.vcpus == vcpu and flavor.ram == ram_mb and flavor.disk == disk_gb
                         and not flavor.ephemeral and not flavor.swap and not flavor.is_disabled)
                if exact and (flavor.is_public or flavor.name == name):
                    if not flavor.is_public:
                        self._grant_flavor(flavor)
                    return flavor.id
        with self._do(f"creating flavor {name}"):
            try:
                flavor = self._admin.compute.create_flavor(name=name, vcpus=vcpu, ram=ram_mb, disk=disk_gb,
                                                           is_public=False)
            except os_exc.ConflictException:  # another worker created it just now
                flavor = self._admin.compute.find_flavor(name, ignore_missing=False, is_public=ALL_FLAVORS)
            self._grant_flavor(flavor)
            return flavor.id

    def _grant_flavor(self, flavor: Any) -> None:
        project = self._conn.current_project_id
        access = {a["tenant_id"] for a in self._admin.compute.get_flavor_access(flavor)}
        if project not in access:
            with contextlib.suppress(os_exc.ConflictException):
                self._admin.compute.flavor_add_tenant_access(flavor, project)

    def flavor_exists(self, flavor_id: str) -> bool:
        with self._do(f"looking up flavor {flavor_id}"):
            return self._admin.compute.find_flavor(flavor_id, ignore_missing=True, is_public=ALL_FLAVORS) is not None

    def release_flavor(self, flavor_id: str) -> bool:
        with self._do(f"releasing flavor {flavor_id}"):
            flavor = self._admin.compute.find_flavor(flavor_id, ignore_missing=True, is_public=ALL_FLAVORS)
            if flavor is None or flavor.is_public or not flavor.name.startswith(FLAVOR_PREFIX):
                return False
            if next(iter(self._admin.compute.servers(all_projects=True, flavor=flavor.id)), None):
                return False
            self._admin.compute.delete_flavor(flavor, ignore_missing=True)
            return True

    def create_server(self, name: str, flavor_id: str, image_id: str, port_ids: Sequence[str],
                      instance_id: str, availability_zone: str | None = None, user_data: str | None = None) -> str:
        attrs: dict[str, Any] = {
            "name": name, "flavor_id": flavor_id, "image_id": image_id,
            "networks": [{"port": p} for p in port_ids], "metadata": {INSTANCE_METADATA_KEY: instance_id},
        }
        if availability_zone:
            attrs["availability_zone"] = availability_zone
        if user_data is not None:  # Nova wants it base64-encoded (compute API, create server)
            attrs["user_data"] = base64.b64encode(user_data.encode()).decode()
        with self._do(f"creating server {name}"):
            return self._conn.compute.create_server(**attrs).id

    def find_servers(self, instance_id: str) -> list[ServerInfo]:
        with self._do(f"listing servers of app instance {instance_id}"):
            return [self._server_info(s) for s in self._conn.compute.servers(details=True)
                    if (s.metadata or {}).get(INSTANCE_METADATA_KEY) == instance_id]

    def get_server(self, server_id: str) -> ServerInfo:
        with self._do(f"reading server {server_id}"):
            return self._server_info(self._conn.compute.get_server(server_id))

    @staticmethod
    def _server_info(server: Any) -> ServerInfo:
        fault = (server.fault or {}).get("message") if server.fault else None
        return ServerInfo(id=server.id, name=server.name, status=server.status,
                          availability_zone=server.availability_zone,
                          instance_id=(server.metadata or {}).get(INSTANCE_METADATA_KEY), fault=fault)

    def _wait_status(self, server_id: str, status: str, timeout: float, action: str) -> ServerInfo:
        with self._do(action):
            reached, server = self._watch.wait(
                server_id, lambda: self._read_server(server_id),
                {status}, {"ERROR", "DELETED"}, timeout)
            if not reached:
                current = self._conn.compute.get_server(server_id)
                raise VimTimeout(f"{action} at VIM '{self.cloud_name}': server {server_id} still "
                                 f"{current.status} (task {current.task_state}) after {timeout:.0f} s; "
                                 f"retry later or delete it and instantiate again.")
            if server.status == "DELETED":
                raise VimNotFound(f"{action} at VIM '{self.cloud_name}': server {server_id} was deleted meanwhile, "
                                  "outside meao; instantiate again")
            if server.status == "ERROR":
                self._raise_fault(self._conn.compute.get_server(server_id))
            return self._server_info(server)

    def _raise_fault(self, server: Any) -> None:
        fault = server.fault or {}
        message = fault.get("message") or "no fault message"
        if "no valid host" in message.lower():
            raise NoValidHost(f"server {server.name} ({server.id}) at VIM '{self.cloud_name}': no compute "
                              f"host can take it ({message}); choose a smaller flavor, another "
                              f"availability zone or MEC host, or free capacity.")
        raise ServerFault(f"server {server.name} ({server.id}) at VIM '{self.cloud_name}' went to ERROR: "
                          f"{message} (code {fault.get('code', '?')}); delete it and instantiate again, "
                          f"or ask the PoP operator to check nova-compute.")

    def wait_server_active(self, server_id: str, timeout: float) -> ServerInfo:
        return self._wait_status(server_id, "ACTIVE", timeout, f"waiting for server {server_id} to be ACTIVE")

    def stop_server(self, server_id: str, graceful_timeout: float) -> None:
        # Nova's stop is the ACPI shutdown, and Nova powers the guest off by force when it has not
        # stopped within its shutdown timeout (image property os_shutdown_timeout). We give Nova that
        # long plus a margin for the forced power-off before calling the stop failed.
        with self._do(f"stopping server {server_id}"):
            server = self._conn.compute.get_server(server_id)
            if server.status == "SHUTOFF":
                return
            self._conn.compute.stop_server(server)
        self._wait_status(server_id, "SHUTOFF", graceful_timeout + 60, f"stopping server {server_id}")

    def start_server(self, server_id: str, timeout: float = 120) -> None:
        with self._do(f"starting server {server_id}"):
            server = self._conn.compute.get_server(server_id)
            if server.status == "ACTIVE":
                return
            self._conn.compute.start_server(server)
        self._wait_status(server_id, "ACTIVE", timeout, f"starting server {server_id}")

    def delete_server(self, server_id: str, wait: bool = True, timeout: float = 120,
                      claimed: bool = False) -> None:
        with self._do(f"deleting server {server_id}"):
            if not claimed:
                self._wait_claimed(server_id, timeout)
            self._conn.compute.delete_server(server_id, ignore_missing=True)
            if wait:
                self._wait_gone(server_id, timeout)

    def _wait_claimed(self, server_id: str, timeout: float) -> None:
        """Until a compute host has claimed a server still being scheduled (or ``timeout``), so that its delete
        is the compute host's: that one unbinds the ports before the server disappears.

        Deleted while no host has claimed it, a server is removed by nova-api at once (404), yet the
        compute host the conductor has already sent it to claims it, binds its ports
        (``device_owner=compute:nova``) and unbinds them only when it notices the server is gone, a few
        hundred ms later; a member's delete of such a port meanwhile is refused (403).
        """
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            server = self._read_server(server_id)
            if server is None or server.status != "BUILD" or server.task_state not in (None, "scheduling"):
                return
            if time.monotonic() > deadline:
                return  # stuck in scheduling: delete it anyway; the ports' release is still waited for
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)

    def _read_server(self, server_id: str) -> Any:
        """The server now, or None when Nova answers 404 (one GET; find_server would list by name too)."""
        try:
            return self._conn.compute.get_server(server_id)
        except os_exc.NotFoundException:
            return None

    def _wait_gone(self, server_id: str, timeout: float) -> None:
        # Gone means the API answers 404 (or Nova said instance.delete.end, which follows the row's
        # deletion). A poll may show status DELETED a moment before that, so it is checked with a GET.
        deadline = time.monotonic() + timeout
        pause = 0.02  # status DELETED to 404 is the last write of Nova's delete: short pauses
        while True:
            left = deadline - time.monotonic()
            reached, server = self._watch.wait(
                server_id, lambda: self._read_server(server_id),
                {GONE}, set(), max(0.0, left))
            if reached and (isinstance(server, Gone)
                            or self._read_server(server_id) is None):
                return
            if time.monotonic() > deadline:
                raise os_exc.ResourceTimeout(f"server {server_id} still exists after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

