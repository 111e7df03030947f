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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, case, func, literal, or_, select, update
from sqlalchemy.orm import Session

from meao.db.clock import db_now
from meao.db.models import AppInstance, AppLcmOpOcc, utcnow
from meao.db.session import dialect_name, read_scope, session_scope, statement_scope
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
                          where={"attempt": attempt, "worker": None, "run_kind": RUN}, error=purged) is not None
        if not done:
            done = session.execute(update(AppLcmOpOcc).where(
                AppLcmOpOcc.id == op_id, AppLcmOpOcc.attempt == attempt, AppLcmOpOcc.worker.is_(None),
                AppLcmOpOcc.run_kind == ROLLBACK).values(run_kind=RUN, error=purged)).rowcount == 1
        if done:
            outbox.settle(session, op_id, attempt, outbox.DONE)
            log.warning("op %s attempt %s abandoned: %s", op_id, attempt, reason)
        return done


# ------------------------------------------------------------------------------------- workers
def claim(op_id: str, attempt: int, worker: str, load: Callable[[Session], Any] | None = None) -> Lease | None:
    """Take ``attempt`` for ``worker``; None when it is taken, superseded or not runnable (do nothing).

    ``load(session)``, when given, runs first in the claim's transaction, and what it returns is the
    lease's ``loaded``: a worker reads the occurrence and what it acts on (its instance among them, which
    the PROCESSING notification would otherwise read on its own) in the claim, a round trip fewer. Rows
    the claim then writes are refreshed in place.
    """
    mine = {"attempt": attempt, "worker": None}
    with session_scope() as session:
        loaded = load(session) if load is not None else None
        kind = None
        claimed = transition(session, op_id, PROCESSING, expect=(STARTING,), where={**mine, "run_kind": RUN},
                             worker=worker, heartbeat_at=db_now())
        if claimed:
            kind = RUN
        else:
            for state, run_kind in ((PROCESSING, RUN), (FAILED_TEMP, ROLLBACK)):  # a retry's, a fail's
                claimed = session.execute(update(AppLcmOpOcc).where(
                    AppLcmOpOcc.id == op_id, AppLcmOpOcc.attempt == attempt, AppLcmOpOcc.worker.is_(None),
                    AppLcmOpOcc.operation_state == state, AppLcmOpOcc.run_kind == run_kind)
                    .values(worker=worker, heartbeat_at=db_now()).returning(AppLcmOpOcc)
                    .execution_options(populate_existing=True)).scalar_one_or_none()
                if claimed is not None:
                    kind = run_kind
                    break
        outbox.settle(session, op_id, attempt, outbox.CLAIMED if kind else outbox.DONE)
        if not kind:
            return None
        lease = Lease(op_id, attempt, worker, kind, loaded=loaded)
        lease.journal.update(_journal(claimed))
    return lease


def _journal(op: AppLcmOpOcc) -> dict[str, Any]:
    """What only the lease holder writes while it holds the attempt, as the claim left it: the worker
    then writes its step records in one statement, without reading them back first."""
    return {"steps_done": list(op.steps_done or []), "step_log": [dict(e) for e in op.step_log or []],
            "clock_offset_s": _clock_offset(op.heartbeat_at)}


