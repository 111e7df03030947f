"""Issue 16 item 5: the token endpoint is throttled per client id and per source address before any
scrypt (a 429 ProblemDetails with Retry-After), unknown client ids cost no more than known ones, and the
grant errors of RFC 6749 clause 5.2 that were missing are answered.

A real `meao serve` (SQLite, MEAO_AUTH=local) with a burst of 3 attempts and a refill so slow that no
token comes back during the test: what is refused is refused for certain. Each test speaks from its own
source addresses (X-Forwarded-For, which uvicorn takes from a proxy on 127.0.0.1), so their buckets
are their own.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from meao.api import oauth2
from meao.auth.throttle import Throttle
from tests.auth.conftest import Served, bare_env, meao_cmd, start_serve

BURST = 3
ENVS: dict[str, dict[str, str]] = {}  # the environment of each served meao, for `meao auth client create`


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("token-throttle")
    env = bare_env(tmp / "var", MEAO_AUTH="local", MEAO_AUTH_TOKEN_BURST=str(BURST), MEAO_AUTH_TOKEN_RATE="0.0001")
    serve = start_serve(tmp, env)
    ENVS[serve.base] = env
    yield serve
    serve.stop()


def _address() -> str:
    """A source address of its own (documentation prefix, RFC 3849)."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _ask(served: Served, client_id: str, secret: str, address: str, **form: str) -> httpx.Response:
    return httpx.post(f"{served.base}/oauth2/token", data={"grant_type": "client_credentials", **form},
                      auth=(client_id, secret), headers={"X-Forwarded-For": address}, timeout=30)


def _register(served: Served) -> tuple[str, str]:
    name = f"c-{uuid.uuid4().hex[:8]}"
    result = meao_cmd(ENVS[served.base], "auth", "client", "create", name, "--scope", "app_pkgm:read",
                      "-f", "json", cwd=served.data_dir.parent)
    assert result.returncode == 0, result.stderr
    return name, json.loads(result.stdout)["client_secret"]


def _throttled(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["cache-control"] == "no-store"
    retry_after = resp.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    body = resp.json()
    assert body["status"] == 429 and "retry in" in body["detail"]
    return body


def test_a_client_id_gets_its_burst_then_429_from_any_address(served: Served) -> None:
    client_id, secret = _register(served)
    for _ in range(BURST):
        assert _ask(served, client_id, secret, _address()).status_code == 200
    body = _throttled(_ask(served, client_id, secret, _address()))
    assert client_id in body["detail"]


def test_an_address_gets_its_burst_then_429_whatever_client_it_names(served: Served) -> None:
    address, clients = _address(), [_register(served) for _ in range(BURST + 1)]
    for client_id, secret in clients[:BURST]:
        assert _ask(served, client_id, secret, address).status_code == 200
    client_id, secret = clients[BURST]
    _throttled(_ask(served, client_id, secret, address))
    assert _ask(served, client_id, secret, _address()).status_code == 200, "the client itself is not throttled"


def test_made_up_client_ids_are_throttled_by_their_address(served: Served) -> None:
    address = _address()
    resp = _ask(served, f"nobody-{uuid.uuid4().hex[:8]}", "guess", address)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    for _ in range(5):  # a failure spends the address's burst; each new id is refused before any scrypt
        _throttled(_ask(served, f"nobody-{uuid.uuid4().hex[:8]}", "guess", address))


def test_a_wrong_secret_costs_more_than_a_token(served: Served) -> None:
    client_id, secret = _register(served)
    assert _ask(served, client_id, "wrong", _address()).status_code == 401
    _throttled(_ask(served, client_id, secret, _address()))


def test_another_grant_type_is_unsupported_grant_type_even_without_credentials(served: Served) -> None:
    for grant in ("password", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        resp = httpx.post(f"{served.base}/oauth2/token", data={"grant_type": grant, "username": "u", "password": "p"},
                          headers={"X-Forwarded-For": _address()}, timeout=30)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "unsupported_grant_type" and "client_credentials" in resp.json()["error_description"]


def test_a_registration_holding_none_of_meaos_scopes_is_invalid_grant(served: Served) -> None:
    """In the client credentials grant the registration is the grant; one whose scopes all ceased to exist
    grants nothing."""
    client_id, secret = _register(served)
    with sqlite3.connect(served.data_dir / "meao.db") as db:
        db.execute("UPDATE auth_client SET scopes = ? WHERE client_id = ?", ('["retired:scope"]', client_id))
    resp = _ask(served, client_id, secret, _address())
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant" and "meao auth client create" in resp.json()["error_description"]


# ---------------------------------------------------------------- the refusal is cheap: in-process, counted
def _grant(throttle: Throttle, address: str, client_id: str, calls: list[str]) -> int:
    """One token request through ``client_credentials_grant`` with a counting ``authenticate``."""
    def authenticate(cid: str, _secret: str) -> None:
        calls.append(cid)

    app = Flask(__name__)
    with app.test_request_context("/oauth2/token", method="POST", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": httpx.BasicAuth(client_id, "s")._auth_header},
                                  environ_base={"REMOTE_ADDR": address}):
        return oauth2.client_credentials_grant(authenticate, lambda *_: ("t", 1), throttle).status_code


def test_a_throttled_attempt_never_reaches_the_secret_check() -> None:
    throttle, calls = Throttle(burst=2, rate=0.0001), []
    statuses = [_grant(throttle, "192.0.2.1", f"made-up-{i}", calls) for i in range(10)]
    assert statuses == [401, 429, 429, 429, 429, 429, 429, 429, 429, 429]  # a failure spends the burst
    assert calls == ["made-up-0"], "only the attempt within the burst was hashed"
