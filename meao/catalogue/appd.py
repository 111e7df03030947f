"""Application descriptors (AppD) of MEC application packages: one model, two source forms.

An AppD reaches meao either as a TOSCA service template (ETSI GS MEC 037 V3.2.1 clause 5, parsed
offline with tosca-parser against meao's own type files in ``descriptors/types``) or as a MEC 010-2
AppD document (ETSI GS MEC 010-2 V3.1.1 clause 6.2.1, JSON or YAML). Both map to :class:`AppD`.

Domain fields use Python names. The rule, service, feature and latency structures are kept in their
MEC 010-2 JSON spelling (clause 6.2.1) so the API can return them unchanged; the TOSCA snake_case names
are translated in one place, :data:`WIRE_NAMES` and :func:`to_mec010_2`.

Nothing is fetched from the network: an import by URL must be one of :data:`REMOTE_IMPORTS`, else the
AppD is refused before tosca-parser runs. Every YAML file of the AppD goes through
:func:`meao.catalogue.yaml_guard.check_yaml_file` before anything loads it.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from meao.catalogue.yaml_guard import DEFAULT_MAX_BYTES, check_yaml_file
from meao.problems import OnboardingError

# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------

FORM_TOSCA = "MEC037-TOSCA"
FORM_MEC010_2 = "MEC010-2"


@dataclass(frozen=True)
class Checksum:
    """Checksum of a software image (SOL001 ChecksumData; IFA 011 ChecksumData)."""

    algorithm: str
    hash: str


@dataclass
class SwImage:
    """A software image (MEC 010-2 6.2.1.4 swImageDescriptor; TOSCA tosca.artifacts.nfv.SwImage).

    Sizes use OpenStack units: ``min_disk_gb`` in GiB and ``min_ram_mb`` in MiB, rounded up.
    """

    id: str
    vdu_id: str
    name: str
    version: str
    provider: str | None
    checksum: Checksum
    container_format: str
    disk_format: str
    min_disk_gb: int
    min_ram_mb: int
    size_bytes: int
    file: str | None  # path relative to the package root, or None for an external image


@dataclass
class VirtualCompute:
    """Compute of one VDU (MEC 010-2 6.2.1.3 virtualComputeDescriptor; TOSCA Vdu.Compute).

    ``memory_mb`` is MiB and ``disk_gb`` GiB (rounded up): the root disk from virtual_local_storage or
    from the block storage the VDU attaches, 0 if none.
    """

    vdu_id: str
    name: str
    num_vcpu: int
    memory_mb: int
    disk_gb: int


@dataclass
class ExtCpd:
    """External connection point (MEC 010-2 6.2.1.6 appExtCpd; TOSCA VduCp, MEC 037 5.2.4.6)."""

    id: str
    vdu_id: str
    layer_protocols: list[str]
    description: str | None


@dataclass
class AppD:
    """The application descriptor, whichever form it came in (MEC 010-2 table 6.2.1.2.2-1)."""

    appd_id: str
    app_name: str
    app_provider: str
    app_soft_version: str
    appd_version: str
    mec_version: list[str]
    app_info_name: str | None
    app_description: str | None
    computes: list[VirtualCompute]
    sw_images: list[SwImage]
    ext_cpds: list[ExtCpd]
    app_service_required: list[dict]
    app_service_optional: list[dict]
    app_feature_required: list[dict]
    app_feature_optional: list[dict]
    app_traffic_rules: list[dict]
    app_dns_rules: list[dict]
    app_latency: dict | None
    terminate_timeout_s: int | None  # minGracefulTerminationTimeout
    stop_timeout_s: int | None  # minGracefulStopTimeout (changeAppInstanceStateOpConfig)
    entry_file: str
    source_files: list[str]  # entry + every LOCAL file it imports, relative to package root
    form: str  # "MEC037-TOSCA" | "MEC010-2"
    app_service_produced: list[dict] = field(default_factory=list)
    transport_dependencies: list[dict] = field(default_factory=list)
    user_context_transfer_capability: dict | None = None
    app_network_policy: dict | None = None


class AppDError(OnboardingError):
    """The AppD is invalid; ``detail`` names the file, the node (where known) and the rule broken."""


# --------------------------------------------------------------------------------------------------
# Offline type files
# --------------------------------------------------------------------------------------------------

TYPES_DIR = Path(os.environ.get("MEAO_TOSCA_TYPES_DIR")
                 or Path(__file__).resolve().parents[2] / "descriptors" / "types")
MEC037_TYPES = TYPES_DIR / "etsi_mec_037_types.yaml"
SOL001_VNFD_TYPES = TYPES_DIR / "etsi_nfv_sol001_vnfd_types.yaml"
SOL001_COMMON_TYPES = TYPES_DIR / "etsi_nfv_sol001_common_types.yaml"

_MEC037_VERSIONS = ("v3.1.1", "v3.2.1")
_SOL001_VERSIONS = ("v2.6.1", "v2.7.1", "v2.8.1", "v3.3.1", "v3.5.1", "v3.6.1",
                    "v4.2.1", "v4.3.1", "v4.4.1", "v4.5.1")


def _forge_urls(project: str, version: str, file_name: str) -> list[str]:
    # ETSI forge serves raw files under both the old ("/raw/") and the GitLab ("/-/raw/") route.
    return [f"https://forge.etsi.org/rep/{project}/raw/{version}/{file_name}",
            f"https://forge.etsi.org/rep/{project}/-/raw/{version}/{file_name}"]


def _remote_imports() -> dict[str, Path]:
    mapping: dict[str, Path] = {}
    for version in _MEC037_VERSIONS:
        for url in _forge_urls("mec/gs037-pkg-format", version, "MecAppDTypes.yaml"):
            mapping[url] = MEC037_TYPES
    for version in _SOL001_VERSIONS:
        for url in _forge_urls("nfv/SOL001", version, "etsi_nfv_sol001_vnfd_types.yaml"):
            mapping[url] = SOL001_VNFD_TYPES
        for url in _forge_urls("nfv/SOL001", version, "etsi_nfv_sol001_common_types.yaml"):
            mapping[url] = SOL001_COMMON_TYPES
    return mapping


#: Well-known remote type files (MEC 037 Annex B, SOL001 type files) mapped to meao's local files.
REMOTE_IMPORTS: dict[str, Path] = _remote_imports()

# --------------------------------------------------------------------------------------------------
# TOSCA name -> MEC 010-2 JSON name, in one place (MEC 037 clause 5.2.5 vs MEC 010-2 clause 6.2.1)
# --------------------------------------------------------------------------------------------------

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


def _network_policy_to_mec010_2(value: dict) -> dict:
    return {"steeredNetwork": to_mec010_2(value)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def load_appd(package_root: Path, entry: str) -> AppD:
    """Load and validate the AppD at ``entry`` (path relative to the extracted package root).

    A ``.json`` entry, or a YAML document without ``tosca_definitions_version``, is a MEC 010-2 AppD
    document (clause 6.2.1); anything else is a MEC 037 TOSCA AppD. Raises :class:`AppDError` naming
    the file, node and rule at fault.
    """
    root = package_root.resolve()
    entry_path = _inside(root, root, entry, what="Entry-Definitions", source=entry)
    if not entry_path.is_file():
        raise AppDError(f"{entry}: entry definitions file not found in the package")
    if entry_path.suffix.lower() == ".json":
        return _load_mec010_2(root, entry, _load_json(entry_path, entry))
    _guard(entry_path, entry)
    document = _safe_load(entry_path, entry)
    if isinstance(document, dict) and "tosca_definitions_version" not in document:
        return _load_mec010_2(root, entry, document)
    return _load_tosca(root, entry, entry_path)


# --------------------------------------------------------------------------------------------------
# Files and imports
# --------------------------------------------------------------------------------------------------


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _inside(root: Path, base: Path, ref: str, *, what: str, source: str) -> Path:
    """Resolve ``ref`` against ``base`` and refuse anything that leaves the package root."""
    if not isinstance(ref, str) or not ref.strip():
        raise AppDError(f"{source}: {what} is empty or not a string")
    if PurePosixPath(ref).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", ref):
        raise AppDError(f"{source}: {what} '{ref}' is an absolute path; use a path inside the package")
    resolved = (base / ref).resolve()
    if resolved != root and root not in resolved.parents:
        raise AppDError(f"{source}: {what} '{ref}' points outside the package")
    return resolved


def _guard(path: Path, name: str) -> None:
    try:
        check_yaml_file(path, display_name=name)
    except AppDError:
        raise
    except OnboardingError as exc:
        raise AppDError(exc.detail) from exc


def _safe_load(path: Path, name: str) -> Any:
    try:
        with path.open("r", encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise AppDError(f"{name}: not valid YAML: {exc}") from exc


def _load_json(path: Path, name: str) -> Any:
    size = path.stat().st_size
    if size > DEFAULT_MAX_BYTES:
        raise AppDError(f"{name}: JSON file is {size} bytes, larger than the {DEFAULT_MAX_BYTES} bytes allowed")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AppDError(f"{name}: not valid UTF-8 text (byte offset {exc.start})") from exc
    except RecursionError as exc:
        raise AppDError(f"{name}: JSON nesting too deep") from exc
    except json.JSONDecodeError as exc:
        raise AppDError(f"{name}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc


def _is_url(ref: str) -> bool:
    parsed = urlparse(ref)
    return bool(parsed.scheme) and len(parsed.scheme) > 1 and (bool(parsed.netloc) or parsed.scheme == "file")


def _import_refs(document: Any, name: str) -> list[str]:
    """The file references of a template's ``imports`` (single-line, multi-line and named forms)."""
    if not isinstance(document, dict):
        raise AppDError(f"{name}: not a TOSCA service template (top level is not a map)")
    imports = document.get("imports") or []
    if not isinstance(imports, list):
        raise AppDError(f"{name}: 'imports' must be a list (TOSCA 1.3 section 3.6.8)")
    refs: list[str] = []
    for item in imports:
        definition: Any = item
        if isinstance(item, dict) and "file" not in item and len(item) == 1:
            definition = next(iter(item.values()))  # older named form: - name: file | {file: ...}
        if isinstance(definition, str):
            refs.append(definition)
        elif isinstance(definition, dict) and isinstance(definition.get("file"), str):
            if definition.get("repository"):
                raise AppDError(f"{name}: import '{definition['file']}' uses repository "
                                f"'{definition['repository']}'; repository imports would need the "
                                "network and are not supported: ship the file in the package")
            refs.append(definition["file"])
        else:
            raise AppDError(f"{name}: import definition {item!r} has no file name")
    return refs


