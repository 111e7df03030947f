"""One status poller per cloud connection for every server a process is waiting on.

Fifty jobs each polling ``GET /servers/{id}`` four times a second is 200 requests a second to nova-api,
which then has less time to build the servers. Instead, waiters register here and one thread asks Nova,
once per round, for the servers that changed since the newest ``updated`` time it has seen
(``changes-since``, Nova's own clock, so no clock skew), and wakes the waiters whose server reached a
wanted or a failure status. A waiter alone costs the same as before: one request per round.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Waiter:
    wanted: frozenset[str]
    failures: frozenset[str]
    done: threading.Event = field(default_factory=threading.Event)
    server: Any = None


class ServerWatch:
    """Wait for servers to reach a status, sharing one poll per round among all waiters."""

    def __init__(self, conn: Any, interval_s: float) -> None:
        self._conn = conn
        self._interval = interval_s
        self._lock = threading.Lock()
        self._waiters: dict[str, list[_Waiter]] = {}
        self._mark: str | None = None  # newest ``updated`` seen, as Nova wrote it
        self._thread: threading.Thread | None = None

    def wait(self, server: Any, wanted: set[str], failures: set[str], timeout: float) -> tuple[bool, Any]:
        """Block until ``server`` (a fresh read) has a status in ``wanted`` or ``failures``, or ``timeout``.

        Returns (reached, last server record): reached is False on timeout.
        """
        waiter = _Waiter(frozenset(wanted), frozenset(failures), server=server)
        if self._settled(waiter, server):
            return True, server
        with self._lock:
            self._advance(server)
            self._waiters.setdefault(server.id, []).append(waiter)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="meao-server-watch", daemon=True)
                self._thread.start()
        try:
            return waiter.done.wait(timeout), waiter.server
        finally:
            with self._lock:
                left = [w for w in self._waiters.get(server.id, []) if w is not waiter]
                if left:
                    self._waiters[server.id] = left
                else:
                    self._waiters.pop(server.id, None)

    @staticmethod
    def _settled(waiter: _Waiter, server: Any) -> bool:
        status = (server.status or "").upper()
        if status in waiter.wanted or status in waiter.failures:
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

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._waiters:
                    self._thread = None
                    return
                since = self._since()
            started = time.monotonic()
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
                        if not waiter.done.is_set():
                            waiter.server = server
                            self._settled(waiter, server)
            time.sleep(max(0.0, self._interval - (time.monotonic() - started)))
