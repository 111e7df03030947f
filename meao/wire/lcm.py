"""Application lifecycle types (MEC 010-2 clause 6.2.2): AppInstanceInfo and AppLcmOpOcc."""

from __future__ import annotations

import json
from typing import Any

from meao.db.models import AppInstance, AppLcmOpOcc, MecHost
from meao.wire.fields import Field, compact, render
from meao.wire.links import app_instance_href, link, op_occ_href
from meao.wire.times import timestamp_of

# AppInstanceInfo (clause 6.2.2.4): the attributes read straight from the instance
APP_INSTANCE_INFO = (
    Field("id", "id"),
    Field("appInstanceName", "name"),
    Field("appInstanceDescription", "description"),
    Field("appDId", "appd_id"),
    Field("appProvider", "app_provider"),
    Field("appName", "app_name"),
    Field("appSoftVersion", "app_soft_version"),
    Field("appDVersion", "appd_version"),
    Field("appPkgId", "app_pkg_id"),
    Field("instantiationState", "instantiation_state"),
)

# AppLcmOpOcc (clause 6.2.2.13), plus meao's ``error`` and ``appInstanceId``
APP_LCM_OP_OCC = (
    Field("id", "id"),
    Field("operationState", "operation_state"),
    Field("stateEnteredTime", lambda op: timestamp_of(op.state_entered_time)),
    Field("startTime", lambda op: timestamp_of(op.start_time)),
    Field("lcmOperation", "lcm_operation"),
    Field("operationParams", "operation_params"),
    Field("isCancelPending", lambda op: bool(op.is_cancel_pending)),
    Field("cancelMode", lambda op: op.cancel_mode if op.is_cancel_pending else None),
    Field("error", "error"),
    Field("appInstanceId", "app_instance_id"),
    Field("gracefulTermination", "graceful"),
)


NOVA_SERVER = "OS::Nova::Server"
NEUTRON_PORT = "OS::Neutron::Port"


def app_inst_location(host: MecHost | None) -> dict[str, Any] | None:
    """LocationInformation (table 6.2.2.31.2-1) of the host's site, or None when its country is unknown.

    geographicalPosition is a String holding a GeoJSON "Point" (IETF RFC 7946), [longitude, latitude].
    """
    loc = (host.location or {}) if host is not None else {}
    if not loc.get("countryCode"):
        return None
    info: dict[str, Any] = {"countryCode": loc["countryCode"]}
    if loc.get("latitude") is not None and loc.get("longitude") is not None:
        info["geographicalPosition"] = json.dumps(
            {"type": "Point", "coordinates": [loc["longitude"], loc["latitude"]]}, separators=(",", ":"))
    return info


def _instantiated_app_state(inst: AppInstance, host: MecHost | None) -> dict[str, Any]:
    """instantiatedAppState: operationalState and, where the host's location is known, appInstLocation."""
    return compact({"operationalState": inst.operational_state or "STARTED",
                    "appInstLocation": app_inst_location(host)})


def vnf_instance_id(inst: AppInstance) -> str:
    """The VNF instance the app is instantiated as: meao is its own NFVO and VNFM, one VNF per app instance,
    so the VNF instance identifier is the application instance identifier."""
    return inst.id


def _resource_handle(cloud: str | None, resource_id: str, vim_type: str) -> dict[str, Any]:
    """A ResourceHandle in the manner of ETSI GS NFV-SOL 003 clause 4.4.1.7 (vimId: the cloud's name)."""
    return compact({"vimId": cloud, "resourceId": resource_id, "vimLevelResourceType": vim_type})


def vim_resources(inst: AppInstance) -> dict[str, Any] | None:
    """meao's vimResources extension: the VIM's ids of the server and ports the instance holds, if any."""
    res = inst.resources or {}
    cloud = res.get("cloud")
    body: dict[str, Any] = {}
    if res.get("server_id"):
        body["computeResource"] = _resource_handle(cloud, res["server_id"], NOVA_SERVER)
    if res.get("ports"):
        body["extCpResources"] = [{"cpdId": cpd_id, "resource": _resource_handle(cloud, port_id, NEUTRON_PORT)}
                                  for cpd_id, port_id in sorted(res["ports"].items()) if port_id]
    return body or None


def app_instance_info(inst: AppInstance, host: MecHost | None, base: str) -> dict[str, Any]:
    """AppInstanceInfo (clause 6.2.2.4) of an instance on ``host``, with meao's mecPlatform and vimResources."""
    self_href = app_instance_href(base, inst.id)
    links: dict[str, Any] = {"self": link(self_href)}
    more: dict[str, Any] = {"vimResources": vim_resources(inst)}
    if inst.instantiation_state == "INSTANTIATED":
        more["instantiatedAppState"] = _instantiated_app_state(inst, host)
        more["vnfInstanceId"] = vnf_instance_id(inst)
        mep = (inst.resources or {}).get("mep")
        more["mecPlatform"] = compact({"mecHostId": inst.mec_host_id,
                                       "realised": (mep.get("realised") or {}) if mep is not None else None})
        links.update(terminate=link(f"{self_href}/terminate"), operate=link(f"{self_href}/operate"))
    else:
        links["instantiate"] = link(f"{self_href}/instantiate")
    return render(APP_INSTANCE_INFO, inst, **more, _links=links)


def app_lcm_op_occ(op: AppLcmOpOcc, base: str) -> dict[str, Any]:
    """AppLcmOpOcc (clause 6.2.2.13) with its self and appInstance links."""
    return render(APP_LCM_OP_OCC, op, _links={"self": link(op_occ_href(base, op.id)),
                                             "appInstance": link(app_instance_href(base, op.app_instance_id))})
