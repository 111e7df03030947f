"""Chaos in the lab (issue 18): a `meao serve` killed behind HAProxy, pop2's WAN link cut for a minute, pop1's
workers stopped. Real processes throughout; every wait is a state poll with a deadline.

A fleet of four instances (two per PoP), instantiated once, carries the operations (OPERATE stop/start:
cheap for the test bed, and each one takes the PoP's worker through grants and the MEP over the WAN). At
the end of the module the fleet is terminated and OpenStack is audited against the lab's database.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.faults.audit import INSTANCE_KEY, audit, recorded
from tests.lab.burst import Client, Step, run_lanes
from tests.lab.conftest import API, ROOT, STATE, ZONES, ended, lab, onboard, remove, start, worker_log
from tests.lcm.conftest import os_conn  # noqa: F401 — the test bed's client

pytestmark = pytest.mark.lab

CUT_S = 60  # issue 18: pop2's link is cut for 60 s; keep it so
PER_POP = 2  # instances per PoP in the fleet
KILL_BURST = 20  # operations in the burst during which one `meao serve` is killed
KILL_AFTER = 4  # ... after this many of them have ended


def stop(state: str) -> dict[str, Any]:
    return {"changeStateTo": state} if state == "STARTED" else {"changeStateTo": state, "stopType": "FORCEFUL"}


def operate(iid: str, state: str) -> Step:
    return Step(iid, f"/app_instances/{iid}/operate", stop(state))


def alternate(iid: str, n: int, first: str = "STOPPED") -> list[Step]:
    """``n`` operations on one instance, STOPPED and STARTED in turn."""
    other = "STARTED" if first == "STOPPED" else "STOPPED"
    return [operate(iid, first if i % 2 == 0 else other) for i in range(n)]


def lab_db_url() -> str:
    """The lab's database as the control plane names it, reached from the root namespace over the bridge
    (its certificate names 10.213.0.10 too)."""
    for line in (STATE / "env" / "ctl.env").read_text().splitlines():
        if line.startswith("MEAO_DATABASE_URL="):
            return shlex.split(line.split("=", 1)[1])[0].replace("@ctl.mlab:", "@10.213.0.10:")
    raise AssertionError("deploy/lab/state/env/ctl.env has no MEAO_DATABASE_URL")


class LabScope:
    """The test bed as the lab's audit sees it: the test bed is shared with other meao stacks (same project),
    whose servers come and go under instance ids the lab's database never knew. The lab's apps are on its
    network (deploy/lab/up.sh: meao-lab), so a server is the lab's when a port of it is there, or when the
    lab's database names its instance."""

    def __init__(self, conn, network: str, known: set[str]) -> None:
        self.conn, self.compute, self.network = conn, self, self
        self.net_id = conn.network.find_network(network).id
        self.known = known

    def ports(self, **kw: Any) -> list[Any]:
        return list(self.conn.network.ports(network_id=self.net_id, **kw))

    def servers(self, **kw: Any) -> list[Any]:
        on_lab = {p.device_id for p in self.ports()}
        return [s for s in self.conn.compute.servers(**kw)
                if s.id in on_lab or (s.metadata or {}).get(INSTANCE_KEY) in self.known]


def lab_audit(os_conn, since: datetime) -> list[str]:  # noqa: F811
    """tests/faults/audit.py's check (OpenStack holds what the database records, no orphan) on the lab."""
    url = lab_db_url()
    return audit(url, LabScope(os_conn, "meao-lab", set(recorded(url))), since)


def proc(*args: str) -> str:
    return lab("proc.sh", *args, timeout=60)


def oss_client() -> Client:
    creds = json.loads((STATE / "secrets" / "oauth-oss.json").read_text())
    return Client(API, creds["client_id"], creds["client_secret"])


def servers_of(os_conn, iid: str) -> list[Any]:  # noqa: F811
    return [s for s in os_conn.compute.servers(details=True) if iid in (s.name or "")]


