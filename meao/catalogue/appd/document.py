"""The MEC 010-2 AppD document (ETSI GS MEC 010-2 V3.1.1 clause 6.2.1, JSON or YAML) read into :class:`AppD`.

meao deploys applications realised by one VM, so the document must carry a virtualComputeDescriptor
(table 6.2.1.2.2-1 note 5); the rule, service, feature and latency structures are already in their
MEC 010-2 spelling and are kept as given once checked.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from meao.catalogue.appd.files import is_url, path_inside, relative_name
from meao.catalogue.appd.model import (
    FORM_MEC010_2,
    AppD,
    AppDError,
    Checksum,
    ExtCpd,
    SwImage,
    VirtualCompute,
)
from meao.catalogue.appd.tosca_parser import scalar_size

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
        if isinstance(value, bool):
            raise self.fail(f"{what} must be a number or a size such as '512 MiB', got {value!r}")
        if isinstance(value, (int, float)):
            value = f"{value} {default_unit}"
        if not isinstance(value, str) or not _SIZE_RE.match(value):
            raise self.fail(f"{what} must be a number or a size such as '512 MiB', got {value!r}")
        try:
            return scalar_size(value, unit)
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
        if not (isinstance(ref, str) and is_url(ref)):
            path = path_inside(self.root, self.root, ref, what=f"{where}swImage", source=self.entry)
            if not path.is_file():
                raise self.fail(f"{where}swImage file '{ref}' not found in the package")
            file = relative_name(self.root, path)
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


def load_mec010_2(root: Path, entry: str, document: Any) -> AppD:
    """Check the MEC 010-2 AppD ``document`` (loaded from ``entry``) and map it to :class:`AppD`."""
    return _DocumentReader(root, entry, document).appd()
