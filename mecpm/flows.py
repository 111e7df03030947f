"""Lifecycle flows of the MEPM-V: lists of small steps, each with an undo (VNFM role toward OpenStack).

A step finds what already exists (by the id recorded in the instance's resources, or by the instance
tag at the VIM) before creating, records every OpenStack id it creates before it returns, and can
undo itself. So a retried operation continues where it stopped and a failed one can be rolled back.
A flow is a sequence of stages; a stage is one step, or a tuple of independent steps that the runner
runs concurrently (image, flavor and ports of an instantiate need nothing from each other).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meao.catalogue.appd import AppD, VirtualCompute
from meao.lcm.requirements import effective_compute, flavor_size
from meao.nfvo.vim import ImageSpec, Vim, VimNotFound, port_name
from meao.problems import ProblemError
from meao.wire.grants import grant_request
from mecpm.mep import MepDriver

log = logging.getLogger(__name__)


class FlowError(ProblemError, status=422, title="Lifecycle operation failed"):
    """The operation cannot go on with this AppD or host configuration; the detail says what to change."""

DEFAULT_BOOT_TIMEOUT_S = 300
DEFAULT_STOP_TIMEOUT_S = 60


@dataclass
class FlowContext:
    """Everything a step needs; ``resources`` is persisted by ``save`` after every change."""

    instance_id: str
    package_id: str
    appd: AppD
    content_dir: Path
    params: dict[str, Any]
    vim: Vim
    mep: MepDriver
    availability_zone: str | None
    networks: dict[str, str]
    resources: dict[str, Any]
    save: Callable[[dict[str, Any]], None]
    note_image: Callable[[str], None] = lambda image_id: None  # records the upload on the package
    request_grant: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # Mm3 granting (clause 7.5)
    op_id: str = ""
    appd_id: str = ""
    vim_for: Callable[[str], Vim] | None = None  # the VIM driver of a cloud named by a grant
    api_base: str = ""  # the MEAO's public URL: links in a GrantRequest are absolute URIs (LinkType)
    fresh: bool = False  # first attempt: nothing of this operation can exist at the VIM yet (no lookups)
    boot_timeout_s: float = DEFAULT_BOOT_TIMEOUT_S
    created: dict[str, Any] = field(default_factory=dict)
    _record_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, **values: Any) -> None:
        """Record OpenStack ids in the instance's resources, persisted before the step returns.

        Serialised: steps of one stage record concurrently, and each save must hold what the saves
        before it held (the last row written is the whole picture).
        """
        with self._record_lock:
            self.resources.update(values)
            self.save(self.resources)


@dataclass(frozen=True)
class Step:
    name: str
    execute: Callable[[FlowContext], None]
    undo: Callable[[FlowContext], None] = lambda ctx: None


# ------------------------------------------------------------------------------------ instantiate
def _grant(ctx: FlowContext) -> None:
    """Ask the MEAO for a grant (MEC 010-2 clause 7.5) and honour its VIM connection and zone."""
    grant = ctx.resources.get("grant")
    if grant is None:
        if ctx.request_grant is None:
            return
        link_ports = [(c.id, c.vdu_id) for c in ctx.appd.ext_cpds]
        grant = ctx.request_grant(grant_request(ctx.api_base, ctx.instance_id, ctx.op_id, ctx.appd_id,
                                                _compute(ctx).vdu_id, link_ports))
        ctx.record(grant={"id": grant["id"], "zones": grant.get("zones") or [],
                          "vimConnections": grant.get("vimConnections") or {}})
        grant = ctx.resources["grant"]
    zones = grant.get("zones") or []
    if zones:
        ctx.availability_zone = zones[0]["zoneId"]
    conns = list((grant.get("vimConnections") or {}).values())
    cloud = ((conns[0].get("accessInfo") or {}).get("cloud")) if conns else None
    if cloud and ctx.vim_for is not None:
        ctx.vim = ctx.vim_for(cloud)


def _image(ctx: FlowContext) -> None:
    images = dict(ctx.resources.get("images") or {})
    for img in ctx.appd.sw_images:
        if img.id in images:
            continue
        if not img.file:
            raise FlowError(f"software image {img.name} is external to the package; meao uploads only "
                              "images shipped in the package")
        spec = ImageSpec(name=img.name, version=img.version, checksum=img.checksum,
                         container_format=img.container_format.lower(), disk_format=img.disk_format.lower(),
                         min_disk_gb=img.min_disk_gb, min_ram_mb=img.min_ram_mb, size_bytes=img.size_bytes)
        path = ctx.content_dir / img.file
        images[img.id] = ctx.vim.ensure_image(spec, lambda p=path: p.open("rb"), ctx.package_id)
        ctx.note_image(images[img.id])
        ctx.record(images=images)


def _compute(ctx: FlowContext) -> VirtualCompute:
    vc = effective_compute(ctx.appd, ctx.params)
    if vc is None:
        raise FlowError("the AppD has no virtual compute descriptor; nothing to boot")
    return vc


def _flavor(ctx: FlowContext) -> None:
    if ctx.resources.get("flavor_id"):
        return
    _compute(ctx)  # a clear error when the AppD has no compute
    ctx.record(flavor_id=ctx.vim.ensure_flavor(*flavor_size(ctx.appd, ctx.params)))


def _release_flavor(ctx: FlowContext) -> None:
    flavor_id = ctx.resources.get("flavor_id")
    if flavor_id:
        ctx.vim.release_flavor(flavor_id)  # deletes a private meao flavor once no server uses it
        ctx.record(flavor_id=None)


def _network_for(ctx: FlowContext, cpd_id: str) -> str:
    net = ctx.networks.get(cpd_id) or ctx.networks.get("default")
    if not net:
        raise FlowError(f"external CP {cpd_id}: the MEC host maps it to no network; add '{cpd_id}' or "
                          "'default' under the host's networks")
    return net


def _ports(ctx: FlowContext) -> None:
    """One port per external CP, created concurrently; ids recorded even when one of them fails."""
    ports = dict(ctx.resources.get("ports") or {})
    missing = [cpd.id for cpd in ctx.appd.ext_cpds if cpd.id not in ports]
    if not missing:
        return
    if not ctx.fresh:  # an earlier attempt may have created a port without recording it
        existing = {p.name: p.id for p in ctx.vim.find_ports(ctx.instance_id)}
        ports.update({cpd: existing[port_name(ctx.instance_id, cpd)] for cpd in missing
                      if port_name(ctx.instance_id, cpd) in existing})
    networks = {cpd: _network_for(ctx, cpd) for cpd in missing if cpd not in ports}  # all valid, or none made
    failures: list[Exception] = []
    with ThreadPoolExecutor(max_workers=max(1, len(networks))) as pool:
        futures = {cpd: pool.submit(contextvars.copy_context().run, ctx.vim.create_port, net, ctx.instance_id, cpd)
                   for cpd, net in networks.items()}
        for cpd, future in futures.items():
            try:
                ports[cpd] = future.result()
            except Exception as exc:  # noqa: BLE001 — recorded below, then the first one is raised
                failures.append(exc)
    ctx.record(ports=ports)
    if failures:
        raise failures[0]


def _undo_ports(ctx: FlowContext) -> None:
    for port_id in (ctx.resources.get("ports") or {}).values():
        ctx.vim.delete_port(port_id)
    for port in ctx.vim.find_ports(ctx.instance_id):  # also those created before their id was recorded
        ctx.vim.delete_port(port.id)
    ctx.record(ports={})


def _server(ctx: FlowContext) -> None:
    if ctx.resources.get("server_id"):
        return
    found = [] if ctx.fresh else ctx.vim.find_servers(ctx.instance_id)  # made but not recorded before a crash
    if found:
        ctx.record(server_id=found[0].id)
        return
    images = ctx.resources.get("images") or {}
    vdu = _compute(ctx).vdu_id
    image_id = next((images[i.id] for i in ctx.appd.sw_images if i.vdu_id == vdu),
                    next(iter(images.values()), None))
    if image_id is None:
        raise FlowError("no software image was uploaded for the VDU; the AppD needs a SwImage")
    port_ids = [ctx.resources["ports"][c.id] for c in ctx.appd.ext_cpds]
    name = f"meao-{ctx.instance_id}"
    server_id = ctx.vim.create_server(name, ctx.resources["flavor_id"], image_id, port_ids, ctx.instance_id,
                                      availability_zone=ctx.availability_zone)
    ctx.record(server_id=server_id)


def _undo_server(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if server_id:
        ctx.vim.delete_server(server_id, wait=True)
    for srv in ctx.vim.find_servers(ctx.instance_id):
        ctx.vim.delete_server(srv.id, wait=True)
    ctx.record(server_id=None)


def _wait_active(ctx: FlowContext) -> None:
    ctx.vim.wait_server_active(ctx.resources["server_id"], ctx.boot_timeout_s)


def _rules(ctx: FlowContext) -> None:
    if ctx.resources.get("mep") is None:
        ctx.record(mep=ctx.mep.configure(ctx.instance_id, ctx.appd))


def _undo_rules(ctx: FlowContext) -> None:
    if ctx.resources.get("mep") is not None:
        ctx.mep.unconfigure(ctx.instance_id, ctx.resources["mep"])
        ctx.record(mep=None)


Stage = Step | tuple[Step, ...]  # a tuple: independent steps, run concurrently

INSTANTIATE: tuple[Stage, ...] = (
    Step("grant", _grant),  # first: the grant may name another VIM or zone
    (Step("image", _image), Step("flavor", _flavor, _release_flavor), Step("ports", _ports, _undo_ports)),
    Step("server", _server, _undo_server),
    Step("wait_active", _wait_active),
    Step("app_rules", _rules, _undo_rules),
)


# ------------------------------------------------------------------------------ operate / terminate
def _graceful_timeout(ctx: FlowContext, kind: str) -> float:
    if kind == "OPERATE":
        if ctx.params.get("stopType") != "GRACEFUL":
            return 0
        given = ctx.params.get("gracefulStopTimeout")
        fallback = ctx.appd.stop_timeout_s
    else:
        if ctx.params.get("terminationType") != "GRACEFUL":
            return 0
        given = ctx.params.get("gracefulTerminationTimeout")
        fallback = ctx.appd.terminate_timeout_s
    value = given if given is not None else fallback
    return float(value if value is not None else DEFAULT_STOP_TIMEOUT_S)


def _stop(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if server_id:
        ctx.vim.stop_server(server_id, _graceful_timeout(ctx, "OPERATE"))


def _start(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if not server_id:
        raise FlowError(f"application instance {ctx.instance_id} has no server to start")
    ctx.vim.start_server(server_id)


def _terminate_stop(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if not server_id:
        return
    timeout = _graceful_timeout(ctx, "TERMINATE")
    if timeout > 0:
        try:
            if ctx.vim.get_server(server_id).status == "ACTIVE":
                ctx.vim.stop_server(server_id, timeout)
        except VimNotFound:
            pass


START = (Step("start", _start),)
STOP = (Step("stop", _stop),)
TERMINATE = (
    Step("graceful_stop", _terminate_stop),
    Step("app_rules", _undo_rules),
    Step("server", _undo_server),
    Step("ports", _undo_ports),
    Step("flavor", _release_flavor),
)


def steps_for(operation: str, params: dict[str, Any]) -> tuple[Stage, ...]:
    """The flow of one LCM operation."""
    if operation == "INSTANTIATE":
        return INSTANTIATE
    if operation == "TERMINATE":
        return TERMINATE
    return START if params.get("changeStateTo") == "STARTED" else STOP


def steps_of(stage: Stage) -> tuple[Step, ...]:
    """The steps of one stage."""
    return stage if isinstance(stage, tuple) else (stage,)


def flatten(stages: tuple[Stage, ...]) -> tuple[Step, ...]:
    """The steps of a flow in order, stages unpacked."""
    return tuple(step for stage in stages for step in steps_of(stage))


def rollback(ctx: FlowContext, stages: tuple[Stage, ...]) -> None:
    """Undo steps in reverse order (``fail`` of an instantiate): removes what the operation created."""
    for step in reversed(flatten(stages)):
        log.info("undo %s for instance %s", step.name, ctx.instance_id)
        step.undo(ctx)
