"""Runs one lifecycle operation occurrence in a MEPM-V worker: claim, steps, outcome; and the reaper.

- Claim: compare-and-swap on (occurrence, attempt, no worker yet); a redelivered message finds the
  attempt taken and does nothing.
- While steps run, a heartbeat thread stamps the occurrence; the reaper moves PROCESSING occurrences
  whose heartbeat stopped (worker killed) to FAILED_TEMP, so nothing stays PROCESSING forever.
- Success: instance state, occurrence COMPLETED and their notifications in one transaction.
  Failure: FAILED_TEMP with a ProblemDetails ``error``; ``retry`` continues, ``fail`` rolls back.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from meao.catalogue.appd import AppD
from meao.catalogue.packages import content_dir
from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, MecHost, utcnow
from meao.db.session import session_scope
from meao.lcm import op_occ
from meao.logs import bind_op
from meao.metrics import JOB_STEP_SECONDS, JOBS
from meao.nfvo.drivers import get_vim
from meao.notify.lcm_events import emit_instance_state_notification
from meao.problems import Conflict, ProblemError, problem
from mecpm import flows
from mecpm.meao_link import JobRecords
from mecpm.mep import mep_for_host

log = logging.getLogger(__name__)
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class Cancelled(Exception):
    """The operation was cancelled between two steps."""


def _context(op: AppLcmOpOcc, inst: AppInstance, session) -> flows.FlowContext:
    pkg = session.get(AppPackage, inst.app_pkg_id)
    host = session.get(MecHost, op.mec_host_id or inst.mec_host_id)
    if pkg is None or host is None:
        raise flows.FlowError(f"the package or MEC host of application instance {inst.id} is gone")
    settings = get_settings()
    subject = flows.OpSubject(id=op.id, instance_id=inst.id, package_id=pkg.id, appd_id=inst.appd_id,
                              appd=AppD.from_stored(pkg.appd_model), content_dir=content_dir(pkg.id),
                              params=op.operation_params or {})
    pop = flows.PopSite(vim=get_vim(host.cloud), mep=mep_for_host(host.id), availability_zone=host.availability_zone,
                        networks=dict(host.networks or {}), boot_timeout_s=settings.jobs.boot_timeout_s)
    return flows.FlowContext(
        op=subject, pop=pop, meao=JobRecords(inst.id, pkg.id, host.cloud, settings.public_url),
        resources=dict(inst.resources or {}, cloud=host.cloud, host=host.id),
        fresh=op.attempt == 1 and not op.steps_done)


def _claim(op_id: str, attempt: int) -> bool:
    with session_scope() as session:
        now = utcnow()
        if op_occ.transition(session, op_id, op_occ.PROCESSING, expect=(op_occ.STARTING,),
                             where={"attempt": attempt, "worker": None}, worker=WORKER_ID, heartbeat_at=now):
            return True
        # a retry moved it to PROCESSING already: take the new attempt
        return session.execute(update(AppLcmOpOcc).where(
            AppLcmOpOcc.id == op_id, AppLcmOpOcc.attempt == attempt, AppLcmOpOcc.worker.is_(None),
            AppLcmOpOcc.operation_state == op_occ.PROCESSING).values(worker=WORKER_ID, heartbeat_at=now)).rowcount == 1


class _Heartbeat(threading.Thread):
    def __init__(self, op_id: str, attempt: int) -> None:
        super().__init__(name=f"heartbeat-{op_id[:8]}", daemon=True)
        self.op_id, self.attempt = op_id, attempt
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(get_settings().jobs.heartbeat_s):
            try:
                with session_scope() as session:
                    session.execute(update(AppLcmOpOcc).where(
                        AppLcmOpOcc.id == self.op_id, AppLcmOpOcc.attempt == self.attempt,
                        AppLcmOpOcc.worker == WORKER_ID).values(heartbeat_at=utcnow()))
            except Exception:
                log.exception("heartbeat of %s failed", self.op_id)


def _mark_steps(op_id: str, finished: list[str], starting: str | None) -> None:
    """One transaction between two stages: what finished joins ``steps_done``, ``starting`` becomes the
    current step. A pending cancel stops the operation here, after recording what finished."""
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, op_id)
        cancel = op.cancel_mode or "GRACEFUL" if starting is not None and op.is_cancel_pending else None
        values: dict[str, Any] = {"current_step": None if cancel else starting, "heartbeat_at": utcnow()}
        if finished:
            values["steps_done"] = [*(op.steps_done or []), *finished]
        session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id).values(**values))
    if cancel:
        raise Cancelled(cancel)


def _run_step(op_id: str, operation: str, step: flows.Step, ctx: flows.FlowContext) -> None:
    started = time.perf_counter()
    step.execute(ctx)
    took = time.perf_counter() - started
    JOB_STEP_SECONDS.labels(operation, step.name).observe(took)
    log.info("op %s step %s done in %.3f s", op_id, step.name, took)


def _run_stage(op_id: str, operation: str, steps: list[flows.Step], ctx: flows.FlowContext) -> list[str]:
    """Run the steps of one stage (concurrently when several); the names of those that finished.

    When one fails, the others still finish and are recorded (their ids are in the resources), then
    the first failure is raised with the finished names attached for the caller to record.
    """
    if len(steps) == 1:
        _run_step(op_id, operation, steps[0], ctx)
        return [steps[0].name]
    with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix=f"op-{op_id[:8]}") as pool:
        futures = [(step, pool.submit(contextvars.copy_context().run, _run_step, op_id, operation, step, ctx))
                   for step in steps]
        finished, failures = [], []
        for step, future in futures:
            try:
                future.result()
                finished.append(step.name)
            except Exception as exc:  # noqa: BLE001 — the others are recorded, then the first is raised
                failures.append(exc)
    if failures:
        raise _StageFailed(finished, failures[0])
    return finished


class _StageFailed(Exception):
    def __init__(self, finished: list[str], cause: Exception) -> None:
        super().__init__(str(cause))
        self.finished, self.cause = finished, cause


def run_operation(op_id: str, attempt: int) -> None:
    """Execute one attempt of an occurrence (the body of the ``mecpm.run_op`` job).

    Every log line and OpenStack request made meanwhile carries the occurrence id (``meao.logs``).
    """
    with bind_op(op_id):
        if not _claim(op_id, attempt):
            log.info("op %s attempt %s: already claimed or not runnable; nothing to do", op_id, attempt)
            return
        _run_claimed(op_id, attempt)


def _run_claimed(op_id: str, attempt: int) -> None:
    operation, outcome = "UNKNOWN", "failed_temp"
    beat = _Heartbeat(op_id, attempt)
    beat.start()
    try:
        with session_scope() as session:
            op = session.get(AppLcmOpOcc, op_id)
            inst = session.get(AppInstance, op.app_instance_id)
            ctx = _context(op, inst, session)
            operation, done = op.lcm_operation, set(op.steps_done or [])
        finished: list[str] = []
        for stage in flows.steps_for(operation, ctx.op.params):
            # steps finished by an earlier attempt are skipped: their ids are in the instance resources
            todo = [s for s in flows.steps_of(stage) if not (s.name in done and operation == "INSTANTIATE")]
            if not todo:
                continue
            _mark_steps(op_id, finished, "+".join(s.name for s in todo))
            try:
                finished = _run_stage(op_id, operation, todo, ctx)
            except _StageFailed as exc:
                _mark_steps(op_id, exc.finished, None)
                raise exc.cause from None
        _mark_steps(op_id, finished, None)
        _complete(op_id, attempt, operation, ctx)
        outcome = "completed"
    except Cancelled as exc:
        _fail_temp(op_id, attempt, problem(409, "Cancelled",
                                           f"operation cancelled ({exc}) between steps; retry or fail it"))
    except ProblemError as exc:
        _fail_temp(op_id, attempt, exc.to_problem())
    except Exception as exc:
        log.exception("op %s crashed", op_id)
        _fail_temp(op_id, attempt, problem(500, "Lifecycle operation failed",
                                           f"internal error ({type(exc).__name__}: {exc}); retry the "
                                           "operation or report it to the meao operators"))
    finally:
        beat.halt.set()
        JOBS.labels(operation, outcome).inc()


def _complete(op_id: str, attempt: int, operation: str, ctx: flows.FlowContext) -> None:
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, op_id)
        inst = session.get(AppInstance, op.app_instance_id)
        if operation == "INSTANTIATE":
            inst.instantiation_state, inst.operational_state = "INSTANTIATED", "STARTED"
            inst.mec_host_id = op.mec_host_id
        elif operation == "TERMINATE":
            inst.instantiation_state, inst.operational_state = "NOT_INSTANTIATED", None
            ctx.resources = {}
        else:
            inst.operational_state = ctx.op.params["changeStateTo"]
        inst.resources = dict(ctx.resources)
        if not op_occ.transition(session, op_id, op_occ.COMPLETED, expect=(op_occ.PROCESSING,),
                                 where={"attempt": attempt, "worker": WORKER_ID}, current_step=None):
            session.rollback()
            log.warning("op %s attempt %s lost its claim before completing", op_id, attempt)
            return
        emit_instance_state_notification(session, inst)
    log.info("op %s (%s) COMPLETED", op_id, operation)


def _fail_temp(op_id: str, attempt: int, error: dict[str, Any]) -> None:
    log.warning("op %s attempt %s FAILED_TEMP: %s", op_id, attempt, error.get("detail"))
    with session_scope() as session:
        op_occ.transition(session, op_id, op_occ.FAILED_TEMP, expect=(op_occ.PROCESSING,),
                          where={"attempt": attempt, "worker": WORKER_ID}, error=error, worker=None,
                          is_cancel_pending=False, cancel_mode=None)


def fail_operation(op_id: str) -> AppLcmOpOcc:
    """POST …/fail (clause 7.4.12): roll back what the FAILED_TEMP operation created, then FAILED."""
    with bind_op(op_id):
        return _fail_operation(op_id)


def _fail_operation(op_id: str) -> AppLcmOpOcc:
    claim = f"rollback:{WORKER_ID}"
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, op_id)
        if op is None:
            from meao.problems import NotFound

            raise NotFound(f"application LCM operation occurrence {op_id} does not exist")
        if op.operation_state != op_occ.FAILED_TEMP or op.worker is not None or session.execute(
                update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id, AppLcmOpOcc.worker.is_(None),
                                          AppLcmOpOcc.operation_state == op_occ.FAILED_TEMP)
                .values(worker=claim)).rowcount != 1:
            raise Conflict(f"operation {op_id} is {op.operation_state}; only a FAILED_TEMP operation that is not "
                           "being retried or failed can be failed")
        inst = session.get(AppInstance, op.app_instance_id)
        ctx = _context(op, inst, session)
        operation = op.lcm_operation
    try:
        if operation == "INSTANTIATE":
            flows.rollback(ctx, flows.INSTANTIATE)
    except ProblemError:
        with session_scope() as session:
            session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id).values(worker=None))
        raise
    with session_scope() as session:
        inst = session.get(AppInstance, ctx.op.instance_id)
        if operation == "INSTANTIATE":
            inst.resources = {}
            inst.instantiation_state, inst.operational_state = "NOT_INSTANTIATED", None
        op_occ.transition(session, op_id, op_occ.FAILED, expect=(op_occ.FAILED_TEMP,), where={"worker": claim},
                          worker=None)
        return session.get(AppLcmOpOcc, op_id)


def reap_lost_operations(stale_after_s: float) -> int:
    """PROCESSING occurrences whose worker stopped beating → FAILED_TEMP (worker lost)."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    n = 0
    with session_scope() as session:
        rows = session.execute(select(AppLcmOpOcc.id, AppLcmOpOcc.attempt, AppLcmOpOcc.worker, AppLcmOpOcc.current_step)
                               .where(AppLcmOpOcc.operation_state == op_occ.PROCESSING,
                                      AppLcmOpOcc.worker.is_not(None),
                                      AppLcmOpOcc.heartbeat_at < cutoff)).all()
    for op_id, attempt, worker, step in rows:
        lost = problem(503, "Worker lost", f"the MEPM-V worker {worker} stopped responding during step '{step}'; "
                       "retry the operation to continue it, or fail it to roll back what it created")
        with session_scope() as session:
            if op_occ.transition(session, op_id, op_occ.FAILED_TEMP, expect=(op_occ.PROCESSING,),
                                 where={"attempt": attempt, "worker": worker}, error=lost, worker=None):
                n += 1
    if n:
        log.warning("moved %d operation(s) whose worker vanished to FAILED_TEMP", n)
    return n


def resend_unclaimed(older_than_s: float = 0) -> int:
    """Send again the jobs of STARTING occurrences nobody claimed (an in-memory queue died with its process)."""
    from meao.celery_app import enqueue
    from meao.lcm.instances import RUN_OP_TASK

    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope() as session:
        rows = session.execute(select(AppLcmOpOcc.id, AppLcmOpOcc.attempt, AppLcmOpOcc.queue).where(
            AppLcmOpOcc.operation_state.in_((op_occ.STARTING, op_occ.PROCESSING)), AppLcmOpOcc.worker.is_(None),
            AppLcmOpOcc.state_entered_time <= cutoff)).all()
    for op_id, attempt, queue in rows:
        enqueue(RUN_OP_TASK, op_id, str(attempt), queue=queue)
    return len(rows)
