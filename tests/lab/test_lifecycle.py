"""An application's life on each PoP of the lab, through HAProxy: instantiate and terminate run by the PoP's
own workers (in their namespace, behind the 20 ms WAN proxy, with their narrow credentials), checked in
Nova and Neutron."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.lab.conftest import LAB, lab, lab_is_up, require_lab_capabilities
from tests.lcm.conftest import os_conn  # noqa: F401 — the test bed's client

pytestmark = pytest.mark.lab
API = "http://10.213.0.10:8080"  # HAProxy in mlab-ctl, reached over the lab's bridge
STATE = LAB / "state"
ZONES = {"pop1": "az1", "pop2": "az2"}


@pytest.fixture(scope="module")
def lab_full(clouds_yaml: Path) -> Iterator[None]:
    """The whole lab: services, HAProxy, two API processes, the PoPs' workers (the test bed runs)."""
    require_lab_capabilities("haproxy")
    was_up = lab_is_up()
    lab("up.sh", timeout=300)
    yield
    if not was_up:
        lab("down.sh")


@pytest.fixture(scope="module")
def api(lab_full: None) -> Iterator[httpx.Client]:
    """A client of the lab's API with the operator client up.sh made for mlab-oss."""
    creds = json.loads((STATE / "secrets" / "oauth-oss.json").read_text())

    def token() -> str | None:
        try:
            resp = httpx.post(f"{API}/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(creds["client_id"], creds["client_secret"]), timeout=5)
        except httpx.HTTPError:
            return None
        return resp.json()["access_token"] if resp.status_code == 200 else None

    with httpx.Client(base_url=API, timeout=60,
                      headers={"Authorization": f"Bearer {wait_for(token, 60, 0.5, 'a token from the lab')}"}) as c:
        yield c


def onboard(api: httpx.Client, tmp: Path) -> dict[str, Any]:
    from descriptors.examples.build import build_package

    zipped = build_package("mec-vm-app", tmp, appd_id=f"lab-{uuid.uuid4().hex[:8]}")
    target = STATE / "data" / "packages" / zipped.name  # MEAO_PKG_FILE_ROOT of the control plane
    shutil.copy(zipped, target)
    body = {"appPkgName": "lab", "appPkgVersion": "1", "appPkgPath": target.as_uri(),
            "checksum": {"algorithm": "SHA-256", "hash": hashlib.sha256(target.read_bytes()).hexdigest()}}
    resp = api.post("/app_pkgm/v1/app_packages", json=body)
    assert resp.status_code == 201, resp.text
    pkg_id = resp.json()["id"]

    def onboarded() -> dict[str, Any] | None:
        info = api.get(f"/app_pkgm/v1/app_packages/{pkg_id}").json()
        return info if info["onboardingState"] in ("ONBOARDED", "ERROR") else None

    info = wait_for(onboarded, 300, 0.5, "the package to be onboarded")
    assert info["onboardingState"] == "ONBOARDED", info
    return info


def start(api: httpx.Client, path: str, body: dict[str, Any]) -> str:
    resp = api.post(f"/app_lcm/v1{path}", json=body)
    assert resp.status_code == 202, resp.text
    return resp.headers["Location"].rsplit("/", 1)[-1]


def ended(api: httpx.Client, op_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        occ = api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()
        return occ if occ["operationState"] in ("COMPLETED", "FAILED", "FAILED_TEMP") else None

    return wait_for(final, 300, 0.5, f"operation {op_id} to end")


def worker_log(pop: str) -> str:
    return "".join((STATE / "log" / f"worker-{pop}-{i}.log").read_text(errors="replace")[-1500:] for i in (1, 2))


def test_instantiate_and_terminate_on_each_pop(api: httpx.Client, os_conn, tmp_path: Path) -> None:  # noqa: F811
    pkg = onboard(api, tmp_path)
    instances = {}
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
    for iid in instances.values():
        assert api.delete(f"/app_lcm/v1/app_instances/{iid}").status_code == 204
