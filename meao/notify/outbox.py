"""The transactional outbox: notifications are rows written with the state change they report."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import AppPackage, OutboxMessage
from meao.notify.subscriptions import matching_subscriptions

# AppPkgNotification.notificationType → the subscription type that receives it (table 6.2.3.6.2-1)
PKG_NOTIFICATION_SUBSCRIPTION = {
    "AppPackageOnBoarded": "AppPackageOnBoardingSubscription",
    "AppPackageEnabled": "AppPackageChangeSubscription",
    "AppPackageDisabled": "AppPackageChangeSubscription",
    "AppPackageDeleted": "AppPackageDeletionSubscription",
}


def timestamp() -> dict[str, int]:
    """MEC 010-2 clause 6.2.5.4 TimeStamp for now."""
    ns = time.time_ns()
    return {"seconds": ns // 1_000_000_000, "nanoSeconds": ns % 1_000_000_000}


def pkg_filter_attrs(pkg: AppPackage) -> dict[str, Any]:
    """The AppPkgFilter attributes (table 6.2.3.10.2-1) of a package."""
    return {"appPkgInfoId": pkg.id, "appDId": pkg.appd_id, "appProvider": pkg.app_provider,
            "appName": pkg.app_name, "appSoftwareVersion": pkg.app_software_version,
            "appDVersion": pkg.appd_version, "operationalState": pkg.operational_state,
            "usageState": pkg.usage_state}


def emit_pkg_notification(session: Session, pkg: AppPackage, notification_type: str) -> int:
    """Queue an AppPkgNotification for every matching subscription, in the caller's transaction.

    Returns the number of messages queued. All copies share one notification id (clause 6.2.3.6.2).
    """
    subscription_type = PKG_NOTIFICATION_SUBSCRIPTION[notification_type]
    subs = matching_subscriptions(session, "app_pkgm", subscription_type, pkg_filter_attrs(pkg), pkg.tenant)
    notification_id = str(uuid.uuid4())
    base = get_settings().public_url
    for sub in subs:
        payload = {
            "id": notification_id,
            "notificationType": notification_type,
            "subscriptionId": sub.id,
            "timeStamp": timestamp(),
            "appPkgId": pkg.id,
            "appDId": pkg.appd_id or "",
            "operationalState": pkg.operational_state,
            "_links": {"subscription": {"href": f"{base}/app_pkgm/v1/subscriptions/{sub.id}"}},
        }
        session.add(OutboxMessage(subscription_id=sub.id, callback_uri=sub.callback_uri,
                                  notification_id=notification_id, notification_type=notification_type,
                                  payload=payload))
    return len(subs)
