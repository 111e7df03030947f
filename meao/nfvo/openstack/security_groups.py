"""Neutron security groups: one per app instance, holding the ingress allow-list its traffic rules become.

Neutron here refuses ``tags`` in a security group's POST (measured on the test bed), so the tags come in
a second call; a group a kill left untagged is still found by its name, as ports are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from openstack import exceptions as os_exc

from meao import faults
from meao.nfvo.openstack.base import CloudParts
from meao.nfvo.vim import (
    OWNER_TAG,
    PortSecurityDisabled,
    SgRule,
    VimNotFound,
    canonical_protocol,
    instance_tag,
    security_group_name,
)

_SYNC_ATTEMPTS = 3  # a concurrent sync of the same group makes a bulk create conflict: read again, retry


def sg_rule(rule: Any) -> SgRule | None:
    """A Neutron rule as :class:`SgRule`; None for one that names a remote group (never one of ours)."""
    if rule.remote_group_id or getattr(rule, "remote_address_group_id", None):
        return None
    prefix = rule.remote_ip_prefix
    if prefix:
        net = ipaddress.ip_network(prefix, strict=False)
        prefix = None if net.prefixlen == 0 else str(net)
    return SgRule(direction=rule.direction, ethertype=rule.ether_type,
                  protocol=canonical_protocol(rule.protocol, rule.ether_type),
                  port_min=rule.port_range_min, port_max=rule.port_range_max, remote_ip_prefix=prefix)


def _body(sg_id: str, rule: SgRule) -> dict[str, Any]:
    body: dict[str, Any] = {"security_group_id": sg_id, "direction": rule.direction, "ethertype": rule.ethertype}
    for key, value in (("protocol", rule.protocol), ("port_range_min", rule.port_min),
                       ("port_range_max", rule.port_max), ("remote_ip_prefix", rule.remote_ip_prefix)):
        if value is not None:
            body[key] = value
    return body


class SecurityGroups(CloudParts):
    """Security group methods of the driver."""

    def ensure_app_security_group(self, instance_id: str) -> str:
        name = security_group_name(instance_id)
        with self._do(f"ensuring security group {name}"):
            found = self._app_security_groups(instance_id)
            if found:
                self._tag(found[0], instance_id)
                return found[0].id
            sg = self._conn.network.create_security_group(
                name=name, description=f"meao: traffic rules of app instance {instance_id}")
            faults.point("vim:security-group-created")
            try:
                self._tag(sg, instance_id)
            except Exception:
                self._conn.network.delete_security_group(sg, ignore_missing=True)
                raise
            # Two workers that both found none each made one: both keep the oldest, the other goes.
            first = self._app_security_groups(instance_id)[0]
            if first.id != sg.id:
                self._conn.network.delete_security_group(sg, ignore_missing=True)
            return first.id

    def _app_security_groups(self, instance_id: str) -> list[Any]:
        """The instance's groups, by tag and by name, oldest first."""
        groups = {g.id: g for g in self._conn.network.security_groups(tags=instance_tag(instance_id))}
        groups.update({g.id: g for g in self._conn.network.security_groups(name=security_group_name(instance_id))
                       if g.id not in groups})
        return sorted(groups.values(), key=lambda g: (g.created_at or "", g.id))

    def _tag(self, sg: Any, instance_id: str) -> None:
        tags = [OWNER_TAG, instance_tag(instance_id)]
        if not set(tags) <= set(sg.tags or []):
            self._conn.network.set_tags(sg, sorted(set(tags) | set(sg.tags or [])))

    def sync_security_group_rules(self, sg_id: str, wanted: Sequence[SgRule]) -> None:
        wanted_set = set(wanted)
        if any(r.direction != "ingress" for r in wanted_set):
            raise ValueError("sync_security_group_rules manages ingress rules only")
        with self._do(f"syncing the rules of security group {sg_id}"):
            self._conn.network.get_security_group(sg_id)  # VimNotFound for a wrong id, even with nothing to do
            for attempt in range(_SYNC_ATTEMPTS):
                have: dict[SgRule, str] = {}
                unwanted: list[str] = []
                for rule in self._conn.network.security_group_rules(security_group_id=sg_id, direction="ingress"):
                    key = sg_rule(rule)
                    if key is None or key not in wanted_set or key in have:
                        unwanted.append(rule.id)
                    else:
                        have[key] = rule.id
                missing = sorted(wanted_set - have.keys(), key=lambda r: r.sort_key)
                try:
                    if missing:
                        list(self._conn.network.create_security_group_rules([_body(sg_id, r) for r in missing]))
                except os_exc.ConflictException:
                    if attempt == _SYNC_ATTEMPTS - 1:
                        raise
                    continue  # another sync created some of them meanwhile
                for rule_id in unwanted:
                    self._conn.network.delete_security_group_rule(rule_id, ignore_missing=True)
                return

    def security_group_rules(self, sg_id: str) -> list[SgRule]:
        with self._do(f"reading the rules of security group {sg_id}"):
            self._conn.network.get_security_group(sg_id)
            rules = (sg_rule(r) for r in self._conn.network.security_group_rules(
                security_group_id=sg_id, direction="ingress"))
            return sorted((r for r in rules if r is not None), key=lambda r: r.sort_key)

    def set_port_security_groups(self, port_id: str, sg_ids: Sequence[str]) -> None:
        with self._do(f"setting the security groups of port {port_id}"):
            port = self._conn.network.get_port(port_id)
            if not port.is_port_security_enabled:
                raise PortSecurityDisabled(
                    f"port {port.name} ({port_id}) at VIM '{self.cloud_name}' has port security off, so Neutron "
                    f"would not filter its traffic by security groups; create the port with port security on.")
            if sorted(port.security_group_ids or []) != sorted(sg_ids):
                self._conn.network.update_port(port, security_group_ids=list(sg_ids))

    def delete_app_security_group(self, instance_id: str, port_ids: Sequence[str]) -> None:
        with self._do(f"deleting the security group of app instance {instance_id}"):
            groups = self._app_security_groups(instance_id)
            if not groups:
                return
            ids = {g.id for g in groups}
            ports: dict[str, Any] = {}
            for port_id in port_ids:
                try:
                    port = self._conn.network.get_port(port_id)
                except os_exc.NotFoundException:
                    continue
                ports[port.id] = port
            for group in groups:  # ports outside port_ids that use it too (else the delete is refused: in use)
                ports.update({p.id: p for p in self._conn.network.ports(security_group_ids=[group.id])
                              if p.id not in ports})
            default: list[str] | None = None
            for port in ports.values():
                if not ids & set(port.security_group_ids or []):
                    continue
                keep = [s for s in port.security_group_ids if s not in ids]
                if not keep and port.is_port_security_enabled:
                    default = self._default_group() if default is None else default
                    keep = default
                try:
                    self._conn.network.update_port(port, security_group_ids=keep)
                except os_exc.NotFoundException:
                    pass  # deleted meanwhile
            for group in groups:
                self._conn.network.delete_security_group(group, ignore_missing=True)

    def _default_group(self) -> list[str]:
        """The project's default group, as a one-id list (Neutron makes it when a project first lists groups)."""
        project = self._conn.current_project_id
        group = next(iter(self._conn.network.security_groups(name="default", project_id=project)), None)
        if group is None:
            raise VimNotFound(f"project {project} at VIM '{self.cloud_name}' has no default security group to "
                              "give back to the app's ports; create one or delete the ports first.")
        return [group.id]
