"""The fuzz target: a live `meao serve` + `meao worker` on real Redis, seeded with realistic state.

No real cloud is configured (an empty clouds.yaml), so lifecycle jobs on the seeded MEC hosts fail
cleanly (FAILED_TEMP) instead of reaching OpenStack.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.helpers import sha256
from tests.conftest import (
    REDIS,
    Stack,
    SubscriberServer,
    fresh_database,
    launch_stack,
    require_service,
    wait_for,
)

FUZZ_REDIS_DB = 14
# The inventory the API loads at start, so the worker listens on the host's queue from the beginning.
CONFIGURED_HOST = {"id": "fuzz-edge", "name": "Fuzz edge", "cloud": "fuzz-no-such-cloud",
                   "availability_zone": "az1",
                   "location": {"countryCode": "FI", "latitude": 60.1, "longitude": 24.9},
                   "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5},
                   "services": [{"serName": "RNIS", "version": "2.2.1"}],
                   "features": [{"featureName": "UserApps"}], "networks": {"default": "edge-net"}}
# Added through the operations API itself.
POSTED_HOST = {"id": "fuzz-edge-2", "name": "Fuzz edge 2", "cloud": "fuzz-no-such-cloud",
               "availabilityZone": "az2",
               "location": {"countryCode": "FI", "latitude": 61.5, "longitude": 23.8},
               "servedAreas": ["cell-2"], "latencyMs": {"cell-2": 9.5}, "networks": {"default": "edge-net"}}


@dataclass
class FuzzTarget:
    """Where to send the fuzzed requests, with what headers, and the ids of the seeded resources."""

    stack: Stack
    headers: dict[str, str]
    mp1_headers: dict[str, str] = field(default_factory=dict)  # the seeded app's own Mp1 token
    seeded: dict[str, list[str]] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)  # requests per operation ("/ops/v1 GET /jobs")
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0  # 5xx answers other than a documented 503

    def url(self, server_path: str) -> str:
        """The live base URL of an API whose OpenAPI ``servers`` entry is ``server_path``."""
        return f"{self.stack.base}{server_path}"


def auth_headers(stack: Stack) -> dict[str, str]:
    """THE one place the fuzz obtains its credentials: the Authorization header every request carries.

    With MEAO_AUTH=local (the default) the bootstrap ``admin`` client that `meao serve` wrote to
    ``<MEAO_DATA_DIR>/admin-credentials.json`` asks ``/oauth2/token`` for a client-credentials token with
    all its scopes (every scope of every API); with MEAO_FUZZ_AUTH=none the server is open and no header
    is sent.
    """
    if stack.env["MEAO_AUTH"] == "none":
        return {}
    creds_file = stack.data_dir / "admin-credentials.json"
    creds = wait_for(lambda: creds_file.exists() and json.loads(creds_file.read_text()), 30, 0.2,
                     f"{creds_file} to be written")
    resp = httpx.post(f"{stack.base}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(creds["client_id"], creds["client_secret"]), timeout=30)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def _onboard(client: httpx.Client, stack: Stack, csar: Path) -> dict[str, Any]:
    target = stack.pkg_root / csar.name
    shutil.copyfile(csar, target)
    resp = client.post("/app_pkgm/v1/app_packages", json={
        "appPkgName": csar.stem, "appPkgVersion": "1.0", "appPkgPath": target.as_uri(),
        "checksum": {"algorithm": "SHA-256", "hash": sha256(target)}, "userDefinedData": {"seed": "fuzz"}})
    assert resp.status_code == 201, resp.text
    pkg_id = resp.json()["id"]

    def onboarded() -> dict[str, Any] | None:
        info = client.get(f"/app_pkgm/v1/app_packages/{pkg_id}").json()
        assert "onboardingFailureDetails" not in info, info["onboardingFailureDetails"]
        return info if info["onboardingState"] == "ONBOARDED" else None

    return wait_for(onboarded, 60, 0.1, f"{csar.name} to onboard")


def _write_occurrences(db_url: str, failed_id: str, running_id: str) -> dict[str, str]:
    """The occurrences a cloud would have left behind, written directly (without one, every instantiate
    is refused): a FAILED_TEMP INSTANTIATE holding ``failed_id``, a COMPLETED INSTANTIATE that left
    ``running_id`` INSTANTIATED, and an OPERATE of it still PROCESSING (so it can be granted)."""
    from sqlalchemy import create_engine, update
    from sqlalchemy.orm import Session

    from meao.db.models import AppInstance, AppLcmOpOcc

    host = CONFIGURED_HOST["id"]
    on_host = {"mec_host_id": host, "queue": f"mecpm.{host}"}
    params = {"selectedMECHostInfo": [{"hostId": {"id": host}}]}
    placement = {"chosen": host, "hosts": [{"hostId": host, "fits": True, "score": 0.5, "constraints": [
        {"name": "capacity", "passed": True, "detail": "4 vCPU, 8192 MB free"}]}]}
    problem = {"type": "about:blank", "title": "VIM unavailable", "status": 503,
               "detail": f"the cloud {CONFIGURED_HOST['cloud']} does not answer"}
    engine = create_engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            ops = {
                "failed": AppLcmOpOcc(
                    app_instance_id=failed_id, lcm_operation="INSTANTIATE", operation_state="FAILED_TEMP",
                    operation_params=params, placement=placement, error=problem, current_step="image",
                    steps_done=["grant"], **on_host),
                "done": AppLcmOpOcc(
                    app_instance_id=running_id, lcm_operation="INSTANTIATE", operation_state="COMPLETED",
                    operation_params=params, placement=placement,
                    steps_done=["grant", "image", "flavor", "ports", "server", "wait", "rules"], **on_host),
                "operate": AppLcmOpOcc(
                    app_instance_id=running_id, lcm_operation="OPERATE", operation_state="PROCESSING",
                    operation_params={"changeStateTo": "STARTED"}, **on_host),
            }
            session.add_all(ops.values())
            session.flush()
            session.execute(update(AppInstance).where(AppInstance.id == failed_id)
                            .values(current_op_id=ops["failed"].id))
            session.execute(update(AppInstance).where(AppInstance.id == running_id).values(
                instantiation_state="INSTANTIATED", operational_state="STARTED", mec_host_id=host,
                resources={"cloud": CONFIGURED_HOST["cloud"], "server_id": "00000000-0000-4000-8000-00000000f022"}))
            return {name: op.id for name, op in ops.items()}
    finally:
        engine.dispose()


def _complete(db_url: str, op_id: str) -> None:
    from sqlalchemy import create_engine, update
    from sqlalchemy.orm import Session

    from meao.db.models import AppLcmOpOcc

    engine = create_engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            session.execute(update(AppLcmOpOcc).where(AppLcmOpOcc.id == op_id)
                            .values(operation_state="COMPLETED"))
    finally:
        engine.dispose()


def seed(target: FuzzTarget, tmp: Path, subscriber: SubscriberServer) -> None:
    """Put realistic state behind every API so the fuzzer gets past 404s: packages (one DISABLED, one whose
    fetch failed, so it takes content uploads), MEC hosts, instances (idle, with a FAILED_TEMP instantiate,
    INSTANTIATED), subscriptions, a grant."""
    from descriptors.examples.build import build_package

    ids: dict[str, list[str]] = {k: [] for k in ("appPkgId", "appDId", "appInstanceId", "appLcmOpOccId",
                                                 "subscriptionId", "hostId", "grantId")}
    db_url = target.stack.env["MEAO_DATABASE_URL"]
    with httpx.Client(base_url=target.stack.base, headers=target.headers, timeout=30) as c:
        pkgs = [_onboard(c, target.stack, build_package(name, tmp)) for name in ("mec-vm-app", "mec-minimal")]
        ids["appPkgId"] += [p["id"] for p in pkgs]
        ids["appDId"] += [p["appDId"] for p in pkgs]
        resp = c.patch(f"/app_pkgm/v1/app_packages/{pkgs[1]['id']}", json={"operationalState": "DISABLED"})
        assert resp.status_code == 200, resp.text
        resp = c.post("/app_pkgm/v1/app_packages", json={  # the subscriber answers 404 to this GET
            "appPkgName": "unfetchable", "appPkgVersion": "1.0",
            "appPkgPath": f"{subscriber.url}/missing.zip",
            "checksum": {"algorithm": "SHA-256", "hash": "0" * 64}})
        assert resp.status_code == 201, resp.text
        created = resp.json()["id"]
        wait_for(lambda: "onboardingFailureDetails" in c.get(f"/app_pkgm/v1/app_packages/{created}").json(),
                 60, 0.1, "the fetch of a missing package to fail")
        ids["appPkgId"].append(created)

        resp = c.post("/ops/v1/mec_hosts", json=POSTED_HOST)
        assert resp.status_code == 201, resp.text
        ids["hostId"] += [CONFIGURED_HOST["id"], POSTED_HOST["id"]]

        for name in ("idle", "failed-instantiate", "running"):
            resp = c.post("/app_lcm/v1/app_instances",
                          json={"appDId": pkgs[0]["appDId"], "appInstanceName": name})
            assert resp.status_code == 201, resp.text
            ids["appInstanceId"].append(resp.json()["id"])
        _, failed_id, running_id = ids["appInstanceId"]
        resp = c.post(f"/app_lcm/v1/app_instances/{failed_id}/instantiate",
                      json={"selectedMECHostInfo": [{"hostId": {"id": CONFIGURED_HOST["id"]}}]})
        assert resp.status_code == 422, resp.text  # no cloud, so no capacity: no host fits
        ops = _write_occurrences(db_url, failed_id, running_id)
        ids["appLcmOpOccId"] += ops.values()

        op_href = f"{target.stack.base}/app_lcm/v1/app_lcm_op_occs/{ops['operate']}"
        resp = c.post("/granting/v1/grants", json={
            "appInstanceId": running_id, "appLcmOpOccId": ops["operate"], "appDId": pkgs[0]["appDId"],
            "operation": "OPERATE", "_links": {
                "appLcmOpOcc": {"href": op_href},
                "appInstance": {"href": f"{target.stack.base}/app_lcm/v1/app_instances/{running_id}"}}})
        assert resp.status_code == 201, resp.text
        ids["grantId"].append(resp.json()["id"])
        _complete(db_url, ops["operate"])

        for api, kind in (("app_pkgm", "AppPackageChangeSubscription"),
                          ("app_lcm", "AppLcmOpOccStateChangeSubscription")):
            resp = c.post(f"/{api}/v1/subscriptions", json={"callbackUri": f"{subscriber.url}/{api}",
                                                           "subscriptionType": kind})
            assert resp.status_code == 201, resp.text
            ids["subscriptionId"].append(resp.json()["id"])
    target.seeded.update(ids)
    seed_mep(target, subscriber)


MP1_APP = "fuzz-mp1-app"  # an app instance registered at the MEP of CONFIGURED_HOST, which `meao serve` runs
MP1_SERVICE = {"serName": "fuzz-svc", "version": "1", "state": "ACTIVE", "serializer": "JSON",
               "transportInfo": {"id": "rest", "name": "REST", "type": "REST_HTTP", "protocol": "HTTP",
                                 "version": "1.1", "endpoint": {"uris": ["http://10.9.0.1/fuzz"]}, "security": {}}}


def seed_mep(target: FuzzTarget, subscriber: SubscriberServer) -> None:
    """An app at the MEP, as the MEPM-V registers it over Mm5 (with a DNS and a traffic rule, producing and
    consuming a service), with its Mp1 token, a registered service and both kinds of Mp1 subscription."""
    host = CONFIGURED_HOST["id"]
    ids: dict[str, list[str]] = {"appInstanceId": [MP1_APP], "serviceId": [], "subscriptionId": [],
                                 "dnsRuleId": ["fuzz-dns"], "trafficRuleId": ["fuzz-traffic"]}
    with httpx.Client(base_url=target.stack.base, headers=target.headers, timeout=30) as c:
        creds = c.put(f"/mm5/v1/app_instances/{MP1_APP}/credentials", json={"mecHostId": host})
        assert creds.status_code == 200, creds.text
        resp = c.put(f"/mm5/v1/app_instances/{MP1_APP}", json={
            "mecHostId": host, "appDId": "fuzz-appd", "appName": "fuzz",
            "appServiceProduced": [{"serName": "fuzz-svc", "version": "1"}],
            "appServiceOptional": [{"serName": "fuzz-svc"}],
            "appDNSRule": [{"dnsRuleId": "fuzz-dns", "domainName": "fuzz.edge.example", "ipAddressType": "IP_V4",
                            "ipAddress": "10.9.0.1", "ttl": 30}],
            "appTrafficRule": [{"trafficRuleId": "fuzz-traffic", "filterType": "FLOW", "priority": 5,
                                "action": "PASSTHROUGH", "trafficFilter": [{"protocol": ["TCP"], "dstPort": ["80"]}]}]})
        assert resp.status_code == 200, resp.text
        token = c.post("/mep/oauth2/token", data={"grant_type": "client_credentials"}, headers={},
                       auth=(creds.json()["clientId"], creds.json()["clientSecret"]))
        assert token.status_code == 200, token.text
        target.mp1_headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        mp1 = {"headers": target.mp1_headers}
        resp = c.post(f"/mec_service_mgmt/v1/applications/{MP1_APP}/services", json=MP1_SERVICE, **mp1)
        assert resp.status_code == 201, resp.text
        ids["serviceId"].append(resp.json()["serInstanceId"])
        for api, body in (("mec_app_support", {"subscriptionType": "AppTerminationNotificationSubscription",
                                               "appInstanceId": MP1_APP}),
                          ("mec_service_mgmt", {"subscriptionType": "SerAvailabilityNotificationSubscription"})):
            resp = c.post(f"/{api}/v1/applications/{MP1_APP}/subscriptions",
                          json={**body, "callbackReference": f"{subscriber.url}/mp1"}, **mp1)
            assert resp.status_code == 201, resp.text
            ids["subscriptionId"].append(resp.headers["Location"].rsplit("/", 1)[1])
    for name, values in ids.items():
        target.seeded.setdefault(name, []).extend(values)


@pytest.fixture(scope="session")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory,
                subscriber: SubscriberServer) -> Iterator[FuzzTarget]:
    """meao on PostgreSQL (MEAO_FUZZ_DB=sqlite for SQLite) + Redis, seeded, with no cloud reachable."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp("fuzz")
    backend = os.environ.get("MEAO_FUZZ_DB", "postgresql")
    with fresh_database(backend, base) as db_url:
        hosts_file = base / "hosts.yaml"
        hosts_file.write_text(yaml.safe_dump({"mec_hosts": [CONFIGURED_HOST]}))
        clouds = base / "clouds.yaml"
        clouds.write_text("clouds: {}\n")
        stack = launch_stack(base, db_url, FUZZ_REDIS_DB, {
            "MEAO_AUTH": os.environ.get("MEAO_FUZZ_AUTH") or "local",
            "MEAO_MEC_HOSTS_FILE": str(hosts_file), "OS_CLIENT_CONFIG_FILE": str(clouds),
            "MEAO_OP_STALE_S": "10", "MEAO_REAP_INTERVAL_S": "1", "MEAO_HEARTBEAT_S": "1",
            "MEAO_LOG_LEVEL": "WARNING"})
        try:
            target = FuzzTarget(stack=stack, headers=auth_headers(stack))
            seed(target, base, subscriber)
            yield target
        finally:
            stack.stop()
