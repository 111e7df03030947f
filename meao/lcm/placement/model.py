"""What placement reads and answers: the app's requirements, the host views and the decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meao.problems import ProblemError


@dataclass(frozen=True, slots=True)
class HostHeadroom:
    """What OpenStack reports as free on the host now, and the project's quota headroom (None = unknown)."""

    free_vcpus: int
    free_ram_mb: int
    free_disk_gb: int
    quota_instances_left: int | None = None
    quota_cores_left: int | None = None
    quota_ram_mb_left: int | None = None


@dataclass(frozen=True, slots=True)
class MecHostView:
    """One MEC host of the inventory snapshot (MEC 010-2 ``MECHostInformation`` plus what the MEAO knows)."""

    id: str
    name: str
    country_code: str | None
    latitude: float | None
    longitude: float | None
    served_areas: tuple[str, ...]
    latency_ms: Mapping[str, float]
    services: Mapping[str, tuple[str, ...]]
    features: Mapping[str, tuple[str, ...]]
    networks: frozenset[str]
    capacity: HostHeadroom | None


@dataclass(frozen=True, slots=True)
class AppRequirements:
    """What the AppD (MEC 010-2 clause 6.2.1.2) and the instantiate request ask of a host.

    ``max_latency_ms`` comes from ``appLatency.maxLatency`` (given in ns by MEC 010-2; the caller converts).
    Service names are lower-cased by the caller. ``area_polygon`` is the outer ring of the GeoJSON Polygon
    of ``locationConstraints.area`` as (longitude, latitude) pairs.
    """

    vcpus: int
    memory_mb: int
    disk_gb: int
    max_latency_ms: float | None
    area: str | None
    services_required: tuple[tuple[str, str | None], ...]
    services_optional: tuple[tuple[str, str | None], ...]
    features_required: tuple[tuple[str, str | None], ...]
    features_optional: tuple[tuple[str, str | None], ...]
    networks: frozenset[str]
    country_code: str | None = None
    area_polygon: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True, slots=True)
class ConstraintResult:
    """The outcome of one constraint on one host, with a detail a person can act on."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class HostEvaluation:
    """Every constraint's outcome on one host, whether it fits and its score."""

    host_id: str
    fits: bool
    score: float
    results: tuple[ConstraintResult, ...]

    @property
    def first_failure(self) -> ConstraintResult | None:
        """The first failed constraint in evaluation order, or None when the host fits."""
        for result in self.results:
            if not result.passed:
                return result
        return None


@dataclass(frozen=True, slots=True)
class PlacementDecision:
    """The chosen host (None when none fits) and every host's evaluation, best first."""

    chosen: str | None
    ranking: tuple[HostEvaluation, ...]

    def explain(self) -> dict[str, Any]:
        """The decision as a JSON-serialisable dict: per host, fits, score and every constraint's outcome."""
        return {
            "chosen": self.chosen,
            "hosts": [
                {"hostId": ev.host_id, "fits": ev.fits, "score": ev.score,
                 "constraints": [{"name": r.name, "passed": r.passed, "detail": r.detail} for r in ev.results]}
                for ev in self.ranking
            ],
        }

    def no_fit_detail(self) -> str:
        """One line per host, ``host X: <first failed constraint>: <detail>`` (``host X: fits`` if it fits)."""
        if not self.ranking:
            return "no MEC host to choose from: the host list is empty"
        lines = []
        for ev in self.ranking:
            failure = ev.first_failure
            lines.append(f"host {ev.host_id}: fits" if failure is None
                         else f"host {ev.host_id}: {failure.name}: {failure.detail}")
        return "\n".join(lines)


class NoHostFits(ProblemError, status=422, title="No MEC host fits"):
    """No candidate MEC host satisfies the AppD and the request; the ProblemDetails lists why, per host."""

    def __init__(self, decision: PlacementDecision) -> None:
        super().__init__(decision.no_fit_detail(), extra={"hosts": decision.explain()["hosts"]})
        self.decision = decision
