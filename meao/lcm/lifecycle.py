"""The life of an operation occurrence's attempts: every transition a request or a job makes, in one place.

Requests start an attempt (``start``, ``retry``, ``request_rollback``) and write its job to the outbox in
the same transaction; a worker ``claim``s the attempt and gets a :class:`Lease`; every write it makes
after that (heartbeat, resources, step boundary, outcome) is one conditional UPDATE on
(op id, attempt, worker, what it runs): a fencing token. When the reaper has given the attempt up, or a
retry or fail superseded it, the write matches no row and the worker gets :class:`Superseded`: it stops
at once and touches nothing more. Leases and heartbeats use the database's clock (``db_now``), so a
PoP whose clock is off cannot make a live worker look dead, or a dead one alive.

What an attempt runs (``run_kind``): RUN the operation's steps (STARTING/PROCESSING), or ROLLBACK what
they created (POST …/fail; the occurrence stays FAILED_TEMP, and locked, until the rollback ends in
FAILED, or fails and leaves it FAILED_TEMP for another retry or fail).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from meao.db.clock import db_now
from meao.db.models import AppInstance, AppLcmOpOcc
from meao.db.session import session_scope
from meao.jobs import outbox
from meao.jobs.contract import RUN_OP_TASK
from meao.jobs.fencing import Superseded
from meao.lcm.op_occ import COMPLETED, FAILED, FAILED_TEMP, PROCESSING, STARTING, transition
from meao.logs import bind_op
from meao.problems import problem

log = logging.getLogger(__name__)

RUN, ROLLBACK = "RUN", "ROLLBACK"
STEP_DONE, STEP_RUNNING, STEP_FAILED = "DONE", "RUNNING", "FAILED"


class CancelRequested(Exception):
    """A cancel is pending: the operation stops at this step boundary (the mode is the message)."""


# ------------------------------------------------------------------------------------- requests
def start(session: Session, op: AppLcmOpOcc) -> None:
    """Write the job of a new occurrence's first attempt (the occurrence is in ``session``, flushed)."""
    outbox.add(session, RUN_OP_TASK, op.id, op.attempt, op.queue or "")


def retry(session: Session, op: AppLcmOpOcc) -> bool:
    """FAILED_TEMP → PROCESSING as a new attempt, with its job; False if another request got there first."""
    attempt = op.attempt + 1
    if not transition(session, op.id, PROCESSING, expect=(FAILED_TEMP,),
                      where={"attempt": op.attempt, "worker": None, "run_kind": RUN},
                      attempt=attempt, error=None, is_cancel_pending=False, cancel_mode=None):
        return False
    outbox.add(session, RUN_OP_TASK, op.id, attempt, op.queue or "")
    return True


def request_rollback(session: Session, op: AppLcmOpOcc) -> bool:
    """Start a ROLLBACK attempt of a FAILED_TEMP occurrence, with its job; False if it was not free."""
    attempt = op.attempt + 1
    moved = session.execute(update(AppLcmOpOcc).where(
        AppLcmOpOcc.id == op.id, AppLcmOpOcc.attempt == op.attempt, AppLcmOpOcc.worker.is_(None),
        AppLcmOpOcc.run_kind == RUN, AppLcmOpOcc.operation_state == FAILED_TEMP)
        .values(attempt=attempt, run_kind=ROLLBACK, heartbeat_at=None)).rowcount == 1
    if moved:
        outbox.add(session, RUN_OP_TASK, op.id, attempt, op.queue or "")
    return moved


def cancel_starting(session: Session, op_id: str, error: dict[str, Any]) -> bool:
    """A STARTING occurrence no worker claimed ends at once in FAILED_TEMP; its job will do nothing."""
    op = session.get(AppLcmOpOcc, op_id)
    if not transition(session, op_id, FAILED_TEMP, expect=(STARTING,), where={"worker": None}, error=error,
                      cancel_mode=None):
        return False
    outbox.settle(session, op_id, op.attempt, outbox.DONE)
    return True


def abandon(op_id: str, attempt: int, reason: str) -> bool:
    """End an attempt whose job will never run (purged from its queue); only an unclaimed attempt moves.

    A RUN attempt goes FAILED_TEMP; a ROLLBACK attempt gives the occurrence back, FAILED_TEMP, for
    another retry or fail.
    """
    purged = problem(503, "Job purged", f"operation {op_id} did not run: {reason}; retry the operation to "
                     "send it again, or fail it")
    with bind_op(op_id), session_scope() as session:
        done = transition(session, op_id, FAILED_TEMP, expect=(STARTING, PROCESSING),
                          where={"attempt": attempt, "worker": None, "run_kind": RUN}, error=purged)
        if not done:
            done = session.execute(update(AppLcmOpOcc).where(
                AppLcmOpOcc.id == op_id, AppLcmOpOcc.attempt == attempt, AppLcmOpOcc.worker.is_(None),
                AppLcmOpOcc.run_kind == ROLLBACK).values(run_kind=RUN, error=purged)).rowcount == 1
        if done:
            outbox.settle(session, op_id, attempt, outbox.DONE)
            log.warning("op %s attempt %s abandoned: %s", op_id, attempt, reason)
        return done


