"""The MEP's Mp1 (MEC 011) and Mm5 APIs in process, on SQLite and PostgreSQL, with the fake VIM.

Each app acts through its own token from the MEP's token endpoint; what one app may not do gets the
status MEC 011 gives it, with a ProblemDetails, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from meao.config import get_settings
from meao.db.models import MecHost
from meao.db.session import session_scope
from tests.conftest import SubscriberServer, wait_for

HOST = "pop-mp1"
SUPPORT = "/mec_app_support/v1"
SERVICES = "/mec_service_mgmt/v1"


@pytest.fixture()
def client(database: str) -> Iterator[Any]:
    from meao.app import create_app
    from meao.config import get_settings, set_settings

    settings = get_settings()
    open_mm5 = dataclasses.replace(settings, auth=dataclasses.replace(settings.auth, mode="none"),
                                   vim=dataclasses.replace(settings.vim, driver="fake"))
    set_settings(open_mm5)
    with session_scope() as session:
        session.add(MecHost(id=HOST, name=HOST, cloud="fake-mp1", queue=f"mecpm.{HOST}",
                            services=[{"serName": "platform-time", "version": "1"}]))
    yield create_app(open_mm5, embedded_worker=False).test_client()


def _problem(resp: Any, status: int, *words: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    for word in words:
        assert word in body["detail"], body
    return body


def register(client: Any, app_id: str, host: str = HOST, **appd: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Credentials and registration over Mm5, as the MEPM-V does; the app's Authorization header."""
    creds = client.put(f"/mm5/v1/app_instances/{app_id}/credentials", json={"mecHostId": host})
    assert creds.status_code == 200, creds.text
    creds = creds.json()
    info = client.put(f"/mm5/v1/app_instances/{app_id}", json={"mecHostId": host, **appd})
    assert info.status_code == 200, info.text
    token = client.post("/mep/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=(creds["clientId"], creds["clientSecret"]))
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}, info.json()


DNS_RULE = {"dnsRuleId": "d1", "domainName": "video.edge.example", "ipAddressType": "IP_V4",
            "ipAddress": "10.0.0.7", "ttl": 30}
TRAFFIC_RULE = {"trafficRuleId": "t1", "filterType": "FLOW", "priority": 5, "action": "PASSTHROUGH",
                "trafficFilter": [{"protocol": ["TCP"], "dstPort": ["8080"], "srcAddress": ["192.0.2.0/24"]}]}


def test_an_app_reads_and_changes_only_the_state_of_its_own_rules_with_etags(client: Any) -> None:
    me, info = register(client, "app-a", appDNSRule=[DNS_RULE], appTrafficRule=[TRAFFIC_RULE])
    other, _ = register(client, "app-b")
    assert info["dnsRules"][0]["state"] == "ACTIVE"

    listed = client.get(f"{SUPPORT}/applications/app-a/dns_rules", headers=me)
    assert listed.status_code == 200 and [r["dnsRuleId"] for r in listed.json()] == ["d1"]
    one = client.get(f"{SUPPORT}/applications/app-a/dns_rules/d1", headers=me)
    etag = one.headers["ETag"]

    off = dict(one.json(), state="INACTIVE")
    changed = client.put(f"{SUPPORT}/applications/app-a/dns_rules/d1", json=off, headers={**me, "If-Match": etag})
    assert changed.status_code == 200 and changed.json()["state"] == "INACTIVE"
    assert changed.headers["ETag"] != etag
    stale = client.put(f"{SUPPORT}/applications/app-a/dns_rules/d1", json=dict(off, state="ACTIVE"),
                       headers={**me, "If-Match": etag})
    _problem(stale, 412, "changed since you read it")
    moved = client.put(f"{SUPPORT}/applications/app-a/dns_rules/d1", json=dict(off, ipAddress="10.9.9.9"), headers=me)
    _problem(moved, 400, "ipAddress")
    _problem(client.get(f"{SUPPORT}/applications/app-a/dns_rules", headers=other), 403, "app-b", "app-a")
    _problem(client.put(f"{SUPPORT}/applications/app-a/dns_rules/d1", json=off, headers=other), 403)
    _problem(client.get(f"{SUPPORT}/applications/app-a/traffic_rules/nope", headers=me), 404, "nope")
    assert client.get(f"{SUPPORT}/applications/app-a/dns_rules/d1", headers=me).json()["state"] == "INACTIVE"
    assert client.get(f"{SUPPORT}/applications/app-a/dns_rules", headers={}).status_code == 401

    rule = client.get(f"{SUPPORT}/applications/app-a/traffic_rules/t1", headers=me).json()
    assert rule["trafficFilter"][0]["dstPort"] == ["8080"] and rule["state"] == "ACTIVE"


