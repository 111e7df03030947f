"""An app instance's MEC traffic rules realised as Neutron security-group rules on its ports.

The rules are MEC 011 v2.1.1 ``TrafficRule`` (Mp1) or MEC 010-2 v3.1.1 ``TrafficRuleDescriptor``
(table 6.2.1.9.2-1, with ``TrafficFilter`` table 6.2.1.10.2-1), as the AppD model keeps them: camelCase
dicts. A descriptor has no ``state``; it counts as ACTIVE.

Neutron has no data plane that steers, tunnels or duplicates traffic: a security group is a stateful
allow-list on a port. So what a rule becomes is:

- ``PASSTHROUGH`` and ``FORWARD_DECAPSULATED``: ingress rules that let the filter's traffic in to the app
  (``dstInterface`` is the app's port the group sits on). Each filter is the cross product of its
  ``protocol`` x ``dstPort`` x ``srcAddress`` entries, an empty list meaning any; combinations no packet
  can match (ICMP to a port, ICMPv6 from an IPv4 address) are left out, and a filter of nothing but
  such combinations is an error. ``dstPort`` without ``protocol`` means every protocol Neutron gives
  ports to (tcp, udp, sctp, udplite, dccp).
- ``DROP``: realised by absence, since traffic no rule allows is dropped. An allow-list cannot take
  away what an allow rule lets in, so a DROP that overlaps an allow rule of the same or lower priority
  (0 is the highest, MEC 010-2 table 6.2.1.9.2-1 note 1) is reported unrealised; the allow stays.
- ``FORWARD_ENCAPSULATED``, ``DUPLICATE_DECAPSULATED``, ``DUPLICATE_ENCAPSULATED``: unrealised.
- A filter using a field security groups cannot match (token/tag/uri/packetLabel, the GTP tunnel
  fields, qCI, dSCP, tC, srcPort, a dstAddress other than the app's own port address) is unrealised;
  the rule's other filters still apply. The app's own address in dstAddress only narrows the family.
- ``filterType`` FLOW is what a stateful group does (replies pass); PACKET is realised the same way,
  except with tunnel fields (unrealised like every tunnel field).
- INACTIVE rules contribute nothing, but their values are checked like the others.

Egress stays open (Neutron's default egress rules of a new group): the traffic rules govern what reaches
the app, and its outbound traffic works as it did on the default group. One group serves all the
instance's ports, so a rule lets its traffic in on each of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meao.nfvo.vim import IPV6_ONLY_PROTOCOLS, PORT_PROTOCOLS, SgRule, Vim, canonical_protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ACTIONS = frozenset({"PASSTHROUGH", "FORWARD_DECAPSULATED"})
DATA_PLANE_ACTIONS = frozenset({"FORWARD_ENCAPSULATED", "DUPLICATE_DECAPSULATED", "DUPLICATE_ENCAPSULATED"})
DROP = "DROP"
ACTIONS = ALLOW_ACTIONS | DATA_PLANE_ACTIONS | {DROP}
FILTER_TYPES = frozenset({"FLOW", "PACKET"})
STATES = frozenset({"ACTIVE", "INACTIVE"})

TUNNEL_FIELDS = ("srcTunnelAddress", "tgtTunnelAddress", "srcTunnelPort", "dstTunnelPort")
# TrafficFilter fields a security group cannot match: token (MEC 011), tag/uri/packetLabel (MEC 010-2),
# the tunnel fields, the QoS markings, and the source port (a rule's port range is the destination's).
UNMATCHABLE_LIST_FIELDS = ("token", "tag", "uri", "packetLabel", *TUNNEL_FIELDS, "srcPort")
UNMATCHABLE_INT_FIELDS = {"qCI": (0, 255), "dSCP": (0, 63), "tC": (0, 255)}
FILTER_FIELDS = frozenset({"srcAddress", "dstAddress", "dstPort", "protocol", "direction",
                           *UNMATCHABLE_LIST_FIELDS, *UNMATCHABLE_INT_FIELDS})
_ETHERTYPES = {4: "IPv4", 6: "IPv6"}
NO_DATA_PLANE = "needs a data plane that Neutron lacks"


@dataclass(frozen=True)
class TrafficPlan:
    """What a set of traffic rules becomes at Neutron.

    ``sg_rules`` is the group's whole ingress allow-list (deduplicated, sorted). ``applied`` names each
    ACTIVE rule realised at least in part with the rules it contributed (empty for a DROP);
    ``unrealised`` each ACTIVE rule not realised at least in part, with why. A rule some of whose
    filters apply and others not is in both.
    """

    sg_rules: list[SgRule]
    applied: dict[str, list[SgRule]]
    unrealised: dict[str, str]


@dataclass(frozen=True)
class _Filter:
    rules: list[SgRule]  # what it allows (for a DROP: what it would allow, to find overlaps)
    unrealised: str | None  # why it cannot be realised as it stands
    reaches_app: bool  # False when its dstAddress names none of the app's addresses


def plan(rules: Sequence[Mapping[str, Any]], own_addresses: Iterable[str] = ()) -> TrafficPlan:
    """Translate traffic rules into security-group rules (pure: no VIM call).

    ``own_addresses`` are the fixed IPs of the app's ports: a filter whose ``dstAddress`` is one of them
    can be realised, any other ``dstAddress`` cannot. Raises ValueError naming the rule and field for a
    value that is not valid (a port 70000, an unknown protocol, a malformed address, an unknown action).
    """
    own = {ipaddress.ip_address(a) for a in own_addresses}
    checked = [_check_rule(rule, n, own) for n, rule in enumerate(rules)]
    seen: set[str] = set()
    for rule_id, *_ in checked:
        if rule_id in seen:
            raise ValueError(f"traffic rule '{rule_id}' is given twice (trafficRuleId must be unique)")
        seen.add(rule_id)

    applied: dict[str, list[SgRule]] = {}
    unrealised: dict[str, str] = {}
    allows: list[tuple[str, int, list[SgRule]]] = []
    active = [c for c in checked if c[3] == "ACTIVE"]
    for rule_id, action, priority, _state, filters in active:
        if action in DATA_PLANE_ACTIONS:
            unrealised[rule_id] = f"action {action} {NO_DATA_PLANE} (security groups only let traffic in)"
        elif action in ALLOW_ACTIONS:
            realised = [f for f in filters if f.unrealised is None]
            reasons = [f.unrealised for f in filters if f.unrealised is not None]
            if realised:
                applied[rule_id] = _sorted({r for f in realised for r in f.rules})
                allows.append((rule_id, priority, applied[rule_id]))
            if reasons:
                unrealised[rule_id] = "; ".join(reasons)
    for rule_id, action, priority, _state, filters in active:
        if action != DROP:
            continue
        applied[rule_id] = []
        dropped = [r for f in filters if f.reaches_app for r in f.rules]
        beaten = [(other, p) for other, p, allowed in allows
                  if p >= priority and any(_overlap(d, a) for d in dropped for a in allowed)]
        if beaten:
            names = ", ".join(f"'{other}' (priority {p})" for other, p in beaten)
            unrealised[rule_id] = (
                f"DROP (priority {priority}) overlaps allow rule {names}, which it should take precedence over "
                f"(0 is the highest priority); security groups are allow-lists, so what an allow rule lets in "
                f"cannot be dropped: the overlap is let in")
    sg_rules = _sorted({r for rs in applied.values() for r in rs})
    return TrafficPlan(sg_rules=sg_rules, applied=applied, unrealised=unrealised)


def realise(vim: Vim, instance_id: str, port_ids: Sequence[str], rules: Sequence[Mapping[str, Any]]) -> dict:
    """Make the instance's security group hold what ``rules`` allow and put it on every one of its ports.

    The rules are checked before the VIM is touched (ValueError: nothing changed). The group replaces
    the ports' other groups (their default group too). Running it again with the same rules changes
    nothing. Returns ``{"securityGroupId", "applied": {ruleId: [rule views]}, "unrealised": {ruleId: why}}``.
    """
    wanted = set(port_ids)
    own = [ip for p in vim.find_ports(instance_id) if p.id in wanted for ip in p.fixed_ips]
    result = plan(rules, own)
    sg_id = vim.ensure_app_security_group(instance_id)
    vim.sync_security_group_rules(sg_id, result.sg_rules)
    for port_id in port_ids:
        vim.set_port_security_groups(port_id, [sg_id])
    return {"securityGroupId": sg_id,
            "applied": {rule_id: [rule_view(r) for r in rs] for rule_id, rs in result.applied.items()},
            "unrealised": dict(result.unrealised)}


def remove(vim: Vim, instance_id: str, port_ids: Sequence[str]) -> None:
    """Take the instance's security group off its ports (they get the default group back) and delete it."""
    vim.delete_app_security_group(instance_id, port_ids)


