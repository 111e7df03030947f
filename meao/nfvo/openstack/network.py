"""Neutron: ports tagged with their app instance, on networks looked up by name once."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openstack import exceptions as os_exc

from meao import faults
from meao.nfvo.openstack.base import CloudParts
from meao.nfvo.vim import (
    INSTANCE_TAG_PREFIX,
    OWNER_TAG,
    FixedIp,
    PortInfo,
    VimNotFound,
    VimTimeout,
    instance_tag,
    port_name,
)


def port_info(port: Any, instance_id: str | None = None) -> PortInfo:
    """A Neutron port as the VIM interface describes it (``instance_id`` when its tag is missing)."""
    instance = next((t[len(INSTANCE_TAG_PREFIX):] for t in port.tags or []
                     if t.startswith(INSTANCE_TAG_PREFIX)), instance_id)
    return PortInfo(id=port.id, name=port.name, network_id=port.network_id, status=port.status,
                    fixed_ips=tuple(ip["ip_address"] for ip in port.fixed_ips or []),
                    port_security=bool(port.is_port_security_enabled), instance_id=instance,
                    security_group_ids=tuple(port.security_group_ids or ()))


class Network(CloudParts):
    """Port methods of the driver."""

    def create_port(self, network: str, instance_id: str, name: str,
                    fixed_ips: Sequence[FixedIp] | None = None, port_security: bool = True) -> str:
        pname = port_name(instance_id, name)
        tags = [OWNER_TAG, instance_tag(instance_id)]
        with self._do(f"creating port {pname} on network {network}"):
            # tags in the body: a Neutron that takes them at creation saves the PUT below
            attrs: dict[str, Any] = {"name": pname, "is_port_security_enabled": port_security, "tags": tags}
            if not port_security:
                attrs["security_group_ids"] = []
            if fixed_ips:
                attrs["fixed_ips"] = [{"ip_address": ip} if isinstance(ip, str) else dict(ip)
                                      for ip in fixed_ips]
            try:
                port = self._conn.network.create_port(network_id=self._network_id(network), **attrs)
            except os_exc.NotFoundException:  # the network was replaced since we looked it up
                self._network_ids.pop(network, None)
                port = self._conn.network.create_port(network_id=self._network_id(network), **attrs)
            faults.point("vim:port-created")
            if set(tags) <= set(port.tags or []):
                return port.id
            try:
                self._conn.network.set_tags(port, tags)
            except Exception:
                self._conn.network.delete_port(port, ignore_missing=True)
                raise
            return port.id

    def _network_id(self, network: str) -> str:
        cached = self._network_ids.get(network)
        if cached:
            return cached
        net = self._conn.network.find_network(network, ignore_missing=True)
        if net is None:
            raise VimNotFound(f"network '{network}' does not exist at VIM '{self.cloud_name}'; name an "
                              f"existing network in the MEC host configuration or the instantiate request.")
        self._network_ids[network] = net.id
        return net.id

    def find_ports(self, instance_id: str, names: Sequence[str] = ()) -> list[PortInfo]:
        def named(name: str) -> list[Any]:
            with self._do(f"looking up port {name}"):
                return list(self._conn.network.ports(name=name))

        # the tag query and one query per name, all at once: none waits for another
        with ThreadPoolExecutor(max_workers=1 + len(names)) as pool:
            by_name = [pool.submit(contextvars.copy_context().run, named, name) for name in names]
            found = {p.id: port_info(p) for p in self._with_tag(instance_id)}
            for future in by_name:
                found.update({p.id: port_info(p, instance_id) for p in future.result() if p.id not in found})
        return list(found.values())

    def _with_tag(self, instance_id: str) -> list[Any]:
        with self._do(f"listing ports of app instance {instance_id}"):
            return list(self._conn.network.ports(tags=instance_tag(instance_id)))

    def delete_port(self, port_id: str, release_timeout: float = 30.0) -> None:
        """Delete a port; one Nova still binds to a server it has deleted is deleted once Nova lets it go.

        Nova's compute host unbinds a deleted server's ports (``device_id``/``device_owner`` cleared)
        before the server disappears, so a port is normally free once its server is gone. Not always: a
        server deleted before a compute host claimed it is removed by nova-api at once, while the host then
        binds its ports and unbinds them a few hundred ms later; a compute host that cannot reach Neutron
        leaves them bound. A member's delete of a bound port is refused (403): only then is the port
        watched until it is released, so the usual delete costs one request.
        """
        with self._do(f"deleting port {port_id}"):
            try:
                self._conn.network.delete_port(port_id, ignore_missing=True)
                return
            except os_exc.ForbiddenException:
                if not self._wait_port_released(port_id, release_timeout):
                    raise
            self._conn.network.delete_port(port_id, ignore_missing=True)

    def _wait_port_released(self, port_id: str, timeout: float) -> bool:
        """Until Nova no longer binds the port (True), or at once False when it is not bound: the refusal
        had another cause. VimTimeout when Nova keeps it bound for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        pause = self.poll_min_s
        waited = False
        while True:
            try:
                port = self._conn.network.get_port(port_id)
            except os_exc.NotFoundException:
                port = None
            if port is None or not (port.device_owner or "").startswith("compute:"):
                return waited or port is None
            if time.monotonic() > deadline:
                raise VimTimeout(f"port {port_id} at VIM '{self.cloud_name}' is still bound to server "
                                 f"{port.device_id}, which was deleted, after {timeout:.0f} s: nova-compute did "
                                 "not release it; retry later, or ask the PoP operator to check nova-compute.")
            waited = True
            time.sleep(pause)
            pause = min(pause * 1.5, self.poll_s)
