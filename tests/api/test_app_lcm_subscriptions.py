"""Rules of the lifecycle subscription requests (MEC 010-2 clause 7.4.3) that their schemas cannot say.

A request breaking one is a 400 whose detail names the rule and its table.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Stack

CALLBACK = "http://127.0.0.1:9/cb"


def _subscribe(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=f"{stack.base}/app_lcm/v1", timeout=30) as lcm:
        resp = lcm.post("/subscriptions", json={"callbackUri": CALLBACK, **body})
        if resp.status_code == 201:
            assert lcm.delete(f"/subscriptions/{resp.json()['id']}").status_code == 204
        return resp


@pytest.mark.parametrize("selector", ["VOID", "APP_IDENTITY", "APP_NAME"])
def test_creation_subscription_with_a_selector_other_than_appd_or_provider_is_400(stack: Stack, selector: str) -> None:
    """Table 6.2.2.25.2-1 note: appInstSelectorType can only be APP_D_ID or APP_FROM_PROVIDER."""
    resp = _subscribe(stack, {"subscriptionType": "AppIdentifierCreationSubscription",
                              "appInstanceSubscriptionFilter": {"appInstSelectorType": selector,
                                                                "appInstances": ["x"]}})
    assert resp.status_code == 400, resp.text
    assert "APP_D_ID or APP_FROM_PROVIDER" in resp.json()["detail"] and "6.2.2.25.2-1" in resp.json()["detail"]


@pytest.mark.parametrize("flt", [{"appInstSelectorType": "APP_D_ID", "appInstances": ["appd-1"]},
                                 {"appInstSelectorType": "APP_FROM_PROVIDER",
                                  "appsFromProviders": [{"appProvider": "acme"}]}])
def test_creation_subscription_by_appd_or_provider_is_created(stack: Stack, flt: dict[str, Any]) -> None:
    resp = _subscribe(stack, {"subscriptionType": "AppIdentifierCreationSubscription",
                              "appInstanceSubscriptionFilter": flt})
    assert resp.status_code == 201, resp.text
    assert resp.json()["appInstanceSubscriptionFilter"] == flt


def test_deletion_subscription_may_select_instances_by_identity(stack: Stack) -> None:
    """Table 6.2.2.28.2-1 has no such note: a deletion subscription may name the instances it watches."""
    resp = _subscribe(stack, {"subscriptionType": "AppIdentifierDeletionSubscription",
                              "appInstanceSubscriptionFilter": {"appInstSelectorType": "APP_IDENTITY",
                                                                "appInstances": ["inst-1"]}})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("flt", [{"appInstSelectorType": "APP_FROM_PROVIDER", "appInstances": ["x"],
                                  "appsFromProviders": [{"appProvider": "acme"}]},
                                 {"appInstSelectorType": "APP_D_ID", "appInstances": ["x"],
                                  "appsFromProviders": [{"appProvider": "acme"}]}])
def test_instance_filter_mixing_instances_and_providers_is_400(stack: Stack, flt: dict[str, Any]) -> None:
    """Table 6.2.2.5.2-1: appInstances not with APP_FROM_PROVIDER, appsFromProviders only with it."""
    resp = _subscribe(stack, {"subscriptionType": "AppIdentifierDeletionSubscription",
                              "appInstanceSubscriptionFilter": flt})
    assert resp.status_code == 400, resp.text
    assert "6.2.2.5.2-1" in resp.json()["detail"]


@pytest.mark.parametrize("narrowing", [{"operationTypes": ["INSTANTIATE"]}, {"operationStates": ["COMPLETED"]},
                                       {"operationTypes": ["TERMINATE"], "operationStates": ["FAILED"]}])
def test_op_occ_filter_narrowing_without_notification_types_is_400(stack: Stack, narrowing: dict[str, Any]) -> None:
    """Table 6.2.2.6.2-1: operationTypes and operationStates may be present only if notificationTypes
    contains AppLcmOpOccNotification, and shall be absent otherwise."""
    resp = _subscribe(stack, {"subscriptionType": "AppLcmOpOccStateChangeSubscription",
                              "appLcmOpOccSubscriptionFilter": narrowing})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "notificationTypes" in detail and "AppLcmOpOccNotification" in detail and "6.2.2.6.2-1" in detail
    assert all(name in detail for name in narrowing)


def test_op_occ_filter_narrowing_with_notification_types_is_created(stack: Stack) -> None:
    flt = {"notificationTypes": "AppLcmOpOccNotification", "operationTypes": ["INSTANTIATE"],
           "operationStates": ["COMPLETED", "FAILED_TEMP"]}
    resp = _subscribe(stack, {"subscriptionType": "AppLcmOpOccStateChangeSubscription",
                              "appLcmOpOccSubscriptionFilter": flt})
    assert resp.status_code == 201, resp.text
    assert resp.json()["appLcmOpOccSubscriptionFilter"] == flt
