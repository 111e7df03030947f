"""Application instances and their lifecycle operations (MEC 010-2 clauses 6.3.1 and 7.4).

The API side of "the life of an instantiate": check the instance and its package, select the host, and
in ONE transaction lock the instance for the operation, create the AppLcmOpOcc (STARTING) and its
notification; after commit, send the job (carrying only the occurrence id) to the PoP's queue.
Every public function owns its transaction; ``tenant`` (None: any) confines it to that tenant's
instances and their operations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from meao import faults
from meao.auth.tenancy import owns, visible
from meao.catalogue.packages import find_by_appd_id
from meao.config import get_settings
from meao.db.keyset import ALL, Window, window
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, MecHost
from meao.db.session import read_scope, session_scope
from meao.jobs import dispatcher
from meao.lcm import lifecycle, op_occ
from meao.lcm.hosts import host_preference, list_hosts
from meao.logs import bind_op
from meao.notify.lcm_events import emit_identifier_notification, emit_op_occ_notification
from meao.problems import BadRequest, Conflict, NotFound, ProblemError, problem

log = logging.getLogger(__name__)

class InstanceOnHost(NamedTuple):
    """An application instance with the MEC host it is placed on (None while it is not).

    A list's instance is a row of the ``app_instance`` table rather than an ORM object: it has the same
    attributes, which is all the wire rendering reads.
    """

    instance: AppInstance
    host: MecHost | None


def _load_instance(session: Session, instance_id: str, tenant: str | None = None) -> AppInstance:
    """One instance, or NotFound (also when it belongs to another tenant than ``tenant``)."""
    inst = session.get(AppInstance, instance_id)
    if inst is None or not owns(inst.tenant, tenant):
        raise NotFound(f"application instance {instance_id} does not exist")
    return inst


def _load_op(session: Session, op_id: str, tenant: str | None = None) -> AppLcmOpOcc:
    """One operation occurrence, or NotFound (also when its instance belongs to another tenant)."""
    op = session.get(AppLcmOpOcc, op_id)
    if op is not None and tenant is not None:
        inst = session.get(AppInstance, op.app_instance_id)
        op = op if inst is not None and inst.tenant == tenant else None
    if op is None:
        raise NotFound(f"application LCM operation occurrence {op_id} does not exist")
    return op


def get_instance(instance_id: str, tenant: str | None = None) -> InstanceOnHost:
    """One instance with its host, or NotFound."""
    with read_scope() as session:  # a read: no transaction, no BEGIN/COMMIT round trips
        inst = _load_instance(session, instance_id, tenant)
        return InstanceOnHost(inst, session.get(MecHost, inst.mec_host_id) if inst.mec_host_id else None)


def get_op(op_id: str, tenant: str | None = None) -> AppLcmOpOcc:
    """One operation occurrence, or NotFound."""
    with read_scope() as session:  # a read: no transaction, no BEGIN/COMMIT round trips
        return _load_op(session, op_id, tenant)


def get_placement(op_id: str) -> AppLcmOpOcc:
    """The occurrence of an instantiate whose host selection (``placement``) is recorded, or NotFound."""
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, op_id)
        if op is None or op.placement is None:
            raise NotFound(f"no placement decision is recorded for operation occurrence {op_id}")
        return op


def create_instance(body: dict[str, Any], tenant: str | None = None) -> InstanceOnHost:
    """CreateAppInstanceRequest (clause 6.2.2.3): the package must be ONBOARDED and ENABLED; it becomes IN_USE.

    The instance belongs to its package's tenant.
    """
    with session_scope() as session:
        pkg = find_by_appd_id(session, body["appDId"], tenant)
        if pkg is None or pkg.onboarding_state != "ONBOARDED":
            raise NotFound(f"no onboarded application package has appDId {body['appDId']}; onboard it first")
        if pkg.operational_state != "ENABLED":
            raise Conflict(f"application package {pkg.id} (appDId {pkg.appd_id}) is DISABLED; enable it before "
                           "creating instances from it")
        inst = AppInstance(name=body.get("appInstanceName"), description=body.get("appInstanceDescription"),
                           app_pkg_id=pkg.id, appd_id=pkg.appd_id, app_provider=pkg.app_provider or "",
                           app_name=pkg.app_name or "", app_soft_version=pkg.app_software_version or "",
                           appd_version=pkg.appd_version or "", tenant=pkg.tenant)
        session.add(inst)
        # only the first instance writes the package row: creates from one package do not queue on its lock
        session.execute(update(AppPackage).where(AppPackage.id == pkg.id, AppPackage.usage_state != "IN_USE")
                        .values(usage_state="IN_USE"))
        session.flush()
        emit_identifier_notification(session, inst, created=True)
        return InstanceOnHost(inst, None)


def list_instances(tenant: str | None = None, win: Window = ALL) -> list[InstanceOnHost]:
    """The instances (of ``tenant``) in ``win`` with their hosts, oldest first."""
    with read_scope() as session:  # a read: no transaction, no BEGIN/COMMIT round trips
        # rows, not ORM objects: a page of them is read several times faster (see InstanceOnHost)
        found = list(session.execute(window(select(*AppInstance.__table__.c).where(
            visible(AppInstance.tenant, tenant)), AppInstance, win)))
        host_ids = {inst.mec_host_id for inst in found if inst.mec_host_id}
        hosts = {h.id: h for h in session.scalars(select(MecHost).where(MecHost.id.in_(host_ids)))}
        return [InstanceOnHost(inst, hosts.get(inst.mec_host_id or "")) for inst in found]


def delete_instance(instance_id: str, tenant: str | None = None) -> None:
    """DELETE (clause 7.4.2.3.4): 409 while INSTANTIATED or while an operation holds it."""
    with session_scope() as session:
        inst = _load_instance(session, instance_id, tenant)
        if inst.instantiation_state != "NOT_INSTANTIATED":
            raise Conflict(f"application instance {instance_id} is INSTANTIATED; terminate it first")
        if inst.current_op_id:
            raise Conflict(f"application instance {instance_id} has operation {inst.current_op_id} in progress "
                           "or FAILED_TEMP; wait for it, or fail it, before deleting the instance")
        n = session.execute(AppInstance.__table__.delete().where(
            AppInstance.id == instance_id, AppInstance.instantiation_state == "NOT_INSTANTIATED",
            AppInstance.current_op_id.is_(None))).rowcount
        if n != 1:
            raise Conflict(f"application instance {instance_id} changed concurrently; retry the request")
        left = session.scalar(select(func.count()).select_from(AppInstance)
                              .where(AppInstance.app_pkg_id == inst.app_pkg_id))
        if not left:
            session.execute(update(AppPackage).where(AppPackage.id == inst.app_pkg_id)
                            .values(usage_state="NOT_IN_USE"))
        emit_identifier_notification(session, inst, created=False)


def _start(session: Session, inst: AppInstance, operation: str, params: dict[str, Any], required_state: str,
           host_id: str | None, queue: str | None, placement: dict[str, Any] | None = None) -> AppLcmOpOcc:
    op = AppLcmOpOcc(app_instance_id=inst.id, lcm_operation=operation, operation_params=params,
                     mec_host_id=host_id, queue=queue, placement=placement)
    session.add(op)
    session.flush()
    locked = session.execute(update(AppInstance).where(
        AppInstance.id == inst.id, AppInstance.current_op_id.is_(None),
        AppInstance.instantiation_state == required_state).values(current_op_id=op.id)).rowcount
    if locked != 1:
        session.rollback()
        session.refresh(inst)
        if inst.current_op_id:
            raise Conflict(f"application instance {inst.id} already has operation {inst.current_op_id} in "
                           "progress (or FAILED_TEMP); wait for it, retry it or fail it first")
        raise Conflict(f"application instance {inst.id} is {inst.instantiation_state}; {operation} needs "
                       f"{required_state}")
    emit_op_occ_notification(session, op)
    lifecycle.start(session, op)
    return op


def instantiate(instance_id: str, body: dict[str, Any], choose_host=None, tenant: str | None = None) -> AppLcmOpOcc:
    """InstantiateAppRequest (clause 6.2.2.7) → a STARTING INSTANTIATE occurrence on the chosen host's queue.

    The MEAO selects the host: ``selectedMECHostInfo`` applies to Mm3 only (table 6.2.2.7.2-1, note 2),
    so here it is at most a preference, never a reason to refuse. ``choose_host(session, inst, pkg,
    preference, body)`` returns (host, placement explanation); by default the first preferred host is
    taken, else the first of the inventory.
    """
    with session_scope() as session:
        inst = _load_instance(session, instance_id, tenant)
        if inst.instantiation_state != "NOT_INSTANTIATED":
            raise Conflict(f"application instance {instance_id} is already INSTANTIATED")
        pkg = session.get(AppPackage, inst.app_pkg_id)
        if pkg is None or pkg.operational_state != "ENABLED":
            raise Conflict(f"the package of application instance {instance_id} is not ENABLED; enable it first")
        preference = host_preference(session, body.get("selectedMECHostInfo") or [])
        placement = None
        if choose_host is not None:
            host, placement = choose_host(session, inst, pkg, preference, body)
        else:
            host = next(iter(preference.known), None) or next(iter(list_hosts(session)), None)
            if host is None:
                raise Conflict("the MEC host inventory is empty; add a host (POST /ops/v1/mec_hosts) first")
        op = _start(session, inst, "INSTANTIATE", body, "NOT_INSTANTIATED", host.id, host.queue, placement)
    _sent(op.id, 1, op.queue, op.lcm_operation)
    return op


def _instantiated_op(instance_id: str, operation: str, body: dict[str, Any], tenant: str | None,
                     rules: Callable[[dict[str, Any]], None] | None = None) -> AppLcmOpOcc:
    """Start ``operation`` on an INSTANTIATED instance: NotFound first, then the request's ``rules``
    (a URI that maps to no resource is a 404 whatever the body), then the state conflicts."""
    with session_scope() as session:
        inst = _load_instance(session, instance_id, tenant)
        if rules is not None:
            rules(body)
        if inst.instantiation_state != "INSTANTIATED":
            raise Conflict(f"application instance {instance_id} is NOT_INSTANTIATED; {operation} needs an "
                           "INSTANTIATED instance")
        if operation == "OPERATE" and inst.operational_state == body["changeStateTo"] and not inst.current_op_id:
            raise Conflict(f"application instance {instance_id} is already {inst.operational_state}")
        host_id = inst.mec_host_id
        host = session.get(MecHost, host_id) if host_id else None
        if host is None:
            raise Conflict(f"MEC host {host_id} of application instance {instance_id} is no longer in the "
                           "inventory; add it back before operating the instance")
        op = _start(session, inst, operation, body, "INSTANTIATED", host.id, host.queue)
    _sent(op.id, 1, op.queue, op.lcm_operation)
    return op


def _sent(op_id: str, attempt: int, queue: str | None, what: str) -> None:
    """After the commit that wrote an attempt's job: have it sent now (the outbox keeps it if this fails)."""
    with bind_op(op_id):
        faults.point("lcm:after-commit")
        log.info("%s attempt %d queued on %s", what, attempt, queue)
        try:
            dispatcher.kick()
        except Exception:
            log.exception("sending the job of op %s failed; the outbox sends it when it can", op_id)


