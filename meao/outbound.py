"""Where meao's own outbound requests may go: package fetches (``appPkgPath``) and notifications
(``callbackUri`` and the subscriber's OAuth2 ``tokenEndpoint``).

Those URIs come from API callers, tenants included. Left alone, meao would fetch whatever they name:
its own loopback services, the cloud's metadata service at 169.254.169.254, the private networks it
sits in. So by default meao connects only to public addresses; the operator allows more with
``MEAO_OUTBOUND_ALLOW`` (both kinds of request), ``MEAO_OUTBOUND_ALLOW_PACKAGES`` and
``MEAO_OUTBOUND_ALLOW_NOTIFY``: CIDRs (``10.20.0.0/16``, ``::1``) and host names (``repo.example``,
``*.corp.example``).

The check is made where the connection is opened, after DNS resolution, for every connection: the
first request, every redirect hop and the token request alike. meao then connects to the very address
it checked (no DNS rebinding between check and connect), while TLS still verifies, and SNI and ``Host``
still name, the host of the URI. The create-time checks (``refuse_literal``) only answer earlier for
URIs whose host is an address literal.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from meao.problems import BadRequest

if typing.TYPE_CHECKING:
    from meao.config import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> the addresses to connect to, in order

ALLOW = "MEAO_OUTBOUND_ALLOW"
ALLOW_PACKAGES = "MEAO_OUTBOUND_ALLOW_PACKAGES"
ALLOW_NOTIFY = "MEAO_OUTBOUND_ALLOW_NOTIFY"
_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT (Alibaba Cloud's metadata lives here)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits


def parse_allowance(text: str, setting: str) -> tuple[str, ...]:
    """The entries of an allowance setting (comma or blank separated), normalised; ValueError names a bad one."""
    entries = []
    for raw in re.split(r"[,\s]+", text.strip()):
        if not raw:
            continue
        entry = raw.lower().rstrip(".")
        try:
            entries.append(str(ipaddress.ip_network(entry, strict=False)))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(entry):
            raise ValueError(f"{setting}: {raw!r} is neither a CIDR (10.20.0.0/16, ::1) nor a host name "
                             "(repo.example, *.corp.example)")
        entries.append(entry)
    return tuple(entries)


def restricted_kind(address: IPAddress) -> str | None:
    """What makes ``address`` non-public ("loopback", "link-local", "private", …), or None for a public one.

    IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4, NAT64) are judged by the IPv4 one: a
    socket to ``::ffff:127.0.0.1`` reaches the loopback.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return restricted_kind(embedded)
        if address in _UNIQUE_LOCAL:
            return "unique-local"
        if address in _SITE_LOCAL:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "special-purpose"
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which non-public destinations one kind of outbound request may reach, and the settings that say so."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()  # exact names, or "*.suffix" for the names below suffix
    settings_hint: str = ALLOW

    @classmethod
    def from_entries(cls, entries: Iterable[str], settings_hint: str) -> OutboundPolicy:
        """A policy from ``parse_allowance`` entries."""
        networks, hosts = [], []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.append(entry)
        return cls(tuple(networks), tuple(hosts), settings_hint)

    @classmethod
    def for_packages(cls, settings: Settings) -> OutboundPolicy:
        """The policy of ``appPkgPath`` fetches: MEAO_OUTBOUND_ALLOW and MEAO_OUTBOUND_ALLOW_PACKAGES."""
        out = settings.outbound
        return cls.from_entries(out.allow + out.allow_packages, f"{ALLOW} or {ALLOW_PACKAGES}")

    @classmethod
    def for_notifications(cls, settings: Settings) -> OutboundPolicy:
        """The policy of notifications (callbackUri, tokenEndpoint): MEAO_OUTBOUND_ALLOW and MEAO_OUTBOUND_ALLOW_NOTIFY."""
        out = settings.outbound
        return cls.from_entries(out.allow + out.allow_notify, f"{ALLOW} or {ALLOW_NOTIFY}")

    def allows_host(self, host: str) -> bool:
        """True when the operator allowed the host name ``host`` (whatever it resolves to)."""
        host = host.lower().rstrip(".")
        return any(host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """True when a CIDR of the allowance holds ``address`` (IPv4-mapped IPv6 counts as its IPv4)."""
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(a.version == n.version and a in n for a in candidates for n in self.networks)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to ``address`` (resolved from ``host``) is refused, or None when it may go.

        The reason says what was refused and which setting allows it; it names the address only when
        the caller wrote it (a resolved address of an internal name is for the operator's log).
        """
        kind = restricted_kind(address)
        if kind is None or self.allows_host(host) or self.allows_address(address):
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        where = f"{host} is {article} {kind} address" if _literal(host) else f"{host} resolves to {article} {kind} address"
        return (f"{where}; meao connects to loopback, link-local, private, unique-local and other non-public "
                f"addresses only where the operator allows them in {self.settings_hint} (CIDRs or host names)")

    def is_internal(self, address: IPAddress) -> bool:
        """True for a non-public address (one that only the allowance lets meao reach)."""
        return restricted_kind(address) is not None

    def refuse_literal(self, uri: str, what: str) -> None:
        """At create time: BadRequest when ``uri``'s host is an address literal this policy refuses.

        Host names are judged when meao connects (their addresses may change until then).
        """
        host = urlsplit(uri).hostname or ""
        address = _literal(host)
        if address is not None and (why := self.refusal(host, address)):
            raise BadRequest(f"{what} {uri} will not be reached: {why}")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (getaddrinfo order, duplicates dropped)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve host {host}: {getattr(exc, 'strerror', None) or exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class OutboundRefused(httpx.TransportError):
    """The outbound policy refused a destination; ``str()`` says what and the setting that allows it.

    A transport error, so a request that meets it fails like one that found no server: nothing was sent.
    """

    def __init__(self, message: str, *, host: str, address: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address  # for the operator's log


class OutboundGate:
    """Resolves, checks and connects: the one place meao's policed outbound connections are opened.

    ``resolver`` maps a host to its addresses (``system_resolver`` unless a test stubs it).
    ``reached_internal`` turns true once a connection went to a non-public address the allowance let
    through: what such a server answers is not the caller's to see.
    """

    def __init__(self, policy: OutboundPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver
        self.reached_internal = False
        self._lock = threading.Lock()

    def admit(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host``; OutboundRefused if any address is refused.

        Every address must pass, not just one: which one the connection would use is not ours to bet on.
        """
        literal = _literal(host)
        candidates = [str(literal)] if literal is not None else list(self.resolver(host, port))
        if not candidates:
            raise httpx.ConnectError(f"host {host} resolves to no address")
        internal = False
        for candidate in candidates:
            address = ipaddress.ip_address(candidate)
            why = self.policy.refusal(host, address)
            if why:
                log.warning("outbound connection to %s (%s) refused: %s", host, candidate, why)
                raise OutboundRefused(why, host=host, address=candidate)
            internal = internal or self.policy.is_internal(address)
        if internal:
            with self._lock:
                self.reached_internal = True
        return candidates

    def client(self, **kwargs: typing.Any) -> httpx.Client:
        """An httpx client whose every connection goes through this gate.

        Environment proxies (``HTTP_PROXY``, …) are not used: a proxy would open connections the gate never
        sees (httpx mounts none once a transport is given, and ``trust_env=False`` says so again).
        """
        return httpx.Client(transport=GatedTransport(self), trust_env=False, **kwargs)


class _GatedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses the gate admitted."""

    def __init__(self, gate: OutboundGate) -> None:
        self.gate = gate

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self.gate.admit(host, port):  # the checked address itself: no second lookup
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("meao's outbound requests do not use Unix sockets")


class GatedTransport(httpx.HTTPTransport):
    """httpx's transport with the gate's network backend: TLS verification, SNI and ``Host`` keep the
    URI's host name, while the TCP connection goes to the address the gate checked."""

    def __init__(self, gate: OutboundGate, **kwargs: typing.Any) -> None:
        if kwargs.get("proxy") or kwargs.get("uds"):  # the gate would check the proxy, not the destination
            raise ValueError("meao's policed outbound requests go direct, without a proxy or a Unix socket")
        super().__init__(**kwargs)  # SSL_CERT_FILE / SSL_CERT_DIR still name the CAs to trust
        pool = self._pool
        # httpx has no parameter for httpcore's network backend: set it on the pool it built. Should a
        # new httpx build its pool otherwise, fail here rather than connect unchecked.
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError("this httpx version builds its connection pool in a way meao's outbound policy "
                               "does not know; pin httpx to a tested version")
        pool._network_backend = _GatedBackend(gate)
