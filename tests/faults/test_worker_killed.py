"""SIGKILL the MEPM-V worker at each step of instantiate, operate, terminate and rollback.

Each case: the worker is held at a step (``meao.faults``), killed there, and a new worker started. Then
the three checks: the operation is FAILED_TEMP within the bound (its worker was given up), retry or fail
then succeeds, and OpenStack holds exactly what the database records (checked after every case).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.lifecycle import (
    clean_up,
    instantiate,
    new_instance,
    operate,
    recover,
    settle,
    terminate,
    wait_step,
)
from tests.faults.stack import ChaosStack

pytestmark = [pytest.mark.openstack, pytest.mark.chaos]

# step:<name> holds before the step; vim:port-created between Neutron's create and its tagging of a port
INSTANTIATE_STEPS = ("grant", "image", "flavor", "ports", "vim:port-created", "server", "wait_active", "app_rules")
TERMINATE_STEPS = ("graceful_stop", "app_rules", "server", "ports", "flavor")
ROLLBACK_STEPS = ("app_rules", "server", "ports", "flavor")


def test_port_left_untagged_by_a_kill_is_rolled_back_by_fail(healthy: ChaosStack, chaos_pkg: dict[str, Any]) -> None:
    """Killed between Neutron's create and tag of a port: fail finds the untagged port by its name."""
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            op_id = _killed_during(healthy, lcm, "vim:port-created", lambda: instantiate(lcm, iid))
            assert recover(lcm, op_id, "fail")["operationState"] == "FAILED"
        finally:
            clean_up(lcm, iid)


def _kill_at(stack: ChaosStack, point: str) -> None:
    """Wait for the worker to hold at ``point``, SIGKILL it there, start a fresh one."""
    pid = wait_step(stack, point)
    assert pid == stack.workers["w1"].pid, "the worker process holds the fault point"
    stack.kill_worker("w1")
    stack.faults.release(point)
    stack.start_worker("w1")


def _killed_during(stack: ChaosStack, lcm: httpx.Client, point: str, start: Callable[[], str]) -> str:
    """Start an operation with its worker held at ``point``, kill the worker there: check 1 (FAILED_TEMP,
    the worker said lost, within the bound). Returns the op occurrence id."""
    stack.faults.hold(point)
    op_id = start()
    _kill_at(stack, point)
    occ = settle(lcm, op_id, ("FAILED_TEMP",))
    assert "stopped responding" in occ["error"]["detail"], occ
    return op_id


@pytest.mark.parametrize("step", INSTANTIATE_STEPS)
def test_instantiate_killed_at_step_then_retry_completes(healthy: ChaosStack, chaos_pkg: dict[str, Any],
                                                         step: str) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            point = step if ":" in step else f"step:{step}"
            op_id = _killed_during(healthy, lcm, point, lambda: instantiate(lcm, iid))
            assert recover(lcm, op_id)["operationState"] == "COMPLETED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "INSTANTIATED"
        finally:
            clean_up(lcm, iid)


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_rollback_killed_at_step_then_fail_again_rolls_back(healthy: ChaosStack, chaos_pkg: dict[str, Any],
                                                           step: str) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            op_id = _killed_during(healthy, lcm, "step:app_rules", lambda: instantiate(lcm, iid))
            healthy.faults.hold(f"rollback:{step}")
            with healthy.lcm() as waiting:
                answer: dict[str, Any] = {}
                fail = threading.Thread(target=lambda: answer.update(
                    resp=waiting.post(f"/app_lcm_op_occs/{op_id}/fail")))
                fail.start()
                _kill_at(healthy, f"rollback:{step}")
                fail.join(120)
            resp = answer["resp"]
            assert resp.status_code == 503, resp.text  # the rollback's worker was lost: said so, not hidden
            assert "stopped responding" in resp.json()["detail"], resp.text
            occ = lcm.get(f"/app_lcm_op_occs/{op_id}").json()
            assert occ["operationState"] == "FAILED_TEMP"
            assert recover(lcm, op_id, "fail")["operationState"] == "FAILED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        finally:
            clean_up(lcm, iid)


@pytest.mark.parametrize("step", TERMINATE_STEPS)
def test_terminate_killed_at_step_then_retry_completes(healthy: ChaosStack, chaos_pkg: dict[str, Any],
                                                       step: str) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            settle(lcm, instantiate(lcm, iid), ("COMPLETED",))
            op_id = _killed_during(healthy, lcm, f"step:{step}", lambda: terminate(lcm, iid))
            assert recover(lcm, op_id)["operationState"] == "COMPLETED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        finally:
            clean_up(lcm, iid)


@pytest.mark.parametrize("step,to", [("stop", "STOPPED"), ("start", "STARTED")])
def test_operate_killed_at_step_then_retry_completes(healthy: ChaosStack, chaos_pkg: dict[str, Any],
                                                     step: str, to: str) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            settle(lcm, instantiate(lcm, iid), ("COMPLETED",))
            if to == "STARTED":
                settle(lcm, operate(lcm, iid, "STOPPED"), ("COMPLETED",))
            op_id = _killed_during(healthy, lcm, f"step:{step}", lambda: operate(lcm, iid, to))
            assert recover(lcm, op_id)["operationState"] == "COMPLETED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiatedAppState"]["operationalState"] == to
        finally:
            clean_up(lcm, iid)
