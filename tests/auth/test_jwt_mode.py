"""MEAO_AUTH=jwt: tokens of an external OAuth 2.0 server, checked against the keys its JWKS URL publishes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth import idp as idp_base
from tests.auth.conftest import Served, bare_env, bearer, meao_cmd, start_serve
from tests.auth.idp import AUDIENCE, ISSUER
from tests.conftest import free_port

PACKAGES = "/app_pkgm/v1/app_packages"


class Idp(idp_base.Idp):
    """The stand-in OAuth 2.0 server, with the tokens of an OSS service account."""

    def token(self, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        """An RS256 token of ``claims`` (None removes one) signed with ``key`` (default: ``kid``'s)."""
        return idp_base.sign(key or self.keys[kid], "RS256", kid,
                             **{"azp": "oss", "scope": "profile app_pkgm:read", **claims})


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    state = Idp()
    state.add_rsa("k1")
    with idp_base.serve_jwks(state):
        yield state


REFETCH_S = 3.0  # the key set refetch cooldown of this module's servers


def _jwt_env(tmp: Path, jwks_url: str) -> dict[str, str]:
    return idp_base.jwt_env(tmp / "var", jwks_url, MEAO_AUTH_TOKEN_URL=f"{ISSUER}/protocol/openid-connect/token",
                            MEAO_AUTH_JWKS_REFETCH_S=str(REFETCH_S))


@pytest.fixture(scope="module")
def jwt_meao(idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("jwt-mode")
    served = start_serve(tmp, _jwt_env(tmp, idp.url))
    yield served
    served.stop()


def _get(served: Served, token: str, path: str = PACKAGES) -> httpx.Response:
    return httpx.get(served.base + path, headers=bearer(token), timeout=30)


def _invalid(resp: httpx.Response) -> str:
    assert resp.status_code == 401, resp.text
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    return resp.json()["detail"]


def test_a_token_of_the_issuer_with_the_scope_is_accepted(jwt_meao: Served, idp: Idp) -> None:
    assert _get(jwt_meao, idp.token()).status_code == 200


def test_scopes_may_come_as_a_scp_list(jwt_meao: Served, idp: Idp) -> None:
    token = idp.token(scope=None, scp=["app_lcm:read"])
    assert _get(jwt_meao, token, "/app_lcm/v1/app_instances").status_code == 200
    assert _get(jwt_meao, token).status_code == 403


def test_a_token_without_the_scope_is_403(jwt_meao: Served, idp: Idp) -> None:
    resp = _get(jwt_meao, idp.token(scope="profile email"))
    assert resp.status_code == 403 and 'error="insufficient_scope"' in resp.headers["www-authenticate"]


@pytest.mark.parametrize(("claims", "says"), [
    ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, "expired"),
    ({"iss": "https://idp.example/realms/other"}, "not issued by"),
    ({"aud": "account"}, "not meant for meao"),
    ({"exp": None}, "'exp'"),
], ids=["expired", "wrong-issuer", "wrong-audience", "no-expiry"])
def test_expired_foreign_or_incomplete_tokens_are_401(jwt_meao: Served, idp: Idp, claims: dict[str, Any],
                                                      says: str) -> None:
    assert says in _invalid(_get(jwt_meao, idp.token(**claims)))


def test_a_token_signed_by_another_key_is_401(jwt_meao: Served, idp: Idp) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "signature" in _invalid(_get(jwt_meao, idp.token(key=stranger)))
    _invalid(_get(jwt_meao, idp.token(kid="unknown-kid", key=stranger)))
    _invalid(_get(jwt_meao, "garbage"))


def test_the_public_key_used_as_an_hmac_secret_is_refused(jwt_meao: Served, idp: Idp) -> None:
    """The classic algorithm confusion: HS256 'signed' with the issuer's public key must not pass."""
    pem = idp.keys["k1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 300,
                              "scope": "app_pkgm:read"}).encode())
    signature = b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    _invalid(_get(jwt_meao, f"{header}.{payload}.{signature}"))


def test_a_rotated_in_key_is_fetched_when_a_token_names_it(jwt_meao: Served, idp: Idp) -> None:
    """An unknown key id makes meao fetch the key set again, at most once per MEAO_AUTH_JWKS_REFETCH_S (30 s
    by default; REFETCH_S here, so the test need not wait 30 s)."""
    kid = f"k-{uuid.uuid4().hex[:6]}"
    idp.add_rsa(kid)
    time.sleep(REFETCH_S + 0.5)  # the module's first request fetched the set moments ago: wait out the cooldown
    before = idp.fetches
    assert _get(jwt_meao, idp.token(kid=kid)).status_code == 200
    assert idp.fetches == before + 1
    assert _get(jwt_meao, idp.token(kid=kid)).status_code == 200 and idp.fetches == before + 1, "cached"


def test_there_is_no_local_token_endpoint_and_a_missing_token_points_to_the_issuer(jwt_meao: Served) -> None:
    resp = httpx.post(f"{jwt_meao.base}/oauth2/token", data={"grant_type": "client_credentials"})
    assert resp.status_code == 404
    resp = httpx.get(jwt_meao.base + PACKAGES)
    assert resp.status_code == 401 and ISSUER in resp.json()["detail"]
    spec = httpx.get(f"{jwt_meao.base}/app_pkgm/v1/openapi.json").json()
    flow = spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == f"{ISSUER}/protocol/openid-connect/token"


def test_an_unreachable_jwks_is_503_not_a_token_error(idp: Idp, tmp_path: Path) -> None:
    served = start_serve(tmp_path, _jwt_env(tmp_path, f"http://127.0.0.1:{free_port()}/certs"))
    try:
        resp = _get(served, idp.token())
        assert resp.status_code == 503, resp.text
        assert "cannot fetch the token signing keys" in resp.json()["detail"]
    finally:
        served.stop()


def test_jwt_mode_without_its_settings_refuses_to_start(tmp_path: Path) -> None:
    env = bare_env(tmp_path / "var", MEAO_AUTH="jwt", MEAO_AUTH_ISSUER=ISSUER)
    result = meao_cmd(env, "serve", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode != 0
    assert "MEAO_AUTH_AUDIENCE" in result.stderr and "MEAO_AUTH_JWKS_URL" in result.stderr