def operate_request_rules(body: dict[str, Any]) -> None:
    """BadRequest naming the note of table 6.2.2.8.2-1 (OperateAppRequest) that ``body`` breaks.

    Note 1: stopType and gracefulStopTimeout are absent when changeStateTo is STARTED. Note 2: with
    STOPPED, gracefulStopTimeout is present for a GRACEFUL stop and absent for a FORCEFUL one. Note 3: a
    stop without stopType is FORCEFUL (so it takes no gracefulStopTimeout either).
    """
    given = [name for name in ("stopType", "gracefulStopTimeout") if name in body]
    if body["changeStateTo"] == "STARTED":
        if given:
            raise BadRequest(f"OperateAppRequest: {' and '.join(given)} shall be absent when changeStateTo is "
                             "STARTED (MEC 010-2 table 6.2.2.8.2-1, note 1)")
        return
    graceful = body.get("stopType") == "GRACEFUL"
    if graceful and "gracefulStopTimeout" not in body:
        raise BadRequest("OperateAppRequest: gracefulStopTimeout shall be present when changeStateTo is STOPPED "
                         "and stopType is GRACEFUL (MEC 010-2 table 6.2.2.8.2-1, note 2)")
    if not graceful and "gracefulStopTimeout" in body:
        how = "is FORCEFUL" if "stopType" in body else "is absent, which means FORCEFUL (note 3)"
        raise BadRequest(f"OperateAppRequest: gracefulStopTimeout shall be absent when changeStateTo is STOPPED "
                         f"and stopType {how} (MEC 010-2 table 6.2.2.8.2-1, note 2)")


