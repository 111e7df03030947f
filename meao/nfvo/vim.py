"""The VIM interface meao's NFVO and VNFM roles use (Mv1 images and capacity, Mv2/Mv3 compute).

GS MEC 010-2 clause 4.5 puts software images and resource capacity behind the NFVO; in meao the NFVO
and the MEPM-V talk to each PoP's VIM only through :class:`Vim`. ``meao.nfvo.openstack`` is the real
driver, ``meao.nfvo.fake`` an in-memory double for tests elsewhere.

Conventions every driver keeps, so that a sweep can prove nothing leaked:
server metadata ``meao_app_instance_id``; ports tagged ``meao`` and ``meao-instance:<id>`` and named
``meao-<id>-<cp>``; an app instance's security group tagged like its ports and named ``meao-<id>-mp1``;
private flavors named ``meao-<vcpu>c-<ram>m-<disk>g``; images tagged ``meao``
with property ``meao_owned=true``, their checksum, and a tag per package that uses them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from meao.problems import ProblemError

INSTANCE_METADATA_KEY = "meao_app_instance_id"
OWNER_TAG = "meao"
INSTANCE_TAG_PREFIX = "meao-instance:"
PACKAGE_TAG_PREFIX = "meao-pkg:"
CHECKSUM_TAG_PREFIX = "meao-checksum:"
FLAVOR_PREFIX = "meao-"


# ----------------------------------------------------------------------------------------- errors
class VimError(ProblemError, status=502, title="VIM error"):
    """The VIM failed or refused a request; ``detail`` says which call and what to do."""


class VimUnavailable(VimError, status=503, title="VIM unavailable"):
    """The VIM's API cannot be reached or answers 502/503/504: retry when it is back."""


class VimNotConfigured(VimError, status=409, title="VIM not configured"):
    """No usable ``clouds.yaml`` entry for the cloud a MEC host names: the host or clouds.yaml needs fixing.

    A 409: the MEC host resource conflicts with this server's configuration, nothing a retry would cure.
    """


class NoValidHost(VimError, status=503, title="No valid host"):
    """No compute host of the PoP (or of the requested zone) can take the server."""


class QuotaExceeded(VimError, status=503, title="Quota exceeded"):
    """The project's quota at the PoP does not allow the request."""


class VimNotFound(VimError, status=404, title="Not found in VIM"):
    """A resource meao expected at the VIM is not there (deleted outside meao, or a wrong id)."""


class VimTimeout(VimError, status=504, title="VIM timeout"):
    """The VIM did not finish within meao's bound (a server not ACTIVE in time, a slow API)."""


class ServerFault(VimError, status=502, title="Server fault"):
    """A server went to ERROR; ``detail`` carries Nova's fault message."""


class PortSecurityDisabled(VimError, status=409, title="Port security disabled"):
    """Security groups were asked of a port whose port security is off: Neutron would not filter its traffic."""


# ----------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Checksum:
    """Checksum of a software image (NFV SOL 001 ``tosca.datatypes.nfv.ChecksumData``; IFA 011
    ChecksumData, the ``checksum`` of MEC 010-2 6.2.1.4 swImageDescriptor)."""

    algorithm: str  # e.g. "sha-256" as the AppD writes it
    hash: str

    @property
    def key(self) -> str:
        """Normalised ``algorithm:hash``, the form stored at the VIM."""
        return f"{self.algorithm.lower().replace('_', '-')}:{self.hash.lower()}"


@dataclass(frozen=True)
class ImageSpec:
    """A software image as the AppD's swImageDescriptor describes it (MEC 010-2 6.2.1.2, SOL 001)."""

    name: str
    version: str
    checksum: Checksum
    container_format: str = "bare"
    disk_format: str = "qcow2"
    min_disk_gb: int = 0
    min_ram_mb: int = 0
    size_bytes: int | None = None


@dataclass(frozen=True)
class PortInfo:
    """A Neutron port of meao's, with the app instance its tag names (None when untagged)."""

    id: str
    name: str
    network_id: str
    status: str
    fixed_ips: tuple[str, ...]
    port_security: bool
    instance_id: str | None
    security_group_ids: tuple[str, ...] = ()


# Neutron's names of IP protocols (neutron-lib constants.IP_PROTOCOL_MAP); a rule may also name any other
# IANA number. "icmpv6" and 58 are spelled "ipv6-icmp", the form Neutron stores.
IP_PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "igmp": 2, "ipip": 4,
                "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
                "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
                "udplite": 136, "vrrp": 112}
