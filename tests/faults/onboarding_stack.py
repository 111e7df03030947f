"""The onboarding chaos cases' meao: real processes on the embedded broker and on Redis, killed at fault points.

``meao_under`` starts a meao in one of two shapes, short timings so a vanished worker is reaped in
seconds:

- ``embedded``: one ``meao serve`` on SQLite with its in-process worker (memory broker); a kill takes the
  queue with it, and a restart of ``serve`` must pick the work up again;
- ``redis``: ``meao serve --no-embedded-worker`` and a ``meao worker`` on Redis database 7 and a fresh
  PostgreSQL database (the other suites use Redis databases 8-15).

Fault points (``meao.faults``) hold a process at a known place so the test can SIGKILL it there.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import (
    POSTGRES,
    REDIS,
    _pg_database,
    free_port,
    meao_free_environ,
    require_service,
    wait_for,
)

FAULTS_REDIS_DB = 7
# a vanished worker is given up after 2 s; live ones stamp 6 times in that while
FAST_REAPING = {"MEAO_JOB_STALE_S": "2", "MEAO_REAP_INTERVAL_S": "0.3", "MEAO_HEARTBEAT_S": "0.3",
                "MEAO_JOB_RESEND_AFTER_S": "2", "MEAO_JOB_DISPATCH_INTERVAL_S": "0.2"}


@dataclass
class Meao:
    """A meao under test: its processes, environment, fault directory and database."""

    mode: str  # embedded | redis
    port: int
    env: dict[str, str]
    base_dir: Path
    db_url: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # the current process of each role
    spawned: list[subprocess.Popen] = field(default_factory=list)  # every process started, replaced ones too

    @property
    def pkgm(self) -> str:
        return f"http://127.0.0.1:{self.port}/app_pkgm/v1"

    @property
    def fault_dir(self) -> Path:
        return Path(self.env["MEAO_TEST_FAULT_DIR"])

    @property
    def package_store(self) -> Path:
        return Path(self.env["MEAO_DATA_DIR"]) / "packages"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.pkgm, timeout=30)

    def package(self, pkg_id: str) -> dict[str, Any]:
        with self.client() as c:
            return c.get(f"/app_packages/{pkg_id}").json()

    def row(self, pkg_id: str) -> dict[str, Any]:
        """The package's database row (what the API does not show: the attempt, the claim)."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(text("SELECT * FROM app_package WHERE id = :id"), {"id": pkg_id})
                            .mappings().one())
        finally:
            engine.dispose()

    # ------------------------------------------------------------------ processes
    def start_api(self) -> None:
        argv = [sys.executable, "-m", "meao.cli", "serve", "--port", str(self.port)]
        if self.mode == "redis":
            argv.append("--no-embedded-worker")
        self.procs["api"] = self._spawn("api", argv)
        wait_for(self._api_up, 60, 0.1, "meao serve to answer")

    def start_worker(self) -> None:
        self.procs["worker"] = self._spawn("worker", [sys.executable, "-m", "meao.cli", "worker", "-c", "2"])

    @property
    def job_process(self) -> str:
        """The process that runs onboarding jobs."""
        return "api" if self.mode == "embedded" else "worker"

    def restart(self, name: str) -> None:
        (self.start_api if name == "api" else self.start_worker)()

    def kill(self, name: str) -> None:
        """SIGKILL one process: no clean-up, no goodbye, as a crash or an OOM kill."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def kill_at(self, point: str, name: str, then: Callable[[], None] | None = None) -> None:
        """Wait until process ``name`` is held at fault ``point``, SIGKILL it there, release the hold."""
        tag = point.replace(":", "-")
        at = self.fault_dir / f"at-{tag}"
        wait_for(at.exists, 60, 0.05, f"a process to reach fault point {point}")
        assert int(at.read_text()) == self.procs[name].pid, f"{point} was reached by another process"
        self.kill(name)
        (self.fault_dir / f"hold-{tag}").unlink()
        at.unlink()

    def hold(self, point: str) -> None:
        (self.fault_dir / f"hold-{point.replace(':', '-')}").touch()

    def stop(self) -> None:
        for proc in self.spawned:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused one cannot act on SIGTERM
                proc.terminate()
        for proc in self.spawned:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.base_dir.glob("*.log")))

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.base_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, env=self.env, cwd=self.base_dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.spawned.append(proc)
        return proc

    def _api_up(self) -> bool:
        if self.procs["api"].poll() is not None:
            pytest.fail(f"meao serve exited; logs:\n{self.logs()}")
        try:
            return httpx.get(f"{self.pkgm}/app_packages", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(params=["embedded", "redis"])
def meao_under(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Meao]]:
    """Start a meao (``meao_under(**extra_env)``) on the embedded broker or on Redis; stopped at the end."""
    mode = request.param
    started: list[Meao] = []
    db_gen: Iterator[str] | None = None
    if mode == "redis":
        require_service("Redis", REDIS)
        require_service("PostgreSQL", POSTGRES)

    def launch(**extra_env: str) -> Meao:
        nonlocal db_gen
        faults = tmp_path / "faults"
        faults.mkdir()
        (tmp_path / "pkgsrc").mkdir()
        env = meao_free_environ()
        env.update({"PYTHONUNBUFFERED": "1", "MEAO_AUTH": "none", "MEAO_LOG_LEVEL": "INFO",
                    "MEAO_DATA_DIR": str(tmp_path / "data"), "MEAO_TEST_FAULT_DIR": str(faults),
                    "MEAO_PKG_FILE_ROOT": str(tmp_path / "pkgsrc"), **FAST_REAPING})
        if mode == "redis":
            import redis

            redis.Redis(host=REDIS[0], port=REDIS[1], db=FAULTS_REDIS_DB).flushdb()
            db_gen = _pg_database()
            db_url = next(db_gen)
            env["MEAO_BROKER_URL"] = f"redis://{REDIS[0]}:{REDIS[1]}/{FAULTS_REDIS_DB}"
        else:
            db_url = f"sqlite:///{tmp_path / 'data' / 'meao.db'}"
        env["MEAO_DATABASE_URL"] = db_url
        env.update(extra_env)
        meao = Meao(mode=mode, port=free_port(), env=env, base_dir=tmp_path, db_url=db_url)
        started.append(meao)
        meao.start_api()
        if mode == "redis":
            meao.start_worker()
        return meao

    try:
        yield launch
    finally:
        for meao in started:
            meao.stop()
        if db_gen is not None:
            next(db_gen, None)


class _Files(BaseHTTPRequestHandler):
    server: PackageServer

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.gets[self.path] = srv.gets.get(self.path, 0) + 1
        path = srv.files.get(self.path)
        if path is None:
            self.send_response(404)
            self.end_headers()
            return
        data = Path(path).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        pieces = max(1, int(srv.trickle_s / 0.1))
        step = -(-len(data) // pieces)
        try:
            for start in range(0, len(data), step):
                self.wfile.write(data[start:start + step])
                self.wfile.flush()
                if srv.trickle_s:
                    time.sleep(srv.trickle_s / pieces)
        except OSError:
            pass  # the fetcher gave up

    def log_message(self, *_: Any) -> None:
        pass


class PackageServer(ThreadingHTTPServer):
    """Serves package files on loopback, spread over ``trickle_s`` seconds; counts the GETs of each path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.lock = threading.Lock()
        self.files: dict[str, str] = {}
        self.gets: dict[str, int] = {}
        self.trickle_s = 0.0

    def publish(self, name: str, path: Path) -> str:
        self.files[f"/{name}"] = str(path)
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture()
def package_server() -> Iterator[PackageServer]:
    srv = PackageServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
