"""Free capacity from Placement inventories and usages, and quota headroom from quota usage.

Pure functions over the numbers the VIM returns, so host selection logic is testable without a VIM.
Placement's rule: usable = (total - reserved) * allocation_ratio; one allocation at most max_unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meao.nfvo.vim import ComputeNodeCapacity, QuotaHeadroom

DEFAULT_ZONE = "nova"  # Nova's default availability zone for hosts in no zone aggregate


def free_of(inventory: Mapping[str, Any] | None, used: int) -> tuple[int, int]:
    """(free, max_unit) of one resource class; (0, 0) when the host has none of it."""
    if not inventory:
        return 0, 0
    usable = int((inventory["total"] - inventory.get("reserved", 0)) * inventory.get("allocation_ratio", 1.0))
    return max(usable - used, 0), int(inventory.get("max_unit", usable))


def host_capacity(host: str, zone: str, inventories: Mapping[str, Mapping[str, Any]],
                  usages: Mapping[str, int]) -> ComputeNodeCapacity:
    """One host's free VCPU, MEMORY_MB and DISK_GB from its resource provider's data."""
    vcpu, max_vcpu = free_of(inventories.get("VCPU"), usages.get("VCPU", 0))
    ram, max_ram = free_of(inventories.get("MEMORY_MB"), usages.get("MEMORY_MB", 0))
    disk, max_disk = free_of(inventories.get("DISK_GB"), usages.get("DISK_GB", 0))
    return ComputeNodeCapacity(host=host, availability_zone=zone, vcpu=vcpu, ram_mb=ram, disk_gb=disk,
                               max_vcpu=max_vcpu, max_ram_mb=max_ram, max_disk_gb=max_disk)


def headroom(limit: int | None, used: int) -> int | None:
    """What is left of a quota; None when unlimited (Nova and Neutron write -1)."""
    if limit is None or limit < 0:
        return None
    return max(limit - used, 0)


def quota_headroom(compute: Mapping[str, tuple[int | None, int]],
                   network: Mapping[str, tuple[int | None, int]]) -> QuotaHeadroom:
    """From (limit, in use) pairs: Nova's instances/cores/ram and Neutron's port."""
    def left(source: Mapping[str, tuple[int | None, int]], key: str) -> int | None:
        limit, used = source.get(key, (None, 0))
        return headroom(limit, used)
    return QuotaHeadroom(instances=left(compute, "instances"), vcpu=left(compute, "cores"),
                         ram_mb=left(compute, "ram"), ports=left(network, "port"))
