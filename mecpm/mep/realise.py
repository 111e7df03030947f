"""What the MEP realises in the PoP: DNS rules in its DNS server, traffic rules in Neutron.

- DNS: every ACTIVE DnsRule of every app on the host answers for its ``domainName``; several rules
  for one name are merged (PowerDNS replaces a whole RRset). INACTIVE or gone: NXDOMAIN.
- Traffic: the app's ACTIVE traffic rules become security-group rules on its ports; what Neutron
  cannot express is reported ``unrealised`` with the reason; a rule another app's higher-priority rule
  overlaps is reported ``overriddenBy``.

The result is kept on the app (``MepApp.realised``), so operators and the app see what holds.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from meao.config import get_settings
from meao.db.models import MecHost, MepApp
from meao.nfvo.drivers import get_vim
from meao.nfvo.vim import VimNotFound
from meao.problems import ProblemError
from mecpm.mep import conflicts, dns, traffic
from mecpm.mep.registry import DNS, TRAFFIC, host_rules, rules

log = logging.getLogger(__name__)


class RealisationFailed(ProblemError, status=503, title="MEP could not realise the rules"):
    """The DNS server or the VIM refused or did not answer; nothing was changed. Retry when it is back."""


@lru_cache(maxsize=4)
def _dns_server(url: str, key_file: str | None, ns_name: str) -> dns.PowerDns:
    key = Path(key_file).read_text(encoding="utf-8").strip() if key_file else ""
    return dns.PowerDns(url, key, ns_name=ns_name)


def dns_server() -> dns.PowerDns | None:
    """The MEP's DNS server, or None when none is configured (MEAO_MEP_DNS_API_URL)."""
    mep = get_settings().mep
    if not mep.dns_api_url:
        return None
    return _dns_server(mep.dns_api_url, str(mep.dns_api_key_file) if mep.dns_api_key_file else None, mep.dns_ns)


def _name(value: Any) -> str | None:
    try:
        return dns.normalise_name(str(value))
    except ValueError:
        return None  # refused with the rule's id when its records are computed


def dns_names(bodies: list[dict[str, Any]]) -> set[str]:
    return {n for b in bodies if b.get("domainName") and (n := _name(b["domainName"]))}


def sharing_dns(session: Session, host_id: str) -> list[str]:
    """The hosts whose DNS rules the DNS server of ``host_id``'s MEP answers: the host alone when it has a
    MEP of its own (``mep_url``); else every host without one, as the MEP inside ``meao serve`` serves them
    all from its one DNS server."""
    host = session.get(MecHost, host_id)
    if host is None or host.mep_url:
        return [host_id]
    return list(session.scalars(select(MecHost.id).where(or_(MecHost.mep_url.is_(None), MecHost.mep_url == ""))))


def publish_dns(session: Session, host_id: str, names: set[str]) -> None:
    """Make the DNS server answer for ``names`` exactly what the ACTIVE DNS rules of the hosts sharing it
    say: instances of one AppD on two of them answer with both addresses, and one going leaves the other's."""
    server = dns_server()
    if server is None or not names:
        return
    active = [r.body for r in host_rules(session, sharing_dns(session, host_id), DNS)
              if r.body.get("state") == "ACTIVE"]
    records = dns.records_for(active)
    for name in sorted(names):
        try:
            server.publish(name, records.get(name, []))
        except dns.DnsError as exc:
            raise RealisationFailed(f"the MEP's DNS server refused the records of {name}: {exc}") from exc


def dns_report(session: Session, app: MepApp) -> dict[str, Any]:
    """Per DNS rule of the app: realised, or why not."""
    server = dns_server()
    report = {}
    for row in rules(session, app.app_instance_id, DNS):
        if server is None:
            report[row.rule_id] = {"realised": False, "reason": "no DNS server is configured for this MEP "
                                   "(set MEAO_MEP_DNS_API_URL and MEAO_MEP_DNS_API_KEY_FILE)"}
        else:
            report[row.rule_id] = {"realised": row.body.get("state") == "ACTIVE"}
    return report


