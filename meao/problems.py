"""Domain errors that carry an RFC 7807 / ETSI GS MEC 009 ProblemDetails.

Every error a client or an operator can see is one of these; ``meao.api.errors`` is the one place
that turns them into HTTP responses, and the onboarding and lifecycle jobs store them (``problem``)
as ``onboardingFailureDetails`` or an occurrence's ``error``.
"""

from __future__ import annotations

from typing import Any

from meao.redaction import redact

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error with an HTTP status, a short title and a detail that says what to do.

    A kind of error names its status and title once, as class keywords:
    ``class NotFound(ProblemError, status=404, title="Not Found")``.
    """

    status: int = 500
    title: str = "Internal Server Error"

    def __init_subclass__(cls, *, status: int | None = None, title: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str, *, status: int | None = None, title: str | None = None,
                 type_: str = "about:blank", instance: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        # every failure detail meao shows or stores goes through here: a URL password in it (an appPkgPath,
        # a callbackUri, a broker URL, an httpx message quoting one) never leaves the process
        detail = redact(detail)
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.type = type_
        self.instance = instance
        self.extra = extra or {}
        self.headers: dict[str, str] = {}  # response headers the error brings (a challenge, a Content-Range)

    def to_problem(self) -> dict[str, Any]:
        """Render as a ProblemDetails dict (MEC 009 clause 7.11 / RFC 7807)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if self.instance:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """A ProblemDetails dict of no particular kind, e.g. the ``error`` a job records when it stops."""
    return ProblemError(detail, status=status, title=title).to_problem()


# The kinds that differ only in their HTTP status and title.
class BadRequest(ProblemError, status=400, title="Bad Request"): ...
class NotFound(ProblemError, status=404, title="Not Found"): ...
class NotAcceptable(ProblemError, status=406, title="Not Acceptable"): ...
class Conflict(ProblemError, status=409, title="Conflict"): ...
class PayloadTooLarge(ProblemError, status=413, title="Payload Too Large"): ...


class Unauthorized(ProblemError, status=401, title="Unauthorized"):
    """No valid access token; ``challenge`` is the ``WWW-Authenticate`` value (RFC 6750 clause 3)."""

    def __init__(self, detail: str, *, challenge: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ProblemError, status=403, title="Forbidden"):
    """A valid token that does not allow the operation (missing scope); ``challenge`` as for 401."""

    def __init__(self, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge} if challenge else {}


class TooManyRequests(ProblemError, status=429, title="Too Many Requests"):
    """Too many attempts for now (RFC 6585 clause 4); ``retry_after`` whole seconds go into ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class RangeNotSatisfiable(ProblemError, status=416, title="Range Not Satisfiable"):
    """A Range outside the content; ``size`` goes into ``Content-Range: bytes */size`` (RFC 9110 15.5.17)."""

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail)
        self.headers = {"Content-Range": f"bytes */{size}"}


class OnboardingError(ProblemError, status=422, title="Onboarding failed"):
    """A package could not be onboarded; ``detail`` names the file (and node/rule) at fault."""


class UploadInterrupted(ProblemError, status=400, title="Upload interrupted"):
    """PUT package_content did not receive the whole package (client gone, process killed, stalled)."""
