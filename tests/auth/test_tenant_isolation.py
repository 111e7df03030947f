"""MEAO_TENANT_ISOLATION=true: a client of a tenant sees and touches only its tenant's resources."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tests.api.helpers import sha256
from tests.auth.conftest import AuthStack
from tests.conftest import SubscriberServer, wait_for

SCOPES = ("app_pkgm:read", "app_pkgm:write", "app_lcm:read", "app_lcm:write")


def _onboard(http: httpx.Client, auth_stack: AuthStack, package: Path) -> dict[str, Any]:
    target = auth_stack.stack.pkg_root / f"tenant-{uuid.uuid4().hex[:8]}.zip"
    shutil.copyfile(package, target)
    created = http.post("/app_pkgm/v1/app_packages", json={
        "appPkgName": "tenant", "appPkgVersion": "1.0", "appPkgPath": target.as_uri(),
        "checksum": {"algorithm": "SHA-256", "hash": sha256(target)}})
    assert created.status_code == 201, created.text

    def ended() -> dict[str, Any] | None:
        info = http.get(f"/app_pkgm/v1/app_packages/{created.json()['id']}").json()
        return info if info["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in info else None

    return wait_for(ended, 60, 0.2, "onboarding")


def _seed_op(auth_stack: AuthStack, instance_id: str) -> str:
    """An op occurrence of the instance, written as the API would (no cloud is needed to read it)."""
    from meao.db.models import AppLcmOpOcc

    op_id = str(uuid.uuid4())
    engine = create_engine(auth_stack.env["MEAO_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(AppLcmOpOcc.__table__.insert().values(
            id=op_id, app_instance_id=instance_id, lcm_operation="INSTANTIATE", operation_state="FAILED_TEMP",
            state_entered_time=_now(), start_time=_now(), attempt=1, is_cancel_pending=False,
            error={"type": "about:blank", "title": "seeded", "status": 500, "detail": "seeded"}))
    engine.dispose()
    return op_id


def _now() -> Any:
    from meao.db.models import utcnow

    return utcnow()


@pytest.fixture()
def tenants(auth_stack: AuthStack) -> Iterator[dict[str, httpx.Client]]:
    suffix = uuid.uuid4().hex[:6]
    clients = {name: auth_stack.client_with(*SCOPES, tenant=f"{name}-{suffix}", name=f"{name}-{suffix}")
               for name in ("a", "b")}
    client_id, secret = auth_stack.admin()
    clients["admin"] = httpx.Client(base_url=auth_stack.base, timeout=30,
                                    headers={"Authorization": f"Bearer {auth_stack.token(client_id, secret)}"})
    yield clients
    for http in clients.values():
        http.close()


def test_each_tenant_sees_only_its_own_and_another_tenants_ids_are_404(
        auth_stack: AuthStack, tenants: dict[str, httpx.Client], subscriber: SubscriberServer,
        tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    a, b, admin = tenants["a"], tenants["b"], tenants["admin"]
    package = build_package("mec-minimal", tmp_path)
    tag = uuid.uuid4().hex[:6]
    subs = {name: http.post("/app_lcm/v1/subscriptions", json={
        "callbackUri": f"{subscriber.url}/tenant-{name}-{tag}",
        "subscriptionType": "AppIdentifierCreationSubscription"}).headers["Location"]
        for name, http in (("a", a), ("b", b))}
    pkg_a, pkg_b = _onboard(a, auth_stack, package), _onboard(b, auth_stack, package)
    created: list[tuple[httpx.Client, str]] = []
    try:
        # the same appDId in two tenants: both onboard; a second copy in one tenant does not
        assert pkg_a["onboardingState"] == pkg_b["onboardingState"] == "ONBOARDED"
        assert pkg_a["appDId"] == pkg_b["appDId"] and pkg_a["id"] != pkg_b["id"]
        again = _onboard(a, auth_stack, package)
        assert "onboardingFailureDetails" in again and "already onboarded" in again["onboardingFailureDetails"]["detail"]
        assert a.delete(f"/app_pkgm/v1/app_packages/{again['id']}").status_code == 204
        appd = pkg_a["appDId"]

        # packages
        assert [p["id"] for p in a.get("/app_pkgm/v1/app_packages").json()] == [pkg_a["id"]]
        assert a.get(f"/app_pkgm/v1/onboarded_app_packages/{appd}").json()["id"] == pkg_a["id"]
        assert b.get(f"/app_pkgm/v1/onboarded_app_packages/{appd}").json()["id"] == pkg_b["id"]
        for method, path, body in (("GET", "", None), ("PATCH", "", {"operationalState": "DISABLED"}),
                                   ("DELETE", "", None), ("GET", "/appd", None), ("GET", "/package_content", None)):
            resp = a.request(method, f"/app_pkgm/v1/app_packages/{pkg_b['id']}{path}", json=body)
            assert resp.status_code == 404, (method, path, resp.text)
        admin_ids = {p["id"] for p in admin.get("/app_pkgm/v1/app_packages").json()}
        assert {pkg_a["id"], pkg_b["id"]} <= admin_ids, "an operator's token without a tenant sees every tenant"

        # instances: made from the caller's own package
        inst_a = a.post("/app_lcm/v1/app_instances", json={"appDId": appd}).json()
        created.append((a, inst_a["id"]))
        inst_b = b.post("/app_lcm/v1/app_instances", json={"appDId": appd}).json()
        created.append((b, inst_b["id"]))
        assert inst_a["appPkgId"] == pkg_a["id"] and inst_b["appPkgId"] == pkg_b["id"]
        assert [i["id"] for i in a.get("/app_lcm/v1/app_instances").json()] == [inst_a["id"]]
        for method, path, body in (("GET", "", None), ("DELETE", "", None),
                                   ("POST", "/terminate", {"terminationType": "FORCEFUL"}),
                                   ("POST", "/operate", {"changeStateTo": "STOPPED"}),
                                   ("POST", "/instantiate", {"selectedMECHostInfo": [{"hostId": {"id": "x"}}]})):
            resp = b.request(method, f"/app_lcm/v1/app_instances/{inst_a['id']}{path}", json=body)
            assert resp.status_code == 404, (method, path, resp.text)

        # op occurrences follow their instance
        op_a = _seed_op(auth_stack, inst_a["id"])
        assert a.get(f"/app_lcm/v1/app_lcm_op_occs/{op_a}").status_code == 200
        assert op_a in {o["id"] for o in a.get("/app_lcm/v1/app_lcm_op_occs").json()}
        assert op_a not in {o["id"] for o in b.get("/app_lcm/v1/app_lcm_op_occs").json()}
        for path, body in (("", None), ("/retry", None), ("/fail", None), ("/cancel", {"cancelMode": "GRACEFUL"})):
            resp = b.request("GET" if not path else "POST", f"/app_lcm/v1/app_lcm_op_occs/{op_a}{path}", json=body)
            assert resp.status_code == 404, (path, resp.text)

        # subscriptions, and the notifications they get
        assert b.get(subs["a"]).status_code == 404 and b.delete(subs["a"]).status_code == 404
        listed = a.get("/app_lcm/v1/subscriptions").json()["_links"].get("subscriptions", [])
        assert [link["href"] for link in listed] == [subs["a"]]
        heard = wait_for(lambda: subscriber.notifications(f"/tenant-a-{tag}"), 30, 0.2, "tenant a's notification")
        wait_for(lambda: subscriber.notifications(f"/tenant-b-{tag}"), 30, 0.2, "tenant b's notification")
        assert [n["appInstanceId"] for n in heard] == [inst_a["id"]]
        assert [n["appInstanceId"] for n in subscriber.notifications(f"/tenant-b-{tag}")] == [inst_b["id"]]
    finally:
        for http, inst in created:
            http.delete(f"/app_lcm/v1/app_instances/{inst}")
        for http, pkg in ((a, pkg_a), (b, pkg_b)):
            http.patch(f"/app_pkgm/v1/app_packages/{pkg['id']}", json={"operationalState": "DISABLED"})
            assert http.delete(f"/app_pkgm/v1/app_packages/{pkg['id']}").status_code == 204
        for name, location in subs.items():
            tenants[name].delete(location)
