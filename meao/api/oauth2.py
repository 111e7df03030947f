"""meao's token endpoint in ``local`` mode (RFC 6749 clause 3.2), client credentials grant only (clause 4.4).

``POST /oauth2/token`` with a form-encoded body ``grant_type=client_credentials[&scope=…]``; the client
authenticates with HTTP Basic (clause 2.3.1) or ``client_id``/``client_secret`` in the body, not both.
Answers are those of clauses 5.1 and 5.2 (JSON, ``Cache-Control: no-store``), not ProblemDetails, except
the 429 of a throttled attempt (``meao.auth.throttle``), which OAuth 2.0 does not define: a ProblemDetails
with ``Retry-After``, given before any secret is hashed.

The error codes of clause 5.2 in this flow, cheapest check first:

- ``invalid_request``: not form-encoded, a parameter twice, two authentication methods, no grant_type;
- ``unsupported_grant_type``: a grant_type other than client_credentials (told before authenticating:
  no other grant can succeed here, so there is no secret worth checking);
- ``invalid_client`` (401): no, unknown or wrong client credentials;
- ``invalid_grant``: in the client credentials grant the client's registration is the grant
  (clause 1.3.4); it is void when it holds none of meao's current scopes (e.g. the scopes it was
  registered with no longer exist), so the client can be given nothing until it is registered again;
- ``invalid_scope``: a scope beyond the client's.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from flask import Response, request

from meao.auth import clients
from meao.auth.scopes import ALL_SCOPES, format_scopes, parse_scopes
from meao.auth.throttle import Throttle
from meao.auth.tokens import issue_token
from meao.config import Settings, get_settings
from meao.problems import PROBLEM_JSON, TooManyRequests

log = logging.getLogger(__name__)
FORM = "application/x-www-form-urlencoded"
TOKEN_ENDPOINT = "/oauth2/token"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An error response of clause 5.2: ``error`` code, a human description, its HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _too_many(problem: TooManyRequests) -> Response:
    return Response(json.dumps(problem.to_problem()), problem.status, headers={**_NO_STORE, **problem.headers},
                    content_type=PROBLEM_JSON)


def _answer(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers={**_NO_STORE, **(headers or {})},
                    content_type="application/json;charset=UTF-8")


def _form() -> dict[str, str]:
    if request.mimetype != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM} (RFC 6749 clause 4.4.2)")
    form: dict[str, str] = {}
    for key in request.form:
        values = request.form.getlist(key)
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {key!r} is given more than once")
        if values[0] != "":  # clause 3.2: a parameter without a value is as if omitted
            form[key] = values[0]
    return form


def _credentials(form: dict[str, str]) -> tuple[str, str]:
    """(client_id, secret) from HTTP Basic or the body (clause 2.3.1); exactly one method may be used."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "authenticate the client with HTTP Basic or client_secret", 401)
        if "client_secret" in form:
            raise OAuthError("invalid_request", "use one client authentication method, not Basic and "
                                                "client_secret together (clause 2.3)")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "the Basic credentials are not valid base64", 401) from exc
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "the Basic credentials lack the ':' separator", 401)
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id in the body differs from the Basic credentials")
        return client_id, secret
    if "client_id" not in form or "client_secret" not in form:
        raise OAuthError("invalid_client", "authenticate the client: HTTP Basic, or client_id and "
                                           "client_secret in the body", 401)
    return form["client_id"], form["client_secret"]


_throttles: dict[str, tuple[Settings, Throttle]] = {}


def throttle_for(settings: Settings, endpoint: str = TOKEN_ENDPOINT) -> Throttle:
    """The buckets of a token endpoint of this process (meao's, the MEP's: each its own), made once per
    settings object."""
    made = _throttles.get(endpoint)
    if made is None or made[0] is not settings:
        made = _throttles[endpoint] = (settings, Throttle(settings.auth.token_burst, settings.auth.token_rate))
    return made[1]


