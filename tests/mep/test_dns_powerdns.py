"""The MEP's DNS rules in a real PowerDNS, checked with a real DNS client (dnspython over UDP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from mecpm.mep.dns import (
    DEFAULT_TTL_S,
    NEGATIVE_TTL_S,
    DnsError,
    DnsUnavailable,
    InvalidDnsRule,
    PowerDns,
    normalise_name,
    records_for,
)
from tests.conftest import free_port


def query(addr: tuple[str, int], name: str, rdtype: str) -> dns.message.Message:
    response = dns.query.udp(dns.message.make_query(name, rdtype), addr[0], port=addr[1], timeout=3)
    assert response.flags & dns.flags.AA or response.rcode() != dns.rcode.NOERROR, response
    return response


def answer(response: dns.message.Message) -> tuple[set[str], int]:
    """The addresses and the TTL of a response's single answer RRset."""
    assert dns.rcode.to_text(response.rcode()) == "NOERROR", response
    (rrset,) = response.answer
    return {rdata.to_text() for rdata in rrset}, rrset.ttl


def rule(name: str, address: str, *, ttl: int | None = 30, state: str = "ACTIVE",
         address_type: str = "IP_V4") -> dict[str, Any]:
    body = {"dnsRuleId": f"rule-{uuid.uuid4().hex[:8]}", "domainName": name, "ipAddressType": address_type,
            "ipAddress": address, "state": state}
    if ttl is not None:
        body["ttl"] = ttl
    return body


@pytest.fixture
def name(powerdns: PowerDns) -> Iterator[str]:
    """A name no other test uses; its zone is removed afterwards."""
    fqdn = f"app-{uuid.uuid4().hex[:12]}.mep-test.example.net"
    yield fqdn
    powerdns.publish(fqdn, [])


def publish_rules(powerdns: PowerDns, rules: list[dict[str, Any]]) -> None:
    for fqdn, records in records_for(rules).items():
        powerdns.publish(fqdn, records)


# ------------------------------------------------------------------------------- answers on the wire
def test_active_rule_answers_a_with_its_ttl(powerdns, dns_address, name):
    publish_rules(powerdns, [rule(name, "10.20.0.5", ttl=42)])

    response = query(dns_address, name, "A")

    assert answer(response) == ({"10.20.0.5"}, 42)
    assert powerdns.published(name) == [("A", "10.20.0.5", 42)]


def test_two_rules_for_one_fqdn_answer_both_addresses_with_the_smaller_ttl(powerdns, dns_address, name):
    # the same FQDN spelt two ways: one RRset, not two rules overwriting each other
    publish_rules(powerdns, [rule(name, "10.20.0.5", ttl=60), rule(name.upper() + ".", "10.20.0.6", ttl=20)])

    assert answer(query(dns_address, name, "A")) == ({"10.20.0.5", "10.20.0.6"}, 20)


def test_ipv6_rule_answers_aaaa_and_no_a(powerdns, dns_address, name):
    publish_rules(powerdns, [rule(name, "2001:DB8:0:0::17", address_type="IP_V6", ttl=15)])

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [dns_address[0]], dns_address[1]
    got = resolver.resolve(name, "AAAA")
    assert {r.to_text() for r in got} == {"2001:db8::17"} and got.rrset.ttl == 15
    no_a = query(dns_address, name, "A")  # NODATA, negative-cached for the SOA minimum only
    assert dns.rcode.to_text(no_a.rcode()) == "NOERROR" and not no_a.answer
    assert no_a.authority[0].rdtype == dns.rdatatype.SOA and no_a.authority[0].ttl == NEGATIVE_TTL_S


def test_a_and_aaaa_then_a_only_drops_the_aaaa(powerdns, dns_address, name):
    publish_rules(powerdns, [rule(name, "10.20.0.7"), rule(name, "2001:db8::7", address_type="IP_V6")])
    assert answer(query(dns_address, name, "AAAA"))[0] == {"2001:db8::7"}

    publish_rules(powerdns, [rule(name, "10.20.0.7")])

    assert not query(dns_address, name, "AAAA").answer
    assert answer(query(dns_address, name, "A"))[0] == {"10.20.0.7"}
    assert powerdns.published(name) == [("A", "10.20.0.7", 30)]