# ------------------------------------------------------------------------------------- workers
def claim(op_id: str, attempt: int, worker: str) -> Lease | None:
    """Take ``attempt`` for ``worker``; None when it is taken, superseded or not runnable (do nothing)."""
    mine = {"attempt": attempt, "worker": None}
    with session_scope() as session:
        kind = None
        if transition(session, op_id, PROCESSING, expect=(STARTING,), where={**mine, "run_kind": RUN},
                      worker=worker, heartbeat_at=db_now()):
            kind = RUN
        else:
            for state, run_kind in ((PROCESSING, RUN), (FAILED_TEMP, ROLLBACK)):  # a retry's, a fail's
                if session.execute(update(AppLcmOpOcc).where(
                        AppLcmOpOcc.id == op_id, AppLcmOpOcc.attempt == attempt, AppLcmOpOcc.worker.is_(None),
                        AppLcmOpOcc.operation_state == state, AppLcmOpOcc.run_kind == run_kind)
                        .values(worker=worker, heartbeat_at=db_now())).rowcount == 1:
                    kind = run_kind
                    break
        outbox.settle(session, op_id, attempt, outbox.CLAIMED if kind else outbox.DONE)
    return Lease(op_id, attempt, worker, kind) if kind else None


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one attempt; every method is a fenced write (:class:`Superseded` when lost)."""

    op_id: str
    attempt: int
    worker: str
    kind: str  # RUN | ROLLBACK

    def _held(self) -> tuple:
        return (AppLcmOpOcc.id == self.op_id, AppLcmOpOcc.attempt == self.attempt,
                AppLcmOpOcc.worker == self.worker, AppLcmOpOcc.run_kind == self.kind,
                AppLcmOpOcc.operation_state == (PROCESSING if self.kind == RUN else FAILED_TEMP))

    def _stamp(self, session: Session, **values: Any) -> AppLcmOpOcc:
        """Heartbeat (and ``values``) if the lease is still held, in ``session``; the fresh row."""
        if session.execute(update(AppLcmOpOcc).where(*self._held())
                           .values(heartbeat_at=db_now(), **values)).rowcount != 1:
            raise Superseded(f"attempt {self.attempt} of operation {self.op_id} is no longer held by {self.worker}")
        return session.execute(select(AppLcmOpOcc).where(AppLcmOpOcc.id == self.op_id)
                               .execution_options(populate_existing=True)).scalar_one()

    def heartbeat(self) -> None:
        """Stamp the attempt alive (and prove it is still held)."""
        with session_scope() as session:
            self._stamp(session)

    def save_resources(self, instance_id: str, resources: dict[str, Any]) -> None:
        """Write the instance's resources (the OpenStack ids the steps made), only while the lease holds."""
        with session_scope() as session:
            self._stamp(session)
            session.execute(update(AppInstance).where(AppInstance.id == instance_id)
                            .values(resources=dict(resources)))

    def note_graceful(self, outcome: dict[str, Any]) -> None:
        """Keep on the occurrence how a GRACEFUL stop or terminate went at the MEP."""
        with session_scope() as session:
            self._stamp(session, graceful=dict(outcome))

    def boundary(self, finished: list[str], starting: str | None) -> None:
        """Between two stages: record what finished, name what starts; a pending cancel stops here.

        ``starting`` None is the last boundary, before the outcome: a cancel is honoured there too.
        """
        with session_scope() as session:
            op = self._stamp(session)
            cancel = (op.cancel_mode or "GRACEFUL") if self.kind == RUN and op.is_cancel_pending else None
            values: dict[str, Any] = {"current_step": None if cancel else starting}
            if finished:
                values["steps_done"] = [*(op.steps_done or []), *finished]
            # a rollback's undo steps run one at a time: the next one starting ends the previous one
            values["step_log"] = self._logged(op, finished, None if cancel else starting,
                                              close_all=self.kind == ROLLBACK)
            self._stamp(session, **values)
        if cancel:
            raise CancelRequested(cancel)

    def _logged(self, op: AppLcmOpOcc, finished: list[str], starting: str | None, *,
                close_all: bool = False) -> list[dict[str, Any]]:
        """``op``'s step log with this attempt's ``finished`` steps (``close_all``: every open one) closed and
        the steps of ``starting`` ("a+b": a stage run concurrently) opened, at the heartbeat just stamped."""
        now = _db_moment(op.heartbeat_at)
        log = [dict(e) for e in op.step_log or []]
        for entry in log:
            if (entry.get("attempt") == self.attempt and entry.get("ended_at") is None
                    and (close_all or entry.get("name") in finished)):
                entry["ended_at"] = now
        for name in (starting.split("+") if starting else []):
            log.append({"name": name, "started_at": now, "ended_at": None, "worker": self.worker,
                        "attempt": self.attempt})
        return log

    def complete(self, instance_values: dict[str, Any], notify) -> None:
        """RUN: PROCESSING → COMPLETED with the instance's new state, unless a cancel is pending.

        The stamp locks the row first, so a cancel either landed before (and wins: CancelRequested)
        or finds the operation COMPLETED and is refused. ``notify(session, instance)`` emits what the
        new instance state must tell subscribers, in the same transaction.
        """
        with session_scope() as session:
            op = self._stamp(session)
            if op.is_cancel_pending:
                raise CancelRequested(op.cancel_mode or "GRACEFUL")
            inst = session.get(AppInstance, op.app_instance_id)
            for name, value in instance_values.items():
                setattr(inst, name, value)
            if not transition(session, self.op_id, COMPLETED, expect=(PROCESSING,),
                              where={"attempt": self.attempt, "worker": self.worker}, current_step=None):
                raise Superseded(f"operation {self.op_id} changed while completing")
            notify(session, inst)

    def rolled_back(self, instance_values: dict[str, Any]) -> None:
        """ROLLBACK: FAILED_TEMP → FAILED, the instance as the rollback left it."""
        with session_scope() as session:
            op = self._stamp(session)
            inst = session.get(AppInstance, op.app_instance_id)
            for name, value in instance_values.items():
                setattr(inst, name, value)
            if not transition(session, self.op_id, FAILED, expect=(FAILED_TEMP,),
                              where={"attempt": self.attempt, "worker": self.worker}, worker=None,
                              current_step=None, step_log=self._logged(op, [], None, close_all=True)):
                raise Superseded(f"operation {self.op_id} changed while failing")

    def fail_temp(self, error: dict[str, Any]) -> bool:
        """RUN: → FAILED_TEMP with ``error``. ROLLBACK: the occurrence stays FAILED_TEMP, free again,
        with ``error`` saying why the rollback stopped. False when the lease was already lost."""
        with session_scope() as session:
            if self.kind == RUN:
                return transition(session, self.op_id, FAILED_TEMP, expect=(PROCESSING,),
                                  where={"attempt": self.attempt, "worker": self.worker, "run_kind": RUN},
                                  error=error, worker=None, is_cancel_pending=False, cancel_mode=None)
            return session.execute(update(AppLcmOpOcc).where(*self._held()).values(
                run_kind=RUN, worker=None, error=error, current_step=None)).rowcount == 1


