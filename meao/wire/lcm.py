"""Application lifecycle types (MEC 010-2 clause 6.2.2): AppInstanceInfo and AppLcmOpOcc."""

from __future__ import annotations

from typing import Any

from meao.db.models import AppInstance, AppLcmOpOcc, MecHost
from meao.wire.fields import Field, render
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


def _instantiated_app_state(inst: AppInstance, host: MecHost | None) -> dict[str, Any]:
    """instantiatedAppState: operationalState and, where the host's location is known, appInstLocation."""
    state: dict[str, Any] = {"operationalState": inst.operational_state or "STARTED"}
    loc = (host.location or {}) if host is not None else {}
    if loc.get("countryCode"):
        state["appInstLocation"] = {"countryCode": loc["countryCode"]}
        if loc.get("latitude") is not None and loc.get("longitude") is not None:
            state["appInstLocation"]["geographicalPosition"] = {
                "type": "Point", "coordinates": [loc["longitude"], loc["latitude"]]}
    return state


def app_instance_info(inst: AppInstance, host: MecHost | None, base: str) -> dict[str, Any]:
    """AppInstanceInfo (clause 6.2.2.4) of an instance on ``host``; on the MEAO vnfInstanceId is the VIM server."""
    self_href = app_instance_href(base, inst.id)
    links: dict[str, Any] = {"self": link(self_href)}
    more: dict[str, Any] = {}
    if inst.instantiation_state == "INSTANTIATED":
        more["instantiatedAppState"] = _instantiated_app_state(inst, host)
        more["vnfInstanceId"] = (inst.resources or {}).get("server_id") or None
        mep = (inst.resources or {}).get("mep")
        if mep is not None:
            more["mecPlatform"] = {"realised": mep.get("realised") or {}}
        links.update(terminate=link(f"{self_href}/terminate"), operate=link(f"{self_href}/operate"))
    else:
        links["instantiate"] = link(f"{self_href}/instantiate")
    return render(APP_INSTANCE_INFO, inst, **more, _links=links)


def app_lcm_op_occ(op: AppLcmOpOcc, base: str) -> dict[str, Any]:
    """AppLcmOpOcc (clause 6.2.2.13) with its self and appInstance links."""
    return render(APP_LCM_OP_OCC, op, _links={"self": link(op_occ_href(base, op.id)),
                                             "appInstance": link(app_instance_href(base, op.app_instance_id))})