@pytest.fixture(scope="module")
def fleet(api: httpx.Client, os_conn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[str]]]:  # noqa: F811
    """Instance ids per PoP, instantiated and STARTED; terminated, deleted and audited afterwards."""
    since = datetime.now(UTC)
    pkg = onboard(api, tmp_path_factory.mktemp("pkg"))
    made: dict[str, list[str]] = {pop: [] for pop in ZONES}
    ops = []
    try:
        for pop in ZONES:
            for i in range(PER_POP):
                resp = api.post("/app_lcm/v1/app_instances",
                                json={"appDId": pkg["appDId"], "appInstanceName": f"chaos-{pop}-{i}"})
                assert resp.status_code == 201, resp.text
                made[pop].append(resp.json()["id"])
                ops.append((pop, start(api, f"/app_instances/{made[pop][-1]}/instantiate",
                                       {"selectedMECHostInfo": [{"hostId": {"id": pop}}]})))
        for pop, op_id in ops:
            occ = ended(api, op_id)
            assert occ["operationState"] == "COMPLETED", (occ, worker_log(pop))
        yield made
    finally:
        left = [problem for iids in made.values() for iid in iids if (problem := remove(api, iid))]
        problems = lab_audit(os_conn, since)
        assert not left and not problems, (left, problems)


def op_state(api: httpx.Client, op: str) -> str:
    return api.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()["operationState"]


def state_of(api: httpx.Client, iid: str) -> str:
    return api.get(f"/app_lcm/v1/app_instances/{iid}").json()["instantiatedAppState"]["operationalState"]


def assert_vim_matches(api: httpx.Client, os_conn, fleet: dict[str, list[str]]) -> None:  # noqa: F811
    """Nova holds one server per instance, in the power state the database records."""
    want = {"STARTED": "ACTIVE", "STOPPED": "SHUTOFF"}
    for iids in fleet.values():
        for iid in iids:
            servers = servers_of(os_conn, iid)
            assert len(servers) == 1, (iid, servers)
            assert servers[0].status == want[state_of(api, iid)], (iid, servers[0].status, state_of(api, iid))


