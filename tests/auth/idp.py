"""A stand-in OAuth 2.0 / OpenID Connect server for the jwt-mode tests, served over real HTTP on loopback:
its keys and their JWKS (counting how often meao fetches it), and for the console's sign-in the discovery
document, an authorization endpoint that approves at once and a token endpoint for the authorization-code
grant with PKCE, recording what they were sent."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.auth.conftest import bare_env

ISSUER = "https://idp.example/realms/mec"
AUDIENCE = "meao-api"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


JWKS_PATH = "/realms/mec/protocol/openid-connect/certs"
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 4.1


@dataclass
class Grant:
    """What an authorization request asked for, kept under the code it was answered with."""

    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    nonce: str | None


@dataclass
class Idp:
    """Signing keys by key id; ``fetches`` counts the GETs of the JWKS URL.

    For the authorization-code flow: ``clients`` maps a public client's id to its registered redirect
    URIs; ``subject`` is the user the IdP signs in; ``granted_scope``, when set, is what that user may
    have whatever the client asks (else the requested scope); ``cors_origins`` the origins whose browser
    pages may call the token endpoint; ``tamper_state``/``deny`` make the next authorizations answer with
    a forged state / an error. ``authorizations`` and ``token_requests`` record the requests' parameters.
    ``metadata_*`` count and bend what the discovery document's URL answers.
    ``issuer`` is the ``iss`` of the tokens the token endpoint issues; ``own_issuer`` in ``serve_jwks``
    makes it the server's own loopback URL, so that meao can discover the endpoints from it.
    """

    keys: dict[str, PrivateKey] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""
    base: str = ""
    issuer: str = ISSUER
    clients: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subject: str = "operator-ana"
    granted_scope: str | None = None
    cors_origins: tuple[str, ...] = ()
    tamper_state: bool = False
    deny: str | None = None
    metadata_fetches: int = 0
    metadata_status: int = 200  # what the discovery document's URL answers (a broken IdP: 500)
    metadata_redirect: str | None = None  # answer the discovery document's URL with a redirect there
    metadata_extra: dict[str, Any] = field(default_factory=dict)  # merged into the discovery document
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider Metadata (OIDC Discovery 1.0, 3)."""
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token", "jwks_uri": self.url,
                "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"], **self.metadata_extra}

    def authorize(self, params: dict[str, str]) -> tuple[int, str]:
        """An authorization request (RFC 6749 4.1.1, RFC 7636 4.3) approved at once: (status, Location or
        error text). A bad client or redirect URI is answered here, never redirected (RFC 6749 4.1.2.1)."""
        with self._lock:
            self.authorizations.append(dict(params))
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if redirect_uri not in self.clients.get(client_id, ()):
            return 400, f"unknown client {client_id!r} or unregistered redirect_uri {redirect_uri!r}"
        answer: dict[str, str] = {}
        if self.deny:
            answer = {"error": self.deny, "error_description": "the user declined the sign-in"}
        elif params.get("response_type") != "code":
            answer = {"error": "unsupported_response_type"}
        elif params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            answer = {"error": "invalid_request", "error_description": "PKCE with code_challenge_method S256 is required"}
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self.grants[code] = Grant(client_id, redirect_uri, params["code_challenge"],
                                          self.granted_scope or params.get("scope", ""), params.get("nonce"))
            answer = {"code": code}
        state = params.get("state", "")
        answer["state"] = state + "-tampered" if self.tamper_state else state
        answer["iss"] = self.issuer
        return 302, f"{redirect_uri}?{urlencode(answer)}"

    def exchange(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A token request of the authorization-code grant (RFC 6749 4.1.3, RFC 7636 4.5): (status, body)."""
        with self._lock:
            self.token_requests.append(dict(params))
            grant = self.grants.pop(params.get("code", ""), None)  # a code is good for one try only

        def refuse(error: str, why: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": error, "error_description": why}

        if params.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "only authorization_code is supported")
        if grant is None:
            return refuse("invalid_grant", "unknown, expired or already used code")
        if params.get("client_id") != grant.client_id or params.get("redirect_uri") != grant.redirect_uri:
            return refuse("invalid_grant", "client_id or redirect_uri differ from the authorization request")
        verifier = params.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or pkce_s256(verifier) != grant.challenge:
            return refuse("invalid_grant", "code_verifier does not match the code_challenge")
        kid, key = next(iter(self.keys.items()))
        access = jwt.encode(claims(iss=self.issuer, sub=self.subject, scope=grant.scope, azp=grant.client_id),
                            key, algorithm="RS256", headers={"kid": kid})
        now = int(time.time())
        id_token = jwt.encode({"iss": self.issuer, "sub": self.subject, "aud": grant.client_id, "iat": now,
                               "exp": now + 300, **({"nonce": grant.nonce} if grant.nonce else {})},
                              key, algorithm="RS256", headers={"kid": kid})
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "scope": grant.scope,
                     "id_token": id_token}

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = key
        return key

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk, alg = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "RS256"
            elif isinstance(key, ec.EllipticCurvePrivateKey):
                jwk, alg = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "ES256"
            else:
                jwk, alg = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key())), "EdDSA"
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def count(self) -> None:
        with self._lock:
            self.fetches += 1


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 4.2): BASE64URL(SHA256(ASCII(verifier)))."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    """The claims of a token meao accepts (issuer, audience, lifetime, a read scope), plus ``extra``
    (None removes a claim)."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "service-account-oss", "iat": now, "exp": now + 300,
            "scope": "app_pkgm:read app_lcm:read", **extra}
    return {k: v for k, v in body.items() if v is not None}


