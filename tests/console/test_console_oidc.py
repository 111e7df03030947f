"""The console in jwt mode signs operators in at the OpenID provider: authorization code with PKCE (S256).

A real `meao serve` (MEAO_AUTH=jwt, embedded worker, a fake-VIM PoP, one onboarded package) trusts the
stand-in IdP of tests/auth/idp.py, served on loopback with its own URL as issuer, so meao discovers the
authorization and token endpoints from it. A real headless Chromium clicks "Sign in", is sent to the
IdP's /authorize, comes back with a code, and the page exchanges it (with its code_verifier) at the IdP's
/token. The IdP records what it was sent, so the tests see that PKCE really happened.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.auth.conftest import Served, start_serve
from tests.auth.idp import Idp, jwt_env, pkce_s256, serve_jwks, sign
from tests.conftest import wait_for
from tests.console.browser import Browser, hook

CLIENT_ID = "meao-console"
ADMIN_SCOPE = "openid ops:read ops:admin app_lcm:read app_lcm:write app_pkgm:read app_pkgm:write"
READ_SCOPE = "openid ops:read app_lcm:read app_pkgm:read"
HOST = {"id": "pop1", "name": "PoP one", "cloud": "nowhere", "availability_zone": "az1",
        "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5}, "networks": {"default": "net1"},
        "services": [{"serName": "RNIS", "version": "2.2.1"}],
        "features": [{"featureName": "UserApps", "version": "1.0"}]}


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    state = Idp()
    state.add_rsa("k1")
    with serve_jwks(state, own_issuer=True):
        yield state


@pytest.fixture(scope="module")
def served(idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """meao in jwt mode with the console's client id and no endpoint URLs: it must discover them."""
    tmp = tmp_path_factory.mktemp("console-oidc")
    (tmp / "pkgsrc").mkdir()
    (tmp / "hosts.yaml").write_text(yaml.safe_dump({"mec_hosts": [HOST]}))
    env = jwt_env(tmp / "var", idp.url, MEAO_CONSOLE_OIDC_CLIENT_ID=CLIENT_ID, MEAO_CONSOLE_OIDC_SCOPE=ADMIN_SCOPE, MEAO_VIM_DRIVER="fake",
                  MEAO_MEC_HOSTS_FILE=str(tmp / "hosts.yaml"), OS_CLIENT_CONFIG_FILE=str(tmp / "no-clouds.yaml"),
                  MEAO_PKG_FILE_ROOT=str(tmp / "pkgsrc"))
    env["MEAO_AUTH_ISSUER"] = idp.issuer  # the IdP's own loopback URL: discovery reads it there
    served = start_serve(tmp, env)
    origin = served.base
    idp.clients[CLIENT_ID] = (f"{origin}/console/",)
    idp.cors_origins = (origin,)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def package(served: Served, idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One onboarded package, so the catalogue has a row with an enable/disable action."""
    from descriptors.examples.build import build_package

    src = build_package("mec-vm-app", tmp_path_factory.mktemp("console-oidc-pkg"))
    target = served.data_dir.parent / "pkgsrc" / src.name
    shutil.copyfile(src, target)
    token = sign(idp.keys["k1"], "RS256", "k1", iss=idp.issuer, scope="app_pkgm:read app_pkgm:write")
    api = httpx.Client(base_url=f"{served.base}/app_pkgm/v1", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    created = api.post("/app_packages", json={
        "appPkgName": "oidc-console", "appPkgVersion": "1.0", "appPkgPath": target.as_uri(),
        "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(target.read_bytes()).hexdigest()}})
    assert created.status_code == 201, created.text
    pkg_id = created.json()["id"]
    info = wait_for(lambda: (i := api.get(f"/app_packages/{pkg_id}").json())["onboardingState"] == "ONBOARDED"
                    and i, 120, 0.2, "the package to onboard")
    return info


def _shown_text(browser: Browser, testid: str) -> str:
    """The text of the first shown element of ``testid``; "" when none (or a re-render took it away)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        shown = [e for e in browser.find_all(hook(testid)) if e.is_displayed()]
        return shown[0].text.strip() if shown else ""
    except StaleElementReferenceException:
        return ""


def _fresh_console(browser: Browser, served: Served) -> None:
    """The console's login page in a tab with nothing stored (no token, no sign-in in progress)."""
    browser.driver.get(f"{served.base}/console/")
    browser.driver.execute_script("sessionStorage.clear()")
    browser.driver.get(f"{served.base}/console/")
    browser.by_testid("oidc-login")


def _sign_in(browser: Browser, served: Served) -> None:
    _fresh_console(browser, served)
    browser.click("oidc-login")
    browser.wait(lambda d: _shown_text(browser, "viewer") or _shown_text(browser, "login-error"), 30,
                 "the console to come back from the IdP")
    assert not _shown_text(browser, "login-error"), _shown_text(browser, "login-error")


def _refusal(browser: Browser) -> str:
    browser.click("oidc-login")
    return browser.wait(lambda d: _shown_text(browser, "login-error"), 30, "the refusal")


def _session(browser: Browser, key: str) -> object:
    return json.loads(browser.driver.execute_script("return sessionStorage.getItem(arguments[0]) || 'null'", key))


def test_config_json_carries_the_discovered_endpoints_and_the_csp_allows_only_the_token_endpoint(
        served: Served, idp: Idp) -> None:
    resp = httpx.get(f"{served.base}/console/config.json", timeout=30)
    assert resp.status_code == 200, resp.text
    oidc = resp.json()["oidc"]
    assert oidc == {"issuer": idp.issuer, "clientId": CLIENT_ID, "scope": ADMIN_SCOPE,
                    "authorizationEndpoint": f"{idp.base}/authorize", "tokenEndpoint": f"{idp.base}/token",
                    "redirectUri": f"{served.base}/console/"}
    csp = httpx.get(f"{served.base}/console/", timeout=30).headers["content-security-policy"]
    connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
    assert connect == ["'self'", idp.base]
    assert "form-action 'self'" in csp


def test_oidc_login_with_pkce_signs_in_and_shows_the_data(served: Served, idp: Idp, package: dict,
                                                          browser: Browser) -> None:
    seen_auth, seen_token = len(idp.authorizations), len(idp.token_requests)
    _sign_in(browser, served)
    assert _shown_text(browser, "viewer").startswith(idp.subject)
    browser.by_testid("pop-pop1")
    browser.click("nav-catalogue")
    browser.by_testid("action-disable", timeout=30)  # an admin sees the package's action
    assert browser.find_all(f"{hook('package-' + package['id'])} {hook('action-disable')}")

    # the IdP saw one authorization request with an S256 challenge, and one token request whose
    # verifier hashes to it, for the console's client and redirect URI
    [auth] = idp.authorizations[seen_auth:]
    [token] = idp.token_requests[seen_token:]
    assert auth["response_type"] == "code" and auth["client_id"] == CLIENT_ID
    assert auth["code_challenge_method"] == "S256" and auth["scope"] == ADMIN_SCOPE
    assert auth["redirect_uri"] == token["redirect_uri"] == f"{served.base}/console/"
    assert len(auth["state"]) >= 22 and len(auth["nonce"]) >= 22
    assert 43 <= len(token["code_verifier"]) <= 128
    assert pkce_s256(token["code_verifier"]) == auth["code_challenge"] != token["code_verifier"]
    assert token["grant_type"] == "authorization_code" and token["client_id"] == CLIENT_ID

    # the code left the address bar, the verifier left the tab; the token sits in sessionStorage only
    assert urlsplit(browser.driver.current_url).query == ""
    assert _session(browser, "meao.console.oidc.pending") is None
    stored = _session(browser, "meao.console.token")
    assert isinstance(stored, dict) and stored["accessToken"] and "ops:admin" in stored["scope"]
    assert browser.driver.get_cookies() == []
    assert browser.errors() == [], "no CSP violation or script error on the way (the IdP's origin is allowed)"


def test_a_tampered_state_is_refused_and_no_code_is_exchanged(served: Served, idp: Idp,
                                                             browser: Browser) -> None:
    seen_token = len(idp.token_requests)
    _fresh_console(browser, served)
    idp.tamper_state = True
    try:
        message = _refusal(browser)
    finally:
        idp.tamper_state = False
    assert "does not carry the state this tab sent" in message and "Sign in" in message
    assert len(idp.token_requests) == seen_token, "a forged answer's code must never be exchanged"
    assert not _shown_text(browser, "viewer")
    assert urlsplit(browser.driver.current_url).query == ""
    assert _session(browser, "meao.console.token") is None


def test_a_refusal_of_the_identity_provider_says_what_happened(served: Served, idp: Idp,
                                                              browser: Browser) -> None:
    _fresh_console(browser, served)
    idp.deny = "access_denied"
    try:
        message = _refusal(browser)
    finally:
        idp.deny = None
    assert "did not sign you in: access_denied (the user declined the sign-in)" in message
    assert CLIENT_ID in message and _session(browser, "meao.console.token") is None


def test_a_token_with_read_scopes_only_shows_no_admin_button(served: Served, idp: Idp, package: dict,
                                                             browser: Browser) -> None:
    idp.granted_scope = READ_SCOPE  # this user may not have what the console asks for
    try:
        _sign_in(browser, served)
    finally:
        idp.granted_scope = None
    assert _shown_text(browser, "viewer").startswith(idp.subject)
    browser.click("nav-catalogue")
    browser.by_testid(f"package-{package['id']}", timeout=30)
    assert browser.find_all('[data-testid^="action-"]') == []
    assert "ops:admin" not in _session(browser, "meao.console.token")["scope"]
