"""Mm1 application lifecycle (MEC 010-2 clause 7.4) end to end: live API, real Redis, a real worker
process and the real OpenStack test bed. OpenStack is checked for leftovers after every test."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Stack, SubscriberServer, wait_for
from tests.faults.stack import FaultDir
from tests.lcm.helpers import accepted_op, db_rows, wait_op

pytestmark = [pytest.mark.openstack, pytest.mark.usefixtures("no_leftovers")]
HOST1 = [{"hostName": "Edge PoP 1", "hostId": {"id": "pop1"}}]


def _subscribe_all(client: httpx.Client, subscriber: SubscriberServer, tag: str) -> list[str]:
    ids = []
    for kind in ("AppInstanceStateChangeSubscription", "AppLcmOpOccStateChangeSubscription",
                 "AppIdentifierCreationSubscription", "AppIdentifierDeletionSubscription"):
        resp = client.post("/subscriptions", json={"subscriptionType": kind,
                                                   "callbackUri": f"{subscriber.url}/{tag}/{kind}"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["subscriptionType"] == kind
        ids.append(resp.json()["id"])
    return ids


def test_full_lifecycle_of_vm_app(lcm_stack: Stack, lcm: httpx.Client, vm_pkg: dict[str, Any],
                                  subscriber: SubscriberServer, os_conn) -> None:
    subs = _subscribe_all(lcm, subscriber, "life")
    created = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"], "appInstanceName": "life",
                                               "appInstanceDescription": "full lifecycle"})
    assert created.status_code == 201, created.text
    inst = created.json()
    iid = inst["id"]
    assert created.headers["Location"].endswith(iid)
    assert inst["instantiationState"] == "NOT_INSTANTIATED" and "instantiate" in inst["_links"]
    with lcm_stack.client() as pkgm:
        assert pkgm.get(f"/app_packages/{vm_pkg['id']}").json()["usageState"] == "IN_USE"

    op1 = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate",
                            json={"selectedMECHostInfo": HOST1, "servedArea": "cell-1"}))
    occ = wait_op(lcm, op1)
    assert occ["lcmOperation"] == "INSTANTIATE" and occ["operationParams"]["selectedMECHostInfo"] == HOST1
    inst = lcm.get(f"/app_instances/{iid}").json()
    assert inst["instantiationState"] == "INSTANTIATED"
    assert inst["instantiatedAppState"]["operationalState"] == "STARTED"
    assert inst["instantiatedAppState"]["appInstLocation"]["countryCode"] == "FI"
    assert inst["vnfInstanceId"] == iid  # meao is the VNFM: one VNF instance per app instance
    server = os_conn.compute.get_server(inst["vimResources"]["computeResource"]["resourceId"])
    assert server.status == "ACTIVE" and server.metadata["meao_app_instance_id"] == iid
    assert server.availability_zone == "az1"
    ports = [p for p in os_conn.network.ports() if p.name.startswith(f"meao-{iid}")]
    assert len(ports) == 2 and all(p.device_id == server.id for p in ports)

    op2 = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/operate",
                            json={"changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 5}))
    wait_op(lcm, op2)
    assert lcm.get(f"/app_instances/{iid}").json()["instantiatedAppState"]["operationalState"] == "STOPPED"
    assert os_conn.compute.get_server(server.id).status == "SHUTOFF"
    op3 = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/operate", json={"changeStateTo": "STARTED"}))
    wait_op(lcm, op3)
    assert os_conn.compute.get_server(server.id).status == "ACTIVE"

    conflict = lcm.delete(f"/app_instances/{iid}")
    assert conflict.status_code == 409 and conflict.headers["content-type"].startswith("application/problem+json")
    op4 = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate",
                            json={"terminationType": "GRACEFUL", "gracefulTerminationTimeout": 5}))
    wait_op(lcm, op4)
    inst = lcm.get(f"/app_instances/{iid}").json()
    assert inst["instantiationState"] == "NOT_INSTANTIATED" and "instantiatedAppState" not in inst
    assert os_conn.compute.find_server(server.id, ignore_missing=True) is None
    assert not [p for p in os_conn.network.ports() if p.name.startswith(f"meao-{iid}")]
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204
    assert lcm.get(f"/app_instances/{iid}").status_code == 404
    with lcm_stack.client() as pkgm:
        assert pkgm.get(f"/app_packages/{vm_pkg['id']}").json()["usageState"] == "NOT_IN_USE"

    ops = lcm.get("/app_lcm_op_occs", params={"filter": f"(eq,appInstanceId,{iid})"}).json()
    assert [o["lcmOperation"] for o in ops] == ["INSTANTIATE", "OPERATE", "OPERATE", "TERMINATE"]
    assert all(o["operationState"] == "COMPLETED" and "operationParams" not in o for o in ops)

    def notes(kind: str) -> list[dict]:
        """In the order the changes happened: notifications are POSTed in parallel, so they may arrive in
        another (a subscriber orders them by timeStamp)."""
        got = [n for n in subscriber.notifications(f"/life/{kind}") if n.get("appInstanceId") == iid]
        return sorted(got, key=lambda n: (n["timeStamp"]["seconds"], n["timeStamp"]["nanoSeconds"]))

    wait_for(lambda: len(notes("AppIdentifierDeletionSubscription")) == 1, 20, what="identifier deletion")
    wait_for(lambda: [n["appInstanceState"] for n in notes("AppInstanceStateChangeSubscription")]
             == ["STARTED", "STOPPED", "STARTED", "NOT_INSTANTIATED"], 20, what="instance state notifications")
    op_notes = notes("AppLcmOpOccStateChangeSubscription")
    for op_id in (op1, op2, op3, op4):
        states = [n["operationState"] for n in op_notes if n["appLcmOpOccId"] == op_id]
        assert states == ["STARTING", "PROCESSING", "COMPLETED"], (op_id, states)
    assert len(notes("AppIdentifierCreationSubscription")) == 1
    for sid in subs:
        assert lcm.delete(f"/subscriptions/{sid}").status_code == 204


def test_state_conflicts_are_409(lcm: httpx.Client, vm_pkg: dict[str, Any]) -> None:
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    try:
        for path, body in (("terminate", {"terminationType": "FORCEFUL"}), ("operate", {"changeStateTo": "STOPPED"})):
            resp = lcm.post(f"/app_instances/{iid}/{path}", json=body)
            assert resp.status_code == 409 and "NOT_INSTANTIATED" in resp.json()["detail"]
        # an unknown host name is only an ignored preference on Mm1 (tests/api/test_app_lcm.py); a malformed
        # selectedMECHostInfo is still a 400
        bad = lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": []})
        assert bad.status_code == 400, bad.text
        assert lcm.post("/app_instances", json={"appDId": "no-such-appd"}).status_code == 404
    finally:
        assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def test_two_concurrent_operations_on_one_instance_one_gets_409(lcm: httpx.Client, vm_pkg: dict[str, Any]) -> None:
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    results: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def fire() -> None:
        with httpx.Client(base_url=str(lcm.base_url), timeout=60) as c:
            barrier.wait()
            results.append(c.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [202, 409], [r.text for r in results]
    op_id = next(r for r in results if r.status_code == 202).headers["Location"].rsplit("/", 1)[-1]
    wait_op(lcm, op_id)
    busy = lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"})
    wait_op(lcm, accepted_op(lcm, busy))
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def _set_host_network(stack: Stack, host: str, network: str) -> None:
    import yaml

    path: Path = stack.hosts_file  # type: ignore[attr-defined]
    doc = yaml.safe_load(path.read_text())
    for h in doc["mec_hosts"]:
        if h["id"] == host:
            h["networks"] = {**h["networks"], "default": network}
    path.write_text(yaml.safe_dump(doc))
    from meao.lcm.hosts import validate_host

    h = validate_host(next(x for x in doc["mec_hosts"] if x["id"] == host))
    _db_exec(stack, "update mec_host set networks = :n where id = :i", n=__import__("json").dumps(h["networks"]),
             i=host)


def _db_exec(stack: Stack, sql: str, **params: Any) -> None:
    eng = create_engine(stack.env["MEAO_DATABASE_URL"])
    with eng.begin() as conn:
        conn.execute(text(sql), params)
    eng.dispose()


def test_openstack_error_is_failed_temp_with_problem_and_retry_completes(
        lcm_stack: Stack, lcm: httpx.Client, vm_pkg: dict[str, Any], networks: dict[str, str]) -> None:
    _set_host_network(lcm_stack, "pop1", "no-such-network")
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    try:
        op_id = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))
        occ = wait_op(lcm, op_id, ("FAILED_TEMP",))
        assert "no-such-network" in occ["error"]["detail"] and occ["error"]["status"] >= 400
        assert lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"}).status_code == 409
        _set_host_network(lcm_stack, "pop1", networks["mgmt"])
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/retry").status_code == 202
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/retry").status_code == 409
        wait_op(lcm, op_id)
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/fail").status_code == 409
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"})))
    finally:
        _set_host_network(lcm_stack, "pop1", networks["mgmt"])
        lcm.delete(f"/app_instances/{iid}")


def _kill_worker_during(stack: Stack, lcm: httpx.Client, iid: str, step: str) -> str:
    op_id = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))
    def running() -> bool:  # a stage of concurrent steps is named "a+b"
        current = db_rows(stack, "select current_step from app_lcm_op_occ where id = :i", i=op_id)[0][0]
        return step in (current or "").split("+")

    wait_for(running, 60, 0.05, f"step {step}")
    os.kill(stack.procs["worker"].pid, signal.SIGKILL)
    stack.procs["worker"].wait(10)
    stack.start_worker()  # a new worker: its reaper sees the dead one's heartbeat stop
    occ = wait_op(lcm, op_id, ("FAILED_TEMP",), timeout=60)
    assert "stopped responding" in occ["error"]["detail"], occ
    return op_id


def test_worker_killed_mid_instantiate_then_retry_completes(
        lcm_stack: Stack, lcm: httpx.Client, vm_pkg: dict[str, Any], os_conn) -> None:
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    try:
        op_id = _kill_worker_during(lcm_stack, lcm, iid, "wait_active")
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/retry").status_code == 202
        wait_op(lcm, op_id)
        servers = [s for s in os_conn.compute.servers() if (s.metadata or {}).get("meao_app_instance_id") == iid]
        assert len(servers) == 1 and servers[0].status == "ACTIVE", "retry reuses the server, never boots twice"
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate", json={"terminationType": "FORCEFUL"})))
    finally:
        lcm.delete(f"/app_instances/{iid}")


def test_worker_killed_mid_instantiate_then_fail_rolls_back(
        lcm_stack: Stack, lcm: httpx.Client, vm_pkg: dict[str, Any], os_conn) -> None:
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    op_id = _kill_worker_during(lcm_stack, lcm, iid, "wait_active")
    resp = lcm.post(f"/app_lcm_op_occs/{op_id}/fail")
    assert resp.status_code == 200 and resp.json()["operationState"] == "FAILED", resp.text
    assert not [s for s in os_conn.compute.servers() if (s.metadata or {}).get("meao_app_instance_id") == iid]
    assert not [p for p in os_conn.network.ports() if p.name.startswith(f"meao-{iid}")]
    inst = lcm.get(f"/app_instances/{iid}").json()
    assert inst["instantiationState"] == "NOT_INSTANTIATED"
    assert lcm.post(f"/app_lcm_op_occs/{op_id}/retry").status_code == 409
    assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def _faults(stack: Stack) -> FaultDir:
    faults = FaultDir(Path(stack.env["MEAO_TEST_FAULT_DIR"]))
    faults.clear()
    return faults


@pytest.mark.parametrize("mode", ["GRACEFUL", "FORCED"])
@pytest.mark.parametrize("step", ["server", "app_rules"])  # app_rules: the last stage
def test_cancel_of_processing_instantiate_takes_effect_at_the_next_boundary(
        lcm: httpx.Client, lcm_stack: Stack, vm_pkg: dict[str, Any], mode: str, step: str) -> None:
    """Clause 7.4.11: the cancel is honoured at the next step boundary, the last one (before COMPLETED) too."""
    faults = _faults(lcm_stack)
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    try:
        faults.hold(f"step:{step}")
        op_id = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))
        faults.arrived(f"step:{step}")  # the worker is inside the step: the cancel must wait for its end
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"cancelMode": mode}
                        ).status_code == 202
        assert lcm.get(f"/app_lcm_op_occs/{op_id}").json()["isCancelPending"] is True
        faults.release(f"step:{step}")
        occ = wait_op(lcm, op_id, ("FAILED_TEMP",))
        assert occ["error"]["title"] == "Cancelled" and mode in occ["error"]["detail"], occ["error"]
        assert occ["isCancelPending"] is False
        assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"cancelMode": mode}).status_code == 409
        resp = lcm.post(f"/app_lcm_op_occs/{op_id}/fail")
        assert resp.status_code == 200 and resp.json()["operationState"] == "FAILED", resp.text
    finally:
        faults.clear()
        lcm.delete(f"/app_instances/{iid}")


def test_port_quota_with_room_for_one_of_two_ports_then_fail_rolls_back_the_one_made(
        lcm: httpx.Client, lcm_stack: Stack, vm_pkg: dict[str, Any], os_conn, clouds_yaml: Path) -> None:
    """Room for exactly one port: the first is made and recorded, the second hits the quota (FAILED_TEMP 503),
    and fail removes the one that was made. The second port waits (fault point) until the first exists,
    because Neutron's quota check is not atomic for concurrent creates."""
    import openstack

    faults = _faults(lcm_stack)
    admin = openstack.connection.Connection(
        config=openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud="admin"))
    project = os_conn.current_project_id
    before = admin.network.get_quota(project).ports
    used = len(list(os_conn.network.ports(project_id=project)))
    admin.network.update_quota(project, port=used + 1)
    iid = lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"]
    try:
        faults.hold("port:MecVmAppDataCp")
        op_id = accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1}))
        faults.arrived("port:MecVmAppDataCp")
        wait_for(lambda: [p for p in os_conn.network.ports() if p.name == f"meao-{iid}-MecVmAppMgmtCp"], 60, 0.1,
                 "the first port to be made")
        faults.release("port:MecVmAppDataCp")
        occ = wait_op(lcm, op_id, ("FAILED_TEMP",))
        assert "quota" in occ["error"]["detail"].lower(), occ["error"]
        assert occ["error"]["status"] == 503
        made = [p for p in os_conn.network.ports() if p.name.startswith(f"meao-{iid}")]
        assert [p.name for p in made] == [f"meao-{iid}-MecVmAppMgmtCp"]
        recorded = db_rows(lcm_stack, "select resources from app_instance where id = :i", i=iid)[0][0]
        recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
        assert recorded["ports"] == {"MecVmAppMgmtCp": made[0].id}, "the port made is recorded"
        resp = lcm.post(f"/app_lcm_op_occs/{op_id}/fail")
        assert resp.status_code == 200 and resp.json()["operationState"] == "FAILED", resp.text
        assert not [p for p in os_conn.network.ports() if p.name.startswith(f"meao-{iid}")], "no port is left"
        assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
    finally:
        faults.clear()
        admin.network.update_quota(project, port=before)
        admin.close()
        if lcm.get(f"/app_instances/{iid}").json().get("instantiationState") == "INSTANTIATED":
            wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate",
                                                   json={"terminationType": "FORCEFUL"})))
        lcm.delete(f"/app_instances/{iid}")


