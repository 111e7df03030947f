"""Subscription types of both Mm1 APIs (MEC 010-2 clauses 6.2.3.4-6.2.3.5 and 6.2.2.10-6.2.2.29)."""

from __future__ import annotations

from typing import Any

from meao.db.models import Subscription
from meao.wire.fields import Field, render
from meao.wire.links import APP_LCM, link, subscription_href, subscriptions_href

# the attributes every *SubscriptionInfo has
SUBSCRIPTION_INFO = (
    Field("id", "id"),
    Field("subscriptionType", "subscription_type"),
    Field("callbackUri", "callback_uri"),
)


def subscription_info(sub: Subscription, base: str) -> dict[str, Any]:
    """The *SubscriptionInfo of the subscription's API and type.

    app_pkgm: AppPkgSubscriptionInfo (clause 6.2.3.4). app_lcm: AppInstSubscriptionInfo (6.2.2.10),
    AppLcmOpOccSubscriptionInfo (6.2.2.15), AppInstIdCreationSubscriptionInfo (6.2.2.26) or
    AppInstIdDeletionSubscriptionInfo (6.2.2.29), with the filter attributes as they were given.
    """
    filters = (sub.filters[0] if sub.filters else {}) if sub.api == APP_LCM else {}
    return {**render(SUBSCRIPTION_INFO, sub), **filters,
            "_links": {"self": link(subscription_href(base, sub.api, sub.id))}}


def subscription_link_list(subs: list[Subscription], api: str, base: str) -> dict[str, Any]:
    """AppPkgSubscriptionLinkList (clause 6.2.3.5) or AppInstanceSubscriptionLinkList (clause 6.2.2.19)."""
    return {"_links": {"self": link(subscriptions_href(base, api)),
                       "subscriptions": [{"href": subscription_href(base, api, s.id),
                                          "subscriptionType": s.subscription_type} for s in subs]}}
