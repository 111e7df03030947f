"""The browser console's server side: GET /ops/v1/console, the /console/ pages, config.json, step_log.

Two kinds of live meao:

- a real `meao serve` + `meao worker` on Redis with the in-memory VIM (MEAO_VIM_DRIVER=fake), on SQLite
  and PostgreSQL, where instantiates really run: the snapshot's values, and the step timelines of a
  plain run, a cancelled-then-retried run and a rollback (MEAO_CONSOLE_REFRESH_S=0: every GET is fresh);
- a `meao serve` with MEAO_AUTH=local and tenant isolation (MEAO_CONSOLE_REFRESH_S=3600, so that what is
  cached is provably shared), and one in jwt mode for config.json.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.helpers import onboard
from tests.auth.conftest import Served, bare_env, meao_cmd, start_serve
from tests.conftest import (
    REDIS,
    ROOT,
    Stack,
    SubscriberServer,
    free_port,
    fresh_database,
    launch_stack,
    require_service,
    wait_for,
)
from tests.lcm.helpers import accepted_op, db_rows, wait_op

CONSOLE_REDIS_DB = {"sqlite": 7, "postgresql": 8}
STATIC = ROOT / "meao" / "console" / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# what each kind of file must be served as (independent of the server's own table)
EXPECTED_TYPES = {".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
                  ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}


def _when(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def _console_headers(resp: httpx.Response) -> None:
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache"


# ------------------------------------------------------------------------------------- a stack that runs ops
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ops_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              subscriber: SubscriberServer) -> Iterator[Stack]:
    """Three hosts: pop-a's MEP inside meao serve, pop-b's answering at its mep_url, pop-c's not."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp(f"console-{request.param}")
    spec = base / "mm5.json"
    spec.write_text("{}")
    subscriber.files["/mm5/v1/openapi.json"] = str(spec)
    pop_a = {"id": "pop-a", "cloud": "nowhere", "availability_zone": "az1", "served_areas": ["cell-1"],
             "latency_ms": {"cell-1": 5}, "services": [{"serName": "RNIS", "version": "2.2.1"}],
             "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}}
    hosts = [pop_a,  # the only one that fits the app
             {"id": "pop-b", "cloud": "nowhere", "availability_zone": "az2", "mep_url": subscriber.url},
             {"id": "pop-c", "cloud": "nowhere", "availability_zone": "az3",
              "mep_url": f"http://127.0.0.1:{free_port()}"}]
    (base / "hosts.yaml").write_text(yaml.safe_dump({"mec_hosts": hosts}))
    (base / "faults").mkdir()
    with fresh_database(request.param, base) as db_url:
        stack = launch_stack(base, db_url, CONSOLE_REDIS_DB[request.param], {
            "MEAO_VIM_DRIVER": "fake", "MEAO_MEC_HOSTS_FILE": str(base / "hosts.yaml"),
            "OS_CLIENT_CONFIG_FILE": str(base / "no-clouds.yaml"), "MEAO_CONSOLE_REFRESH_S": "0",
            "MEAO_TEST_FAULT_DIR": str(base / "faults")})
        try:
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def appd_id(ops_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    from descriptors.examples.build import build_package

    return onboard(ops_stack, build_package("mec-vm-app", tmp_path_factory.mktemp("pkg")))["appDId"]


@pytest.fixture()
def lcm(ops_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{ops_stack.base}/app_lcm/v1", timeout=60) as client:
        yield client


def _snapshot(stack: Stack) -> dict[str, Any]:
    resp = httpx.get(f"{stack.base}/ops/v1/console", timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _op(snap: dict[str, Any], op_id: str) -> dict[str, Any]:
    return next(o for o in snap["operations"] if o["id"] == op_id)


def _instantiate(lcm: httpx.Client, appd_id: str) -> tuple[str, str]:
    iid = lcm.post("/app_instances", json={"appDId": appd_id}).json()["id"]
    return iid, accepted_op(lcm, lcm.post(f"/app_instances/{iid}/instantiate", json={}))


def _stage_ordered(steps: list[dict[str, Any]]) -> None:
    """Every step DONE, endedAt ≥ startedAt, durationS their difference; starts never go back in time, and a
    step that started later than another (not in the same stage) started after that one ended."""
    for step in steps:
        assert step["state"] == "DONE", step
        assert _when(step["endedAt"]) >= _when(step["startedAt"]), step
        assert step["durationS"] == pytest.approx(
            (_when(step["endedAt"]) - _when(step["startedAt"])).total_seconds(), abs=0.002)
    starts = [_when(s["startedAt"]) for s in steps]
    assert starts == sorted(starts)
    for earlier, later in itertools.pairwise(steps):
        if _when(later["startedAt"]) > _when(earlier["startedAt"]):  # a later stage: the earlier one ended
            assert _when(later["startedAt"]) >= _when(earlier["endedAt"]), (earlier, later)


def test_snapshot_shows_hosts_queues_workers_package_instance_and_the_instantiate_with_its_timeline(
        ops_stack: Stack, appd_id: str, lcm: httpx.Client) -> None:
    iid, op_id = _instantiate(lcm, appd_id)
    wait_op(lcm, op_id, timeout=60)
    snap = _snapshot(ops_stack)

    pops = {p["mecHostId"]: p for p in snap["pops"]}
    assert set(pops) == {"pop-a", "pop-b", "pop-c"}
    assert pops["pop-a"]["mep"] == {"state": "EMBEDDED", "url": None, "detail": None}
    assert pops["pop-b"]["mep"]["state"] == "UP"
    assert pops["pop-c"]["mep"]["state"] == "DOWN" and "did not answer" in pops["pop-c"]["mep"]["detail"]
    a = pops["pop-a"]
    assert (a["queue"], a["cloud"], a["zone"], a["capacityError"]) == ("mecpm.pop-a", "nowhere", "az1", None)
    assert a["capacity"]["instances"]["used"] == 1  # the instance just made landed on pop-a (ties go by id)
    assert a["capacity"]["vcpus"]["used"] >= 1 and a["capacity"]["vcpus"]["total"] >= a["capacity"]["vcpus"]["used"]
    assert pops["pop-b"]["capacity"]["instances"]["used"] == 0
    assert a["queueDepth"] == 0 and a["oldestWaitingAgeS"] is None
    assert [w["state"] for w in a["workers"]] == ["ONLINE"] and a["workers"][0]["heartbeatAgeS"] is not None
    queues = {q["name"]: q for q in snap["queues"]}
    assert queues["mecpm.pop-a"]["pops"] == ["pop-a"] and queues["mecpm.pop-a"]["failed"] == 0
    assert "meao.catalogue" in queues

    [pkg] = [p for p in snap["packages"] if p["appDId"] == appd_id]
    assert (pkg["onboardingState"], pkg["operationalState"], pkg["usageState"]) == ("ONBOARDED", "ENABLED", "IN_USE")
    assert pkg["onboardingFailureDetails"] is None
    [inst] = [i for i in snap["instances"] if i["id"] == iid]
    assert (inst["instantiationState"], inst["operationalState"], inst["mecHostId"]) == ("INSTANTIATED", "STARTED",
                                                                                          "pop-a")
    assert inst["serverId"] and inst["portIds"]
    assert snap["counts"]["packages"] >= 1 and snap["counts"]["instances"] >= 1
    assert snap["counts"]["operationsByState"]["COMPLETED"] >= 1

    op = _op(snap, op_id)
    assert (op["lcmOperation"], op["operationState"], op["appInstanceId"], op["mecHostId"], op["queue"]) == (
        "INSTANTIATE", "COMPLETED", iid, "pop-a", "mecpm.pop-a")
    assert op["requestId"] == f"req-{op_id}" and op["attempt"] == 1 and op["currentStep"] is None
    assert op["error"] is None and op["worker"]
    [done] = db_rows(ops_stack, "SELECT steps_done FROM app_lcm_op_occ WHERE id = :id", id=op_id)
    steps_done = done[0] if isinstance(done[0], list) else json.loads(done[0])
    assert sorted(s["name"] for s in op["steps"]) == sorted(steps_done)  # steps_done unchanged, each timed
    assert {s["worker"] for s in op["steps"]} == {op["worker"]} and {s["attempt"] for s in op["steps"]} == {1}
    _stage_ordered(op["steps"])
    assert _when(op["steps"][0]["startedAt"]) >= _when(op["startTime"])
    assert _when(op["steps"][-1]["endedAt"]) <= _when(op["stateEnteredTime"])

    trends = snap["trends"]
    assert (trends["windowS"], trends["bucketS"]) == (3600, 300) and len(trends["instantiateDurationS"]) == 12
    recent = [b for b in trends["instantiateDurationS"] if b["count"]]
    assert recent and all(b["p50"] is not None and b["p95"] >= b["p50"] for b in recent)
    assert all(b["p50"] is None for b in trends["instantiateDurationS"] if not b["count"])
    depth = {s["queue"]: s["points"] for s in trends["queueDepth"]}
    assert len(depth["mecpm.pop-a"]) == 12 and max(p["depth"] for p in depth["mecpm.pop-a"]) >= 1
    assert _when(snap["generatedAt"]) >= _when(op["stateEnteredTime"])
    assert snap["viewer"] == {"subject": None, "scopes": snap["viewer"]["scopes"], "tenant": None, "operator": True}
    assert "ops:admin" in snap["viewer"]["scopes"]  # MEAO_AUTH=none: every action is open


def _hold(stack: Stack, point: str) -> Path:
    hold = Path(stack.env["MEAO_TEST_FAULT_DIR"]) / f"hold-{point}"
    hold.write_text("")
    return hold


def _held_at_server(stack: Stack, lcm: httpx.Client, appd_id: str) -> tuple[str, str]:
    """An instantiate held inside its server step (until the hold file goes), seen RUNNING there."""
    at = Path(stack.env["MEAO_TEST_FAULT_DIR"]) / "at-step-server"
    at.unlink(missing_ok=True)
    hold = _hold(stack, "step-server")
    iid, op_id = _instantiate(lcm, appd_id)
    try:
        wait_for(at.exists, 60, 0.05, "the worker to reach the server step")
        snap = _snapshot(stack)
        op = _op(snap, op_id)
        assert (op["operationState"], op["currentStep"]) == ("PROCESSING", "server")
        states = {s["name"]: s["state"] for s in op["steps"]}
        assert states == {"grant": "DONE", "image": "DONE", "flavor": "DONE", "ports": "DONE", "server": "RUNNING"}
        running = next(s for s in op["steps"] if s["name"] == "server")
        assert running["endedAt"] is None and running["durationS"] is None and running["worker"] == op["worker"]
        assert snap["operations"][0]["operationState"] in ("PROCESSING", "STARTING", "FAILED_TEMP")  # active first
        assert next(q for q in snap["queues"] if q["name"] == "mecpm.pop-a")["running"] >= 1
        cancel = lcm.post(f"/app_lcm_op_occs/{op_id}/cancel", json={"CancelMode": "GRACEFUL"})
        assert cancel.status_code == 202, cancel.text
    finally:
        hold.unlink(missing_ok=True)
    wait_op(lcm, op_id, ("FAILED_TEMP",), timeout=60)
    return iid, op_id


def test_a_cancelled_then_retried_instantiate_keeps_both_attempts_in_its_timeline(
        ops_stack: Stack, appd_id: str, lcm: httpx.Client) -> None:
    _, op_id = _held_at_server(ops_stack, lcm, appd_id)
    snap = _snapshot(ops_stack)
    op = _op(snap, op_id)
    assert op["error"]["title"] == "Cancelled" and op["error"]["status"] == 409
    assert [s["name"] for s in op["steps"]][-1] == "server" and op["steps"][-1]["state"] == "DONE"
    assert next(q for q in snap["queues"] if q["name"] == "mecpm.pop-a")["failed"] >= 1
    assert snap["counts"]["operationsByState"]["FAILED_TEMP"] >= 1

    assert lcm.post(f"/app_lcm_op_occs/{op_id}/retry").status_code == 202
    wait_op(lcm, op_id, timeout=60)
    op = _op(_snapshot(ops_stack), op_id)
    first = [s for s in op["steps"] if s["attempt"] == 1]
    second = [s for s in op["steps"] if s["attempt"] == 2]
    assert [s["name"] for s in first] == ["grant", "image", "flavor", "ports", "server"]
    assert sorted(s["name"] for s in second) == ["app_rules", "wait_active"]  # the rest, not redone
    _stage_ordered(op["steps"])
    assert op["attempt"] == 2 and op["operationState"] == "COMPLETED"


def test_a_rollback_is_timed_as_undo_steps_of_its_own_attempt(
        ops_stack: Stack, appd_id: str, lcm: httpx.Client) -> None:
    _, op_id = _held_at_server(ops_stack, lcm, appd_id)
    failed = lcm.post(f"/app_lcm_op_occs/{op_id}/fail")  # 200 once rolled back (or 202 still going)
    assert failed.status_code in (200, 202), failed.text
    wait_op(lcm, op_id, ("FAILED",), timeout=60)
    op = _op(_snapshot(ops_stack), op_id)
    undo = [s for s in op["steps"] if s["attempt"] == 2]
    assert undo and all(s["name"].startswith("undo:") for s in undo)
    assert "undo:server" in {s["name"] for s in undo}
    assert [s["name"] for s in op["steps"] if s["attempt"] == 1] == ["grant", "image", "flavor", "ports", "server"]
    _stage_ordered(op["steps"])
    assert op["operationState"] == "FAILED" and op["worker"]


def test_the_etag_stays_while_nothing_changes_and_moves_when_something_does(
        ops_stack: Stack, appd_id: str, lcm: httpx.Client) -> None:
    """MEAO_CONSOLE_REFRESH_S=0: every GET computes afresh, with a new generatedAt; the ETag leaves it out."""
    url = f"{ops_stack.base}/ops/v1/console"

    def same_tag_twice() -> tuple[str, str] | None:  # once the earlier tests' operations have settled
        first, second = httpx.get(url, timeout=30), httpx.get(url, timeout=30)
        assert first.status_code == second.status_code == 200
        assert first.json()["generatedAt"] != second.json()["generatedAt"], "two computations"
        return (second.headers["ETag"], second.json()["generatedAt"]) \
            if first.headers["ETag"] == second.headers["ETag"] else None

    def not_modified() -> str | None:
        etag, _ = wait_for(same_tag_twice, 60, 0.2, "two snapshots in a row with the same ETag")
        again = httpx.get(url, headers={"If-None-Match": etag}, timeout=30)
        return etag if again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag else None

    etag = wait_for(not_modified, 60, 0.2, "a 304 for the ETag of an earlier computation")
    iid = lcm.post("/app_instances", json={"appDId": appd_id, "appInstanceName": "etag-probe"}).json()["id"]
    try:
        changed = httpx.get(url, headers={"If-None-Match": etag}, timeout=30)
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        assert iid in [i["id"] for i in changed.json()["instances"]]
    finally:
        assert lcm.delete(f"/app_instances/{iid}").status_code == 204


def test_a_worker_that_stops_stays_listed_under_its_pop_as_lost(ops_stack: Stack) -> None:
    """The last test on this stack: it stops the worker."""
    def pop_a_workers() -> list[dict[str, Any]]:
        return next(p for p in _snapshot(ops_stack)["pops"] if p["mecHostId"] == "pop-a")["workers"]

    [online] = pop_a_workers()
    assert online["state"] == "ONLINE"
    worker = ops_stack.procs["worker"]
    worker.terminate()
    worker.wait(30)
    lost = wait_for(lambda: [w for w in pop_a_workers() if w["state"] == "LOST"], 60, 0.5,
                    "the stopped worker to be reported LOST")
    assert [w["name"] for w in lost] == [online["name"]] and lost[0]["running"] == 0
    assert lost[0]["heartbeatAgeS"] is not None


# ------------------------------------------------------------------------------------- access, cache, tenants
@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    """`meao serve` (embedded worker, SQLite) with MEAO_AUTH=local, tenant isolation and a long refresh."""
    tmp = tmp_path_factory.mktemp("console-local")
    env = bare_env(tmp / "var", MEAO_AUTH="local", MEAO_TENANT_ISOLATION="true", MEAO_CONSOLE_REFRESH_S="3600",
                   MEAO_AUTH_TOKEN_BURST="100000")
    served = start_serve(tmp, env)
    try:
        yield served, env
    finally:
        served.stop()


def _client(served: Served, env: dict[str, str], *scopes: str, tenant: str | None = None,
            operator: bool = False) -> tuple[httpx.Client, str]:
    name = f"c-{tenant or 'none'}-{len(scopes)}-{free_port()}"
    args = ["auth", "client", "create", name, "-f", "json", *[f"--scope={s}" for s in scopes]]
    result = meao_cmd(env, *args, *(["--tenant", tenant] if tenant else []), *(["--operator"] if operator else []))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    resp = httpx.post(f"{served.base}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(doc["client_id"], doc["client_secret"]), timeout=30)
    assert resp.status_code == 200, resp.text
    return httpx.Client(base_url=served.base, timeout=30,
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"}), name


@dataclass
class Caller:
    """A client of the local meao and what the fixture made for its tenant."""

    http: httpx.Client
    name: str
    pkg_id: str = ""
    instance_id: str = ""
    op_id: str = ""


def _seed_instance_and_op(data_dir: Path, tenant: str, completed: bool) -> tuple[str, str]:
    """An instance of ``tenant`` and an INSTANTIATE of it, written to the database as a worker would have
    left them (this meao has no cloud): COMPLETED after 8 s, or FAILED_TEMP with its image step cut off."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from meao.db.models import AppInstance, AppLcmOpOcc

    now = datetime.now(UTC)
    started = now - timedelta(seconds=10)
    engine = create_engine(f"sqlite:///{data_dir / 'meao.db'}")
    try:
        with Session(engine) as session, session.begin():
            inst = AppInstance(name=f"app-{tenant}", app_pkg_id="none", appd_id=f"appd-{tenant}", app_provider="p",
                               app_name=f"app-{tenant}", app_soft_version="1", appd_version="1", tenant=tenant,
                               instantiation_state="INSTANTIATED" if completed else "NOT_INSTANTIATED")
            session.add(inst)
            session.flush()
            step = {"name": "image", "started_at": started.isoformat(), "worker": "celery@gone", "attempt": 1,
                    "ended_at": (started + timedelta(seconds=8)).isoformat() if completed else None}
            op = AppLcmOpOcc(app_instance_id=inst.id, lcm_operation="INSTANTIATE", start_time=started,
                             operation_state="COMPLETED" if completed else "FAILED_TEMP",
                             state_entered_time=started + timedelta(seconds=8), step_log=[step],
                             error=None if completed else {"type": "about:blank", "title": "Worker lost",
                                                           "status": 503, "detail": "the worker stopped"})
            session.add(op)
            session.flush()
            return inst.id, op.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def tenants(local: tuple[Served, dict[str, str]]) -> dict[str, Caller]:
    """Tenants t1 and t2, each with a package that failed onboarding (its source does not answer), an
    instance and an INSTANTIATE (t1's COMPLETED, t2's FAILED_TEMP), and an operator; all made before
    any snapshot is read, so every cached view shows them."""
    served, env = local
    out = {}
    for tenant in ("t1", "t2"):
        client, name = _client(served, env, "ops:read", "app_pkgm:write", "app_pkgm:read", tenant=tenant)
        body = {"appPkgName": f"pkg-{tenant}", "appPkgVersion": "1.0",
                "checksum": {"algorithm": "SHA-256", "hash": "0" * 64},
                "appPkgPath": f"http://127.0.0.1:{free_port()}/{tenant}.zip"}
        created = client.post("/app_pkgm/v1/app_packages", json=body)
        assert created.status_code == 201, created.text
        pkg_id = created.json()["id"]
        wait_for(lambda c=client, p=pkg_id: "onboardingFailureDetails" in c.get(f"/app_pkgm/v1/app_packages/{p}").json(),
                 60, 0.2, "the onboarding to fail")
        instance_id, op_id = _seed_instance_and_op(served.data_dir, tenant, completed=tenant == "t1")
        out[tenant] = Caller(client, name, pkg_id, instance_id, op_id)
    operator, name = _client(served, env, "ops:read", "ops:admin", operator=True)
    out["operator"] = Caller(operator, name)
    return out


def _snapshots_computed(client: httpx.Client) -> float:
    text = client.get("/ops/v1/metrics").text
    found = re.search(r"^meao_console_snapshots_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_concurrent_callers_share_one_computation_per_view(
        tenants: dict[str, Caller]) -> None:
    operator = tenants["operator"].http
    before = _snapshots_computed(operator)

    def get(_: int) -> httpx.Response:
        return operator.get("/ops/v1/console")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, range(8)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.headers["ETag"] for r in answers}) == 1
    assert _snapshots_computed(operator) - before == 1
    again = operator.get("/ops/v1/console", headers={"If-None-Match": answers[0].headers["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == answers[0].headers["ETag"]
    assert again.headers["Cache-Control"] == "no-cache"
    assert operator.get("/ops/v1/console", headers={"If-None-Match": 'W/"nope", *'}).status_code == 304
    assert _snapshots_computed(operator) - before == 1  # cached for MEAO_CONSOLE_REFRESH_S
    tenants["t1"].http.get("/ops/v1/console")
    assert _snapshots_computed(operator) - before == 2  # another tenant view: computed apart


def test_each_tenant_sees_its_own_packages_and_an_operator_every_one(
        tenants: dict[str, Caller]) -> None:
    for tenant in ("t1", "t2"):
        caller = tenants[tenant]
        snap = caller.http.get("/ops/v1/console").json()
        assert [p["id"] for p in snap["packages"]] == [caller.pkg_id]
        failure = snap["packages"][0]["onboardingFailureDetails"]
        assert failure["status"] >= 400 and failure["detail"]
        assert [i["id"] for i in snap["instances"]] == [caller.instance_id]
        assert [o["id"] for o in snap["operations"]] == [caller.op_id]
        state = "COMPLETED" if tenant == "t1" else "FAILED_TEMP"
        assert snap["counts"] == {"packages": 1, "instances": 1, "operationsByState": {state: 1}}
        assert snap["viewer"] == {"subject": caller.name, "scopes": ["app_pkgm:read", "app_pkgm:write", "ops:read"],
                                  "tenant": tenant, "operator": False}
        [step] = snap["operations"][0]["steps"]
        durations = [b for b in snap["trends"]["instantiateDurationS"] if b["count"]]
        if tenant == "t1":
            assert (step["state"], step["durationS"], step["worker"]) == ("DONE", 8.0, "celery@gone")
            assert [(b["count"], b["p50"], b["p95"]) for b in durations] == [(1, 8.0, 8.0)]
        else:  # cut off: its attempt no longer runs
            assert (step["state"], step["endedAt"], step["durationS"]) == ("FAILED", None, None)
            assert snap["operations"][0]["error"]["title"] == "Worker lost"
            assert durations == []  # t1's instantiate is not t2's
    operator = tenants["operator"]
    snap = operator.http.get("/ops/v1/console").json()
    assert {tenants["t1"].pkg_id, tenants["t2"].pkg_id} <= {p["id"] for p in snap["packages"]}
    assert {tenants["t1"].op_id, tenants["t2"].op_id} <= {o["id"] for o in snap["operations"]}
    assert snap["operations"][0]["id"] == tenants["t2"].op_id  # the active one first
    assert snap["viewer"] == {"subject": operator.name, "scopes": ["ops:admin", "ops:read"], "tenant": None,
                              "operator": True}


def test_a_host_whose_cloud_cannot_be_read_says_why_and_the_snapshot_still_answers(
        local: tuple[Served, dict[str, str]], tenants: dict[str, Caller]) -> None:
    served, env = local
    dead = f"http://127.0.0.1:{free_port()}"
    put = tenants["operator"].http.put("/ops/v1/mec_hosts/edge-x",
                                     json={"id": "edge-x", "cloud": "no-such-cloud", "mepUrl": dead})
    assert put.status_code == 201, put.text
    fresh, _ = _client(served, env, "ops:read", tenant="t3")  # a view nobody computed yet
    resp = fresh.get("/ops/v1/console")
    assert resp.status_code == 200, resp.text
    snap = resp.json()
    [pop] = [p for p in snap["pops"] if p["mecHostId"] == "edge-x"]
    assert pop["capacity"] is None and "no-such-cloud" in pop["capacityError"]
    assert pop["mep"]["state"] == "DOWN" and pop["mep"]["url"] == dead and pop["mep"]["detail"]
    assert (pop["queue"], pop["queueDepth"], pop["workers"]) == ("mecpm.edge-x", 0, [])
    assert snap["packages"] == [] and snap["counts"]["packages"] == 0  # t3 has none


def test_the_snapshot_needs_a_token_with_ops_read_and_a_tenant_or_operator(
        local: tuple[Served, dict[str, str]]) -> None:
    served, env = local
    anonymous = httpx.get(f"{served.base}/ops/v1/console", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["Content-Type"] == "application/problem+json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    no_scope, _ = _client(served, env, "app_lcm:read", tenant="t1")
    refused = no_scope.get("/ops/v1/console")
    assert refused.status_code == 403 and "ops:read" in refused.json()["detail"]
    nobody, _ = _client(served, env, "ops:read")  # no tenant, not an operator: isolation fails closed
    assert nobody.get("/ops/v1/console").status_code == 403


# ------------------------------------------------------------------------------------- the pages
def _raw_get(base: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``target`` exactly as written (HTTP clients remove dot segments before sending)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_the_pages_are_served_with_the_console_headers_and_nothing_outside_them(
        local: tuple[Served, dict[str, str]]) -> None:
    served, _ = local
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    index = httpx.get(f"{served.base}/console/", headers=browser, timeout=30)
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.content == (STATIC / "index.html").read_bytes()
    _console_headers(index)
    for path in sorted(p for p in STATIC.rglob("*") if p.is_file()):
        resp = httpx.get(f"{served.base}/console/{path.relative_to(STATIC).as_posix()}", timeout=30)
        assert resp.status_code == 200 and resp.content == path.read_bytes(), path
        if path.suffix in EXPECTED_TYPES:
            assert resp.headers["Content-Type"].split(";")[0] == EXPECTED_TYPES[path.suffix], path
        _console_headers(resp)

    moved = httpx.get(f"{served.base}/console", timeout=30)
    assert moved.status_code == 308 and moved.headers["Location"] == "/console/"
    _console_headers(moved)
    missing = httpx.get(f"{served.base}/console/no-such-file.js", timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and "no-such-file.js" in missing.json()["detail"]
    _console_headers(missing)
    for target in ("/console/../views.py", "/console/%2e%2e/views.py", "/console/..%2fweb.py",
                   "/console/static/../../web.py", "/console//etc/passwd", "/console/.hidden"):
        status, headers, body = _raw_get(served.base, target)
        assert status in (400, 404), (target, status)
        assert b"import" not in body and b"root:" not in body, target
        if status == 404:
            assert headers["content-security-policy"] == CSP, target


def test_config_json_in_local_mode(local: tuple[Served, dict[str, str]]) -> None:
    served, _ = local
    resp = httpx.get(f"{served.base}/console/config.json", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"authMode": "local", "tokenPath": "/oauth2/token", "refreshS": 3600, "oidc": None}
    _console_headers(resp)


def test_config_json_in_jwt_mode_names_the_sign_in_and_lets_the_pages_reach_its_token_endpoint(
        tmp_path: Path) -> None:
    from tests.auth.idp import ISSUER, jwt_env

    env = jwt_env(tmp_path / "var", f"http://127.0.0.1:{free_port()}/certs",
                  MEAO_CONSOLE_OIDC_CLIENT_ID="meao-console",
                  MEAO_CONSOLE_OIDC_AUTHORIZATION_URL="https://idp.example/realms/mec/protocol/openid-connect/auth",
                  MEAO_CONSOLE_OIDC_TOKEN_URL="https://idp.example:8443/realms/mec/protocol/openid-connect/token")
    served = start_serve(tmp_path, env)
    try:
        resp = httpx.get(f"{served.base}/console/config.json", timeout=30)
        assert resp.status_code == 200
        assert resp.json() == {"authMode": "jwt", "tokenPath": "/oauth2/token", "refreshS": 2, "oidc": {
            "issuer": ISSUER, "clientId": "meao-console", "scope": "openid ops:read app_lcm:read app_pkgm:read",
            "authorizationEndpoint": "https://idp.example/realms/mec/protocol/openid-connect/auth",
            "tokenEndpoint": "https://idp.example:8443/realms/mec/protocol/openid-connect/token",
            "redirectUri": f"{served.base}/console/"}}
        csp = resp.headers["Content-Security-Policy"]
        assert "connect-src 'self' https://idp.example:8443;" in csp and "form-action 'self';" in csp
        assert httpx.get(f"{served.base}/console/", timeout=30).headers["Content-Security-Policy"] == csp
    finally:
        served.stop()


def test_the_wheel_ships_every_static_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = tmp_path.glob("meao-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"meao/console/{p.relative_to(STATIC.parent).as_posix()}" for p in STATIC.rglob("*") if p.is_file()}
    assert "meao/console/static/index.html" in wanted
    assert wanted <= names, wanted - names


# ------------------------------------------------------------------------------------- the pure parts
def test_percentiles_interpolate_between_ranks_and_buckets_keep_the_highest_depth() -> None:
    from meao.console.views import _highest_depths, percentile

    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 21)], 95) == pytest.approx(19.05)
    t0 = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    starts = [at(0), at(300), at(600)]
    # two jobs overlap inside the first bucket, one waits across the second, none in the third
    spans = [(at(10), at(20)), (at(15), at(400)), (at(-50), at(5))]
    assert _highest_depths(spans, starts, 300) == [2, 1, 0]


def test_a_step_left_open_by_an_attempt_that_no_longer_runs_is_failed() -> None:
    from types import SimpleNamespace

    from meao.lcm.lifecycle import step_state

    running = SimpleNamespace(worker="celery@a", attempt=2)
    ended = SimpleNamespace(worker=None, attempt=2)
    assert step_state({"attempt": 2, "ended_at": "2026-12-07T16:00:00+00:00"}, running) == "DONE"
    assert step_state({"attempt": 2, "ended_at": None}, running) == "RUNNING"
    assert step_state({"attempt": 1, "ended_at": None}, running) == "FAILED"  # a retry superseded it
    assert step_state({"attempt": 2, "ended_at": None}, ended) == "FAILED"  # the attempt ended (failed, reaped)