def test_services_are_registered_and_discovered_only_as_the_appd_authorises(client: Any) -> None:
    producer, _ = register(client, "prod", appServiceProduced=[{"serName": "video-analytics", "version": "2"}])
    service = {"serName": "video-analytics", "version": "2", "state": "ACTIVE", "serializer": "JSON",
               "transportInfo": {"id": "t", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP", "version": "1.1",
                                 "endpoint": {"uris": ["http://10.0.0.9:8080/va"]}, "security": {}}}
    made = client.post(f"{SERVICES}/applications/prod/services", json=service, headers=producer)
    assert made.status_code == 201, made.text
    # a required service must be offered when the consumer registers: now it is
    consumer, _ = register(client, "cons", appServiceRequired=[{"serName": "video-analytics", "version": "2"}])
    stranger, _ = register(client, "stranger")
    ser_id = made.json()["serInstanceId"]
    assert made.headers["Location"].endswith(f"/applications/prod/services/{ser_id}")
    _problem(client.post(f"{SERVICES}/applications/prod/services", json=dict(service, serName="other"),
                         headers=producer), 403, "appServiceProduced")
    _problem(client.post(f"{SERVICES}/applications/prod/services", json=service, headers=consumer), 403)

    found = client.get(f"{SERVICES}/services", params={"ser_name": "video-analytics"}, headers=consumer)
    assert found.status_code == 200 and [s["serInstanceId"] for s in found.json()] == [ser_id]
    assert client.get(f"{SERVICES}/services/{ser_id}", headers=consumer).json()["isLocal"] is True
    assert client.get(f"{SERVICES}/services", headers=stranger).json() == []
    _problem(client.get(f"{SERVICES}/services", params={"ser_name": "video-analytics"}, headers=stranger), 403)
    _problem(client.get(f"{SERVICES}/services/{ser_id}", headers=stranger), 403, "video-analytics")
    _problem(client.get(f"{SERVICES}/services", params={"ser_name": "a", "ser_instance_id": "b"}, headers=consumer),
             400, "at most one")

    etag = client.get(f"{SERVICES}/applications/prod/services/{ser_id}", headers=producer).headers["ETag"]
    down = client.put(f"{SERVICES}/applications/prod/services/{ser_id}", json=dict(service, state="INACTIVE"),
                      headers={**producer, "If-Match": etag})
    assert down.status_code == 200 and down.json()["state"] == "INACTIVE"
    _problem(client.put(f"{SERVICES}/applications/prod/services/{ser_id}", json=service,
                        headers={**producer, "If-Match": etag}), 412)
    assert client.delete(f"{SERVICES}/applications/prod/services/{ser_id}", headers=producer).status_code == 204
    assert client.get(f"{SERVICES}/services", headers=consumer).json() == []


