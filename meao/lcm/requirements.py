"""What an application asks of a MEC host: its AppD, with the overrides of the instantiate request."""

from __future__ import annotations

from typing import Any

from meao.lcm import placement


def effective_compute(appd: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The AppD's first virtual compute, overridden by the request's virtualComputeDescriptor
    (InstantiateAppRequest, table 6.2.2.7.2-1 note 1). Empty dict when the AppD has none."""
    computes = appd.get("computes") or []
    vc = dict(computes[0]) if computes else {}
    override = params.get("virtualComputeDescriptor") or {}
    cpu = (override.get("virtualCpu") or {}).get("numVirtualCpu")
    mem = (override.get("virtualMemory") or {}).get("virtualMemSize")
    if cpu:
        vc["num_vcpu"] = int(cpu)
    if mem:
        vc["memory_mb"] = int(mem)
    return vc


def flavor_size(appd: dict[str, Any], params: dict[str, Any]) -> tuple[int, int, int]:
    """(vCPU, RAM MB, disk GB) the server needs: the effective compute, never below what any of the
    AppD's software images requires (minRam, minDisk), so the flavor is never too small for the image."""
    vc = effective_compute(appd, params)
    images = appd.get("sw_images") or []
    ram = max([int(vc.get("memory_mb") or 0), *[int(i.get("min_ram_mb") or 0) for i in images]])
    disk = max([int(vc.get("disk_gb") or 0), *[int(i.get("min_disk_gb") or 0) for i in images]])
    return int(vc.get("num_vcpu") or 1), ram, disk


def _deps(items: list[dict[str, Any]] | None, name_key: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((str(i.get(name_key, "")).lower(), i.get("version") or None) for i in items or [])


def requirements(appd: dict[str, Any], request: dict[str, Any]) -> placement.AppRequirements:
    """What the AppD (and the InstantiateAppRequest) ask of a host."""
    vcpus, ram, disk = flavor_size(appd, request)
    latency = (appd.get("app_latency") or {}).get("maxLatency")
    loc = request.get("locationConstraints") or {}
    ring = None
    if isinstance(loc.get("area"), dict) and loc["area"].get("coordinates"):
        ring = tuple((float(p[0]), float(p[1])) for p in loc["area"]["coordinates"][0])
    return placement.AppRequirements(
        vcpus=vcpus, memory_mb=ram, disk_gb=disk,
        max_latency_ms=float(latency) / 1e6 if latency is not None else None,  # MEC 010-2: nanoseconds
        area=request.get("servedArea"),  # meao extension: the cell / tracking area the users are in
        services_required=_deps(appd.get("app_service_required"), "serName"),
        services_optional=_deps(appd.get("app_service_optional"), "serName"),
        features_required=_deps(appd.get("app_feature_required"), "featureName"),
        features_optional=_deps(appd.get("app_feature_optional"), "featureName"),
        networks=frozenset(c["id"] for c in appd.get("ext_cpds") or []),
        country_code=loc.get("countryCode"), area_polygon=ring)


