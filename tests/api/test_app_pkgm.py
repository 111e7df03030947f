"""Mm1 application package management (MEC 010-2 clause 7.3) through HTTP against a live meao.

Every test runs on SQLite and on PostgreSQL, with a real Celery worker on real Redis.
"""

from __future__ import annotations

import io
import json
import socket
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import create_from_file, onboard, outbox_payloads, remove, sha256, wait_outcome
from tests.catalogue import hostile
from tests.conftest import Stack, SubscriberServer, wait_for

PROBLEM = "application/problem+json"


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from descriptors.examples.build import build_package

    out = tmp_path_factory.mktemp("examples")
    return {name: build_package(name, out) for name in
            ("mec-vm-app", "mec-minimal", "mec-json-appd", "vnf-sol001-plain")}


def _problem(resp: httpx.Response, status: int, *words: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["detail"]
    for word in words:
        assert word in body["detail"], body
    return body


def test_create_returns_201_location_then_onboards_vm_app(stack: Stack, examples: dict[str, Path]) -> None:
    resp = create_from_file(stack, examples["mec-vm-app"], userDefinedData={"team": "edge"})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == created["_links"]["self"]["href"]
    assert created["onboardingState"] == "CREATED"  # clause 7.3.1.3.1: the new resource, before onboarding
    info = wait_outcome(stack, created["id"])
    try:
        assert info["onboardingState"] == "ONBOARDED", info.get("onboardingFailureDetails")
        assert info["operationalState"] == "ENABLED" and info["usageState"] == "NOT_IN_USE"
        assert info["userDefinedData"] == {"team": "edge"}
        assert info["mecInfo"] and info["appDId"] and info["appName"]
        assert info["softwareImages"], "GET of one package returns the whole AppPkgInfo"
        with stack.client() as c:
            listed = c.get("/app_packages").json()
            full = c.get("/app_packages", params={"all_fields": ""}).json()
        plain = next(p for p in listed if p["id"] == created["id"])
        assert "softwareImages" not in plain and "checksum" not in plain, "excluded by default (MEC 009 6.18)"
        mine = next(p for p in full if p["id"] == created["id"])
        image = mine["softwareImages"][0]
        assert image["diskFormat"] == "QCOW2" and image["size"] > 0 and image["imagePath"]
        assert mine["checksum"]["hash"] == sha256(examples["mec-vm-app"])
        assert all("artifactPath" in a for a in mine.get("additionalArtifacts", []))
    finally:
        remove(stack, created["id"])


@pytest.mark.parametrize("example", ["mec-minimal", "mec-json-appd"])
def test_other_examples_onboard(stack: Stack, examples: dict[str, Path], example: str) -> None:
    info = onboard(stack, examples[example])
    remove(stack, info["id"])


def test_plain_vnf_package_is_refused_naming_mecapp(stack: Stack, examples: dict[str, Path]) -> None:
    resp = create_from_file(stack, examples["vnf-sol001-plain"])
    info = wait_outcome(stack, resp.json()["id"])
    assert info["onboardingState"] == "CREATED"
    assert "tosca.nodes.mec.MecApp" in info["onboardingFailureDetails"]["detail"]
    remove(stack, info["id"])


def test_wrong_checksum_fails_onboarding_with_reason(stack: Stack, examples: dict[str, Path]) -> None:
    resp = create_from_file(stack, examples["mec-minimal"], checksum="0" * 64)
    info = wait_outcome(stack, resp.json()["id"])
    assert info["onboardingState"] == "CREATED"
    assert "not the checksum given at creation" in info["onboardingFailureDetails"]["detail"]
    remove(stack, info["id"])


def test_second_package_with_same_appdid_fails_with_reason(stack: Stack, examples: dict[str, Path]) -> None:
    first = onboard(stack, examples["mec-minimal"])
    try:
        resp = create_from_file(stack, examples["mec-minimal"], name="again")
        info = wait_outcome(stack, resp.json()["id"])
        detail = info["onboardingFailureDetails"]["detail"]
        assert f"appDId {first['appDId']} is already onboarded" in detail
        remove(stack, info["id"])
    finally:
        remove(stack, first["id"])


@pytest.mark.parametrize("case", sorted(hostile.CASES))
def test_hostile_package_is_refused_with_reason(stack: Stack, tmp_path: Path, case: str) -> None:
    build, reason = hostile.CASES[case]
    src = tmp_path / f"{case}.csar"
    src.write_bytes(build(hostile.csar({"Definitions/app.yaml": hostile.APPD})))
    resp = create_from_file(stack, src)
    assert resp.status_code == 201
    info = wait_outcome(stack, resp.json()["id"])
    problem = info["onboardingFailureDetails"]
    assert info["onboardingState"] == "CREATED" and reason in problem["detail"], problem
    assert problem["status"] == 422
    pkg_dir = stack.data_dir / "packages" / info["id"]
    assert not (pkg_dir / "content").exists() and not (pkg_dir / "package.zip").exists()
    assert not Path("/tmp/meao-evil.txt").exists()
    remove(stack, info["id"])


def test_put_content_after_failed_fetch_onboards_and_put_again_is_409(
        stack: Stack, examples: dict[str, Path], subscriber: SubscriberServer) -> None:
    data = examples["mec-minimal"].read_bytes()
    body = {"appPkgName": "upload", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/nowhere.csar",
            "checksum": {"algorithm": "SHA-256", "hash": sha256(examples["mec-minimal"])}}
    with stack.client() as c:
        pkg = c.post("/app_packages", json=body).json()
        failed = wait_outcome(stack, pkg["id"])
        # the subscriber is on the loopback, which only the tests' outbound allowance opens: no status echoed
        assert "does not tell what it answered" in failed["onboardingFailureDetails"]["detail"]
        put = c.put(f"/app_packages/{pkg['id']}/package_content", content=data,
                    headers={"Content-Type": "application/zip"})
        assert put.status_code == 202 and put.content == b""
        info = wait_outcome(stack, pkg["id"])
        assert info["onboardingState"] == "ONBOARDED", info
        again = c.put(f"/app_packages/{pkg['id']}/package_content", content=data,
                      headers={"Content-Type": "application/zip"})
        _problem(again, 409)
    remove(stack, pkg["id"])


def test_put_content_with_wrong_bytes_is_400_and_package_stays_created(
        stack: Stack, subscriber: SubscriberServer) -> None:
    body = {"appPkgName": "bad-upload", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/none.csar",
            "checksum": {"algorithm": "SHA-256", "hash": "a" * 64}}
    with stack.client() as c:
        pkg = c.post("/app_packages", json=body).json()
        wait_outcome(stack, pkg["id"])
        put = c.put(f"/app_packages/{pkg['id']}/package_content", content=b"PK\x03\x04 junk",
                    headers={"Content-Type": "application/zip"})
        assert "digest" in _problem(put, 400)["detail"]
        assert c.get(f"/app_packages/{pkg['id']}").json()["onboardingState"] == "CREATED"
    remove(stack, pkg["id"])


def test_http_app_pkg_path_is_fetched(stack: Stack, examples: dict[str, Path],
                                      subscriber: SubscriberServer) -> None:
    subscriber.files["/pkgs/minimal.csar"] = str(examples["mec-minimal"])
    body = {"appPkgName": "http", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/pkgs/minimal.csar",
            "checksum": {"algorithm": "SHA-256", "hash": sha256(examples["mec-minimal"])}}
    with stack.client() as c:
        pkg = c.post("/app_packages", json=body).json()
    info = wait_outcome(stack, pkg["id"])
    assert info["onboardingState"] == "ONBOARDED", info
    remove(stack, pkg["id"])


@pytest.mark.parametrize("body,words", [
    ({"appPkgName": "x", "appPkgVersion": "1", "checksum": {"algorithm": "SHA-256", "hash": "a"},
      "appPkgPath": "file:///etc/passwd"}, "outside MEAO_PKG_FILE_ROOT"),
    ({"appPkgName": "x", "appPkgVersion": "1", "checksum": {"algorithm": "MD5", "hash": "a"},
      "appPkgPath": "http://127.0.0.1/x"}, "not supported"),
    ({"appPkgName": "x", "appPkgVersion": "1", "checksum": {"algorithm": "SHA-256", "hash": "a"},
      "appPkgPath": "ftp://example/x"}, "only http, https and file"),
    ({"appPkgName": "x", "checksum": {"algorithm": "SHA-256", "hash": "a"}, "appPkgPath": "http://h/x"},
     "appPkgVersion"),
])
def test_bad_create_requests_are_400_and_create_nothing(stack: Stack, body: dict, words: str) -> None:
    with stack.client() as c:
        before = len(c.get("/app_packages").json())
        assert words in _problem(c.post("/app_packages", json=body), 400)["detail"]
        assert len(c.get("/app_packages").json()) == before


def test_query_filters_and_selectors(stack: Stack, examples: dict[str, Path]) -> None:
    a = onboard(stack, examples["mec-minimal"])
    b = onboard(stack, examples["mec-json-appd"])
    try:
        with stack.client() as c:
            got = c.get("/app_packages", params={"filter": f"(eq,appDId,{a['appDId']})"}).json()
            assert [p["id"] for p in got] == [a["id"]]
            got = c.get("/app_packages", params={"filter": f"(in,appDId,{a['appDId']},{b['appDId']});"
                                                           "(eq,onboardingState,ONBOARDED)"}).json()
            assert {p["id"] for p in got} == {a["id"], b["id"]}
            got = c.get("/app_packages", params={"filter": f"(neq,appDId,{a['appDId']})"}).json()
            assert a["id"] not in {p["id"] for p in got}
            got = c.get("/app_packages", params={"filter": "(eq,softwareImages/diskFormat,QCOW2)",
                                                 "fields": "softwareImages"}).json()
            assert a["id"] in {p["id"] for p in got} and all("softwareImages" in p for p in got)
            assert all("checksum" not in p for p in got)
            got = c.get("/app_packages", params={"exclude_fields": "_links,mecInfo"}).json()
            assert all("_links" not in p and "checksum" in p for p in got)
            got = c.get("/onboarded_app_packages", params={"exclude_default": ""}).json()
            assert all(p["onboardingState"] == "ONBOARDED" and "softwareImages" not in p for p in got)
            for params in ({"filter": "(eq,noSuchAttribute,1)"}, {"filter": "eq,appDId"},
                           {"fields": "nope"}, {"all_fields": "", "fields": "checksum"}):
                _problem(c.get("/app_packages", params=params), 400)
    finally:
        remove(stack, a["id"])
        remove(stack, b["id"])


def test_patch_delete_state_rules(stack: Stack, examples: dict[str, Path]) -> None:
    info = onboard(stack, examples["mec-minimal"])
    url = f"/app_packages/{info['id']}"
    with stack.client() as c:
        _problem(c.patch(url, json={"operationalState": "ENABLED"}), 409)
        _problem(c.delete(url), 409)
        resp = c.patch(url, json={"operationalState": "DISABLED"},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert resp.status_code == 200 and resp.json() == {"operationalState": "DISABLED"}
        _problem(c.patch(url, json={"operationalState": "DISABLED"}), 409)
        _problem(c.patch(url, json={"operationalState": "BROKEN"}), 400)
        assert c.patch(f"/onboarded_app_packages/{info['appDId']}",
                       json={"operationalState": "ENABLED"}).status_code == 200
        assert c.patch(url, json={"operationalState": "DISABLED"}).status_code == 200
        assert c.delete(f"/onboarded_app_packages/{info['appDId']}").status_code == 204
        _problem(c.get(url), 404)
        _problem(c.get(f"/onboarded_app_packages/{info['appDId']}"), 404)


def test_patch_of_package_still_created_is_409(stack: Stack, subscriber: SubscriberServer) -> None:
    body = {"appPkgName": "p", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/missing.csar",
            "checksum": {"algorithm": "SHA-256", "hash": "a" * 64}}
    with stack.client() as c:
        pkg = c.post("/app_packages", json=body).json()
        wait_outcome(stack, pkg["id"])
        _problem(c.patch(f"/app_packages/{pkg['id']}", json={"operationalState": "DISABLED"}), 409)
        _problem(c.get(f"/app_packages/{pkg['id']}/package_content"), 409)
        _problem(c.get(f"/app_packages/{pkg['id']}/appd"), 409)
        assert c.delete(f"/app_packages/{pkg['id']}").status_code == 204


def test_unknown_ids_are_404_problem(stack: Stack) -> None:
    with stack.client() as c:
        for path in ("/app_packages/nope", "/app_packages/nope/appd", "/app_packages/nope/package_content",
                     "/onboarded_app_packages/nope", "/subscriptions/nope"):
            _problem(c.get(path), 404)


def test_appd_by_accept_header(stack: Stack, examples: dict[str, Path]) -> None:
    vm = onboard(stack, examples["mec-vm-app"])
    js = onboard(stack, examples["mec-json-appd"])
    try:
        with stack.client() as c:
            z = c.get(f"/app_packages/{vm['id']}/appd", headers={"Accept": "application/zip"})
            assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
            names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
            assert len(names) >= 2, "the VM app's AppD imports its types file: the zip carries both"
            _problem(c.get(f"/app_packages/{vm['id']}/appd", headers={"Accept": "text/plain"}), 406)
            _problem(c.get(f"/app_packages/{vm['id']}/appd", headers={"Accept": "application/json"}), 406)
            t = c.get(f"/onboarded_app_packages/{js['appDId']}/appd", headers={"Accept": "text/plain"})
            assert t.status_code == 200 and t.headers["content-type"].startswith("text/plain")
            assert js["appDId"] in t.text
    finally:
        remove(stack, vm["id"])
        remove(stack, js["id"])


def test_appd_filter_and_attribute_selectors(stack: Stack, examples: dict[str, Path]) -> None:
    """Table 7.3.6.3.2-1: filter and all_fields shall be supported (fields, exclude_fields should be):
    a filter that holds returns the AppD, one that does not is 404, a malformed one 400; selectors
    reshape the AppD file in its own format; without any the file is returned as it is."""
    js = onboard(stack, examples["mec-json-appd"])
    url = f"/onboarded_app_packages/{js['appDId']}/appd"
    text = {"Accept": "text/plain"}
    try:
        with stack.client() as c:
            whole = c.get(url, headers=text)
            assert whole.status_code == 200
            assert "virtualComputeDescriptor" in json.loads(whole.text)
            held = c.get(url, headers=text, params={"filter": "(eq,appName,mec-json-app)"})
            assert held.status_code == 200 and held.content == whole.content
            assert c.get(url, headers=text, params={"all_fields": ""}).json() == json.loads(whole.text)
            _problem(c.get(url, headers=text, params={"filter": "(eq,appName,another-app)"}), 404, "filter")
            _problem(c.get(url, headers=text, params={"filter": "(eq,appName"}), 400, "(op,attribute,value)")
            _problem(c.get(url, headers=text, params={"all_fields": "", "fields": "appName"}), 400)
            _problem(c.get(url, headers=text, params={"fields": "appName//x"}), 400, "empty part")

            lean = json.loads(c.get(url, headers=text, params={"exclude_default": ""}).text)
            assert lean["appName"] == "mec-json-app"
            assert not {"virtualComputeDescriptor", "swImageDescriptor", "appExtCpd"} & set(lean)
            picked = json.loads(c.get(url, headers=text, params={"fields": "swImageDescriptor"}).text)
            assert "swImageDescriptor" in picked and "virtualComputeDescriptor" not in picked
            dropped = json.loads(c.get(url, headers=text, params={"exclude_fields": "appDescription"}).text)
            assert "appDescription" not in dropped and "virtualComputeDescriptor" in dropped
            zipped = c.get(url, headers={"Accept": "application/zip"}, params={"exclude_default": ""})
            (name,) = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
            assert json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read(name)) == lean
    finally:
        remove(stack, js["id"])


def test_package_content_full_and_ranges(stack: Stack, examples: dict[str, Path]) -> None:
    src = examples["mec-vm-app"]
    data = src.read_bytes()
    info = onboard(stack, src)
    url = f"/app_packages/{info['id']}/package_content"
    try:
        with stack.client() as c:
            full = c.get(url)
            assert full.status_code == 200 and full.content == data
            part = c.get(url, headers={"Range": "bytes=10-99"})
            assert part.status_code == 206 and part.content == data[10:100]
            assert part.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
            tail = c.get(f"/onboarded_app_packages/{info['appDId']}/package_content",
                         headers={"Range": "bytes=-20"})
            assert tail.status_code == 206 and tail.content == data[-20:]
            bad = c.get(url, headers={"Range": f"bytes={len(data) + 5}-"})
            _problem(bad, 416)
            assert bad.headers["Content-Range"] == f"bytes */{len(data)}"
            _problem(c.get(url, headers={"Range": "bytes=5-1"}), 416)
    finally:
        remove(stack, info["id"])


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: nothing listens there


def test_notifications_reach_live_subscriber_despite_dead_one(
        stack: Stack, examples: dict[str, Path], subscriber: SubscriberServer) -> None:
    tag = f"/n-{stack.env['MEAO_DATABASE_URL'][:6]}"
    subs = []
    with stack.client() as c:
        for kind in ("AppPackageOnBoardingSubscription", "AppPackageChangeSubscription",
                     "AppPackageDeletionSubscription"):
            resp = c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}{tag}/{kind}",
                                                  "subscriptionType": kind})
            assert resp.status_code == 201 and resp.headers["Location"].endswith(resp.json()["id"])
            subs.append(resp.json())
        dead = c.post("/subscriptions", json={"callbackUri": f"http://127.0.0.1:{_dead_port()}/dead",
                                              "subscriptionType": "AppPackageOnBoardingSubscription"}).json()
        links = c.get("/subscriptions").json()["_links"]["subscriptions"]
        assert {s["id"] for s in subs} <= {link["href"].rsplit("/", 1)[-1] for link in links}
        assert c.get(f"/subscriptions/{subs[0]['id']}").json()["callbackUri"].endswith(
            "AppPackageOnBoardingSubscription")
    try:
        info = onboard(stack, examples["mec-minimal"])
        remove(stack, info["id"])

        def got(kind: str, ntype: str) -> list[dict]:
            return [n for n in subscriber.notifications(f"{tag}/{kind}")
                    if n["appPkgId"] == info["id"] and n["notificationType"] == ntype]

        on = wait_for(lambda: got("AppPackageOnBoardingSubscription", "AppPackageOnBoarded"), 20,
                      what="AppPackageOnBoarded")[0]
        assert on["appDId"] == info["appDId"] and on["operationalState"] == "ENABLED"
        assert set(on["timeStamp"]) == {"seconds", "nanoSeconds"}
        assert on["_links"]["subscription"]["href"].endswith(subs[0]["id"])
        dis = wait_for(lambda: got("AppPackageChangeSubscription", "AppPackageDisabled"), 20,
                       what="AppPackageDisabled")[0]
        assert dis["operationalState"] == "DISABLED"
        wait_for(lambda: got("AppPackageDeletionSubscription", "AppPackageDeleted"), 20, what="Deleted")
    finally:
        with stack.client() as c:
            for s in [*subs, dead]:
                assert c.delete(f"/subscriptions/{s['id']}").status_code == 204
            _problem(c.get(f"/subscriptions/{dead['id']}"), 404)


