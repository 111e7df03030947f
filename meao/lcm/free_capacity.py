"""What a MEC host has free now: its cloud's capacity in the host's zone and the project's quota.

Serves GET /ops/v1/mec_hosts/{hostId}/capacity; the capacity is cached briefly (``meao.lcm.selection``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meao.db.models import MecHost
from meao.lcm import hosts, placement, selection
from meao.nfvo.vim import Capacity, ComputeNodeCapacity, VimError, VimNotConfigured
from meao.problems import ProblemError


@dataclass(frozen=True)
class FreeCapacity:
    """A host's free capacity: its cloud's reading, the best compute host of its zone and that zone's hosts."""

    host: MecHost
    capacity: Capacity
    best: placement.HostHeadroom | None
    compute_hosts: list[ComputeNodeCapacity]
    observed: datetime
    cached: bool


def free_capacity(host_id: str, *, refresh: bool = False) -> FreeCapacity:
    """The free capacity of MEC host ``host_id`` (``refresh``: read the cloud now, not the cache).

    NotFound for an unknown host; 409 when its cloud is not configured; 503 when the cloud does not answer.
    """
    host = hosts.read_host(host_id)
    try:
        cap, observed, cached = selection.cloud_capacity_entry(host.cloud, refresh=refresh)
    except VimNotConfigured:
        raise  # 409: the host names a cloud clouds.yaml lacks; the detail says what to fix
    except VimError as exc:
        raise ProblemError(f"the cloud {host.cloud} of MEC host {host_id} does not answer: {exc.detail}",
                           status=503, title="VIM unavailable") from exc
    zone = host.availability_zone
    return FreeCapacity(host=host, capacity=cap, best=selection.host_capacity(host),
                        compute_hosts=[h for h in cap.hosts if not zone or h.availability_zone == zone],
                        observed=observed, cached=cached)
