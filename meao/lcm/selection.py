"""Host selection for instantiate: the inventory and OpenStack's capacity, fed to the pure placement.

Capacity comes from each host's cloud (placement inventories/usages and quota), cached for a few
seconds per cloud so a burst of instantiations does not hammer OpenStack; ``refresh=True`` forces it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from meao.catalogue.appd import AppD
from meao.config import get_settings
from meao.db.models import AppInstance, AppPackage, MecHost, MepService
from meao.lcm import placement
from meao.lcm.hosts import HostPreference, list_hosts
from meao.lcm.requirements import requirements
from meao.nfvo.vim import Capacity, VimError

_cache: dict[str, tuple[float, Capacity, datetime]] = {}
_lock = threading.Lock()
_cloud_locks: dict[str, threading.Lock] = {}


def cloud_capacity_entry(cloud: str, *, refresh: bool = False) -> tuple[Capacity, datetime, bool]:
    """Capacity of one cloud with when it was observed and whether it came from the cache.

    Reading it costs ~1.5 s on the test bed and far more while the cloud is busy booting, so: one
    reader per cloud at a time; an entry older than MEAO_CAPACITY_CACHE_S is still answered at once while a single
    background read renews it (stale-while-revalidate); ``refresh`` waits for a new read.
    """
    asked = time.monotonic()
    with _lock:
        hit = _cache.get(cloud)
        cloud_lock = _cloud_locks.setdefault(cloud, threading.Lock())
    if hit and not refresh:
        if time.monotonic() - hit[0] >= get_settings().vim.capacity_cache_s and cloud_lock.acquire(blocking=False):
            threading.Thread(target=_renew, args=(cloud, cloud_lock), name=f"capacity-{cloud}", daemon=True).start()
        return hit[1], hit[2], True
    with cloud_lock:
        with _lock:
            hit = _cache.get(cloud)
        if hit and hit[0] >= asked:  # read by another thread while this one waited
            return hit[1], hit[2], True
        return (*_read(cloud), False)


def _read(cloud: str) -> tuple[Capacity, datetime]:
    from meao.nfvo.drivers import get_vim

    cap = get_vim(cloud).capacity()
    observed = datetime.now(UTC)
    with _lock:
        _cache[cloud] = (time.monotonic(), cap, observed)
    return cap, observed


def _renew(cloud: str, cloud_lock: threading.Lock) -> None:
    try:
        _read(cloud)
    except VimError:
        pass  # the next caller sees the old entry and tries again
    finally:
        cloud_lock.release()


def cloud_capacity(cloud: str, *, refresh: bool = False) -> Capacity:
    """Capacity of one cloud, at most MEAO_CAPACITY_CACHE_S old unless ``refresh``."""
    return cloud_capacity_entry(cloud, refresh=refresh)[0]


def host_capacity(host: MecHost, *, refresh: bool = False) -> placement.HostHeadroom | None:
    """Free resources of the best compute host in the MEC host's zone, and the project's quota headroom."""
    try:
        cap = cloud_capacity(host.cloud, refresh=refresh)
    except VimError:
        return None
    candidates = [h for h in cap.hosts if not host.availability_zone or h.availability_zone == host.availability_zone]
    if not candidates:
        return placement.HostHeadroom(0, 0, 0, cap.quota.instances, cap.quota.vcpu, cap.quota.ram_mb)
    best = max(candidates, key=lambda h: (min(h.vcpu, h.max_vcpu), min(h.ram_mb, h.max_ram_mb)))
    return placement.HostHeadroom(min(best.vcpu, best.max_vcpu), min(best.ram_mb, best.max_ram_mb),
                                  min(best.disk_gb, best.max_disk_gb), cap.quota.instances, cap.quota.vcpu,
                                  cap.quota.ram_mb)


def _versions(items: list[dict[str, Any]] | None, name_key: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        out.setdefault(str(item.get(name_key, "")).lower(), []).append(str(item.get("version") or ""))
    return {k: tuple(v) for k, v in out.items()}


def host_view(host: MecHost, ext_cpds: list[str], *, refresh: bool = False) -> placement.MecHostView:
    """A MecHost row as the placement function sees it."""
    loc = host.location or {}
    keys = set((host.networks or {}).keys())
    nets = frozenset(keys | (set(ext_cpds) if "default" in keys else set()))
    return placement.MecHostView(
        id=host.id, name=host.name, country_code=loc.get("countryCode"), latitude=loc.get("latitude"),
        longitude=loc.get("longitude"), served_areas=tuple(host.served_areas or ()),
        latency_ms={k: float(v) for k, v in (host.latency_ms or {}).items()},
        services=_versions(offered_services(host), "serName"), features=_versions(host.features, "featureName"),
        networks=nets, capacity=host_capacity(host, refresh=refresh))


def offered_services(host: MecHost) -> list[dict[str, Any]]:
    """What the host's MEP offers: its inventory's platform services and the ACTIVE services its apps
    registered over Mp1 (the MEP's registry, in the same database)."""
    offered = list(host.services or [])
    session = object_session(host)
    if session is not None:
        offered += [b for b in session.scalars(select(MepService.body).where(
            MepService.host_id == host.id, MepService.app_instance_id.is_not(None))) if b.get("state") == "ACTIVE"]
    return offered


def honours_preference() -> bool:
    """Whether the request's selectedMECHostInfo is honoured as a preference (MEAO_HOST_SELECTION=request,
    the default) rather than left out of the choice (``meao``)."""
    return get_settings().host_selection != "meao"


def choose_host(session: Session, inst: AppInstance, pkg: AppPackage, preference: HostPreference,
                body: dict[str, Any]) -> tuple[MecHost, dict[str, Any]]:
    """Rank every host of the inventory for this instance; NoHostFits (422) explains per host when none fits.

    On Mm1 the MEAO selects the host (MEC 010-2 table 6.2.2.7.2-1, note 2: selectedMECHostInfo applies to
    Mm3 only). The hosts the request names are preferred when they fit, unless MEAO_HOST_SELECTION=meao;
    the placement record says which were preferred, which names meao does not know (ignored), and
    whether the preference was honoured.
    """
    appd = AppD.from_stored(pkg.appd_model)
    candidates = list_hosts(session)
    cpds = [c.id for c in appd.ext_cpds]
    views = [host_view(h, cpds) for h in candidates]
    preferred = [h.id for h in preference.known] if honours_preference() else []
    decision = placement.best_host(requirements(appd, body), views, preferred)
    chosen = next(h for h in candidates if h.id == decision.chosen)
    record = decision.explain()
    if preference.known or preference.unknown:
        record["preference"] = {
            "selection": get_settings().host_selection, "preferred": [h.id for h in preference.known],
            "ignored": preference.unknown, "honoured": decision.chosen in preferred}
    return chosen, record
