"""TOSCA name -> MEC 010-2 JSON name, in one place (MEC 037 clause 5.2.5 vs MEC 010-2 clause 6.2.1).

A MEC 037 TOSCA AppD writes the rule, service, feature and latency structures in snake_case; the AppD
model keeps them in their MEC 010-2 JSON spelling (clause 6.2.1) so the API returns them unchanged.
:data:`WIRE_NAMES` and :func:`to_mec010_2` are the only translation.
"""

from __future__ import annotations

from typing import Any

#: TOSCA property name -> MEC 010-2 attribute name, for the MEC data types of MEC 037 clause 5.2.5.
WIRE_NAMES: dict[str, str] = {
    # ServiceDependency 6.2.1.17 / ServiceDescriptor 6.2.1.7 / FeatureDependency 6.2.1.8
    "ser_name": "serName", "ser_category": "serCategory", "version": "version",
    "ser_transport_dependencies": "serTransportDependencies", "requested_permissions": "requestedPermissions",
    "transport_supported": "transportsSupported", "transports_supported": "transportsSupported",
    "feature_name": "featureName",
    # CategoryRef (MEC 011), Permission (MEC 009 7.2)
    "href": "href", "id": "id", "name": "name", "display_name": "displayName",
    # TransportDependency 6.2.1.18 / TransportDescriptor 6.2.1.19
    "labels": "labels", "serializers": "serializers", "transport": "transport", "type": "type",
    "protocol": "protocol", "security": "security",
    # TrafficRuleDescriptor 6.2.1.9 / TrafficFilter 6.2.1.10
    "traffic_rule_id": "trafficRuleId", "filter_type": "filterType", "priority": "priority",
    "traffic_filter": "trafficFilter", "action": "action", "dst_interface": "dstInterface",
    "direction": "direction", "src_address": "srcAddress", "dst_address": "dstAddress",
    "src_port": "srcPort", "dst_port": "dstPort", "tag": "tag",
    "src_tunnel_address": "srcTunnelAddress", "tgt_tunnel_address": "tgtTunnelAddress",
    "src_tunnel_port": "srcTunnelPort", "dst_tunnel_port": "dstTunnelPort",
    "qci": "qCI", "dscp": "dSCP", "tc": "tC",
    # InterfaceDescriptor 6.2.1.11 / TunnelInfo 6.2.1.12
    "interface_type": "interfaceType", "tunnel_info": "tunnelInfo", "src_mac_address": "srcMACAddress",
    "dst_mac_address": "dstMACAddress", "dst_ip_address": "dstIPAddress", "tunnel_type": "tunnelType",
    "tunnel_dst_address": "tunnelDstAddress", "tunnel_src_address": "tunnelSrcAddress",
    # DNSRuleDescriptor 6.2.1.13 / LatencyDescriptor 6.2.1.14
    "dns_rule_id": "dnsRuleId", "domain_name": "domainName", "ip_address_type": "ipAddressType",
    "ip_address": "ipAddress", "ttl": "ttl", "max_latency": "maxLatency",
    # UserContextTransferCapability 6.2.1.20 / AppNetworkPolicy 6.2.1.21 (inside steeredNetwork)
    "stateful_application": "statefulApplication",
    "user_context_transfer_support": "userContextTransferSupport",
    "cellular_network": "cellularNetwork", "wifi_network": "wi-fiNetwork",
    "fixed_access_network": "fixedAccessNetwork",
}

# Entries of these TrafficFilter lists are strings in MEC 010-2; MEC 037 Annex A writes integers.
_STRINGIFIED_LISTS = {"src_port", "dst_port", "tag", "src_tunnel_port", "dst_tunnel_port"}


def to_mec010_2(value: Any, key: str | None = None) -> Any:
    """Translate a MEC 037 TOSCA value (snake_case) into its MEC 010-2 JSON form.

    Structural differences handled here: TransportDependency's ``transport_serializer`` is inlined
    (MEC 010-2 6.2.1.18 has transport / serializers / labels side by side), SecurityInfo becomes the
    MEC 011 ``{"oAuth2Info": {"grantTypes", "tokenEndpoint"}}`` form, AppNetworkPolicy is wrapped in
    ``steeredNetwork`` (6.2.1.21), and traffic filter ports and tags become strings.
    """
    if isinstance(value, list):
        if key in _STRINGIFIED_LISTS:
            return [str(item) for item in value]
        return [to_mec010_2(item) for item in value]
    if not isinstance(value, dict):
        return value
    if key == "security":
        oauth2: dict[str, Any] = {}
        if "oauth2_grant_type" in value:
            grant = value["oauth2_grant_type"]
            oauth2["grantTypes"] = grant if isinstance(grant, list) else [grant]
        if "oauth2_token_endpoint" in value:
            oauth2["tokenEndpoint"] = value["oauth2_token_endpoint"]
        return {"oAuth2Info": oauth2} if oauth2 else {}
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name == "transport_serializer" and isinstance(item, dict):
            out.update(to_mec010_2(item))
            continue
        out[WIRE_NAMES.get(name, _camel(name))] = to_mec010_2(item, name)
    return out


def network_policy_to_mec010_2(value: dict) -> dict:
    """A MEC 037 AppNetworkPolicy in its MEC 010-2 form, wrapped in ``steeredNetwork`` (6.2.1.21)."""
    return {"steeredNetwork": to_mec010_2(value)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
