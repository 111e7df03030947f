"""A meao made of separate processes the chaos suite can kill: one API, any number of workers, a private
Redis and a private PostgreSQL, and a fault directory (``meao.faults``) to stop them at named points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for

#: the timings the suite runs with: a lost worker is given up after 5 s, unclaimed jobs are sent again after 3 s
CHAOS_ENV = {"MEAO_OP_STALE_S": "5", "MEAO_REAP_INTERVAL_S": "0.5", "MEAO_HEARTBEAT_S": "0.5",
             "MEAO_JOB_RESEND_AFTER_S": "3", "MEAO_JOB_DISPATCH_INTERVAL_S": "0.3", "MEAO_BOOT_TIMEOUT_S": "120",
             "MEAO_JOB_STALE_S": "6", "MEAO_FAIL_WAIT_S": "90", "MEAO_IMAGE_UPLOAD_LEASE_S": "5"}


class FaultDir:
    """Triggers for ``meao.faults.point``: hold a process at a point, or make it kill itself there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _tag(point: str) -> str:
        return point.replace("/", "_").replace(":", "-")

    def hold(self, point: str) -> None:
        (self.path / f"at-{self._tag(point)}").unlink(missing_ok=True)
        (self.path / f"hold-{self._tag(point)}").touch()

    def release(self, point: str) -> None:
        (self.path / f"hold-{self._tag(point)}").unlink(missing_ok=True)

    def arrived(self, point: str, timeout: float = 120) -> int:
        """Wait until a process holds at ``point``; its pid."""
        at = self.path / f"at-{self._tag(point)}"
        wait_for(at.exists, timeout, 0.05, f"a process to reach fault point {point}")
        time.sleep(0.05)  # the pid is written right after the file appears
        return int(at.read_text() or 0)

    def kill_at(self, point: str) -> None:
        (self.path / f"kill-{self._tag(point)}").touch()

    def clear(self) -> None:
        for f in self.path.iterdir():
            f.unlink(missing_ok=True)

    @contextmanager
    def holding(self, point: str) -> Iterator[None]:
        self.hold(point)
        try:
            yield
        finally:
            self.release(point)


class ChaosStack:
    """``meao serve --no-embedded-worker`` plus workers, all on the private Redis and PostgreSQL."""

    def __init__(self, base_dir: Path, env: dict[str, str]) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MEAO_PUBLIC_URL": self.base, "MEAO_AUTH": "none", "PYTHONUNBUFFERED": "1",
                    "MEAO_LOG_LEVEL": "INFO", "MEAO_DATA_DIR": str(base_dir / "data"), **CHAOS_ENV, **env}
        self.faults = FaultDir(Path(self.env["MEAO_TEST_FAULT_DIR"]))
        self.pkg_root = Path(self.env["MEAO_PKG_FILE_ROOT"])
        self.api: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    @property
    def pkgm(self) -> str:
        return f"{self.base}/app_pkgm/v1"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.pkgm, timeout=30)

    def lcm(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base}/app_lcm/v1", timeout=120)

    def _log(self, name: str):
        return (self.base_dir / f"{name}.log").open("ab")

    def log_tail(self, name: str, n: int = 4000) -> str:
        path = self.base_dir / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def start_api(self, embedded: bool = False) -> None:
        """``meao serve``; ``embedded``: with its in-process worker (no MEAO_BROKER_URL, the quickstart)."""
        argv = [sys.executable, "-m", "meao.cli", "serve", "--port", str(self.port)]
        self.api = subprocess.Popen(argv if embedded else [*argv, "--no-embedded-worker"], env=self.env,
                                    stdout=self._log("api"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def up() -> bool:
            if self.api.poll() is not None:
                pytest.fail(f"meao serve exited; log:\n{self.log_tail('api')}")
            try:
                return httpx.get(f"{self.base}/app_lcm/v1/app_instances", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, 0.1, "the API to answer")

    def start_worker(self, name: str = "w1", concurrency: int = 2) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "worker", "-c", str(concurrency), "-n",
                                 f"{name}-{time.monotonic_ns()}@chaos"], env=self.env, stdout=self._log(name),
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.workers[name] = proc
        return proc

    def kill(self, proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            if sig == signal.SIGKILL:
                proc.wait(10)

    def kill_worker(self, name: str = "w1") -> None:
        self.kill(self.workers.pop(name, None))

    def kill_api(self) -> None:
        self.kill(self.api)
        self.api = None

    def stop(self) -> None:
        for proc in [self.api, *self.workers.values()]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in [self.api, *self.workers.values()]:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.workers.clear()
