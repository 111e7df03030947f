"""Job queues, workers and metrics through the CLI, on a live API and worker over real Redis.

The queues are read from Redis and the workers from Celery's own remote control and heartbeats; these
tests drive them through `meao queues|workers|jobs` as subprocesses and check the broker agrees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.api.helpers import create_from_file, wait_outcome
from tests.cli.helpers import client_env, failed, ok, ok_json, run_meao
from tests.conftest import REDIS, Stack, free_port, launch_stack, require_service, wait_for

REDIS_DB = 15  # each stack its own database: 0-1 api paging, 2 pkgm limits, 3 granting, 4 api lcm,
# 6 mep e2e, 7 faults, 8 fake driver, 9-10 auth, 11-13 api/lcm stacks, 14 fuzz; 5 is the benches'
HOSTS = {"mec_hosts": [{"id": "pop-a", "cloud": "demo", "served_areas": ["cell-1"]},
                       {"id": "pop-b", "cloud": "demo", "served_areas": ["cell-2"]}]}


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API + one worker (SQLite, Redis db 14), two MEC hosts, worker metrics on a port."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp("ops")
    hosts = base / "hosts.yaml"
    hosts.write_text(yaml.safe_dump(HOSTS))
    metrics_port = free_port()
    stack = launch_stack(base, f"sqlite:///{base / 'meao.db'}", REDIS_DB, {
        "MEAO_MEC_HOSTS_FILE": str(hosts), "MEAO_WORKER_METRICS_PORT": str(metrics_port),
        "MEAO_LOG_FORMAT": "json", "MEAO_AUTH": "none"})
    stack.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture()
def meao(ops_stack: Stack, tmp_path: Path) -> Callable[..., Any]:
    env = client_env(ops_stack.base, tmp_path)
    return lambda *args: run_meao(*args, env=env)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Example packages with distinct appDIds (an appDId may be onboarded once)."""
    from descriptors.examples.build import build_package

    out = tmp_path_factory.mktemp("pkg")
    return [build_package(name, out) for name in ("mec-minimal", "mec-json-appd", "mec-vm-app")]


def _worker(meao: Callable[..., Any]) -> dict[str, Any]:
    """The single worker, once it has answered and been heard."""
    def heard() -> dict[str, Any] | None:
        workers = ok_json(meao("workers", "list", "-f", "json", "-c", "name", "-c", "status",
                               "-c", "heartbeatAgeSeconds", "-c", "concurrency", "-c", "queues", "-c", "pops",
                               "-c", "jobsDone"))
        online = [w for w in workers if w["status"] in ("online", "draining")]
        return online[0] if len(online) == 1 and online[0]["heartbeatAgeSeconds"] is not None else None

    return wait_for(heard, 30, 0.5, "the worker to answer and send a heartbeat")


def _depth(meao: Callable[..., Any], queue: str) -> int:
    rows = ok_json(meao("queues", "list", "-f", "json", "-c", "name", "-c", "depth"))
    return {r["name"]: r["depth"] for r in rows}[queue]


def test_queues_list_names_every_queue_with_its_pops_and_redis_depth(meao: Callable[..., Any]) -> None:
    rows = ok_json(meao("queues", "list", "-f", "json", "-c", "name", "-c", "pops", "-c", "depth"))
    assert rows == [{"name": "meao.catalogue", "pops": [], "depth": 0},
                    {"name": "mecpm.pop-a", "pops": ["pop-a"], "depth": 0},
                    {"name": "mecpm.pop-b", "pops": ["pop-b"], "depth": 0}]
    table = ok(meao("queues", "list"))
    assert table.splitlines()[0].split() == ["name", "pops", "depth", "oldest", "running", "failures"]


def test_worker_reports_its_queues_pops_concurrency_and_heartbeat(meao: Callable[..., Any]) -> None:
    worker = _worker(meao)
    assert worker["status"] == "online" and worker["concurrency"] == 2
    assert worker["queues"] == ["meao.catalogue", "mecpm.pop-a", "mecpm.pop-b"]
    assert worker["pops"] == ["pop-a", "pop-b"]
    assert 0 <= worker["heartbeatAgeSeconds"] < 10


