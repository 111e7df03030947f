"""Traffic rules realised as security groups on the real test bed (deploy/testbed), read back with openstacksdk.

The session project, its network and the driver come from tests/nfvo's fixtures: the session ends with a
sweep of that project that must find nothing, security groups included.
"""
# ruff: noqa: F811 — the fixtures imported from tests/nfvo/conftest.py are parameters of the tests here

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openstack
import pytest

from meao.nfvo.openstack.driver import OpenStackVim
from meao.nfvo.vim import OWNER_TAG, PortSecurityDisabled, instance_tag, security_group_name
from mecpm.mep import traffic
from tests.nfvo.conftest import admin, instance_id, member, network, session_clouds, vim  # noqa: F401

pytestmark = pytest.mark.openstack

Conn = openstack.connection.Connection


def rules(web_state: str = "ACTIVE") -> list[dict[str, Any]]:
    return [
        {"trafficRuleId": "web", "filterType": "FLOW", "priority": 5, "action": "PASSTHROUGH", "state": web_state,
         "trafficFilter": [{"protocol": ["TCP"], "dstPort": ["80", "8000-8080"], "srcAddress": ["10.1.0.0/16"]}]},
        {"trafficRuleId": "dns", "filterType": "FLOW", "priority": 5, "action": "FORWARD_DECAPSULATED",
         "state": "ACTIVE", "trafficFilter": [{"protocol": ["17"], "dstPort": ["53"],
                                               "srcAddress": ["2001:db8::/32", "192.0.2.0-192.0.2.3"]}]},
        {"trafficRuleId": "ping", "filterType": "PACKET", "priority": 9, "action": "PASSTHROUGH", "state": "ACTIVE",
         "trafficFilter": [{"protocol": ["icmp"]}]},
        {"trafficRuleId": "no-telnet", "filterType": "FLOW", "priority": 1, "action": "DROP", "state": "ACTIVE",
         "trafficFilter": [{"protocol": ["tcp"], "dstPort": ["23"]}]},
        {"trafficRuleId": "gtp", "filterType": "PACKET", "priority": 1, "action": "FORWARD_ENCAPSULATED",
         "state": "ACTIVE", "trafficFilter": [{"srcTunnelAddress": ["192.0.2.9"]}]},
    ]


WEB = {("ingress", "IPv4", "tcp", 80, 80, "10.1.0.0/16"), ("ingress", "IPv4", "tcp", 8000, 8080, "10.1.0.0/16")}
OTHERS = {("ingress", "IPv6", "udp", 53, 53, "2001:db8::/32"), ("ingress", "IPv4", "udp", 53, 53, "192.0.2.0/30"),
          ("ingress", "IPv4", "icmp", None, None, None), ("ingress", "IPv6", "ipv6-icmp", None, None, None)}
EGRESS = {("egress", "IPv4", None, None, None, None), ("egress", "IPv6", None, None, None, None)}


def neutron_rules(member: Conn, sg_id: str) -> dict[tuple, str]:
    """The group's rules as Neutron lists them (not through meao's driver), with their ids."""
    return {(r.direction, r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix): r.id
            for r in member.network.security_group_rules(security_group_id=sg_id)}


@pytest.fixture
def app(vim: OpenStackVim, network: str, instance_id: str) -> Iterator[tuple[str, list[str]]]:
    """An app instance with two ports on the test network; its security group is removed afterwards."""
    ports = [vim.create_port(network, instance_id, "cp1"), vim.create_port(network, instance_id, "cp2")]
    yield instance_id, ports
    traffic.remove(vim, instance_id, ports)


