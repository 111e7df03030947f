"""Issue 16 item 1, server-side request forgery: the outbound policy at its own layer (``meao.outbound``).

What is judged here: which addresses are refused (IPv4 and IPv6, embedded IPv4 included), what the
operator's allowance opens, and that the check is made after resolution, on the address then connected
to, for package fetches, callbacks and token requests alike. Host names resolve through stub resolvers.

Nothing here may leave the loopback, even with the policy broken: ``sockets`` replaces
``socket.create_connection`` by a guard that connects only to loopback addresses and records every
attempt, so a refused destination is proved never connected (and would never be reached anyway).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meao.catalogue.fetch import check_source_uri, fetch_to
from meao.config import load_settings
from meao.notify.callback_auth import OAUTH2_CLIENT_CREDENTIALS, CallbackAuthenticator
from meao.notify.delivery import Deliverer
from meao.outbound import (
    GatedTransport,
    OutboundGate,
    OutboundPolicy,
    OutboundRefused,
    parse_allowance,
    restricted_kind,
)
from meao.problems import BadRequest, OnboardingError

SETTINGS_HINT = "MEAO_OUTBOUND_ALLOW or MEAO_OUTBOUND_ALLOW_PACKAGES"


@dataclass
class Sockets:
    """Every TCP connection attempted in this process while the guard is on."""

    attempts: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture()
def sockets(monkeypatch: pytest.MonkeyPatch) -> Sockets:
    """Connections to loopback addresses go ahead; any other is recorded and never opened."""
    seen = Sockets()
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        seen.attempts.append((str(address[0]), int(address[1])))
        if not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {address[0]}, beyond the loopback; not sent")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return seen


def settings(**env: str) -> Any:
    """Settings with only the allowances given (the tests' default allowance of the loopback removed)."""
    return load_settings(**{"MEAO_OUTBOUND_ALLOW": "", "MEAO_OUTBOUND_ALLOW_PACKAGES": "",
                            "MEAO_OUTBOUND_ALLOW_NOTIFY": "", **env})


def stub_resolver(table: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# ------------------------------------------------------------------------------------- the address check
@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fe80::a%eth0", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.254", "private"), ("192.168.1.1", "private"),
    ("fc00::1", "unique-local"), ("fd12:3456::1", "unique-local"), ("fec0::1", "site-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.100.100.200", "shared (carrier-grade NAT)"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"), ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),  # 6to4 and NAT64 of IPv4
    ("240.0.0.1", None), ("192.0.2.1", None), ("198.18.0.1", None),  # reserved, documentation, benchmarking
])
def test_non_public_addresses_are_restricted(address: str, kind: str | None) -> None:
    found = restricted_kind(ipaddress.ip_address(address))
    assert found is not None and (kind is None or found == kind)
    assert OutboundPolicy().refusal("x.test", ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:93.184.215.14",
                                     "64:ff9b::5db8:d70e"])
def test_public_addresses_are_not_restricted(address: str) -> None:
    assert restricted_kind(ipaddress.ip_address(address)) is None
    assert OutboundPolicy().refusal("x.test", ipaddress.ip_address(address)) is None


def test_allowance_opens_its_cidrs_and_host_names_only() -> None:
    policy = OutboundPolicy.from_entries(parse_allowance("10.20.0.0/16, fd00:1::/32 repo.test *.corp.test", "X"), "X")
    ok = [("a.test", "10.20.3.4"), ("a.test", "::ffff:10.20.3.4"), ("a.test", "fd00:1::5"),
          ("repo.test", "169.254.169.254"), ("REPO.test.", "10.9.9.9"), ("git.corp.test", "192.168.0.1")]
    for host, address in ok:
        assert policy.refusal(host, ipaddress.ip_address(address)) is None, (host, address)
    refused = [("a.test", "10.21.0.1"), ("a.test", "fd00:2::1"), ("corp.test", "10.0.0.1"),
               ("evilrepo.test", "10.0.0.1"), ("repo.test.evil", "127.0.0.1")]
    for host, address in refused:
        assert policy.refusal(host, ipaddress.ip_address(address)) is not None, (host, address)


def test_refusal_says_what_and_which_setting_but_not_a_resolved_address() -> None:
    policy = OutboundPolicy.from_entries((), SETTINGS_HINT)
    why = policy.refusal("metadata.test", ipaddress.ip_address("169.254.169.254"))
    assert why is not None and "metadata.test resolves to a link-local address" in why and SETTINGS_HINT in why
    assert "169.254" not in why  # what an internal name resolves to is for the operator's log
    literal = policy.refusal("10.0.0.7", ipaddress.ip_address("10.0.0.7"))
    assert literal is not None and literal.startswith("10.0.0.7 is a private address")