def test_depth_rises_while_worker_drained_and_falls_when_resumed(
        ops_stack: Stack, meao: Callable[..., Any], packages: list[Path]) -> None:
    name = _worker(meao)["name"]
    done_before = _worker(meao)["jobsDone"]
    assert "draining" in ok(meao("workers", "drain", name))
    try:
        assert _worker(meao)["status"] == "draining"
        created = [create_from_file(ops_stack, pkg).json()["id"] for pkg in packages]
        wait_for(lambda: _depth(meao, "meao.catalogue") == 3, 10, 0.3, "three onboarding jobs in the queue")
        assert redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB).llen("meao.catalogue") == 3, "the CLI shows what Redis holds"
        waiting = ok_json(meao("jobs", "list", "--waiting", "--queue", "meao.catalogue", "-f", "json",
                               "-c", "task", "-c", "args", "-c", "state"))
        assert [j["args"][0] for j in waiting] == created, "oldest first"
        assert {j["task"] for j in waiting} == {"meao.catalogue.onboard"}
        queue = ok_json(meao("queues", "show", "meao.catalogue", "-f", "json"))
        assert queue["depth"] == 3 and queue["waiting"] == 3 and queue["oldest"].endswith("s")
        assert re.search(r"^meao\.catalogue +- +3 +\d+\.\ds +0 +0$", ok(meao("queues", "list")), re.MULTILINE)
    finally:
        assert "again" in ok(meao("workers", "resume", name))
    wait_for(lambda: _depth(meao, "meao.catalogue") == 0, 60, 0.5, "the resumed worker to empty the queue")
    for pkg_id in created:
        assert wait_outcome(ops_stack, pkg_id)["onboardingState"] == "ONBOARDED"
    wait_for(lambda: _worker(meao)["jobsDone"] >= done_before + 3, 30, 0.5, "jobsDone to count the jobs")
    assert _worker(meao)["status"] == "online"
    _delete_packages(ops_stack, created)


def _delete_packages(stack: Stack, ids: list[str]) -> None:
    with stack.client() as c:
        for pkg_id in ids:
            if c.get(f"/app_packages/{pkg_id}").json().get("operationalState") == "ENABLED":
                c.patch(f"/app_packages/{pkg_id}", json={"operationalState": "DISABLED"})
            assert c.delete(f"/app_packages/{pkg_id}").status_code == 204


def test_purge_asks_first_then_ends_the_waiting_onboarding_with_a_reason(
        ops_stack: Stack, meao: Callable[..., Any], packages: list[Path]) -> None:
    name = _worker(meao)["name"]
    ok(meao("workers", "drain", name))
    try:
        pkg_id = create_from_file(ops_stack, packages[0], name="to-purge").json()["id"]
        wait_for(lambda: _depth(meao, "meao.catalogue") == 1, 10, 0.3, "the onboarding job in the queue")
        refused = failed(meao("queues", "purge", "meao.catalogue"), 1)  # stdin is not a terminal: no "yes"
        assert "Purge 1 waiting job(s) from queue meao.catalogue?" in refused and "nothing was changed" in refused
        assert _depth(meao, "meao.catalogue") == 1
        purged = meao("queues", "purge", "meao.catalogue", "--yes", "-f", "json", "-c", "args")
        assert [j["args"][0] for j in ok_json(purged)] == [pkg_id]
        assert "purged 1 job(s) from meao.catalogue" in purged.stderr
        assert _depth(meao, "meao.catalogue") == 0
    finally:
        ok(meao("workers", "resume", name))
    info = wait_outcome(ops_stack, pkg_id, timeout=10)
    assert info["onboardingState"] == "CREATED"
    assert "purged from queue meao.catalogue" in info["onboardingFailureDetails"]["detail"]
    _delete_packages(ops_stack, [pkg_id])


def test_unknown_queue_and_worker_are_404_with_a_hint(meao: Callable[..., Any]) -> None:
    assert "meao queues list" in failed(meao("queues", "show", "mecpm.nowhere"), 4)
    assert "meao workers list" in failed(meao("workers", "drain", "celery@nowhere"), 4)


def test_metrics_count_requests_per_operation_and_read_queue_depth(ops_stack: Stack) -> None:
    with httpx.Client(base_url=ops_stack.base, timeout=10) as http:
        assert http.get("/app_pkgm/v1/app_packages").status_code == 200
        assert http.get("/app_pkgm/v1/app_packages/nope").status_code == 404
        resp = http.get("/ops/v1/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert re.search(r'meao_http_requests_total\{method="GET",operation="app_pkgm.list_packages",status="200"\} '
                     r'[1-9]', text), text[:3000]
    assert re.search(r'meao_http_requests_total\{method="GET",operation="app_pkgm.get_package",status="404"\} '
                     r'[1-9]', text), text[:3000]
    assert re.search(r'meao_http_request_duration_seconds_count\{operation="app_pkgm.list_packages"\} [1-9]', text)
    assert 'meao_queue_depth{pop="pop-a",queue="mecpm.pop-a"} 0.0' in text
    worker_metrics = httpx.get(f"http://127.0.0.1:{ops_stack.metrics_port}/metrics", timeout=10).text
    assert "meao_notification_delivery_failures_total" in worker_metrics
    assert "meao_job_step_duration_seconds" in worker_metrics


def test_worker_logs_are_json_lines(ops_stack: Stack, meao: Callable[..., Any]) -> None:
    import json

    _worker(meao)
    lines = [line for line in ops_stack.logs["worker"].read_text().splitlines() if line.startswith("{")]
    assert lines, "no JSON log line from the worker"
    doc = json.loads(lines[-1])
    assert {"ts", "level", "logger", "msg", "op_id"} <= set(doc)