_PROTOCOL_NAMES = {number: name for name, number in IP_PROTOCOLS.items()}
_PROTOCOL_ALIASES = {"icmpv6": "ipv6-icmp"}
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "udplite", "dccp")  # the protocols Neutron takes a port range for
IPV6_ONLY_PROTOCOLS = frozenset(n for n in IP_PROTOCOLS if n.startswith("ipv6-"))


def canonical_protocol(value: str | int | None, ethertype: str) -> str | None:
    """A protocol as :class:`SgRule` holds it: Neutron's name when it has one, else the IANA number.

    ``None``, ``"any"`` and ``""`` mean any protocol. ICMP of IPv6 is ``ipv6-icmp`` whichever way it is
    written, as Neutron stores it. Raises ValueError for a name Neutron does not know or a number
    outside 0..255.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "any"):
        return None
    text = _PROTOCOL_ALIASES.get(text, text)
    if text.isdigit():
        number = int(text)
        if number > 255:
            raise ValueError(f"protocol number {number} is outside 0..255")
        text = _PROTOCOL_NAMES.get(number, str(number))
    elif text not in IP_PROTOCOLS:
        raise ValueError(f"unknown protocol '{value}' (a name Neutron knows, e.g. tcp, udp, icmp, or an IANA number)")
    return "ipv6-icmp" if text == "icmp" and ethertype == "IPv6" else text


@dataclass(frozen=True)
class SgRule:
    """One Neutron security-group rule: traffic it lets through a port, in one direction.

    Security groups are allow-lists (no action field): traffic no rule allows is dropped. ``None`` means
    any protocol / any port / any remote address; ``protocol`` is in :func:`canonical_protocol`'s form and
    ``remote_ip_prefix`` a normalised CIDR (never ``0.0.0.0/0`` or ``::/0``: those are ``None``).
    """

    direction: str  # "ingress" | "egress"
    ethertype: str  # "IPv4" | "IPv6"
    protocol: str | None = None
    port_min: int | None = None
    port_max: int | None = None
    remote_ip_prefix: str | None = None

    @property
    def sort_key(self) -> tuple:
        """A total order (None first), so that lists of rules read the same every time."""
        return (self.direction, self.ethertype, self.protocol or "", self.port_min or 0, self.port_max or 0,
                self.remote_ip_prefix or "")


@dataclass(frozen=True)
class ServerInfo:
    """A Nova server: its status, where it runs, the app instance its metadata names, and Nova's fault.

    ``fault`` is set only for a server in ERROR.
    """

    id: str
    name: str
    status: str  # Nova's: BUILD, ACTIVE, SHUTOFF, ERROR, ...
    availability_zone: str | None
    instance_id: str | None
    fault: str | None = None


@dataclass(frozen=True)
class ComputeNodeCapacity:
    """Free resources of one compute host, and the largest single request it accepts."""

    host: str
    availability_zone: str
    vcpu: int  # free now, after the allocation ratio and the reserved part
    ram_mb: int  # MiB
    disk_gb: int  # GiB
    max_vcpu: int  # the largest single allocation (Placement's max_unit)
    max_ram_mb: int
    max_disk_gb: int

    def fits(self, vcpu: int, ram_mb: int, disk_gb: int) -> bool:
        return (vcpu <= min(self.vcpu, self.max_vcpu) and ram_mb <= min(self.ram_mb, self.max_ram_mb)
                and disk_gb <= min(self.disk_gb, self.max_disk_gb))


@dataclass(frozen=True)
class QuotaHeadroom:
    """What the project may still use at the PoP; ``None`` means unlimited."""

    instances: int | None
    vcpu: int | None
    ram_mb: int | None
    ports: int | None

    def allows(self, vcpu: int, ram_mb: int, ports: int = 1) -> bool:
        def ok(left: int | None, want: int) -> bool:
            return left is None or want <= left
        return ok(self.instances, 1) and ok(self.vcpu, vcpu) and ok(self.ram_mb, ram_mb) and ok(self.ports, ports)


@dataclass(frozen=True)
class ZoneCapacity:
    availability_zone: str
    vcpu: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class Capacity:
    """Free capacity per host and availability zone, and the project's quota headroom."""

    hosts: tuple[ComputeNodeCapacity, ...]
    quota: QuotaHeadroom

    @property
    def zones(self) -> dict[str, ZoneCapacity]:
        zones: dict[str, ZoneCapacity] = {}
        for h in self.hosts:
            z = zones.get(h.availability_zone) or ZoneCapacity(h.availability_zone, 0, 0, 0)
            zones[h.availability_zone] = ZoneCapacity(z.availability_zone, z.vcpu + h.vcpu,
                                                      z.ram_mb + h.ram_mb, z.disk_gb + h.disk_gb)
        return zones

    def fits(self, vcpu: int, ram_mb: int, disk_gb: int, ports: int = 1,
             availability_zone: str | None = None) -> bool:
        """Whether one server of this size can be placed now (quota and some single host)."""
        return self.quota.allows(vcpu, ram_mb, ports) and any(
            h.fits(vcpu, ram_mb, disk_gb) for h in self.hosts
            if availability_zone is None or h.availability_zone == availability_zone)


