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
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meao import faults
from meao.catalogue.appd import AppD, VirtualCompute
from meao.lcm.requirements import effective_compute, flavor_size
from meao.nfvo.vim import ImageSpec, OpenStream, Vim, VimNotFound, port_name, server_name
from meao.problems import ProblemError
from meao.wire.grants import grant_request
from mecpm.mep import MepDriver
from mecpm.mep.client import boot_data

log = logging.getLogger(__name__)


class FlowError(ProblemError, status=422, title="Lifecycle operation failed"):
    """The operation cannot go on with this AppD or host configuration; the detail says what to change."""


DEFAULT_STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class OpSubject:
    """What an operation acts on: the occurrence, its app instance, package and AppD, and its request."""

    id: str  # the AppLcmOpOcc
    instance_id: str
    package_id: str
    appd_id: str
    appd: AppD
    content_dir: Path  # the package's extracted content (software images)
    params: dict[str, Any]  # operationParams of the occurrence (MEC 010-2 clause 6.2.2.13)


@dataclass
class PopSite:
    """Where it runs: the PoP's VIM driver and MEP, the zone and the CP → network map of its MEC host.

    A grant may name another VIM connection or zone; ``vim`` and ``availability_zone`` then change.
    """

    vim: Vim
    mep: MepDriver
    availability_zone: str | None
    networks: dict[str, str]
    boot_timeout_s: float  # MEAO_BOOT_TIMEOUT_S


