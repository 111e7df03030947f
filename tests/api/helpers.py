"""HTTP helpers for driving a live meao through Mm1."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine

from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, Subscription
from tests.conftest import Stack, free_port, meao_free_environ, wait_for

TERMINAL = ("ONBOARDED",)
T0 = datetime(2026, 12, 1, tzinfo=UTC)  # the rows of the paging tests are created after it


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create_from_file(stack: Stack, src: Path, *, name: str | None = None,
                     checksum: str | None = None, **extra: Any) -> httpx.Response:
    """POST /app_packages with a file: URI below the stack's MEAO_PKG_FILE_ROOT."""
    target = stack.pkg_root / f"{name or src.stem}-{src.stat().st_mtime_ns}{src.suffix}"
    shutil.copyfile(src, target)
    body = {"appPkgName": name or src.stem, "appPkgVersion": "1.0",
            "checksum": {"algorithm": "SHA-256", "hash": checksum or sha256(target)},
            "appPkgPath": target.as_uri(), **extra}
    with stack.client() as c:
        return c.post("/app_packages", json=body)


def wait_outcome(stack: Stack, pkg_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll until the package is ONBOARDED or back in CREATED with onboardingFailureDetails."""
    def done() -> dict[str, Any] | None:
        with stack.client() as c:
            info = c.get(f"/app_packages/{pkg_id}").json()
        if info["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in info:
            return info
        return None

    return wait_for(done, timeout, 0.1, f"package {pkg_id} to finish onboarding")


def onboard(stack: Stack, src: Path, **kw: Any) -> dict[str, Any]:
    resp = create_from_file(stack, src, **kw)
    assert resp.status_code == 201, resp.text
    info = wait_outcome(stack, resp.json()["id"])
    assert info["onboardingState"] == "ONBOARDED", info.get("onboardingFailureDetails")
    return info


def remove(stack: Stack, pkg_id: str) -> None:
    """Disable (if needed) and delete a package, so tests can reuse appDIds."""
    with stack.client() as c:
        info = c.get(f"/app_packages/{pkg_id}").json()
        if info.get("operationalState") == "ENABLED" and info["onboardingState"] == "ONBOARDED":
            assert c.patch(f"/app_packages/{pkg_id}", json={"operationalState": "DISABLED"}).status_code == 200
        resp = c.delete(f"/app_packages/{pkg_id}")
        assert resp.status_code == 204, resp.text


def outbox_payloads(stack: Stack, subscription_id: str) -> list[dict[str, Any]]:
    """The notifications the outbox holds for a subscription (pending, delivered or failed): written in the
    same transaction as the change they report, so reading them needs no wait for delivery."""
    from sqlalchemy import create_engine, select

    from meao.db.models import OutboxMessage

    engine = create_engine(stack.env["MEAO_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(OutboxMessage.payload)
                                     .where(OutboxMessage.subscription_id == subscription_id)))
    finally:
        engine.dispose()


def _at(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def instance_row(n: float, name: str = "app", id_: str | None = None) -> dict[str, Any]:
    """An app_instance row created ``n`` seconds after T0, with appName ``name``."""
    return {"id": id_ or f"inst-{n:06.1f}", "app_pkg_id": "pkg", "appd_id": "appd", "app_provider": "p",
            "app_name": name, "app_soft_version": "1", "appd_version": "1", "created_at": _at(n)}


# per paged list: its model, and a row of it created n seconds after T0 (id from n)
LIST_ROWS = {
    "app_instances": (AppInstance, instance_row),
    "app_packages": (AppPackage, lambda n: {"id": f"pkg-{n:06.1f}", "app_pkg_name": "p", "app_pkg_version": "1",
                                            "checksum_algorithm": "SHA-256", "checksum_hash": "0" * 64,
                                            "created_at": _at(n)}),
    "app_lcm_op_occs": (AppLcmOpOcc, lambda n: {"id": f"op-{n:06.1f}", "app_instance_id": "inst",
                                               "lcm_operation": "INSTANTIATE", "start_time": _at(n)}),
    "pkgm_subscriptions": (Subscription, lambda n: {"id": f"sub-{n:06.1f}", "api": "app_pkgm",
                                                    "subscription_type": "AppPackageOnBoardingSubscription",
                                                    "callback_uri": "http://127.0.0.1:9/cb", "created_at": _at(n)}),
    "lcm_subscriptions": (Subscription, lambda n: {"id": f"sub-{n:06.1f}", "api": "app_lcm",
                                                   "subscription_type": "AppIdentifierCreationSubscription",
                                                   "callback_uri": "http://127.0.0.1:9/cb", "created_at": _at(n)}),
}


def seed_rows(engine: Engine, list_name: str, rows: list[dict[str, Any]], *, empty_first: bool = True) -> None:
    """Write ``rows`` of one paged list straight into the database (after emptying its table)."""
    model = LIST_ROWS[list_name][0]
    with engine.begin() as conn:
        if empty_first:
            conn.execute(delete(model))
        if rows:
            conn.execute(insert(model), rows)


def onboard_on_own_serve(tmp_path: Path, settings: dict[str, str], packages: dict[str, Path]) -> dict[str, dict]:
    """Start a `meao serve` of its own (embedded worker, no auth) with ``settings``, create a package from
    each file of ``packages`` (by ``file:`` URI, so they must lie under MEAO_PKG_FILE_ROOT), and return
    each label's AppPkgInfo once it is onboarded or has failed."""
    env = meao_free_environ()
    env.update({"MEAO_DATA_DIR": str(tmp_path / "var"), "MEAO_AUTH": "none", **settings})
    port = free_port()
    base = f"http://127.0.0.1:{port}/app_pkgm/v1"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "meao.cli", "serve", "--port", str(port)], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def up() -> bool:
                assert proc.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"{base}/app_packages", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, 60, 0.2, "meao serve")
            outcomes = {}
            for label, path in packages.items():
                body = {"appPkgName": label, "appPkgVersion": "1", "appPkgPath": path.resolve().as_uri(),
                        "checksum": {"algorithm": "SHA-256", "hash": sha256(path)}}
                pkg = httpx.post(f"{base}/app_packages", json=body).json()

                def done(pid: str = pkg["id"]) -> dict | None:
                    info = httpx.get(f"{base}/app_packages/{pid}").json()
                    return info if info["onboardingState"] == "ONBOARDED" or "onboardingFailureDetails" in info \
                        else None

                outcomes[label] = wait_for(done, 30, what=f"{label} onboarding")
            return outcomes
        finally:
            proc.terminate()
            proc.wait(15)
