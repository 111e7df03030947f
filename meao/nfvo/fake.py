"""An in-memory :class:`Vim` for unit tests of code above the VIM adapter (no OpenStack needed).

It keeps the same conventions and raises the same errors as the OpenStack driver for the cases
callers handle: NoValidHost when no host fits, QuotaExceeded past the quotas, VimNotFound for
unknown ids. Servers go ACTIVE at once; ``fail_next_boot`` makes the next one go to ERROR.
An image is listed as ``saving`` while its data streams in, like Glance's record of an upload.
Security groups behave as Neutron's: a port with port security starts on the project's default group,
a new group allows all egress (IPv4 and IPv6) and nothing in, and a group a port uses cannot be deleted.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from meao.nfvo.vim import (
    Capacity,
    Checksum,
    ComputeNodeCapacity,
    FixedIp,
    ImageSpec,
    Leftover,
    Leftovers,
    NoValidHost,
    OpenStream,
    PortInfo,
    PortSecurityDisabled,
    QuotaExceeded,
    QuotaHeadroom,
    ServerFault,
    ServerInfo,
    SgRule,
    Vim,
    VimError,
    VimNotFound,
    flavor_name,
    port_name,
    security_group_name,
)

EGRESS_DEFAULTS = (SgRule("egress", "IPv4"), SgRule("egress", "IPv6"))


@dataclass
class _Image:
    id: str
    name: str
    checksum: str
    packages: set[str] = field(default_factory=set)
    status: str = "active"  # "saving" while the data streams in


@dataclass
class _Flavor:
    id: str
    name: str
    vcpu: int
    ram_mb: int
    disk_gb: int
    public: bool


@dataclass
class _SecurityGroup:
    id: str
    name: str
    instance_id: str | None  # None for the project's default group
    rules: list[SgRule] = field(default_factory=lambda: list(EGRESS_DEFAULTS))


@dataclass
class _Host:
    name: str
    zone: str
    vcpu: int
    ram_mb: int
    disk_gb: int


class FakeVim(Vim):
    """A PoP in memory: hosts of a given size per availability zone, quotas, and meao's resources."""

    process_local = True  # each process has its own PoP: another process's ports are unknown here

    def __init__(self, hosts: Sequence[tuple[str, str, int, int, int]] = (
                     ("compute1", "az1", 8, 7680, 1028), ("compute2", "az2", 8, 7680, 1028)),
                 quota_instances: int | None = 10, quota_vcpu: int | None = 20,
                 quota_ram_mb: int | None = 51200, quota_ports: int | None = 100,
                 networks: Iterable[str] = ("net1",), cloud_name: str = "fake") -> None:
        self.cloud_name = cloud_name
        self._lock = threading.Lock()
        self.hosts = [_Host(*h) for h in hosts]
        self.quota = QuotaHeadroom(quota_instances, quota_vcpu, quota_ram_mb, quota_ports)
        self.networks = set(networks)
        self.images: dict[str, _Image] = {}
        self.flavors: dict[str, _Flavor] = {}
        self.ports: dict[str, PortInfo] = {}
        self.user_data: dict[str, str | None] = {}  # server id → its boot data
        self.servers: dict[str, tuple[ServerInfo, _Flavor, str | None]] = {}  # info, flavor, host
        self.fail_next_boot: str | None = None  # fault message for the next server
        default = _SecurityGroup(str(uuid.uuid4()), "default", None)
        self.default_security_group_id = default.id
        self.security_groups: dict[str, _SecurityGroup] = {default.id: default}

    # images
    def ensure_image(self, image: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        with self._lock:
            existing = next((i for i in self.images.values() if i.checksum == image.checksum.key), None)
            if existing is not None and existing.status != "active":
                # as the OpenStack driver does: a record without data is taken for a dead upload
                del self.images[existing.id]
                existing = None
            if existing is not None:
                existing.packages.add(package_id)
                return existing.id
            img = _Image(str(uuid.uuid4()), image.name, image.checksum.key, {package_id}, status="saving")
            self.images[img.id] = img  # listed while the data streams, as Glance lists a queued image
        return self._upload(img, image, open_stream)

    def _upload(self, img: _Image, image: ImageSpec, open_stream: OpenStream) -> str:
        digest = hashlib.new(image.checksum.algorithm.lower().replace("-", ""))
        with open_stream() as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        with self._lock:
            if self.images.get(img.id) is not img:
                raise VimNotFound(f"image {image.name} ({img.id}) was deleted while its data was uploaded")
            if digest.hexdigest() != image.checksum.hash.lower():
                del self.images[img.id]
                raise VimError(f"image {image.name}: data does not match its checksum", status=422)
            img.status = "active"
        return img.id

    def find_image_by_checksum(self, checksum: Checksum) -> str | None:
        return next((i.id for i in self.images.values()
                     if i.checksum == checksum.key and i.status == "active"), None)

    def release_image(self, image_id: str, package_id: str) -> bool:
        img = self.images.get(image_id)
        if img is None:
            return False
        img.packages.discard(package_id)
        if img.packages:
            return False
        del self.images[image_id]
        return True

    # flavors
    def ensure_flavor(self, vcpu: int, ram_mb: int, disk_gb: int) -> str:
        name = flavor_name(vcpu, ram_mb, disk_gb)
        for f in self.flavors.values():
            if (f.vcpu, f.ram_mb, f.disk_gb) == (vcpu, ram_mb, disk_gb) and (f.public or f.name == name):
                return f.id
        f = _Flavor(str(uuid.uuid4()), name, vcpu, ram_mb, disk_gb, public=False)
        self.flavors[f.id] = f
        return f.id

    def flavor_exists(self, flavor_id: str) -> bool:
        return flavor_id in self.flavors

    def release_flavor(self, flavor_id: str) -> bool:
        f = self.flavors.get(flavor_id)
        if f is None or f.public or any(fl.id == flavor_id for _, fl, _ in self.servers.values()):
            return False
        del self.flavors[flavor_id]
        return True

    # ports
    def create_port(self, network: str, instance_id: str, name: str,
                    fixed_ips: Sequence[FixedIp] | None = None, port_security: bool = True) -> str:
        if network not in self.networks:
            raise VimNotFound(f"network '{network}' does not exist at the fake VIM")
        if self.quota.ports is not None and len(self.ports) >= self.quota.ports:
            raise QuotaExceeded("quota exceeded for ports at the fake VIM")
        ips = tuple(ip if isinstance(ip, str) else ip.get("ip_address", "") for ip in fixed_ips or ())
        port = PortInfo(str(uuid.uuid4()), port_name(instance_id, name), network, "DOWN", ips,
                        port_security, instance_id,
                        security_group_ids=(self.default_security_group_id,) if port_security else ())
        self.ports[port.id] = port
        return port.id

    def find_ports(self, instance_id: str, names: Sequence[str] = ()) -> list[PortInfo]:
        return [p for p in self.ports.values() if p.instance_id == instance_id or p.name in names]

    def delete_port(self, port_id: str) -> None:
        self.ports.pop(port_id, None)

    # security groups
    def ensure_app_security_group(self, instance_id: str) -> str:
        with self._lock:
            name = security_group_name(instance_id)
            found = next((g for g in self.security_groups.values()
                          if g.instance_id == instance_id or g.name == name), None)
            if found is None:
                found = _SecurityGroup(str(uuid.uuid4()), name, instance_id)
                self.security_groups[found.id] = found
            return found.id

    def _group(self, sg_id: str) -> _SecurityGroup:
        group = self.security_groups.get(sg_id)
        if group is None:
            raise VimNotFound(f"security group {sg_id} not found at the fake VIM")
        return group

    def sync_security_group_rules(self, sg_id: str, wanted: Sequence[SgRule]) -> None:
        if any(r.direction != "ingress" for r in wanted):
            raise ValueError("sync_security_group_rules manages ingress rules only")
        with self._lock:
            group = self._group(sg_id)
            egress = [r for r in group.rules if r.direction != "ingress"]
            group.rules = egress + sorted(set(wanted), key=lambda r: r.sort_key)

    def security_group_rules(self, sg_id: str) -> list[SgRule]:
        return sorted((r for r in self._group(sg_id).rules if r.direction == "ingress"), key=lambda r: r.sort_key)

    def set_port_security_groups(self, port_id: str, sg_ids: Sequence[str]) -> None:
        with self._lock:
            port = self.ports.get(port_id)
            if port is None:
                raise VimNotFound(f"port {port_id} not found at the fake VIM")
            if not port.port_security:
                raise PortSecurityDisabled(f"port {port.name} ({port_id}) has port security off")
            for sg_id in sg_ids:
                self._group(sg_id)
            self.ports[port_id] = replace(port, security_group_ids=tuple(dict.fromkeys(sg_ids)))

    def delete_app_security_group(self, instance_id: str, port_ids: Sequence[str]) -> None:
        with self._lock:
            name = security_group_name(instance_id)
            ids = {g.id for g in self.security_groups.values() if g.instance_id == instance_id or g.name == name}
            if not ids:
                return
            for port in list(self.ports.values()):  # port_ids and any other port that uses the group
                if not ids & set(port.security_group_ids):
                    continue
                keep = tuple(s for s in port.security_group_ids if s not in ids)
                if not keep and port.port_security:
                    keep = (self.default_security_group_id,)
                self.ports[port.id] = replace(port, security_group_ids=keep)
            for sg_id in ids:
                del self.security_groups[sg_id]

    # servers
    def create_server(self, name: str, flavor_id: str, image_id: str, port_ids: Sequence[str],
                      instance_id: str, availability_zone: str | None = None, user_data: str | None = None) -> str:
        with self._lock:
            flavor = self.flavors.get(flavor_id)
            if flavor is None or image_id not in self.images:
                raise VimNotFound(f"flavor {flavor_id} or image {image_id} not found at the fake VIM")
            if self.quota.instances is not None and len(self.servers) >= self.quota.instances:
                raise QuotaExceeded("quota exceeded for instances at the fake VIM")
            host = self._place(flavor, availability_zone)
            server = ServerInfo(str(uuid.uuid4()), name, "ACTIVE", availability_zone or "nova", instance_id)
            if self.fail_next_boot is not None:
                server = replace(server, status="ERROR", fault=self.fail_next_boot)
                self.fail_next_boot, host = None, None
            elif host is None:
                server = replace(server, status="ERROR", fault="No valid host was found.")
            else:
                server = replace(server, availability_zone=host.zone)
                host.vcpu, host.ram_mb, host.disk_gb = (host.vcpu - flavor.vcpu, host.ram_mb - flavor.ram_mb,
                                                        host.disk_gb - flavor.disk_gb)
            self.servers[server.id] = (server, flavor, host.name if host else None)
            self.user_data[server.id] = user_data
            for pid in port_ids:
                if pid in self.ports:
                    self.ports[pid] = replace(self.ports[pid], status="ACTIVE")
            return server.id

    def _place(self, flavor: _Flavor, zone: str | None) -> _Host | None:
        return next((h for h in self.hosts if (zone is None or h.zone == zone) and h.vcpu >= flavor.vcpu
                     and h.ram_mb >= flavor.ram_mb and h.disk_gb >= flavor.disk_gb), None)

    def find_servers(self, instance_id: str) -> list[ServerInfo]:
        return [s for s, _, _ in self.servers.values() if s.instance_id == instance_id]

    def get_server(self, server_id: str) -> ServerInfo:
        if server_id not in self.servers:
            raise VimNotFound(f"server {server_id} not found at the fake VIM")
        return self.servers[server_id][0]

    def wait_server_active(self, server_id: str, timeout: float) -> ServerInfo:
        server = self.get_server(server_id)
        if server.status == "ERROR":
            if "no valid host" in (server.fault or "").lower():
                raise NoValidHost(f"server {server.name}: {server.fault}")
            raise ServerFault(f"server {server.name} went to ERROR: {server.fault}")
        return server

    def _set_status(self, server_id: str, status: str) -> None:
        server, flavor, host = self.servers[server_id]
        self.servers[server_id] = (replace(server, status=status), flavor, host)

    def stop_server(self, server_id: str, graceful_timeout: float) -> None:
        self.get_server(server_id)
        self._set_status(server_id, "SHUTOFF")

    def start_server(self, server_id: str, timeout: float = 120) -> None:
        self.get_server(server_id)
        self._set_status(server_id, "ACTIVE")

    def delete_server(self, server_id: str, wait: bool = True, timeout: float = 120,
                      claimed: bool = False) -> None:
        with self._lock:
            entry = self.servers.pop(server_id, None)
            if entry is None:
                return
            _, flavor, host_name = entry
            for h in self.hosts:
                if h.name == host_name:
                    h.vcpu, h.ram_mb, h.disk_gb = (h.vcpu + flavor.vcpu, h.ram_mb + flavor.ram_mb,
                                                   h.disk_gb + flavor.disk_gb)

    # capacity and ownership
    def capacity(self) -> Capacity:
        used = [f for _, f, _ in self.servers.values()]

        def left(limit: int | None, n: int) -> int | None:
            return None if limit is None else max(limit - n, 0)

        q = self.quota
        return Capacity(
            hosts=tuple(ComputeNodeCapacity(h.name, h.zone, h.vcpu, h.ram_mb, h.disk_gb, h.vcpu, h.ram_mb, h.disk_gb)
                        for h in self.hosts),
            quota=QuotaHeadroom(left(q.instances, len(used)), left(q.vcpu, sum(f.vcpu for f in used)),
                                left(q.ram_mb, sum(f.ram_mb for f in used)), left(q.ports, len(self.ports))))

    def sweep(self, known_instance_ids: Iterable[str], known_package_ids: Iterable[str] = ()) -> Leftovers:
        known, packages = set(known_instance_ids), set(known_package_ids)
        used = {f.id for _, f, _ in self.servers.values()}
        items = [Leftover("server", s.id, s.name, "unknown app instance")
                 for s, _, _ in self.servers.values() if s.instance_id not in known]
        items += [Leftover("port", p.id, p.name, "unknown app instance")
                  for p in self.ports.values() if p.instance_id not in known]
        items += [Leftover("security_group", g.id, g.name, "unknown app instance")
                  for g in self.security_groups.values() if g.instance_id is not None and g.instance_id not in known]
        items += [Leftover("flavor", f.id, f.name, "no server uses it")
                  for f in self.flavors.values() if not f.public and f.id not in used]
        items += [Leftover("image", i.id, i.name, "no known package uses it")
                  for i in self.images.values() if not i.packages & packages]
        return Leftovers(tuple(items))
