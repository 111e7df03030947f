"""Tests of the AppD loader (meao/catalogue/appd/) on the example packages and broken variants."""

from __future__ import annotations

import hashlib
import re
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from descriptors.examples.build import SOL001_V261_DIR, build_package, qcow2_image
from meao.catalogue.appd import REMOTE_IMPORTS, AppD, AppDError, load_appd, to_mec010_2

ENTRIES = {
    "mec-vm-app": "Definitions/mec_vm_app.yaml",
    "mec-minimal": "Definitions/mec_minimal.yaml",
    "mec-json-appd": "Definitions/appd.json",
    "vnf-sol001-plain": "Definitions/vnf_plain_top.yaml",
}
VM_APP = "Definitions/mec_vm_app.yaml"
MEC037_URL = "https://forge.etsi.org/rep/mec/gs037-pkg-format/raw/v3.2.1/MecAppDTypes.yaml"


def _extract(archive: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(dest)
    return dest


def _package(tmp_path: Path, name: str, mutate: Callable[[Path], None] | None = None) -> Path:
    archive = build_package(name, tmp_path / "dist", mutate=mutate)
    return _extract(archive, tmp_path / name)


def _load(tmp_path: Path, name: str, mutate: Callable[[Path], None] | None = None) -> AppD:
    return load_appd(_package(tmp_path, name, mutate), ENTRIES[name])


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    """A mutation replacing ``old`` (which must occur) by ``new`` in one package file."""
    def mutate(tree: Path) -> None:
        target = tree / path
        text = target.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path}"
        target.write_text(text.replace(old, new), encoding="utf-8")
    return mutate


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a URL fails the test: parsing must be offline."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# -- the example packages ---------------------------------------------------------------------------


def test_mec_vm_app_maps_to_the_expected_appd(tmp_path: Path) -> None:
    appd = _load(tmp_path, "mec-vm-app")

    assert appd.form == "MEC037-TOSCA"
    assert (appd.appd_id, appd.app_name, appd.app_provider) == (
        "6f1c3f4e-2a77-4f0e-9a51-0c2d7e5b8a10", "mec-vm-app", "meao-examples")
    assert (appd.app_soft_version, appd.appd_version, appd.mec_version) == ("1.0.0", "1.0", ["3.1.1"])
    assert appd.app_info_name == "MEC VM example application"
    [compute] = appd.computes
    assert (compute.vdu_id, compute.num_vcpu, compute.memory_mb, compute.disk_gb) == ("MecVmAppVdu", 2, 2048, 10)
    [image] = appd.sw_images
    image_bytes = qcow2_image()
    assert image.file == "Files/images/mec-vm-app.qcow2"
    assert image.vdu_id == "MecVmAppVdu"
    assert (image.container_format, image.disk_format) == ("bare", "qcow2")
    assert (image.min_disk_gb, image.min_ram_mb, image.size_bytes) == (1, 512, len(image_bytes))
    assert image.checksum.algorithm == "sha-256"
    assert image.checksum.hash == hashlib.sha256(image_bytes).hexdigest()
    assert [(cp.id, cp.vdu_id, cp.layer_protocols) for cp in appd.ext_cpds] == [
        ("MecVmAppMgmtCp", "MecVmAppVdu", ["ipv4"]), ("MecVmAppDataCp", "MecVmAppVdu", ["ipv4"])]
    assert appd.app_service_required == [{
        "serName": "RNIS", "version": "2.2.1",
        "requestedPermissions": [{"id": "rab_est_subscription", "displayName": "RAB establishment notifications"}]}]
    assert appd.app_service_optional == [{"serName": "LS", "version": "2.2.1"}]
    assert appd.app_feature_required == [{"featureName": "UserApps", "version": "1.0"}]
    assert appd.app_traffic_rules == [{
        "trafficRuleId": "video-uplink", "filterType": "FLOW", "priority": 5,
        "trafficFilter": [{"dstAddress": ["192.0.2.10/32"], "dstPort": ["8554"], "protocol": ["udp"]}],
        "action": "FORWARD_DECAPSULATED",
        "dstInterface": [{"interfaceType": "IP", "dstIPAddress": "192.0.2.10"}]}]
    assert appd.app_dns_rules == [{"dnsRuleId": "video-dns", "domainName": "video.mec.example.org",
                                   "ipAddressType": "IP_V4", "ipAddress": "192.0.2.10", "ttl": 300}]
    assert appd.app_latency == {"maxLatency": 20_000_000}  # 20 ms in nanoseconds (MEC 010-2 6.2.1.14)
    assert (appd.terminate_timeout_s, appd.stop_timeout_s) == (30, 20)
    assert appd.entry_file == VM_APP
    assert appd.source_files == [VM_APP, "Definitions/mec_vm_app_types.yaml"]


