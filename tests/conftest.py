"""Shared fixtures: real Redis, real PostgreSQL and SQLite, a real API process and a real worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.ci import in_ci
from tests.databases import pg_database

ROOT = Path(__file__).resolve().parents[1]
# MEAO_TEST_REDIS_PORT lets two checkouts run their suites side by side on separate Redis servers.
REDIS = ("127.0.0.1", int(os.environ.get("MEAO_TEST_REDIS_PORT", "6379")))
POSTGRES = ("127.0.0.1", 5432)
IN_CI = in_ci()
# what every meao process a test starts runs with: answers checked against the OpenAPI files (production
# turns that off by default, MEAO_VALIDATE_RESPONSES)
TEST_DEFAULTS = {"MEAO_VALIDATE_RESPONSES": "true"}
os.environ.update(TEST_DEFAULTS)


def meao_free_environ() -> dict[str, str]:
    """This process's environment without the caller's MEAO_* settings, plus the tests' defaults."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MEAO_")}, **TEST_DEFAULTS}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, addr: tuple[str, int]) -> None:
    """Under CI a missing service fails the run loudly; on a laptop the test is skipped with a hint."""
    if reachable(*addr):
        return
    msg = f"{name} is not reachable on {addr[0]}:{addr[1]}; `bash tests/run.sh` installs and starts it"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, what: str = "") -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass
class Stack:
    """A running meao: API process + worker process sharing a database and a broker."""

    base: str
    env: dict[str, str]
    pkg_root: Path
    data_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def pkgm(self) -> str:
        return f"{self.base}/app_pkgm/v1"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.pkgm, timeout=30)

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen:
        log = self.logs["worker"].open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "worker", "-c", str(concurrency)], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs["worker"] = proc
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _pg_database() -> Iterator[str]:
    yield from pg_database("meao_test")


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database: ``sqlite`` a file in ``folder``, ``postgresql`` a database of
    its own on the local server (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'meao.db'}"
        return
    require_service("PostgreSQL", POSTGRES)
    with contextmanager(pg_database)("meao_test") as url:
        yield url


@contextmanager
def fake_vim_stack(base_dir: Path, hosts: list[dict[str, Any]], redis_db: int) -> Iterator[Stack]:
    """`meao serve` and a worker on SQLite with the fake VIM driver (capacity without any cloud: no
    clouds.yaml at all, so an OpenStack driver would fail to connect) and ``hosts`` as the inventory."""
    require_service("Redis", REDIS)
    hosts_file = base_dir / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump({"mec_hosts": hosts}))
    stack = launch_stack(base_dir, f"sqlite:///{base_dir / 'meao.db'}", redis_db, {
        "MEAO_VIM_DRIVER": "fake", "MEAO_MEC_HOSTS_FILE": str(hosts_file),
        "OS_CLIENT_CONFIG_FILE": str(base_dir / "no-clouds.yaml")})
    try:
        yield stack
    finally:
        stack.stop()


