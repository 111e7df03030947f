"""OAuth 2.0 clients of meao's own token endpoint (RFC 6749 clause 2): registration and authentication.

A client secret is shown once, at creation; the database keeps only a salted scrypt hash of it, compared
in constant time. ``bootstrap_admin`` gives a fresh installation one client with every scope, so
``meao serve`` works with zero configuration and the operator CLI finds its credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from meao.auth.scopes import ALL_SCOPES, UnknownScope, check_known
from meao.config import Settings
from meao.db.models import AuthClient
from meao.db.session import session_scope
from meao.problems import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

ADMIN_CLIENT = "admin"
ADMIN_CREDENTIALS_FILE = "admin-credentials.json"
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# scrypt cost: 16 MiB and ~50 ms per check, so guessing a secret online is slow (RFC 7914 clause 2)
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN = 2**14, 8, 1, 32


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of a client secret, with a fresh random salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DKLEN)
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_secret(secret: str, stored: str) -> bool:
    """True when ``secret`` hashes to ``stored`` (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check unknown client ids against, so a wrong id costs as long as a wrong secret.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(16))


def new_secret() -> str:
    """A random client secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def create_client(session: Session, client_id: str, scopes: list[str], tenant: str | None = None,
                  operator: bool = False) -> tuple[AuthClient, str]:
    """Register a client; returns it and its secret, which is not stored and cannot be shown again.

    An ``operator`` sees every tenant's resources under MEAO_TENANT_ISOLATION; a client with neither a
    tenant nor operator standing then sees none (403).
    """
    if tenant and operator:
        raise BadRequest(f"client {client_id} cannot both belong to tenant {tenant} and be an operator (who "
                         "sees every tenant); give --tenant or --operator, not both")
    if not _CLIENT_ID.fullmatch(client_id):
        raise BadRequest(f"client id {client_id!r} must be 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    try:
        known = check_known(scopes)
    except UnknownScope as exc:
        raise BadRequest(str(exc)) from exc
    if not known:
        raise BadRequest(f"give the client at least one scope; meao's scopes are {', '.join(ALL_SCOPES)}")
    if session.get(AuthClient, client_id) is not None:
        raise Conflict(f"client {client_id} exists; delete it first to issue a new secret")
    secret = new_secret()
    client = AuthClient(client_id=client_id, secret_hash=hash_secret(secret), scopes=known, tenant=tenant or None,
                        operator=operator)
    session.add(client)
    session.flush()
    return client, secret


def list_clients(session: Session) -> list[AuthClient]:
    """Every registered client, by id."""
    return list(session.scalars(select(AuthClient).order_by(AuthClient.client_id)))


def get_client(session: Session, client_id: str) -> AuthClient | None:
    """One client, or None."""
    return session.get(AuthClient, client_id)


def delete_client(session: Session, client_id: str) -> None:
    """Remove a client; tokens it already holds stop working at their next use."""
    client = session.get(AuthClient, client_id)
    if client is None:
        raise NotFound(f"client {client_id} does not exist")
    session.delete(client)


def authenticate(session: Session, client_id: str, secret: str) -> AuthClient | None:
    """The client when ``secret`` is its secret, else None; unknown ids take as long as wrong secrets."""
    client = session.get(AuthClient, client_id) if _CLIENT_ID.fullmatch(client_id) else None
    ok = verify_secret(secret, client.secret_hash if client else _DUMMY_HASH)
    return client if client is not None and ok else None


def authenticate_client(client_id: str, secret: str) -> AuthClient | None:
    """``authenticate`` in a transaction of its own (the token endpoint's)."""
    with session_scope() as session:
        return authenticate(session, client_id, secret)


@dataclass(frozen=True)
class Bootstrapped:
    """The admin client made for a fresh installation, and where its credentials were written."""

    client_id: str
    path: Path


def bootstrap_admin(settings: Settings) -> Bootstrapped | None:
    """With no client registered at all, create ``admin``, an operator with every scope, and write its
    credentials.

    The file (mode 0600) is ``<data_dir>/admin-credentials.json``; the operator CLI and the workers on
    this machine read it when no other credentials are configured. Returns None when clients exist
    (or another process bootstrapped at the same moment).
    """
    path = settings.data_dir / ADMIN_CREDENTIALS_FILE
    with session_scope() as session:
        if session.scalar(select(func.count()).select_from(AuthClient)):
            return None
    try:
        with session_scope() as session:
            _client, secret = create_client(session, ADMIN_CLIENT, list(ALL_SCOPES), operator=True)
    except (IntegrityError, Conflict):
        return None  # a concurrent start made it
    doc = {"client_id": ADMIN_CLIENT, "client_secret": secret}
    try:
        write_private_file(path, json.dumps(doc, indent=2) + "\n")
    except OSError:
        with session_scope() as session:  # nobody could ever use a secret that was not written down
            delete_client(session, ADMIN_CLIENT)
        raise
    return Bootstrapped(ADMIN_CLIENT, path)


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale temporary file keeps its old mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
