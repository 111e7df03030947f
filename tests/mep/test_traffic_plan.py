"""mecpm.mep.traffic.plan: MEC traffic rules (MEC 011 TrafficRule, MEC 010-2 6.2.1.9) as security-group rules."""

from __future__ import annotations

from typing import Any

import pytest

from meao.nfvo.vim import PORT_PROTOCOLS, SgRule
from mecpm.mep.traffic import plan


def rule(rule_id: str = "r1", action: str = "PASSTHROUGH", priority: int = 1, state: str | None = "ACTIVE",
         filter_type: str = "FLOW", **flt: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"trafficRuleId": rule_id, "filterType": filter_type, "priority": priority,
                         "action": action, "trafficFilter": [flt]}
    if state is not None:
        r["state"] = state
    return r


def ingress(ethertype: str, protocol: str | None = None, low: int | None = None, high: int | None = None,
            prefix: str | None = None) -> SgRule:
    return SgRule("ingress", ethertype, protocol, low, high if high is not None else low, prefix)


# ------------------------------------------------------------------------------------------- allow actions
@pytest.mark.parametrize("action", ["PASSTHROUGH", "FORWARD_DECAPSULATED"])
def test_allow_actions_let_the_cross_product_of_protocol_port_and_source_in(action: str) -> None:
    p = plan([rule(action=action, protocol=["TCP", "udp"], dstPort=["80", "8000-8080"],
                   srcAddress=["10.1.0.0/16", "192.0.2.7"])])
    expected = {ingress("IPv4", proto, low, high, prefix)
                for proto in ("tcp", "udp") for low, high in ((80, 80), (8000, 8080))
                for prefix in ("10.1.0.0/16", "192.0.2.7/32")}
    assert set(p.sg_rules) == expected and len(p.sg_rules) == 8
    assert p.applied == {"r1": p.sg_rules} and p.unrealised == {}


def test_empty_filter_lets_any_traffic_of_both_families_in() -> None:
    p = plan([rule()])
    assert p.sg_rules == [ingress("IPv4"), ingress("IPv6")]


def test_protocol_names_are_case_insensitive_and_iana_numbers_map_to_neutron_names() -> None:
    p = plan([rule(protocol=["Tcp", "17", 132, "47", "253"], srcAddress=["10.0.0.0/8"])])
    assert [r.protocol for r in p.sg_rules] == ["253", "gre", "sctp", "tcp", "udp"]


def test_icmp_is_icmpv6_for_ipv6_sources_and_icmpv6_never_ipv4() -> None:
    p = plan([rule(protocol=["ICMP"])])
    assert p.sg_rules == [ingress("IPv4", "icmp"), ingress("IPv6", "ipv6-icmp")]
    p = plan([rule(protocol=["icmpv6"])])
    assert p.sg_rules == [ingress("IPv6", "ipv6-icmp")]


def test_ipv6_prefixes_and_ranges_become_ipv6_rules() -> None:
    p = plan([rule(protocol=["tcp"], dstPort=["443"], srcAddress=["2001:db8:1::/48", "2001:db8::1-2001:db8::2"])])
    assert set(p.sg_rules) == {ingress("IPv6", "tcp", 443, None, "2001:db8:1::/48"),
                               ingress("IPv6", "tcp", 443, None, "2001:db8::1/128"),
                               ingress("IPv6", "tcp", 443, None, "2001:db8::2/128")}


def test_address_forms_mask_host_bits_ranges_and_the_whole_space() -> None:
    p = plan([rule(protocol=["udp"], srcAddress=["10.0.0.5/255.255.255.0", "10.9.0.1/16",
                                                  "192.0.2.0-192.0.2.7", "0.0.0.0/0"])])
    assert {r.remote_ip_prefix for r in p.sg_rules} == {"10.0.0.0/24", "10.9.0.0/16", "192.0.2.0/29", None}
    assert {r.ethertype for r in p.sg_rules} == {"IPv4"}


def test_port_ranges_and_integer_ports_as_mec037_annex_a_writes_them() -> None:
    p = plan([rule(protocol=["tcp"], dstPort=[5000, "6000 - 6010", "1-65535"], srcAddress=["10.0.0.0/8"])])
    assert [(r.port_min, r.port_max) for r in p.sg_rules] == [(1, 65535), (5000, 5000), (6000, 6010)]


def test_a_port_without_protocol_means_every_protocol_that_has_ports() -> None:
    p = plan([rule(dstPort=["53"], srcAddress=["10.0.0.0/8"])])
    assert {r.protocol for r in p.sg_rules} == set(PORT_PROTOCOLS)


def test_combinations_no_packet_matches_are_left_out() -> None:
    p = plan([rule(protocol=["tcp", "icmp"], dstPort=["80"], srcAddress=["10.0.0.0/8"])])
    assert p.sg_rules == [ingress("IPv4", "tcp", 80, None, "10.0.0.0/8")]


