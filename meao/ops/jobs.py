"""Jobs across queues and workers: waiting (broker), running (workers' reports), failed (op occurrences).

A job's own state lives where it is: a waiting job is a message in the broker, a running one is a request
inside a worker, and a failed lifecycle job is an op occurrence in FAILED_TEMP (its message is gone; retry
sends a new one). Nothing here is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from meao.db.keyset import ALL, Key, Window, window
from meao.db.models import AppLcmOpOcc
from meao.db.session import session_scope
from meao.lcm import op_occ
from meao.ops import queues as q
from meao.ops import workers as w
from meao.problems import BadRequest, NotFound

WAITING, RUNNING, FAILED = "WAITING", "RUNNING", "FAILED"
_RANK = {WAITING: 0, RUNNING: 1, FAILED: 2}  # the list of jobs: waiting, then running, then failed
FAILED_ORDER = ("state_entered_time", "id")  # failed jobs, oldest failure first
RECENT_FAILURES = 5


@dataclass
class Job:
    """One job, whatever its state."""

    task: str
    state: str
    queue: str | None
    pops: list[str] = field(default_factory=list)
    task_id: str | None = None
    args: list[Any] = field(default_factory=list)
    enqueued_at: datetime | None = None
    worker: str | None = None
    op_occ_id: str | None = None
    app_instance_id: str | None = None
    lcm_operation: str | None = None
    step: str | None = None
    since: datetime | None = None
    error: dict[str, Any] | None = None


@dataclass
class QueueView:
    """A queue with its running jobs and recent failures."""

    reading: q.QueueReading
    running: list[Job]
    waiting: list[Job]
    recent_failures: list[Job]


@dataclass
class WorkerView:
    """A worker with the jobs it runs now."""

    reading: w.WorkerReading
    running: list[Job]


def _waiting(job: q.WaitingJob, pops: list[str]) -> Job:
    from meao.jobs.contract import RUN_OP_TASK

    sent = datetime.fromtimestamp(job.enqueued_at, UTC) if job.enqueued_at else None
    return Job(task=job.task, state=WAITING, queue=job.queue, pops=pops, task_id=job.task_id, args=job.args,
               enqueued_at=sent, op_occ_id=str(job.args[0]) if job.task == RUN_OP_TASK and job.args else None)


def _running(job: w.RunningJob, pops_of: dict[str, list[str]]) -> Job:
    return Job(task=job.task, state=RUNNING, queue=job.queue, pops=pops_of.get(job.queue or "", []),
               task_id=job.task_id, args=job.args, worker=job.worker, op_occ_id=job.op_occ_id,
               app_instance_id=job.app_instance_id, lcm_operation=job.lcm_operation, step=job.step,
               since=job.since)


def _with_ops(jobs: list[Job]) -> list[Job]:
    """Fill in the op occurrence details of waiting lifecycle jobs (their message carries only the id)."""
    ids = [j.op_occ_id for j in jobs if j.op_occ_id]
    if not ids:
        return jobs
    with session_scope() as session:
        ops = {op.id: op for op in session.scalars(select(AppLcmOpOcc).where(AppLcmOpOcc.id.in_(ids)))}
        for job in jobs:
            op = ops.get(job.op_occ_id or "")
            if op is not None:
                job.app_instance_id, job.lcm_operation = op.app_instance_id, op.lcm_operation
    return jobs


def _failed(op: AppLcmOpOcc, pops_of: dict[str, list[str]]) -> Job:
    from meao.jobs.contract import RUN_OP_TASK

    return Job(task=RUN_OP_TASK, state=FAILED, queue=op.queue, pops=pops_of.get(op.queue or "", []),
               args=[op.id, str(op.attempt)], op_occ_id=op.id, app_instance_id=op.app_instance_id,
               lcm_operation=op.lcm_operation, step=op.current_step, since=op.state_entered_time, error=op.error)


def _failed_ops(queue: str | None, states: tuple[str, ...], win: Window | None = None,
                recent: int | None = None) -> list[AppLcmOpOcc]:
    """The occurrences in ``states`` (of ``queue``): in ``win`` in the order they entered the state, or
    the ``recent`` ones that entered it last, newest first."""
    with session_scope() as session:
        stmt = select(AppLcmOpOcc).where(AppLcmOpOcc.operation_state.in_(states))
        if queue:
            stmt = stmt.where(AppLcmOpOcc.queue == queue)
        if win is not None:
            stmt = window(stmt, AppLcmOpOcc, win, FAILED_ORDER)
        else:
            stmt = stmt.order_by(AppLcmOpOcc.state_entered_time.desc()).limit(recent)
        rows = list(session.scalars(stmt))
        session.expunge_all()
        return rows


def _running_by_queue(pops_of: dict[str, list[str]]) -> dict[str | None, list[Job]]:
    by_queue: dict[str | None, list[Job]] = {}
    for reading in w.worker_readings():
        for job in reading.running:
            by_queue.setdefault(job.queue, []).append(_running(job, pops_of))
    return by_queue


def queue_views(name: str | None = None) -> list[QueueView]:
    """Every queue (or queue ``name``, with its waiting jobs)."""
    pops_of = q.queue_pops()
    if name is not None and name not in pops_of:
        raise NotFound(f"no queue {name}: meao uses {', '.join(pops_of)} (`meao queues list`)")
    readings = q.queue_readings([name] if name else None, peek=q.PEEK_LIMIT if name else 0)
    running = _running_by_queue(pops_of)
    views = []
    for reading in readings:
        failures = _failed_ops(reading.name, (op_occ.FAILED_TEMP, op_occ.FAILED), recent=RECENT_FAILURES)
        views.append(QueueView(reading=reading, running=running.get(reading.name, []),
                               waiting=_with_ops([_waiting(j, reading.pops) for j in reading.waiting]),
                               recent_failures=[_failed(op, pops_of) for op in failures]))
    return views


def worker_views() -> list[WorkerView]:
    """Every worker with its running jobs (listed without their PoPs)."""
    return [WorkerView(reading=r, running=[_running(j, {}) for j in r.running]) for r in w.worker_readings()]


def job_key(job: Job) -> Key:
    """A job's place in the list of jobs: waiting, running, then failed; each oldest first, ties by id."""
    when = job.enqueued_at if job.state == WAITING else job.since
    job_id = job.op_occ_id if job.state == FAILED else job.task_id
    return _RANK[job.state], when.isoformat() if when else "", job_id or ""


