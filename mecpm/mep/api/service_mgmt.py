"""Mp1 MEC service management handlers (MEC 011 clause 8, openapi/mp1-service-mgmt.yaml).

The registry of a MEP holds the services its apps produce. What an app may do with it comes from its
AppD, as the MEPM-V registered it over Mm5:

- discover (``/services``) only the services its appServiceRequired and appServiceOptional name; a
  filter or an id naming another is a 403, and an unfiltered list leaves the others out;
- register (``/applications/{id}/services``) only the services its appServiceProduced names.

Every service of this MEP is local to it (isLocal true). Changes are announced to the
SerAvailabilityNotificationSubscription of every app allowed to see the service.
"""

from __future__ import annotations

from typing import Any

from flask import request
from sqlalchemy import select, update

from meao.api.responses import JSON, Reply, no_content
from meao.db.models import MepApp, MepService, MepSubscription
from meao.db.session import read_scope, session_scope
from meao.problems import BadRequest, Forbidden, NotFound
from mecpm.mep import notify, registry
from mecpm.mep.api import base, own_app, scope
from mecpm.mep.api.subscriptions import SubscriptionResource
from mecpm.mep.registry import SER_AVAILABILITY_SUBSCRIPTION, PreconditionFailed
from mecpm.mep.security import TOKEN_PATH, caller, caller_client

_FILTERS = ("ser_instance_id", "ser_name", "ser_category_id")
NOTIFY_WITHIN_S = 60.0


def _href(app_instance_id: str | None, ser_id: str) -> str:
    if app_instance_id:
        return f"{base()}/mec_service_mgmt/v1/applications/{app_instance_id}/services/{ser_id}"
    return f"{base()}/mec_service_mgmt/v1/services/{ser_id}"


def _info(row: Any) -> dict[str, Any]:  # a MepService, or a row of its columns
    return dict(row.body, serInstanceId=row.ser_instance_id, isLocal=True)


def _one_filter(*values: list[str] | None) -> None:
    given = [name for name, value in zip(_FILTERS, values, strict=True) if value]
    if len(given) > 1:
        raise BadRequest(f"give at most one of {', '.join(_FILTERS)} (MEC 011 clause 8.2.3.3.1); got {', '.join(given)}")


def _filtered(rows: list[Any], ser_instance_id: list[str] | None, ser_name: list[str] | None,
              ser_category_id: list[str] | None, scope_of_locality: str | None, consumed_local_only: bool | None,
              is_local: bool | None) -> list[Any]:
    _one_filter(ser_instance_id, ser_name, ser_category_id)
    out = []
    for row in rows:
        body = row.body
        if ser_instance_id and row.ser_instance_id not in ser_instance_id:
            continue
        if ser_name and row.ser_name not in ser_name:
            continue
        if ser_category_id and (body.get("serCategory") or {}).get("id") not in ser_category_id:
            continue
        if scope_of_locality and body.get("scopeOfLocality") != scope_of_locality:
            continue
        if consumed_local_only is not None and bool(body.get("consumedLocalOnly")) != consumed_local_only:
            continue
        if is_local is False:  # every service of this MEP is local to it
            continue
        out.append(row)
    return out


def _caller_app(session: Any) -> MepApp:
    return registry.get_app(session, scope(), caller())


def list_services(ser_instance_id: list[str] | None = None, ser_name: list[str] | None = None,
                  ser_category_id: list[str] | None = None, scope_of_locality: str | None = None,
                  consumed_local_only: bool | None = None, is_local: bool | None = None) -> Reply:
    _one_filter(ser_instance_id, ser_name, ser_category_id)
    me = caller_client()  # from the token check: no query for the caller's registration
    allowed, app_id = me.consumes, caller()
    refused = sorted(set(ser_name or []) - allowed)
    if refused:
        raise Forbidden(f"application instance {app_id} may not discover {', '.join(refused)}: its "
                        "AppD's appServiceRequired and appServiceOptional do not name it")
    with read_scope() as session:  # discovery is the MEP's hottest read: no transaction, rows not objects
        if not scope().serves(session, me.host_id):
            raise NotFound(f"application instance {app_id} is not registered at this MEP")
        query = select(MepService.ser_instance_id, MepService.ser_name, MepService.body).where(
            MepService.host_id == me.host_id)
        if ser_instance_id:
            rows = list(session.execute(query.where(MepService.ser_instance_id.in_(ser_instance_id))))
            hidden = [r.ser_instance_id for r in rows if r.ser_name not in allowed]
            if hidden:
                raise Forbidden(f"application instance {app_id} may not discover service instance(s) "
                                f"{', '.join(hidden)}: its AppD does not name their services")
        names = sorted(set(ser_name or allowed) & allowed)  # the registry filters by name, in SQL
        visible = list(session.execute(query.where(MepService.ser_name.in_(names)).order_by(MepService.created_at)))
        found = _filtered(visible, ser_instance_id, ser_name, ser_category_id, scope_of_locality,
                          consumed_local_only, is_local)
        return [_info(r) for r in found], 200, JSON


