"""The node templates of a parsed MEC 037 TOSCA AppD: VDUs, their software images and external CPs.

A VM-based MEC application (MEC 037 clause 5.2.3.4) is described by SOL001 ``Vdu.Compute`` nodes, the
``Vdu.VirtualBlockStorage`` nodes they attach, ``SwImage`` artifacts (or SOL001 v2.6.1
``sw_image_data``) and ``VduCp`` nodes. :class:`ToscaNodes` reads them into the model's parts and
applies the checks tosca-parser does not do; :mod:`meao.catalogue.appd.tosca` builds the AppD on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meao.catalogue.appd.files import is_url, path_inside, relative_name
from meao.catalogue.appd.model import AppDError, Checksum, ExtCpd, SwImage, VirtualCompute
from meao.catalogue.appd.tosca_parser import data_type_problems, scalar_seconds, scalar_size

VDU_COMPUTE = "tosca.nodes.nfv.Vdu.Compute"
VDU_BLOCK_STORAGE = "tosca.nodes.nfv.Vdu.VirtualBlockStorage"
VDU_CP = "tosca.nodes.nfv.VduCp"
SW_IMAGE = "tosca.artifacts.nfv.SwImage"


def type_chain(type_name: str | None, custom_defs: dict[str, Any]) -> list[str]:
    """``type_name`` and its ancestors, as declared in the template's type definitions."""
    chain: list[str] = []
    while type_name and type_name not in chain:
        chain.append(type_name)
        definition = custom_defs.get(type_name)
        type_name = definition.get("derived_from") if isinstance(definition, dict) else None
    return chain


class ToscaNodes:
    """The node templates of one parsed service template (nested ones included), read for meao."""

    def __init__(self, root: Path, entry: str, entry_path: Path, template: Any) -> None:
        self.root = root
        self.entry = entry
        self.entry_dir = entry_path.parent
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

    def fail(self, rule: str, node: str | None = None) -> AppDError:
        """The AppDError for a broken ``rule``, naming the entry file and the node (if any)."""
        where = f"node '{node}': " if node else ""
        return AppDError(f"{self.entry}: {where}{rule}")

    def is_a(self, node: Any, type_name: str) -> bool:
        """Whether ``node`` is of ``type_name`` or a type derived from it."""
        return type_name in type_chain(node.type, self.custom_defs)

    def nodes_of(self, type_name: str) -> list[Any]:
        """The node templates of ``type_name`` (derived types included), in template order."""
        return [node for node in self.nodes if self.is_a(node, type_name)]

    def size(self, value: Any, unit: str, node: str, what: str) -> int:
        """Scalar-unit.size ``value`` in ``unit``, rounded up (tosca-parser ScalarUnit_Size)."""
        try:
            return scalar_size(value, unit)
        except Exception as exc:
            raise self.fail(f"{what} '{value}' is not a valid scalar-unit.size ({exc})", node) from exc

    def seconds(self, value: Any, node: str, what: str) -> int:
        """Scalar-unit.time ``value`` in seconds, rounded up (tosca-parser ScalarUnit_Time)."""
        try:
            return scalar_seconds(value)
        except Exception as exc:
            raise self.fail(f"{what} '{value}' is not a valid scalar-unit.time ({exc})", node) from exc

    def computes_and_images(self) -> tuple[list[VirtualCompute], list[SwImage]]:
        """Each Vdu.Compute's compute and software images; one VDU at least, each with an image."""
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
        """The node names that ``node``'s ``requirement`` assignments name (short or long form)."""
        targets = []
        for item in node.requirements or []:
            if isinstance(item, dict) and requirement in item:
                value = item[requirement]
                targets.append(value.get("node") if isinstance(value, dict) else value)
        return [target for target in targets if isinstance(target, str)]

    def compute(self, vdu: Any, storages: list[Any]) -> VirtualCompute:
        """The virtual compute of ``vdu``: vCPUs, memory and the root disk (local or block storage)."""
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
            if SW_IMAGE not in type_chain(artifact.get("type"), self.custom_defs):
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
        """One software image from its SwImageData properties, validated by tosca-parser."""
        if not isinstance(properties, dict):
            raise self.fail(f"{where}: image properties must be a map", node)
        values = dict(properties)
        problems = data_type_problems("tosca.datatypes.nfv.SwImageData", values, self.custom_defs)
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
        if is_url(ref):
            return None
        what = f"artifact '{artifact}' file '{ref}'"
        source = f"{self.entry}: node '{node}'"
        candidates = [path_inside(self.root, self.entry_dir, ref, what=what, source=source)]
        try:
            candidates.append(path_inside(self.root, self.root, ref, what=what, source=source))
        except AppDError:
            pass  # only meaningful when the path stays inside the package from the root too
        for path in candidates:
            if path.is_file():
                return relative_name(self.root, path)
        raise self.fail(f"{what} not found in the package", node)

    def ext_cpds(self) -> list[ExtCpd]:
        """The external CPs: every VduCp, bound to one Vdu.Compute (MEC 037 5.2.4.6)."""
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

