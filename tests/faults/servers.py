"""Private Redis and PostgreSQL servers the chaos suite may stop, restart and kill without touching the
services other tests share. Both listen on 127.0.0.1 ports of their own."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, reachable, wait_for

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=None)


class RedisServer:
    """redis-server with persistence off: a restart loses every queued message (what the outbox must survive)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed; `bash tests/run.sh` installs it"
        self.proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=(self.workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: reachable("127.0.0.1", self.port), 20, 0.05, "the private Redis to listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        wait_for(lambda: not reachable("127.0.0.1", self.port), 10, 0.05, "the private Redis to stop")


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb as the postgres user) with trust auth on 127.0.0.1."""

    def __init__(self) -> None:
        import tempfile

        self.port = free_port()
        # not under pytest's tmp directory: the postgres user cannot enter root's private tree
        self.home = Path(tempfile.mkdtemp(prefix="meao-chaos-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/meao"

    def _as_postgres(self, *argv: str) -> None:
        assert PG_BIN is not None, "PostgreSQL is not installed; `bash tests/run.sh` installs it"
        prefix = ["runuser", "-u", "postgres", "--"] if _is_root() else []
        subprocess.run([*prefix, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self.data.mkdir()
        if _is_root():
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(self.home, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE meao")

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                          f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        wait_for(lambda: reachable("127.0.0.1", self.port), 30, 0.05, "the private PostgreSQL to listen")

    def stop(self, mode: str = "immediate") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
        shutil.rmtree(self.home, ignore_errors=True)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