def test_mec_vm_app_resolves_the_mec037_forge_url_offline(tmp_path: Path) -> None:
    root = _package(tmp_path, "mec-vm-app")
    assert MEC037_URL in (root / "Definitions/mec_vm_app_types.yaml").read_text(encoding="utf-8")
    assert REMOTE_IMPORTS[MEC037_URL].is_file()
    appd = load_appd(root, VM_APP)  # the autouse fixture fails the test on any urlopen
    assert MEC037_URL not in appd.source_files


def test_mec_minimal_is_the_smallest_valid_appd(tmp_path: Path) -> None:
    appd = _load(tmp_path, "mec-minimal")
    assert [(c.vdu_id, c.num_vcpu, c.memory_mb, c.disk_gb) for c in appd.computes] == [("MinimalVdu", 1, 512, 0)]
    assert [(i.id, i.file, i.min_ram_mb) for i in appd.sw_images] == [
        ("MinimalVdu", "Files/images/mec-minimal.qcow2", 0)]
    assert [cp.id for cp in appd.ext_cpds] == ["MinimalCp"]
    assert appd.app_traffic_rules == appd.app_dns_rules == appd.app_service_required == []
    assert appd.app_latency is None and appd.terminate_timeout_s is None
    assert appd.source_files == ["Definitions/mec_minimal.yaml"]


def test_mec_json_appd_document_maps_to_the_same_model(tmp_path: Path) -> None:
    appd = _load(tmp_path, "mec-json-appd")
    assert appd.form == "MEC010-2"
    assert (appd.appd_id, appd.app_name, appd.app_soft_version) == (
        "3d9a7f20-64c1-4b8e-a0f5-2e7c9b1d4a66", "mec-json-app", "2.1.0")
    assert appd.mec_version == ["3.1.1", "2.2.1"]
    assert [(c.vdu_id, c.num_vcpu, c.memory_mb, c.disk_gb) for c in appd.computes] == [("JsonAppVdu", 4, 4096, 20)]
    [image] = appd.sw_images
    assert (image.id, image.file, image.disk_format, image.container_format) == (
        "JsonAppImage", "Files/images/mec-json-app.qcow2", "qcow2", "bare")
    assert (image.min_disk_gb, image.min_ram_mb, image.size_bytes) == (2, 1024, len(qcow2_image()))
    assert [(cp.id, cp.layer_protocols) for cp in appd.ext_cpds] == [("JsonAppCp", ["ipv4"])]
    assert appd.app_service_required[0]["serName"] == "LS"
    assert appd.app_traffic_rules[0]["action"] == "PASSTHROUGH"
    assert appd.app_dns_rules[0]["domainName"] == "api.mec.example.org"
    assert appd.app_latency == {"maxLatency": 50_000_000}
    assert (appd.terminate_timeout_s, appd.stop_timeout_s) == (45, 15)
    assert appd.source_files == ["Definitions/appd.json"]


def test_mec010_2_document_in_yaml_is_recognised_without_tosca_definitions_version(tmp_path: Path) -> None:
    def to_yaml(tree: Path) -> None:
        import json

        import yaml
        document = json.loads((tree / "Definitions/appd.json").read_text(encoding="utf-8"))
        (tree / "Definitions/appd.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    root = _package(tmp_path, "mec-json-appd", to_yaml)
    appd = load_appd(root, "Definitions/appd.yaml")
    assert appd.form == "MEC010-2" and appd.app_name == "mec-json-app"


@pytest.mark.skipif(not SOL001_V261_DIR.is_dir(), reason="needs ../shared/specs/sol001-v2.6.1")
def test_plain_sol001_vnf_package_parses_but_is_refused_as_not_a_mec_application(tmp_path: Path) -> None:
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "vnf-sol001-plain")
    detail = caught.value.detail
    assert detail.startswith("Definitions/vnf_plain_top.yaml: this is a plain VNF package")
    assert "no node type derived from tosca.nodes.mec.MecApp" in detail
    assert "MEC application packages only" in detail and "MEC 037 clause 5.2.4" in detail
    assert "does not validate" not in detail  # it parsed: the refusal is the reason, not a crash
    assert caught.value.status == 422


