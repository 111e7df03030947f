"""Access tokens: JWTs (RFC 7519) that meao issues itself or that an external OAuth 2.0 server issues.

- ``local`` mode: meao's token endpoint signs HS256 tokens with a key from ``MEAO_AUTH_SIGNING_KEY_FILE``
  or, by default, ``<data_dir>/auth-signing.key``, generated once (0600) and shared by every meao
  process of the machine. A token names its client in ``sub``; a deleted client's tokens stop working.
- ``jwt`` mode: tokens of an external server (e.g. Keycloak), checked against the keys it publishes at
  ``MEAO_AUTH_JWKS_URL`` (asymmetric algorithms only) and the configured issuer and audience.

Both check expiry, issuer and audience and give a ``Principal``: subject, scopes, tenant and whether it
is an operator (who, without a tenant, sees every tenant under MEAO_TENANT_ISOLATION).
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
# An external server's keys are public keys: never accept an HMAC algorithm with them. Each accepted
# algorithm with the key type (JWK ``kty``, RFC 7518 clause 6.1) it needs: a token whose header names an
# algorithm of another family is refused before PyJWT ever sees the key (else it raises a TypeError).
_KEY_TYPES = {**dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
              **dict.fromkeys(("ES256", "ES384", "ES512"), "EC"), "EdDSA": "OKP"}
ASYMMETRIC_ALGORITHMS = list(_KEY_TYPES)
LEEWAY_S = 30  # clock skew between meao and the token issuer
SIGNING_KEY_FILE = "auth-signing.key"
MIN_KEY_BYTES = 32  # RFC 7518 clause 3.2: an HS256 key at least as long as the hash


@dataclass(frozen=True)
class Principal:
    """Who called: the token's subject, the scopes it grants, the tenant it belongs to, if any, and whether
    it is an operator (a local client registered with ``--operator``, or an external token with the
    MEAO_AUTH_OPERATOR_SCOPE scope)."""

    subject: str
    scopes: frozenset[str]
    tenant: str | None = None
    operator: bool = False


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
    """What a token check needs of a local client: since when it exists, its scopes, its tenant, whether it
    is an operator."""

    client_id: str
    created_s: int
    scopes: frozenset[str]
    tenant: str | None
    operator: bool = False


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
                client.client_id, int(_aware(client.created_at).timestamp()), frozenset(client.scopes), client.tenant,
                bool(client.operator))
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
                         tenant=client.tenant, operator=client.operator and not client.tenant)


JWKS_LIFESPAN_S = 300.0  # the key set is fetched again after this long (key rotation, revoked keys)
JWKS_RETRY_S = 2.0  # after a failed fetch, requests are 503 at once for this long instead of each waiting


class JwksTokens:
    """Tokens of an external OAuth 2.0 server, verified with the keys of its JWKS document (RFC 7517).

    The key set is kept for ``JWKS_LIFESPAN_S``; a token naming a key id the set lacks (a rotated-in key)
    fetches it again, but at most once per MEAO_AUTH_JWKS_REFETCH_S: within that cooldown an unknown key
    id is a 401 at once, so tokens with random key ids cannot make meao hammer the issuer.
    """

    def __init__(self, settings: Settings, clock: Any = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        # PyJWKClient only fetches and parses here: the caching and the cooldown are ours, whatever its version
        self.jwks = jwt.PyJWKClient(settings.auth.jwks_url, cache_jwk_set=False, cache_keys=False, timeout=10)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failed: tuple[float, str] | None = None  # when the last fetch failed, and why
        self._lock = threading.Lock()  # one fetch at a time; the others wait for its keys

    def validate(self, token: str) -> Principal:
        """Find the signing key by ``kid``, check that the header's algorithm fits it, then check signature,
        expiry, issuer and audience."""
        auth = self.settings.auth
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc, auth.issuer)) from exc
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in _KEY_TYPES:
            raise InvalidToken(f"the access token is signed with {alg!r}, an algorithm meao does not accept "
                               f"(one of {', '.join(ASYMMETRIC_ALGORITHMS)})")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the access token's header names no key id (kid)")
        key = self._signing_key(kid)
        if not _fits(key, alg):
            raise InvalidToken(f"the access token's algorithm {alg} does not fit key {kid} of {auth.issuer}")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], issuer=auth.issuer, audience=auth.audience,
                                leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc, auth.issuer)) from exc
        except (jwt.PyJWTError, TypeError, ValueError, AttributeError) as exc:
            # a key PyJWT cannot use with this algorithm (InvalidKeyError, a curve mismatch): the token's fault
            raise InvalidToken(f"the access token's algorithm {alg} does not fit key {kid} of {auth.issuer}") from exc
        scopes = parse_scopes(claims.get("scope")) | parse_scopes(claims.get("scp"))
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "unknown"
        tenant = claims.get(auth.tenant_claim)
        return Principal(subject=str(subject), scopes=scopes, tenant=str(tenant) if tenant else None,
                         operator=not tenant and auth.operator_scope in scopes)

    def validate_cached(self, token: str) -> Principal | None:
        """None: finding the key may fetch the JWKS, so the check always runs off the event loop."""
        return None

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        """The key ``kid`` of the issuer's set, fetching the set when it is stale, or when it lacks ``kid``
        and the last fetch is older than the cooldown."""
        with self._lock:
            age = None if self._fetched_at is None else self.clock() - self._fetched_at
            if (age is None or age >= JWKS_LIFESPAN_S
                    or (kid not in self._keys and age >= self.settings.auth.jwks_refetch_s)):
                self._fetch()
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken(f"the access token is signed with key {kid!r}, which {self.settings.auth.issuer} "
                               "does not publish")
        return key

    def _fetch(self) -> None:
        url = self.settings.auth.jwks_url
        if self._failed is not None and self.clock() - self._failed[0] < JWKS_RETRY_S:
            raise TokenIssuerUnavailable(self._failed[1])  # a down issuer is not asked again for each request
        try:
            found = self.jwks.get_jwk_set(refresh=True)
        except jwt.PyJWKClientConnectionError as exc:
            self._failed = (self.clock(), f"cannot fetch the token signing keys from {url}: {exc}")
            raise TokenIssuerUnavailable(self._failed[1]) from exc
        except jwt.PyJWTError as exc:  # not JSON, or no usable key: the issuer's fault, not the caller's
            self._failed = (self.clock(), f"the token signing keys at {url} are not a usable JWKS: {exc}")
            raise TokenIssuerUnavailable(self._failed[1]) from exc
        self._failed = None
        self._fetched_at = self.clock()
        self._keys = {key.key_id: key for key in found.keys
                      if key.key_id and key.public_key_use in ("sig", None)}


def _fits(key: jwt.PyJWK, alg: str) -> bool:
    """True when ``alg`` is of the key's type, is the algorithm the JWK pins (its ``alg``, RFC 7517 clause
    4.4) if any, and for an EC key is the one of its curve (ES256 for P-256, RFC 7518 clause 3.4)."""
    if key.key_type != _KEY_TYPES[alg]:
        return False
    pinned = getattr(key, "_jwk_data", {}).get("alg")
    if pinned:
        return bool(pinned == alg)
    return key.key_type != "EC" or getattr(key, "algorithm_name", alg) == alg


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
    if auth.token_burst < 1 or auth.token_rate <= 0:
        raise SystemExit("meao: MEAO_AUTH_TOKEN_BURST must be at least 1 and MEAO_AUTH_TOKEN_RATE above 0 (the "
                         "token endpoint's attempts per client id and address); fix or unset them")
    if auth.mode == "local":
        signing_key(settings)
    if auth.mode == "jwt":
        missing = [name for name, value in (("MEAO_AUTH_ISSUER", auth.issuer), ("MEAO_AUTH_AUDIENCE", auth.audience),
                                            ("MEAO_AUTH_JWKS_URL", auth.jwks_url)) if not value]
        if missing:
            raise SystemExit(f"meao: MEAO_AUTH=jwt needs {', '.join(missing)} (the external OAuth 2.0 server's "
                             "issuer, the audience of meao's tokens and the URL of its JWKS)")