def test_service_availability_is_notified_to_authorised_subscribers(client: Any, subscriber: SubscriberServer) -> None:
    path = f"/mp1/cons2-{uuid.uuid4()}"  # the subscriber outlives the test
    producer, _ = register(client, "prod2", appServiceProduced=[{"serName": "loc"}])
    consumer, _ = register(client, "cons2", appServiceOptional=[{"serName": "loc"}])
    sub = client.post(f"{SERVICES}/applications/cons2/subscriptions", headers=consumer, json={
        "subscriptionType": "SerAvailabilityNotificationSubscription",
        "callbackReference": f"{subscriber.url}{path}", "filteringCriteria": {"serNames": ["loc"]}})
    assert sub.status_code == 201, sub.text
    service = {"serName": "loc", "version": "1", "state": "ACTIVE", "serializer": "JSON",
               "transportInfo": {"id": "t", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP", "version": "1.1",
                                 "endpoint": {"uris": ["http://10.0.0.9/loc"]}, "security": {}}}
    made = client.post(f"{SERVICES}/applications/prod2/services", json=service, headers=producer).json()
    note = wait_for(lambda: subscriber.notifications(path), 10, what="SerAvailabilityNotification")[0]
    assert note["notificationType"] == "SerAvailabilityNotification"
    assert note["serviceReferences"][0] == {"serName": "loc", "serInstanceId": made["serInstanceId"],
                                            "state": "ACTIVE", "changeType": "ADDED",
                                            "link": {"href": f"{get_settings().public_url}{SERVICES}/services/"
                                                             f"{made['serInstanceId']}"}}
    listed = client.get(f"{SERVICES}/applications/cons2/subscriptions", headers=consumer).json()
    assert listed["_links"]["subscriptions"][0]["rel"] == "SerAvailabilityNotificationSubscription"


def test_platform_services_of_the_inventory_are_discoverable_over_mp1(client: Any) -> None:
    """A service of the host's inventory with a transportInfo is a ServiceInfo apps discover (with an id
    that survives reloads); one without counts for selection only; a malformed one is refused by name."""
    from meao.lcm import hosts
    from meao.problems import BadRequest

    transport = {"id": "rnis-rest", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP", "version": "1.1",
                 "endpoint": {"uris": ["http://10.0.0.2/rnis/v2"]}, "security": {}}
    rnis = {"serName": "rnis", "version": "2.2.1", "transportInfo": transport,
            "serCategory": {"href": "http://cat.example/rni", "id": "RNI", "name": "RNI", "version": "2"}}
    doc = {"id": HOST, "cloud": "fake-mp1", "services": [rnis, {"serName": "platform-time", "version": "1"}]}
    with session_scope() as session:
        hosts.upsert_host(session, doc)
    me, _ = register(client, "rnis-user", appServiceRequired=[{"serName": "rnis", "version": "2.2.1"}],
                     appServiceOptional=[{"serName": "platform-time"}])
    found = client.get(f"{SERVICES}/services", headers=me).json()
    assert [(s["serName"], s["version"], s["state"], s["serializer"], s["transportInfo"]) for s in found] == [
        ("rnis", "2.2.1", "ACTIVE", "JSON", transport)]
    ser_id = found[0]["serInstanceId"]
    assert client.get(f"{SERVICES}/services/{ser_id}", headers=me).json()["serCategory"]["id"] == "RNI"

    with session_scope() as session:  # a reload keeps the id; a changed field is seen at once
        hosts.upsert_host(session, dict(doc, services=[dict(rnis, consumedLocalOnly=True)]))
    again = client.get(f"{SERVICES}/services", params={"ser_name": "rnis"}, headers=me).json()
    assert [(s["serInstanceId"], s["consumedLocalOnly"]) for s in again] == [(ser_id, True)]

    bad = dict(rnis, transportInfo=dict(transport, type="CARRIER_PIGEON"))
    with pytest.raises(BadRequest, match=r"services\[0\] \(rnis\): transportInfo/type"), session_scope() as session:
        hosts.upsert_host(session, dict(doc, services=[bad]))
    with pytest.raises(BadRequest, match="unknown field"), session_scope() as session:
        hosts.upsert_host(session, dict(doc, services=[dict(rnis, endpoint="http://x")]))
    assert client.get(f"{SERVICES}/services/{ser_id}", headers=me).status_code == 200  # nothing was written

    with session_scope() as session:
        hosts.upsert_host(session, dict(doc, services=[]))
    assert client.get(f"{SERVICES}/services", headers=me).json() == []