def traffic_report(session: Session, app: MepApp) -> dict[str, Any]:
    """Apply the app's ACTIVE traffic rules on its ports; the per-rule report (applied, unrealised,
    overridden)."""
    bodies = [r.body for r in rules(session, app.app_instance_id, TRAFFIC)]
    port_ids = [p["portId"] for p in (app.ports or []) if p.get("portId")]
    host = session.get(MecHost, app.host_id)
    result: dict[str, Any] = {"securityGroupId": None, "rules": {}}
    if bodies and port_ids and host is not None:
        vim = get_vim(host.cloud)
        try:
            done = traffic.realise(vim, app.app_instance_id, port_ids, bodies)
        except VimNotFound as exc:
            if not getattr(vim, "process_local", False):
                raise RealisationFailed(f"Neutron does not know the ports of application instance "
                                        f"{app.app_instance_id}: {exc}") from exc
            done = {"unrealised": {b["trafficRuleId"]: "the fake VIM (MEAO_VIM_DRIVER=fake) keeps each process's "
                                   "PoP in memory, so this MEP cannot see the app's ports" for b in bodies}}
        except ValueError as exc:
            raise ProblemError(str(exc), status=400, title="Bad traffic rule") from exc
        except Exception as exc:
            raise RealisationFailed(f"Neutron did not apply the traffic rules of application instance "
                                    f"{app.app_instance_id}: {exc}") from exc
        result["securityGroupId"] = done.get("securityGroupId")
        for rule_id, applied in (done.get("applied") or {}).items():
            result["rules"][rule_id] = {"realised": True, "securityGroupRules": applied}
        for rule_id, reason in (done.get("unrealised") or {}).items():
            result["rules"][rule_id] = {"realised": False, "reason": reason}
    others = [(r.app_instance_id, r.body) for r in host_rules(session, app.host_id, TRAFFIC)
              if r.app_instance_id != app.app_instance_id]
    cannot = traffic.plan(bodies).unrealised if bodies and not result["rules"] else {}
    for body in bodies:
        rule_id = body["trafficRuleId"]
        why = cannot.get(rule_id) or ("INACTIVE" if body.get("state") != "ACTIVE" else "the app has no ports")
        entry = result["rules"].setdefault(rule_id, {"realised": False, "reason": why})
        beaten = conflicts.overridden(body, others)
        if beaten:
            entry["overriddenBy"] = beaten
    return result


def check(session: Session, app: MepApp) -> None:
    """Refuse malformed rules (400 naming the rule and field) before anything is realised."""
    try:
        traffic.plan([r.body for r in rules(session, app.app_instance_id, TRAFFIC)])
    except ValueError as exc:
        raise ProblemError(str(exc), status=400, title="Bad traffic rule") from exc
    dns.records_for([r.body for r in rules(session, app.app_instance_id, DNS)])  # InvalidDnsRule: 400


def realise(session: Session, app: MepApp, names: set[str] | None = None, *, traffic_rules: bool = True
            ) -> dict[str, Any]:
    """Realise the app's rules (DNS names: those given, else all of the app's; its traffic rules unless
    ``traffic_rules`` is False, when only a DNS rule changed) and record the report."""
    check(session, app)
    if names is None:
        names = app_dns_names(session, app.app_instance_id)
    publish_dns(session, app.host_id, names)
    before = (app.realised or {}).get("trafficRules")
    app.realised = {"trafficRules": traffic_report(session, app) if traffic_rules or before is None else before,
                    "dnsRules": dns_report(session, app)}
    session.flush()
    return app.realised


def unrealise(session: Session, app: MepApp, names: set[str]) -> None:
    """After ``registry.deregister``: withdraw the app's DNS names and its security group."""
    publish_dns(session, app.host_id, names)
    port_ids = [p["portId"] for p in (app.ports or []) if p.get("portId")]
    host = session.get(MecHost, app.host_id)
    if host is not None:  # found by name: also a group made but not recorded (a registration that failed)
        try:
            traffic.remove(get_vim(host.cloud), app.app_instance_id, port_ids)
        except Exception as exc:
            raise RealisationFailed(f"Neutron did not remove the security group of application instance "
                                    f"{app.app_instance_id}: {exc}") from exc


def restore(app_instance_id: str, host_id: str, names: set[str]) -> None:
    """After a change that failed part way (and rolled back): make the DNS server and Neutron hold what
    the database holds again. Best effort: a failure here is logged, the first one is what the caller sees."""
    from meao.db.session import session_scope

    try:
        with session_scope() as session:
            publish_dns(session, host_id, names)
            app = session.get(MepApp, app_instance_id)
            if app is not None and app.registered:
                realise(session, app, set())
            else:
                host = session.get(MecHost, host_id)
                if host is not None:
                    traffic.remove(get_vim(host.cloud), app_instance_id, [])
    except Exception:  # the original failure is the one to report
        log.exception("MEP: could not restore the rules of application instance %s after a failed change",
                      app_instance_id)


def app_dns_names(session: Session, app_instance_id: str) -> set[str]:
    """The domain names of an app's DNS rules."""
    return dns_names([r.body for r in rules(session, app_instance_id, DNS)])