class MeaoLink(Protocol):
    """What a flow asks of the MEAO side: keep its records, grant its resources (Mm3, clause 7.5)."""

    api_base: str  # the MEAO's public URL: links in a GrantRequest are absolute URIs (LinkType)

    def save_resources(self, resources: dict[str, Any]) -> None:
        """Persist the instance's resources (the OpenStack ids the steps made); raises when the job's
        claim on the operation is lost (then the flow must stop and touch nothing more)."""

    def check_claim(self) -> None:
        """Raise when the job's claim on the operation is lost: called right before creating at the VIM."""

    def note_graceful(self, outcome: dict[str, Any]) -> None:
        """Keep the MEP's report of a GRACEFUL stop or terminate on the operation occurrence."""

    def ensure_image(self, vim: Vim, spec: ImageSpec, open_stream: OpenStream, appd_sw_image_id: str) -> str:
        """The image's id at ``vim``: found, or uploaded by one worker of the PoP while the others wait;
        noted on the package as the realisation of the AppD's software image descriptor ``appd_sw_image_id``
        (what the grant's vimAssets list and the package's deletion releases)."""

    def drop_flavor(self, resources: dict[str, Any], flavor_id: str, release: Callable[[], Any]) -> list[str]:
        """Save ``resources``, in which this instance no longer names ``flavor_id``, calling ``release`` first
        when no other app instance names it (booted or not yet); the others that do. Serialised per flavor:
        of two instances dropping it at once, the second finds the first gone."""

    def request_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a GrantRequest; the Grant, or a ProblemError when the MEAO refuses."""

    def vim_for(self, cloud: str) -> Vim:
        """The VIM driver of a cloud a grant names."""


@dataclass
class FlowContext:
    """Everything a step needs; ``resources`` is persisted through ``meao`` after every change."""

    op: OpSubject
    pop: PopSite
    meao: MeaoLink
    resources: dict[str, Any]
    fresh: bool = False  # first attempt: nothing of this operation can exist at the VIM yet (no lookups)
    _record_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, **values: Any) -> None:
        """Record OpenStack ids in the instance's resources, persisted before the step returns.

        Serialised: steps of one stage record concurrently, and each save must hold what the saves
        before it held (the last row written is the whole picture).
        """
        with self._record_lock:
            self.resources.update(values)
            self.meao.save_resources(self.resources)


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
        link_ports = [(c.id, c.vdu_id) for c in ctx.op.appd.ext_cpds]
        body = grant_request(ctx.meao.api_base, ctx.op.instance_id, ctx.op.id, ctx.op.appd_id,
                             _compute(ctx).vdu_id, link_ports)
        grant = ctx.meao.request_grant(body)
        assets = (grant.get("vimAssets") or {}).get("softwareImages") or []
        ctx.record(grant={"id": grant["id"], "zones": grant.get("zones") or [],
                          "vimConnections": grant.get("vimConnections") or {},
                          "images": {a["appDSoftwareImageId"]: a["vimSoftwareImageId"] for a in assets}})
        grant = ctx.resources["grant"]
    zones = grant.get("zones") or []
    if zones:
        ctx.pop.availability_zone = zones[0]["zoneId"]
    conns = list((grant.get("vimConnections") or {}).values())
    cloud = ((conns[0].get("accessInfo") or {}).get("cloud")) if conns else None
    if cloud:
        ctx.pop.vim = ctx.meao.vim_for(cloud)


def _image(ctx: FlowContext) -> None:
    images = dict(ctx.resources.get("images") or {})
    for img in ctx.op.appd.sw_images:
        if img.id in images:
            continue
        if not img.file:
            raise FlowError(f"software image {img.name} is external to the package; meao uploads only "
                              "images shipped in the package")
        spec = ImageSpec(name=img.name, version=img.version, checksum=img.checksum,
                         container_format=img.container_format.lower(), disk_format=img.disk_format.lower(),
                         min_disk_gb=img.min_disk_gb, min_ram_mb=img.min_ram_mb, size_bytes=img.size_bytes)
        granted = ((ctx.resources.get("grant") or {}).get("images") or {}).get(img.id)
        if granted and ctx.pop.vim.find_image_by_checksum(spec.checksum) == granted:
            # the grant's vimAssets: the package's image is at this cloud, noted and fitted when it was
            # ensured, and it is still there: no upload claim and no note (round trips to the MEAO)
            images[img.id] = granted
        else:
            path = ctx.op.content_dir / img.file
            images[img.id] = ctx.meao.ensure_image(ctx.pop.vim, spec, lambda p=path: p.open("rb"), img.id)
        ctx.record(images=images)


def _compute(ctx: FlowContext) -> VirtualCompute:
    vc = effective_compute(ctx.op.appd, ctx.op.params)
    if vc is None:
        raise FlowError("the AppD has no virtual compute descriptor; nothing to boot")
    return vc


def _flavor(ctx: FlowContext) -> None:
    _ensure_flavor(ctx)


def _ensure_flavor(ctx: FlowContext) -> str:
    """The recorded flavor while the VIM has it; else one found or made now, and recorded.

    A private flavor is shared by the instances of one size, and a sibling's terminate may have
    released it after this instance chose it. The server step asks again just before booting, so a
    retry mends it even though the runner skips the flavor step it recorded as done.
    """
    flavor_id = ctx.resources.get("flavor_id")
    if flavor_id and ctx.pop.vim.flavor_exists(flavor_id):
        return flavor_id
    if flavor_id:
        log.warning("flavor %s of instance %s is gone from the VIM; choosing one again", flavor_id,
                    ctx.op.instance_id)
    _compute(ctx)  # a clear error when the AppD has no compute
    flavor_id = ctx.pop.vim.ensure_flavor(*flavor_size(ctx.op.appd, ctx.op.params))
    ctx.record(flavor_id=flavor_id)
    return flavor_id


def _release_flavor(ctx: FlowContext) -> None:
    """Forget the instance's flavor; the VIM deletes a private one that no server and no other instance uses.

    Nova knows only servers; an instance that chose the flavor but has not booted yet is known by its
    recorded resources, so it is asked about here, before the VIM is.
    """
    flavor_id = ctx.resources.get("flavor_id")
    if flavor_id:
        with ctx._record_lock:  # as record() does: this save holds what the saves before it held
            others = ctx.meao.drop_flavor(dict(ctx.resources, flavor_id=None), flavor_id,
                                          lambda: ctx.pop.vim.release_flavor(flavor_id))
            ctx.resources["flavor_id"] = None
        if others:
            log.info("flavor %s kept: application instance(s) %s use it too", flavor_id, ", ".join(others))


def _network_for(ctx: FlowContext, cpd_id: str) -> str:
    net = ctx.pop.networks.get(cpd_id) or ctx.pop.networks.get("default")
    if not net:
        raise FlowError(f"external CP {cpd_id}: the MEC host maps it to no network; add '{cpd_id}' or "
                          "'default' under the host's networks")
    return net


def _ports(ctx: FlowContext) -> None:
    """One port per external CP, created concurrently; ids recorded even when one of them fails."""
    ports = dict(ctx.resources.get("ports") or {})
    missing = [cpd.id for cpd in ctx.op.appd.ext_cpds if cpd.id not in ports]
    if not missing:
        return
    if not ctx.fresh:  # an earlier attempt may have created a port without recording it
        existing = {p.name: p.id for p in ctx.pop.vim.find_ports(ctx.op.instance_id, _port_names(ctx))}
        ports.update({cpd: existing[port_name(ctx.op.instance_id, cpd)] for cpd in missing
                      if port_name(ctx.op.instance_id, cpd) in existing})
    networks = {cpd: _network_for(ctx, cpd) for cpd in missing if cpd not in ports}  # all valid, or none made
    ctx.meao.check_claim()
    failures: list[Exception] = []
    def create(network: str, cpd: str) -> str:
        faults.point(f"port:{cpd}")
        return ctx.pop.vim.create_port(network, ctx.op.instance_id, cpd)

    with ThreadPoolExecutor(max_workers=max(1, len(networks))) as pool:
        futures = {cpd: pool.submit(contextvars.copy_context().run, create, net, cpd)
                   for cpd, net in networks.items()}
        for cpd, future in futures.items():
            try:
                ports[cpd] = future.result()
            except Exception as exc:  # noqa: BLE001 — recorded below, then the first one is raised
                failures.append(exc)
    ctx.record(ports=ports)
    if failures:
        raise failures[0]


def _port_names(ctx: FlowContext) -> list[str]:
    return [port_name(ctx.op.instance_id, cpd.id) for cpd in ctx.op.appd.ext_cpds]


def _undo_ports(ctx: FlowContext) -> None:
    """Delete the instance's ports, all at once: the recorded ones, and any an earlier attempt made before
    it could record them (found by tag or name, looked up meanwhile). None depends on another."""
    recorded = set((ctx.resources.get("ports") or {}).values())

    def run(fn: Callable[..., Any], *args: Any) -> Future:
        return pool.submit(contextvars.copy_context().run, fn, *args)

    with ThreadPoolExecutor(max_workers=len(recorded) + 2) as pool:
        lookup = run(ctx.pop.vim.find_ports, ctx.op.instance_id, _port_names(ctx))
        deletes = [run(ctx.pop.vim.delete_port, port_id) for port_id in recorded]
        deletes += [run(ctx.pop.vim.delete_port, port.id) for port in lookup.result() if port.id not in recorded]
        for done in deletes:
            done.result()
    ctx.record(ports={})


def _server(ctx: FlowContext) -> None:
    if ctx.resources.get("server_id"):
        return
    # made but not recorded before a crash
    found = [] if ctx.fresh else ctx.pop.vim.find_servers(ctx.op.instance_id)
    if found:
        ctx.record(server_id=found[0].id)
        return
    images = ctx.resources.get("images") or {}
    vdu = _compute(ctx).vdu_id
    image_id = next((images[i.id] for i in ctx.op.appd.sw_images if i.vdu_id == vdu),
                    next(iter(images.values()), None))
    if image_id is None:
        raise FlowError("no software image was uploaded for the VDU; the AppD needs a SwImage")
    port_ids = [ctx.resources["ports"][c.id] for c in ctx.op.appd.ext_cpds]
    name = server_name(ctx.op.instance_id)
    flavor_id = _ensure_flavor(ctx)
    # the app's own Mp1 client, rotated right before the boot that carries it: a server found above
    # booted with the secret of the last rotation, so it is never rotated once a server exists. Noted
    # first, so an undo knows to revoke it even when a crash came before the note of the server. The
    # note is a fenced write: it is also the check that the claim still holds before the boot.
    ctx.record(mp1_client=True)
    user_data = boot_data(ctx.pop.mep.issue_credentials(ctx.op.instance_id))
    server_id = ctx.pop.vim.create_server(name, flavor_id, image_id, port_ids, ctx.op.instance_id,
                                          availability_zone=ctx.pop.availability_zone, user_data=user_data)
    ctx.record(server_id=server_id)


def _remove_server(ctx: FlowContext, claimed: bool) -> None:
    """Delete the instance's server(s); returns once Nova no longer has them (``claimed``: see
    :meth:`Vim.delete_server`; true only of the recorded server, never of one found)."""
    server_id = ctx.resources.get("server_id")
    with ThreadPoolExecutor(max_workers=1) as pool:  # any made before it was recorded: looked up meanwhile
        strays = pool.submit(contextvars.copy_context().run, ctx.pop.vim.find_servers, ctx.op.instance_id)
        if server_id:
            ctx.pop.vim.delete_server(server_id, wait=True, claimed=claimed)
        for srv in strays.result():
            if srv.id != server_id:
                ctx.pop.vim.delete_server(srv.id, wait=True)
    ctx.record(server_id=None)


def _delete_server(ctx: FlowContext) -> None:
    """Terminate's delete: the instance is INSTANTIATED, so its server went ACTIVE on a compute host once."""
    _remove_server(ctx, claimed=True)


