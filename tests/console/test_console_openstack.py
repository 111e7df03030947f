"""The console in a real browser on the OpenStack test bed: an instantiate shows up as a running job whose
steps fill in; an operation that OpenStack fails shows its ProblemDetails and completes when retried from
the page. These runs also take the README's pictures (MEAO_CONSOLE_SCREENSHOTS=docs/console).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.conftest import REDIS, launch_stack, require_service, wait_for
from tests.console.browser import Browser
from tests.console.stack import (
    ADMIN_SCOPES,
    CONSOLE_ENV,
    ConsoleStack,
    confirm,
    js_errors,
    last_toast,
    open_section,
    shown_steps,
    sign_in,
)
from tests.faults.stack import FaultDir
from tests.lcm.conftest import hosts_doc, networks, os_conn  # noqa: F401 - the test bed's fixtures
from tests.lcm.helpers import accepted_op

pytestmark = pytest.mark.openstack
# a module-scoped stack: Redis database 4 is also tests/api/test_app_lcm.py's, never alive at the same time
REDIS_DB = 4


def _on(pop: str) -> dict[str, Any]:
    return {"selectedMECHostInfo": [{"hostId": {"id": pop}}]}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, clouds_yaml: Path,
            networks: dict[str, str]) -> Iterator[ConsoleStack]:  # noqa: F811
    """`meao serve` + `meao worker` (SQLite) on the test bed's PoPs (tests/lcm's hosts), MEAO_AUTH=local."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp("console-os")
    hosts_file = base / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(hosts_doc(networks)))
    stack = launch_stack(base, f"sqlite:///{base / 'meao.db'}", REDIS_DB, {
        **CONSOLE_ENV, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "MEAO_MEC_HOSTS_FILE": str(hosts_file),
        "MEAO_HEARTBEAT_S": "1", "MEAO_BOOT_TIMEOUT_S": "120", "MEAO_TEST_FAULT_DIR": str(base / "faults")})
    stack.hosts_file = hosts_file  # type: ignore[attr-defined]
    try:
        console = ConsoleStack(stack)
        console.register("ops-admin", *ADMIN_SCOPES)
        yield console
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def api(console: ConsoleStack) -> Iterator[httpx.Client]:
    with console.api("ops-admin") as client:
        yield client


