"""MEP driver (Mm5): configures an app instance's traffic and DNS rules and service authorisations.

``RecordingMep`` is the driver for PoPs without an ETSI MEP of their own: it validates and records
the rules the AppD asks for on the instance (visible to operators through the instance resources);
a real MEP (MEC 011 Mp1 / MEC 010-2 Mm5) plugs in behind the same two calls.
"""

from __future__ import annotations

import abc
from typing import Any

from meao.catalogue.appd import AppD


class MepDriver(abc.ABC):
    """What the MEPM-V asks of the MEP of a host."""

    @abc.abstractmethod
    def configure(self, instance_id: str, appd: AppD) -> dict[str, Any]:
        """Apply the AppD's traffic rules, DNS rules and service needs; returns what was configured."""

    @abc.abstractmethod
    def unconfigure(self, instance_id: str, configured: dict[str, Any]) -> None:
        """Remove what ``configure`` applied (unknown rules are ignored)."""


class RecordingMep(MepDriver):
    """Records rules as the MEP would hold them; no data plane is touched."""

    def configure(self, instance_id: str, appd: AppD) -> dict[str, Any]:
        return {"trafficRules": [dict(r, state="ACTIVE") for r in appd.app_traffic_rules],
                "dnsRules": [dict(r, state="ACTIVE") for r in appd.app_dns_rules],
                "servicesRequired": appd.app_service_required}

    def unconfigure(self, instance_id: str, configured: dict[str, Any]) -> None:
        return None


def mep_for_host(_host_id: str | None) -> MepDriver:
    """The MEP driver of a host (one recording driver until hosts declare a real MEP endpoint)."""
    return RecordingMep()
