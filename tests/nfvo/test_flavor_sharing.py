"""A private meao flavor is shared by the instances of one size; none may pull it from under another.

Steps run as the runner runs them, against the fake PoP and a real SQLite or PostgreSQL database (the
instances' recorded resources are what tells one instance's terminate that a sibling needs the flavor).
"""

from __future__ import annotations

from pathlib import Path

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
