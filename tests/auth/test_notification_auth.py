"""Notifications carry the credentials a subscription gave: HTTP Basic, or a client-credentials token."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.api.helpers import sha256
from tests.auth.conftest import AuthStack
from tests.conftest import wait_for

BASIC_USER, BASIC_PASSWORD = "meao-notifier", "pa:ss wörd-" + uuid.uuid4().hex
CLIENT_ID, CLIENT_SECRET = "meao-at-subscriber", "cs-" + uuid.uuid4().hex


class Subscriber(ThreadingHTTPServer):
    """A subscriber that checks credentials: /basic wants Basic, /oauth2 a token of its own /token endpoint."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[tuple[str, str | None]] = []
        self.tokens: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def accepted_on(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.accepted if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: Subscriber

    def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization")
        srv = self.server
        if self.path == "/token":
            given = base64.b64decode(auth.split(" ", 1)[1]).decode() if auth and auth.startswith("Basic ") else ""
            form = parse_qs(raw.decode())
            if given != f"{CLIENT_ID}:{CLIENT_SECRET}" or form.get("grant_type") != ["client_credentials"]:
                self._answer(401, {"error": "invalid_client"})
                return
            with srv.lock:
                srv.tokens.append(f"sub-token-{len(srv.tokens) + 1}")
                token = srv.tokens[-1]
            self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
            return
        expected = {"/basic": "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode(),
                    "/wrong": "never matches"}.get(self.path)
        with srv.lock:
            ok = (auth == expected) if expected else (self.path == "/oauth2" and bool(srv.tokens)
                                                      and auth == f"Bearer {srv.tokens[-1]}")
            if ok:
                srv.accepted.append((self.path, json.loads(raw)))
            else:
                srv.refused.append((self.path, auth))
        self._answer(204 if ok else 401)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture()
def checking_subscriber() -> Iterator[Subscriber]:
    srv = Subscriber()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def _basic(user: str = BASIC_USER, password: str = BASIC_PASSWORD) -> dict[str, Any]:
    return {"authType": ["BASIC"], "paramsBasic": {"userName": user, "password": password}}


def test_subscription_credentials_are_accepted_but_never_shown(auth_stack: AuthStack,
                                                              checking_subscriber: Subscriber) -> None:
    with auth_stack.client_with("app_pkgm:read", "app_pkgm:write", "app_lcm:read", "app_lcm:write") as http:
        body = {"callbackUri": f"{checking_subscriber.url}/basic",
                "subscriptionType": "AppPackageOnBoardingSubscription", "authentication": _basic()}
        created = http.post("/app_pkgm/v1/subscriptions", json=body)
        assert created.status_code == 201, created.text
        shown = json.dumps([created.json(), http.get(created.headers["Location"]).json(),
                            http.get("/app_pkgm/v1/subscriptions").json()])
        assert "authentication" not in shown and BASIC_PASSWORD not in shown
        assert http.delete(created.headers["Location"]).status_code == 204
        lcm = {"callbackUri": f"{checking_subscriber.url}/oauth2", "subscriptionType": "AppIdentifierCreationSubscription",
               "authentication": {"authType": ["OAUTH2_CLIENT_CREDENTIALS"], "paramsOauth2ClientCredentials": {
                   "clientId": CLIENT_ID, "clientPassword": CLIENT_SECRET, "tokenEndpoint": "ftp://x/token"}}}
        refused = http.post("/app_lcm/v1/subscriptions", json=lcm)
        assert refused.status_code == 400 and "tokenEndpoint" in refused.json()["detail"]
        refused = http.post("/app_pkgm/v1/subscriptions", json={**body, "authentication": {"authType": ["BASIC"]}})
        assert refused.status_code == 400 and "paramsBasic" in refused.json()["detail"]
        assert CLIENT_SECRET not in refused.text


def test_notifications_arrive_with_basic_or_a_cached_client_credentials_token(
        auth_stack: AuthStack, checking_subscriber: Subscriber, tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    sub = checking_subscriber
    oauth2 = {"authType": ["BASIC", "OAUTH2_CLIENT_CREDENTIALS"], "paramsOauth2ClientCredentials": {
        "clientId": CLIENT_ID, "clientPassword": CLIENT_SECRET, "tokenEndpoint": f"{sub.url}/token"}}
    client_id, secret = auth_stack.admin()
    http = httpx.Client(base_url=auth_stack.base, timeout=30,
                        headers={"Authorization": f"Bearer {auth_stack.token(client_id, secret)}"})
    subs = [http.post("/app_pkgm/v1/subscriptions", json={
                "callbackUri": f"{sub.url}/{path}", "subscriptionType": "AppPackageOnBoardingSubscription",
                "authentication": auth}).headers["Location"]
            for path, auth in (("basic", _basic()), ("wrong", _basic(password="not-it")))]
    subs.append(http.post("/app_lcm/v1/subscriptions", json={
        "callbackUri": f"{sub.url}/oauth2", "subscriptionType": "AppIdentifierCreationSubscription",
        "authentication": oauth2}).headers["Location"])
    package = build_package("mec-minimal", tmp_path)
    target = auth_stack.stack.pkg_root / f"notify-{uuid.uuid4().hex[:6]}.zip"
    shutil.copyfile(package, target)
    created = http.post("/app_pkgm/v1/app_packages", json={
        "appPkgName": "notify", "appPkgVersion": "1.0", "appPkgPath": target.as_uri(),
        "checksum": {"algorithm": "SHA-256", "hash": sha256(target)}})
    assert created.status_code == 201, created.text
    pkg_id = created.json()["id"]
    instances = []
    try:
        onboarded = wait_for(lambda: sub.accepted_on("/basic"), 60, 0.2, "the Basic-authenticated notification")
        assert onboarded[0]["notificationType"] == "AppPackageOnBoarded" and onboarded[0]["appPkgId"] == pkg_id
        appd_id = onboarded[0]["appDId"]
        for _ in range(2):
            resp = http.post("/app_lcm/v1/app_instances", json={"appDId": appd_id})
            assert resp.status_code == 201, resp.text
            instances.append(resp.json()["id"])
        got = wait_for(lambda: len(sub.accepted_on("/oauth2")) == 2 and sub.accepted_on("/oauth2"), 60, 0.2,
                       "two notifications with a bearer token")
        assert {n["appInstanceId"] for n in got} == set(instances)
        assert sub.tokens == ["sub-token-1"], "one token, reused for the second notification"
        wait_for(lambda: any(p == "/wrong" for p, _ in sub.refused), 30, 0.2, "the wrong-password attempt")
        assert not sub.accepted_on("/wrong")
    finally:
        for inst in instances:
            http.delete(f"/app_lcm/v1/app_instances/{inst}")
        http.patch(f"/app_pkgm/v1/app_packages/{pkg_id}", json={"operationalState": "DISABLED"})
        http.delete(f"/app_pkgm/v1/app_packages/{pkg_id}")
        for location in subs:
            http.delete(location)
        http.close()
    logs = "".join(path.read_text(errors="replace") for path in auth_stack.stack.logs.values())
    for secret_text in (BASIC_PASSWORD, CLIENT_SECRET, "not-it"):
        assert secret_text not in logs, "credentials never reach the logs"
