"""The OpenStack driver of :class:`meao.nfvo.vim.Vim`, on openstacksdk.

One :class:`OpenStackVim` per ``clouds.yaml`` entry (see :func:`get_vim`), holding its connections
for its lifetime. Project-scoped work (images, ports, servers) runs with the entry's own credentials;
privileged calls (creating flavors, reading Placement, listing every server for a flavor) use the
entry named by its ``meao_admin_cloud`` key, or the same credentials when it has none.
Every OpenStack failure leaves this module as a :class:`VimError` subclass.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import openstack
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc
from openstack.config import loader

from meao.catalogue.appd import Checksum
from meao.logs import openstack_request_id
from meao.nfvo import capacity as cap
from meao.nfvo.server_watch import ServerWatch
from meao.nfvo.vim import (
    CHECKSUM_TAG_PREFIX,
    FLAVOR_PREFIX,
    INSTANCE_METADATA_KEY,
    INSTANCE_TAG_PREFIX,
    OWNER_TAG,
    PACKAGE_TAG_PREFIX,
    Capacity,
    FixedIp,
    ImageSpec,
    Leftover,
    Leftovers,
    NoValidHost,
    OpenStream,
    PortInfo,
    QuotaExceeded,
    ServerFault,
    ServerInfo,
    Vim,
    VimError,
    VimNotConfigured,
    VimNotFound,
    VimTimeout,
    VimUnavailable,
    flavor_name,
    instance_tag,
    port_name,
)

log = logging.getLogger(__name__)

ADMIN_CLOUD_KEY = "meao_admin_cloud"
_CHUNK = 1 << 20
# How often a waiter asks Nova/Glance for a status. Each poll is one GET; half the interval is added to
# every wait on average, so keep it short (MEAO_VIM_POLL_S).
POLL_S = float(os.environ.get("MEAO_VIM_POLL_S", "0.25"))
_ALL_FLAVORS = "none"  # Nova lists private flavors too (for admins) only when asked with "none"


# ------------------------------------------------------------------------------ error translation
def _message(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return str(details or exc).strip()


def _is_quota(exc: Exception) -> bool:
    text = _message(exc).lower() + str(exc).lower()
    return "quota" in text or getattr(exc, "status_code", None) == 413


@contextlib.contextmanager
def _translated(cloud: str, action: str) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth failures of ``action`` into meao's VIM errors."""
    where = f"{action} at VIM '{cloud}'"
    try:
        yield
    except VimError:
        raise
    except os_exc.ResourceTimeout as exc:
        raise VimTimeout(f"{where} timed out ({exc}); the VIM may be overloaded: retry the operation "
                         f"later or raise the timeout.") from exc
    except os_exc.NotFoundException as exc:
        raise VimNotFound(f"{where}: not found ({_message(exc)}); it was deleted outside meao or the "
                          f"id is wrong: re-run the operation so meao recreates or forgets it.") from exc
    except os_exc.HttpException as exc:
        if exc.status_code in (403, 409, 413) and _is_quota(exc):
            raise QuotaExceeded(f"{where} refused: quota exceeded ({_message(exc)}); free resources in "
                                f"the project or ask the PoP operator to raise its quota.") from exc
        if exc.status_code in (502, 503, 504):
            raise VimUnavailable(f"{where}: service unavailable (HTTP {exc.status_code}: "
                                 f"{_message(exc)}); retry when the VIM is back.") from exc
        raise VimError(f"{where} failed: HTTP {exc.status_code}: {_message(exc)}; check the request "
                       f"and the VIM's logs.") from exc
    except (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure) as exc:
        raise VimUnavailable(f"{where}: cannot reach the VIM ({exc}); check its endpoint in "
                             f"clouds.yaml and that its APIs are up.") from exc
    except ksa_exc.Unauthorized as exc:
        raise VimError(f"{where}: authentication failed ({exc}); check the credentials of cloud "
                       f"'{cloud}' in clouds.yaml.") from exc
    except os_exc.ConfigException as exc:
        raise VimNotConfigured(f"{where}: {exc} Add cloud '{cloud}' to clouds.yaml (OS_CLIENT_CONFIG_FILE), "
                               f"or point the MEC host at a cloud it defines.") from exc
    except (os_exc.SDKException, ksa_exc.ClientException) as exc:
        raise VimError(f"{where} failed: {exc}; check the VIM's logs.") from exc