def operate(instance_id: str, body: dict[str, Any], tenant: str | None = None) -> AppLcmOpOcc:
    """OperateAppRequest (clause 6.2.2.8): 404 for an unknown instance first, then the table's notes."""
    return _instantiated_op(instance_id, "OPERATE", body, tenant, rules=operate_request_rules)


def terminate(instance_id: str, body: dict[str, Any], tenant: str | None = None) -> AppLcmOpOcc:
    """TerminateAppRequest (clause 6.2.2.9).

    gracefulTerminationTimeout "is only applicable in case of graceful termination" (table 6.2.2.9.2-1):
    with FORCEFUL it is ignored, not refused (the MEPM-V reads it only for GRACEFUL).
    """
    return _instantiated_op(instance_id, "TERMINATE", body, tenant)


def ops_of_tenant(stmt: Any, tenant: str | None) -> Any:
    """``stmt`` over AppLcmOpOcc narrowed to the occurrences of ``tenant``'s instances (None: all of them;
    an occurrence has no tenant of its own, it follows its instance)."""
    if tenant is None:
        return stmt
    return stmt.join(AppInstance, AppInstance.id == AppLcmOpOcc.app_instance_id).where(AppInstance.tenant == tenant)


def list_ops(tenant: str | None = None, win: Window = ALL) -> list[AppLcmOpOcc]:
    """The occurrences (of ``tenant``'s instances) in ``win``, oldest first."""
    with read_scope() as session:  # a read: no transaction, no BEGIN/COMMIT round trips
        return list(session.scalars(window(ops_of_tenant(select(AppLcmOpOcc), tenant), AppLcmOpOcc, win)))


