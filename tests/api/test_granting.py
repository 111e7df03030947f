"""The granting API (MEC 010-2 clause 7.5, data model clause 6.2.4), driven directly as a MEPM would.

A real `meao serve` with the fake VIM driver (capacity without a cloud). The LCM operation occurrences a
MEPM asks grants for, and the images a worker would have noted, are written into the database, as no
worker runs them here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.api.helpers import onboard
from tests.conftest import Stack, fake_vim_stack

GRANTING_REDIS_DB = 3  # each stack its own Redis database (see tests/ops: 5 is the benches')
CLOUD = "pop-a"
HOSTS = [
    {"id": "edge-1", "name": "Edge 1", "cloud": CLOUD, "availability_zone": "az1",
     "location": {"countryCode": "FI", "latitude": 60.17, "longitude": 24.9},
     "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5},
     "services": [{"serName": "RNIS", "version": "2.2.1"}],
     "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}},
    # offers no RNIS, which mec-vm-app requires: an INSTANTIATE there is refused
    {"id": "edge-bare", "name": "Edge without services", "cloud": CLOUD, "availability_zone": "az2",
     "served_areas": ["cell-1"], "latency_ms": {"cell-1": 5},
     "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}},
]
VIM_IMAGE = "glance-0f6c"


@pytest.fixture(scope="module")
def granting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fake_vim_stack(tmp_path_factory.mktemp("granting"), HOSTS, GRANTING_REDIS_DB) as stack:
        yield stack


@pytest.fixture(scope="module")
def app(granting: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """mec-vm-app onboarded, its AppD's software image noted at CLOUD (as a worker's image step does)."""
    from descriptors.examples.build import build_package
    from meao.catalogue import vim_images
    from meao.catalogue.appd import AppD
    from meao.config import get_settings, load_settings, set_settings
    from meao.db.models import AppPackage

    pkg = onboard(granting, build_package("mec-vm-app", tmp_path_factory.mktemp("pkg")))
    engine = create_engine(granting.env["MEAO_DATABASE_URL"])
    with Session(engine) as session:
        appd = AppD.from_stored(session.get(AppPackage, pkg["id"]).appd_model)
    engine.dispose()
    before = get_settings()
    set_settings(load_settings(MEAO_DATABASE_URL=granting.env["MEAO_DATABASE_URL"],
                               MEAO_DATA_DIR=str(granting.data_dir)))
    try:
        vim_images.note_image(pkg["id"], CLOUD, VIM_IMAGE, appd.sw_images[0].id)
        vim_images.note_image(pkg["id"], "pop-b", "glance-elsewhere", appd.sw_images[0].id)  # not the host's cloud
    finally:
        set_settings(before)
    return {"pkg": pkg, "appd": appd}


def _client(stack: Stack, api: str) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.base}/{api}/v1", timeout=30)


def _occurrence(stack: Stack, appd_id: str, operation: str = "INSTANTIATE", state: str = "PROCESSING",
                host: str | None = "edge-1") -> tuple[str, str]:
    """A new instance of ``appd_id`` and an occurrence of ``operation`` on ``host`` in ``state``: (instance, op)."""
    from meao.db.models import AppLcmOpOcc

    with _client(stack, "app_lcm") as lcm:
        resp = lcm.post("/app_instances", json={"appDId": appd_id})
        assert resp.status_code == 201, resp.text
        inst_id = resp.json()["id"]
    engine = create_engine(stack.env["MEAO_DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():
            op = AppLcmOpOcc(app_instance_id=inst_id, lcm_operation=operation, operation_state=state,
                             operation_params={"selectedMECHostInfo": [{"hostId": {"id": host}}]},
                             mec_host_id=host, queue=f"mecpm.{host}")
            session.add(op)
            session.flush()
            return inst_id, op.id
    finally:
        engine.dispose()


def _request(stack: Stack, inst_id: str, op_id: str, appd_id: str, operation: str = "INSTANTIATE",
             **more: Any) -> dict[str, Any]:
    """A GrantRequest (table 6.2.4.2.2-1) as the MEPM-V sends it: a compute and a link port per external CP."""
    body: dict[str, Any] = {
        "appInstanceId": inst_id, "appLcmOpOccId": op_id, "appDId": appd_id, "operation": operation,
        "_links": {"appLcmOpOcc": {"href": f"{stack.base}/app_lcm/v1/app_lcm_op_occs/{op_id}"},
                   "appInstance": {"href": f"{stack.base}/app_lcm/v1/app_instances/{inst_id}"}}}
    if operation == "INSTANTIATE":
        body["addResources"] = [
            {"id": "compute-vdu", "type": "COMPUTE", "vduId": "MecVmAppVdu", "resourceTemplateId": ["MecVmAppVdu"]},
            {"id": "linkport-data", "type": "LINKPORT", "vduId": "MecVmAppVdu",
             "resourceTemplateId": ["MecVmAppDataCp"]}]
    return {**body, **more}


def _grant(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    with _client(stack, "granting") as g:
        return g.post("/grants", json=body)


def test_instantiate_grant_names_the_hosts_vim_zone_and_the_appd_images(granting: Stack, app: dict) -> None:
    """Clause 7.5.1.3.1 (201 + Location) and table 6.2.4.4.2-1: vimConnections, zones, addResources placed
    in them, and vimAssets.softwareImages mapping the AppD's software image descriptor ids (clause
    6.2.4.11) to the VIM's images of the host's cloud."""
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id)
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id))
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    assert resp.headers["Location"] == grant["_links"]["self"]["href"]
    assert resp.headers["Location"] == f"{granting.base}/granting/v1/grants/{grant['id']}"
    assert (grant["appInstanceId"], grant["appLcmOpOccId"]) == (inst_id, op_id)
    [(conn_id, conn)] = grant["vimConnections"].items()
    assert conn["id"] == conn_id and conn["vimId"] == CLOUD and conn["vimType"] == "ETSINFV.OPENSTACK_KEYSTONE.V_3"
    assert grant["zones"] == [{"id": "zone-1", "zoneId": "az1", "vimConnectionId": conn_id}]
    assert grant["addResources"] == [
        {"resourceDefinitionId": rid, "vimConnectionId": conn_id, "zoneId": "zone-1"}
        for rid in ("compute-vdu", "linkport-data")]
    sw_image_id = app["appd"].sw_images[0].id
    assert sw_image_id != VIM_IMAGE
    assert grant["vimAssets"] == {"softwareImages": [
        {"vimConnectionId": conn_id, "appDSoftwareImageId": sw_image_id, "vimSoftwareImageId": VIM_IMAGE}]}
    assert grant["_links"]["appLcmOpOcc"]["href"].endswith(f"/app_lcm_op_occs/{op_id}")
    assert grant["_links"]["appInstance"]["href"].endswith(f"/app_instances/{inst_id}")


def test_an_existing_grant_reads_back_as_it_was_given(granting: Stack, app: dict) -> None:
    """Clause 7.5.2.3.2: GET of an individual grant is 200 with the Grant (decided synchronously, never 202)."""
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id)
    given = _grant(granting, _request(granting, inst_id, op_id, appd_id))
    assert given.status_code == 201, given.text
    with _client(granting, "granting") as g:
        read = g.get(f"/grants/{given.json()['id']}")
        assert read.status_code == 200, read.text
        assert read.json() == given.json()
        missing = g.get(f"/grants/{uuid.uuid4()}")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


def test_operate_grant_needs_no_resources(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id, "OPERATE")
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id, "OPERATE"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["addResources"] == []


def test_instantiate_on_a_host_that_does_not_fit_is_refused_saying_why(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id, host="edge-bare")
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id))
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert "edge-bare" in problem["detail"] and "rnis" in problem["detail"].lower()
    [host] = problem["hosts"]
    assert host["hostId"] == "edge-bare" and not host["fits"]


def test_an_occurrence_without_a_host_is_refused(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id, host=None)
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id))
    assert resp.status_code == 422, resp.text
    assert "no MEC host" in resp.json()["detail"]


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED", "FAILED_TEMP"])
def test_grant_for_an_occurrence_that_is_not_running_is_409(granting: Stack, app: dict, state: str) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id, state=state)
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id))
    assert resp.status_code == 409, resp.text
    assert state in resp.json()["detail"]


def test_grant_for_another_operation_than_the_occurrences_is_409(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id, "OPERATE")
    resp = _grant(granting, _request(granting, inst_id, op_id, appd_id, "TERMINATE"))
    assert resp.status_code == 409, resp.text
    assert "OPERATE" in resp.json()["detail"]


def test_instantiate_grant_without_add_resources_is_400(granting: Stack, app: dict) -> None:
    """Table 6.2.4.2.2-1 note 2: addResources shall be present for INSTANTIATE (the schema cannot say)."""
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id)
    body = _request(granting, inst_id, op_id, appd_id)
    del body["addResources"]
    resp = _grant(granting, body)
    assert resp.status_code == 400, resp.text
    assert "addResources" in resp.json()["detail"]


def test_grant_naming_another_appd_than_the_instances_is_400(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id)
    resp = _grant(granting, _request(granting, inst_id, op_id, "some-other-appd"))
    assert resp.status_code == 400, resp.text
    assert "some-other-appd" in resp.json()["detail"]


def test_grant_for_an_unknown_occurrence_or_another_instances_is_404(granting: Stack, app: dict) -> None:
    appd_id = app["pkg"]["appDId"]
    inst_id, op_id = _occurrence(granting, appd_id)
    other_inst, _ = _occurrence(granting, appd_id)
    for inst, op in ((inst_id, str(uuid.uuid4())), (other_inst, op_id)):
        resp = _grant(granting, _request(granting, inst, op, appd_id))
        assert resp.status_code == 404, resp.text
