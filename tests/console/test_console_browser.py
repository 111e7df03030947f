"""The console in a real browser (Debian's Chromium through Selenium) against a real `meao serve` and
`meao worker` with access control on; the VIM is the fake driver, so none of this needs OpenStack
(test_console_openstack.py runs the lifecycle on the test bed).

Each test leaves a screenshot of what the browser showed under tests/output/console/ (tests/console/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REDIS, launch_stack, require_service, wait_for
from tests.console.browser import Browser
from tests.console.stack import (
    ADMIN_SCOPES,
    CONSOLE_ENV,
    HOSTILE,
    READ_SCOPES,
    ConsoleStack,
    confirm,
    csp_violations,
    hostile_package,
    js_errors,
    last_toast,
    open_section,
    shown_steps,
    sign_in,
    toast_of,
)
from tests.lcm.helpers import accepted_op

# a module-scoped stack: Redis database 6 is also tests/mep e2e module's, never alive at the same time
REDIS_DB = 6
POP = "pop1"
QUEUE = f"mecpm.{POP}"
HOST = {"id": POP, "name": "In-memory PoP", "cloud": "nowhere", "availability_zone": "az1",
        "location": {"countryCode": "FI", "latitude": 60.17, "longitude": 24.9}, "served_areas": ["cell-1"],
        "latency_ms": {"cell-1": 5}, "services": [{"serName": "RNIS", "version": "2.2.1"}],
        "features": [{"featureName": "UserApps", "version": "1.0"}], "networks": {"default": "net1"}}
# pop2's network does not exist at the fake VIM: an instantiate there fails at its ports step
BROKEN_POP = {**HOST, "id": "pop2", "name": "PoP with a missing network", "networks": {"default": "no-such-net"}}
PAGE_SIZE = 2
SELECTED = {"selectedMECHostInfo": [{"hostId": {"id": POP}}]}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """`meao serve` + `meao worker` (SQLite, fake VIM, one PoP) with MEAO_AUTH=local, an admin and a
    read-only client."""
    require_service("Redis", REDIS)
    base = tmp_path_factory.mktemp("console")
    hosts = base / "hosts.yaml"
    hosts.write_text(yaml.safe_dump({"mec_hosts": [HOST, BROKEN_POP]}))
    stack = launch_stack(base, f"sqlite:///{base / 'meao.db'}", REDIS_DB, {
        **CONSOLE_ENV, "MEAO_VIM_DRIVER": "fake", "MEAO_MEC_HOSTS_FILE": str(hosts),
        "MEAO_PAGE_SIZE": str(PAGE_SIZE),  # the lists' pages are small: "Show all" follows several
        "OS_CLIENT_CONFIG_FILE": str(base / "no-clouds.yaml")})
    try:
        console = ConsoleStack(stack)
        console.register("ops-admin", *ADMIN_SCOPES)
        console.register("wall-screen", *READ_SCOPES)
        yield console
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def admin_api(console: ConsoleStack) -> Iterator[httpx.Client]:
    with console.api("ops-admin") as client:
        yield client


@pytest.fixture(scope="module")
def app_pkg(console: ConsoleStack, admin_api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from descriptors.examples.build import build_package

    return console.onboard(admin_api, build_package("mec-minimal", tmp_path_factory.mktemp("pkg")))


def test_sign_in_refuses_a_wrong_secret_then_shows_the_pops(browser: Browser, console: ConsoleStack) -> None:
    browser.driver.get(console.url)
    browser.driver.execute_script("sessionStorage.clear()")
    browser.driver.get(console.url)
    client_id, secret = console.clients["ops-admin"]
    browser.by_testid("login-client-id").send_keys(client_id)
    browser.by_testid("login-client-secret").send_keys(secret + "-wrong")
    browser.by_testid("login-submit").click()
    assert "Sign-in refused" in browser.text_of("login-error")
    assert browser.driver.execute_script("return sessionStorage.getItem('meao.console.token')") is None

    sign_in(browser, console, "ops-admin")
    stored = browser.driver.execute_script("return JSON.parse(sessionStorage.getItem('meao.console.token'))")
    assert stored["accessToken"] and stored["expiresAt"] > 0 and "ops:admin" in stored["scope"]
    assert not browser.driver.get_cookies(), "the token is never a cookie"
    assert QUEUE in browser.text_of(f"pop-{POP}")
    # the worker serving the PoP shows up with its heartbeat
    browser.wait_text(f"pop-{POP}", lambda text: "ONLINE" in text, what="the worker ONLINE on the card")
    browser.readme_picture("pops")


def test_a_refused_token_sends_the_page_back_to_sign_in_with_a_message(
        browser: Browser, console: ConsoleStack) -> None:
    sign_in(browser, console, "ops-admin")
    browser.driver.execute_script(
        "const t = JSON.parse(sessionStorage.getItem('meao.console.token'));"
        "t.accessToken = 'not-a-token'; sessionStorage.setItem('meao.console.token', JSON.stringify(t));")
    assert "Signed out" in browser.text_of("login-error")
    browser.by_testid("login-form")
    assert browser.driver.execute_script("return sessionStorage.getItem('meao.console.token')") is None


def test_every_console_answer_carries_the_csp_and_the_page_breaks_none_of_it(
        browser: Browser, console: ConsoleStack) -> None:
    for path in ("", "index.html", "js/main.js", "css/console.css", "config.json", "vendor/uPlot.esm.js", "nope.js"):
        resp = httpx.get(console.url + path, timeout=10)
        assert resp.status_code == (404 if path == "nope.js" else 200), path
        assert resp.headers["Content-Security-Policy"] == CSP, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    sign_in(browser, console, "ops-admin")
    for section in ("pops", "jobs", "catalogue", "trends"):
        open_section(browser, section)
    browser.by_testid("chart-instantiate")
    # the CSP is in force in the browser: an inline script the page did not ship is refused and reported
    browser.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        "document.body.appendChild(s);")
    assert browser.driver.execute_script("return window.__inline") is None
    violations = csp_violations(browser)
    assert len(violations) == 1 and "inline" in violations[0], violations
    browser.logs.clear()


def test_hostile_names_render_as_text(browser: Browser, console: ConsoleStack, admin_api: httpx.Client,
                                      tmp_path: Path) -> None:
    pkg = console.onboard(admin_api, hostile_package(tmp_path), name="hostile")
    resp = admin_api.post("/app_lcm/v1/app_instances", json={"appDId": pkg["appDId"], "appInstanceName": HOSTILE})
    assert resp.status_code == 201, resp.text
    iid = resp.json()["id"]
    browser.logs.clear()
    sign_in(browser, console, "ops-admin")
    open_section(browser, "catalogue")
    assert HOSTILE in browser.text_of(f"package-{pkg['id']}")
    assert HOSTILE in browser.text_of(f"instance-{iid}")
    inside = browser.driver.execute_script(
        "const app = document.getElementById('app');"
        "return {img: app.querySelectorAll('img').length, script: document.querySelectorAll('script').length,"
        "        xss: window.__xss === undefined ? null : window.__xss};")
    assert inside == {"img": 0, "script": 1, "xss": None}, inside  # the one script is js/main.js
    assert not js_errors(browser), js_errors(browser)
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.driver.switch_to.alert.text  # noqa: B018 - the access raises when no alert is open
    admin_api.delete(f"/app_lcm/v1/app_instances/{iid}")


def test_purge_after_confirming_fails_the_waiting_job_and_retry_from_the_page_completes_it(
        browser: Browser, console: ConsoleStack, admin_api: httpx.Client, app_pkg: dict) -> None:
    worker = console.stack.procs["worker"]
    worker.terminate()
    try:
        worker.wait(20)  # no worker: the instantiate waits in its queue
        iid = admin_api.post("/app_lcm/v1/app_instances", json={"appDId": app_pkg["appDId"]}).json()["id"]
        op_id = accepted_op(admin_api, admin_api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate", json=SELECTED))
        sign_in(browser, console, "ops-admin")
        open_section(browser, "jobs")
        browser.wait_text("queue-waiting", lambda t: t == "1", within=f"queue-{QUEUE}", what="1 waiting job")

        browser.click("action-purge", within=f"queue-{QUEUE}")
        text = confirm(browser, ok=False)
        assert text.startswith(f"Purge queue {QUEUE}: 1 waiting job is removed and their operations fail"), text
        assert browser.text_of("queue-waiting", within=f"queue-{QUEUE}") == "1", "Cancel purged nothing"

        browser.click("action-purge", within=f"queue-{QUEUE}")
        confirm(browser)
        assert f"Queue {QUEUE} purged: 1 job removed." in last_toast(browser).text
        browser.wait_text("op-state", lambda t: t == "FAILED_TEMP", within=f"op-{op_id}")
        browser.click(f"op-{op_id}")
        assert browser.driver.execute_script("return location.hash") == f"#jobs/{op_id}", "a link to this op"
        error = browser.text_of("op-error", within="op-detail")
        assert "Job purged" in error and "503" in error and f"purged from queue {QUEUE}" in error, error
        assert browser.text_of("op-request-id", within="op-detail") == f"req-{op_id}"

        console.stack.start_worker()
        browser.click("action-retry", within=f"op-{op_id}")
        text = confirm(browser)
        assert text.startswith(f"Retry INSTANTIATE of mec-minimal (operation {op_id}): meao sends it to queue {QUEUE} "
                               "again as attempt 2"), text
        browser.wait_text("op-detail-state", lambda t: t == "COMPLETED", within="op-detail", timeout=60,
                          what="the retried operation to complete")
        steps = shown_steps(browser)
        assert {"image", "ports", "server"} <= set(steps) and set(steps.values()) == {"DONE"}, steps
        assert admin_api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()["operationState"] == "COMPLETED"
        assert not js_errors(browser), js_errors(browser)
        op = accepted_op(admin_api, admin_api.post(f"/app_lcm/v1/app_instances/{iid}/terminate",
                                                   json={"terminationType": "FORCEFUL"}))
        wait_for(lambda: admin_api.get(f"/app_lcm/v1/app_lcm_op_occs/{op}").json()["operationState"] == "COMPLETED",
                 60, 0.2, "terminate")
    finally:
        if console.stack.procs["worker"].poll() is not None:  # the later tests need a worker
            console.stack.start_worker()


def test_read_only_client_sees_no_admin_button_and_the_api_refuses_the_action(
        browser: Browser, console: ConsoleStack, app_pkg: dict) -> None:
    sign_in(browser, console, "wall-screen")
    assert "read-only" in browser.text_of("viewer")
    for section in ("pops", "jobs", "catalogue"):
        open_section(browser, section)
        assert not browser.find_all("[data-testid^='action-']"), section
    browser.by_testid(f"package-{app_pkg['id']}")  # the rows are there, their buttons are not
    with console.api("wall-screen") as api:
        resp = api.post(f"/ops/v1/queues/{QUEUE}/purge")
        assert resp.status_code == 403, resp.text
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        resp = api.patch(f"/app_pkgm/v1/app_packages/{app_pkg['id']}", json={"operationalState": "DISABLED"},
                         headers={"Content-Type": "application/merge-patch+json"})
        assert resp.status_code == 403, resp.text


def test_a_refused_action_shows_the_problem_details_in_a_toast(
        browser: Browser, console: ConsoleStack, admin_api: httpx.Client, app_pkg: dict) -> None:
    """The package is disabled behind the page's back while its confirmation is open: the page's Disable
    meets a 409 and says why."""
    sign_in(browser, console, "ops-admin")
    open_section(browser, "catalogue")
    browser.click("action-disable", within=f"package-{app_pkg['id']}")
    browser.by_testid("confirm-dialog")
    resp = admin_api.patch(f"/app_pkgm/v1/app_packages/{app_pkg['id']}", json={"operationalState": "DISABLED"},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status_code == 200, resp.text
    try:
        assert "no new instance can be instantiated from it" in confirm(browser)
        toast = last_toast(browser)
        assert toast.get_attribute("data-kind") == "error" and "409" in toast.text, toast.text
        browser.click("action-enable", within=f"package-{app_pkg['id']}")
        confirm(browser)
        browser.wait_text("package-operational", lambda t: t == "ENABLED", within=f"package-{app_pkg['id']}",
                          what="the package ENABLED again")
    finally:
        admin_api.patch(f"/app_pkgm/v1/app_packages/{app_pkg['id']}", json={"operationalState": "ENABLED"},
                        headers={"Content-Type": "application/merge-patch+json"})




def test_drain_and_resume_a_worker_from_its_pop_card(browser: Browser, console: ConsoleStack,
                                                     admin_api: httpx.Client) -> None:
    """Every step waits for a state (the page's, then the API's), never for time: the card re-renders on
    each refresh (its heartbeat ages change), and on a loaded machine a worker may miss one snapshot's
    report (LOST for a refresh) or take more than a second to answer the drain."""
    sign_in(browser, console, "ops-admin")
    card = f"pop-{POP}"
    # the worker online now (one an earlier test stopped may still be listed as LOST), read from one render
    worker = browser.wait(lambda d: d.execute_script(
        f"const rows = [...document.querySelectorAll('[data-testid=\"{card}\"] tr[data-testid^=\"worker-\"]')];"
        "const row = rows.find((r) => r.textContent.includes('ONLINE') && r.querySelector("
        "'[data-testid=\"action-drain\"]')); return row ? row.dataset.testid : null;"), what="a worker ONLINE")
    name = worker.removeprefix("worker-")

    def api_status() -> str | None:
        return next((w["status"] for w in admin_api.get("/ops/v1/workers").json() if w["name"] == name), None)

    try:
        browser.click("action-drain", within=worker)
        text = confirm(browser)
        assert text.startswith(f"Drain worker {name}: it finishes its 0 running jobs and takes no new job"), text
        kind, said = toast_of(browser)
        assert kind == "ok" and "is draining" in said, (kind, said)
        assert api_status() == "draining"
        browser.wait_text(worker, lambda t: "DRAINING" in t, what="the worker DRAINING")
        browser.click("action-resume", within=worker)
        assert "it takes jobs from its queues again" in confirm(browser)
        kind, said = toast_of(browser, after=said)
        assert kind == "ok" and "takes jobs again" in said, (kind, said)
        browser.wait_text(worker, lambda t: "ONLINE" in t, what="the worker ONLINE again")
        assert api_status() == "online"
    finally:  # the later tests need a worker that takes jobs
        if api_status() == "draining":
            admin_api.post(f"/ops/v1/workers/{name}/resume")


def test_polling_pauses_while_the_tab_is_hidden_and_resumes_when_shown(browser: Browser, console: ConsoleStack) -> None:
    sign_in(browser, console, "ops-admin")
    driver = browser.driver
    # the event's own time stamp: the page's listener (which polls at once) runs before this one
    driver.execute_script("window.__vis = []; document.addEventListener('visibilitychange', "
                          "(e) => window.__vis.push([document.visibilityState, e.timeStamp]));")
    console_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")  # the console's tab is hidden behind it
    time.sleep(4 * float(CONSOLE_ENV["MEAO_CONSOLE_REFRESH_S"]))  # a window for polls that must not happen
    driver.close()
    driver.switch_to.window(console_tab)
    browser.wait(lambda d: len(d.execute_script("return window.__vis")) == 2, what="hidden, then visible again")
    (hidden, hidden_at), (shown, shown_at) = driver.execute_script("return window.__vis")
    assert (hidden, shown) == ("hidden", "visible")

    def polls() -> list[float]:
        return driver.execute_script("return performance.getEntriesByType('resource')"
                                     ".filter((e) => e.name.endsWith('/ops/v1/console')).map((e) => e.startTime)")

    browser.wait(lambda d: [t for t in polls() if t >= shown_at], what="a poll as soon as the tab shows")
    assert not [t for t in polls() if hidden_at < t < shown_at], ("a poll while hidden", hidden_at, shown_at, polls())
    browser.wait_text("status", lambda t: t.startswith("live"), what="the page live again")


def test_live_shows_the_last_poll_while_an_unchanged_snapshot_answers_304(
        browser: Browser, console: ConsoleStack) -> None:
    """A quiet installation's snapshot keeps its ETag (generatedAt is not in it): the page's polls get 304s,
    and its "live · <time>" is the time of its last poll, not the older generatedAt of the snapshot it holds."""
    sign_in(browser, console, "ops-admin")
    driver = browser.driver
    # the status's time (HH:MM:SSZ) at least 2 s past the held snapshot's generatedAt, read in one go
    ahead = ("const el = document.querySelector('[data-testid=\"status\"]');"
             "const m = /^live · (\\d\\d):(\\d\\d):(\\d\\d)Z$/.exec(el.textContent);"
             "if (!m || !el.dataset.generatedAt) return null;"
             "const g = new Date(el.dataset.generatedAt); const s = m[1] * 3600 + m[2] * 60 + +m[3];"
             "const gs = g.getUTCHours() * 3600 + g.getUTCMinutes() * 60 + g.getUTCSeconds();"
             "return (s - gs + 86400) % 86400 >= 2 ? [el.textContent, el.dataset.generatedAt] : null;")
    shown, generated = browser.wait(lambda d: d.execute_script(ahead), 60, "the live time past the snapshot")
    assert shown.startswith("live · ") and generated, (shown, generated)
    statuses = driver.execute_script("return performance.getEntriesByType('resource')"
                                     ".filter((e) => e.name.endsWith('/ops/v1/console')).map((e) => e.responseStatus)")
    assert 304 in statuses, statuses


def _every_id(api: httpx.Client, path: str) -> list[str]:
    """The ids of a whole list, read page by page as its Link: <…>; rel="next" says."""
    ids, url = [], path
    while url:
        resp = api.get(url)
        assert resp.status_code == 200, resp.text
        ids += [item["id"] for item in resp.json()]
        url = resp.links.get("next", {}).get("url")
    return ids


def test_show_all_follows_the_lists_next_links_and_shows_every_row_once(
        browser: Browser, console: ConsoleStack, admin_api: httpx.Client, app_pkg: dict) -> None:
    made = [admin_api.post("/app_lcm/v1/app_instances", json={
        "appDId": app_pkg["appDId"], "appInstanceName": f"paged-{n}"}).json()["id"] for n in range(2 * PAGE_SIZE + 1)]
    try:
        sign_in(browser, console, "ops-admin")
        open_section(browser, "catalogue")
        for kind, path in (("instances", "/app_lcm/v1/app_instances"), ("packages", "/app_pkgm/v1/app_packages")):
            expected = _every_id(admin_api, path)
            browser.click(f"{kind}-show-all", within=kind)

            def complete(driver: object, kind: str = kind) -> bool:
                """Press "Load more" until the list says it has no next page."""
                paging = browser.find_all(f'[data-testid="{kind}-paging"]')
                if paging and paging[0].get_attribute("data-complete") == "true":
                    return True
                more = browser.find_all(f'[data-testid="{kind}-load-more"]')
                if more and more[0].is_enabled():
                    more[0].click()
                return False

            browser.wait(complete, 60, f"every page of {kind}")
            assert not browser.find_all(f'[data-testid="{kind}-paging-error"]')
            row = "instance" if kind == "instances" else "package"
            shown = browser.driver.execute_script(
                f"return [...document.querySelectorAll('[data-testid=\"{kind}\"] tr[data-testid^=\"{row}-\"]')]"
                f".map((tr) => tr.dataset.testid.slice({len(row) + 1}))")
            assert sorted(shown) == sorted(expected) and len(shown) == len(set(shown)), (shown, expected)
            if kind == "instances":
                assert set(made) <= set(shown) and len(shown) > PAGE_SIZE, shown
            pages = browser.driver.execute_script(
                "return performance.getEntriesByType('resource').map((e) => e.name)"
                f".filter((n) => n.includes('{path}'))")
            assert len(pages) == -(-len(expected) // PAGE_SIZE), pages  # one request per page, each once
        browser.click("instances-latest", within="instances")
        browser.by_testid("instances-show-all")
    finally:
        for iid in made:
            admin_api.delete(f"/app_lcm/v1/app_instances/{iid}")


def test_an_operation_that_failed_shows_its_problem_and_fail_from_the_page_rolls_it_back(
        browser: Browser, console: ConsoleStack, admin_api: httpx.Client, app_pkg: dict) -> None:
    iid = admin_api.post("/app_lcm/v1/app_instances", json={"appDId": app_pkg["appDId"]}).json()["id"]
    op_id = accepted_op(admin_api, admin_api.post(f"/app_lcm/v1/app_instances/{iid}/instantiate",
                                                  json={"selectedMECHostInfo": [{"hostId": {"id": "pop2"}}]}))
    sign_in(browser, console, "ops-admin")
    browser.driver.get(f"{console.url}#jobs/{op_id}")  # a link straight to the operation
    browser.wait_text("op-detail-state", lambda t: t == "FAILED_TEMP", within="op-detail")
    error = browser.text_of("op-error", within="op-detail")
    problem = admin_api.get(f"/app_lcm/v1/app_lcm_op_occs/{op_id}").json()["error"]
    assert problem["title"] in error and problem["detail"] in error and "no-such-net" in error, (error, problem)
    assert shown_steps(browser).get("ports") == "FAILED"

    browser.click("action-fail", within="op-detail")
    assert f"Fail INSTANTIATE of mec-minimal (operation {op_id}): meao undoes what it made" in confirm(browser)
    assert "is FAILED" in last_toast(browser).text
    browser.wait_text("op-detail-state", lambda t: t == "FAILED", within="op-detail")
    assert not browser.find_all('[data-testid="op-detail"] [data-testid^="action-"]'), "nothing more to do"
    inst = admin_api.get(f"/app_lcm/v1/app_instances/{iid}").json()
    assert inst["instantiationState"] == "NOT_INSTANTIATED"
    assert admin_api.delete(f"/app_lcm/v1/app_instances/{iid}").status_code == 204