def _undo_server(ctx: FlowContext) -> None:
    _remove_server(ctx, claimed=False)  # a failed instantiate's server may still be being scheduled
    if ctx.resources.get("mp1_client"):  # issued for the boot, and not withdrawn with the app's rules
        ctx.pop.mep.deregister(ctx.op.instance_id)
    ctx.record(mp1_client=None)


def _wait_active(ctx: FlowContext) -> None:
    ctx.pop.vim.wait_server_active(ctx.resources["server_id"], ctx.pop.boot_timeout_s)


def registration(ctx: FlowContext) -> dict[str, Any]:
    """What the MEP is told of the app instance (Mm5 AppRegistration): its AppD's rules and needs, its ports."""
    appd = ctx.op.appd
    return {"appName": appd.app_name, "appProvider": appd.app_provider, "appDId": appd.appd_id,
            "appServiceRequired": appd.app_service_required, "appServiceOptional": appd.app_service_optional,
            "appServiceProduced": appd.app_service_produced, "appFeatureRequired": appd.app_feature_required,
            "appTrafficRule": appd.app_traffic_rules, "appDNSRule": appd.app_dns_rules,
            "ports": [{"cpdId": cpd, "portId": port} for cpd, port in (ctx.resources.get("ports") or {}).items()]}


def _rules(ctx: FlowContext) -> None:
    """Register the app instance at its host's MEP (Mm5), which realises its rules: the last stage."""
    if ctx.resources.get("mep") is None:
        info = ctx.pop.mep.register(ctx.op.instance_id, registration(ctx))
        ctx.record(mep={"realised": info.get("realised") or {}})