def test_annex_a_style_appd_validates_as_the_standard_writes_it(tmp_path: Path) -> None:
    """MEC 037 Annex A: integer ports, transports_supported, image on the block storage, no boot_order."""
    annex_a = _edit(
        VM_APP, "        app_dns_rule:",
        "        app_service_produced:\n"
        "          - ser_name: AMS\n"
        "            version: '1.0'\n"
        "            transports_supported:\n"
        "              - transport: {type: REST_HTTP, protocol: HTTP, version: '2.0',\n"
        "                            security: {oauth2_grant_type: [OAUTH2_CLIENT_CREDENTIALS]}}\n"
        "                serializers: [JSON]\n"
        "        app_dns_rule:")

    def storage_image(tree: Path) -> None:
        annex_a(tree)
        path = tree / VM_APP
        text = path.read_text(encoding="utf-8")
        text = text.replace("dst_port: ['8554']", "dst_port: [8554]\n                tag: [1234]")
        text = text.replace("        boot_order: false\n", "")
        text = text.replace("            virtual_local_storage:\n              - size_of_storage: 10 GiB\n", "")
        start = text.index("      artifacts:\n")
        end = text.index("    MecVmAppMgmtCp:")
        artifacts = text[start:end]
        text = text[:start] + "      requirements:\n        - virtual_storage: MecVmAppStorage\n\n" + text[end:]
        text = text.replace("    MecVmAppMgmtCp:", "    MecVmAppStorage:\n"
                            "      type: tosca.nodes.nfv.Vdu.VirtualBlockStorage\n"
                            "      properties:\n"
                            "        virtual_block_storage_data:\n"
                            "          size_of_storage: 4 GiB\n"
                            "          rdma_enabled: true\n" + artifacts + "    MecVmAppMgmtCp:", 1)
        path.write_text(text, encoding="utf-8")

    appd = _load(tmp_path, "mec-vm-app", storage_image)
    assert appd.app_service_produced[0]["transportsSupported"][0]["transport"]["security"] == {
        "oAuth2Info": {"grantTypes": ["OAUTH2_CLIENT_CREDENTIALS"]}}
    assert appd.app_traffic_rules[0]["trafficFilter"][0]["dstPort"] == ["8554"]
    assert appd.app_traffic_rules[0]["trafficFilter"][0]["tag"] == ["1234"]
    assert [(i.id, i.vdu_id) for i in appd.sw_images] == [("MecVmAppStorage", "MecVmAppVdu")]
    assert appd.computes[0].disk_gb == 4


def test_mec037_spelling_number_virtual_cpu_is_accepted(tmp_path: Path) -> None:
    appd = _load(tmp_path, "mec-vm-app", _edit(VM_APP, "num_virtual_cpu: 2", "number_virtual_cpu: 3"))
    assert appd.computes[0].num_vcpu == 3


# -- refusals -----------------------------------------------------------------------------------------


def test_appd_with_unmapped_remote_import_is_refused_naming_the_url(tmp_path: Path) -> None:
    url = "https://example.org/types/other_types.yaml"
    root = _package(tmp_path, "mec-vm-app", _edit(VM_APP, "  - mec_vm_app_types.yaml", f"  - mec_vm_app_types.yaml\n  - {url}"))
    with pytest.raises(AppDError, match=re.escape(f"{VM_APP}: import '{url}' is a remote URL")) as caught:
        load_appd(root, VM_APP)
    assert "nothing is fetched" in caught.value.detail


def test_unmapped_remote_import_in_a_nested_local_file_names_that_file(tmp_path: Path) -> None:
    url = "https://forge.etsi.org/rep/mec/gs037-pkg-format/raw/v9.9.9/MecAppDTypes.yaml"
    types = "Definitions/mec_vm_app_types.yaml"
    with pytest.raises(AppDError, match=re.escape(f"{types}: import '{url}'")):
        _load(tmp_path, "mec-vm-app", _edit(types, MEC037_URL, url))


def test_missing_local_import_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(AppDError, match=re.escape(f"{VM_APP}: import 'missing_types.yaml' not found")):
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "  - mec_vm_app_types.yaml",
                                           "  - mec_vm_app_types.yaml\n  - missing_types.yaml"))


def test_import_outside_the_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AppDError, match="points outside the package"):
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "  - mec_vm_app_types.yaml",
                                           "  - mec_vm_app_types.yaml\n  - ../../../../etc/hostname"))


