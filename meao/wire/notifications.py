"""Notification types (MEC 010-2 clauses 6.2.3.6, 6.2.2.11, 6.2.2.16, 6.2.2.27, 6.2.2.30).

Each copy of a notification names its subscription; all copies of one event share its ``id``.
"""

from __future__ import annotations

from typing import Any

from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage
from meao.wire.fields import compact
from meao.wire.links import APP_LCM, APP_PKGM, app_instance_href, link, op_occ_href, subscription_href
from meao.wire.times import timestamp_now


def _notification(api: str, notification_type: str, notification_id: str, subscription_id: str, base: str,
                  attributes: dict[str, Any], links: dict[str, Any] | None = None) -> dict[str, Any]:
    """The attributes every notification type has, around the type's own ``attributes`` and ``links``."""
    return {"id": notification_id, "notificationType": notification_type, "subscriptionId": subscription_id,
            "timeStamp": timestamp_now(), **attributes,
            "_links": {**(links or {}), "subscription": link(subscription_href(base, api, subscription_id))}}


def app_pkg_notification(pkg: AppPackage, notification_type: str, notification_id: str, subscription_id: str,
                         base: str) -> dict[str, Any]:
    """AppPkgNotification (clause 6.2.3.6) of type AppPackageOnBoarded/Enabled/Disabled/Deleted.

    A package deleted before it was onboarded has no appDId: the attribute is then left out (a deviation
    from its cardinality 1, documented in openapi/mm1-app-pkgm.yaml) rather than sent empty.
    """
    appd_id = {"appDId": pkg.appd_id} if pkg.appd_id else {}
    return _notification(APP_PKGM, notification_type, notification_id, subscription_id, base, {
        "appPkgId": pkg.id, **appd_id, "operationalState": pkg.operational_state})


def app_lcm_op_occ_notification(op: AppLcmOpOcc, notification_id: str, subscription_id: str,
                                base: str) -> dict[str, Any]:
    """AppLcmOpOccNotification (clause 6.2.2.16)."""
    return _notification(APP_LCM, "AppLcmOpOccStateChangeSubscription", notification_id, subscription_id, base, {
        "operationType": op.lcm_operation, "operationState": op.operation_state, "appLcmOpOccId": op.id,
        "appInstanceId": op.app_instance_id,
    }, {"appInstance": link(app_instance_href(base, op.app_instance_id)), "appLcmOpOcc": link(op_occ_href(base, op.id))})


def app_inst_notification(inst: AppInstance, state: str, location: dict[str, Any] | None, notification_id: str,
                          subscription_id: str, base: str) -> dict[str, Any]:
    """AppInstNotification (table 6.2.2.11.2-1) reporting the instance's ``state``.

    appInstLocation (``location``, a LocationInformation) is present while the instance is instantiated
    (STARTED or STOPPED) and absent when it is NOT_INSTANTIATED.
    """
    return _notification(APP_LCM, "AppInstanceStateChangeSubscription", notification_id, subscription_id, base, compact({
        "appInstanceState": state, "appInstanceId": inst.id, "appPkgId": inst.app_pkg_id, "appDId": inst.appd_id,
        "appInstLocation": location if state != "NOT_INSTANTIATED" else None}))


def app_instance_identifier_notification(inst: AppInstance, subscription_type: str, notification_id: str,
                                         subscription_id: str, base: str) -> dict[str, Any]:
    """AppInstanceIdentifierCreationNotification (6.2.2.27) or ...DeletionNotification (6.2.2.30).

    ``subscription_type`` (AppIdentifierCreationSubscription or AppIdentifierDeletionSubscription) is
    the notificationType.
    """
    return _notification(APP_LCM, subscription_type, notification_id, subscription_id, base,
                         {"appInstanceId": inst.id}, {"appInstance": link(app_instance_href(base, inst.id))})
