"""Bearer tokens on every API: Connexion's security hooks, and the specs as the configured mode serves them.

Each OpenAPI file declares two security schemes, ``oauth2`` (client-credentials flow, token URL
``/oauth2/token``) and ``bearer`` (a token obtained elsewhere), and lets every operation accept either;
the ``oauth2`` requirement names the scope the operation needs (``meao.auth.scopes``). Connexion calls
the functions here before request validation:

- ``token_info`` / ``bearer_info`` (x-tokenInfoFunc / x-bearerInfoFunc) validate the token; an invalid
  one is a 401 ProblemDetails with ``WWW-Authenticate: Bearer … error="invalid_token"`` (RFC 6750 clause 3);
- ``check_scopes`` (x-scopeValidateFunc) turns a missing scope into a 403 (``insufficient_scope``).

A request without a token never reaches them: Connexion raises its own 401, which
``meao.api.errors.unauthorized_error_handler`` answers with the plain challenge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from connexion.context import context
from connexion.lifecycle import ConnexionRequest
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from meao.api.validation import HTTP_METHODS, document_statuses
from meao.auth.scopes import format_scopes, parse_scopes
from meao.auth.tokens import InvalidToken, Principal, TokenIssuerUnavailable, validator_for
from meao.config import Settings, get_settings
from meao.problems import Forbidden, ProblemError, Unauthorized

REALM = "meao"
TOKEN_PATH = "/oauth2/token"
# (API base path, operationId) → the scopes its oauth2 requirement names; bearer_info needs them
_required_scopes: dict[tuple[str, str], tuple[str, ...]] = {}


def challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge (RFC 6750 clause 3)."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:  # error_description allows printable ASCII except '"' and '\' (clause 3)
        parts.append('error_description="{}"'.format(re.sub(r'[^\x20-\x7e]|["\\]', "'", description)))
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def missing_token_detail(settings: Settings) -> str:
    """What a caller without a token should do, for the configured mode."""
    where = (f"from {settings.auth.token_url or settings.auth.issuer}" if settings.auth.mode == "jwt"
             else f"from POST {TOKEN_PATH} with the client credentials grant")
    return f"this operation needs an access token: send 'Authorization: Bearer <token>', getting the token {where}"


def _validate(token: str, cached_only: bool = False) -> dict[str, Any] | None:
    """The token's claims as Connexion keeps them; with ``cached_only``, None when that needs I/O."""
    validator = validator_for(get_settings())
    try:
        principal = validator.validate_cached(token) if cached_only else validator.validate(token)
    except InvalidToken as exc:
        raise Unauthorized(str(exc), challenge=challenge("invalid_token", str(exc))) from exc
    except TokenIssuerUnavailable as exc:
        raise ProblemError(str(exc), status=503, title="Token issuer unavailable") from exc
    if principal is None:
        return None
    return {"sub": principal.subject, "scope": sorted(principal.scopes), "tenant": principal.tenant,
            "operator": principal.operator}


async def _claims(token: str) -> dict[str, Any]:
    """Checked on the event loop when no I/O is needed (the usual case), else in the thread pool: the
    client's registration is read from the database, or the issuer's JWKS fetched."""
    return _validate(token, cached_only=True) or await run_in_threadpool(_validate, token)


async def token_info(token: str) -> dict[str, Any]:
    """x-tokenInfoFunc of the ``oauth2`` scheme: the token's claims, or a 401 ProblemError."""
    return await _claims(token)


async def bearer_info(token: str, request: ConnexionRequest) -> dict[str, Any]:
    """x-bearerInfoFunc of the ``bearer`` scheme: as ``token_info``, plus the operation's scope check."""
    info = await _claims(token)
    routing = request.scope.get("extensions", {}).get("connexion_routing", {})
    check_scopes(_required_scopes.get((routing.get("api_base_path"), routing.get("operation_id")), ()),
                 info["scope"])
    return info


def check_scopes(required_scopes: Iterable[str] | None, token_scopes: Any) -> bool:
    """x-scopeValidateFunc: True when the token holds every required scope, else a 403 ProblemError."""
    required = set(required_scopes or ())
    missing = required - parse_scopes(token_scopes)
    if missing:
        detail = (f"the access token lacks the scope {format_scopes(missing)} that this operation needs; "
                  "ask for a token with it (or have the client registered with it)")
        raise Forbidden(detail, challenge=challenge("insufficient_scope", detail, format_scopes(required)))
    return True


