"""What the benches share: percentiles and spreads, CPU accounting, a fresh database, meao processes.

Benches run by hand (never as tests) from the repository root; see each bench's docstring.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.databases import pg_database


# ------------------------------------------------------------------------------------- measuring
def stats_ms(samples_s: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``samples_s``, in milliseconds (nearest rank)."""
    ms = sorted(s * 1e3 for s in samples_s)
    if not ms:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}

    def rank(q: float) -> float:
        return ms[min(len(ms) - 1, max(0, round(q * len(ms)) - 1))]

    return {"p50": statistics.median(ms), "p90": rank(0.90), "p99": rank(0.99), "max": ms[-1]}


def print_latency(label: str, samples_s: list[float]) -> dict[str, float]:
    got = stats_ms(samples_s)
    print(f"  {label:<52} n={len(samples_s):<6} p50 {got['p50']:7.2f} ms  p90 {got['p90']:7.2f} ms  "
          f"p99 {got['p99']:7.2f} ms  max {got['max']:7.2f} ms")
    return got


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """'median (min–max)' of repeated runs."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process and its children (``--workers`` processes) so far."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def pg_backends_cpu(dbname: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``dbname`` (their process title names it)."""
    import psutil

    out = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            title = " ".join(proc.info["cmdline"] or [])
            if title.startswith("postgres:") and f" {dbname} " in f"{title} ":
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------- infrastructure
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    """A fresh database for the run: PostgreSQL (created, then dropped) or an SQLite file in ``work``."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'meao.db'}"
        return
    yield from pg_database("meao_bench")


@dataclass
class Processes:
    """The meao processes of the run; all stopped at the end, whatever happened."""

    work: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.work / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "meao.cli", *args], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.procs[name]

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")

    def up(self, name: str, url: str, statuses: tuple[int, ...]) -> None:
        def answers() -> bool:
            if self.procs[name].poll() is not None:
                raise SystemExit(f"bench: {name} exited; its log:\n{self.log(name)[-3000:]}")
            try:
                return httpx.get(url, timeout=2).status_code in statuses
            except httpx.HTTPError:
                return False

        wait(answers, 60, f"{name} to answer at {url}", 0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
