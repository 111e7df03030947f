"""Application package notifications (AppPkgNotification, MEC 010-2 clause 6.2.3.6) into the outbox."""

from __future__ import annotations

from functools import partial

from sqlalchemy.orm import Session

from meao.db.models import AppPackage
from meao.notify import outbox
from meao.notify.subscriptions import matching_subscriptions
from meao.wire.links import APP_PKGM
from meao.wire.notifications import app_pkg_notification
from meao.wire.packages import app_pkg_filter_attributes

# AppPkgNotification.notificationType → the subscription type that receives it (table 6.2.3.6.2-1)
PKG_NOTIFICATION_SUBSCRIPTION = {
    "AppPackageOnBoarded": "AppPackageOnBoardingSubscription",
    "AppPackageEnabled": "AppPackageChangeSubscription",
    "AppPackageDisabled": "AppPackageChangeSubscription",
    "AppPackageDeleted": "AppPackageDeletionSubscription",
}


def emit_pkg_notification(session: Session, pkg: AppPackage, notification_type: str) -> int:
    """Queue an AppPkgNotification for every matching subscription, in the caller's transaction.

    Returns the number of messages queued.
    """
    subscription_type = PKG_NOTIFICATION_SUBSCRIPTION[notification_type]
    subs = matching_subscriptions(session, APP_PKGM, subscription_type, app_pkg_filter_attributes(pkg), pkg.tenant)
    return outbox.write(session, subs, notification_type, partial(app_pkg_notification, pkg, notification_type))
