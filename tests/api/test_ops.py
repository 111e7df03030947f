"""The operations API (openapi/ops.yaml): the MEC host inventory, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Stack

HOST = {"id": "edge-a", "name": "Edge A", "cloud": "nowhere", "availabilityZone": "az1",
        "location": {"countryCode": "FI", "latitude": 60.1, "longitude": 24.9},
        "servedAreas": ["cell-1"], "latencyMs": {"cell-1": 4.5},
        "services": [{"serName": "RNIS", "version": "2.2.1"}], "features": [{"featureName": "UserApps"}],
        "networks": {"default": "edge-net"}}


@pytest.fixture()
def ops(stack: Stack):
    with httpx.Client(base_url=f"{stack.base}/ops/v1", timeout=30) as client:
        yield client


def _problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


def test_mec_host_crud(ops: httpx.Client) -> None:
    resp = ops.post("/mec_hosts", json=HOST)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"].endswith("/ops/v1/mec_hosts/edge-a")
    assert body["queue"] == "mecpm.edge-a" and body["latencyMs"] == {"cell-1": 4.5}
    try:
        _problem(ops.post("/mec_hosts", json=HOST), 409)
        assert [h["id"] for h in ops.get("/mec_hosts").json()].count("edge-a") == 1
        changed = ops.put("/mec_hosts/edge-a", json={**HOST, "servedAreas": ["cell-1", "cell-9"]})
        assert changed.status_code == 200 and changed.json()["servedAreas"] == ["cell-1", "cell-9"]
        assert ops.get("/mec_hosts/edge-a").json()["servedAreas"] == ["cell-1", "cell-9"]
        _problem(ops.put("/mec_hosts/edge-a", json={**HOST, "id": "other"}), 400)
    finally:
        assert ops.delete("/mec_hosts/edge-a").status_code == 204
    _problem(ops.get("/mec_hosts/edge-a"), 404)
    created = ops.put("/mec_hosts/edge-b", json={**HOST, "id": "edge-b"})
    assert created.status_code == 201 and created.headers["Location"].endswith("/edge-b")
    assert ops.delete("/mec_hosts/edge-b").status_code == 204


@pytest.mark.parametrize("bad,words", [
    ({"id": "x"}, "cloud"),
    ({"id": "Bad Id!", "cloud": "c"}, "id"),
    ({"id": "x", "cloud": "c", "latencyMs": {"cell": -1}}, "latencyMs"),
    ({"id": "x", "cloud": "c", "location": {"countryCode": "finland"}}, "countryCode"),
    ({"id": "x", "cloud": "c", "colour": "red"}, "colour"),
])
def test_invalid_mec_host_is_400_problem(ops: httpx.Client, bad: dict, words: str) -> None:
    problem = _problem(ops.post("/mec_hosts", json=bad), 400)
    assert words in problem["detail"]
    _problem(ops.get("/mec_hosts/x"), 404)


def test_capacity_of_a_host_whose_cloud_is_not_in_clouds_yaml_is_409(ops: httpx.Client) -> None:
    assert ops.post("/mec_hosts", json={**HOST, "id": "edge-c"}).status_code == 201
    try:
        problem = _problem(ops.get("/mec_hosts/edge-c/capacity"), 409)  # the host's fault, not a server error
        assert "nowhere" in problem["detail"] and "clouds.yaml" in problem["detail"]
    finally:
        ops.delete("/mec_hosts/edge-c")


def test_placement_of_unknown_occurrence_is_404(ops: httpx.Client) -> None:
    _problem(ops.get("/placements/nope"), 404)


def test_grant_for_unknown_occurrence_is_404(stack: Stack) -> None:
    body = {"appInstanceId": "i", "appLcmOpOccId": "o", "appDId": "d", "operation": "INSTANTIATE",
            "addResources": [{"id": "c", "type": "COMPUTE", "resourceTemplateId": ["vdu"]}],
            "_links": {"appLcmOpOcc": {"href": "http://x/o"}, "appInstance": {"href": "http://x/i"}}}
    resp = httpx.post(f"{stack.base}/granting/v1/grants", json=body)
    assert _problem(resp, 404)["detail"].startswith("application LCM operation occurrence o")
    _problem(httpx.post(f"{stack.base}/granting/v1/grants", json={**body, "operation": "DANCE"}), 400)
    _problem(httpx.get(f"{stack.base}/granting/v1/grants/nope"), 404)
