"""Every API wants a bearer token with the right scope: 401 without a valid one, 403 without the scope."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.conftest import AuthStack, bearer
from tests.conftest import wait_for

PROBLEM = "application/problem+json"
# (API, a read operation, its scope); the granting read of an unknown grant is a 404 once authorised
READS = [
    ("app_pkgm", "/app_pkgm/v1/app_packages", "app_pkgm:read", 200),
    ("app_lcm", "/app_lcm/v1/app_instances", "app_lcm:read", 200),
    ("granting", f"/granting/v1/grants/{uuid.uuid4()}", "granting:read", 404),
    ("ops", "/ops/v1/mec_hosts", "ops:read", 200),
]
SUB_PKG = {"callbackUri": "http://127.0.0.1:9/cb", "subscriptionType": "AppPackageOnBoardingSubscription"}
SUB_LCM = {"callbackUri": "http://127.0.0.1:9/cb", "subscriptionType": "AppIdentifierCreationSubscription"}
# (API, method, path, body, read scope that is not enough, write scope, status once authorised)
WRITES = [
    ("app_pkgm", "POST", "/app_pkgm/v1/subscriptions", SUB_PKG, "app_pkgm:read", "app_pkgm:write", 201),
    ("app_lcm", "POST", "/app_lcm/v1/subscriptions", SUB_LCM, "app_lcm:read", "app_lcm:write", 201),
    ("granting", "POST", "/granting/v1/grants", {"appInstanceId": "x"}, "granting:read", "granting:write", 400),
    ("ops", "DELETE", "/ops/v1/mec_hosts/no-such-host", None, "ops:read", "ops:admin", 404),
]


def _assert_challenge(resp: httpx.Response, error: str | None) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["status"] == 401 and resp.json()["title"] == "Unauthorized"
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="meao"'), challenge
    if error:
        assert f'error="{error}"' in challenge, challenge
    else:
        assert "error=" not in challenge, "no token given: a plain challenge (RFC 6750 clause 3.1)"


def _forge(auth_stack: AuthStack, key: bytes | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "meao", "aud": "meao", "sub": "admin", "iat": now, "exp": now + 600,
            "scope": "app_pkgm:read", **claims}
    signing_key = key if key is not None else (auth_stack.stack.data_dir / "auth-signing.key").read_bytes().strip()
    return jwt.encode({k: v for k, v in body.items() if v is not None}, signing_key, algorithm="HS256")


@pytest.mark.parametrize(("api", "path", "scope", "ok"), READS, ids=[r[0] for r in READS])
def test_a_request_without_a_token_is_401_with_a_bearer_challenge(auth_stack: AuthStack, api: str, path: str,
                                                                  scope: str, ok: int) -> None:
    resp = httpx.get(auth_stack.base + path)
    _assert_challenge(resp, None)
    assert "/oauth2/token" in resp.json()["detail"], "the detail says where a token comes from"


@pytest.mark.parametrize(("api", "method", "path", "body", "read", "write", "ok"), WRITES, ids=[w[0] for w in WRITES])
def test_an_invalid_body_without_a_token_is_still_401_not_400(auth_stack: AuthStack, api: str, method: str,
                                                              path: str, body: Any, read: str, write: str,
                                                              ok: int) -> None:
    _assert_challenge(httpx.request(method, auth_stack.base + path, json={"bogus": True}), None)


@pytest.mark.parametrize(("api", "path", "scope", "ok"), READS, ids=[r[0] for r in READS])
def test_the_read_scope_of_an_api_opens_its_reads_and_no_other_api(auth_stack: AuthStack, api: str, path: str,
                                                                   scope: str, ok: int) -> None:
    with auth_stack.client_with(scope) as http:
        assert http.get(path).status_code == ok
        for other_api, other_path, other_scope, _ in READS:
            if other_api == api:
                continue
            resp = http.get(other_path)
            assert resp.status_code == 403, (other_api, resp.text)
            assert resp.headers["content-type"].startswith(PROBLEM)
            assert other_scope in resp.json()["detail"]
            challenge = resp.headers["www-authenticate"]
            assert 'error="insufficient_scope"' in challenge and f'scope="{other_scope}"' in challenge


@pytest.mark.parametrize(("api", "method", "path", "body", "read", "write", "ok"), WRITES, ids=[w[0] for w in WRITES])
def test_a_write_needs_the_write_scope_and_is_403_with_only_read(auth_stack: AuthStack, api: str, method: str,
                                                                 path: str, body: Any, read: str, write: str,
                                                                 ok: int) -> None:
    with auth_stack.client_with(read) as http:
        resp = http.request(method, path, json=body)
        assert resp.status_code == 403, resp.text
        assert write in resp.json()["detail"]
    with auth_stack.client_with(read, write) as http:
        resp = http.request(method, path, json=body)
        assert resp.status_code == ok, resp.text
        if resp.status_code == 201:
            assert http.delete(resp.headers["Location"]).status_code == 204


def test_a_garbage_token_is_401_invalid_token(auth_stack: AuthStack) -> None:
    for token in ("garbage", "a.b.c", secrets.token_urlsafe(40)):
        resp = httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=bearer(token))
        _assert_challenge(resp, "invalid_token")
    resp = httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers={"Authorization": "Bearer"})
    _assert_challenge(resp, "invalid_token")


@pytest.mark.parametrize(("case", "claims", "says"), [
    ("expired", {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
    ("wrong issuer", {"iss": "https://idp.example/realms/other"}, "not issued by meao"),
    ("wrong audience", {"aud": "another-service"}, "not meant for meao"),
    ("no expiry", {"exp": None}, "'exp'"),
    ("unknown client", {"sub": "nobody"}, "no longer exists"),
])
def test_a_token_meao_did_not_issue_as_is_401(auth_stack: AuthStack, case: str, claims: dict[str, Any],
                                              says: str) -> None:
    resp = httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=bearer(_forge(auth_stack, **claims)))
    _assert_challenge(resp, "invalid_token")
    assert says in resp.json()["detail"]


def test_a_token_signed_with_another_key_or_none_is_401(auth_stack: AuthStack) -> None:
    assert httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages",
                     headers=bearer(_forge(auth_stack))).status_code == 200, "the forgery helper itself is right"
    forged = _forge(auth_stack, key=secrets.token_bytes(64))
    resp = httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=bearer(forged))
    _assert_challenge(resp, "invalid_token")
    assert "signature" in resp.json()["detail"]
    unsigned = jwt.encode({"iss": "meao", "aud": "meao", "sub": "admin", "iat": int(time.time()),
                           "exp": int(time.time()) + 600, "scope": "app_pkgm:read"}, None, algorithm="none")
    _assert_challenge(httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=bearer(unsigned)),
                      "invalid_token")


def test_a_deleted_client_loses_its_tokens_and_a_new_one_of_that_name_does_not_inherit_them(
        auth_stack: AuthStack) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    client_id, secret = auth_stack.register(name, "app_pkgm:read")
    old = auth_stack.token(client_id, secret)
    url = f"{auth_stack.base}/app_pkgm/v1/app_packages"
    assert httpx.get(url, headers=bearer(old)).status_code == 200
    assert auth_stack.meao("auth", "client", "delete", name).returncode == 0
    # meao serve trusts what it read of a client for MEAO_AUTH_CLIENT_CACHE_S (this stack: 1 s)
    def refused() -> httpx.Response | None:
        resp = httpx.get(url, headers=bearer(old))
        return resp if resp.status_code != 200 else None

    _assert_challenge(wait_for(refused, timeout=10, what="the deleted client's token to be refused"),
                      "invalid_token")
    time.sleep(1.1)  # tokens carry whole seconds
    client_id, secret = auth_stack.register(name, "app_pkgm:read")
    _assert_challenge(httpx.get(url, headers=bearer(old)), "invalid_token")
    assert httpx.get(url, headers=bearer(auth_stack.token(client_id, secret))).status_code == 200


def test_a_token_keeps_only_the_scopes_its_client_still_has(auth_stack: AuthStack) -> None:
    """A token claiming more than its client was registered with gets no more than the registration."""
    name = f"narrow-{uuid.uuid4().hex[:6]}"
    auth_stack.register(name, "app_pkgm:read")
    greedy = _forge(auth_stack, sub=name, scope="app_pkgm:read app_lcm:read")
    assert httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=bearer(greedy)).status_code == 200
    assert httpx.get(f"{auth_stack.base}/app_lcm/v1/app_instances", headers=bearer(greedy)).status_code == 403


def test_swagger_ui_and_the_spec_stay_reachable_and_describe_the_scopes(auth_stack: AuthStack) -> None:
    spec = httpx.get(f"{auth_stack.base}/app_lcm/v1/openapi.json").json()
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth2/token" and set(flow["scopes"]) == {"app_lcm:read", "app_lcm:write"}
    assert httpx.get(f"{auth_stack.base}/app_lcm/v1/ui/").status_code == 200
