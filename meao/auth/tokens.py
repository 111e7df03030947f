"""Access tokens: JWTs (RFC 7519) that meao issues itself or that an external OAuth 2.0 server issues.

- ``local`` mode: meao's token endpoint signs HS256 tokens with a key from ``MEAO_AUTH_SIGNING_KEY_FILE``
  or, by default, ``<data_dir>/auth-signing.key``, generated once (0600) and shared by every meao
  process of the machine. A token names its client in ``sub``; a deleted client's tokens stop working.
- ``jwt`` mode: tokens of an external server (e.g. Keycloak), checked against the keys it publishes at
  ``MEAO_AUTH_JWKS_URL`` (asymmetric algorithms only) and the configured issuer and audience.

Both check expiry, issuer and audience and give a ``Principal``: subject, scopes and tenant.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import jwt

from meao.auth.scopes import format_scopes, parse_scopes
from meao.config import Settings

log = logging.getLogger(__name__)

LOCAL_ALGORITHM = "HS256"
# an external server's keys are public keys: never accept an HMAC algorithm with them
ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                         "EdDSA"]
LEEWAY_S = 30  # clock skew between meao and the token issuer
SIGNING_KEY_FILE = "auth-signing.key"
MIN_KEY_BYTES = 32  # RFC 7518 clause 3.2: an HS256 key at least as long as the hash


@dataclass(frozen=True)
class Principal:
    """Who called: the token's subject, the scopes it grants and the tenant it belongs to, if any."""

    subject: str
    scopes: frozenset[str]
    tenant: str | None = None


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not meant for meao; the message says which."""


class TokenIssuerUnavailable(Exception):
    """The external issuer's signing keys could not be fetched."""


class TokenValidator(Protocol):
    """Turns a bearer token into a Principal or raises InvalidToken."""

    def validate(self, token: str) -> Principal: ...

    def validate_cached(self, token: str) -> Principal | None:
        """The Principal when it can be had without I/O (else None: call ``validate`` off the event loop)."""
        ...


def local_issuer(settings: Settings) -> str:
    """The ``iss`` of locally issued tokens."""
    return settings.auth.issuer or "meao"


def local_audience(settings: Settings) -> str:
    """The ``aud`` of locally issued tokens."""
    return settings.auth.audience or "meao"


def signing_key(settings: Settings) -> bytes:
    """The HMAC key of local tokens: the configured file, or one generated once under the data directory."""
    configured = settings.auth.signing_key_file
    return _read_key(configured) if configured else _read_or_create_key(settings.data_dir / SIGNING_KEY_FILE)


@lru_cache(maxsize=4)
def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise SystemExit(f"meao: cannot read the token signing key {path}: {exc}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise SystemExit(f"meao: the token signing key in {path} is {len(key)} bytes; it needs at least "
                         f"{MIN_KEY_BYTES} (e.g. `openssl rand -hex 64 > {path}`)")
    if path.stat().st_mode & 0o077:
        log.warning("the token signing key %s is readable by other users; chmod 600 it", path)
    return key


@lru_cache(maxsize=4)
def _read_or_create_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(64) + "\n")
        try:
            os.link(tmp, path)  # atomic and never overwrites: processes starting together agree on one key
            log.info("generated the token signing key %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return _read_key(path)


def issue_token(settings: Settings, client_id: str, scopes: frozenset[str] | set[str],
                tenant: str | None) -> tuple[str, int]:
    """A signed access token for a local client and its lifetime in seconds."""
    now = int(time.time())
    ttl = settings.auth.token_ttl_s
    claims: dict[str, Any] = {"iss": local_issuer(settings), "sub": client_id, "aud": local_audience(settings),
                              "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, "client_id": client_id,
                              "scope": format_scopes(scopes)}
    if tenant:
        claims[settings.auth.tenant_claim] = tenant
    token = jwt.encode(claims, signing_key(settings), algorithm=LOCAL_ALGORITHM, headers={"typ": "at+jwt"})
    return token, ttl


# Why PyJWT refused a token, in words for the caller; the first matching class wins (subclasses first).
_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "the access token has expired; request a new one"),
    (jwt.ImmatureSignatureError, "the access token is not valid yet (check the clocks)"),
    (jwt.InvalidIssuerError, "the access token was not issued by {issuer}"),
    (jwt.InvalidAudienceError, "the access token is not meant for meao (audience)"),
    (jwt.InvalidSignatureError, "the access token's signature does not verify"),
    (jwt.MissingRequiredClaimError, "the access token lacks the {claim!r} claim"),
    (jwt.InvalidAlgorithmError, "the access token is signed with an algorithm meao does not accept"),
    (jwt.DecodeError, "the access token is not a well-formed JWT"),
)


def _why(exc: jwt.InvalidTokenError, issuer: str) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason.format(issuer=issuer, claim=getattr(exc, "claim", None))
    return f"the access token is not valid: {exc}"


@dataclass(frozen=True)
class Registration:
    """What a token check needs of a local client: since when it exists, its scopes, its tenant."""

    client_id: str
    created_s: int
    scopes: frozenset[str]
    tenant: str | None


