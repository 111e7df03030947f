"""The package size limit (MEAO_MAX_PACKAGE_BYTES) on uploads: 413, and nothing half written.

A `meao serve` of its own, with a limit smaller than the example package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import sha256
from tests.conftest import REDIS, Stack, SubscriberServer, launch_stack, require_service, wait_for

LIMITS_REDIS_DB = 2
LIMIT = 2048


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp("limits")
    stack = launch_stack(base, f"sqlite:///{base / 'meao.db'}", LIMITS_REDIS_DB,
                         {"MEAO_MAX_PACKAGE_BYTES": str(LIMIT)})
    try:
        yield stack
    finally:
        stack.stop()


def test_an_upload_over_the_limit_is_413_and_the_package_stays_created(small: Stack, tmp_path: Path,
                                                                      subscriber: SubscriberServer) -> None:
    """Clause 7.3.7.3.3 (PUT …/package_content): the upload is refused as it streams, past the limit."""
    from descriptors.examples.build import build_package

    package = build_package("mec-minimal", tmp_path)
    assert package.stat().st_size > LIMIT
    with httpx.Client(base_url=f"{small.base}/app_pkgm/v1", timeout=30) as c:
        made = c.post("/app_packages", json={"appPkgName": "big", "appPkgVersion": "1",
                                              "appPkgPath": f"{subscriber.url}/nowhere.csar",  # answers 404
                                              "checksum": {"algorithm": "SHA-256", "hash": sha256(package)}})
        assert made.status_code == 201, made.text
        pkg_id = made.json()["id"]
        wait_for(lambda: "onboardingFailureDetails" in c.get(f"/app_packages/{pkg_id}").json(), 60, 0.1,
                 "the fetch to fail, so the package takes an upload")
        put = c.put(f"/app_packages/{pkg_id}/package_content", content=package.read_bytes(),
                    headers={"Content-Type": "application/zip"})
        assert put.status_code == 413, put.text
        assert put.headers["Content-Type"] == "application/problem+json"
        assert "MEAO_MAX_PACKAGE_BYTES" in put.json()["detail"] or str(LIMIT) in put.json()["detail"]
        info = c.get(f"/app_packages/{pkg_id}").json()
        assert info["onboardingState"] == "CREATED", info
        assert not list((small.data_dir / "packages" / pkg_id).rglob("*.zip"))
        assert c.delete(f"/app_packages/{pkg_id}").status_code == 204