def _collect_imports(root: Path, entry: str, entry_path: Path
                     ) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Walk the local import graph.

    Returns the local files, the URL -> local type file map for tosca-parser, and the loaded local
    documents. Every local file passes the YAML guard before it is loaded; every URL must be in
    REMOTE_IMPORTS.
    """
    local: list[str] = [entry]
    local_defs: dict[str, str] = {}
    documents: dict[str, Any] = {}
    pending = [(entry, entry_path)]
    seen = {entry_path}
    while pending:
        name, path = pending.pop(0)
        document = documents[name] = _safe_load(path, name)
        for ref in _import_refs(document, name):
            if _is_url(ref):
                mapped = REMOTE_IMPORTS.get(ref)
                if mapped is None:
                    raise AppDError(
                        f"{name}: import '{ref}' is a remote URL meao does not map to a local type file; "
                        "nothing is fetched from the network at onboarding. Ship the file in the package "
                        "and import it by relative path, or import one of the standard type files meao "
                        "knows (MEC 037 MecAppDTypes.yaml, SOL001 etsi_nfv_sol001_*_types.yaml forge URLs)")
                if not mapped.is_file():
                    raise AppDError(f"{name}: import '{ref}' maps to {mapped}, which is missing from this "
                                    "meao installation")
                local_defs[ref] = str(mapped)
                continue
            target = _inside(root, path.parent, ref, what=f"import '{ref}'", source=name)
            if not target.is_file():
                raise AppDError(f"{name}: import '{ref}' not found in the package "
                                f"(looked for {_rel(root, target)})")
            if target in seen:
                continue
            seen.add(target)
            target_name = _rel(root, target)
            _guard(target, target_name)
            local.append(target_name)
            pending.append((target_name, target))
    return local, local_defs, documents


# --------------------------------------------------------------------------------------------------
# tosca-parser, offline and serialised
# --------------------------------------------------------------------------------------------------

# tosca-parser collects errors in a process-wide ExceptionCollector: one parse at a time.
_TOSCA_LOCK = threading.Lock()
_node_in_validation: list[str | None] = [None]


class _ToscaErrors(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _exception_text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = " ".join(str(text).split())
    node = getattr(exc, "meao_node", None)
    return f"node '{node}': {text}" if node and node not in text else text


@contextmanager
def _node_tracking() -> Iterator[None]:
    """Tag each error tosca-parser collects with the node template being validated at the time.

    tosca-parser's messages often name a value but not the node; the detail should say where. The
    hooks are installed only while the parse lock is held and are removed afterwards.
    """
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.nodetemplate import NodeTemplate

    original_validate = NodeTemplate.validate
    original_append = ExceptionCollector.appendException

    def validate(self: Any, tosca_tpl: Any = None) -> Any:
        _node_in_validation[0] = self.name
        try:
            return original_validate(self, tosca_tpl)
        except Exception as exc:  # tosca-parser crashes on some wrong types; keep the node for the report
            exc.meao_node = self.name  # type: ignore[attr-defined]
            exc.meao_where = _crashing_property(self)  # type: ignore[attr-defined]
            raise
        finally:
            _node_in_validation[0] = None

    def append(exception: BaseException) -> None:
        if _node_in_validation[0] and not hasattr(exception, "meao_node"):
            try:
                exception.meao_node = _node_in_validation[0]  # type: ignore[attr-defined]
            except AttributeError:
                pass
        original_append(exception)

    NodeTemplate.validate = validate
    ExceptionCollector.appendException = staticmethod(append)
    try:
        yield
    finally:
        NodeTemplate.validate = original_validate
        ExceptionCollector.appendException = staticmethod(original_append)


def _crashing_property(node: Any) -> str | None:
    """Which property of ``node`` makes tosca-parser crash, probed one at a time (for the report)."""
    probes: list[tuple[str, Any]] = []
    try:
        probes += [(f"property '{prop.name}'", prop) for prop in node.get_properties_objects()]
        for capability in node.get_capabilities_objects():
            probes += [(f"capability '{capability.name}' property '{prop.name}'", prop)
                       for prop in capability.get_properties_objects()]
    except Exception:  # noqa: BLE001 - the probe is best effort; the crash itself is reported anyway
        return None
    for where, prop in probes:
        try:
            prop.validate()
        except Exception:  # noqa: BLE001 - finding the crashing property is the point of the probe
            value = repr(prop.value)
            return f"{where} (value {value if len(value) <= 160 else value[:157] + '...'})"
    return None


def _parse_tosca(entry_path: Path, local_defs: dict[str, str]) -> Any:
    """Run tosca-parser on the extracted entry file with the offline URL map (never the zip)."""
    from toscaparser.common.exception import ExceptionCollector, MissingRequiredInputError
    from toscaparser.tosca_template import ToscaTemplate

    class AppDTemplate(ToscaTemplate):
        def verify_template(self) -> None:
            # MEC 037 AppDs set the app node's required properties (mec_version) on the node template,
            # not through topology inputs; tosca-parser's substitution-mapping input check would refuse
            # every standard AppD (Annex A included), so that one check is not applied.
            kept = [exc for exc in ExceptionCollector.exceptions
                    if not (isinstance(exc, MissingRequiredInputError)
                            and "SubstitutionMappings" in str(exc))]
            if kept:
                raise _ToscaErrors([_exception_text(exc) for exc in kept])

    return AppDTemplate(str(entry_path), local_defs=local_defs)


# --------------------------------------------------------------------------------------------------
# MEC 037 TOSCA AppD
# --------------------------------------------------------------------------------------------------

MECAPP = "tosca.nodes.mec.MecApp"
VNF = "tosca.nodes.nfv.VNF"
VDU_COMPUTE = "tosca.nodes.nfv.Vdu.Compute"
VDU_BLOCK_STORAGE = "tosca.nodes.nfv.Vdu.VirtualBlockStorage"
VDU_CP = "tosca.nodes.nfv.VduCp"
SW_IMAGE = "tosca.artifacts.nfv.SwImage"
INSTANTIATION_LEVELS = "tosca.policies.nfv.InstantiationLevels"
VDU_INSTANTIATION_LEVELS = "tosca.policies.nfv.VduInstantiationLevels"


_PLAIN_VNF_REASON = (
    "this is a plain VNF package: no node type derived from " + MECAPP + " ({described}). meao onboards "
    "MEC application packages only: derive the application node type from tosca.nodes.mec.MecApp "
    "(MEC 037 clause 5.2.4.1, importing https://forge.etsi.org/rep/mec/gs037-pkg-format/raw/"
    "v3.2.1/MecAppDTypes.yaml), set its descriptor properties as constraints and defaults "
    "(clause 5.2.3.3), give mec_version on the node template and use the type as "
    "substitution_mappings.node_type (clause 5.2.4)")


def _type_chain(type_name: str | None, custom_defs: dict[str, Any]) -> list[str]:
    """``type_name`` and its ancestors, as declared in the template's type definitions."""
    chain: list[str] = []
    while type_name and type_name not in chain:
        chain.append(type_name)
        definition = custom_defs.get(type_name)
        type_name = definition.get("derived_from") if isinstance(definition, dict) else None
    return chain


