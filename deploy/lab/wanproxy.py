"""A WAN in user space: a TCP proxy that delays, jitters and "loses" what it relays (stdlib only).

The lab's kernel has no ``tc netem`` and no netfilter, so the delay between a PoP and the control plane
is made here, on the PoP's only path to it::

    wanproxy.py --delay-ms 20 10.213.2.1:8080=10.213.0.10:8080 10.213.2.1:6379=10.213.0.10:6379 ...

Each PAIR is ``[NETNS@]LISTEN_HOST:PORT=TARGET_HOST:PORT``. With ``NETNS@`` the listening socket is
opened inside that network namespace (``/run/netns/NETNS``, via setns) while the connections to the
target are made from the namespace the proxy runs in: that is how the lab shows the OpenStack test bed,
which listens on the root namespace's 127.0.0.1, on the same 127.0.0.1 ports inside its namespaces
(``--delay-ms 0``: a plain forwarder).

How the WAN is modelled, per direction of each connection:

- every chunk read is delivered ``delay ± jitter`` later; chunks never overtake each other (a chunk
  whose draw is earlier than the previous one's waits for it), as TCP delivers in order;
- TCP cannot lose bytes, so "loss" is what a lost segment costs: with probability ``--loss`` a chunk
  (and, in order, everything behind it) is held ``--retransmit-ms`` more, the minimum retransmission
  timeout of a real stack;
- a new connection's first bytes towards the target arrive no earlier than three one-way delays after
  the accept: the handshake a real WAN would have cost (the client's connect returns at once here);
- backpressure: at most ``--window`` chunks wait per direction; then the proxy stops reading, the
  sender's TCP window fills and the sender blocks, as behind a slow link.

Cutting the link: SIGUSR1 makes the proxy "drop everything": it accepts no new connection (they wait in
the kernel's backlog, then time out at the client) and delivers nothing on the open ones (they stall);
SIGUSR2 restores it, and what was held flows again. ``--state-file`` says ``up`` or ``cut`` for
status tools. SIGTERM/SIGINT stop the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Pair:
    """One listen -> target relay; ``netns`` is where the listening socket lives (None: here)."""

    netns: str | None
    listen: tuple[str, int]
    target: tuple[str, int]

    def __str__(self) -> str:
        where = f"{self.netns}@" if self.netns else ""
        return f"{where}{self.listen[0]}:{self.listen[1]} -> {self.target[0]}:{self.target[1]}"


def log(message: str) -> None:
    """One line on stderr (the lab's log file), with the wall-clock time to match other logs."""
    now = time.time()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now % 1 * 1000):03d} wanproxy: {message}",
          file=sys.stderr, flush=True)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT")
    return host.strip("[]"), int(port)


def parse_pair(text: str) -> Pair:
    """``[NETNS@]LISTEN_HOST:PORT=TARGET_HOST:PORT`` -> Pair."""
    listen, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"'{text}' is not [NETNS@]LISTEN_HOST:PORT=TARGET_HOST:PORT")
    netns, at, listen_addr = listen.rpartition("@")
    return Pair(netns if at else None, _address(listen_addr), _address(target))


