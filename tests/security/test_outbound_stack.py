"""Issue 16 item 1, server-side request forgery, through a real ``meao serve`` (API and in-process worker,
which fetches packages and delivers notifications).

The operator allows 127.0.0.2 only (``MEAO_OUTBOUND_ALLOW``), where a package repository and subscriber
listens; 127.0.0.1 stands for everything meao must not reach. A tripwire listens there, on the loopback
(so nothing leaves this machine, even with the policy broken), and never accepts: a connection made to it
waits in its backlog, and an empty backlog proves a refused request sent nothing.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from meao.db.models import OutboxMessage
from tests.conftest import free_port, fresh_database, meao_free_environ, wait_for

PACKAGES_HINT = "MEAO_OUTBOUND_ALLOW or MEAO_OUTBOUND_ALLOW_PACKAGES"
NOTIFY_HINT = "MEAO_OUTBOUND_ALLOW or MEAO_OUTBOUND_ALLOW_NOTIFY"
INTERNAL_BODY = b"internal-only answer 7f3c"


class Tripwire:
    """Listeners on 127.0.0.1 (and ::1 when there is one) on one port; nobody accepts."""

    def __init__(self) -> None:
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        self.port = first.getsockname()[1]
        self.socks = [first]
        try:
            six = socket.socket(socket.AF_INET6)
            six.bind(("::1", self.port))
            self.socks.append(six)
        except OSError:  # no IPv6 loopback here: localhost is 127.0.0.1 only
            six.close()
        for sock in self.socks:
            sock.listen(16)
            sock.setblocking(False)

    def connections(self) -> int:
        """Connections made so far (the kernel completes a connection before connect() returns)."""
        n = 0
        for sock in self.socks:
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                n += 1
        return n

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


class _Repository(BaseHTTPRequestHandler):
    server: Repository

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append(("GET", self.path))
        if self.path in srv.redirects:
            self._answer(302, b"", {"Location": srv.redirects[self.path]})
        elif self.path in srv.files:
            self._answer(200, Path(srv.files[self.path]).read_bytes())
        elif self.path == "/internal":
            self._answer(200, INTERNAL_BODY)
        else:
            self._answer(404, INTERNAL_BODY)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append(("POST", self.path))
            self.server.posted.append((self.path, json.loads(body or b"{}")))
        self._answer(204, b"")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class Repository(ThreadingHTTPServer):
    """A package server and subscriber on 127.0.0.2, the address the operator allowed."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.2", 0), _Repository)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.posted: list[tuple[str, dict]] = []
        self.files: dict[str, str] = {}
        self.redirects: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.server_address[1]}"

    def seen(self, method: str, path: str) -> bool:
        with self.lock:
            return (method, path) in self.requests


@dataclass
class Meao:
    base: str
    db_url: str
    repo: Repository
    tripwire: Tripwire
    log: Path

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, timeout=30)

    def outcome(self, pkg_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            info = httpx.get(f"{self.base}/app_pkgm/v1/app_packages/{pkg_id}", timeout=30).json()
            return info if info["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in info else None

        return wait_for(done, 60, 0.1, f"package {pkg_id} to finish onboarding")

    def fetch_fails(self, uri: str, checksum: str = "a" * 64) -> str:
        """Create a package at ``uri``; the detail of its failed onboarding."""
        created = self.post("/app_pkgm/v1/app_packages", {
            "appPkgName": "ssrf", "appPkgVersion": "1", "appPkgPath": uri,
            "checksum": {"algorithm": "SHA-256", "hash": checksum}})
        assert created.status_code == 201, created.text
        info = self.outcome(created.json()["id"])
        assert info["onboardingState"] == "CREATED", info
        return info["onboardingFailureDetails"]["detail"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def meao(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Meao]:
    """``meao serve`` (embedded worker, on SQLite and on PostgreSQL) allowed to reach 127.0.0.2 only."""
    work = tmp_path_factory.mktemp(f"outbound-{request.param}")
    with fresh_database(request.param, work) as db_url:
        repo, tripwire = Repository(), Tripwire()
        threading.Thread(target=repo.serve_forever, daemon=True).start()
        env = {**meao_free_environ(), "PYTHONUNBUFFERED": "1", "MEAO_AUTH": "none", "MEAO_DATABASE_URL": db_url,
               "MEAO_OUTBOUND_ALLOW": "127.0.0.2",  # replaces the tests' default allowance of the whole loopback
               "MEAO_NOTIFY_MAX_ATTEMPTS": "1", "MEAO_FETCH_DEADLINE_S": "10"}
        port = free_port()
        log = work / "serve.log"
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port)], cwd=work, env=env,
                                stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"meao serve exited; log:\n{log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{base}/app_pkgm/v1/app_packages", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, 60, 0.2, "meao serve to answer")
            yield Meao(base, db_url, repo, tripwire, log)
        finally:
            proc.terminate()
            proc.wait(15)
            repo.shutdown()
            repo.server_close()
            tripwire.close()


