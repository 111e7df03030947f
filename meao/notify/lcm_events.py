"""Lifecycle notifications (MEC 010-2 clauses 6.2.2.11, 6.2.2.16, 6.2.2.27, 6.2.2.30) into the outbox."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from meao.db.models import AppInstance, AppLcmOpOcc, MecHost, Subscription
from meao.notify import outbox
from meao.notify.subscriptions import subscribers
from meao.wire import notifications
from meao.wire.lcm import app_inst_location
from meao.wire.links import APP_LCM


def instance_selected(flt: dict[str, Any] | None, inst: AppInstance) -> bool:
    """AppInstanceSubscriptionFilter (table 6.2.2.5.2-1) against one instance."""
    if not flt:
        return True
    kind = flt.get("appInstSelectorType", "VOID")
    values = flt.get("appInstances") or []
    if kind in ("VOID", 0, "0"):
        return True
    if kind == "APP_IDENTITY":
        return inst.id in values
    if kind == "APP_NAME":
        return inst.name in values
    if kind == "APP_D_ID":
        return inst.appd_id in values
    if kind == "APP_FROM_PROVIDER":
        for prov in flt.get("appsFromProviders") or []:
            if prov.get("appProvider") != inst.app_provider:
                continue
            products = prov.get("appProducts") or []
            if not products:
                return True
            for prod in products:
                if prod.get("appName") != inst.app_name:
                    continue
                versions = prod.get("versions") or []
                if not versions or any(v.get("appSoftVersion") == inst.app_soft_version and
                                       (not v.get("appDVersion") or inst.appd_version in v["appDVersion"])
                                       for v in versions):
                    return True
        return False
    return False


def _filters(sub: Subscription) -> dict[str, Any]:
    return (sub.filters or [{}])[0] if sub.filters else {}


def emit_op_occ_notification(session: Session, op: AppLcmOpOcc) -> None:
    """AppLcmOpOccNotification to AppLcmOpOccStateChangeSubscriptions whose filter matches."""
    inst = session.get(AppInstance, op.app_instance_id)
    subs = []
    for sub in subscribers(session, APP_LCM, "AppLcmOpOccStateChangeSubscription", inst.tenant if inst else None):
        flt = _filters(sub).get("appLcmOpOccSubscriptionFilter") or {}
        if flt.get("operationTypes") and op.lcm_operation not in flt["operationTypes"]:
            continue
        if flt.get("operationStates") and op.operation_state not in flt["operationStates"]:
            continue
        if inst is not None and not instance_selected(flt.get("appInstanceSubscriptionFilter"), inst):
            continue
        subs.append(sub)
    outbox.write(session, subs, "AppLcmOpOccStateChangeSubscription",
                 partial(notifications.app_lcm_op_occ_notification, op))


def instance_state(inst: AppInstance) -> str:
    """NOT_INSTANTIATED, STARTED or STOPPED: the appInstanceState of AppInstNotification."""
    if inst.instantiation_state != "INSTANTIATED":
        return "NOT_INSTANTIATED"
    return inst.operational_state or "STARTED"


def emit_instance_state_notification(session: Session, inst: AppInstance, host: MecHost | None = None) -> None:
    """AppInstNotification to AppInstanceStateChangeSubscriptions (state and instance filters).

    ``host``: the instance's MEC host as the caller already read it (its location goes in the
    notification), so it is not read again.
    """
    state = instance_state(inst)
    subs = []
    for sub in subscribers(session, APP_LCM, "AppInstanceStateChangeSubscription", inst.tenant):
        flt = _filters(sub)
        if flt.get("appInstanceState") and flt["appInstanceState"] != state:
            continue
        if not instance_selected(flt.get("appInstanceSubscriptionFilter"), inst):
            continue
        subs.append(sub)
    if not inst.mec_host_id or state == "NOT_INSTANTIATED":
        host = None
    elif host is None or host.id != inst.mec_host_id:
        host = session.get(MecHost, inst.mec_host_id)
    outbox.write(session, subs, "AppInstanceStateChangeSubscription",
                 partial(notifications.app_inst_notification, inst, state, app_inst_location(host)))


def emit_identifier_notification(session: Session, inst: AppInstance, created: bool) -> None:
    """AppInstanceIdentifierCreation/DeletionNotification (clauses 6.2.2.27 / 6.2.2.30)."""
    sub_type = "AppIdentifierCreationSubscription" if created else "AppIdentifierDeletionSubscription"
    subs = [s for s in subscribers(session, APP_LCM, sub_type, inst.tenant)
            if instance_selected(_filters(s).get("appInstanceSubscriptionFilter"), inst)]
    outbox.write(session, subs, sub_type, partial(notifications.app_instance_identifier_notification, inst, sub_type))
