"""meao finds the console's OpenID provider endpoints in the issuer's discovery document, once, through its
outbound gate; what it cannot use it refuses with a ProblemDetails that says what to set.

In-process against the stand-in IdP on loopback (tests/auth/idp.py), plus one `meao serve` whose issuer
does not answer, to see the console's config.json, its CSP and the page in that case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meao.config import Settings, load_settings
from meao.console.discovery import DiscoveryFailed, EndpointDiscovery, endpoint_problem
from tests.auth.conftest import start_serve
from tests.auth.idp import Idp, jwt_env, serve_jwks
from tests.conftest import free_port
from tests.console.browser import Browser, hook


@pytest.fixture()
def idp() -> Iterator[Idp]:
    state = Idp()
    state.add_rsa("k1")
    with serve_jwks(state, own_issuer=True):
        yield state


@pytest.fixture()
def settings() -> Settings:
    # no outbound allowance at all: the issuer's host is reached because the operator named it as issuer
    return load_settings(MEAO_OUTBOUND_ALLOW="")


def test_the_endpoints_are_read_once_and_kept(idp: Idp, settings: Settings) -> None:
    discovery = EndpointDiscovery(idp.issuer)
    for _ in range(3):
        found = discovery.endpoints(settings)
        assert (found.authorization_endpoint, found.token_endpoint) == (f"{idp.base}/authorize", f"{idp.base}/token")
    assert idp.metadata_fetches == 1


def test_a_failure_is_kept_for_a_while_then_tried_again(idp: Idp, settings: Settings) -> None:
    idp.metadata_status = 500
    discovery = EndpointDiscovery(idp.issuer, retry_after_s=3600)
    with pytest.raises(DiscoveryFailed) as first:
        discovery.endpoints(settings)
    assert first.value.status == 503
    assert "answered HTTP 500" in first.value.detail and "MEAO_CONSOLE_OIDC_TOKEN_URL" in first.value.detail
    idp.metadata_status = 200
    with pytest.raises(DiscoveryFailed):  # within the pause: the same answer, no new request
        discovery.endpoints(settings)
    assert idp.metadata_fetches == 1
    discovery.retry_after_s = 0  # the pause is over: the IdP is asked again, and now answers
    assert discovery.endpoints(settings).token_endpoint == f"{idp.base}/token"
    assert idp.metadata_fetches == 2


def test_a_document_of_another_issuer_is_refused(idp: Idp, settings: Settings) -> None:
    idp.metadata_extra = {"issuer": "https://evil.example/realms/mec"}
    with pytest.raises(DiscoveryFailed, match="names the issuer 'https://evil.example/realms/mec', not "
                                              "MEAO_AUTH_ISSUER"):
        EndpointDiscovery(idp.issuer).endpoints(settings)


def test_an_issuer_without_s256_pkce_is_refused(idp: Idp, settings: Settings) -> None:
    idp.metadata_extra = {"code_challenge_methods_supported": ["plain"]}
    with pytest.raises(DiscoveryFailed, match="does not offer PKCE with S256"):
        EndpointDiscovery(idp.issuer).endpoints(settings)


def test_a_redirect_to_the_metadata_service_is_refused_by_the_outbound_gate(idp: Idp, settings: Settings) -> None:
    idp.metadata_redirect = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(DiscoveryFailed) as refused:
        EndpointDiscovery(idp.issuer).endpoints(settings)
    assert "link-local address" in refused.value.detail and "MEAO_OUTBOUND_ALLOW" in refused.value.detail


def test_endpoints_must_be_https_except_on_the_loopback() -> None:
    assert endpoint_problem("https://idp.example/auth", "token_endpoint") is None
    assert endpoint_problem("http://127.0.0.1:8080/token", "token_endpoint") is None
    assert endpoint_problem("http://localhost/token", "token_endpoint") is None
    assert "plain http" in (endpoint_problem("http://idp.example/token", "token_endpoint") or "")
    assert "not an absolute https URL" in (endpoint_problem("/token", "token_endpoint") or "")
    assert "names no token_endpoint" in (endpoint_problem(None, "token_endpoint") or "")


def test_config_json_is_a_503_problem_while_the_issuer_does_not_answer(tmp_path: Path, browser: Browser) -> None:
    dead = f"http://127.0.0.1:{free_port()}/realms/mec"
    env = jwt_env(tmp_path / "var", f"{dead}/protocol/openid-connect/certs",
                  MEAO_CONSOLE_OIDC_CLIENT_ID="meao-console")
    env["MEAO_AUTH_ISSUER"] = dead
    served = start_serve(tmp_path, env)
    try:
        resp = httpx.get(f"{served.base}/console/config.json", timeout=30)
        assert resp.status_code == 503 and resp.headers["content-type"] == "application/problem+json"
        problem = resp.json()
        assert problem["status"] == 503
        assert f"{dead}/.well-known/openid-configuration could not be read" in problem["detail"]
        assert "MEAO_CONSOLE_OIDC_AUTHORIZATION_URL" in problem["detail"]
        assert resp.headers["retry-after"] == "30"
        csp = httpx.get(f"{served.base}/console/", timeout=30).headers["content-security-policy"]
        assert "connect-src 'self';" in csp
        assert "console sign-in unavailable" in served.output()
        browser.driver.get(f"{served.base}/console/")  # the operator sees why, and what to set
        shown = browser.wait_text("problem", lambda text: "could not be read" in text)
        assert "503" in shown and "MEAO_CONSOLE_OIDC_TOKEN_URL" in shown
        assert not browser.find_all(hook("oidc-login")), "no sign-in button that cannot work"
    finally:
        served.stop()