@pytest.fixture()
def wire(meao: Meao) -> Iterator[Tripwire]:
    """The tripwire, checked empty before the test; the test asserts it stayed empty."""
    assert meao.tripwire.connections() == 0
    yield meao.tripwire


def _package(tmp_path: Path) -> tuple[Path, str]:
    from descriptors.examples.build import build_package

    pkg = build_package("mec-minimal", tmp_path, appd_id=str(uuid.uuid4()))
    return pkg, hashlib.sha256(pkg.read_bytes()).hexdigest()


def test_app_pkg_path_on_the_allowed_address_is_fetched(meao: Meao, tmp_path: Path) -> None:
    pkg, digest = _package(tmp_path)
    meao.repo.files["/allowed.csar"] = str(pkg)
    created = meao.post("/app_pkgm/v1/app_packages", {
        "appPkgName": "allowed", "appPkgVersion": "1", "appPkgPath": f"{meao.repo.url}/allowed.csar",
        "checksum": {"algorithm": "SHA-256", "hash": digest}})
    assert created.status_code == 201, created.text
    assert meao.outcome(created.json()["id"])["onboardingState"] == "ONBOARDED"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "127.1.2.3"])
def test_literal_loopback_app_pkg_path_is_refused_at_create_and_sends_nothing(
        meao: Meao, wire: Tripwire, host: str) -> None:
    resp = meao.post("/app_pkgm/v1/app_packages", {
        "appPkgName": "ssrf", "appPkgVersion": "1", "appPkgPath": f"http://{host}:{wire.port}/p.csar",
        "checksum": {"algorithm": "SHA-256", "hash": "a" * 64}})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "is a loopback address" in detail and PACKAGES_HINT in detail, detail
    assert wire.connections() == 0


def test_name_resolving_to_loopback_is_refused_when_the_worker_connects_and_sends_nothing(
        meao: Meao, wire: Tripwire) -> None:
    detail = meao.fetch_fails(f"http://localhost:{wire.port}/p.csar")
    assert "localhost resolves to a loopback address" in detail and PACKAGES_HINT in detail, detail
    assert wire.connections() == 0


def test_redirect_from_the_allowed_server_to_a_refused_address_is_refused_at_the_hop(
        meao: Meao, wire: Tripwire) -> None:
    hop = f"/hop-{uuid.uuid4()}"
    meao.repo.redirects[hop] = f"http://127.0.0.1:{wire.port}/p.csar"
    detail = meao.fetch_fails(f"{meao.repo.url}{hop}")
    assert meao.repo.seen("GET", hop), "the allowed server was asked"
    assert "redirects to a non-public address" in detail and PACKAGES_HINT in detail, detail
    assert str(wire.port) not in detail  # the Location is the internal server's answer, not the caller's
    assert wire.connections() == 0


def test_failures_at_the_allowed_internal_server_echo_no_status_body_error_or_digest(meao: Meao) -> None:
    """Scanning or reading the internal network through meao's failure details gets nothing."""
    missing = meao.fetch_fails(f"{meao.repo.url}/missing-{uuid.uuid4()}")
    with socket.socket() as closed:  # a port of the allowed address where nothing listens
        closed.bind(("127.0.0.2", 0))
        closed_port = closed.getsockname()[1]
    unreachable = meao.fetch_fails(f"http://127.0.0.2:{closed_port}/p.csar")
    for detail in (missing, unreachable):
        assert "404" not in detail and INTERNAL_BODY.decode() not in detail, detail
        assert "refused" not in detail.lower() and "errno" not in detail.lower(), detail
        assert PACKAGES_HINT in detail and "meao's log" in detail, detail
    assert missing.split("failed.", 1)[1] == unreachable.split("failed.", 1)[1], "an answer and no answer read alike"
    mismatch = meao.fetch_fails(f"{meao.repo.url}/internal")
    assert hashlib.sha256(INTERNAL_BODY).hexdigest() not in mismatch
    assert "is not the checksum given at creation" in mismatch, mismatch


