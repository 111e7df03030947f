"""Sends the outbox's jobs to the broker: what is PENDING at once, what nobody claimed again later.

Every API and worker process runs one :class:`Dispatcher` (started by :mod:`meao.background`), so a job
written by a process that died is sent by another. Sending takes a lease on the row first (a
compare-and-swap on its state and send count), so two dispatchers never send one row at the same
time. A broker that refuses puts the row back to PENDING for a later pass: an outage delays jobs, it
loses none. A SENT row that no worker claimed within ``MEAO_JOB_RESEND_AFTER_S`` (doubling with each
send, at most ten minutes) is sent again; the attempt's claim makes duplicates harmless.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from sqlalchemy import delete, or_, select, update

from meao.celery_app import send_job
from meao.config import Settings, get_settings
from meao.db.clock import db_now
from meao.db.models import Job
from meao.db.session import read_scope, session_scope
from meao.jobs.outbox import CLAIMED, DONE, PENDING, SENT

log = logging.getLogger(__name__)

MAX_RESEND_AFTER_S = 600.0
BROKER_RETRY_S = 1.0  # how soon a send the broker refused is tried again
KEEP_SETTLED_S = 86400.0  # settled rows are kept this long (what ``meao ops`` can show), then pruned

_running: Dispatcher | None = None


def _resend_after(settings: Settings, sends: int) -> float:
    return min(settings.jobs.resend_after_s * 2 ** min(sends, 10), MAX_RESEND_AFTER_S)


def _lease(job_id: int, state: str, sends: int, settings: Settings) -> bool:
    """Take the right to send this row now; False when another dispatcher took it first."""
    with session_scope() as session:
        return session.execute(update(Job).where(Job.id == job_id, Job.state == state, Job.sends == sends).values(
            state=SENT, sends=sends + 1, sent_at=db_now(),
            send_after=db_now(_resend_after(settings, sends)))).rowcount == 1


def _unsent(job_id: int, sends_now: int, error: str) -> None:
    """The broker refused: back to PENDING, tried again soon (the failed send does not count)."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.state == SENT, Job.sends == sends_now).values(
            state=PENDING, sends=sends_now - 1, send_after=db_now(BROKER_RETRY_S), last_error=error[:2000]))


def dispatch_due(settings: Settings | None = None, limit: int = 200) -> int:
    """Send every job that is due; stops at the first broker failure (the broker is down). Returns how many."""
    settings = settings or get_settings()
    with read_scope() as session:  # one SELECT, no transaction: a PoP worker polls over the WAN
        due = session.execute(select(Job.id, Job.task, Job.args, Job.queue, Job.state, Job.sends)
                              .where(Job.state.in_((PENDING, SENT)), Job.send_after <= db_now())
                              .order_by(Job.id).limit(limit)).all()
    sent = 0
    for job_id, task, args, queue, state, sends in due:
        if not _lease(job_id, state, sends, settings):
            continue
        try:
            send_job(task, args, queue)
        except Exception as exc:  # noqa: BLE001 — any broker failure: keep the row, try later
            _unsent(job_id, sends + 1, f"{type(exc).__name__}: {exc}")
            log.warning("could not send job %s (%s on %s): %s; it stays in the outbox and is sent when the "
                        "broker answers", job_id, task, queue, exc)
            break
        if state == SENT:
            log.warning("job %s (%s %s on %s) was not claimed in time; sent again (send %d)", job_id, task,
                        args, queue, sends + 1)
        sent += 1
    return sent


def resend_now() -> int:
    """Make every sent, unclaimed job due at once (an in-memory broker's queue died with its process)."""
    with session_scope() as session:
        return session.execute(update(Job).where(Job.state == SENT).values(send_after=db_now())).rowcount


def prune_settled() -> int:
    """Delete claimed and finished rows older than a day."""
    with session_scope() as session:
        return session.execute(delete(Job).where(or_(Job.state == CLAIMED, Job.state == DONE),
                                                 Job.created_at < db_now(-KEEP_SETTLED_S))).rowcount


def kick() -> None:
    """Send what is due now: wake this process's dispatcher, or the one of the ``meao serve --workers N``
    parent this process serves for (MEAO_DISPATCH_WAKE), or send inline when neither runs."""
    if _running is not None and _running.alive():
        _running.wake.set()
    elif os.environ.get(WAKE_ENV):
        _wake_remote(os.environ[WAKE_ENV])
    else:
        dispatch_due()


WAKE_ENV = "MEAO_DISPATCH_WAKE"


def _wake_remote(address: str) -> None:
    """One datagram to the parent's :func:`wake_listener`; a lost one costs at most a dispatch interval."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"k", address.encode().replace(b"@", b"\0", 1))
        except OSError as exc:  # full or gone: the parent's periodic pass sends the job
            log.debug("could not wake the dispatcher at %s: %s", address, exc)


@contextlib.contextmanager
def wake_listener() -> Iterator[str]:
    """A socket (Linux abstract namespace, so nothing to clean up) whose datagrams wake this process's
    running dispatcher; yields its address for :data:`WAKE_ENV`."""
    address = f"@meao-dispatch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address.encode().replace(b"@", b"\0", 1))
    sock.settimeout(0.5)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if _running is not None:
                _running.wake.set()

    thread = threading.Thread(target=listen, name="meao-dispatch-wake", daemon=True)
    thread.start()
    try:
        yield address
    finally:
        stop.set()
        thread.join(2)
        sock.close()


class Dispatcher:
    """The per-process loop: a pass every ``MEAO_JOB_DISPATCH_INTERVAL_S`` seconds, or at once when kicked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="meao-dispatcher", daemon=True)

    def start(self) -> None:
        """Start the loop and make this the process's dispatcher (the one :func:`kick` wakes)."""
        global _running
        _running = self
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass."""
        global _running
        self._stop.set()
        self.wake.set()
        if _running is self:
            _running = None

    def alive(self) -> bool:
        """True while the loop runs."""
        return self._thread.is_alive() and not self._stop.is_set()

    def _loop(self) -> None:
        passes = 0
        while not self._stop.is_set():
            self.wake.wait(self.settings.jobs.dispatch_interval_s)
            self.wake.clear()
            if self._stop.is_set():
                return
            try:
                dispatch_due(self.settings)
                passes += 1
                if passes % 1000 == 0:
                    prune_settled()
            except Exception:
                log.exception("job dispatch pass failed; trying again in %.1f s",
                              self.settings.jobs.dispatch_interval_s)
