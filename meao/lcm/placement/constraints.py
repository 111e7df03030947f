"""The constraints of placement, evaluated per host, and the ranking they give (see the package docstring)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from operator import itemgetter

from meao.lcm.placement.geometry import inside, ring_edges
from meao.lcm.placement.model import (
    AppRequirements,
    ConstraintResult,
    HostEvaluation,
    HostHeadroom,
    MecHostView,
    NoHostFits,
    PlacementDecision,
)

#: Constraint names, in evaluation order.
CONSTRAINTS = ("capacity", "quota", "latency", "services", "features", "location", "networks")

OPTIONAL_WEIGHT = 1.0
LATENCY_WEIGHT = 0.4
CAPACITY_WEIGHT = 0.4


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
        self.edges = ring_edges(app.area_polygon) if app.area_polygon is not None else None
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

    def capacity(self, cap: HostHeadroom | None) -> ConstraintResult:
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

    def quota(self, cap: HostHeadroom | None) -> ConstraintResult:
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
            elif not inside(host.longitude, host.latitude, self.edges):
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


def rank_hosts(app: AppRequirements, hosts: Sequence[MecHostView], preferred: Collection[str] = ()) -> PlacementDecision:
    """Evaluate every host against the app and rank them (MEC 003 clause 7.1.4.1); never raises.

    Fitting hosts come first: the ``preferred`` ones (the OSS's selectedMECHostInfo, a preference on
    Mm1), then the others, each best score first, ties by host id; then the hosts that do not fit,
    fewest failed constraints first, then by host id. ``chosen`` is the first fitting host, or None.
    """
    checks = _AppChecks(app)
    keyed = []
    for host in hosts:
        evaluation, failed = checks.evaluate(host)
        unpreferred = failed == 0 and evaluation.host_id not in preferred
        keyed.append(((failed > 0, unpreferred, -evaluation.score, failed, evaluation.host_id), evaluation))
    keyed.sort(key=itemgetter(0))
    ranking = tuple(evaluation for _, evaluation in keyed)
    chosen = ranking[0].host_id if ranking and ranking[0].fits else None
    return PlacementDecision(chosen, ranking)


def best_host(app: AppRequirements, hosts: Sequence[MecHostView], preferred: Collection[str] = ()) -> PlacementDecision:
    """:func:`rank_hosts`, raising :class:`NoHostFits` (422, per-host reasons) when no host fits."""
    decision = rank_hosts(app, hosts, preferred)
    if decision.chosen is None:
        raise NoHostFits(decision)
    return decision