def test_an_allowance_typo_stops_meao_with_the_variable_named() -> None:
    with pytest.raises(SystemExit, match="MEAO_OUTBOUND_ALLOW_NOTIFY: 'hooks/x' is neither a CIDR"):
        settings(MEAO_OUTBOUND_ALLOW_NOTIFY="10.0.0.0/8 hooks/x")
    s = settings(MEAO_OUTBOUND_ALLOW="127.0.0.1", MEAO_OUTBOUND_ALLOW_PACKAGES="repo.test",
                 MEAO_OUTBOUND_ALLOW_NOTIFY="10.0.0.0/8")
    packages, notify = OutboundPolicy.for_packages(s), OutboundPolicy.for_notifications(s)
    assert packages.refusal("repo.test", ipaddress.ip_address("10.0.0.1")) is None
    assert notify.refusal("repo.test", ipaddress.ip_address("172.16.0.1")) is not None
    assert notify.refusal("hook.test", ipaddress.ip_address("10.0.0.1")) is None
    assert packages.refusal("hook.test", ipaddress.ip_address("10.0.0.1")) is not None
    assert all(p.refusal("l.test", ipaddress.ip_address("127.0.0.1")) is None for p in (packages, notify))


def test_literal_addresses_are_refused_at_create_time_names_are_left_to_connect_time() -> None:
    s = settings()
    for uri in ("http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/p.csar",
                "https://[::ffff:127.0.0.1]/p.csar", "http://10.0.0.1/p.csar", "http://0.0.0.0:80/"):
        with pytest.raises(BadRequest, match=SETTINGS_HINT):
            check_source_uri(uri, s)
    check_source_uri("http://repo.test/p.csar", s)  # resolved, and judged, when the worker connects
    check_source_uri("http://127.0.0.1:8080/p.csar", settings(MEAO_OUTBOUND_ALLOW_PACKAGES="127.0.0.1"))


# -------------------------------------------------------------------------- resolution and connection
@pytest.mark.parametrize("addresses", [
    ["169.254.169.254"], ["10.0.0.1"], ["172.16.5.4"], ["192.168.1.1"], ["fd00::1"], ["fe80::1%1"],
    ["::ffff:169.254.169.254"], ["::1"], ["127.0.0.1"],
    ["93.184.215.14", "10.0.0.1"],  # every address must pass: the connection might use any
])
def test_name_resolving_to_a_refused_address_is_never_connected(sockets: Sockets, addresses: list[str]) -> None:
    resolve = stub_resolver({"metadata.test": addresses})
    with OutboundGate(OutboundPolicy(), resolve).client() as http, pytest.raises(OutboundRefused) as refused:
        http.get("http://metadata.test/latest/meta-data/")
    assert sockets.attempts == [] and resolve.calls == ["metadata.test"]
    assert "metadata.test resolves to a" in str(refused.value)


def test_package_fetch_of_a_name_resolving_to_metadata_fails_unconnected(sockets: Sockets, tmp_path: Path) -> None:
    dest = tmp_path / "fetch.part"
    with pytest.raises(OnboardingError) as failed:
        fetch_to("http://metadata.test/latest/meta-data/iam", dest, "SHA-256", settings(),
                 resolver=stub_resolver({"metadata.test": ["169.254.169.254"]}))
    detail = failed.value.detail
    assert "metadata.test resolves to a link-local address" in detail and SETTINGS_HINT in detail, detail
    assert sockets.attempts == [] and not dest.exists()


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # answers with the Host header it got
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture()
def echo() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_connection_goes_to_the_address_checked_once_not_to_a_second_lookup(
        sockets: Sockets, echo: ThreadingHTTPServer) -> None:
    """DNS rebinding: a name that answers an allowed address, then the metadata address, is resolved once
    per connection, and the socket opens to the address that was checked."""
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls) - 1, 1)]

    port = echo.server_address[1]
    gate = OutboundGate(OutboundPolicy.from_entries(["127.0.0.1/32"], "X"), rebinding)
    with gate.client() as http:
        resp = http.get(f"http://pkg.test:{port}/")
        assert resp.status_code == 200 and resp.text == f"pkg.test:{port}"  # Host still names the URI's host
        assert sockets.attempts == [("127.0.0.1", port)] and calls == ["pkg.test"]
        assert gate.reached_internal
    with gate.client() as http, pytest.raises(OutboundRefused):  # a new connection: resolved and checked again
        http.get(f"http://pkg.test:{port}/")
    assert sockets.attempts == [("127.0.0.1", port)] and calls == ["pkg.test", "pkg.test"]