def test_wrong_enum_value_is_refused_naming_file_and_node(tmp_path: Path) -> None:
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "ip_address_type: IP_V4", "ip_address_type: IP_V5"))
    detail = caught.value.detail
    assert detail.startswith(f"{VM_APP}: ")
    assert "node 'MecVmApp'" in detail and "IP_V5" in detail


def test_missing_required_property_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "        mec_version: ['3.1.1']\n", ""))
    assert caught.value.detail.startswith(f"{VM_APP}: ")
    assert "mec_version" in caught.value.detail and "MecVmApp" in caught.value.detail


def test_string_where_an_integer_is_expected_is_refused_naming_the_node(tmp_path: Path) -> None:
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "num_virtual_cpu: 2", "num_virtual_cpu: two"))
    detail = caught.value.detail
    assert detail.startswith(f"{VM_APP}: ") and "node 'MecVmAppVdu'" in detail and "two" in detail


def test_string_where_a_constrained_integer_is_expected_does_not_crash(tmp_path: Path) -> None:
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "mec-vm-app", _edit(VM_APP, "priority: 5", "priority: high"))
    assert caught.value.detail.startswith(f"{VM_APP}: ") and "MecVmApp" in caught.value.detail


def test_appd_without_vdu_is_refused(tmp_path: Path) -> None:
    def drop_vdu(tree: Path) -> None:
        path = tree / "Definitions/mec_minimal.yaml"
        text = path.read_text(encoding="utf-8")
        start, end = text.index("    MinimalVdu:"), text.index("    MinimalCp:")
        text = text[:start] + text[end:]
        text = text.replace("        - virtual_binding: MinimalVdu\n", "").replace("targets: [MinimalVdu]", "")
        path.write_text(text, encoding="utf-8")
    with pytest.raises(AppDError, match=re.escape("Definitions/mec_minimal.yaml: no tosca.nodes.nfv.Vdu.Compute")):
        _load(tmp_path, "mec-minimal", drop_vdu)


def test_appd_without_connection_point_is_refused(tmp_path: Path) -> None:
    def drop_cp(tree: Path) -> None:
        path = tree / "Definitions/mec_minimal.yaml"
        text = path.read_text(encoding="utf-8")
        start, end = text.index("    MinimalCp:"), text.index("  policies:")
        text = (text[:start] + text[end:]).replace("    requirements:\n      virtual_link: [MinimalCp, virtual_link]\n", "")
        path.write_text(text, encoding="utf-8")
    with pytest.raises(AppDError, match="no tosca.nodes.nfv.VduCp node template"):
        _load(tmp_path, "mec-minimal", drop_cp)


def test_missing_artifact_file_is_refused_naming_node_and_file(tmp_path: Path) -> None:
    def remove_image(tree: Path) -> None:
        (tree / "Files/images/mec-minimal.qcow2").unlink()
    with pytest.raises(AppDError) as caught:
        _load(tmp_path, "mec-minimal", remove_image)
    assert caught.value.detail == ("Definitions/mec_minimal.yaml: node 'MinimalVdu': artifact 'sw_image' file "
                                   "'../Files/images/mec-minimal.qcow2' not found in the package")


def test_vdu_without_software_image_is_refused(tmp_path: Path) -> None:
    def drop_artifact(tree: Path) -> None:
        path = tree / "Definitions/mec_minimal.yaml"
        text = path.read_text(encoding="utf-8")
        start, end = text.index("      artifacts:"), text.index("    MinimalCp:")
        path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(AppDError, match="node 'MinimalVdu': no software image"):
        _load(tmp_path, "mec-minimal", drop_artifact)


def test_invalid_software_image_properties_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AppDError, match="node 'MinimalVdu': artifact 'sw_image': invalid software image"):
        _load(tmp_path, "mec-minimal", _edit("Definitions/mec_minimal.yaml", "disk_format: qcow2",
                                             "disk_format: qcow3"))


def test_missing_instantiation_level_policies_are_refused(tmp_path: Path) -> None:
    def drop_policies(tree: Path) -> None:
        path = tree / "Definitions/mec_minimal.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text[:text.index("  policies:")], encoding="utf-8")
    with pytest.raises(AppDError, match="no tosca.policies.nfv.InstantiationLevels policy"):
        _load(tmp_path, "mec-minimal", drop_policies)


def test_alias_bomb_in_the_entry_file_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = "x0: &x0 [a, a, a, a, a, a, a, a]\n" + "".join(
        f"x{n}: &x{n} [" + ", ".join([f"*x{n - 1}"] * 8) + "]\n" for n in range(1, 10))
    with pytest.raises(AppDError, match=re.escape("Definitions/mec_minimal.yaml: YAML document expands")):
        _load(tmp_path, "mec-minimal", _edit("Definitions/mec_minimal.yaml", "node_types:", bomb + "node_types:"))


