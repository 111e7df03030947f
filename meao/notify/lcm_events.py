"""Lifecycle notifications (MEC 010-2 clauses 6.2.2.11, 6.2.2.16, 6.2.2.27, 6.2.2.30) into the outbox."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import AppInstance, AppLcmOpOcc, OutboxMessage, Subscription
from meao.notify.outbox import timestamp
from meao.notify.subscriptions import subscribers

LCM_SUBSCRIPTION_TYPES = ("AppInstanceStateChangeSubscription", "AppLcmOpOccStateChangeSubscription",
                          "AppIdentifierCreationSubscription", "AppIdentifierDeletionSubscription")


def _root() -> str:
    return f"{get_settings().public_url}/app_lcm/v1"


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


def _queue(session: Session, subs: list[Subscription], ntype: str, build) -> None:
    notification_id = str(uuid.uuid4())
    for sub in subs:
        payload = build(sub)
        payload.update({"id": notification_id, "subscriptionId": sub.id, "timeStamp": timestamp()})
        payload.setdefault("_links", {})["subscription"] = {"href": f"{_root()}/subscriptions/{sub.id}"}
        session.add(OutboxMessage(subscription_id=sub.id, callback_uri=sub.callback_uri,
                                  notification_id=notification_id, notification_type=ntype, payload=payload))


def _filters(sub: Subscription) -> dict[str, Any]:
    return (sub.filters or [{}])[0] if sub.filters else {}


def emit_op_occ_notification(session: Session, op: AppLcmOpOcc) -> None:
    """AppLcmOpOccNotification to AppLcmOpOccStateChangeSubscriptions whose filter matches."""
    inst = session.get(AppInstance, op.app_instance_id)
    subs = []
    for sub in subscribers(session, "app_lcm", "AppLcmOpOccStateChangeSubscription", inst.tenant if inst else None):
        flt = _filters(sub).get("appLcmOpOccSubscriptionFilter") or {}
        if flt.get("operationTypes") and op.lcm_operation not in flt["operationTypes"]:
            continue
        if flt.get("operationStates") and op.operation_state not in flt["operationStates"]:
            continue
        if inst is not None and not instance_selected(flt.get("appInstanceSubscriptionFilter"), inst):
            continue
        subs.append(sub)
    root = _root()
    _queue(session, subs, "AppLcmOpOccStateChangeSubscription", lambda sub: {
        "notificationType": "AppLcmOpOccStateChangeSubscription", "operationType": op.lcm_operation,
        "operationState": op.operation_state, "appLcmOpOccId": op.id, "appInstanceId": op.app_instance_id,
        "_links": {"appInstance": {"href": f"{root}/app_instances/{op.app_instance_id}"},
                   "appLcmOpOcc": {"href": f"{root}/app_lcm_op_occs/{op.id}"}}})


def instance_state(inst: AppInstance) -> str:
    """NOT_INSTANTIATED, STARTED or STOPPED: the appInstanceState of AppInstNotification."""
    if inst.instantiation_state != "INSTANTIATED":
        return "NOT_INSTANTIATED"
    return inst.operational_state or "STARTED"


def emit_instance_state_notification(session: Session, inst: AppInstance) -> None:
    """AppInstNotification to AppInstanceStateChangeSubscriptions (state and instance filters)."""
    state = instance_state(inst)
    subs = []
    for sub in subscribers(session, "app_lcm", "AppInstanceStateChangeSubscription", inst.tenant):
        flt = _filters(sub)
        if flt.get("appInstanceState") and flt["appInstanceState"] != state:
            continue
        if not instance_selected(flt.get("appInstanceSubscriptionFilter"), inst):
            continue
        subs.append(sub)
    _queue(session, subs, "AppInstanceStateChangeSubscription", lambda sub: {
        "notificationType": "AppInstanceStateChangeSubscription", "appInstanceState": state,
        "appInstanceId": inst.id, "appPkgId": inst.app_pkg_id, "appDId": inst.appd_id})


def emit_identifier_notification(session: Session, inst: AppInstance, created: bool) -> None:
    """AppInstanceIdentifierCreation/DeletionNotification (clauses 6.2.2.27 / 6.2.2.30)."""
    sub_type = "AppIdentifierCreationSubscription" if created else "AppIdentifierDeletionSubscription"
    subs = [s for s in subscribers(session, "app_lcm", sub_type, inst.tenant)
            if instance_selected(_filters(s).get("appInstanceSubscriptionFilter"), inst)]
    root = _root()
    _queue(session, subs, sub_type, lambda sub: {
        "notificationType": sub_type, "appInstanceId": inst.id,
        "_links": {"appInstance": {"href": f"{root}/app_instances/{inst.id}"}}})
