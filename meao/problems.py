"""Domain errors that carry an RFC 7807 / ETSI GS MEC 009 ProblemDetails.

Every error a client or an operator can see is one of these; ``meao.api.errors`` is the one place
that turns them into HTTP responses, and the onboarding job stores them as
``onboardingFailureDetails``.
"""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error with an HTTP status, a short title and a detail that says what to do."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, detail: str, *, status: int | None = None, title: str | None = None,
                 type_: str = "about:blank", instance: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.type = type_
        self.instance = instance
        self.extra = extra or {}

    def to_problem(self) -> dict[str, Any]:
        """Render as a ProblemDetails dict (MEC 009 clause 7.11 / RFC 7807)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if self.instance:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


class BadRequest(ProblemError):
    status, title = 400, "Bad Request"


class Unauthorized(ProblemError):
    """No valid access token; ``challenge`` is the ``WWW-Authenticate`` value (RFC 6750 clause 3)."""

    status, title = 401, "Unauthorized"

    def __init__(self, detail: str, *, challenge: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ProblemError):
    """A valid token that does not allow the operation (missing scope); ``challenge`` as for 401."""

    status, title = 403, "Forbidden"

    def __init__(self, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge} if challenge else {}


class NotFound(ProblemError):
    status, title = 404, "Not Found"


class NotAcceptable(ProblemError):
    status, title = 406, "Not Acceptable"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ProblemError):
    status, title = 413, "Payload Too Large"


class RangeNotSatisfiable(ProblemError):
    status, title = 416, "Range Not Satisfiable"


class OnboardingError(ProblemError):
    """A package could not be onboarded; ``detail`` names the file (and node/rule) at fault."""

    status, title = 422, "Onboarding failed"