def _load_tosca(root: Path, entry: str, entry_path: Path) -> AppD:
    sources, local_defs, documents = _collect_imports(root, entry, entry_path)
    with _TOSCA_LOCK, _node_tracking():
        try:
            template = _parse_tosca(entry_path, local_defs)
        except _ToscaErrors as exc:
            detail = f"{entry}: invalid TOSCA AppD: " + "; ".join(exc.messages)
            raise AppDError(_with_plain_vnf_hint(detail, documents)) from exc
        except Exception as exc:  # tosca-parser raises or crashes (TypeError, AttributeError, ...)
            raise AppDError(_with_plain_vnf_hint(_crash_detail(entry, exc), documents)) from exc
        finally:
            _clear_tosca_errors()
        return _TemplateReader(root, entry, entry_path, sources, template).appd()


def _declares_mec_app(documents: dict[str, Any]) -> bool:
    """Whether the package's own files derive a node type from tosca.nodes.mec.MecApp."""
    node_types: dict[str, Any] = {}
    for document in documents.values():
        if isinstance(document, dict) and isinstance(document.get("node_types"), dict):
            node_types.update(document["node_types"])
    return any(MECAPP in _type_chain(name, node_types) for name in node_types)


def _with_plain_vnf_hint(detail: str, documents: dict[str, Any]) -> str:
    """A template that fails validation and is not a MEC AppD at all gets the plain-VNF reason first."""
    if _declares_mec_app(documents):
        return detail
    entry = next(iter(documents))
    return (f"{entry}: {_PLAIN_VNF_REASON.format(described='no node type derives from it')} "
            f"(besides, the template does not validate: {detail.split(': ', 1)[-1]})")