def test_same_traffic_from_two_rules_is_one_security_group_rule() -> None:
    p = plan([rule("a", protocol=["tcp"], dstPort=["80"]), rule("b", protocol=["6"], dstPort=["80-80"])])
    assert p.sg_rules == [ingress("IPv4", "tcp", 80), ingress("IPv6", "tcp", 80)]
    assert p.applied["a"] == p.applied["b"] == p.sg_rules


def test_two_filters_of_a_rule_are_alternatives() -> None:
    r = rule(protocol=["tcp"], dstPort=["80"], srcAddress=["10.0.0.0/8"])
    r["trafficFilter"].append({"protocol": ["udp"], "dstPort": ["53"], "srcAddress": ["10.0.0.0/8"]})
    assert plan([r]).sg_rules == [ingress("IPv4", "tcp", 80, None, "10.0.0.0/8"),
                                  ingress("IPv4", "udp", 53, None, "10.0.0.0/8")]


def test_dst_address_of_the_apps_own_port_narrows_to_its_family() -> None:
    p = plan([rule(protocol=["tcp"], dstPort=["80"], dstAddress=["10.77.0.5"])], own_addresses=["10.77.0.5"])
    assert p.sg_rules == [ingress("IPv4", "tcp", 80)] and p.unrealised == {}


# --------------------------------------------------------------------------------------------------- DROP
def test_drop_contributes_no_rule_it_is_realised_by_absence() -> None:
    p = plan([rule("allow", protocol=["tcp"], dstPort=["80"]),
              rule("drop", action="DROP", priority=5, protocol=["udp"])])
    assert p.applied["drop"] == [] and "drop" not in p.unrealised
    assert {r.protocol for r in p.sg_rules} == {"tcp"}


def test_drop_that_should_beat_an_overlapping_allow_is_reported_unrealised() -> None:
    p = plan([rule("allow", priority=10, protocol=["tcp"], dstPort=["80-90"], srcAddress=["10.0.0.0/8"]),
              rule("drop", action="DROP", priority=2, protocol=["tcp"], dstPort=["85"],
                   srcAddress=["10.1.2.3"])])
    assert "allow" in p.unrealised["drop"] and "priority 10" in p.unrealised["drop"]
    assert p.applied["allow"] == [ingress("IPv4", "tcp", 80, 90, "10.0.0.0/8")]  # the allow stays


def test_drop_below_an_overlapping_allow_or_beside_it_is_realised() -> None:
    p = plan([rule("allow", priority=1, protocol=["tcp"], dstPort=["80"]),
              rule("lower", action="DROP", priority=9, protocol=["tcp"], dstPort=["80"]),
              rule("beside", action="DROP", priority=0, protocol=["tcp"], dstPort=["81"])])
    assert p.unrealised == {} and p.applied["lower"] == p.applied["beside"] == []


# ---------------------------------------------------------------------------------------- not realisable
@pytest.mark.parametrize("action", ["FORWARD_ENCAPSULATED", "DUPLICATE_DECAPSULATED", "DUPLICATE_ENCAPSULATED"])
def test_data_plane_actions_are_unrealised_and_allow_nothing(action: str) -> None:
    p = plan([rule(action=action, protocol=["tcp"])])
    assert p.sg_rules == [] and p.applied == {}
    assert action in p.unrealised["r1"] and "data plane that Neutron lacks" in p.unrealised["r1"]


@pytest.mark.parametrize("field,value", [
    ("token", ["t1"]), ("tag", ["x"]), ("srcTunnelAddress", ["192.0.2.1"]), ("tgtTunnelAddress", ["192.0.2.2"]),
    ("srcTunnelPort", ["2152"]), ("dstTunnelPort", ["2152"]), ("qCI", 9), ("dSCP", 46), ("tC", 0),
    ("srcPort", ["1234"]), ("uri", ["/a"]), ("packetLabel", ["l"])])
def test_filter_fields_neutron_cannot_match_leave_the_filter_unrealised(field: str, value: Any) -> None:
    p = plan([rule(protocol=["tcp"], **{field: value})])
    assert p.sg_rules == [] and "r1" not in p.applied
    assert field in p.unrealised["r1"] and "data plane that Neutron lacks" in p.unrealised["r1"]


def test_packet_filter_on_a_tunnel_says_so() -> None:
    p = plan([rule(filter_type="PACKET", srcTunnelAddress=["192.0.2.1"], dstTunnelPort=["2152"])])
    assert "filterType PACKET" in p.unrealised["r1"] and "srcTunnelAddress" in p.unrealised["r1"]


