"""`meao subscription …` on both APIs."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.cli.helpers import failed, ok, ok_json
from tests.conftest import SubscriberServer

# operationTypes only together with notificationTypes (MEC 010-2 table 6.2.2.6.2-1)
OP_FILTER = {"notificationTypes": "AppLcmOpOccNotification", "operationTypes": ["INSTANTIATE"]}


def test_subscription_create_list_show_delete_on_both_apis(meao: Callable, subscriber: SubscriberServer) -> None:
    pkg_sub = ok_json(meao("subscription", "create", "--type", "AppPackageOnBoardingSubscription",
                           "--callback", f"{subscriber.url}/pkg", "-f", "json"))
    lcm_sub = ok_json(meao("subscription", "create", "--type", "AppLcmOpOccStateChangeSubscription",
                           "--callback", f"{subscriber.url}/lcm",
                           "--filter", json.dumps(OP_FILTER), "-f", "json"))
    assert pkg_sub["api"] == "pkgm" and lcm_sub["api"] == "lcm"
    assert lcm_sub["appLcmOpOccSubscriptionFilter"] == OP_FILTER
    listed = ok_json(meao("subscription", "list", "-f", "json"))
    assert {(s["id"], s["api"], s["subscriptionType"], s["callbackUri"]) for s in listed} == {
        (pkg_sub["id"], "pkgm", "AppPackageOnBoardingSubscription", f"{subscriber.url}/pkg"),
        (lcm_sub["id"], "lcm", "AppLcmOpOccStateChangeSubscription", f"{subscriber.url}/lcm")}
    only_lcm = ok(meao("subscription", "list", "--api", "lcm", "-c", "id", "-f", "value"))
    assert only_lcm.split() == [lcm_sub["id"]]
    shown = ok(meao("subscription", "show", lcm_sub["id"], "-c", "callbackUri", "-f", "value"))
    assert shown.strip() == f"{subscriber.url}/lcm"
    ok(meao("subscription", "delete", pkg_sub["id"], lcm_sub["id"]))
    assert ok_json(meao("subscription", "list", "-f", "json")) == []
    assert lcm_sub["id"] in failed(meao("subscription", "delete", lcm_sub["id"]), 4)


def test_subscription_create_with_a_type_of_the_other_api_is_a_usage_error(meao: Callable) -> None:
    err = failed(meao("subscription", "create", "--type", "AppPackageChangeSubscription", "--callback",
                      "http://127.0.0.1:9/cb", "--api", "lcm"), 2)
    assert "pkgm subscription type" in err


def test_subscription_create_with_a_non_http_callback_exits_1(meao: Callable) -> None:
    err = failed(meao("subscription", "create", "--type", "AppPackageChangeSubscription", "--callback",
                      "ftp://example/cb"), 1)
    assert "must be an http or https URI" in err