def retry(op_id: str, tenant: str | None = None) -> AppLcmOpOcc:
    """POST …/retry (clause 7.4.13): FAILED_TEMP → PROCESSING as a new attempt; the steps continue."""
    with session_scope() as session:
        op = _load_op(session, op_id, tenant)
        _must_be_free(op, "retried")
        attempt, queue = op.attempt + 1, op.queue  # read before the transition refreshes ``op``
        if not lifecycle.retry(session, op):
            raise Conflict(f"operation {op_id} changed concurrently; read it and try again")
    _sent(op_id, attempt, queue, "retry")
    with session_scope() as session:
        return _load_op(session, op_id)


def cancel(op_id: str, mode: str, tenant: str | None = None) -> AppLcmOpOcc:
    """POST …/cancel (clause 7.4.11): STARTING ends at once in FAILED_TEMP; PROCESSING stops after its step."""
    with session_scope() as session:
        op = _load_op(session, op_id, tenant)
        cancelled = problem(409, "Cancelled", f"operation cancelled by request ({mode}); retry it or fail it")
        if op.operation_state == op_occ.STARTING and lifecycle.cancel_starting(session, op_id, cancelled):
            return _load_op(session, op_id)
        op = _load_op(session, op_id)
        if op.operation_state not in (op_occ.STARTING, op_occ.PROCESSING) or op.is_cancel_pending:
            raise Conflict(f"operation {op_id} is {op.operation_state}"
                           f"{' with a cancel pending' if op.is_cancel_pending else ''}; only a STARTING or "
                           "PROCESSING operation can be cancelled")
        session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id)
                        .values(is_cancel_pending=True, cancel_mode=mode))
        session.refresh(op)
        return op