def _undo_rules(ctx: FlowContext) -> None:
    if ctx.resources.get("mep") is not None or ctx.resources.get("mp1_client"):
        ctx.pop.mep.deregister(ctx.op.instance_id)  # rules, services and the Mp1 client go together
        ctx.record(mep=None, mp1_client=None)


Stage = Step | tuple[Step, ...]  # a tuple: independent steps, run concurrently

INSTANTIATE: tuple[Stage, ...] = (
    Step("grant", _grant),  # first: the grant may name another VIM or zone
    (Step("image", _image), Step("flavor", _flavor, _release_flavor), Step("ports", _ports, _undo_ports)),
    Step("server", _server, _undo_server),
    # the MEP registers the app (rules realised on its ports) while the server boots: its ports exist
    (Step("wait_active", _wait_active), Step("app_rules", _rules, _undo_rules)),
)


# ------------------------------------------------------------------------------ operate / terminate
def _graceful_timeout(ctx: FlowContext, kind: str) -> float:
    if kind == "OPERATE":
        if ctx.op.params.get("stopType") != "GRACEFUL":
            return 0
        given = ctx.op.params.get("gracefulStopTimeout")
        fallback = ctx.op.appd.stop_timeout_s
    else:
        if ctx.op.params.get("terminationType") != "GRACEFUL":
            return 0
        given = ctx.op.params.get("gracefulTerminationTimeout")
        fallback = ctx.op.appd.terminate_timeout_s
    value = given if given is not None else fallback
    return float(value if value is not None else DEFAULT_STOP_TIMEOUT_S)


