"""HTTP-level conformance of every API, against a live `meao serve` (uvicorn), on SQLite and PostgreSQL.

Header names are case-insensitive (RFC 9110 clause 5.1), but OSS clients and test tools written against
MEC 010-2 look up `Content-Type`, `Location` and `ETag` literally, so meao sends them canonically cased.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.helpers import onboard, remove
from tests.conftest import Stack


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from descriptors.examples.build import build_package

    return build_package("mec-minimal", tmp_path_factory.mktemp("examples"))


def _raw_names(resp: httpx.Response) -> list[bytes]:
    return [name for name, _ in resp.headers.raw]


def test_response_header_names_are_canonically_cased(stack: Stack, minimal: Path) -> None:
    info = onboard(stack, minimal)
    try:
        with httpx.Client(base_url=stack.base, timeout=30) as c:
            made = c.post("/app_lcm/v1/app_instances", json={"appDId": info["appDId"], "appInstanceName": "casing"})
            assert made.status_code == 201, made.text
            c.delete(made.headers["Location"])
            names = _raw_names(made)
            assert {b"Content-Type", b"Location", b"Date"} <= set(names), names
            assert b"server" not in {n.lower() for n in names}  # nothing advertises what runs
            assert not [n for n in names if n != n.title() and n not in (b"ETag", b"WWW-Authenticate")], names
            problem = c.get("/app_lcm/v1/app_instances/no-such-instance")
            assert problem.status_code == 404 and b"Content-Type" in _raw_names(problem)
    finally:
        remove(stack, info["id"])


@pytest.mark.parametrize(("accept", "status"), [
    ("application/xml", 406), ("application/json;q=0", 406), ("text/html, application/xml;q=0.9", 406),
    ("application/json; charset=utf-8", 200), ("text/html, application/*;q=0.1", 200), ("*/*", 200)])
def test_an_accept_that_allows_no_json_is_406_on_every_json_resource(stack: Stack, accept: str, status: int) -> None:
    """Tables 7.3.1.3.2-2, 7.4.1.3.2-2, …: 406 "the server cannot provide any of the content formats
    supported by the client"; Accept is parsed (parameters, q-values, wildcards)."""
    with httpx.Client(base_url=stack.base, timeout=30) as c:
        for path in ("/app_lcm/v1/app_instances", "/app_pkgm/v1/app_packages", "/app_lcm/v1/subscriptions",
                     "/app_lcm/v1/app_lcm_op_occs"):
            resp = c.get(path, headers={"Accept": accept})
            assert resp.status_code == status, (path, resp.text)
            if status == 406:
                assert resp.headers["Content-Type"] == "application/problem+json"
                assert "Accept header" in resp.json()["detail"]
