"""One port served by several processes: ``meao serve --workers N`` and ``meao mep serve --workers N``.

Each process has its own ``SO_REUSEPORT`` socket, so the kernel spreads connections over them (one
shared socket lets one busy process take most keep-alive connections). The processes are started with
``spawn`` and build their app from the environment through a factory (``module:function``). The parent
serves nothing: it supervises them, starting a process again when it dies, and stops them all on
SIGTERM or SIGINT. A process that dies right after starting, again and again, stops the whole server
with the reason instead of a restart loop.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
EARLY_DEATH_S = 10.0  # a process that lives shorter than this failed to start
MAX_EARLY_DEATHS = 3


#: where prometheus_client keeps every process's metric files (multiprocess mode); it reads this when it is
#: first imported, so it must be set before that
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServeFailed(Exception):
    """The serving processes kept dying at start; the message says how to find out why."""


def serve_processes(host: str, port: int, workers: int, factory: str, name: str,
                    ssl_options: dict[str, Any] | None = None) -> None:
    """Serve ``factory``'s app on ``host:port`` from ``workers`` processes until SIGTERM or SIGINT."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def spawn(i: int) -> tuple[BaseProcess, float]:
        proc = ctx.Process(target=_serve_one, args=(host, port, factory, ssl_options or {}), name=f"{name}-{i}")
        proc.start()
        return proc, time.monotonic()

    def stop(*_: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = [spawn(i) for i in range(workers)]
    early_deaths = 0
    try:
        while not stopping.wait(0.5):
            for i, (proc, started) in enumerate(children):
                if proc.is_alive():
                    continue
                early_deaths = early_deaths + 1 if time.monotonic() - started < EARLY_DEATH_S else 0
                if early_deaths >= MAX_EARLY_DEATHS:
                    raise ServeFailed(f"{name} process {proc.name} exited with code {proc.exitcode} right after "
                                      f"starting, {early_deaths} times in a row; its error is printed above")
                log.warning("%s process %s (pid %s) exited with code %s; starting it again", name, proc.name,
                            proc.pid, proc.exitcode)
                time.sleep(RESTART_DELAY_S)
                children[i] = spawn(i)
    finally:
        for proc, _ in children:
            if proc.is_alive():
                proc.terminate()
        for proc, _ in children:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_one(host: str, port: int, factory: str, ssl_options: dict[str, Any]) -> None:
    import uvicorn

    from meao.api.validation import UVICORN_OPTIONS

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config(factory, factory=True, log_level="warning", **UVICORN_OPTIONS, **ssl_options)
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh directory for the metric files of this process and the serving processes it starts, named
    in the environment they inherit, so that any of them answers a scrape for all (``meao.metrics``);
    removed when the server stops. Enter it before anything in this process imports prometheus_client."""
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        log.warning("metrics: prometheus_client was imported before the shared metrics directory was set; "
                    "the metrics of the parent process (its embedded worker's jobs) are left out of "
                    "/ops/v1/metrics")
    folder = tempfile.mkdtemp(prefix="meao-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
