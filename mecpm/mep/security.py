"""Who may call Mp1: each app instance with its own OAuth 2.0 client, and only about itself.

The MEP's token endpoint (``/mep/oauth2/token``, client credentials grant, RFC 6749 clause 4.4) knows
the clients that ``registry.issue_credentials`` made. Its tokens are JWTs signed with the same key as
meao's local tokens but with their own audience (``mp1``), so an Mp1 token opens no Mm1 API and an Mm1
token no Mp1 API. The one scope, ``mp1:<appInstanceId>``, names the app instance; ``bearer_info``
checks the client still exists at every call, so deregistration revokes it at once. Attempts are
throttled like those of meao's own token endpoint (MEAO_AUTH_TOKEN_BURST/RATE), in buckets of their own.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import jwt
from connexion.context import context
from flask import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from meao.api.oauth2 import client_credentials_grant, throttle_for
from meao.api.security import challenge
from meao.auth.clients import verify_secret
from meao.auth.tokens import LEEWAY_S, LOCAL_ALGORITHM, signing_key
from meao.config import get_settings
from meao.db.models import MepApp
from meao.db.session import session_scope
from meao.problems import Forbidden, Unauthorized
from mecpm.mep import registry

TOKEN_PATH = "/mep/oauth2/token"
AUDIENCE = "mp1"
ISSUER = "meao-mep"
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def scope_of(app_instance_id: str) -> str:
    """The one scope an app instance's Mp1 token carries."""
    return f"mp1:{app_instance_id}"


def _authenticate(client_id: str, secret: str) -> tuple[frozenset[str], str | None] | None:
    with session_scope() as session:
        app = session.query(MepApp).filter(MepApp.client_id == client_id).one_or_none()
        ok = verify_secret(secret, app.secret_hash if app else _DUMMY)
        if app is None or not ok:
            return None
        return frozenset({scope_of(app.app_instance_id)}), None


def _issue(client_id: str, scopes: frozenset[str], _tenant: str | None) -> tuple[str, int]:
    settings = get_settings()
    now, ttl = int(time.time()), settings.mep.token_ttl_s
    (scope,) = scopes
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": client_id, "iat": now, "exp": now + ttl,
              "jti": uuid.uuid4().hex, "scope": scope, "appInstanceId": scope.split(":", 1)[1]}
    return jwt.encode(claims, signing_key(settings), algorithm=LOCAL_ALGORITHM, headers={"typ": "at+jwt"}), ttl


def token() -> Response:
    """POST /mep/oauth2/token: an Mp1 access token for an app instance's client."""
    return client_credentials_grant(_authenticate, _issue, throttle_for(get_settings(), TOKEN_PATH))


@dataclass(frozen=True)
class AppClient:
    """What a token check needs to know of an app instance's registration, and what discovery needs."""

    client_id: str
    registered_at: int  # epoch seconds: tokens issued before belong to an earlier registration
    host_id: str
    consumes: frozenset[str]  # service names its AppD lets it discover (required and optional)


# app instance → (its AppClient, or None, as read at the monotonic time): a token check costs no query
# within REVOCATION_CACHE_S; this process forgets an app at once when it deregisters it, others within
# that time
REVOCATION_CACHE_S = 2.0
# a token issued this long before the app's (re)registration still counts: the MEP's clock and the
# database's may differ a little; older ones belong to an earlier registration or secret
REGISTRATION_SKEW_S = 5
_clients: dict[str, tuple[AppClient | None, float]] = {}
_clients_lock = threading.Lock()


def _registered_client(app_instance_id: str) -> AppClient | None:
    now = time.monotonic()
    with _clients_lock:
        cached = _clients.get(app_instance_id)
    if cached is not None and now - cached[1] < REVOCATION_CACHE_S:
        return cached[0]
    with session_scope() as session:
        row = session.execute(select(MepApp.client_id, MepApp.created_at, MepApp.host_id, MepApp.services_required,
                                     MepApp.services_optional).where(MepApp.app_instance_id == app_instance_id)).first()
    client = None
    if row is not None:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        client = AppClient(row.client_id, int(created.timestamp()), row.host_id, registry.consumable(row))
    with _clients_lock:
        if len(_clients) > 100_000:
            _clients.clear()
        _clients[app_instance_id] = (client, now)
    return client


def forget(app_instance_id: str) -> None:
    """Drop what this process cached of an app's client (it was deregistered here)."""
    with _clients_lock:
        _clients.pop(app_instance_id, None)


def _invalid(detail: str) -> Unauthorized:
    return Unauthorized(detail, challenge=challenge("invalid_token", detail))


def _validate(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, signing_key(get_settings()), algorithms=[LOCAL_ALGORITHM], audience=AUDIENCE,
                            issuer=ISSUER, leeway=LEEWAY_S,
                            options={"require": ["exp", "iat", "iss", "aud", "sub", "appInstanceId"]})
    except jwt.ExpiredSignatureError as exc:
        raise _invalid(f"the access token has expired; get a new one from POST {TOKEN_PATH}") from exc
    except jwt.InvalidTokenError as exc:
        raise _invalid(f"the access token is not an Mp1 token of this MEP ({exc}); get one from POST "
                       f"{TOKEN_PATH} with the app instance's client credentials") from exc
    client = _registered_client(claims["appInstanceId"])
    if client is None or client.client_id != claims["sub"]:
        raise _invalid(f"the client of application instance {claims['appInstanceId']} was revoked "
                       "(the instance was terminated)")
    if int(claims["iat"]) + REGISTRATION_SKEW_S < client.registered_at:
        raise _invalid("the access token was issued to an earlier registration of this application instance")
    return {"sub": claims["sub"], "appInstanceId": claims["appInstanceId"], "scope": claims.get("scope", "")}


async def bearer_info(token: str) -> dict[str, Any]:
    """x-bearerInfoFunc of the Mp1 APIs: the token's app instance, or a 401 ProblemError.

    A client checked within REVOCATION_CACHE_S needs no query: then the check runs here, without the
    hop to a thread.
    """
    app_instance_id = _unverified_app(token)
    with _clients_lock:
        cached = _clients.get(app_instance_id) if app_instance_id else None
    if cached is not None and time.monotonic() - cached[1] < REVOCATION_CACHE_S:
        return _validate(token)
    return await run_in_threadpool(_validate, token)


def _unverified_app(token: str) -> str | None:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("appInstanceId")
    except jwt.InvalidTokenError:
        return None


def caller() -> str:
    """The app instance id of the running Mp1 request."""
    info = context.get("token_info") or {}
    return info["appInstanceId"]


def caller_client() -> AppClient:
    """The calling app's registration as the token check saw it (at most REVOCATION_CACHE_S old)."""
    client = _registered_client(caller())
    if client is None:
        raise _invalid(f"the client of application instance {caller()} was revoked")
    return client


def require_self(app_instance_id: str) -> None:
    """403 unless the caller is ``app_instance_id`` itself."""
    me = caller()
    if me != app_instance_id:
        raise Forbidden(f"application instance {me} may act only on its own resources, not those of "
                        f"application instance {app_instance_id}")
