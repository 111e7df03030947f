"""The lifecycle in the quickstart's shape: one `meao serve` on SQLite with its in-process `memory://`
worker, on the real OpenStack test bed: instantiate, terminate, retry, fail, and a restart mid-operation.
OpenStack is checked against the database after every test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.helpers import onboard
from tests.faults.audit import audit
from tests.faults.lifecycle import clean_up, instantiate, new_instance, recover, settle, terminate
from tests.faults.stack import ChaosStack
from tests.lcm.conftest import hosts_doc

pytestmark = pytest.mark.openstack


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory, clouds_yaml: Path,
               networks: dict[str, str]) -> Iterator[ChaosStack]:
    base = tmp_path_factory.mktemp("quickstart")
    hosts_file = base / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(hosts_doc(networks)))
    (base / "pkgsrc").mkdir()
    stack = ChaosStack(base, {"MEAO_DATABASE_URL": f"sqlite:///{base / 'meao.db'}",
                              "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "MEAO_MEC_HOSTS_FILE": str(hosts_file),
                              "MEAO_TEST_FAULT_DIR": str(base / "faults"), "MEAO_PKG_FILE_ROOT": str(base / "pkgsrc")})
    stack.env.pop("MEAO_BROKER_URL", None)  # no broker: the in-process memory:// worker
    stack.started_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)  # type: ignore[attr-defined]
    stack.start_api(embedded=True)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def qs_pkg(quickstart: ChaosStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from descriptors.examples.build import build_package

    return onboard(quickstart, build_package("mec-vm-app", tmp_path_factory.mktemp("qs-vm")))


@pytest.fixture()
def qs(quickstart: ChaosStack, os_conn) -> Iterator[ChaosStack]:
    quickstart.faults.clear()
    if quickstart.api is None or quickstart.api.poll() is not None:
        quickstart.start_api(embedded=True)
    yield quickstart
    quickstart.faults.clear()
    problems = audit(quickstart.env["MEAO_DATABASE_URL"], os_conn, quickstart.started_at)  # type: ignore[attr-defined]
    assert not problems, "OpenStack differs from the database:\n" + "\n".join(problems)


def _failed_temp_by_cancel(stack: ChaosStack, lcm, iid: str, step: str) -> str:
    stack.faults.hold(f"step:{step}")
    op_id = instantiate(lcm, iid)
    stack.faults.arrived(f"step:{step}")
    assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"cancelMode": "GRACEFUL"}).status_code == 202
    stack.faults.release(f"step:{step}")
    assert settle(lcm, op_id, ("FAILED_TEMP",))["error"]["title"] == "Cancelled"
    return op_id


def test_instantiate_then_terminate(qs: ChaosStack, qs_pkg: dict[str, Any]) -> None:
    with qs.lcm() as lcm:
        iid = new_instance(lcm, qs_pkg)
        try:
            settle(lcm, instantiate(lcm, iid), ("COMPLETED",))
            inst = lcm.get(f"/app_instances/{iid}").json()
            assert inst["instantiationState"] == "INSTANTIATED"
            settle(lcm, terminate(lcm, iid), ("COMPLETED",))
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        finally:
            clean_up(lcm, iid)


def test_failed_temp_then_retry_completes(qs: ChaosStack, qs_pkg: dict[str, Any]) -> None:
    with qs.lcm() as lcm:
        iid = new_instance(lcm, qs_pkg)
        try:
            op_id = _failed_temp_by_cancel(qs, lcm, iid, "server")
            assert recover(lcm, op_id, "retry")["operationState"] == "COMPLETED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "INSTANTIATED"
        finally:
            clean_up(lcm, iid)


def test_failed_temp_then_fail_rolls_back(qs: ChaosStack, qs_pkg: dict[str, Any]) -> None:
    with qs.lcm() as lcm:
        iid = new_instance(lcm, qs_pkg)
        try:
            op_id = _failed_temp_by_cancel(qs, lcm, iid, "app_rules")
            assert recover(lcm, op_id, "fail")["operationState"] == "FAILED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        finally:
            clean_up(lcm, iid)


def test_serve_killed_mid_instantiate_then_restarted_the_attempt_is_given_up_and_retried(
        qs: ChaosStack, qs_pkg: dict[str, Any]) -> None:
    with qs.lcm() as lcm:
        iid = new_instance(lcm, qs_pkg)
        try:
            qs.faults.hold("step:wait_active")
            op_id = instantiate(lcm, iid)
            qs.faults.arrived("step:wait_active")
            qs.kill_api()  # the worker thread dies with the process: its heartbeat stops
            qs.faults.release("step:wait_active")
            qs.start_api(embedded=True)
            occ = settle(lcm, op_id, ("FAILED_TEMP",))
            assert "stopped responding" in occ["error"]["detail"], occ
            assert recover(lcm, op_id, "retry")["operationState"] == "COMPLETED"
        finally:
            clean_up(lcm, iid)
