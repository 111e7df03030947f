"""Who may call Mp1: each app instance with its own OAuth 2.0 client, and only about itself.

The MEP's token endpoint (``/mep/oauth2/token``, client credentials grant, RFC 6749 clause 4.4) knows
the clients that ``registry.issue_credentials`` made. Its tokens are JWTs signed with the same key as
meao's local tokens but with their own audience (``mp1``), so an Mp1 token opens no Mm1 API and an Mm1
token no Mp1 API. The one scope, ``mp1:<appInstanceId>``, names the app instance; ``bearer_info``
checks the client still exists at every call, so deregistration revokes it at once.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC
from typing import Any

import jwt
from connexion.context import context
from flask import Response
from starlette.concurrency import run_in_threadpool

from meao.api.oauth2 import client_credentials_grant
from meao.api.security import challenge
from meao.auth.clients import verify_secret
from meao.auth.tokens import LEEWAY_S, LOCAL_ALGORITHM, signing_key
from meao.config import get_settings
from meao.db.models import MepApp
from meao.db.session import session_scope
from meao.problems import Forbidden, Unauthorized

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
    return client_credentials_grant(_authenticate, _issue)


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
    with session_scope() as session:
        app = session.get(MepApp, claims["appInstanceId"])
        if app is None or app.client_id != claims["sub"]:
            raise _invalid(f"the client of application instance {claims['appInstanceId']} was revoked "
                           "(the instance was terminated)")
        created = app.created_at if app.created_at.tzinfo else app.created_at.replace(tzinfo=UTC)
        issued_before = int(claims["iat"]) + LEEWAY_S < int(created.timestamp())
    if issued_before:
        raise _invalid("the access token was issued to an earlier registration of this application instance")
    return {"sub": claims["sub"], "appInstanceId": claims["appInstanceId"], "scope": claims.get("scope", "")}


async def bearer_info(token: str) -> dict[str, Any]:
    """x-bearerInfoFunc of the Mp1 APIs: the token's app instance, or a 401 ProblemError."""
    return await run_in_threadpool(_validate, token)


def caller() -> str:
    """The app instance id of the running Mp1 request."""
    info = context.get("token_info") or {}
    return info["appInstanceId"]


def require_self(app_instance_id: str) -> None:
    """403 unless the caller is ``app_instance_id`` itself."""
    me = caller()
    if me != app_instance_id:
        raise Forbidden(f"application instance {me} may act only on its own resources, not those of "
                        f"application instance {app_instance_id}")
