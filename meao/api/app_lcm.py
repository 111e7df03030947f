"""Handlers of Mm1 application lifecycle management (MEC 010-2 clause 7.4): parse, call, render."""

from __future__ import annotations

from typing import Any

from flask import request

from meao.api import query, views
from meao.api.security import request_tenant
from meao.db.models import MecHost
from meao.db.session import session_scope
from meao.lcm import instances
from meao.notify import subscriptions
from meao.notify.lcm_events import LCM_SUBSCRIPTION_TYPES

SPEC = "mm1-app-lcm.yaml"
JSON = {"Content-Type": "application/json"}


def _base() -> str:
    return request.host_url.rstrip("/")


def _query(items: list[dict[str, Any]], schema: str, default_excluded: tuple[str, ...]) -> list[dict[str, Any]]:
    tree = query.attribute_tree(SPEC, schema)
    params = {k: request.args.get(k) for k in ("filter", "all_fields", "fields", "exclude_fields",
                                                 "exclude_default")}
    terms = query.parse_filter(params["filter"], tree) if params["filter"] else []
    return query.select_fields([i for i in items if query.matches(i, terms)], params, tree, default_excluded)


def _info(inst) -> dict[str, Any]:
    with session_scope() as session:
        host = session.get(MecHost, inst.mec_host_id) if inst.mec_host_id else None
    return views.app_instance_info(inst, host, _base())


def list_app_instances(**_: Any):
    """GET /app_instances."""
    with session_scope() as session:
        hosts = {h.id: h for h in session.query(MecHost).all()}
    base = _base()
    items = [views.app_instance_info(i, hosts.get(i.mec_host_id), base)
             for i in instances.list_instances(request_tenant())]
    return _query(items, "AppInstanceInfo", ()), 200, JSON


def create_app_instance(body: dict[str, Any]):
    """POST /app_instances → 201 AppInstanceInfo + Location (NOT_INSTANTIATED)."""
    info = _info(instances.create_instance(body, request_tenant()))
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def get_app_instance(appInstanceId: str):
    """GET /app_instances/{appInstanceId}."""
    with session_scope() as session:
        inst = instances.get_instance(session, appInstanceId, request_tenant())
    return _info(inst), 200, JSON


def delete_app_instance(appInstanceId: str):
    """DELETE /app_instances/{appInstanceId} → 204; 409 while INSTANTIATED."""
    instances.delete_instance(appInstanceId, request_tenant())
    return None, 204


def _accepted(op) -> tuple[None, int, dict[str, str]]:
    return None, 202, {"Location": f"{_base()}/app_lcm/v1/app_lcm_op_occs/{op.id}"}


def instantiate_app_instance(appInstanceId: str, body: dict[str, Any]):
    """POST …/instantiate → 202 + Location of the AppLcmOpOcc."""
    from meao.lcm.selection import choose_host

    return _accepted(instances.instantiate(appInstanceId, body, choose_host=choose_host, tenant=request_tenant()))


def terminate_app_instance(appInstanceId: str, body: dict[str, Any]):
    """POST …/terminate → 202 + Location."""
    return _accepted(instances.terminate(appInstanceId, body, request_tenant()))


def operate_app_instance(appInstanceId: str, body: dict[str, Any]):
    """POST …/operate → 202 + Location."""
    return _accepted(instances.operate(appInstanceId, body, request_tenant()))


def list_op_occs(**_: Any):
    """GET /app_lcm_op_occs (operationParams excluded by default, as it is complex)."""
    base = _base()
    items = [views.app_lcm_op_occ(op, base) for op in instances.list_ops(request_tenant())]
    return _query(items, "AppLcmOpOcc", ("operationParams",)), 200, JSON


def get_op_occ(appLcmOpOccId: str):
    """GET /app_lcm_op_occs/{appLcmOpOccId}."""
    with session_scope() as session:
        op = instances.get_op(session, appLcmOpOccId, request_tenant())
    return views.app_lcm_op_occ(op, _base()), 200, JSON


def cancel_op_occ(appLcmOpOccId: str, body: dict[str, Any]):
    """POST …/cancel → 202."""
    instances.cancel(appLcmOpOccId, body["cancelMode"], request_tenant())
    return None, 202


def fail_op_occ(appLcmOpOccId: str):
    """POST …/fail → 200 AppLcmOpOcc (FAILED) after rolling back what the operation created."""
    from mecpm.runner import fail_operation

    with session_scope() as session:
        instances.get_op(session, appLcmOpOccId, request_tenant())  # another tenant's: 404
    return views.app_lcm_op_occ(fail_operation(appLcmOpOccId), _base()), 200, JSON


def retry_op_occ(appLcmOpOccId: str):
    """POST …/retry → 202; the steps continue where they stopped."""
    instances.retry(appLcmOpOccId, request_tenant())
    return None, 202


def list_subscriptions(subscriptionType: str | None = None, subscription_type: str | None = None,
                       **_: Any):
    """GET /subscriptions → AppInstanceSubscriptionLinkList."""
    with session_scope() as session:
        subs = subscriptions.list_subscriptions(session, "app_lcm", subscriptionType or subscription_type,
                                                request_tenant())
        return views.lcm_subscription_link_list(subs, _base()), 200, JSON


def create_subscription(body: dict[str, Any]):
    """POST /subscriptions → 201 the matching *SubscriptionInfo + Location."""
    with session_scope() as session:
        sub = subscriptions.create_lcm_subscription(session, body, LCM_SUBSCRIPTION_TYPES, request_tenant())
        info = views.lcm_subscription_info(sub, _base())
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def get_subscription(subscriptionId: str):
    """GET /subscriptions/{subscriptionId}."""
    with session_scope() as session:
        sub = subscriptions.get_subscription(session, "app_lcm", subscriptionId, request_tenant())
        return views.lcm_subscription_info(sub, _base()), 200, JSON


def delete_subscription(subscriptionId: str):
    """DELETE /subscriptions/{subscriptionId} → 204."""
    with session_scope() as session:
        subscriptions.delete_subscription(session, "app_lcm", subscriptionId, request_tenant())
    return None, 204
