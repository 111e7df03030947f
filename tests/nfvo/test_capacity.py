"""Capacity arithmetic over Placement numbers (no VIM needed)."""

from meao.nfvo.capacity import free_of, headroom, host_capacity, quota_headroom
from meao.nfvo.vim import Capacity, QuotaHeadroom

SMALL_HOST = {"VCPU": {"total": 2, "reserved": 0, "allocation_ratio": 4.0, "max_unit": 2},
              "MEMORY_MB": {"total": 8192, "reserved": 512, "allocation_ratio": 1.0, "max_unit": 8192},
              "DISK_GB": {"total": 1028, "reserved": 0, "allocation_ratio": 1.0, "max_unit": 1028}}


def test_free_capacity_applies_reserved_and_allocation_ratio() -> None:
    host = host_capacity("compute1", "az1", SMALL_HOST, {"VCPU": 3, "MEMORY_MB": 1024, "DISK_GB": 10})
    assert (host.vcpu, host.ram_mb, host.disk_gb) == (5, 6656, 1018)


def test_request_above_max_unit_does_not_fit_even_with_free_capacity() -> None:
    host = host_capacity("compute1", "az1", SMALL_HOST, {})
    assert host.vcpu == 8 and not host.fits(3, 512, 1) and host.fits(2, 512, 1)


def test_missing_resource_class_means_nothing_free() -> None:
    assert free_of(None, 0) == (0, 0)


def test_unlimited_quota_is_none_and_exhausted_quota_is_zero() -> None:
    assert headroom(-1, 5) is None and headroom(4, 6) == 0
    q = quota_headroom({"instances": (10, 10), "cores": (-1, 3), "ram": (51200, 512)}, {"port": (100, 1)})
    assert q == QuotaHeadroom(instances=0, vcpu=None, ram_mb=50688, ports=99)
    assert not q.allows(1, 512)


def test_capacity_fits_only_in_the_zone_asked_for() -> None:
    az1 = host_capacity("compute1", "az1", SMALL_HOST, {"MEMORY_MB": 7680})
    az2 = host_capacity("compute2", "az2", SMALL_HOST, {})
    cap = Capacity(hosts=(az1, az2), quota=QuotaHeadroom(None, None, None, None))
    assert cap.fits(1, 512, 1) and cap.fits(1, 512, 1, availability_zone="az2")
    assert not cap.fits(1, 512, 1, availability_zone="az1")
    assert cap.zones["az1"].ram_mb == 0 and cap.zones["az2"].ram_mb == 7680
