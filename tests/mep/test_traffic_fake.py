"""mecpm.mep.traffic.realise/remove on the fake VIM: one group per instance, on every port, undone cleanly."""

from __future__ import annotations

from typing import Any

import pytest

from meao.nfvo.fake import EGRESS_DEFAULTS, FakeVim
from meao.nfvo.vim import PortSecurityDisabled, SgRule, VimNotFound
from mecpm.mep import traffic

IID = "inst-1"


def web_rule(state: str = "ACTIVE", **flt: Any) -> dict[str, Any]:
    return {"trafficRuleId": "web", "filterType": "FLOW", "priority": 1, "action": "PASSTHROUGH", "state": state,
            "trafficFilter": [flt or {"protocol": ["TCP"], "dstPort": ["80"], "srcAddress": ["10.1.0.0/16"]}]}


@pytest.fixture
def vim() -> FakeVim:
    return FakeVim()


@pytest.fixture
def ports(vim: FakeVim) -> list[str]:
    return [vim.create_port("net1", IID, "cp1", fixed_ips=["10.77.0.5"]),
            vim.create_port("net1", IID, "cp2", fixed_ips=["10.78.0.5"])]


def test_realise_puts_the_rules_in_one_group_on_every_port_instead_of_the_default(
        vim: FakeVim, ports: list[str]) -> None:
    assert all(vim.ports[p].security_group_ids == (vim.default_security_group_id,) for p in ports)
    report = traffic.realise(vim, IID, ports, [web_rule()])
    sg = report["securityGroupId"]
    assert vim.security_groups[sg].name == f"meao-{IID}-mp1"
    assert vim.security_group_rules(sg) == [SgRule("ingress", "IPv4", "tcp", 80, 80, "10.1.0.0/16")]
    assert all(vim.ports[p].security_group_ids == (sg,) for p in ports)
    assert set(EGRESS_DEFAULTS) <= set(vim.security_groups[sg].rules)  # outbound stays open
    assert report["applied"] == {"web": [{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                          "portRangeMin": 80, "portRangeMax": 80,
                                          "remoteIpPrefix": "10.1.0.0/16"}]}
    assert report["unrealised"] == {}


def test_realise_again_is_idempotent_and_follows_rule_changes(vim: FakeVim, ports: list[str]) -> None:
    first = traffic.realise(vim, IID, ports, [web_rule()])
    again = traffic.realise(vim, IID, ports, [web_rule()])
    assert again == first and len(vim.security_groups) == 2  # the default and ours
    inactive = traffic.realise(vim, IID, ports, [web_rule(state="INACTIVE")])
    assert vim.security_group_rules(inactive["securityGroupId"]) == [] and inactive["applied"] == {}


def test_realise_knows_the_ports_own_addresses_for_dst_address(vim: FakeVim, ports: list[str]) -> None:
    report = traffic.realise(vim, IID, ports, [web_rule(protocol=["udp"], dstAddress=["10.78.0.5"])])
    assert report["unrealised"] == {} and report["applied"]["web"][0]["protocol"] == "udp"


def test_bad_rules_change_nothing_at_the_vim(vim: FakeVim, ports: list[str]) -> None:
    with pytest.raises(ValueError, match="dstPort"):
        traffic.realise(vim, IID, ports, [web_rule(dstPort=["70000"])])
    assert len(vim.security_groups) == 1


def test_port_without_port_security_is_refused(vim: FakeVim) -> None:
    port = vim.create_port("net1", IID, "cp1", port_security=False)
    with pytest.raises(PortSecurityDisabled):
        traffic.realise(vim, IID, [port], [web_rule()])


def test_remove_gives_the_ports_their_default_group_back_and_deletes_ours(vim: FakeVim, ports: list[str]) -> None:
    sg = traffic.realise(vim, IID, ports, [web_rule()])["securityGroupId"]
    assert [i.kind for i in vim.sweep(known_instance_ids=[]).items].count("security_group") == 1
    vim.delete_port(ports[1])  # gone before the rules are removed: not an error
    traffic.remove(vim, IID, ports)
    assert sg not in vim.security_groups
    assert vim.ports[ports[0]].security_group_ids == (vim.default_security_group_id,)
    traffic.remove(vim, IID, ports)  # nothing left: a no-op
    with pytest.raises(VimNotFound):
        vim.security_group_rules(sg)
