"""Granting (MEC 010-2 clauses 6.2.4 and 7.5): a MEPM asks the MEAO to grant a lifecycle operation.

For INSTANTIATE the MEAO re-checks (capacity at most MEAO_CAPACITY_CACHE_S old) that the chosen host still
fits, and answers with the VIM connection (the host's cloud) and the resource zone (its availability
zone) every added resource must use; the images the MEAO already holds at that VIM are listed as
``vimAssets``. A refused grant is a 422 ProblemDetails that says why, per constraint.
"""

from __future__ import annotations

from typing import Any

from meao.catalogue import vim_images
from meao.catalogue.appd import AppD
from meao.db.models import AppInstance, AppLcmOpOcc, AppPackage, Grant, MecHost
from meao.db.session import session_scope
from meao.lcm import placement, selection
from meao.problems import BadRequest, Conflict, NotFound, ProblemError
from meao.wire import grants as wire


class GrantRefused(ProblemError, status=422, title="Grant refused"):
    """The MEAO does not grant the operation; ``detail`` (and ``hosts``) say which constraint failed."""


def create_grant(body: dict[str, Any], base: str) -> dict[str, Any]:
    """Decide a GrantRequest synchronously; returns the Grant (clause 6.2.4.4).

    vimAssets.softwareImages map the AppD's software image descriptor ids to the package's images
    already at the host's cloud (noted by the MEPM when it ensured them).
    """
    with session_scope() as session:
        op = session.get(AppLcmOpOcc, body["appLcmOpOccId"])
        if op is None or op.app_instance_id != body["appInstanceId"]:
            raise NotFound(f"application LCM operation occurrence {body['appLcmOpOccId']} of instance "
                           f"{body['appInstanceId']} does not exist")
        if op.lcm_operation != body["operation"]:
            raise Conflict(f"occurrence {op.id} is a {op.lcm_operation}, not a {body['operation']}")
        if op.operation_state not in ("STARTING", "PROCESSING"):
            raise Conflict(f"occurrence {op.id} is {op.operation_state}; grants are given to running operations")
        inst = session.get(AppInstance, op.app_instance_id)
        pkg = session.get(AppPackage, inst.app_pkg_id) if inst else None
        if pkg is None or pkg.appd_id != body["appDId"]:
            raise BadRequest(f"appDId {body['appDId']} is not the AppD of application instance {op.app_instance_id}")
        if body["operation"] == "INSTANTIATE" and not body.get("addResources"):
            raise BadRequest("a grant request for INSTANTIATE must list addResources (table 6.2.4.2.2-1 note 2)")
        host = session.get(MecHost, op.mec_host_id) if op.mec_host_id else None
        if host is None:
            raise GrantRefused(f"occurrence {op.id} has no MEC host, or its host left the inventory")
        if body["operation"] == "INSTANTIATE":
            appd = AppD.from_stored(pkg.appd_model)
            cpds = [c.id for c in appd.ext_cpds]
            view = selection.host_view(host, cpds)  # capacity at most MEAO_CAPACITY_CACHE_S old
            decision = placement.rank_hosts(selection.requirements(appd, op.operation_params or {}), [view])
            if decision.chosen is None:
                raise GrantRefused(f"host {host.id} no longer fits the application: {decision.no_fit_detail()}",
                                   extra={"hosts": decision.explain()["hosts"]})
        grant_row = Grant(app_instance_id=op.app_instance_id, app_lcm_op_occ_id=op.id,
                          operation=body["operation"], request=body)
        session.add(grant_row)
        session.flush()
        grant = wire.grant(grant_row.id, op, host, body, vim_images.images_at(session, pkg.id, host.cloud), base)
        grant_row.grant = grant
        return grant


def get_grant(grant_id: str) -> dict[str, Any]:
    """The Grant; NotFound if unknown. A grant row is written with its decision, so it always has one."""
    with session_scope() as session:
        row = session.get(Grant, grant_id)
        if row is None or row.grant is None:
            raise NotFound(f"grant {grant_id} does not exist")
        return row.grant
