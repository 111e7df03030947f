"""AppInstanceInfo as meao renders it (MEC 010-2 table 6.2.2.4.2-1, LocationInformation table 6.2.2.31.2-1)."""

from __future__ import annotations

import json

from meao.db.models import AppInstance, MecHost
from meao.wire.lcm import app_instance_info

BASE = "http://meao.example"
RESOURCES = {"host": "edge-1", "cloud": "pop-a", "server_id": "nova-server-1", "ports": {"cp-data": "port-1"},
             "flavor_id": "f1"}


def _instance(**values: object) -> AppInstance:
    return AppInstance(**{"id": "inst-1", "app_pkg_id": "pkg-1", "appd_id": "appd-1", "app_provider": "acme",
                          "app_name": "app", "app_soft_version": "1", "appd_version": "1",
                          "instantiation_state": "INSTANTIATED", "operational_state": "STARTED",
                          "mec_host_id": "edge-1", "resources": dict(RESOURCES), **values})


def _host(location: dict[str, object] | None) -> MecHost:
    return MecHost(id="edge-1", name="Edge 1", cloud="pop-a", queue="mecpm.edge-1", location=location)


def test_geographical_position_is_a_string_holding_a_geojson_point() -> None:
    """Table 6.2.2.31.2-1: geographicalPosition is a String following the RFC 7946 "Point" object."""
    info = app_instance_info(_instance(), _host({"countryCode": "FI", "latitude": 60.17, "longitude": 24.9}), BASE)
    location = info["instantiatedAppState"]["appInstLocation"]
    assert location["countryCode"] == "FI"
    assert isinstance(location["geographicalPosition"], str), location
    assert json.loads(location["geographicalPosition"]) == {"type": "Point", "coordinates": [24.9, 60.17]}


def test_a_host_without_a_country_gives_no_location() -> None:
    info = app_instance_info(_instance(), _host({"latitude": 60.17, "longitude": 24.9}), BASE)
    assert "appInstLocation" not in info["instantiatedAppState"]


def test_vnf_instance_id_names_the_vnf_instance_not_the_nova_server() -> None:
    """Table 6.2.2.4.2-1: vnfInstanceId identifies the VNF instance the app is instantiated as. meao is its
    own VNFM, one VNF per app instance: the VNF instance id is the app instance id."""
    info = app_instance_info(_instance(), _host(None), BASE)
    assert info["vnfInstanceId"] == "inst-1"
    assert info["vnfInstanceId"] != RESOURCES["server_id"]


def test_the_vim_resource_ids_are_in_the_vim_resources_extension() -> None:
    info = app_instance_info(_instance(), _host(None), BASE)
    assert info["vimResources"] == {
        "computeResource": {"vimId": "pop-a", "resourceId": "nova-server-1", "vimLevelResourceType": "OS::Nova::Server"},
        "extCpResources": [{"cpdId": "cp-data", "resource": {
            "vimId": "pop-a", "resourceId": "port-1", "vimLevelResourceType": "OS::Neutron::Port"}}]}


def test_a_not_instantiated_instance_has_no_vnf_instance_and_no_vim_resources() -> None:
    info = app_instance_info(_instance(instantiation_state="NOT_INSTANTIATED", operational_state=None,
                                       resources={}), None, BASE)
    assert not {"vnfInstanceId", "vimResources", "instantiatedAppState"} & info.keys()


def test_the_mec_platform_extension_names_the_host_the_meao_chose() -> None:
    """selectedMECHostInfo is only a preference on Mm1: the chosen host is in mecPlatform.mecHostId (the
    CLI's host column reads it), with what the MEP realised once the app is registered there."""
    info = app_instance_info(_instance(), _host(None), BASE)
    assert info["mecPlatform"] == {"mecHostId": "edge-1"}
    registered = dict(RESOURCES, mep={"realised": {"dnsRules": {}}})
    info = app_instance_info(_instance(resources=registered), _host(None), BASE)
    assert info["mecPlatform"] == {"mecHostId": "edge-1", "realised": {"dnsRules": {}}}
    assert "mecPlatform" not in app_instance_info(_instance(instantiation_state="NOT_INSTANTIATED",
                                                            operational_state=None, resources={}), None, BASE)