def launch_stack(base_dir: Path, db_url: str, redis_db: int, extra_env: dict[str, str] | None = None) -> Stack:
    """Start `meao serve` (no embedded worker) and one `meao worker` on Redis database ``redis_db``.

    The APIs are open (MEAO_AUTH=none) unless ``extra_env`` sets MEAO_AUTH.
    """
    import redis

    redis.Redis(host=REDIS[0], port=REDIS[1], db=redis_db).flushdb()
    port = free_port()
    pkg_root = base_dir / "pkgsrc"
    pkg_root.mkdir(exist_ok=True)
    env = {**os.environ, "MEAO_DATABASE_URL": db_url, "MEAO_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
           "MEAO_DATA_DIR": str(base_dir / "data"), "MEAO_PKG_FILE_ROOT": str(pkg_root),
           "MEAO_PUBLIC_URL": f"http://127.0.0.1:{port}", "MEAO_NOTIFY_BACKOFF_BASE_S": "0.5",
           "MEAO_NOTIFY_MAX_ATTEMPTS": "4", "MEAO_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
           "MEAO_AUTH": "none",  # tests that want auth say so in extra_env
           **(extra_env or {})}
    stack = Stack(base=f"http://127.0.0.1:{port}", env=env, pkg_root=pkg_root, data_dir=base_dir / "data")
    stack.logs = {"api": base_dir / "api.log", "worker": base_dir / "worker.log"}
    api_log = stack.logs["api"].open("ab")
    stack.procs["api"] = subprocess.Popen(
        [sys.executable, "-m", "meao.cli", "serve", "--port", str(port), "--no-embedded-worker"], env=env,
        stdout=api_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api_up() -> bool:
        if stack.procs["api"].poll() is not None:
            pytest.fail(f"meao serve exited; log:\n{stack.logs['api'].read_text()[-3000:]}")
        try:
            return httpx.get(f"{stack.pkgm}/app_packages", timeout=2).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    wait_for(api_up, 60, 0.2, "the API to answer")
    stack.start_worker()
    return stack


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, dropped at the end."""
    require_service("PostgreSQL", POSTGRES)
    yield from _pg_database()


@pytest.fixture(scope="session")
def clouds_yaml() -> Path:
    """The OpenStack test bed's clouds.yaml, starting the test bed first when it is down (never mocked)."""
    from tests.openstack_testbed import ensure_testbed

    return ensure_testbed()


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway test PKI (descriptors/examples/sign.py): ca.pem is the operator's trusted bundle."""
    from descriptors.examples.sign import Pki

    return Pki(tmp_path_factory.mktemp("pki")).folder


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Iterator[Stack]:
    """A live API process and a live worker on real Redis, on SQLite and on PostgreSQL.

    Package signatures are verified against the test PKI's CA; unsigned packages are accepted.
    """
    require_service("Redis", REDIS)
    backend = request.param
    base_dir = tmp_path_factory.mktemp(f"stack-{backend}")
    with fresh_database(backend, base_dir) as db_url:
        stack = launch_stack(base_dir, db_url, {"sqlite": 11, "postgresql": 12}[backend],
                             {"MEAO_TRUSTED_CA_FILE": str(pki_dir / "ca.pem")})
        try:
            yield stack
        finally:
            stack.stop()


class _Recorder(BaseHTTPRequestHandler):
    server: SubscriberServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        srv = self.server
        with srv.lock:
            srv.attempts.append((self.path, body))
            fail = srv.fail_first > 0
            if fail:
                srv.fail_first -= 1
            else:
                srv.received.append((self.path, body))
        self.send_response(503 if fail else 204)
        self.end_headers()

    def do_GET(self) -> None:
        path = self.server.files.get(self.path)
        if path is None:
            self.send_response(404)
            self.end_headers()
            return
        data = Path(path).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


class SubscriberServer(ThreadingHTTPServer):
    """A real HTTP subscriber on loopback that records notifications (and serves files)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.lock = threading.Lock()
        self.received: list[tuple[str, dict]] = []
        self.attempts: list[tuple[str, dict]] = []
        self.fail_first = 0
        self.files: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def notifications(self, path: str | None = None) -> list[dict]:
        with self.lock:
            return [b for p, b in self.received if path is None or p == path]


@pytest.fixture(scope="session")
def subscriber() -> Iterator[SubscriberServer]:
    srv = SubscriberServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """This process's settings on a fresh, migrated database: an SQLite file, or a PostgreSQL database.

    For unit tests of code that owns its transactions (``session_scope``); restored afterwards.
    """
    from meao.config import get_settings, load_settings, set_settings
    from meao.db.migrate import db_upgrade
    from meao.db.session import get_engine

    with fresh_database(request.param, tmp_path) as url:
        before = get_settings()
        set_settings(load_settings(MEAO_DATABASE_URL=url, MEAO_DATA_DIR=str(tmp_path / "var")))
        db_upgrade(url)
        try:
            yield url
        finally:
            set_settings(before)
            get_engine(url).dispose()
