"""Terminate deletes an instance's ports together, once its server is gone (against the fake PoP)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meao.nfvo.fake import FakeVim
from mecpm import flows
from tests.nfvo.helpers import add_instance, add_package, context, instance_resources, vm_app

STEPS = {s.name: s for s in flows.flatten(flows.INSTANTIATE)}


class _PortsMeetVim(FakeVim):
    """A fake PoP whose port deletes wait for each other: deletes made one after another never meet."""

    def __init__(self, parties: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.meet = threading.Barrier(parties, timeout=10)
        self.server_gone_first = True

    def delete_port(self, port_id: str) -> None:
        self.server_gone_first &= not self.servers
        self.meet.wait()  # BrokenBarrierError when the other delete never comes while this one waits
        super().delete_port(port_id)


def test_terminate_deletes_the_ports_in_parallel_after_the_server_is_gone(database: str, tmp_path: Path) -> None:
    appd, content = vm_app(tmp_path)
    assert len(appd.ext_cpds) == 2
    pkg = add_package(appd)
    vim = _PortsMeetVim(parties=len(appd.ext_cpds), cloud_name="pop-cloud")
    inst = add_instance(pkg, appd)
    ctx = context(vim, appd, content, pkg, inst)
    for name in ("image", "flavor", "ports", "server", "wait_active"):
        STEPS[name].execute(ctx)
    assert len(vim.ports) == 2

    ending = context(vim, appd, content, pkg, inst, instance_resources(inst), fresh=False)
    for stage in flows.TERMINATE:  # as the runner runs them: the steps of a stage concurrently
        steps = flows.steps_of(stage)
        with ThreadPoolExecutor(len(steps)) as pool:
            for done in [pool.submit(s.execute, ending) for s in steps]:
                done.result()

    assert vim.ports == {} and vim.servers == {}
    assert vim.server_gone_first, "a port was deleted while its server still existed"
    assert ending.resources["ports"] == {}