def _clock_offset(db_stamp: datetime | None) -> float:
    """The database clock minus this host's, from a stamp the database just wrote (within a round trip)."""
    if db_stamp is None:
        return 0.0
    stamp = db_stamp if db_stamp.tzinfo else db_stamp.replace(tzinfo=UTC)
    return (stamp - datetime.now(UTC)).total_seconds()


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one attempt; every method is a fenced write (:class:`Superseded` when lost)."""

    op_id: str
    attempt: int
    worker: str
    kind: str  # RUN | ROLLBACK
    #: steps_done, step_log and the database clock's offset as this holder last wrote or read them
    journal: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: what :func:`claim`'s ``load`` read
    loaded: Any = field(default=None, compare=False, repr=False)

    def _held(self) -> tuple:
        return (AppLcmOpOcc.id == self.op_id, AppLcmOpOcc.attempt == self.attempt,
                AppLcmOpOcc.worker == self.worker, AppLcmOpOcc.run_kind == self.kind,
                AppLcmOpOcc.operation_state == (PROCESSING if self.kind == RUN else FAILED_TEMP))

    def _stamp(self, session: Session, **values: Any) -> AppLcmOpOcc:
        """Heartbeat (and ``values``) if the lease is still held, in ``session``; the fresh row (RETURNING:
        no SELECT of its own)."""
        op = session.execute(update(AppLcmOpOcc).where(*self._held()).values(heartbeat_at=db_now(), **values)
                             .returning(AppLcmOpOcc).execution_options(populate_existing=True)).scalar_one_or_none()
        if op is None:
            raise self._lost()
        return op

    def _lost(self) -> Superseded:
        return Superseded(f"attempt {self.attempt} of operation {self.op_id} is no longer held by {self.worker}")

    def heartbeat(self) -> None:
        """Stamp the attempt alive (and prove it is still held): one statement, its own transaction."""
        with statement_scope() as session:
            if session.execute(update(AppLcmOpOcc).where(*self._held())
                               .values(heartbeat_at=db_now())).rowcount != 1:
                raise self._lost()

    def save_resources(self, instance_id: str, resources: dict[str, Any]) -> None:
        """Write the instance's resources (the OpenStack ids the steps made), only while the lease holds.

        On PostgreSQL one statement does both, the fence first (a CTE that stamps the held attempt, and
        locks it until the write commits), the write only when it matched: one round trip.
        """
        if dialect_name() == "postgresql":
            held = (update(AppLcmOpOcc.__table__).where(*self._held()).values(heartbeat_at=db_now())
                    .returning(AppLcmOpOcc.id).cte("held"))
            instance = AppInstance.__table__  # Core: the ORM does not run an UPDATE carrying a CTE
            fenced = (update(instance).add_cte(held).where(instance.c.id == instance_id, select(held.c.id).exists())
                      # updated_at given: the column's Python onupdate comes out NULL in a statement with a CTE
                      .values(resources=dict(resources), updated_at=utcnow()).returning(instance.c.id))
            with statement_scope() as session:
                if session.connection().execute(fenced).first() is None:
                    raise self._lost()
            return
        with session_scope() as session:
            self._write_resources(session, instance_id, resources)

    def _write_resources(self, session: Session, instance_id: str, resources: dict[str, Any]) -> None:
        """In ``session``: the fence (a heartbeat of the held attempt), then the instance's resources."""
        if session.execute(update(AppLcmOpOcc).where(*self._held()).values(heartbeat_at=db_now())).rowcount != 1:
            raise self._lost()
        session.execute(update(AppInstance).where(AppInstance.id == instance_id).values(resources=dict(resources))
                        .execution_options(synchronize_session=False))

    def drop_shared(self, instance_id: str, resources: dict[str, Any], key: str, value: str,
                    release: Callable[[], Any]) -> list[str]:
        """Write the instance's ``resources`` (in which it no longer records ``key``: ``value``, a resource it
        shares with other instances, such as a flavor) while the lease holds, and call ``release`` first,
        before that write commits, when no other instance records ``value`` any more. The others that do.

        Serialised per ``value``: two instances dropping it at once would otherwise each see the other still
        recording it, and both keep it (then nobody releases it). The second waits for the first's commit
        and finds it gone. On PostgreSQL a transaction-scoped advisory lock on the value does it; SQLite has
        one writer at a time, and the fenced write comes first. ``release`` runs inside the transaction, so
        a worker killed before the commit leaves the record for a retry to release again.
        """
        with session_scope() as session:
            if dialect_name() == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"meao:{key}:{value}"))))
            self._write_resources(session, instance_id, resources)
            others = list(session.scalars(select(AppInstance.id).where(
                AppInstance.id != instance_id, AppInstance.resources[key].as_string() == value)))
            if not others:
                release()
        return others

    def note_graceful(self, outcome: dict[str, Any]) -> None:
        """Keep on the occurrence how a GRACEFUL stop or terminate went at the MEP."""
        with statement_scope() as session:
            if session.execute(update(AppLcmOpOcc).where(*self._held())
                               .values(heartbeat_at=db_now(), graceful=dict(outcome))).rowcount != 1:
                raise self._lost()

    def boundary(self, finished: list[str], starting: str | None) -> None:
        """Between two stages: record what finished, name what starts; a pending cancel stops here.

        ``starting`` None is the last boundary, before the outcome: a cancel is honoured there too.
        One fenced statement: the holder alone writes the step records while it holds the attempt, so it
        writes them from its journal, and the row, locked by the UPDATE, decides between the two outcomes
        (going on, or a pending cancel: no step opened) and says which it was.
        """
        self._load_journal()
        done = [*self.journal["steps_done"], *finished]
        now = self._db_moment_now()
        close_all = self.kind == ROLLBACK  # a rollback's undo steps run one at a time
        going = self._logged(self.journal["step_log"], finished, starting, now, close_all=close_all)
        log_type = AppLcmOpOcc.__table__.c.step_log.type
        values: dict[str, Any] = {"heartbeat_at": db_now(), "steps_done": done}
        if self.kind == RUN:
            stopped = self._logged(self.journal["step_log"], finished, None, now)
            cancel = AppLcmOpOcc.is_cancel_pending.is_(True)
            values["current_step"] = case((cancel, None), else_=literal(starting, String))
            values["step_log"] = case((cancel, literal(stopped, log_type)), else_=literal(going, log_type))
        else:
            values.update(current_step=starting, step_log=going)
        with statement_scope() as session:
            row = session.execute(update(AppLcmOpOcc).where(*self._held()).values(**values).returning(
                AppLcmOpOcc.is_cancel_pending, AppLcmOpOcc.cancel_mode, AppLcmOpOcc.heartbeat_at)).first()
        if row is None:
            raise self._lost()
        cancel_mode = (row.cancel_mode or "GRACEFUL") if self.kind == RUN and row.is_cancel_pending else None
        self.journal.update(steps_done=done, step_log=stopped if cancel_mode else going,
                            clock_offset_s=_clock_offset(row.heartbeat_at))
        if cancel_mode:
            raise CancelRequested(cancel_mode)

    def _load_journal(self) -> None:
        """A lease not made by :func:`claim` (tests, the reaper) reads its journal once."""
        if not self.journal:
            with read_scope() as session:
                self.journal.update(_journal(session.get(AppLcmOpOcc, self.op_id)))

    def _db_moment_now(self) -> str:
        """Now on the database's clock (as the journal last measured its offset), for the step log."""
        return _db_moment(datetime.now(UTC) + timedelta(seconds=self.journal["clock_offset_s"]))

    def _logged(self, step_log: list[dict[str, Any]] | None, finished: list[str], starting: str | None,
                now: str, *, close_all: bool = False) -> list[dict[str, Any]]:
        """``step_log`` with this attempt's ``finished`` steps (``close_all``: every open one) closed and the
        steps of ``starting`` ("a+b": a stage run concurrently) opened, at ``now`` (database clock)."""
        log = [dict(e) for e in step_log or []]
        for entry in log:
            if (entry.get("attempt") == self.attempt and entry.get("ended_at") is None
                    and (close_all or entry.get("name") in finished)):
                entry["ended_at"] = now
        for name in (starting.split("+") if starting else []):
            log.append({"name": name, "started_at": now, "ended_at": None, "worker": self.worker,
                        "attempt": self.attempt})
        return log

    def complete(self, instance_values: dict[str, Any], notify, finished: list[str] | None = None) -> None:
        """RUN: PROCESSING → COMPLETED with the instance's new state, unless a cancel is pending.

        One conditional UPDATE decides: it matches only the held attempt with no cancel pending, so a
        cancel either landed before (and wins: CancelRequested) or finds the operation COMPLETED and is
        refused. ``finished``, the last stage's steps, is the last boundary: recorded in that same
        UPDATE, or, when a cancel wins, by :meth:`boundary` as before. The instance's new state goes in the
        UPDATE that releases it; ``notify(session, instance)`` emits what the new instance state must tell
        subscribers, in the same transaction.
        """
        records: dict[str, Any] = {}
        if finished is not None:
            self._load_journal()
            records = {"steps_done": [*self.journal["steps_done"], *finished],
                       "step_log": self._logged(self.journal["step_log"], finished, None, self._db_moment_now())}
        with session_scope() as session:
            op = transition(session, self.op_id, COMPLETED, expect=(PROCESSING,),
                            where={"attempt": self.attempt, "worker": self.worker, "run_kind": RUN,
                                   "is_cancel_pending": False},
                            instance_values=instance_values, current_step=None, heartbeat_at=db_now(), **records)
            if op is not None:
                notify(session, session.get(AppInstance, op.app_instance_id))  # in the session: no SELECT
        if op is None:  # a cancel is pending (the boundary records the last stage and raises it), or the lease
            self.boundary(finished or [], None)  # is gone (the boundary raises Superseded)
            raise Superseded(f"operation {self.op_id} changed while completing")
        self.journal.update(records)

    def rolled_back(self, instance_values: dict[str, Any]) -> None:
        """ROLLBACK: FAILED_TEMP → FAILED, the instance as the rollback left it."""
        with session_scope() as session:
            op = self._stamp(session)
            inst = session.get(AppInstance, op.app_instance_id)
            for name, value in instance_values.items():
                setattr(inst, name, value)
            if not transition(session, self.op_id, FAILED, expect=(FAILED_TEMP,),
                              where={"attempt": self.attempt, "worker": self.worker}, worker=None,
                              current_step=None,
                              step_log=self._logged(op.step_log, [], None, _db_moment(op.heartbeat_at),
                                                    close_all=True)):
                raise Superseded(f"operation {self.op_id} changed while failing")

    def fail_temp(self, error: dict[str, Any]) -> bool:
        """RUN: → FAILED_TEMP with ``error``. ROLLBACK: the occurrence stays FAILED_TEMP, free again,
        with ``error`` saying why the rollback stopped. False when the lease was already lost."""
        with session_scope() as session:
            if self.kind == RUN:
                return transition(session, self.op_id, FAILED_TEMP, expect=(PROCESSING,),
                                  where={"attempt": self.attempt, "worker": self.worker, "run_kind": RUN},
                                  error=error, worker=None, is_cancel_pending=False, cancel_mode=None) is not None
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