def rule_view(rule: SgRule) -> dict[str, Any]:
    """A security-group rule as the MEP reports it (camelCase, Neutron's vocabulary)."""
    return {"direction": rule.direction, "ethertype": rule.ethertype, "protocol": rule.protocol,
            "portRangeMin": rule.port_min, "portRangeMax": rule.port_max, "remoteIpPrefix": rule.remote_ip_prefix}


# ------------------------------------------------------------------------------------------- checking
def _check_rule(rule: Mapping[str, Any], n: int,
                own: set[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> tuple[str, str, int, str, list[_Filter]]:
    if not isinstance(rule, Mapping):
        raise ValueError(f"traffic rule #{n} is not an object")  # noqa: TRY004 — every bad rule is a 400
    rule_id = rule.get("trafficRuleId")
    if not isinstance(rule_id, str) or not rule_id:
        raise ValueError(f"traffic rule #{n}: trafficRuleId is required (a non-empty string)")

    def fail(field: str, what: str) -> ValueError:
        return ValueError(f"traffic rule '{rule_id}': {field} {what}")

    filter_type = rule.get("filterType")
    if filter_type not in FILTER_TYPES:
        raise fail("filterType", f"{filter_type!r} is not one of {', '.join(sorted(FILTER_TYPES))}")
    priority = rule.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 255:
        raise fail("priority", f"{priority!r} is not an integer in 0..255")
    action = rule.get("action")
    if action not in ACTIONS:
        raise fail("action", f"{action!r} is not one of {', '.join(sorted(ACTIONS))}")
    state = rule.get("state", "ACTIVE")
    if state not in STATES:
        raise fail("state", f"{state!r} is not one of ACTIVE, INACTIVE")
    filters = rule.get("trafficFilter")
    if not isinstance(filters, list) or not filters:
        raise fail("trafficFilter", "must be a non-empty list (1..N)")
    return rule_id, action, priority, state, [
        _check_filter(f, f"trafficFilter[{i}]", filter_type, own, fail) for i, f in enumerate(filters)]


def _check_filter(flt: Any, where: str, filter_type: str,
                  own: set[ipaddress.IPv4Address | ipaddress.IPv6Address], fail: Any) -> _Filter:
    if not isinstance(flt, Mapping):
        raise fail(where, "is not an object")
    unknown = sorted(set(flt) - FILTER_FIELDS)
    if unknown:  # a misspelt field would silently widen what is allowed
        raise fail(where, f"has unknown field(s) {', '.join(unknown)}")

    def entries(field: str) -> list[Any]:
        value = flt.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool)
                                                 for v in value):
            raise fail(f"{where}.{field}", "must be a list of strings")
        return value

    src = [n for v in entries("srcAddress") for n in _networks(v, f"{where}.srcAddress", fail)]
    dst = [n for v in entries("dstAddress") for n in _networks(v, f"{where}.dstAddress", fail)]
    ports = [_port_range(v, f"{where}.dstPort", fail) for v in entries("dstPort")]
    protocols = []
    for v in entries("protocol"):
        try:
            protocols.append(canonical_protocol(v, "IPv4"))
        except ValueError as exc:
            raise fail(f"{where}.protocol", f"{v!r}: {exc}") from None
    for field in ("srcPort", "srcTunnelPort", "dstTunnelPort"):
        for v in entries(field):
            _port_range(v, f"{where}.{field}", fail)
    for field, (low, high) in UNMATCHABLE_INT_FIELDS.items():
        value = flt.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise fail(f"{where}.{field}", f"{value!r} is not an integer in {low}..{high}")
    direction = flt.get("direction")
    if direction is not None and direction not in ("00", "01"):
        raise fail(f"{where}.direction", f"{direction!r} is not '00' (downlink) or '01' (uplink)")

    unmatchable = [f for f in UNMATCHABLE_LIST_FIELDS if entries(f)]
    unmatchable += [f for f in UNMATCHABLE_INT_FIELDS if flt.get(f) is not None]
    reasons = []
    if unmatchable:
        tunnel = " (filterType PACKET on a GTP tunnel)" if filter_type == "PACKET" and set(
            unmatchable) & set(TUNNEL_FIELDS) else ""
        reasons.append(f"{where} matches on {', '.join(unmatchable)}{tunnel}, which security groups cannot: "
                       f"{NO_DATA_PLANE}")
    foreign = [str(n) for n in dst if n.num_addresses != 1 or n.network_address not in own]
    if foreign:
        reasons.append(f"{where}.dstAddress {', '.join(foreign)} is not an address of the app's ports: steering "
                       f"traffic for other destinations to the app {NO_DATA_PLANE}")
    families = {n.version for n in dst} if dst else {4, 6}
    allowed = _cross(src, ports, protocols, families)
    if not allowed:
        raise fail(where, "matches no packet (e.g. a dstPort with a protocol that has no ports, or an IPv6-only "
                          "protocol with IPv4 addresses only)")
    return _Filter(rules=allowed, unrealised="; ".join(reasons) or None,
                   reaches_app=not dst or len(foreign) < len(dst))


