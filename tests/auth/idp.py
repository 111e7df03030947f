"""A stand-in OAuth 2.0 server for the jwt-mode tests: its keys, and their JWKS served over real HTTP on
loopback, counting how often meao fetches it."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.auth.conftest import bare_env

ISSUER = "https://idp.example/realms/mec"
AUDIENCE = "meao-api"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Idp:
    """Signing keys by key id; ``fetches`` counts the GETs of the JWKS URL."""

    keys: dict[str, PrivateKey] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
def serve_jwks(idp: Idp) -> Iterator[Idp]:
    """Serve ``idp``'s JWKS on a free loopback port for as long as the context lasts."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            idp.count()
            data = json.dumps(idp.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    idp.url = f"http://127.0.0.1:{server.server_address[1]}/realms/mec/protocol/openid-connect/certs"
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