def get_service(serviceId: str) -> Reply:
    with session_scope() as session:
        app = _caller_app(session)
        row = session.get(MepService, serviceId)
        if row is None or row.host_id != app.host_id:
            raise NotFound(f"this MEP has no service instance {serviceId}")
        if row.ser_name not in registry.consumable(app):
            raise Forbidden(f"application instance {app.app_instance_id} may not discover {row.ser_name}: its "
                            "AppD's appServiceRequired and appServiceOptional do not name it")
        return _info(row), 200, JSON


# ---------------------------------------------------------------------- an app's own services
def list_app_services(appInstanceId: str, ser_instance_id: list[str] | None = None,
                      ser_name: list[str] | None = None, ser_category_id: list[str] | None = None,
                      scope_of_locality: str | None = None, consumed_local_only: bool | None = None,
                      is_local: bool | None = None) -> Reply:
    with session_scope() as session:
        own_app(session, appInstanceId)
        rows = list(session.scalars(select(MepService).where(MepService.app_instance_id == appInstanceId)
                                    .order_by(MepService.created_at)))
        found = _filtered(rows, ser_instance_id, ser_name, ser_category_id, scope_of_locality,
                          consumed_local_only, is_local)
        return [_info(r) for r in found], 200, JSON


def create_app_service(appInstanceId: str, body: dict[str, Any]) -> Reply:
    with session_scope() as session:
        app = own_app(session, appInstanceId)
        name = body["serName"]
        if name not in registry.service_names(app.services_produced):
            raise Forbidden(f"application instance {appInstanceId} may not register {name}: its AppD's "
                            "appServiceProduced does not name it")
        taken = session.scalars(select(MepService.ser_instance_id).where(
            MepService.app_instance_id == appInstanceId, MepService.ser_name == name,
            MepService.body["version"].as_string() == str(body["version"]))).first()
        if taken:
            raise BadRequest(f"application instance {appInstanceId} registered {name} version {body['version']} "
                             f"already, as {taken}; update it with PUT {_href(appInstanceId, taken)}")
        stored = {k: v for k, v in body.items() if k not in ("serInstanceId", "isLocal")}
        row = MepService(host_id=app.host_id, app_instance_id=appInstanceId, ser_name=name, body=stored, version=1)
        session.add(row)
        session.flush()
        answer = _info(row)
        _announce(session, row, "ADDED")
    return answer, 201, {**JSON, "Location": _href(appInstanceId, answer["serInstanceId"])}


def _own_service(session: Any, app_instance_id: str, ser_id: str, lock: bool = False) -> MepService:
    own_app(session, app_instance_id)
    row = session.get(MepService, ser_id, with_for_update=lock)
    if row is None or row.app_instance_id != app_instance_id:
        raise NotFound(f"application instance {app_instance_id} registered no service instance {ser_id}")
    return row


def get_app_service(appInstanceId: str, serviceId: str) -> Reply:
    with session_scope() as session:
        row = _own_service(session, appInstanceId, serviceId)
        return _info(row), 200, {**JSON, "ETag": f'"{row.version}"'}


def put_app_service(appInstanceId: str, serviceId: str, body: dict[str, Any]) -> Reply:
    if body.get("serInstanceId", serviceId) != serviceId:
        raise BadRequest(f"serInstanceId in the body ({body['serInstanceId']}) differs from the one in the URI "
                         f"({serviceId})")
    with session_scope() as session:
        row = _own_service(session, appInstanceId, serviceId, lock=True)
        if_match = request.headers.get("If-Match")
        etag = f'"{row.version}"'
        if if_match and etag not in [t.strip().removeprefix("W/") for t in if_match.split(",")] and if_match != "*":
            raise PreconditionFailed(f"service instance {serviceId} changed since you read it (its ETag is now {etag}); "
                                     "GET it again and retry")
        if body["serName"] != row.ser_name:
            raise BadRequest(f"serName cannot change ({row.ser_name}); register another service instead")
        stored = {k: v for k, v in body.items() if k not in ("serInstanceId", "isLocal")}
        if stored != row.body:
            others = {k for k in set(stored) | set(row.body) if k != "state" and stored.get(k) != row.body.get(k)}
            change = "ATTRIBUTES_CHANGED" if others else "STATE_CHANGED"
            # compare-and-set on the version (FOR UPDATE is a no-op on SQLite): one of two racing PUTs wins
            if session.execute(update(MepService).where(MepService.ser_instance_id == serviceId,
                                                        MepService.version == row.version)
                               .values(body=stored, version=row.version + 1)).rowcount != 1:
                raise PreconditionFailed(f"service instance {serviceId} changed meanwhile; GET it again and retry")
            session.refresh(row)
            _announce(session, row, change)
        return _info(row), 200, {**JSON, "ETag": f'"{row.version}"'}


