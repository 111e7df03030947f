"""Mp1 MEC application support handlers (MEC 011 clause 7, openapi/mp1-app-support.yaml).

An app acts only on itself (``security.require_self``). Of a traffic or DNS rule only ``state`` may
change: the rest is the AppD's, which the MEPM-V registered. Each rule carries a version as its ETag;
a PUT with a stale ``If-Match`` gets 412 and changes nothing. A state change is realised (Neutron, DNS
server) before it is committed, so a rule never reads ACTIVE while the PoP does not hold it.
"""

from __future__ import annotations

import time
from typing import Any

from flask import request
from sqlalchemy import update

from meao.api.responses import JSON, Reply, no_content
from meao.db.models import MepRule
from meao.db.session import session_scope
from meao.problems import BadRequest, Conflict, NotFound
from mecpm.mep import realise, registry
from mecpm.mep.api import own_app, scope
from mecpm.mep.api.subscriptions import SubscriptionResource
from mecpm.mep.registry import DNS, TERMINATION_SUBSCRIPTION, TRAFFIC, PreconditionFailed

_KEYS = {TRAFFIC: "trafficRuleId", DNS: "dnsRuleId"}
_NAMES = {TRAFFIC: "traffic rule", DNS: "DNS rule"}


def _etag(row: MepRule) -> str:
    return f'"{row.version}"'


def _list(app_instance_id: str, kind: str) -> Reply:
    with session_scope() as session:
        own_app(session, app_instance_id)
        return [r.body for r in registry.rules(session, app_instance_id, kind)], 200, JSON


def _rule(session: Any, app_instance_id: str, kind: str, rule_id: str, lock: bool = False) -> MepRule:
    own_app(session, app_instance_id, lock=lock)  # one change of an app's rules at a time (PostgreSQL)
    row = session.get(MepRule, (app_instance_id, kind, rule_id), with_for_update=lock)
    if row is None:
        raise NotFound(f"application instance {app_instance_id} has no {_NAMES[kind]} {rule_id}")
    return row


def _get(app_instance_id: str, kind: str, rule_id: str) -> Reply:
    with session_scope() as session:
        row = _rule(session, app_instance_id, kind, rule_id)
        return row.body, 200, {**JSON, "ETag": _etag(row)}


def _matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or etag in [t.removeprefix("W/") for t in tags]


def _put(app_instance_id: str, kind: str, rule_id: str, body: dict[str, Any]) -> Reply:
    key = _KEYS[kind]
    if body.get(key) != rule_id:
        raise BadRequest(f"{key} in the body ({body.get(key)!r}) differs from the one in the URI ({rule_id})")
    with session_scope() as session:
        row = _rule(session, app_instance_id, kind, rule_id, lock=True)
        if_match = request.headers.get("If-Match")
        if if_match and not _matches(if_match, _etag(row)):
            raise PreconditionFailed(f"the {_NAMES[kind]} {rule_id} changed since you read it (its ETag is now "
                                     f"{_etag(row)}); GET it again and retry")
        changed = sorted(k for k in set(body) | set(row.body)
                         if k != "state" and body.get(k) != row.body.get(k))
        if changed:
            raise BadRequest(f"only the state of {_NAMES[kind]} {rule_id} may change through Mp1; "
                             f"{', '.join(changed)} belong to the AppD (send them as they are)")
        if body["state"] == row.body.get("state"):
            return row.body, 200, {**JSON, "ETag": _etag(row)}
        # compare-and-set on the version: where FOR UPDATE is a no-op (SQLite), of two PUTs with one
        # If-Match only the first changes the rule, the other gets 412
        changed_body = dict(row.body, state=body["state"])
        done = session.execute(update(MepRule).where(
            MepRule.app_instance_id == app_instance_id, MepRule.kind == kind, MepRule.rule_id == rule_id,
            MepRule.version == row.version).values(body=changed_body, version=row.version + 1)).rowcount
        if done != 1:
            raise PreconditionFailed(f"the {_NAMES[kind]} {rule_id} changed meanwhile; GET it again and retry")
        session.refresh(row)
        app = registry.get_app(session, scope(), app_instance_id)
        names = realise.dns_names([row.body]) if kind == DNS else set()
        try:
            realise.realise(session, app, names, traffic_rules=kind == TRAFFIC)
        except realise.RealisationFailed:
            session.rollback()
            realise.restore(app_instance_id, app.host_id, names)
            raise
        return row.body, 200, {**JSON, "ETag": _etag(row)}