def sign(key: PrivateKey, alg: str, kid: Any, **extra: Any) -> str:
    """A token of ``claims(**extra)`` signed with ``key`` under ``alg``, its header naming ``kid``."""
    return jwt.encode(claims(**extra), key, algorithm=alg, headers={"kid": kid})


def forged(header: dict[str, Any], **extra: Any) -> str:
    """A token with any ``header`` (PyJWT will not write some, e.g. a kid that is not a string) and a
    signature of random bytes: meao must refuse it before any signature check matters."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(claims(**extra)).encode()),
                     b64(os.urandom(256))))


@contextmanager
def serve_jwks(idp: Idp, own_issuer: bool = False) -> Iterator[Idp]:
    """Serve ``idp`` on a free loopback port for as long as the context lasts: its JWKS at ``idp.url``,
    and the discovery document (below the issuer), ``/authorize`` and ``/token``. ``own_issuer``: the
    issuer is the server's own URL (``<base>/realms/mec``), as meao's endpoint discovery needs."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                                "Cache-Control": "no-store", **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json", headers)

        def _cors(self) -> dict[str, str]:
            origin = self.headers.get("Origin", "")
            if origin not in idp.cors_origins:
                return {}
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type, Accept"}

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == JWKS_PATH:
                idp.count()
                self._json(200, idp.jwks())
            elif parts.path == urlsplit(idp.issuer).path + "/.well-known/openid-configuration":
                with idp._lock:
                    idp.metadata_fetches += 1
                if idp.metadata_redirect:
                    self._send(302, b"", "text/plain", {"Location": idp.metadata_redirect})
                elif idp.metadata_status != 200:
                    self._json(idp.metadata_status, {"error": "server_error"})
                else:
                    self._json(200, idp.discovery())
            elif parts.path == "/authorize":
                status, where = idp.authorize(params)
                if status == 302:
                    self._send(302, b"", "text/plain", {"Location": where})
                else:
                    self._send(status, where.encode(), "text/plain; charset=utf-8")
            else:
                self._json(404, {"error": "not_found"})

        def do_OPTIONS(self) -> None:  # CORS preflight of the token endpoint
            self._send(204, b"", "text/plain", self._cors())

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            params = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, body = idp.exchange(params)
            self._json(status, body, self._cors())

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    idp.base = f"http://127.0.0.1:{server.server_address[1]}"
    idp.url = idp.base + JWKS_PATH
    if own_issuer:
        idp.issuer = idp.base + "/realms/mec"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()


def jwt_env(data_dir: Path, jwks_url: str, **extra: str) -> dict[str, str]:
    """A zero-configuration environment in MEAO_AUTH=jwt mode against ``jwks_url``, plus ``extra``."""
    return bare_env(data_dir, MEAO_AUTH="jwt", MEAO_AUTH_ISSUER=ISSUER, MEAO_AUTH_AUDIENCE=AUDIENCE,
                    MEAO_AUTH_JWKS_URL=jwks_url, **extra)
