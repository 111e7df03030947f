"""Handlers of Mm1 application lifecycle management (MEC 010-2 clause 7.4): parse, call, render."""

from __future__ import annotations

from typing import Any

from meao.api.responses import Reply, accepted, base_url, created, listing, no_content, ok
from meao.api.security import request_tenant
from meao.api.subscriptions import SubscriptionHandlers
from meao.db import keyset
from meao.db.models import AppInstance
from meao.lcm import instances
from meao.problems import BadRequest
from meao.wire.lcm import app_instance_info, app_lcm_op_occ
from meao.wire.links import APP_LCM, op_occ_href

SPEC = "mm1-app-lcm.yaml"
# what GET leaves out unless asked for (exclude_default of tables 7.4.1.3.2-1 and 7.4.9.3.2-1)
APP_INSTANCE_DEFAULT_EXCLUDED = ("vimConnectionInfo", "_links/instantiate", "_links/terminate", "_links/operate")
APP_LCM_OP_OCC_DEFAULT_EXCLUDED = ("operationParams", "_links")


def list_app_instances(**_: Any) -> Reply:
    """GET /app_instances (vimConnectionInfo and the task links excluded by default)."""
    base, tenant = base_url(), request_tenant()
    return listing(lambda win: instances.list_instances(tenant, win), lambda i: app_instance_info(*i, base),
                   SPEC, "AppInstanceInfo", APP_INSTANCE_DEFAULT_EXCLUDED, key=lambda i: keyset.key(i.instance, AppInstance))


def create_app_instance(body: dict[str, Any]) -> Reply:
    """POST /app_instances → 201 AppInstanceInfo + Location (NOT_INSTANTIATED)."""
    return created(app_instance_info(*instances.create_instance(body, request_tenant()), base_url()))


def get_app_instance(appInstanceId: str) -> Reply:
    """GET /app_instances/{appInstanceId}."""
    return ok(app_instance_info(*instances.get_instance(appInstanceId, request_tenant()), base_url()))


def delete_app_instance(appInstanceId: str) -> Reply:
    """DELETE /app_instances/{appInstanceId} → 204; 409 while INSTANTIATED."""
    instances.delete_instance(appInstanceId, request_tenant())
    return no_content()


def instantiate_app_instance(appInstanceId: str, body: dict[str, Any]) -> Reply:
    """POST …/instantiate → 202 + Location of the AppLcmOpOcc."""
    from meao.lcm.selection import choose_host

    op = instances.instantiate(appInstanceId, body, choose_host=choose_host, tenant=request_tenant())
    return accepted(op_occ_href(base_url(), op.id))


def terminate_app_instance(appInstanceId: str, body: dict[str, Any]) -> Reply:
    """POST …/terminate → 202 + Location."""
    return accepted(op_occ_href(base_url(), instances.terminate(appInstanceId, body, request_tenant()).id))


def operate_app_instance(appInstanceId: str, body: dict[str, Any]) -> Reply:
    """POST …/operate → 202 + Location."""
    return accepted(op_occ_href(base_url(), instances.operate(appInstanceId, body, request_tenant()).id))


def list_op_occs(**_: Any) -> Reply:
    """GET /app_lcm_op_occs (operationParams and _links excluded by default)."""
    base, tenant = base_url(), request_tenant()
    return listing(lambda win: instances.list_ops(tenant, win), lambda op: app_lcm_op_occ(op, base),
                   SPEC, "AppLcmOpOcc", APP_LCM_OP_OCC_DEFAULT_EXCLUDED)


def get_op_occ(appLcmOpOccId: str) -> Reply:
    """GET /app_lcm_op_occs/{appLcmOpOccId}."""
    return ok(app_lcm_op_occ(instances.get_op(appLcmOpOccId, request_tenant()), base_url()))


def cancel_op_occ(appLcmOpOccId: str, body: dict[str, Any]) -> Reply:
    """POST …/cancel → 202."""
    instances.cancel(appLcmOpOccId, _cancel_mode(body), request_tenant())
    return accepted()


def _cancel_mode(body: dict[str, Any]) -> str:
    """The mode of a CancelMode request: its attribute ``CancelMode`` (table 6.2.2.32.2-1), or meao's alias
    ``cancelMode`` (the spelling of AppLcmOpOcc.cancelMode); both given, they must agree."""
    modes = {body[name] for name in ("CancelMode", "cancelMode") if name in body}
    if len(modes) != 1:
        raise BadRequest("CancelMode and its alias cancelMode name different modes; send CancelMode only "
                         "(MEC 010-2 table 6.2.2.32.2-1)")
    return modes.pop()


def fail_op_occ(appLcmOpOccId: str) -> Reply:
    """POST …/fail → 200 AppLcmOpOcc (FAILED) after the MEPM-V rolled back what the operation created."""
    return ok(app_lcm_op_occ(instances.fail(appLcmOpOccId, request_tenant()), base_url()))


def retry_op_occ(appLcmOpOccId: str) -> Reply:
    """POST …/retry → 202; the steps continue where they stopped."""
    instances.retry(appLcmOpOccId, request_tenant())
    return accepted()


# subscriptions (clauses 7.4.3-7.4.4): the handlers both Mm1 APIs share
list_subscriptions, create_subscription, get_subscription, delete_subscription = SubscriptionHandlers(
    APP_LCM).operations()