def test_notification_is_retried_until_subscriber_accepts(
        stack: Stack, examples: dict[str, Path], subscriber: SubscriberServer) -> None:
    path = f"/retry-{stack.env['MEAO_DATABASE_URL'][:6]}"
    with stack.client() as c:
        sub = c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}{path}",
                                             "subscriptionType": "AppPackageOnBoardingSubscription"}).json()
    subscriber.fail_first = 2
    try:
        info = onboard(stack, examples["mec-minimal"])
        note = wait_for(lambda: subscriber.notifications(path), 30, what="retried notification")[0]
        assert note["appPkgId"] == info["id"]
        attempts = [b for p, b in subscriber.attempts if p == path and b["appPkgId"] == info["id"]]
        assert len(attempts) == 3 and len({a["id"] for a in attempts}) == 1
        remove(stack, info["id"])
    finally:
        subscriber.fail_first = 0
        with stack.client() as c:
            c.delete(f"/subscriptions/{sub['id']}")


def test_subscription_filter_and_type_rules(stack: Stack, examples: dict[str, Path],
                                            subscriber: SubscriberServer) -> None:
    path = f"/filtered-{stack.env['MEAO_DATABASE_URL'][:6]}"
    with stack.client() as c:
        bad = c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}{path}",
                                             "subscriptionType": "AppPackageOnBoardingSubscription",
                                             "appPkgFilter": [{"operationalState": "ENABLED"}]})
        assert "AppPackageChangeSubscription" in _problem(bad, 400)["detail"]
        _problem(c.post("/subscriptions", json={"callbackUri": "not-a-uri",
                                                "subscriptionType": "AppPackageOnBoardingSubscription"}), 400)
        _problem(c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}/x",
                                                "subscriptionType": "Nope"}), 400)
        sub = c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}{path}",
                                             "subscriptionType": "AppPackageOnBoardingSubscription",
                                             "appPkgFilter": [{"appDId": "no-such-appd"}]}).json()
    try:
        info = onboard(stack, examples["mec-minimal"])
        remove(stack, info["id"])
        # nothing was queued for it: notifications are written to the outbox with the change they report
        assert outbox_payloads(stack, sub["id"]) == []
        assert subscriber.notifications(path) == []
    finally:
        with stack.client() as c:
            c.delete(f"/subscriptions/{sub['id']}")


