"""Issue 16 item 4: in MEAO_AUTH=jwt, a token naming a real key id with an algorithm of another family is
a 401 (it was a 500 with a traceback), and tokens naming unknown key ids cannot make meao fetch the
issuer's JWKS again and again: at most one fetch per MEAO_AUTH_JWKS_REFETCH_S.

A real `meao serve` against a JWKS served over HTTP on loopback that counts its fetches.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from meao.auth.tokens import InvalidToken, JwksTokens
from meao.config import load_settings
from tests.auth.conftest import Served, bearer, start_serve
from tests.auth.idp import AUDIENCE, ISSUER, Idp, forged, jwt_env, serve_jwks, sign

PACKAGES = "/app_pkgm/v1/app_packages"


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    state = Idp()
    state.add_rsa("rsa-1")
    state.add_ec("ec-1")
    with serve_jwks(state):
        yield state


@pytest.fixture(scope="module")
def jwt_meao(idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("jwt-confusion")
    served = start_serve(tmp, jwt_env(tmp / "var", idp.url))
    yield served
    served.stop()


def _get(served: Served, token: str) -> httpx.Response:
    return httpx.get(served.base + PACKAGES, headers=bearer(token), timeout=30)


def _assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    assert resp.json()["status"] == 401 and resp.json()["detail"]


def _mismatched_tokens(idp: Idp) -> dict[str, str]:
    stranger_ec = ec.generate_private_key(ec.SECP256R1())
    stranger_p384 = ec.generate_private_key(ec.SECP384R1())
    stranger_ed = ed25519.Ed25519PrivateKey.generate()
    stranger_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "ES256 naming the RSA key": sign(stranger_ec, "ES256", "rsa-1"),
        "EdDSA naming the RSA key": sign(stranger_ed, "EdDSA", "rsa-1"),
        "RS256 naming the EC key": sign(stranger_rsa, "RS256", "ec-1"),
        "ES384 naming the P-256 key": sign(stranger_p384, "ES384", "ec-1"),
        "ES256 with the EC key's own signature, RSA kid": sign(idp.keys["ec-1"], "ES256", "rsa-1"),
        "a kid that is an object": forged({"alg": "RS256", "kid": {"k": "rsa-1"}}),
        "a kid that is a list": forged({"alg": "RS256", "kid": ["rsa-1"]}),
        "a kid that is a number": forged({"alg": "RS256", "kid": 7}),
        "no kid": forged({"alg": "RS256"}),
        "alg none": forged({"alg": "none", "kid": "rsa-1"}),
        "alg that is a list": forged({"alg": ["RS256"], "kid": "rsa-1"}),
    }


def test_a_real_key_id_with_an_algorithm_of_another_family_is_401_not_500(jwt_meao: Served, idp: Idp) -> None:
    assert _get(jwt_meao, sign(idp.keys["rsa-1"], "RS256", "rsa-1")).status_code == 200
    for case, token in _mismatched_tokens(idp).items():
        resp = _get(jwt_meao, token)
        assert resp.status_code == 401, (case, resp.status_code, resp.text)
        _assert_401(resp)
    assert "Traceback" not in jwt_meao.output()
    assert _get(jwt_meao, sign(idp.keys["ec-1"], "ES256", "ec-1")).status_code == 200, "the EC key still works"


def test_fifty_tokens_with_unknown_key_ids_fetch_the_jwks_at_most_once(jwt_meao: Served, idp: Idp) -> None:
    assert _get(jwt_meao, sign(idp.keys["rsa-1"], "RS256", "rsa-1")).status_code == 200  # the set is fetched
    before = idp.fetches
    for _ in range(50):
        _assert_401(_get(jwt_meao, sign(idp.keys["rsa-1"], "RS256", f"k-{uuid.uuid4().hex}")))
    assert idp.fetches - before <= 1, f"{idp.fetches - before} JWKS fetches for 50 unknown key ids"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _validator(idp: Idp, clock: Clock, refetch_s: str = "30") -> JwksTokens:
    settings = load_settings(MEAO_AUTH="jwt", MEAO_AUTH_ISSUER=ISSUER, MEAO_AUTH_AUDIENCE=AUDIENCE,
                             MEAO_AUTH_JWKS_URL=idp.url, MEAO_AUTH_JWKS_REFETCH_S=refetch_s)
    return JwksTokens(settings, clock=clock)


def _refused(validator: JwksTokens, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        validator.validate(token)
    return str(refused.value)


def test_an_unknown_key_id_refetches_only_after_the_cooldown_and_a_rotated_in_key_is_then_found(
        idp: Idp) -> None:
    """JwksTokens alone, on a clock of the test's, against the real JWKS server (whatever PyJWT does)."""
    clock = Clock()
    validator = _validator(idp, clock)
    start = idp.fetches
    validator.validate(sign(idp.keys["rsa-1"], "RS256", "rsa-1"))
    assert idp.fetches == start + 1
    kid = f"rotated-{uuid.uuid4().hex[:6]}"
    rotated = idp.add_rsa(kid)
    try:
        clock.now += 10
        assert "does not publish" in _refused(validator, sign(rotated, "RS256", kid))
        assert idp.fetches == start + 1, "within the cooldown an unknown key id is refused without a fetch"
        clock.now += 21  # 31 s after the fetch
        assert validator.validate(sign(rotated, "RS256", kid)).subject == "service-account-oss"
        assert idp.fetches == start + 2
        for _ in range(20):
            _refused(validator, sign(rotated, "RS256", f"k-{uuid.uuid4().hex}"))
        assert idp.fetches == start + 2
    finally:
        del idp.keys[kid]


def test_any_error_pyjwt_raises_for_a_key_is_an_invalid_token(idp: Idp, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWT raises InvalidKeyError, TypeError or ValueError for keys it cannot use: never past the check."""
    import jwt

    validator = _validator(idp, Clock())
    token = sign(idp.keys["rsa-1"], "RS256", "rsa-1")
    validator.validate(token)
    for error in (jwt.InvalidKeyError("not an RSA key"), TypeError("wrong key type"), ValueError("bad key")):
        def boom(*_: Any, error: Exception = error, **__: Any) -> Any:
            raise error

        monkeypatch.setattr(jwt, "decode", boom)
        assert "does not fit" in _refused(validator, token)
