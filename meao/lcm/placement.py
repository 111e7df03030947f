"""MEC host selection for instantiate: a pure function over an inventory snapshot.

ETSI GS MEC 003 V3.1.1 clause 7.1.4.1 gives the MEAO the job of selecting the MEC host(s) for an
application from its requirements and the available resources, and annex A.1 (MEC in NFV) places the
MEAO in front of the NFVO, so a host here is an OpenStack edge PoP. The caller passes either the hosts
of the request's ``selectedMECHostInfo`` (ETSI GS MEC 010-2 V3.1.1 clause 6.2.2, InstantiateAppRequest)
or, where the operator enables MEAO-side selection, every host of the inventory; this module does not
care which. It does no I/O: the caller maps the AppD (MEC 010-2 clause 6.2.1.2: ``virtualComputeDescriptor``,
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
are rounded to 6 decimals; equal scores are ordered by host id, so a decision is deterministic. Hosts
that do not fit follow, fewest failed constraints first, then by host id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from meao.problems import ProblemError

#: Constraint names, in evaluation order.
CONSTRAINTS = ("capacity", "quota", "latency", "services", "features", "location", "networks")

OPTIONAL_WEIGHT = 1.0
LATENCY_WEIGHT = 0.4
CAPACITY_WEIGHT = 0.4

# Tolerance, in degrees, for a point to count as lying on a polygon edge (about 0.1 mm at the equator).
_EDGE_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class HostCapacity:
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
    capacity: HostCapacity | None


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


class NoHostFits(ProblemError):
    """No candidate MEC host satisfies the AppD and the request; the ProblemDetails lists why, per host."""

    status, title = 422, "No MEC host fits"

    def __init__(self, decision: PlacementDecision) -> None:
        super().__init__(decision.no_fit_detail(), extra={"hosts": decision.explain()["hosts"]})
        self.decision = decision


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------

# An edge of a ring with its bounding box widened by _EDGE_EPSILON: x0, y0, x1, y1, min x, max x, min y, max y.
_Edge = tuple[float, float, float, float, float, float, float, float]


def _edges(ring: Sequence[tuple[float, float]]) -> tuple[_Edge, ...]:
    """The edges of a ring, prepared once so testing many points against it is cheap."""
    n = len(ring)
    if n and ring[0] == ring[-1]:
        n -= 1
    if n < 3:
        return ()
    eps = _EDGE_EPSILON
    edges = []
    for i in range(n):
        (x0, y0), (x1, y1) = ring[i - 1], ring[i]
        edges.append((x0, y0, x1, y1, min(x0, x1) - eps, max(x0, x1) + eps, min(y0, y1) - eps, max(y0, y1) + eps))
    return tuple(edges)


def _inside(lon: float, lat: float, edges: tuple[_Edge, ...]) -> bool:
    inside = False
    for x0, y0, x1, y1, lox, hix, loy, hiy in edges:
        # On the edge counts as inside: a host exactly on the boundary is within the area.
        if (lox <= lon <= hix and loy <= lat <= hiy
                and abs((x1 - x0) * (lat - y0) - (y1 - y0) * (lon - x0)) <= _EDGE_EPSILON):
            return True
        if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def point_in_polygon(lon: float, lat: float, ring: Sequence[tuple[float, float]]) -> bool:
    """Whether (lon, lat) lies inside or on the edge of a polygon ring of (lon, lat) vertices.

    Even-odd ray casting on planar lon/lat, enough for the city- or region-sized areas of
    ``locationConstraints`` (rings crossing the antimeridian are not supported). The ring may be closed
    (GeoJSON, last vertex equal to the first) or open; fewer than three vertices enclose nothing.
    """
    return _inside(lon, lat, _edges(ring))


# --------------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------------

def _missing(required: tuple[tuple[str, str | None], ...], offered: Mapping[str, tuple[str, ...]]) -> list[str]:
    missing = []
    for name, version in required:
        versions = offered.get(name)
        if versions is None:
            missing.append(f"{name} not offered" if version is None else f"{name} {version} not offered")
        elif version is not None and version not in versions:
            missing.append(f"{name} {version} not offered (offers {', '.join(versions) or 'no version'})")
    return missing


def _matched(wanted: tuple[tuple[str, str | None], ...], offered: Mapping[str, tuple[str, ...]]) -> int:
    count = 0
    for name, version in wanted:
        versions = offered.get(name)
        if versions is not None and (version is None or version in versions):
            count += 1
    return count


def _headroom(need: int, free: int) -> float:
    return (free - need) / free if free > 0 else 0.0


class _AppChecks:
    """The constraints for one app, with what depends only on the app prepared once per ranking.

    Results whose detail depends only on the app are built once and shared by every host (they are
    immutable); only results that quote the host's own figures are built per host.
    """

    __slots__ = ("app", "capacity_ok", "edges", "features_ok", "latency_free", "location_ok", "max_text",
                 "networks_ok", "quota_ok", "quota_unknown", "services_ok")

    def __init__(self, app: AppRequirements) -> None:
        self.app = app
        self.edges = _edges(app.area_polygon) if app.area_polygon is not None else None
        self.capacity_ok = ConstraintResult("capacity", True, f"free capacity for {app.vcpus} vCPU, "
                                            f"{app.memory_mb} MB RAM, {app.disk_gb} GB disk")
        self.max_text = f"maxLatency {app.max_latency_ms:g} ms" if app.max_latency_ms is not None else ""
        self.quota_unknown = ConstraintResult("quota", True, "no quota headroom known, not checked")
        self.quota_ok = ConstraintResult("quota", True, "within quota")
        self.latency_free = ConstraintResult("latency", True, "no area and no maxLatency required")
        # Indexed by the number of optional ones matched.
        self.services_ok = self._dependency_ok("services", app.services_required, app.services_optional)
        self.features_ok = self._dependency_ok("features", app.features_required, app.features_optional)
        no_constraint = app.country_code is None and app.area_polygon is None
        self.location_ok = ConstraintResult("location", True, "no location constraints" if no_constraint
                                            else "within the location constraints")
        self.networks_ok = ConstraintResult("networks", True, f"all {len(app.networks)} external networks present")

    @staticmethod
    def _dependency_ok(kind: str, required: tuple[tuple[str, str | None], ...],
                       optional: tuple[tuple[str, str | None], ...]) -> tuple[ConstraintResult, ...]:
        base = f"{len(required)} required {kind} offered"
        if not optional:
            return (ConstraintResult(kind, True, base),)
        return tuple(ConstraintResult(kind, True, f"{base}; {k} of {len(optional)} optional offered")
                     for k in range(len(optional) + 1))

    def capacity(self, cap: HostCapacity | None) -> ConstraintResult:
        if cap is None:
            return ConstraintResult("capacity", False, "free capacity of the host is unknown")
        app = self.app
        if app.vcpus <= cap.free_vcpus and app.memory_mb <= cap.free_ram_mb and app.disk_gb <= cap.free_disk_gb:
            return self.capacity_ok
        short = []
        if app.vcpus > cap.free_vcpus:
            short.append(f"vCPU short by {app.vcpus - cap.free_vcpus} (needs {app.vcpus}, free {cap.free_vcpus})")
        if app.memory_mb > cap.free_ram_mb:
            short.append(f"RAM short by {app.memory_mb - cap.free_ram_mb} MB "
                         f"(needs {app.memory_mb} MB, free {cap.free_ram_mb} MB)")
        if app.disk_gb > cap.free_disk_gb:
            short.append(f"disk short by {app.disk_gb - cap.free_disk_gb} GB "
                         f"(needs {app.disk_gb} GB, free {cap.free_disk_gb} GB)")
        return ConstraintResult("capacity", False, "; ".join(short))

    def quota(self, cap: HostCapacity | None) -> ConstraintResult:
        if cap is None:
            return self.quota_unknown
        instances, cores, ram = cap.quota_instances_left, cap.quota_cores_left, cap.quota_ram_mb_left
        if instances is None and cores is None and ram is None:
            return self.quota_unknown
        app = self.app
        short = []
        if instances is not None and instances < 1:
            short.append(f"instance quota exhausted ({instances} left)")
        if cores is not None and app.vcpus > cores:
            short.append(f"cores quota short by {app.vcpus - cores} (needs {app.vcpus}, {cores} left)")
        if ram is not None and app.memory_mb > ram:
            short.append(f"RAM quota short by {app.memory_mb - ram} MB (needs {app.memory_mb} MB, {ram} MB left)")
        return ConstraintResult("quota", False, "; ".join(short)) if short else self.quota_ok

    def latency(self, host: MecHostView) -> tuple[ConstraintResult, float | None]:
        """The result and the latency it judged (None when none applies), for the score."""
        area, max_ms = self.app.area, self.app.max_latency_ms
        if area is not None:
            if area not in host.served_areas:
                return ConstraintResult("latency", False, f"area {area} is not served by the host"), None
            if max_ms is None:
                return ConstraintResult("latency", True, f"serves area {area}; no maxLatency required"), None
            latency = host.latency_ms.get(area)
            if latency is None:
                return ConstraintResult("latency", False, f"latency toward area {area} is unknown"), None
            toward = f"toward area {area}"
        else:
            if max_ms is None:
                return self.latency_free, None
            served = host.served_areas
            best_area, latency = None, None
            for candidate, ms in host.latency_ms.items():
                if candidate in served and (latency is None or ms < latency):
                    best_area, latency = candidate, ms
            if latency is None:
                return ConstraintResult("latency", False, "latency toward the areas the host serves is unknown"), None
            toward = f"toward its best served area {best_area} (no area requested)"
        if latency > max_ms:
            return ConstraintResult("latency", False, f"{latency:g} ms {toward} exceeds {self.max_text}"), None
        return ConstraintResult("latency", True, f"{latency:g} ms {toward} within {self.max_text}"), latency

    def dependencies(self, kind: str, required: tuple[tuple[str, str | None], ...],
                     optional: tuple[tuple[str, str | None], ...], offered: Mapping[str, tuple[str, ...]],
                     ok: tuple[ConstraintResult, ...]) -> tuple[ConstraintResult, int]:
        """Required services or features (``kind``); the result and how many optional ones match."""
        matched = _matched(optional, offered) if optional else 0
        if _matched(required, offered) == len(required):
            return ok[matched], matched
        missing = _missing(required, offered)
        opt = f"; {matched} of {len(optional)} optional offered" if optional else ""
        return ConstraintResult(kind, False, f"required {kind} missing: {'; '.join(missing)}{opt}"), matched

    def location(self, host: MecHostView) -> ConstraintResult:
        app = self.app
        problems = []
        if app.country_code is not None:
            if host.country_code is None:
                problems.append(f"country code {app.country_code} required, the host's is unknown")
            elif host.country_code.upper() != app.country_code.upper():
                problems.append(f"host is in {host.country_code}, country code {app.country_code} required")
        if self.edges is not None:
            if host.latitude is None or host.longitude is None:
                problems.append("an area is required, the host's position is unknown")
            elif not _inside(host.longitude, host.latitude, self.edges):
                problems.append(f"host position (lon {host.longitude:g}, lat {host.latitude:g}) "
                                f"is outside the requested area")
        return ConstraintResult("location", False, "; ".join(problems)) if problems else self.location_ok

    def networks(self, host: MecHostView) -> ConstraintResult:
        missing = self.app.networks - host.networks
        if missing:
            return ConstraintResult("networks", False, f"missing external networks: {', '.join(sorted(missing))}")
        return self.networks_ok

    def evaluate(self, host: MecHostView) -> tuple[HostEvaluation, int]:
        """The host's evaluation and its number of failed constraints."""
        app, cap = self.app, host.capacity
        latency_result, latency = self.latency(host)
        services_result, services_opt = self.dependencies(
            "services", app.services_required, app.services_optional, host.services, self.services_ok)
        features_result, features_opt = self.dependencies(
            "features", app.features_required, app.features_optional, host.features, self.features_ok)
        results = (self.capacity(cap), self.quota(cap), latency_result, services_result, features_result,
                   self.location(host), self.networks(host))
        failed = 0
        for result in results:
            if not result.passed:
                failed += 1
        score = 0.0
        if not failed and cap is not None:  # capacity passed, so cap is known
            max_ms = app.max_latency_ms
            latency_headroom = (max_ms - latency) / max_ms if latency is not None and max_ms else 0.0
            capacity_headroom = (_headroom(app.vcpus, cap.free_vcpus) + _headroom(app.memory_mb, cap.free_ram_mb)
                                 + _headroom(app.disk_gb, cap.free_disk_gb)) / 3
            score = round(OPTIONAL_WEIGHT * (services_opt + features_opt) + LATENCY_WEIGHT * latency_headroom
                          + CAPACITY_WEIGHT * capacity_headroom, 6)
        return HostEvaluation(host.id, not failed, score, results), failed