class RegistrationCache:
    """Each client's registration as this process last read it, trusted for ``ttl_s`` seconds.

    A token check then costs no database query: a deleted client's tokens, or scopes taken from a
    client, stop working within ``ttl_s`` (MEAO_AUTH_CLIENT_CACHE_S) in every process. An unknown client
    is remembered too, so a forged ``sub`` cannot make each request a query.
    """

    MAX_ENTRIES = 10000

    def __init__(self, ttl_s: float, clock: Any = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, tuple[float, Registration | None]] = {}
        self._lock = threading.Lock()

    def cached(self, client_id: str) -> tuple[bool, Registration | None]:
        """(True, registration or None) when a fresh reading is at hand; (False, None) when it is not."""
        with self._lock:
            entry = self._entries.get(client_id)
        if entry is None or self.clock() >= entry[0]:
            return False, None
        return True, entry[1]

    def get(self, client_id: str) -> Registration | None:
        """The registration, from the cache or read now."""
        fresh, found = self.cached(client_id)
        return found if fresh else self.read(client_id)

    def read(self, client_id: str) -> Registration | None:
        """Read the client from the database and remember it."""
        from meao.auth.clients import get_client
        from meao.db.session import session_scope

        with session_scope() as session:
            client = get_client(session, client_id)
            found = None if client is None else Registration(
                client.client_id, int(_aware(client.created_at).timestamp()), frozenset(client.scopes), client.tenant)
        if self.ttl_s > 0:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[client_id] = (self.clock() + self.ttl_s, found)
        return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class LocalTokens:
    """Tokens of meao's own token endpoint; the client must still exist, and keeps at most its scopes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = signing_key(settings)
        self.registrations = RegistrationCache(settings.auth.client_cache_s)
        self._verified: dict[str, dict[str, Any]] = {}  # token → its claims, once verified

    def validate(self, token: str) -> Principal:
        """Check signature, expiry, issuer and audience, then the client's current registration."""
        claims = self._claims(token)
        return self._principal(claims, self.registrations.get(str(claims["sub"])))

    def validate_cached(self, token: str) -> Principal | None:
        """As :meth:`validate` when the client's registration is cached (no I/O), else None."""
        claims = self._claims(token)
        fresh, registration = self.registrations.cached(str(claims["sub"]))
        return self._principal(claims, registration) if fresh else None

    def _claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature, issuer and audience verify and which has not expired;
        a token checked before is not decoded again (a client sends the same one until it expires)."""
        claims = self._verified.get(token)
        if claims is not None and time.time() < claims["exp"] + LEEWAY_S:
            return claims
        issuer = local_issuer(self.settings)
        try:
            claims = jwt.decode(token, self.key, algorithms=[LOCAL_ALGORITHM], issuer=issuer,
                                audience=local_audience(self.settings), leeway=LEEWAY_S,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc, issuer)) from exc
        if len(self._verified) >= RegistrationCache.MAX_ENTRIES:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    @staticmethod
    def _principal(claims: dict[str, Any], client: Registration | None) -> Principal:
        if client is None:
            raise InvalidToken(f"client {claims['sub']} no longer exists")
        if int(claims["iat"]) < client.created_s:  # issued to an earlier client of that name
            raise InvalidToken(f"the access token was issued before client {client.client_id} was registered")
        return Principal(subject=client.client_id, scopes=parse_scopes(claims.get("scope")) & client.scopes,
                         tenant=client.tenant)


class JwksTokens:
    """Tokens of an external OAuth 2.0 server, verified with the keys of its JWKS document (RFC 7517)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # the key set is cached and fetched again when a token names an unknown key id (key rotation)
        self.jwks = jwt.PyJWKClient(settings.auth.jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def validate(self, token: str) -> Principal:
        """Find the signing key by ``kid``, then check signature, expiry, issuer and audience."""
        auth = self.settings.auth
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise TokenIssuerUnavailable(f"cannot fetch the token signing keys from {auth.jwks_url}: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"the access token is not signed by a key of {auth.issuer}") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc, auth.issuer)) from exc
        try:
            claims = jwt.decode(token, key.key, algorithms=ASYMMETRIC_ALGORITHMS, issuer=auth.issuer,
                                audience=auth.audience, leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc, auth.issuer)) from exc
        scopes = parse_scopes(claims.get("scope")) | parse_scopes(claims.get("scp"))
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "unknown"
        tenant = claims.get(auth.tenant_claim)
        return Principal(subject=str(subject), scopes=scopes, tenant=str(tenant) if tenant else None)

    def validate_cached(self, token: str) -> Principal | None:
        """None: finding the key may fetch the JWKS, so the check always runs off the event loop."""
        return None


_validator: tuple[Settings, TokenValidator] | None = None


def validator_for(settings: Settings) -> TokenValidator:
    """The validator of the configured mode (made once per settings object)."""
    global _validator
    if _validator is None or _validator[0] is not settings:
        made: TokenValidator = JwksTokens(settings) if settings.auth.mode == "jwt" else LocalTokens(settings)
        _validator = (settings, made)
    return _validator[1]


def check_settings(settings: Settings) -> None:
    """Refuse to start with an incomplete configuration (SystemExit names what is missing).

    In ``local`` mode the signing key is read, or generated, now: a bad key file stops the start, and
    the processes of the machine agree on one key before the first token.
    """
    auth = settings.auth
    if auth.mode == "local":
        signing_key(settings)
    if auth.mode == "jwt":
        missing = [name for name, value in (("MEAO_AUTH_ISSUER", auth.issuer), ("MEAO_AUTH_AUDIENCE", auth.audience),
                                            ("MEAO_AUTH_JWKS_URL", auth.jwks_url)) if not value]
        if missing:
            raise SystemExit(f"meao: MEAO_AUTH=jwt needs {', '.join(missing)} (the external OAuth 2.0 server's "
                             "issuer, the audience of meao's tokens and the URL of its JWKS)")