def delete_app_service(appInstanceId: str, serviceId: str) -> Reply:
    with session_scope() as session:
        row = _own_service(session, appInstanceId, serviceId, lock=True)
        _announce(session, row, "REMOVED")
        session.delete(row)
    return no_content()


def announce_removed(session: Any, app_instance_id: str) -> None:
    """SerAvailabilityNotification REMOVED for every service an app produced (it is being deregistered)."""
    for row in session.scalars(select(MepService).where(MepService.app_instance_id == app_instance_id)):
        _announce(session, row, "REMOVED")


# --------------------------------------------------------------------------------- subscriptions
def _matches(criteria: dict[str, Any], row: MepService) -> bool:
    if criteria.get("serInstanceIds") and row.ser_instance_id not in criteria["serInstanceIds"]:
        return False
    if criteria.get("serNames") and row.ser_name not in criteria["serNames"]:
        return False
    if criteria.get("serCategories") and (row.body.get("serCategory") or {}).get("id") not in [
            c.get("id") for c in criteria["serCategories"]]:
        return False
    if criteria.get("states") and row.body.get("state") not in criteria["states"]:
        return False
    return criteria.get("isLocal") is not False


def _announce(session: Any, row: MepService, change: str) -> None:
    """SerAvailabilityNotification to the subscriptions of the apps allowed to see the service, sent when
    the change commits."""
    subs = session.scalars(select(MepSubscription).where(
        MepSubscription.host_id == row.host_id, MepSubscription.subscription_type == SER_AVAILABILITY_SUBSCRIPTION))
    for sub in subs:
        app = session.get(MepApp, sub.app_instance_id)
        if app is None or row.ser_name not in registry.consumable(app) or not _matches(sub.body.get("filteringCriteria") or {}, row):
            continue
        reference = {"serName": row.ser_name, "serInstanceId": row.ser_instance_id,
                     "state": row.body.get("state"), "changeType": change}
        if change != "REMOVED":
            reference["link"] = {"href": _href(None, row.ser_instance_id)}
        notify.send_after_commit(session, sub.callback_reference, {
            "notificationType": "SerAvailabilityNotification", "serviceReferences": [reference],
            "_links": {"subscription": {"href": SUBSCRIPTIONS.href(sub.app_instance_id, sub.id)}}}, NOTIFY_WITHIN_S)


SUBSCRIPTIONS = SubscriptionResource("/mec_service_mgmt/v1", SER_AVAILABILITY_SUBSCRIPTION,
                                     ("subscriptionType", "callbackReference", "filteringCriteria"))


def list_ser_subscriptions(appInstanceId: str) -> Reply:
    return SUBSCRIPTIONS.list(appInstanceId)


def create_ser_subscription(appInstanceId: str, body: dict[str, Any]) -> Reply:
    with session_scope() as session:
        app = own_app(session, appInstanceId)
        criteria = body.get("filteringCriteria") or {}
        refused = sorted(set(criteria.get("serNames") or []) - registry.consumable(app))
        if refused:
            raise Forbidden(f"application instance {appInstanceId} may not watch {', '.join(refused)}: its AppD "
                            "does not name it among the services it consumes")
        return SUBSCRIPTIONS.create(app, body, session)


def get_ser_subscription(appInstanceId: str, subscriptionId: str) -> Reply:
    return SUBSCRIPTIONS.get(appInstanceId, subscriptionId)


def delete_ser_subscription(appInstanceId: str, subscriptionId: str) -> Reply:
    return SUBSCRIPTIONS.delete(appInstanceId, subscriptionId)


def list_transports() -> Reply:
    """The transports this MEP offers its services over: REST over HTTP, with Mp1's OAuth 2.0 tokens."""
    url = base()
    return [{"id": "meao-rest-http", "name": "REST", "description": "REST over HTTP through this MEP's Mp1",
             "type": "REST_HTTP", "protocol": "HTTP", "version": "1.1", "endpoint": {"uris": [url]},
             "security": {"oAuth2Info": {"grantTypes": ["OAUTH2_CLIENT_CREDENTIALS"],
                                         "tokenEndpoint": url + TOKEN_PATH}}}], 200, JSON
