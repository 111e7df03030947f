"""A meao with access control on (MEAO_AUTH=local) for the console's browser tests, its clients, and the
steps every test takes in the page (sign in, open a section, confirm an action)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from tests.api.helpers import sha256
from tests.cli.helpers import run_meao
from tests.conftest import Stack, wait_for
from tests.console.browser import Browser, hook

ADMIN_SCOPES = ("ops:read", "ops:admin", "app_lcm:read", "app_lcm:write", "app_pkgm:read", "app_pkgm:write")
READ_SCOPES = ("ops:read", "app_lcm:read", "app_pkgm:read")
# both payloads would set window.__xss if the page ever parsed them as HTML (the CSP would block them too,
# and log a violation): the tests look for the elements, the flag and the log
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
CONSOLE_ENV = {"MEAO_AUTH": "local", "MEAO_AUTH_TOKEN_BURST": "100000", "MEAO_AUTH_CLIENT_CACHE_S": "1",
               "MEAO_CONSOLE_REFRESH_S": "1"}


@dataclass
class ConsoleStack:
    """A running meao (MEAO_AUTH=local) and the clients the tests sign in with."""

    stack: Stack
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.stack.base

    @property
    def url(self) -> str:
        return f"{self.stack.base}/console/"

    def register(self, name: str, *scopes: str) -> tuple[str, str]:
        """`meao auth client create NAME --operator --scope …` on the stack's database; (id, secret)."""
        result = run_meao("auth", "client", "create", name, "-f", "json", "--operator",
                          *[f"--scope={s}" for s in scopes], env=self.stack.env)
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        self.clients[name] = (doc["client_id"], doc["client_secret"])
        return self.clients[name]

    def api(self, name: str) -> httpx.Client:
        """An HTTP client on the stack with a token of client ``name``."""
        client_id, secret = self.clients[name]
        resp = httpx.post(f"{self.base}/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret), timeout=30)
        assert resp.status_code == 200, resp.text
        return httpx.Client(base_url=self.base, timeout=60,
                            headers={"Authorization": f"Bearer {resp.json()['access_token']}"})

    def onboard(self, api: httpx.Client, src: Path, name: str | None = None) -> dict[str, Any]:
        """Onboard the package file ``src`` (a file: URI below MEAO_PKG_FILE_ROOT) and wait for ONBOARDED."""
        target = self.stack.pkg_root / f"{name or src.stem}-{os.urandom(4).hex()}{src.suffix}"
        shutil.copyfile(src, target)
        body = {"appPkgName": name or src.stem, "appPkgVersion": "1.0",
                "checksum": {"algorithm": "SHA-256", "hash": sha256(target)}, "appPkgPath": target.as_uri()}
        resp = api.post("/app_pkgm/v1/app_packages", json=body)
        assert resp.status_code == 201, resp.text
        pkg_id = resp.json()["id"]

        def onboarded() -> dict[str, Any] | None:
            info = api.get(f"/app_pkgm/v1/app_packages/{pkg_id}").json()
            assert "onboardingFailureDetails" not in info, info
            return info if info["onboardingState"] == "ONBOARDED" else None

        return wait_for(onboarded, 90, 0.2, f"package {pkg_id} to be onboarded")


def hostile_package(out_dir: Path) -> Path:
    """The mec-json-appd example whose appName (AppD and manifest alike) is markup that must stay text."""
    from descriptors.examples import build

    spec = build.PACKAGES["mec-json-appd"]
    hostile = replace(spec, metadata={**spec.metadata, "vnf_product_name": HOSTILE,
                                      "vnfd_id": "c0750e1e-0000-4000-8000-00000000bad1"})

    def rename(tree: Path) -> None:
        appd = tree / "Definitions" / "appd.json"
        doc = json.loads(appd.read_text())
        doc.update(appName=HOSTILE, appDId=hostile.metadata["vnfd_id"])
        appd.write_text(json.dumps(doc, indent=2))

    build.PACKAGES["mec-json-appd"] = hostile
    try:
        return build.build_package("mec-json-appd", out_dir, mutate=rename)
    finally:
        build.PACKAGES["mec-json-appd"] = spec


# ---------------------------------------------------------------------------------------- in the page
def sign_in(browser: Browser, console: ConsoleStack, client: str) -> None:
    """Open the console signed out, sign in as ``client`` and wait for the first snapshot."""
    driver = browser.driver
    driver.get(console.url)
    driver.execute_script("sessionStorage.clear()")
    driver.get(console.url)
    client_id, secret = console.clients[client]
    form = browser.by_testid("login-form")
    browser.find(hook("login-client-id"), form).send_keys(client_id)
    browser.find(hook("login-client-secret"), form).send_keys(secret)
    browser.find(hook("login-submit"), form).click()
    browser.wait_text("viewer", lambda text: text.startswith(client_id), what=f"signed in as {client_id}")


def open_section(browser: Browser, name: str) -> Any:
    browser.click(f"nav-{name}")
    return browser.by_testid(f"view-{name}")


def confirm(browser: Browser, ok: bool = True) -> str:
    """The confirmation's text; then press Continue (or Cancel) and wait for the dialog to close."""
    text = browser.text_of("confirm-text", within="confirm-dialog")
    browser.click("confirm-ok" if ok else "confirm-cancel", within="confirm-dialog")
    browser.gone("confirm-dialog")
    return text


def shown_steps(browser: Browser) -> dict[str, str]:
    """The open operation's step timeline as the page shows it: step name → state."""
    return browser.driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll("
        "'[data-testid=\"op-detail\"] li[data-testid^=\"step-\"]')].map((el) => [el.dataset.testid.slice(5), "
        "el.dataset.state]))")


def last_toast(browser: Browser) -> Any:
    return browser.wait(lambda d: (browser.find_all(hook("toast")) or [None])[-1], 20, "a toast")


def toast_of(browser: Browser, after: str | None = None) -> tuple[str, str]:
    """(kind, text) of the newest toast (other than one reading ``after``), read in one step: a toast
    closes by itself after a few seconds, so no element is held between waiting and reading."""
    def newest(driver: Any) -> list[str] | None:
        found = driver.execute_script(
            "const all = document.querySelectorAll('[data-testid=\"toast\"]');"
            "const t = all[all.length - 1]; return t ? [t.dataset.kind, t.innerText] : null;")
        return found if found and found[1] != after else None

    kind, text = browser.wait(newest, 30, "a toast")
    return kind, text


def csp_violations(browser: Browser) -> list[str]:
    return [m for m in browser.errors() if "Content Security Policy" in m or "Content-Security-Policy" in m]


def js_errors(browser: Browser) -> list[str]:
    """Uncaught exceptions and CSP violations (a refused API call's status line is not one)."""
    return [m for m in browser.errors()
            if "Uncaught" in m or "Content Security Policy" in m or "SyntaxError" in m or "TypeError" in m]