def test_non_utf8_imported_file_is_refused_naming_it(tmp_path: Path) -> None:
    def latin1(tree: Path) -> None:
        path = tree / "Definitions/mec_vm_app_types.yaml"
        path.write_bytes(path.read_bytes().replace(b"A single-VM", "Un caf\xe9".encode("latin-1")))
    with pytest.raises(AppDError, match=re.escape("Definitions/mec_vm_app_types.yaml: not valid UTF-8")):
        _load(tmp_path, "mec-vm-app", latin1)


def test_json_appd_without_required_attribute_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AppDError, match=re.escape("Definitions/appd.json: attribute 'appDId' is required")):
        _load(tmp_path, "mec-json-appd", _edit("Definitions/appd.json", '"appDId"', '"appDIdentifier"'))


def test_json_appd_with_missing_image_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AppDError, match="swImage file 'Files/images/other.qcow2' not found"):
        _load(tmp_path, "mec-json-appd", _edit("Definitions/appd.json", "Files/images/mec-json-app.qcow2",
                                               "Files/images/other.qcow2"))


# -- mapping and builder --------------------------------------------------------------------------------


def test_tosca_transport_dependency_and_security_map_to_mec010_2_structures() -> None:
    value = [{"transport_serializer": {
        "transport": {"type": "REST_HTTP", "protocol": "HTTP", "version": "2.0",
                      "security": {"oauth2_grant_type": ["OAUTH2_CLIENT_CREDENTIALS"],
                                   "oauth2_token_endpoint": "/token"}},
        "serializers": ["JSON"]}, "labels": ["A"]}]
    assert to_mec010_2(value) == [{
        "transport": {"type": "REST_HTTP", "protocol": "HTTP", "version": "2.0",
                      "security": {"oAuth2Info": {"grantTypes": ["OAUTH2_CLIENT_CREDENTIALS"],
                                                  "tokenEndpoint": "/token"}}},
        "serializers": ["JSON"], "labels": ["A"]}]


def test_build_is_reproducible_and_manifest_lists_every_other_file(tmp_path: Path) -> None:
    first = build_package("mec-vm-app", tmp_path / "a")
    second = build_package("mec-vm-app", tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    root = _extract(first, tmp_path / "x")
    manifest = (root / "mec-vm-app.mf").read_text(encoding="utf-8")
    assert manifest.startswith("metadata:\nvnfd_id: 6f1c3f4e-2a77-4f0e-9a51-0c2d7e5b8a10\n")
    assert "mec_versions: 3.2.1" in manifest and "vnf_release_date_time: 2024-05-02T09:30:00+00:00" in manifest
    digests = dict(re.findall(r"Source: (\S+)\nAlgorithm: SHA-256\nHash: ([0-9a-f]{64})", manifest))
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"mec-vm-app.mf"}
    assert set(digests) == files
    for name, digest in digests.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest
    meta = (root / "TOSCA-Metadata/TOSCA.meta").read_text(encoding="utf-8")
    assert "ETSI-Entry-Manifest: mec-vm-app.mf" in meta and f"Entry-Definitions: {VM_APP}" in meta


def test_tamper_hook_changes_files_after_the_digests_were_written(tmp_path: Path) -> None:
    def tamper(tree: Path) -> None:
        (tree / "ChangeLog.txt").write_text("tampered\n", encoding="utf-8")
    root = _extract(build_package("mec-minimal", tmp_path / "d", tamper=tamper), tmp_path / "x")
    manifest = (root / "mec-minimal.mf").read_text(encoding="utf-8")
    digest = re.search(r"Source: ChangeLog.txt\nAlgorithm: SHA-256\nHash: (\w+)", manifest).group(1)
    assert digest != hashlib.sha256(b"tampered\n").hexdigest()


def test_generated_disk_image_is_a_qcow2_v3_header_with_consistent_tables() -> None:
    image = qcow2_image(virtual_size=1024 ** 3)
    assert image[:4] == b"QFI\xfb" and int.from_bytes(image[4:8], "big") == 3
    assert int.from_bytes(image[24:32], "big") == 1024 ** 3
    assert len(image) == 4 * 65536
    refcount_block = int.from_bytes(image[65536:65544], "big")
    assert refcount_block == 2 * 65536
    assert image[refcount_block:refcount_block + 8] == bytes.fromhex("0001000100010001")