def test_rules_land_in_neutron_as_protocols_ports_and_prefixes_on_every_port(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    report = traffic.realise(vim, iid, ports, rules())
    sg_id = report["securityGroupId"]
    group = member.network.get_security_group(sg_id)
    assert group.name == security_group_name(iid) == f"meao-{iid}-mp1"
    assert set(group.tags) == {OWNER_TAG, instance_tag(iid)}
    assert set(neutron_rules(member, sg_id)) == WEB | OTHERS | EGRESS  # egress left open
    for port_id in ports:
        assert member.network.get_port(port_id).security_group_ids == [sg_id]  # the default group replaced
    assert set(report["applied"]) == {"web", "dns", "ping", "no-telnet"} and report["applied"]["no-telnet"] == []
    assert set(report["unrealised"]) == {"gtp"} and "data plane that Neutron lacks" in report["unrealised"]["gtp"]
    assert {(r["protocol"], r["portRangeMin"]) for r in report["applied"]["web"]} == {("tcp", 80), ("tcp", 8000)}


def test_inactive_rule_vanishes_and_the_others_are_not_touched(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    sg_id = traffic.realise(vim, iid, ports, rules())["securityGroupId"]
    before = neutron_rules(member, sg_id)
    report = traffic.realise(vim, iid, ports, rules(web_state="INACTIVE"))
    after = neutron_rules(member, sg_id)
    assert report["securityGroupId"] == sg_id and "web" not in report["applied"]
    assert set(after) == OTHERS | EGRESS
    assert all(after[k] == before[k] for k in after)  # same Neutron rules, not recreated
    traffic.realise(vim, iid, ports, rules())
    assert set(neutron_rules(member, sg_id)) == WEB | OTHERS | EGRESS


def test_running_again_creates_nothing_twice(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    first = traffic.realise(vim, iid, ports, rules())
    ids = neutron_rules(member, first["securityGroupId"])
    second = traffic.realise(vim, iid, ports, rules())
    assert second == first
    assert neutron_rules(member, first["securityGroupId"]) == ids
    assert [g.id for g in member.network.security_groups(name=security_group_name(iid))] == [first["securityGroupId"]]


def test_a_group_left_untagged_by_a_kill_is_found_by_its_name(
        vim: OpenStackVim, member: Conn, instance_id: str) -> None:
    untagged = member.network.create_security_group(name=security_group_name(instance_id))
    try:
        assert vim.ensure_app_security_group(instance_id) == untagged.id
        assert instance_tag(instance_id) in member.network.get_security_group(untagged.id).tags
    finally:
        vim.delete_app_security_group(instance_id, [])
    assert member.network.find_security_group(untagged.id, ignore_missing=True) is None


def test_remove_deletes_the_group_and_the_ports_get_their_default_back(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    default = {p: member.network.get_port(p).security_group_ids for p in ports}
    sg_id = traffic.realise(vim, iid, ports, rules())["securityGroupId"]
    assert any(i.id == sg_id for i in vim.sweep(known_instance_ids=[]).of("security_group"))
    assert not any(i.id == sg_id for i in vim.sweep(known_instance_ids=[iid]).of("security_group"))
    vim.delete_port(ports[1])  # a port gone before its rules: not an error
    traffic.remove(vim, iid, ports)
    assert member.network.find_security_group(sg_id, ignore_missing=True) is None
    port = member.network.get_port(ports[0])
    assert sg_id not in port.security_group_ids and port.security_group_ids == default[ports[0]]
    traffic.remove(vim, iid, ports)  # nothing left: a no-op


def test_remove_also_detaches_ports_it_was_not_told_about(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    sg_id = traffic.realise(vim, iid, ports, rules())["securityGroupId"]
    traffic.remove(vim, iid, ports[:1])
    assert member.network.find_security_group(sg_id, ignore_missing=True) is None
    assert sg_id not in member.network.get_port(ports[1]).security_group_ids


def test_port_without_port_security_is_refused_clearly(
        vim: OpenStackVim, network: str, instance_id: str) -> None:
    port = vim.create_port(network, instance_id, "cp1", port_security=False)
    try:
        with pytest.raises(PortSecurityDisabled, match="port security off"):
            traffic.realise(vim, instance_id, [port], rules())
    finally:
        traffic.remove(vim, instance_id, [port])


def test_rules_of_another_instance_are_not_touched(
        vim: OpenStackVim, member: Conn, app: tuple[str, list[str]]) -> None:
    iid, ports = app
    other = f"other-{uuid.uuid4().hex[:8]}"
    mine = traffic.realise(vim, iid, ports, rules())["securityGroupId"]
    theirs = vim.ensure_app_security_group(other)
    try:
        assert theirs != mine
        traffic.realise(vim, iid, ports, rules(web_state="INACTIVE"))
        assert set(neutron_rules(member, theirs)) == EGRESS
        assert member.network.get_security_group(theirs).id == theirs
    finally:
        vim.delete_app_security_group(other, [])
