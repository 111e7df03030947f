"""What an application asks of a MEC host: its AppD, with the overrides of the instantiate request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from meao.catalogue.appd import AppD, VirtualCompute
from meao.lcm import placement


def _compute_override(params: dict[str, Any]) -> tuple[int | None, int | None]:
    """(vCPUs, memory MiB) the request's virtualComputeDescriptor sets; None where it sets nothing."""
    override = params.get("virtualComputeDescriptor") or {}
    cpu = (override.get("virtualCpu") or {}).get("numVirtualCpu")
    mem = (override.get("virtualMemory") or {}).get("virtualMemSize")
    return (int(cpu) if cpu else None, int(mem) if mem else None)


def effective_compute(appd: AppD, params: dict[str, Any]) -> VirtualCompute | None:
    """The AppD's first virtual compute, overridden by the request's virtualComputeDescriptor
    (InstantiateAppRequest, table 6.2.2.7.2-1 note 1). None when the AppD has none."""
    if not appd.computes:
        return None
    vc = appd.computes[0]
    cpu, mem = _compute_override(params)
    return replace(vc, num_vcpu=vc.num_vcpu if cpu is None else cpu,
                   memory_mb=vc.memory_mb if mem is None else mem)


def flavor_size(appd: AppD, params: dict[str, Any]) -> tuple[int, int, int]:
    """(vCPU, RAM MB, disk GB) the server needs: the effective compute, never below what any of the
    AppD's software images requires (minRam, minDisk), so the flavor is never too small for the image.
    An AppD without a compute asks for what the request overrides, else 1 vCPU and no RAM or disk."""
    vc = effective_compute(appd, params)
    if vc is None:
        vcpus, memory_mb = _compute_override(params)
        disk_gb = 0
    else:
        vcpus, memory_mb, disk_gb = vc.num_vcpu, vc.memory_mb, vc.disk_gb
    ram = max([int(memory_mb or 0), *[int(i.min_ram_mb or 0) for i in appd.sw_images]])
    disk = max([int(disk_gb or 0), *[int(i.min_disk_gb or 0) for i in appd.sw_images]])
    return int(vcpus or 1), ram, disk


def _deps(items: list[dict[str, Any]] | None, name_key: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((str(i.get(name_key, "")).lower(), i.get("version") or None) for i in items or [])


def requirements(appd: AppD, request: dict[str, Any]) -> placement.AppRequirements:
    """What the AppD (and the InstantiateAppRequest) ask of a host."""
    vcpus, ram, disk = flavor_size(appd, request)
    latency = (appd.app_latency or {}).get("maxLatency")
    loc = request.get("locationConstraints") or {}
    ring = None
    if isinstance(loc.get("area"), dict) and loc["area"].get("coordinates"):
        ring = tuple((float(p[0]), float(p[1])) for p in loc["area"]["coordinates"][0])
    return placement.AppRequirements(
        vcpus=vcpus, memory_mb=ram, disk_gb=disk,
        max_latency_ms=float(latency) / 1e6 if latency is not None else None,  # MEC 010-2: nanoseconds
        area=request.get("servedArea"),  # meao extension: the cell / tracking area the users are in
        services_required=_deps(appd.app_service_required, "serName"),
        services_optional=_deps(appd.app_service_optional, "serName"),
        features_required=_deps(appd.app_feature_required, "featureName"),
        features_optional=_deps(appd.app_feature_optional, "featureName"),
        networks=frozenset(c.id for c in appd.ext_cpds),
        country_code=loc.get("countryCode"), area_polygon=ring)


