"""The MEC 037 TOSCA AppD (ETSI GS MEC 037 V3.2.1 clause 5): a service template read into :class:`AppD`.

The template is parsed offline by tosca-parser against meao's own type files (see
:mod:`meao.catalogue.appd.imports`); the application node (derived from ``tosca.nodes.mec.MecApp``)
gives the descriptor properties, :class:`ToscaNodes` the VDUs, images and CPs, and the checks
tosca-parser does not do (substitution mappings, instantiation levels, artifact files) are applied here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meao.catalogue.appd.imports import collect_imports
from meao.catalogue.appd.model import FORM_TOSCA, AppD, AppDError
from meao.catalogue.appd.tosca_nodes import VDU_COMPUTE, ToscaNodes, type_chain
from meao.catalogue.appd.tosca_parser import (
    ToscaErrors,
    clear_tosca_errors,
    crash_detail,
    exclusive_parser,
    parse_tosca,
)
from meao.catalogue.appd.wire import network_policy_to_mec010_2, to_mec010_2

MECAPP = "tosca.nodes.mec.MecApp"
VNF = "tosca.nodes.nfv.VNF"
INSTANTIATION_LEVELS = "tosca.policies.nfv.InstantiationLevels"
VDU_INSTANTIATION_LEVELS = "tosca.policies.nfv.VduInstantiationLevels"


_PLAIN_VNF_REASON = (
    "this is a plain VNF package: no node type derived from " + MECAPP + " ({described}). meao onboards "
    "MEC application packages only: derive the application node type from tosca.nodes.mec.MecApp "
    "(MEC 037 clause 5.2.4.1, importing https://forge.etsi.org/rep/mec/gs037-pkg-format/raw/"
    "v3.2.1/MecAppDTypes.yaml), set its descriptor properties as constraints and defaults "
    "(clause 5.2.3.3), give mec_version on the node template and use the type as "
    "substitution_mappings.node_type (clause 5.2.4)")


def load_tosca(root: Path, entry: str, entry_path: Path) -> AppD:
    """Parse and check the TOSCA AppD whose entry file is ``entry_path``; :class:`AppDError` if invalid."""
    sources, local_defs, documents = collect_imports(root, entry, entry_path)
    with exclusive_parser():
        try:
            template = parse_tosca(entry_path, local_defs)
        except ToscaErrors as exc:
            detail = f"{entry}: invalid TOSCA AppD: " + "; ".join(exc.messages)
            raise AppDError(_with_plain_vnf_hint(detail, documents)) from exc
        except Exception as exc:  # tosca-parser raises or crashes (TypeError, AttributeError, ...)
            raise AppDError(_with_plain_vnf_hint(crash_detail(entry, exc), documents)) from exc
        finally:
            clear_tosca_errors()
        return _TemplateReader(root, entry, entry_path, sources, template).appd()


def _declares_mec_app(documents: dict[str, Any]) -> bool:
    """Whether the package's own files derive a node type from tosca.nodes.mec.MecApp."""
    node_types: dict[str, Any] = {}
    for document in documents.values():
        if isinstance(document, dict) and isinstance(document.get("node_types"), dict):
            node_types.update(document["node_types"])
    return any(MECAPP in type_chain(name, node_types) for name in node_types)


def _with_plain_vnf_hint(detail: str, documents: dict[str, Any]) -> str:
    """A template that fails validation and is not a MEC AppD at all gets the plain-VNF reason first."""
    if _declares_mec_app(documents):
        return detail
    entry = next(iter(documents))
    return (f"{entry}: {_PLAIN_VNF_REASON.format(described='no node type derives from it')} "
            f"(besides, the template does not validate: {detail.split(': ', 1)[-1]})")


class _TemplateReader(ToscaNodes):
    """Reads one parsed MEC 037 service template into an :class:`AppD`, applying meao's checks."""

    def __init__(self, root: Path, entry: str, entry_path: Path, sources: list[str], template: Any) -> None:
        super().__init__(root, entry, entry_path, template)
        self.sources = sources

    def app_node(self) -> Any:
        """The node template describing the application: of the mapped MecApp type, else the first MecApp."""
        mapping = self.template.topology_template.substitution_mappings
        mapped_type = mapping.node_type if mapping is not None else None
        candidates = [node for node in self.nodes if self.is_a(node, MECAPP)]
        if mapped_type and MECAPP in type_chain(mapped_type, self.custom_defs):
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
        """The AppD: the application node's properties (MEC 037 table 5.2.2-1) with VDUs, images and CPs."""
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
            app_network_policy=network_policy_to_mec010_2(network_policy) if network_policy else None,
        )

    # -- checks tosca-parser does not do ---------------------------------------------------------

    def check_substitution_mappings(self) -> None:
        """Substitution mappings exist and their requirements name known nodes (MEC 037 5.2.3.4)."""
        mapping = self.template.topology_template.substitution_mappings
        if mapping is None:
            raise self.fail("no substitution_mappings in topology_template (MEC 037 5.2.3.4)")
        for name, target in (mapping.requirements or {}).items():
            if not (isinstance(target, list) and len(target) == 2):
                raise self.fail(f"substitution_mappings requirement '{name}' must be [node, requirement]")
            if target[0] not in self.by_name:
                raise self.fail(f"substitution_mappings requirement '{name}' refers to unknown node "
                                f"'{target[0]}'")

    def check_artifact_files(self) -> None:
        """Every artifact of every node names a file in the package (or a URL)."""
        for node in self.nodes:
            for artifact_name, artifact in (node.entity_tpl.get("artifacts") or {}).items():
                ref = artifact.get("file") if isinstance(artifact, dict) else artifact
                self.artifact_file(node.name, artifact_name, ref)

    def check_policies(self) -> None:
        """The instantiation level policies exist and target Vdu.Compute nodes (MEC 037 5.2.8)."""
        def of_type(type_name: str) -> list[Any]:
            return [policy for policy in self.policies if type_name in type_chain(policy.type, self.custom_defs)]

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

