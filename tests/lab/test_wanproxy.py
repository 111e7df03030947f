"""deploy/lab/wanproxy.py as a real process on loopback (no namespaces, no root): bytes arrive intact and in
order under jitter, a cut link stalls everything until restored, the proxy does not buffer without bound,
and a "lost" segment costs its retransmission delay."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for

WANPROXY = Path(__file__).resolve().parents[2] / "deploy" / "lab" / "wanproxy.py"


class Echo:
    """A TCP echo server in a thread; ``hold`` makes it stop reading (a slow receiver)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hold = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                if self.hold.is_set():
                    time.sleep(0.05)
                    continue
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.sock.close()


def start_proxy(target: int, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(WANPROXY), *args, f"127.0.0.1:{port}=127.0.0.1:{target}"],
                            stderr=subprocess.PIPE)

    def listening() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, timeout=15, what="wanproxy listening")
    return proc, port


@pytest.fixture
def proxies() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
        proc.wait(10)


def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload`` through the proxy to the echo server while reading the echo back."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        sender = threading.Thread(target=lambda: (conn.sendall(payload), conn.shutdown(socket.SHUT_WR)))
        sender.start()
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
        sender.join()
    return b"".join(chunks)


def test_bytes_arrive_intact_and_in_order_under_jitter(echo: Echo, proxies: list) -> None:
    proc, port = start_proxy(echo.port, "--delay-ms", "2", "--jitter-ms", "2", "--seed", "7")
    proxies.append(proc)
    payload = random.Random(1).randbytes(3 * 1024 * 1024)
    assert exchange(port, payload) == payload


def test_cut_stalls_open_and_new_connections_until_restored(echo: Echo, proxies: list) -> None:
    proc, port = start_proxy(echo.port, "--delay-ms", "0")
    proxies.append(proc)
    open_conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    open_conn.sendall(b"before")
    assert open_conn.recv(64) == b"before"

    os.kill(proc.pid, signal.SIGUSR1)
    time.sleep(0.3)  # the signal is handled asynchronously
    open_conn.sendall(b"during")
    new_conn = socket.create_connection(("127.0.0.1", port), timeout=5)  # the kernel's backlog takes it
    new_conn.sendall(b"new")
    for conn in (open_conn, new_conn):
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(64)  # nothing is delivered while the link is cut

    os.kill(proc.pid, signal.SIGUSR2)
    for conn, expected in ((open_conn, b"during"), (new_conn, b"new")):
        conn.settimeout(10)
        assert conn.recv(64) == expected
        conn.close()


def test_a_slow_receiver_blocks_the_sender(echo: Echo, proxies: list) -> None:
    """Backpressure: the proxy holds a bounded window, then stops reading, so the sender's sends block."""
    proc, port = start_proxy(echo.port, "--delay-ms", "0", "--window", "4")
    proxies.append(proc)
    echo.hold.set()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.setblocking(False)
        sent, block = 0, b"x" * 65536
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                sent += conn.send(block)
            except BlockingIOError:
                time.sleep(0.2)  # let the proxy fill its window and the kernel buffers settle
                try:
                    sent += conn.send(block)
                except BlockingIOError:
                    break
        else:
            pytest.fail(f"the proxy kept accepting data: {sent} bytes without the sender ever blocking")
    # 4 chunks of 64 KiB in the proxy plus the kernel's socket buffers on both sides, not the whole stream
    assert sent < 64 * 1024 * 1024


def test_loss_costs_a_retransmission_delay(echo: Echo, proxies: list) -> None:
    proc, port = start_proxy(echo.port, "--delay-ms", "0", "--loss", "0.99", "--retransmit-ms", "150",
                             "--seed", "3")
    proxies.append(proc)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(b"ping")
        assert conn.recv(64) == b"ping"
        # a lower bound: each direction's chunk was "lost" once (seeded draws below 0.99)
        assert time.monotonic() - started >= 0.3
