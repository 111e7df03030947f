"""How meao authenticates to subscribers when it delivers notifications (SubscriptionAuthentication).

A subscription request may carry ``authentication`` (a meao extension modelled on the
SubscriptionAuthentication type of ETSI GS NFV-SOL 013). Its wire form is mapped here, once, to the
form stored in ``Subscription.authentication``::

    {"type": "BASIC", "user_name": …, "password": …}
    {"type": "OAUTH2_CLIENT_CREDENTIALS", "client_id": …, "client_secret": …, "token_endpoint": …}

The stored form holds secrets: no view renders it and nothing logs it. For the client credentials
type the deliverer gets a token from the subscriber's token endpoint and reuses it until it expires
(``meao.auth.client_credentials``), fetching a new one once when the subscriber answers 401.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from meao.auth.client_credentials import ClientCredentials, ClientCredentialsAuth
from meao.config import get_settings
from meao.outbound import OutboundPolicy
from meao.problems import BadRequest

BASIC = "BASIC"
OAUTH2_CLIENT_CREDENTIALS = "OAUTH2_CLIENT_CREDENTIALS"


def from_request(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored form of a request's ``authentication``; BadRequest when the chosen type lacks its params.

    With both types listed, the client credentials grant is used (a token is safer on the wire than
    a reusable password).
    """
    if not doc:
        return None
    types = doc.get("authType") or []
    if OAUTH2_CLIENT_CREDENTIALS in types:
        params = doc.get("paramsOauth2ClientCredentials")
        if not params:
            raise BadRequest("authentication.authType has OAUTH2_CLIENT_CREDENTIALS: give "
                             "paramsOauth2ClientCredentials (clientId, clientPassword, tokenEndpoint)")
        if not str(params["tokenEndpoint"]).startswith(("http://", "https://")):
            raise BadRequest("paramsOauth2ClientCredentials.tokenEndpoint must be an http or https URI")
        OutboundPolicy.for_notifications(get_settings()).refuse_literal(
            str(params["tokenEndpoint"]), "paramsOauth2ClientCredentials.tokenEndpoint")
        return {"type": OAUTH2_CLIENT_CREDENTIALS, "client_id": params["clientId"],
                "client_secret": params["clientPassword"], "token_endpoint": params["tokenEndpoint"]}
    if BASIC in types:
        params = doc.get("paramsBasic")
        if not params:
            raise BadRequest("authentication.authType has BASIC: give paramsBasic (userName, password)")
        return {"type": BASIC, "user_name": params["userName"], "password": params["password"]}
    raise BadRequest(f"authentication.authType must list {BASIC} or {OAUTH2_CLIENT_CREDENTIALS}")


class CallbackAuthenticator:
    """The httpx authentication of each subscription's stored credentials; tokens are shared per client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token_auths: dict[tuple[str, str, str], ClientCredentialsAuth] = {}

    def auth_for(self, stored: dict[str, Any] | None) -> httpx.Auth | None:
        """Basic credentials, a client-credentials token source, or None for an unauthenticated POST."""
        if not stored:
            return None
        if stored["type"] == BASIC:
            return httpx.BasicAuth(stored["user_name"], stored["password"])
        key = (stored["token_endpoint"], stored["client_id"], stored["client_secret"])
        with self._lock:
            if key not in self._token_auths:
                creds = ClientCredentials(stored["client_id"], stored["client_secret"], "the subscription")
                self._token_auths[key] = ClientCredentialsAuth(creds, stored["token_endpoint"])
            return self._token_auths[key]
