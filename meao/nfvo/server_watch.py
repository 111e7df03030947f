"""One status watch per cloud connection for every server a process is waiting on.

Fifty jobs each polling ``GET /servers/{id}`` four times a second is 200 requests a second to nova-api,
which then has less time to build the servers. Instead, waiters register here and are woken by:

- **events**: Nova's versioned notifications (``instance.create.end``, ``instance.delete.end``, …) fed
  in through :meth:`ServerWatch.event` by :mod:`meao.nfvo.openstack.notifications`, milliseconds after
  Nova's own database says so;
- **one shared poll**: one thread asks Nova, once per round, for the servers that changed since the
  newest ``updated`` time it has seen (``changes-since``, Nova's own clock, so no clock skew). The poll
  is adaptive: a round follows the youngest waiter's age (fast right after a boot or delete was asked
  for, backing off for long waits), and while events arrive it is only the safety net (a lost
  notification costs time, never a hung wait).

A waiter registers *before* its first read, so an event or a poll that lands between the read and the
registration cannot be missed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

GONE = "DELETED"  # what a waiter sees when Nova no longer knows the server
BACKOFF = 0.1  # a poll round is at most this share of the youngest waiter's age (10 % on a long wait)
SAFETY_NET_S = 2.0  # the poll round while events arrive (or the longest round, if that is longer)


@dataclass(frozen=True)
class Gone:
    """A server Nova answers 404 for (or whose ``instance.delete.end`` was seen)."""

    id: str
    status: str = GONE
    updated_at: str | None = None


@dataclass
class _Waiter:
    wanted: frozenset[str]
    failures: frozenset[str]
    since: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    server: Any = None


class ServerWatch:
    """Wait for servers to reach a status, woken by Nova's notifications or one shared adaptive poll."""

    def __init__(self, conn: Any, max_s: float, min_s: float = 0.05,
                 events_live: Callable[[], bool] = lambda: False) -> None:
        self._conn = conn
        self._min = min(min_s, max_s)
        self._max = max_s
        self._events_live = events_live
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._waiters: dict[str, list[_Waiter]] = {}
        self._mark: str | None = None  # newest ``updated`` seen, as Nova wrote it
        self._thread: threading.Thread | None = None
        self.polls = 0  # poll rounds made (tests prove an event-driven wait made none)

    def wait(self, server_id: str, read: Callable[[], Any], wanted: set[str], failures: set[str],
             timeout: float) -> tuple[bool, Any]:
        """Block until server ``server_id`` has a status in ``wanted`` or ``failures``, or ``timeout``.

        ``read`` fetches the server now (``None`` when Nova answers 404, seen as status ``DELETED``); it
        is called once, after the waiter is registered. Returns (reached, last server record): reached
        is False on timeout.
        """
        waiter = _Waiter(frozenset(wanted), frozenset(failures))
        with self._lock:
            self._waiters.setdefault(server_id, []).append(waiter)
        try:
            server = read()
            with self._lock:
                if not waiter.done.is_set():
                    self._settle(waiter, server if server is not None else Gone(server_id))
                if server is not None:
                    self._advance(server)
                if not waiter.done.is_set() and (self._thread is None or not self._thread.is_alive()):
                    self._thread = threading.Thread(target=self._run, name="meao-server-watch", daemon=True)
                    self._thread.start()
            return waiter.done.wait(timeout), waiter.server
        finally:
            with self._lock:
                left = [w for w in self._waiters.get(server_id, []) if w is not waiter]
                if left:
                    self._waiters[server_id] = left
                else:
                    self._waiters.pop(server_id, None)

    def event(self, server_id: str, status: str | None, record: Any = None) -> None:
        """A notification about ``server_id``: wake its waiters when ``status`` settles them.

        ``record`` stands for the server (``None``: :class:`Gone` for ``DELETED``). Status ``None`` (the
        event says that something changed, not to what, e.g. an ``*.error``) makes the poll look now.
        """
        with self._lock:
            waiters = self._waiters.get(server_id)
            if not waiters:
                return
            if status is None:
                self._kick.set()
                return
            server = record if record is not None else Gone(server_id)
            for waiter in waiters:
                self._settle(waiter, server)

    @staticmethod
    def _settle(waiter: _Waiter, server: Any) -> bool:
        status = (server.status or "").upper()
        if not waiter.done.is_set() and (status in waiter.wanted or status in waiter.failures):
            waiter.server = server
            waiter.done.set()
            return True
        return False

    def _advance(self, server: Any) -> None:
        updated = getattr(server, "updated_at", None)
        if updated and (self._mark is None or updated > self._mark):
            self._mark = updated

    def _since(self) -> str | None:
        if self._mark is None:
            return None
        # one second back: two changes within Nova's timestamp resolution must not be missed
        mark = datetime.fromisoformat(self._mark) - timedelta(seconds=1)
        return mark.isoformat()

    def _round(self) -> float:
        """Seconds to the next poll: short while a wait is young, longer as it ages; long with events."""
        if self._events_live():
            return max(SAFETY_NET_S, self._max)
        now = time.monotonic()
        youngest = min((now - w.since for ws in self._waiters.values() for w in ws), default=0.0)
        return min(self._max, max(self._min, BACKOFF * youngest))

    def _run(self) -> None:
        while True:
            with self._lock:
                if not any(not w.done.is_set() for ws in self._waiters.values() for w in ws):
                    self._thread = None
                    return
                pause = self._round()
            self._kick.wait(pause)
            self._kick.clear()
            with self._lock:
                since = self._since()
            self.polls += 1
            try:
                changed = list(self._conn.compute.servers(details=True, changes_since=since) if since
                               else self._conn.compute.servers(details=True))
            except Exception as exc:  # noqa: BLE001 — a failed round is retried; waiters time out on their own
                log.warning("polling server statuses failed: %s; retrying", exc)
                changed = []
            with self._lock:
                for server in changed:
                    self._advance(server)
                    for waiter in self._waiters.get(server.id, []):
                        self._settle(waiter, server)
