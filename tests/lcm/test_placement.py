"""Unit tests of MEC host selection (MEC 003 clause 7.1.4.1): constraints, score, ranking and explanation."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from meao.lcm.placement import (
    CONSTRAINTS,
    AppRequirements,
    HostHeadroom,
    MecHostView,
    NoHostFits,
    PlacementDecision,
    best_host,
    evaluate_host,
    point_in_polygon,
    rank_hosts,
)

SQUARE = ((11.0, 48.0), (12.0, 48.0), (12.0, 49.0), (11.0, 49.0), (11.0, 48.0))

APP = AppRequirements(
    vcpus=2, memory_mb=4096, disk_gb=20, max_latency_ms=10.0, area="ta-001",
    services_required=(("rnis", "2.1.1"),), services_optional=(("bwmservice", None),),
    features_required=(("UserApps", None),), features_optional=(),
    networks=frozenset({"mec-data"}), country_code="DE", area_polygon=SQUARE)

HOST = MecHostView(
    id="h1", name="edge-1", country_code="DE", latitude=48.5, longitude=11.5,
    served_areas=("ta-001", "ta-002"), latency_ms={"ta-001": 4.0, "ta-002": 8.0},
    services={"rnis": ("2.1.1",)}, features={"UserApps": ("1",)},
    networks=frozenset({"mec-data", "internet"}), capacity=HostHeadroom(8, 16384, 100))


def host(**changes: Any) -> MecHostView:
    return replace(HOST, **changes)


def app(**changes: Any) -> AppRequirements:
    return replace(APP, **changes)


# (app changes, host changes, constraint, passed, text the detail contains)
CONSTRAINT_CASES = [
    pytest.param({}, {}, "capacity", True, "free capacity for 2 vCPU, 4096 MB RAM, 20 GB disk",
                 id="capacity-fits"),
    pytest.param({}, {"capacity": HostHeadroom(1, 16384, 100)}, "capacity", False,
                 "vCPU short by 1 (needs 2, free 1)", id="capacity-vcpu-short"),
    pytest.param({}, {"capacity": HostHeadroom(8, 1024, 100)}, "capacity", False,
                 "RAM short by 3072 MB (needs 4096 MB, free 1024 MB)", id="capacity-ram-short"),
    pytest.param({}, {"capacity": HostHeadroom(8, 16384, 5)}, "capacity", False,
                 "disk short by 15 GB (needs 20 GB, free 5 GB)", id="capacity-disk-short"),
    pytest.param({}, {"capacity": HostHeadroom(0, 0, 0)}, "capacity", False,
                 "vCPU short by 2 (needs 2, free 0); RAM short by 4096 MB (needs 4096 MB, free 0 MB); "
                 "disk short by 20 GB", id="capacity-every-resource-short-is-named"),
    pytest.param({}, {"capacity": HostHeadroom(2, 4096, 20)}, "capacity", True, "free capacity",
                 id="capacity-exactly-enough-fits"),
    pytest.param({}, {"capacity": None}, "capacity", False, "free capacity of the host is unknown",
                 id="capacity-unknown-fails"),
    pytest.param({}, {}, "quota", True, "no quota headroom known, not checked", id="quota-unknown-not-checked"),
    pytest.param({}, {"capacity": None}, "quota", True, "not checked", id="quota-with-unknown-capacity"),
    pytest.param({}, {"capacity": HostHeadroom(8, 16384, 100, 1, 2, 4096)}, "quota", True, "within quota",
                 id="quota-exactly-enough"),
    pytest.param({}, {"capacity": HostHeadroom(8, 16384, 100, quota_instances_left=0)}, "quota", False,
                 "instance quota exhausted (0 left)", id="quota-instances-exhausted"),
    pytest.param({}, {"capacity": HostHeadroom(8, 16384, 100, quota_cores_left=1)}, "quota", False,
                 "cores quota short by 1 (needs 2, 1 left)", id="quota-cores-short"),
    pytest.param({}, {"capacity": HostHeadroom(8, 16384, 100, quota_ram_mb_left=2048)}, "quota", False,
                 "RAM quota short by 2048 MB (needs 4096 MB, 2048 MB left)", id="quota-ram-short"),
    pytest.param({}, {}, "latency", True, "4 ms toward area ta-001 within maxLatency 10 ms", id="latency-within"),
    pytest.param({}, {"latency_ms": {"ta-001": 10.0}}, "latency", True, "10 ms toward area ta-001 within",
                 id="latency-equal-to-max-fits"),
    pytest.param({}, {"latency_ms": {"ta-001": 12.5}}, "latency", False,
                 "12.5 ms toward area ta-001 exceeds maxLatency 10 ms", id="latency-exceeded"),
    pytest.param({"area": "ta-009"}, {}, "latency", False, "area ta-009 is not served by the host",
                 id="latency-area-not-served"),
    pytest.param({"area": "ta-009", "max_latency_ms": None}, {}, "latency", False,
                 "area ta-009 is not served by the host", id="latency-area-not-served-without-max"),
    pytest.param({"max_latency_ms": None}, {}, "latency", True, "serves area ta-001; no maxLatency required",
                 id="latency-area-served-without-max"),
    pytest.param({}, {"latency_ms": {"ta-002": 3.0}}, "latency", False, "latency toward area ta-001 is unknown",
                 id="latency-toward-area-unknown"),
    pytest.param({"area": None}, {"latency_ms": {"ta-001": 15.0, "ta-002": 8.0}}, "latency", True,
                 "8 ms toward its best served area ta-002 (no area requested) within maxLatency 10 ms",
                 id="latency-without-area-uses-best-served-area"),
    pytest.param({"area": None}, {"latency_ms": {"ta-001": 15.0, "ta-002": 12.0}}, "latency", False,
                 "12 ms toward its best served area ta-002 (no area requested) exceeds maxLatency 10 ms",
                 id="latency-without-area-best-too-slow"),
    pytest.param({"area": None}, {"latency_ms": {"ta-009": 1.0, "ta-001": 4.0}}, "latency", True,
                 "4 ms toward its best served area ta-001", id="latency-without-area-ignores-unserved-areas"),
    pytest.param({"area": None}, {"latency_ms": {}}, "latency", False,
                 "latency toward the areas the host serves is unknown", id="latency-without-area-none-known"),
    pytest.param({"area": None, "max_latency_ms": None}, {"latency_ms": {}}, "latency", True,
                 "no area and no maxLatency required", id="latency-no-requirement"),
    pytest.param({}, {}, "services", True, "1 required services offered; 0 of 1 optional offered",
                 id="services-required-offered"),
    pytest.param({}, {"services": {}}, "services", False, "required services missing: rnis 2.1.1 not offered",
                 id="services-missing"),
    pytest.param({}, {"services": {"rnis": ("1.1.1", "2.2.1")}}, "services", False,
                 "rnis 2.1.1 not offered (offers 1.1.1, 2.2.1)", id="services-other-version-only"),
    pytest.param({"services_required": (("rnis", None),)}, {"services": {"rnis": ("1.1.1",)}}, "services", True,
                 "1 required services offered", id="services-no-version-matches-any"),
    pytest.param({"services_required": (("rnis", None), ("locationservice", None))}, {"services": {}},
                 "services", False, "rnis not offered; locationservice not offered", id="services-each-missing-named"),
    pytest.param({}, {"services": {"rnis": ("2.1.1",)}, "features": {}}, "services", True, "offered",
                 id="services-pass-independently-of-features"),
    pytest.param({}, {}, "features", True, "1 required features offered", id="features-required-offered"),
    pytest.param({}, {"features": {}}, "features", False, "required features missing: UserApps not offered",
                 id="features-missing"),
    pytest.param({"features_required": (("UserApps", "2"),)}, {}, "features", False,
                 "UserApps 2 not offered (offers 1)", id="features-other-version-only"),
    pytest.param({}, {}, "location", True, "within the location constraints", id="location-within"),
    pytest.param({"country_code": None, "area_polygon": None}, {"country_code": None, "latitude": None},
                 "location", True, "no location constraints", id="location-none-requested"),
    pytest.param({"country_code": "de"}, {}, "location", True, "within", id="location-country-case-insensitive"),
    pytest.param({}, {"country_code": "AT"}, "location", False, "host is in AT, country code DE required",
                 id="location-other-country"),
    pytest.param({}, {"country_code": None}, "location", False, "country code DE required, the host's is unknown",
                 id="location-country-unknown"),
    pytest.param({}, {"longitude": 13.0}, "location", False,
                 "host position (lon 13, lat 48.5) is outside the requested area", id="location-outside-area"),
    pytest.param({}, {"latitude": None}, "location", False, "an area is required, the host's position is unknown",
                 id="location-position-unknown"),
    pytest.param({"area_polygon": None}, {"latitude": None}, "location", True, "within",
                 id="location-country-only-needs-no-position"),
    pytest.param({}, {}, "networks", True, "all 1 external networks present", id="networks-present"),
    pytest.param({"networks": frozenset({"mec-data", "ran-n6"})}, {}, "networks", False,
                 "missing external networks: ran-n6", id="networks-one-missing"),
    pytest.param({"networks": frozenset({"ran-n6", "mec-data"})}, {"networks": frozenset()}, "networks", False,
                 "missing external networks: mec-data, ran-n6", id="networks-all-missing-sorted"),
    pytest.param({"networks": frozenset()}, {"networks": frozenset()}, "networks", True,
                 "all 0 external networks present", id="networks-none-needed"),
]


@pytest.mark.parametrize(("app_changes", "host_changes", "constraint", "passed", "detail"), CONSTRAINT_CASES)
def test_constraint_passes_or_fails_with_a_detail_that_says_why(app_changes: dict[str, Any],
                                                                 host_changes: dict[str, Any], constraint: str,
                                                                 passed: bool, detail: str) -> None:
    evaluation = evaluate_host(app(**app_changes), host(**host_changes))
    [result] = [r for r in evaluation.results if r.name == constraint]
    assert result.passed is passed
    assert detail in result.detail
    # A host fits only when every constraint passes; a host that does not fit scores 0.
    assert evaluation.fits is all(r.passed for r in evaluation.results)
    if not passed:
        assert not evaluation.fits and evaluation.score == 0.0


def test_baseline_host_fits() -> None:
    evaluation = evaluate_host(APP, HOST)
    assert evaluation.fits and evaluation.first_failure is None


def test_every_constraint_is_evaluated_in_order_even_after_a_failure() -> None:
    hopeless = host(capacity=HostHeadroom(0, 0, 0, 0, 0, 0), served_areas=(), services={}, features={},
                    country_code="FR", networks=frozenset())
    evaluation = evaluate_host(APP, hopeless)
    assert tuple(r.name for r in evaluation.results) == CONSTRAINTS
    assert not any(r.passed for r in evaluation.results)
    assert evaluation.first_failure is not None and evaluation.first_failure.name == "capacity"


def test_unknown_capacity_fails_the_host_but_the_other_constraints_are_still_reported() -> None:
    decision = rank_hosts(APP, [host(capacity=None)])
    [evaluation] = decision.ranking
    assert decision.chosen is None
    assert [r.name for r in evaluation.results if not r.passed] == ["capacity"]
    assert decision.no_fit_detail() == "host h1: capacity: free capacity of the host is unknown"


# (lon, lat, ring, inside)
DIAMOND = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))
U_SHAPE = ((0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (2.0, 3.0), (2.0, 1.0), (1.0, 1.0), (1.0, 3.0), (0.0, 3.0))


@pytest.mark.parametrize(("lon", "lat", "ring", "inside"), [
    pytest.param(11.5, 48.5, SQUARE, True, id="centre"),
    pytest.param(12.5, 48.5, SQUARE, False, id="east-of-square"),
    pytest.param(11.5, 47.5, SQUARE, False, id="south-of-square"),
    pytest.param(12.0, 48.5, SQUARE, True, id="on-vertical-edge"),
    pytest.param(11.5, 48.0, SQUARE, True, id="on-horizontal-edge"),
    pytest.param(11.0, 49.0, SQUARE, True, id="on-vertex"),
    pytest.param(12.0 + 1e-6, 48.5, SQUARE, False, id="just-outside-edge"),
    pytest.param(11.5, 48.5, SQUARE[:-1], True, id="open-ring-is-closed-implicitly"),
    pytest.param(-0.5, 0.0, DIAMOND, True, id="ray-through-vertices-inside"),
    pytest.param(-2.0, 0.0, DIAMOND, False, id="ray-through-vertices-outside"),
    pytest.param(0.5, 0.5, DIAMOND, True, id="on-slanted-edge"),
    pytest.param(1.5, 2.0, U_SHAPE, False, id="concave-notch-is-outside"),
    pytest.param(0.5, 2.0, U_SHAPE, True, id="concave-arm-is-inside"),
    pytest.param(1.5, 1.0, U_SHAPE, True, id="concave-notch-floor-edge"),
    pytest.param(0.0, 0.0, (), False, id="empty-ring"),
    pytest.param(0.5, 0.0, ((0.0, 0.0), (1.0, 0.0)), False, id="two-vertices-enclose-nothing"),
    pytest.param(0.5, 0.0, ((0.0, 0.0), (1.0, 0.0), (0.0, 0.0)), False, id="closed-two-vertices"),
])
def test_point_in_polygon(lon: float, lat: float, ring: tuple[tuple[float, float], ...], inside: bool) -> None:
    assert point_in_polygon(lon, lat, ring) is inside


def test_score_is_latency_and_capacity_headroom_weighted() -> None:
    # latency headroom (10 - 4) / 10 = 0.6; capacity headroom mean(6/8, 12288/16384, 80/100) = 0.766667
    assert evaluate_host(APP, HOST).score == pytest.approx(0.4 * 0.6 + 0.4 * (0.75 + 0.75 + 0.8) / 3, abs=1e-6)


@pytest.mark.parametrize(("app_changes", "offered", "bonus"), [
    pytest.param({}, {"services": {"rnis": ("2.1.1",), "bwmservice": ("2.2.1",)}}, 1.0,
                 id="optional-service-any-version"),
    pytest.param({"services_optional": (("bwmservice", "2.2.1"), ("uemobility", None))},
                 {"services": {"rnis": ("2.1.1",), "bwmservice": ("2.2.1",), "uemobility": ("1",)}}, 2.0,
                 id="two-optional-services"),
    pytest.param({"services_optional": (("bwmservice", "1.1.1"),)},
                 {"services": {"rnis": ("2.1.1",), "bwmservice": ("2.2.1",)}}, 0.0,
                 id="optional-service-other-version-does-not-count"),
    pytest.param({"features_optional": (("UEIdentity", None),)},
                 {"features": {"UserApps": ("1",), "UEIdentity": ("1",)}}, 1.0, id="optional-feature"),
])
def test_matched_optional_dependencies_raise_the_score_by_one_each(app_changes: dict[str, Any],
                                                                   offered: dict[str, Any], bonus: float) -> None:
    wanted = app(**app_changes)
    plain, rich = evaluate_host(wanted, host(id="plain")), evaluate_host(wanted, host(id="rich", **offered))
    assert plain.fits and rich.fits
    assert rich.score - plain.score == pytest.approx(bonus, abs=1e-6)


def test_optional_service_outweighs_any_headroom() -> None:
    tight = host(id="tight", capacity=HostHeadroom(2, 4096, 20), latency_ms={"ta-001": 10.0},
                 services={"rnis": ("2.1.1",), "bwmservice": ("1",)})
    roomy = host(id="roomy", capacity=HostHeadroom(1000, 10**7, 10**5), latency_ms={"ta-001": 0.0})
    assert rank_hosts(APP, [roomy, tight]).chosen == "tight"


@pytest.mark.parametrize(("better", "worse"), [
    pytest.param({"latency_ms": {"ta-001": 2.0}}, {"latency_ms": {"ta-001": 9.0}}, id="lower-latency"),
    pytest.param({"capacity": HostHeadroom(32, 65536, 400)}, {"capacity": HostHeadroom(4, 8192, 40)},
                 id="more-free-capacity-spreads-load"),
])
def test_more_headroom_ranks_first(better: dict[str, Any], worse: dict[str, Any]) -> None:
    # The worse host gets the lower id, so only the score can put the better one first.
    decision = rank_hosts(APP, [host(id="a", **worse), host(id="b", **better)])
    assert [ev.host_id for ev in decision.ranking] == ["b", "a"]
    assert decision.chosen == "b"


@pytest.mark.parametrize("order", list(itertools.permutations(["c", "a", "b"])), ids="-".join)
def test_equal_scores_are_ordered_by_host_id_whatever_the_input_order(order: tuple[str, ...]) -> None:
    decision = rank_hosts(APP, [host(id=host_id) for host_id in order])
    assert [ev.host_id for ev in decision.ranking] == ["a", "b", "c"]
    assert decision.chosen == "a"


def test_ranking_puts_fitting_hosts_by_score_then_others_by_fewest_failures_then_id() -> None:
    hosts = [
        host(id="z-two-failures", country_code="AT", networks=frozenset()),
        host(id="y-one-failure", services={}),
        host(id="x-one-failure", capacity=None),
        host(id="w-fits", latency_ms={"ta-001": 9.0}),
        host(id="v-fits-best", services={"rnis": ("2.1.1",), "bwmservice": ("1",)}),
    ]
    decision = rank_hosts(APP, hosts)
    assert [ev.host_id for ev in decision.ranking] == [
        "v-fits-best", "w-fits", "x-one-failure", "y-one-failure", "z-two-failures"]
    assert [ev.fits for ev in decision.ranking] == [True, True, False, False, False]
    assert decision.chosen == "v-fits-best"


def test_no_fit_detail_names_each_hosts_first_failed_constraint() -> None:
    hosts = [host(id="h1", capacity=HostHeadroom(1, 16384, 100), country_code="AT"),
             host(id="h2", latency_ms={"ta-001": 25.0}, networks=frozenset()),
             host(id="h3", networks=frozenset())]
    decision = rank_hosts(APP, hosts)
    assert decision.chosen is None
    assert decision.no_fit_detail().splitlines() == [
        "host h3: networks: missing external networks: mec-data",
        "host h1: capacity: vCPU short by 1 (needs 2, free 1)",
        "host h2: latency: 25 ms toward area ta-001 exceeds maxLatency 10 ms",
    ]


def test_choose_host_without_a_fitting_host_raises_422_with_per_host_reasons() -> None:
    hosts = [host(id="h1", capacity=None), host(id="h2", services={"rnis": ("1.1.1",)})]
    with pytest.raises(NoHostFits) as err:
        best_host(APP, hosts)
    problem = err.value.to_problem()
    assert problem["status"] == 422 and problem["title"] == "No MEC host fits"
    assert problem["detail"] == err.value.decision.no_fit_detail()
    assert "host h1: capacity: free capacity of the host is unknown" in problem["detail"]
    assert "host h2: services: required services missing: rnis 2.1.1 not offered (offers 1.1.1)" in problem["detail"]
    by_host = {h["hostId"]: h for h in problem["hosts"]}
    assert set(by_host) == {"h1", "h2"}
    assert [c["name"] for c in by_host["h2"]["constraints"]] == list(CONSTRAINTS)
    unknown = {"name": "capacity", "passed": False, "detail": "free capacity of the host is unknown"}
    assert unknown in by_host["h1"]["constraints"]
    json.dumps(problem)


def test_choose_host_from_no_hosts_raises_saying_the_list_is_empty() -> None:
    with pytest.raises(NoHostFits, match="host list is empty"):
        best_host(APP, [])
    assert rank_hosts(APP, []) == PlacementDecision(None, ())


def test_choose_host_returns_the_best_fitting_host() -> None:
    decision = best_host(APP, [host(id="h1", capacity=None), host(id="h2")])
    assert decision.chosen == "h2"


def test_explanation_is_json_serialisable_and_lists_every_constraint_per_host() -> None:
    decision = rank_hosts(APP, [host(id="h1"), host(id="h2", features={})])
    explained = json.loads(json.dumps(decision.explain()))
    assert explained["chosen"] == "h1"
    assert [(h["hostId"], h["fits"]) for h in explained["hosts"]] == [("h1", True), ("h2", False)]
    assert explained["hosts"][0]["score"] == decision.ranking[0].score
    assert explained["hosts"][1]["constraints"][4] == {
        "name": "features", "passed": False, "detail": "required features missing: UserApps not offered"}


def test_ranking_does_not_depend_on_earlier_calls() -> None:
    first = rank_hosts(APP, [host(id="h1"), host(id="h2", capacity=None)])
    rank_hosts(app(area=None, country_code=None), [host(id="h3")])
    assert rank_hosts(APP, [host(id="h1"), host(id="h2", capacity=None)]) == first
