"""The AppD model: one typed application descriptor, whichever form it came in.

The fields follow the AppD of ETSI GS MEC 010-2 V3.1.1 clause 6.2.1 (table 6.2.1.2.2-1) with Python
names; the rule, service, feature and latency structures keep their MEC 010-2 JSON spelling (see
:mod:`meao.catalogue.appd.wire`) so the API can return them unchanged.

A package row stores the model as :meth:`AppD.to_dict` (``AppPackage.appd_model``); readers turn the
row back into an :class:`AppD` with :meth:`AppD.from_stored` and read attributes, never keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from meao.nfvo.vim import Checksum
from meao.problems import OnboardingError

FORM_TOSCA = "MEC037-TOSCA"
FORM_MEC010_2 = "MEC010-2"


class AppDError(OnboardingError):
    """The AppD is invalid; ``detail`` names the file, the node (where known) and the rule broken."""


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwImage:
        """The image from its stored form (:func:`dataclasses.asdict`)."""
        return cls(**{**data, "checksum": Checksum(**data["checksum"])})


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

    def to_dict(self) -> dict[str, Any]:
        """The stored form (``AppPackage.appd_model``): the fields by name, parts as nested dicts."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppD:
        """The AppD from its stored form; the exact inverse of :meth:`to_dict`."""
        return cls(**{**data,
                      "computes": [VirtualCompute(**item) for item in data["computes"]],
                      "sw_images": [SwImage.from_dict(item) for item in data["sw_images"]],
                      "ext_cpds": [ExtCpd(**item) for item in data["ext_cpds"]]})

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> AppD:
        """The AppD a package row stores; a row without one reads as :meth:`empty`."""
        return cls.from_dict(data) if data else cls.empty()

    @classmethod
    def empty(cls) -> AppD:
        """An AppD that asks for nothing: no compute, image, CP, rule, dependency or timeout."""
        return cls(appd_id="", app_name="", app_provider="", app_soft_version="", appd_version="",
                   mec_version=[], app_info_name=None, app_description=None, computes=[], sw_images=[],
                   ext_cpds=[], app_service_required=[], app_service_optional=[], app_feature_required=[],
                   app_feature_optional=[], app_traffic_rules=[], app_dns_rules=[], app_latency=None,
                   terminate_timeout_s=None, stop_timeout_s=None, entry_file="", source_files=[], form="")