def _crash_detail(entry: str, exc: BaseException) -> str:
    node = getattr(exc, "meao_node", None)
    where = f"node '{node}': " if node else ""
    if getattr(exc, "meao_where", None):
        where += f"{exc.meao_where}: "  # type: ignore[attr-defined]
    text = _exception_text(exc) if not node else " ".join(str(getattr(exc, "message", None) or exc).split())
    if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError)):
        return (f"{entry}: {where}tosca-parser could not process the AppD ({type(exc).__name__}: {text}); "
                "typically a value of the wrong kind (a string where a number or list is expected, a map "
                "where a list is expected) or an unknown type")
    return f"{entry}: {where}invalid TOSCA AppD: {text}"


def _clear_tosca_errors() -> None:
    from toscaparser.common.exception import ExceptionCollector

    ExceptionCollector.stop()
    del ExceptionCollector.exceptions[:]


class _TemplateReader:
    """Reads one parsed MEC 037 service template into an :class:`AppD`, applying meao's checks."""

    def __init__(self, root: Path, entry: str, entry_path: Path, sources: list[str], template: Any) -> None:
        self.root = root
        self.entry = entry
        self.entry_dir = entry_path.parent
        self.sources = sources
        self.template = template
        topology = template.topology_template
        self.custom_defs: dict[str, Any] = dict(topology.custom_defs or {})
        self.nodes: list[Any] = list(template.nodetemplates or [])
        self.policies: list[Any] = list(template.policies or [])
        for nested in getattr(template, "nested_tosca_templates_with_topology", None) or []:
            self.custom_defs.update(getattr(nested, "custom_defs", None) or {})
            self.nodes.extend(getattr(nested, "nodetemplates", None) or [])
            self.policies.extend(getattr(nested, "policies", None) or [])
        self.by_name = {node.name: node for node in self.nodes}

    # -- helpers ---------------------------------------------------------------------------------

    def fail(self, rule: str, node: str | None = None) -> AppDError:
        where = f"node '{node}': " if node else ""
        return AppDError(f"{self.entry}: {where}{rule}")

    def is_a(self, node: Any, type_name: str) -> bool:
        return type_name in _type_chain(node.type, self.custom_defs)

    def nodes_of(self, type_name: str) -> list[Any]:
        return [node for node in self.nodes if self.is_a(node, type_name)]

    def size(self, value: Any, unit: str, node: str, what: str) -> int:
        """Scalar-unit.size ``value`` in ``unit``, rounded up (tosca-parser ScalarUnit_Size)."""
        from toscaparser.elements.scalarunit import ScalarUnit_Size

        try:
            return math.ceil(ScalarUnit_Size(value).get_num_from_scalar_unit(unit))
        except Exception as exc:
            raise self.fail(f"{what} '{value}' is not a valid scalar-unit.size ({exc})", node) from exc

    def seconds(self, value: Any, node: str, what: str) -> int:
        from toscaparser.elements.scalarunit import ScalarUnit_Time

        try:
            return math.ceil(ScalarUnit_Time(value).get_num_from_scalar_unit("s"))
        except Exception as exc:
            raise self.fail(f"{what} '{value}' is not a valid scalar-unit.time ({exc})", node) from exc

    # -- the AppD --------------------------------------------------------------------------------

    def app_node(self) -> Any:
        mapping = self.template.topology_template.substitution_mappings
        mapped_type = mapping.node_type if mapping is not None else None
        candidates = [node for node in self.nodes if self.is_a(node, MECAPP)]
        if mapped_type and MECAPP in _type_chain(mapped_type, self.custom_defs):
            typed = [node for node in candidates if node.type == mapped_type] or candidates
            if typed:
                return typed[0]
            raise self.fail(f"substitution_mappings.node_type '{mapped_type}' derives from {MECAPP} but "
                            "no node template of that type describes the application (MEC 037 5.2.3.3)")
        if candidates:
            return candidates[0]
        vnf_nodes = [node.name for node in self.nodes if self.is_a(node, VNF)]
        described = (f"substitution_mappings.node_type is '{mapped_type}'" if mapped_type
                     else "no substitution_mappings.node_type")
        if vnf_nodes:
            described += f", VNF node template(s): {', '.join(vnf_nodes)}"
        raise self.fail(_PLAIN_VNF_REASON.format(described=described))

    def appd(self) -> AppD:
        app = self.app_node()
        self.check_substitution_mappings()
        computes, images = self.computes_and_images()
        ext_cpds = self.ext_cpds()
        self.check_policies()
        self.check_artifact_files()
        prop = app.get_property_value

        def text(name: str, required: bool = True) -> str | None:
            value = prop(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or (required and not value):
                raise self.fail(f"property '{name}' must be a non-empty string (MEC 037 table 5.2.2-1)",
                                app.name)
            return value

        mec_version = prop("mec_version")
        if isinstance(mec_version, str):
            mec_version = [part.strip() for part in mec_version.split(",") if part.strip()]
        if not isinstance(mec_version, list) or not mec_version:
            raise self.fail("property 'mec_version' is required: a list of x.y.z versions "
                            "(MEC 037 5.2.4.1.6)", app.name)
        traffic_rules = prop("app_traffic_rule") or []
        for rule in traffic_rules:
            if isinstance(rule, dict) and len(rule.get("dst_interface") or []) > 2:
                raise self.fail(f"traffic rule '{rule.get('traffic_rule_id')}': dst_interface has more than "
                                "2 entries (MEC 037 table 5.2.5.6.2-1)", app.name)
        lcm = prop("lcm_operations_configuration") or {}
        terminate = (lcm.get("terminate") or {}).get("min_graceful_termination_timeout")
        stop = (lcm.get("operate") or {}).get("min_graceful_stop_timeout")
        latency = prop("app_latency")
        network_policy = prop("app_network_policy")
        user_context = prop("user_context_transfer_capability")
        provider = text("provider")
        for image in images:
            image.provider = image.provider or provider
        return AppD(
            appd_id=text("descriptor_id"), app_name=text("product_name"), app_provider=provider,
            app_soft_version=text("software_version"), appd_version=text("descriptor_version"),
            mec_version=[str(v) for v in mec_version],
            app_info_name=text("product_info_name", required=False),
            app_description=text("product_info_description", required=False),
            computes=computes, sw_images=images, ext_cpds=ext_cpds,
            app_service_required=to_mec010_2(prop("app_service_required") or []),
            app_service_optional=to_mec010_2(prop("app_service_optional") or []),
            app_feature_required=to_mec010_2(prop("app_feature_required") or []),
            app_feature_optional=to_mec010_2(prop("app_feature_optional") or []),
            app_traffic_rules=to_mec010_2(traffic_rules),
            app_dns_rules=to_mec010_2(prop("app_dns_rule") or []),
            app_latency=to_mec010_2(latency) if latency else None,
            terminate_timeout_s=self.seconds(terminate, app.name, "terminate timeout") if terminate else None,
            stop_timeout_s=self.seconds(stop, app.name, "operate stop timeout") if stop else None,
            entry_file=self.entry, source_files=list(self.sources), form=FORM_TOSCA,
            app_service_produced=to_mec010_2(prop("app_service_produced") or []),
            transport_dependencies=to_mec010_2(prop("transport_dependencies") or []),
            user_context_transfer_capability=to_mec010_2(user_context) if user_context else None,
            app_network_policy=_network_policy_to_mec010_2(network_policy) if network_policy else None,
        )

    # -- checks tosca-parser does not do ---------------------------------------------------------

    def check_substitution_mappings(self) -> None:
        mapping = self.template.topology_template.substitution_mappings
        if mapping is None:
            raise self.fail("no substitution_mappings in topology_template (MEC 037 5.2.3.4)")
        for name, target in (mapping.requirements or {}).items():
            if not (isinstance(target, list) and len(target) == 2):
                raise self.fail(f"substitution_mappings requirement '{name}' must be [node, requirement]")
            if target[0] not in self.by_name:
                raise self.fail(f"substitution_mappings requirement '{name}' refers to unknown node "
                                f"'{target[0]}'")

    def computes_and_images(self) -> tuple[list[VirtualCompute], list[SwImage]]:
        vdus = self.nodes_of(VDU_COMPUTE)
        if not vdus:
            raise self.fail(f"no {VDU_COMPUTE} node template: MEC 037 clause 5.2.3.4 requires one for a VM "
                            "based application (container based AppDs are not supported by meao)")
        computes: list[VirtualCompute] = []
        images: list[SwImage] = []
        for vdu in vdus:
            storages = [self.by_name[target] for target in self.requirement_targets(vdu, "virtual_storage")
                        if target in self.by_name]
            vdu_images = [image for holder in [vdu, *storages] for image in self.images_of(holder, vdu.name)]
            if not vdu_images:
                raise self.fail("no software image: give the Vdu.Compute (or a Vdu.VirtualBlockStorage it "
                                f"attaches) a {SW_IMAGE} artifact with the image properties (SOL001 Release 4,"
                                " MEC 037 Annex A) or the SOL001 v2.6.1 sw_image_data property", vdu.name)
            images.extend(vdu_images)
            computes.append(self.compute(vdu, storages))
        return computes, images

    def requirement_targets(self, node: Any, requirement: str) -> list[str]:
        targets = []
        for item in node.requirements or []:
            if isinstance(item, dict) and requirement in item:
                value = item[requirement]
                targets.append(value.get("node") if isinstance(value, dict) else value)
        return [target for target in targets if isinstance(target, str)]

    def compute(self, vdu: Any, storages: list[Any]) -> VirtualCompute:
        capability = (vdu.get_capabilities() or {}).get("virtual_compute")
        if capability is None:
            raise self.fail("capability 'virtual_compute' is missing (SOL001 Vdu.Compute)", vdu.name)
        cpu = capability.get_property_value("virtual_cpu") or {}
        memory = capability.get_property_value("virtual_memory") or {}
        spelled = [key for key in ("num_virtual_cpu", "number_virtual_cpu") if key in cpu]
        if len(spelled) != 1:
            raise self.fail("capability 'virtual_compute': property 'virtual_cpu' needs exactly one of "
                            "'num_virtual_cpu' (SOL001) or 'number_virtual_cpu' (MEC 037 5.2.4.2.3)",
                            vdu.name)
        num_vcpu = cpu[spelled[0]]
        if not isinstance(num_vcpu, int) or isinstance(num_vcpu, bool) or num_vcpu < 1:
            raise self.fail(f"capability 'virtual_compute': property '{spelled[0]}' must be a positive "
                            f"integer, got {num_vcpu!r}", vdu.name)
        memory_mb = self.size(memory.get("virtual_mem_size"), "MiB", vdu.name, "virtual_mem_size")
        disk_gb = 0
        local_storage = capability.get_property_value("virtual_local_storage") or []
        if local_storage:
            disk_gb = self.size(local_storage[0].get("size_of_storage"), "GiB", vdu.name, "virtual_local_storage")
        else:
            block = [node for node in storages if self.is_a(node, VDU_BLOCK_STORAGE)]
            # the storage holding the image is the root disk; else the first block storage attached
            block.sort(key=lambda node: not node.entity_tpl.get("artifacts"))
            if block:
                data = block[0].get_property_value("virtual_block_storage_data") or {}
                disk_gb = self.size(data.get("size_of_storage"), "GiB", block[0].name, "size_of_storage")
        name = vdu.get_property_value("name") or vdu.name
        return VirtualCompute(vdu_id=vdu.name, name=str(name), num_vcpu=num_vcpu, memory_mb=memory_mb,
                              disk_gb=disk_gb)

    def images_of(self, holder: Any, vdu_id: str) -> list[SwImage]:
        """Software images on a Vdu.Compute or Vdu.VirtualBlockStorage node (artifact or sw_image_data)."""
        artifacts = holder.entity_tpl.get("artifacts") or {}
        if not isinstance(artifacts, dict):
            raise self.fail("'artifacts' must be a map of artifact definitions", holder.name)
        sw_image_data = holder.entity_tpl.get("properties", {}).get("sw_image_data")
        images: list[SwImage] = []
        for artifact_name, artifact in artifacts.items():
            if not isinstance(artifact, dict):
                raise self.fail(f"artifact '{artifact_name}' must be a map with 'type' and 'file'", holder.name)
            if SW_IMAGE not in _type_chain(artifact.get("type"), self.custom_defs):
                continue
            properties = artifact.get("properties") or sw_image_data
            if not properties:
                raise self.fail(f"artifact '{artifact_name}': {SW_IMAGE} without image properties and no "
                                "sw_image_data on the node", holder.name)
            file_ref = artifact.get("file")
            image_id = holder.name if len(artifacts) == 1 else f"{holder.name}.{artifact_name}"
            images.append(self.sw_image(holder.name, f"artifact '{artifact_name}'", image_id, vdu_id,
                                        properties, self.artifact_file(holder.name, artifact_name, file_ref)))
        if not images and sw_image_data:
            # v2.6.1 style without an artifact: the image lives outside the package
            images.append(self.sw_image(holder.name, "property 'sw_image_data'", holder.name, vdu_id,
                                        sw_image_data, None))
        return images

    def sw_image(self, node: str, where: str, image_id: str, vdu_id: str, properties: Any,
                 file: str | None) -> SwImage:
        from toscaparser.common.exception import ExceptionCollector
        from toscaparser.dataentity import DataEntity

        if not isinstance(properties, dict):
            raise self.fail(f"{where}: image properties must be a map", node)
        values = dict(properties)
        ExceptionCollector.start()
        try:
            DataEntity("tosca.datatypes.nfv.SwImageData", values, self.custom_defs).validate()
        except (TypeError, AttributeError, ValueError, KeyError) as exc:  # crash on a wrong kind of value
            ExceptionCollector.exceptions.append(exc)
        finally:
            problems = [_exception_text(exc) for exc in ExceptionCollector.exceptions]
            _clear_tosca_errors()
        if problems:
            raise self.fail(f"{where}: invalid software image properties (tosca.datatypes.nfv.SwImageData): "
                            + "; ".join(problems), node)
        checksum = values["checksum"]
        return SwImage(
            id=image_id, vdu_id=vdu_id, name=values["name"], version=str(values["version"]),
            provider=values.get("provider"),
            checksum=Checksum(algorithm=checksum["algorithm"], hash=checksum["hash"]),
            container_format=values["container_format"], disk_format=values["disk_format"],
            min_disk_gb=self.size(values["min_disk"], "GiB", node, "min_disk"),
            min_ram_mb=self.size(values.get("min_ram", "0 B"), "MiB", node, "min_ram"),
            size_bytes=self.size(values["size"], "B", node, "size"), file=file)

    def artifact_file(self, node: str, artifact: str, ref: Any) -> str | None:
        """Package-relative path of an artifact file (None for a URL); it must exist in the package.

        Relative paths resolve against the entry file's folder (as Tacker and tosca-parser's CSAR
        check do); a path that only exists relative to the package root is accepted too.
        """
        if not isinstance(ref, str) or not ref:
            raise self.fail(f"artifact '{artifact}' has no 'file'", node)
        if _is_url(ref):
            return None
        what = f"artifact '{artifact}' file '{ref}'"
        source = f"{self.entry}: node '{node}'"
        candidates = [_inside(self.root, self.entry_dir, ref, what=what, source=source)]
        try:
            candidates.append(_inside(self.root, self.root, ref, what=what, source=source))
        except AppDError:
            pass  # only meaningful when the path stays inside the package from the root too
        for path in candidates:
            if path.is_file():
                return _rel(self.root, path)
        raise self.fail(f"{what} not found in the package", node)

    def check_artifact_files(self) -> None:
        for node in self.nodes:
            for artifact_name, artifact in (node.entity_tpl.get("artifacts") or {}).items():
                ref = artifact.get("file") if isinstance(artifact, dict) else artifact
                self.artifact_file(node.name, artifact_name, ref)

    def ext_cpds(self) -> list[ExtCpd]:
        cps = self.nodes_of(VDU_CP)
        if not cps:
            raise self.fail(f"no {VDU_CP} node template: MEC 037 clause 5.2.3.4 requires the application's "
                            "external connection point(s)")
        result = []
        for cp in cps:
            bound = self.requirement_targets(cp, "virtual_binding")
            if len(bound) != 1 or bound[0] not in self.by_name or not self.is_a(self.by_name[bound[0]],
                                                                               VDU_COMPUTE):
                raise self.fail("requirement 'virtual_binding' must name one Vdu.Compute node template "
                                "(MEC 037 5.2.4.6)", cp.name)
            protocols = cp.get_property_value("layer_protocols") or []
            description = cp.get_property_value("description")
            result.append(ExtCpd(id=cp.name, vdu_id=bound[0], layer_protocols=[str(p) for p in protocols],
                                 description=description if isinstance(description, str) else None))
        return result

    def check_policies(self) -> None:
        def of_type(type_name: str) -> list[Any]:
            return [policy for policy in self.policies if type_name in _type_chain(policy.type, self.custom_defs)]

        if not of_type(INSTANTIATION_LEVELS):
            raise self.fail(f"no {INSTANTIATION_LEVELS} policy (MEC 037 clause 5.2.8 requires the "
                            "instantiation level definition)")
        vdu_levels = of_type(VDU_INSTANTIATION_LEVELS)
        if not vdu_levels:
            raise self.fail(f"no {VDU_INSTANTIATION_LEVELS} policy (MEC 037 clause 5.2.8)")
        for policy in vdu_levels:
            for target in policy.entity_tpl.get("targets") or []:
                node = self.by_name.get(target)
                if node is None or not self.is_a(node, VDU_COMPUTE):
                    raise self.fail(f"policy '{policy.name}': target '{target}' is not a {VDU_COMPUTE} "
                                    "node template")


# --------------------------------------------------------------------------------------------------
# MEC 010-2 AppD document (clause 6.2.1, JSON or YAML)
# --------------------------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{1,2}$")
_SIZE_RE = re.compile(r"^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$")


class _DocumentReader:
    """Validates a MEC 010-2 AppD document (table 6.2.1.2.2-1) and maps it to :class:`AppD`."""

    def __init__(self, root: Path, entry: str, document: Any) -> None:
        if not isinstance(document, dict):
            raise AppDError(f"{entry}: a MEC 010-2 AppD document must be a JSON/YAML object")
        self.root = root
        self.entry = entry
        self.doc = document

    def fail(self, rule: str) -> AppDError:
        return AppDError(f"{self.entry}: {rule}")

    def string(self, obj: dict, name: str, where: str, required: bool = True) -> str | None:
        value = obj.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}attribute '{name}' is required and must be a non-empty string "
                            "(MEC 010-2 clause 6.2.1)" if required
                            else f"{where}attribute '{name}' must be a string")
        return value

    def objects(self, name: str, *, minimum: int = 0, keys: tuple[str, ...] = ()) -> list[dict]:
        value = self.doc.get(name)
        if value is None:
            value = []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(f"attribute '{name}' must be a list of objects (MEC 010-2 table 6.2.1.2.2-1)")
        if len(value) < minimum:
            raise self.fail(f"attribute '{name}' needs at least {minimum} entr{'y' if minimum == 1 else 'ies'} "
                            "(MEC 010-2 table 6.2.1.2.2-1)")
        for index, item in enumerate(value):
            missing = [key for key in keys if item.get(key) in (None, "", [])]
            if missing:
                raise self.fail(f"{name}[{index}]: missing required attribute(s) {', '.join(missing)} "
                                "(MEC 010-2 clause 6.2.1)")
        return value

    def number(self, value: Any, unit: str, default_unit: str, what: str) -> int:
        """A size given as a number in ``default_unit`` (IFA 011 style) or as a TOSCA scalar string."""
        from toscaparser.elements.scalarunit import ScalarUnit_Size

        if isinstance(value, bool):
            raise self.fail(f"{what} must be a number or a size such as '512 MiB', got {value!r}")
        if isinstance(value, (int, float)):
            value = f"{value} {default_unit}"
        if not isinstance(value, str) or not _SIZE_RE.match(value):
            raise self.fail(f"{what} must be a number or a size such as '512 MiB', got {value!r}")
        try:
            return math.ceil(ScalarUnit_Size(value).get_num_from_scalar_unit(unit))
        except Exception as exc:
            raise self.fail(f"{what} '{value}' is not a valid size ({exc})") from exc

    def seconds(self, config: Any, name: str, what: str) -> int | None:
        if config is None:
            return None
        if not isinstance(config, dict):
            raise self.fail(f"attribute '{what}' must be an object")
        value = config.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.fail(f"{what}.{name} must be a non-negative number of seconds, got {value!r}")
        return math.ceil(value)

    def appd(self) -> AppD:
        doc = self.doc
        mec_version = doc.get("mecVersion")
        if isinstance(mec_version, str):
            mec_version = [part.strip() for part in mec_version.split(",") if part.strip()]
        if (not isinstance(mec_version, list) or not mec_version
                or not all(isinstance(v, str) and _VERSION_RE.match(v) for v in mec_version)):
            raise self.fail("attribute 'mecVersion' is required: comma-separated x.y.z versions "
                            "(MEC 010-2 table 6.2.1.2.2-1)")
        compute = doc.get("virtualComputeDescriptor")
        if not isinstance(compute, dict):
            raise self.fail("attribute 'virtualComputeDescriptor' is required by meao, which deploys "
                            "applications realised by one VM (MEC 010-2 table 6.2.1.2.2-1 note 5)")
        vdu_id = self.string(compute, "virtualComputeDescId", "virtualComputeDescriptor: ")
        images = [self.sw_image(item, vdu_id, index)
                  for index, item in enumerate(self.objects("swImageDescriptor", minimum=1))]
        storages = self.objects("virtualStorageDescriptor")
        cpds = self.objects("appExtCpd", minimum=1, keys=("cpdId",))
        provider = self.string(doc, "appProvider", "")
        for image in images:
            image.provider = image.provider or provider
        return AppD(
            appd_id=self.string(doc, "appDId", ""), app_name=self.string(doc, "appName", ""),
            app_provider=provider, app_soft_version=self.string(doc, "appSoftVersion", ""),
            appd_version=self.string(doc, "appDVersion", ""), mec_version=mec_version,
            app_info_name=self.string(doc, "appInfoName", "", required=False),
            app_description=self.string(doc, "appDescription", ""),
            computes=[self.compute(compute, vdu_id, storages)], sw_images=images,
            ext_cpds=[self.ext_cpd(cpd, vdu_id) for cpd in cpds],
            app_service_required=self.objects("appServiceRequired", keys=("serName", "version")),
            app_service_optional=self.objects("appServiceOptional", keys=("serName", "version")),
            app_feature_required=self.objects("appFeatureRequired", keys=("featureName", "version")),
            app_feature_optional=self.objects("appFeatureOptional", keys=("featureName", "version")),
            app_traffic_rules=self.traffic_rules(),
            app_dns_rules=self.objects("appDNSRule",
                                       keys=("dnsRuleId", "domainName", "ipAddressType", "ipAddress")),
            app_latency=self.latency(),
            terminate_timeout_s=self.seconds(doc.get("terminateAppInstanceOpConfig"),
                                             "minGracefulTerminationTimeout", "terminateAppInstanceOpConfig"),
            stop_timeout_s=self.seconds(doc.get("changeAppInstanceStateOpConfig"),
                                        "minGracefulStopTimeout", "changeAppInstanceStateOpConfig"),
            entry_file=self.entry, source_files=[self.entry], form=FORM_MEC010_2,
            app_service_produced=self.objects("appServiceProduced", keys=("serName", "version")),
            transport_dependencies=self.objects("transportDependencies", keys=("transport", "labels")),
            user_context_transfer_capability=doc.get("userContextTransferCapability"),
            app_network_policy=doc.get("appNetworkPolicy"),
        )

    def compute(self, compute: dict, vdu_id: str, storages: list[dict]) -> VirtualCompute:
        cpu = compute.get("virtualCpu")
        memory = compute.get("virtualMemory")
        if not isinstance(cpu, dict) or not isinstance(memory, dict):
            raise self.fail("virtualComputeDescriptor: 'virtualCpu' and 'virtualMemory' are required "
                            "(IFA 011 7.1.9.2.2)")
        num_vcpu = cpu.get("numVirtualCpu")
        if not isinstance(num_vcpu, int) or isinstance(num_vcpu, bool) or num_vcpu < 1:
            raise self.fail(f"virtualComputeDescriptor.virtualCpu.numVirtualCpu must be a positive integer, "
                            f"got {num_vcpu!r}")
        memory_mb = self.number(memory.get("virtualMemSize"), "MiB", "MiB",
                                "virtualComputeDescriptor.virtualMemory.virtualMemSize")
        disk_gb = 0
        disks = compute.get("virtualDisk") or []
        block = [s for s in storages if str(s.get("typeOfStorage", "BLOCK")).upper() == "BLOCK"]
        if disks and isinstance(disks, list) and isinstance(disks[0], dict):
            disk_gb = self.number(disks[0].get("sizeOfStorage"), "GiB", "GiB",
                                  "virtualComputeDescriptor.virtualDisk[0].sizeOfStorage")
        elif block:
            data = block[0].get("blockStorageData") or block[0]
            disk_gb = self.number(data.get("sizeOfStorage"), "GiB", "GiB",
                                  "virtualStorageDescriptor[0].sizeOfStorage")
        name = compute.get("name") or vdu_id
        return VirtualCompute(vdu_id=vdu_id, name=str(name), num_vcpu=num_vcpu, memory_mb=memory_mb,
                              disk_gb=disk_gb)

    def sw_image(self, item: dict, vdu_id: str, index: int) -> SwImage:
        where = f"swImageDescriptor[{index}]: "
        for key in ("id", "name", "version", "containerFormat", "diskFormat", "swImage"):
            if item.get(key) in (None, ""):
                raise self.fail(f"{where}attribute '{key}' is required (IFA 011 7.1.6.5)")
        checksum = item.get("checksum")
        if isinstance(checksum, str):  # IFA 011 v2 wrote the checksum as a plain string
            checksum = {"algorithm": "sha-256", "hash": checksum}
        if not isinstance(checksum, dict) or not checksum.get("algorithm") or not checksum.get("hash"):
            raise self.fail(f"{where}attribute 'checksum' needs 'algorithm' and 'hash'")
        ref = item["swImage"]
        file: str | None = None
        if not (isinstance(ref, str) and _is_url(ref)):
            path = _inside(self.root, self.root, ref, what=f"{where}swImage", source=self.entry)
            if not path.is_file():
                raise self.fail(f"{where}swImage file '{ref}' not found in the package")
            file = _rel(self.root, path)
        size = item.get("size")
        return SwImage(
            id=str(item["id"]), vdu_id=vdu_id, name=str(item["name"]), version=str(item["version"]),
            provider=item.get("provider"),
            checksum=Checksum(algorithm=str(checksum["algorithm"]).lower(), hash=str(checksum["hash"])),
            container_format=str(item["containerFormat"]).lower(), disk_format=str(item["diskFormat"]).lower(),
            min_disk_gb=self.number(item.get("minDisk", 0), "GiB", "GiB", f"{where}minDisk"),
            min_ram_mb=self.number(item.get("minRam", 0), "MiB", "MiB", f"{where}minRam"),
            size_bytes=self.number(size, "B", "B", f"{where}size") if size is not None
            else (self.root / file).stat().st_size if file else 0,
            file=file)

    def ext_cpd(self, cpd: dict, vdu_id: str) -> ExtCpd:
        protocols = cpd.get("layerProtocol") or []
        if isinstance(protocols, str):
            protocols = [protocols]
        if not protocols:
            raise self.fail(f"appExtCpd '{cpd['cpdId']}': attribute 'layerProtocol' is required "
                            "(IFA 011 7.1.6.3)")
        description = cpd.get("description")
        return ExtCpd(id=str(cpd["cpdId"]), vdu_id=vdu_id, layer_protocols=[str(p).lower() for p in protocols],
                      description=description if isinstance(description, str) else None)

    def traffic_rules(self) -> list[dict]:
        rules = self.objects("appTrafficRule",
                             keys=("trafficRuleId", "filterType", "priority", "trafficFilter", "action"))
        for rule in rules:
            if len(rule.get("dstInterface") or []) > 2:
                raise self.fail(f"appTrafficRule '{rule['trafficRuleId']}': dstInterface has more than 2 "
                                "entries (MEC 010-2 table 6.2.1.9.2-1)")
        return rules

    def latency(self) -> dict | None:
        latency = self.doc.get("appLatency")
        if latency is None:
            return None
        value = latency.get("maxLatency") if isinstance(latency, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail("appLatency.maxLatency must be a positive integer number of nanoseconds "
                            "(MEC 010-2 table 6.2.1.14.2-1)")
        return latency


def _load_mec010_2(root: Path, entry: str, document: Any) -> AppD:
    return _DocumentReader(root, entry, document).appd()


__all__: list[str] = [
    "REMOTE_IMPORTS",
    "WIRE_NAMES",
    "AppD",
    "AppDError",
    "Checksum",
    "ExtCpd",
    "SwImage",
    "VirtualCompute",
    "load_appd",
    "to_mec010_2",
]
