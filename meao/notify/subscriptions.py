"""Subscriptions to package notifications (MEC 010-2 clauses 6.2.3.4, 6.2.3.7, 6.2.3.10, 7.3.3-7.3.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meao.auth.tenancy import notified, owns, visible
from meao.db.models import Subscription
from meao.notify import callback_auth
from meao.problems import BadRequest, NotFound

PKG_SUBSCRIPTION_TYPES = ("AppPackageOnBoardingSubscription", "AppPackageChangeSubscription",
                          "AppPackageDeletionSubscription")
_STATE_FILTERS = ("operationalState", "usageState")
_LCM_FILTER_KEYS = ("appInstanceState", "appInstanceSubscriptionFilter", "appLcmOpOccSubscriptionFilter")


def create_pkg_subscription(session: Session, callback_uri: str, subscription_type: str,
                            filters: list[dict[str, Any]] | None,
                            authentication: dict[str, Any] | None = None, tenant: str | None = None) -> Subscription:
    """Store a package subscription after checking the filter rules of table 6.2.3.10.2-1.

    ``authentication`` is the request's SubscriptionAuthentication (wire form), see ``callback_auth``.
    ``tenant`` owns the subscription: it hears only about its tenant's resources; a subscription of no
    tenant hears about all. As elsewhere, a ``tenant`` argument confines a caller to its subscriptions.
    """
    if not callback_uri.startswith(("http://", "https://")):
        raise BadRequest(f"callbackUri {callback_uri!r} must be an http or https URI")
    for flt in filters or []:
        if "appPkgInfoId" in flt and "appDId" in flt:
            raise BadRequest("an AppPkgFilter should not use both appPkgInfoId and appDId; choose one")
        states = [k for k in _STATE_FILTERS if k in flt]
        if states and subscription_type != "AppPackageChangeSubscription":
            raise BadRequest(f"AppPkgFilter {', '.join(states)} may only be used with "
                             "AppPackageChangeSubscription (table 6.2.3.10.2-1)")
    sub = Subscription(api="app_pkgm", subscription_type=subscription_type, callback_uri=callback_uri,
                       filters=filters or None, authentication=callback_auth.from_request(authentication),
                       tenant=tenant)
    session.add(sub)
    session.flush()
    return sub


def create_lcm_subscription(session: Session, body: dict[str, Any], allowed_types: tuple[str, ...],
                            tenant: str | None = None) -> Subscription:
    """Store a lifecycle subscription (clauses 6.2.2.10/12/14/25/28); its filter attributes are kept as given."""
    kind, callback_uri = body["subscriptionType"], body["callbackUri"]
    if kind not in allowed_types:
        raise BadRequest(f"subscriptionType {kind!r} is not one of {', '.join(allowed_types)}")
    if not callback_uri.startswith(("http://", "https://")):
        raise BadRequest(f"callbackUri {callback_uri!r} must be an http or https URI")
    flt = {k: body[k] for k in _LCM_FILTER_KEYS if k in body}
    sub = Subscription(api="app_lcm", subscription_type=kind, callback_uri=callback_uri, filters=[flt] if flt else None,
                       authentication=callback_auth.from_request(body.get("authentication")), tenant=tenant)
    session.add(sub)
    session.flush()
    return sub


def list_subscriptions(session: Session, api: str, subscription_type: str | None = None,
                       tenant: str | None = None) -> list[Subscription]:
    """All subscriptions of one API (and ``tenant``), optionally of one type, oldest first."""
    stmt = select(Subscription).where(Subscription.api == api, visible(Subscription.tenant, tenant))
    if subscription_type:
        stmt = stmt.where(Subscription.subscription_type == subscription_type)
    return list(session.scalars(stmt.order_by(Subscription.created_at, Subscription.id)))


def get_subscription(session: Session, api: str, subscription_id: str, tenant: str | None = None) -> Subscription:
    """One subscription, or NotFound."""
    sub = session.get(Subscription, subscription_id)
    if sub is None or sub.api != api or not owns(sub.tenant, tenant):
        raise NotFound(f"subscription {subscription_id} does not exist")
    return sub


def delete_subscription(session: Session, api: str, subscription_id: str, tenant: str | None = None) -> None:
    """Remove a subscription; messages already in the outbox are still delivered."""
    session.delete(get_subscription(session, api, subscription_id, tenant))


def subscribers(session: Session, api: str, subscription_type: str,
                resource_tenant: str | None) -> list[Subscription]:
    """The subscriptions of a type told about a resource of ``resource_tenant``: its tenant's and those of
    no tenant (the operator's), oldest first."""
    stmt = select(Subscription).where(Subscription.api == api, Subscription.subscription_type == subscription_type,
                                      notified(Subscription.tenant, resource_tenant))
    return list(session.scalars(stmt.order_by(Subscription.created_at, Subscription.id)))


def filter_matches(flt: dict[str, Any], attrs: dict[str, Any]) -> bool:
    """True when every attribute given in an AppPkgFilter equals the package's value."""
    return all(attrs.get(key) == value for key, value in flt.items())


def matching_subscriptions(session: Session, api: str, subscription_type: str, attrs: dict[str, Any],
                           resource_tenant: str | None = None) -> list[Subscription]:
    """``subscribers`` of ``subscription_type`` whose filters (any of them, or none) match ``attrs``."""
    return [sub for sub in subscribers(session, api, subscription_type, resource_tenant)
            if not sub.filters or any(filter_matches(f, attrs) for f in sub.filters)]