def list_traffic_rules(appInstanceId: str) -> Reply:
    return _list(appInstanceId, TRAFFIC)


def get_traffic_rule(appInstanceId: str, trafficRuleId: str) -> Reply:
    return _get(appInstanceId, TRAFFIC, trafficRuleId)


def put_traffic_rule(appInstanceId: str, trafficRuleId: str, body: dict[str, Any]) -> Reply:
    return _put(appInstanceId, TRAFFIC, trafficRuleId, body)


def list_dns_rules(appInstanceId: str) -> Reply:
    return _list(appInstanceId, DNS)


def get_dns_rule(appInstanceId: str, dnsRuleId: str) -> Reply:
    return _get(appInstanceId, DNS, dnsRuleId)


def put_dns_rule(appInstanceId: str, dnsRuleId: str, body: dict[str, Any]) -> Reply:
    return _put(appInstanceId, DNS, dnsRuleId, body)


# ----------------------------------------------------------------------------------- subscriptions
SUBSCRIPTIONS = SubscriptionResource("/mec_app_support/v1", TERMINATION_SUBSCRIPTION,
                                     ("subscriptionType", "callbackReference", "appInstanceId"))


def list_subscriptions(appInstanceId: str) -> Reply:
    return SUBSCRIPTIONS.list(appInstanceId)


def create_subscription(appInstanceId: str, body: dict[str, Any]) -> Reply:
    if body.get("subscriptionType") != TERMINATION_SUBSCRIPTION:
        raise BadRequest(f"subscriptionType must be {TERMINATION_SUBSCRIPTION} on this resource")
    if body.get("appInstanceId") != appInstanceId:
        raise BadRequest(f"appInstanceId in the body ({body.get('appInstanceId')!r}) differs from the one in the "
                         f"URI ({appInstanceId})")
    with session_scope() as session:
        return SUBSCRIPTIONS.create(own_app(session, appInstanceId), body, session)


def get_subscription(appInstanceId: str, subscriptionId: str) -> Reply:
    return SUBSCRIPTIONS.get(appInstanceId, subscriptionId)


def delete_subscription(appInstanceId: str, subscriptionId: str) -> Reply:
    return SUBSCRIPTIONS.delete(appInstanceId, subscriptionId)


# ------------------------------------------------------------------------------ confirmations, timing
def confirm_termination(appInstanceId: str, body: dict[str, Any] | None = None) -> Reply:
    action = (body or {}).get("operationAction")
    if action not in ("STOPPING", "TERMINATING"):
        raise BadRequest("send AppTerminationConfirmation with operationAction STOPPING or TERMINATING, as the "
                         "AppTerminationNotification said")
    with session_scope() as session:
        own_app(session, appInstanceId)
        registry.confirm_termination(session, scope(), appInstanceId, action)
    return no_content()


def confirm_ready(appInstanceId: str, body: dict[str, Any] | None = None) -> Reply:
    if (body or {}).get("indication") != "READY":
        raise BadRequest(f"send AppReadyConfirmation with indication READY, not {(body or {}).get('indication')!r}")
    with session_scope() as session:
        app = own_app(session, appInstanceId)
        if app.termination and app.termination.get("state") in (registry.NOTIFIED, registry.CONFIRMED):
            raise Conflict(f"application instance {appInstanceId} is being stopped or terminated; it cannot "
                           "confirm readiness now")
        app.ready = True
    return no_content()


def _stamp() -> dict[str, int]:
    now = time.time_ns()
    return {"seconds": now // 1_000_000_000, "nanoSeconds": now % 1_000_000_000}


def timing_caps() -> Reply:
    return {"timeStamp": _stamp()}, 200, JSON


def current_time() -> Reply:
    # the MEP's clock is the host's system clock, not traceable to a primary reference here
    return dict(_stamp(), timeSourceStatus="NONTRACEABLE"), 200, JSON
