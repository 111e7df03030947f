"""HTTP helpers for driving a live meao through Mm1."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Stack, wait_for

TERMINAL = ("ONBOARDED",)


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
