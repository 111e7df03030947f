"""The MEP's application instances: Mp1 credentials, registration over Mm5, authorisations, termination.

An app instance becomes known to the MEP of its host in two moves of the MEPM-V's instantiate:

1. ``issue_credentials`` right before the server boots: the app's own OAuth 2.0 client, whose id and
   secret go into the VM's boot data (the secret is shown once; only its hash is kept);
2. ``register`` as the last stage: the AppD's rules, the services it may consume (appServiceRequired,
   appServiceOptional) and produce (appServiceProduced), its features, and its ports at the VIM. A
   required service the host does not offer, or a traffic rule that cannot hold beside another app's,
   refuses the registration with a ProblemDetails naming it; nothing is written then.

``deregister`` removes all of it, credentials included (terminate, and the undo of a failed
instantiate). Functions take the caller's session; the Mm5 handlers own the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from meao.auth.clients import hash_secret, new_secret
from meao.db.clock import db_now
from meao.db.models import MecHost, MepApp, MepRule, MepService, MepSubscription
from meao.lcm import selection
from meao.problems import BadRequest, Conflict, NotFound, ProblemError
from mecpm.mep import conflicts

log = logging.getLogger(__name__)

TRAFFIC, DNS = "traffic", "dns"
TERMINATION_SUBSCRIPTION = "AppTerminationNotificationSubscription"
SER_AVAILABILITY_SUBSCRIPTION = "SerAvailabilityNotificationSubscription"
# graceful stop/terminate, as Mm5 reports it
NOTIFIED, CONFIRMED, TIMED_OUT, NOT_SUBSCRIBED = "NOTIFIED", "CONFIRMED", "TIMED_OUT", "NOT_SUBSCRIBED"


class PreconditionFailed(ProblemError, status=412, title="Precondition Failed"):
    """``If-Match`` names another version of the resource than the current one."""


class ServiceNotOffered(ProblemError, status=422, title="Required MEC service not offered"):
    """The AppD requires a MEC service that the host's MEP does not offer; ``detail`` names it."""


class RuleConflict(ProblemError, status=409, title="Traffic rule conflict"):
    """A traffic rule overlaps another app's on the host, with the same priority and another action."""


@dataclass(frozen=True)
class MepScope:
    """The hosts a MEP process serves: one PoP (``meao mep serve --host-id``), or, with ``hosts`` None,
    every host of the inventory without a ``mep_url`` of its own (the MEP inside ``meao serve``)."""

    hosts: frozenset[str] | None = None

    def serves(self, session: Session, host_id: str) -> bool:
        if self.hosts is not None:
            return host_id in self.hosts
        host = session.get(MecHost, host_id)
        return host is not None and not host.mep_url

    def describe(self) -> str:
        return ", ".join(sorted(self.hosts)) if self.hosts is not None else "the hosts without a mep_url"


def client_id_of(app_instance_id: str) -> str:
    """The OAuth 2.0 client id of an app instance's Mp1 credentials."""
    return f"mp1-{app_instance_id}"


def get_app(session: Session, scope: MepScope, app_instance_id: str, *, registered: bool = True,
            lock: bool = False) -> MepApp:
    """The app instance at this MEP; 404 when unknown here (or only credentialed, with ``registered``)."""
    app = session.get(MepApp, app_instance_id, with_for_update=lock)
    if app is None or (registered and not app.registered):
        raise NotFound(f"application instance {app_instance_id} is not registered at this MEP "
                       f"(serving {scope.describe()})")
    if not scope.serves(session, app.host_id):  # not "unknown": a MEPM-V must not take it for done
        raise Conflict(f"application instance {app_instance_id} runs on MEC host {app.host_id}, which this MEP "
                       f"does not serve (it serves {scope.describe()}); check the host's mep_url")
    return app


