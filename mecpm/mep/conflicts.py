"""Conflicts between apps' traffic rules on one MEC host (MEC 003: the MEPM resolves them).

Two rules conflict when one of their traffic filters can match the same packet and their actions
differ. The rule with the higher priority takes precedence (MEC 010-2 table 6.2.1.x, TrafficRuleDescriptor
note 1: 0 is the highest priority, 255 the lowest); the other is *overridden* where they overlap. At
equal priority neither can take precedence, so the later registration is refused.

A filter dimension that is absent or empty matches anything; addresses are compared as CIDR blocks,
ports as ranges ("80" or "8000-8080"), protocols by name, case-insensitively.
"""

from __future__ import annotations

import ipaddress
from typing import Any

_DIMENSIONS = ("srcAddress", "dstAddress", "srcPort", "dstPort", "protocol")


def _networks(values: list[Any]) -> list[Any] | None:
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            return None  # not comparable: treat as "may overlap"
    return nets


def _ports(values: list[Any]) -> list[tuple[int, int]] | None:
    ranges = []
    for value in values:
        low, _, high = str(value).partition("-")
        try:
            ranges.append((int(low), int(high or low)))
        except ValueError:
            return None
    return ranges


def _intersects(dimension: str, a: list[Any], b: list[Any]) -> bool:
    if not a or not b:
        return True
    if dimension.endswith("Address"):
        na, nb = _networks(a), _networks(b)
        if na is None or nb is None:
            return True
        return any(x.version == y.version and x.overlaps(y) for x in na for y in nb)
    if dimension.endswith("Port"):
        pa, pb = _ports(a), _ports(b)
        if pa is None or pb is None:
            return True
        return any(x[0] <= y[1] and y[0] <= x[1] for x in pa for y in pb)
    return bool({str(x).upper() for x in a} & {str(y).upper() for y in b})


def filters_overlap(fa: dict[str, Any], fb: dict[str, Any]) -> bool:
    """True when some packet can match both traffic filters."""
    return all(_intersects(d, list(fa.get(d) or []), list(fb.get(d) or [])) for d in _DIMENSIONS)


def rules_overlap(ra: dict[str, Any], rb: dict[str, Any]) -> bool:
    """True when the two rules' filters can match the same traffic (a rule without filters matches all)."""
    fas, fbs = ra.get("trafficFilter") or [{}], rb.get("trafficFilter") or [{}]
    return any(filters_overlap(fa, fb) for fa in fas for fb in fbs)


def _active(rule: dict[str, Any]) -> bool:
    return rule.get("state", "ACTIVE") == "ACTIVE"


def first_unresolvable(app_instance_id: str, rules: list[dict[str, Any]],
                       others: list[tuple[str, dict[str, Any]]]) -> str | None:
    """What refuses ``rules`` beside the other apps' ``others`` (app instance id, rule): the first pair
    that overlaps with equal priority and different actions, described; None when every conflict resolves."""
    for rule in rules:
        for other_app, other in others:
            if (rule.get("action") != other.get("action") and rule.get("priority") == other.get("priority")
                    and _active(other) and rules_overlap(rule, other)):
                return (f"traffic rule {rule.get('trafficRuleId')} of application instance {app_instance_id} "
                        f"({rule.get('action')}) overlaps traffic rule {other.get('trafficRuleId')} of another "
                        f"application instance on the host ({other.get('action')}) with the same priority "
                        f"{rule.get('priority')}, so neither can take precedence; give one of them another "
                        "priority in its AppD, or place the apps on different MEC hosts")
    return None


def overridden(rule: dict[str, Any], others: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The other apps' ACTIVE rules that take precedence over ``rule`` where they overlap, as
    "<trafficRuleId> (priority <p>)": other apps (maybe other tenants') are not named."""
    return [f"{other.get('trafficRuleId')} (priority {other.get('priority')})" for _app, other in others
            if _active(other) and other.get("action") != rule.get("action")
            and int(other.get("priority", 255)) < int(rule.get("priority", 255)) and rules_overlap(rule, other)]