def test_an_availability_notification_leaves_only_when_its_change_is_committed(
        client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An app told of a service can read it at once; a change that rolls back tells nobody."""
    from meao.db.models import MepService
    from mecpm.mep import notify

    seen: list[tuple[str, bool]] = []

    def visible_when_sent(url: str, payload: dict[str, Any], within_s: float) -> None:
        ref = payload["serviceReferences"][0]
        with session_scope() as other:  # another connection: sees only what was committed
            seen.append((ref["changeType"], other.get(MepService, ref["serInstanceId"]) is not None))

    monkeypatch.setattr(notify, "send", visible_when_sent)
    producer, _ = register(client, "prod3", appServiceProduced=[{"serName": "geo"}])
    consumer, _ = register(client, "cons3", appServiceOptional=[{"serName": "geo"}])
    assert client.post(f"{SERVICES}/applications/cons3/subscriptions", headers=consumer, json={
        "subscriptionType": "SerAvailabilityNotificationSubscription",
        "callbackReference": "http://127.0.0.1:9/unused"}).status_code == 201
    service = {"serName": "geo", "version": "1", "state": "ACTIVE", "serializer": "JSON",
               "transportInfo": {"id": "t", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP", "version": "1.1",
                                 "endpoint": {"uris": ["http://10.0.0.9/geo"]}, "security": {}}}
    made = client.post(f"{SERVICES}/applications/prod3/services", json=service, headers=producer)
    assert made.status_code == 201, made.text
    assert seen == [("ADDED", True)]

    with pytest.raises(RuntimeError), session_scope() as session:
        notify.send_after_commit(session, "http://127.0.0.1:9/unused", {"serviceReferences": [
            {"changeType": "REMOVED", "serInstanceId": made.json()["serInstanceId"]}]}, 1)
        raise RuntimeError("the change fails after it was announced")
    with session_scope():
        pass  # a later transaction of the same thread sends nothing left over
    assert seen == [("ADDED", True)]


def test_a_required_service_the_host_lacks_and_an_unresolvable_rule_conflict_are_refused(client: Any) -> None:
    creds = client.put("/mm5/v1/app_instances/needy/credentials", json={"mecHostId": HOST})
    assert creds.status_code == 200
    missing = client.put("/mm5/v1/app_instances/needy", json={
        "mecHostId": HOST, "appServiceRequired": [{"serName": "rnis", "version": "2"}]})
    _problem(missing, 422, "rnis (version 2)", HOST)
    ok = client.put("/mm5/v1/app_instances/needy", json={
        "mecHostId": HOST, "appServiceRequired": [{"serName": "platform-time"}]})
    assert ok.status_code == 200, ok.text

    register(client, "first", appTrafficRule=[TRAFFIC_RULE])
    client.put("/mm5/v1/app_instances/second/credentials", json={"mecHostId": HOST})
    clash = dict(TRAFFIC_RULE, trafficRuleId="t2", action="DROP")
    _problem(client.put("/mm5/v1/app_instances/second", json={"mecHostId": HOST, "appTrafficRule": [clash]}),
             409, "t2", "second", "t1", "another application instance")
    assert client.get("/mm5/v1/app_instances/second").status_code == 404  # credentials only, not registered
    lower = dict(clash, priority=9)
    info = client.put("/mm5/v1/app_instances/second", json={"mecHostId": HOST, "appTrafficRule": [lower]}).json()
    assert info["realised"]["trafficRules"]["rules"]["t2"]["overriddenBy"] == ["t1 (priority 5)"]

    # a domain name belongs to one application: its instances share it, another app cannot take it
    register(client, "named", appDId="appd-a", appDNSRule=[DNS_RULE])
    register(client, "named-too", appDId="appd-a", appDNSRule=[dict(DNS_RULE, ipAddress="10.0.0.8")])
    client.put("/mm5/v1/app_instances/third/credentials", json={"mecHostId": HOST})
    same_name = dict(DNS_RULE, dnsRuleId="d9", ipAddress="10.6.6.6", domainName="VIDEO.edge.example.")
    _problem(client.put("/mm5/v1/app_instances/third", json={"mecHostId": HOST, "appDId": "appd-b",
                                                             "appDNSRule": [same_name]}),
             409, "d9", "video.edge.example", "another application")


def test_hosts_sharing_one_dns_server_answer_with_each_hosts_instances(client: Any, dns_address: Any) -> None:
    """The MEP inside `meao serve` serves every host without a mep_url from one DNS server: instances of
    one AppD on two hosts answer with both addresses, and one going leaves the other's answering."""
    import dns.message
    import dns.query
    import dns.rcode

    from meao.config import set_settings
    from mecpm.mep.dns import read_env_file
    from tests.mep.conftest import pdns_env_file

    env = read_env_file(pdns_env_file())
    settings = get_settings()
    set_settings(dataclasses.replace(settings, mep=dataclasses.replace(
        settings.mep, dns_api_url=env["MEAO_MEP_DNS_API_URL"], dns_api_key_file=env["MEAO_MEP_DNS_API_KEY_FILE"])))
    with session_scope() as session:
        session.add(MecHost(id="pop-mp1-west", name="west", cloud="fake-mp1", queue="mecpm.pop-mp1-west"))
    name = f"shared-{uuid.uuid4().hex[:8]}.edge.example"

    def resolve() -> tuple[str, set[str]]:
        got = dns.query.udp(dns.message.make_query(name, "A"), dns_address[0], port=dns_address[1], timeout=2)
        return dns.rcode.to_text(got.rcode()), {r.to_text() for rrset in got.answer for r in rrset}

    rule = dict(DNS_RULE, domainName=name)
    register(client, "east", appDId="appd-shared", appDNSRule=[dict(rule, ipAddress="10.0.0.1")])
    register(client, "west", host="pop-mp1-west", appDId="appd-shared", appDNSRule=[dict(rule, ipAddress="10.0.0.2")])
    try:
        assert resolve() == ("NOERROR", {"10.0.0.1", "10.0.0.2"})
        assert client.delete("/mm5/v1/app_instances/west").status_code == 204
        assert resolve() == ("NOERROR", {"10.0.0.1"})
    finally:
        client.delete("/mm5/v1/app_instances/west")
        assert client.delete("/mm5/v1/app_instances/east").status_code == 204
    assert resolve()[0] == "NXDOMAIN"


def test_graceful_termination_waits_for_the_apps_confirmation(client: Any, subscriber: SubscriberServer) -> None:
    path = f"/mp1/graceful-{uuid.uuid4()}"
    me, _ = register(client, "graceful")
    sub = client.post(f"{SUPPORT}/applications/graceful/subscriptions", headers=me, json={
        "subscriptionType": "AppTerminationNotificationSubscription", "appInstanceId": "graceful",
        "callbackReference": f"{subscriber.url}{path}"})
    assert sub.status_code == 201, sub.text
    _problem(client.post(f"{SUPPORT}/applications/graceful/confirm_termination", headers=me,
                         json={"operationAction": "TERMINATING"}), 409, "no graceful")

    started = client.post("/mm5/v1/app_instances/graceful/graceful_termination",
                          json={"operationAction": "TERMINATING", "maxGracefulTimeout": 30})
    assert started.status_code == 200 and started.json()["state"] == "NOTIFIED"
    note = wait_for(lambda: subscriber.notifications(path), 10, what="AppTerminationNotification")[0]
    assert note["operationAction"] == "TERMINATING" and note["maxGracefulTimeout"] == 30
    assert note["_links"]["confirmTermination"]["href"].endswith("/applications/graceful/confirm_termination")
    _problem(client.post(f"{SUPPORT}/applications/graceful/confirm_termination", headers=me,
                         json={"operationAction": "STOPPING"}), 409, "TERMINATING")
    assert client.post(f"{SUPPORT}/applications/graceful/confirm_termination", headers=me,
                       json={"operationAction": "TERMINATING"}).status_code == 204
    assert client.get("/mm5/v1/app_instances/graceful/graceful_termination").json()["state"] == "CONFIRMED"

    register(client, "quiet")
    alone = client.post("/mm5/v1/app_instances/quiet/graceful_termination",
                        json={"operationAction": "STOPPING", "maxGracefulTimeout": 30})
    assert alone.json()["state"] == "NOT_SUBSCRIBED"
    short, _ = register(client, "short")
    client.post(f"{SUPPORT}/applications/short/subscriptions", headers=short, json={
        "subscriptionType": "AppTerminationNotificationSubscription", "appInstanceId": "short",
        "callbackReference": f"{subscriber.url}/mp1/short-{uuid.uuid4()}"})
    client.post("/mm5/v1/app_instances/short/graceful_termination",
                json={"operationAction": "STOPPING", "maxGracefulTimeout": 0})
    assert client.get("/mm5/v1/app_instances/short/graceful_termination").json()["state"] == "TIMED_OUT"


def test_deregistration_revokes_the_apps_token_and_confirm_ready_is_checked(client: Any) -> None:
    me, _ = register(client, "leaving")
    _problem(client.post(f"{SUPPORT}/applications/leaving/confirm_ready", headers=me, json={"indication": "NO"}), 400)
    assert client.post(f"{SUPPORT}/applications/leaving/confirm_ready", headers=me,
                       json={"indication": "READY"}).status_code == 204
    assert client.get("/mm5/v1/app_instances/leaving").json()["ready"] is True
    assert client.get(f"{SUPPORT}/timing/current_time", headers=me).json()["timeSourceStatus"] == "NONTRACEABLE"
    assert client.delete("/mm5/v1/app_instances/leaving").status_code == 204
    _problem(client.get(f"{SUPPORT}/applications/leaving/dns_rules", headers=me), 401, "revoked")
    bad = client.post("/mep/oauth2/token", data={"grant_type": "client_credentials"}, auth=("mp1-leaving", "x"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert client.delete("/mm5/v1/app_instances/leaving").status_code == 404


def test_new_credentials_revoke_the_tokens_of_the_old_ones(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mecpm.mep import security

    monkeypatch.setattr(security, "REGISTRATION_SKEW_S", 0)  # no clock skew here: the same clock
    old, _ = register(client, "rotated")
    assert client.get(f"{SUPPORT}/applications/rotated/dns_rules", headers=old).status_code == 200
    time.sleep(1.1)  # the next second: the old token was issued before the new registration time
    again = client.put("/mm5/v1/app_instances/rotated/credentials", json={"mecHostId": HOST})
    assert again.status_code == 200
    _problem(client.get(f"{SUPPORT}/applications/rotated/dns_rules", headers=old), 401, "earlier registration")


def test_bad_input_gets_problem_details_and_writes_nothing(client: Any) -> None:
    me, _ = register(client, "careful")
    _problem(client.get(f"{SUPPORT}/applications/nobody/dns_rules", headers=me), 404, "nobody")
    _problem(client.get(f"{SERVICES}/services", params={"scope_of_locality": "GALAXY"}, headers=me), 400)
    _problem(client.post(f"{SUPPORT}/applications/careful/subscriptions", headers=me, json={
        "subscriptionType": "AppTerminationNotificationSubscription", "appInstanceId": "someone-else",
        "callbackReference": "http://127.0.0.1:9/x"}), 400, "appInstanceId")

    broken = dict(TRAFFIC_RULE, trafficFilter=[{"protocol": ["TCP"], "dstPort": ["70000"]}])
    _problem(client.put("/mm5/v1/app_instances/careful", json={
        "mecHostId": HOST, "appTrafficRule": [broken], "appDNSRule": [DNS_RULE]}), 400, "70000")
    kept = client.get("/mm5/v1/app_instances/careful").json()
    assert kept["trafficRules"] == [] and kept["dnsRules"] == []  # the refused registration wrote nothing
    bad_dns = dict(DNS_RULE, ipAddress="not-an-address")
    _problem(client.put("/mm5/v1/app_instances/careful", json={"mecHostId": HOST, "appDNSRule": [bad_dns]}),
             400, "d1")

    tunnel = dict(TRAFFIC_RULE, trafficRuleId="gtp", action="FORWARD_ENCAPSULATED")
    info = client.put("/mm5/v1/app_instances/careful", json={"mecHostId": HOST, "appTrafficRule": [tunnel]})
    assert info.status_code == 200, info.text
    report = info.json()["realised"]["trafficRules"]["rules"]["gtp"]
    assert report["realised"] is False and "FORWARD_ENCAPSULATED" in report["reason"]
