"""Subscriptions to notifications of both Mm1 APIs (MEC 010-2 clauses 7.3.3-7.3.4 and 7.4.3-7.4.4).

Package subscriptions: clauses 6.2.3.4, 6.2.3.7, 6.2.3.10; lifecycle subscriptions: clauses 6.2.2.10-15
and 6.2.2.25-29. The API-facing functions own their transaction; ``subscribers`` and
``matching_subscriptions`` work in the caller's (the state change a notification reports).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from meao.auth.tenancy import notified, owns, visible
from meao.config import get_settings
from meao.db.keyset import ALL, Window, window
from meao.db.models import Subscription
from meao.db.session import session_scope
from meao.notify import callback_auth
from meao.outbound import OutboundPolicy
from meao.problems import BadRequest, NotFound
from meao.wire.links import APP_LCM, APP_PKGM  # Subscription.api is the name of the API

PKG_SUBSCRIPTION_TYPES = ("AppPackageOnBoardingSubscription", "AppPackageChangeSubscription",
                          "AppPackageDeletionSubscription")
LCM_SUBSCRIPTION_TYPES = ("AppInstanceStateChangeSubscription", "AppLcmOpOccStateChangeSubscription",
                          "AppIdentifierCreationSubscription", "AppIdentifierDeletionSubscription")
_STATE_FILTERS = ("operationalState", "usageState")
_LCM_FILTER_KEYS = ("appInstanceState", "appInstanceSubscriptionFilter", "appLcmOpOccSubscriptionFilter")


def _check_callback(callback_uri: str) -> None:
    if not callback_uri.startswith(("http://", "https://")):
        raise BadRequest(f"callbackUri {callback_uri!r} must be an http or https URI")
    OutboundPolicy.for_notifications(get_settings()).refuse_literal(callback_uri, "callbackUri")


def _pkg_subscription(body: dict[str, Any], tenant: str | None) -> Subscription:
    """AppPkgSubscription (clause 6.2.3.7), after checking the filter rules of table 6.2.3.10.2-1."""
    callback_uri, subscription_type, filters = body["callbackUri"], body["subscriptionType"], body.get("appPkgFilter")
    _check_callback(callback_uri)
    for flt in filters or []:
        if "appPkgInfoId" in flt and "appDId" in flt:
            raise BadRequest("an AppPkgFilter should not use both appPkgInfoId and appDId; choose one")
        states = [k for k in _STATE_FILTERS if k in flt]
        if states and subscription_type != "AppPackageChangeSubscription":
            raise BadRequest(f"AppPkgFilter {', '.join(states)} may only be used with "
                             "AppPackageChangeSubscription (table 6.2.3.10.2-1)")
    return Subscription(api=APP_PKGM, subscription_type=subscription_type, callback_uri=callback_uri,
                        filters=filters or None, authentication=callback_auth.from_request(body.get("authentication")),
                        tenant=tenant)


# Table 6.2.2.25.2-1 note: the selectors an AppInstIdCreationSubscriptionRequest's filter may use
_CREATION_SELECTORS = ("APP_D_ID", "APP_FROM_PROVIDER")


def _check_instance_filter(flt: dict[str, Any] | None, subscription_type: str) -> None:
    """The rules of an AppInstanceSubscriptionFilter (table 6.2.2.5.2-1) that its schema cannot say."""
    if flt is None:
        return
    selector = flt.get("appInstSelectorType")
    if subscription_type == "AppIdentifierCreationSubscription" and selector not in _CREATION_SELECTORS:
        raise BadRequest(f"appInstSelectorType {selector} is not allowed in an AppInstIdCreationSubscriptionRequest: "
                         f"it can only be {' or '.join(_CREATION_SELECTORS)} (table 6.2.2.25.2-1 note)")
    if selector == "APP_FROM_PROVIDER" and "appInstances" in flt:
        raise BadRequest("appInstances shall not be included when appInstSelectorType is APP_FROM_PROVIDER "
                         "(table 6.2.2.5.2-1)")
    if selector != "APP_FROM_PROVIDER" and "appsFromProviders" in flt:
        raise BadRequest("appsFromProviders is present only if appInstSelectorType is APP_FROM_PROVIDER "
                         "(table 6.2.2.5.2-1)")


def _check_op_occ_filter(flt: dict[str, Any] | None) -> None:
    """operationTypes and operationStates only with notificationTypes AppLcmOpOccNotification (table 6.2.2.6.2-1)."""
    if flt is None:
        return
    narrowing = [k for k in ("operationTypes", "operationStates") if k in flt]
    if narrowing and flt.get("notificationTypes") != "AppLcmOpOccNotification":
        raise BadRequest(f"AppLcmOpOccSubscriptionFilter {' and '.join(narrowing)} may be present only if "
                         "notificationTypes contains AppLcmOpOccNotification, and shall be absent otherwise "
                         "(table 6.2.2.6.2-1)")
    _check_instance_filter(flt.get("appInstanceSubscriptionFilter"), "AppLcmOpOccStateChangeSubscription")


def _lcm_subscription(body: dict[str, Any], tenant: str | None) -> Subscription:
    """A lifecycle subscription (clauses 6.2.2.12/14/25/28), after checking the rules of its filter's tables;
    its filter attributes are kept as given."""
    kind, callback_uri = body["subscriptionType"], body["callbackUri"]
    if kind not in LCM_SUBSCRIPTION_TYPES:
        raise BadRequest(f"subscriptionType {kind!r} is not one of {', '.join(LCM_SUBSCRIPTION_TYPES)}")
    _check_callback(callback_uri)
    _check_instance_filter(body.get("appInstanceSubscriptionFilter"), kind)
    _check_op_occ_filter(body.get("appLcmOpOccSubscriptionFilter"))
    flt = {k: body[k] for k in _LCM_FILTER_KEYS if k in body}
    return Subscription(api=APP_LCM, subscription_type=kind, callback_uri=callback_uri, filters=[flt] if flt else None,
                        authentication=callback_auth.from_request(body.get("authentication")), tenant=tenant)


def create_subscription(api: str, body: dict[str, Any], tenant: str | None = None) -> Subscription:
    """Store the subscription request ``body`` (wire form) of ``api``.

    ``authentication`` is the request's SubscriptionAuthentication, see ``callback_auth``. ``tenant``
    owns the subscription: it hears only about its tenant's resources; a subscription of no tenant
    hears about all. As elsewhere, a ``tenant`` argument confines a caller to its subscriptions.
    """
    sub = _pkg_subscription(body, tenant) if api == APP_PKGM else _lcm_subscription(body, tenant)
    with session_scope() as session:
        session.add(sub)
        session.flush()
        return sub


def list_subscriptions(api: str, subscription_type: str | None = None, tenant: str | None = None,
                       win: Window = ALL) -> list[Subscription]:
    """The subscriptions of one API (and ``tenant``) in ``win``, optionally of one type, oldest first."""
    with session_scope() as session:
        stmt = select(Subscription).where(Subscription.api == api, visible(Subscription.tenant, tenant))
        if subscription_type:
            stmt = stmt.where(Subscription.subscription_type == subscription_type)
        return list(session.scalars(window(stmt, Subscription, win)))


def _load(session: Session, api: str, subscription_id: str, tenant: str | None) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None or sub.api != api or not owns(sub.tenant, tenant):
        raise NotFound(f"subscription {subscription_id} does not exist")
    return sub


def get_subscription(api: str, subscription_id: str, tenant: str | None = None) -> Subscription:
    """One subscription, or NotFound."""
    with session_scope() as session:
        return _load(session, api, subscription_id, tenant)


def delete_subscription(api: str, subscription_id: str, tenant: str | None = None) -> None:
    """Remove a subscription; messages already in the outbox are still delivered."""
    with session_scope() as session:
        session.delete(_load(session, api, subscription_id, tenant))


def subscribers(session: Session, api: str, subscription_type: str,
                resource_tenant: str | None) -> list[Subscription]:
    """The subscriptions of a type told about a resource of ``resource_tenant``: its tenant's and those of
    no tenant (the operator's), oldest first.

    One SELECT per transaction, API and tenant, of every type: a transaction that emits several kinds of
    notification (an operation's outcome: the occurrence's and the instance's state) reads them once, a
    round trip fewer for a worker across a WAN. So a subscription this same transaction adds after it
    has emitted is not seen by its later emits; none does (subscriptions are made in requests of their own).
    """
    memo = session.info.setdefault("subscribers", {})
    every = memo.get((api, resource_tenant))
    if every is None:
        stmt = select(Subscription).where(Subscription.api == api, notified(Subscription.tenant, resource_tenant))
        every = memo[(api, resource_tenant)] = list(session.scalars(
            stmt.order_by(Subscription.created_at, Subscription.id)))
    return [sub for sub in every if sub.subscription_type == subscription_type]


def filter_matches(flt: dict[str, Any], attrs: dict[str, Any]) -> bool:
    """True when every attribute given in an AppPkgFilter equals the package's value."""
    return all(attrs.get(key) == value for key, value in flt.items())


def matching_subscriptions(session: Session, api: str, subscription_type: str, attrs: dict[str, Any],
                           resource_tenant: str | None = None) -> list[Subscription]:
    """``subscribers`` of ``subscription_type`` whose filters (any of them, or none) match ``attrs``."""
    return [sub for sub in subscribers(session, api, subscription_type, resource_tenant)
            if not sub.filters or any(filter_matches(f, attrs) for f in sub.filters)]


@event.listens_for(Session, "after_transaction_end")
def _forget_subscribers(session: Session, _transaction: Any) -> None:
    """The next transaction reads the subscriptions afresh."""
    session.info.pop("subscribers", None)