class Wan:
    """The link's behaviour and its up/cut state, shared by every connection of the process."""

    def __init__(self, delay_ms: float, jitter_ms: float, loss: float, retransmit_ms: float, window: int,
                 rng: random.Random) -> None:
        self.delay = delay_ms / 1000
        self.jitter = jitter_ms / 1000
        self.loss = loss
        self.retransmit = retransmit_ms / 1000
        self.window = window
        self.rng = rng
        self.up = asyncio.Event()
        self.up.set()

    def one_way(self) -> float:
        """Seconds the next chunk spends on the wire."""
        delay = self.delay
        if self.jitter:
            delay = max(0.0, delay + self.rng.uniform(-self.jitter, self.jitter))
        if self.loss and self.rng.random() < self.loss:
            delay += self.retransmit
        return delay


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wan: Wan, not_before: float) -> None:
    """Relay one direction: read, stamp a delivery time, deliver in order when due and the link is up."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=wan.window)

    async def read() -> None:
        last = not_before
        while True:
            try:
                data = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            last = max(loop.time() + wan.one_way(), last)
            await queue.put((last, data))  # blocks when the window is full: backpressure
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await wan.up.wait()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                await wan.up.wait()
            if not data:
                if writer.can_write_eof() and not writer.is_closing():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    reading = asyncio.create_task(read())
    try:
        await deliver()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


async def _relay(conn: socket.socket, pair: Pair, wan: Wan) -> None:
    loop = asyncio.get_running_loop()
    accepted = loop.time()
    client_r, client_w = await asyncio.open_connection(sock=conn)
    try:
        await wan.up.wait()  # a cut link connects nothing
        try:
            target_r, target_w = await asyncio.open_connection(*pair.target)
        except OSError as exc:
            log(f"{pair}: cannot reach the target ({exc}); closing the client's connection")
            return
        try:
            # the first bytes towards the target wait for the handshake a real WAN would have cost
            await asyncio.gather(_pipe(client_r, target_w, wan, accepted + 3 * wan.delay),
                                 _pipe(target_r, client_w, wan, 0.0))
        except (ConnectionError, OSError) as exc:  # one side reset: close both, as a real connection would end
            log(f"{pair}: a connection ended by a reset ({exc!r}); closed both sides")
        finally:
            target_w.close()
    finally:
        client_w.close()


async def _serve(sock: socket.socket, pair: Pair, wan: Wan, tasks: set[asyncio.Task[None]]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await wan.up.wait()  # while cut, accept nothing: clients wait in the backlog, then time out
        conn, _ = await loop.sock_accept(sock)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.create_task(_relay(conn, pair, wan))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def open_listener(pair: Pair) -> socket.socket:
    """The pair's listening socket, opened inside its namespace when it names one (the socket stays there
    after this thread returns to its own namespace)."""
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in pair.listen[0] else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(pair.listen)
        sock.listen(128)
        sock.setblocking(False)
        return sock

    if not pair.netns:
        return make()
    target = Path("/run/netns") / pair.netns
    with open("/proc/thread-self/ns/net") as home, open(target) as there:
        _setns(there.fileno())
        try:
            return make()
        finally:
            _setns(home.fileno())


async def run(pairs: list[Pair], wan: Wan, state_file: Path | None) -> None:
    listeners = [(open_listener(pair), pair) for pair in pairs]  # before any thread starts
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def set_state(up: bool) -> None:
        (wan.up.set if up else wan.up.clear)()
        if state_file:
            state_file.write_text("up\n" if up else "cut\n")
        log(f"link {'restored' if up else 'cut: accepting and delivering nothing'}")

    loop.add_signal_handler(signal.SIGUSR1, set_state, False)
    loop.add_signal_handler(signal.SIGUSR2, set_state, True)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if state_file:
        state_file.write_text("up\n")
    tasks: set[asyncio.Task[None]] = set()
    servers = [asyncio.create_task(_serve(sock, pair, wan, tasks)) for sock, pair in listeners]
    log(f"delay {wan.delay * 1000:g} ms ± {wan.jitter * 1000:g} ms, loss {wan.loss:g}; "
        + "; ".join(str(p) for p in pairs))
    await stop.wait()
    for task in [*servers, *tasks]:
        task.cancel()
    await asyncio.gather(*servers, *tasks, return_exceptions=True)
    for sock, _ in listeners:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", type=parse_pair, metavar="PAIR",
                        help="[NETNS@]LISTEN_HOST:PORT=TARGET_HOST:PORT")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay, each direction [20]")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform ± around the delay [0]")
    parser.add_argument("--loss", type=float, default=0.0, help="probability a chunk is 'lost' [0]")
    parser.add_argument("--retransmit-ms", type=float, default=200.0, help="what a loss costs [200]")
    parser.add_argument("--window", type=int, default=16, help="chunks (64 KiB) in flight per direction [16]")
    parser.add_argument("--seed", type=int, default=None, help="seed of the jitter and loss draws")
    parser.add_argument("--state-file", type=Path, default=None, help="written 'up' or 'cut'")
    args = parser.parse_args(argv)
    if not 0 <= args.loss < 1 or args.delay_ms < 0 or args.jitter_ms < 0 or args.window < 1:
        parser.error("need 0 <= --loss < 1, --delay-ms >= 0, --jitter-ms >= 0, --window >= 1")

    async def start() -> None:
        wan = Wan(args.delay_ms, args.jitter_ms, args.loss, args.retransmit_ms, args.window,
                  random.Random(args.seed))
        await run(args.pairs, wan, args.state_file)

    try:
        asyncio.run(start())
    except OSError as exc:
        print(f"wanproxy: cannot listen ({exc}); check that the address exists (is the lab up?) and that "
              "no other process holds the port", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
