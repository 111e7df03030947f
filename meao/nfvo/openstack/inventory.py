"""What a PoP can take (Placement, quotas) and what meao left there (the sweep)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from openstack import exceptions as os_exc

from meao.nfvo import capacity as cap
from meao.nfvo.openstack.base import ALL_FLAVORS, CloudParts
from meao.nfvo.openstack.network import port_info
from meao.nfvo.vim import (
    FLAVOR_PREFIX,
    INSTANCE_METADATA_KEY,
    INSTANCE_TAG_PREFIX,
    OWNER_TAG,
    PACKAGE_TAG_PREFIX,
    Capacity,
    Leftover,
    Leftovers,
)


class Inventory(CloudParts):
    """Capacity and sweep methods of the driver."""

    def capacity(self) -> Capacity:
        with self._do("reading capacity"):
            return Capacity(hosts=tuple(self._host_capacities()), quota=self._quota_headroom())

    def _host_capacities(self) -> Iterator[Any]:
        admin = self._admin
        zone_of = {host: agg.availability_zone for agg in admin.compute.aggregates()
                   if agg.availability_zone for host in agg.hosts or []}
        host_of = {h.name: (h.service_details or {}).get("host", h.name)
                   for h in admin.compute.hypervisors(details=True)}
        for rp in admin.placement.resource_providers():
            if rp.name not in host_of:
                continue  # not a compute node (e.g. a sharing provider)
            inventories = {i.resource_class: {"total": i.total, "reserved": i.reserved,
                                              "allocation_ratio": i.allocation_ratio, "max_unit": i.max_unit}
                           for i in admin.placement.resource_provider_inventories(rp)}
            usages = admin.placement.get(f"/resource_providers/{rp.id}/usages", microversion="1.9")
            os_exc.raise_from_response(usages)
            host = host_of[rp.name]
            yield cap.host_capacity(host, zone_of.get(host, cap.DEFAULT_ZONE), inventories,
                                    usages.json()["usages"])

    def _quota_headroom(self) -> Any:
        project = self._conn.current_project_id
        qs = self._conn.compute.get_quota_set(project, usage=True)
        usage = qs.usage or {}
        compute = {k: (getattr(qs, k), usage.get(k, 0)) for k in ("instances", "cores", "ram")}
        ports = self._conn.network.get_quota(project, details=True).ports
        return cap.quota_headroom(compute, {"port": (ports["limit"], ports["used"] + ports.get("reserved", 0))})

    def sweep(self, known_instance_ids: Iterable[str],
              known_package_ids: Iterable[str] = ()) -> Leftovers:
        known = set(known_instance_ids)
        packages = set(known_package_ids)
        items: list[Leftover] = []
        with self._do("sweeping for leftovers"):
            for s in self._conn.compute.servers(details=True):
                owner = (s.metadata or {}).get(INSTANCE_METADATA_KEY)
                if owner is not None and owner not in known:
                    items.append(Leftover("server", s.id, s.name, f"app instance {owner} is not known"))
            for p in self._conn.network.ports():
                info = port_info(p)
                ours = OWNER_TAG in (p.tags or []) or (p.name or "").startswith("meao-")
                if ours and info.instance_id not in known:
                    items.append(Leftover("port", p.id, p.name,
                                          f"app instance {info.instance_id or '(untagged)'} is not known"))
            for g in self._conn.network.security_groups(project_id=self._conn.current_project_id):
                owner = next((t[len(INSTANCE_TAG_PREFIX):] for t in g.tags or []
                              if t.startswith(INSTANCE_TAG_PREFIX)), None)
                ours = OWNER_TAG in (g.tags or []) or (g.name or "").startswith("meao-")
                if ours and owner not in known:
                    items.append(Leftover("security_group", g.id, g.name,
                                          f"app instance {owner or '(untagged)'} is not known"))
            used_flavors = {s.flavor.get("id") or s.flavor.get("original_name")
                            for s in self._admin.compute.servers(details=True, all_projects=True)}
            project = self._conn.current_project_id
            for f in self._admin.compute.flavors(details=True, is_public=ALL_FLAVORS):
                if (f.is_public or not f.name.startswith(FLAVOR_PREFIX)
                        or f.id in used_flavors or f.name in used_flavors):
                    continue
                # A private flavor is ours when this project was granted it (or nobody was).
                access = {a["tenant_id"] for a in self._admin.compute.get_flavor_access(f)}
                if not access or project in access:
                    items.append(Leftover("flavor", f.id, f.name, "no server uses it"))
            for i in self._conn.image.images(tag=OWNER_TAG):
                if i.owner != self._conn.current_project_id:
                    continue
                users = {t[len(PACKAGE_TAG_PREFIX):] for t in i.tags or [] if t.startswith(PACKAGE_TAG_PREFIX)}
                if not users & packages:
                    items.append(Leftover("image", i.id, i.name,
                                          f"packages {sorted(users) or '(none)'} are not known"))
        return Leftovers(tuple(items))