def _tls_files(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for the DNS name ``name`` only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_verifies_and_names_the_uri_host_while_connecting_to_the_checked_address(
        sockets: Sockets, tmp_path: Path) -> None:
    cert, key = _tls_files(tmp_path, "pkg.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment,misc]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        gate = OutboundGate(OutboundPolicy.from_entries(["127.0.0.1"], "X"),
                            stub_resolver({"pkg.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}))
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(transport=GatedTransport(gate, verify=trusted)) as http:
            assert http.get(f"https://pkg.test:{port}/").text == f"pkg.test:{port}"
            assert sni == ["pkg.test"]
            with pytest.raises(httpx.ConnectError, match="certificate|hostname"):
                http.get(f"https://other.test:{port}/")  # same address, a name the certificate does not hold
        assert {a for a, _ in sockets.attempts} == {"127.0.0.1"}
    finally:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------------------------------------------------------- notifications
@pytest.fixture()
def tripwire() -> Iterator[socket.socket]:
    """A loopback listener nobody accepts on: a connection made to it waits in its backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def pending(sock: socket.socket) -> int:
    """How many connections were made to the listener (the kernel completes them before connect returns)."""
    n = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def test_callback_and_token_endpoint_of_refused_names_are_never_connected(
        sockets: Sockets, tripwire: socket.socket) -> None:
    """The deliverer's client: a callbackUri whose name resolves to the metadata address, and an allowed
    callbackUri whose OAuth2 tokenEndpoint resolves to a private address, are both refused unconnected."""
    port = tripwire.getsockname()[1]
    resolve = stub_resolver({"metadata.test": ["169.254.169.254"], "hook.test": ["127.0.0.1"],
                             "token.test": ["10.0.0.1"]})
    deliverer = Deliverer(settings(MEAO_OUTBOUND_ALLOW_NOTIFY="hook.test"), resolver=resolve)
    try:
        with pytest.raises(OutboundRefused, match="MEAO_OUTBOUND_ALLOW or MEAO_OUTBOUND_ALLOW_NOTIFY"):
            deliverer._client.post("http://metadata.test/cb", json={})
        auth = CallbackAuthenticator().auth_for({"type": OAUTH2_CLIENT_CREDENTIALS, "client_id": "c",
                                                 "client_secret": "s", "token_endpoint": "http://token.test/t"})
        with pytest.raises(OutboundRefused, match="token.test resolves to a private address"):
            deliverer._client.post(f"http://hook.test:{port}/cb", json={}, auth=auth)
    finally:
        deliverer._client.close()
    assert sockets.attempts == [] and pending(tripwire) == 0  # the callback waits for its token: never sent


def test_redirect_hop_is_checked_like_the_first_request(sockets: Sockets, tripwire: socket.socket,
                                                        tmp_path: Path) -> None:
    """A package server the allowance opens redirects to a name resolving to the loopback, refused."""
    port = tripwire.getsockname()[1]

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://sneaky.test:{port}/p.csar")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.2", 0), Redirect)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(OnboardingError) as failed:
            fetch_to(f"http://repo.test:{srv.server_address[1]}/p.csar", tmp_path / "p", "SHA-256",
                     settings(MEAO_OUTBOUND_ALLOW_PACKAGES="repo.test", MEAO_FETCH_DEADLINE_S="5"),
                     resolver=stub_resolver({"repo.test": ["127.0.0.2"], "sneaky.test": ["127.0.0.1"]}))
    finally:
        srv.shutdown()
        srv.server_close()
    detail = failed.value.detail
    assert "redirects to a non-public address" in detail and SETTINGS_HINT in detail, detail
    assert "sneaky" not in detail  # the Location came from an internal server: not the caller's to read
    assert pending(tripwire) == 0 and {a for a, _ in sockets.attempts} == {"127.0.0.2"}


def test_environment_proxies_are_not_used_they_would_connect_unchecked(
        sockets: Sockets, tripwire: socket.socket, echo: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment would connect where the gate cannot see: meao's clients go direct."""
    with pytest.raises(ValueError, match="without a proxy"):
        GatedTransport(OutboundGate(OutboundPolicy()), proxy="http://127.0.0.1:9")
    proxy = f"http://127.0.0.1:{tripwire.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    gate = OutboundGate(OutboundPolicy.from_entries(["127.0.0.1"], "X"),
                        stub_resolver({"metadata.test": ["169.254.169.254"], "pkg.test": ["127.0.0.1"]}))
    with gate.client() as http:
        with pytest.raises(OutboundRefused):
            http.get("http://metadata.test/latest/meta-data/")
        assert http.get(f"http://pkg.test:{echo.server_address[1]}/").status_code == 200  # directly
    assert pending(tripwire) == 0