def test_inactive_rule_is_not_answered_and_the_last_one_makes_the_name_nxdomain(powerdns, dns_address, name):
    active, inactive = rule(name, "10.20.0.8"), rule(name, "10.20.0.9", state="INACTIVE")
    publish_rules(powerdns, [active, inactive])
    assert answer(query(dns_address, name, "A"))[0] == {"10.20.0.8"}

    publish_rules(powerdns, [dict(active, state="INACTIVE"), inactive])

    response = query(dns_address, name, "A")
    assert dns.rcode.to_text(response.rcode()) == "NXDOMAIN"
    assert response.authority[0].ttl <= NEGATIVE_TTL_S  # resolvers forget the NXDOMAIN within seconds
    assert powerdns.published(name) is None


def test_deleted_name_is_nxdomain_and_its_zone_is_gone(powerdns, dns_address, name):
    publish_rules(powerdns, [rule(name, "10.20.0.10")])
    assert powerdns.published(name) == [("A", "10.20.0.10", 30)]

    powerdns.publish(name, [])

    assert dns.rcode.to_text(query(dns_address, name, "A").rcode()) == "NXDOMAIN"
    assert powerdns.published(name) is None
    powerdns.publish(name, [])  # deleting what is gone is no error


def test_a_name_published_again_after_nxdomain_answers_at_once(powerdns, dns_address, name):
    """The NXDOMAIN answered while the name had no zone is cached; publishing flushes it (a DNS rule set
    INACTIVE and ACTIVE again over Mp1)."""
    publish_rules(powerdns, [rule(name, "10.20.0.11")])
    powerdns.publish(name, [])
    assert dns.rcode.to_text(query(dns_address, name, "A").rcode()) == "NXDOMAIN"

    publish_rules(powerdns, [rule(name, "10.20.0.11")])

    assert answer(query(dns_address, name, "A")) == ({"10.20.0.11"}, 30)


def test_nested_names_answer_each_their_own_and_survive_each_other(powerdns, dns_address, name):
    child = "eu." + name
    publish_rules(powerdns, [rule(name, "10.20.0.20"), rule(child, "10.20.0.21")])
    assert answer(query(dns_address, child, "A"))[0] == {"10.20.0.21"}

    powerdns.publish(child, [])

    assert dns.rcode.to_text(query(dns_address, child, "A").rcode()) == "NXDOMAIN"
    assert answer(query(dns_address, name, "A"))[0] == {"10.20.0.20"}


def test_republishing_the_same_records_is_idempotent(powerdns, dns_address, name):
    records = [("A", "10.20.0.11", 30), ("A", "10.20.0.11", 30)]  # a duplicate is one record
    powerdns.publish(name, records)
    powerdns.publish(name, records)

    assert answer(query(dns_address, name, "A")) == ({"10.20.0.11"}, 30)


# ------------------------------------------------------------------------------ invalid input
BAD_RECORDS = [
    pytest.param(("A", "2001:db8::1", 30), id="ipv6-in-A"),
    pytest.param(("AAAA", "10.0.0.1", 30), id="ipv4-in-AAAA"),
    pytest.param(("A", "10.0.0.256", 30), id="not-an-address"),
    pytest.param(("A", "010.0.0.1", 30), id="leading-zero"),
    pytest.param(("AAAA", "fe80::1%eth0", 30), id="zone-index"),
    pytest.param(("A", "10.0.0.1", -1), id="negative-ttl"),
    pytest.param(("A", "10.0.0.1", 2**31), id="ttl-too-big"),
    pytest.param(("A", "10.0.0.1", "30"), id="ttl-string"),
    pytest.param(("CNAME", "10.0.0.1", 30), id="other-type"),
    pytest.param(("A", "10.0.0.1"), id="not-a-triple"),
]
BAD_NAMES = ["", "localhost", "-app.example.net", "app..example.net", "*.example.net", "app example.net",
             "a" * 64 + ".example.net", ("a" * 60 + ".") * 5 + "net", "app.example.net..", 42]