@pytest.fixture(scope="module")
def vm_pkg(console: ConsoleStack, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from descriptors.examples.build import build_package

    return console.onboard(api, build_package("mec-vm-app", tmp_path_factory.mktemp("vm")))


@pytest.fixture(scope="module")
def instances(api: httpx.Client) -> Iterator[list[str]]:
    """Instances the tests make; terminated and deleted at the end (nothing is left at the test bed)."""
    made: list[str] = []
    yield made
    for iid in made:
        inst = api.get(f"/app_lcm/v1/app_instances/{iid}").json()
        if inst.get("instantiationState") == "INSTANTIATED":
            op = accepted_op(api, api.post(f"/app_lcm/v1/app_instances/{iid}/terminate",
                                           json={"terminationType": "FORCEFUL"}))
            _wait_state(api, op, "COMPLETED")
        api.delete(f"/app_lcm/v1/app_instances/{iid}")


def _wait_state(api: httpx.Client, op_id: str, *states: str, timeout: float = 150) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        op = api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()
        return op if op["operationState"] in states else None

    return wait_for(ended, timeout, 0.3, f"operation {op_id} in {states}")


def _instantiate(api: httpx.Client, instances: list[str], pkg: dict[str, Any], name: str, pop: str) -> tuple[str, str]:
    resp = api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"], "appInstanceName": name})
    assert resp.status_code == 201, resp.text
    iid = resp.json()["id"]
    instances.append(iid)
    return iid, accepted_op(api, api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate", json=_on(pop)))


def _set_host_network(console: ConsoleStack, host: str, network: str) -> None:
    """Point ``host``'s default network elsewhere, in the hosts file and the database (as tests/lcm does)."""
    from meao.lcm.hosts import validate_host

    path: Path = console.stack.hosts_file  # type: ignore[attr-defined]
    doc = yaml.safe_load(path.read_text())
    entry = next(h for h in doc["mec_hosts"] if h["id"] == host)
    entry["networks"] = {**entry["networks"], "default": network}
    path.write_text(yaml.safe_dump(doc))
    eng = create_engine(console.stack.env["MEAO_DATABASE_URL"])
    with eng.begin() as conn:
        conn.execute(text("update mec_host set networks = :n where id = :i"),
                     {"n": json.dumps(validate_host(entry)["networks"]), "i": host})
    eng.dispose()


def test_an_instantiate_shows_as_a_running_job_and_its_steps_fill_in(
        browser: Browser, console: ConsoleStack, api: httpx.Client, vm_pkg: dict[str, Any],
        instances: list[str]) -> None:
    faults = FaultDir(Path(console.stack.env["MEAO_TEST_FAULT_DIR"]))
    faults.clear()
    with faults.holding("step:server"):  # the worker stops before booting the server, until released
        iid, op_id = _instantiate(api, instances, vm_pkg, "video-analytics-1", "pop1")
        sign_in(browser, console, "ops-admin")
        open_section(browser, "jobs")
        browser.wait_text("op-state", lambda t: t == "PROCESSING", within=f"op-{op_id}")
        browser.wait_text("queue-running", lambda t: t == "1", within="queue-mecpm.pop1")
        browser.click(f"op-{op_id}")
        assert browser.text_of("op-request-id", within="op-detail") == f"req-{op_id}"
        faults.arrived("step:server")
        browser.wait(lambda d: shown_steps(browser).get("server") == "RUNNING", 30, "the server step RUNNING")
        steps = shown_steps(browser)
        assert all(steps[name] == "DONE" for name in ("grant", "image", "flavor", "ports")), steps
        assert "wait_active" not in steps, steps
        browser.readme_picture("operation")
    browser.wait_text("op-detail-state", lambda t: t == "COMPLETED", within="op-detail", timeout=150)
    steps = shown_steps(browser)
    assert set(steps) >= {"grant", "image", "flavor", "ports", "server", "wait_active", "app_rules"}, steps
    assert set(steps.values()) == {"DONE"}, steps

    # the PoP card reads the capacity from OpenStack; the instance row shows the OpenStack ids
    open_section(browser, "pops")
    card = browser.wait_text("pop-pop1", lambda t: "vCPU" in t and "Instances" in t)
    assert "ONLINE" in card and "mecpm.pop1" in card
    browser.readme_picture("pops")
    inst = api.get(f"/app_lcm/v1/app_instances/{iid}").json()
    server_id = inst["vimResources"]["computeResource"]["resourceId"]
    open_section(browser, "catalogue")
    row = browser.wait_text(f"instance-{iid}", lambda t: "INSTANTIATED" in t)
    assert server_id in row and "video-analytics-1" in row and "pop1" in row, row
    assert "ONBOARDED" in browser.text_of(f"package-{vm_pkg['id']}")
    browser.readme_picture("catalogue")
    assert not js_errors(browser), js_errors(browser)


def test_an_operation_openstack_fails_shows_its_problem_and_completes_when_retried_from_the_page(
        browser: Browser, console: ConsoleStack, api: httpx.Client, vm_pkg: dict[str, Any],
        instances: list[str], networks: dict[str, str]) -> None:  # noqa: F811
    _set_host_network(console, "pop2", "no-such-network")
    try:
        _, op_id = _instantiate(api, instances, vm_pkg, "video-analytics-2", "pop2")
        _wait_state(api, op_id, "FAILED_TEMP")
        sign_in(browser, console, "ops-admin")
        open_section(browser, "jobs")
        browser.wait_text("op-state", lambda t: t == "FAILED_TEMP", within=f"op-{op_id}")
        browser.click(f"op-{op_id}")
        error = browser.text_of("op-error", within="op-detail")
        problem = api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()["error"]
        assert problem["title"] in error and problem["detail"] in error and str(problem["status"]) in error
        assert "no-such-network" in error
        assert "FAILED" in shown_steps(browser).values(), "the step that failed shows as FAILED"
    finally:
        _set_host_network(console, "pop2", networks["mgmt"])
    browser.click("action-retry", within="op-detail")
    assert f"Retry INSTANTIATE of mec-vm-app (operation {op_id})" in confirm(browser)
    assert "was sent again" in last_toast(browser).text
    browser.wait_text("op-detail-state", lambda t: t == "COMPLETED", within="op-detail", timeout=150)
    assert shown_steps(browser).get("app_rules") == "DONE"
    assert not browser.find_all('[data-testid="op-detail"] [data-testid="op-error"]'), "the error is gone"
    assert api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()["operationState"] == "COMPLETED"

    open_section(browser, "trends")
    browser.by_testid("chart-instantiate")
    browser.by_testid("chart-depth")
    browser.readme_picture("trends")
    assert not js_errors(browser), js_errors(browser)
