"""Mm1 application lifecycle management (MEC 010-2 v3.1.1 clause 7.4) as a standard OSS sends it.

A real `meao serve` and `meao worker` on Redis and SQLite with the in-memory VIM (MEAO_VIM_DRIVER=fake),
so instances really get INSTANTIATED without a cloud. Two hosts of equal capacity: without a preference
the MEAO picks ``pop-a`` (ties go by host id), so landing on ``pop-b`` shows a preference was honoured.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import onboard, outbox_payloads
from tests.conftest import Stack, SubscriberServer, fake_vim_stack, wait_for
from tests.lcm.helpers import accepted_op, wait_op

LCM_REDIS_DB = 4
UNKNOWN = "00000000-0000-4000-8000-000000000404"


def _host(hid: str, zone: str) -> dict[str, Any]:
    return {"id": hid, "name": f"PoP {hid}", "cloud": "nowhere", "availability_zone": zone,
            "location": {"countryCode": "FI", "latitude": 60.17, "longitude": 24.9}, "served_areas": ["cell-1"],
            "latency_ms": {"cell-1": 5}, "services": [{"serName": "RNIS", "version": "2.2.1"},
                                                       {"serName": "LS", "version": "2.2.1"}],
            "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}}


@pytest.fixture(scope="module")
def lcm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fake_vim_stack(tmp_path_factory.mktemp("app-lcm"), [_host("pop-a", "az1"), _host("pop-b", "az2")],
                        LCM_REDIS_DB) as stack:
        yield stack


@pytest.fixture(scope="module")
def appd_id(lcm_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    from descriptors.examples.build import build_package

    return onboard(lcm_stack, build_package("mec-vm-app", tmp_path_factory.mktemp("pkg")))["appDId"]


@pytest.fixture()
def lcm(lcm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{lcm_stack.base}/app_lcm/v1", timeout=60) as client:
        yield client


@pytest.fixture()
def ops(lcm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{lcm_stack.base}/ops/v1", timeout=60) as client:
        yield client


def _new(lcm: httpx.Client, appd_id: str) -> str:
    resp = lcm.post("/app_instances", json={"appDId": appd_id})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _instantiated(lcm: httpx.Client, appd_id: str, body: dict[str, Any] | None = None) -> tuple[str, str]:
    iid = _new(lcm, appd_id)
    op_id = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json=body or {}))
    wait_op(lcm, op_id, timeout=60)
    return iid, op_id


def _terminate(lcm: httpx.Client, iid: str) -> None:
    """The worker's in-memory PoP has room for three of these apps per zone: give it back."""
    body = {"terminationType": "FORCEFUL"}
    wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json=body)), timeout=60)
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def _problem(resp: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    problem = resp.json()
    assert all(w in problem["detail"] for w in words), problem
    return problem


# 1. CancelMode (table 6.2.2.32.2-1)

def test_cancel_takes_the_attribute_CancelMode_of_table_6_2_2_32_2_1(lcm: httpx.Client, appd_id: str) -> None:
    """The standard's request attribute is ``CancelMode``; ``cancelMode`` stays as a documented alias.

    The operation is COMPLETED, so an accepted body meets the state rule: 409, not a 400 for the body.
    """
    iid, op_id = _instantiated(lcm, appd_id)
    for body in ({"CancelMode": "GRACEFUL"}, {"CancelMode": "FORCED"}, {"cancelMode": "FORCEFUL"},
                 {"CancelMode": "FORCED", "cancelMode": "FORCED"}):
        _problem(lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json=body), 409, "COMPLETED")
    _problem(lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"CancelMode": "GRACEFUL", "cancelMode": "FORCED"}),
             400, "CancelMode")
    assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={}).status_code == 400
    assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"CancelMode": "SOFTLY"}).status_code == 400
    _terminate(lcm, iid)


# 2. TerminateAppRequest (table 6.2.2.9.2-1)

def test_forceful_terminate_ignores_graceful_termination_timeout_table_6_2_2_9_2_1(
        lcm: httpx.Client, appd_id: str) -> None:
    """gracefulTerminationTimeout "is only applicable in case of graceful termination": ignored, not a 400."""
    iid, _ = _instantiated(lcm, appd_id)
    body = {"terminationType": "FORCEFUL", "gracefulTerminationTimeout": 30}
    wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json=body)), timeout=60)
    assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
    _problem(lcm.post(f"/app_instances/{UNKNOWN}/terminate", json=body), 404, UNKNOWN)