def _db_moment(stamp: datetime | None) -> str:
    """A step log time: the database clock's ``stamp`` (naive from SQLite: UTC) as ISO 8601 text."""
    moment = stamp or datetime.now(UTC)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def step_state(entry: dict[str, Any], op: Any) -> str:
    """DONE (ended), RUNNING (open, and its attempt is the one a worker holds now) or FAILED (left open by
    an attempt that failed, was cancelled, reaped or superseded)."""
    if entry.get("ended_at") is not None:
        return STEP_DONE
    if op.worker is not None and entry.get("attempt") == op.attempt:
        return STEP_RUNNING
    return STEP_FAILED


# ------------------------------------------------------------------------------------- reaper
def reap(stale_after_s: float) -> int:
    """Give up attempts whose worker stopped beating for ``stale_after_s`` (by the database's clock).

    A RUN attempt goes PROCESSING → FAILED_TEMP (worker lost); a ROLLBACK attempt leaves the occurrence
    FAILED_TEMP and free. Either way the old worker's next write matches nothing (it is fenced out).
    """
    with session_scope() as session:
        rows = session.execute(select(AppLcmOpOcc.id, AppLcmOpOcc.attempt, AppLcmOpOcc.worker,
                                      AppLcmOpOcc.current_step, AppLcmOpOcc.run_kind).where(
            AppLcmOpOcc.worker.is_not(None), AppLcmOpOcc.heartbeat_at < db_now(-stale_after_s),
            or_(AppLcmOpOcc.operation_state == PROCESSING,
                (AppLcmOpOcc.operation_state == FAILED_TEMP) & (AppLcmOpOcc.run_kind == ROLLBACK)))).all()
    n = 0
    for op_id, attempt, worker, step, kind in rows:
        # a worker cut off before it recorded a step (a PoP's WAN cut just after it took the job) has none
        what = "rolling back" if kind == ROLLBACK else f"during step '{step}'" if step else "before its first step"
        lost = problem(503, "Worker lost", f"the MEPM-V worker {worker} stopped responding {what}; retry the "
                       "operation to continue it, or fail it to roll back what it created")
        if Lease(op_id, attempt, worker, kind).fail_temp(lost):
            n += 1
    if n:
        log.warning("gave up %d attempt(s) whose worker stopped responding", n)
    return n