def test_racing_for_the_last_room_one_completes_the_other_fails_temp_with_reason(
        lcm: httpx.Client, vm_pkg: dict[str, Any]) -> None:
    """pop1's compute host has room for three 2 GB apps; with two placed, two more race for the last slot."""
    iids: list[str] = []
    try:
        for _ in range(2):
            iids.append(lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"])
            wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iids[-1]}/instantiate",
                                                   json={"selectedMECHostInfo": HOST1})))
        racers = [lcm.post("/app_instances", json={"appDId": vm_pkg["appDId"]}).json()["id"] for _ in range(2)]
        iids += racers
        ops = [accepted_op(lcm, lcm.post(f"/app_instances/{i}/instantiate", json={"selectedMECHostInfo": HOST1}))
               for i in racers]
        ends = [wait_op(lcm, o, ("COMPLETED", "FAILED_TEMP")) for o in ops]
        assert sorted(e["operationState"] for e in ends) == ["COMPLETED", "FAILED_TEMP"], ends
        loser = next(e for e in ends if e["operationState"] == "FAILED_TEMP")
        detail = loser["error"]["detail"].lower()
        assert "no valid host" in detail or "no longer fits" in detail, loser["error"]
        assert lcm.post(f"/app_lcm_op_occs/{loser['id']}/fail").status_code == 200
    finally:
        for iid in iids:
            if lcm.get(f"/app_instances/{iid}").json().get("instantiationState") == "INSTANTIATED":
                wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate",
                                                       json={"terminationType": "FORCEFUL"})))
            lcm.delete(f"/app_instances/{iid}")