# 3. OperateAppRequest (table 6.2.2.8.2-1, notes 1 to 3)

@pytest.mark.parametrize("body,note", [
    ({"changeStateTo": "STARTED", "stopType": "FORCEFUL"}, "note 1"),
    ({"changeStateTo": "STARTED", "gracefulStopTimeout": 10}, "note 1"),
    ({"changeStateTo": "STOPPED", "stopType": "GRACEFUL"}, "note 2"),
    ({"changeStateTo": "STOPPED", "stopType": "FORCEFUL", "gracefulStopTimeout": 10}, "note 2"),
    ({"changeStateTo": "STOPPED", "gracefulStopTimeout": 10}, "note 3"),
])
def test_operate_request_breaking_a_note_of_table_6_2_2_8_2_1_is_400_naming_it(
        lcm: httpx.Client, appd_id: str, running: str, body: dict[str, Any], note: str) -> None:
    problem = _problem(lcm.post(f"/app_instances/{running}/operate", json=body), 400, "6.2.2.8.2-1", note)
    assert problem["status"] == 400
    # an unknown instance is a 404 before any rule on the body
    _problem(lcm.post(f"/app_instances/{UNKNOWN}/operate", json=body), 404, UNKNOWN)


def test_operate_requests_the_notes_allow_are_accepted(lcm: httpx.Client, appd_id: str) -> None:
    iid, _ = _instantiated(lcm, appd_id)
    for body in ({"changeStateTo": "STOPPED"}, {"changeStateTo": "STARTED"},
                 {"changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 1},
                 {"changeStateTo": "STARTED"}, {"changeStateTo": "STOPPED", "stopType": "FORCEFUL"}):
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/operate", json=body)), timeout=60)
        assert lcm.get(f"/app_instances/{iid}").json()["instantiatedAppState"]["operationalState"] == \
            body["changeStateTo"]
    _terminate(lcm, iid)


@pytest.fixture(scope="module")
def running(lcm_stack: Stack, appd_id: str) -> str:
    with httpx.Client(base_url=f"{lcm_stack.base}/app_lcm/v1", timeout=60) as lcm:
        return _instantiated(lcm, appd_id)[0]


# 4. exclude_default of GET /app_instances (table 7.4.1.3.2-1) and GET /app_lcm_op_occs (table 7.4.9.3.2-1)

def test_app_instances_query_excludes_the_task_links_by_default_table_7_4_1_3_2_1(
        lcm: httpx.Client, appd_id: str, running: str) -> None:
    waiting = _new(lcm, appd_id)  # NOT_INSTANTIATED: has an instantiate link
    full = {i["id"]: i for i in lcm.get("/app_instances", params={"all_fields": ""}).json()}
    assert set(full[waiting]["_links"]) == {"self", "instantiate"}
    assert set(full[running]["_links"]) == {"self", "terminate", "operate"}
    for params in ({}, {"exclude_default": ""}):
        listed = {i["id"]: i for i in lcm.get("/app_instances", params=params).json()}
        assert set(listed[waiting]["_links"]) == {"self"} and set(listed[running]["_links"]) == {"self"}, params
        assert listed[waiting]["appDId"] == appd_id
    asked = {i["id"]: i for i in lcm.get("/app_instances", params={"fields": "_links"}).json()}
    assert set(asked[waiting]["_links"]) == {"self", "instantiate"}
    asked = {i["id"]: i for i in lcm.get("/app_instances", params={"fields": "_links/operate"}).json()}
    assert set(asked[running]["_links"]) == {"self", "operate"}
    # the individual resource is not a query: its links are all there
    assert set(lcm.get(f"/app_instances/{waiting}").json()["_links"]) == {"self", "instantiate"}
    assert lcm.delete(f"/app_instances/{waiting}").status_code == 204


def test_op_occs_query_excludes_links_and_operation_params_by_default_table_7_4_9_3_2_1(
        lcm: httpx.Client, running: str) -> None:
    for params in ({}, {"exclude_default": ""}):
        listed = lcm.get("/app_lcm_op_occs", params=params).json()
        assert listed and all("_links" not in o and "operationParams" not in o for o in listed), params
        assert all(o["id"] and o["operationState"] for o in listed)
    full = lcm.get("/app_lcm_op_occs", params={"all_fields": ""}).json()
    assert all("_links" in o and "operationParams" in o for o in full)
    asked = lcm.get("/app_lcm_op_occs", params={"fields": "_links"}).json()
    assert all("_links" in o and "operationParams" not in o for o in asked)


# 5. the path before the body

@pytest.mark.parametrize("path,bad_body", [
    (f"/app_instances/{UNKNOWN}/instantiate", {"selectedMECHostInfo": "pop-a"}),
    (f"/app_instances/{UNKNOWN}/terminate", {"terminationType": "SOFTLY"}),
    (f"/app_instances/{UNKNOWN}/operate", {}),
    (f"/app_lcm_op_occs/{UNKNOWN}/cancel", {"CancelMode": 7}),
])
def test_a_body_to_an_unknown_id_is_404_whatever_the_body(lcm: httpx.Client, path: str,
                                                           bad_body: dict[str, Any]) -> None:
    """404 "when a client provided a URI that cannot be mapped to a valid resource URI" (e.g. table
    7.4.6.3.1-2) comes before the 400 of a malformed body."""
    _problem(lcm.post(path, json=bad_body), 404, UNKNOWN)


def test_a_bad_body_to_a_known_id_is_still_400(lcm: httpx.Client, running: str) -> None:
    assert lcm.post(f"/app_instances/{running}/terminate", json={"terminationType": "SOFTLY"}).status_code == 400
    assert lcm.post(f"/app_instances/{running}/operate", json={}).status_code == 400
    op_id = lcm.get("/app_lcm_op_occs", params={"filter": f"(eq,appInstanceId,{running})"}).json()[0]["id"]
    assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"CancelMode": 7}).status_code == 400


