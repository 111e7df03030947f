"""What every fenced job shares: who this worker is, what it raises when its hold is gone, its heartbeat.

A lifecycle attempt (:mod:`meao.lcm.lifecycle`) and an onboarding attempt (:mod:`meao.catalogue.onboarding`)
are held the same way: a claim names this worker, each write is conditional on that claim, and a
heartbeat thread stamps it alive. When a stamp matches nothing the hold is lost, and the job stops at
its next write (or at :meth:`Heartbeat.check`, between chunks of long I/O).
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
from collections.abc import Callable

from meao.config import get_settings

log = logging.getLogger(__name__)

#: the identity a worker process claims attempts under
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class Superseded(Exception):
    """This worker no longer holds the attempt (reaped, retried, failed or deleted): touch nothing more."""


class Heartbeat(threading.Thread):
    """Calls ``stamp`` every ``MEAO_HEARTBEAT_S`` until halted; ``stamp`` raises Superseded when the hold is
    lost, which ends the beat and makes :meth:`check` raise. ``what`` names the attempt in logs.

    The beat runs in the context it was made in, so its log lines carry the job's op id.
    """

    def __init__(self, stamp: Callable[[], None], what: str) -> None:
        super().__init__(name=f"beat-{what[:24]}", daemon=True)
        self.stamp, self.what = stamp, what
        self.halt = threading.Event()
        self.lost = threading.Event()
        self._context = contextvars.copy_context()

    def run(self) -> None:
        self._context.run(self._beat)

    def _beat(self) -> None:
        while not self.halt.wait(get_settings().jobs.heartbeat_s):
            try:
                self.stamp()
            except Superseded:
                if not self.halt.is_set():
                    log.warning("%s: hold lost; this worker stops at its next write", self.what)
                    self.lost.set()
                return
            except Exception:  # the database may come back; the reaper decides meanwhile
                log.exception("heartbeat of %s failed", self.what)

    def check(self) -> None:
        """Raise :class:`Superseded` once a heartbeat has found the hold lost."""
        if self.lost.is_set():
            raise Superseded(f"{self.what} was given up by the reaper")
