"""A small client of meao's own APIs, used by the OSS CLI: one proxy per API on one HTTP session.

    with MeaoClient("http://meao.example:8080") as client:
        client.pkgm.list_packages()          # Mm1 /app_pkgm/v1 (MEC 010-2 clause 7.3)
        client.lcm.instantiate(app_id, ["pop1"])   # Mm1 /app_lcm/v1 (clause 7.4)
        client.ops.list_hosts()              # meao's /ops/v1

Where the endpoint comes from: ``endpoint.resolve_endpoint``; the errors every call may raise:
``errors``; the one poller behind every ``wait_*``: ``waiting.wait_for``.
"""

from __future__ import annotations

from typing import Self

import httpx

from meao.oss.client.endpoint import DEFAULT_TIMEOUT, Endpoint, resolve_endpoint
from meao.oss.client.errors import (
    ClientError,
    ClientProblem,
    ConfigError,
    EndpointUnreachable,
    OperationFailed,
    WaitTimeout,
)
from meao.oss.client.lcm import LcmProxy
from meao.oss.client.ops import OpsProxy
from meao.oss.client.package_file import file_digest, read_manifest_metadata
from meao.oss.client.pkgm import PkgmProxy, onboarding_ended
from meao.oss.client.session import Session
from meao.oss.client.subscriptions import SUBSCRIPTION_TYPES, SubscriptionsProxy, api_of

__all__ = [
    "SUBSCRIPTION_TYPES", "ClientError", "ClientProblem", "ConfigError", "Endpoint", "EndpointUnreachable",
    "MeaoClient", "OperationFailed", "WaitTimeout", "api_of", "file_digest", "onboarding_ended",
    "read_manifest_metadata", "resolve_endpoint",
]


class MeaoClient:
    """The APIs of one MEAO: ``pkgm``, ``lcm`` and ``ops``, sharing one session (and its access token)."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None, auth: httpx.Auth | None | str = "env") -> None:
        """``auth`` "env": a token from the client credentials the environment names; None: never a token."""
        self.session = Session(endpoint, timeout, transport, auth)
        self.pkgm = PkgmProxy(self.session)
        self.lcm = LcmProxy(self.session)
        self.ops = OpsProxy(self.session)

    def subscriptions(self, api: str) -> SubscriptionsProxy:
        """The proxy of the API named ``pkgm`` or ``lcm`` (as in ``SUBSCRIPTION_TYPES``), for its subscriptions."""
        return {"pkgm": self.pkgm, "lcm": self.lcm}[api]

    def close(self) -> None:
        """Release the connection pool."""
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
