"""The whole package and application lifecycle driven by the `meao` CLI alone, as subprocesses, against a
live API and worker on real Redis and the real OpenStack test bed — including the ops views: a PoP queue
filling while its worker is drained, a purged (failed) job found by `meao jobs list --failed` and retried,
and the op occurrence id carried from the worker's log lines to OpenStack's own logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import client_env, ok, ok_json, run_meao
from tests.conftest import Stack, wait_for
from tests.openstack_testbed import testbed_state as bed_state

pytestmark = [pytest.mark.openstack, pytest.mark.usefixtures("no_leftovers")]


@pytest.fixture()
def meao(lcm_stack: Stack, tmp_path: Path) -> Callable[..., Any]:
    env = client_env(lcm_stack.base, tmp_path)
    return lambda *args: run_meao(*args, env=env, timeout=300)


def _online_worker(meao: Callable[..., Any]) -> str:
    def one() -> str | None:
        workers = ok_json(meao("workers", "list", "-f", "json", "-c", "name", "-c", "status", "-c", "pops"))
        online = [w for w in workers if w["status"] == "online" and "pop1" in w["pops"]]
        return online[0]["name"] if len(online) == 1 else None

    return wait_for(one, 30, 0.5, "one online worker serving pop1")


def _depth(meao: Callable[..., Any], queue: str) -> int:
    return {q["name"]: q["depth"] for q in ok_json(meao("queues", "list", "-f", "json"))}[queue]


def _field(meao: Callable[..., Any], *args: str) -> str:
    return ok(meao(*args, "-f", "value")).strip()


def test_full_lifecycle_by_cli_with_drained_worker_purged_job_and_retry(
        lcm_stack: Stack, meao: Callable[..., Any], tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    package = build_package("mec-minimal", tmp_path / "pkg")
    pkg = ok_json(meao("package", "create", "--file", str(package), "--wait", "-f", "json"))
    assert pkg["onboardingState"] == "ONBOARDED" and pkg["operationalState"] == "ENABLED"
    app_id = _field(meao, "app", "create", pkg["appDId"], "--name", "cli-app", "-c", "id")
    worker = _online_worker(meao)
    try:
        # a drained worker takes nothing: the instantiate job waits in the PoP's queue
        ok(meao("workers", "drain", worker))
        op_id = _field(meao, "app", "instantiate", app_id, "--host", "pop1", "-c", "id")
        wait_for(lambda: _depth(meao, "mecpm.pop1") == 1, 15, 0.5, "the instantiate job in mecpm.pop1")
        waiting = ok_json(meao("jobs", "list", "--waiting", "--queue", "mecpm.pop1", "-f", "json",
                               "-c", "appLcmOpOccId", "-c", "pops"))
        assert [j["appLcmOpOccId"] for j in waiting] == [op_id] and waiting[0]["pops"] == ["pop1"]
        assert _field(meao, "op", "show", op_id, "-c", "operationState") == "STARTING"
        ok(meao("workers", "resume", worker))
        wait_for(lambda: _depth(meao, "mecpm.pop1") == 0, 15, 0.5, "the resumed worker to take the job")
        wait_for(lambda: _field(meao, "op", "show", op_id, "-c", "operationState") == "COMPLETED", 150, 1,
                 "the instantiate to complete")
        assert _field(meao, "app", "show", app_id, "-c", "instantiationState") == "INSTANTIATED"

        # a purged job is a failed job: its operation is FAILED_TEMP until retried
        ok(meao("workers", "drain", worker))
        stop_id = _field(meao, "app", "operate", app_id, "--state", "STOPPED", "-c", "id")
        wait_for(lambda: _depth(meao, "mecpm.pop1") == 1, 15, 0.5, "the operate job in mecpm.pop1")
        purged = ok_json(meao("queues", "purge", "mecpm.pop1", "--yes", "-f", "json"))
        assert [j["appLcmOpOccId"] for j in purged] == [stop_id]
        failed = ok_json(meao("jobs", "list", "--failed", "-f", "json", "-c", "appLcmOpOccId", "-c", "state",
                              "-c", "error"))
        mine = [j for j in failed if j["appLcmOpOccId"] == stop_id]
        assert mine and mine[0]["state"] == "FAILED" and "purged from queue mecpm.pop1" in mine[0]["error"]["detail"]
        ok(meao("workers", "resume", worker))
        retried = ok_json(meao("jobs", "retry", stop_id, "--wait", "-f", "json"))
        assert retried["operationState"] == "COMPLETED"
        assert not [j for j in ok_json(meao("jobs", "list", "--failed", "-f", "json")) if j["appLcmOpOccId"] == stop_id]
        assert _field(meao, "app", "show", app_id, "-c", "state") == "STOPPED"
        ok(meao("app", "operate", app_id, "--state", "STARTED", "--wait"))
        assert _field(meao, "app", "show", app_id, "-c", "state") == "STARTED"
        ok(meao("app", "terminate", app_id, "--graceful-timeout", "5", "--wait"))
        assert _field(meao, "app", "show", app_id, "-c", "instantiationState") == "NOT_INSTANTIATED"
        ok(meao("app", "delete", app_id))
        ok(meao("package", "delete", pkg["id"], "--disable"))
        assert [p for p in ok_json(meao("package", "list", "-f", "json")) if p["id"] == pkg["id"]] == []
    finally:
        meao("workers", "resume", worker)
        _clean_up(lcm_stack, app_id, pkg["id"])

    # the op occurrence id runs from the worker's log lines to OpenStack's own request logs
    assert f"[op {op_id}]" in lcm_stack.logs["worker"].read_text()
    nova = (bed_state() / "log" / "nova-api.log").read_text(errors="replace")
    assert f"req-{op_id}" in nova, "nova-api did not log the global request id"


def _clean_up(stack: Stack, app_id: str, pkg_id: str) -> None:
    """After a failure midway: end whatever runs, terminate and delete the instance, delete the package."""
    import httpx

    from tests.lcm.helpers import wait_op

    with httpx.Client(base_url=f"{stack.base}/app_lcm/v1", timeout=60) as lcm:
        for op in lcm.get("/app_lcm_op_occs").json():
            if op["appInstanceId"] != app_id or op["operationState"] in ("COMPLETED", "FAILED"):
                continue
            if op["operationState"] != "FAILED_TEMP":
                op = wait_op(lcm, op["id"], ("COMPLETED", "FAILED_TEMP"))
            if op["operationState"] == "FAILED_TEMP":
                lcm.post(f"/app_lcm_op_occs/{op['id']}/fail")
        inst = lcm.get(f"/app_instances/{app_id}")
        if inst.status_code == 200 and inst.json()["instantiationState"] == "INSTANTIATED":
            resp = lcm.post(f"/app_instances/{app_id}/terminate", json={"terminationType": "FORCEFUL"})
            wait_op(lcm, resp.headers["Location"].rsplit("/", 1)[-1])
        lcm.delete(f"/app_instances/{app_id}")
    with stack.client() as pkgm:
        pkgm.patch(f"/app_packages/{pkg_id}", json={"operationalState": "DISABLED"})
        pkgm.delete(f"/app_packages/{pkg_id}")
