"""Placement: ranking MEC hosts against an application's requirements, a pure function (no I/O).

ETSI GS MEC 003 V3.1.1 clause 7.1.4.1 gives the MEAO the job of selecting the MEC host(s) for an
application from its requirements and the available resources, and annex A.1 (MEC in NFV) places the
MEAO in front of the NFVO, so a host here is an OpenStack edge PoP. The caller passes every host of the
inventory and, as ``preferred``, the known hosts of the request's ``selectedMECHostInfo``: on Mm1 that
attribute is at most a preference (ETSI GS MEC 010-2 V3.1.1 table 6.2.2.7.2-1, note 2: it applies to Mm3
only), so a preferred host that fits ranks before the other fitting hosts. It does no I/O: the caller maps the AppD (MEC 010-2 clause 6.2.1.2: ``virtualComputeDescriptor``,
``appLatency``, ``appServiceRequired``, ``appServiceOptional``, ``appFeatureRequired``,
``appFeatureOptional``, ``appExtCpd``) and the request's ``locationConstraints`` to
:class:`AppRequirements`, and the inventory to :class:`MecHostView`.

Constraints, evaluated in this order for every host, never short-circuited so the explanation is
complete (a host fits when all pass):

``capacity``  vCPU, RAM and disk needed vs free now; fails naming each short resource and by how much,
              and fails when the host's capacity is unknown.
``quota``     instance, core and RAM quota headroom, each only when known.
``latency``   a requested ``area`` must be served by the host; with ``max_latency_ms`` the host's latency
              toward that area must be <= the maximum. With a maximum but no area, the host's best
              latency toward any area it serves is used (the users' location is unknown, so the host must
              at least be that close to somebody it serves).
``services``  every required MEP service by name, at the given version (``None`` = any version).
``features``  every required feature, same matching.
``location``  ``locationConstraints.countryCode`` equals the host's (case-insensitive), and the host's
              position lies inside ``locationConstraints.area`` (:func:`point_in_polygon`).
``networks``  every external network the AppD's external CPs need is offered by the host.

Score (only meaningful for fitting hosts; a host that does not fit scores 0)::

    score = optional_matched + 0.4 * latency_headroom + 0.4 * capacity_headroom

``optional_matched`` counts optional services and features the host offers at a matching version;
``latency_headroom`` is ``(max - latency) / max`` (0 without a maximum); ``capacity_headroom`` is the mean,
over vCPU, RAM and disk, of the fraction still free after placement (prefers emptier hosts, spreading
load). Both headroom terms lie in [0, 1], so one optional match outweighs any headroom difference. Scores
are rounded to 6 decimals; equal scores are ordered by host id, so a decision is deterministic. Preferred
fitting hosts come before the other fitting hosts whatever their scores. Hosts that do not fit follow,
fewest failed constraints first, then by host id.
"""

from meao.lcm.placement.constraints import CONSTRAINTS, best_host, evaluate_host, rank_hosts
from meao.lcm.placement.geometry import point_in_polygon
from meao.lcm.placement.model import (
    AppRequirements,
    HostHeadroom,
    MecHostView,
    NoHostFits,
    PlacementDecision,
)

__all__ = ["CONSTRAINTS", "AppRequirements", "HostHeadroom", "MecHostView", "NoHostFits", "PlacementDecision",
           "best_host", "evaluate_host", "point_in_polygon", "rank_hosts"]