# ------------------------------------------------------------------------------ streaming upload
class _ChecksummingReader:
    """Streams an image file to Glance in chunks, hashing what it sends."""

    def __init__(self, stream: BinaryIO, algorithm: str) -> None:
        self._stream = stream
        self._hash = hashlib.new(algorithm)
        self.sent = 0

    def read(self, size: int = _CHUNK) -> bytes:
        data = self._stream.read(size if size and size > 0 else _CHUNK)
        self._hash.update(data)
        self.sent += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(_CHUNK):
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _hashlib_name(algorithm: str) -> str:
    """SOL 001 writes "sha-256"; hashlib wants "sha256"."""
    name = algorithm.lower().replace("-", "").replace("_", "")
    if name not in hashlib.algorithms_available:
        raise VimError(f"checksum algorithm '{algorithm}' is not supported; use sha-256 or sha-512 in "
                       f"the AppD's swImageDescriptor.", status=422, title="Unsupported checksum")
    return name


# ------------------------------------------------------------------------------ the driver
class OpenStackVim(Vim):
    """A PoP's OpenStack, reached through one ``clouds.yaml`` entry."""

    def __init__(self, cloud_name: str, config_file: str | None = None) -> None:
        self.cloud_name = cloud_name
        self._config_file = config_file
        with _translated(cloud_name, "connecting"):
            self._conn = self._connect(cloud_name)
            self._watch = ServerWatch(self._conn, POLL_S)  # one status poll per round for all waiting jobs
            admin_cloud = self._conn.config.config.get(ADMIN_CLOUD_KEY)
            self._admin = self._connect(admin_cloud) if admin_cloud else self._conn
        self._network_ids: dict[str, str] = {}  # network name or id -> id, dropped when a port create 404s

    def _connect(self, cloud: str) -> openstack.connection.Connection:
        files = [self._config_file] if self._config_file else None
        config = loader.OpenStackConfig(config_files=files) if files else loader.OpenStackConfig()
        return _TracedConnection(config=config.get_one(cloud=cloud))

    def _do(self, action: str) -> contextlib.AbstractContextManager[None]:
        return _translated(self.cloud_name, action)

    @property
    def project_id(self) -> str:
        with self._do("reading the project"):
            return self._conn.current_project_id

    # ---------------------------------------------------------------- images
    def find_image_by_checksum(self, checksum: Checksum) -> str | None:
        image = self._image_with_checksum(checksum, active_only=True)
        return image.id if image else None

    def _image_with_checksum(self, checksum: Checksum, active_only: bool) -> Any:
        with self._do("looking up images by checksum"):
            for image in self._conn.image.images(tag=[OWNER_TAG, CHECKSUM_TAG_PREFIX + checksum.key]):
                if image.owner == self._conn.current_project_id and (
                        image.status == "active" or not active_only):
                    return image
        return None

    def ensure_image(self, image: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        existing = self._image_with_checksum(image.checksum, active_only=False)
        if existing is not None and existing.status != "active":
            # A record without data: an upload that died half-way. Start again.
            log.info("deleting stale %s image %s (%s)", existing.status, existing.name, existing.id)
            self._delete_image(existing.id)
            existing = None
        if existing is not None:
            if PACKAGE_TAG_PREFIX + package_id not in (existing.tags or []):
                with self._do(f"recording package {package_id} on image {existing.id}"):
                    self._conn.image.add_tag(existing, PACKAGE_TAG_PREFIX + package_id)
            return existing.id
        return self._upload(image, open_stream, package_id)

    def _upload(self, spec: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        algorithm = _hashlib_name(spec.checksum.algorithm)
        stream = open_stream()
        reader = _ChecksummingReader(stream, algorithm)
        name = f"{spec.name}-{spec.version}" if spec.version else spec.name
        action = f"uploading image {name}"
        try:
            with self._do(action):
                # openstacksdk deletes the image record itself when the upload fails.
                created = self._conn.image.create_image(
                    name, data=reader, disk_format=spec.disk_format, container_format=spec.container_format,
                    min_disk=spec.min_disk_gb, min_ram=spec.min_ram_mb, size=spec.size_bytes,
                    allow_duplicates=True, disable_vendor_agent=False,
                    tags=[OWNER_TAG, CHECKSUM_TAG_PREFIX + spec.checksum.key, PACKAGE_TAG_PREFIX + package_id],
                    meta={"meao_owned": "true", "meao_checksum": spec.checksum.key,
                          "meao_image_version": spec.version},
                )
        except VimError as exc:
            raise type(exc)(f"{exc.detail} (after {reader.sent} bytes; an interrupted upload leaves no "
                            f"image: onboard the package again)", status=exc.status) from exc
        finally:
            stream.close()
        if reader.hexdigest() != spec.checksum.hash.lower():
            self._delete_image(created.id)
            raise VimError(f"image {name}: the data sent ({reader.sent} bytes) has {spec.checksum.algorithm} "
                           f"{reader.hexdigest()}, not {spec.checksum.hash} as the AppD declares; the "
                           f"package is corrupt or the descriptor wrong.", status=422,
                           title="Image checksum mismatch")
        with self._do(f"waiting for image {name}"):
            active = self._conn.image.wait_for_status(
                self._conn.image.get_image(created.id), "active", failures=["killed", "deleted"], interval=POLL_S, wait=120)
        return active.id

    def release_image(self, image_id: str, package_id: str) -> bool:
        with self._do(f"releasing image {image_id}"):
            image = self._conn.image.find_image(image_id, ignore_missing=True)
            if image is None:
                return False
            tag = PACKAGE_TAG_PREFIX + package_id
            if tag in (image.tags or []):
                self._conn.image.remove_tag(image, tag)
            others = [t for t in image.tags or [] if t.startswith(PACKAGE_TAG_PREFIX) and t != tag]
            if others or OWNER_TAG not in (image.tags or []):
                return False
        self._delete_image(image_id)
        return True

    def _delete_image(self, image_id: str) -> None:
        with self._do(f"deleting image {image_id}"):
            self._conn.image.delete_image(image_id, ignore_missing=True)

    # ---------------------------------------------------------------- flavors
    def ensure_flavor(self, vcpu: int, ram_mb: int, disk_gb: int) -> str:
        name = flavor_name(vcpu, ram_mb, disk_gb)
        with self._do(f"finding a flavor of {vcpu} vCPU, {ram_mb} MB, {disk_gb} GB"):
            for flavor in self._admin.compute.flavors(details=True, is_public=_ALL_FLAVORS):
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
                flavor = self._admin.compute.find_flavor(name, ignore_missing=False, is_public=_ALL_FLAVORS)
            self._grant_flavor(flavor)
            return flavor.id

    def _grant_flavor(self, flavor: Any) -> None:
        project = self._conn.current_project_id
        access = {a["tenant_id"] for a in self._admin.compute.get_flavor_access(flavor)}
        if project not in access:
            with contextlib.suppress(os_exc.ConflictException):
                self._admin.compute.flavor_add_tenant_access(flavor, project)

    def release_flavor(self, flavor_id: str) -> bool:
        with self._do(f"releasing flavor {flavor_id}"):
            flavor = self._admin.compute.find_flavor(flavor_id, ignore_missing=True, is_public=_ALL_FLAVORS)
            if flavor is None or flavor.is_public or not flavor.name.startswith(FLAVOR_PREFIX):
                return False
            if next(iter(self._admin.compute.servers(all_projects=True, flavor=flavor.id)), None):
                return False
            self._admin.compute.delete_flavor(flavor, ignore_missing=True)
            return True

    # ---------------------------------------------------------------- ports
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

    def find_ports(self, instance_id: str) -> list[PortInfo]:
        with self._do(f"listing ports of app instance {instance_id}"):
            return [self._port_info(p) for p in self._conn.network.ports(tags=instance_tag(instance_id))]

    @staticmethod
    def _port_info(port: Any) -> PortInfo:
        instance = next((t[len(INSTANCE_TAG_PREFIX):] for t in port.tags or []
                         if t.startswith(INSTANCE_TAG_PREFIX)), None)
        return PortInfo(id=port.id, name=port.name, network_id=port.network_id, status=port.status,
                        fixed_ips=tuple(ip["ip_address"] for ip in port.fixed_ips or []),
                        port_security=bool(port.is_port_security_enabled), instance_id=instance)

    def delete_port(self, port_id: str) -> None:
        with self._do(f"deleting port {port_id}"):
            self._conn.network.delete_port(port_id, ignore_missing=True)

    # ---------------------------------------------------------------- servers
    def create_server(self, name: str, flavor_id: str, image_id: str, port_ids: Sequence[str],
                      instance_id: str, availability_zone: str | None = None) -> str:
        attrs: dict[str, Any] = {
            "name": name, "flavor_id": flavor_id, "image_id": image_id,
            "networks": [{"port": p} for p in port_ids], "metadata": {INSTANCE_METADATA_KEY: instance_id},
        }
        if availability_zone:
            attrs["availability_zone"] = availability_zone
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
            reached, server = self._watch.wait(self._conn.compute.get_server(server_id), {status},
                                               {"ERROR", "DELETED"}, timeout)
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

    def delete_server(self, server_id: str, wait: bool = True, timeout: float = 120) -> None:
        with self._do(f"deleting server {server_id}"):
            server = self._conn.compute.find_server(server_id, ignore_missing=True)
            if server is None:
                return
            self._conn.compute.delete_server(server, ignore_missing=True)
            if wait:
                self._wait_gone(server_id, timeout)

    def _wait_gone(self, server_id: str, timeout: float) -> None:
        # openstacksdk's wait_for_delete also returns on status DELETED, which Nova reports for a moment
        # before the record disappears; "deleted" here means the API answers 404.
        deadline = time.monotonic() + timeout
        while self._conn.compute.find_server(server_id, ignore_missing=True) is not None:
            if time.monotonic() > deadline:
                raise os_exc.ResourceTimeout(f"server {server_id} still exists after {timeout:.0f} s")
            time.sleep(POLL_S)

    # ---------------------------------------------------------------- capacity
    def capacity(self) -> Capacity:
        with self._do("reading capacity"):
            return Capacity(hosts=tuple(self._host_capacities()), quota=self._quota_headroom())

    def _host_capacities(self) -> Iterator[Any]:
        admin = self._admin
        zone_of = {host: agg.availability_zone for agg in admin.compute.aggregates()
                   if agg.availability_zone for host in agg.hosts or []}
        host_of = {h.name: (h.service_details or {}).get("host", h.name)
                   for h in admin.compute.hypervisors(details=True)}
        for rp in admin.placement.resource_providers():
            if rp.name not in host_of:
                continue  # not a compute node (e.g. a sharing provider)
            inventories = {i.resource_class: {"total": i.total, "reserved": i.reserved,
                                              "allocation_ratio": i.allocation_ratio, "max_unit": i.max_unit}
                           for i in admin.placement.resource_provider_inventories(rp)}
            usages = admin.placement.get(f"/resource_providers/{rp.id}/usages", microversion="1.9")
            os_exc.raise_from_response(usages)
            host = host_of[rp.name]
            yield cap.host_capacity(host, zone_of.get(host, cap.DEFAULT_ZONE), inventories,
                                    usages.json()["usages"])

    def _quota_headroom(self) -> Any:
        project = self._conn.current_project_id
        qs = self._conn.compute.get_quota_set(project, usage=True)
        usage = qs.usage or {}
        compute = {k: (getattr(qs, k), usage.get(k, 0)) for k in ("instances", "cores", "ram")}
        ports = self._conn.network.get_quota(project, details=True).ports
        return cap.quota_headroom(compute, {"port": (ports["limit"], ports["used"] + ports.get("reserved", 0))})

    # ---------------------------------------------------------------- sweep
    def sweep(self, known_instance_ids: Iterable[str],
              known_package_ids: Iterable[str] = ()) -> Leftovers:
        known = set(known_instance_ids)
        packages = set(known_package_ids)
        items: list[Leftover] = []
        with self._do("sweeping for leftovers"):
            for s in self._conn.compute.servers(details=True):
                owner = (s.metadata or {}).get(INSTANCE_METADATA_KEY)
                if owner is not None and owner not in known:
                    items.append(Leftover("server", s.id, s.name, f"app instance {owner} is not known"))
            for p in self._conn.network.ports():
                info = self._port_info(p)
                ours = OWNER_TAG in (p.tags or []) or (p.name or "").startswith("meao-")
                if ours and info.instance_id not in known:
                    items.append(Leftover("port", p.id, p.name,
                                          f"app instance {info.instance_id or '(untagged)'} is not known"))
            used_flavors = {s.flavor.get("id") or s.flavor.get("original_name")
                            for s in self._admin.compute.servers(details=True, all_projects=True)}
            project = self._conn.current_project_id
            for f in self._admin.compute.flavors(details=True, is_public=_ALL_FLAVORS):
                if (f.is_public or not f.name.startswith(FLAVOR_PREFIX)
                        or f.id in used_flavors or f.name in used_flavors):
                    continue
                # A private flavor is ours when this project was granted it (or nobody was).
                access = {a["tenant_id"] for a in self._admin.compute.get_flavor_access(f)}
                if not access or project in access:
                    items.append(Leftover("flavor", f.id, f.name, "no server uses it"))
            for i in self._conn.image.images(tag=OWNER_TAG):
                if i.owner != self._conn.current_project_id:
                    continue
                users = {t[len(PACKAGE_TAG_PREFIX):] for t in i.tags or [] if t.startswith(PACKAGE_TAG_PREFIX)}
                if not users & packages:
                    items.append(Leftover("image", i.id, i.name,
                                          f"packages {sorted(users) or '(none)'} are not known"))
        return Leftovers(tuple(items))


class _TracedConnection(openstack.connection.Connection):
    """A shared connection whose requests carry the op occurrence bound in the calling thread.

    openstacksdk sends ``_global_request_id`` as ``X-OpenStack-Request-ID``; reading it from the logging
    context (a context variable, so per thread) keeps one connection safe for concurrent jobs.
    """

    @property  # type: ignore[override]
    def _global_request_id(self) -> str | None:
        return openstack_request_id()

    @_global_request_id.setter
    def _global_request_id(self, _value: str | None) -> None:
        pass  # the constructor assigns None; the bound op id decides


# ------------------------------------------------------------------------------ registry
_vims: dict[tuple[str, str | None], OpenStackVim] = {}
_vims_lock = threading.Lock()


def get_vim(cloud_name: str, config_file: str | None = None) -> OpenStackVim:
    """The one :class:`OpenStackVim` of this process for a ``clouds.yaml`` entry (connections reused)."""
    key = (cloud_name, config_file)
    with _vims_lock:
        vim = _vims.get(key)
        if vim is None:
            vim = _vims[key] = OpenStackVim(cloud_name, config_file)
        return vim


def forget_vims() -> None:
    """Drop the cached drivers (after clouds.yaml changed, and between tests)."""
    with _vims_lock:
        _vims.clear()
