"""MEC host selection on the real test bed's two availability zones (MEC 003 7.1.4.1, annex A.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.lcm.helpers import accepted_op, wait_op

pytestmark = [pytest.mark.openstack, pytest.mark.usefixtures("no_leftovers")]


def _host(hid: str) -> dict[str, Any]:
    return {"hostId": {"id": hid}}


@pytest.fixture()
def ops(lcm_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{lcm_stack.base}/ops/v1", timeout=60) as client:
        yield client


def _instantiate(lcm: httpx.Client, appd_id: str, hosts: list[str], **extra: Any) -> tuple[str, httpx.Response]:
    iid = lcm.post("/app_instances", json={"appDId": appd_id}).json()["id"]
    resp = lcm.post(f"/app_instances/{iid}/instantiate",
                    json={"selectedMECHostInfo": [_host(h) for h in hosts], **extra})
    return iid, resp


def _cleanup(lcm: httpx.Client, iids: list[str]) -> None:
    for iid in iids:
        inst = lcm.get(f"/app_instances/{iid}").json()
        if inst.get("instantiationState") == "INSTANTIATED":
            wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"})))
        lcm.delete(f"/app_instances/{iid}")


def _host_of(lcm: httpx.Client, ops: httpx.Client, op_id: str) -> str:
    return ops.get(f"/placements/{op_id}").json()["chosen"]


def test_app_lands_on_the_only_host_meeting_its_service_requirement(
        lcm: httpx.Client, ops: httpx.Client, vm_pkg: dict[str, Any], os_conn) -> None:
    iid, resp = _instantiate(lcm, vm_pkg["appDId"], ["pop3", "pop1"])
    try:
        op_id = accepted_op(lcm, resp)
        wait_op(lcm, op_id)
        decision = ops.get(f"/placements/{op_id}").json()
        assert decision["chosen"] == "pop1"
        pop3 = next(h for h in decision["hosts"] if h["hostId"] == "pop3")
        failed = [c for c in pop3["constraints"] if not c["passed"]]
        assert [c["name"] for c in failed] == ["services"] and "rnis" in failed[0]["detail"].lower()
        server = os_conn.compute.get_server(lcm.get(f"/app_instances/{iid}").json()["vimResources"]["computeResource"]["resourceId"])
        assert server.availability_zone == "az1", "the MEPM-V honoured the granted zone"
    finally:
        _cleanup(lcm, [iid])


@pytest.mark.parametrize("area,expected", [("cell-1", "pop1"), ("cell-3", "pop2")])
def test_app_lands_on_the_only_host_meeting_its_latency_to_the_area(
        lcm: httpx.Client, ops: httpx.Client, vm_pkg: dict[str, Any], os_conn,
        area: str, expected: str) -> None:
    iid, resp = _instantiate(lcm, vm_pkg["appDId"], ["pop1", "pop2"], servedArea=area)
    try:
        op_id = accepted_op(lcm, resp)
        wait_op(lcm, op_id)
        assert _host_of(lcm, ops, op_id) == expected
        other = next(h for h in ops.get(f"/placements/{op_id}").json()["hosts"] if h["hostId"] != expected)
        assert not next(c for c in other["constraints"] if c["name"] == "latency")["passed"]
        zone = {"pop1": "az1", "pop2": "az2"}[expected]
        server = os_conn.compute.get_server(lcm.get(f"/app_instances/{iid}").json()["vimResources"]["computeResource"]["resourceId"])
        assert server.availability_zone == zone
    finally:
        _cleanup(lcm, [iid])


def test_exhausting_one_host_moves_the_next_app_to_the_other(
        lcm: httpx.Client, ops: httpx.Client, vm_pkg: dict[str, Any]) -> None:
    """SmallFakeDriver: 7680 MB per compute host; the app needs 2048 MB, so pop1 takes three."""
    iids: list[str] = []
    try:
        for _ in range(3):
            iid, resp = _instantiate(lcm, vm_pkg["appDId"], ["pop1"])
            iids.append(iid)
            wait_op(lcm, accepted_op(lcm, resp))
        cap = ops.get("/mec_hosts/pop1/capacity", params={"refresh": "true"}).json()
        assert cap["freeRamMb"] < 2048 and cap["cached"] is False
        iid, resp = _instantiate(lcm, vm_pkg["appDId"], ["pop1", "pop2"])
        iids.append(iid)
        op_id = accepted_op(lcm, resp)
        wait_op(lcm, op_id)
        decision = ops.get(f"/placements/{op_id}").json()
        assert decision["chosen"] == "pop2"
        pop1 = next(h for h in decision["hosts"] if h["hostId"] == "pop1")
        assert not pop1["fits"] and pop1["constraints"][0]["name"] == "capacity"
        assert "RAM" in pop1["constraints"][0]["detail"]
    finally:
        _cleanup(lcm, iids)


def test_no_room_anywhere_explains_per_host(lcm: httpx.Client, vm_pkg: dict[str, Any]) -> None:
    huge = {"virtualCpu": {"numVirtualCpu": 64}, "virtualMemory": {"virtualMemSize": 512000}}
    iid, resp = _instantiate(lcm, vm_pkg["appDId"], ["pop1", "pop2", "pop3"], virtualComputeDescriptor=huge)
    try:
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        lines = problem["detail"].splitlines()
        assert len(lines) == 3 and all(line.startswith(f"host {h}:") for line, h in
                                       zip(sorted(lines), ["pop1", "pop2", "pop3"], strict=True))
        assert {h["hostId"] for h in problem["hosts"]} == {"pop1", "pop2", "pop3"}
        assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        assert not lcm.get("/app_lcm_op_occs", params={"filter": f"(eq,appInstanceId,{iid})"}).json()
    finally:
        _cleanup(lcm, [iid])