def _ask_app(ctx: FlowContext, action: str, timeout: float) -> None:
    """GRACEFUL: the MEP notifies the app (AppTerminationNotification) and waits for its confirmation or
    the timeout (MEC 010-2 clause 5, MEC 011); the outcome is kept on the occurrence and the instance."""
    done = (ctx.resources.get("graceful") or {})
    if done.get("opId") == ctx.op.id:  # this operation asked already (a retry)
        return
    started = time.monotonic()
    outcome = ctx.pop.mep.graceful_termination(ctx.op.instance_id, action, max(0, round(timeout)),
                                               ctx.meao.check_claim)
    report = {"operationAction": action, "state": outcome.get("state"),
              "maxGracefulTimeout": outcome.get("maxGracefulTimeout"), "waitedS": round(time.monotonic() - started, 3)}
    ctx.meao.note_graceful(report)
    ctx.record(graceful=dict(report, opId=ctx.op.id))


def _stop(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if server_id:
        timeout = _graceful_timeout(ctx, "OPERATE")
        if timeout > 0 and ctx.resources.get("mep") is not None:  # registered at its MEP: ask the app
            _ask_app(ctx, "STOPPING", timeout)
        ctx.pop.vim.stop_server(server_id, timeout)


def _start(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if not server_id:
        raise FlowError(f"application instance {ctx.op.instance_id} has no server to start")
    ctx.pop.vim.start_server(server_id)
    if ctx.resources.get("mep") is not None:
        ctx.pop.mep.clear_termination(ctx.op.instance_id)  # a new run: readiness to be confirmed again


def _terminate_stop(ctx: FlowContext) -> None:
    server_id = ctx.resources.get("server_id")
    if not server_id:
        return
    timeout = _graceful_timeout(ctx, "TERMINATE")
    if timeout > 0:
        if ctx.resources.get("mep") is not None:
            _ask_app(ctx, "TERMINATING", timeout)
        try:
            if ctx.pop.vim.get_server(server_id).status == "ACTIVE":
                ctx.pop.vim.stop_server(server_id, timeout)
        except VimNotFound:
            pass


START = (Step("start", _start),)
STOP = (Step("stop", _stop),)
TERMINATE = (
    Step("graceful_stop", _terminate_stop),
    Step("server", _delete_server),
    (Step("ports", _undo_ports), Step("flavor", _release_flavor)),  # the server is gone, its ports free
    # the MEP withdraws the app (rules, services, its Mp1 client) last: its security group is then on no
    # port, so it is deleted without first being taken off each port (a Neutron update per port, which
    # would contend with the compute host's release of the same ports while the server is deleted)
    Step("app_rules", _undo_rules),
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


def rollback(ctx: FlowContext, stages: tuple[Stage, ...],
             before_undo: Callable[[Step], None] = lambda step: None) -> None:
    """Undo steps in reverse order (``fail`` of an instantiate): removes what the operation created.

    ``before_undo`` runs before each undo (the runner's step boundary: heartbeat and fencing).
    """
    for step in reversed(flatten(stages)):
        before_undo(step)
        log.info("undo %s for instance %s", step.name, ctx.op.instance_id)
        step.undo(ctx)