@pytest.mark.parametrize("field", ["callbackUri", "tokenEndpoint"])
def test_literal_loopback_callback_or_token_endpoint_is_refused_at_subscription(
        meao: Meao, wire: Tripwire, field: str) -> None:
    body: dict[str, Any] = {"subscriptionType": "AppPackageOnBoardingSubscription",
                            "callbackUri": f"http://127.0.0.1:{wire.port}/cb"}
    if field == "tokenEndpoint":
        body["callbackUri"] = f"{meao.repo.url}/cb"
        body["authentication"] = {"authType": ["OAUTH2_CLIENT_CREDENTIALS"], "paramsOauth2ClientCredentials": {
            "clientId": "c", "clientPassword": "s", "tokenEndpoint": f"http://127.0.0.1:{wire.port}/token"}}
    resp = meao.post("/app_pkgm/v1/subscriptions", body)
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "127.0.0.1 is a loopback address" in detail and NOTIFY_HINT in detail, detail
    assert wire.connections() == 0


def test_notifications_to_names_resolving_to_loopback_are_never_sent(
        meao: Meao, wire: Tripwire, tmp_path: Path) -> None:
    """An onboarding notified to three subscriptions: the allowed one gets it; a callbackUri naming
    localhost, and an allowed callbackUri whose tokenEndpoint names localhost, fail with the reason and
    send nothing (the callback waits for its token, and the token request is refused)."""
    tag = uuid.uuid4().hex
    subs = {}
    for name, callback, auth in (
            ("allowed", f"{meao.repo.url}/ok-{tag}", None),
            ("callback", f"http://localhost:{wire.port}/cb-{tag}", None),
            ("token", f"{meao.repo.url}/with-token-{tag}", {
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"], "paramsOauth2ClientCredentials": {
                    "clientId": "c", "clientPassword": "s", "tokenEndpoint": f"http://localhost:{wire.port}/t"}})):
        body = {"subscriptionType": "AppPackageOnBoardingSubscription", "callbackUri": callback,
                **({"authentication": auth} if auth else {})}
        created = meao.post("/app_pkgm/v1/subscriptions", body)
        assert created.status_code == 201, created.text
        subs[name] = created.json()["id"]
    pkg, digest = _package(tmp_path)
    meao.repo.files[f"/notify-{tag}.csar"] = str(pkg)
    created = meao.post("/app_pkgm/v1/app_packages", {
        "appPkgName": "notify", "appPkgVersion": "1", "appPkgPath": f"{meao.repo.url}/notify-{tag}.csar",
        "checksum": {"algorithm": "SHA-256", "hash": digest}})
    assert meao.outcome(created.json()["id"])["onboardingState"] == "ONBOARDED"
    engine = create_engine(meao.db_url)

    def settled() -> dict[str, tuple[str, str | None]] | None:
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxMessage.subscription_id, OutboxMessage.status, OutboxMessage.last_error)
                                .where(OutboxMessage.subscription_id.in_(subs.values()))).all()
        states = {sub: (status, error) for sub, status, error in rows}
        return states if len(states) == 3 and all(s in ("DELIVERED", "FAILED") for s, _ in states.values()) else None

    try:
        states = wait_for(settled, 60, 0.1, "the three notifications to be delivered or given up")
    finally:
        engine.dispose()
    assert states[subs["allowed"]][0] == "DELIVERED" and meao.repo.seen("POST", f"/ok-{tag}")
    for name in ("callback", "token"):
        status, error = states[subs[name]]
        assert status == "FAILED" and error and "localhost resolves to a loopback address" in error, error
        assert NOTIFY_HINT in error
    assert not meao.repo.seen("POST", f"/with-token-{tag}")
    assert wire.connections() == 0