# ---------------------------------------------------------------- a `meao serve` killed during a burst
def test_kill_one_serve_during_a_burst(api: httpx.Client, os_conn, fleet: dict[str, list[str]]) -> None:  # noqa: F811
    """SIGKILL serve1 after a few of 20 operations from mlab-oss: every operation completes, a client meets
    at most one failed attempt per request (and retries it), and Nova matches the database."""
    iids = [iid for pop in ZONES for iid in fleet[pop]]
    per_lane = KILL_BURST // len(iids)
    lanes = [[asdict_step(s) for s in alternate(iid, per_lane, first=opposite(state_of(api, iid)))]
             for iid in iids]
    creds = json.loads((STATE / "secrets" / "oauth-oss.json").read_text())
    plan = {"api": "http://ctl.mlab:8080", **creds, "lanes": lanes, "poll_s": 0.2}
    burst = subprocess.Popen(["ip", "netns", "exec", "mlab-oss", sys.executable, "-m", "tests.lab.burst"], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert burst.stdin and burst.stdout
    burst.stdin.write(json.dumps(plan))
    burst.stdin.close()
    outcomes: list[dict[str, Any]] = []
    killed_at = None
    log_at = 0
    try:
        for line in burst.stdout:
            event = json.loads(line)
            if "lane" not in event:
                continue
            outcomes.append(event)
            if killed_at is None and len(outcomes) >= KILL_AFTER:
                log_at = haproxy_log_size()
                proc("kill", "serve1")
                killed_at = time.time()
        assert burst.wait(60) == 0, burst.stderr.read() if burst.stderr else ""
    finally:
        if burst.poll() is None:
            burst.kill()
        proc("start", "serve1")
    assert killed_at is not None, f"the burst ended before serve1 was killed: {outcomes}"
    assert len(outcomes) == KILL_BURST, f"every operation of the burst ended: {outcomes}"
    bad = [o for o in outcomes if o["state"] != "COMPLETED" or o["error"]]
    assert not bad, (bad, worker_log("pop1"), worker_log("pop2"))
    assert sum(1 for o in outcomes if o["at"] > killed_at) >= KILL_BURST - KILL_AFTER - len(iids), \
        "most operations ended after the kill"
    for o in outcomes:  # one retried connection at most per request: a request that failed twice is an error
        assert all(re.match(r"(POST|GET) \S+: (502|503|504|\w+Error: .*)$", r) for r in o["retries"]), o
    retried = [o for o in outcomes if o["retries"]]
    print(f"retried after the kill: {len(retried)} of {len(outcomes)} operations: "
          f"{[r for o in retried for r in o['retries']]}")
    # serve1 comes back and HAProxy sends to it again
    wait_for(lambda: "serve1" in haproxy_up_servers(log_at), 30, 0.5, "HAProxy to see serve1 up again")
    assert_vim_matches(api, os_conn, fleet)


def asdict_step(step: Step) -> dict[str, Any]:
    return {"instance": step.instance, "path": step.path, "body": step.body}


def opposite(state: str) -> str:
    return "STOPPED" if state == "STARTED" else "STARTED"


def haproxy_log_size() -> int:
    return (STATE / "log" / "haproxy.log").stat().st_size


def haproxy_up_servers(since: int) -> set[str]:
    """The servers HAProxy's health checks see up: its log says "Server meao/serveN is DOWN" and "... is UP"
    when one changes (a server starts UP); ``since``: the log's size before the changes of interest."""
    with open(STATE / "log" / "haproxy.log", "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    last = {"serve1": "UP", "serve2": "UP"}
    for name, state in re.findall(r"Server meao/(serve\d) is (UP|DOWN)", text):
        last[name] = state
    return {name for name, state in last.items() if state == "UP"}


# ---------------------------------------------------------------- pop2's link cut for a minute
def link_is_up(link: str) -> bool:
    out = subprocess.run(["ip", "-o", "link", "show", link], capture_output=True, text=True, check=True).stdout
    return "state UP" in out


def test_cut_pop2_link_during_a_burst(api: httpx.Client, os_conn, fleet: dict[str, list[str]]) -> None:  # noqa: F811
    """pop2's link down for CUT_S seconds while both PoPs have operations: pop1's complete during the cut;
    pop2's complete after it, or end FAILED_TEMP with a reason and complete on retry; Nova matches the
    database and nothing is orphaned."""
    since = datetime.now(UTC)
    client = oss_client()
    pop1_lanes = [alternate(iid, 4, first=opposite(state_of(api, iid))) for iid in fleet["pop1"]]
    pop1_out: list[Any] = []
    runner = threading.Thread(target=lambda: pop1_out.extend(run_lanes(client, pop1_lanes)), daemon=True)
    restored = False
    try:
        runner.start()
        # pop2's first instance is cut in the middle of its operation, its second one's job is sent during
        # the cut (it waits in the queue the PoP cannot reach)
        first, *others = fleet["pop2"]
        pop2_ops = {first: start(api, f"/app_instances/{first}/operate", stop(opposite(state_of(api, first))))}
        wait_for(lambda: op_state(api, pop2_ops[first]) != "STARTING", 60, 0.02, "pop2's worker to take its job")
        lab("wan.sh", "cut", "pop2", "--link")
        cut_at = time.monotonic()
        print(f"pop2's link cut with its first operation {op_state(api, pop2_ops[first])}")
        pop2_ops |= {iid: start(api, f"/app_instances/{iid}/operate", stop(opposite(state_of(api, iid))))
                     for iid in others}
        runner.join(CUT_S - 5)
        assert not runner.is_alive(), f"pop1's operations did not end within {CUT_S - 5}s of pop2's cut"
        assert not link_is_up("mlab-p2"), "pop2's link is still cut while pop1's operations end"
        bad = [o for o in pop1_out if o.state != "COMPLETED" or o.error or o.retries]
        assert len(pop1_out) == 4 * len(fleet["pop1"]) and not bad, (pop1_out, worker_log("pop1"))
        waiting = [op_state(api, op) for op in pop2_ops.values()]
        print(f"pop1's {len(pop1_out)} operations completed {time.monotonic() - cut_at:.1f}s into the cut; "
              f"pop2's meanwhile: {waiting}")
        time.sleep(max(0.0, cut_at + CUT_S - time.monotonic()))  # the cut lasts CUT_S: the scenario, not a check
    finally:
        lab("wan.sh", "restore", "pop2", "--link")
        restored = True
        client.close()
    assert restored
    restored_at = time.monotonic()
    for op in pop2_ops.values():
        occ = ended(api, op)
        print(f"pop2's {op} ended {occ['operationState']} {time.monotonic() - restored_at:.1f}s after the link came back")
        if occ["operationState"] == "FAILED_TEMP":
            assert (occ.get("error") or {}).get("detail"), f"FAILED_TEMP says why: {occ}"
            print(f"pop2's {op} ended FAILED_TEMP ({occ['error']['detail']}); retrying it")
            resp = api.post(f"/app_lcm/v1/app_lcm_op_occs/{op}/retry")
            assert resp.status_code == 202, resp.text
            occ = ended(api, op)
        assert occ["operationState"] == "COMPLETED", (occ, worker_log("pop2"))
    assert_vim_matches(api, os_conn, fleet)
    problems = lab_audit(os_conn, since)
    assert not problems, problems


# ---------------------------------------------------------------- pop1 without workers
def cli_depth(queue: str) -> int | None:
    """The depth `meao queues list` shows from mlab-oss, with the operator client up.sh made there."""
    out = subprocess.run(["ip", "netns", "exec", "mlab-oss", "bash", "-c",
                          f'set -a; . {STATE}/env/oss.env; set +a; exec "$0" queues list -f json',
                          str(ROOT / ".venv" / "bin" / "meao")], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    return next((q["depth"] for q in json.loads(out.stdout) if q["name"] == queue), None)


def console_depth(api: httpx.Client, queue: str) -> int | None:
    resp = api.get("/ops/v1/console")
    assert resp.status_code == 200, f"the console's snapshot: {resp.status_code} {resp.text}"
    snap = resp.json()
    return next((q["waiting"] for q in snap["queues"] if q["name"] == queue), None)


def metrics_depth(api: httpx.Client, queue: str) -> float | None:
    text = api.get("/ops/v1/metrics").text
    found = re.search(rf'^meao_queue_depth{{[^}}]*queue="{re.escape(queue)}"[^}}]*}} (\S+)$', text,
                      re.MULTILINE)
    return float(found.group(1)) if found else None


def test_pop1_without_workers(api: httpx.Client, os_conn, fleet: dict[str, list[str]]) -> None:  # noqa: F811
    """All of pop1's workers stopped: its queue grows, and the CLI, the console and the metrics show it;
    one worker started again drains it and the operations complete."""
    workers = [f"worker-pop1-{i}" for i in (1, 2)]
    proc("stop", *workers)
    try:
        ops = [start(api, f"/app_instances/{iid}/operate", stop(opposite(state_of(api, iid))))
               for iid in fleet["pop1"]]
        n = len(ops)
        queue = "mecpm.pop1"
        wait_for(lambda: (cli_depth(queue) or 0) >= n, 60, 0.5, f"`meao queues list` to show {n} jobs on {queue}")
        wait_for(lambda: (console_depth(api, queue) or 0) >= n, 60, 0.5, f"the console to show {n} waiting")
        wait_for(lambda: (metrics_depth(api, queue) or 0) >= n, 60, 0.5, f"meao_queue_depth of {queue} >= {n}")
        for op in ops:
            assert api.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()["operationState"] == "STARTING", op
        proc("start", workers[0])
        for op in ops:
            occ = ended(api, op)
            assert occ["operationState"] == "COMPLETED", (occ, worker_log("pop1"))
        assert cli_depth(queue) == 0
        assert console_depth(api, queue) == 0
        assert metrics_depth(api, queue) == 0
    finally:
        proc("start", *workers)
    assert_vim_matches(api, os_conn, fleet)
