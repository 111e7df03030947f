"""The errors of the OSS client: every one is a ``ClientError``.

- ``ClientProblem``: the MEAO answered with an error status (its ProblemDetails in ``problem``);
- ``EndpointUnreachable``: no HTTP answer from the endpoint (refused, DNS, timeout, bad URL);
- ``OperationFailed``: a followed onboarding or LCM operation ended in failure;
- ``WaitTimeout``: a followed operation had not ended when the caller stopped waiting;
- ``ConfigError``: the client configuration file or the selected profile is unusable.
"""

from __future__ import annotations

from typing import Any

import httpx


class ClientError(Exception):
    """Base of every error this client raises."""


class ClientProblem(ClientError):
    """The MEAO answered ``status`` with a ProblemDetails (RFC 7807, MEC 009 clause 7.11)."""

    def __init__(self, status: int, problem: dict[str, Any], url: str = "") -> None:
        self.status = status
        self.problem = problem
        self.url = url
        super().__init__(f"{self.title} (HTTP {status}): {self.detail}")

    @property
    def title(self) -> str:
        """The problem's short summary."""
        return str(self.problem.get("title") or httpx.codes.get_reason_phrase(self.status) or "Error")

    @property
    def detail(self) -> str:
        """What happened, as the MEAO explains it."""
        return str(self.problem.get("detail") or "")


class EndpointUnreachable(ClientError):
    """No HTTP answer came from the endpoint; ``reason`` says what the transport saw."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}")


class OperationFailed(ClientError):
    """An onboarding or LCM operation that was followed ended in failure; ``problem`` says why."""

    def __init__(self, kind: str, resource: dict[str, Any], problem: dict[str, Any]) -> None:
        self.kind = kind
        self.resource = resource
        self.problem = problem
        super().__init__(f"{kind} {resource.get('id')} failed: {problem.get('detail') or problem.get('title')}")


class WaitTimeout(ClientError):
    """The caller stopped waiting; ``resource`` is the last state seen (the operation goes on)."""

    def __init__(self, kind: str, resource: dict[str, Any], waited: float) -> None:
        self.kind = kind
        self.resource = resource
        self.waited = waited
        super().__init__(f"{kind} {resource.get('id')} had not ended after {waited:.0f}s")


class ConfigError(ClientError):
    """The client configuration file or the selected profile is unusable."""
