"""What an AppD asks of a host (meao/lcm/requirements.py), the instantiate request's overrides applied."""

from __future__ import annotations

from meao.catalogue.appd import AppD, VirtualCompute
from meao.lcm.requirements import effective_compute, flavor_size, requirements

OVERRIDE = {"virtualComputeDescriptor": {"virtualCpu": {"numVirtualCpu": 4}, "virtualMemory": {"virtualMemSize": 8192}}}


def _appd_with_compute() -> AppD:
    appd = AppD.empty()
    appd.computes = [VirtualCompute(vdu_id="vdu", name="vdu", num_vcpu=2, memory_mb=2048, disk_gb=10)]
    return appd


def test_request_override_replaces_vcpus_and_memory_without_changing_the_appd() -> None:
    appd = _appd_with_compute()

    vc = effective_compute(appd, OVERRIDE)

    assert (vc.vdu_id, vc.num_vcpu, vc.memory_mb, vc.disk_gb) == ("vdu", 4, 8192, 10)
    assert (appd.computes[0].num_vcpu, appd.computes[0].memory_mb) == (2, 2048)
    assert flavor_size(appd, OVERRIDE) == (4, 8192, 10)
    assert flavor_size(appd, {}) == (2, 2048, 10)


def test_appd_without_compute_asks_for_one_vcpu_or_what_the_request_overrides() -> None:
    appd = AppD.empty()

    assert effective_compute(appd, OVERRIDE) is None
    assert flavor_size(appd, {}) == (1, 0, 0)
    assert flavor_size(appd, OVERRIDE) == (4, 8192, 0)


def test_package_without_an_appd_requires_no_service_feature_latency_or_network() -> None:
    needs = requirements(AppD.from_stored(None), {})

    assert (needs.vcpus, needs.memory_mb, needs.disk_gb, needs.max_latency_ms) == (1, 0, 0, None)
    assert (needs.services_required, needs.features_required, needs.networks) == ((), (), frozenset())