def evaluate_host(app: AppRequirements, host: MecHostView) -> HostEvaluation:
    """Every constraint on one host, in :data:`CONSTRAINTS` order, and its score (see the module docstring)."""
    return _AppChecks(app).evaluate(host)[0]


def rank_hosts(app: AppRequirements, hosts: Sequence[MecHostView]) -> PlacementDecision:
    """Evaluate every host against the app and rank them (MEC 003 clause 7.1.4.1); never raises.

    Fitting hosts come first, best score first, ties by host id; then the others, fewest failed
    constraints first, then by host id. ``chosen`` is the first fitting host, or None.
    """
    checks = _AppChecks(app)
    keyed = []
    for host in hosts:
        evaluation, failed = checks.evaluate(host)
        keyed.append(((failed > 0, -evaluation.score, failed, evaluation.host_id), evaluation))
    keyed.sort(key=itemgetter(0))
    ranking = tuple(evaluation for _, evaluation in keyed)
    chosen = ranking[0].host_id if ranking and ranking[0].fits else None
    return PlacementDecision(chosen, ranking)


def choose_host(app: AppRequirements, hosts: Sequence[MecHostView]) -> PlacementDecision:
    """:func:`rank_hosts`, raising :class:`NoHostFits` (422, per-host reasons) when no host fits."""
    decision = rank_hosts(app, hosts)
    if decision.chosen is None:
        raise NoHostFits(decision)
    return decision
