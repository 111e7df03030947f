"""The one place that turns errors into RFC 7807 ProblemDetails responses."""

from __future__ import annotations

import json
import logging
from typing import Any

from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.routing import BaseRoute, Match, Mount, Route

from meao.problems import PROBLEM_JSON, ProblemError, Unauthorized

log = logging.getLogger(__name__)


def _response(problem: ProblemError, headers: dict[str, str] | None = None) -> ConnexionResponse:
    """The one response of every error: the ProblemDetails, its status, its headers (and ``headers``)."""
    return ConnexionResponse(status_code=problem.status, body=json.dumps(problem.to_problem()),
                             content_type=PROBLEM_JSON, headers={**problem.headers, **(headers or {})})


def problem_error_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """A domain ProblemError → its ProblemDetails with its own status."""
    assert isinstance(exc, ProblemError)
    return _response(exc)


def http_error_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion/Starlette HTTP errors (validation, 404 route, 405) → ProblemDetails."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", 500)
    title = getattr(exc, "title", None) or {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                                            406: "Not Acceptable", 415: "Unsupported Media Type"}.get(
                                                status, "Error")
    detail = getattr(exc, "detail", None) or str(exc) or title
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:  # RFC 9110 clause 15.5.6: a 405 lists the methods the resource supports
        headers["Allow"] = _allowed_methods(_request.scope) or headers.get("Allow", "")
    return _response(ProblemError(detail, status=status, title=title), headers)


def _allowed_methods(scope: dict[str, Any]) -> str | None:
    """Every method of every operation on the request's path, read from Connexion's router.

    Starlette's 405 names only the methods of the first route whose path matched, and Connexion has one
    route per operation, so ``GET /app_packages`` alone would hide ``POST /app_packages``.
    """
    from connexion.middleware.routing import RoutingMiddleware

    stack = getattr(scope.get("app"), "middleware_stack", None) or ()
    routing = next((m for m in stack if isinstance(m, RoutingMiddleware)), None)
    if routing is None:
        return None
    methods: set[str] = set()

    def collect(routes: list[BaseRoute], at: dict[str, Any]) -> None:
        for route in routes:
            match, child = route.matches(at)
            if match is Match.NONE:
                continue
            if isinstance(route, Mount):
                collect(route.routes, {**at, **child})
            elif isinstance(route, Route) and route.methods:
                methods.update(route.methods)

    collect(routing.router.routes, {**scope, "root_path": scope.get("app_root_path", "")})
    return ", ".join(sorted(methods)) or None


def unauthorized_error_handler(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion's own 401 (no token, or an unreadable Authorization header) → ProblemDetails + challenge."""
    from meao.api.security import challenge, missing_token_detail
    from meao.config import get_settings

    scheme = (request.headers.get("Authorization") or "").strip().split(" ")[0].lower()
    if scheme == "bearer":  # a token was given but could not even be read
        detail = "the Authorization header does not hold a bearer token: send 'Authorization: Bearer <token>'"
        header = challenge("invalid_token", detail)
    else:
        detail, header = missing_token_detail(get_settings()), challenge()
    return _response(Unauthorized(detail, challenge=header))


def unexpected_error_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Anything else: log it with its traceback, answer 500 without leaking internals."""
    log.exception("unhandled error", exc_info=exc)
    return _response(ProblemError("meao hit an internal error; the operators can find it in the logs"))
