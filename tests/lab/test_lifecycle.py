"""An application's life on each PoP of the lab, through HAProxy: instantiate and terminate run by the PoP's
own workers (in their namespace, behind the 20 ms WAN proxy, with their narrow credentials), checked in
Nova and Neutron."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.lab.conftest import ZONES, ended, onboard, remove, start, worker_log
from tests.lcm.conftest import os_conn  # noqa: F401 — the test bed's client

pytestmark = pytest.mark.lab


def test_instantiate_and_terminate_on_each_pop(api: httpx.Client, os_conn, tmp_path: Path) -> None:  # noqa: F811
    pkg = onboard(api, tmp_path)
    instances: dict[str, str] = {}
    try:
        run_lifecycle(api, os_conn, pkg, instances)
    finally:  # the lab's database outlives a run (down.sh keeps state): leave no instance behind
        left = [problem for iid in instances.values() if (problem := remove(api, iid))]
        assert not left, left


def run_lifecycle(api: httpx.Client, os_conn, pkg: dict, instances: dict[str, str]) -> None:  # noqa: F811
    for pop in ZONES:
        resp = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"], "appInstanceName": f"lab-{pop}"})
        assert resp.status_code == 201, resp.text
        instances[pop] = resp.json()["id"]
    ops = {pop: start(api, f"/app_instances/{iid}/instantiate", {"selectedMECHostInfo": [{"hostId": {"id": pop}}]})
           for pop, iid in instances.items()}
    network = os_conn.network.find_network("meao-lab")
    assert network is not None, "up.sh makes the network meao-lab"
    for pop, op_id in ops.items():
        occ = ended(api, op_id)
        assert occ["operationState"] == "COMPLETED", (occ, worker_log(pop))
        servers = [s for s in os_conn.compute.servers(details=True) if instances[pop] in (s.name or "")]
        assert len(servers) == 1, f"one Nova server of {pop}'s instance: {servers}"
        server = servers[0]
        assert server.status == "ACTIVE" and server.availability_zone == ZONES[pop], (pop, server)
        ports = list(os_conn.network.ports(device_id=server.id))
        assert ports and all(p.status == "ACTIVE" for p in ports), ports
        assert network.id in {p.network_id for p in ports}, "the app is on the PoP's network"
        done = [w for w in api.get("/ops/v1/workers").json() if pop in w["pops"]]
        assert sum(w["jobsDone"] for w in done) >= 1, f"{pop}'s own workers ran its job: {done}"

    ops = {pop: start(api, f"/app_instances/{iid}/terminate", {"terminationType": "FORCEFUL"})
           for pop, iid in instances.items()}
    for pop, op_id in ops.items():
        occ = ended(api, op_id)
        assert occ["operationState"] == "COMPLETED", (occ, worker_log(pop))
        assert not [s for s in os_conn.compute.servers() if instances[pop] in (s.name or "")], pop