@pytest.fixture
def unreachable() -> Iterator[PowerDns]:
    """A driver whose API nothing answers: any call it made would raise DnsUnavailable."""
    with PowerDns(f"http://127.0.0.1:{free_port()}", "key", timeout_s=1) as dns:
        yield dns


@pytest.mark.parametrize("bad", BAD_RECORDS)
def test_bad_record_is_refused_before_any_api_call(unreachable, bad):
    with pytest.raises(InvalidDnsRule):
        unreachable.publish("app.example.net", [("A", "10.0.0.1", 30), bad])


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_name_is_refused_before_any_api_call(unreachable, bad):
    with pytest.raises(InvalidDnsRule):
        unreachable.publish(bad, [("A", "10.0.0.1", 30)])


def test_bad_record_writes_nothing_new_and_keeps_what_was_there(powerdns, dns_address, name):
    with pytest.raises(InvalidDnsRule, match="IPv6, but the record type is A"):
        powerdns.publish(name, [("A", "10.20.0.12", 30), ("A", "2001:db8::12", 30)])
    assert powerdns.published(name) is None

    powerdns.publish(name, [("A", "10.20.0.12", 30)])
    with pytest.raises(InvalidDnsRule):
        powerdns.publish(name, [("A", "10.20.0.13", 30), ("AAAA", "10.20.0.13", 30)])

    assert answer(query(dns_address, name, "A"))[0] == {"10.20.0.12"}


def test_bad_rule_names_the_rule():
    bad = rule("app.example.net", "10.0.0.1", address_type="IP_V6")
    with pytest.raises(InvalidDnsRule, match=bad["dnsRuleId"]):
        records_for([bad])
    with pytest.raises(InvalidDnsRule, match="state 'ON'"):
        records_for([rule("app.example.net", "10.0.0.1", state="ON")])
    with pytest.raises(InvalidDnsRule, match="ipAddressType"):
        records_for([rule("app.example.net", "10.0.0.1", address_type="V4")])


def test_records_for_groups_by_normalised_name_and_defaults_the_ttl():
    rules = [rule("App.Example.NET.", "10.0.0.1", ttl=None), rule("app.example.net", "2001:db8::1", ttl=7,
                                                                  address_type="IP_V6"),
             rule("other.example.net", "10.0.0.2", state="INACTIVE")]

    assert records_for(rules) == {"app.example.net": [("A", "10.0.0.1", DEFAULT_TTL_S),
                                                      ("AAAA", "2001:db8::1", 7)],
                                  "other.example.net": []}
    assert normalise_name("App.Example.NET.") == "app.example.net"


# ------------------------------------------------------------------------------ server problems
def test_wrong_api_key_is_a_dns_error_naming_the_key(powerdns, name):
    with PowerDns(powerdns.api_url, "not-the-key") as wrong:
        with pytest.raises(DnsError, match="API key was refused") as ping:
            wrong.ping()
        with pytest.raises(DnsError, match="API key was refused") as publish:
            wrong.publish(name, [("A", "10.20.0.14", 30)])

    assert powerdns.api_url in ping.value.detail and name in publish.value.detail
    assert powerdns.published(name) is None


def test_unreachable_api_is_dns_unavailable_with_a_hint(unreachable):
    with pytest.raises(DnsUnavailable, match="Is PowerDNS running") as exc:
        unreachable.ping()
    assert exc.value.status == 503 and unreachable.api_url in exc.value.detail


def test_unknown_server_id_is_named(powerdns, pdns_api_key, name):
    with (PowerDns(powerdns.api_url, pdns_api_key, server_id="nosuch") as other,
          pytest.raises(DnsError, match="no server 'nosuch'")):
        other.publish(name, [("A", "10.20.0.15", 30)])
