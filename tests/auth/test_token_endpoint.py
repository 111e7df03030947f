"""POST /oauth2/token: the client credentials grant and the error answers of RFC 6749 clauses 5.1 and 5.2."""

from __future__ import annotations

import base64
import uuid

import httpx
import jwt

from tests.auth.conftest import AuthStack, bearer


def _post(auth_stack: AuthStack, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{auth_stack.base}/oauth2/token", timeout=30, **kwargs)  # type: ignore[arg-type]


def _error(resp: httpx.Response, status: int, error: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["error"] == error, body
    assert body["error_description"]
    return body


def test_basic_authentication_gets_a_bearer_token_with_every_scope_of_the_client(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.register(f"ok-{uuid.uuid4().hex[:6]}", "app_pkgm:read", "ops:read")
    resp = _post(auth_stack, data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store" and resp.headers["pragma"] == "no-cache"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "app_pkgm:read ops:read"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == client_id and claims["exp"] - claims["iat"] == body["expires_in"]
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


def test_credentials_in_the_body_work_too(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.register(f"body-{uuid.uuid4().hex[:6]}", "app_lcm:read")
    resp = _post(auth_stack, data={"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": secret})
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert httpx.get(f"{auth_stack.base}/app_lcm/v1/app_instances", headers=bearer(token)).status_code == 200


def test_basic_credentials_are_form_decoded(auth_stack: AuthStack) -> None:
    """RFC 6749 clause 2.3.1: the id and the secret are form-urlencoded before base64."""
    client_id, secret = auth_stack.register(f"enc-{uuid.uuid4().hex[:6]}", "app_lcm:read")
    encoded = base64.b64encode(f"{client_id}:{secret.replace('-', '%2D')}".encode()).decode()
    resp = _post(auth_stack, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {encoded}"})
    assert resp.status_code == 200, resp.text


def test_a_scope_parameter_narrows_the_token_to_a_subset(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.admin()
    resp = _post(auth_stack, data={"grant_type": "client_credentials", "scope": "app_pkgm:read"},
                 auth=(client_id, secret))
    assert resp.status_code == 200 and resp.json()["scope"] == "app_pkgm:read"
    headers = bearer(resp.json()["access_token"])
    assert httpx.get(f"{auth_stack.base}/app_pkgm/v1/app_packages", headers=headers).status_code == 200
    assert httpx.get(f"{auth_stack.base}/ops/v1/mec_hosts", headers=headers).status_code == 403


def test_a_scope_beyond_the_clients_is_invalid_scope(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.register(f"scp-{uuid.uuid4().hex[:6]}", "app_pkgm:read")
    for scope in ("app_pkgm:read app_pkgm:write", "ops:admin", "no-such:scope"):
        body = _error(_post(auth_stack, data={"grant_type": "client_credentials", "scope": scope},
                            auth=(client_id, secret)), 400, "invalid_scope")
        assert "app_pkgm:read" in body["error_description"]


def test_a_wrong_secret_an_unknown_client_or_no_credentials_is_invalid_client_401(auth_stack: AuthStack) -> None:
    client_id, _secret = auth_stack.admin()
    grant = {"grant_type": "client_credentials"}
    for resp in (_post(auth_stack, data=grant, auth=(client_id, "wrong")),
                 _post(auth_stack, data=grant, auth=("nobody", "wrong")),
                 _post(auth_stack, data={**grant, "client_id": client_id, "client_secret": "wrong"}),
                 _post(auth_stack, data=grant),
                 _post(auth_stack, data=grant, headers={"Authorization": "Basic !!notbase64"})):
        _error(resp, 401, "invalid_client")
        assert resp.headers["www-authenticate"].startswith("Basic")


def test_another_grant_type_is_unsupported_grant_type(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.admin()
    for grant in ("password", "authorization_code", "refresh_token"):
        body = _error(_post(auth_stack, data={"grant_type": grant, "username": "u", "password": "p"},
                            auth=(client_id, secret)), 400, "unsupported_grant_type")
        assert "client_credentials" in body["error_description"]


def test_malformed_requests_are_invalid_request(auth_stack: AuthStack) -> None:
    client_id, secret = auth_stack.admin()
    _error(_post(auth_stack, data={}, auth=(client_id, secret)), 400, "invalid_request")  # no grant_type
    _error(_post(auth_stack, json={"grant_type": "client_credentials"}, auth=(client_id, secret)), 400,
           "invalid_request")  # not form-encoded
    _error(_post(auth_stack, content=b"grant_type=client_credentials&grant_type=client_credentials",
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=(client_id, secret)),
           400, "invalid_request")  # a parameter twice
    _error(_post(auth_stack, data={"grant_type": "client_credentials", "client_secret": secret},
                 auth=(client_id, secret)), 400, "invalid_request")  # two authentication methods


def test_the_token_endpoint_takes_only_post(auth_stack: AuthStack) -> None:
    assert httpx.get(f"{auth_stack.base}/oauth2/token").status_code == 405
