"""The client side of meao's APIs: an access token from client credentials (RFC 6749 clause 4.4).

Used by the operator CLI (``meao.oss.client``) and by the MEPM-V workers calling the granting API. Where
the credentials come from, first found wins:

1. ``MEAO_CLIENT_ID`` and ``MEAO_CLIENT_SECRET``;
2. ``MEAO_CLIENT_CREDENTIALS_FILE``: JSON ``{"client_id", "client_secret"[, "token_url", "scope"]}``;
3. ``<MEAO_DATA_DIR>/admin-credentials.json`` (default ``./var``), written by ``meao serve`` when it
   bootstrapped the ``admin`` client on this machine.

With none of them, requests go without a token (for ``MEAO_AUTH=none`` servers). The token URL is
``MEAO_TOKEN_URL``, else the file's ``token_url``, else ``<endpoint>/oauth2/token``; ``MEAO_CLIENT_SCOPE``
asks for fewer scopes than the client has.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

import httpx

from meao.config import client_credential_environ

log = logging.getLogger(__name__)
ADMIN_CREDENTIALS_FILE = "admin-credentials.json"
EXPIRY_MARGIN_S = 30  # fetch a new token this long before the old one expires


class CredentialsError(httpx.HTTPError):
    """The configured credentials cannot be read, or the token endpoint refused them.

    An ``httpx.HTTPError``, so callers that handle a failed request also handle a refused token.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ClientCredentials:
    """A client id and secret, and where they came from (for messages; the secret is never shown)."""

    client_id: str
    client_secret: str = field(repr=False)
    source: str
    token_url: str | None = None
    scope: str | None = None


def _from_file(path: Path, source: str) -> ClientCredentials:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return ClientCredentials(client_id=str(doc["client_id"]), client_secret=str(doc["client_secret"]),
                                 source=source, token_url=doc.get("token_url"), scope=doc.get("scope"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"cannot read client credentials from {path} ({source}): {exc!r}; it must be "
                               'JSON with "client_id" and "client_secret"') from exc


def load_client_credentials(env: Mapping[str, str] | None = None) -> ClientCredentials | None:
    """The credentials of the first source that has them (see the module docstring), or None."""
    env = client_credential_environ() if env is None else env
    scope = env.get("MEAO_CLIENT_SCOPE") or None
    if env.get("MEAO_CLIENT_ID") or env.get("MEAO_CLIENT_SECRET"):
        if not (env.get("MEAO_CLIENT_ID") and env.get("MEAO_CLIENT_SECRET")):
            raise CredentialsError("set both MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or neither")
        return ClientCredentials(env["MEAO_CLIENT_ID"], env["MEAO_CLIENT_SECRET"], "MEAO_CLIENT_ID/MEAO_CLIENT_SECRET",
                                 scope=scope)
    if env.get("MEAO_CLIENT_CREDENTIALS_FILE"):
        creds = _from_file(Path(env["MEAO_CLIENT_CREDENTIALS_FILE"]).expanduser(), "MEAO_CLIENT_CREDENTIALS_FILE")
    else:
        default = Path(env.get("MEAO_DATA_DIR") or "var") / ADMIN_CREDENTIALS_FILE
        if not default.is_file():
            return None
        creds = _from_file(default, str(default.resolve()))
    return ClientCredentials(creds.client_id, creds.client_secret, creds.source, creds.token_url,
                             scope or creds.scope)


class ClientCredentialsAuth(httpx.Auth):
    """httpx authentication with a bearer token from the client credentials grant (sync clients).

    The token is fetched on first use and reused until shortly before it expires; a 401 answer makes
    it fetch a new one and send the request once more (when the body can be sent again). A token
    endpoint that answers 404 means a server without one (``MEAO_AUTH=none``): requests then go
    without a token. Safe to share between threads.
    """

    def __init__(self, credentials: ClientCredentials, token_url: str) -> None:
        self.credentials = credentials
        self.token_url = token_url
        self._lock = threading.Lock()  # guards the cached token
        self._fetching = threading.Lock()  # held while a token request is out; never nested in _lock
        self._token: str | None = None
        self._expires_at = 0.0
        self._no_endpoint = False

    def _cached(self) -> str | None:
        with self._lock:
            if self._token and time.monotonic() < self._expires_at - EXPIRY_MARGIN_S:
                return self._token
            return None

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        if self.credentials.scope:
            data["scope"] = self.credentials.scope
        # clause 2.3.1: id and secret are form-encoded before they are joined and base64-encoded
        pair = f"{quote_plus(self.credentials.client_id)}:{quote_plus(self.credentials.client_secret)}"
        basic = base64.b64encode(pair.encode()).decode()
        return httpx.Request("POST", self.token_url, data=data,
                             headers={"Accept": "application/json", "Authorization": f"Basic {basic}"})

    def _store(self, response: httpx.Response) -> str | None:
        response.read()
        if response.status_code == 404:
            with self._lock:
                self._no_endpoint = True
            log.debug("no token endpoint at %s: sending requests without a token", self.token_url)
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            why = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
            raise CredentialsError(f"the token endpoint {self.token_url} refused client "
                                   f"{self.credentials.client_id} ({self.credentials.source}): {why}",
                                   response.status_code)
        with self._lock:
            self._token = str(body["access_token"])
            self._expires_at = time.monotonic() + float(body.get("expires_in") or 300)
            return self._token

    def token(self, http: httpx.Client) -> str | None:
        """A valid token (cached or fetched with ``http``), or None when the server has no token endpoint."""
        with self._fetching:
            return self._cached() or self._store(http.send(self._token_request()))

    def _fresh_token(self) -> Generator[httpx.Request, httpx.Response, str | None]:
        return self._store((yield self._token_request()))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the bearer token; on 401 get a new token and retry once."""
        if self._no_endpoint:
            yield request
            return
        token = self._cached()
        if token is None:
            with self._fetching:  # concurrent requests wait for one token instead of each fetching one
                token = self._cached() or (yield from self._fresh_token())
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or not token or not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed upload cannot be sent twice; its caller sees the 401
        with self._fetching:
            renewed = self._cached()
            if renewed in (None, token):  # nobody renewed it meanwhile
                with self._lock:
                    self._token = None
                renewed = yield from self._fresh_token()
        if renewed:
            request.headers["Authorization"] = f"Bearer {renewed}"
            yield request


def client_auth(endpoint: str, env: Mapping[str, str] | None = None) -> ClientCredentialsAuth | None:
    """Token authentication for requests to ``endpoint`` (meao's base URL), or None without credentials."""
    env = client_credential_environ() if env is None else env
    creds = load_client_credentials(env)
    if creds is None:
        return None
    token_url = env.get("MEAO_TOKEN_URL") or creds.token_url or f"{endpoint.rstrip('/')}/oauth2/token"
    return ClientCredentialsAuth(creds, token_url)


_shared: dict[str, ClientCredentialsAuth | None] = {}
_shared_lock = threading.Lock()


def shared_client_auth(endpoint: str) -> ClientCredentialsAuth | None:
    """One ``client_auth`` per endpoint per process, so threads share one cached token (the workers)."""
    with _shared_lock:
        if endpoint not in _shared:
            _shared[endpoint] = client_auth(endpoint)
        return _shared[endpoint]