def token() -> Response:
    """POST /oauth2/token: issue an access token to an authenticated client (clauses 4.4.2, 4.4.3, 5.1)."""
    settings = get_settings()
    return client_credentials_grant(_meao_client, lambda client_id, scopes, tenant: issue_token(
        settings, client_id, scopes, tenant), throttle_for(settings))


def _meao_client(client_id: str, secret: str) -> tuple[frozenset[str], str | None] | None:
    client = clients.authenticate_client(client_id, secret)
    if client is None:
        return None
    if not set(client.scopes) & set(ALL_SCOPES):
        raise OAuthError("invalid_grant", f"client {client_id} holds none of meao's scopes (it lists "
                                          f"{format_scopes(client.scopes) or 'none'}); register it again with "
                                          "`meao auth client create --scope …`")
    return frozenset(client.scopes), client.tenant


Authenticate = Callable[[str, str], "tuple[frozenset[str], str | None] | None"]
Issue = Callable[[str, frozenset[str], "str | None"], "tuple[str, int]"]


_throttled_log = {"next": 0.0, "quiet": 0}  # a flood of refusals must not become a flood of log lines
THROTTLE_LOG_EVERY_S = 10.0


def _log_throttled(client_id: str, wait: int) -> None:
    """A warning for a throttled attempt, at most one per THROTTLE_LOG_EVERY_S (counting the others)."""
    now = time.monotonic()
    if now < _throttled_log["next"]:
        _throttled_log["quiet"] += 1
        return
    log.warning("token request throttled: client %r from %s (retry in %d s); %d more throttled since the last "
                "such warning", client_id[:256], request.remote_addr, wait, _throttled_log["quiet"])
    _throttled_log.update(next=now + THROTTLE_LOG_EVERY_S, quiet=0)


def _attempt_keys(client_id: str) -> tuple[str, str]:
    """The buckets an attempt draws on: its client id's (known or not) and its source address's (the
    peer's, or the X-Forwarded-For of a proxy uvicorn trusts: FORWARDED_ALLOW_IPS, default 127.0.0.1)."""
    return f"client:{client_id[:256]}", f"address:{request.remote_addr or '-'}"


def client_credentials_grant(authenticate: Authenticate, issue: Issue, throttle: Throttle) -> Response:
    """The token endpoint's answer for a client store: ``authenticate`` gives a client's scopes and tenant
    (None: unknown client or wrong secret; it may raise an OAuthError, e.g. ``invalid_grant``), ``issue``
    the token and its lifetime in seconds; ``throttle`` refuses, before ``authenticate`` hashes anything,
    an attempt beyond the client id's or the address's allowance."""
    try:
        form = _form()
        grant = form.get("grant_type")
        if grant is None:
            raise OAuthError("invalid_request", "grant_type is missing; meao supports client_credentials")
        if grant != "client_credentials":
            raise OAuthError("unsupported_grant_type",
                             f"grant_type {grant!r} is not supported; meao supports client_credentials")
        client_id, secret = _credentials(form)
        keys = _attempt_keys(client_id)
        wait = throttle.take(keys)
        if wait:
            _log_throttled(client_id, wait)
            return _too_many(TooManyRequests(
                f"too many token requests for client {client_id[:256]} or from {request.remote_addr}; retry in "
                f"{wait} s (a client should reuse its token until shortly before it expires)", retry_after=wait))
        known = authenticate(client_id, secret)
        if known is None:
            throttle.charge(keys)  # a failure costs more than a success: guessing is slower than knowing
            log.info("token request refused: unknown client %r or wrong secret", client_id)
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        allowed, tenant = known
        requested = parse_scopes(form.get("scope"))
        if requested - allowed:
            raise OAuthError("invalid_scope", f"client {client_id} may not have the scope(s) "
                                              f"{format_scopes(requested - allowed)}; it has {format_scopes(allowed)}")
        granted = requested or allowed
        access_token, ttl = issue(client_id, granted, tenant)
    except OAuthError as exc:
        headers = {"WWW-Authenticate": 'Basic realm="meao"'} if exc.status == 401 else None
        return _answer({"error": exc.error, "error_description": exc.description}, exc.status, headers)
    return _answer({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl,
                    "scope": format_scopes(granted)}, 200)
