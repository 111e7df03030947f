"""Broker, database and API outages, a paused worker, and racing first instantiations.

Every case ends with the three checks: each operation is final or FAILED_TEMP within the bound, retry or
fail from FAILED_TEMP succeeds, and OpenStack holds exactly what the database records (``healthy``).
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api.helpers import onboard, remove
from tests.conftest import wait_for
from tests.faults.audit import duplicate_images
from tests.faults.conftest import small
from tests.faults.lifecycle import (
    HOST1,
    clean_up,
    instantiate,
    new_instance,
    recover,
    settle,
)
from tests.faults.stack import ChaosStack
from tests.lcm.helpers import accepted_op

pytestmark = [pytest.mark.openstack, pytest.mark.chaos]
HOST2 = [{"hostName": "Edge PoP 2", "hostId": {"id": "pop2"}}]


def _rows(stack: ChaosStack, sql: str, **params: Any) -> list[Any]:
    eng = create_engine(stack.env["MEAO_DATABASE_URL"])
    try:
        with eng.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        eng.dispose()


def _burst(lcm: httpx.Client, pkg: dict[str, Any], n: int) -> tuple[list[str], list[str]]:
    """``n`` instantiations, alternating between pop1 and pop2; (instance ids, op ids)."""
    iids = [new_instance(lcm, pkg) for _ in range(n)]
    ops = [accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate",
                                     json={"selectedMECHostInfo": HOST1 if i % 2 == 0 else HOST2}))
           for i, iid in enumerate(iids)]
    return iids, ops


def _end_all(lcm: httpx.Client, ops: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Checks 1 and 2 for a burst: every op ends; FAILED_TEMP ones are retried to COMPLETED."""
    ends = [settle(lcm, op_id, timeout=timeout) for op_id in ops]
    return [recover(lcm, e["id"]) if e["operationState"] == "FAILED_TEMP" else e for e in ends]


def test_api_killed_between_commit_and_send_the_job_still_runs(healthy: ChaosStack,
                                                               chaos_pkg: dict[str, Any]) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            healthy.faults.kill_at("lcm:after-commit")
            with pytest.raises(httpx.HTTPError):
                lcm.post(f"/app_instances/{iid}/instantiate", json={"selectedMECHostInfo": HOST1})
            healthy.api.wait(10)
            healthy.faults.clear()
            (op_id,) = [r[0] for r in _rows(healthy, "select id from app_lcm_op_occ where app_instance_id = :i", i=iid)]
            assert _rows(healthy, "select task, args from job where subject = :o", o=op_id) == [
                ("mecpm.run_op", [op_id, "1"])], "the job was written with the operation"
            # the API is still down: another process's dispatcher (the worker's) sends the job, and a worker
            # claims it (it then fails for want of the granting API, which is this API: FAILED_TEMP, 503)
            wait_for(lambda: _rows(healthy, "select state from job where subject = :o", o=op_id)[0][0] == "CLAIMED",
                     60, 0.1, "the job to be sent and claimed with its API down")
            healthy.start_api()
            assert recover(lcm, settle(lcm, op_id)["id"])["operationState"] == "COMPLETED"
        finally:
            clean_up(lcm, iid)


def test_broker_down_60s_requests_are_accepted_and_run_when_it_is_back(healthy: ChaosStack,
                                                                      small_pkg: dict[str, Any]) -> None:
    redis = healthy.redis  # type: ignore[attr-defined]
    with healthy.lcm() as lcm:
        iids = [new_instance(lcm, small_pkg) for _ in range(3)]
        try:
            redis.stop()
            down_at = time.monotonic()
            started = time.monotonic()
            ops = [instantiate(lcm, iid) for iid in iids]  # 202 each, not 500
            assert time.monotonic() - started < 15, "accepting must not wait for the broker"
            states = {lcm.get(f"/app_lcm_op_occs/{o}").json()["operationState"] for o in ops}
            assert states == {"STARTING"}
            time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
            assert {lcm.get(f"/app_lcm_op_occs/{o}").json()["operationState"] for o in ops} == {"STARTING"}
            redis.start()
            ends = [settle(lcm, o, timeout=150) for o in ops]
            assert [e["operationState"] for e in ends] == ["COMPLETED"] * 3, ends
        finally:
            if redis.proc is None or redis.proc.poll() is not None:
                redis.start()
            for iid in iids:
                clean_up(lcm, iid)


def test_redis_restarted_without_persistence_during_a_burst_loses_no_job(healthy: ChaosStack,
                                                                          small_pkg: dict[str, Any]) -> None:
    redis = healthy.redis  # type: ignore[attr-defined]
    with healthy.lcm() as lcm:
        healthy.faults.hold("step:grant")  # the burst's jobs pile up: one runs per worker thread, the rest wait
        iids, ops = _burst(lcm, small_pkg, 6)
        try:
            healthy.faults.arrived("step:grant")
            redis.stop()  # every message still queued is gone
            redis.start()
            healthy.faults.release("step:grant")
            ends = _end_all(lcm, ops, timeout=150)
            assert [e["operationState"] for e in ends] == ["COMPLETED"] * 6, ends
        finally:
            healthy.faults.release("step:grant")
            for iid in iids:
                clean_up(lcm, iid)