def test_packet_filter_without_tunnel_fields_is_realised() -> None:
    assert plan([rule(filter_type="PACKET", protocol=["udp"])]).sg_rules == [ingress("IPv4", "udp"),
                                                                             ingress("IPv6", "udp")]


def test_dst_address_other_than_the_apps_port_is_unrealised() -> None:
    p = plan([rule(protocol=["tcp"], dstAddress=["10.77.0.5", "198.51.100.0/24"])], own_addresses=["10.77.0.5"])
    assert "198.51.100.0/24" in p.unrealised["r1"] and "dstAddress" in p.unrealised["r1"]
    assert "10.77.0.5/32" not in p.unrealised["r1"] and p.sg_rules == []


def test_realisable_filters_of_a_rule_apply_when_another_filter_cannot() -> None:
    r = rule(protocol=["tcp"], dstPort=["80"], srcAddress=["10.0.0.0/8"])
    r["trafficFilter"].append({"token": ["abc"]})
    p = plan([r])
    assert p.applied["r1"] == [ingress("IPv4", "tcp", 80, None, "10.0.0.0/8")]
    assert p.unrealised["r1"].startswith("trafficFilter[1]") and "token" in p.unrealised["r1"]


# ---------------------------------------------------------------------------------------------- state
def test_inactive_rules_contribute_nothing() -> None:
    p = plan([rule("on", protocol=["tcp"], dstPort=["80"]),
              rule("off", state="INACTIVE", protocol=["udp"], dstPort=["53"]),
              rule("off-encap", state="INACTIVE", action="FORWARD_ENCAPSULATED")])
    assert {r.protocol for r in p.sg_rules} == {"tcp"}
    assert set(p.applied) == {"on"} and p.unrealised == {}


def test_a_descriptor_rule_without_state_counts_as_active() -> None:
    assert plan([rule(state=None, protocol=["tcp"])]).applied["r1"]


# ----------------------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("change,names", [
    ({"trafficFilter": [{"dstPort": ["70000"]}]}, "trafficFilter[0].dstPort '70000'"),
    ({"trafficFilter": [{"dstPort": ["0"]}]}, "dstPort"),
    ({"trafficFilter": [{"dstPort": ["90-80"]}]}, "dstPort '90-80'"),
    ({"trafficFilter": [{"dstPort": ["http"]}]}, "dstPort 'http'"),
    ({"trafficFilter": [{"srcPort": ["99999"]}]}, "srcPort"),
    ({"trafficFilter": [{"protocol": ["abc"]}]}, "trafficFilter[0].protocol 'abc'"),
    ({"trafficFilter": [{"protocol": ["300"]}]}, "protocol '300'"),
    ({"trafficFilter": [{"srcAddress": ["10.0.0.300/24"]}]}, "srcAddress '10.0.0.300/24'"),
    ({"trafficFilter": [{"srcAddress": ["10.0.0.0/33"]}]}, "srcAddress"),
    ({"trafficFilter": [{"srcAddress": ["10.0.0.9-10.0.0.1"]}]}, "srcAddress"),
    ({"trafficFilter": [{"dstAddress": ["nope"]}]}, "dstAddress 'nope'"),
    ({"trafficFilter": [{"srcAddress": "10.0.0.0/8"}]}, "srcAddress must be a list"),
    ({"trafficFilter": [{"dstport": ["80"]}]}, "unknown field(s) dstport"),
    ({"trafficFilter": [{"dSCP": 64}]}, "dSCP"),
    ({"trafficFilter": [{"direction": "up"}]}, "direction"),
    ({"trafficFilter": [{"protocol": ["icmp"], "dstPort": ["80"]}]}, "matches no packet"),
    ({"trafficFilter": []}, "trafficFilter"),
    ({"priority": 256}, "priority"),
    ({"priority": "1"}, "priority"),
    ({"action": "DUPLICATED_DECAPSULATED"}, "action 'DUPLICATED_DECAPSULATED'"),
    ({"state": "ON"}, "state"),
    ({"filterType": "STREAM"}, "filterType"),
])
def test_bad_values_raise_value_error_naming_rule_and_field(change: dict[str, Any], names: str) -> None:
    bad = dict(rule("web"), **change)
    with pytest.raises(ValueError, match="traffic rule 'web'") as exc:
        plan([bad])
    assert names in str(exc.value)


def test_bad_values_of_inactive_rules_are_rejected_too() -> None:
    with pytest.raises(ValueError, match="dstPort"):
        plan([rule(state="INACTIVE", dstPort=["70000"])])


def test_duplicate_and_missing_rule_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="given twice"):
        plan([rule("a"), rule("a")])
    with pytest.raises(ValueError, match="trafficRuleId"):
        plan([{"filterType": "FLOW", "priority": 1, "action": "DROP", "trafficFilter": [{}]}])