def _must_be_free(op: AppLcmOpOcc, verb: str) -> None:
    """Conflict unless ``op`` is FAILED_TEMP with no job running or pending on it."""
    if op.operation_state != op_occ.FAILED_TEMP:
        raise Conflict(f"operation {op.id} is {op.operation_state}; only a FAILED_TEMP operation can be {verb}")
    if op.run_kind == lifecycle.ROLLBACK:
        raise Conflict(f"operation {op.id} is being rolled back (POST …/fail); wait for it to end FAILED, or to "
                       "come back FAILED_TEMP with the reason the rollback stopped")
    if op.worker is not None:
        raise Conflict(f"operation {op.id} is held by worker {op.worker}; wait for it to finish")


def fail(op_id: str, tenant: str | None = None) -> AppLcmOpOcc:
    """POST …/fail (clause 7.4.12): a ROLLBACK job on the host's queue undoes what the operation created,
    then the occurrence is FAILED (200). A second POST while it runs waits for the same rollback.

    The request waits up to ``MEAO_FAIL_WAIT_S``; the occurrence stays locked (FAILED_TEMP, 409 to retry
    and cancel) until the rollback ends. A rollback that stops (VIM error, worker lost) leaves it
    FAILED_TEMP with the reason in ``error``, answered here as that ProblemDetails.
    """
    with session_scope() as session:
        op = _load_op(session, op_id, tenant)
        if op.run_kind != lifecycle.ROLLBACK:
            _must_be_free(op, "failed")
            if not lifecycle.request_rollback(session, op):
                raise Conflict(f"operation {op_id} changed concurrently; read it and try again")
        session.refresh(op)  # the rollback's attempt
        attempt, queue = op.attempt, op.queue
    _sent(op_id, attempt, queue, "rollback")
    return _wait_rollback(op_id, attempt)


def _wait_rollback(op_id: str, attempt: int) -> AppLcmOpOcc:
    settings = get_settings()
    deadline = time.monotonic() + settings.jobs.fail_wait_s
    while True:
        op = get_op(op_id)
        if op.operation_state == op_occ.FAILED:
            return op
        if op.attempt != attempt or op.run_kind != lifecycle.ROLLBACK:
            error = op.error or {}
            # 503 when what the rollback needs (a worker, the VIM) did not hold; 409 when the VIM refused it
            # given the resources' state (both documented on POST …/fail; the stored error says the rest)
            status = 409 if 400 <= int(error.get("status") or 503) < 500 else 503
            raise ProblemError(f"the rollback of operation {op_id} stopped: {error.get('detail') or 'no reason'}; "
                               "the operation is FAILED_TEMP again: fail it again, or retry it",
                               status=status, title=error.get("title") or "Rollback stopped")
        if time.monotonic() > deadline:
            raise Conflict(f"the rollback of operation {op_id} is still running on queue {op.queue} after "
                           f"{settings.jobs.fail_wait_s:.0f} s; it ends FAILED (an AppLcmOpOccNotification says so). "
                           "POST …/fail again to wait for it")
        time.sleep(0.1)
