"""20 SIGKILLs of MEPM-V workers, at random moments (seeded), during a burst of 20 lifecycle operations.

Five instances each run instantiate, stop, start and terminate while a killer thread SIGKILLs one of two
workers every second and starts it again. Every operation must end COMPLETED (a killed attempt goes
FAILED_TEMP within the bound and is retried), and OpenStack must hold exactly what the database records.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import pytest

from tests.faults.lifecycle import new_instance, operate, settle, terminate
from tests.faults.stack import ChaosStack
from tests.lcm.helpers import accepted_op

pytestmark = [pytest.mark.openstack, pytest.mark.chaos]
HOSTS = ([{"hostName": "Edge PoP 1", "hostId": {"id": "pop1"}}], [{"hostName": "Edge PoP 2", "hostId": {"id": "pop2"}}])
KILLS = 20


def _until_completed(lcm: httpx.Client, op_id: str, retries: list[int]) -> None:
    for _ in range(15):
        occ = settle(lcm, op_id, timeout=120)
        if occ["operationState"] == "COMPLETED":
            return
        assert occ["operationState"] == "FAILED_TEMP", occ
        resp = lcm.post(f"/app_lcm_op_occs/{op_id}/retry")
        assert resp.status_code == 202, resp.text
        retries.append(1)
    pytest.fail(f"operation {op_id} did not complete after 15 retries")


def _chain(base: str, iid: str, hosts: list[dict], retries: list[int], errors: list[BaseException]) -> None:
    try:
        with httpx.Client(base_url=f"{base}/app_lcm/v1", timeout=120) as lcm:
            ops = [lambda: accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate",
                                                     json={"selectedMECHostInfo": hosts})),
                   lambda: operate(lcm, iid, "STOPPED"), lambda: operate(lcm, iid, "STARTED"),
                   lambda: terminate(lcm, iid)]
            for start in ops:
                _until_completed(lcm, start(), retries)
    except BaseException as exc:  # noqa: BLE001 — reported by the test thread
        errors.append(exc)


def test_twenty_random_worker_kills_during_a_twenty_operation_burst(healthy: ChaosStack,
                                                                    small_pkg: dict[str, Any]) -> None:
    rng = random.Random(1207)
    healthy.start_worker("w2")
    retries: list[int] = []
    errors: list[BaseException] = []
    with healthy.lcm() as lcm:
        iids = [new_instance(lcm, small_pkg) for _ in range(5)]
        chains = [threading.Thread(target=_chain, args=(healthy.base, iid, HOSTS[i % 2], retries, errors))
                  for i, iid in enumerate(iids)]
        for chain in chains:
            chain.start()
        kills = 0
        while kills < KILLS and any(c.is_alive() for c in chains):
            time.sleep(rng.uniform(0.5, 1.5))
            victim = rng.choice(["w1", "w2"])
            healthy.kill_worker(victim)
            healthy.start_worker(victim)
            kills += 1
        for chain in chains:
            chain.join(900)
        try:
            assert not errors, errors
            assert kills == KILLS, f"only {kills} kills happened before the burst ended"
            ops = [o for o in lcm.get("/app_lcm_op_occs").json() if o["appInstanceId"] in iids]
            assert len(ops) == 20 and {o["operationState"] for o in ops} == {"COMPLETED"}, ops
            assert retries, "no kill hit an operation: the case proves nothing"
        finally:
            healthy.kill_worker("w2")
            for iid in iids:
                lcm.delete(f"/app_instances/{iid}")
