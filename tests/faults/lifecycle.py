"""Steps of the chaos cases: instances, operations and the three checks every case ends with."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_for
from tests.faults.stack import ChaosStack
from tests.lcm.helpers import accepted_op, wait_op

HOST1 = [{"hostName": "Edge PoP 1", "hostId": {"id": "pop1"}}]
#: how long an operation may take to be final or FAILED_TEMP once its worker is gone: stale limit (5 s),
#: reaper interval, and a worker start, with room for a loaded 2-core machine
SETTLE_S = 60


def new_instance(lcm: httpx.Client, pkg: dict[str, Any]) -> str:
    resp = lcm.post("/app_instances", json={"appDId": pkg["appDId"]})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def instantiate(lcm: httpx.Client, iid: str) -> str:
    return accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))


def terminate(lcm: httpx.Client, iid: str) -> str:
    return accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"}))


def operate(lcm: httpx.Client, iid: str, to: str) -> str:
    body: dict[str, Any] = {"changeStateTo": to}
    if to == "STOPPED":
        body["stopType"] = "FORCEFUL"
    return accepted_op(lcm, lcm.post(f"/app_instances/{iid}/operate", json=body))


def settle(lcm: httpx.Client, op_id: str, states: tuple[str, ...] = ("COMPLETED", "FAILED", "FAILED_TEMP"),
           timeout: float = SETTLE_S) -> dict[str, Any]:
    """Check 1: the operation is final or FAILED_TEMP within the bound."""
    return wait_op(lcm, op_id, states, timeout=timeout)


def recover(lcm: httpx.Client, op_id: str, how: str = "retry") -> dict[str, Any]:
    """Check 2: from FAILED_TEMP, retry (→ COMPLETED) or fail (→ FAILED) succeeds."""
    occ = lcm.get(f"/app_lcm_op_occs/{op_id}").json()
    if occ["operationState"] != "FAILED_TEMP":
        return occ
    if how == "retry":
        resp = lcm.post(f"/app_lcm_op_occs/{op_id}/retry")
        assert resp.status_code == 202, resp.text
        return settle(lcm, op_id, ("COMPLETED",))
    resp = lcm.post(f"/app_lcm_op_occs/{op_id}/fail")
    assert resp.status_code == 200, resp.text
    assert resp.json()["operationState"] == "FAILED", resp.text
    return resp.json()


def clean_up(lcm: httpx.Client, iid: str) -> None:
    """Terminate (when instantiated) and delete the instance, whatever state a case left it in."""
    inst = lcm.get(f"/app_instances/{iid}")
    if inst.status_code == 404:
        return
    op_id = inst.json().get("_links", {}).get("self")  # noqa: F841 — read for the log on failure
    ops = [o for o in lcm.get("/app_lcm_op_occs").json() if o["appInstanceId"] == iid
           and o["operationState"] in ("STARTING", "PROCESSING", "FAILED_TEMP")]
    for occ in ops:
        if occ["operationState"] != "FAILED_TEMP":
            occ = settle(lcm, occ["id"])
        if occ["operationState"] == "FAILED_TEMP":
            recover(lcm, occ["id"], "fail")
    if lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "INSTANTIATED":
        settle(lcm, terminate(lcm, iid), ("COMPLETED",))
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def wait_step(stack: ChaosStack, point: str) -> int:
    """The pid of the process holding at ``point``."""
    return stack.faults.arrived(point)


def wait_state(lcm: httpx.Client, op_id: str, state: str, timeout: float = 30) -> None:
    wait_for(lambda: lcm.get(f"/app_lcm_op_occs/{op_id}").json()["operationState"] == state, timeout, 0.05,
             f"operation {op_id} to be {state}")