def test_postgresql_restarted_during_a_burst(healthy: ChaosStack, small_pkg: dict[str, Any]) -> None:
    pg = healthy.pg  # type: ignore[attr-defined]
    with healthy.lcm() as lcm:
        iids, ops = _burst(lcm, small_pkg, 6)
        try:
            wait_for(lambda: _rows(healthy, "select count(*) from app_lcm_op_occ where operation_state = 'PROCESSING'")
                     [0][0] >= 1, 60, 0.05, "the burst to start")
            pg.stop("immediate")
            time.sleep(3)
            pg.start()
            ends = _end_all(lcm, ops, timeout=150)
            assert [e["operationState"] for e in ends] == ["COMPLETED"] * 6, ends
        finally:
            for iid in iids:
                clean_up(lcm, iid)


def test_api_killed_mid_rollback_the_rollback_ends(healthy: ChaosStack, chaos_pkg: dict[str, Any]) -> None:
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        try:
            healthy.faults.hold("step:app_rules")
            op_id = instantiate(lcm, iid)
            healthy.faults.arrived("step:app_rules")
            assert lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"cancelMode": "FORCED"}).status_code == 202
            healthy.faults.release("step:app_rules")
            settle(lcm, op_id, ("FAILED_TEMP",))
            healthy.faults.hold("rollback:server")
            threading.Thread(target=lambda: _post_quietly(f"{healthy.base}/app_lcm/v1/app_lcm_op_occs/{op_id}/fail"),
                             daemon=True).start()
            healthy.faults.arrived("rollback:server")
            healthy.kill_api()
            healthy.faults.release("rollback:server")
            healthy.start_api()
            occ = settle(lcm, op_id, ("FAILED",))
            assert occ["operationState"] == "FAILED"
            assert lcm.get(f"/app_instances/{iid}").json()["instantiationState"] == "NOT_INSTANTIATED"
        finally:
            clean_up(lcm, iid)


def _post_quietly(url: str) -> None:
    try:
        httpx.post(url, timeout=120)
    except httpx.HTTPError:
        pass  # the API is killed under this request


def test_paused_worker_is_fenced_out_after_a_retry(healthy: ChaosStack, chaos_pkg: dict[str, Any], os_conn) -> None:
    """SIGSTOP past the stale limit, retry on another worker, SIGCONT: one server; the old worker wrote nothing."""
    with healthy.lcm() as lcm:
        iid = new_instance(lcm, chaos_pkg)
        old = healthy.workers["w1"]
        try:
            healthy.faults.hold("step:server")  # before the server is created
            op_id = instantiate(lcm, iid)
            assert healthy.faults.arrived("step:server") == old.pid
            old.send_signal(signal.SIGSTOP)
            healthy.faults.release("step:server")
            occ = settle(lcm, op_id, ("FAILED_TEMP",))  # the API's reaper gives the silent attempt up
            assert "stopped responding" in occ["error"]["detail"]
            healthy.workers["w1"] = healthy.start_worker("w2")
            healthy.workers["old"] = old
            assert recover(lcm, op_id)["operationState"] == "COMPLETED"
            before = _snapshot(healthy, op_id, iid)
            old.send_signal(signal.SIGCONT)
            wait_for(lambda: "touches nothing more" in healthy.log_tail("w1", 20000), 30, 0.1,
                     "the old worker to find itself fenced out")
            time.sleep(1)
            assert _snapshot(healthy, op_id, iid) == before, "the old worker wrote after it resumed"
            servers = [s for s in os_conn.compute.servers() if (s.metadata or {}).get("meao_app_instance_id") == iid]
            assert len(servers) == 1
        finally:
            old.send_signal(signal.SIGCONT)
            clean_up(lcm, iid)
            healthy.kill(old)
            healthy.workers.pop("old", None)


def _snapshot(stack: ChaosStack, op_id: str, iid: str) -> list[Any]:
    return [_rows(stack, "select operation_state, attempt, worker, steps_done, error, current_step, state_entered_time "
                         "from app_lcm_op_occ where id = :o", o=op_id),
            _rows(stack, "select instantiation_state, resources, updated_at from app_instance where id = :i", i=iid)]


def test_ten_concurrent_first_instantiations_upload_one_image(healthy: ChaosStack, os_conn,
                                                              tmp_path: Path) -> None:
    from descriptors.examples.build import build_package

    variant = uuid.uuid4().int % 1000 + 1
    pkg = onboard(healthy, build_package("mec-vm-app", tmp_path, mutate=small, image_variant=variant,
                                         appd_id=f"chaos-first-{uuid.uuid4().hex[:8]}"))
    with healthy.lcm() as lcm:
        iids = [new_instance(lcm, pkg) for _ in range(10)]
        try:
            ops = [instantiate(lcm, iid) for iid in iids]
            ends = [settle(lcm, o, timeout=180) for o in ops]
            assert not duplicate_images(os_conn), duplicate_images(os_conn)
            images = [i for i in os_conn.image.images(tag="meao") if f"meao-pkg:{pkg['id']}" in (i.tags or [])]
            assert len(images) == 1, [(i.id, i.status) for i in images]
            for end in ends:  # those the PoP had no room for end FAILED_TEMP with the reason; fail them
                if end["operationState"] == "FAILED_TEMP":
                    recover(lcm, end["id"], "fail")
        finally:
            for iid in iids:
                clean_up(lcm, iid)
            remove(healthy, pkg["id"])
