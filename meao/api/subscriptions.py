"""Handlers of the subscriptions of both Mm1 APIs (MEC 010-2 clauses 7.3.3-7.3.4 and 7.4.3-7.4.4).

The package and lifecycle APIs treat subscriptions alike; each API module binds one
``SubscriptionHandlers`` to its ``Subscription.api`` and exports its ``operations()`` under the names
its OpenAPI operationIds give them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meao.api import paging
from meao.api.responses import JSON, Reply, base_url, created, no_content, ok
from meao.api.security import request_tenant
from meao.notify import subscriptions
from meao.wire.subscriptions import subscription_info, subscription_link_list


class SubscriptionHandlers:
    """GET/POST /subscriptions and GET/DELETE /subscriptions/{subscriptionId} of the API ``api``."""

    def __init__(self, api: str) -> None:
        self.api = api

    def operations(self) -> tuple[Callable[..., Reply], ...]:
        """The list, create, get and delete handlers, in that order."""
        return self.list_subscriptions, self.create_subscription, self.get_subscription, self.delete_subscription

    def list_subscriptions(self, subscriptionType: str | None = None, subscription_type: str | None = None,
                           **_: Any) -> Reply:
        """GET /subscriptions → a page of the API's *SubscriptionLinkList (``subscription_type``: meao's
        spelling), with the ``Link`` to the next page."""
        kind, tenant, base = subscriptionType or subscription_type, request_tenant(), base_url()
        page = paging.collect(lambda win: subscriptions.list_subscriptions(self.api, kind, tenant, win), lambda s: s)
        return subscription_link_list(page.items, self.api, base), 200, {**JSON, **paging.link_header(page, base)}

    def create_subscription(self, body: dict[str, Any]) -> Reply:
        """POST /subscriptions → 201 the matching *SubscriptionInfo + Location."""
        return created(subscription_info(subscriptions.create_subscription(self.api, body, request_tenant()),
                                         base_url()))

    def get_subscription(self, subscriptionId: str) -> Reply:
        """GET /subscriptions/{subscriptionId}."""
        return ok(subscription_info(subscriptions.get_subscription(self.api, subscriptionId, request_tenant()),
                                    base_url()))

    def delete_subscription(self, subscriptionId: str) -> Reply:
        """DELETE /subscriptions/{subscriptionId} → 204."""
        subscriptions.delete_subscription(self.api, subscriptionId, request_tenant())
        return no_content()