def current_principal() -> Principal | None:
    """Who calls the running request, or None when the operation is open (MEAO_AUTH=none or opened)."""
    try:
        info = context.get("token_info")
    except RuntimeError:  # outside a request: a job or the CLI
        return None
    return _principal_of(info)


def _principal_of(info: Any) -> Principal | None:
    if not isinstance(info, dict) or "sub" not in info:
        return None
    return Principal(subject=info["sub"], scopes=parse_scopes(info.get("scope")), tenant=info.get("tenant"),
                     operator=bool(info.get("operator")))


def _tenant_of(principal: Principal | None, settings: Settings | None) -> str | None:
    auth = (settings or get_settings()).auth
    if not auth.tenant_isolation or principal is None:  # no isolation, or an operation opened to everyone
        return None
    if principal.tenant:
        return principal.tenant
    if principal.operator:
        return None
    # fail closed: a token that names no tenant is not thereby everyone's
    how = ("register the client with --tenant, or with --operator to see across tenants (meao auth client "
           "create)" if auth.mode == "local" else
           f"have the issuer put the tenant in the {auth.tenant_claim!r} claim, or grant operators the "
           f"{auth.operator_scope!r} scope")
    raise Forbidden(f"tenant isolation is on and the access token of {principal.subject} names no tenant and is "
                    f"not an operator's, so it may see no tenant's resources; {how}")


def request_tenant(settings: Settings | None = None) -> str | None:
    """The tenant whose resources the running request may see, or None for all of them.

    None when MEAO_TENANT_ISOLATION is off; with it on, the token's tenant, or None for an operator's
    token without one. Any other token without a tenant is a 403 (``Forbidden``): isolation fails closed.
    """
    return _tenant_of(current_principal(), settings)


def scope_tenant(scope: Scope, settings: Settings | None = None) -> str | None:
    """:func:`request_tenant` for a middleware after the security one but before Connexion's context is
    set: the token's claims are read from the ASGI ``scope``."""
    info = scope.get("extensions", {}).get("connexion_context", {}).get("token_info")
    return _tenant_of(_principal_of(info), settings)


def _opened(method: str, path: str, entries: tuple[str, ...]) -> bool:
    for entry in entries:
        verb, _, target = entry.partition(" ") if " " in entry else ("", "", entry)
        if target.strip() == path and (not verb or verb.lower() == method):
            return True
    return False


# MEAO_AUTH=jwt: a token cannot be checked while the issuer's keys cannot be fetched
_ISSUER_UNAVAILABLE = {
    "description": "Service Unavailable: the token issuer's signing keys (JWKS) could not be fetched to check "
                   "the access token (MEAO_AUTH=jwt); retry later.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}


def prepare_spec(path: Path, settings: Settings, base_path: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of ``path`` as this process serves it.

    ``MEAO_AUTH=none`` drops every security requirement; ``MEAO_AUTH_OPEN_OPERATIONS`` drops those of the
    operations listed ("GET /ops/v1/mec_hosts" or a path template for every method); ``jwt`` mode shows
    the external token URL in Swagger UI and documents 503 on every secured operation (the issuer's keys
    could not be fetched). Records the scopes of each operation for ``bearer_info``.
    """
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = (base_path or spec.get("servers", [{}])[0].get("url", "")).rstrip("/")
    auth = settings.auth
    for route, item in (spec.get("paths") or {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            security = operation.get("security", spec.get("security")) or []
            scopes = next((req["oauth2"] for req in security if "oauth2" in req), [])
            _required_scopes[(base, operation["operationId"])] = tuple(scopes)
            if auth.mode == "none" or _opened(method, base + route, auth.open_operations):
                operation["security"] = []
            elif auth.mode == "jwt" and security:
                operation.setdefault("responses", {}).setdefault("503", _ISSUER_UNAVAILABLE)
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if auth.mode == "none":
        spec.pop("security", None)
        schemes.clear()
    elif auth.mode == "jwt" and auth.token_url and "oauth2" in schemes:
        for flow in schemes["oauth2"].get("flows", {}).values():
            flow["tokenUrl"] = auth.token_url
    document_statuses(spec, base)
    return spec
