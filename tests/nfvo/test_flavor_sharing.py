"""A private meao flavor is shared by the instances of one size; none may pull it from under another.

Steps run as the runner runs them, against the fake PoP and a real SQLite or PostgreSQL database (the
instances' recorded resources are what tells one instance's terminate that a sibling needs the flavor).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import event

from meao.config import get_settings
from meao.db.session import get_engine
from meao.nfvo.fake import FakeVim
from mecpm import flows
from tests.nfvo.helpers import add_instance, add_package, context, instance_resources, vm_app

STEPS = {s.name: s for s in flows.flatten(flows.INSTANTIATE)}
TERMINATE = flows.flatten(flows.TERMINATE)


def _run(ctx: flows.FlowContext, *names: str) -> None:
    for name in names:
        STEPS[name].execute(ctx)


def test_terminate_keeps_a_private_flavor_that_a_sibling_has_chosen_but_not_booted_yet(
        database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = FakeVim(cloud_name="pop-cloud")
    a, b = add_instance(pkg, appd), add_instance(pkg, appd)
    ctx_a, ctx_b = context(vim, appd, content, pkg, a), context(vim, appd, content, pkg, b)
    _run(ctx_a, "image", "flavor", "ports", "server", "wait_active")
    _run(ctx_b, "image", "flavor")  # b chose the same flavor; its server is not booted yet
    flavor_id = ctx_b.resources["flavor_id"]
    assert ctx_a.resources["flavor_id"] == flavor_id and not vim.flavors[flavor_id].public

    ending = context(vim, appd, content, pkg, a, instance_resources(a), fresh=False)
    for step in TERMINATE:
        step.execute(ending)

    assert flavor_id in vim.flavors, "a's terminate deleted the flavor b has chosen"
    assert ending.resources["flavor_id"] is None
    _run(ctx_b, "ports", "server", "wait_active")
    ending = context(vim, appd, content, pkg, b, instance_resources(b), fresh=False)
    for step in TERMINATE:
        step.execute(ending)
    assert vim.flavors == {}, "the last user's terminate releases the flavor"


def test_the_server_step_of_a_retry_makes_again_a_flavor_that_went_missing(database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = FakeVim(cloud_name="pop-cloud")
    inst = add_instance(pkg, appd)
    _run(context(vim, appd, content, pkg, inst), "image", "flavor", "ports")
    vim.flavors.clear()  # deleted meanwhile (a sibling's release before this fix, or by hand)

    retry = context(vim, appd, content, pkg, inst, instance_resources(inst), fresh=False)
    _run(retry, "server", "wait_active")  # "flavor" is in steps_done: the runner skips it on a retry

    flavor_id = retry.resources["flavor_id"]
    assert flavor_id in vim.flavors
    assert instance_resources(inst)["flavor_id"] == flavor_id
    assert [f.id for _, f, _ in vim.servers.values()] == [flavor_id]


def test_the_last_two_users_dropping_a_flavor_at_once_release_it_once(database: str, tmp_path: Path) -> None:
    """Two terminates drop the flavor together, the first paused between reading who else names it and
    committing: the second waits for that commit and releases the flavor (before the fix each saw the
    other still naming it, both kept it, and nothing ever released it)."""
    appd, content = vm_app(tmp_path)
    pkg = add_package(appd)
    vim = FakeVim(cloud_name="pop-cloud")
    a, b = add_instance(pkg, appd), add_instance(pkg, appd)
    for inst in (a, b):
        _run(context(vim, appd, content, pkg, inst), "image", "flavor", "ports", "server", "wait_active")
    flavor_id = instance_resources(a)["flavor_id"]
    assert instance_resources(b)["flavor_id"] == flavor_id
    ending = {inst: context(vim, appd, content, pkg, inst, instance_resources(inst), fresh=False) for inst in (a, b)}
    for inst, ctx in ending.items():  # both servers gone: only the database says who still needs the flavor
        for step in TERMINATE[:TERMINATE.index(next(s for s in TERMINATE if s.name == "flavor"))]:
            if step.name != "ports":
                step.execute(ctx)
    released: list[str] = []
    release = vim.release_flavor
    vim.release_flavor = lambda fid: released.append(fid) or release(fid)  # type: ignore[method-assign]
    b_started = threading.Event()

    def pause_a_after_its_look(conn, cursor, statement, *args) -> None:
        looks = statement.lstrip().startswith("SELECT app_instance.id") and "resources" in statement
        if threading.current_thread().name == "drop-a" and looks:
            b_started.wait(5)
            time.sleep(0.3)  # b's drop runs meanwhile: it must wait for a's commit, not read around it

    flavor_step = next(s for s in TERMINATE if s.name == "flavor")
    engine = get_engine(get_settings().database_url)
    event.listen(engine, "after_cursor_execute", pause_a_after_its_look)
    try:
        drop_a = threading.Thread(target=flavor_step.execute, args=(ending[a],), name="drop-a")
        drop_a.start()
        time.sleep(0.1)
        b_started.set()
        flavor_step.execute(ending[b])
        drop_a.join(10)
    finally:
        event.remove(engine, "after_cursor_execute", pause_a_after_its_look)
    assert released == [flavor_id] and flavor_id not in vim.flavors, released
    assert instance_resources(a)["flavor_id"] is None and instance_resources(b)["flavor_id"] is None