@dataclass(frozen=True)
class Leftover:
    kind: str  # server | port | security_group | flavor | image
    id: str
    name: str
    reason: str


@dataclass(frozen=True)
class Leftovers:
    """Resources meao owns at a VIM that no known app instance (or package) accounts for."""

    items: tuple[Leftover, ...] = field(default_factory=tuple)

    def of(self, kind: str) -> list[Leftover]:
        return [i for i in self.items if i.kind == kind]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        if not self.items:
            return "no leftovers"
        return "; ".join(f"{i.kind} {i.name} ({i.id}): {i.reason}" for i in self.items)


def flavor_name(vcpu: int, ram_mb: int, disk_gb: int) -> str:
    return f"{FLAVOR_PREFIX}{vcpu}c-{ram_mb}m-{disk_gb}g"


def port_name(instance_id: str, cp: str) -> str:
    return f"meao-{instance_id}-{cp}"


def server_name(instance_id: str) -> str:
    """The name of an app instance's server (a lookup by it is an indexed filter at Nova)."""
    return f"meao-{instance_id}"


def instance_tag(instance_id: str) -> str:
    return f"{INSTANCE_TAG_PREFIX}{instance_id}"


def security_group_name(instance_id: str) -> str:
    """The name of an app instance's security group (the one that realises its Mp1 traffic rules)."""
    return port_name(instance_id, "mp1")


# -------------------------------------------------------------------------------------- interface
OpenStream = Callable[[], BinaryIO]
FixedIp = str | dict[str, str]  # "10.0.0.5" or Neutron's {"ip_address": ..., "subnet_id": ...}