def test_post_onboarded_app_packages_creates_a_package_like_app_packages(
        stack: Stack, examples: dict[str, Path]) -> None:
    """Clause 7.3.1.2 gives the application packages resource two URIs, /app_packages and
    /onboarded_app_packages, and clause 7.3.1.3.1 has POST on it create a package (201 + Location)."""
    src = examples["mec-minimal"]
    target = stack.pkg_root / f"onboarded-post-{src.stat().st_mtime_ns}{src.suffix}"
    target.write_bytes(src.read_bytes())
    body = {"appPkgName": "via-onboarded", "appPkgVersion": "1.0", "appPkgPath": target.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": sha256(target)}}
    with stack.client() as c:
        resp = c.post("/onboarded_app_packages", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == created["_links"]["self"]["href"]
    assert resp.headers["Location"].endswith(f"/app_packages/{created['id']}")  # no appDId before onboarding
    info = wait_outcome(stack, created["id"])
    try:
        assert info["onboardingState"] == "ONBOARDED", info.get("onboardingFailureDetails")
        with stack.client() as c:
            assert c.get(f"/onboarded_app_packages/{info['appDId']}").json()["id"] == created["id"]
            _problem(c.post("/onboarded_app_packages", json={"appPkgName": "x"}), 400, "appPkgVersion")
    finally:
        remove(stack, created["id"])


# (method, path, status, clause) of every method clauses 7.3.1 to 7.3.7 do not support on Mm1. A clause that
# says only "Not supported." gets HTTP's own answer, 405 with Allow; clause 7.3.6.3.3 says 403 for PUT …/appd.
_PKG_ROOTS = ("/app_packages", "/onboarded_app_packages")
_ONE_PKG = ("/app_packages/some-id", "/onboarded_app_packages/some-appd-id")
NOT_SUPPORTED = [
    *[(m, root, 405, c) for root in _PKG_ROOTS
      for m, c in (("PUT", "7.3.1.3.3"), ("DELETE", "7.3.1.3.4"), ("PATCH", "7.3.1.3.5"))],
    *[(m, one, 405, c) for one in _ONE_PKG for m, c in (("POST", "7.3.2.3.1"), ("PUT", "7.3.2.3.3"))],
    *[(m, "/subscriptions", 405, c) for m, c in (("PUT", "7.3.3.3.3"), ("DELETE", "7.3.3.3.4"),
                                                 ("PATCH", "7.3.3.3.5"))],
    *[(m, "/subscriptions/some-id", 405, c) for m, c in (("POST", "7.3.4.3.1"), ("PUT", "7.3.4.3.3"),
                                                         ("PATCH", "7.3.4.3.5"))],
    *[(m, f"{one}/appd", s, c) for one in _ONE_PKG
      for m, s, c in (("POST", 405, "7.3.6.3.1"), ("PUT", 403, "7.3.6.3.3"), ("DELETE", 405, "7.3.6.3.4"),
                      ("PATCH", 405, "7.3.6.3.5"))],
    *[(m, f"{one}/package_content", 405, c) for one in _ONE_PKG
      for m, c in (("POST", "7.3.7.3.1"), ("DELETE", "7.3.7.3.4"), ("PATCH", "7.3.7.3.5"))],
]


@pytest.mark.parametrize("method,path,status,clause", NOT_SUPPORTED,
                         ids=[f"{m} {p} {c}" for m, p, _, c in NOT_SUPPORTED])
def test_unsupported_method_answers_what_its_clause_says(stack: Stack, method: str, path: str, status: int,
                                                         clause: str) -> None:
    """MEC 010-2 clauses 7.3.1.3 to 7.3.7.3: every method a resource does not support answers a
    ProblemDetails with the status its clause names (403 for PUT …/appd, clause 7.3.6.3.3), else 405
    with an Allow header that leaves the method out."""
    with stack.client() as c:
        resp = c.request(method, path, json={"operationalState": "DISABLED"})
    _problem(resp, status)
    if status == 405:
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert allowed and method not in allowed, resp.headers["Allow"]
    else:
        assert clause in resp.json()["detail"]


def test_package_content_honours_accept(stack: Stack, examples: dict[str, Path]) -> None:
    """Clause 7.3.7.3.2 (table 7.3.7.3.2-2): the content is application/zip, and 406 is the answer when
    the client accepts none of the formats the server can provide; Accept is parsed (RFC 9110 12.5.1)."""
    info = onboard(stack, examples["mec-minimal"])
    try:
        with stack.client() as c:
            for url in (f"/app_packages/{info['id']}/package_content",
                        f"/onboarded_app_packages/{info['appDId']}/package_content"):
                for accept in ("application/json", "application/zip;q=0, */*", "*/*;q=0", "text/plain"):
                    _problem(c.get(url, headers={"Accept": accept}), 406, "application/zip")
                for accept in ("application/zip", "application/*", "*/*", "application/json, application/zip;q=0.1"):
                    got = c.get(url, headers={"Accept": accept, "Range": "bytes=0-1"})
                    assert got.status_code == 206 and got.content == b"PK", accept
    finally:
        remove(stack, info["id"])


def test_appd_accept_parameters_and_q_values_are_parsed(stack: Stack, examples: dict[str, Path]) -> None:
    """Clause 7.3.6.3.2: text/plain "with appropriate indication of character set" returns a single-file
    AppD; media-type parameters and q-values are parsed (RFC 9110 12.5.1), q=0 meaning not acceptable."""
    js = onboard(stack, examples["mec-json-appd"])
    vm = onboard(stack, examples["mec-vm-app"])
    url, multi = f"/onboarded_app_packages/{js['appDId']}/appd", f"/app_packages/{vm['id']}/appd"
    try:
        with stack.client() as c:
            def kind(u: str, accept: str) -> str:
                resp = c.get(u, headers={"Accept": accept})
                assert resp.status_code == 200, (accept, resp.text)
                return resp.headers["content-type"].split(";")[0]

            assert kind(url, "text/plain; charset=utf-8") == "text/plain"
            assert kind(url, "text/plain;charset=UTF-8;q=0.8") == "text/plain"
            assert kind(url, "text/plain, application/zip") == "text/plain"
            assert kind(url, "text/plain;q=0.5, application/zip") == "application/zip"
            assert kind(url, "text/plain;q=0, */*") == "application/zip"
            assert kind(multi, "text/plain;q=0.9, application/zip;q=0.1") == "application/zip"
            for accept in ("text/plain; charset=iso-8859-1", "text/plain;q=0", "*/*;q=0",
                           "application/zip;q=0, text/plain;q=0"):
                _problem(c.get(url, headers={"Accept": accept}), 406)
            _problem(c.get(multi, headers={"Accept": "text/plain; charset=utf-8"}), 406, "application/zip")
    finally:
        remove(stack, js["id"])
        remove(stack, vm["id"])


def test_deleted_before_onboarding_notification_omits_appdid(stack: Stack, subscriber: SubscriberServer) -> None:
    """Table 6.2.3.6.2-1: appDId has cardinality 1 and identifies the AppD; a package deleted before it
    was onboarded has none, so its AppPackageDeleted notification leaves appDId out instead of sending ""."""
    path = f"/never-onboarded-{stack.env['MEAO_DATABASE_URL'][:6]}"
    body = {"appPkgName": "never", "appPkgVersion": "1", "appPkgPath": f"{subscriber.url}/absent.csar",
            "checksum": {"algorithm": "SHA-256", "hash": "a" * 64}}
    with stack.client() as c:
        sub = c.post("/subscriptions", json={"callbackUri": f"{subscriber.url}{path}",
                                             "subscriptionType": "AppPackageDeletionSubscription"}).json()
        pkg = c.post("/app_packages", json=body).json()
    try:
        assert "appDId" not in wait_outcome(stack, pkg["id"])
        with stack.client() as c:
            assert c.delete(f"/app_packages/{pkg['id']}").status_code == 204
        note = wait_for(lambda: [n for n in subscriber.notifications(path) if n["appPkgId"] == pkg["id"]], 20,
                        what="AppPackageDeleted")[0]
        assert note["notificationType"] == "AppPackageDeleted"
        assert "appDId" not in note, note
    finally:
        with stack.client() as c:
            c.delete(f"/subscriptions/{sub['id']}")


def test_the_onboarded_package_uris_answer_404_409_and_416(stack: Stack, examples: dict[str, Path]) -> None:
    """Clauses 7.3.2 and 7.3.7 by appDId: a package already onboarded takes no content again (409, table
    7.3.7.3.3-2), nor a DELETE while ENABLED (409, table 7.3.2.3.4-2); an unsatisfiable range is 416
    (table 7.3.7.3.2-2); an unknown appDId is 404 everywhere."""
    info = onboard(stack, examples["mec-minimal"])
    base = f"/onboarded_app_packages/{info['appDId']}"
    data = examples["mec-minimal"].read_bytes()
    try:
        with stack.client() as c:
            _problem(c.put(f"{base}/package_content", content=data, headers={"Content-Type": "application/zip"}),
                     409, "ONBOARDED")
            _problem(c.delete(base), 409, "ENABLED")
            bad = c.get(f"{base}/package_content", headers={"Range": f"bytes={len(data) + 1}-"})
            _problem(bad, 416)
            assert bad.headers["Content-Range"] == f"bytes */{len(data)}"
            for path in ("", "/appd", "/package_content"):
                _problem(c.get(f"/onboarded_app_packages/no-such-appd{path}"), 404, "no-such-appd")
    finally:
        remove(stack, info["id"])