def _networks(value: str | int, where: str, fail: Any) -> list[Network]:
    """An address, a prefix (``a/len`` or ``a/mask``) or a range ``a-b`` (as the prefixes that cover it)."""
    text = str(value).strip()
    try:
        if "-" in text:  # IPv6 addresses never contain '-'
            first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            if first.version != last.version or first > last:  # type: ignore[operator]
                raise ValueError("not an ascending range of one address family")
            return list(ipaddress.summarize_address_range(first, last))  # type: ignore[arg-type]
        return [ipaddress.ip_network(text, strict=False)]  # host bits set: the network they are in
    except ValueError as exc:
        raise fail(where, f"{value!r} is not an IP address, prefix or range ({exc})") from None


def _port_range(value: str | int, where: str, fail: Any) -> tuple[int, int]:
    """A port (``"80"``, or 80 as MEC 037 Annex A writes it) or a range ``"8000-8080"``."""
    parts = str(value).strip().split("-")
    if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
        low, high = int(parts[0]), int(parts[-1])
        if 1 <= low <= high <= 65535:
            return low, high
    raise fail(where, f"{value!r} is not a port or a range of ports 'a-b' within 1..65535")


def _cross(src: list[Network], ports: list[tuple[int, int]], protocols: list[str | None],
           families: set[int]) -> list[SgRule]:
    rules: set[SgRule] = set()
    for version in sorted(families & ({n.version for n in src} if src else {4, 6})):
        ethertype = _ETHERTYPES[version]
        prefixes = [None if n.prefixlen == 0 else str(n) for n in src if n.version == version] or [None]
        for proto in protocols or [None]:
            if proto in IPV6_ONLY_PROTOCOLS and version == 4:
                continue  # no IPv4 packet is ICMPv6
            proto = canonical_protocol(proto, ethertype)
            if ports and proto is not None and proto not in PORT_PROTOCOLS:
                continue  # no ICMP packet has a port
            for port_proto in (PORT_PROTOCOLS if ports and proto is None else (proto,)):
                for low, high in ports or [(None, None)]:
                    rules.update(SgRule("ingress", ethertype, port_proto, low, high, prefix) for prefix in prefixes)
    return _sorted(rules)


def _overlap(a: SgRule, b: SgRule) -> bool:
    """Whether some packet matches both rules."""
    if (a.direction, a.ethertype) != (b.direction, b.ethertype):
        return False
    if a.protocol and b.protocol and a.protocol != b.protocol:
        return False
    if a.port_min is not None and b.port_min is not None and (
            a.port_max < b.port_min or b.port_max < a.port_min):  # type: ignore[operator]
        return False
    if a.remote_ip_prefix and b.remote_ip_prefix:
        return ipaddress.ip_network(a.remote_ip_prefix).overlaps(ipaddress.ip_network(b.remote_ip_prefix))
    return True


def _sorted(rules: Iterable[SgRule]) -> list[SgRule]:
    return sorted(set(rules), key=lambda r: r.sort_key)
