"""The API's own clients get tokens by themselves: the operator CLI, MeaoClient and the workers' grant requests."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from meao.auth import client_credentials
from meao.auth.client_credentials import (
    ClientCredentials,
    ClientCredentialsAuth,
    CredentialsError,
    client_auth,
)
from meao.oss.client import MeaoClient
from tests.auth.conftest import AuthStack
from tests.cli.helpers import client_env, failed, ok, ok_json, run_meao


class FakeServer:
    """A token endpoint and one API path, answering 401 to the tokens it has revoked."""

    def __init__(self) -> None:
        self.issued = 0
        self.revoked: set[str] = set()
        self.seen: list[str | None] = []
        self.token_bodies: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.issued += 1
            self.token_bodies.append(request.content.decode())
            assert request.headers["authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": f"t{self.issued}", "token_type": "Bearer",
                                             "expires_in": 3600})
        auth = request.headers.get("authorization")
        self.seen.append(auth)
        if auth is None or auth.removeprefix("Bearer ") in self.revoked:
            return httpx.Response(401, json={"title": "Unauthorized", "status": 401, "detail": "token"})
        return httpx.Response(200, json=[])


def _http(server: FakeServer, auth: httpx.Auth) -> httpx.Client:
    return httpx.Client(base_url="http://meao.test", transport=httpx.MockTransport(server), auth=auth)


def test_the_token_is_fetched_once_cached_and_renewed_once_on_401() -> None:
    server = FakeServer()
    auth = ClientCredentialsAuth(ClientCredentials("c", "s3cret", "test"), "http://meao.test/oauth2/token")
    with _http(server, auth) as http:
        assert http.get("/x").status_code == 200 and http.get("/x").status_code == 200
        assert server.issued == 1 and server.seen == ["Bearer t1", "Bearer t1"]
        server.revoked.add("t1")
        assert http.get("/x").status_code == 200, "a 401 gets a new token and one more try"
        assert server.issued == 2 and server.seen[-2:] == ["Bearer t1", "Bearer t2"]
        server.revoked.add("t2")
        server.revoked.add("t3")
        assert http.get("/x").status_code == 401, "only one retry"
        assert server.issued == 3


def test_threads_sharing_the_auth_wait_for_one_token() -> None:
    server = FakeServer()

    def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            time.sleep(0.3)
        return server(request)

    auth = ClientCredentialsAuth(ClientCredentials("c", "s", "test"), "http://meao.test/oauth2/token")
    with (httpx.Client(base_url="http://meao.test", transport=httpx.MockTransport(slow), auth=auth) as http,
          ThreadPoolExecutor(8) as pool):
        codes = list(pool.map(lambda _: http.get("/x").status_code, range(8)))
    assert codes == [200] * 8 and server.issued == 1


def test_a_scope_is_asked_for_when_configured() -> None:
    server = FakeServer()
    auth = ClientCredentialsAuth(ClientCredentials("c", "s", "test", scope="app_pkgm:read"),
                                 "http://meao.test/oauth2/token")
    with _http(server, auth) as http:
        http.get("/x")
    assert "scope=app_pkgm%3Aread" in server.token_bodies[0]


def test_a_server_without_token_endpoint_gets_requests_without_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(404)
        assert "authorization" not in request.headers
        return httpx.Response(200, json=[])

    auth = ClientCredentialsAuth(ClientCredentials("c", "s", "test"), "http://meao.test/oauth2/token")
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as http:
        assert http.get("http://meao.test/x").status_code == 200


def test_credentials_come_from_env_then_file_then_the_data_dir(tmp_path: Path) -> None:
    assert client_auth("http://m", {"MEAO_DATA_DIR": str(tmp_path)}) is None
    (tmp_path / "admin-credentials.json").write_text(json.dumps({"client_id": "admin", "client_secret": "a"}))
    auth = client_auth("http://m/", {"MEAO_DATA_DIR": str(tmp_path)})
    assert auth is not None and auth.credentials.client_id == "admin" and auth.token_url == "http://m/oauth2/token"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"client_id": "ops", "client_secret": "b",
                                 "token_url": "https://idp.example/token"}))
    auth = client_auth("http://m", {"MEAO_DATA_DIR": str(tmp_path), "MEAO_CLIENT_CREDENTIALS_FILE": str(other)})
    assert auth is not None and auth.credentials.client_id == "ops" and auth.token_url == "https://idp.example/token"
    auth = client_auth("http://m", {"MEAO_CLIENT_CREDENTIALS_FILE": str(other), "MEAO_CLIENT_ID": "env",
                                    "MEAO_CLIENT_SECRET": "s3cret", "MEAO_TOKEN_URL": "http://t/token"})
    assert auth is not None and auth.credentials.client_id == "env" and auth.token_url == "http://t/token"
    assert "s3cret" not in repr(auth.credentials), "the secret never shows in logs or tracebacks"
    with pytest.raises(CredentialsError, match="both"):
        client_auth("http://m", {"MEAO_CLIENT_ID": "only-id"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CredentialsError, match="bad.json"):
        client_auth("http://m", {"MEAO_CLIENT_CREDENTIALS_FILE": str(tmp_path / "bad.json")})


def test_meao_client_against_a_live_meao_uses_the_admin_credentials(auth_stack: AuthStack,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEAO_DATA_DIR", str(auth_stack.stack.data_dir))
    with MeaoClient(auth_stack.base) as client:
        assert isinstance(client.pkgm.list_packages(), list)
        assert isinstance(client.ops.list_hosts(), list)


def test_the_operator_cli_works_with_the_bootstrap_credentials_and_explains_a_401(auth_stack: AuthStack,
                                                                                  tmp_path: Path) -> None:
    env = client_env(auth_stack.base, tmp_path, MEAO_DATA_DIR=str(auth_stack.stack.data_dir))
    assert isinstance(ok_json(run_meao("package", "list", "-f", "json", env=env)), list)
    token = ok(run_meao("auth", "token", env=env)).strip()
    assert httpx.get(f"{auth_stack.base}/ops/v1/mec_hosts", headers={"Authorization": f"Bearer {token}"}
                     ).status_code == 200, "meao auth token prints a token for curl"
    reader_id, reader_secret = auth_stack.register("cli-reader", "app_pkgm:read", "app_lcm:read")
    reader = {**client_env(auth_stack.base, tmp_path), "MEAO_CLIENT_ID": reader_id,
              "MEAO_CLIENT_SECRET": reader_secret}
    assert isinstance(ok_json(run_meao("app", "list", "-f", "json", env=reader)), list)
    err = failed(run_meao("subscription", "create", "--type", "AppPackageOnBoardingSubscription",
                          "--callback", "http://127.0.0.1:9/cb", env=reader), 1)
    assert "403" in err and "app_pkgm:write" in err
    err = failed(run_meao("package", "list", env=client_env(auth_stack.base, tmp_path)), 1)
    assert "401" in err and "MEAO_CLIENT_ID" in err
    err = failed(run_meao("package", "list", env={**reader, "MEAO_CLIENT_SECRET": "wrong"}), 1)
    assert "invalid_client" in err or "unknown client or wrong secret" in err


def test_a_workers_grant_request_carries_a_token(auth_stack: AuthStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """mecpm's request_grant reaches the granting API's validation (400), not its door (401)."""
    from meao.config import load_settings, set_settings
    from meao.problems import ProblemError
    from mecpm.meao_link import request_grant

    set_settings(load_settings(MEAO_PUBLIC_URL=auth_stack.base, MEAO_DATA_DIR=str(auth_stack.stack.data_dir)))
    monkeypatch.setattr(client_credentials, "_shared", {})
    monkeypatch.setenv("MEAO_DATA_DIR", str(auth_stack.stack.data_dir))
    with pytest.raises(ProblemError) as refused:
        request_grant({"appInstanceId": "not-a-grant-request"})
    assert refused.value.status == 400, refused.value.detail
    monkeypatch.setattr(client_credentials, "_shared", {})
    monkeypatch.setenv("MEAO_DATA_DIR", "/nonexistent")
    with pytest.raises(ProblemError) as refused:
        request_grant({"appInstanceId": "not-a-grant-request"})
    assert refused.value.status == 401
