"""The console's pages: ``/console/`` serves ``meao/console/static/``, ``/console/config.json`` what they need
to sign in; outside the OpenAPI files (no token: the pages hold no data, the snapshot API does).

Plain Flask URL rules on the app Connexion wraps (as ``/oauth2/token``): Connexion's routed middlewares
(security, Accept negotiation, path lookups, response checks) act only on the operations of the
OpenAPI files and let these through; the request-target guard and the metrics (labelled
``unmatched``) see them like any request. Every answer, a 404 included, carries the console's
Content-Security-Policy (no inline script or style, nothing from elsewhere but the sign-in's token
endpoint), ``nosniff``, no referrer and ``no-cache`` (revalidated: an upgraded meao is picked up at once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from flask import Response, redirect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meao.api.security import TOKEN_PATH
from meao.config import Settings, get_settings
from meao.console.discovery import RETRY_AFTER_S, DiscoveryFailed, discover
from meao.problems import problem

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".map": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
    ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8",
}


def add_console(app: Any) -> None:
    """Serve the console in ``app`` (a Connexion FlaskApp)."""
    from connexion.middleware import MiddlewarePosition

    app.add_middleware(ConsoleHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    # merge_slashes off: "/console//x" is a 404 of ours (with the headers), not Werkzeug's redirect
    rule = {"methods": ["GET"], "merge_slashes": False}
    app.add_url_rule(PREFIX, "console_root", _to_console, **rule)
    app.add_url_rule(f"{PREFIX}/config.json", "console_config", _config, **rule)
    app.add_url_rule(f"{PREFIX}/", "console_index", _static, defaults={"path": "index.html"}, **rule)
    app.add_url_rule(f"{PREFIX}/<path:path>", "console_static", _static, **rule)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _headers(settings: Settings) -> dict[str, str]:
    connect = ["'self'"]
    try:
        token_origin = _origin((oidc_config(settings) or {}).get("tokenEndpoint") or "")
    except DiscoveryFailed:  # config.json says why; meanwhile the page may reach nothing else
        token_origin = None
    if token_origin:
        connect.append(token_origin)
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           f"connect-src {' '.join(connect)}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def headers() -> dict[str, str]:
    """The headers of every answer under ``/console``."""
    return _headers(get_settings())


class ConsoleHeaders:
    """ASGI middleware (outside Connexion's error handling): every answer to ``/console`` or below, whoever
    made it (a page, a 404 of Werkzeug's router, a 405), goes out with the console's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        # off the event loop: the first answer may wait on the issuer's discovery document (meao.console.discovery)
        ours = [(k.lower().encode(), v.encode()) for k, v in (await anyio.to_thread.run_sync(headers)).items()]
        names = {k for k, _ in ours}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + ours
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _to_console() -> Response:
    return redirect(f"{PREFIX}/", code=308)


def _not_found(path: str) -> Response:
    body = problem(404, "Not Found", f"the console has no file {path!r}; open {PREFIX}/")
    return Response(json.dumps(body), status=404, headers={"Content-Type": "application/problem+json"})


def resolve(path: str) -> Path | None:
    """The file under ``STATIC`` that ``path`` names, or None: no ``..``, no hidden files, nothing outside."""
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    candidate = STATIC.joinpath(*parts).resolve()
    if not candidate.is_relative_to(STATIC) or not candidate.is_file():
        return None
    return candidate


def _static(path: str) -> Response:
    found = resolve(path)
    if found is None:
        return _not_found(path)
    content_type = CONTENT_TYPES.get(found.suffix.lower(), "application/octet-stream")
    return Response(found.read_bytes(), status=200, headers={"Content-Type": content_type})


# ------------------------------------------------------------------------------------- config.json
def oidc_config(settings: Settings) -> dict[str, Any] | None:
    """The console's sign-in at an OpenID provider (MEAO_AUTH=jwt and MEAO_CONSOLE_OIDC_CLIENT_ID), or None.

    The endpoints are MEAO_CONSOLE_OIDC_AUTHORIZATION_URL / _TOKEN_URL; where one is not set, it comes
    from the issuer's ``/.well-known/openid-configuration`` (``meao.console.discovery``, read once per
    process); DiscoveryFailed when that cannot be read now.
    """
    console, auth = settings.console, settings.auth
    if auth.mode != "jwt" or not console.oidc_client_id:
        return None
    # MEAO_AUTH_TOKEN_URL (Swagger UI's) is the same endpoint of the same issuer
    authorization, token = console.oidc_authorization_url, console.oidc_token_url or auth.token_url
    if not authorization or not token:
        found = discover(auth.issuer, settings)  # DiscoveryFailed (503) says why and what to set
        authorization = authorization or found.authorization_endpoint
        token = token or found.token_endpoint
    return {"issuer": auth.issuer, "clientId": console.oidc_client_id, "scope": console.oidc_scope,
            "authorizationEndpoint": authorization, "tokenEndpoint": token,
            "redirectUri": f"{settings.public_url}{PREFIX}/"}


def console_config(settings: Settings) -> dict[str, Any]:
    """What the pages need before signing in: how (authMode), where to get a token, how often to poll."""
    return {"authMode": settings.auth.mode, "tokenPath": TOKEN_PATH, "refreshS": settings.console.refresh_s,
            "oidc": oidc_config(settings)}


def _config() -> Response:
    try:
        body = json.dumps(console_config(get_settings()))
    except DiscoveryFailed as exc:  # jwt mode cannot sign anyone in: say why, rather than offer a dead button
        return Response(json.dumps(exc.to_problem()), status=exc.status,
                        headers={"Content-Type": "application/problem+json", "Retry-After": str(int(RETRY_AFTER_S))})
    return Response(body, status=200, headers={"Content-Type": "application/json"})
