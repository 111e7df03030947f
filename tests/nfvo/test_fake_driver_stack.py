"""MEAO_VIM_DRIVER=fake runs the whole lifecycle through the VIM seam, with no OpenStack at all.

A real `meao serve` and a real `meao worker` on Redis and SQLite; only the driver behind get_vim differs.
Each process keeps its own in-memory PoP, so the test reads the outcome through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import onboard
from tests.conftest import Stack, fake_vim_stack
from tests.lcm.helpers import accepted_op, wait_op

FAKE_REDIS_DB = 8
HOST = [{"hostId": {"id": "fake-pop"}}]


@pytest.fixture(scope="module")
def fake_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    services = [{"serName": "RNIS", "version": "2.2.1"}, {"serName": "LS", "version": "2.2.1"}]
    host = {"id": "fake-pop", "name": "In-memory PoP", "cloud": "nowhere", "availability_zone": "az1",
            "location": {"countryCode": "FI", "latitude": 60.17, "longitude": 24.9}, "served_areas": ["cell-1"],
            "latency_ms": {"cell-1": 5}, "services": services,
            "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}}
    with fake_vim_stack(tmp_path_factory.mktemp("fake-vim"), [host], FAKE_REDIS_DB) as stack:
        yield stack


def test_instantiate_and_terminate_run_on_the_fake_driver_chosen_by_configuration(
        fake_stack: Stack, tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    pkg = onboard(fake_stack, build_package("mec-vm-app", tmp_path))
    with httpx.Client(base_url=f"{fake_stack.base}/app_lcm/v1", timeout=30) as lcm:
        iid = lcm.post("/app_instances", json={"appDId": pkg["appDId"]}).json()["id"]
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate",
                                               json={"selectedMECHostInfo": HOST})), timeout=60)
        inst = lcm.get(f"/app_instances/{iid}").json()
        assert inst["instantiationState"] == "INSTANTIATED"
        assert inst["instantiatedAppState"]["operationalState"] == "STARTED"
        assert inst["vnfInstanceId"] == iid, inst  # meao is the VNFM: one VNF instance per app instance
        # the fake server's id, recorded by the worker's server step
        assert inst["vimResources"]["computeResource"]["resourceId"], inst
        wait_op(lcm, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/terminate",
                                               json={"terminationType": "FORCEFUL"})), timeout=60)
        assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