class Vim(abc.ABC):
    """One PoP's VIM as seen by meao. Every method raises :class:`VimError` subclasses only."""

    cloud_name: str  # the clouds.yaml entry it drives: what image claims and package image notes are keyed by

    # images (package onboarding: Mv1)
    @abc.abstractmethod
    def ensure_image(self, image: ImageSpec, open_stream: OpenStream, package_id: str) -> str:
        """Return the id of the image with this checksum, uploading it (streamed) if absent.

        ``open_stream`` is called only when an upload is needed; the data is checked against the
        checksum while it streams. The image records that ``package_id`` uses it. An image of this
        checksum that is not active is taken for a dead upload and replaced, so callers run this
        one at a time per cloud and checksum (:func:`meao.nfvo.image_claims.ensure_image`).
        """

    @abc.abstractmethod
    def find_image_by_checksum(self, checksum: Checksum) -> str | None:
        """The id of an active meao image with this checksum, or None."""

    @abc.abstractmethod
    def release_image(self, image_id: str, package_id: str) -> bool:
        """Forget that ``package_id`` uses the image; delete it when no package is left. True if deleted."""

    # flavors
    @abc.abstractmethod
    def ensure_flavor(self, vcpu: int, ram_mb: int, disk_gb: int) -> str:
        """The id of a flavor of exactly this size: an existing public one, else a private meao one."""

    @abc.abstractmethod
    def flavor_exists(self, flavor_id: str) -> bool:
        """Whether the VIM still has this flavor (a recorded one may have been released meanwhile)."""

    @abc.abstractmethod
    def release_flavor(self, flavor_id: str) -> bool:
        """Delete a private meao flavor no server uses any more. True if deleted.

        The VIM sees servers only: callers keep a flavor that another app instance has chosen but
        not booted yet (``mecpm.flows``).
        """

    # ports
    @abc.abstractmethod
    def create_port(self, network: str, instance_id: str, name: str,
                    fixed_ips: Sequence[FixedIp] | None = None, port_security: bool = True) -> str:
        """Create port ``meao-<instance_id>-<name>`` on ``network`` (name or id), tagged with the instance."""

    @abc.abstractmethod
    def find_ports(self, instance_id: str, names: Sequence[str] = ()) -> list[PortInfo]:
        """The ports tagged with this app instance, and those named ``names`` (tagged or not).

        A Neutron that ignores tags in the create body gets them in a second call: a worker killed
        between the two leaves a port that only its name ties to the instance.
        """

    @abc.abstractmethod
    def delete_port(self, port_id: str) -> None:
        """Delete a port; a port already gone is not an error, one Nova still binds to a deleted server is
        deleted once Nova has released it."""

    # security groups (the MEP's traffic rules, MEC 011 / MEC 010-2 TrafficRule, as an ingress allow-list)
    @abc.abstractmethod
    def ensure_app_security_group(self, instance_id: str) -> str:
        """The id of the instance's security group ``meao-<instance_id>-mp1``, created (and tagged) if absent.

        Found by tag or name first, so a retry never makes a second one. A new group has no ingress
        rule and keeps Neutron's allow-all egress rules (IPv4 and IPv6): an app's outbound traffic works
        as it did on the default group; the traffic rules govern what comes in.
        """

    @abc.abstractmethod
    def sync_security_group_rules(self, sg_id: str, wanted: Sequence[SgRule]) -> None:
        """Make the group's ingress rules exactly ``wanted`` (egress ones are left alone).

        Missing rules are created before unwanted ones are deleted, so traffic that stays allowed is
        never cut off in between. ``wanted`` must hold ingress rules only.
        """

    @abc.abstractmethod
    def security_group_rules(self, sg_id: str) -> list[SgRule]:
        """The group's ingress rules, sorted by :attr:`SgRule.sort_key`."""

    @abc.abstractmethod
    def set_port_security_groups(self, port_id: str, sg_ids: Sequence[str]) -> None:
        """Make ``sg_ids`` the port's security groups, replacing the ones it had (its default group too).

        PortSecurityDisabled for a port whose port security is off; VimNotFound for an unknown port.
        """

    @abc.abstractmethod
    def delete_app_security_group(self, instance_id: str, port_ids: Sequence[str]) -> None:
        """Detach the instance's security group from its ports and delete it; no group is a no-op.

        It is detached from ``port_ids`` that still exist and from any other port that uses it. A port
        with port security left without a group gets the project's default group back (what Neutron
        gives a new port), not none: a port with no group passes no traffic at all.
        """

    # servers
    @abc.abstractmethod
    def create_server(self, name: str, flavor_id: str, image_id: str, port_ids: Sequence[str],
                      instance_id: str, availability_zone: str | None = None, user_data: str | None = None) -> str:
        """Boot a server on these ports, its metadata carrying the app instance id; returns at once.

        ``user_data`` is the guest's boot data (Nova user_data, e.g. a cloud-config document).
        """

    @abc.abstractmethod
    def find_servers(self, instance_id: str) -> list[ServerInfo]:
        """The servers whose metadata carries this app instance id."""

    @abc.abstractmethod
    def get_server(self, server_id: str) -> ServerInfo:
        """The server's current state (VimNotFound if it does not exist)."""

    @abc.abstractmethod
    def wait_server_active(self, server_id: str, timeout: float) -> ServerInfo:
        """Wait until ACTIVE; NoValidHost / ServerFault if it goes to ERROR, VimTimeout after ``timeout``."""

    @abc.abstractmethod
    def stop_server(self, server_id: str, graceful_timeout: float) -> None:
        """Stop: ACPI shutdown, powered off by force when the guest has not stopped after the timeout."""

    @abc.abstractmethod
    def start_server(self, server_id: str, timeout: float = 120) -> None:
        """Power a stopped server on and wait until it is ACTIVE."""

    @abc.abstractmethod
    def delete_server(self, server_id: str, wait: bool = True, timeout: float = 120,
                      claimed: bool = False) -> None:
        """Delete a server (gone already is fine); with ``wait``, until Nova no longer has it.

        Unless the caller knows a compute host has ``claimed`` it (it went ACTIVE once), a server still
        being scheduled is first waited for, so that the delete is the compute host's, which unbinds its
        ports before the server disappears. :meth:`delete_port` waits for a port Nova still binds."""

    # capacity and ownership
    @abc.abstractmethod
    def capacity(self) -> Capacity:
        """Free vCPU/RAM/disk per host and availability zone, and the project's quota headroom."""

    @abc.abstractmethod
    def sweep(self, known_instance_ids: Iterable[str],
              known_package_ids: Iterable[str] = ()) -> Leftovers:
        """Every server, port, security group, flavor and image meao owns here that nothing known accounts for."""
