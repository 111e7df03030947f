"""A MEC host that operations or instances still reference cannot be deleted or re-pointed.

Deleting it, or changing its cloud or queue, would leave their servers where meao no longer looks
(``fail`` then finds "host gone" forever). Unit tests on SQLite and PostgreSQL; the API's answer is
checked in-process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from meao.db.models import AppInstance, AppLcmOpOcc
from meao.db.session import session_scope
from meao.lcm import hosts
from meao.problems import ProblemError

HOST = {"id": "edge-1", "name": "Edge 1", "cloud": "cloud-a", "served_areas": ["cell-1"]}


def _instance(**values: Any) -> str:
    with session_scope() as session:
        inst = AppInstance(app_pkg_id="pkg", appd_id="appd", app_provider="p", app_name="a", app_soft_version="1",
                           appd_version="1", **values)
        session.add(inst)
    return inst.id


def _op(state: str, host_id: str = "edge-1", operation: str = "INSTANTIATE") -> str:
    with session_scope() as session:
        op = AppLcmOpOcc(app_instance_id=_instance(), lcm_operation=operation, operation_state=state,
                         mec_host_id=host_id)
        session.add(op)
    return op.id


def _set_state(op_id: str, state: str) -> None:
    with session_scope() as session:
        session.get(AppLcmOpOcc, op_id).operation_state = state


@pytest.fixture()
def host(database: str) -> str:
    hosts.create_host(dict(HOST))
    return HOST["id"]


def test_delete_of_a_host_an_unfinished_operation_runs_on_is_409_saying_what_to_do(host: str) -> None:
    op_id = _op("FAILED_TEMP")

    with pytest.raises(ProblemError) as refused:
        hosts.delete_host(host)

    assert refused.value.status == 409
    assert op_id in refused.value.detail and "FAILED_TEMP" in refused.value.detail
    assert "retry" in refused.value.detail and "fail" in refused.value.detail
    _set_state(op_id, "FAILED")
    hosts.delete_host(host)
    assert [h.id for h in hosts.all_hosts()] == []


@pytest.mark.parametrize("change", [{"cloud": "cloud-b"}, {"queue": "mecpm.elsewhere"}])
def test_re_pointing_a_host_an_instance_has_resources_on_is_409(host: str, change: dict[str, str]) -> None:
    inst = _instance(resources={"host": host, "cloud": "cloud-a", "server_id": "srv-1"})  # mid-instantiate

    with pytest.raises(ProblemError) as refused:
        hosts.put_host(host, {**HOST, **change})

    assert refused.value.status == 409 and inst in refused.value.detail
    assert hosts.read_host(host).cloud == "cloud-a" and hosts.read_host(host).queue == hosts.queue_for(host)
    with pytest.raises(ProblemError, match=inst):
        hosts.delete_host(host)


def test_other_fields_of_a_referenced_host_may_change(host: str) -> None:
    _op("PROCESSING")
    _instance(mec_host_id=host, instantiation_state="INSTANTIATED", resources={"server_id": "srv-1"})

    updated, created = hosts.put_host(host, {**HOST, "name": "Edge One", "latency_ms": {"cell-1": 3}})

    assert not created and (updated.name, updated.latency_ms, updated.cloud) == ("Edge One", {"cell-1": 3}, "cloud-a")


def test_a_host_whose_operations_ended_and_instances_were_terminated_may_be_re_pointed(host: str) -> None:
    _op("COMPLETED")
    _instance(mec_host_id=host, instantiation_state="NOT_INSTANTIATED", resources={})  # terminated

    assert hosts.put_host(host, {**HOST, "cloud": "cloud-b"})[0].cloud == "cloud-b"


def test_a_hosts_file_reload_that_re_points_a_referenced_host_fails_loudly(host: str, tmp_path: Path) -> None:
    op_id = _op("STARTING")
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump({"mec_hosts": [{**HOST, "name": "renamed"}, {**HOST, "id": "edge-2"}]}))
    assert hosts.load_hosts_file(hosts_file) == 2  # no cloud or queue changes: fine
    hosts_file.write_text(yaml.safe_dump({"mec_hosts": [{**HOST, "id": "edge-3"}, {**HOST, "cloud": "cloud-b"}]}))

    with pytest.raises(SystemExit, match=f"{hosts_file}.*edge-1.*{op_id}"):
        hosts.load_hosts_file(hosts_file)

    assert hosts.read_host(host).cloud == "cloud-a"
    assert "edge-3" not in [h.id for h in hosts.all_hosts()]  # the file is applied whole or not at all


def test_the_ops_api_answers_409_problem_details_for_put_and_delete(host: str) -> None:
    from meao.app import create_app
    from meao.config import get_settings

    _op("PROCESSING")
    settings = get_settings()
    open_api = dataclasses.replace(settings, auth=dataclasses.replace(settings.auth, mode="none"))
    client = create_app(open_api, embedded_worker=False).test_client()

    for resp in (client.put(f"/ops/v1/mec_hosts/{host}", json={**HOST, "cloud": "cloud-b"}),
                 client.delete(f"/ops/v1/mec_hosts/{host}")):
        assert resp.status_code == 409, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "PROCESSING" in resp.json()["detail"]