def list_jobs(state: str | None = None, queue: str | None = None, win: Window = ALL) -> list[Job]:
    """The jobs in ``win`` (keyed by ``job_key``), optionally of one state and / or queue.

    Waiting and running jobs are few (at most ``PEEK_LIMIT`` per queue, and the workers' concurrency) and
    read whole from the broker and the workers; failed ones, which can pile up, are a keyset window of the
    database.
    """
    pops_of = q.queue_pops()
    if queue is not None and queue not in pops_of:
        raise NotFound(f"no queue {queue}: meao uses {', '.join(pops_of)} (`meao queues list`)")
    after = _checked_job_key(win.after)
    jobs: list[Job] = []
    if state in (None, WAITING) and after[0] <= _RANK[WAITING]:
        for reading in q.queue_readings([queue] if queue else None, peek=q.PEEK_LIMIT):
            jobs += [_waiting(j, reading.pops) for j in reading.waiting]
    if state in (None, RUNNING) and after[0] <= _RANK[RUNNING]:
        running = _running_by_queue(pops_of)
        jobs += [j for key, js in running.items() if queue is None or key == queue for j in js]
    jobs = sorted((j for j in jobs if job_key(j) > after), key=job_key)[:win.limit]
    if state in (None, FAILED) and (win.limit is None or len(jobs) < win.limit):
        failed_after = after[1:] if after[0] == _RANK[FAILED] else None
        room = None if win.limit is None else win.limit - len(jobs)
        failed = _failed_ops(queue, (op_occ.FAILED_TEMP,), Window(failed_after, room))
        jobs += [_failed(op, pops_of) for op in failed]
    _with_ops([j for j in jobs if j.state == WAITING])  # only the page's: one query, whatever the depth
    return jobs


def _checked_job_key(after: Key | None) -> Key:
    """``after``, or a key before every job; BadRequest when it is not a job key (a marker of another list)."""
    if after is None:
        return (-1, "", "")
    if len(after) != 3 or not isinstance(after[0], int) or not all(isinstance(v, str) for v in after[1:]):
        raise BadRequest("nextpage_opaque_marker does not fit the list of jobs; request the list without it and "
                         "follow the Link headers", title="Invalid paging marker")
    return after


def purge(name: str) -> list[Job]:
    """Purge queue ``name`` (see :func:`meao.ops.queues.purge`)."""
    pops_of = q.queue_pops()
    if name not in pops_of:
        raise NotFound(f"no queue {name}: meao uses {', '.join(pops_of)} (`meao queues list`)")
    return _with_ops([_waiting(j, pops_of[name]) for j in q.purge(name)])