# ------------------------------------------------------------------------------------------ Mm5
def issue_credentials(session: Session, scope: MepScope, app_instance_id: str, host_id: str) -> tuple[str, str]:
    """Create or rotate the app instance's Mp1 client; (client id, secret). The secret is not kept."""
    if not scope.serves(session, host_id):
        raise Conflict(f"this MEP serves {scope.describe()}, not MEC host {host_id}; configure the host's "
                       "mep_url to point at its own MEP")
    app = session.get(MepApp, app_instance_id, with_for_update=True)
    secret = new_secret()
    if app is None:
        app = MepApp(app_instance_id=app_instance_id, host_id=host_id, client_id=client_id_of(app_instance_id),
                     secret_hash=hash_secret(secret), registered=False, ready=False)
        session.add(app)
    elif app.host_id != host_id:
        raise Conflict(f"application instance {app_instance_id} is registered at MEC host {app.host_id}; "
                       "deregister it there first")
    else:  # rotated: tokens of the old secret stop working (issued before this registration time)
        app.secret_hash, app.created_at = hash_secret(secret), _now(session)
    session.flush()
    return app.client_id, secret


def _named(items: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [dict(i) for i in (items or []) if isinstance(i, dict)]


def service_names(deps: Iterable[Any] | None) -> set[str]:
    """The serName of each ServiceDependency or ServiceDescriptor in ``deps``."""
    return {d["serName"] for d in deps or [] if isinstance(d, dict) and d.get("serName")}


def consumable(app: Any) -> frozenset[str]:
    """The service names an app may discover (a MepApp, or a row of its columns): its AppD's
    appServiceRequired and appServiceOptional."""
    return frozenset(service_names(app.services_required) | service_names(app.services_optional))


def offered_services(session: Session, host_id: str) -> list[tuple[str, str | None]]:
    """(serName, version) of what the host's MEP offers (platform services, and its apps' ACTIVE ones)."""
    host = session.get(MecHost, host_id)
    return [(s.get("serName"), s.get("version")) for s in selection.offered_services(host)] if host else []


def _missing_services(required: list[dict[str, Any]], offered: list[tuple[str, str | None]]) -> list[str]:
    missing = []
    for dep in required:
        name, version = dep.get("serName"), dep.get("version")
        if not any(o_name == name and (not version or not o_version or o_version == version)
                   for o_name, o_version in offered):
            missing.append(f"{name} (version {version})" if version else str(name))
    return missing


def register(session: Session, scope: MepScope, app_instance_id: str, body: dict[str, Any]) -> MepApp:
    """Register (or re-register, idempotently) an app instance with its AppD rules and authorisations.

    Rule states the app changed over Mp1 survive a re-registration of the same rule.
    """
    host_id = body["mecHostId"]
    if not scope.serves(session, host_id):
        raise Conflict(f"this MEP serves {scope.describe()}, not MEC host {host_id}")
    app = session.get(MepApp, app_instance_id, with_for_update=True)
    if app is None or app.host_id != host_id:
        raise Conflict(f"application instance {app_instance_id} has no Mp1 credentials at MEC host {host_id}; "
                       "the MEPM-V issues them (PUT …/credentials) before the app's VM boots")
    required = _named(body.get("appServiceRequired"))
    missing = _missing_services(required, offered_services(session, host_id))
    if missing:
        raise ServiceNotOffered(
            f"the AppD of application instance {app_instance_id} requires the MEC service(s) {', '.join(missing)}, "
            f"which the MEP of MEC host {host_id} does not offer; add them to the host's services, or choose a "
            "host that offers them")
    traffic = [mp1_traffic_rule(r) for r in _named(body.get("appTrafficRule"))]
    dns = [dict(r, state=r.get("state") or "ACTIVE") for r in _named(body.get("appDNSRule"))]  # same names
    _check_unique_ids(traffic, "trafficRuleId")
    _check_unique_ids(dns, "dnsRuleId")
    others = [(r.app_instance_id, r.body) for r in session.scalars(select(MepRule).where(
        MepRule.host_id == host_id, MepRule.kind == TRAFFIC, MepRule.app_instance_id != app_instance_id))]
    clash = conflicts.first_unresolvable(app_instance_id, traffic, others)
    if clash:
        raise RuleConflict(clash)
    _check_dns_names(session, app_instance_id, body.get("appDId"), dns)
    app.registered = True
    app.app_name, app.app_provider, app.appd_id = body.get("appName"), body.get("appProvider"), body.get("appDId")
    app.services_required = required
    app.services_optional = _named(body.get("appServiceOptional"))
    app.services_produced = _named(body.get("appServiceProduced"))
    app.features_required = _named(body.get("appFeatureRequired"))
    app.ports = _named(body.get("ports"))
    _replace_rules(session, app, TRAFFIC, "trafficRuleId", traffic)
    _replace_rules(session, app, DNS, "dnsRuleId", dns)
    session.flush()
    return app


_INTERFACE_NAMES = {"srcMACAddress": "srcMacAddress", "dstMACAddress": "dstMacAddress", "dstIPAddress": "dstIpAddress"}


def mp1_traffic_rule(descriptor: dict[str, Any]) -> dict[str, Any]:
    """An AppD's TrafficRuleDescriptor (MEC 010-2 clause 6.2.1.9) as an Mp1 TrafficRule (MEC 011), ACTIVE.

    TrafficFilter ``tag`` is Mp1's ``token``; InterfaceDescriptor's MAC/IP names are spelt ``…MacAddress``
    and ``dstIpAddress``; one destination interface is an object, two are a list (MEC 011 allows 0..2).
    """
    rule = dict(descriptor)
    rule["trafficFilter"] = [{("token" if k == "tag" else k): v for k, v in f.items()}
                             for f in rule.get("trafficFilter") or [] if isinstance(f, dict)]
    interfaces = rule.pop("dstInterface", None)
    if isinstance(interfaces, dict):
        interfaces = [interfaces]
    if interfaces:
        renamed = [{_INTERFACE_NAMES.get(k, k): v for k, v in i.items()} for i in interfaces]
        rule["dstInterface"] = renamed[0] if len(renamed) == 1 else renamed
    rule["state"] = descriptor.get("state") or "ACTIVE"
    return rule


def _check_dns_names(session: Session, app_instance_id: str, appd_id: str | None, dns: list[dict[str, Any]]) -> None:
    """A domain name belongs to one application (AppD): instances of the same AppD share it (their
    addresses are merged), an instance of another AppD claiming it is a conflict, so no app can take
    over another's name."""
    wanted = {_domain(r.get("domainName")): r.get("dnsRuleId") for r in dns}
    if not wanted:
        return
    rows = session.execute(select(MepRule.rule_id, MepRule.body, MepApp.appd_id).join(
        MepApp, MepApp.app_instance_id == MepRule.app_instance_id).where(
        MepRule.kind == DNS, MepRule.app_instance_id != app_instance_id))
    for rule_id, body, other_appd in rows:
        name = _domain(body.get("domainName"))
        if name in wanted and other_appd != appd_id:
            raise RuleConflict(f"DNS rule {wanted[name]} of application instance {app_instance_id} names {name}, "
                               f"which DNS rule {rule_id} of another application answers already; a domain name "
                               "belongs to one application (its instances share it): choose another name in the AppD")


def _domain(name: Any) -> str:
    return str(name or "").strip().lower().removesuffix(".")


def _check_unique_ids(rules: list[dict[str, Any]], key: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        rule_id = rule.get(key)
        if not isinstance(rule_id, str) or not rule_id:
            raise BadRequest(f"every rule needs a {key}")
        if rule_id in seen:
            raise BadRequest(f"{key} {rule_id} is given twice")
        seen.add(rule_id)


def _replace_rules(session: Session, app: MepApp, kind: str, key: str, wanted: list[dict[str, Any]]) -> None:
    existing = {r.rule_id: r for r in session.scalars(select(MepRule).where(
        MepRule.app_instance_id == app.app_instance_id, MepRule.kind == kind))}
    for rule in wanted:
        row = existing.pop(rule[key], None)
        if row is None:
            session.add(MepRule(app_instance_id=app.app_instance_id, kind=kind, rule_id=rule[key],
                                host_id=app.host_id, body=rule, version=1))
        elif {k: v for k, v in row.body.items() if k != "state"} != {k: v for k, v in rule.items() if k != "state"}:
            row.body, row.version = dict(rule, state=row.body.get("state", "ACTIVE")), row.version + 1
    for row in existing.values():
        session.delete(row)


def deregister(session: Session, scope: MepScope, app_instance_id: str) -> MepApp:
    """Forget an app instance: credentials, rules, subscriptions, the services it produced. Returns the
    row as it was (the caller removes what was realised for it); 404 when unknown."""
    app = get_app(session, scope, app_instance_id, registered=False, lock=True)
    for model in (MepRule, MepSubscription, MepService):
        session.execute(delete(model).where(model.app_instance_id == app_instance_id))
    session.delete(app)
    session.flush()
    return app


def rules(session: Session, app_instance_id: str, kind: str) -> list[MepRule]:
    """An app instance's traffic or DNS rules, by id."""
    return list(session.scalars(select(MepRule).where(MepRule.app_instance_id == app_instance_id,
                                                      MepRule.kind == kind).order_by(MepRule.rule_id)))


def host_rules(session: Session, host_id: str | list[str], kind: str) -> list[MepRule]:
    """Every app's rules of one kind on a host (or on each of a list of hosts)."""
    hosts = [host_id] if isinstance(host_id, str) else host_id
    return list(session.scalars(select(MepRule).where(MepRule.host_id.in_(hosts), MepRule.kind == kind)))


# ---------------------------------------------------------------------- graceful stop / terminate
def _now(session: Session) -> datetime:
    """The database's clock (every MEP process and worker agrees on deadlines), timezone-aware."""
    now = session.execute(select(db_now())).scalar_one()
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _as_utc(value: str) -> datetime:
    return datetime.fromisoformat(value)


def start_termination(session: Session, scope: MepScope, app_instance_id: str, action: str,
                      timeout_s: int) -> tuple[dict[str, Any], list[MepSubscription]]:
    """Begin a graceful stop or terminate (MEC 011 clause 5.2.x, MEC 010-2 clause 5): the state, and the
    subscriptions to notify now (none when one of the same action is under way already)."""
    app = get_app(session, scope, app_instance_id, lock=True)
    current = app.termination or {}
    if current.get("operationAction") == action and current.get("state") in (NOTIFIED, CONFIRMED):
        return termination_state(session, app), []
    subs = list(session.scalars(select(MepSubscription).where(
        MepSubscription.app_instance_id == app_instance_id,
        MepSubscription.subscription_type == TERMINATION_SUBSCRIPTION)))
    now = _now(session)
    state = NOTIFIED if subs else NOT_SUBSCRIBED
    app.termination = {"operationAction": action, "maxGracefulTimeout": timeout_s, "state": state,
                       "startedAt": now.isoformat(), "deadline": (now + timedelta(seconds=timeout_s)).isoformat()}
    session.flush()
    return dict(app.termination), subs if state == NOTIFIED else []


def termination_state(session: Session, app: MepApp) -> dict[str, Any]:
    """The graceful stop/terminate under way, TIMED_OUT once its deadline passed unconfirmed."""
    current = dict(app.termination or {})
    if current.get("state") == NOTIFIED and _now(session) >= _as_utc(current["deadline"]):
        current["state"] = TIMED_OUT
        app.termination = current
        session.flush()
    return current


def confirm_termination(session: Session, scope: MepScope, app_instance_id: str, action: str) -> None:
    """The app's confirm_termination: 409 when no stop or terminate awaits it, or another one does."""
    app = get_app(session, scope, app_instance_id, lock=True)
    current = termination_state(session, app)
    if current.get("state") != NOTIFIED:
        raise Conflict(f"no graceful {action.lower()} of application instance {app_instance_id} awaits "
                       f"confirmation (state {current.get('state') or 'none'})")
    if current.get("operationAction") != action:
        raise Conflict(f"the MEP awaits confirmation of {current['operationAction']}, not {action}")
    app.termination = dict(current, state=CONFIRMED)
    session.flush()


def clear_termination(session: Session, scope: MepScope, app_instance_id: str) -> None:
    """Forget a finished graceful stop (the app is started again) ; readiness is to be confirmed anew."""
    app = get_app(session, scope, app_instance_id, lock=True)
    app.termination = None
    app.ready = False
    session.flush()
