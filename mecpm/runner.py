"""Runs one attempt of a lifecycle operation occurrence in a MEPM-V worker: claim, steps or rollback, outcome.

Every write goes through the attempt's :class:`meao.lcm.lifecycle.Lease` (fenced by op, attempt and
worker), so a worker whose attempt was reaped, retried or failed elsewhere stops at its next write and
touches nothing more.

- Claim: a redelivered or re-sent message finds the attempt taken and does nothing.
- While steps run, a heartbeat thread stamps the lease; the reaper gives up an attempt whose heartbeat
  stopped (worker killed, paused or cut off), so nothing stays PROCESSING forever.
- Steps: a stage at a time; between stages the boundary records what finished and honours a pending
  cancel, the last boundary included.
- Success: instance state, occurrence COMPLETED and their notifications in one transaction.
  Failure: FAILED_TEMP with a ProblemDetails ``error``; ``retry`` continues, ``fail`` sends a ROLLBACK
  attempt that undoes what the operation created, then FAILED.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meao import faults
from meao.catalogue.appd import AppD
from meao.catalogue.packages import content_dir
from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, MecHost
from meao.db.roundtrips import phase
from meao.db.session import read_scope
from meao.jobs.fencing import WORKER_ID, Heartbeat
from meao.lcm import lifecycle
from meao.logs import bind_op
from meao.metrics import JOB_STEP_SECONDS, JOBS
from meao.nfvo.drivers import get_vim
from meao.notify import delivery
from meao.notify.lcm_events import emit_instance_state_notification
from meao.problems import ProblemError, problem
from mecpm import flows
from mecpm.meao_link import JobRecords
from mecpm.mep import mep_for_host

log = logging.getLogger(__name__)


def _context(op: AppLcmOpOcc, inst: AppInstance, pkg: AppPackage | None, host: MecHost | None,
             lease: lifecycle.Lease) -> flows.FlowContext:
    if pkg is None or host is None:
        raise flows.FlowError(f"the package or MEC host of application instance {inst.id} is gone")
    settings = get_settings()
    subject = flows.OpSubject(id=op.id, instance_id=inst.id, package_id=pkg.id, appd_id=inst.appd_id,
                              appd=AppD.from_stored(pkg.appd_model), content_dir=content_dir(pkg.id),
                              params=op.operation_params or {})
    pop = flows.PopSite(vim=get_vim(host.cloud), mep=mep_for_host(host.id, host.mep_url),
                        availability_zone=host.availability_zone,
                        networks=dict(host.networks or {}), boot_timeout_s=settings.jobs.boot_timeout_s)
    return flows.FlowContext(
        op=subject, pop=pop, meao=JobRecords(inst.id, pkg.id, host.cloud, settings.public_url, lease),
        resources=dict(inst.resources or {}, cloud=host.cloud, host=host.id),
        fresh=op.attempt == 1 and not op.steps_done)


def _run_step(op_id: str, operation: str, step: flows.Step, ctx: flows.FlowContext) -> None:
    faults.point(f"step:{step.name}")
    started = time.perf_counter()
    with phase(f"step:{step.name}"):
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
    superseded = next((f for f in failures if isinstance(f, lifecycle.Superseded)), None)
    if superseded is not None:
        raise superseded
    if failures:
        raise _StageFailed(finished, failures[0])
    return finished


class _StageFailed(Exception):
    def __init__(self, finished: list[str], cause: Exception) -> None:
        super().__init__(str(cause))
        self.finished, self.cause = finished, cause


def run_operation(op_id: str, attempt: int) -> None:
    """Execute one attempt of an occurrence (the body of the ``mecpm.run_op`` job): its steps or its rollback.

    Every log line and OpenStack request made meanwhile carries the occurrence id (``meao.logs``).
    """
    with bind_op(op_id):
        with phase("claim"):
            lease = lifecycle.claim(op_id, attempt, WORKER_ID, load=_subject(op_id))
        delivery.wake()  # the claim's PROCESSING notification
        if lease is None:
            log.info("op %s attempt %s: already claimed or not runnable; nothing to do", op_id, attempt)
            return
        with phase("heartbeat"):
            beat = Heartbeat(lease.heartbeat, f"op {op_id} attempt {attempt}")
        beat.start()
        try:
            (_roll_back if lease.kind == lifecycle.ROLLBACK else _run_steps)(lease)
        finally:
            beat.halt.set()


def _subject(op_id: str) -> Callable[[Session], Any]:
    """The occurrence, its instance, package and host: one SELECT (read in the claim's transaction)."""
    return lambda session: session.execute(
        select(AppLcmOpOcc, AppInstance, AppPackage, MecHost)
        .join(AppInstance, AppInstance.id == AppLcmOpOcc.app_instance_id)
        .outerjoin(AppPackage, AppPackage.id == AppInstance.app_pkg_id)
        .outerjoin(MecHost, MecHost.id == func.coalesce(AppLcmOpOcc.mec_host_id, AppInstance.mec_host_id))
        .where(AppLcmOpOcc.id == op_id)).one_or_none()


def _load(lease: lifecycle.Lease) -> tuple[str, set[str], flows.FlowContext, MecHost | None]:
    """What the claim read (:func:`_subject`), as the claim left it; read now (one SELECT, no transaction)
    for a lease that was not claimed with it."""
    loaded = lease.loaded
    if loaded is None:
        with read_scope() as session:
            loaded = _subject(lease.op_id)(session)
    if loaded is None:
        raise flows.FlowError(f"operation occurrence {lease.op_id} or its application instance is gone")
    op, inst, pkg, host = loaded
    return op.lcm_operation, set(op.steps_done or []), _context(op, inst, pkg, host, lease), host


def _run_steps(lease: lifecycle.Lease) -> None:
    op_id, operation, outcome = lease.op_id, "UNKNOWN", "failed_temp"
    try:
        with phase("load"):
            operation, done, ctx, host = _load(lease)
        finished: list[str] = []
        for stage in flows.steps_for(operation, ctx.op.params):
            # steps finished by an earlier attempt are skipped: their ids are in the instance resources
            todo = [s for s in flows.steps_of(stage) if not (s.name in done and operation == "INSTANTIATE")]
            if not todo:
                continue
            with phase("boundary"):
                lease.boundary(finished, "+".join(s.name for s in todo))
            try:
                finished = _run_stage(op_id, operation, todo, ctx)
            except _StageFailed as exc:
                with phase("boundary"):
                    lease.boundary(exc.finished, None)
                raise exc.cause from None
        faults.point("lcm:before-complete")
        with phase("complete"):  # with the last boundary: what the last stage finished
            lease.complete(_outcome(operation, ctx), partial(emit_instance_state_notification, host=host), finished)
        delivery.wake()
        outcome = "completed"
        log.info("op %s (%s) COMPLETED", op_id, operation)
    except lifecycle.Superseded as exc:
        outcome = "superseded"
        log.warning("op %s: %s; this worker stops and touches nothing more", op_id, exc)
    except lifecycle.CancelRequested as exc:
        _fail_temp(lease, problem(409, "Cancelled", f"operation cancelled ({exc}) at a step boundary; retry "
                                  "or fail it"))
    except ProblemError as exc:
        _fail_temp(lease, exc.to_problem())
    except Exception as exc:
        log.exception("op %s crashed", op_id)
        _fail_temp(lease, problem(500, "Lifecycle operation failed",
                                  f"internal error ({type(exc).__name__}: {exc}); retry the operation or "
                                  "report it to the meao operators"))
    finally:
        JOBS.labels(operation, outcome).inc()


def _outcome(operation: str, ctx: flows.FlowContext) -> dict[str, Any]:
    """The instance's new attributes when ``operation`` completes."""
    if operation == "INSTANTIATE":
        return {"instantiation_state": "INSTANTIATED", "operational_state": "STARTED",
                "mec_host_id": ctx.resources.get("host"), "resources": dict(ctx.resources)}
    if operation == "TERMINATE":
        return {"instantiation_state": "NOT_INSTANTIATED", "operational_state": None, "resources": {}}
    return {"operational_state": ctx.op.params["changeStateTo"], "resources": dict(ctx.resources)}


def _fail_temp(lease: lifecycle.Lease, error: dict[str, Any]) -> None:
    log.warning("op %s attempt %s %s: %s", lease.op_id, lease.attempt,
                "rollback stopped" if lease.kind == lifecycle.ROLLBACK else "FAILED_TEMP", error.get("detail"))
    try:
        with phase("fail"):
            failed = lease.fail_temp(error)
        if failed:
            delivery.wake()
        else:
            log.warning("op %s attempt %s: lease already lost; outcome not written", lease.op_id, lease.attempt)
    except Exception:
        log.exception("op %s: could not record the failure; the reaper gives the attempt up", lease.op_id)


def _roll_back(lease: lifecycle.Lease) -> None:
    """The ROLLBACK attempt (POST …/fail, clause 7.4.12): undo what an instantiate created, then FAILED."""
    op_id, operation, outcome = lease.op_id, "UNKNOWN", "failed_temp"
    try:
        operation, _, ctx, _ = _load(lease)
        values: dict[str, Any] = {}
        if operation == "INSTANTIATE":
            flows.rollback(ctx, flows.INSTANTIATE, before_undo=lambda step: _before_undo(lease, step))
            values = {"resources": {}, "instantiation_state": "NOT_INSTANTIATED", "operational_state": None}
        lease.rolled_back(values)
        delivery.wake()
        outcome = "rolled_back"
        log.info("op %s (%s) rolled back: FAILED", op_id, operation)
    except lifecycle.Superseded as exc:
        outcome = "superseded"
        log.warning("op %s: %s; this worker stops and touches nothing more", op_id, exc)
    except ProblemError as exc:
        _fail_temp(lease, exc.to_problem())
    except Exception as exc:
        log.exception("op %s rollback crashed", op_id)
        _fail_temp(lease, problem(500, "Rollback failed", f"internal error ({type(exc).__name__}: {exc}); fail "
                                  "the operation again, or report it to the meao operators"))
    finally:
        JOBS.labels(f"{operation}_ROLLBACK", outcome).inc()


def _before_undo(lease: lifecycle.Lease, step: flows.Step) -> None:
    faults.point(f"rollback:{step.name}")
    lease.boundary([], f"undo:{step.name}")
