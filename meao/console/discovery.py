"""The console's OpenID provider endpoints, discovered from the issuer (OpenID Connect Discovery 1.0).

In jwt mode the console signs operators in at the issuer (authorization code + PKCE). Where the operator
did not set MEAO_CONSOLE_OIDC_AUTHORIZATION_URL and _TOKEN_URL, meao reads them once from
``<MEAO_AUTH_ISSUER>/.well-known/openid-configuration`` (clause 4) and keeps them for the life of the
process. The read is server side, so the page needs no connection to the issuer beyond the token request,
and the Content-Security-Policy can name the token endpoint's origin.

The request goes through meao's outbound gate (``meao.outbound``): the issuer's own host is allowed by
name, as the operator configured it (an IdP on the PoP's private network works without opening that
network to callers' package fetches and notifications through MEAO_OUTBOUND_ALLOW); a redirect elsewhere
is judged like any outbound connection, so a compromised or misconfigured issuer cannot turn meao into a
probe of its own loopback or the cloud's metadata service.

A failure is not cached for good: the IdP may be down for a while when meao starts. It is remembered for
``RETRY_AFTER_S`` (page loads do not each wait on a dead IdP) and then tried again; meanwhile the console
answers its config with a 503 ProblemDetails that says what failed and how to fix it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from meao.config import Settings
from meao.outbound import ALLOW, OutboundGate, OutboundPolicy
from meao.problems import ProblemError

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/openid-configuration"
TIMEOUT_S = 5.0
RETRY_AFTER_S = 30.0
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3


class DiscoveryFailed(ProblemError, status=503, title="Service Unavailable"):
    """The issuer's discovery document could not be read or does not fit; the detail says how to fix it."""


@dataclass(frozen=True)
class ProviderEndpoints:
    """What the console needs of the provider's metadata (OpenID Connect Discovery 1.0, clause 3)."""

    authorization_endpoint: str
    token_endpoint: str


def discovery_url(issuer: str) -> str:
    """Where ``issuer`` publishes its metadata: the issuer with ``/.well-known/openid-configuration``
    appended (clause 4; a trailing slash of the issuer is not doubled)."""
    return issuer.rstrip("/") + WELL_KNOWN


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_problem(url: object, name: str) -> str | None:
    """Why ``url`` cannot be the provider's ``name`` endpoint for a browser, or None when it can: it must
    be an absolute https URL (http only on the loopback, which browsers treat as secure too)."""
    if not isinstance(url, str) or not url:
        return f"it names no {name}"
    parts = urlsplit(url)
    if not parts.netloc or parts.scheme not in ("https", "http"):
        return f"its {name} {url!r} is not an absolute https URL"
    if parts.scheme == "http" and not _loopback(parts.hostname or ""):
        return f"its {name} {url} is plain http; the console sends codes and tokens over https only"
    return None


def _fetch(issuer: str, settings: Settings) -> ProviderEndpoints:
    url = discovery_url(issuer)
    host = urlsplit(url).hostname or ""
    policy = OutboundPolicy.from_entries((*settings.outbound.allow, host), ALLOW)
    fix = ("set MEAO_CONSOLE_OIDC_AUTHORIZATION_URL and MEAO_CONSOLE_OIDC_TOKEN_URL, or make the issuer "
           f"publish its metadata there; meao tries again within {RETRY_AFTER_S:g} s")
    try:
        with (OutboundGate(policy).client(timeout=TIMEOUT_S, follow_redirects=True,
                                          max_redirects=MAX_REDIRECTS) as client,
              client.stream("GET", url, headers={"Accept": "application/json"}) as resp):
            if resp.status_code != 200:
                raise DiscoveryFailed(f"the OpenID provider metadata at {url} answered HTTP "
                                      f"{resp.status_code}; {fix}")
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise DiscoveryFailed(f"the OpenID provider metadata at {url} is larger than "
                                          f"{MAX_DOCUMENT_BYTES // 1024} KiB; {fix}")
    except httpx.HTTPError as exc:
        raise DiscoveryFailed(f"the OpenID provider metadata at {url} could not be read: {exc}; {fix}") from exc
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise DiscoveryFailed(f"the OpenID provider metadata at {url} is not JSON ({exc}); {fix}") from exc
    if not isinstance(doc, dict):
        raise DiscoveryFailed(f"the OpenID provider metadata at {url} is not a JSON object; {fix}")
    # clause 4.3: the metadata is the issuer's only if it names exactly the issuer it was read from
    if doc.get("issuer") != issuer:
        raise DiscoveryFailed(f"the OpenID provider metadata at {url} names the issuer {doc.get('issuer')!r}, "
                              f"not MEAO_AUTH_ISSUER {issuer!r}; correct MEAO_AUTH_ISSUER to the issuer's "
                              "exact identifier, or " + fix)
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise DiscoveryFailed(f"the OpenID provider at {issuer} does not offer PKCE with S256 (it lists "
                              f"{methods}); the console signs in only with it: enable S256 PKCE for the "
                              "console's client at the provider")
    for name in ("authorization_endpoint", "token_endpoint"):
        if why := endpoint_problem(doc.get(name), name):
            raise DiscoveryFailed(f"the OpenID provider metadata at {url} does not fit: {why}; {fix}")
    return ProviderEndpoints(doc["authorization_endpoint"], doc["token_endpoint"])


class EndpointDiscovery:
    """The discovered endpoints of one issuer: fetched on first use, kept once found; a failure is kept
    for ``retry_after_s`` and raised again to every caller meanwhile."""

    def __init__(self, issuer: str, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.issuer = issuer
        self.retry_after_s = retry_after_s
        self.fetches = 0
        self._found: ProviderEndpoints | None = None
        self._failure: DiscoveryFailed | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()

    def endpoints(self, settings: Settings) -> ProviderEndpoints:
        """The provider's endpoints; DiscoveryFailed (503) when they cannot be had now."""
        if self._found is not None:
            return self._found
        with self._lock:  # one fetch at a time; the others wait for its outcome
            if self._found is not None:
                return self._found
            if self._failure is not None and time.monotonic() - self._failed_at < self.retry_after_s:
                raise self._failure
            self.fetches += 1
            try:
                self._found = _fetch(self.issuer, settings)
            except DiscoveryFailed as exc:
                self._failure, self._failed_at = exc, time.monotonic()
                log.warning("console sign-in unavailable: %s", exc.detail)
                raise
            self._failure = None
            log.info("console sign-in at %s: authorization endpoint %s, token endpoint %s", self.issuer,
                     self._found.authorization_endpoint, self._found.token_endpoint)
            return self._found


_discoveries: dict[str, EndpointDiscovery] = {}
_discoveries_lock = threading.Lock()


def discover(issuer: str, settings: Settings) -> ProviderEndpoints:
    """The endpoints ``issuer`` publishes, read once per process (see :class:`EndpointDiscovery`)."""
    if not issuer:
        raise DiscoveryFailed("the console cannot discover the OpenID provider's endpoints: MEAO_AUTH_ISSUER "
                              "is not set; set it, or set MEAO_CONSOLE_OIDC_AUTHORIZATION_URL and "
                              "MEAO_CONSOLE_OIDC_TOKEN_URL")
    with _discoveries_lock:
        found = _discoveries.get(issuer)
        if found is None:
            found = _discoveries[issuer] = EndpointDiscovery(issuer)
    return found.endpoints(settings)


def forget_discoveries() -> None:
    """Drop what was discovered (tests, and a changed configuration)."""
    with _discoveries_lock:
        _discoveries.clear()
