"""Subscriptions, which the package management and the lifecycle API each keep under their own root."""

from __future__ import annotations

from typing import Any, ClassVar

from meao.oss.client.session import Proxy, id_from

#: subscription types of each API (MEC 010-2 clauses 6.2.3.9.2 and 6.2.2.20.2)
SUBSCRIPTION_TYPES: dict[str, tuple[str, ...]] = {
    "pkgm": ("AppPackageOnBoardingSubscription", "AppPackageChangeSubscription",
             "AppPackageDeletionSubscription"),
    "lcm": ("AppInstanceStateChangeSubscription", "AppLcmOpOccStateChangeSubscription",
            "AppIdentifierCreationSubscription", "AppIdentifierDeletionSubscription"),
}


def api_of(subscription_type: str) -> str:
    """``pkgm`` or ``lcm``: the API a subscription type belongs to."""
    for api, types in SUBSCRIPTION_TYPES.items():
        if subscription_type in types:
            return api
    raise ValueError(f"unknown subscription type {subscription_type!r}")


class SubscriptionsProxy(Proxy):
    """The ``/subscriptions`` calls of one API (``api``: a key of ``SUBSCRIPTION_TYPES``)."""

    api: ClassVar[str] = ""

    def filter_body(self, subscription_type: str, filter_: dict[str, Any] | list[Any]) -> dict[str, Any]:
        """The request member that carries ``filter_`` for this subscription type (each API names it)."""
        raise NotImplementedError

    def list_subscriptions(self, subscription_type: str | None = None) -> list[dict[str, Any]]:
        """GET /subscriptions (every page), flattened to ``{id, subscriptionType, href}`` per link."""
        params = {"subscription_type": subscription_type} if subscription_type else None
        return [{"id": id_from(link["href"]), "subscriptionType": link.get("subscriptionType"), "href": link["href"]}
                for page in self._pages("/subscriptions", params)
                for link in (page.get("_links") or {}).get("subscriptions") or []]

    def get_subscription(self, sub_id: str) -> dict[str, Any]:
        """GET /subscriptions/{id}: the *SubscriptionInfo."""
        return self._json("GET", f"/subscriptions/{sub_id}")

    def create_subscription(self, subscription_type: str, callback_uri: str,
                            filter_: dict[str, Any] | list[Any] | None = None) -> dict[str, Any]:
        """POST /subscriptions; ``filter_`` goes in the type's filter member."""
        if api_of(subscription_type) != self.api:
            raise ValueError(f"{subscription_type} is not a subscription type of the {self.api} API")
        body: dict[str, Any] = {"subscriptionType": subscription_type, "callbackUri": callback_uri}
        if filter_ is not None:
            body.update(self.filter_body(subscription_type, filter_))
        return self._json("POST", "/subscriptions", json=body)

    def delete_subscription(self, sub_id: str) -> None:
        """DELETE /subscriptions/{id}."""
        self._request("DELETE", f"/subscriptions/{sub_id}")