# 6. selectedMECHostInfo applies to Mm3 only (table 6.2.2.7.2-1, note 2)

def test_instantiate_without_selected_mec_host_info_lets_the_meao_choose_table_6_2_2_7_2_1_note_2(
        lcm: httpx.Client, ops: httpx.Client, appd_id: str) -> None:
    iid, op_id = _instantiated(lcm, appd_id, {})
    decision = ops.get(f"/placements/{op_id}").json()
    assert decision["chosen"] == "pop-a" and "preference" not in decision
    assert {h["hostId"] for h in decision["hosts"]} == {"pop-a", "pop-b"}
    _terminate(lcm, iid)


def test_selected_mec_host_info_is_a_preference_and_unknown_names_are_ignored(
        lcm: httpx.Client, ops: httpx.Client, appd_id: str) -> None:
    nope = {"hostId": {"id": "no-such-pop"}, "hostName": "Nowhere"}
    iid, op_id = _instantiated(lcm, appd_id, {"selectedMECHostInfo": [nope, {"hostId": {"id": "pop-b"}}]})
    decision = ops.get(f"/placements/{op_id}").json()
    assert decision["chosen"] == "pop-b", "the fitting host the OSS named is preferred over a better score"
    assert decision["preference"] == {"selection": "request", "preferred": ["pop-b"], "ignored": [nope],
                                      "honoured": True}
    _terminate(lcm, iid)

    iid, op_id = _instantiated(lcm, appd_id, {"selectedMECHostInfo": [nope]})
    decision = ops.get(f"/placements/{op_id}").json()
    assert decision["chosen"] == "pop-a"
    assert decision["preference"] == {"selection": "request", "preferred": [], "ignored": [nope],
                                      "honoured": False}
    _terminate(lcm, iid)


# 7. Targeted tests of branches nothing else reaches (issue: conformance)

def test_instantiate_of_an_instantiated_instance_is_409_table_7_4_6_3_1_2(lcm: httpx.Client, running: str) -> None:
    """Table 7.4.6.3.1-2: 409 "typically, ... the application instance resource is not in NOT_INSTANTIATED
    state"."""
    _problem(lcm.post(f"/app_instances/{running}/instantiate", json={}), 409, running)


