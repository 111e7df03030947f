"""The MEC platform (MEP) of each MEC host, and what the MEPM-V asks of it over Mm5.

The MEP itself (``meao mep serve --host-id POP``, or in process in ``meao serve``) serves Mp1 (MEC 011)
to the apps and Mm5 (openapi/mm5.yaml) to the MEPM-V; see ``mecpm.mep.api``. ``MepDriver`` is the
MEPM-V's side: the lifecycle flows call it, and ``mep_for_host`` gives the Mm5 client of a host's MEP.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any


class MepDriver(abc.ABC):
    """What the MEPM-V asks of the MEP of one host (Mm5)."""

    @abc.abstractmethod
    def issue_credentials(self, instance_id: str) -> dict[str, Any]:
        """Create or rotate the app instance's Mp1 client: Mp1Credentials (secret included, shown once)."""

    @abc.abstractmethod
    def register(self, instance_id: str, registration: dict[str, Any]) -> dict[str, Any]:
        """Register the instance with its AppD rules, authorisations and ports; MepAppInfo (what holds)."""

    @abc.abstractmethod
    def deregister(self, instance_id: str) -> None:
        """Withdraw the instance's rules, services and credentials (unknown: nothing to do)."""

    @abc.abstractmethod
    def graceful_termination(self, instance_id: str, action: str, timeout_s: int,
                             keep_alive: Callable[[], None]) -> dict[str, Any]:
        """Ask the app to stop (STOPPING) or terminate (TERMINATING) and wait for its confirmation or the
        timeout; the final GracefulTermination (state CONFIRMED, TIMED_OUT or NOT_SUBSCRIBED).
        ``keep_alive`` runs between polls (the job's claim check)."""

    @abc.abstractmethod
    def clear_termination(self, instance_id: str) -> None:
        """Forget a finished graceful stop (the app is started again)."""


def mep_for_host(host_id: str, mep_url: str | None) -> MepDriver:
    """The Mm5 client of a host's MEP: at ``mep_url``, or the one inside ``meao serve`` (MEAO_PUBLIC_URL)."""
    from mecpm.mep.client import Mm5Client

    return Mm5Client(host_id, mep_url)
