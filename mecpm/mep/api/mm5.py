"""Mm5 handlers (openapi/mm5.yaml): the MEPM-V registers app instances at the MEP and stops them gracefully."""

from __future__ import annotations

from typing import Any

from meao.api.responses import JSON, Reply, no_content, ok
from meao.db.session import session_scope
from meao.problems import NotFound
from mecpm.mep import notify, realise, registry, security
from mecpm.mep.api import base, scope
from mecpm.mep.api.app_support import SUBSCRIPTIONS
from mecpm.mep.api.service_mgmt import announce_removed
from mecpm.mep.security import TOKEN_PATH


def put_credentials(appInstanceId: str, body: dict[str, Any]) -> Reply:
    with session_scope() as session:
        client_id, secret = registry.issue_credentials(session, scope(), appInstanceId, body["mecHostId"])
    security.forget(appInstanceId)  # a new registration: what this process knew of the app is stale
    url = base()
    return {"appInstanceId": appInstanceId, "clientId": client_id, "clientSecret": secret,
            "tokenEndpoint": url + TOKEN_PATH, "mecAppSupportUri": url + "/mec_app_support/v1",
            "mecServiceMgmtUri": url + "/mec_service_mgmt/v1"}, 200, {**JSON, "Cache-Control": "no-store"}


def app_info(session: Any, app: Any) -> dict[str, Any]:
    """MepAppInfo."""
    info = {"appInstanceId": app.app_instance_id, "mecHostId": app.host_id, "ready": bool(app.ready),
            "trafficRules": [r.body for r in registry.rules(session, app.app_instance_id, registry.TRAFFIC)],
            "dnsRules": [r.body for r in registry.rules(session, app.app_instance_id, registry.DNS)],
            "realised": app.realised or {}}
    if app.termination:
        info["termination"] = registry.termination_state(session, app)
    return info


def get_app(appInstanceId: str) -> Reply:
    with session_scope() as session:
        return ok(app_info(session, registry.get_app(session, scope(), appInstanceId)))


def put_app(appInstanceId: str, body: dict[str, Any]) -> Reply:
    names: set[str] = set()
    try:
        with session_scope() as session:
            before = realise.app_dns_names(session, appInstanceId)
            app = registry.register(session, scope(), appInstanceId, body)
            names = before | realise.app_dns_names(session, appInstanceId)
            realise.realise(session, app, names)
            answer = app_info(session, app)
    except realise.RealisationFailed:
        realise.restore(appInstanceId, body["mecHostId"], names)  # nothing half-applied stays in the PoP
        raise
    finally:
        security.forget(appInstanceId)  # its authorisations may have changed
    return ok(answer)


def delete_app(appInstanceId: str) -> Reply:
    with session_scope() as session:
        names = realise.app_dns_names(session, appInstanceId)
        announce_removed(session, appInstanceId)
        app = registry.deregister(session, scope(), appInstanceId)
        realise.unrealise(session, app, names)
    security.forget(appInstanceId)
    return no_content()


def start_graceful_termination(appInstanceId: str, body: dict[str, Any]) -> Reply:
    action, timeout = body["operationAction"], int(body["maxGracefulTimeout"])
    with session_scope() as session:
        state, subscriptions = registry.start_termination(session, scope(), appInstanceId, action, timeout)
        targets = [(s.id, s.callback_reference) for s in subscriptions]
    confirm = f"{base()}/mec_app_support/v1/applications/{appInstanceId}/confirm_termination"
    for sub_id, callback in targets:
        notify.send(callback, {
            "notificationType": "AppTerminationNotification", "operationAction": action,
            "maxGracefulTimeout": timeout,
            "_links": {"subscription": {"href": SUBSCRIPTIONS.href(appInstanceId, sub_id)},
                       "confirmTermination": {"href": confirm}}}, within_s=timeout)
    return ok(state)


def get_graceful_termination(appInstanceId: str) -> Reply:
    with session_scope() as session:
        app = registry.get_app(session, scope(), appInstanceId)
        if not app.termination:
            raise NotFound(f"no graceful stop or terminate of application instance {appInstanceId} is under way")
        return ok(registry.termination_state(session, app))


def delete_graceful_termination(appInstanceId: str) -> Reply:
    with session_scope() as session:
        registry.clear_termination(session, scope(), appInstanceId)
    return no_content()