def test_operate_to_the_state_already_reached_is_409_table_7_4_8_3_1_2(lcm: httpx.Client, running: str) -> None:
    """Table 7.4.8.3.1-2: 409 when the operation cannot be executed given the resource's state."""
    _problem(lcm.post(f"/app_instances/{running}/operate", json={"changeStateTo": "STARTED"}), 409, "STARTED")


def test_instantiate_of_a_disabled_package_is_409(lcm_stack: Stack, lcm: httpx.Client, appd_id: str) -> None:
    """A package whose operationalState is DISABLED cannot be instantiated (clause 7.3.2.3.5); enabled
    again, it can be."""
    iid = _new(lcm, appd_id)
    pkgm = f"{lcm_stack.base}/app_pkgm/v1/onboarded_app_packages/{appd_id}"
    assert httpx.patch(pkgm, json={"operationalState": "DISABLED"}, timeout=30).status_code == 200
    try:
        _problem(lcm.post(f"/app_instances/{iid}/instantiate", json={}), 409, "not ENABLED")
    finally:
        assert httpx.patch(pkgm, json={"operationalState": "ENABLED"}, timeout=30).status_code == 200
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204


_BAD_FILTERS = [({"filter": "(eq,id"}, "(op,attribute,value)"), ({"filter": "(like,id,x)"}, "op one of"),
                ({"filter": "(eq,noSuchAttribute,x)"}, "noSuchAttribute")]
_BAD_SELECTORS = [({"fields": "noSuchAttribute"}, "noSuchAttribute"),
                  ({"all_fields": "", "exclude_default": ""}, "cannot be combined")]


@pytest.mark.parametrize("path", ["/app_instances", "/app_lcm_op_occs"])
@pytest.mark.parametrize(("params", "words"), _BAD_FILTERS + _BAD_SELECTORS)
def test_a_bad_query_on_a_list_is_400_naming_it(lcm: httpx.Client, path: str, params: dict[str, str],
                                                 words: str) -> None:
    """Tables 7.4.1.3.2-2 and 7.4.9.3.2-2: 400 for "an invalid attribute-based filtering expression" or
    "an invalid attribute selector"."""
    _problem(lcm.get(path, params=params), 400, words)


def test_subscriptions_take_only_the_subscription_type_query(lcm: httpx.Client) -> None:
    """Table 7.4.3.3.2-1 gives GET /subscriptions one query parameter, subscriptionType."""
    _problem(lcm.get("/subscriptions", params={"filter": "(eq,id,x)"}), 400, "filter")
    _problem(lcm.get("/subscriptions", params={"subscriptionType": "NoSuchType"}), 400)
    assert lcm.get("/subscriptions", params={"subscriptionType": "AppLcmOpOccStateChangeSubscription"}).status_code == 200


def test_lcm_subscription_filters_select_what_is_notified(lcm_stack: Stack, lcm: httpx.Client, appd_id: str,
                                                          subscriber: SubscriberServer) -> None:
    """Table 6.2.2.6.2-1: only the op occurrences of the filtered instances, of the named notification
    types, operation types and states, are notified (read from the outbox, where they are written with
    the change they report)."""
    watched, other = _new(lcm, appd_id), _new(lcm, appd_id)
    sub = lcm.post("/subscriptions", json={
        "subscriptionType": "AppLcmOpOccStateChangeSubscription", "callbackUri": f"{subscriber.url}/lcm-filter",
        "appLcmOpOccSubscriptionFilter": {
            "appInstanceSubscriptionFilter": {"appInstSelectorType": "APP_IDENTITY", "appInstances": [watched]},
            "notificationTypes": "AppLcmOpOccNotification", "operationTypes": ["INSTANTIATE"],
            "operationStates": ["COMPLETED"]}})
    assert sub.status_code == 201, sub.text
    try:
        for iid in (watched, other):
            wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={})), timeout=60)
        assert {p.get("appInstanceId") for p in outbox_payloads(lcm_stack, sub.json()["id"])} == {watched}
        payloads = wait_for(lambda: subscriber.notifications("/lcm-filter"), 30, 0.1, "the notification")
        assert [(p["appInstanceId"], p["operationType"], p["operationState"]) for p in payloads] == [
            (watched, "INSTANTIATE", "COMPLETED")]
    finally:
        lcm.delete(f"/subscriptions/{sub.json()['id']}")
        for iid in (watched, other):
            _terminate(lcm, iid)
