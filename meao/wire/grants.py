"""Granting types (MEC 010-2 clause 6.2.4): GrantRequest, Grant and the VimConnectionInfo it carries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meao.db.models import AppLcmOpOcc, MecHost
from meao.wire.links import app_instance_href, grant_href, link, op_occ_href

OPENSTACK_VIM_TYPE = "ETSINFV.OPENSTACK_KEYSTONE.V_3"


def grant_request(base: str, instance_id: str, op_id: str, appd_id: str, compute_vdu_id: str,
                  link_ports: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """The GrantRequest (clause 6.2.4.2) of an INSTANTIATE: one compute and a link port per external CP.

    ``link_ports`` are (external CPD id, its VDU id) pairs; the ResourceDefinitions (clause 6.2.4.3)
    are named ``compute-<vdu>`` and ``linkport-<cpd>``.
    """
    add = [{"id": f"compute-{compute_vdu_id}", "type": "COMPUTE", "vduId": compute_vdu_id,
            "resourceTemplateId": [compute_vdu_id]}]
    add += [{"id": f"linkport-{cpd_id}", "type": "LINKPORT", "vduId": vdu_id, "resourceTemplateId": [cpd_id]}
            for cpd_id, vdu_id in link_ports]
    return {"appInstanceId": instance_id, "appLcmOpOccId": op_id, "appDId": appd_id, "operation": "INSTANTIATE",
            "addResources": add,
            "_links": {"appLcmOpOcc": link(op_occ_href(base, op_id)),
                       "appInstance": link(app_instance_href(base, instance_id))}}


def vim_connection_info(host: MecHost) -> dict[str, Any]:
    """VimConnectionInfo (clause 6.2.2.18) of a host's cloud; credentials stay in clouds.yaml."""
    info: dict[str, Any] = {"id": f"vim-{host.cloud}", "vimId": host.cloud, "vimType": OPENSTACK_VIM_TYPE,
                            "interfaceInfo": {"cloud": host.cloud}, "accessInfo": {"cloud": host.cloud}}
    if host.region:
        info["accessInfo"]["region"] = host.region
    return info


def _definition_ids(resources: list[dict[str, Any]] | None, **placed: Any) -> list[dict[str, Any]]:
    return [{"resourceDefinitionId": r["id"], **placed} for r in resources or []]


def grant(grant_id: str, op: AppLcmOpOcc, host: MecHost, request: dict[str, Any],
          vim_images: list[tuple[str, str]], base: str) -> dict[str, Any]:
    """The Grant (clause 6.2.4.4) of ``request`` (a GrantRequest): every added resource goes to the host's cloud.

    A host without an availability zone leaves the choice to the VIM's scheduler: no zone (ZoneInfo,
    clause 6.2.4.6) is granted. ``vim_images`` are the package's images already at that cloud, as
    (AppD software image descriptor id, VIM image id) pairs (VimSoftwareImage, clause 6.2.4.11).
    """
    vim = vim_connection_info(host)
    zone = ({"id": "zone-1", "zoneId": host.availability_zone, "vimConnectionId": vim["id"]}
            if host.availability_zone else None)
    placed = {"vimConnectionId": vim["id"], **({"zoneId": zone["id"]} if zone else {})}
    body: dict[str, Any] = {
        "id": grant_id, "appInstanceId": op.app_instance_id, "appLcmOpOccId": op.id,
        "vimConnections": {vim["id"]: vim}, "zones": [zone] if zone else [],
        "addResources": _definition_ids(request.get("addResources"), **placed),
        "removeResources": _definition_ids(request.get("removeResources")),
        "updateResources": _definition_ids(request.get("updateResources")),
        "tempResources": _definition_ids(request.get("tempResources"), **placed),
        "_links": {"self": link(grant_href(base, grant_id)), "appLcmOpOcc": link(op_occ_href(base, op.id)),
                   "appInstance": link(app_instance_href(base, op.app_instance_id))},
    }
    if vim_images:
        body["vimAssets"] = {"softwareImages": [
            {"vimConnectionId": vim["id"], "appDSoftwareImageId": appd_image_id, "vimSoftwareImageId": vim_image_id}
            for appd_image_id, vim_image_id in vim_images]}
    return body
